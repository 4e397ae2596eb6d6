#!/usr/bin/env bash
# nnplug train --resume: a checkpoint (--save FILE.onnx, written after every
# epoch) holds the optimizer's state, the epochs done and the history, so
#   - training N epochs at once, and training k epochs then resuming to N,
#     give the same bytes (the model and every --out-dir file), for SGD with
#     momentum and for Adam;
#   - a run killed with SIGKILL mid-training, resumed from its last
#     checkpoint, ends with the bytes of an uninterrupted run;
#   - a checkpoint is a valid ONNX model (onnx.checker, full check);
#   - resuming with other options, from a file that is no checkpoint, or
#     to a non-ONNX --save is refused (exit 2, named), nothing written.
# Needs NNP_BIN and /usr/bin/python3 with onnx.
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=${NNP_PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_train_resume.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
failed=0
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
same_dirs() { # every file of $1 equal in $2
    for f in "$1"/*; do cmp -s "$f" "$2/$(basename "$f")" || return 1; done
}
M=$SRC/models/mlp_bn_opset15.onnx
base=(--x "$SRC/models/data/mlp_x.npy" --y "$SRC/models/data/mlp_y.npy"
      --loss sparse_categorical_crossentropy --from-logits --batch-size 16 --seed 5
      --validation-split 0.25)

for opt in "--optimizer sgd --lr 0.05 --momentum 0.9" "--optimizer adam --lr 0.01"; do
    # shellcheck disable=SC2206
    o=($opt)
    rm -rf full* part* res*
    "$BIN" train "$M" "${base[@]}" "${o[@]}" --epochs 5 --save full.onnx --out-dir fullo \
        2>/dev/null || fail "$opt: 5 epochs"
    "$BIN" train "$M" "${base[@]}" "${o[@]}" --epochs 2 --save part.onnx 2>/dev/null ||
        fail "$opt: 2 epochs"
    "$BIN" train "$M" "${base[@]}" "${o[@]}" --epochs 5 --resume part.onnx --save res.onnx \
        --out-dir reso 2>/dev/null || fail "$opt: resume to 5"
    cmp -s full.onnx res.onnx || fail "$opt: resumed model differs from the uninterrupted one"
    same_dirs fullo reso || fail "$opt: resumed --out-dir differs from the uninterrupted one"
done

# SIGKILL mid-run, then resume from the last checkpoint
long=(--optimizer adam --lr 0.001 --epochs 1500)
"$BIN" train "$M" "${base[@]}" "${long[@]}" --save whole.onnx 2>/dev/null || fail "1500 epochs"
"$BIN" train "$M" "${base[@]}" "${long[@]}" --save killed.onnx 2>/dev/null &
pid=$!
sleep 1.5
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ -f killed.onnx ] || fail "no checkpoint before the kill"
"$BIN" train "$M" "${base[@]}" "${long[@]}" --resume killed.onnx --save resumed.onnx 2>/dev/null ||
    fail "resume after SIGKILL"
cmp -s whole.onnx resumed.onnx || fail "killed and resumed run differs from the uninterrupted one"
$PY - <<'PY' || fail "a checkpoint is not a valid ONNX model"
import onnx
m = onnx.load("killed.onnx")
onnx.checker.check_model(m, full_check=True)
meta = {p.key: p.value for p in m.metadata_props}
assert "nnplug-train.state" in meta and "nnplug-train.optimizer" in meta, list(meta)
import json
done = json.loads(meta["nnplug-train.state"])["epochs_done"]
assert 0 < done < 1500, "the kill came after %d of 1500 epochs: not mid-run" % done
print("checkpoint: onnx.checker full check passes")
PY

# refusals
expect_refused() { # label, words, args...
    local label=$1 words=$2
    shift 2
    rm -f out.onnx out.json
    "$BIN" train "$@" 2>err.txt
    local rc=$?
    [ $rc -eq 2 ] || fail "$label: exit $rc, expected 2"
    grep -qF -- "$words" err.txt || { fail "$label: stderr does not say '$words'"; cat err.txt; }
    [ ! -e out.onnx ] && [ ! -e out.json ] || fail "$label: a file was written"
}
expect_refused "another batch size" "run had another batch_size" \
    "$M" "${base[@]}" --batch-size 8 --optimizer adam --lr 0.01 --epochs 5 --resume part.onnx \
    --save out.onnx
expect_refused "another optimizer" "run had another optimizer" \
    "$M" "${base[@]}" --optimizer sgd --lr 0.01 --epochs 5 --resume part.onnx --save out.onnx
expect_refused "not a checkpoint" "not a checkpoint of nnplug train" \
    "$M" "${base[@]}" --epochs 5 --resume "$M" --save out.onnx
expect_refused "resume to json" "--resume needs --save FILE.onnx" \
    "$M" "${base[@]}" --epochs 5 --resume part.onnx --save out.json

[ $failed -eq 0 ] && echo "train_resume: all checks passed"
exit $((failed != 0))
