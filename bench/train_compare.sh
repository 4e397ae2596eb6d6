#!/bin/sh
# Training throughput, nnplug vs Debian's PyTorch, in one run: the same
# models, data, optimizer, loss, batch size and thread count; full training
# steps (gather the batch, forward, loss, backward, SGD-momentum update).
# Builds nothing: run after
#     cmake -S . -B build && cmake --build build
#
# usage: bench/train_compare.sh [BUILD_DIR]      (default: build/ beside bench/)
#
# Models (nnplug: Keras JSON written here; PyTorch: bench/torch_train.py):
#   mlp     784 -> Dense 256 + BN + ReLU -> Dense 256 + BN + ReLU -> Dense 10, batch 128
#   cnn     32x32x3 -> Conv 3x3 32 (same) + BN + ReLU + MaxPool 2 -> Conv 3x3 64
#           (same) + BN + ReLU -> GlobalAvgPool -> Dense 10, batch 64;
#           nnplug channels_last (Keras's default), PyTorch NCHW
#   cnn_cf  the cnn with nnplug in channels_first (the layout of ONNX
#           imports), against the same PyTorch numbers
# Loss: sparse categorical cross-entropy from logits (PyTorch:
# CrossEntropyLoss); SGD lr 0.01 momentum 0.9; BN epsilon 1e-3, Keras
# momentum 0.99 (PyTorch 0.01); seeded N(0,1) data with 10 classes, the same
# .npy files for both.
#
# Timing: one epoch is STEPS steps over a freshly shuffled data set of
# STEPS x batch samples. `nnplug train` prints each epoch's samples/s (the
# fit loop's own clock, the checkpoint save after each epoch excluded);
# torch_train.py times its epochs the same way. WARMUP epochs are dropped,
# the median of the next REPS is reported. Threads: nnplug --threads N and
# OMP_NUM_THREADS=N; PyTorch torch.set_num_threads(N) and OMP_NUM_THREADS=N.
# nnplug and PyTorch alternate for each (model, threads) so that a busy
# machine hurts both alike; ROUNDS > 1 repeats everything and pools the
# epochs.
#
# environment:
#   THREADS="1 2"   thread counts
#   MODELS="mlp cnn cnn_cf"
#   REPS=7  WARMUP=2  ROUNDS=1
#   MLP_STEPS=40  CNN_STEPS=12
#   PYTHON=/usr/bin/python3   an interpreter with numpy and torch
#   STAT=best       rank by the fastest epoch instead of the median (steadier
#                   on a shared machine)
#   OMP_WAIT_POLICY   left as it is (libgomp's default: spin a while, then
#                   sleep), what users get; both frameworks use libgomp. On a
#                   machine where other processes hold cores, set it to
#                   passive: spinning threads then stall every barrier for a
#                   time slice, in both frameworks alike (measured: 2-thread
#                   MLP at 1-10% of its 1-thread rate with active waiting).
# Output: a table on stdout; raw JSON lines in BUILD_DIR/bench/train/results.jsonl.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
threads=${THREADS:-1 2}
models=${MODELS:-mlp cnn cnn_cf}
reps=${REPS:-7}
warmup=${WARMUP:-2}
rounds=${ROUNDS:-1}
mlp_steps=${MLP_STEPS:-40}
cnn_steps=${CNN_STEPS:-12}
python=${PYTHON:-/usr/bin/python3}
bin=$build/bin/nnplug
if [ ! -x "$bin" ]; then
    echo "train_compare.sh: $bin is missing: build first (cmake --build $build)" >&2
    exit 1
fi
if ! "$python" -c 'import numpy, torch' 2>/dev/null; then
    echo "train_compare.sh: $python lacks numpy or torch (Debian: python3-torch)" >&2
    exit 1
fi
export NNP_PLUGIN_PATH="${NNP_PLUGIN_PATH:-$build/plugins}"
work=$build/bench/train
mkdir -p "$work"
results=$work/results.jsonl
: >"$results"

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) processors;" \
    "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(unset)}"
echo "$("$bin" --version 2>/dev/null | head -n 1); torch $("$python" -c 'import torch; print(torch.__version__)')"

# models and data
"$python" - "$work" "$mlp_steps" "$cnn_steps" <<'PYEOF'
import json, os, sys
import numpy as np
work, mlp_steps, cnn_steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def seq(name, shape, layers):
    out = []
    for i, (cls, cfg) in enumerate(layers):
        cfg = dict(cfg, name='%s_%d' % (cls.lower(), i))
        if i == 0:
            cfg['batch_input_shape'] = [None] + shape
        out.append({'class_name': cls, 'config': cfg})
    return {'class_name': 'Sequential', 'config': {'name': name, 'layers': out}}

bn = lambda axis: ('BatchNormalization', {'axis': axis, 'momentum': 0.99, 'epsilon': 1e-3})
mlp = seq('mlp', [784], [('Dense', {'units': 256}), bn(-1), ('ReLU', {}),
                         ('Dense', {'units': 256}), bn(-1), ('ReLU', {}),
                         ('Dense', {'units': 10})])

def cnn(fmt):
    ax = 1 if fmt == 'channels_first' else -1
    shape = [3, 32, 32] if fmt == 'channels_first' else [32, 32, 3]
    conv = lambda f: ('Conv2D', {'filters': f, 'kernel_size': [3, 3], 'padding': 'same',
                                 'data_format': fmt})
    return seq('cnn', shape, [conv(32), bn(ax), ('ReLU', {}),
                              ('MaxPooling2D', {'pool_size': [2, 2], 'data_format': fmt}),
                              conv(64), bn(ax), ('ReLU', {}),
                              ('GlobalAveragePooling2D', {'data_format': fmt}),
                              ('Dense', {'units': 10})])

for name, spec in (('mlp', mlp), ('cnn', cnn('channels_last')), ('cnn_cf', cnn('channels_first'))):
    with open(os.path.join(work, name + '.json'), 'w') as f:
        json.dump(spec, f)
r = np.random.RandomState(0)
n = mlp_steps * 128
np.save(os.path.join(work, 'mlp_x.npy'), r.normal(0, 1, (n, 784)).astype(np.float32))
np.save(os.path.join(work, 'mlp_y.npy'), r.randint(0, 10, n).astype(np.int64))
n = cnn_steps * 64
x = r.normal(0, 1, (n, 3, 32, 32)).astype(np.float32)
np.save(os.path.join(work, 'cnn_cf_x.npy'), x)
np.save(os.path.join(work, 'cnn_x.npy'), np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
y = r.randint(0, 10, n).astype(np.int64)
np.save(os.path.join(work, 'cnn_y.npy'), y)
np.save(os.path.join(work, 'cnn_cf_y.npy'), y)
PYEOF

epochs=$((warmup + reps))
round=1
while [ "$round" -le "$rounds" ]; do
    for t in $threads; do
        for m in $models; do
            case $m in
            mlp) bs=128; steps=$mlp_steps ;;
            *) bs=64; steps=$cnn_steps ;;
            esac
            echo "round $round: $m, $t thread(s): nnplug..." >&2
            log=$work/$m-t$t.log
            if ! OMP_NUM_THREADS=$t "$bin" train "$work/$m.json" --x "$work/${m}_x.npy" \
                    --y "$work/${m}_y.npy" --loss sparse_categorical_crossentropy --from-logits \
                    --optimizer sgd --lr 0.01 --momentum 0.9 --epochs "$epochs" \
                    --batch-size "$bs" --seed 1 --threads "$t" --save "$work/$m-t$t.onnx" \
                    2>"$log"; then
                cat "$log" >&2
                exit 1
            fi
            "$python" - "$log" "$m" "$t" "$warmup" >>"$results" <<'PYEOF'
import json, re, sys
log, m, t, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rates = [float(x) for x in re.findall(r'([0-9.]+) samples/s', open(log).read())][w:]
print(json.dumps({'framework': 'nnplug', 'model': m, 'threads': t, 'rates': rates}))
PYEOF
            if [ "$m" != cnn_cf ]; then
                echo "round $round: $m, $t thread(s): PyTorch..." >&2
                OMP_NUM_THREADS=$t "$python" "$here/torch_train.py" --model "$m" \
                    --x "$work/${m}_x.npy" --y "$work/${m}_y.npy" --batch "$bs" \
                    --steps "$steps" --warmup "$warmup" --reps "$reps" --threads "$t" \
                    >>"$results"
            fi
        done
    done
    round=$((round + 1))
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

"$python" - "$results" "$models" "$threads" "${STAT:-median}" <<'PYEOF'
import json, statistics, sys
res, models, threads = sys.argv[1], sys.argv[2].split(), [int(t) for t in sys.argv[3].split()]
stat = max if sys.argv[4] == 'best' else statistics.median
rates = {}
for line in open(res):
    j = json.loads(line)
    fw = 'nnplug' if j['framework'] == 'nnplug' else 'torch'
    rates.setdefault((fw, j['model'], j['threads']), []).extend(j['rates'])
med = {k: stat(v) for k, v in rates.items() if v}
spread = {k: (min(v), max(v)) for k, v in rates.items() if v}
print()
print('training throughput, samples/s (%s of timed epochs; min-max in brackets)' % (
    'best' if stat is max else 'median'))
print('%-7s %7s  %-26s %-26s %8s' % ('model', 'threads', 'nnplug', 'PyTorch', 'ratio'))
for m in models:
    tm = 'cnn' if m == 'cnn_cf' else m
    for t in threads:
        a, b = med.get(('nnplug', m, t)), med.get(('torch', tm, t))
        fmt = lambda k, v: '%8.0f [%.0f-%.0f]' % ((v,) + spread[k]) if v else '-'
        print('%-7s %7d  %-26s %-26s %8s' % (m, t, fmt(('nnplug', m, t), a),
                                             fmt(('torch', tm, t), b),
                                             '%.2fx' % (a / b) if a and b else '-'))
print('ratio = nnplug / PyTorch (> 1: nnplug faster)')
PYEOF
