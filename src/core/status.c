#include "nnplug/status.h"

#include <stdio.h>
#include <string.h>

nnp_status nnp_error_setv(nnp_error *err, nnp_status code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

nnp_status nnp_error_set(nnp_error *err, nnp_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nnp_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

nnp_status nnp_error_prefix(nnp_error *err, const char *fmt, ...)
{
    if (!err)
        return NNP_ERR_INTERNAL;
    char prefix[NNP_ERROR_MSG_MAX], old[NNP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is fine: the message is cut at the buffer's end. */
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t rest = sizeof err->msg - n - 3;
    size_t ol = strnlen(old, rest);
    memcpy(err->msg + n + 2, old, ol);
    err->msg[n + 2 + ol] = '\0';
    return err->code;
}

void nnp_error_clear(nnp_error *err)
{
    if (err) {
        err->code = NNP_OK;
        err->msg[0] = '\0';
    }
}

const char *nnp_status_str(nnp_status s)
{
    switch (s) {
    case NNP_OK: return "ok";
    case NNP_ERR_INVALID: return "invalid argument";
    case NNP_ERR_SHAPE: return "shape mismatch";
    case NNP_ERR_NOMEM: return "out of memory";
    case NNP_ERR_OVERFLOW: return "size overflow";
    case NNP_ERR_IO: return "i/o error";
    case NNP_ERR_FORMAT: return "malformed file";
    case NNP_ERR_UNSUPPORTED: return "unsupported";
    case NNP_ERR_NOT_FOUND: return "not found";
    case NNP_ERR_ABI: return "ABI mismatch";
    case NNP_ERR_DUPLICATE: return "duplicate";
    case NNP_ERR_INTERNAL: return "internal error";
    case NNP_ERR_LIMIT: return "over the memory budget";
    }
    return "unknown status";
}
