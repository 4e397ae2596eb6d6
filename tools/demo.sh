#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds nnplug and runs the demo.
# Builds only the command and its plugins in build/, the folder
# tools/test.sh uses too, so the two scripts run in either order.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DNNP_TESTDATA_DIR="$PWD/tests/data" >/dev/null
cmake --build build -j"$(nproc)" --target nnplug_cli nnplug_plugins >/dev/null
exec build/bin/nnplug demo "$@"
