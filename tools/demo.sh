#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds nnplug and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DNNP_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bin/nnplug demo "$@"
