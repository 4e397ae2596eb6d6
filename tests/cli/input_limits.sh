#!/bin/bash
# Input limits: a file cannot make nnplug allocate what it does not hold.
# Each case runs under a 400 MB address-space limit and expects exit 2, one
# line on stderr naming the file and what is wrong, printable text only, and
# no output file left behind. Needs NNP_BIN and NNP_SOURCE_DIR.
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
SRC=${NNP_SOURCE_DIR:?NNP_SOURCE_DIR must name the source tree}
BAD=$SRC/tests/fixtures/npy-bad
MODEL=$SRC/models/spirals.json
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_input_limits.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=0

# AddressSanitizer reserves terabytes of address space for its shadow, so a
# sanitized build runs without the limit (the release run checks the bound).
LIMIT=400000
if ldd "$BIN" 2>/dev/null | grep -q libasan; then
    LIMIT=unlimited
fi

# expect LABEL WORD... -- ARGS: nnplug ARGS (outputs into $WORK/out) under
# ulimit -v, exit 2, one printable stderr line holding every WORD.
expect() {
    local label=$1 words=() rc bad=""
    shift
    while [ "$1" != -- ]; do words+=("$1"); shift; done
    shift
    rm -rf "$WORK/out"
    mkdir "$WORK/out"
    (ulimit -v "$LIMIT"; exec "$BIN" "$@") >/dev/null 2>"$WORK/err"
    rc=$?
    [ $rc -eq 2 ] || bad="exit status $rc, expected 2"
    [ -z "$bad" ] && [ "$(grep -c . "$WORK/err")" -ne 1 ] && bad="not one line on stderr"
    [ -z "$bad" ] && LC_ALL=C grep -q '[^[:print:]]' "$WORK/err" && bad="unprintable bytes"
    for w in "${words[@]}"; do
        [ -z "$bad" ] && ! grep -qF -- "$w" "$WORK/err" && bad="stderr does not name '$w'"
    done
    [ -z "$bad" ] && [ -n "$(ls -A "$WORK/out")" ] && bad="left behind: $(ls -A "$WORK/out")"
    if [ -n "$bad" ]; then
        echo "FAIL $label: $bad; stderr:"
        sed 's/^/    /' "$WORK/err"
        failed=$((failed + 1))
    else
        echo "ok   $label: $(cat "$WORK/err")"
    fi
}

for verb in run train; do
    if [ $verb = run ]; then
        args=(run "$MODEL" -o "$WORK/out/y.npy" -i)
    else
        args=(train "$MODEL" --y "$BAD/short_data.npy" --save "$WORK/out/m.onnx" --x)
    fi
    expect "$verb: huge shape, small data" "huge_shape_small_data.npy" "data holds 48 bytes" \
        "[100000000,6] needs 2400000000" -- "${args[@]}" "$BAD/huge_shape_small_data.npy"
    expect "$verb: overflowing shape" "overflowing_shape.npy" "overflows" \
        -- "${args[@]}" "$BAD/overflowing_shape.npy"
    expect "$verb: control bytes in dtype" "control_bytes_dtype.npy" "'<f\\x01\\x1b'" \
        -- "${args[@]}" "$BAD/control_bytes_dtype.npy"
    expect "$verb: data one float short" "short_data.npy" "data holds 20 bytes" \
        -- "${args[@]}" "$BAD/short_data.npy"
done

# Every numeric option of train in its own range, and every path checked,
# before any work: exit 2 naming the option, nothing written.
X=$SRC/models/data/spirals_x.npy
Y=$SRC/models/data/spirals_y.npy
train=(train "$MODEL" --x "$X" --y "$Y" --loss sparse_categorical_crossentropy --from-logits
       --epochs 2 --save "$WORK/out/m.onnx")
for bad in "--lr nan" "--lr inf" "--lr -1" "--lr 0" "--momentum 1" "--momentum -0.5" \
           "--momentum nan" "--epochs -1" "--threads 0" "--threads 5000" "--validation-split 1" \
           "--validation-split -0.1" "--validation-split nan" "--opset 5" "--opset 99" \
           "--batch-size 0"; do
    read -r opt value <<<"$bad"
    expect "train $bad" "$opt" -- "${train[@]}" "$opt" "$value"
done
expect "train --out-dir on a file" "--out-dir /dev/null" "not a directory" \
    -- "${train[@]}" --out-dir /dev/null
expect "train --out-dir in a missing folder" "--out-dir $WORK/missing/d" "not a directory" \
    -- "${train[@]}" --out-dir "$WORK/missing/d"
expect "train --save in a missing folder" "--save $WORK/missing/m.onnx" "not a directory" \
    -- "${train[@]/$WORK\/out\/m.onnx/$WORK/missing/m.onnx}"

# Messages that name their subject (the file, the entry, the reference).
PY=${NNP_PYTHON:-/usr/bin/python3}
"$PY" -c 'import sys, numpy as np; np.save(sys.argv[1], np.zeros((12, 6), np.float32))' \
    "$WORK/x_12x6.npy" || exit 1
expect "run: a file of the wrong shape" "x_12x6.npy: shape [12,6] does not fit input 'points'" \
    "takes [?,2] (? is any size)" -- run "$MODEL" -i "$WORK/x_12x6.npy" -o "$WORK/out/y.npy"
expect "run -i =" "-i '=': the input name before '=' is empty" -- run "$MODEL" -i =
expect "run -i ''" "-i '': no file given" -- run "$MODEL" -i ""
expect "run -o ''" "run: -o '': no file given" -- run "$MODEL" -i "$X" -o ""
expect "run -o NAME=" "run: -o 'logits_out0=': no file given" -- run "$MODEL" -i "$X" -o logits_out0=
expect "run --out-dir ''" "run: --out-dir '': no folder given" -- run "$MODEL" -i "$X" --out-dir ""
expect "control bytes in a file name" 'a\x01b\xffc' -- info "$(printf 'a\001b\377c.onnx')"
expect "demo --out ''" "demo: --out '': no path given" -- demo --out ""
expect "demo --out DIR" "demo: --out $WORK: is a directory" -- demo --out "$WORK"
expect "demo --data ''" "demo: --data '': no folder given" -- demo --data ""
expect "run -i NAME=" "-i 'points=': no file after '='" -- run "$MODEL" -i points=
printf '%s' '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense",
  "config": {"name": "d", "units": 2, "batch_input_shape": [null, -3]}}]}}' >"$WORK/neg.json"
expect "info: a negative batch-shape entry" "neg.json: layer 'd_input': batch shape entry 1 is -3" \
    -- info "$WORK/neg.json"
printf '%s' '{"class_name": "Functional", "config": {"name": "f", "layers": [
  {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_input_shape": [null, 3]},
   "inbound_nodes": []},
  {"class_name": "BatchNormalization", "name": "bn1", "config": {"name": "bn1"},
   "inbound_nodes": [[[7, 0, 0, {}]]]}],
  "input_layers": [["x", 0, 0]], "output_layers": [["bn1", 0, 0]]}}' >"$WORK/ref.json"
expect "info: a malformed inbound reference" "ref.json: layer 'bn1': malformed inbound node reference [7,0,0,{}]" \
    -- info "$WORK/ref.json"

# The memory budget: what a model, a --shape or a file asks for is checked
# before it is allocated, and refused naming what needs how many bytes.
printf '%s' '{"class_name": "Sequential", "config": {"layers": [{"class_name":
  "BatchNormalization", "config": {"name": "bn", "batch_input_shape": [null, 99999999999]}}]}}' \
    >"$WORK/huge_bn.json"
expect "info: 10^11 channels of BatchNormalization" "huge_bn.json: layer 'bn'" \
    "needs 399999999996 bytes" "memory budget" -- info "$WORK/huge_bn.json"
expect "bench: a 4e16-byte --shape" "the --shape input" "needs 39999999200000004 bytes" \
    -- bench --layer BatchNormalization --shape 99999999,99999999
expect "run --max-memory 1M" "the values of an inference forward at batch 1200" \
    "(the largest: 'dense_1_out0', 307200 bytes)" "memory budget of 1048576 bytes" \
    -- --max-memory 1M run "$MODEL" -i "$X" -o "$WORK/out/y.npy"
expect "run --max-memory=lots" "--max-memory expects a size" "'lots'" \
    -- run --max-memory=lots "$MODEL" -i "$X"
rm -f "$WORK/out/y.npy"
NNP_MAX_MEMORY=1M "$BIN" run "$MODEL" -i "$X" -o "$WORK/out/y.npy" >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 2 ] && grep -qF "memory budget of 1048576 bytes" "$WORK/err" &&
   [ ! -e "$WORK/out/y.npy" ]; then
    echo "ok   NNP_MAX_MEMORY=1M run: $(cat "$WORK/err")"
else
    echo "FAIL NNP_MAX_MEMORY=1M run: exit $rc, the environment's budget was not applied:"
    sed 's/^/    /' "$WORK/err"
    failed=$((failed + 1))
fi

if [ $failed -ne 0 ]; then
    echo "input_limits: $failed cases failed"
    exit 1
fi
echo "input_limits: every case refused within bounds"
