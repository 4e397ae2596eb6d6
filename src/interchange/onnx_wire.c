/* ONNX import, steps 1-2: from the bytes to a checked ModelProto.
 *
 * protobuf-c unpacks nested messages recursively with no depth limit, so a
 * small file of deeply nested attributes could exhaust the stack. A scan
 * walks the wire format with the message descriptors first and refuses more
 * than MAX_NESTING levels before protobuf-c sees the bytes. Then the model:
 * IR version, opset_import (one valid version per domain, the default domain
 * present), a graph without sparse initializers. */
#include "interchange/onnx_import_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 64

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* 0: fine (or malformed in a way protobuf-c will report); -1: too deep. */
static int scan_depth(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d,
                      int depth)
{
    if (depth > MAX_NESTING)
        return -1;
    while (p < end) {
        uint64_t key, len;
        if (read_varint(&p, end, &key))
            return 0;
        unsigned wire = (unsigned)(key & 7);
        uint64_t num = key >> 3;
        switch (wire) {
        case 0:
            if (read_varint(&p, end, &len))
                return 0;
            break;
        case 1:
            if (end - p < 8)
                return 0;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return 0;
            p += 4;
            break;
        case 2: {
            if (read_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return 0;
            const ProtobufCFieldDescriptor *f =
                num <= UINT_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)num) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                scan_depth(p, p + len, f->descriptor, depth + 1))
                return -1;
            p += len;
            break;
        }
        default:
            return 0;   /* groups and invalid wire types: protobuf-c rejects them */
        }
    }
    return 0;
}

static nnp_status check_model(struct onnx_import *imp, nnp_error *err)
{
    const Onnx__ModelProto *mp = imp->mp;
    const char *L = imp->label;
    if (!mp->has_ir_version)
        return FAIL(NNP_ERR_FORMAT, "%s: not an ONNX model (no ir_version)", L);
    if (mp->ir_version < 3)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: IR version %lld is too old (nnplug reads 3 and up)",
                    L, (long long)mp->ir_version);
    imp->opsets = calloc(mp->n_opset_import ? mp->n_opset_import : 1, sizeof *imp->opsets);
    if (!imp->opsets)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    int have_default = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        const char *d = dom_norm(o->domain);
        if (!o->has_version || o->version < 1 || o->version > 10000)
            return FAIL(NNP_ERR_FORMAT, "%s: opset_import for domain '%s' has no valid version", L,
                        d[0] ? d : "ai.onnx");
        for (size_t k = 0; k < imp->n_opsets; k++)
            if (strcmp(imp->opsets[k].domain, d) == 0)
                return FAIL(NNP_ERR_FORMAT, "%s: opset_import names domain '%s' twice", L,
                            d[0] ? d : "ai.onnx");
        imp->opsets[imp->n_opsets].domain = d;
        imp->opsets[imp->n_opsets++].version = o->version;
        have_default |= !d[0];
    }
    if (!have_default)
        return FAIL(NNP_ERR_FORMAT, "%s: opset_import has no version for the default domain "
                    "ai.onnx", L);
    if (!mp->graph)
        return FAIL(NNP_ERR_FORMAT, "%s: the model has no graph", L);
    imp->g = mp->graph;
    if (imp->g->n_sparse_initializer)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: sparse initializers are not supported", L);
    return NNP_OK;
}

nnp_status nnpi_onnx_unpack(struct onnx_import *imp, const void *data, size_t len,
                            nnp_error *err)
{
    const char *L = imp->label;
    if (scan_depth(data, (const uint8_t *)data + len, &onnx__model_proto__descriptor, 0))
        return FAIL(NNP_ERR_FORMAT, "%s: not a valid ONNX model (messages nested more than %d "
                    "deep)", L, MAX_NESTING);
    imp->mp = onnx__model_proto__unpack(NULL, len, data);
    if (!imp->mp)
        return FAIL(NNP_ERR_FORMAT, "%s: not a valid ONNX model (protobuf parse failed)", L);
    return check_model(imp, err);
}
