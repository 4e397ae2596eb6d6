#!/usr/bin/env bash
# usage: run.sh BUILD_DIR
# Installs BUILD_DIR to a temporary prefix, then uses that installation as a
# third party would: builds the plugin project beside this script with
# find_package(nnplug), lists it with the installed command, and compiles a
# program with pkg-config that runs the plugin. Checks along the way that
# the installed command finds its library (RPATH) and its plugin directory.
set -euo pipefail

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(cd "$(mktemp -d)" && pwd -P)   # physical: kinds report resolved paths
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "outoftree: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }

# The plugin project, configured only with the prefix to find nnplug in.
cmake -S "$here" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log" >&2; fail "configure failed"; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 \
    || { cat "$tmp/build.log" >&2; fail "plugin build failed"; }
plugin=$tmp/build/outoftree_double.so
[ -f "$plugin" ] || fail "no $plugin"

# The installed command resolves libnnplug through its RPATH, not the build tree.
nnplug=$prefix/bin/nnplug
lib=$(env -u LD_LIBRARY_PATH ldd "$nnplug" | awk '/libnnplug\.so/ {print $3}')
case "$lib" in
    "$prefix"/*) ;;
    *) fail "installed nnplug uses libnnplug from '$lib', not from $prefix" ;;
esac

# The installed plugin directory is found beside the installed library, and
# NNP_PLUGIN_PATH adds the out-of-tree plugin.
unset NNP_NO_DEFAULT_PLUGINS
json=$(NNP_PLUGIN_PATH="$tmp/build" env -u LD_LIBRARY_PATH "$nnplug" plugins --json)
grep -q '"name": "OutOfTreeDouble"' <<<"$json" || fail "OutOfTreeDouble not listed"
grep -q '"name": "ExampleScale"' <<<"$json" \
    || fail "installed plugins ($prefix/lib/nnplug/plugins) not found"
grep -q "\"plugin\": \"$prefix/" <<<"$json" || fail "no kind comes from $prefix"

# pkg-config: the .pc file locates the prefix from its own folder.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs nnplug)
# NNP_CONSUMER_CFLAGS: what a program needs to link this particular build
# (the sanitizer runtime of an NNP_SANITIZE build).
# shellcheck disable=SC2086  # flags are words
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror ${NNP_CONSUMER_CFLAGS:-} -o "$tmp/use_plugin" \
    "$here/use_plugin.c" $flags -Wl,-rpath,"$prefix/lib"
env -u LD_LIBRARY_PATH "$tmp/use_plugin" "$plugin"
echo "outoftree: ok"
