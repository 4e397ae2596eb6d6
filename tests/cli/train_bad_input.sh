#!/bin/bash
# `nnplug train` with bad input: exit status 2, one line on stderr naming the
# culprit (the file, or the unknown loss/optimizer name), and no --save file
# (nor anything else) left behind. Needs NNP_BIN, NNP_TESTDATA and a Python
# with numpy (NNP_PYTHON, default /usr/bin/python3).
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
DATA=${NNP_TESTDATA:?NNP_TESTDATA must name the reference test data}
CASE=$DATA/keras-tfjs/defaults_2d
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_train_bad.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
X=$CASE/inputs/X.npy
Y=$CASE/inputs/Y.npy
PY=${NNP_PYTHON:-/usr/bin/python3}
# Y with fewer samples than X; X and Y with one feature too few.
Y5=$WORK/y_5_samples.npy
X_NARROW=$WORK/x_narrow.npy
Y_NARROW=$WORK/y_narrow.npy
if ! "$PY" - "$X" "$Y" "$Y5" "$X_NARROW" "$Y_NARROW" <<'PYEOF'
import sys
import numpy as np
x, y = np.load(sys.argv[1]), np.load(sys.argv[2])
np.save(sys.argv[3], y[:5])
np.save(sys.argv[4], x[:, 1:])
np.save(sys.argv[5], y[:, 1:])
PYEOF
then
    echo "train_bad_input: $PY cannot write the bad inputs (needs numpy)" >&2
    exit 1
fi

failed=0
# expect LABEL WORD... -- ARGS: runs train with ARGS, expects exit 2, one
# stderr line holding every WORD, and an empty output folder.
expect() {
    local label=$1 words=() out rc
    shift
    while [ "$1" != -- ]; do words+=("$1"); shift; done
    shift
    out=$WORK/out_$label
    mkdir "$out"
    "$BIN" train "$@" --save "$out/model.onnx" --out-dir "$out/dir" >/dev/null 2>"$WORK/err"
    rc=$?
    local lines
    lines=$(grep -c . "$WORK/err")
    local bad=""
    [ $rc -eq 2 ] || bad="exit status $rc, expected 2"
    [ -z "$bad" ] && [ "$lines" -ne 1 ] && bad="$lines lines on stderr, expected one"
    for w in "${words[@]}"; do
        [ -z "$bad" ] && ! grep -qF -- "$w" "$WORK/err" && bad="stderr does not name '$w'"
    done
    [ -z "$bad" ] && [ -n "$(ls -A "$out")" ] && bad="left behind: $(ls -A "$out")"
    if [ -n "$bad" ]; then
        echo "FAIL $label: $bad; stderr:"
        sed 's/^/    /' "$WORK/err"
        failed=$((failed + 1))
    else
        echo "ok   $label: $(cat "$WORK/err")"
    fi
}

M=$CASE/model.json
expect missing_x "$WORK/no_such_x.npy" -- \
    "$M" --x "$WORK/no_such_x.npy" --y "$Y"
expect missing_y "$WORK/no_such_y.npy" -- \
    "$M" --x "$X" --y "$WORK/no_such_y.npy"
expect not_npy "$M" -- \
    "$M" --x "$M" --y "$Y"
expect sample_mismatch "$X" "$Y5" -- \
    "$M" --x "$X" --y "$Y5"
expect x_shape "$X_NARROW" -- \
    "$M" --x "$X_NARROW" --y "$Y"
expect y_shape "$Y_NARROW" -- \
    "$M" --x "$X" --y "$Y_NARROW"
expect missing_model "$WORK/no_such_model.json" -- \
    "$WORK/no_such_model.json" --x "$X" --y "$Y"
expect unknown_loss "no_such_loss" -- \
    "$M" --x "$X" --y "$Y" --loss no_such_loss
expect unknown_optimizer "no_such_optimizer" -- \
    "$M" --x "$X" --y "$Y" --optimizer no_such_optimizer
expect bad_epochs "--epochs" -- \
    "$M" --x "$X" --y "$Y" --epochs many

if [ $failed -gt 0 ]; then
    echo "train_bad_input: $failed failed"
    exit 1
fi
echo "train_bad_input: all passed"
