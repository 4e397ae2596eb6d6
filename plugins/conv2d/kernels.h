/* Conv2D kernels: im2col + single-threaded sgemm per task, OpenMP over a
 * fixed task decomposition so that results are identical for any thread
 * count. Private to the conv2d plugin. */
#ifndef NNP_CONV2D_KERNELS_H
#define NNP_CONV2D_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Everything about one convolution's shapes, fixed at build. */
typedef struct conv_geom {
    int64_t N;                /* batch of the last concrete build (-1 unknown) */
    int64_t H, W, C;          /* input */
    int64_t OH, OW, F;        /* output */
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pt, pl, pb, pr;   /* padding: top, left, bottom, right */
    int64_t groups, Cg, Fg, Kg; /* Kg = kh * kw * Cg: one group's im2col row */
    int channels_first;
    int64_t P;                /* OH * OW */
    int direct;               /* 1x1, stride 1, no padding: x is its own im2col */
    int64_t rows;             /* output positions per task (a block of P) */
    int64_t nblk;             /* blocks per image */
} conv_geom;

/* Scratch planned at build; nothing is allocated while running. */
typedef struct conv_scratch {
    float *cols;              /* n_slots x rows x Kg: im2col of one block */
    float *dcols;             /* n_slots x rows x Kg: its gradient */
    int n_slots;
    float *partials;          /* n_chunks x (Kg * F): kernel gradient per image chunk */
    int n_chunks;
} conv_scratch;

/* The fixed number of image chunks whose kernel gradients are summed in
 * chunk order (a function of the kernel size only). */
int conv_n_chunks(const conv_geom *g);
/* Fills rows / nblk / direct from the other fields. */
void conv_plan(conv_geom *g);
/* Floats of one slot's cols (= dcols) buffer. */
size_t conv_slot_floats(const conv_geom *g);

/* y = x (*) kernel + bias, no activation; x [N, ...] of g's input shape,
 * kernel [kh, kw, Cg, F] (Keras layout), bias [F] or NULL. */
void conv_forward(const conv_geom *g, int64_t N, const float *x, const float *kernel,
                  const float *bias, float *y, const conv_scratch *s, int nthreads);

/* From dz = dL/d(pre-activation output): ADDS the kernel gradient into
 * dkernel and the bias gradient into dbias (when not NULL) and WRITES dx
 * (when not NULL). */
void conv_backward(const conv_geom *g, int64_t N, const float *x, const float *kernel,
                   const float *dz, float *dkernel, float *dbias, float *dx,
                   const conv_scratch *s, int nthreads);

/* A [P, Kg] = the im2col rows of one image x (group 0; channels-first via
 * tmp [Kg, P]): row p is the patch under output position p. */
void conv_im2col_image(const conv_geom *g, const float *x, float *tmp, float *A);
/* One group's patches by table (small images): off [kh * kw * P] holds,
 * for kernel offset k = i * kw + j and output position p, the input
 * position ih * W + iw under it, or -1 in the padding. */
void conv_patch_offsets(const conv_geom *g, int32_t *off);
/* A [P, Kg] = the im2col rows of one image x (one group). */
void conv_patch_rows(const conv_geom *g, const int32_t *off, const float *x, float *A);
/* dx = one image's input gradient from its patches' gradient dcolsT
 * [Kg, P] (ld floats from row to row), summed in a fixed order. */
void conv_patch_back(const conv_geom *g, const int32_t *off, const float *dcolsT, int64_t ld,
                     float *dx);

#endif
