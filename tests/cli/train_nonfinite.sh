#!/bin/bash
# `nnplug train` with non-finite losses, as Keras treats them: by default
# training goes on (exit 0) with one warning per affected epoch naming its
# first non-finite step, NaN/Inf reach only what they touch (a NaN in one
# feature spoils that feature's BatchNormalization channel alone), and the
# moving statistics follow Keras's form moving -= (moving - batch) *
# (1 - momentum), so an infinite moving mean becomes NaN at the next update;
# --terminate-on-nan stops after that step with exit 1, the checkpoint of
# the last finished epoch byte-identical to a run that stopped there, and
# nothing else written. Expected values come from numpy: a float64
# reference of the Keras formulas, and a float32 rerun of a diverging SGD.
# Needs NNP_BIN and a Python with numpy (NNP_PYTHON, default
# /usr/bin/python3).
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
PY=${NNP_PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_train_nonfinite.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# BatchNormalization alone over 4 features (momentum 0.9), trained with MSE
# and SGD: each feature's channel is independent of the others.
cat >"$WORK/bn.json" <<'JSON'
{"class_name": "Sequential", "config": {"name": "m", "layers": [
  {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [null, 4]}},
  {"class_name": "BatchNormalization", "config": {"name": "bn", "momentum": 0.9}}]}}
JSON
# Dense(1) without bias, kernel 1, on x = 1, y = 0 with lr 5.5: every SGD
# step multiplies the kernel by 1 - 2*5.5 = -10 until it overflows.
cat >"$WORK/dense.json" <<'JSON'
{"class_name": "Sequential", "config": {"name": "d", "layers": [
  {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [null, 1]}},
  {"class_name": "Dense", "config": {"name": "d", "units": 1, "use_bias": false,
    "kernel_initializer": {"class_name": "Ones", "config": {}}}}]}}
JSON
"$PY" - "$WORK" <<'PYEOF' || exit 1
import sys
import numpy as np
w = sys.argv[1]
r = np.random.default_rng(14)
x = (r.normal(size=(24, 4)) * [1.0, 2.0, 0.5, 1.5] + [0.5, -1.0, 2.0, 0.0]).astype(np.float32)
y = (0.8 * r.normal(size=(24, 4)) + 0.3).astype(np.float32)
np.save(w + "/y.npy", y)
xn = x.copy()
xn[13, 2] = np.nan          # feature 2 of sample 13: step 4 with batches of 4
np.save(w + "/x_nan.npy", xn)
xi = x[:8].copy()
xi[5, 1] = np.inf           # step 2 of 2 (the last): the moving mean ends Inf
np.save(w + "/x_inf_last.npy", xi)
xi = x[:8].copy()
xi[1, 1] = np.inf           # step 1 of 2: Inf, then NaN at step 2
np.save(w + "/x_inf_first.npy", xi)
np.save(w + "/y8.npy", y[:8])
np.save(w + "/ones.npy", np.ones((8, 1), np.float32))
np.save(w + "/zeros.npy", np.zeros((8, 1), np.float32))
PYEOF

# The reference (reference.py): what Keras computes, in numpy.
cat >"$WORK/reference.py" <<'PYEOF'
import numpy as np

def bn_train(x, y, epochs, bs, lr=0.1, momentum=0.9, eps=1e-3):
    """BatchNormalization alone, MSE, SGD, no shuffling, float64: the
    weights after training and every step's loss (computed before its
    update)."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    c = x.shape[1]
    g, b, mm, mv = np.ones(c), np.zeros(c), np.zeros(c), np.ones(c)
    losses = []
    with np.errstate(all="ignore"):
        for _ in range(epochs):
            for at in range(0, len(x), bs):
                xb, yb = x[at:at + bs], y[at:at + bs]
                mu = xb.mean(axis=0)
                var = ((xb - mu) ** 2).mean(axis=0)
                xhat = (xb - mu) / np.sqrt(var + eps)
                d = g * xhat + b - yb
                losses.append((d * d).mean())
                dy = 2 * d / d.size
                g = g - lr * (dy * xhat).sum(axis=0)
                b = b - lr * dy.sum(axis=0)
                mm = mm - (mm - mu) * (1 - momentum)     # Keras's form
                mv = mv - (mv - var) * (1 - momentum)
    return {"gamma": g, "beta": b, "moving_mean": mm, "moving_variance": mv}, np.array(losses)

def diverging_losses(steps, lr=5.5):
    """The Dense(1) run of dense.json on x = 1, y = 0, batch 1, float32 as
    nnplug computes it: every step's loss."""
    w = np.float32(1)
    out = []
    with np.errstate(all="ignore"):
        for _ in range(steps):
            out.append(float(w) * float(w))
            w = np.float32(w - np.float32(lr) * np.float32(2.0 * float(w)))
    return np.array(out)

def expected_warnings(losses, steps):
    """(epoch, first non-finite step, count) per epoch with one, 1-based."""
    out = []
    for e in range(len(losses) // steps):
        bad = [k for k in range(steps) if not np.isfinite(losses[e * steps + k])]
        if bad:
            out.append((e + 1, bad[0] + 1, len(bad)))
    return out
PYEOF

# check_warnings ERR EPOCHS STEPS LOSSES.npy: one warning line per epoch
# with a non-finite loss in the reference's LOSSES, naming its first step.
check_warnings() {
    "$PY" - "$WORK" "$@" <<'PYEOF'
import re, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import reference
err, epochs, steps, losses = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
want = reference.expected_warnings(np.load(losses), steps)
lines = open(err).read().splitlines()
warn = [l for l in lines if "warning" in l]
got = []
pat = (r"^nnplug: warning: epoch (\d+)/%d: loss is (nan|inf|-inf) at step (\d+) of %d, "
       r"the first of (\d+) steps with a non-finite loss; training goes on "
       r"\(--terminate-on-nan stops it\)$" % (epochs, steps))
for l in warn:
    m = re.match(pat, l)
    if not m:
        print("unexpected warning line: %r" % l)
        sys.exit(1)
    got.append((int(m.group(1)), int(m.group(3)), int(m.group(4))))
if got != want:
    print("warnings (epoch, step, count) %s, expected %s" % (got, want))
    sys.exit(1)
if len([l for l in lines if l.startswith("Epoch ")]) != epochs:
    print("expected %d 'Epoch' lines:\n%s" % (epochs, "\n".join(lines)))
    sys.exit(1)
print("warnings %s" % got)
PYEOF
}

# 1. A NaN in feature 2 of one sample: training goes on; only channel 2 of
# the BN weights is NaN, the other channels equal the float64 reference;
# every step's loss as the reference has it (NaN where it is NaN).
"$PY" - "$WORK" <<'PYEOF' || exit 1
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import reference
w = sys.argv[1]
weights, losses = reference.bn_train(np.load(w + "/x_nan.npy"), np.load(w + "/y.npy"), 3, 4)
np.save(w + "/ref_nan_losses.npy", losses)
for k, v in weights.items():
    np.save(w + "/ref_nan_%s.npy" % k, v)
PYEOF
out=$WORK/nan
"$BIN" train "$WORK/bn.json" --x "$WORK/x_nan.npy" --y "$WORK/y.npy" --epochs 3 --batch-size 4 \
    --no-shuffle --lr 0.1 --save "$WORK/nan.onnx" --out-dir "$out" 2>"$WORK/nan.err"
rc=$?
if [ $rc -ne 0 ]; then
    fail "nan_default: exit $rc, expected 0:"; cat "$WORK/nan.err"
elif ! check_warnings "$WORK/nan.err" 3 6 "$WORK/ref_nan_losses.npy"; then
    fail "nan_default: warnings"; cat "$WORK/nan.err"
elif ! "$PY" - "$WORK" "$out" <<'PYEOF'
import sys
import numpy as np
w, out = sys.argv[1], sys.argv[2]
bad = []
def close(name, got, want):
    same_nan = np.array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    if not same_nan or not np.allclose(got[fin], want[fin], rtol=1e-5, atol=1e-6):
        bad.append("%s: %s, expected %s" % (name, got, want))
for k in ("gamma", "beta", "moving_mean", "moving_variance"):
    got = np.load("%s/%s.npy" % (out, k)).astype(np.float64)
    want = np.load("%s/ref_nan_%s.npy" % (w, k))
    close(k, got, want)
    if not (np.isnan(want[2]) and np.isfinite(np.delete(want, 2)).all()):
        bad.append("reference %s: channel 2 alone should be NaN: %s" % (k, want))
want = np.load(w + "/ref_nan_losses.npy")
close("batch_losses", np.load(out + "/batch_losses.npy"), want)
if not (np.isfinite(want[:3]).all() and np.isnan(want[3])):
    bad.append("reference losses: steps 1-3 finite, step 4 NaN expected: %s" % want)
hist = np.load(out + "/loss_history.npy")
if hist.shape != (3,) or not np.isnan(hist).all():
    bad.append("loss_history %s, expected NaN for 3 epochs" % hist)
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PYEOF
then
    fail "nan_default: weights or losses"
else
    echo "ok   nan_default: exit 0, one warning per epoch, channel 2 alone NaN"
fi

# 2. Validation on NaN weights: evaluated (val_loss nan printed), no crash.
"$BIN" train "$WORK/bn.json" --x "$WORK/x_nan.npy" --y "$WORK/y.npy" --epochs 2 --batch-size 4 \
    --no-shuffle --validation-split 0.25 --save "$WORK/val.onnx" 2>"$WORK/val.err"
rc=$?
nval=$(grep -c "^Epoch [12]/2 loss nan val_loss nan " "$WORK/val.err")
nwarn=$(grep -c "warning: epoch" "$WORK/val.err")
if [ $rc -ne 0 ] || [ "$nval" -ne 2 ] || [ "$nwarn" -ne 2 ]; then
    fail "nan_validation: exit $rc, $nval epoch lines with val_loss nan, $nwarn warnings:"
    cat "$WORK/val.err"
else
    echo "ok   nan_validation: val_loss nan on both epochs"
fi

# 3. Inf in the moving mean: Inf after the batch that holds it, NaN after
# the next one (Inf - (Inf - mean) * 0.1); the other channels as the
# reference. The form moving*momentum + batch*(1 - momentum) would keep Inf.
for case in inf_last inf_first; do
    "$BIN" train "$WORK/bn.json" --x "$WORK/x_$case.npy" --y "$WORK/y8.npy" --epochs 1 \
        --batch-size 4 --no-shuffle --lr 0.1 --save "$WORK/$case.onnx" --out-dir "$WORK/$case" \
        2>"$WORK/$case.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$case: exit $rc:"; cat "$WORK/$case.err"; continue
    fi
    if "$PY" - "$WORK" "$case" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import reference
w, case = sys.argv[1], sys.argv[2]
x, y = np.load("%s/x_%s.npy" % (w, case)), np.load(w + "/y8.npy")
weights, _ = reference.bn_train(x, y, 1, 4)
want = weights["moving_mean"]
got = np.load("%s/%s/moving_mean.npy" % (w, case)).astype(np.float64)
bad = []
expect = np.inf if case == "inf_last" else np.nan
if not (np.array_equal(want[1:2], [expect], equal_nan=True)):
    bad.append("reference channel 1 is %s, expected %s" % (want[1], expect))
if not np.array_equal(got[1:2], want[1:2], equal_nan=True):
    bad.append("moving_mean[1] = %s, the reference has %s" % (got[1], want[1]))
keep = [0, 2, 3]
if not np.allclose(got[keep], want[keep], rtol=1e-5, atol=1e-6):
    bad.append("moving_mean %s, expected %s" % (got, want))
if case == "inf_first":
    # the other form of the same average keeps Inf: the check tells them apart
    m = 0.0
    with np.errstate(all="ignore"):
        for at in (0, 4):
            m = m * 0.9 + x[at:at + 4, 1].astype(np.float64).mean() * 0.1
    if m != np.inf:
        bad.append("moving*momentum + batch*(1 - momentum) gives %s, expected inf" % m)
for b in bad:
    print(b)
print("moving_mean[1] = %s" % got[1])
sys.exit(1 if bad else 0)
PYEOF
    then
        echo "ok   $case"
    else
        fail "$case"
    fi
done

# 4. --terminate-on-nan in a later epoch: exit 1, one line naming the epoch
# and step where the float32 rerun first meets a non-finite loss; --save
# holds the checkpoint of the epoch before, byte for byte what a run of
# that many epochs saves; nothing else is written (no --out-dir, no
# temporary file).
"$PY" - "$WORK" <<'PYEOF' || exit 1
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import reference
np.save(sys.argv[1] + "/ref_div_losses.npy", reference.diverging_losses(80))
PYEOF
read -r E S < <("$PY" -c '
import sys, numpy as np
l = np.load(sys.argv[1])
k = int(np.argmax(~np.isfinite(l)))
print(k // 8 + 1, k % 8 + 1)' "$WORK/ref_div_losses.npy")
mkdir "$WORK/t"
"$BIN" train "$WORK/dense.json" --x "$WORK/ones.npy" --y "$WORK/zeros.npy" --epochs 10 \
    --batch-size 1 --no-shuffle --lr 5.5 --terminate-on-nan --save "$WORK/t/model.onnx" \
    --out-dir "$WORK/t/out" >"$WORK/t.out" 2>"$WORK/t.err"
rc=$?
want="nnplug: train: loss is [-a-z]* at epoch $E/10, step $S of 8: training stopped (--terminate-on-nan); $WORK/t/model.onnx holds the checkpoint of epoch $((E - 1))"
"$BIN" train "$WORK/dense.json" --x "$WORK/ones.npy" --y "$WORK/zeros.npy" --epochs $((E - 1)) \
    --batch-size 1 --no-shuffle --lr 5.5 --save "$WORK/ref.onnx" 2>"$WORK/ref.err" ||
    { fail "terminate: the run of $((E - 1)) epochs failed:"; cat "$WORK/ref.err"; }
if [ $rc -ne 1 ]; then
    fail "terminate: exit $rc, expected 1:"; cat "$WORK/t.err"
elif [ "$E" -lt 2 ]; then
    fail "terminate: the reference diverges in epoch $E, expected a later one"
elif [ "$(grep -c '^nnplug:' "$WORK/t.err")" -ne 1 ] || ! grep -qx -- "$want" "$WORK/t.err"; then
    fail "terminate: stderr does not end with /$want/:"; cat "$WORK/t.err"
elif [ "$(grep -c '^Epoch ' "$WORK/t.err")" -ne $((E - 1)) ] || grep -q warning "$WORK/t.err"; then
    fail "terminate: expected $((E - 1)) epoch lines and no warning:"; cat "$WORK/t.err"
elif [ "$(ls -A "$WORK/t")" != model.onnx ]; then
    fail "terminate: left in the --save folder: $(ls -A "$WORK/t")"
elif ! cmp -s "$WORK/t/model.onnx" "$WORK/ref.onnx"; then
    fail "terminate: the checkpoint differs from a run of $((E - 1)) epochs"
else
    echo "ok   terminate: epoch $E step $S, exit 1, checkpoint of epoch $((E - 1)) intact"
fi

# 5. The same run without --terminate-on-nan goes on to the end: exit 0,
# one warning per epoch from the diverging one on.
"$BIN" train "$WORK/dense.json" --x "$WORK/ones.npy" --y "$WORK/zeros.npy" --epochs 8 \
    --batch-size 1 --no-shuffle --lr 5.5 --save "$WORK/div.onnx" 2>"$WORK/div.err"
rc=$?
"$PY" -c 'import sys, numpy as np; np.save(sys.argv[2], np.load(sys.argv[1])[:64])' \
    "$WORK/ref_div_losses.npy" "$WORK/ref_div64.npy"
if [ $rc -ne 0 ]; then
    fail "diverge_default: exit $rc, expected 0:"; cat "$WORK/div.err"
elif ! check_warnings "$WORK/div.err" 8 8 "$WORK/ref_div64.npy"; then
    fail "diverge_default: warnings"; cat "$WORK/div.err"
else
    echo "ok   diverge_default: exit 0"
fi

# 6. Stopped in the first epoch: an earlier file at --save stays as it was.
mkdir "$WORK/s"
echo "an earlier checkpoint" >"$WORK/s/model.onnx"
cp "$WORK/s/model.onnx" "$WORK/s.before"
"$BIN" train "$WORK/bn.json" --x "$WORK/x_nan.npy" --y "$WORK/y.npy" --epochs 3 --batch-size 4 \
    --no-shuffle --terminate-on-nan --save "$WORK/s/model.onnx" 2>"$WORK/s.err"
rc=$?
want="nnplug: train: loss is nan at epoch 1/3, step 4 of 6: training stopped (--terminate-on-nan); $WORK/s/model.onnx was not written"
if [ $rc -ne 1 ] || [ "$(grep -c . "$WORK/s.err")" -ne 1 ] || ! grep -qxF -- "$want" "$WORK/s.err"; then
    fail "terminate_first_epoch: exit $rc, stderr:"; cat "$WORK/s.err"
elif ! cmp -s "$WORK/s/model.onnx" "$WORK/s.before" || [ "$(ls -A "$WORK/s")" != model.onnx ]; then
    fail "terminate_first_epoch: the --save folder changed: $(ls -A "$WORK/s")"
else
    echo "ok   terminate_first_epoch: exit 1, the earlier file untouched"
fi

if [ $fails -gt 0 ]; then
    echo "train_nonfinite: $fails failed"
    exit 1
fi
echo "train_nonfinite: all passed"
