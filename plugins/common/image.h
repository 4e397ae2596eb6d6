/* Conventions of Keras's 2-D image layers, shared by the conv2d, pooling and
 * shape_ops plugins (header-only, static): data_format, pair parameters
 * (kernel_size, strides, pool_size) and rank-4 shapes in either layout. */
#ifndef NNP_IMAGE_H
#define NNP_IMAGE_H

#include <nnplug/plugin_util.h>

#include <string.h>

/* Whether the config's data_format is channels_first (tfjs: channelsFirst);
 * anything else, null included, is channels_last. */
static inline int img_channels_first(const nnp_host *h, const nnp_config *cfg)
{
    const char *df = h->config_string(cfg, "data_format");
    return df && (strcmp(df, "channels_first") == 0 || strcmp(df, "channelsFirst") == 0);
}

/* A pair parameter: one int for both axes or a list of two, each >= 1, into
 * a and b. When null is not NULL the parameter may be null: *null says so and
 * a, b are left alone; otherwise null is refused as a required value. */
static inline nnp_status img_pair(const nnp_host *h, const nnp_config *cfg, const char *kind,
                                  const char *key, int64_t *a, int64_t *b, int *null,
                                  nnp_error *err)
{
    int64_t v[4];
    int n = h->config_ints(cfg, key, v, 4);
    if (null) {
        *null = n < 0;
        if (n < 0)
            return NNP_OK;
    }
    if (n == 1)
        v[1] = v[0];
    if (n != 1 && n != 2)
        return nnp_pu_fail(h, err, NNP_ERR_INVALID, kind, nnp_pu_name(h, cfg),
                           "'%s' must be one int or a list of 2 ints%s", key,
                           n < 0 ? " (it is required)" : "");
    if (v[0] < 1 || v[1] < 1)
        return nnp_pu_fail(h, err, NNP_ERR_INVALID, kind, nnp_pu_name(h, cfg),
                           "'%s' entries must be >= 1", key);
    *a = v[0];
    *b = v[1];
    return NNP_OK;
}

/* Batch, channels, rows and cols (nchw) of a rank-4 input laid out as
 * [N, H, W, C], or [N, C, H, W] when channels_first; NNP_ERR_SHAPE (and all
 * -1) for another rank. */
static inline nnp_status img_dims(const nnp_host *h, const char *kind, const char *name,
                                  const nnp_shape *in, int channels_first, int64_t nchw[4],
                                  nnp_error *err)
{
    char b[160];
    nchw[0] = nchw[1] = nchw[2] = nchw[3] = -1;
    if (in->rank != 4)
        return nnp_pu_fail(h, err, NNP_ERR_SHAPE, kind, name,
                           "expects a rank-4 input (%s), got rank %d (shape %s)",
                           channels_first ? "[batch, channels, rows, cols]"
                                          : "[batch, rows, cols, channels]",
                           in->rank, nnp_pu_shape_str(in, b, sizeof b));
    nchw[0] = in->dims[0];
    nchw[1] = in->dims[channels_first ? 1 : 3];
    nchw[2] = in->dims[channels_first ? 2 : 1];
    nchw[3] = in->dims[channels_first ? 3 : 2];
    return NNP_OK;
}

/* The rank-4 shape of n images of c channels, rows x cols, in the layout. */
static inline void img_shape(nnp_shape *out, int channels_first, int64_t n, int64_t c,
                             int64_t rows, int64_t cols)
{
    out->rank = 4;
    out->dims[0] = n;
    out->dims[1] = channels_first ? c : rows;
    out->dims[2] = channels_first ? rows : cols;
    out->dims[3] = channels_first ? cols : c;
}

#endif
