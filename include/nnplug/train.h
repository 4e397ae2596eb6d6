/* Training: Keras losses, optimizers and the fit loop. */
#ifndef NNPLUG_TRAIN_H
#define NNPLUG_TRAIN_H
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- losses (Keras definitions; the batch loss is the mean over samples) */
typedef enum nnp_loss_kind {
    NNP_LOSS_MSE = 1,                 /* mean over the last axis of (y - t)^2 */
    NNP_LOSS_CATEGORICAL_CE = 2,      /* t one-hot (or soft) over the last axis */
    NNP_LOSS_SPARSE_CATEGORICAL_CE = 3, /* t holds class indices, shape [N] or [N, 1] */
    NNP_LOSS_BINARY_CE = 4            /* mean over the last axis */
} nnp_loss_kind;

typedef struct nnp_loss {
    nnp_loss_kind kind;
    int from_logits;   /* CE losses: predictions are logits, not probabilities */
} nnp_loss;

/* "mse" | "mean_squared_error" | "categorical_crossentropy" |
 * "sparse_categorical_crossentropy" | "binary_crossentropy". */
NNP_API nnp_status nnp_loss_parse(const char *name, int from_logits, nnp_loss *out, nnp_error *err);
NNP_API const char *nnp_loss_name(const nnp_loss *l);
/* Mean loss over the batch; grad (same shape as pred, may be NULL) gets
 * dLoss/dpred; *correct (may be NULL) the number of correctly classified
 * samples (CE losses only; -1 for MSE). */
NNP_API nnp_status nnp_loss_compute(const nnp_loss *l, const nnp_tensor *pred,
                                    const nnp_tensor *target, double *loss, nnp_tensor *grad,
                                    double *correct, nnp_error *err);

/* ---- optimizers (Keras update rules; constraints applied after each step) */
typedef enum nnp_optimizer_kind { NNP_OPT_SGD = 1, NNP_OPT_ADAM = 2 } nnp_optimizer_kind;

typedef struct nnp_optimizer_config {
    nnp_optimizer_kind kind;
    double learning_rate;  /* SGD 0.01, Adam 0.001 */
    double momentum;       /* SGD: 0 */
    int nesterov;          /* SGD: 0 */
    double beta_1;         /* Adam: 0.9 */
    double beta_2;         /* Adam: 0.999 */
    double epsilon;        /* Adam: 1e-7 */
} nnp_optimizer_config;

/* Keras defaults for kind. */
NNP_API nnp_optimizer_config nnp_optimizer_defaults(nnp_optimizer_kind kind);

typedef struct nnp_optimizer nnp_optimizer;
/* Slots for every trainable weight of m are allocated here, once. */
NNP_API nnp_status nnp_optimizer_new(const nnp_optimizer_config *cfg, nnp_model *m,
                                     nnp_optimizer **out, nnp_error *err);
NNP_API void nnp_optimizer_free(nnp_optimizer *o);
/* The optimizer's training state (step count, SGD velocities, Adam
 * moments) as bytes, for checkpoints (malloc'ed), and back into an optimizer
 * of the same kind made for the same model. */
NNP_API nnp_status nnp_optimizer_save_state(const nnp_optimizer *o, void **out, size_t *len,
                                            nnp_error *err);
NNP_API nnp_status nnp_optimizer_load_state(nnp_optimizer *o, const void *data, size_t len,
                                            nnp_error *err);
/* One update of every trainable weight from its grad, then constraints. */
NNP_API nnp_status nnp_optimizer_step(nnp_optimizer *o, nnp_error *err);

/* ---- fit */
typedef struct nnp_epoch_logs {
    int epoch;             /* 0-based */
    int epochs;
    double loss;           /* batch-size weighted mean of step losses (before each update) */
    double accuracy;       /* < 0 when the loss has none */
    double val_loss;       /* < 0 when there is no validation data */
    double val_accuracy;
    double samples_per_s;
    /* Steps whose loss was not finite (NaN or +-Inf). Such values propagate
     * as IEEE arithmetic says (only what they reach becomes NaN) and
     * training goes on, as in Keras; nnp_train_options.terminate_on_nan
     * stops it instead. */
    int steps;                   /* steps in this epoch */
    int nonfinite_steps;         /* how many of them had a non-finite loss */
    int first_nonfinite_step;    /* the first of them (0-based), -1 when none */
    double first_nonfinite_loss; /* its loss (NaN or +-Inf); 0 when none */
} nnp_epoch_logs;

typedef struct nnp_train_callbacks {
    void *user;
    /* After each step: step in [0, steps). */
    void (*on_step)(void *user, int epoch, int step, int steps, double loss, double samples_per_s);
    /* After each epoch; a non-OK status stops training with that error. */
    nnp_status (*on_epoch_end)(void *user, const nnp_epoch_logs *logs, nnp_error *err);
} nnp_train_callbacks;

typedef struct nnp_train_options {
    int epochs;              /* 1 */
    int64_t batch_size;      /* 32 */
    int shuffle;             /* 1: reshuffle before each epoch (seeded) */
    uint64_t seed;           /* 0 */
    double validation_split; /* 0: the last fraction of the samples, taken before shuffling */
    /* 0: a step whose loss is not finite is trained on like any other (its
     * NaN/Inf propagate into what it reaches), as Keras does; non-zero:
     * stop after that step, as Keras's TerminateOnNaN callback does
     * (nnp_history.stop_epoch says where). Fields are added at the end:
     * start from nnp_train_defaults() so that each one gets its default. */
    int terminate_on_nan;    /* 0 */
    /* The data-parallel group (dist.h) training together, NULL for this
     * process alone. Every process passes the same model, data and options;
     * each runs its share of every batch (nnp_batch_split_of); the loss
     * and the gradients are summed over the group, so every process keeps
     * the same weights, and the moving statistics of layers that keep them
     * (BatchNormalization) are averaged over the group after each step. */
    const struct nnp_group *group; /* NULL */
    /* The epoch to start at (Keras's initial_epoch): a resumed run trains
     * epochs initial_epoch .. epochs-1, shuffled as the whole run would be. */
    int initial_epoch;       /* 0 */
} nnp_train_options;

NNP_API nnp_train_options nnp_train_defaults(void);

typedef struct nnp_history {
    int epochs;
    double *loss, *accuracy, *val_loss, *val_accuracy;  /* one per epoch */
    int n_steps;
    double *batch_loss;  /* one per step run, as computed: NaN and +-Inf kept */
    /* Where terminate_on_nan stopped training (0-based epoch and step in
     * it), -1 and -1 when it ran every epoch. The stopped epoch is not in
     * the per-epoch arrays (epochs counts the finished ones; on_epoch_end
     * was not called for it); its steps are in batch_loss, the last one
     * the non-finite loss. */
    int stop_epoch, stop_step;
} nnp_history;
NNP_API void nnp_history_free(nnp_history *h);

/* Trains m (one input, one output) on x, y. A non-finite loss is not an
 * error: training goes on, or with opts->terminate_on_nan stops after that
 * step and still returns NNP_OK (see nnp_history.stop_epoch). */
NNP_API nnp_status nnp_model_fit(nnp_model *m, const nnp_tensor *x, const nnp_tensor *y,
                                 const nnp_loss *loss, nnp_optimizer *opt,
                                 const nnp_train_options *opts, const nnp_train_callbacks *cb,
                                 nnp_history *hist, nnp_error *err);
/* Loss and accuracy in inference mode over x, y in batches. */
NNP_API nnp_status nnp_model_evaluate(nnp_model *m, const nnp_tensor *x, const nnp_tensor *y,
                                      const nnp_loss *loss, int64_t batch_size, double *loss_out,
                                      double *accuracy, nnp_error *err);
/* Inference over x in batches into a new tensor (caller frees). */
NNP_API nnp_status nnp_model_predict(nnp_model *m, const nnp_tensor *x, int64_t batch_size,
                                     nnp_tensor *out, nnp_error *err);

#ifdef __cplusplus
}
#endif
#endif
