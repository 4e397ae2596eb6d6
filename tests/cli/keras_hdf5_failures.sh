#!/bin/bash
# Keras model files on which the HDF5 library itself crashes (SIGSEGV) or
# never returns (tests/fixtures/keras-bad, made by gen.py there): `nnplug
# info`, `run` and `convert` exit 2 within seconds, with one line on stderr
# naming the file and saying the HDF5 library failed on it, write nothing,
# and leave no process behind. The hanging files run under a 2 s limit
# (NNP_HDF5_TIME_LIMIT); one runs under the default limit (10 s for a small
# file). Under AddressSanitizer the reader process is instrumented too: its
# memcpy interceptor stops HDF5's wild copy, reports it on stderr and exits
# with status 1, which nnplug reports instead of the signal; the message is
# then stderr's last line. Needs NNP_BIN and NNP_SOURCE_DIR.
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
SRC=${NNP_SOURCE_DIR:?NNP_SOURCE_DIR must name the source tree}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_keras_hdf5.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=0

if "$BIN" info "$SRC/tests/fuzz/corpus-keras-file/k3.keras" 2>&1 >/dev/null |
   grep -q "without HDF5/libzip support"; then
    echo "SKIP: nnplug was built without HDF5/libzip (NNP_WITH_KERAS_FILES=OFF)"
    exit 0
fi
# Copies under $WORK: a process left behind is found by its command line.
mkdir "$WORK/in"
cp "$SRC"/tests/fixtures/keras-bad/hdf5_* "$WORK/in/"
X=$SRC/models/data/spirals_x.npy
ASAN=0
ldd "$BIN" 2>/dev/null | grep -q libasan && ASAN=1

# expect LABEL SECONDS TEXT [ASAN_TEXT] -- ARGS: nnplug ARGS exits 2 within
# SECONDS with one stderr line holding TEXT (under AddressSanitizer: a last
# line holding TEXT or ASAN_TEXT); nothing in $WORK/out; no process left.
expect() {
    local label=$1 most=$2 text=$3 alt=$3 rc bad="" start took
    shift 3
    [ "$1" != -- ] && { alt=$1; shift; }
    shift
    # AddressSanitizer's report (symbolized) takes its time
    [ $ASAN = 1 ] && most=$((most * 3))
    rm -rf "$WORK/out"
    mkdir "$WORK/out"
    start=$(date +%s%N)
    "$BIN" "$@" >/dev/null 2>"$WORK/err"
    rc=$?
    took=$((($(date +%s%N) - start) / 1000000))
    [ $rc -eq 2 ] || bad="exit status $rc, expected 2"
    if [ $ASAN = 1 ]; then
        tail -n 1 "$WORK/err" >"$WORK/last"
        [ -z "$bad" ] && ! grep -qF -- "$text" "$WORK/last" && ! grep -qF -- "$alt" "$WORK/last" &&
            bad="stderr's last line does not say '$text'"
    else
        [ -z "$bad" ] && [ "$(grep -c . "$WORK/err")" -ne 1 ] && bad="not one line on stderr"
        [ -z "$bad" ] && ! grep -qF -- "$text" "$WORK/err" && bad="stderr does not say '$text'"
    fi
    [ -z "$bad" ] && [ $took -gt $((most * 1000)) ] && bad="took $took ms (at most $most s)"
    [ -z "$bad" ] && [ -n "$(ls -A "$WORK/out")" ] && bad="left behind: $(ls -A "$WORK/out")"
    [ -z "$bad" ] && pgrep -f -- "$WORK/in/" >/dev/null && bad="a process was left: $(pgrep -af -- "$WORK/in/")"
    if [ -n "$bad" ]; then
        echo "FAIL $label: $bad; stderr:"
        sed 's/^/    /' "$WORK/err"
        failed=$((failed + 1))
    else
        echo "ok   $label ($took ms): $(tail -n 1 "$WORK/err")"
    fi
}

for ext in h5 keras; do
    crash=$WORK/in/hdf5_crash.$ext
    hang=$WORK/in/hdf5_hang.$ext
    said="$crash: the HDF5 library failed on this file (it crashed: signal 11); the file is damaged"
    asan="$crash: the HDF5 library failed on this file (it exited with status 1); the file is damaged"
    expect "info crash.$ext" 5 "$said" "$asan" -- info "$crash"
    expect "run crash.$ext" 5 "$said" "$asan" -- run "$crash" -i "$X" -o "$WORK/out/y.npy"
    expect "convert crash.$ext" 5 "$said" "$asan" -- convert "$crash" "$WORK/out/m.keras"
    expect "convert crash.$ext to onnx" 5 "$said" "$asan" -- convert "$crash" "$WORK/out/m.onnx"
    said="$hang: the HDF5 library failed on this file (it did not finish within 2 s); the file is damaged"
    export NNP_HDF5_TIME_LIMIT=2
    expect "info hang.$ext" 6 "$said" -- info "$hang"
    expect "run hang.$ext" 6 "$said" -- run "$hang" -i "$X" -o "$WORK/out/y.npy"
    expect "convert hang.$ext" 6 "$said" -- convert "$hang" "$WORK/out/m.keras"
    unset NNP_HDF5_TIME_LIMIT
done
# the default limit: 10 s and 1 s per 10 MB
expect "info hang.h5, default limit" 15 \
    "hdf5_hang.h5: the HDF5 library failed on this file (it did not finish within 10 s)" \
    -- info "$WORK/in/hdf5_hang.h5"

if [ $failed -ne 0 ]; then
    echo "$failed failed"
    exit 1
fi
echo "all passed"
