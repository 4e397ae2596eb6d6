/* Shared services for layers: Keras initializers, regularizers and
 * constraints, with Keras's names, arguments, defaults and formulas.
 *
 * Every spec is given as JSON text in either Keras spelling:
 *   "glorot_uniform"  or  {"class_name": "GlorotUniform", "config": {"seed": 3}}
 * An unknown name or a bad argument is an error naming it. */
#ifndef NNPLUG_SERVICES_H
#define NNPLUG_SERVICES_H
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Initializers: Zeros, Ones, Constant(value), RandomNormal(mean, stddev, seed),
 * RandomUniform(minval, maxval, seed), TruncatedNormal(mean, stddev, seed),
 * VarianceScaling(scale, mode, distribution, seed), GlorotNormal,
 * GlorotUniform, HeNormal, HeUniform, LecunNormal, LecunUniform (seed),
 * Orthogonal(gain, seed), Identity(gain). */
NNP_API nnp_status nnp_initializer_parse(const char *json, nnp_initializer **out, nnp_error *err);
NNP_API void nnp_initializer_free(nnp_initializer *init);
NNP_API nnp_initializer *nnp_initializer_clone(const nnp_initializer *init);
/* Canonical {"class_name": ..., "config": {...}} with every argument; malloc'ed. */
NNP_API char *nnp_initializer_to_json(const nnp_initializer *init);
NNP_API const char *nnp_initializer_class(const nnp_initializer *init);
/* Fills a float32 tensor. The initializer's own seed, when it has one, wins;
 * otherwise `seed` is used. Fans come from the shape as Keras computes them. */
NNP_API nnp_status nnp_initializer_fill(const nnp_initializer *init, nnp_tensor *t,
                                        uint64_t seed, nnp_error *err);
/* Keras's _compute_fans. */
NNP_API void nnp_compute_fans(const nnp_shape *s, double *fan_in, double *fan_out);

/* Regularizers: L1(l1=0.01), L2(l2=0.01), L1L2(l1=0, l2=0); names "l1", "l2",
 * "l1_l2". loss = l1*sum|w| + l2*sum w^2; grad = l1*sign(w) + 2*l2*w, with
 * sign(0) = 0. */
NNP_API nnp_status nnp_regularizer_parse(const char *json, nnp_regularizer **out, nnp_error *err);
NNP_API void nnp_regularizer_free(nnp_regularizer *r);
NNP_API nnp_regularizer *nnp_regularizer_clone(const nnp_regularizer *r);
NNP_API char *nnp_regularizer_to_json(const nnp_regularizer *r);
NNP_API double nnp_regularizer_loss(const nnp_regularizer *r, const float *w, int64_t n);
NNP_API void nnp_regularizer_grad_add(const nnp_regularizer *r, const float *w, float *grad,
                                      int64_t n);

/* Constraints: MaxNorm(max_value=2, axis=0), MinMaxNorm(min_value=0,
 * max_value=1, rate=1, axis=0), NonNeg(), UnitNorm(axis=0); names
 * "max_norm", "min_max_norm", "non_neg", "unit_norm". axis is an int or a
 * list of ints (negative allowed): the axes the norm is taken over, as in
 * Keras. Norms use Keras's epsilon 1e-7. */
NNP_API nnp_status nnp_constraint_parse(const char *json, nnp_constraint **out, nnp_error *err);
NNP_API void nnp_constraint_free(nnp_constraint *c);
NNP_API nnp_constraint *nnp_constraint_clone(const nnp_constraint *c);
NNP_API char *nnp_constraint_to_json(const nnp_constraint *c);
NNP_API nnp_status nnp_constraint_apply(const nnp_constraint *c, nnp_tensor *w, nnp_error *err);

#ifdef __cplusplus
}
#endif
#endif
