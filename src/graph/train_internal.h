/* What the training loop shares with the losses. */
#ifndef NNP_GRAPH_TRAIN_INTERNAL_H
#define NNP_GRAPH_TRAIN_INTERNAL_H
#include "nnplug/train.h"

/* The loss of a part of a batch: *sum gets the loss summed over pred's
 * values (rows of the last axis for the CE losses) before the mean, grad
 * dLoss/dpred of the mean over denom such values (the whole batch's), and
 * *correct the part's correct samples. */
nnp_status nnpi_loss_part(const nnp_loss *l, const nnp_tensor *pred, const nnp_tensor *target,
                          double denom, double *sum, nnp_tensor *grad, double *correct,
                          nnp_error *err);
/* The values per sample the loss averages over (denom = samples times it). */
double nnpi_loss_values_per_sample(const nnp_loss *l, const nnp_shape *pred);

#endif
