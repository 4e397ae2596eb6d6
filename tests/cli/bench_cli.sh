#!/bin/bash
# `nnplug bench --layer`: the JSON record (statistics in order, the shape,
# the parameters timed, the compulsory traffic computed here from the shape)
# and the text header naming the parameters; bad arguments exit 2 with one
# line naming the culprit. Needs NNP_BIN and a Python (NNP_PYTHON, default
# /usr/bin/python3).
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
PY=${NNP_PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_bench_cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=0
fail() { echo "bench_cli: $*" >&2; failed=1; }

# JSON: [4,8,5,5] floats are 3200 bytes; fwd-infer moves x and y (2S),
# fwd-train x twice and y (3S), bwd x and dy twice and dx (5S).
for pair in fwd-infer:2 fwd-train:3 bwd:5; do
    dir=${pair%%:*} mult=${pair##*:}
    if ! "$BIN" bench --layer BatchNormalization --shape 4,8,5,5 --config '{"axis": 1}' \
        --direction "$dir" --threads 1 --reps 3 --warmup 1 --json >"$WORK/$dir.json"; then
        fail "$dir: bench failed"
        continue
    fi
    "$PY" - "$WORK/$dir.json" "$dir" "$((mult * 3200))" <<'PYEOF' || fail "$dir: bad JSON record"
import json, sys
r = json.load(open(sys.argv[1]))
want = {"layer": "BatchNormalization", "shape": [4, 8, 5, 5], "direction": sys.argv[2],
        "threads": 1, "reps": 3, "warmup": 1, "config": '{"axis": 1}',
        "bytes": float(sys.argv[3])}
bad = {k: (r.get(k), v) for k, v in want.items() if r.get(k) != v}
assert not bad, bad
assert 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"], r
assert abs(r["gbps"] - r["bytes"] / (r["median_ms"] * 1e-3) / 1e9) <= 1e-9 * r["gbps"], r
PYEOF
done

# text: the header says which parameters were timed
out=$("$BIN" bench --layer BatchNormalization --shape 4,8 --reps 2 --warmup 0) ||
    fail "text run failed"
grep -q "parameters: the kind's defaults" <<<"$out" || fail "no parameters line: $out"
out=$("$BIN" bench --layer BatchNormalization --shape 4,8 --config '{"axis": 0}' --reps 2 \
    --warmup 0) || fail "text run with --config failed"
grep -qF 'parameters: {"axis": 0}' <<<"$out" || fail "--config not shown: $out"

# bad arguments: exit 2, one stderr line holding WORD
expect() {
    local word=$1 rc
    shift
    "$BIN" bench "$@" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    [ "$rc" = 2 ] || fail "$*: exit $rc, expected 2"
    [ "$(wc -l <"$WORK/err")" = 1 ] || fail "$*: expected one line on stderr: $(cat "$WORK/err")"
    grep -qF -- "$word" "$WORK/err" || fail "$*: stderr does not name '$word': $(cat "$WORK/err")"
}
expect "'Nope'" --layer Nope --shape 4,8
expect "'4,x'" --layer BatchNormalization --shape 4,x
expect "axis 5" --layer BatchNormalization --shape 4,8 --config '{"axis": 5}'
expect "'sideways'" --layer BatchNormalization --shape 4,8 --direction sideways
exit $failed
