#!/bin/bash
# `nnplug train --out-dir`: one .npy per weight, named after the weight, or
# LAYER_WEIGHT when several layers hold a weight of that name, plus the loss
# history (float64). Needs NNP_BIN and a Python with numpy (NNP_PYTHON,
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
"$PY" - "$out" <<'PYEOF'
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
if others:
    bad.append("unexpected files %s" % others)
for b in bad:
    print("FAIL:", b)
print("train_out_dir: %s" % ("failed" if bad else "passed"))
sys.exit(1 if bad else 0)
PYEOF
