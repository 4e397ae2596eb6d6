#!/bin/sh
# Builds nnplug's fuzzers with clang (libFuzzer + AddressSanitizer + UBSan)
# straight from the sources and runs each for a bounded time:
#
#   tests/fuzz/run.sh [-t SECONDS] [-s SECONDS] [-o WORKDIR] [-j JOBS] [HARNESS...]
#
# Harnesses (default: all):
#   onnx_import  ONNX files: import, export and re-import, forward (-t SECONDS, default 60)
#   keras_json   Keras JSON models: load, write back and reload, forward (-s SECONDS, default 30)
#   npy          .npy files: parse, write and read back (-s SECONDS)
#   layer_config a kind's config JSON: check, write back (fixed point), build, run (-s SECONDS)
#   cli          command lines run in-process on small models (-s SECONDS)
#   keras_file   .keras archives and .h5 models: load, write back and reload,
#                forward; HDF5 reads in a child process, whose crashes and
#                hangs on damaged files come back as errors (-s SECONDS)
# The model harnesses load every plugin, built as instrumented .so files too.
# Seeds: onnx_import: tests/fuzz/corpus (small valid models),
# tests/fixtures/onnx-bad (malformed ones) and, when NNP_TESTDATA is set,
# the reference models; keras_json: tests/fuzz/corpus-keras, models/*.json
# and the reference models' model.json; npy: tests/fixtures/npy-bad,
# models/data; layer_config: tests/fuzz/corpus-config; cli:
# tests/fuzz/corpus-cli; keras_file: tests/fuzz/corpus-keras-file (its
# HDF5 reader gets 2 s per file, NNP_HDF5_TIME_LIMIT, so that a file that
# hangs the HDF5 library costs little). New inputs collect in WORKDIR/corpus-HARNESS; a finding is
# written to WORKDIR/artifacts and makes the script fail. Exit 0: no finding.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=60
small=30
work=${TMPDIR:-/tmp}/nnplug-fuzz
jobs=1
while getopts t:s:o:j: opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    s) small=$OPTARG ;;
    o) work=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) echo "usage: $0 [-t SECONDS] [-s SECONDS] [-o WORKDIR] [-j JOBS] [HARNESS...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
harnesses=${*:-onnx_import keras_json npy layer_config cli keras_file}
for h in $harnesses; do
  case $h in
    onnx_import|keras_json|npy|layer_config|cli|keras_file) ;;
    *) echo "run.sh: unknown harness '$h' (onnx_import, keras_json, npy, layer_config, cli, keras_file)" >&2; exit 2 ;;
  esac
done
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "run.sh: $CC not found: the fuzzer needs clang with libFuzzer (Debian: apt-get install clang libomp-dev; tools/install-deps.sh does)" >&2
  exit 1
fi
mkdir -p "$work/proto" "$work/artifacts" "$work/lib"
protoc-c --c_out="$work/proto" -I/usr/include /usr/include/onnx/onnx.proto
# libnnplug once, instrumented, then each harness against it
flags="-std=c11 -D_GNU_SOURCE -DNNP_DEFAULT_PLUGIN_DIR=\"/nonexistent\" -g -O1 \
  -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fopenmp \
  -I$src/include -I$src/src -I$work/proto $(pkg-config --cflags libprotobuf-c jansson)"
# .keras / .h5 files when HDF5 and libzip are there (keras_file needs them)
keras_libs=
if pkg-config --exists hdf5 libzip; then
  flags="$flags -DNNP_HAVE_KERAS_FILES=1 $(pkg-config --cflags hdf5 libzip)"
  keras_libs=$(pkg-config --libs hdf5 libzip)
fi
rm -f "$work/lib"/*.o
for f in "$src"/src/core/*.c "$src"/src/services/*.c "$src"/src/plugin/*.c "$src"/src/graph/*.c \
         "$src"/src/interchange/*.c "$work/proto/onnx/onnx.pb-c.c"; do
  o=$work/lib/$(basename "$(dirname "$f")")_$(basename "$f" .c).o
  # shellcheck disable=SC2086
  "$CC" $flags -fsanitize=fuzzer-no-link -c "$f" -o "$o"
done
# the command's sources (all but its main()), for the cli harness
mkdir -p "$work/cli" "$work/generated"
cmake -DIN="$src/models/spirals.json" -DOUT="$work/generated/spirals_json.h" \
      -DNAME=nnp_spirals_json -P "$src/cmake/embed_text.cmake"
rm -f "$work/cli"/*.o
for f in "$src"/src/cli/*.c; do
  [ "$(basename "$f")" = nnplug.c ] && continue
  # shellcheck disable=SC2086
  "$CC" $flags -I"$work/generated" -fsanitize=fuzzer-no-link -c "$f" -o "$work/cli/$(basename "$f" .c).o"
done
for h in $harnesses; do
  extra_objs=
  [ "$h" = cli ] && extra_objs=$(echo "$work"/cli/*.o)
  # shellcheck disable=SC2086
  "$CC" $flags -fsanitize=fuzzer "$src/tests/fuzz/fuzz_$h.c" $extra_objs "$work"/lib/*.o \
    -o "$work/fuzz_$h" $(pkg-config --libs libprotobuf-c jansson) $keras_libs -lm -ldl -lpthread
done
# Every plugin as an instrumented .so, from the sources its CMakeLists names
# in nnp_add_plugin(NAME src...), plus the shared plugins/common sources when
# it links nnp_plugin_common (their headers come as "common/..." through
# -I$src/plugins). BatchNormalization must build; another plugin that does
# not is reported and left out.
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
blas_inc=/usr/include/$arch/openblas-openmp
blas_lib=/usr/lib/$arch/openblas-openmp
[ -d "$blas_inc" ] || blas_inc=/usr/include/$arch/openblas-pthread
[ -d "$blas_lib" ] || blas_lib=/usr/lib/$arch
rm -rf "$work/plugins"
mkdir -p "$work/plugins"
for cm in "$src"/plugins/*/CMakeLists.txt; do
  pdir=$(dirname "$cm")
  line=$(grep -o 'nnp_add_plugin([^)]*)' "$cm" | head -1)
  [ -n "$line" ] || continue
  # shellcheck disable=SC2086
  set -- $(echo "$line" | sed -e 's/nnp_add_plugin(//' -e 's/)$//')
  name=$1
  shift
  srcs=""
  for f in "$@"; do
    case $f in
      '${CMAKE_SOURCE_DIR}'/*) f="$src/${f#'${CMAKE_SOURCE_DIR}'/}" ;;
      /*) ;;
      *) f="$pdir/$f" ;;
    esac
    srcs="$srcs $f"
  done
  grep -q nnp_plugin_common "$cm" && srcs="$srcs $(echo "$src"/plugins/common/*.c)"
  extra=""
  grep -q nnp_use_openblas "$cm" && extra="-isystem $blas_inc -L$blas_lib -Wl,-rpath,$blas_lib -lopenblas"
  # shellcheck disable=SC2086
  if ! "$CC" -std=c11 -D_GNU_SOURCE -g -O1 -fPIC -shared -fvisibility=hidden \
       -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
       -Wno-pass-failed -fopenmp -I"$src/include" -I"$src/plugins" -I"$pdir" $srcs \
       -o "$work/plugins/nnp_$name.so" $extra -lm; then
    [ "$name" = batchnorm ] && { echo "run.sh: the batchnorm plugin does not build" >&2; exit 1; }
    echo "run.sh: warning: plugin $name does not build; fuzzing without it" >&2
    rm -f "$work/plugins/nnp_$name.so"
  fi
done
onnx_seeds="$src/tests/fuzz/corpus $src/tests/fixtures/onnx-bad"
keras_seeds="$src/tests/fuzz/corpus-keras $work/keras-seeds"
mkdir -p "$work/keras-seeds"
for f in "$src"/models/*.json; do cp "$f" "$work/keras-seeds/"; done
if [ -n "${NNP_TESTDATA:-}" ] && [ -d "$NNP_TESTDATA" ]; then
  mkdir -p "$work/testdata-seeds"
  for f in "$NNP_TESTDATA"/*/*/model.onnx; do
    [ -f "$f" ] && cp "$f" "$work/testdata-seeds/$(basename "$(dirname "$f")").onnx"
  done
  for f in "$NNP_TESTDATA"/*/*/model.json; do
    [ -f "$f" ] && cp "$f" "$work/keras-seeds/$(basename "$(dirname "$f")").json"
  done
  onnx_seeds="$onnx_seeds $work/testdata-seeds"
fi
npy_seeds="$src/tests/fixtures/npy-bad $src/models/data"
parallel=
[ "$jobs" -gt 1 ] && parallel="-jobs=$jobs -workers=$jobs"
status=0
for h in $harnesses; do
  case $h in
    onnx_import) t=$seconds; seeds=$onnx_seeds; dict="-dict=$src/tests/fuzz/onnx.dict" ;;
    keras_json) t=$small; seeds=$keras_seeds; dict="-dict=$src/tests/fuzz/json.dict" ;;
    npy) t=$small; seeds=$npy_seeds; dict= ;;
    layer_config) t=$small; seeds=$src/tests/fuzz/corpus-config; dict="-dict=$src/tests/fuzz/json.dict" ;;
    cli) t=$small; seeds=$src/tests/fuzz/corpus-cli; dict="-dict=$src/tests/fuzz/cli.dict" ;;
    keras_file) t=$small; seeds=$src/tests/fuzz/corpus-keras-file; dict= ;;
  esac
  # the cli harness's commands print; their one-line errors stay visible
  close=
  [ "$h" = cli ] && close=-close_fd_mask=1
  mkdir -p "$work/corpus-$h"
  # A fixed libFuzzer seed keeps CI's bounded run repeatable; NNP_FUZZ_SEED=0
  # lets libFuzzer pick one for exploratory runs. NNP_FUZZ_TIMEOUT: the
  # seconds one input may take (default 20).
  echo "fuzz_$h: $t s, seed ${NNP_FUZZ_SEED:-1} (corpus: $seeds)"
  # shellcheck disable=SC2086
  NNP_FUZZ_PLUGIN_DIR="$work/plugins" NNP_FUZZ_MODELS="$src/models" OMP_NUM_THREADS=1 \
  NNP_HDF5_TIME_LIMIT=2 \
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS="suppressions=$src/tools/lsan.supp:print_suppressions=0" \
    "$work/fuzz_$h" -max_total_time="$t" -seed="${NNP_FUZZ_SEED:-1}" -timeout="${NNP_FUZZ_TIMEOUT:-20}" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 $parallel $close -print_final_stats=1 \
    $dict -artifact_prefix="$work/artifacts/$h-" "$work/corpus-$h" $seeds || status=1
done
exit $status
