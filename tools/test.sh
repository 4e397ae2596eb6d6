#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs the whole test suite.
#   bash tools/test.sh            release build in build/, then ctest
#   NNP_SANITIZE=1 bash tools/test.sh   AddressSanitizer + UBSan build in build-asan/
# The configure forces the test suites on and the reference vectors to the
# repository's own tests/data, whatever an earlier configure chose; ctest
# fails when it finds no test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
dir=build; extra=()
if [ "${NNP_SANITIZE:-0}" = 1 ]; then
  dir=build-asan; extra=(-DNNP_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  # LeakSanitizer's exit scan crashes reading the thread-local storage of
  # the OpenMP threads oneDNN has run on (large static TLS): it scans heap,
  # globals, stacks and registers, not TLS; what only TLS holds (libgomp's
  # thread state) is suppressed in tools/lsan.supp.
  # (print_suppressions=0: the tests count the lines a command writes to stderr)
  export LSAN_OPTIONS="use_tls=0:suppressions=$PWD/tools/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi
cmake -S . -B "$dir" -DNNP_WERROR=ON -DNNP_BUILD_TESTS=ON \
      -DNNP_TESTDATA_DIR="$PWD/tests/data" "${extra[@]}"
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure --no-tests=error -j"$(nproc)"
