/* Pooling plugin: state shared by the layer glue (pooling.c), the kernels
 * (kernels.c) and the ONNX mapping (onnx.c). Private to this plugin. */
#ifndef NNP_POOLING_H
#define NNP_POOLING_H

#include <nnplug/plugin.h>

typedef enum pool_op { POOL_MAX = 0, POOL_AVG = 1 } pool_op;

/* A recorded window position: no element (an empty window). */
#define POOL_POS_NONE 255

/* One pooling geometry (derived from a concrete input shape). */
typedef struct pool_geom {
    int64_t N, H, W, C, OH, OW;
    int64_t kh, kw, sh, sw;
    int64_t pt, pl;            /* padding before (after is implied by OH, OW) */
    int channels_first;
} pool_geom;

typedef struct pool_state {
    const nnp_host *host;
    const nnp_config *cfg;
    const char *kind;
    pool_op op;
    int global;                /* Global{Average,Max}Pooling2D */
    int keepdims;              /* global: keep [N, 1, 1, C] / [N, C, 1, 1] */
    int64_t kh, kw, sh, sw;
    int same, explicit_pads;
    int64_t pads[4];           /* top, left, bottom, right */
    int count_include_pad;     /* average: padded zeros count (ONNX imports) */
    int channels_first;
    int built;
    nnp_shape in_shape;        /* of the last build (dims may be -1) */
    /* max, channels-first: each output's window position (pool_records),
       written by training forwards; valid for the backward of input rec_x
       and output rec_y (compared only, never read) */
    uint8_t *rec;
    size_t rec_bytes;
    const void *rec_x, *rec_y;
} pool_state;

const char *pool_name(const pool_state *s);
/* The geometry of an input shape; NNP_ERR_SHAPE with a message when the
 * window does not fit. H, W may be -1 (then OH, OW are -1). */
nnp_status pool_geometry(const pool_state *s, const nnp_shape *in, pool_geom *g, nnp_error *err);

/* Kernels: windows pooled over valid (unpadded) positions; max's gradient
 * goes to the first maximum of each window in row-major order. */
void pool_forward(const pool_geom *g, pool_op op, int include_pad, const float *x, float *y,
                  int nthreads);
void pool_backward(const pool_geom *g, pool_op op, int include_pad, const float *x,
                   const float *dy, float *dx, int nthreads);
/* Whether a geometry's training forward records its maxima; the forward
 * that does (y as pool_forward's) and the backward from the record. */
int pool_records(const pool_geom *g, pool_op op);
void pool_forward_record(const pool_geom *g, const float *x, float *y, uint8_t *pos,
                         int nthreads);
void pool_backward_recorded(const pool_geom *g, const uint8_t *pos, const float *dy, float *dx,
                            int nthreads);
void global_forward(const pool_geom *g, pool_op op, const float *x, float *y, int nthreads);
void global_backward(const pool_geom *g, pool_op op, const float *x, const float *dy, float *dx,
                     int nthreads);

nnp_status pool_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                        int n_inputs, const char *output, nnp_error *err);
nnp_status pool_from_onnx(const nnp_host *host, const nnp_onnx_reader *r, nnp_config *cfg,
                          nnp_error *err);

#endif
