#!/usr/bin/env bash
# Installs every Debian 12 package nnplug needs to build, test and benchmark
# (--bench is accepted and changes nothing: oneDNN is always installed).
# Skips apt when everything is already there (so repeated runs are quick).
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libprotobuf-c-dev protobuf-c-compiler libonnx-dev
      libcriterion-dev libjansson-dev
      python3 python3-numpy python3-onnx
      python3-torch python3-torchvision   # tests/interop/resnet18_torch.py
      clang libomp-dev)   # clang + libomp: the libFuzzer harness (tests/fuzz)
# ONNX Runtime for tests/interop comes from npm; keep a node already installed
# (e.g. from NodeSource, which bundles npm) rather than pull Debian's over it.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
# Dense / Conv2D: CBLAS from the OpenMP build of OpenBLAS (plugins/dense/openblas.cmake)
pkgs+=(libopenblas-openmp-dev)
pkgs+=(libdnnl-dev)   # Conv2D's engine (oneDNN); also bench/bn_compare's peer
pkgs+=(chromium)   # headless renders of the `nnplug docs` site (tests/cli/docs_cli.sh)
pkgs+=(libhdf5-dev libzip-dev python3-h5py)   # .h5 / .keras model files; h5py writes the test files
pkgs+=(openmpi-bin libopenmpi-dev)   # data-parallel training under mpirun
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# CI always refreshes the package lists, as a fresh machine must.
if [ ${#missing[@]} -gt 0 ] || [ "${CI:-}" = true ]; then
  [ ${#missing[@]} -gt 0 ] || missing=("${pkgs[@]}")
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
