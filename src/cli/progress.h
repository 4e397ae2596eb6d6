#ifndef NNP_CLI_PROGRESS_H
#define NNP_CLI_PROGRESS_H
#include "nnplug/nnplug.h"
#include <stdio.h>

typedef struct progress {
    FILE *f;
    int tty;
    int epochs;
} progress;

void progress_init(progress *p, FILE *f);
/* nnp_train_callbacks.on_step with user = progress*. */
void progress_on_step(void *user, int epoch, int step, int steps, double loss, double sps);
nnp_status progress_on_epoch(progress *p, const nnp_epoch_logs *l);
/* v, with a NaN made positive so that printf writes "nan", never glibc's
 * "-nan". */
double progress_plain_nan(double v);
#endif
