#!/bin/sh
# torchvision's ResNet-18 (1000 classes), nnplug against PyTorch and ONNX
# Runtime on the same ONNX file, data and thread counts: training samples/s
# (nnplug vs PyTorch), inference ms per batch (nnplug vs PyTorch vs ONNX
# Runtime), achieved GFLOP/s against the measured FMA peak, and the training
# processes' peak resident memory, in one table. Builds nothing: run after
#     cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
#     cmake --build build -j2 --target nnplug_cli nnplug_plugins fma_peak
#
# usage: bench/resnet_compare.sh [BUILD_DIR]     (default: build/ beside bench/)
#
# Configurations (CONFIGS): 64 = 64x64 images, batch 16 (4.75 GFLOP forward
# per batch); 224 = 224x224, batch 8 (29.0 GFLOP). For each: the ONNX file
# from tools/export_torchvision_resnet18.py (torchvision's resnet18, seed 0,
# opset 15, BatchNormalization nodes kept, input fixed at BATCH x 3 x S x S),
# seeded N(0,1) images and labels 0..999 as .npy, written once into
# BUILD_DIR/bench/resnet/CONFIG/ (kept for later runs).
#
# Training: `nnplug train MODEL.onnx --x X.npy --y Y.npy` (sparse categorical
# cross-entropy from logits, SGD lr 0.01 momentum 0.9, batch B) against
# bench/resnet_torch.py train (the same torchvision module and weights,
# CrossEntropyLoss, torch.optim.SGD, the loop of bench/torch_train.py). One
# epoch is STEPS steps over STEPS x B samples; WARMUP epochs are dropped, the
# next EPOCHS timed. nnplug's epoch: its fit loop prints a progress line per
# step (stderr on a pseudo-terminal), and the epoch's samples/s is taken from
# the arrival times of the lines of its first and last steps (the epoch-end
# line's samples/s is rounded to an integer: too coarse at 6 samples/s); the
# printed value is kept in the JSON and a warning printed if they disagree.
# Peak RSS: getrusage(RUSAGE_CHILDREN) of a wrapper around each training
# process (bench/resnet_run.py), whole process, data and libraries included.
#
# Inference, one batch: `nnplug bench MODEL.onnx --direction fwd-infer`,
# PyTorch eval() under no_grad (bench/resnet_torch.py infer), onnxruntime-node
# (bench/resnet_ort.js: intraOpNumThreads N, interOpNumThreads 1,
# graphOptimizationLevel 'all'); INFER_WARMUP untimed runs, INFER_REPS timed,
# each round's median kept.
#
# Rounds: for each round, configuration and thread count, nnplug, PyTorch and
# ONNX Runtime run one after the other (training, then inference), so a busy
# spell hurts all; the table pools the rounds (training: every timed epoch;
# inference: the rounds' medians). GFLOP/s counts Conv and Gemm FLOPs from
# the model's shapes (bench/resnet_run.py flops), training as 3x forward;
# "% peak" against bench/fma_peak.c (16 FMA chains per thread, AVX-512 here).
#
# environment (defaults: a full run, 2 configurations x 2 thread counts x 3
# rounds, takes about 7-10 minutes on 2 idle cores):
#   CONFIGS="64 224"     THREADS="1 2"     ROUNDS=3
#   WARMUP=1  EPOCHS=2   training epochs per run, warm-up and timed
#   STEPS_64=6  STEPS_224=3   steps per epoch (at least 2)
#   INFER_WARMUP=2  INFER_REPS=5
#   PYTHON=/usr/bin/python3   interpreter with numpy, onnx, torch, torchvision
#                        (Debian's; the first python3 on PATH may lack torch)
#   ORT=1                0: leave ONNX Runtime out. Else onnxruntime-node is
#                        looked for on NODE_PATH, in BUILD_DIR/tests/interop/
#                        node and BUILD_DIR/bench/node, and installed into the
#                        latter (tests/interop/setup_ort.sh, npm) when missing
#   STAT=median          or best: rank by the fastest epoch / round
#   PEAK_MS=300          length of each fma_peak run
# Output: the table on stdout (also BUILD_DIR/bench/resnet-DATE.txt); raw JSON
# lines in BUILD_DIR/bench/resnet-DATE.jsonl; reprint the table with
#   /usr/bin/python3 bench/resnet_run.py table BUILD_DIR/bench/resnet-DATE.jsonl
set -eu

here=$(cd "$(dirname "$0")" && pwd)
me=resnet_compare.sh
die() {
    echo "$me: $*" >&2
    exit 1
}
case ${1:-} in
-h | --help)
    sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac
builddir=${1:-$here/../build}
[ -d "$builddir" ] || die "build directory $builddir does not exist (usage: $me [BUILD_DIR])"
build=$(cd "$builddir" && pwd)
configs=${CONFIGS:-64 224}
threads=${THREADS:-1 2}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-1}
epochs=${EPOCHS:-2}
infer_warmup=${INFER_WARMUP:-2}
infer_reps=${INFER_REPS:-5}
python=${PYTHON:-/usr/bin/python3}
use_ort=${ORT:-1}
stat=${STAT:-median}
peak_ms=${PEAK_MS:-300}

for v in "$rounds" "$epochs" "$infer_reps"; do
    case $v in '' | *[!0-9]* | 0) die "ROUNDS, EPOCHS and INFER_REPS must be positive integers" ;; esac
done
for v in "$warmup" "$infer_warmup"; do
    case $v in '' | *[!0-9]*) die "WARMUP and INFER_WARMUP must be integers >= 0" ;; esac
done
for t in $threads; do
    case $t in '' | *[!0-9]* | 0) die "THREADS: '$t' is not a positive integer" ;; esac
done
steps_of() {
    case $1 in 64) echo "${STEPS_64:-6}" ;; 224) echo "${STEPS_224:-3}" ;; esac
}
for c in $configs; do
    case $c in
    64 | 224) ;;
    *) die "CONFIGS: '$c' is not one of 64 (64x64, batch 16) and 224 (224x224, batch 8)" ;;
    esac
    case $(steps_of "$c") in
    '' | *[!0-9]* | 0 | 1) die "STEPS_$c must be an integer >= 2 (the first step of each epoch is not timed)" ;;
    esac
done

# ---- prerequisites ----------------------------------------------------------
bin=$build/bin/nnplug
[ -x "$bin" ] || die "$bin is missing: build it first (cmake --build $build --target nnplug_cli nnplug_plugins)"
export NNP_PLUGIN_PATH="${NNP_PLUGIN_PATH:-$build/plugins}"
[ -d "$NNP_PLUGIN_PATH" ] || die "no plugins in $NNP_PLUGIN_PATH: build them (cmake --build $build --target nnplug_plugins)"
peak_bin=$build/bin/fma_peak
[ -x "$peak_bin" ] || die "$peak_bin is missing: build it (cmake --build $build --target fma_peak)"
command -v "$python" >/dev/null 2>&1 || die "no interpreter $python (set PYTHON)"
if ! err=$("$python" -c 'import numpy, onnx, torch, torchvision' 2>&1); then
    die "$python lacks numpy, onnx, torch or torchvision (Debian: apt-get install python3-torch python3-torchvision python3-onnx): $(echo "$err" | tail -n 1)"
fi
ort_ver=-
ort_note=
if [ "$use_ort" != 0 ]; then
    command -v node >/dev/null 2>&1 ||
        die "node is not installed (Debian: apt-get install nodejs npm), or set ORT=0 to leave ONNX Runtime out"
    ort_path=
    for d in ${NODE_PATH:-} "$build/tests/interop/node/node_modules" "$build/bench/node/node_modules"; do
        if [ -d "$d" ] && NODE_PATH=$d node "$here/resnet_ort.js" --version >/dev/null 2>&1; then
            ort_path=$d
            break
        fi
    done
    if [ -z "$ort_path" ]; then
        echo "$me: onnxruntime-node is not installed; installing it into $build/bench/node" \
            "(tests/interop/setup_ort.sh; ORT=0 leaves ONNX Runtime out)..." >&2
        if ! sh "$here/../tests/interop/setup_ort.sh" "$build/bench/node" >&2; then
            die "could not install onnxruntime-node. Install it by hand:
    sh tests/interop/setup_ort.sh $build/bench/node
(that is: cd $build/bench/node && npm install --ignore-scripts onnxruntime-node@1.30.0),
or run with ORT=0 to leave ONNX Runtime out"
        fi
        ort_path=$build/bench/node/node_modules
    fi
    export NODE_PATH="$ort_path"
    ort_ver=$(node "$here/resnet_ort.js" --version)
    ort_note=", ORT"
fi

# ---- header ------------------------------------------------------------------
out=$build/bench
mkdir -p "$out"
stamp=$(date +%Y%m%d-%H%M%S)
results=$out/resnet-$stamp.jsonl
: >"$results"
commit=$(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git -C "$here/.." status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit, tree modified"
fi
nnplug_ver="$("$bin" --version 2>/dev/null | head -n 1) (source at $commit)"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
family=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
model=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$family" ] && cpu="${cpu:-unknown}, family $family model $model"
isa=SSE
if grep -q avx512f /proc/cpuinfo; then
    isa=AVX-512
elif grep -q avx2 /proc/cpuinfo; then
    isa=AVX2
fi
torch_ver=$("$python" -c 'import torch; print(torch.__version__)')
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "$nnplug_ver; torch $torch_ver; onnxruntime-node $ort_ver"
echo "CPU: ${cpu:-unknown} ($isa), $(nproc) processors; load average at start: $load"
if awk -v l="${load%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
    echo "$me: warning: the machine is busy (load $load): the numbers will be noisy" >&2
fi
"$python" - "$results" "$nnplug_ver" "${cpu:-unknown} ($isa)" "$(nproc)" "$threads" "$configs" \
    "$rounds" "$torch_ver" "$ort_ver" "$load" "$warmup" "$epochs" "$infer_warmup" "$infer_reps" <<'PYEOF'
import json, sys
a = sys.argv[1:]
with open(a[0], 'a') as f:
    f.write(json.dumps({'kind': 'header', 'nnplug': a[1], 'cpu': a[2], 'nproc': int(a[3]),
                        'threads': [int(t) for t in a[4].split()], 'configs': a[5].split(),
                        'rounds': int(a[6]), 'torch': a[7], 'ort': a[8], 'load': a[9],
                        'warmup': int(a[10]), 'epochs': int(a[11]),
                        'infer_warmup': int(a[12]), 'infer_reps': int(a[13])}) + '\n')
PYEOF

# ---- FMA peak ------------------------------------------------------------------
echo "measuring the FMA peak (bench/fma_peak)..." >&2
"$peak_bin" --json --threads "$threads" --ms "$peak_ms" >>"$results"

# ---- models and data -----------------------------------------------------------
for c in $configs; do
    case $c in 64) size=64 batch=16 ;; 224) size=224 batch=8 ;; esac
    steps=$(steps_of "$c")
    echo "preparing $c: ResNet-18 ONNX file and data in $out/resnet/$c..." >&2
    "$python" "$here/resnet_run.py" prep --config "$c" "$out/resnet/$c" "$size" "$batch" \
        $((steps * batch)) >>"$results" || die "could not write the model or data for $c"
done

# ---- the rounds ----------------------------------------------------------------
r=1
while [ "$r" -le "$rounds" ]; do
    echo "{\"kind\": \"round\", \"round\": $r, \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$results"
    for c in $configs; do
        case $c in 64) batch=16 ;; 224) batch=8 ;; esac
        steps=$(steps_of "$c")
        w=$out/resnet/$c
        for t in $threads; do
            export OMP_NUM_THREADS="$t"
            echo "round $r/$rounds: $c, $t thread(s): nnplug train..." >&2
            "$python" "$here/resnet_run.py" train-nnplug --config "$c" --threads "$t" \
                --warmup "$warmup" --steps "$steps" --batch "$batch" --log "$w/train-nnplug-t$t.log" -- \
                "$bin" train "$w/model.onnx" --x "$w/x.npy" --y "$w/y.npy" \
                --loss sparse_categorical_crossentropy --from-logits --optimizer sgd \
                --lr 0.01 --momentum 0.9 --epochs $((warmup + epochs)) --batch-size "$batch" \
                --seed 1 --threads "$t" --save "$w/trained-t$t.onnx" >>"$results"
            echo "round $r/$rounds: $c, $t thread(s): PyTorch train..." >&2
            "$python" "$here/resnet_run.py" train-torch --config "$c" --threads "$t" \
                --log "$w/train-torch-t$t.log" -- \
                "$python" "$here/resnet_torch.py" train --x "$w/x.npy" --y "$w/y.npy" \
                --batch "$batch" --steps "$steps" --warmup "$warmup" --reps "$epochs" \
                --threads "$t" --config "$c" >>"$results"
            echo "round $r/$rounds: $c, $t thread(s): inference (nnplug, PyTorch$ort_note)..." >&2
            "$python" "$here/resnet_run.py" infer-nnplug --config "$c" --threads "$t" -- \
                "$bin" bench "$w/model.onnx" --direction fwd-infer --threads "$t" \
                --shape "$batch,3,$c,$c" --warmup "$infer_warmup" --reps "$infer_reps" \
                --json >>"$results"
            "$python" "$here/resnet_torch.py" infer --x "$w/x.npy" --batch "$batch" \
                --warmup "$infer_warmup" --reps "$infer_reps" --threads "$t" \
                --config "$c" >>"$results"
            if [ "$use_ort" != 0 ]; then
                node "$here/resnet_ort.js" "$w/model.onnx" "$w/x.npy" --batch "$batch" \
                    --threads "$t" --warmup "$infer_warmup" --reps "$infer_reps" \
                    --config "$c" >>"$results"
            fi
        done
    done
    r=$((r + 1))
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

"$python" "$here/resnet_run.py" table "$results" --stat "$stat" | tee "$out/resnet-$stamp.txt"
echo
echo "raw results: $results"
