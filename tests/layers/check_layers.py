"""The layers of src/ depend one way: each uses only those before it.

    check_layers.py --src DIR [--objects A.o:B.o:...]

Reads the order from the first lines of DIR/README.md ("core -> services ->
..."), then fails (exit 1, one line per violation) when
  - a file in src/<layer>/ includes a header of a later layer: a private
    header "<later>/x.h" or a public header "nnplug/x.h" that belongs to a
    later layer (PUBLIC below), or
  - an object file of a layer refers to a symbol that an object of a later
    layer defines (nm), when --objects lists the library's objects.
"""
import argparse
import os
import re
import subprocess
import sys

# The layer of each public header: the layer that implements it.
PUBLIC = {
    'plugin.h': 'core', 'status.h': 'core', 'tensor.h': 'core', 'rng.h': 'core',
    'dist.h': 'core',
    'services.h': 'services', 'config.h': 'services',
    'registry.h': 'plugin', 'layer.h': 'plugin', 'plugin_util.h': 'plugin',
    'model.h': 'graph', 'train.h': 'graph',
    'io.h': 'interchange', 'keras.h': 'interchange', 'onnx.h': 'interchange',
    'nnplug.h': 'interchange',
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_order(src):
    with open(os.path.join(src, 'README.md'), encoding='utf-8') as f:
        for line in f:
            if '->' in line:
                return [w.strip(' `*.\n') for w in line.split(':')[-1].split('->')]
    sys.exit('check_layers: %s/README.md states no order ("core -> services -> ...")' % src)


def header_layer(inc, order):
    head, _, name = inc.rpartition('/')
    if head == 'nnplug':
        return PUBLIC.get(name, 'unknown public header')
    return head if head in order else None


def check_includes(src, order, public_dir):
    bad = []
    files = [(os.path.join(src, layer, f), layer) for layer in order
             if os.path.isdir(os.path.join(src, layer))
             for f in sorted(os.listdir(os.path.join(src, layer))) if f.endswith(('.c', '.h'))]
    files += [(os.path.join(public_dir, f), PUBLIC.get(f)) for f in sorted(os.listdir(public_dir))]
    for path, layer in files:
        if layer is None:
            bad.append('%s: public header without a layer in check_layers.py' % path)
            continue
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            if path.startswith(public_dir) and '/' not in inc:
                inc = 'nnplug/' + inc
            other = header_layer(inc, order)
            if other is None:
                continue   # a header of the same folder, or a generated one
            if other not in order:
                bad.append('%s: includes "%s" (%s)' % (path, inc, other))
            elif order.index(other) > order.index(layer):
                bad.append('%s (%s) includes "%s" of the later layer %s' % (path, layer, inc,
                                                                           other))
    return bad, len(files)


def layer_of_object(path, order):
    parts = path.replace('\\', '/').split('/')
    for i in range(len(parts) - 1, 0, -1):
        if parts[i - 1] == 'src' and parts[i] in order:
            return parts[i]
    return None


def check_symbols(objects, order):
    defined, undefined = {}, {}
    for o in objects:
        out = subprocess.run(['nm', o], capture_output=True, text=True, check=True).stdout
        undefined[o] = set()
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in 'TDBR':
                defined[p[2]] = o
            elif len(p) == 2 and p[0] == 'U':
                undefined[o].add(p[1])
    bad = []
    for o, syms in sorted(undefined.items()):
        lo = layer_of_object(o, order)
        for s in sorted(syms):
            d = defined.get(s)
            ld = layer_of_object(d, order) if d else None
            if lo and ld and order.index(ld) > order.index(lo):
                bad.append('%s (%s) calls %s of the later layer %s (%s)' % (
                    os.path.basename(o), lo, s, ld, os.path.basename(d)))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--src', required=True)
    ap.add_argument('--objects', default='')
    a = ap.parse_args()
    order = read_order(a.src)
    public_dir = os.path.join(os.path.dirname(os.path.abspath(a.src)), 'include', 'nnplug')
    bad, n_files = check_includes(a.src, order, public_dir)
    objects = [o for o in a.objects.split(':') if o]
    bad += check_symbols(objects, order)
    for line in bad:
        print('FAIL', line)
    print('check_layers: %s; %d files, %d objects: %s' % (
        ' -> '.join(order), n_files, len(objects),
        '%d violations' % len(bad) if bad else 'every dependency points back'))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
