/* Training checkpoints (checkpoint.c): the training state nnplug train
 * keeps in the model it saves after each epoch, for --resume. */
#ifndef NNP_CLI_CHECKPOINT_H
#define NNP_CLI_CHECKPOINT_H
#include "nnplug/nnplug.h"

/* The run's history so far (per epoch, and per step). */
typedef struct ckpt_history {
    int epochs;
    double *loss, *accuracy, *val_loss, *val_accuracy;
    int n_steps;
    double *batch_loss;
} ckpt_history;

/* Appends an epoch's logs and its steps' losses. */
nnp_status ckpt_history_add(ckpt_history *h, const nnp_epoch_logs *logs,
                            const double *batch_loss, int n_steps, nnp_error *err);
void ckpt_history_free(ckpt_history *h);
/* Puts the training state into m's metadata (saved with it): the run's
 * identity (run_json, a JSON object), the history, the epochs done and the
 * optimizer's state. */
nnp_status ckpt_store(nnp_model *m, const char *run_json, const ckpt_history *h, int epochs_done,
                      const nnp_optimizer *opt, nnp_error *err);
/* Reads the training state of m (loaded from path): the identity must be
 * run_json's (else NNP_ERR_INVALID naming what differs); fills h, the
 * epochs done and opt's state. */
/* Drops the optimizer state ckpt_store (or a loaded checkpoint) put in
 * m's metadata, once it is written (or read): as large as the trainable
 * weights and more, it need not stay in memory between checkpoints. */
void ckpt_drop(nnp_model *m);
nnp_status ckpt_load(const nnp_model *m, const char *path, const char *run_json,
                     ckpt_history *h, int *epochs_done, nnp_optimizer *opt, nnp_error *err);

#endif
