#!/bin/sh
# Installs onnxruntime-node into DIR/node_modules for the interop tests:
#   setup_ort.sh DIR
# npm install --ignore-scripts: the package ships its linux-x64 native library,
# and its install script (which downloads more) is not needed. Already there and
# loading: nothing to do. Anything missing is an error, never a silent skip.
set -eu
dir=$1
version=${NNP_ORT_VERSION:-1.30.0}
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "setup_ort.sh: node is not installed (Debian: apt-get install nodejs npm; tools/install-deps.sh does)" >&2
  exit 1
fi
mkdir -p "$dir"
if NODE_PATH="$dir/node_modules" node "$here/ort_run.js" --version >/dev/null 2>&1; then
  echo "onnxruntime-node $(NODE_PATH="$dir/node_modules" node "$here/ort_run.js" --version) already in $dir"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "setup_ort.sh: npm is not installed (Debian: apt-get install npm; tools/install-deps.sh does)" >&2
  exit 1
fi
cd "$dir"
[ -f package.json ] || echo '{"name": "nnplug-interop", "private": true}' > package.json
if ! npm install --ignore-scripts --no-audit --no-fund --loglevel=error "onnxruntime-node@$version"; then
  echo "setup_ort.sh: npm could not install onnxruntime-node@$version into $dir (offline?)" >&2
  exit 1
fi
if ! NODE_PATH="$dir/node_modules" node "$here/ort_run.js" --version; then
  echo "setup_ort.sh: onnxruntime-node was installed but does not load" >&2
  exit 1
fi
