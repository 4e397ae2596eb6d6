#!/bin/sh
# BatchNormalization benchmark: nnplug vs oneDNN (bn_compare, one process,
# with a STREAM triad for reference) and vs PyTorch (torch_bn.py), merged
# into one table by combine.py. Builds nothing: run after
#     cmake -S . -B build && cmake --build build
#
# usage: bench/run.sh [BUILD_DIR]        (default: build/ beside bench/)
# environment:
#   REPS=N        runs per measurement, at least (default 15; small shapes
#                 get more, up to ~150 ms per implementation and row)
#   THREADS=1,2   OpenMP thread counts
#   ONLY=TEXT     only shapes whose label contains TEXT, e.g. ONLY=[8,16
#   PYTHON=...    interpreter with torch (default /usr/bin/python3, Debian's
#                 python3-torch; the first python3 on PATH may lack it)
#   STAT=min      rank by the fastest run instead of the median (steadier
#                 on a shared machine)
#   ROUNDS=N      run both programs N times, alternating (default 1); the
#                 table gives each measurement's median over the rounds
# Raw JSON lines are kept in BUILD_DIR/bench/results-*.jsonl; reprint the
# table from them with: bench/combine.py [--stat min] BUILD_DIR/bench/results-*.jsonl
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
reps=${REPS:-15}
threads=${THREADS:-1,2}
python=${PYTHON:-/usr/bin/python3}
only_args=""
if [ -n "${ONLY:-}" ]; then
    only_args="--only $ONLY"
fi

bin=$build/bin/bn_compare
if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is missing: build first (cmake --build $build)" >&2
    exit 1
fi
out=$build/bench
mkdir -p "$out"

# The machine may be shared: say how busy it was when we started.
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) processors"
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l > 0.8) }'; then
    echo "run.sh: warning: the machine is busy; runs with as many threads as cores" \
         "will wait for it (rows marked !)" >&2
fi

# OpenMP waiting is left at libgomp's default (spin a while, then sleep),
# what users get; nnplug, oneDNN and PyTorch all use that same runtime.

rounds=${ROUNDS:-1}
rm -f "$out"/results-bn_compare*.jsonl "$out"/results-torch*.jsonl
have_torch=0
if "$python" -c "import torch" 2>/dev/null; then
    have_torch=1
else
    echo "run.sh: $python has no torch module: PyTorch columns left empty" >&2
fi
files=""
r=1
while [ "$r" -le "$rounds" ]; do
    sfx=""
    [ "$rounds" -gt 1 ] && sfx="-r$r"
    echo "running bn_compare (nnplug, oneDNN, STREAM triad)${sfx:+, round $r}..."
    # shellcheck disable=SC2086 # only_args is meant to split
    "$bin" --json --reps "$reps" --threads "$threads" $only_args \
        >"$out/results-bn_compare$sfx.jsonl"
    files="$files $out/results-bn_compare$sfx.jsonl"
    if [ "$have_torch" = 1 ]; then
        echo "running torch_bn.py (PyTorch)${sfx:+, round $r}..."
        # shellcheck disable=SC2086
        "$python" "$here/torch_bn.py" --reps "$reps" --threads "$threads" $only_args \
            >"$out/results-torch$sfx.jsonl"
        files="$files $out/results-torch$sfx.jsonl"
    fi
    r=$((r + 1))
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# shellcheck disable=SC2086
"$python" "$here/combine.py" --stat "${STAT:-median}" $files
