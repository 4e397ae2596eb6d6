/* Training progress: a bar redrawn in place on a terminal, one line per
 * epoch otherwise (logs, CI). */
#include "cli/progress.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

double progress_plain_nan(double v)
{
    return isnan(v) ? fabs(v) : v;
}

void progress_init(progress *p, FILE *f)
{
    p->f = f;
    p->tty = isatty(fileno(f));
}

void progress_on_step(void *user, int epoch, int step, int steps, double loss, double sps)
{
    progress *p = user;
    if (!p->tty)
        return;
    int width = 30, done = steps ? (step + 1) * width / steps : width;
    fprintf(p->f, "\rEpoch %d/%d [", epoch + 1, p->epochs);
    for (int i = 0; i < width; i++)
        fputc(i < done ? '=' : (i == done ? '>' : ' '), p->f);
    fprintf(p->f, "] %d/%d loss %.4f %.0f samples/s ", step + 1, steps, progress_plain_nan(loss),
            sps);
    fflush(p->f);
}

nnp_status progress_on_epoch(progress *p, const nnp_epoch_logs *l)
{
    if (p->tty)
        fputc('\r', p->f);
    fprintf(p->f, "Epoch %d/%d loss %.6f", l->epoch + 1, l->epochs, progress_plain_nan(l->loss));
    /* < 0: absent; NaN is a value (a NaN val_loss is printed) */
    if (!(l->accuracy < 0))
        fprintf(p->f, " accuracy %.4f", progress_plain_nan(l->accuracy));
    if (!(l->val_loss < 0))
        fprintf(p->f, " val_loss %.6f", progress_plain_nan(l->val_loss));
    if (!(l->val_accuracy < 0))
        fprintf(p->f, " val_accuracy %.4f", progress_plain_nan(l->val_accuracy));
    fprintf(p->f, " %.0f samples/s%s\n", l->samples_per_s, p->tty ? "          " : "");
    fflush(p->f);
    return NNP_OK;
}
