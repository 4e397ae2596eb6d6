#!/bin/sh
# Builds the ONNX-import fuzzer with clang (libFuzzer + AddressSanitizer +
# UBSan) straight from the sources and runs it for a bounded time:
#
#   tests/fuzz/run.sh [-t SECONDS] [-o WORKDIR] [-j JOBS]
#
# Seeds: tests/fuzz/corpus (small valid models), tests/fixtures/onnx-bad
# (malformed ones) and, when NNP_TESTDATA is set, the reference models.
# New inputs collect in WORKDIR/corpus; a finding is written to
# WORKDIR/artifacts and makes the script fail. Exit 0: no finding.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=60
work=${TMPDIR:-/tmp}/nnplug-fuzz
jobs=1
while getopts t:o:j: opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    o) work=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) echo "usage: $0 [-t SECONDS] [-o WORKDIR] [-j JOBS]" >&2; exit 2 ;;
  esac
done
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "run.sh: $CC not found: the fuzzer needs clang with libFuzzer (Debian: apt-get install clang libomp-dev; tools/install-deps.sh does)" >&2
  exit 1
fi
mkdir -p "$work/proto" "$work/corpus" "$work/artifacts"
protoc-c --c_out="$work/proto" -I/usr/include /usr/include/onnx/onnx.proto
bin=$work/fuzz_onnx_import
# shellcheck disable=SC2046
"$CC" -std=c11 -D_GNU_SOURCE -DNNP_DEFAULT_PLUGIN_DIR='"/nonexistent"' -g -O1 \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
  -fopenmp -I"$src/include" -I"$src/src" -I"$work/proto" $(pkg-config --cflags libprotobuf-c jansson) \
  "$src"/src/core/*.c "$src"/src/services/*.c "$src"/src/plugin/*.c "$src"/src/graph/*.c \
  "$src"/src/interchange/*.c "$work/proto/onnx/onnx.pb-c.c" \
  "$src/plugins/batchnorm/batchnorm.c" "$src/plugins/batchnorm/kernels.c" \
  "$src/plugins/batchnorm/onnx.c" "$src/tests/fuzz/fuzz_onnx_import.c" \
  -o "$bin" $(pkg-config --libs libprotobuf-c jansson) -lm -ldl -lpthread
seeds="$src/tests/fuzz/corpus $src/tests/fixtures/onnx-bad"
if [ -n "${NNP_TESTDATA:-}" ] && [ -d "$NNP_TESTDATA" ]; then
  mkdir -p "$work/testdata-seeds"
  for f in "$NNP_TESTDATA"/*/*/model.onnx; do
    [ -f "$f" ] && cp "$f" "$work/testdata-seeds/$(basename "$(dirname "$f")").onnx"
  done
  seeds="$seeds $work/testdata-seeds"
fi
parallel=
[ "$jobs" -gt 1 ] && parallel="-jobs=$jobs -workers=$jobs"
echo "fuzzing $seconds s (seeds: $seeds)"
# shellcheck disable=SC2086
OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=print_stacktrace=1 \
  "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  $parallel -print_final_stats=1 \
  -dict="$src/tests/fuzz/onnx.dict" -artifact_prefix="$work/artifacts/" \
  "$work/corpus" $seeds
