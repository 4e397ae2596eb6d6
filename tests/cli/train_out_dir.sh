#!/bin/bash
# `nnplug train --out-dir`: one .npy per weight, named after the weight, or
# LAYER_WEIGHT when several layers hold a weight of that name, plus the loss
# history (float64) and history.svg, the history drawn: checked against
# loss_history.npy and the per-epoch lines on stderr for 1 and several
# epochs, with and without accuracy and validation, a constant loss and a
# NaN validation loss. Needs NNP_BIN and a Python with numpy (NNP_PYTHON,
# default /usr/bin/python3).
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
PY=${NNP_PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_train_out_dir.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/model.json" <<'JSON'
{"class_name": "Sequential", "config": {"name": "m", "layers": [
  {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [null, 3]}},
  {"class_name": "Dense", "config": {"name": "d1", "units": 4, "seed": 1}},
  {"class_name": "BatchNormalization", "config": {"name": "bn"}},
  {"class_name": "Dense", "config": {"name": "d2", "units": 2, "seed": 2}}]}}
JSON
"$PY" -c '
import sys, numpy as np
r = np.random.default_rng(0)
np.save(sys.argv[1], r.normal(size=(10, 3)).astype(np.float32))
np.save(sys.argv[2], r.normal(size=(10, 2)).astype(np.float32))' "$WORK/x.npy" "$WORK/y.npy" || exit 1

out=$WORK/out
"$BIN" train "$WORK/model.json" --x "$WORK/x.npy" --y "$WORK/y.npy" --epochs 2 --batch-size 4 \
    --no-shuffle --save "$WORK/model.onnx" --out-dir "$out" 2>"$WORK/err" || {
    echo "FAIL: nnplug train:"; cat "$WORK/err"; exit 1; }
"$PY" - "$out" <<'PYEOF' || exit 1
import os, sys
import numpy as np
out = sys.argv[1]
want = {  # file -> (shape, dtype)
    "d1_kernel": ((3, 4), "float32"), "d1_bias": ((4,), "float32"),
    "d2_kernel": ((4, 2), "float32"), "d2_bias": ((2,), "float32"),
    "gamma": ((4,), "float32"), "beta": ((4,), "float32"),
    "moving_mean": ((4,), "float32"), "moving_variance": ((4,), "float32"),
    "loss_history": ((2,), "float64"), "batch_losses": ((6,), "float64"),
}
got = sorted(f[:-4] for f in os.listdir(out) if f.endswith(".npy"))
bad = []
if got != sorted(want):
    bad.append("files %s, expected %s" % (got, sorted(want)))
for name, (shape, dtype) in want.items():
    p = os.path.join(out, name + ".npy")
    if os.path.exists(p):
        a = np.load(p)
        if a.shape != shape or a.dtype != dtype or not np.isfinite(a).all():
            bad.append("%s: %s %s, expected %s %s" % (name, a.shape, a.dtype, shape, dtype))
others = [f for f in os.listdir(out) if not f.endswith(".npy")]
if others != ["history.svg"]:
    bad.append("files other than .npy %s, expected ['history.svg']" % others)
for b in bad:
    print("FAIL:", b)
print("train_out_dir: npy files %s" % ("failed" if bad else "passed"))
sys.exit(1 if bad else 0)
PYEOF
"$PY" "$(dirname "$0")/check_history_svg.py" "$out" "$WORK/err" loss || exit 1


# history.svg across runs: the series each run has, 1 and several epochs.
cat >"$WORK/dense.json" <<'JSON'
{"class_name": "Sequential", "config": {"name": "c", "layers": [
  {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [null, 3]}},
  {"class_name": "Dense", "config": {"name": "d1", "units": 8, "activation": "relu", "seed": 1}},
  {"class_name": "Dense", "config": {"name": "d2", "units": 3, "seed": 2}}]}}
JSON
"$PY" -c '
import sys, numpy as np
r = np.random.default_rng(1)
x = r.normal(size=(40, 3)).astype(np.float32)
np.save(sys.argv[1], x)
np.save(sys.argv[2], ((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)))
y = r.normal(size=(40, 3)).astype(np.float32)
np.save(sys.argv[3], y)
y[-8:] = np.nan   # the validation rows only
np.save(sys.argv[4], y)' "$WORK/xc.npy" "$WORK/yc.npy" "$WORK/yr.npy" "$WORK/ynan.npy" || exit 1

# case NAME SERIES Y [train options]: trains dense.json on xc.npy and Y, then
# checks DIR/history.svg draws exactly the comma-separated SERIES.
case_svg() {
    local name=$1 series=$2 y=$3
    shift 3
    "$BIN" train "$WORK/dense.json" --x "$WORK/xc.npy" --y "$y" --batch-size 8 --no-shuffle \
        --save "$WORK/$name.onnx" --out-dir "$WORK/$name" "$@" 2>"$WORK/$name.err" || {
        echo "FAIL: $name: nnplug train:"; cat "$WORK/$name.err"; return 1; }
    "$PY" "$(dirname "$0")/check_history_svg.py" "$WORK/$name" "$WORK/$name.err" "$series"
}
ce="--loss sparse_categorical_crossentropy --from-logits --optimizer adam --lr 0.02"
fails=0
case_svg mse_1 loss "$WORK/yr.npy" --epochs 1 || fails=1
case_svg mse_val_6 loss,val_loss "$WORK/yr.npy" --epochs 6 --validation-split 0.2 || fails=1
# shellcheck disable=SC2086
case_svg ce_1 loss,accuracy "$WORK/yc.npy" --epochs 1 $ce || fails=1
# shellcheck disable=SC2086
case_svg ce_val_1 loss,accuracy,val_loss,val_accuracy "$WORK/yc.npy" --epochs 1 \
    --validation-split 0.25 $ce || fails=1
# shellcheck disable=SC2086
case_svg ce_val_12 loss,accuracy,val_loss,val_accuracy "$WORK/yc.npy" --epochs 12 \
    --validation-split 0.25 $ce || fails=1
# no learning (every layer frozen): the same loss every epoch, a flat line
# inside the plot
sed 's/"seed": \([12]\)}/"seed": \1, "trainable": false}/' "$WORK/dense.json" >"$WORK/frozen.json"
cp "$WORK/dense.json" "$WORK/dense.keep.json"
cp "$WORK/frozen.json" "$WORK/dense.json"
CONSTANT=1 case_svg constant_4 loss "$WORK/yr.npy" --epochs 4 || fails=1
cp "$WORK/dense.keep.json" "$WORK/dense.json"
# NaN targets in the validation rows only: val_loss is NaN every epoch
NONFINITE=val_loss case_svg nan_val_3 loss,val_loss "$WORK/ynan.npy" --epochs 3 \
    --validation-split 0.2 || fails=1
[ $fails -eq 0 ] || exit 1
echo "train_out_dir: passed"
