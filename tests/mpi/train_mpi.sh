#!/bin/sh
# nnplug train under mpirun (Open MPI, oversubscribed, as root when CI is):
#   - an MLP without BatchNormalization trained on 1, 2 and 3 processes (and
#     2 processes of 2 threads) gives the same bytes every time: its Dense
#     layers sum chunk by chunk through the host (plugin ABI 1.3); and ends
#     with the weights of a single-process run within float rounding (one
#     process alone sums the whole batch at once);
#   - a CNN (Conv2D + synchronized BN) likewise;
#   - BatchNormalization synchronized: the same bytes on 1-3 processes, the
#     weights of one process within rounding; not synchronized: repeatable
#     for a given process count;
#   - Dropout draws each sample's mask from its place in the global batch:
#     an MLP with Dropout gives the same bytes on 1-3 processes;
#   - unsynchronized BatchNormalization averages the processes' moving
#     statistics after each step: against a numpy float64 reference of
#     Keras's update on each process's share;
#   - TimeDistributed(Dense) and TimeDistributed(synchronized BN), per time
#     step (Keras 3) and over batch x time (tf.keras 2 files), likewise;
#   - a run resumed under mpirun (from a checkpoint of 2 processes, on 3)
#     ends with the bytes of the uninterrupted run;
#   - a process killed mid-run ends the job within seconds, named, with the
#     last checkpoint whole;
#   - processes with different data are refused before the first step (exit
#     2, the process and the data named), as is a batch that cannot be shared,
#     and nothing is written.
#   - a trainable plugin built for plugin ABI 1.0 (before the host's batch
#     functions) trains under mpirun: the host sums its gradient over the
#     processes, so its weights agree with one process within rounding;
# usage: train_mpi.sh NNPLUG SRC [OLD_PLUGIN_DIR]
set -u
bin=$1 src=$2 old=${3:-}
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
work=$(mktemp -d "${TMPDIR:-/tmp}/nnp_train_mpi.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failed=0
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
mpi() { timeout 300 mpirun --oversubscribe -np "$@"; }
# invariant LABEL MODEL PREFIX P ARGS...: MODEL trained alone (--out-dir
# PREFIXplain), on 1-3 processes (PREFIX1..3) and on P processes of 2
# threads gives the same bytes each time, and the single-process run's
# weights within rounding
invariant() {
  label=$1 model=$2 prefix=$3 p=$4
  shift 4
  "$bin" train "$model" "$@" --save ${prefix}plain.onnx --out-dir ${prefix}plain 2>/dev/null ||
    fail "$label: single-process run"
  for k in 1 2 3; do
    mpi "$k" "$bin" train "$model" "$@" --save $prefix$k.onnx --out-dir $prefix$k 2>/dev/null ||
      fail "$label on $k processes"
    cmp -s ${prefix}1.onnx $prefix$k.onnx || fail "$label: $k processes and 1 process give different bytes"
  done
  mpi "$p" "$bin" train "$model" "$@" --threads 2 --save ${prefix}t.onnx 2>/dev/null ||
    fail "$label on $p processes of 2 threads"
  cmp -s ${prefix}1.onnx ${prefix}t.onnx || fail "$label: $p processes of 2 threads differ from 1 process"
  agree "$label" ${prefix}plain $prefix || fail "$label: weights differ from the single-process run"
}
# agree LABEL PLAIN PREFIX: every weight .npy of the single-process run's
# --out-dir PLAIN equals PREFIX1/, PREFIX2/ and PREFIX3/'s within float
# rounding (rtol 1e-4, atol 1e-5)
agree() {
  $py - "$@" <<'PY'
import numpy as np, os, sys
label, plain, prefix = sys.argv[1:4]
bad = 0
for f in sorted(os.listdir(plain)):
    if not f.endswith(".npy") or "loss" in f:
        continue
    a = np.load(os.path.join(plain, f))
    for k in (1, 2, 3):
        b = np.load(os.path.join("%s%d" % (prefix, k), f))
        if not np.allclose(a, b, rtol=1e-4, atol=1e-5):
            print("%s, %d processes, %s: max difference %g" % (label, k, f, np.max(np.abs(a - b))))
            bad = 1
print("%s: 1-3 processes agree with one process" % label)
sys.exit(bad)
PY
}

cat > mlp.json <<'JSON'
{"class_name": "Sequential", "config": {"name": "mlp", "layers": [
 {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 10]}},
 {"class_name": "Dense", "config": {"name": "d1", "units": 16, "activation": "relu"}},
 {"class_name": "Dense", "config": {"name": "d2", "units": 3}}]}}
JSON
x=$src/models/data/mlp_x.npy y=$src/models/data/mlp_y.npy
args="--x $x --y $y --loss sparse_categorical_crossentropy --from-logits --optimizer adam --lr 0.01 --epochs 3 --batch-size 24 --seed 7"

# shellcheck disable=SC2086
"$bin" train mlp.json $args --save plain.onnx --out-dir plain 2>/dev/null || fail "single-process run"
for k in 1 2 3; do
  # shellcheck disable=SC2086
  mpi "$k" "$bin" train mlp.json $args --save k$k.onnx --out-dir k$k 2>err$k.txt ||
    { fail "mlp on $k processes"; cat err$k.txt; }
  # shellcheck disable=SC2086
  mpi "$k" "$bin" train mlp.json $args --save k${k}b.onnx 2>/dev/null || fail "mlp again on $k"
  cmp -s k$k.onnx k${k}b.onnx || fail "mlp on $k processes: two runs differ"
  cmp -s k1.onnx k$k.onnx || fail "mlp: $k processes and 1 process give different bytes"
  [ "$(grep -c '^Epoch' err$k.txt)" -eq 3 ] || fail "mlp on $k processes: not one progress line per epoch"
done
# shellcheck disable=SC2086
mpi 2 "$bin" train mlp.json $args --threads 2 --save k2t.onnx 2>/dev/null ||
  fail "mlp on 2 processes of 2 threads"
cmp -s k1.onnx k2t.onnx || fail "mlp: 2 processes of 2 threads and 1 process give different bytes"
agree "mlp" plain k || fail "multi-process weights differ from the single-process run"

# BatchNormalization. synchronized: statistics of the global batch, the same
# bytes on 1-3 processes (and threads), and the weights of a single-process
# run within float rounding (SGD: the bias before BN, whose true gradient is
# zero, only drifts by rounding). Not synchronized (Keras's default): each
# process normalizes its share, so results depend on the process count by
# definition; a given count repeats its bytes.
for sync in true false; do
  cat > bn_$sync.json <<JSON
{"class_name": "Sequential", "config": {"name": "mlpbn", "layers": [
 {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 10]}},
 {"class_name": "Dense", "config": {"name": "d1", "units": 16}},
 {"class_name": "BatchNormalization", "config": {"name": "bn", "synchronized": $sync, "momentum": 0.9}},
 {"class_name": "ReLU", "config": {"name": "r"}},
 {"class_name": "Dense", "config": {"name": "d2", "units": 3}}]}}
JSON
done
bnargs="--x $x --y $y --loss sparse_categorical_crossentropy --from-logits --lr 0.1 --epochs 3 --batch-size 24 --seed 7"
# shellcheck disable=SC2086
invariant "synchronized bn" bn_true.json sync 3 $bnargs
for k in 2 3; do
  # shellcheck disable=SC2086
  mpi "$k" "$bin" train bn_false.json $bnargs --save local$k.onnx 2>/dev/null || fail "bn on $k processes"
  # shellcheck disable=SC2086
  mpi "$k" "$bin" train bn_false.json $bnargs --save local${k}b.onnx 2>/dev/null || fail "bn again on $k"
  cmp -s local$k.onnx local${k}b.onnx || fail "bn on $k processes: two runs differ"
done

# Dropout: each sample's mask comes from its index in the global batch
# (plugin ABI 1.4 batch_rows), so the masks, and the bytes, do not depend on
# how the batch is shared.
cat > drop.json <<'JSON'
{"class_name": "Sequential", "config": {"name": "mlpdrop", "layers": [
 {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 10]}},
 {"class_name": "Dense", "config": {"name": "d1", "units": 16, "activation": "relu"}},
 {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.3, "seed": 5}},
 {"class_name": "Dense", "config": {"name": "d2", "units": 3}}]}}
JSON
# shellcheck disable=SC2086
invariant "dropout" drop.json drop 2 $args

# TimeDistributed: the wrapped layers run per time step (Keras 3; rows =
# samples) or over batch x time (a tf.keras 2 file; rows = samples x time
# steps), and sum chunk by chunk either way.
cat > td.json <<'JSON'
{"class_name": "Sequential", "config": {"name": "td", "layers": [
 {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 6, 8]}},
 {"class_name": "TimeDistributed", "config": {"name": "tdd", "layer": {"class_name": "Dense", "config": {"name": "d", "units": 12}}}},
 {"class_name": "TimeDistributed", "config": {"name": "tdbn", "layer": {"class_name": "BatchNormalization", "config": {"name": "bn", "synchronized": true, "momentum": 0.9}}}},
 {"class_name": "ReLU", "config": {"name": "r"}},
 {"class_name": "Flatten", "config": {"name": "f"}},
 {"class_name": "Dense", "config": {"name": "out", "units": 3}}]}}
JSON
sed 's/^{"class_name": "Sequential",/{"keras_version": "2.15.0", "class_name": "Sequential",/' td.json > td2.json
tdargs="--x $src/models/data/seq_x.npy --y $src/models/data/seq_y.npy --loss sparse_categorical_crossentropy --from-logits --lr 0.05 --epochs 2 --batch-size 16 --seed 3"
# shellcheck disable=SC2086
invariant "time-distributed, per step" td.json tdstep 2 $tdargs
# shellcheck disable=SC2086
invariant "time-distributed, batch x time" td2.json tdflat 2 $tdargs

# Unsynchronized BN's moving statistics after one step of one batch (no
# shuffling, BN on the inputs themselves): each process updates them from
# its share (Keras: moving -= (moving - batch) * (1 - momentum), the biased
# variance), then they are averaged over the processes. The split: a batch
# of 24 is 12 chunks of 2 samples, process r of K holding chunks
# [r*12/K, (r+1)*12/K).
cat > bnlocal.json <<'JSON'
{"class_name": "Sequential", "config": {"name": "bnlocal", "layers": [
 {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 10]}},
 {"class_name": "BatchNormalization", "config": {"name": "bn", "synchronized": false, "momentum": 0.9}},
 {"class_name": "Dense", "config": {"name": "d", "units": 3}}]}}
JSON
$py -c "import numpy as np; np.save('x24.npy', np.load('$x')[:24]); np.save('y24.npy', np.load('$y')[:24])"
for k in 2 3; do
  mpi "$k" "$bin" train bnlocal.json --x x24.npy --y y24.npy --loss sparse_categorical_crossentropy \
    --from-logits --epochs 1 --batch-size 24 --no-shuffle --save bnl$k.onnx --out-dir bnl$k 2>/dev/null ||
    fail "local bn statistics on $k processes"
  $py - "$k" <<'PY' || fail "local bn on $k processes: moving statistics differ from the reference"
import numpy as np, sys
k = int(sys.argv[1])
x = np.load("x24.npy").astype(np.float64)
mean = np.zeros(10); var = np.zeros(10)
for r in range(k):
    share = x[2 * (r * 12 // k):2 * ((r + 1) * 12 // k)]
    mean += 0.0 - (0.0 - share.mean(axis=0)) * 0.1
    var += 1.0 - (1.0 - share.var(axis=0)) * 0.1
mean /= k; var /= k
got_m = np.load("bnl%d/moving_mean.npy" % k); got_v = np.load("bnl%d/moving_variance.npy" % k)
ok = np.allclose(got_m, mean, rtol=1e-6, atol=1e-7) and np.allclose(got_v, var, rtol=1e-6, atol=1e-7)
# the variance of the whole batch would be another answer: the test tells them apart
whole = 1.0 - (1.0 - x.var(axis=0)) * 0.1
assert not np.allclose(whole, var, rtol=1e-3, atol=1e-4)
print("local bn, %d processes: max difference %g (mean), %g (variance)"
      % (k, np.max(np.abs(got_m - mean)), np.max(np.abs(got_v - var))))
sys.exit(0 if ok else 1)
PY
done

# Resume under mpirun: 1 epoch on 2 processes, resumed to 3 epochs on 3
# processes, gives the bytes of 3 uninterrupted epochs (which, BN being
# synchronized, are those of any process count).
# shellcheck disable=SC2086
mpi 2 "$bin" train bn_true.json $bnargs --epochs 1 --save res.onnx 2>/dev/null || fail "resume: first epoch"
# shellcheck disable=SC2086
mpi 3 "$bin" train bn_true.json $bnargs --resume res.onnx --save res.onnx 2>err.txt ||
  { fail "resume on 3 processes"; cat err.txt; }
cmp -s sync1.onnx res.onnx || fail "resumed under mpirun: other bytes than the uninterrupted run"

# A CNN (Conv2D, synchronized BatchNormalization, ReLU, pooling, Dense;
# models/cnn_channels_last.json with synchronized set): the same bytes on
# 1-3 processes and threads, a single-process run's weights within rounding.
$py - "$src/models/cnn_channels_last.json" <<'PY' || fail "cannot write the CNN"
import json, sys
m = json.load(open(sys.argv[1]))
for l in m["config"]["layers"]:
    if l["class_name"] == "BatchNormalization":
        l["config"]["synchronized"] = True
json.dump(m, open("cnn_sync.json", "w"))
# the same in channels_first
for l in m["config"]["layers"]:
    c = l["config"]
    if "data_format" in c:
        c["data_format"] = "channels_first"
    if l["class_name"] == "BatchNormalization":
        c["axis"] = 1
    if "batch_shape" in c:
        c["batch_shape"] = [None, 3, 8, 8]
json.dump(m, open("cnn_sync_cf.json", "w"))
PY
d=$src/models/data
cnnargs="--x $d/cnn_channels_last_x.npy --y $d/cnn_y.npy --loss sparse_categorical_crossentropy --from-logits --lr 0.05 --epochs 2 --batch-size 20 --seed 3"
# shellcheck disable=SC2086
invariant "cnn" cnn_sync.json cnn 2 $cnnargs
# channels_first, and a batch of 23 (chunks of 2 images and a last chunk
# of 1, which runs on im2col while the others run on oneDNN)
cfargs="--x $d/cnn_channels_first_x.npy --y $d/cnn_y.npy --loss sparse_categorical_crossentropy --from-logits --lr 0.05 --epochs 2 --batch-size 23 --seed 3"
# shellcheck disable=SC2086
invariant "cnn channels_first" cnn_sync_cf.json cnncf 3 $cfargs

# A plugin built for ABI 1.0 (tests/fixtures/abi10_bias.c: y = x + bias,
# its gradient summed over its whole share in one pass): the host sums that
# gradient over the processes itself. Not reproducible across process counts
# (the plugin does not sum chunk by chunk), so: within rounding of one
# process, on 2 and 3 processes.
if [ -n "$old" ]; then
  # the build's plugins (beside bin/) and the old one
  plugins=$old:$(cd "$(dirname "$bin")/../plugins" && pwd)
  cat > old.json <<'JSON'
{"class_name": "Sequential", "config": {"name": "old", "layers": [
 {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 10]}},
 {"class_name": "Dense", "config": {"name": "d1", "units": 16}},
 {"class_name": "OldBias", "config": {"name": "ob"}},
 {"class_name": "ReLU", "config": {"name": "r"}},
 {"class_name": "Dense", "config": {"name": "d2", "units": 3}}]}}
JSON
  # shellcheck disable=SC2086
  NNP_PLUGIN_PATH=$plugins "$bin" train old.json $args --save oldplain.json --out-dir oldplain 2>err.txt ||
    { fail "1.0 plugin: single-process run"; cat err.txt; }
  for k in 1 2 3; do
    # shellcheck disable=SC2086
    NNP_PLUGIN_PATH=$plugins mpi "$k" "$bin" train old.json $args --save old$k.json --out-dir old$k \
      2>err.txt || { fail "1.0 plugin on $k processes"; cat err.txt; }
  done
  # its kind has no ONNX form: process 0 cannot save the first checkpoint,
  # and every process stops there (none waits for it in the next step)
  start=$(date +%s)
  # shellcheck disable=SC2086
  NNP_PLUGIN_PATH=$plugins mpi 2 "$bin" train old.json $args --save old.onnx 2>err.txt
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a save that fails under mpirun: exit $rc (124: the job hung)"
  [ $(($(date +%s) - start)) -lt 60 ] || fail "a save that fails under mpirun: the job took too long"
  grep -q "cannot be exported to ONNX" err.txt || { fail "a save that fails under mpirun: not named"; cat err.txt; }
  $py - <<'PY' || fail "1.0 plugin: the bias did not train"
import numpy as np, sys
sys.exit(0 if np.max(np.abs(np.load("oldplain/ob_bias.npy") - 0.1)) > 1e-3 else 1)
PY
  agree "1.0 plugin" oldplain old || fail "1.0 plugin: weights differ from the single-process run"
fi

# refusals, before the first step
cp "$x" x0.npy
$py -c "import numpy as np; a=np.load('$x'); a[0,0]+=1; np.save('x1.npy', a)"
# shellcheck disable=SC2016
mpi 2 sh -c '"$0" train "$1" --x "x$OMPI_COMM_WORLD_RANK.npy" --y "$2" --save diff.onnx' \
  "$bin" mlp.json "$y" 2>err.txt
rc=$?
[ $rc -ne 0 ] || fail "different data: exit 0"
grep -q "process 1 of 2 has another training data (x) than process 0" err.txt ||
  { fail "different data: not named"; cat err.txt; }
[ ! -e diff.onnx ] || fail "different data: a file was written"
# shellcheck disable=SC2086
mpi 3 "$bin" train mlp.json $args --batch-size 2 --save small.onnx 2>err.txt
[ $? -ne 0 ] || fail "batch of 2 on 3 processes: exit 0"
grep -q "a batch of 2 samples cannot be shared by 3 processes" err.txt ||
  { fail "batch of 2 on 3 processes: not explained"; cat err.txt; }
[ ! -e small.onnx ] || fail "batch of 2 on 3 processes: a file was written"

# the build says it has MPI
"$bin" --version | grep -q "MPI: yes" || fail "--version does not say MPI is in"

# a process killed mid-run: the job ends (no hang), the process is named,
# and the last checkpoint is a whole model
start=$(date +%s)
# shellcheck disable=SC2016
timeout 120 mpirun --oversubscribe -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then (sleep 3; kill -9 $$) & fi; exec "$0" "$@"' \
  "$bin" train mlp.json --x "$x" --y "$y" --loss sparse_categorical_crossentropy --from-logits \
  --epochs 100000 --batch-size 16 --save killed.onnx >/dev/null 2>err.txt
rc=$?
end=$(date +%s)
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "killed process: exit $rc (124: the job hung)"
[ $((end - start)) -lt 60 ] || fail "killed process: the job took $((end - start)) s to end"
grep -qi "rank 1" err.txt || { fail "killed process: not named"; cat err.txt; }
"$bin" info killed.onnx >/dev/null 2>&1 || fail "killed process: the checkpoint is not a whole model"

[ $failed -eq 0 ] && echo "train_mpi: all checks passed"
exit $((failed != 0))
