/* ONNX import, step 8 for the generic graph operators the host resolves
 * itself, without a kind: Constant (a constant value), Identity (an alias
 * of its input) and Cast (folded on constants; on computed values only to
 * float, which they already are). */
#include "interchange/onnx_import_internal.h"

#include <string.h>

nnp_status nnpi_onnx_do_constant(struct onnx_import *imp, inode *n, nnp_error *err)
{
    char nd[600];
    node_desc(n, nd, sizeof nd);
    const Onnx__NodeProto *p = n->p;
    if (p->n_input != 0 || p->n_output != 1 || !p->output[0][0])
        return FAIL(NNP_ERR_FORMAT, "%s: %s must have no inputs and one output", imp->label, nd);
    if (p->n_attribute != 1)
        return FAIL(NNP_ERR_FORMAT, "%s: %s must have exactly one attribute", imp->label, nd);
    const Onnx__AttributeProto *a = p->attribute[0];
    const char *an = ONNX_STR(a->name);
    int t = nnpi_onnx_attr_type(a);
    ival *x = V(imp, p->output[0]);
    nnp_status st = NNP_OK;
    nnp_shape s = {0};
    int want = strcmp(an, "value") == 0            ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
               : strcmp(an, "value_float") == 0    ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
               : strcmp(an, "value_floats") == 0   ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
               : strcmp(an, "value_int") == 0      ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
               : strcmp(an, "value_ints") == 0     ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
                                                   : -1;
    if (want < 0)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: attribute '%s' is not supported (value, "
                    "value_float(s), value_int(s) are)", imp->label, nd, an);
    if (t != want)
        return FAIL(NNP_ERR_FORMAT, "%s: %s: attribute '%s' has type %s, expected %s", imp->label,
                    nd, an, nnpi_onnx_attr_type_name(t), nnpi_onnx_attr_type_name(want));
    switch (t) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        if (!a->t)
            return FAIL(NNP_ERR_FORMAT, "%s: %s: attribute 'value' holds no tensor", imp->label,
                        nd);
        st = nnpi_onnx_tensor_read(a->t, imp->label, imp->base_dir, &x->t, &x->onnx_dtype, err);
        if (st)
            return nnp_error_prefix(err, "%s", nd);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        st = nnp_tensor_alloc(&x->t, NNP_F32, &s, err);
        if (st == NNP_OK)
            ((float *)x->t.data)[0] = a->f;
        x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        st = nnp_tensor_alloc(&x->t, NNP_I64, &s, err);
        if (st == NNP_OK)
            ((int64_t *)x->t.data)[0] = a->i;
        x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        s.rank = 1;
        s.dims[0] = (int64_t)a->n_floats;
        st = nnp_tensor_alloc(&x->t, NNP_F32, &s, err);
        if (st == NNP_OK && a->n_floats)
            memcpy(x->t.data, a->floats, sizeof(float) * a->n_floats);
        x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        break;
    default:
        s.rank = 1;
        s.dims[0] = (int64_t)a->n_ints;
        st = nnp_tensor_alloc(&x->t, NNP_I64, &s, err);
        if (st == NNP_OK && a->n_ints)
            memcpy(x->t.data, a->ints, sizeof(int64_t) * a->n_ints);
        x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        break;
    }
    if (st)
        return st;
    x->kind = V_CONST;
    return NNP_OK;
}

nnp_status nnpi_onnx_do_identity(struct onnx_import *imp, inode *n, nnp_error *err)
{
    const Onnx__NodeProto *p = n->p;
    char nd[600];
    if (p->n_input != 1 || p->n_output != 1 || !p->input[0][0] || !p->output[0][0])
        return FAIL(NNP_ERR_FORMAT, "%s: %s must have one input and one output", imp->label,
                    node_desc(n, nd, sizeof nd));
    ival *in = V(imp, p->input[0]), *out = V(imp, p->output[0]);
    if (in->kind == V_CONST) {
        out->kind = V_CONST;
        out->alias = (int)(const_root(imp, in) - imp->v);
        ival *root = &imp->v[out->alias];
        out->t = root->t;
        out->onnx_dtype = root->onnx_dtype;
        return NNP_OK;
    }
    if (in->kind != V_RUNTIME)
        return FAIL(NNP_ERR_INTERNAL, "%s: %s: input '%s' is not computed yet", imp->label,
                    node_desc(n, nd, sizeof nd), in->name);
    out->kind = V_RUNTIME;
    out->value = in->value;
    return NNP_OK;
}

/* Cast: folded on constants (rounding through the target type; a cast back
 * to float keeps the source type in memory, which export writes again);
 * on computed values only to float, which they already are. */
nnp_status nnpi_onnx_do_cast(struct onnx_import *imp, inode *n, nnp_error *err)
{
    const Onnx__NodeProto *p = n->p;
    char nd[600];
    node_desc(n, nd, sizeof nd);
    if (p->n_input != 1 || p->n_output != 1 || !p->input[0][0] || !p->output[0][0])
        return FAIL(NNP_ERR_FORMAT, "%s: %s must have one input and one output", imp->label, nd);
    const Onnx__AttributeProto *a = nnpi_onnx_find_attr(p, "to");
    if (!a || nnpi_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return FAIL(NNP_ERR_FORMAT, "%s: %s needs an INT attribute 'to'", imp->label, nd);
    int to = a->i >= 0 && a->i <= 64 ? (int)a->i : -1;
    ival *in = V(imp, p->input[0]), *out = V(imp, p->output[0]);
    if (in->kind == V_RUNTIME) {
        if (to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s casts a computed value to %s (nnplug "
                        "computes in float32)", imp->label, nd, nnpi_onnx_dtype_name(to));
        out->kind = V_RUNTIME;
        out->value = in->value;
        return NNP_OK;
    }
    ival *src = const_root(imp, in);
    if (src->kind != V_CONST)
        return FAIL(NNP_ERR_INTERNAL, "%s: %s: input not computed yet", imp->label, nd);
    int to_float = nnpi_onnx_dtype_is_float(to);
    int to_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    if (!to_float && !to_int)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: cast to %s is not supported", imp->label, nd,
                    nnpi_onnx_dtype_name(to));
    nnp_status st = nnp_tensor_alloc(&out->t, to_float ? NNP_F32 : NNP_I64, &src->t.shape, err);
    if (st)
        return nnp_error_prefix(err, "%s: %s", imp->label, nd);
    int64_t cnt = nnp_tensor_numel(&src->t);
    for (int64_t i = 0; i < cnt; i++) {
        double v = src->t.dtype == NNP_F32 ? ((const float *)src->t.data)[i]
                                           : (double)((const int64_t *)src->t.data)[i];
        if (to_float) {
            float f = (float)v;
            if (to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16)
                f = nnpi_onnx_f16_to_f32(nnpi_onnx_f32_to_f16(f));
            else if (to == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16)
                f = nnpi_onnx_bf16_to_f32(nnpi_onnx_f32_to_bf16(f));
            ((float *)out->t.data)[i] = f;
        } else {
            int64_t q = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? v != 0
                        : v != v || v >= 9.2e18 || v <= -9.2e18 ? 0 : (int64_t)v;
            ((int64_t *)out->t.data)[i] = q;
        }
    }
    out->kind = V_CONST;
    int keep =
        to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && nnpi_onnx_dtype_is_float(src->onnx_dtype);
    out->onnx_dtype = keep ? src->onnx_dtype : to;
    return NNP_OK;
}
