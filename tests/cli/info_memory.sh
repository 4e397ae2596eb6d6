#!/bin/bash
# `nnplug info --memory`: the plan's parts for models/spirals.json at batch
# 100, each against a count made here from the model's definition
# (Dense 64 -> BN -> ReLU -> Dense 64 -> BN -> ReLU -> Dense 2 on 2
# features); the inference arena holds two 64-wide values at once (a ReLU's
# output lives until the next Dense has read it); a batch too large to
# allocate is planned all the same; bad options exit 2 naming them.
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
SRC=${NNP_SOURCE_DIR:?NNP_SOURCE_DIR must name the source tree}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_info_memory.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=0
fail() { echo "info_memory: $*" >&2; failed=1; }
MODEL=$SRC/models/spirals.json

"$BIN" info "$MODEL" --memory --batch 100 >"$WORK/out" || fail "info --memory failed"
# bytes LABEL: the exact count printed on the line that starts with LABEL
bytes() { grep -m1 "^  $1 " "$WORK/out" | sed -n 's/.*(\([0-9]*\) bytes)$/\1/p'; }
expect() {
    local got
    got=$(bytes "$1")
    [ "$got" = "$2" ] || fail "$1: $got bytes, expected $2"
}
B=100
# parameters: dense 2*64+64, bn 4*64, dense_1 64*64+64, bn_1 4*64, dense_2 64*2+2
params=$((2 * 64 + 64 + 4 * 64 + 64 * 64 + 64 + 4 * 64 + 64 * 2 + 2))
# moving mean and variance are not trainable
trainable=$((params - 2 * 2 * 64))
expect "weights" $((params * 4))
expect "weight gradients" $((trainable * 4))
# six values 64 wide, the last 2 wide
expect "values, a buffer each (for comparison)" $(((6 * 64 + 2) * B * 4))
# training: a value lives until the last step that reads it, forward or
# backward (steps 0-6 forward, 7-13 backward of nodes 6..0). Dense reads its
# input and output in backward, BatchNormalization its input, ReLU its
# output: d1 [0,13], bn1 [1,2], relu1 [2,11], d2 [3,10], bn2 [4,5],
# relu2 [5,8], d3 (the output) [6,end]. At step 5 five 64-wide values live
# (d1, relu1, d2, bn2, relu2), and the arena holds no more than that.
expect "values, training (one arena, by liveness)" $((5 * 64 * B * 4))
expect "values, inference (one arena, by liveness)" $((2 * 64 * B * 4))
grep -q "^memory at batch 100 (float32; the inputs, $((2 * B * 4)) bytes" "$WORK/out" ||
    fail "the header does not give the batch and the inputs' bytes"
grads=$(bytes "value gradients (one arena, by liveness)")
[ -n "$grads" ] && [ "$grads" -ge $((64 * B * 4)) ] && [ "$grads" -le $(((6 * 64 + 2) * B * 4)) ] ||
    fail "value gradients: $grads bytes, outside [one value, all values]"
infer=$(bytes "inference forward, in all")
ws=$(bytes "layers' shared workspace")
[ "$infer" = $((params * 4 + ws + 2 * 64 * B * 4)) ] || fail "inference total $infer is not its parts' sum"

# the default batch is 32
"$BIN" info "$MODEL" --memory | grep -q "^memory at batch 32 " || fail "the default batch is not 32"

# a large batch: the plan is made without allocating it (2 GB of values at
# batch 1,000,000 is reported under a 256 MB budget)
NNP_MAX_MEMORY=256M "$BIN" info "$MODEL" --memory --batch 1000000 >"$WORK/big" 2>"$WORK/err" ||
    { fail "a large batch's plan needed its memory"; cat "$WORK/err"; }
grep -q "values, a buffer each (for comparison).*($(((6 * 64 + 2) * 1000000 * 4)) bytes)" "$WORK/big" ||
    fail "batch 1000000: wrong values line"

# bad options: exit 2, named
check_bad() {
    local what=$1 text=$2
    shift 2
    "$BIN" "$@" >/dev/null 2>"$WORK/err"
    local rc=$?
    [ $rc -eq 2 ] || fail "$what: exit $rc, expected 2"
    grep -qF -- "$text" "$WORK/err" || { fail "$what: stderr does not name '$text'"; cat "$WORK/err" >&2; }
}
check_bad "--batch 0" "--batch expects an integer from 1 to 2147483648, got '0'" info "$MODEL" --memory --batch 0
check_bad "--batch x" "got 'x'" info "$MODEL" --memory --batch x
check_bad "--batch alone" "--batch goes with --memory" info "$MODEL" --batch 4
check_bad "--batch without a value" "--batch needs a value" info "$MODEL" --memory --batch

[ $failed -eq 0 ] && echo "info_memory: all checks passed"
exit $failed
