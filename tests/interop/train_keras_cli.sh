#!/bin/bash
# Trains every keras-tfjs reference case with `nnplug train` (the case's own
# model.json, learning rate, epochs and batch size; MSE, plain SGD, no
# shuffling), exports it to ONNX, predicts Xprobe from the exported file with
# `nnplug run`, and compares the weights, the loss history and the prediction
# with the tfjs-layers/Keras reference through compare.py.
#
# Needs NNP_BIN (nnplug), NNP_TESTDATA (the reference vectors) and a Python
# with numpy (NNP_PYTHON, default /usr/bin/python3). Exit 0 when every case
# passes (or fails as XFAIL below says it does); each failure prints what
# differs.
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
DATA=${NNP_TESTDATA:?NNP_TESTDATA must name the reference test data}
PY=${NNP_PYTHON:-/usr/bin/python3}
COMPARE=$DATA/compare.py
WANT=gamma,beta,moving_mean,moving_variance,loss_history,batch_losses,predict_probe

if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "train_keras_cli: $PY has no numpy" >&2
    exit 1
fi
cases=("$DATA"/keras-tfjs/*/)
if [ ! -f "${cases[0]}case.json" ]; then
    echo "train_keras_cli: no keras-tfjs cases under $DATA" >&2
    exit 1
fi
# Cases nnplug is known not to pass yet, with the reason. Such a case must
# still fail: one that passes is reported, and fails the suite, so that its
# line here is removed.
declare -A XFAIL=(
)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_train_keras.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# "LR EPOCHS BATCH ONLY" from case.json: ONLY is $WANT less the outputs the
# case lacks (center_false has no beta).
case_params() {
    "$PY" - "$1/case.json" "$WANT" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
t = c["training"]
only = [n for n in sys.argv[2].split(",") if n in c["outputs"]]
print(t["lr"], t["epochs"], t["batchSize"], ",".join(only))
PYEOF
}

# The first graph output that `nnplug info` lists.
output_name() {
    "$BIN" info "$1" | awk '/^outputs:/ { f = 1; next } f && /^[^ ]/ { exit } f { print $1; exit }'
}

failed=()
for dir in "${cases[@]}"; do
    dir=${dir%/}
    name=$(basename "$dir")
    out=$WORK/$name
    mkdir -p "$out"
    echo "=== $name"
    if ! read -r lr epochs bs only < <(case_params "$dir") || [ -z "$only" ]; then
        echo "FAIL $name: cannot read training parameters from $dir/case.json"
        failed+=("$name")
        continue
    fi
    if ! "$BIN" train "$dir/model.json" --x "$dir/inputs/X.npy" --y "$dir/inputs/Y.npy" \
            --loss mse --optimizer sgd --lr "$lr" --epochs "$epochs" --batch-size "$bs" \
            --no-shuffle --threads 2 --save "$out/out.onnx" --out-dir "$out" 2>"$out/train.err"; then
        echo "FAIL $name: nnplug train (lr $lr, $epochs epochs, batch $bs):"
        sed 's/^/    /' "$out/train.err"
        failed+=("$name")
        continue
    fi
    oname=$(output_name "$out/out.onnx")
    if [ -z "$oname" ] ||
       ! "$BIN" run "$out/out.onnx" -i "$dir/inputs/Xprobe.npy" \
            -o "$oname=$out/predict_probe.npy" 2>"$out/run.err"; then
        echo "FAIL $name: nnplug run of the exported model (output '$oname'):"
        sed 's/^/    /' "$out/run.err"
        failed+=("$name")
        continue
    fi
    if ! "$PY" "$COMPARE" "$dir" "$out" --only "$only"; then
        echo "FAIL $name: differs from the reference (see above)"
        failed+=("$name")
    fi
done

echo
# Known failures stay expected; an unexpected pass is an error.
remaining=()
for name in "${failed[@]}"; do
    if [ -n "${XFAIL[$name]:-}" ]; then
        echo "XFAIL $name: ${XFAIL[$name]}"
    else
        remaining+=("$name")
    fi
done
for name in "${!XFAIL[@]}"; do
    [ -d "$DATA/keras-tfjs/$name" ] || continue
    case " ${failed[*]} " in
        *" $name "*) ;;
        *) echo "XPASS $name: passes now; remove it from XFAIL"; remaining+=("$name") ;;
    esac
done
failed=("${remaining[@]}")
if [ ${#failed[@]} -gt 0 ]; then
    echo "train_keras_cli: ${#failed[@]} of ${#cases[@]} cases failed: ${failed[*]}"
    exit 1
fi
echo "train_keras_cli: ${#cases[@]} cases, all passed or failed as expected (XFAIL lines above)"
