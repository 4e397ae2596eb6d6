/* ONNX's type, rank and length rules for a node's inputs, as the node's kind
 * declares them (nnp_onnx_node_ext.input_rules): checked here, the same way
 * for every kind and operator, before the layer is created. The host knows
 * no operator: the rules name the operator they are for. */
#include "interchange/onnx_import_internal.h"
#include "plugin/host_internal.h"

#include <stdio.h>
#include <string.h>

/* ONNX's own spelling of an element type, as in "tensor(int64)". */
static const char *type_name(int t)
{
    static const char *const names[] = {
        "undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
        "string", "bool", "float16", "double", "uint32", "uint64", "complex64",
        "complex128", "bfloat16"};
    if (t >= 0 && t < (int)(sizeof names / sizeof names[0]))
        return names[t];
    return "unknown";
}

/* "float16, float, double or bfloat16" */
static const char *types_str(uint32_t types, char *buf, size_t size)
{
    static const int order[] = {10, 1, 11, 16, 2, 3, 4, 5, 6, 7, 12, 13, 9, 8, 14, 15};
    const int n_order = (int)(sizeof order / sizeof order[0]);
    int total = 0, k = 0;
    for (int i = 0; i < n_order; i++)
        total += (types & NNP_ONNX_TYPE(order[i])) != 0;
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_order && at < size; i++) {
        if (!(types & NNP_ONNX_TYPE(order[i])))
            continue;
        k++;
        const char *sep = k == 1 ? "" : k == total ? " or " : ", ";
        at += (size_t)snprintf(buf + at, size - at, "%s%s", sep, type_name(order[i]));
    }
    return buf;
}

/* "a 1-D tensor", "a tensor of rank 3 or more", "a tensor of rank 0 to 2" */
static const char *ranks_str(uint32_t ranks, char *buf, size_t size)
{
    int lo = -1, hi = -1;
    for (int r = 0; r <= NNP_MAX_RANK; r++)
        if (ranks & NNP_ONNX_RANK(r)) {
            if (lo < 0)
                lo = r;
            hi = r;
        }
    if (lo < 0)
        snprintf(buf, size, "no tensor");
    else if (lo == hi)
        snprintf(buf, size, "a %d-D tensor", lo);
    else if (hi == NNP_MAX_RANK && (ranks & NNP_ONNX_RANK_MIN(lo)) == NNP_ONNX_RANK_MIN(lo))
        snprintf(buf, size, "a tensor of rank %d or more", lo);
    else
        snprintf(buf, size, "a tensor of rank %d to %d", lo, hi);
    return buf;
}

typedef struct rule_ctx {
    struct onnx_import *imp;
    const nnp_host *h;
    const nnp_onnx_reader *r;
    const char *op;
    const nnp_onnx_input_rule *rules;
} rule_ctx;

/* "input 'scale' ('s')", or "input 2 ('b')" for a rule of every input */
static const char *input_desc(const rule_ctx *c, const nnp_onnx_input_rule *rule, int k,
                              char *buf, size_t size)
{
    const char *tensor = c->h->onnx_input_name(c->r, k);
    if (rule->input == NNP_ONNX_EVERY_INPUT)
        snprintf(buf, size, "input %d ('%.200s')", k, tensor ? tensor : "");
    else
        snprintf(buf, size, "input '%.100s' ('%.200s')", rule->name, tensor ? tensor : "");
    return buf;
}

/* The name the rules give input k, for "input 'X'" in messages. */
static const char *rule_name(const rule_ctx *c, int k)
{
    for (const nnp_onnx_input_rule *q = c->rules; q->name; q++)
        if (q->input == k && (!q->op_type || strcmp(q->op_type, c->op) == 0))
            return q->name;
    return NULL;
}

static nnp_status check_length(const rule_ctx *c, const nnp_onnx_input_rule *rule, int k,
                               const nnp_shape *s, nnp_error *err)
{
    nnp_shape of;
    nnp_error e = {0};
    if (rule->len_input < 0 || rule->len_axis < 0 || s->rank < 0 ||
        rule->len_input >= c->h->onnx_n_inputs(c->r) ||
        c->h->onnx_input_shape(c->r, rule->len_input, &of, &e) != NNP_OK ||
        of.rank <= rule->len_axis || of.dims[rule->len_axis] < 0)
        return NNP_OK;
    int64_t n = 1;
    for (int d = 0; d < s->rank; d++) {
        if (s->dims[d] < 0)
            return NNP_OK;
        if (s->dims[d] && n > INT64_MAX / s->dims[d])
            return NNP_OK;   /* more than any dimension holds */
        n *= s->dims[d];
    }
    if (n == of.dims[rule->len_axis])
        return NNP_OK;
    char in[400];
    const char *other = rule_name(c, rule->len_input);
    char on[140];
    if (other)
        snprintf(on, sizeof on, "'%.100s'", other);
    else
        snprintf(on, sizeof on, "%d", rule->len_input);
    return FAIL(NNP_ERR_SHAPE, "%s holds %lld values; %s takes one per element of dimension %d "
                "of input %s, which has %lld", input_desc(c, rule, k, in, sizeof in),
                (long long)n, c->op, rule->len_axis, on, (long long)of.dims[rule->len_axis]);
}

static nnp_status check_rank(const rule_ctx *c, const nnp_onnx_input_rule *rule, int k,
                             const nnp_shape *s, nnp_error *err)
{
    char in[400], b1[160], b2[80];
    if (s->rank < 0)
        return NNP_OK;
    if (rule->ranks && !(rule->ranks & NNP_ONNX_RANK(s->rank)))
        return FAIL(NNP_ERR_SHAPE, "%s has shape %s; %s takes %s there",
                    input_desc(c, rule, k, in, sizeof in), nnp_shape_decl_str(s, b1, sizeof b1),
                    c->op, ranks_str(rule->ranks, b2, sizeof b2));
    nnp_shape as;
    nnp_error e = {0};
    if (rule->rank_as >= 0 && rule->rank_as < c->h->onnx_n_inputs(c->r) &&
        c->h->onnx_input_shape(c->r, rule->rank_as, &as, &e) == NNP_OK && as.rank >= 0 &&
        as.rank != s->rank) {
        const char *other = rule_name(c, rule->rank_as);
        return FAIL(NNP_ERR_SHAPE, "%s has rank %d (shape %s); %s takes one of the rank of "
                    "input '%s' (%d)", input_desc(c, rule, k, in, sizeof in), (int)s->rank,
                    nnp_shape_decl_str(s, b1, sizeof b1), c->op, other ? other : "?", (int)as.rank);
    }
    return check_length(c, rule, k, s, err);
}

static nnp_status check_input(const rule_ctx *c, const nnp_onnx_input_rule *rule, int k,
                              nnp_error *err)
{
    const char *tensor = c->h->onnx_input_name(c->r, k);
    if (!tensor || !tensor[0])
        return NNP_OK;   /* an optional input left out */
    char in[400], b[200];
    int et = nnpi_onnx_import_elem_type(c->r->imp, tensor);
    if (rule->types && et && !(et < 32 && (rule->types & NNP_ONNX_TYPE(et))))
        return FAIL(NNP_ERR_FORMAT, "%s has element type %s; %s takes %s there",
                    input_desc(c, rule, k, in, sizeof in), type_name(et), c->op,
                    types_str(rule->types, b, sizeof b));
    nnp_shape s;
    nnp_status st = c->h->onnx_input_shape(c->r, k, &s, err);
    return st == NNP_OK ? check_rank(c, rule, k, &s, err) : st;
}

nnp_status nnpi_onnx_check_rules(struct onnx_import *imp, const nnp_onnx_reader *r,
                                 const nnp_kind *kind, nnp_error *err)
{
    (void)imp;
    const nnp_onnx_node_ext *ext = nnpi_kind_onnx_node_ext(kind);
    if (!ext || ext->struct_size < offsetof(nnp_onnx_node_ext, input_rules) +
                                       sizeof ext->input_rules || !ext->input_rules)
        return NNP_OK;
    rule_ctx c = {imp, nnp_host_services(), r, NULL, ext->input_rules};
    c.op = c.h->onnx_op_type(r);
    const int n = c.h->onnx_n_inputs(r);
    for (const nnp_onnx_input_rule *q = c.rules; q->name; q++) {
        if (q->op_type && strcmp(q->op_type, c.op) != 0)
            continue;
        for (int k = q->input == NNP_ONNX_EVERY_INPUT ? 0 : q->input; k < n; k++) {
            nnp_status st = check_input(&c, q, k, err);
            if (st)
                return st;
            if (q->input != NNP_ONNX_EVERY_INPUT)
                break;
        }
    }
    return NNP_OK;
}
