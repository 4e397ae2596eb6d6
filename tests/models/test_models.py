#!/usr/bin/python3
"""The sample models in models/:

    test_models.py files --nnplug BIN --source DIR --work DIR
    test_models.py demo  --nnplug BIN --source DIR --work DIR

files: every .json and .onnx file in models/ (found, not listed here, so a new
file is covered; files that models/ entries of .gitignore match, such as a
generated ResNet-18, are left out) is under 1 MB, is named in
models/README.md, and
  - `nnplug info` lists its inputs, outputs and layers: for Keras JSON the
    layers of the file in its order, for ONNX every computing node;
  - `nnplug run` on a seeded N(0, 1) batch of 5 gives finite outputs of the
    shapes info declares (N = 5), equal to an independent numpy evaluation of
    the ONNX graph (float64) within 1e-4: the file itself, or for Keras JSON
    the ONNX that `nnplug convert` writes from it;
  - when it has trainable weights, one step of `nnplug train --epochs 1`
    (sparse categorical cross-entropy from logits on random labels for
    [N, classes] outputs, else MSE) gives finite weights, changes most of
    them, and saves a model that loads back with exactly those weights.
demo: `nnplug demo --data DIR` reaches validation accuracy 1.0, writes the
data committed in models/data/, and the `nnplug train models/spirals.json`
line it prints gives the same ONNX bytes as the demo (less the training
state its checkpoint keeps in metadata); then every
`build/bin/nnplug ...` line of models/README.md runs (from a scratch folder,
with models/ read from the source tree and build/ outputs sent to the work
folder) and exits 0, and the README's spirals training saves the demo's bytes.

Needs /usr/bin/python3 with numpy and onnx (Debian's python3-numpy,
python3-onnx). Reads nothing outside the source and work folders."""
import argparse
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import numpy_helper

failures = []
n_checks = [0]

# Known nnplug bugs these checks find, as (model file, start of the check's
# text) -> the bug. Such a check failing prints "xfail" and does not fail the
# suite; passing prints "XPASS" and fails it, so that the entry goes once the
# bug is fixed.
KNOWN = {}



def model_bytes(path):
    """The ONNX file's bytes less the training state nnplug train keeps in a
    checkpoint's metadata (nnplug-train.*): the model itself."""
    import onnx
    m = onnx.load(path)
    keep = [p for p in m.metadata_props if not p.key.startswith('nnplug-train.')]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    return m.SerializeToString()

def check(ok, what, detail='', model=None):
    """Counts and prints one check; detail (stderr, say) is shown on failure."""
    n_checks[0] += 1
    known = next((v for (m, w), v in KNOWN.items() if m == model and what.startswith(w)),
                 None)
    label = '%s: %s' % (model, what) if model else what
    if known and not ok:
        print('xfail %s -- known bug: %s' % (label, known))
        return ok
    if known:
        label += ' -- XPASS: the known bug (%s) is gone, remove its KNOWN entry' % known
        ok = False
    print('%s %s%s' % ('ok  ' if ok else 'FAIL', label, '' if ok or not detail else
                       ' [%s]' % detail.strip()[-400:]))
    if not ok:
        failures.append(label)
    return ok


def run(cmd, cwd=None):
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    r.seconds = time.time() - t
    return r


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


# ---- a numpy ONNX evaluator (float64), for the ops the sample models use ----

def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    if a.get('auto_pad', b'NOTSET') not in (b'NOTSET', 'NOTSET'):
        raise NotImplementedError('Conv auto_pad')
    k = w.shape[2:]
    st = a.get('strides', [1, 1])
    dil = a.get('dilations', [1, 1])
    p = a.get('pads', [0, 0, 0, 0])
    g = a.get('group', 1)
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
    ek = [(k[i] - 1) * dil[i] + 1 for i in range(2)]
    win = sliding_window_view(x, ek, axis=(2, 3))[:, :, ::st[0], ::st[1], ::dil[0], ::dil[1]]
    cin, cout = x.shape[1] // g, w.shape[0] // g
    ys = [np.tensordot(win[:, i * cin:(i + 1) * cin], w[i * cout:(i + 1) * cout],
                       axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) for i in range(g)]
    y = np.concatenate(ys, axis=1)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def pool(x, a, kind):
    k = a['kernel_shape']
    st = a.get('strides', [1, 1])
    p = a.get('pads', [0, 0, 0, 0])
    if a.get('ceil_mode', 0) or a.get('auto_pad', b'NOTSET') not in (b'NOTSET', 'NOTSET'):
        raise NotImplementedError('pooling ceil_mode / auto_pad')
    fill = -np.inf if kind == 'max' else np.nan
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=fill)
    win = sliding_window_view(x, k, axis=(2, 3))[:, :, ::st[0], ::st[1]]
    if kind == 'max':
        return win.max(axis=(4, 5))
    if a.get('count_include_pad', 0):
        return np.nan_to_num(win).sum(axis=(4, 5)) / (k[0] * k[1])
    return np.nanmean(win, axis=(4, 5))


def batchnorm(node, a, opset, x, s, b, mean, var):
    train = a.get('training_mode', 0) == 1 if opset >= 14 else (
        len(node.output) > 1 and any(node.output[1:]))
    if train:
        axes = tuple(i for i in range(x.ndim) if i != 1)
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    sh = [1, -1] + [1] * (x.ndim - 2)
    return ((x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + a.get('epsilon', 1e-5))
            * s.reshape(sh) + b.reshape(sh))


def reshape(x, shape, a):
    shape = [int(d) for d in shape]
    if not a.get('allowzero', 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def evaluate(model, feeds):
    """Outputs of an ONNX model (the default domain) on float64 feeds."""
    opset = max([o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')] or [1])
    v = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    v.update(feeds)
    for node in model.graph.node:
        a = attrs(node)
        x = [v[n] if n else None for n in node.input]
        op = node.op_type
        if op == 'Conv':
            y = conv(x[0], x[1], x[2] if len(x) > 2 else None, a)
        elif op == 'BatchNormalization':
            y = batchnorm(node, a, opset, *x[:5])
        elif op == 'Relu':
            y = np.maximum(x[0], 0)
        elif op == 'MaxPool':
            y = pool(x[0], a, 'max')
        elif op == 'AveragePool':
            y = pool(x[0], a, 'avg')
        elif op == 'GlobalAveragePool':
            y = x[0].mean(axis=tuple(range(2, x[0].ndim)), keepdims=True)
        elif op == 'GlobalMaxPool':
            y = x[0].max(axis=tuple(range(2, x[0].ndim)), keepdims=True)
        elif op == 'Flatten':
            ax = a.get('axis', 1) % max(x[0].ndim, 1)
            y = x[0].reshape(int(np.prod(x[0].shape[:ax])), -1)
        elif op == 'Gemm':
            A = x[0].T if a.get('transA', 0) else x[0]
            B = x[1].T if a.get('transB', 0) else x[1]
            y = a.get('alpha', 1.0) * (A @ B)
            if len(x) > 2 and x[2] is not None:
                y = y + a.get('beta', 1.0) * x[2]
        elif op == 'MatMul':
            y = x[0] @ x[1]
        elif op == 'Add':
            y = x[0] + x[1]
        elif op == 'Mul':
            y = x[0] * x[1]
        elif op == 'Transpose':
            y = np.transpose(x[0], a.get('perm'))
        elif op == 'Reshape':
            y = reshape(x[0], x[1], a)
        elif op in ('Identity', 'Dropout'):
            y = x[0]
        elif op == 'Constant':
            y = numpy_helper.to_array(a['value']).astype(np.float64)
        elif op == 'Softmax':
            z = np.exp(x[0] - x[0].max(axis=a.get('axis', -1), keepdims=True))
            y = z / z.sum(axis=a.get('axis', -1), keepdims=True)
        else:
            raise NotImplementedError('op %s (add it to the evaluator in %s)' % (op, __file__))
        v[node.output[0]] = y
    return [v[o.name] for o in model.graph.output]


# ---- nnplug info ---------------------------------------------------------------

def parse_info(text):
    """{'inputs': [(name, dims)], 'outputs': [...], 'nodes': [(value, kind, layer)],
    'layers': [name], 'trainable': int}; dims use -1 for N."""
    info = {'inputs': [], 'outputs': [], 'nodes': [], 'layers': [], 'trainable': 0}
    section = None
    for line in text.splitlines():
        if re.match(r'^(inputs|outputs|nodes|layers):$', line):
            section = line[:-1]
            continue
        if not line.startswith('  '):
            section = None
            m = re.match(r'^total: (\d+) params \((\d+) trainable\)', line)
            if m:
                info['trainable'] = int(m.group(2))
            continue
        f = line.split()
        if section in ('inputs', 'outputs'):
            dims = [-1 if d in ('N', '?') or not d.lstrip('-').isdigit() else int(d)
                    for d in f[2].strip('[]').split(',')]
            info[section].append((f[0], dims))
        elif section == 'nodes':
            info['nodes'].append((f[0], f[1], f[3] if len(f) > 3 and f[2] == '->' else ''))
            if len(f) > 4 and f[3] == 'layer':
                info['nodes'][-1] = (f[0], f[1], f[4])
        elif section == 'layers' and not line.startswith('    '):
            info['layers'].append(f[0])
    return info


def keras_layers(path):
    """Non-input layer names of a Keras JSON model, in the file's order."""
    with open(path) as f:
        top = json.load(f)
    top = top.get('modelTopology', top)
    top = top.get('model_config', top)
    names = []
    for lj in top['config']['layers']:
        if lj.get('class_name') != 'InputLayer':
            names.append(lj.get('config', {}).get('name') or lj.get('name'))
    return names


# ---- files -----------------------------------------------------------------------

def ignored_patterns(src):
    pats = []
    path = os.path.join(src, '.gitignore')
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip().lstrip('/')
                if line.startswith('models/') and not line.startswith('!'):
                    pats.append(line)
    return pats


def model_files(src):
    d = os.path.join(src, 'models')
    pats = ignored_patterns(src)
    found, skipped = [], []
    for name in sorted(os.listdir(d)):
        if not (name.endswith('.json') or name.endswith('.onnx')):
            continue
        rel = 'models/' + name
        (skipped if any(fnmatch.fnmatch(rel, p) for p in pats) else found).append(rel)
    return found, skipped


def npy_set(d):
    """Multiset of the weight arrays an --out-dir holds (history files aside)."""
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith('.npy') and f not in ('loss_history.npy', 'batch_losses.npy'):
            out[f] = np.load(os.path.join(d, f))
    return out


def digest(arrays):
    return sorted(hashlib.sha256(str(a.shape).encode() + a.tobytes()).hexdigest()
                  for a in arrays)


def close(got, exp, tol):
    got, exp = np.asarray(got, np.float64), np.asarray(exp, np.float64)
    if got.shape != exp.shape:
        return False, 'shape %s vs %s' % (got.shape, exp.shape)
    err = np.abs(got - exp) - tol * np.abs(exp)
    return bool(np.all(err <= tol)), 'max |diff| %.3g' % float(np.abs(got - exp).max())


def check_model(a, rel, readme):
    path = os.path.join(a.source, rel)
    stem = os.path.basename(rel).replace('.', '_')
    w = fresh(os.path.join(a.work, 'files', stem))
    is_onnx = rel.endswith('.onnx')

    def ck(ok, what, detail=''):
        return check(ok, what, detail, model=rel)

    size = os.path.getsize(path)
    ck(size < 1 << 20, '%d bytes (under 1 MB)' % size)
    ck(os.path.basename(rel) in readme, 'models/README.md names it')

    r = run([a.nnplug, 'info', path])
    if not ck(r.returncode == 0, 'nnplug info', r.stderr):
        return
    info = parse_info(r.stdout)
    ck(info['inputs'] and info['outputs'] and info['nodes'] and info['layers'],
       'info lists inputs %s, outputs %s, %d nodes, %d layers' % (
           info['inputs'], info['outputs'], len(info['nodes']), len(info['layers'])),
       r.stdout)
    if is_onnx:
        m = onnx.load(path)
        computing = [n.name for n in m.graph.node if n.op_type not in ('Identity', 'Constant')]
        listed = [n[0] for n in info['nodes']] + [n[2] for n in info['nodes']]
        missing = [n for n in computing if n not in listed]
        ck(not missing, 'info lists every computing node of the graph (%d)' % len(computing),
           'missing: %s' % missing)
    else:
        want = keras_layers(path)
        ck(info['layers'] == want, 'info lists the file\'s layers in order: %s' % want,
           'info: %s' % info['layers'])

    # forward on a seeded batch of 5
    rng = np.random.RandomState(int(hashlib.sha256(rel.encode()).hexdigest()[:8], 16))
    batch = 5
    feeds, args = {}, []
    for k, (name, dims) in enumerate(info['inputs']):
        shape = [batch if d < 0 else d for d in dims]
        x = rng.normal(0, 1, shape).astype(np.float32)
        feeds[name] = x
        np.save(os.path.join(w, 'in_%d.npy' % k), x)
        args += ['-i', '%s=%s' % (name, os.path.join(w, 'in_%d.npy' % k))]

    def forward(model, tag):
        outs = []
        for k, (name, _) in enumerate(info['outputs']):
            outs += ['-o', '%s=%s' % (name, os.path.join(w, '%s_%d.npy' % (tag, k)))]
        r = run([a.nnplug, 'run', model] + args + outs)
        if r.returncode:
            return None, r.stderr
        return [np.load(os.path.join(w, '%s_%d.npy' % (tag, k)))
                for k in range(len(info['outputs']))], ''

    got, errs = forward(path, 'out')
    if not ck(got is not None, 'nnplug run on a batch of %d' % batch, errs):
        return
    for (name, dims), y in zip(info['outputs'], got):
        want = tuple(batch if d < 0 else d for d in dims)
        ck(y.shape == want and y.dtype == np.float32 and np.all(np.isfinite(y)),
           'output %s is finite float32 of shape %s' % (name, want),
           'got %s %s' % (y.dtype, y.shape))

    # independent reference: numpy over the ONNX graph
    ref_model = path
    if not is_onnx:
        ref_model = os.path.join(w, 'converted.onnx')
        r = run([a.nnplug, 'convert', path, ref_model])
        if not ck(r.returncode == 0, 'nnplug convert to ONNX', r.stderr):
            return
    m = onnx.load(ref_model)
    try:
        exp = evaluate(m, {i.name: feeds[i.name].astype(np.float64) for i in m.graph.input
                           if i.name in feeds})
    except Exception as e:   # an op the evaluator lacks is a failure to fix here
        ck(False, 'numpy evaluation of the ONNX graph', '%s: %s' % (type(e).__name__, e))
        return
    what = 'the file' if is_onnx else 'its ONNX conversion'
    for (name, _), y, e in zip(info['outputs'], got, exp):
        ok, msg = close(y, e, 1e-4)
        ck(ok, 'output %s equals the numpy evaluation of %s within 1e-4' % (name, what), msg)
    if not is_onnx:
        conv_got, errs = forward(ref_model, 'conv')
        ok, msg = (False, errs) if conv_got is None else close(conv_got[0], exp[0], 1e-4)
        ck(ok, 'nnplug run on its ONNX conversion equals the numpy evaluation', msg)

    # one training step
    if info['trainable'] == 0 or len(info['inputs']) != 1 or len(info['outputs']) != 1:
        print('     %s: not trained (%d trainable weights, %d inputs, %d outputs)' % (
            rel, info['trainable'], len(info['inputs']), len(info['outputs'])))
        return
    yshape = got[0].shape
    if len(yshape) == 2 and yshape[1] > 1:
        y = rng.randint(0, yshape[1], batch).astype(np.int64)
        loss = ['--loss', 'sparse_categorical_crossentropy', '--from-logits']
    else:
        y = rng.normal(0, 1, yshape).astype(np.float32)
        loss = ['--loss', 'mse']
    yf = os.path.join(w, 'y.npy')
    np.save(yf, y)
    xf = args[1].split('=', 1)[1]
    common = ['--x', xf, '--y', yf, '--batch-size', str(batch), '--optimizer', 'sgd',
              '--lr', '0.1', '--seed', '1'] + loss
    d0, d1, d2 = (os.path.join(w, d) for d in ('w0', 'w1', 'w2'))
    saved = os.path.join(w, 'trained.onnx')
    r0 = run([a.nnplug, 'train', path, '--epochs', '0', '--save', os.path.join(w, 'e0.onnx'),
              '--out-dir', d0] + common)
    r1 = run([a.nnplug, 'train', path, '--epochs', '1', '--save', saved, '--out-dir', d1] +
             common)
    if not ck(r0.returncode == 0 and r1.returncode == 0,
              'nnplug train --epochs 0 and --epochs 1 (one step)', r0.stderr + r1.stderr):
        return
    w0, w1 = npy_set(d0), npy_set(d1)
    changed = [f for f in w1 if f in w0 and (w1[f].shape != w0[f].shape or
                                             not np.array_equal(w1[f], w0[f]))]
    ck(w0.keys() == w1.keys() and all(np.all(np.isfinite(v)) for v in w1.values()),
       'the same %d weights before and after, all finite' % len(w1))
    ck(len(changed) >= max(1, len(w1) // 2), 'one step changed %d of %d weights' % (
        len(changed), len(w1)), 'unchanged: %s' % sorted(set(w1) - set(changed)))
    loss_hist = np.load(os.path.join(d1, 'loss_history.npy'))
    ck(loss_hist.shape == (1,) and np.isfinite(loss_hist[0]),
       'the step\'s loss is finite', str(loss_hist))
    r = run([a.nnplug, 'info', saved])
    ck(r.returncode == 0 and parse_info(r.stdout)['layers'], 'the saved model loads', r.stderr)
    r = run([a.nnplug, 'train', saved, '--epochs', '0', '--save', os.path.join(w, 'e2.onnx'),
             '--out-dir', d2] + common)
    ck(r.returncode == 0 and digest(npy_set(d2).values()) == digest(w1.values()),
       'the saved model holds exactly the trained weights', r.stderr)
    out2, errs = forward(saved, 'saved')
    try:
        exp2 = evaluate(onnx.load(saved), {n: feeds[n].astype(np.float64) for n in feeds})
        ok, msg = (False, errs) if out2 is None else close(out2[0], exp2[0], 1e-4)
    except Exception as e:
        ok, msg = False, '%s: %s' % (type(e).__name__, e)
    ck(ok, 'nnplug run on the saved model equals the numpy evaluation of the saved file', msg)


def files_suite(a):
    with open(os.path.join(a.source, 'models', 'README.md')) as f:
        readme = f.read()
    found, skipped = model_files(a.source)
    check(len(found) >= 6, 'models/ holds %d model files: %s' % (len(found), found))
    for rel in skipped:
        print('     %s: left out (.gitignore: a generated model, not in git)' % rel)
    for rel in found:
        check_model(a, rel, readme)


# ---- demo and README -------------------------------------------------------------

def readme_commands(src):
    """The `build/bin/nnplug ...` lines of models/README.md's code blocks."""
    cmds, block = [], False
    with open(os.path.join(src, 'models', 'README.md')) as f:
        for line in f:
            if line.startswith('```'):
                block = not block
            elif block and line.strip().startswith('build/bin/nnplug '):
                cmds.append(line.strip())
    return cmds


def demo_suite(a):
    w = fresh(os.path.join(a.work, 'demo'))
    data = os.path.join(w, 'data')
    r = run([a.nnplug, 'demo', '--data', data], cwd=w)
    demo_onnx = os.path.join(w, 'demo.onnx')
    check(r.returncode == 0 and 'demo passed' in r.stdout and os.path.exists(demo_onnx),
          'nnplug demo --data DIR passes', r.stdout + r.stderr)
    check('validation accuracy 1.0000' in r.stdout, 'the demo reaches validation accuracy 1.0')
    for f in ('spirals_x.npy', 'spirals_y.npy'):
        mine, committed = os.path.join(data, f), os.path.join(a.source, 'models', 'data', f)
        same = os.path.exists(mine) and os.path.exists(committed) and \
            open(mine, 'rb').read() == open(committed, 'rb').read()
        check(same, 'demo --data wrote %s, the bytes of models/data/%s' % (f, f))
    m = re.search(r'the same training: (nnplug train .*)$', r.stdout, re.M)
    if check(m is not None, 'the demo prints the nnplug train line that repeats it'):
        argv = shlex.split(m.group(1))
        subst = {'models/spirals.json': os.path.join(a.source, 'models', 'spirals.json'),
                 'OUT.onnx': os.path.join(w, 'train.onnx')}
        argv = [a.nnplug] + [subst.get(x, x) for x in argv[1:]]
        r = run(argv, cwd=w)
        same = r.returncode == 0 and model_bytes(os.path.join(w, 'train.onnx')) == \
            model_bytes(demo_onnx)
        check(same, 'nnplug train models/spirals.json with the demo\'s data and options '
              'saves the demo\'s ONNX bytes', r.stderr)

    # every nnplug line of models/README.md
    rw = fresh(os.path.join(a.work, 'readme'))
    cmds = readme_commands(a.source)
    ignored = ignored_patterns(a.source)
    check(len(cmds) >= 6, 'models/README.md has %d build/bin/nnplug lines' % len(cmds))
    spirals_save = None
    for line in cmds:
        argv = shlex.split(line)
        out = [a.nnplug]
        generated = []   # models/ files .gitignore leaves out, when not made yet
        for x in argv[1:]:
            # a path, or NAME=path (run -i / -o)
            pre, _, rel = x.rpartition('=') if re.match(r'^\w+=', x) else ('', '', x)
            pre += '=' if pre else ''
            if rel.startswith('models/'):
                if any(fnmatch.fnmatch(rel, p) for p in ignored) and \
                        not os.path.exists(os.path.join(a.source, rel)):
                    generated.append(rel)
                x = pre + os.path.join(a.source, rel)
            elif rel.startswith('build/'):
                x = pre + os.path.join(rw, rel[len('build/'):])
            out.append(x)
        if generated:
            print('     not run (%s not generated): %s' % (', '.join(generated), line))
            continue
        r = run(out, cwd=rw)
        check(r.returncode == 0, 'README (%.2f s): %s' % (r.seconds, line), r.stderr)
        if argv[1] == 'train' and argv[2] == 'models/spirals.json':
            spirals_save = out[out.index('--save') + 1]
    if check(spirals_save is not None, 'README trains models/spirals.json'):
        check(os.path.exists(spirals_save) and model_bytes(spirals_save) ==
              model_bytes(demo_onnx), 'README\'s spirals training saves the demo\'s '
              'ONNX bytes (less the training state of a checkpoint)')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('suite', choices=['files', 'demo'])
    ap.add_argument('--nnplug', default=os.environ.get('NNP_BIN'))
    ap.add_argument('--source', default=os.environ.get('NNP_SOURCE_DIR'))
    ap.add_argument('--work', required=True)
    a = ap.parse_args()
    if not a.nnplug or not a.source:
        ap.error('needs --nnplug and --source (or NNP_BIN and NNP_SOURCE_DIR)')
    a.nnplug, a.source, a.work = (os.path.abspath(p) for p in (a.nnplug, a.source, a.work))
    os.makedirs(a.work, exist_ok=True)
    (files_suite if a.suite == 'files' else demo_suite)(a)
    print('%s: %d checks, %d failed' % (a.suite, n_checks[0], len(failures)))
    for f in failures:
        print('FAILED: ' + f)
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
