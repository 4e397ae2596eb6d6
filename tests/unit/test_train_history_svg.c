/* history.svg (nnplug train --out-dir): the histories a real run rarely
 * gives - NaN and infinite values, a constant loss, one or no epoch, values
 * near the double range. The command-level checks are in
 * tests/cli/train_out_dir.sh. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The writer is part of the command, not of libnnplug: compile it here. */
#include "cli/history_svg.c"

static char *render(int epochs, double *loss, double *acc, double *val_loss, double *val_acc)
{
    nnp_history h = {epochs, loss, acc, val_loss, val_acc, 0, NULL, -1, -1};
    nnp_error err = {0};
    char *s = NULL;
    size_t len = 0;
    cr_assert_eq(history_svg_render(&h, &s, &len, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(strlen(s), len);
    cr_assert(strstr(s, "<svg ") && strstr(s, "viewBox=\"0 0 ") && strstr(s, "</svg>\n"));
    return s;
}

/* The polyline of series `name`: its point count, the y of each in ys. */
static int series_points(const char *svg, const char *name, double *ys, int max)
{
    char key[64];
    snprintf(key, sizeof key, "<polyline data-series=\"%s\"", name);
    const char *p = strstr(svg, key);
    if (!p)
        return -1;
    cr_assert_null(strstr(p + 1, key), "two polylines for %s", name);
    p = strstr(p, " points=\"") + 9;
    int n = 0;
    while (*p != '"') {
        char *end;
        double x = strtod(p, &end);
        cr_assert(end != p && *end == ',', "bad point in %s", name);
        double y = strtod(end + 1, &end);
        cr_assert(isfinite(x) && isfinite(y));
        if (n < max)
            ys[n] = y;
        n++;
        p = end + (*end == ' ');
    }
    return n;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

/* No "nan" or "inf" anywhere but in tooltips' text. */
static void assert_no_nonfinite_text(const char *svg)
{
    size_t n = strlen(svg) + 1;
    char *s = malloc(n);
    cr_assert_not_null(s);
    memcpy(s, svg, n);
    for (char *t = strstr(s, "<title>"); t; t = strstr(t + 1, "<title>"))
        for (char *c = t + 7; *c && *c != '<'; c++)
            *c = ' ';
    for (char *c = s; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    cr_assert_null(strstr(s, "nan"), "%s", s);
    cr_assert_null(strstr(s, "inf"), "%s", s);
    free(s);
}

Test(history_svg, nonfinite_values_are_marked_not_drawn)
{
    double loss[6] = {2.0, 1.5, NAN, 1.0, INFINITY, 0.8};
    double val_loss[6] = {NAN, NAN, 3, -INFINITY, 2, 1};
    double acc[6] = {0.1, 0.2, NAN, 0.5, 0.6, 0.7};
    char *s = render(6, loss, acc, val_loss, acc);
    assert_no_nonfinite_text(s);
    double ys[6];
    cr_assert_eq(series_points(s, "loss", ys, 6), 4);
    cr_assert(ys[0] < ys[1] && ys[1] < ys[2] && ys[2] < ys[3], "higher loss, higher up");
    cr_assert_eq(series_points(s, "val_loss", ys, 6), 3);
    cr_assert_eq(series_points(s, "accuracy", ys, 6), 5);
    cr_assert_eq(series_points(s, "val_accuracy", ys, 6), 5);
    cr_assert_eq(count(s, "data-nonfinite=\"loss\""), 2);
    cr_assert_eq(count(s, "data-nonfinite=\"val_loss\""), 3);
    cr_assert_eq(count(s, "data-nonfinite=\"accuracy\""), 1);
    cr_assert_eq(count(s, "data-panel="), 2);
    free(s);
}

Test(history_svg, constant_loss_is_a_flat_line_inside_the_plot)
{
    double c[5] = {0.25, 0.25, 0.25, 0.25, 0.25}, absent[5] = {-1, -1, -1, -1, -1};
    double zero[5] = {0};
    for (int k = 0; k < 2; k++) {
        char *s = render(5, k ? zero : c, absent, absent, absent);
        double ys[5];
        cr_assert_eq(series_points(s, "loss", ys, 5), 5);
        for (int e = 1; e < 5; e++)
            cr_assert_eq(ys[e], ys[0]);
        cr_assert(ys[0] > HEAD_H && ys[0] < HEAD_H + PLOT_H, "y %g", ys[0]);
        cr_assert_eq(series_points(s, "accuracy", ys, 5), -1, "no accuracy in this run");
        cr_assert_eq(series_points(s, "val_loss", ys, 5), -1, "no validation in this run");
        cr_assert_eq(count(s, "data-panel="), 1);
        free(s);
    }
}

Test(history_svg, one_epoch_is_one_point_with_a_dot)
{
    double l[1] = {0.69}, a[1] = {0.5};
    char *s = render(1, l, a, l, a);
    double ys[1];
    for (int k = 0; k < N_SERIES; k++)
        cr_assert_eq(series_points(s, SERIES[k].name, ys, 1), 1, "%s", SERIES[k].name);
    cr_assert_eq(count(s, "<circle "), 4);
    cr_assert_eq(count(s, ">1</text>"), 2, "one epoch tick per panel");
    free(s);
}

Test(history_svg, no_epochs_and_extreme_values)
{
    double none[1] = {-1};
    char *s = render(0, none, none, none, none);
    double ys[3];
    cr_assert_eq(series_points(s, "loss", ys, 3), 0);
    cr_assert_not_null(strstr(s, "no epochs trained"));
    free(s);
    double huge[3] = {1.7e308, 1e200, 1e-300}, absent[3] = {-1, -1, -1};
    s = render(3, huge, absent, absent, absent);
    assert_no_nonfinite_text(s);
    cr_assert_eq(series_points(s, "loss", ys, 3), 3);
    cr_assert(ys[0] < ys[1] && ys[1] <= ys[2]);
    free(s);
}

Test(history_svg, write_failure_names_the_file)
{
    double l[2] = {1, 0.5}, absent[2] = {-1, -1};
    nnp_history h = {2, l, absent, absent, absent, 0, NULL, -1, -1};
    nnp_error err = {0};
    const char *path = "/nonexistent-nnp-dir/history.svg";
    cr_assert_eq(history_svg_write(path, &h, &err), NNP_ERR_IO);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
}
