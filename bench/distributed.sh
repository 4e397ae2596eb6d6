#!/bin/sh
# Data-parallel training on this machine, nnplug under mpirun against
# PyTorch DistributedDataParallel (gloo), the models and data of
# bench/train_compare.sh (MLP batch 128, CNN batch 64; SGD momentum):
#   1 process x 1 thread, 1 process x 2 threads, 2 processes x 1 thread
# then bench/reduce_bench: reproducible tree sums against MPI_Allreduce.
#   bench/distributed.sh [BUILD_DIR]
# environment: REPS=5 WARMUP=1 MODELS="mlp cnn" PYTHON=/usr/bin/python3
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
reps=${REPS:-5}
warmup=${WARMUP:-1}
models=${MODELS:-mlp cnn}
python=${PYTHON:-/usr/bin/python3}
bin=$build/bin/nnplug
work=$build/bench/train
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export NNP_PLUGIN_PATH="${NNP_PLUGIN_PATH:-$build/plugins}"
if [ ! -f "$work/mlp.json" ] || [ ! -f "$work/cnn.json" ]; then
    echo "distributed.sh: writing the models and data (bench/train_compare.sh)" >&2
    MODELS=mlp THREADS=1 REPS=1 WARMUP=0 sh "$here/train_compare.sh" "$build" >/dev/null
fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) processors"
"$bin" --version
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
printf '%-5s %-22s %16s %16s %8s\n' model config "nnplug samples/s" "torch DDP" ratio
for m in $models; do
    case $m in mlp) bs=128; steps=40 ;; *) bs=64; steps=12 ;; esac
    for cfg in 1x1 1x2 2x1; do
        k=${cfg%x*} t=${cfg#*x}
        log=$work/dist-$m-$cfg.log
        # more than one thread per process: not bound to one core (Open MPI's
        # default for up to 2 processes), or the threads take turns on it
        bind=; [ "$t" -gt 1 ] && bind="--bind-to none"
        OMP_NUM_THREADS=$t mpirun --oversubscribe $bind -np "$k" "$bin" train "$work/$m.json" \
            --x "$work/${m}_x.npy" --y "$work/${m}_y.npy" --loss sparse_categorical_crossentropy \
            --from-logits --optimizer sgd --lr 0.01 --momentum 0.9 --epochs $((warmup + reps)) \
            --batch-size $bs --seed 1 --threads "$t" --save "$work/dist-$m-$cfg.onnx" 2>"$log"
        ours=$(sed -n 's/.* \([0-9][0-9]*\) samples\/s$/\1/p' "$log" | tail -n "$reps" | median)
        theirs=$(cd "$here" && OMP_NUM_THREADS=$t "$python" torch_ddp.py --model "$m" \
            --x "$work/${m}_x.npy" --y "$work/${m}_y.npy" --batch $bs --steps $steps \
            --world "$k" --threads "$t" --warmup "$warmup" --reps "$reps" |
            "$python" -c 'import json,sys; print("%.0f" % json.loads(sys.stdin.read())["samples_per_s"])')
        printf '%-5s %-22s %16s %16s %8s\n' "$m" "$k process(es) x $t thread(s)" "$ours" "$theirs" \
            "$(awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "%.2f", a / b}')"
    done
done
echo
for k in 2 3; do
    OMP_NUM_THREADS=1 mpirun --oversubscribe -np $k "$build/bin/reduce_bench"
done
