/* libFuzzer harness for the .npy reader (nnp_npy_parse, what nnp_npy_read
 * runs on a file's bytes): every input gives a tensor or an error naming
 * the input, within the memory the file's size justifies; what it accepts
 * is written and read back unchanged. Built by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnplug/io.h"
#include "nnplug/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nnp_tensor t;
    nnp_error err = {0};
    nnp_status st = nnp_npy_parse(data, size, "fuzz.npy", &t, &err);
    if (st != NNP_OK) {
        if (t.data || !strstr(err.msg, "fuzz.npy"))
            abort(); /* an error comes alone, with a message naming the input */
        return 0;
    }
    /* the data it holds fit in the input: no tensor larger than the file */
    if (t.nbytes > size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/tmp/nnplug-fuzz-npy-%d.npy", (int)getpid());
    nnp_tensor back;
    if (nnp_npy_write(path, &t, &err) != NNP_OK || nnp_npy_read(path, &back, &err) != NNP_OK) {
        fprintf(stderr, "fuzz_npy: write/read back failed: %s\n", err.msg);
        abort();
    }
    if (back.dtype != t.dtype || !nnp_shape_equal(&back.shape, &t.shape) ||
        back.nbytes != t.nbytes || (t.nbytes && memcmp(back.data, t.data, t.nbytes) != 0))
        abort();
    unlink(path);
    nnp_tensor_free(&back);
    nnp_tensor_free(&t);
    return 0;
}
