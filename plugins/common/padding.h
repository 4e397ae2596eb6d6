/* Keras padding rules and their ONNX spellings, shared by the conv2d and
 * pooling plugins (header-only, static). */
#ifndef NNP_PADDING_H
#define NNP_PADDING_H

#include <nnplug/plugin_util.h>

#include <string.h>

/* One spatial axis: the output size and the padding before / after it.
 * explicit_pads (before, after) wins when not NULL; else "same" is
 * TensorFlow's rule (out = ceil(in / stride), the odd pixel after) and
 * "valid" pads nothing. Returns -1 when the (dilated) window does not fit,
 * or a size is not in [1, 2^31] (a pad in [-2^31, 2^31]). */
static inline int pad_axis(int same, const int64_t *explicit_pads, int64_t in, int64_t k,
                           int64_t stride, int64_t dil, int64_t *out, int64_t *before,
                           int64_t *after)
{
    /* sizes past 2^31 do not fit any tensor here; bounding them keeps the
       arithmetic below from overflowing */
    const int64_t big = (int64_t)1 << 31;
    if (k < 1 || dil < 1 || stride < 1 || k > big || dil > big || stride > big || in > big ||
        (explicit_pads && (explicit_pads[0] < -big || explicit_pads[0] > big ||
                           explicit_pads[1] < -big || explicit_pads[1] > big)))
        return -1;
    const int64_t ek = (k - 1) * dil + 1;
    if (explicit_pads) {
        *before = explicit_pads[0];
        *after = explicit_pads[1];
        const int64_t span = in + *before + *after;
        if (span < ek)
            return -1;
        *out = (span - ek) / stride + 1;
        return 0;
    }
    if (same) {
        *out = (in + stride - 1) / stride;
        int64_t total = (*out - 1) * stride + ek - in;
        if (total < 0)
            total = 0;
        *before = total / 2;
        *after = total - *before;
        return in > 0 ? 0 : -1;
    }
    *before = *after = 0;
    if (in < ek)
        return -1;
    *out = (in - ek) / stride + 1;
    return 0;
}

enum { PAD_VALID = 0, PAD_SAME = 1, PAD_EXPLICIT = 2 };

/* Keras's "same" padding (before, after) of one axis when it does not depend
 * on the input size (stride 1) or the size is known; -1 otherwise. */
static inline int same_pads(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t *b,
                            int64_t *a)
{
    int64_t out;
    if (stride == 1) {
        const int64_t total = (k - 1) * dil;
        *b = total / 2;
        *a = total - *b;
        return 0;
    }
    if (in < 0)
        return -1;
    return pad_axis(1, NULL, in, k, stride, dil, &out, b, a);
}

/* How a layer pads, for messages. */
static inline const char *pad_rule(int same, int explicit_pads)
{
    return explicit_pads ? "the explicit pads" : same ? "'same' padding" : "'valid' padding";
}

/* A layer's padding as ONNX writes it for a 2-D window k with strides s and
 * dilations d: fills pads [top, left, bottom, right] (explicit_pads when not
 * NULL, zeros for "valid") and returns 0, or returns 1 when only
 * auto_pad=SAME_UPPER says it ("same" with a stride > 1, whose pads depend
 * on the input size; TensorFlow's rule is SAME_UPPER's). */
static inline int pad_to_onnx(int same, const int64_t *explicit_pads, const int64_t k[2],
                              const int64_t s[2], const int64_t d[2], int64_t pads[4])
{
    memset(pads, 0, 4 * sizeof(int64_t));
    if (explicit_pads) {
        memcpy(pads, explicit_pads, 4 * sizeof(int64_t));
        return 0;
    }
    if (!same)
        return 0;
    int64_t b0, a0, b1, a1;
    if (s[0] == 1 && s[1] == 1 && same_pads(-1, k[0], 1, d[0], &b0, &a0) == 0 &&
        same_pads(-1, k[1], 1, d[1], &b1, &a1) == 0) {
        pads[0] = b0;
        pads[1] = b1;
        pads[2] = a0;
        pads[3] = a1;
        return 0;
    }
    return 1;
}

/* Reads an ONNX node's auto_pad / pads for a 2-D window k with strides s and
 * dilations d and says which Keras padding it is: *mode PAD_VALID, PAD_SAME,
 * or PAD_EXPLICIT with pads [top, left, bottom, right]. */
static inline nnp_status pad_from_onnx(const nnp_host *h, const nnp_onnx_reader *r,
                                       const int64_t k[2], const int64_t s[2],
                                       const int64_t d[2], int *mode, int64_t pads[4],
                                       nnp_error *err)
{
    const char *op = h->onnx_op_type(r);
    const char *node = nnp_pu_node_label(h, r);
    char ap[32] = "NOTSET";
    nnp_status st = NNP_OK;
    if (h->onnx_has_attr(r, "auto_pad"))
        st = h->onnx_get_attr_string(r, "auto_pad", ap, sizeof ap, err);
    if (st != NNP_OK)
        return st;
    memset(pads, 0, 4 * sizeof(int64_t));
    int64_t in[2] = {-1, -1};
    nnp_shape xs;
    if (nnp_pu_input_shape(h, r, 0, &xs) == 4) {
        in[0] = xs.dims[2];
        in[1] = xs.dims[3];
    }
    if (strcmp(ap, "VALID") == 0) {
        *mode = PAD_VALID;
        return NNP_OK;
    }
    if (strcmp(ap, "SAME_UPPER") == 0) {
        *mode = PAD_SAME;
        return NNP_OK;
    }
    if (strcmp(ap, "SAME_LOWER") == 0) {
        /* the odd pixel goes before: Keras's rule only when the total is even */
        int even = 1;
        for (int i = 0; i < 2; i++) {
            int64_t b, a;
            if (same_pads(in[i], k[i], s[i], d[i], &b, &a) != 0)
                return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                    "%s node '%s': auto_pad=SAME_LOWER with stride %lld needs "
                                    "the input size, which the graph does not give",
                                    op, node, (long long)s[i]);
            pads[i] = a;      /* swapped: the larger half before */
            pads[i + 2] = b;
            even = even && a == b;
        }
        *mode = even ? PAD_SAME : PAD_EXPLICIT;
        return NNP_OK;
    }
    if (strcmp(ap, "NOTSET") != 0)
        return h->error_set(err, NNP_ERR_FORMAT, "%s node '%s': unknown auto_pad '%s'", op, node,
                            ap);
    int64_t p[8] = {0};
    int n = nnp_pu_attr_ints(h, r, "pads", p, 8, err);
    if (n < 0)
        return err->code;
    if (n != 0 && n != 4)
        return h->error_set(err, NNP_ERR_FORMAT, "%s node '%s': pads has %d entries, expected 4",
                            op, node, n);
    for (int i = 0; i < 4; i++) {
        if (p[i] < 0)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "%s node '%s': negative pads (cropping) are not supported", op,
                                node);
        pads[i] = p[i];
    }
    if (pads[0] == 0 && pads[1] == 0 && pads[2] == 0 && pads[3] == 0) {
        *mode = PAD_VALID;
        return NNP_OK;
    }
    int same = 1;
    for (int i = 0; i < 2 && same; i++) {
        int64_t b, a;
        /* with stride 1 Keras's "same" pads do not depend on the input size;
         * otherwise only explicit pads keep the node's meaning at every size */
        same = s[i] == 1 && same_pads(in[i], k[i], s[i], d[i], &b, &a) == 0 && b == pads[i] &&
               a == pads[i + 2];
    }
    *mode = same ? PAD_SAME : PAD_EXPLICIT;
    return NNP_OK;
}

#endif
