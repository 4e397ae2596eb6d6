/*
 * Conv2D on oneDNN (see engine_dnnl.h).
 *
 * Layouts. oneDNN describes every operand with logical dims (N, C, H, W)
 * and (F, C, kh, kw), or (G, F/G, C/G, kh, kw) with groups. The Keras
 * kernel [kh, kw, Cg, F] is then format hwio (hwigo with groups). The
 * activations keep the model's layout: channels_last runs oneDNN's nhwc
 * kernels on the tensors themselves; channels_first (the layout of ONNX
 * models) is reordered to the blocked nChw16c, where oneDNN's fast kernels
 * are, and back, around each call (a few percent of the convolution's
 * time at ResNet's sizes). Inference plans may hand a channels-first layer
 * channels-last tensors (NNP_TENSOR_NHWC): a forward-inference primitive
 * of its own (cdn_plan_nhwc) runs on them as they are, oneDNN's brgemm
 * convolutions being faster than its blocked ones there; 3x3 stride-1
 * layers on whole blocks of 16 channels run oneDNN's Winograd kernels
 * instead, image by image (plan_wino). Kernels are reordered to the layout
 * the primitive chose; inference forwards keep the reordered kernel until
 * the host says the weights changed.
 *
 * Threads. Primitives are created and run with omp_set_num_threads set to
 * the host's thread count (oneDNN sizes its parallel regions from it); the
 * chunked kernel-gradient primitives are created with one thread and run
 * one per chunk inside our own parallel loop, where oneDNN runs serially.
 */
#include "engine_dnnl.h"

#ifndef NNP_HAVE_DNNL

int cdn_available(void) { return 0; }
conv_dnnl *cdn_create(const conv_geom *g, int has_bias, int nthreads, cdn_alloc alloc,
                      cdn_free free_fn, size_t *bytes)
{
    (void)g, (void)has_bias, (void)nthreads, (void)alloc, (void)free_fn;
    *bytes = 0;
    return NULL;
}
void cdn_destroy(conv_dnnl *e) { (void)e; }
int64_t cdn_batch(const conv_dnnl *e) { (void)e; return -1; }
void cdn_weights_changed(conv_dnnl *e) { (void)e; }
void cdn_forward(conv_dnnl *e, const float *x, const float *kernel, const float *bias, float *y,
                 int training, const cdn_epilogue *epi, unsigned cl, int keep_x, void *ws,
                 int nthreads)
{
    (void)e, (void)x, (void)kernel, (void)bias, (void)y, (void)training, (void)epi, (void)ws,
        (void)nthreads, (void)cl, (void)keep_x;
}
int cdn_plan_nhwc(conv_dnnl *e, unsigned io, int sum, int relu)
{
    (void)e, (void)io, (void)sum, (void)relu;
    return 1;
}
size_t cdn_workspace_bytes(const conv_dnnl *e)
{
    (void)e;
    return 0;
}
int cdn_own_buffers(conv_dnnl *e)
{
    (void)e;
    return 1;
}
int cdn_plan_post(conv_dnnl *e, int sum, int relu)
{
    (void)e, (void)sum, (void)relu;
    return 1;
}
void cdn_plan_wino_cl(conv_dnnl *e, int sum, int relu) { (void)e, (void)sum, (void)relu; }
void cdn_backward(conv_dnnl *e, const float *x, const float *kernel, const float *dz,
                  float *dkernel, float *dbias, float *dx, void *ws, int nthreads, int store)
{
    (void)ws, (void)store;
    (void)e, (void)x, (void)kernel, (void)dz, (void)dkernel, (void)dbias, (void)dx,
        (void)nthreads;
}
void cdn_backward_data(conv_dnnl *e, const float *kernel, const float *dz, float *dx, void *ws,
                       int nthreads)
{
    (void)e, (void)kernel, (void)dz, (void)dx, (void)ws, (void)nthreads;
}
int cdn_backward_data_slow(const conv_dnnl *e)
{
    (void)e;
    return 0;
}

#else

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* kernel-gradient chunks: at most this many, their partials under this size */
#define CDN_MAX_CHUNKS 16
#define CDN_PARTIAL_BYTES ((size_t)8 << 20)

/* An activation operand: the tensor's layout and the primitive's. */
typedef struct port {
    dnnl_memory_desc_t md;      /* the primitive's */
    dnnl_primitive_t re;        /* reorder between the two; NULL when they agree */
    dnnl_memory_t mu, mi;       /* on the tensor, on buf (mi == mu without reorder) */
    float *buf;                 /* own buffer (cdn_own_buffers), or NULL: the workspace */
    size_t bytes;               /* of md */
    size_t ws_off;              /* its place in the workspace */
} port;

/* A thread's share of a Winograd forward (cdn_plan_nhwc): its stream and
 * one image's operands, on its part of the workspace. */
#define CDN_WINO_SLOTS 64
typedef struct wino_slot {
    dnnl_stream_t strm;
    dnnl_memory_t xu, yu, src, dst, scratch;
} wino_slot;

typedef struct chunk {
    int64_t n0, n;              /* its images */
    int64_t f0;                 /* its first output channel (split by channels) */
    int prim;                   /* bw[prim] */
    dnnl_stream_t strm;
    dnnl_memory_t src, ddst, dw, db, scratch;  /* dw: bound in each backward */
    float *db_buf;
} chunk;

struct conv_dnnl {
    conv_geom g;
    int has_bias;
    cdn_alloc alloc;
    cdn_free free_fn;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_t fwd, bwd_d, bw[2];
    port src, dst, ddst, dsrc;
    size_t ws_bytes;            /* the ports' workspace (plan_workspace) */
    dnnl_memory_t wu, wf, wb, bias, scratch_m, dw_sum, dw_user;
    dnnl_primitive_t re_wf, re_wb, re_dw, re_dw_set; /* re_dw adds, re_dw_set writes */
    /* backward-data's kernel from the forward's still in wbuf (a permutation
       within its blocks: several times faster than from the tensor's
       layout), on the kernel-gradient partials' buffer, which is free until
       the kernel gradient (wb_p; re_fb NULL: from the tensor's layout) */
    dnnl_primitive_t re_fb;
    dnnl_memory_t wb_p;
    float *scratch;
    size_t w_floats, dw_floats;
    int wf_valid;
    int bwd_d_ref;              /* backward-data is oneDNN's reference loop */
    int wf_folded;              /* wf holds kernel * scale (an epilogue's) */
    int nthreads;               /* the primitives were made for */
    dnnl_primitive_t post[2][2];/* the forward with post-ops [sum][relu] (cdn_plan_post;
                                   post[0][0] unused: fwd) */
    dnnl_primitive_t re_dst_in; /* the tensor's y into the primitive's dst (a sum) */
    /* the inference forward on channels-last operands (cdn_plan_nhwc): its
       kernel on chunk 0's partial when it fits there (w_own else), loaded
       in turn with wf */
    struct {
        unsigned io;            /* CDN_X_NHWC | CDN_Y_NHWC it was made for */
        int sum, relu;          /* its post-ops */
        dnnl_primitive_t prim, re_w;
        dnnl_memory_t src, dst, w, scratch_m;
        /* an operand in another layout than the primitive's (a plain one,
           or all of them on a blocked primitive): the tensor (xu, yu)
           reordered from / to the primitive's own buffer */
        dnnl_primitive_t re_x, re_y, re_y_in;
        dnnl_memory_t xu, yu;
        float *x_buf, *y_buf;
        float *w_own, *scratch;
        size_t w_own_bytes;
        int w_valid, w_folded;
        /* Winograd (plan_wino): prim is a one-thread primitive on one
           image, run per image by `slots` threads at most, each on its
           slot and its part of the workspace (xb + yb + sb bytes: x and y
           in the primitive's layout, its scratchpad; wown outside a
           model); re_x, re_y, re_y_in are one image's */
        int wino, slots;
        size_t xb, yb, sb;
        char *wown;
        size_t wown_bytes;
        wino_slot slot[CDN_WINO_SLOTS];
    } cl;
    /* x in the primitive's layout from the last forward (keep_x), for the
       backward on the same x: its buffer (src.bytes; the src port's own
       buffer instead when it has one) and that x */
    float *xkeep;
    const float *xkeep_of;
    /* the kernel in the forward's / backward-data's layout (wf, wb, and
       the channels-last forward's when it fits), kept between inference
       forwards */
    float *wbuf;
    size_t wbuf_bytes;
    /* the chunks' kernel-gradient partials, part_bytes apart: alive only
       in a backward, so in the workspace after the backward's ports
       (part_off), or in parts_own (cdn_own_buffers) */
    size_t part_off, part_bytes;
    float *parts_own;
    float *bias_buf;            /* F floats: zeros, or the folded bias */
    int K;
    /* the chunks split the output channels instead of the batch (each
       kernel-gradient element one chunk's, over every image: nothing to
       sum); each chunk's share of ddst is copied dense after the kernel
       gradient (ddc_bytes each) */
    int oc_split;
    size_t ddc_bytes;
    dnnl_memory_desc_t dw_full;  /* the kernel gradient's layout when split */
    chunk ch[CDN_MAX_CHUNKS];
    /* the chunks' scratchpads, one per thread (ch_slots of ch_sb bytes),
       in a backward's workspace at ch_off (ch_own outside a model) */
    int ch_slots;
    size_t ch_sb, ch_off;
    char *ch_own;
    /* Winograd in the blocked layout (plan_tw): the forward and
       backward-data one image per call of one-thread primitives, images
       spread over the threads, each thread on its slot (xu: an image of x,
       yu: of y) with its scratchpad in the workspace (at off_f in a
       forward, off_b in a backward, sb bytes each; `own` outside a model);
       the kernel gradient's chunks on Winograd primitives too. Its kernels
       in their own buffer (wbuf): `held` says whose (TW_*); `shared`: both
       primitives take the same layout (oneDNN transforms it inside). */
    struct {
        int on, slots, held, shared;
        dnnl_primitive_t fwd, bwd_d, re_wf, re_wb;
        dnnl_memory_t wf, wb;
        float *wbuf;
        size_t sb, off_f, off_b;
        char *own;
        wino_slot slot[CDN_WINO_SLOTS];
    } tw;
    size_t bytes;
};
enum { TW_NONE, TW_FWD, TW_BWD };

int cdn_available(void) { return 1; }
int64_t cdn_batch(const conv_dnnl *e) { return e ? e->g.N : -1; }
void cdn_weights_changed(conv_dnnl *e)
{
    if (e) {
        e->wf_valid = e->cl.w_valid = 0;
        e->tw.held = TW_NONE;
    }
}

/* ---- creation helpers (each returns 0 on success) ---- */

static void *take(conv_dnnl *e, size_t bytes)
{
    if (bytes == 0)
        bytes = 64;
    void *p = e->alloc(bytes);
    if (p)
        e->bytes += bytes;
    return p;
}

static int mem(conv_dnnl *e, dnnl_memory_t *m, const dnnl_memory_desc_t *md)
{
    return dnnl_memory_create(m, md, e->eng, DNNL_MEMORY_NONE) != dnnl_success;
}

static int reorder(conv_dnnl *e, dnnl_primitive_t *p, const dnnl_memory_desc_t *from,
                   const dnnl_memory_desc_t *to)
{
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, e->eng, to, e->eng, NULL);
    if (st == dnnl_success)
        st = dnnl_primitive_create(p, pd);
    dnnl_primitive_desc_destroy(pd);
    return st != dnnl_success;
}

/* A port between the tensor layout `user` and the primitive's md. */
static int port_init(conv_dnnl *e, port *p, const dnnl_memory_desc_t *user,
                     const dnnl_memory_desc_t *md, int in)
{
    p->md = *md;
    p->bytes = dnnl_memory_desc_get_size(md);
    if (mem(e, &p->mu, user))
        return 1;
    if (dnnl_memory_desc_equal(user, md)) {
        p->mi = p->mu;
        return 0;
    }
    /* the buffer is bound when the port is used (port_bind) */
    if (dnnl_memory_create(&p->mi, md, e->eng, DNNL_MEMORY_NONE))
        return 1;
    return in ? reorder(e, &p->re, user, md) : reorder(e, &p->re, md, user);
}

/* The kernel gradient's partials (split by channels: the gradient, then
 * the chunks' shares of ddst). */
static size_t parts_bytes(const conv_dnnl *e)
{
    return e->oc_split ? e->part_bytes + (size_t)e->K * e->ddc_bytes
                       : (size_t)e->K * e->part_bytes;
}

/* Workspace places: the forward uses src and dst, the backward src, ddst
 * and dsrc, each at its own offset, then the K partials; the size is the
 * larger use. */
static size_t plan_workspace(conv_dnnl *e)
{
    port *fwd[2] = {&e->src, &e->dst}, *bwd[3] = {&e->src, &e->ddst, &e->dsrc};
    size_t f = 0, b = 0;
    for (int i = 0; i < 2; i++)
        if (fwd[i]->re) {
            fwd[i]->ws_off = f;
            f += (fwd[i]->bytes + 63) / 64 * 64;
        }
    for (int i = 0; i < 3; i++)
        if (bwd[i]->re) {
            if (bwd[i] != &e->src)
                bwd[i]->ws_off = b;
            b += (bwd[i]->bytes + 63) / 64 * 64;
        }
    e->part_off = b;
    b += parts_bytes(e);
    if (e->tw.on) { /* the Winograd slots' scratchpads */
        e->tw.off_f = f;
        f += (size_t)e->tw.slots * e->tw.sb;
        e->tw.off_b = b;
        b += (size_t)e->tw.slots * e->tw.sb;
    }
    e->ch_off = b;
    b += (size_t)e->ch_slots * e->ch_sb;
    return f > b ? f : b;
}

/* The Winograd forward's workspace (cdn_plan_nhwc): its slots one after
 * another, or, before them, a scaled copy of the kernel. */
static size_t wino_bytes(const conv_dnnl *e)
{
    const size_t slots = (size_t)e->cl.slots * (e->cl.xb + e->cl.yb + e->cl.sb);
    const size_t w = e->w_floats * sizeof(float);
    return !e->cl.wino ? 0 : slots > w ? slots : w;
}

size_t cdn_workspace_bytes(const conv_dnnl *e)
{
    const size_t w = wino_bytes(e);
    return w > e->ws_bytes ? w : e->ws_bytes;
}

int cdn_own_buffers(conv_dnnl *e)
{
    if (!e->parts_own && !(e->parts_own = take(e, parts_bytes(e))))
        return 1;
    if (e->tw.on && !e->tw.own && !(e->tw.own = take(e, (size_t)e->tw.slots * e->tw.sb)))
        return 1;
    if (!e->ch_own && !(e->ch_own = take(e, (size_t)e->ch_slots * e->ch_sb)))
        return 1;
    if (e->cl.wino && e->cl.wown_bytes < wino_bytes(e)) {
        e->free_fn(e->cl.wown);
        if (!(e->cl.wown = take(e, wino_bytes(e))))
            return e->cl.wown_bytes = 0, 1;
        e->cl.wown_bytes = wino_bytes(e);
    }
    port *ps[4] = {&e->src, &e->dst, &e->ddst, &e->dsrc};
    for (int i = 0; i < 4; i++)
        if (ps[i]->re && !ps[i]->buf && !(ps[i]->buf = take(e, ps[i]->bytes)))
            return 1;
    return 0;
}

/* Points a reordering port's own side at its buffer or its workspace place. */
static void port_bind(const conv_dnnl *e, port *p, void *ws)
{
    if (p->re)
        dnnl_memory_set_data_handle(p->mi, p->buf ? (void *)p->buf : (char *)ws + p->ws_off);
    (void)e;
}

static void port_free(port *p)
{
    if (p->mi && p->mi != p->mu)
        dnnl_memory_destroy(p->mi);
    dnnl_memory_destroy(p->mu);
    dnnl_primitive_destroy(p->re);
}

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

static size_t scratch_of(dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = query(pd, dnnl_query_scratchpad_md);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* The descriptors every primitive shares. */
typedef struct descs {
    dnnl_memory_desc_t src_user, dst_user, src, dst, w_user, w_any, b;
    dnnl_dims_t strides, dilates, pad_l, pad_r;
    dnnl_primitive_attr_t attr;   /* user-managed scratchpad */
} descs;

static void act_md(dnnl_memory_desc_t *md, int64_t n, int64_t c, int64_t h, int64_t w,
                   dnnl_format_tag_t tag)
{
    dnnl_dims_t d = {n, c, h, w};
    dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, tag);
}

static void make_descs(const conv_geom *g, int64_t n, int blocked, descs *d)
{
    const dnnl_format_tag_t user = g->channels_first ? dnnl_nchw : dnnl_nhwc;
    act_md(&d->src_user, n, g->C, g->H, g->W, user);
    act_md(&d->dst_user, n, g->F, g->OH, g->OW, user);
    const dnnl_format_tag_t ts = blocked && g->Cg >= 16 ? dnnl_nChw16c : user;
    const dnnl_format_tag_t td = blocked && g->Fg >= 16 ? dnnl_nChw16c : user;
    act_md(&d->src, n, g->C, g->H, g->W, ts);
    act_md(&d->dst, n, g->F, g->OH, g->OW, td);
    if (g->groups == 1) {
        dnnl_dims_t w = {g->F, g->C, g->kh, g->kw};
        dnnl_memory_desc_init_by_tag(&d->w_user, 4, w, dnnl_f32, dnnl_hwio);
        dnnl_memory_desc_init_by_tag(&d->w_any, 4, w, dnnl_f32, dnnl_format_tag_any);
    } else {
        dnnl_dims_t w = {g->groups, g->Fg, g->Cg, g->kh, g->kw};
        dnnl_memory_desc_init_by_tag(&d->w_user, 5, w, dnnl_f32, dnnl_hwigo);
        dnnl_memory_desc_init_by_tag(&d->w_any, 5, w, dnnl_f32, dnnl_format_tag_any);
    }
    dnnl_dims_t b = {g->F};
    dnnl_memory_desc_init_by_tag(&d->b, 1, b, dnnl_f32, dnnl_x);
    d->strides[0] = g->sh;
    d->strides[1] = g->sw;
    d->dilates[0] = g->dh - 1;
    d->dilates[1] = g->dw - 1;
    d->pad_l[0] = g->pt;
    d->pad_l[1] = g->pl;
    d->pad_r[0] = g->pb;
    d->pad_r[1] = g->pr;
}

static int pd_create(dnnl_primitive_desc_t *pd, const void *op, const descs *d,
                     dnnl_engine_t eng, const_dnnl_primitive_desc_t hint)
{
    return dnnl_primitive_desc_create(pd, op, d->attr, eng, hint) != dnnl_success;
}

/* The kernel-gradient primitive for a chunk of n images and nf output
 * channels (one thread). */
static int bw_create(conv_dnnl *e, int64_t n, int64_t nf, const dnnl_memory_desc_t *dw_md,
                     dnnl_primitive_desc_t *pd)
{
    descs d;
    conv_geom g = e->g;
    g.F = g.Fg = nf;
    make_descs(&g, n, 1, &d);
    /* the chunk's layouts are the whole batch's, with n images */
    act_md(&d.src, n, e->g.C, e->g.H, e->g.W,
           e->src.md.format_desc.blocking.inner_nblks ? dnnl_nChw16c
           : e->g.channels_first                      ? dnnl_nchw
                                                      : dnnl_nhwc);
    act_md(&d.dst, n, nf, e->g.OH, e->g.OW,
           e->ddst.md.format_desc.blocking.inner_nblks ? dnnl_nChw16c
           : e->g.channels_first                       ? dnnl_nchw
                                                       : dnnl_nhwc);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_convolution_desc_t cd;
    const int no_attr = dnnl_primitive_attr_create(&attr) != dnnl_success ||
                        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    d.attr = attr;
    int bad = 1;
    /* Winograd with plan_tw's layers (else, or without it, direct) */
    for (int wino = e->tw.on; !no_attr && bad && wino >= 0; wino--) {
        const char *impl = NULL;
        bad = dnnl_dilated_convolution_backward_weights_desc_init(
                  &cd, wino ? dnnl_convolution_winograd : dnnl_convolution_direct, &d.src,
                  dw_md ? dw_md : &d.w_any, e->has_bias ? &d.b : NULL, &d.dst, d.strides,
                  d.dilates, d.pad_l, d.pad_r) != dnnl_success ||
              pd_create(pd, &cd, &d, e->eng, NULL);
        if (!bad && wino &&
            (dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl) || !impl ||
             !strstr(impl, "wino"))) {
            dnnl_primitive_desc_destroy(*pd);
            *pd = NULL;
            bad = 1;
        }
    }
    dnnl_primitive_attr_destroy(attr);
    return bad;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static int plan_chunk_mems(conv_dnnl *e, dnnl_primitive_desc_t pds[2], size_t w_bytes);

/* Whether the kernel gradient's chunks split the output channels: outputs
 * of at most CDN_SPLIT_PIXELS pixels in the blocked layouts, where oneDNN's
 * kernel gradient over half the batch runs well below its speed over the
 * whole (ResNet-18's last stage, 8 x 512 x 7 x 7, one thread: 11.2-12.2 ms
 * in two halves of the batch, 9.9-10.3 in two halves of the filters),
 * and nothing is left to sum. Two chunks, each over every image. */
#define CDN_SPLIT_PIXELS 64
static int plan_oc_split(conv_dnnl *e, dnnl_primitive_desc_t pds[2])
{
    const conv_geom *g = &e->g;
    const dnnl_blocking_desc_t *bs = &e->src.md.format_desc.blocking;
    const dnnl_blocking_desc_t *bd = &e->ddst.md.format_desc.blocking;
    e->oc_split = 0;
    if (g->groups != 1 || g->OH * g->OW > CDN_SPLIT_PIXELS || g->C % 16 || g->F % 32 ||
        bs->inner_nblks != 1 || bd->inner_nblks != 1 || bs->inner_blks[0] != 16 ||
        bd->inner_blks[0] != 16)
        return 0;
    const int64_t nf = g->F / 2;
    dnnl_dims_t wd = {nf, g->C, g->kh, g->kw}, fd = {g->F, g->C, g->kh, g->kw};
    dnnl_memory_desc_t half;
    const char *impl = NULL;
    const int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    int bad = dnnl_memory_desc_init_by_tag(&half, 4, wd, dnnl_f32, dnnl_OIhw16i16o) ||
              dnnl_memory_desc_init_by_tag(&e->dw_full, 4, fd, dnnl_f32, dnnl_OIhw16i16o) ||
              bw_create(e, g->N, nf, &half, &pds[0]);
    omp_set_num_threads(prev);
    if (!bad)
        bad = dnnl_primitive_desc_query(pds[0], dnnl_query_impl_info_str, 0, &impl) !=
                  dnnl_success ||
              !impl || !strncmp(impl, "ref", 3);
    if (bad) {
        dnnl_primitive_desc_destroy(pds[0]);
        pds[0] = NULL;
        return 0;
    }
    e->oc_split = 1;
    e->K = 2;
    e->ddc_bytes = ((size_t)(g->N * nf * g->OH * g->OW) * sizeof(float) + 63) / 64 * 64;
    for (int i = 0; i < 2; i++) {
        e->ch[i].n0 = 0;
        e->ch[i].n = g->N;
        e->ch[i].f0 = i * nf;
        e->ch[i].prim = 0;
    }
    return 1;
}

/* The chunks of the kernel gradient: a count fixed by the shapes; the
 * kernel buffer (w_bytes: the forward's and backward-data's kernels, the
 * larger). */
static int plan_chunks(conv_dnnl *e, dnnl_primitive_desc_t pds[2], size_t w_bytes)
{
    const conv_geom *g = &e->g;
    if (plan_oc_split(e, pds))
        return plan_chunk_mems(e, pds, w_bytes);
    const size_t wbytes = (size_t)(g->Kg * g->F) * sizeof(float);
    size_t k = wbytes ? CDN_PARTIAL_BYTES / wbytes : 1;
    if (k > CDN_MAX_CHUNKS)
        k = CDN_MAX_CHUNKS;
    if (k > (size_t)g->N)
        k = (size_t)g->N;
    if (k < 1)
        k = 1;
    /* a power of two: the chunks share out evenly over 2, 4, 8 threads */
    while (k & (k - 1))
        k &= k - 1;
    if (k < 2 && g->N >= 2)
        k = 2;
    const int64_t cb = (g->N + (int64_t)k - 1) / (int64_t)k;
    const int64_t K = (g->N + cb - 1) / cb, last = g->N - (K - 1) * cb;
    e->K = (int)K;
    const int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    int bad = bw_create(e, cb, g->F, NULL, &pds[0]);
    if (!bad && last != cb)
        bad = bw_create(e, last, g->F, query(pds[0], dnnl_query_diff_weights_md), &pds[1]);
    omp_set_num_threads(prev);
    if (bad)
        return 1;
    for (int64_t i = 0; i < K; i++) {
        e->ch[i].n0 = i * cb;
        e->ch[i].n = i == K - 1 ? last : cb;
        e->ch[i].prim = e->ch[i].n == cb ? 0 : 1;
    }
    return plan_chunk_mems(e, pds, w_bytes);
}

/* The chunks' primitives, memories and buffers (their shares planned). */
static int plan_chunk_mems(conv_dnnl *e, dnnl_primitive_desc_t pds[2], size_t w_bytes)
{
    const conv_geom *g = &e->g;
    const int64_t K = e->K;
    if (dnnl_primitive_create(&e->bw[0], pds[0]) ||
        (pds[1] && dnnl_primitive_create(&e->bw[1], pds[1])))
        return 1;
    const dnnl_memory_desc_t *dw_md = query(pds[0], dnnl_query_diff_weights_md);
    e->dw_floats = dnnl_memory_desc_get_size(e->oc_split ? &e->dw_full : dw_md) / sizeof(float);
    e->part_bytes = (e->dw_floats * sizeof(float) + 63) / 64 * 64;
    if (!(e->wbuf = take(e, e->wbuf_bytes = w_bytes)))
        return 1;
    e->ch_slots = e->nthreads < K ? e->nthreads : (int)K;
    e->ch_sb = 0;
    for (int k = 0; k < 2; k++)
        if (pds[k] && (scratch_of(pds[k]) + 63) / 64 * 64 > e->ch_sb)
            e->ch_sb = (scratch_of(pds[k]) + 63) / 64 * 64;
    for (int64_t i = 0; i < K; i++) {
        chunk *c = &e->ch[i];
        dnnl_primitive_desc_t pd = pds[c->prim];
        if (dnnl_stream_create(&c->strm, e->eng, dnnl_stream_default_flags) ||
            mem(e, &c->src, query(pd, dnnl_query_src_md)) ||
            mem(e, &c->ddst, query(pd, dnnl_query_diff_dst_md)) ||
            dnnl_memory_create(&c->dw, dw_md, e->eng, DNNL_MEMORY_NONE) ||
            mem(e, &c->scratch, query(pd, dnnl_query_scratchpad_md)))
            return 1;
        if (e->has_bias &&
            (!(c->db_buf = take(e, (size_t)(g->F / (e->oc_split ? K : 1)) * sizeof(float))) ||
             dnnl_memory_create(&c->db,
                                dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 1),
                                e->eng, c->db_buf)))
            return 1;
    }
    return 0;
}

/* Kernels: the tensor's layout, the forward's and backward-data's (both on
 * chunk 0's partial, see plan_chunks); the kernel gradient's back to the
 * tensor's, added into it by the reorder (a sum post-op). */
static int plan_weights(conv_dnnl *e, const descs *d, dnnl_primitive_desc_t fpd,
                        dnnl_primitive_desc_t bpd, dnnl_primitive_desc_t wpd)
{
    const dnnl_memory_desc_t *wf = query(fpd, dnnl_query_weights_md);
    const dnnl_memory_desc_t *wb = query(bpd, dnnl_query_weights_md);
    const dnnl_memory_desc_t *dw =
        e->oc_split ? &e->dw_full : query(wpd, dnnl_query_diff_weights_md);
    e->w_floats = (size_t)(e->g.Kg * e->g.F);
    if (mem(e, &e->wu, &d->w_user) || dnnl_memory_create(&e->wf, wf, e->eng, e->wbuf) ||
        reorder(e, &e->re_wf, &d->w_user, wf))
        return 1;
    if (dnnl_memory_desc_equal(wf, wb))
        e->wb = e->wf;
    else if (dnnl_memory_create(&e->wb, wb, e->eng, e->wbuf) ||
             reorder(e, &e->re_wb, &d->w_user, wb))
        return 1;
    else if (dnnl_memory_desc_get_size(wb) <= parts_bytes(e) &&
             (reorder(e, &e->re_fb, wf, wb) || mem(e, &e->wb_p, wb)))
        return 1;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int bad = dnnl_primitive_attr_create(&attr) || dnnl_post_ops_create(&po) ||
              dnnl_post_ops_append_sum(po, 1.0f) || dnnl_primitive_attr_set_post_ops(attr, po) ||
              dnnl_reorder_primitive_desc_create(&pd, dw, e->eng, &d->w_user, e->eng, attr) ||
              dnnl_primitive_create(&e->re_dw, pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (!bad)
        bad = reorder(e, &e->re_dw_set, dw, &d->w_user);
    return bad || mem(e, &e->dw_user, &d->w_user) ||
           dnnl_memory_create(&e->dw_sum, dw, e->eng, DNNL_MEMORY_NONE) ||
           mem(e, &e->bias, &d->b) ||
           !(e->bias_buf = take(e, (size_t)e->g.F * sizeof(float)));
}

/* Forward and backward-data in the layouts `blocked` asks for. The forward
 * always takes a bias (zeros without one): an epilogue folds one in. */
static int plan_main(conv_dnnl *e, descs *d, dnnl_primitive_desc_t *fpd,
                     dnnl_primitive_desc_t *bpd)
{
    dnnl_convolution_desc_t fd, bd;
    if (dnnl_dilated_convolution_forward_desc_init(
            &fd, dnnl_forward_training, dnnl_convolution_direct, &d->src, &d->w_any, &d->b,
            &d->dst, d->strides, d->dilates, d->pad_l, d->pad_r) != dnnl_success ||
        pd_create(fpd, &fd, d, e->eng, NULL))
        return 1;
    if (dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &d->src,
                                                         &d->w_any, &d->dst, d->strides,
                                                         d->dilates, d->pad_l,
                                                         d->pad_r) != dnnl_success ||
        pd_create(bpd, &bd, d, e->eng, *fpd))
        return 1;
    return 0;
}

/* Winograd slots' streams and memories. */
static void slots_release(wino_slot *slot)
{
    for (int i = 0; i < CDN_WINO_SLOTS; i++) {
        wino_slot *t = &slot[i];
        dnnl_memory_t tm[] = {t->xu, t->yu, t->src, t->dst, t->scratch};
        for (size_t k = 0; k < sizeof tm / sizeof tm[0]; k++)
            dnnl_memory_destroy(tm[k]);
        dnnl_stream_destroy(t->strm);
        memset(t, 0, sizeof *t);
    }
}

/* The channels-last forward's primitives and memories (its buffers stay). */
static void cl_release(conv_dnnl *e)
{
    dnnl_primitive_t ps[] = {e->cl.prim, e->cl.re_w, e->cl.re_x, e->cl.re_y, e->cl.re_y_in};
    dnnl_memory_t ms[] = {e->cl.src, e->cl.dst, e->cl.w, e->cl.scratch_m, e->cl.xu, e->cl.yu};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        dnnl_primitive_destroy(ps[i]);
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        dnnl_memory_destroy(ms[i]);
    e->cl.prim = e->cl.re_w = e->cl.re_x = e->cl.re_y = e->cl.re_y_in = NULL;
    e->cl.src = e->cl.dst = e->cl.w = e->cl.scratch_m = e->cl.xu = e->cl.yu = NULL;
    slots_release(e->cl.slot);
    e->cl.wino = e->cl.slots = 0;
    e->cl.xb = e->cl.yb = e->cl.sb = 0;
}

/* plan_tw's primitives, memories and buffers. */
static void tw_release(conv_dnnl *e)
{
    dnnl_primitive_t ps[] = {e->tw.fwd, e->tw.bwd_d, e->tw.re_wf, e->tw.re_wb};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        dnnl_primitive_destroy(ps[i]);
    dnnl_memory_destroy(e->tw.wf);
    dnnl_memory_destroy(e->tw.wb);
    slots_release(e->tw.slot);
    e->free_fn(e->tw.wbuf);
    e->free_fn(e->tw.own);
    memset(&e->tw, 0, sizeof e->tw);
}

void cdn_destroy(conv_dnnl *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->K; i++) {
        chunk *c = &e->ch[i];
        dnnl_memory_destroy(c->src);
        dnnl_memory_destroy(c->ddst);
        dnnl_memory_destroy(c->dw);
        dnnl_memory_destroy(c->db);
        dnnl_memory_destroy(c->scratch);
        dnnl_stream_destroy(c->strm);
        e->free_fn(c->db_buf);
    }
    port *ports[] = {&e->src, &e->dst, &e->ddst, &e->dsrc};
    for (int i = 0; i < 4; i++) {
        port_free(ports[i]);
        e->free_fn(ports[i]->buf);
    }
    dnnl_memory_t ms[] = {e->wu, e->wf, e->wb != e->wf ? e->wb : NULL, e->bias, e->scratch_m,
                          e->dw_sum, e->dw_user, e->wb_p};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        dnnl_memory_destroy(ms[i]);
    dnnl_primitive_t ps[] = {e->fwd,        e->post[0][1], e->post[1][0], e->post[1][1],
                             e->re_dst_in,  e->bwd_d,      e->bw[0],      e->bw[1],
                             e->re_wf,      e->re_wb,      e->re_dw,      e->re_dw_set,
                             e->re_fb};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        dnnl_primitive_destroy(ps[i]);
    cl_release(e);
    e->free_fn(e->cl.x_buf);
    e->free_fn(e->cl.y_buf);
    e->free_fn(e->cl.w_own);
    e->free_fn(e->cl.scratch);
    e->free_fn(e->cl.wown);
    e->free_fn(e->ch_own);
    tw_release(e);
    e->free_fn(e->bias_buf);
    e->free_fn(e->scratch);
    e->free_fn(e->xkeep);
    e->free_fn(e->wbuf);
    e->free_fn(e->parts_own);
    dnnl_stream_destroy(e->strm);
    dnnl_engine_destroy(e->eng);
    free(e);
}

/* Winograd slots: one per thread, no more than there are images. */
static int wino_slots(const conv_dnnl *e)
{
    const int64_t n = e->nthreads < e->g.N ? e->nthreads : e->g.N;
    return n < CDN_WINO_SLOTS ? (int)n : CDN_WINO_SLOTS;
}

static int blocked16(const port *p)
{
    const dnnl_blocking_desc_t *b = &p->md.format_desc.blocking;
    return p->md.format_kind == dnnl_blocked && b->inner_nblks == 1 && b->inner_blks[0] == 16 &&
           b->inner_idxs[0] == 1;
}

/* A 3x3, stride-1 layer on whole blocks of 16 channels, with outputs of at
 * least 28x28, in the blocked layout (NNP_CONV_WINOGRAD=0: never): its
 * forward, backward-data and kernel gradient on oneDNN's Winograd kernels,
 * one image per call of one-thread primitives (the kernel gradient in its
 * chunks, as always), so the same bits at any thread count. Measured per
 * image (bench/README.md): about twice the direct kernels' speed at 56x56
 * and 28x28, slower from 16x16 down. Called with one OpenMP thread;
 * 0 whether or not it is on, else an error. */
static int plan_tw(conv_dnnl *e, const descs *full)
{
    const conv_geom *g = &e->g;
    const char *env = getenv("NNP_CONV_WINOGRAD");
    if ((env && !strcmp(env, "0")) || !g->channels_first || g->groups != 1 || g->kh != 3 ||
        g->kw != 3 || g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || g->C % 16 ||
        g->F % 16 || g->OH * g->OW < 784 || !blocked16(&e->src) || !blocked16(&e->dst) ||
        !blocked16(&e->ddst) || !blocked16(&e->dsrc))
        return 0;
    descs d;
    make_descs(g, 1, 1, &d);
    d.attr = full->attr;
    dnnl_convolution_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    const char *fi = NULL, *bi = NULL;
    int no = dnnl_dilated_convolution_forward_desc_init(
                 &fd, dnnl_forward_training, dnnl_convolution_winograd, &d.src, &d.w_any, &d.b,
                 &d.dst, d.strides, d.dilates, d.pad_l, d.pad_r) != dnnl_success ||
             pd_create(&fpd, &fd, &d, e->eng, NULL) ||
             dnnl_dilated_convolution_backward_data_desc_init(
                 &bd, dnnl_convolution_winograd, &d.src, &d.w_any, &d.dst, d.strides, d.dilates,
                 d.pad_l, d.pad_r) != dnnl_success ||
             pd_create(&bpd, &bd, &d, e->eng, fpd) ||
             dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &fi) ||
             dnnl_primitive_desc_query(bpd, dnnl_query_impl_info_str, 0, &bi) || !fi || !bi ||
             !strstr(fi, "wino") || !strstr(bi, "wino");
    int bad = 0;
    if (!no) {
        const dnnl_memory_desc_t *wf = query(fpd, dnnl_query_weights_md);
        const dnnl_memory_desc_t *wb = query(bpd, dnnl_query_weights_md);
        const size_t sf = scratch_of(fpd), sbd = scratch_of(bpd);
        e->tw.sb = ((sf > sbd ? sf : sbd) + sizeof(float) + 63) / 64 * 64;
        dnnl_memory_desc_t smd;
        dnnl_dims_t sd = {(int64_t)(e->tw.sb / sizeof(float))};
        dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_f32, dnnl_x);
        e->tw.slots = wino_slots(e);
        e->tw.shared = dnnl_memory_desc_equal(wf, wb);
        bad = !(e->tw.wbuf = take(e, max_size(dnnl_memory_desc_get_size(wf),
                                              dnnl_memory_desc_get_size(wb)))) ||
              dnnl_memory_create(&e->tw.wf, wf, e->eng, e->tw.wbuf) ||
              dnnl_memory_create(&e->tw.wb, wb, e->eng, e->tw.wbuf) ||
              reorder(e, &e->tw.re_wf, &full->w_user, wf) ||
              reorder(e, &e->tw.re_wb, &full->w_user, wb) ||
              dnnl_primitive_create(&e->tw.fwd, fpd) || dnnl_primitive_create(&e->tw.bwd_d, bpd);
        for (int i = 0; i < e->tw.slots && !bad; i++) {
            wino_slot *t = &e->tw.slot[i];
            bad = dnnl_stream_create(&t->strm, e->eng, dnnl_stream_default_flags) ||
                  mem(e, &t->xu, &d.src) || mem(e, &t->yu, &d.dst) ||
                  mem(e, &t->scratch, &smd);
        }
        e->tw.on = !bad;
    }
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    return bad;
}

static int create_all(conv_dnnl *e, int nthreads)
{
    const conv_geom *g = &e->g;
    descs d;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL, wpd[2] = {NULL, NULL};
    int bad = dnnl_engine_create(&e->eng, dnnl_cpu, 0) != dnnl_success ||
              dnnl_stream_create(&e->strm, e->eng, dnnl_stream_default_flags) != dnnl_success;
    if (bad)
        return 1;
    const int prev = omp_get_max_threads();
    omp_set_num_threads(nthreads);
    d.attr = NULL;
    bad = dnnl_primitive_attr_create(&d.attr) != dnnl_success ||
          dnnl_primitive_attr_set_scratchpad_mode(d.attr, dnnl_scratchpad_mode_user);
    if (!bad) {
        /* channels_first: blocked inside; else (or when oneDNN has nothing
           for the blocked layout) the tensors' own */
        make_descs(g, g->N, g->channels_first, &d);
        bad = plan_main(e, &d, &fpd, &bpd);
        if (bad && g->channels_first) {
            dnnl_primitive_desc_destroy(fpd);
            dnnl_primitive_desc_destroy(bpd);
            fpd = bpd = NULL;
            make_descs(g, g->N, 0, &d);
            bad = plan_main(e, &d, &fpd, &bpd);
        }
    }
    if (!bad)
        bad = port_init(e, &e->src, &d.src_user, query(fpd, dnnl_query_src_md), 1) ||
              port_init(e, &e->dst, &d.dst_user, query(fpd, dnnl_query_dst_md), 0) ||
              port_init(e, &e->ddst, &d.dst_user, query(bpd, dnnl_query_diff_dst_md), 1) ||
              port_init(e, &e->dsrc, &d.src_user, query(bpd, dnnl_query_diff_src_md), 0);
    if (!bad) {
        /* oneDNN has no fast backward-data for some shapes (3 input
           channels): its reference loop is slower than im2col by 100x */
        const char *impl = NULL;
        e->bwd_d_ref = dnnl_primitive_desc_query(bpd, dnnl_query_impl_info_str, 0, &impl) ==
                           dnnl_success &&
                       impl && !strncmp(impl, "ref", 3);
    }
    if (!bad) {
        omp_set_num_threads(1);
        bad = plan_tw(e, &d);
        omp_set_num_threads(nthreads);
    }
    if (!bad)
        bad = plan_chunks(e, wpd,
                          max_size(dnnl_memory_desc_get_size(query(fpd, dnnl_query_weights_md)),
                                   dnnl_memory_desc_get_size(query(bpd, dnnl_query_weights_md)))) ||
              plan_weights(e, &d, fpd, bpd, wpd[0]);
    if (!bad)
        e->ws_bytes = plan_workspace(e);
    if (!bad) {
        size_t sb = scratch_of(fpd);
        if (scratch_of(bpd) > sb)
            sb = scratch_of(bpd);
        dnnl_memory_desc_t smd;
        dnnl_dims_t sd = {(int64_t)(sb / sizeof(float)) + 1};
        dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_f32, dnnl_x);
        bad = !(e->scratch = take(e, sb + sizeof(float))) ||
              dnnl_memory_create(&e->scratch_m, &smd, e->eng, e->scratch) ||
              dnnl_primitive_create(&e->fwd, fpd) || dnnl_primitive_create(&e->bwd_d, bpd);
    }
    omp_set_num_threads(prev);
    dnnl_primitive_attr_destroy(d.attr);
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_desc_destroy(wpd[0]);
    dnnl_primitive_desc_destroy(wpd[1]);
    return bad;
}

conv_dnnl *cdn_create(const conv_geom *g, int has_bias, int nthreads, cdn_alloc alloc,
                      cdn_free free_fn, size_t *bytes)
{
    *bytes = 0;
    if (g->N < 1 || g->OH < 1 || g->OW < 1)
        return NULL;
    conv_dnnl *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->g = *g;
    e->has_bias = has_bias;
    e->alloc = alloc;
    e->free_fn = free_fn;
    e->nthreads = nthreads < 1 ? 1 : nthreads;
    if (create_all(e, e->nthreads)) {
        cdn_destroy(e);
        return NULL;
    }
    *bytes = e->bytes;
    return e;
}

/* ---- execution ---- */

static void run(dnnl_primitive_t p, dnnl_stream_t s, int n, const dnnl_exec_arg_t *args)
{
    dnnl_primitive_execute(p, s, n, args);
}

static void run_reorder(conv_dnnl *e, dnnl_primitive_t p, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    run(p, e->strm, 2, a);
}

/* Points a port's tensor side at t and, for an input, fills its buffer. */
static dnnl_memory_t port_in(conv_dnnl *e, port *p, const float *t)
{
    dnnl_memory_set_data_handle(p->mu, (void *)t);
    if (p->re)
        run_reorder(e, p->re, p->mu, p->mi);
    return p->mi;
}

static dnnl_memory_t port_out_begin(port *p, float *t)
{
    dnnl_memory_set_data_handle(p->mu, t);
    return p->mi;
}

static void port_out_end(conv_dnnl *e, port *p)
{
    if (p->re)
        run_reorder(e, p->re, p->mi, p->mu);
}

/* The offset, in elements, of logical index idx in a blocked layout. */
static int64_t md_offset(const dnnl_memory_desc_t *md, const int64_t *idx)
{
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int64_t blk[DNNL_MAX_NDIMS], rem[DNNL_MAX_NDIMS] = {0}, off = md->offset0;
    for (int d = 0; d < DNNL_MAX_NDIMS; d++)
        blk[d] = 1;
    for (int k = 0; k < b->inner_nblks; k++)
        blk[b->inner_idxs[k]] *= b->inner_blks[k];
    for (int d = 0; d < md->ndims; d++) {
        off += idx[d] / blk[d] * b->strides[d];
        rem[d] = idx[d] % blk[d];
    }
    /* inner blocks, the last listed varying fastest */
    int64_t inner = 0, mult = 1;
    for (int k = b->inner_nblks - 1; k >= 0; k--) {
        const int d = (int)b->inner_idxs[k];
        inner += rem[d] % b->inner_blks[k] * mult;
        rem[d] /= b->inner_blks[k];
        mult *= b->inner_blks[k];
    }
    return off + inner;
}

/* Reorders the kernel into w (on buffer buf) with re, times scale per
 * output channel when scale is set (in w's own layout, in place: logical
 * dims (F, C, kh, kw), or (G, F/G, C/G, kh, kw) with groups). */
static void load_w(conv_dnnl *e, dnnl_primitive_t re, dnnl_memory_t w, float *buf,
                   const float *kernel, const float *scale)
{
    dnnl_memory_set_data_handle(e->wu, (void *)kernel);
    run_reorder(e, re, e->wu, w);
    dnnl_stream_wait(e->strm);
    if (scale) {
        const dnnl_memory_desc_t *md = NULL;
        dnnl_memory_get_memory_desc(w, &md);
        const conv_geom *g = &e->g;
        const int grouped = md->ndims == 5;
        for (int64_t f = 0; f < g->F; f++)
            for (int64_t c = 0; c < g->Cg; c++)
                for (int64_t i = 0; i < g->kh; i++)
                    for (int64_t j = 0; j < g->kw; j++) {
                        const int64_t gi[5] = {f / g->Fg, f % g->Fg, c, i, j};
                        const int64_t pi[4] = {f, c, i, j};
                        buf[md_offset(md, grouped ? gi : pi)] *= scale[f];
                    }
    }
}

/* wf from the kernel (times scale when set); the channels-last forward's
 * kernel, on the same buffer, is gone. */
static void load_kernel(conv_dnnl *e, const float *kernel, const float *scale)
{
    load_w(e, e->re_wf, e->wf, e->wbuf, kernel, scale);
    e->wf_valid = 1;
    e->wf_folded = scale != NULL;
    if (!e->cl.w_own)
        e->cl.w_valid = 0;
}

/* The forward's bias: bias * scale + shift, or shift, with an affine;
 * zeros without a bias. */
static const float *fwd_bias(conv_dnnl *e, const float *bias, const cdn_epilogue *epi)
{
    const float *scale = epi ? epi->scale : NULL;
    if (scale) {
        for (int64_t f = 0; f < e->g.F; f++)
            e->bias_buf[f] = (bias ? bias[f] * scale[f] : 0.0f) + epi->shift[f];
        return e->bias_buf;
    }
    if (!bias) {
        memset(e->bias_buf, 0, (size_t)e->g.F * sizeof(float));
        return e->bias_buf;
    }
    return bias;
}

/* The Winograd forward (fwd) or backward-data of plan_tw, image by image:
 * in and out the whole batch's blocked tensors (x and y, or dy and dx),
 * scratch the slots' scratchpads. */
static void tw_images(conv_dnnl *e, int fwd, dnnl_memory_t in, dnnl_memory_t out, char *scratch,
                      int nthreads)
{
    const conv_geom *g = &e->g;
    char *ib = NULL, *ob = NULL;
    dnnl_memory_get_data_handle(in, (void **)&ib);
    dnnl_memory_get_data_handle(out, (void **)&ob);
    const size_t xi = (size_t)(g->C * g->H * g->W) * sizeof(float);
    const size_t yi = (size_t)(g->F * g->OH * g->OW) * sizeof(float);
    const int nt = nthreads < e->tw.slots ? nthreads : e->tw.slots;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t n = 0; n < g->N; n++) {
        const int i = omp_get_thread_num();
        wino_slot *t = &e->tw.slot[i];
        omp_set_num_threads(1);
        dnnl_memory_set_data_handle(t->xu, (fwd ? ib : ob) + (size_t)n * xi);
        dnnl_memory_set_data_handle(t->yu, (fwd ? ob : ib) + (size_t)n * yi);
        dnnl_memory_set_data_handle(t->scratch, scratch + (size_t)i * e->tw.sb);
        if (fwd) {
            dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, t->xu},
                                    {DNNL_ARG_WEIGHTS, e->tw.wf},
                                    {DNNL_ARG_BIAS, e->bias},
                                    {DNNL_ARG_DST, t->yu},
                                    {DNNL_ARG_SCRATCHPAD, t->scratch}};
            run(e->tw.fwd, t->strm, 5, a);
        } else {
            dnnl_exec_arg_t a[4] = {{DNNL_ARG_DIFF_DST, t->yu},
                                    {DNNL_ARG_WEIGHTS, e->tw.wb},
                                    {DNNL_ARG_DIFF_SRC, t->xu},
                                    {DNNL_ARG_SCRATCHPAD, t->scratch}};
            run(e->tw.bwd_d, t->strm, 4, a);
        }
        dnnl_stream_wait(t->strm);
    }
}

/* plan_tw's kernel `which` (TW_FWD, TW_BWD) from the tensor's. */
static void tw_load(conv_dnnl *e, int which, const float *kernel)
{
    load_w(e, which == TW_FWD ? e->tw.re_wf : e->tw.re_wb, which == TW_FWD ? e->tw.wf : e->tw.wb,
           NULL, kernel, NULL);
    e->tw.held = which;
}

/* The Winograd forward (plan_wino): image by image, each on one thread. */
static void forward_wino(conv_dnnl *e, const float *x, float *y, char *ws, int nthreads)
{
    const conv_geom *g = &e->g;
    char *base = ws ? ws : e->cl.wown;
    const size_t xi = (size_t)(g->C * g->H * g->W) * sizeof(float);
    const size_t yi = (size_t)(g->F * g->OH * g->OW) * sizeof(float);
    const size_t per = e->cl.xb + e->cl.yb + e->cl.sb;
    const int nt = nthreads < e->cl.slots ? nthreads : e->cl.slots;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t n = 0; n < g->N; n++) {
        const int i = omp_get_thread_num();
        wino_slot *t = &e->cl.slot[i];
        char *b = base + (size_t)i * per;
        omp_set_num_threads(1);
        dnnl_memory_set_data_handle(t->xu, (char *)x + (size_t)n * xi);
        dnnl_memory_set_data_handle(t->yu, (char *)y + (size_t)n * yi);
        dnnl_memory_set_data_handle(t->src, b);
        dnnl_memory_set_data_handle(t->dst, b + e->cl.xb);
        dnnl_memory_set_data_handle(t->scratch, b + e->cl.xb + e->cl.yb);
        dnnl_exec_arg_t rx[2] = {{DNNL_ARG_FROM, t->xu}, {DNNL_ARG_TO, t->src}};
        run(e->cl.re_x, t->strm, 2, rx);
        if (e->cl.sum) {
            dnnl_exec_arg_t ri[2] = {{DNNL_ARG_FROM, t->yu}, {DNNL_ARG_TO, t->dst}};
            run(e->cl.re_y_in, t->strm, 2, ri);
        }
        dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, t->src},
                                {DNNL_ARG_WEIGHTS, e->cl.w},
                                {DNNL_ARG_BIAS, e->bias},
                                {DNNL_ARG_DST, t->dst},
                                {DNNL_ARG_SCRATCHPAD, t->scratch}};
        run(e->cl.prim, t->strm, 5, a);
        dnnl_exec_arg_t ry[2] = {{DNNL_ARG_FROM, t->dst}, {DNNL_ARG_TO, t->yu}};
        run(e->cl.re_y, t->strm, 2, ry);
        dnnl_stream_wait(t->strm);
    }
}

/* The kernel times scale per output channel, in the tensor's layout on
 * tmp (w_floats), reordered into w (the Winograd kernels' own layout is
 * opaque). */
static void load_w_scaled(conv_dnnl *e, dnnl_primitive_t re, dnnl_memory_t w,
                          const float *kernel, const float *scale, float *tmp)
{
    const int64_t F = e->g.F, n = (int64_t)e->w_floats;
    for (int64_t i = 0; i < n; i++) /* [kh][kw][C][F]: F fastest */
        tmp[i] = kernel[i] * scale[i % F];
    load_w(e, re, w, NULL, tmp, NULL);
}

/* An inference forward on the channels-last primitive: x and y as they are. */
static void forward_cl(conv_dnnl *e, const float *x, const float *kernel, const float *bias,
                       float *y, const cdn_epilogue *epi, char *ws, int nthreads)
{
    const float *scale = epi ? epi->scale : NULL;
    if (!e->cl.w_valid || e->cl.w_folded != (scale != NULL) || (scale && epi->changed)) {
        float *buf = e->cl.w_own ? e->cl.w_own : e->wbuf;
        if (e->cl.wino && scale)
            load_w_scaled(e, e->cl.re_w, e->cl.w, kernel, scale,
                          (float *)(ws ? ws : e->cl.wown));
        else
            load_w(e, e->cl.re_w, e->cl.w, buf, kernel, scale);
        e->cl.w_valid = 1;
        e->cl.w_folded = scale != NULL;
        if (!e->cl.w_own)
            e->wf_valid = 0;
    }
    dnnl_memory_set_data_handle(e->bias, (void *)fwd_bias(e, bias, epi));
    if (e->cl.wino) {
        forward_wino(e, x, y, ws, nthreads);
        return;
    }
    /* an x or y in another layout: through the primitive's own buffer */
    if (!e->cl.re_x) {
        dnnl_memory_set_data_handle(e->cl.src, (void *)x);
    } else {
        dnnl_memory_set_data_handle(e->cl.xu, (void *)x);
        run_reorder(e, e->cl.re_x, e->cl.xu, e->cl.src);
    }
    if (!e->cl.re_y) {
        dnnl_memory_set_data_handle(e->cl.dst, y);
    } else {
        dnnl_memory_set_data_handle(e->cl.yu, y);
        if (e->cl.sum)
            run_reorder(e, e->cl.re_y_in, e->cl.yu, e->cl.dst);
    }
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, e->cl.src},
                            {DNNL_ARG_WEIGHTS, e->cl.w},
                            {DNNL_ARG_BIAS, e->bias},
                            {DNNL_ARG_DST, e->cl.dst},
                            {DNNL_ARG_SCRATCHPAD, e->cl.scratch_m}};
    run(e->cl.prim, e->strm, 5, a);
    if (e->cl.re_y)
        run_reorder(e, e->cl.re_y, e->cl.dst, e->cl.yu);
}

void cdn_forward(conv_dnnl *e, const float *x, const float *kernel, const float *bias, float *y,
                 int training, const cdn_epilogue *epi, unsigned cl, int keep_x, void *ws,
                 int nthreads)
{
    const int prev = omp_get_max_threads();
    omp_set_num_threads(nthreads < 1 ? 1 : nthreads);
    e->xkeep_of = NULL;
    /* a channels-last layer's inference forward on Winograd (cdn_plan_wino_cl)
       when it was planned with these post-ops */
    const int wino_cl = (cl & CDN_INFER) && !e->g.channels_first && e->cl.wino &&
                        e->cl.sum == (epi && epi->sum) && e->cl.relu == (epi && epi->relu);
    if (wino_cl && training)
        e->cl.w_valid = 0;
    if ((cl & (CDN_X_NHWC | CDN_Y_NHWC)) || wino_cl) {
        forward_cl(e, x, kernel, bias, y, epi, ws, nthreads < 1 ? 1 : nthreads);
        dnnl_stream_wait(e->strm);
        omp_set_num_threads(prev);
        return;
    }
    port_bind(e, &e->src, ws);
    port_bind(e, &e->dst, ws);
    /* (own port buffers: the src port's holds it till the backward) */
    if (keep_x && e->src.re && !e->src.buf && !e->xkeep)
        e->xkeep = take(e, e->src.bytes);
    if (keep_x && e->src.re && (e->src.buf || e->xkeep)) {
        if (!e->src.buf)
            dnnl_memory_set_data_handle(e->src.mi, e->xkeep);
        e->xkeep_of = x;
    }
    const float *scale = epi ? epi->scale : NULL;
    const int sum = epi && epi->sum, relu = epi && epi->relu;
    if (e->tw.on && !scale && !sum && !relu) {
        if (training || e->tw.held != TW_FWD)
            tw_load(e, TW_FWD, kernel);
        dnnl_memory_set_data_handle(e->bias, (void *)fwd_bias(e, bias, epi));
        dnnl_memory_t src = port_in(e, &e->src, x);
        dnnl_stream_wait(e->strm);
        tw_images(e, 1, src, port_out_begin(&e->dst, y),
                  ws ? (char *)ws + e->tw.off_f : e->tw.own, nthreads < 1 ? 1 : nthreads);
        port_out_end(e, &e->dst);
        dnnl_stream_wait(e->strm);
        omp_set_num_threads(prev);
        return;
    }
    if (training || !e->wf_valid || e->wf_folded != (scale != NULL) || (scale && epi->changed))
        load_kernel(e, kernel, scale);
    dnnl_memory_set_data_handle(e->bias, (void *)fwd_bias(e, bias, epi));
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, port_in(e, &e->src, x)},
                            {DNNL_ARG_WEIGHTS, e->wf},
                            {DNNL_ARG_BIAS, e->bias},
                            {DNNL_ARG_DST, port_out_begin(&e->dst, y)},
                            {DNNL_ARG_SCRATCHPAD, e->scratch_m}};
    /* a sum adds what y holds: in the primitive's layout first */
    if (sum && e->dst.re)
        run_reorder(e, e->re_dst_in, e->dst.mu, e->dst.mi);
    run(sum || relu ? e->post[sum][relu] : e->fwd, e->strm, 5, a);
    port_out_end(e, &e->dst);
    dnnl_stream_wait(e->strm);
    omp_set_num_threads(prev);
}

int cdn_plan_post(conv_dnnl *e, int sum, int relu)
{
    sum = sum != 0;
    relu = relu != 0;
    if (!sum && !relu)
        return 0;
    if (e->post[sum][relu] && (!sum || !e->dst.re || e->re_dst_in))
        return 0;
    const int prev = omp_get_max_threads();
    omp_set_num_threads(e->nthreads);
    const_dnnl_primitive_desc_t fpd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_convolution_desc_t fd;
    descs d;
    make_descs(&e->g, e->g.N, 0, &d);
    int bad = dnnl_primitive_get_primitive_desc(e->fwd, &fpd) != dnnl_success ||
              dnnl_primitive_attr_create(&attr) != dnnl_success ||
              dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ||
              dnnl_post_ops_create(&po) != dnnl_success ||
              (sum && dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success) ||
              (relu && dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) !=
                           dnnl_success) ||
              dnnl_primitive_attr_set_post_ops(attr, po);
    /* the plain forward's layouts, so that the same buffers serve both */
    const_dnnl_primitive_desc_t q = fpd;
    if (!bad && !e->post[sum][relu])
        bad = dnnl_dilated_convolution_forward_desc_init(
                  &fd, dnnl_forward_training, dnnl_convolution_direct,
                  dnnl_primitive_desc_query_md(q, dnnl_query_src_md, 0),
                  dnnl_primitive_desc_query_md(q, dnnl_query_weights_md, 0), &d.b,
                  dnnl_primitive_desc_query_md(q, dnnl_query_dst_md, 0), d.strides, d.dilates,
                  d.pad_l, d.pad_r) != dnnl_success ||
              dnnl_primitive_desc_create(&pd, &fd, attr, e->eng, NULL) != dnnl_success ||
              /* it runs on the plain forward's scratchpad */
              scratch_of(pd) > scratch_of((dnnl_primitive_desc_t)q) ||
              dnnl_primitive_create(&e->post[sum][relu], pd) != dnnl_success;
    /* a sum into a plain y the primitive reads in its own layout */
    if (!bad && sum && e->dst.re && !e->re_dst_in)
        bad = reorder(e, &e->re_dst_in, &d.dst_user, &e->dst.md);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    omp_set_num_threads(prev);
    return bad;
}

/* The channels-last forward's kernel buffer: w_own when the primitive's
 * kernel (wbytes) does not fit the forward's buffer; 0 on success. */
static int cl_kernel_buffer(conv_dnnl *e, size_t wbytes)
{
    if (wbytes <= e->cl.w_own_bytes)
        return 0;
    e->free_fn(e->cl.w_own);
    e->cl.w_own = NULL;
    e->cl.w_own_bytes = 0;
    if (wbytes <= e->wbuf_bytes)
        return 0;
    if (!(e->cl.w_own = take(e, wbytes)))
        return 1;
    e->cl.w_own_bytes = wbytes;
    return 0;
}

/* An inference forward's primitive descriptor on d's operands (user
 * scratchpad) with algorithm alg and the post-ops asked for, and its
 * implementation's name; 0 on success. */
static int infer_pd(conv_dnnl *e, const descs *d, dnnl_alg_kind_t alg, int sum, int relu,
                    dnnl_primitive_desc_t *pd, const char **impl)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_convolution_desc_t fd;
    const int bad =
        dnnl_primitive_attr_create(&attr) != dnnl_success ||
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ||
        dnnl_post_ops_create(&po) != dnnl_success ||
        (sum && dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success) ||
        (relu &&
         dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) != dnnl_success) ||
        dnnl_primitive_attr_set_post_ops(attr, po) ||
        dnnl_dilated_convolution_forward_desc_init(
            &fd, dnnl_forward_inference, alg, &d->src, &d->w_any, &d->b, &d->dst, d->strides,
            d->dilates, d->pad_l, d->pad_r) != dnnl_success ||
        dnnl_primitive_desc_create(pd, &fd, attr, e->eng, NULL) != dnnl_success ||
        dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, impl) != dnnl_success;
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return bad;
}

/* A 3x3, stride-1 convolution on whole blocks of 16 channels, on two
 * images or more (NNP_CONV_WINOGRAD=0: never): oneDNN's Winograd kernels
 * (4x3 or 2x3 tiles, several times fewer multiplications) in the blocked
 * layout, one image per call of a one-thread primitive, images spread over
 * the threads, each through its own slot: every image's bits the same at
 * any thread count (oneDNN's own threading of them changes its blocking
 * with the thread count, and so the rounding). One image keeps the
 * direct kernels with all threads on it. 0: planned (e->cl). */
static int plan_wino(conv_dnnl *e, unsigned io, int sum, int relu)
{
    const conv_geom *g = &e->g;
    const char *env = getenv("NNP_CONV_WINOGRAD");
    if ((env && !strcmp(env, "0")) || g->N < 2 || g->groups != 1 || g->kh != 3 || g->kw != 3 ||
        g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || g->C % 16 || g->F % 16
        || g->OH * g->OW < 16)
        return 1;
    dnnl_primitive_desc_t pd = NULL;
    descs d;
    make_descs(g, 1, 1, &d);
    const char *impl = NULL;
    int bad = infer_pd(e, &d, dnnl_convolution_winograd, sum, relu, &pd, &impl);
    bad = bad || !impl || !strstr(impl, "wino");
    const dnnl_memory_desc_t *wmd = bad ? NULL : query(pd, dnnl_query_weights_md);
    bad = bad || cl_kernel_buffer(e, dnnl_memory_desc_get_size(wmd));
    dnnl_memory_desc_t xu, yu; /* one image of the tensors */
    act_md(&xu, 1, g->C, g->H, g->W, io & CDN_X_NHWC ? dnnl_nhwc : dnnl_nchw);
    act_md(&yu, 1, g->F, g->OH, g->OW, io & CDN_Y_NHWC ? dnnl_nhwc : dnnl_nchw);
    const size_t sb = bad ? 0 : (scratch_of(pd) + sizeof(float) + 63) / 64 * 64;
    dnnl_memory_desc_t smd;
    dnnl_dims_t sd = {(int64_t)(sb / sizeof(float))};
    dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_f32, dnnl_x);
    if (!bad)
        bad = dnnl_memory_create(&e->cl.w, wmd, e->eng,
                                 e->cl.w_own ? (void *)e->cl.w_own : (void *)e->wbuf) ||
              reorder(e, &e->cl.re_w, &d.w_user, wmd) || reorder(e, &e->cl.re_x, &xu, &d.src) ||
              reorder(e, &e->cl.re_y, &d.dst, &yu) ||
              (sum && reorder(e, &e->cl.re_y_in, &yu, &d.dst)) ||
              dnnl_primitive_create(&e->cl.prim, pd) != dnnl_success;
    const int slots = wino_slots(e);
    for (int i = 0; i < slots && !bad; i++) {
        wino_slot *t = &e->cl.slot[i];
        bad = dnnl_stream_create(&t->strm, e->eng, dnnl_stream_default_flags) ||
              mem(e, &t->xu, &xu) || mem(e, &t->yu, &yu) || mem(e, &t->src, &d.src) ||
              mem(e, &t->dst, &d.dst) || mem(e, &t->scratch, &smd);
    }
    if (!bad) {
        e->cl.wino = 1;
        e->cl.slots = slots;
        e->cl.xb = (dnnl_memory_desc_get_size(&d.src) + 63) / 64 * 64;
        e->cl.yb = (dnnl_memory_desc_get_size(&d.dst) + 63) / 64 * 64;
        e->cl.sb = sb;
        e->cl.io = io;
        e->cl.sum = sum;
        e->cl.relu = relu;
    } else {
        cl_release(e);
    }
    dnnl_primitive_desc_destroy(pd);
    return bad;
}

void cdn_plan_wino_cl(conv_dnnl *e, int sum, int relu)
{
    sum = sum != 0;
    relu = relu != 0;
    if (e->g.channels_first || (e->cl.wino && e->cl.sum == sum && e->cl.relu == relu))
        return;
    cl_release(e);
    e->cl.w_valid = 0;
    const int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    plan_wino(e, CDN_X_NHWC | CDN_Y_NHWC, sum, relu); /* (else the direct kernels) */
    omp_set_num_threads(prev);
}

int cdn_plan_nhwc(conv_dnnl *e, unsigned io, int sum, int relu)
{
    sum = sum != 0;
    relu = relu != 0;
    if (!io || !e->g.channels_first || e->g.groups != 1)
        return !io ? 0 : 1;
    if (e->cl.prim && e->cl.io == io && e->cl.sum == sum && e->cl.relu == relu)
        return 0;
    cl_release(e);
    e->cl.w_valid = 0;
    const int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    if (plan_wino(e, io, sum, relu) == 0) {
        omp_set_num_threads(prev);
        return 0;
    }
    omp_set_num_threads(e->nthreads);
    const conv_geom *g = &e->g;
    dnnl_primitive_desc_t pd = NULL;
    descs d;
    make_descs(g, g->N, 0, &d);
    /* oneDNN's channels-last (brgemm) kernels are the faster ones but for
       the smallest images (ResNet's 2x2 at 64x64 input: 1.6 vs 2.3 ms),
       where its blocked kernels run, between reorders of a few KB */
    const int blk = g->OH * g->OW < 16 && g->Cg >= 16 && g->Fg >= 16;
    const dnnl_format_tag_t tag = blk ? dnnl_nChw16c : dnnl_nhwc;
    act_md(&d.src, g->N, g->C, g->H, g->W, tag);
    act_md(&d.dst, g->N, g->F, g->OH, g->OW, tag);
    dnnl_memory_desc_t xu, yu; /* the tensors' */
    act_md(&xu, g->N, g->C, g->H, g->W, io & CDN_X_NHWC ? dnnl_nhwc : dnnl_nchw);
    act_md(&yu, g->N, g->F, g->OH, g->OW, io & CDN_Y_NHWC ? dnnl_nhwc : dnnl_nchw);
    const int rx = !dnnl_memory_desc_equal(&xu, &d.src), ry = !dnnl_memory_desc_equal(&yu, &d.dst);
    const char *impl = NULL;
    int bad = infer_pd(e, &d, dnnl_convolution_direct, sum, relu, &pd, &impl);
    /* only where oneDNN has a fast kernel for these layouts */
    bad = bad || !impl || !strncmp(impl, "ref", 3) || strstr(impl, "gemm") != NULL;
    const dnnl_memory_desc_t *wmd = bad ? NULL : query(pd, dnnl_query_weights_md);
    const size_t wbytes = wmd ? dnnl_memory_desc_get_size(wmd) : 0, sb = bad ? 0 : scratch_of(pd);
    bad = bad || cl_kernel_buffer(e, wbytes);
    if (!bad) { /* its scratchpad, one float at least */
        e->free_fn(e->cl.scratch);
        e->cl.scratch = take(e, sb + sizeof(float));
        bad = !e->cl.scratch;
    }
    dnnl_memory_desc_t smd;
    dnnl_dims_t sd = {(int64_t)(sb / sizeof(float)) + 1};
    dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_f32, dnnl_x);
    cl_release(e);
    /* operands in another layout get a buffer in the primitive's (its
       size is the same for a geometry: made once) */
    if (!bad && rx)
        bad = (!e->cl.x_buf && !(e->cl.x_buf = take(e, dnnl_memory_desc_get_size(&d.src)))) ||
              mem(e, &e->cl.xu, &xu) || reorder(e, &e->cl.re_x, &xu, &d.src);
    if (!bad && ry)
        bad = (!e->cl.y_buf && !(e->cl.y_buf = take(e, dnnl_memory_desc_get_size(&d.dst)))) ||
              mem(e, &e->cl.yu, &yu) || reorder(e, &e->cl.re_y, &d.dst, &yu) ||
              (sum && reorder(e, &e->cl.re_y_in, &yu, &d.dst));
    if (!bad)
        bad = dnnl_memory_create(&e->cl.src, &d.src, e->eng,
                                 rx ? (void *)e->cl.x_buf : DNNL_MEMORY_NONE) ||
              dnnl_memory_create(&e->cl.dst, &d.dst, e->eng,
                                 ry ? (void *)e->cl.y_buf : DNNL_MEMORY_NONE) ||
              dnnl_memory_create(&e->cl.w, wmd, e->eng,
                                 e->cl.w_own ? (void *)e->cl.w_own : (void *)e->wbuf) ||
              dnnl_memory_create(&e->cl.scratch_m, &smd, e->eng, e->cl.scratch) ||
              reorder(e, &e->cl.re_w, &d.w_user, wmd) ||
              dnnl_primitive_create(&e->cl.prim, pd) != dnnl_success;
    if (!bad) {
        e->cl.io = io;
        e->cl.sum = sum;
        e->cl.relu = relu;
    }
    dnnl_primitive_desc_destroy(pd);
    omp_set_num_threads(prev);
    return bad;
}

/* acc[i] += p[i]: each element one add, so a sum over partials added one
 * after another has the same bits however the elements are split. */
#define CDN_SUM_TILE 2048
__attribute__((target_clones("avx512f", "default"))) static void
add_span(float *restrict acc, const float *restrict p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        acc[i] += p[i];
}

/* Chunk k's partial in this backward (parts: the first one's). */
static float *part_of(const conv_dnnl *e, char *parts, int k)
{
    return (float *)(parts + (size_t)k * e->part_bytes);
}

/* The kernel gradient: chunk partials (at parts), in parallel, one thread
 * each, summed into the first. */
static void weight_grads(conv_dnnl *e, dnnl_memory_t src, dnnl_memory_t ddst, char *parts,
                         char *scratch, int nthreads)
{
    const conv_geom *g = &e->g;
    char *sb = NULL, *db = NULL;
    dnnl_memory_get_data_handle(src, (void **)&sb);
    dnnl_memory_get_data_handle(ddst, (void **)&db);
    const size_t s_img = e->src.bytes / (size_t)g->N, d_img = e->ddst.bytes / (size_t)g->N;
    const int K = e->K;
#pragma omp parallel for schedule(dynamic, 1) \
    num_threads(nthreads < e->ch_slots ? nthreads : e->ch_slots)
    for (int k = 0; k < K; k++) {
        chunk *c = &e->ch[k];
        omp_set_num_threads(1);
        dnnl_memory_set_data_handle(c->scratch, scratch + (size_t)omp_get_thread_num() * e->ch_sb);
        dnnl_memory_set_data_handle(c->src, sb + (size_t)c->n0 * s_img);
        if (e->oc_split) {
            /* its output channels of every image, dense; its rows of the
               kernel gradient (whole blocks of 16 filters) */
            char *dc = parts + e->part_bytes + (size_t)k * e->ddc_bytes;
            const size_t share = d_img / (size_t)K;
            for (int64_t n = 0; n < g->N; n++)
                memcpy(dc + (size_t)n * share, db + (size_t)n * d_img + (size_t)k * share, share);
            dnnl_memory_set_data_handle(c->ddst, dc);
            dnnl_memory_set_data_handle(c->dw, (float *)parts + (size_t)c->f0 * (e->dw_floats /
                                                                               (size_t)g->F));
        } else {
            dnnl_memory_set_data_handle(c->ddst, db + (size_t)c->n0 * d_img);
            dnnl_memory_set_data_handle(c->dw, part_of(e, parts, k));
        }
        dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, c->src},
                                {DNNL_ARG_DIFF_DST, c->ddst},
                                {DNNL_ARG_DIFF_WEIGHTS, c->dw},
                                {DNNL_ARG_SCRATCHPAD, c->scratch},
                                {DNNL_ARG_DIFF_BIAS, c->db}};
        run(e->bw[c->prim], c->strm, e->has_bias ? 5 : 4, a);
        dnnl_stream_wait(c->strm);
    }
    /* partials summed in chunk order into chunk 0's, tile by tile (a tile
       of chunk 0's stays in L1 while the others are added to it) */
    if (K > 1 && !e->oc_split) {
        const int64_t n = (int64_t)e->dw_floats, tiles = (n + CDN_SUM_TILE - 1) / CDN_SUM_TILE;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (n >= 65536)
        for (int64_t t = 0; t < tiles; t++) {
            const int64_t i0 = t * CDN_SUM_TILE, m = n - i0 < CDN_SUM_TILE ? n - i0 : CDN_SUM_TILE;
            for (int k = 1; k < K; k++)
                add_span(part_of(e, parts, 0) + i0, part_of(e, parts, k) + i0, m);
        }
    }
}

/* dx from ddst (bound), on the backward-data primitive; parts: the kernel
 * gradient's partials, free till then (NULL: none). */
static void backward_data(conv_dnnl *e, const float *kernel, dnnl_memory_t ddst, float *dx,
                          char *parts, char *tw_scratch, int nthreads)
{
    if (e->tw.on && tw_scratch) {
        if (e->tw.held != TW_BWD && !(e->tw.shared && e->tw.held == TW_FWD))
            tw_load(e, TW_BWD, kernel);
        dnnl_stream_wait(e->strm);
        tw_images(e, 0, ddst, port_out_begin(&e->dsrc, dx), tw_scratch, nthreads);
        port_out_end(e, &e->dsrc);
        return;
    }
    dnnl_memory_t wb = e->wb;
    if (e->re_fb && parts && e->wf_valid && !e->wf_folded) {
        /* from the forward's, left in wbuf by this step's forward */
        dnnl_memory_set_data_handle(e->wb_p, parts);
        run_reorder(e, e->re_fb, e->wf, e->wb_p);
        wb = e->wb_p;
    } else if (e->re_wb) { /* over wf (in wbuf) */
        if (!e->cl.w_own)
            e->cl.w_valid = 0;
        e->wf_valid = 0;
        dnnl_memory_set_data_handle(e->wu, (void *)kernel);
        run_reorder(e, e->re_wb, e->wu, e->wb);
    } else if (!e->wf_valid || e->wf_folded) {
        /* (else the forward of this step left it there) */
        load_kernel(e, kernel, NULL);
    }
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_DIFF_DST, ddst},
                            {DNNL_ARG_WEIGHTS, wb},
                            {DNNL_ARG_DIFF_SRC, port_out_begin(&e->dsrc, dx)},
                            {DNNL_ARG_SCRATCHPAD, e->scratch_m}};
    run(e->bwd_d, e->strm, 4, a);
    port_out_end(e, &e->dsrc);
}

int cdn_backward_data_slow(const conv_dnnl *e) { return e && e->bwd_d_ref; }

void cdn_backward_data(conv_dnnl *e, const float *kernel, const float *dz, float *dx, void *ws,
                       int nthreads)
{
    port_bind(e, &e->ddst, ws);
    port_bind(e, &e->dsrc, ws);
    const int prev = omp_get_max_threads();
    omp_set_num_threads(nthreads < 1 ? 1 : nthreads);
    backward_data(e, kernel, port_in(e, &e->ddst, dz), dx, NULL,
                  ws ? (char *)ws + e->tw.off_b : e->tw.own, nthreads < 1 ? 1 : nthreads);
    dnnl_stream_wait(e->strm);
    omp_set_num_threads(prev);
}

void cdn_backward(conv_dnnl *e, const float *x, const float *kernel, const float *dz,
                  float *dkernel, float *dbias, float *dx, void *ws, int nthreads, int store)
{
    port_bind(e, &e->src, ws);
    port_bind(e, &e->ddst, ws);
    port_bind(e, &e->dsrc, ws);
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int prev = omp_get_max_threads();
    omp_set_num_threads(nt);
    dnnl_memory_t ddst = port_in(e, &e->ddst, dz);
    char *parts = ws ? (char *)ws + e->part_off : (char *)e->parts_own;
    if (dx)
        backward_data(e, kernel, ddst, dx, parts, ws ? (char *)ws + e->tw.off_b : e->tw.own, nt);
    dnnl_memory_t src;
    if (x == e->xkeep_of) { /* the forward left it in its layout */
        if (!e->src.buf)
            dnnl_memory_set_data_handle(e->src.mi, e->xkeep);
        src = e->src.mi;
    } else {
        src = port_in(e, &e->src, x);
    }
    e->xkeep_of = NULL;
    dnnl_stream_wait(e->strm);
    weight_grads(e, src, ddst, parts, ws ? (char *)ws + e->ch_off : e->ch_own, nt);
    dnnl_memory_set_data_handle(e->dw_sum, parts);
    dnnl_memory_set_data_handle(e->dw_user, dkernel);
    run_reorder(e, store ? e->re_dw_set : e->re_dw, e->dw_sum, e->dw_user); /* dkernel (+)= */
    dnnl_stream_wait(e->strm);
    if (dbias && e->has_bias)
        for (int64_t f = 0; f < e->g.F; f++) {
            const int64_t nf = e->g.F / e->K;
            float s = e->oc_split ? e->ch[f / nf].db_buf[f % nf] : e->ch[0].db_buf[f];
            for (int k = 1; k < e->K && !e->oc_split; k++)
                s += e->ch[k].db_buf[f];
            dbias[f] = store ? s : dbias[f] + s;
        }
    e->wf_valid = 0; /* the optimizer changes the kernel next */
    e->tw.held = TW_NONE;
    if (!e->cl.w_own)
        e->cl.w_valid = 0;
    omp_set_num_threads(prev);
}

#endif
