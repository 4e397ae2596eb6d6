"""libnnplug exports its public API and nothing else.

    check_exports.py --lib libnnplug.so --include DIR

Fails (exit 1, one line per problem) when the shared library's dynamic
symbol table (nm -D --defined-only) defines
  - a symbol not named nnp_* (an internal helper, protobuf-c's onnx__*), or
  - an nnp_* symbol that no public header declares (an internal function
    that looks public),
or when a function declared in DIR/*.h (the public headers) is
  - not marked NNP_API, or
  - not exported by the library.
plugin_util.h (header-only) and the plugin-side entry point (NNP_EXPORT
nnp_plugin_entry, which plugins define) are not the library's.
"""
import argparse
import os
import re
import subprocess
import sys

# What the linker itself defines in every shared object.
LINKER = {'_init', '_fini', '_edata', '_end', '__bss_start'}
HEADER_ONLY = {'plugin_util.h'}

COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*', re.S)
DIRECTIVE = re.compile(r'^[ \t]*#(?:[^\n]*\\\n)*[^\n]*', re.M)
# A prototype: text since the last ; { or } up to "name(...)" [attributes] ;
PROTO = re.compile(r'(?:^|(?<=[;{}]))([^;{}]*?\b(nnp_\w+)\s*\([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*\)'
                   r'\s*(?:NNP_PRINTF\s*\([^)]*\)\s*)?);', re.S)


def exported(lib):
    out = subprocess.run(['nm', '-D', '--defined-only', lib], capture_output=True, text=True,
                         check=True).stdout
    syms = []
    for line in out.splitlines():
        p = line.split()
        if len(p) >= 3:
            syms.append(p[2].split('@')[0])
    return sorted(set(syms) - LINKER)


def declared(include_dir):
    """{name: (header, marked NNP_API)} for every function a public header declares."""
    decls = {}
    for h in sorted(os.listdir(include_dir)):
        if not h.endswith('.h') or h in HEADER_ONLY:
            continue
        with open(os.path.join(include_dir, h), encoding='utf-8') as f:
            text = DIRECTIVE.sub('', COMMENT.sub(' ', f.read()))
        for m in PROTO.finditer(text):
            head, name = m.group(1), m.group(2)
            words = head.split()
            if 'typedef' in words or 'static' in words or 'NNP_EXPORT' in words:
                continue
            decls[name] = (h, 'NNP_API' in words)
    return decls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--lib', required=True)
    ap.add_argument('--include', required=True)
    a = ap.parse_args()
    syms = exported(a.lib)
    decls = declared(a.include)
    bad = []
    for s in syms:
        if not s.startswith('nnp_'):
            bad.append('exported, not nnp_*: %s' % s)
        elif s not in decls:
            bad.append('exported, declared in no public header: %s' % s)
    have = set(syms)
    for name, (h, marked) in sorted(decls.items()):
        if not marked:
            bad.append('%s: %s is not marked NNP_API' % (h, name))
        if name not in have:
            bad.append('%s: %s is not exported by %s' % (h, name, os.path.basename(a.lib)))
    for line in bad:
        print('FAIL', line)
    print('check_exports: %s exports %d symbols (%d declared in %s): %s' % (
        os.path.basename(a.lib), len(syms), len(decls), a.include,
        '%d problems' % len(bad) if bad else 'all nnp_*, all public, every declaration exported'))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
