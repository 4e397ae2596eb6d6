/* The training history as hand-written SVG: a loss panel and, when the run
 * measured accuracy, an accuracy panel (accuracy lives in [0, 1], loss does
 * not), each with round-numbered ticks and its own legend. Only generic
 * fonts and plain elements, so any browser shows it as it is. */
#include "cli/history_svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Layout in SVG user units: each panel is a header (legend), the plot, and
 * a footer (epoch ticks and label). */
enum { SVG_W = 720, PLOT_R = 24, HEAD_H = 44, PLOT_H = 220, FOOT_H = 52,
       PANEL_H = HEAD_H + PLOT_H + FOOT_H };
/* The plot's left edge: the y label, then tick labels of about 6.6 units a
 * character (11-unit sans-serif digits), at least PLOT_L_MIN. */
#define PLOT_L_MIN 64
#define PLOT_L_FOR(chars) (40 + 6.6 * (chars))
/* Up to this many epochs every point also gets a dot (one epoch is a dot). */
#define DOTS_MAX 60
/* Finite values beyond +-VALUE_MAX are drawn at it, so that spans stay finite. */
#define VALUE_MAX 1e300

typedef struct svg_buf {
    char *s;
    size_t len, cap;
    int failed;   /* allocation or formatting failed; the text is incomplete */
} svg_buf;

static void put(svg_buf *b, const char *fmt, ...) NNP_PRINTF(2, 3);
static void put(svg_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* The four series of nnp_history, in drawing order. Validation series are
 * dashed as well as coloured, so they differ without colour too. */
typedef struct series {
    const char *name;   /* Keras' history key; the polyline's data-series */
    const char *color;
    const char *dash;   /* stroke-dasharray, "" for solid */
    int panel;          /* 0: loss, 1: accuracy */
    int hollow;         /* rings for dots, so a point on another series' shows */
} series;

enum { N_SERIES = 4 };
static const series SERIES[N_SERIES] = {
    {"loss", "#1f77b4", "", 0, 0},
    {"val_loss", "#e8710a", "7 4", 0, 1},
    {"accuracy", "#1f77b4", "", 1, 0},
    {"val_accuracy", "#e8710a", "7 4", 1, 1},
};
static const char *const PANEL_NAME[2] = {"loss", "accuracy"};

static const double *series_values(const nnp_history *h, int k)
{
    const double *v[N_SERIES] = {h->loss, h->val_loss, h->accuracy, h->val_accuracy};
    return v[k];
}

/* Loss always; the others when some epoch has a value other than the
 * "absent" mark (< 0; NaN counts as present, it is a measured value). */
static int series_present(const nnp_history *h, int k)
{
    if (k == 0)
        return 1;
    const double *v = series_values(h, k);
    for (int e = 0; v && e < h->epochs; e++)
        if (!(v[e] < 0))
            return 1;
    return 0;
}

static int series_nonfinite(const double *v, int n)
{
    int c = 0;
    for (int e = 0; v && e < n; e++)
        c += !isfinite(v[e]);
    return c;
}

static double clamp_value(double v)
{
    return v > VALUE_MAX ? VALUE_MAX : v < -VALUE_MAX ? -VALUE_MAX : v;
}

/* The first of 1, 2, (2.5,) 5, 10 times a power of ten that is >= raw > 0. */
static double nice_step(double raw, int quarter)
{
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double m = f <= 1 ? 1 : f <= 2 ? 2 : (quarter && f <= 2.5) ? 2.5 : f <= 5 ? 5 : 10;
    return m * mag;
}

/* A y axis: ticks at lo, lo + step, ..., hi. */
typedef struct axis {
    double lo, hi, step;
    int decimals;    /* tick labels as %.*f; < 0: as %.*g with `digits` */
    int digits;
} axis;

/* Decimals that write every multiple of step exactly, or -1 past 6. */
static int step_decimals(double step)
{
    for (int d = 0; d <= 6; d++) {
        double s = step * pow(10, d);
        if (fabs(s - nearbyint(s)) < 1e-6 * s)
            return d;
    }
    return -1;
}

/* Round ticks, about five, spanning [min, max] (finite, min <= max). */
static axis axis_fit(double min, double max)
{
    double mag = fmax(fabs(min), fabs(max));
    if (max - min <= 1e-9 * mag) {
        /* a constant series: a range around it, the line mid-panel */
        double c = (min + max) / 2, d = fabs(c) > 1e-200 ? fabs(c) / 2 : 1;
        min = c - d;
        max = c + d;
        mag = fmax(fabs(min), fabs(max));
    }
    axis a;
    a.step = nice_step((max - min) / 5, 1);
    a.lo = floor(min / a.step) * a.step;
    a.hi = ceil(max / a.step) * a.step;
    if (!(a.hi > a.lo) || !isfinite(a.hi - a.lo) || (a.hi - a.lo) / a.step > 12) {
        /* subnormal extremes and the like: plain ends, no rounding */
        a.lo = min;
        a.hi = max;
        a.step = max - min;
    }
    a.decimals = mag < 1e7 ? step_decimals(a.step) : -1;
    int d = (int)floor(log10(mag)) - (int)floor(log10(a.step)) + 2;
    a.digits = d < 3 ? 3 : d > 17 ? 17 : d;
    return a;
}

static int axis_ticks(const axis *a)
{
    double n = (a->hi - a->lo) / a->step;
    return n >= 1 && n <= 12 ? (int)lround(n) + 1 : 2;
}

/* Tick i's value, with rounding noise near zero snapped to 0 (no "-0.0"). */
static double axis_tick(const axis *a, int i)
{
    double t = i == axis_ticks(a) - 1 ? a->hi : a->lo + a->step * i;
    return fabs(t) < a->step * 1e-6 ? 0 : t;
}

/* Tick i's label into s[64]; returns its length. */
static int axis_label(const axis *a, int i, char *s)
{
    if (a->decimals >= 0)
        return snprintf(s, 64, "%.*f", a->decimals, axis_tick(a, i));
    return snprintf(s, 64, "%.*g", a->digits, axis_tick(a, i));
}

/* Epochs 1..n on x, a little inside the frame so that the end points'
 * dots stay clear of it; ticks at the multiples of step (and at 1 when the
 * first multiple is far from it). One epoch sits mid-panel. */
typedef struct xaxis {
    double lo, hi;
    int step, n;
} xaxis;

static xaxis xaxis_fit(int n)
{
    xaxis x = {1 - (n - 1) * 0.02, n + (n - 1) * 0.02, 1, n};
    if (n <= 1) {
        x.lo = 0.5;
        x.hi = 1.5;
        return x;
    }
    double s = nice_step((n - 1) / 8.0, 0);
    x.step = s < 1 ? 1 : (int)lround(s);
    return x;
}

/* The plot area of one panel and its axes. */
typedef struct frame {
    double left, top, w, h;
    axis y;
    xaxis x;
} frame;

static double frame_x(const frame *f, double epoch)
{
    return f->left + f->w * (epoch - f->x.lo) / (f->x.hi - f->x.lo);
}

static double frame_y(const frame *f, double v)
{
    return f->top + f->h * (f->y.hi - clamp_value(v)) / (f->y.hi - f->y.lo);
}

static void draw_y_axis(svg_buf *b, const frame *f, const char *label)
{
    put(b, "<g data-axis=\"y\" font-size=\"11\" fill=\"#444\" text-anchor=\"end\">\n");
    for (int i = 0; i < axis_ticks(&f->y); i++) {
        double y = frame_y(f, axis_tick(&f->y, i));
        char s[64];
        axis_label(&f->y, i, s);
        put(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e4e4e4\"/>"
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#888\"/>"
            "<text x=\"%.2f\" y=\"%.2f\">%s</text>\n", f->left, y, f->left + f->w, y,
            f->left - 4, y, f->left, y, f->left - 7, y + 4, s);
    }
    put(b, "</g>\n<text transform=\"translate(%d %.2f) rotate(-90)\" text-anchor=\"middle\" "
        "font-size=\"13\" fill=\"#222\">%s</text>\n", 20, f->top + f->h / 2, label);
}

static void draw_x_tick(svg_buf *b, const frame *f, int epoch)
{
    double x = frame_x(f, epoch), bottom = f->top + f->h;
    put(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#efefef\"/>"
        "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#888\"/>"
        "<text x=\"%.2f\" y=\"%.2f\">%d</text>\n", x, f->top, x, bottom, x, bottom, x,
        bottom + 4, x, bottom + 17, epoch);
}

static void draw_x_axis(svg_buf *b, const frame *f)
{
    put(b, "<g data-axis=\"x\" font-size=\"11\" fill=\"#444\" text-anchor=\"middle\">\n");
    if (f->x.step >= 4 && f->x.n >= 1)
        draw_x_tick(b, f, 1);   /* the first multiple is far from the first epoch */
    for (int e = f->x.step; e <= f->x.n; e += f->x.step)
        draw_x_tick(b, f, e);
    put(b, "</g>\n<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"13\" "
        "fill=\"#222\">epoch</text>\n", f->left + f->w / 2, f->top + f->h + 38);
}

/* One entry per series drawn on the panel, left to right in its header. */
static void draw_legend(svg_buf *b, const frame *f, const nnp_history *h, int panel)
{
    double x = f->left, y = f->top - 17;
    for (int k = 0; k < N_SERIES; k++) {
        const series *s = &SERIES[k];
        if (s->panel != panel || !series_present(h, k))
            continue;
        int bad = series_nonfinite(series_values(h, k), h->epochs);
        char note[64] = "";
        if (bad)
            snprintf(note, sizeof note, " (%d not finite, &#215;)", bad);
        put(b, "<g data-legend=\"%s\"><line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
            "stroke=\"%s\" stroke-width=\"2.5\" stroke-dasharray=\"%s\"/>"
            "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\" fill=\"#222\">%s%s</text></g>\n",
            s->name, x, y - 4, x + 26, y - 4, s->color, *s->dash ? s->dash : "none", x + 32, y,
            s->name, note);
        x += 32 + 7.0 * (double)(strlen(s->name) + (bad ? 18 : 0)) + 28;
    }
    if (panel == 0)
        put(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" font-size=\"12\" fill=\"#666\">"
            "%d epoch%s</text>\n", f->left + f->w, y, h->epochs, h->epochs == 1 ? "" : "s");
}

/* A cross at the panel's top (NaN, +inf) or bottom (-inf) edge. */
static void draw_nonfinite(svg_buf *b, const frame *f, const series *s, int epoch, double v)
{
    double x = frame_x(f, epoch), y = v < 0 ? f->top + f->h - 5 : f->top + 5;
    put(b, "<path data-nonfinite=\"%s\" d=\"M%.2f %.2fL%.2f %.2fM%.2f %.2fL%.2f %.2f\" "
        "stroke=\"%s\" stroke-width=\"2\"><title>epoch %d: %s is %s</title></path>\n", s->name,
        x - 4, y - 4, x + 4, y + 4, x - 4, y + 4, x + 4, y - 4, s->color, epoch, s->name,
        isnan(v) ? "NaN" : v > 0 ? "+infinite" : "-infinite");
}

static void draw_series(svg_buf *b, const frame *f, const series *s, const double *v, int n)
{
    put(b, "<polyline data-series=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
        "stroke-linejoin=\"round\" stroke-linecap=\"round\"", s->name, s->color);
    if (*s->dash)
        put(b, " stroke-dasharray=\"%s\"", s->dash);
    put(b, " points=\"");
    const char *sep = "";
    for (int e = 0; e < n; e++)
        if (isfinite(v[e])) {
            put(b, "%s%.2f,%.2f", sep, frame_x(f, e + 1), frame_y(f, v[e]));
            sep = " ";
        }
    put(b, "\"><title>%s</title></polyline>\n", s->name);
    for (int e = 0; e < n; e++) {
        if (!isfinite(v[e]))
            draw_nonfinite(b, f, s, e + 1, v[e]);
        else if (n <= DOTS_MAX)
            put(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%s\" fill=\"%s\" stroke=\"%s\" "
                "stroke-width=\"1.5\"><title>epoch %d: %s %.6g</title></circle>\n",
                frame_x(f, e + 1), frame_y(f, v[e]), s->hollow ? "3.5" : "2.5",
                s->hollow ? "none" : s->color, s->color, e + 1, s->name, v[e]);
    }
}

/* The y range of a panel: its finite values (accuracy: and [0, 1]). */
static axis panel_axis(const nnp_history *h, int panel)
{
    double min = panel ? 0 : INFINITY, max = panel ? 1 : -INFINITY;
    for (int k = 0; k < N_SERIES; k++) {
        const double *v = series_values(h, k);
        if (SERIES[k].panel != panel || !series_present(h, k) || !v)
            continue;
        for (int e = 0; e < h->epochs; e++)
            if (isfinite(v[e])) {
                min = fmin(min, clamp_value(v[e]));
                max = fmax(max, clamp_value(v[e]));
            }
    }
    if (!(min <= max)) {   /* nothing finite to draw */
        min = 0;
        max = 1;
    }
    return axis_fit(min, max);
}

/* Both panels' frames, their plots' left edges aligned past the longest
 * tick label of either. */
static void frames_fit(const nnp_history *h, int panels, frame *f)
{
    int chars = 0;
    for (int p = 0; p < panels; p++) {
        f[p].y = panel_axis(h, p);
        f[p].x = xaxis_fit(h->epochs);
        for (int i = 0; i < axis_ticks(&f[p].y); i++) {
            char s[64];
            int n = axis_label(&f[p].y, i, s);
            chars = n > chars ? n : chars;
        }
    }
    double left = fmax(PLOT_L_MIN, PLOT_L_FOR(chars));
    for (int p = 0; p < panels; p++) {
        f[p].left = left;
        f[p].top = (double)p * PANEL_H + HEAD_H;
        f[p].w = SVG_W - PLOT_R - left;
        f[p].h = PLOT_H;
    }
}

static void draw_panel(svg_buf *b, const nnp_history *h, int panel, const frame *f)
{
    put(b, "<g data-panel=\"%s\">\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
        "fill=\"#fff\" stroke=\"#bbb\"/>\n", PANEL_NAME[panel], f->left, f->top, f->w, f->h);
    draw_y_axis(b, f, PANEL_NAME[panel]);
    draw_x_axis(b, f);
    draw_legend(b, f, h, panel);
    if (h->epochs == 0)
        put(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"13\" "
            "fill=\"#666\">no epochs trained</text>\n", f->left + f->w / 2, f->top + f->h / 2);
    for (int k = 0; k < N_SERIES; k++) {
        const double *v = series_values(h, k);
        if (SERIES[k].panel == panel && series_present(h, k))
            draw_series(b, f, &SERIES[k], v, v ? h->epochs : 0);
    }
    put(b, "</g>\n");
}

nnp_status history_svg_render(const nnp_history *h, char **out, size_t *len, nnp_error *err)
{
    *out = NULL;
    *len = 0;
    int panels = 1 + (series_present(h, 2) || series_present(h, 3));
    int height = panels * PANEL_H;
    svg_buf b = {malloc(8192), 0, 8192, 0};
    if (!b.s)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    put(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
        "<title>Training history</title>\n"
        "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n",
        SVG_W, height, SVG_W, height, SVG_W, height);
    frame f[2];
    frames_fit(h, panels, f);
    for (int p = 0; p < panels; p++)
        draw_panel(&b, h, p, &f[p]);
    put(&b, "</svg>\n");
    if (b.failed) {
        free(b.s);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    *out = b.s;
    *len = b.len;
    return NNP_OK;
}

nnp_status history_svg_write(const char *path, const nnp_history *h, nnp_error *err)
{
    char *s;
    size_t n;
    nnp_status st = history_svg_render(h, &s, &n, err);
    if (st)
        return st;
    st = nnp_write_file_atomic(path, s, n, err);
    free(s);
    return st;
}
