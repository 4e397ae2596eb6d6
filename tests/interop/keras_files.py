#!/usr/bin/python3
"""Keras model files with their weights: .keras archives and legacy .h5.

    keras_files.py --nnplug BIN --source DIR --work DIR

Writes, with h5py, zipfile, json and numpy, model files in the layouts Keras
writes them (the facts below come from real files):
  - k2.h5: a tf.keras 2 / Keras 2.3 HDF5 model: root attributes model_config,
    keras_version, backend and training_config as fixed-length byte strings,
    model_weights with layer_names and each layer's weight_names as byte-string
    arrays (an empty float64 array for a layer without weights), datasets at
    model_weights/<layer>/<layer>/<weight>:0, and an optimizer_weights group;
  - k3.h5: Keras 3's h5 writer: ordinary (variable-length) strings, a
    Functional config in Keras 3's form (module, registered_name, DTypePolicy,
    build_config, __keras_tensor__ inbound nodes), datasets at
    model_weights/<layer>/<model>/<layer>/<weight>, an InputLayer listed with
    no weights, top_level_model_weights;
  - k3.keras: a Keras 3.10 archive: metadata.json, config.json and
    model.weights.h5 with layers/<class_snake>[_N]/vars/<i>, each vars group
    with the layer's name attribute, the config's layer names differing from
    the group names; and td.keras, a TimeDistributed(Dense) whose weights sit
    at layers/time_distributed/layer/vars.
The models hold Conv2D (channels_last, 'same' with stride 1 and 2, 'valid'),
BatchNormalization (full, scale=false, center=false), ReLU, MaxPooling2D,
Flatten and Dense. Checks:
  - `nnplug run` on each equals a float64 numpy implementation of the layers
    (BatchNormalization in inference: (x - mean) / sqrt(var + eps) * gamma +
    beta) within 1e-4 relative;
  - `nnplug train` two steps on k3.keras and on k2.h5, saving .keras: every
    trainable weight and the moving statistics changed (read back with h5py),
    and the saved archive has the Keras 3 layout (members, groups, names);
  - .keras -> .keras -> .onnx -> .keras: weights bitwise equal to the file's
    (h5py), config.json equal after the ONNX round trip, and the original
    layer configs' keys kept;
  - bad files, each exit 2 with the file, layer and weight named, no crash,
    and no output left by `nnplug convert`: a truncated zip, a zip without
    model.weights.h5, a corrupted model.weights.h5, a missing dataset, a
    wrong shape, a wrong count (.keras and .h5), a vars group named for
    another layer, a layer class nnplug lacks, a non-HDF5 file named .h5, a
    weights-only HDF5 file.

Exit 77 (skipped) only when /usr/bin/python3 lacks h5py."""
import io
import json
import os
import sys
import zipfile

import numpy as np

import itest
from itest import check, fresh, run

try:
    import h5py
except ImportError:
    print('SKIP: keras_files needs h5py in /usr/bin/python3 (Debian python3-h5py)')
    sys.exit(77)

RNG = np.random.RandomState(1414)

# ---- the model: (class, name, config, weights in Keras order) ---------------


def conv(name, filters, k, cin, strides=1, padding='same', activation='linear'):
    cfg = dict(filters=filters, kernel_size=[k, k], strides=[strides, strides], padding=padding,
               data_format='channels_last', dilation_rate=[1, 1], groups=1,
               activation=activation, use_bias=True)
    w = [('kernel', RNG.normal(0, 0.3, (k, k, cin, filters))),
         ('bias', RNG.normal(0, 0.1, (filters,)))]
    return ['Conv2D', name, cfg, w]


def bn(name, c, scale=True, center=True, eps=1e-3):
    cfg = dict(axis=-1, momentum=0.99, epsilon=eps, center=center, scale=scale)
    w = []
    if scale:
        w.append(('gamma', RNG.uniform(0.5, 1.5, c)))
    if center:
        w.append(('beta', RNG.normal(0, 0.2, c)))
    w += [('moving_mean', RNG.normal(0, 0.3, c)), ('moving_variance', RNG.uniform(0.5, 2.0, c))]
    return ['BatchNormalization', name, cfg, w]


def dense(name, units, cin):
    cfg = dict(units=units, activation='linear', use_bias=True)
    return ['Dense', name, cfg, [('kernel', RNG.normal(0, 0.3, (cin, units))),
                                 ('bias', RNG.normal(0, 0.1, (units,)))]]


def cnn_layers():
    layers = [
        conv('conv1', 4, 3, 3),
        bn('bn1', 4),
        ['ReLU', 'relu1', dict(max_value=None, negative_slope=0.0, threshold=0.0), []],
        ['MaxPooling2D', 'pool1', dict(pool_size=[2, 2], strides=[2, 2], padding='valid',
                                       data_format='channels_last'), []],
        conv('conv2', 6, 3, 4, strides=2, activation='relu'),
        bn('bn2', 6, scale=False, eps=1e-5),
        ['Flatten', 'flat', dict(data_format='channels_last'), []],
        dense('fc1', 5, 24),
        bn('bn3', 5, center=False),
        dense('fc2', 3, 5),
    ]
    for l in layers:   # what files hold: float32
        l[3] = [(n, v.astype(np.float32)) for n, v in l[3]]
    return layers


INPUT_SHAPE = [8, 8, 3]

# ---- numpy float64 reference --------------------------------------------------


def ref_conv(x, w, b, strides, padding):
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    s = strides[0]
    if padding == 'same':
        oh, ow = -(-h // s), -(-wd // s)
        ph, pw = max((oh - 1) * s + kh - h, 0), max((ow - 1) * s + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // s + 1, (wd - kw) // s + 1
    y = np.zeros((n, oh, ow, f))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :]
            y += np.einsum('nhwc,cf->nhwf', patch, w[i, j].astype(np.float64))
    return y + b


def ref_forward(layers, x):
    x = x.astype(np.float64)
    for cls, _, cfg, ws in layers:
        w = {n: v.astype(np.float64) for n, v in ws}
        if cls == 'Conv2D':
            x = ref_conv(x, w['kernel'], w['bias'], cfg['strides'], cfg['padding'])
            if cfg['activation'] == 'relu':
                x = np.maximum(x, 0)
        elif cls == 'BatchNormalization':
            g, b = w.get('gamma', 1.0), w.get('beta', 0.0)
            x = (x - w['moving_mean']) / np.sqrt(w['moving_variance'] + cfg['epsilon']) * g + b
        elif cls == 'ReLU':
            x = np.maximum(x, 0)
        elif cls == 'MaxPooling2D':
            n, h, wd, c = x.shape
            x = x[:, :h // 2 * 2, :wd // 2 * 2].reshape(n, h // 2, 2, wd // 2, 2, c).max(axis=(2, 4))
        elif cls == 'Flatten':
            x = x.reshape(len(x), -1)
        elif cls == 'Dense':
            x = x @ w['kernel'] + w['bias']
        elif cls == 'TimeDistributed':
            x = x @ w['kernel'] + w['bias']
        else:
            raise ValueError(cls)
    return x

# ---- configs as each Keras writes them ----------------------------------------


def initializers(cls, v3):
    def spec(name, **c):
        s = {'class_name': name, 'config': c}
        if v3:
            s = {'module': 'keras.initializers', 'class_name': name, 'config': c,
                 'registered_name': None}
        return s
    glorot = spec('GlorotUniform', seed=None)
    if cls in ('Conv2D', 'Dense'):
        return dict(kernel_initializer=glorot, bias_initializer=spec('Zeros'),
                    kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                    kernel_constraint=None, bias_constraint=None)
    if cls == 'BatchNormalization':
        return dict(beta_initializer=spec('Zeros'), gamma_initializer=spec('Ones'),
                    moving_mean_initializer=spec('Zeros'),
                    moving_variance_initializer=spec('Ones'), beta_regularizer=None,
                    gamma_regularizer=None, beta_constraint=None, gamma_constraint=None)
    return {}


def keras2_layer(cls, name, cfg, first=False):
    c = dict(name=name, trainable=True, dtype='float32')
    if first:
        c['batch_input_shape'] = [None] + INPUT_SHAPE
    c.update(cfg)
    c.update(initializers(cls, False))
    if cls == 'BatchNormalization':
        c['axis'] = 3 if c['axis'] == -1 and name != 'bn3' else c['axis']
    return {'class_name': cls, 'config': c}


DTYPE3 = {'module': 'keras', 'class_name': 'DTypePolicy', 'config': {'name': 'float32'},
          'registered_name': None}


def keras3_layer(cls, name, cfg, in_shape=None):
    c = dict(name=name, trainable=True, dtype=DTYPE3)
    c.update(cfg)
    c.update(initializers(cls, True))
    if cls == 'BatchNormalization':
        c['synchronized'] = False
    lj = {'module': 'keras.layers', 'class_name': cls, 'config': c, 'registered_name': None}
    if in_shape is not None:
        lj['build_config'] = {'input_shape': in_shape}
    return lj


def keras3_input(name, shape):
    return {'module': 'keras.layers', 'class_name': 'InputLayer',
            'config': {'batch_shape': [None] + shape, 'dtype': 'float32', 'sparse': False,
                       'name': name}, 'registered_name': None}


def keras2_config(layers):
    return {'class_name': 'Sequential', 'config': {
        'name': 'sequential_1',
        'layers': [keras2_layer(c, n, cfg, i == 0) for i, (c, n, cfg, _) in enumerate(layers)]}}


def keras3_sequential(layers, name='sequential'):
    ls = [keras3_input('input_layer', INPUT_SHAPE)]
    ls += [keras3_layer(c, n, cfg, [None, 1]) for c, n, cfg, _ in layers]
    return {'module': 'keras', 'class_name': 'Sequential', 'config': {
        'name': name, 'trainable': True, 'dtype': DTYPE3, 'layers': ls},
        'registered_name': None, 'build_config': {'input_shape': [None] + INPUT_SHAPE}}


def ktensor(layer, shape):
    return {'class_name': '__keras_tensor__', 'config': {
        'shape': shape, 'dtype': 'float32', 'keras_history': [layer, 0, 0]}}


def keras3_functional(layers):
    ls = [dict(keras3_input('input_layer', INPUT_SHAPE), name='input_layer', inbound_nodes=[])]
    prev = 'input_layer'
    for c, n, cfg, _ in layers:
        lj = keras3_layer(c, n, cfg)
        lj['name'] = n
        lj['inbound_nodes'] = [{'args': [ktensor(prev, [None, 1])], 'kwargs': {}}]
        ls.append(lj)
        prev = n
    return {'module': 'keras.src.models.functional', 'class_name': 'Functional', 'config': {
        'name': 'functional_1', 'trainable': True, 'layers': ls,
        'input_layers': [['input_layer', 0, 0]], 'output_layers': [[prev, 0, 0]]},
        'registered_name': 'Functional', 'build_config': {'input_shape': None}}

# ---- the files ----------------------------------------------------------------


def write_keras2_h5(path, layers):
    with h5py.File(path, 'w') as f:
        f.attrs['keras_version'] = b'2.3.1'
        f.attrs['backend'] = b'tensorflow'
        f.attrs['model_config'] = json.dumps(keras2_config(layers)).encode('utf8')
        f.attrs['training_config'] = json.dumps({'loss': 'mse'}).encode('utf8')
        mw = f.create_group('model_weights')
        mw.attrs['layer_names'] = np.array([n.encode('utf8') for _, n, _, _ in layers])
        mw.attrs['backend'] = b'tensorflow'
        mw.attrs['keras_version'] = b'2.3.1'
        for _, name, _, ws in layers:
            g = mw.create_group(name)
            names = ['%s/%s:0' % (name, wn) for wn, _ in ws]
            g.attrs['weight_names'] = np.asarray([s.encode('utf8') for s in names])
            for s, (_, v) in zip(names, ws):
                g.create_dataset(s, data=v)
        ow = f.create_group('optimizer_weights')
        ow.attrs['weight_names'] = np.array([b'SGD/iter:0'])
        ow.create_dataset('SGD/iter:0', data=np.int64(7))


def write_keras3_h5(path, layers):
    with h5py.File(path, 'w') as f:
        f.attrs['keras_version'] = '3.10.0'
        f.attrs['backend'] = 'tensorflow'
        f.attrs['model_config'] = json.dumps(keras3_functional(layers))
        mw = f.create_group('model_weights')
        mw.attrs['layer_names'] = ['input_layer'] + [n for _, n, _, _ in layers]
        g = mw.create_group('input_layer')
        g.attrs['weight_names'] = np.array([])   # Keras 3: an empty list is float64
        for _, name, _, ws in layers:
            g = mw.create_group(name)
            names = ['functional_1/%s/%s' % (name, wn) for wn, _ in ws]
            g.attrs['weight_names'] = names if names else np.array([])
            for s, (_, v) in zip(names, ws):
                g.create_dataset(s, data=v)
        t = f.create_group('top_level_model_weights')
        t.attrs['weight_names'] = np.array([])


def snake_groups(layers):
    import re
    seen, out = {}, []
    for cls, *_ in layers:
        s = re.sub('(.)([A-Z][a-z]+)', r'\1_\2', cls)
        s = re.sub('([a-z])([A-Z])', r'\1_\2', s).lower()
        k = seen.get(s, -1) + 1
        seen[s] = k
        out.append('layers/' + (s if k == 0 else '%s_%d' % (s, k)))
    return out


def weights_h5_bytes(layers, config, names=True, wrapped=None):
    bio = io.BytesIO()
    with h5py.File(bio, 'w') as f:
        f.create_group('vars').attrs['name'] = config['config']['name']
        for gp, (_, name, _, ws) in zip(snake_groups(layers), layers):
            v = f.create_group(gp + '/vars')
            if names:
                v.attrs['name'] = name
            if wrapped and name in wrapped:
                v = f.create_group(gp + '/layer/vars')
                if names:
                    v.attrs['name'] = wrapped[name]
            for i, (_, val) in enumerate(ws):
                v.create_dataset(str(i), data=val)
        o = f.create_group('optimizer/vars')
        o.create_dataset('0', data=np.int64(3))
    return bio.getvalue()


def write_archive(path, config, weights, version='3.10.0', skip=(), extra=None):
    with zipfile.ZipFile(path, 'w') as z:
        members = [('metadata.json', json.dumps({'keras_version': version,
                                                 'date_saved': '2025-06-01@12:00:00'})),
                   ('config.json', json.dumps(config)), ('model.weights.h5', weights)]
        for name, data in members + list((extra or {}).items()):
            if name not in skip:
                z.writestr(name, data)


def td_model():
    kern = RNG.normal(0, 0.5, (6, 3)).astype(np.float32)
    bias = RNG.normal(0, 0.1, (3,)).astype(np.float32)
    inner = keras3_layer('Dense', 'inner_dense', dict(units=3, activation='linear',
                                                      use_bias=True), [None, 6])
    td = ['TimeDistributed', 'td', {'layer': inner}, [('kernel', kern), ('bias', bias)]]
    cfg = keras3_sequential([td], 'seq_td')
    cfg['config']['layers'][0]['config']['batch_shape'] = [None, 4, 6]
    return td, cfg


# ---- running nnplug -------------------------------------------------------------


def run_model(a, model, x, work):
    d = fresh(work)
    xf = os.path.join(d, 'x.npy')
    np.save(xf, x)
    od = os.path.join(d, 'out')
    r = run([a.nnplug, 'run', model, '-i', xf, '--out-dir', od])
    if r.returncode != 0:
        return None, r.stderr.strip()
    outs = sorted(os.listdir(od))
    return (np.load(os.path.join(od, outs[0])) if len(outs) == 1 else None), ' '.join(outs)


def archive_weights(path):
    """{group path: [arrays]} of a .keras archive's model.weights.h5."""
    with zipfile.ZipFile(path) as z:
        data = z.read('model.weights.h5')
    out = {}
    with h5py.File(io.BytesIO(data), 'r') as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group) and name.endswith('/vars'):
                out[name] = (obj.attrs.get('name'), [obj[str(i)][()] for i in range(len(obj))])
        f.visititems(visit)
    return out


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def expect_layout(path, layers, label):
    w = archive_weights(path)
    ok, why = True, ''
    for gp, (_, name, _, ws) in zip(snake_groups(layers), layers):
        got = w.get(gp + '/vars')
        if got is None or got[0] != name or len(got[1]) != len(ws) or any(
                g.shape != v.shape or g.dtype != np.float32 for g, (_, v) in zip(got[1], ws)):
            ok, why = False, '%s: %s' % (gp, got and (got[0], [g.shape for g in got[1]]))
            break
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        meta = json.loads(z.read('metadata.json'))
        json.loads(z.read('config.json'))
    ok = ok and names == ['metadata.json', 'config.json', 'model.weights.h5'] and \
        'keras_version' in meta and 'date_saved' in meta
    check(ok, '%s has the Keras 3 layout: members %s, metadata %s, groups layers/<class>[_N]/'
          'vars named after their layers %s' % (label, names, sorted(meta), why))
    return w


def forward_checks(a, d, files, x):
    for label, path, layers in files:
        y, info = run_model(a, path, x, os.path.join(d, 'run-' + label))
        exp = ref_forward(layers, x)
        ok, msg = (False, info) if y is None else itest.close(y, exp, 1e-5, 1e-4)
        check(ok, '%s: nnplug run equals the float64 numpy reference (%s)' % (label, msg))
        r = run([a.nnplug, 'info', path])
        check(r.returncode == 0 and 'Keras' in r.stdout, '%s: nnplug info (%s)' % (
            label, (r.stderr.strip() or r.stdout.splitlines()[1:2])))


def train_checks(a, d, k3, k2, layers):
    rng = np.random.RandomState(7)
    x = rng.normal(0, 1, [16] + INPUT_SHAPE).astype(np.float32)
    y = rng.normal(0, 1, (16, 3)).astype(np.float32)
    xf, yf = os.path.join(d, 'tx.npy'), os.path.join(d, 'ty.npy')
    np.save(xf, x)
    np.save(yf, y)
    for label, src in (('k3.keras', k3), ('k2.h5', k2)):
        out = os.path.join(d, 'trained-%s.keras' % label.split('.')[0])
        r = run([a.nnplug, 'train', src, '--x', xf, '--y', yf, '--loss', 'mse', '--optimizer',
                 'sgd', '--lr', '0.05', '--epochs', '1', '--batch-size', '8', '--no-shuffle',
                 '--save', out])
        if not check(r.returncode == 0 and os.path.exists(out), 'nnplug train %s, two steps, '
                     '--save .keras (%s)' % (label, r.stderr.strip()[-300:])):
            continue
        w = expect_layout(out, layers, 'the trained %s' % label)
        # an offset that reaches a training-mode BatchNormalization through
        # linear layers only has a zero gradient (the batch mean takes it
        # out): conv1's and fc1's biases, and bn2's beta (through Flatten and
        # fc1 into bn3) stay, within rounding
        static = {'conv1/bias', 'fc1/bias', 'bn2/beta'}
        wrong, total = [], 0
        for gp, (_, name, _, ws) in zip(snake_groups(layers), layers):
            for (wn, v0), v1 in zip(ws, w.get(gp + '/vars', (None, []))[1]):
                total += 1
                key = '%s/%s' % (name, wn)
                moved = v1.shape != v0.shape or float(np.abs(v1 - v0).max()) > 1e-5
                if moved == (key in static):
                    wrong.append(key)
        n_weights = sum(len(l[3]) for l in layers)
        check(not wrong and total == n_weights, 'training %s changed every weight, moving '
              'statistics included, except the three offsets that only shift a training-mode '
              "BatchNormalization's input (%d weights; "
              'wrong: %s)' % (label, total, ', '.join(wrong) or 'none'))
        y1, info = run_model(a, out, x[:4], os.path.join(d, 'run-trained'))
        ok = y1 is not None and not np.allclose(y1, ref_forward(layers, x[:4]), atol=1e-6)
        check(ok, 'the trained %s runs and its outputs moved (%s)' % (label, info))


def roundtrip_checks(a, d, k3, layers, config3):
    k1, onnx, k4 = (os.path.join(d, f) for f in ('rt1.keras', 'rt.onnx', 'rt2.keras'))
    steps = [(k3, k1), (k1, onnx), (onnx, k4)]
    for src, dst in steps:
        r = run([a.nnplug, 'convert', src, dst])
        if not check(r.returncode == 0, 'nnplug convert %s %s (%s)' % (
                os.path.basename(src), os.path.basename(dst), r.stderr.strip())):
            return
    w0, w1, w4 = archive_weights(k3), archive_weights(k1), archive_weights(k4)
    keys = ['%s/vars' % g for g in snake_groups(layers)]
    bad = [k for k in keys if not (len(w0[k][1]) == len(w1[k][1]) == len(w4[k][1]) and all(
        same_bits(p, q) and same_bits(p, s) for p, q, s in zip(w0[k][1], w1[k][1], w4[k][1])))]
    check(not bad, '.keras -> .keras -> .onnx -> .keras keeps every weight bitwise (%s)'
          % (bad or 'all %d layers' % len(keys)))
    with zipfile.ZipFile(k1) as z1, zipfile.ZipFile(k4) as z4:
        c1, c4 = json.loads(z1.read('config.json')), json.loads(z4.read('config.json'))
    check(c1 == c4, 'config.json is the same after .keras -> .onnx -> .keras')
    lost = []
    got = {l['config']['name']: l['config'] for l in c1['config']['layers']}
    for orig in config3['config']['layers'][1:]:
        oc, nc = orig['config'], got.get(orig['config']['name'], {})
        for key in ('filters', 'kernel_size', 'strides', 'padding', 'units', 'epsilon',
                    'momentum', 'center', 'scale', 'activation', 'use_bias', 'pool_size'):
            if key in oc and nc.get(key) != oc[key] and not (
                    isinstance(oc[key], float) and abs(nc.get(key, 1e9) - oc[key]) < 1e-12):
                lost.append('%s.%s: %r -> %r' % (oc['name'], key, oc[key], nc.get(key)))
    check(not lost, 'the layer configs keep what the file set (%s)' % (lost[:4] or 'all'))
    x = np.random.RandomState(5).normal(0, 1, [2] + INPUT_SHAPE).astype(np.float32)
    y, info = run_model(a, k4, x, os.path.join(d, 'run-rt'))
    ok, msg = (False, info) if y is None else itest.close(y, ref_forward(layers, x), 1e-5, 1e-4)
    check(ok, 'the round-tripped .keras runs as the numpy reference (%s)' % msg)


# ---- bad files ---------------------------------------------------------------------


def bad_cases(d, k3, k2, layers, config3, wbytes):
    cases = []
    p = os.path.join(d, 'bad-truncated.keras')
    with open(k3, 'rb') as f:
        data = f.read()
    with open(p, 'wb') as f:
        f.write(data[:len(data) // 2])
    cases.append(('truncated zip', p, ['bad-truncated.keras', 'zip']))

    p = os.path.join(d, 'bad-noweights.keras')
    write_archive(p, config3, wbytes, skip=('model.weights.h5',))
    cases.append(('zip without model.weights.h5', p, ['model.weights.h5']))

    p = os.path.join(d, 'bad-h5bytes.keras')
    write_archive(p, config3, wbytes[:len(wbytes) // 3])
    cases.append(('corrupted model.weights.h5', p, ['model.weights.h5', 'HDF5']))

    def edited_archive(name, edit, words, label):
        bio = io.BytesIO(wbytes)
        with h5py.File(bio, 'r+') as f:
            edit(f)
        path = os.path.join(d, name)
        write_archive(path, config3, bio.getvalue())
        cases.append((label, path, words))

    edited_archive('bad-missing.keras', lambda f: f.__delitem__('layers/batch_normalization/vars/3'),
                   ["'bn1'", 'moving_variance', 'holds 3 weights'],
                   '.keras with a weight dataset missing')

    def reshape(f):
        del f['layers/conv2d/vars/0']
        f['layers/conv2d/vars'].create_dataset('0', data=np.zeros((3, 3, 3, 5), np.float32))
    edited_archive('bad-shape.keras', reshape, ["'conv1'", "'kernel'", '[3, 3, 3, 5]'],
                   '.keras with a wrong weight shape')

    def extra(f):
        f['layers/dense/vars'].create_dataset('2', data=np.zeros(5, np.float32))
    edited_archive('bad-count.keras', extra, ["'fc1'", 'holds 3 weights', 'kernel, bias'],
                   '.keras with a wrong weight count')

    def rename(f):
        f['layers/dense_1/vars'].attrs['name'] = 'fc1'
    edited_archive('bad-name.keras', rename, ["'fc2'", "'fc1'", 'layers/dense_1/vars'],
                   '.keras whose vars group names another layer')

    def nokernel_group(f):
        del f['layers/conv2d_1']
    edited_archive('bad-nogroup.keras', nokernel_group, ["'conv2'", 'layers/conv2d_1/vars',
                                                         'kernel, bias'],
                   '.keras without a layer group')

    cfg = json.loads(json.dumps(config3))
    cfg['config']['layers'][3]['class_name'] = 'LSTM'
    p = os.path.join(d, 'bad-class.keras')
    write_archive(p, cfg, wbytes)
    cases.append(('a layer class nnplug lacks', p, ["'LSTM'", "'relu1'"]))

    p = os.path.join(d, 'bad-text.h5')
    with open(p, 'w') as f:
        f.write('{"class_name": "Sequential"}\n')
    cases.append(('a non-HDF5 file named .h5', p, ['bad-text.h5', 'not an HDF5 file']))

    def edited_h5(name, edit, words, label):
        path = os.path.join(d, name)
        with open(k2, 'rb') as f, open(path, 'wb') as g:
            g.write(f.read())
        with h5py.File(path, 'r+') as f:
            edit(f)
        cases.append((label, path, words))

    edited_h5('bad-missing.h5', lambda f: f.__delitem__('model_weights/bn1/bn1/moving_variance:0'),
              ["'bn1'", "'moving_variance'", 'model_weights/bn1/bn1/moving_variance:0'],
              '.h5 with a weight dataset missing')

    def h5_count(f):
        f['model_weights/fc1'].attrs['weight_names'] = np.array([b'fc1/kernel:0'])
    edited_h5('bad-count.h5', h5_count, ["'fc1'", 'lists 1 weights', 'kernel, bias'],
              '.h5 with a wrong weight count')

    def h5_shape(f):
        del f['model_weights/fc2/fc2/bias:0']
        f['model_weights/fc2'].create_dataset('fc2/bias:0', data=np.zeros(4, np.float32))
    edited_h5('bad-shape.h5', h5_shape, ["'fc2'", "'bias'", '[4]'],
              '.h5 with a wrong weight shape')

    def h5_order(f):
        f['model_weights/bn1'].attrs['weight_names'] = np.array(
            [b'bn1/beta:0', b'bn1/gamma:0', b'bn1/moving_mean:0', b'bn1/moving_variance:0'])
    edited_h5('bad-order.h5', h5_order, ["'bn1'", 'gamma', 'beta'],
              '.h5 whose weight_names are not the layer\'s order')

    def weights_only(f):
        del f.attrs['model_config']
    edited_h5('bad-weightsonly.h5', weights_only, ['model_config'], 'a weights-only HDF5 file')
    return cases


def bad_checks(a, d, cases):
    for label, path, words in cases:
        for cmd in ('run', 'convert'):
            out = os.path.join(d, 'should-not-exist.onnx')
            args = [a.nnplug, 'run', path, '-i', os.path.join(d, 'x1.npy')] if cmd == 'run' \
                else [a.nnplug, 'convert', path, out]
            r = run(args)
            msg = r.stderr.strip()
            missing = [w for w in words if w not in msg]
            ok = r.returncode == 2 and not missing and len(msg.splitlines()) == 1
            if cmd == 'convert':
                ok = ok and not os.path.exists(out) and not any(
                    f.startswith('should-not-exist') for f in os.listdir(d))
            check(ok, '%s: nnplug %s exits 2 naming %s (exit %d: %s)' % (
                label, cmd, ', '.join(words), r.returncode, msg[:300]))


def main():
    a = itest.args(__doc__.split('\n\n')[0])
    d = fresh(os.path.join(a.work, 'keras-files'))
    layers = cnn_layers()
    k2, k3h, k3 = (os.path.join(d, f) for f in ('k2.h5', 'k3.h5', 'k3.keras'))
    write_keras2_h5(k2, layers)
    write_keras3_h5(k3h, layers)
    config3 = keras3_sequential([[c, n, cfg, w] for c, n, cfg, w in layers])
    wbytes = weights_h5_bytes(layers, config3)
    write_archive(k3, config3, wbytes)
    td, cfg_td = td_model()
    ktd = os.path.join(d, 'td.keras')
    write_archive(ktd, cfg_td, weights_h5_bytes([td], cfg_td, wrapped={'td': 'inner_dense'}))

    x = np.random.RandomState(3).normal(0, 1, [4] + INPUT_SHAPE).astype(np.float32)
    np.save(os.path.join(d, 'x1.npy'), x[:1])
    forward_checks(a, d, [('k2.h5', k2, layers), ('k3.h5', k3h, layers),
                          ('k3.keras', k3, layers)], x)
    xt = np.random.RandomState(4).normal(0, 1, (3, 4, 6)).astype(np.float32)
    forward_checks(a, d, [('td.keras', ktd, [td])], xt)
    tdk = os.path.join(d, 'td-rt.keras')
    r = run([a.nnplug, 'convert', ktd, tdk])
    w = archive_weights(tdk) if r.returncode == 0 else {}
    got = w.get('layers/time_distributed/layer/vars', (None, []))
    check(r.returncode == 0 and got[0] == 'inner_dense' and len(got[1]) == 2 and all(
        same_bits(p, q) for p, q in zip(got[1], [v for _, v in td[3]])),
        'TimeDistributed: its Dense weights are written back at layers/time_distributed/'
        'layer/vars (%s)' % (r.stderr.strip() or sorted(w)))

    train_checks(a, d, k3, k2, layers)
    roundtrip_checks(a, d, k3, layers, config3)
    bad_checks(a, d, bad_cases(d, k3, k2, layers, config3, wbytes))
    r = run([a.nnplug, 'convert', k3, os.path.join(d, 'out.h5')])
    check(r.returncode == 2 and '.keras' in r.stderr and not os.path.exists(
        os.path.join(d, 'out.h5')), 'convert to .h5 is refused (exit 2) in favour of .keras')
    r = run([a.nnplug, 'convert', k3, os.path.join(d, 'no-such-dir', 'out.keras')])
    check(r.returncode == 2, 'convert into a missing folder: exit 2 (%s)' % r.stderr.strip())
    itest.finish('keras_files')


if __name__ == '__main__':
    main()
