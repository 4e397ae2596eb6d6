#!/usr/bin/python3
"""Training gives the same bits for any thread count.

    train_threads.py --nnplug BIN --source DIR --work DIR [--testdata DIR] [--threads 1,2,3]

Trains each model below with `nnplug train ... --threads T --out-dir DIR`
for T = 1, 2, 3 (3 on a 2-core machine oversubscribes, which must not matter
either) and requires every file to be byte-identical across T: each weight
(.npy), the loss history, the per-step losses and the saved .onnx. The data
are generated here with a seeded numpy; shuffling is on (seeded). Sizes are
chosen so that every kernel goes past its single-thread threshold (BN, Dense,
Conv2D, pooling, activations: 16K-64K elements) and splits unevenly over 3
threads (odd channel, feature and batch counts).

  cnn        Keras JSON, channels_last: Conv2D(15, 3x3 same) + BN + ReLU +
             MaxPooling2D + Conv2D(24, 3x3 valid) + BN + ReLU +
             GlobalAveragePooling2D + Dense(10); 96 images 18x18x3, batch 24
  cnn_cf     the same model with data_format channels_first (the layout of
             ONNX imports)
  cnn_tail   channels_first, images small enough that Conv2D's backward runs
             on the batch's patches (outputs of 2x2: ResNet's last stage at
             64x64): Conv2D(32) + BN + ReLU + MaxPooling2D, Conv2D(40, 3x3
             stride 2) + BN + ReLU, Conv2D(48, 3x3) + GAP + Dense(10); 96
             images 3x8x8, batch 24
  mlp        Keras JSON: Dense(257) + BN + ReLU + Dense(129) + BN + ReLU +
             Dense(10); 300 samples of 61 features, batch 128 (last batch 44)
  torch_cnn  testdata/torch-export/cnn_bn2d_op15 (an ONNX import), when
             --testdata is given: 64 images 3x16x16, batch 4
  adam       the mlp with Adam instead of SGD with momentum

On a difference, the first differing array and its first differing index
are printed: the layer's name says which kernel is not deterministic.
Needs /usr/bin/python3 with numpy. Torch and ONNX Runtime are not needed."""
import filecmp
import json
import os

import numpy as np

import itest
from itest import check, fresh, run


def seq(name, input_shape, layers):
    first = dict(layers[0][1], batch_input_shape=[None] + list(input_shape))
    ls = [{'class_name': layers[0][0], 'config': first}] + \
        [{'class_name': c, 'config': cfg} for c, cfg in layers[1:]]
    for i, l in enumerate(ls):
        l['config'].setdefault('name', '%s_%d' % (l['class_name'].lower(), i))
    return {'class_name': 'Sequential', 'config': {'name': name, 'layers': ls}}


def cnn(fmt):
    bn_axis = 1 if fmt == 'channels_first' else -1
    shape = [3, 18, 18] if fmt == 'channels_first' else [18, 18, 3]
    return seq('cnn', shape, [
        ('Conv2D', {'filters': 15, 'kernel_size': [3, 3], 'padding': 'same',
                    'data_format': fmt}),
        ('BatchNormalization', {'axis': bn_axis}),
        ('ReLU', {}),
        ('MaxPooling2D', {'pool_size': [2, 2], 'data_format': fmt}),
        ('Conv2D', {'filters': 24, 'kernel_size': [3, 3], 'padding': 'valid',
                    'data_format': fmt}),
        ('BatchNormalization', {'axis': bn_axis}),
        ('ReLU', {}),
        ('GlobalAveragePooling2D', {'data_format': fmt}),
        ('Dense', {'units': 10})]), shape


def cnn_tail():
    fmt = 'channels_first'
    return seq('cnn_tail', [3, 8, 8], [
        ('Conv2D', {'filters': 32, 'kernel_size': [3, 3], 'padding': 'same',
                    'data_format': fmt}),
        ('BatchNormalization', {'axis': 1}),
        ('ReLU', {}),
        ('MaxPooling2D', {'pool_size': [2, 2], 'data_format': fmt}),
        ('Conv2D', {'filters': 40, 'kernel_size': [3, 3], 'strides': [2, 2],
                    'padding': 'same', 'data_format': fmt}),
        ('BatchNormalization', {'axis': 1}),
        ('ReLU', {}),
        ('Conv2D', {'filters': 48, 'kernel_size': [3, 3], 'padding': 'same',
                    'data_format': fmt}),
        ('GlobalAveragePooling2D', {'data_format': fmt}),
        ('Dense', {'units': 10})]), [3, 8, 8]


def mlp():
    return seq('mlp', [61], [
        ('Dense', {'units': 257}), ('BatchNormalization', {}), ('ReLU', {}),
        ('Dense', {'units': 129}), ('BatchNormalization', {}), ('ReLU', {}),
        ('Dense', {'units': 10})]), [61]


def data(d, name, shape, n, classes, seed):
    rng = np.random.RandomState(seed)
    x = rng.normal(0, 1, [n] + list(shape)).astype(np.float32)
    y = rng.randint(0, classes, n).astype(np.int64)
    xf, yf = os.path.join(d, name + '_x.npy'), os.path.join(d, name + '_y.npy')
    np.save(xf, x)
    np.save(yf, y)
    return xf, yf


def first_difference(a_dir, b_dir, files):
    for f in files:
        pa, pb = os.path.join(a_dir, f), os.path.join(b_dir, f)
        if not os.path.exists(pb):
            return '%s missing' % f
        if filecmp.cmp(pa, pb, shallow=False):
            continue
        if not f.endswith('.npy'):
            return '%s differs' % f
        u, v = np.load(pa), np.load(pb)
        if u.shape != v.shape:
            return '%s: shape %s vs %s' % (f, u.shape, v.shape)
        idx = np.argwhere(u != v)
        i = tuple(idx[0]) if len(idx) else ()
        return '%s: %d of %d elements differ, first at %s: %r vs %r (max |diff| %.3g)' % (
            f, len(idx), u.size, list(i), u[i] if i else None, v[i] if i else None,
            float(np.abs(u.astype(np.float64) - v).max()))
    return None


def main():
    a = itest.args(__doc__.split('\n\n')[0])
    threads = [int(t) for t in os.environ.get('NNP_TRAIN_THREADS', '1,2,3').split(',')]
    d = fresh(os.path.join(a.work, 'train-threads'))
    sgd = ['--optimizer', 'sgd', '--lr', '0.05', '--momentum', '0.9']
    cases = []
    for name, (spec, shape) in (('cnn', cnn('channels_last')), ('cnn_cf', cnn('channels_first')),
                                ('cnn_tail', cnn_tail()), ('mlp', mlp())):
        model = os.path.join(d, name + '.json')
        with open(model, 'w') as f:
            json.dump(spec, f)
        n, bs = (300, 128) if name == 'mlp' else (96, 24)
        xf, yf = data(d, name, shape, n, 10, 11)
        cases.append((name, model, xf, yf, ['--batch-size', str(bs), '--epochs', '2'] + sgd))
        if name == 'mlp':
            cases.append(('adam', model, xf, yf, ['--batch-size', str(bs), '--epochs', '2',
                                                  '--optimizer', 'adam', '--lr', '0.01']))
    td = a.testdata
    if td:
        model = os.path.join(td, 'torch-export', 'cnn_bn2d_op15', 'model.onnx')
        xf, yf = data(d, 'torch_cnn', [3, 16, 16], 64, 10, 12)
        cases.append(('torch_cnn', model, xf, yf, ['--batch-size', '4', '--epochs', '2'] + sgd))

    for name, model, xf, yf, opts in cases:
        dirs = []
        for t in threads:
            od = os.path.join(d, '%s-t%d' % (name, t))
            save = os.path.join(od, 'saved.onnx')
            os.makedirs(od, exist_ok=True)
            r = run([a.nnplug, 'train', model, '--x', xf, '--y', yf, '--loss',
                     'sparse_categorical_crossentropy', '--from-logits', '--seed', '5',
                     '--threads', str(t), '--save', save, '--out-dir', od] + opts)
            if check(r.returncode == 0, '%s: nnplug train --threads %d (%s)' % (
                    name, t, r.stderr.strip().replace('\n', ' | '))):
                dirs.append((t, od))
        if len(dirs) != len(threads):
            continue
        files = sorted(os.listdir(dirs[0][1]))
        hist = np.load(os.path.join(dirs[0][1], 'batch_losses.npy'))
        check(len(files) > 3 and np.all(np.isfinite(hist)),
              '%s: %d files, %d finite step losses' % (name, len(files), hist.size))
        for t, od in dirs[1:]:
            diff = first_difference(dirs[0][1], od, files)
            check(diff is None and sorted(os.listdir(od)) == files,
                  '%s: --threads %d gives the bytes of --threads %d (%d files)%s' % (
                      name, t, dirs[0][0], len(files), '' if diff is None else ': ' + diff))
    itest.finish('train_threads')


if __name__ == '__main__':
    main()
