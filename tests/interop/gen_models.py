#!/usr/bin/python3
"""Writes the ONNX models the interop tests import, each with its inputs and a
numpy reference of its outputs:

    gen_models.py OUT_DIR

OUT_DIR/NAME/{model.onnx, inputs/*.npy, expected/*.npy, case.json}. The models
exercise what the importer must handle (Transpose-wrapped BatchNormalization,
Constant/Identity weight chains as PyTorch writes them, float16 / bfloat16 /
float64 initializers, typed fields, external data, training_mode, old opsets)
with non-trivial weights; the references are plain numpy formulas, independent
of nnplug. Deterministic: the same bytes on every run."""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.RandomState(20240607)


def bn_ref(x, s, b, mean, var, eps, axis=1):
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda v: np.asarray(v, np.float64).reshape(shape)
    y = r(s) * (x.astype(np.float64) - r(mean)) / np.sqrt(r(var) + eps) + r(b)
    return y.astype(np.float32)


def bn_train_ref(x, s, b, mean, var, eps, momentum):
    axes = tuple(i for i in range(x.ndim) if i != 1)
    xd = x.astype(np.float64)
    m = xd.mean(axis=axes)
    v = xd.var(axis=axes)
    y = bn_ref(x, s, b, m, v, eps)
    rm = (mean * momentum + m * (1 - momentum)).astype(np.float32)
    rv = (var * momentum + v * (1 - momentum)).astype(np.float32)
    return y, rm, rv


def weights(c):
    s = RNG.uniform(0.5, 1.5, c).astype(np.float32)
    b = RNG.uniform(-0.5, 0.5, c).astype(np.float32)
    mean = RNG.uniform(-1, 1, c).astype(np.float32)
    var = RNG.uniform(0.5, 2.0, c).astype(np.float32)
    return s, b, mean, var


def tensor(name, arr, dtype=None):
    t = numpy_helper.from_array(arr, name)
    if dtype is not None:
        t.data_type = dtype
    return t


def vinfo(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def save(out, name, model, inputs, expected, note, opset_check=True, files=None):
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, 'inputs'), exist_ok=True)
    os.makedirs(os.path.join(d, 'expected'), exist_ok=True)
    for fn, data in (files or {}).items():
        with open(os.path.join(d, fn), 'wb') as f:
            f.write(data)
    with open(os.path.join(d, 'model.onnx'), 'wb') as f:
        f.write(model.SerializeToString())
    if opset_check:
        onnx.checker.check_model(os.path.join(d, 'model.onnx'), full_check=True)
    for k, v in inputs.items():
        np.save(os.path.join(d, 'inputs', k + '.npy'), v)
    outs = {}
    for k, v in expected.items():
        np.save(os.path.join(d, 'expected', k + '.npy'), v)
        outs[k] = {'file': 'expected/%s.npy' % k, 'rtol': 1e-4, 'atol': 1e-5}
    case = {'id': 'interop/' + name, 'kind': 'onnx-model', 'description': note,
            'model': 'model.onnx', 'inputs': {k: {'file': 'inputs/%s.npy' % k} for k in inputs},
            'outputs': outs}
    with open(os.path.join(d, 'case.json'), 'w') as f:
        json.dump(case, f, indent=1, sort_keys=True)


def bn_node(name, x, y, prefix, eps=1e-5, momentum=0.9, **kw):
    return helper.make_node('BatchNormalization', [x, prefix + 's', prefix + 'b', prefix + 'm',
                            prefix + 'v'], y if isinstance(y, list) else [y], name=name,
                            epsilon=eps, momentum=momentum, **kw)


def inits(prefix, w, dtype=None):
    s, b, m, v = w
    return [tensor(prefix + 's', s), tensor(prefix + 'b', b), tensor(prefix + 'm', m),
            tensor(prefix + 'v', v)]


def model_of(nodes, ins, outs, initializers, opset=15, ir=None):
    g = helper.make_graph(nodes, 'g', ins, outs, initializers)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)],
                          producer_name='gen_models.py')
    if ir is not None:
        m.ir_version = ir
    return m


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    # 1. plain NCHW, symbolic batch
    w = weights(3)
    x = RNG.randn(2, 3, 4, 5).astype(np.float32)
    m = model_of([bn_node('bn', 'x', 'y', 'p_', eps=1e-3)], [vinfo('x', ['N', 3, 4, 5])],
                 [vinfo('y', ['N', 3, 4, 5])], inits('p_', w))
    save(out, 'bn_nchw', m, {'x': x}, {'y': bn_ref(x, *w, 1e-3)}, 'NCHW, symbolic batch')

    # 2. channels-last through a Transpose pair (what we export for axis=-1)
    w = weights(5)
    x = RNG.randn(3, 4, 4, 5).astype(np.float32)
    nodes = [helper.make_node('Transpose', ['x'], ['xt'], name='to_nchw', perm=[0, 3, 1, 2]),
             bn_node('bn', 'xt', 'yt', 'p_', eps=1e-3, momentum=0.99),
             helper.make_node('Transpose', ['yt'], ['y'], name='to_nhwc', perm=[0, 2, 3, 1])]
    m = model_of(nodes, [vinfo('x', ['N', 4, 4, 5])], [vinfo('y', ['N', 4, 4, 5])],
                 inits('p_', w))
    save(out, 'bn_transpose_nhwc', m, {'x': x}, {'y': bn_ref(x, *w, 1e-3, axis=3)},
         'Transpose -> BN -> Transpose folds into one layer with axis -1')

    # 3. rank 3, middle axis through a Transpose pair: [N, 6, 7] normalized on axis 2
    w = weights(7)
    x = RNG.randn(4, 6, 7).astype(np.float32)
    nodes = [helper.make_node('Transpose', ['x'], ['xt'], name='t1', perm=[0, 2, 1]),
             bn_node('bn', 'xt', 'yt', 'p_'),
             helper.make_node('Transpose', ['yt'], ['y'], name='t2', perm=[0, 2, 1])]
    m = model_of(nodes, [vinfo('x', ['N', 6, 7])], [vinfo('y', ['N', 6, 7])], inits('p_', w))
    save(out, 'bn_transpose_rank3', m, {'x': x}, {'y': bn_ref(x, *w, 1e-5, axis=2)},
         'rank-3 input, Transpose pair')

    # 4. weights through Constant and Identity nodes (PyTorch's de-duplication),
    #    Identity on the data path, and an Identity to the graph output
    w = weights(4)
    x = RNG.randn(2, 4, 3).astype(np.float32)
    s, b, mean, var = w
    nodes = [helper.make_node('Constant', [], ['c_s'], name='const_s',
                              value=tensor('cs', s)),
             helper.make_node('Identity', ['c_s'], ['p_s'], name='id_s'),
             helper.make_node('Constant', [], ['p_b'], name='const_b', value_floats=b.tolist()),
             helper.make_node('Identity', ['shared_m'], ['p_m'], name='id_m'),
             helper.make_node('Identity', ['x'], ['x2'], name='id_x'),
             bn_node('bn', 'x2', 'y0', 'p_'),
             helper.make_node('Identity', ['y0'], ['y'], name='id_y')]
    m = model_of(nodes, [vinfo('x', ['N', 4, 3])], [vinfo('y', ['N', 4, 3])],
                 [tensor('shared_m', mean), tensor('p_v', var)])
    save(out, 'bn_constant_identity', m, {'x': x}, {'y': bn_ref(x, *w, 1e-5)},
         'weights via Constant / Identity, Identity around the data path')

    # 5-7. float16 / bfloat16 / float64 initializers (opset 15: T1, T2 may differ from T)
    for dname, dt, npdt in (('float16', TensorProto.FLOAT16, np.float16),
                            ('float64', TensorProto.DOUBLE, np.float64),
                            ('bfloat16', TensorProto.BFLOAT16, None)):
        w = weights(3)
        x = RNG.randn(2, 3, 2, 2).astype(np.float32)
        ts = []
        ws = []
        for nm, arr in zip('sbmv', w):
            if npdt is not None:
                q = arr.astype(npdt)
                ts.append(tensor('p_' + nm, q))
                ws.append(q.astype(np.float32))
            else:
                bits = (arr.view(np.uint32) + 0x7FFF + ((arr.view(np.uint32) >> 16) & 1)) >> 16
                bits = bits.astype(np.uint16)
                t = helper.make_tensor('p_' + nm, TensorProto.BFLOAT16, arr.shape,
                                       bits.tobytes(), raw=True)
                ts.append(t)
                ws.append((bits.astype(np.uint32) << 16).view(np.float32))
        m = model_of([bn_node('bn', 'x', 'y', 'p_')], [vinfo('x', ['N', 3, 2, 2])],
                     [vinfo('y', ['N', 3, 2, 2])], ts)
        save(out, 'bn_init_' + dname, m, {'x': x}, {'y': bn_ref(x, *ws, 1e-5)},
             '%s initializers, converted to float32 on load' % dname)

    # 8. typed fields instead of raw_data (float_data, and float16 in int32_data)
    w = weights(3)
    x = RNG.randn(2, 3).astype(np.float32)
    s, b, mean, var = w
    t_s = TensorProto(name='p_s', data_type=TensorProto.DOUBLE, dims=[3],
                      double_data=s.astype(np.float64).tolist())
    t_b = TensorProto(name='p_b', data_type=TensorProto.DOUBLE, dims=[3],
                      double_data=b.astype(np.float64).tolist())
    h = mean.astype(np.float16)
    hv = var.astype(np.float16)
    t_m = TensorProto(name='p_m', data_type=TensorProto.FLOAT16, dims=[3],
                      int32_data=h.view(np.uint16).astype(np.int32).tolist())
    t_v = TensorProto(name='p_v', data_type=TensorProto.FLOAT16, dims=[3],
                      int32_data=hv.view(np.uint16).astype(np.int32).tolist())
    m = model_of([bn_node('bn', 'x', 'y', 'p_')], [vinfo('x', ['N', 3])], [vinfo('y', ['N', 3])],
                 [t_s, t_b, t_m, t_v])
    save(out, 'bn_typed_fields', m, {'x': x},
         {'y': bn_ref(x, s, b, h.astype(np.float32), hv.astype(np.float32), 1e-5)},
         'double_data and int32_data (float16) fields instead of raw_data')

    # 9. external data beside the model, at an offset
    w = weights(6)
    x = RNG.randn(2, 6, 3).astype(np.float32)
    blob = b''
    ts = []
    for nm, arr in zip('sbmv', w):
        pad = (-len(blob)) % 64
        blob += b'\0' * pad
        t = TensorProto(name='p_' + nm, data_type=TensorProto.FLOAT, dims=list(arr.shape))
        t.data_location = TensorProto.EXTERNAL
        for k, v in (('location', 'weights.bin'), ('offset', str(len(blob))),
                     ('length', str(arr.nbytes))):
            e = t.external_data.add()
            e.key, e.value = k, v
        blob += arr.tobytes()
        ts.append(t)
    m = model_of([bn_node('bn', 'x', 'y', 'p_')], [vinfo('x', ['N', 6, 3])],
                 [vinfo('y', ['N', 6, 3])], ts)
    save(out, 'bn_external_data', m, {'x': x}, {'y': bn_ref(x, *w, 1e-5)},
         'initializers in an external file (weights.bin, offsets)', files={'weights.bin': blob})

    # 10. training_mode=1 with running statistics, symbolic batch
    w = weights(3)
    x = RNG.randn(5, 3, 2).astype(np.float32)
    y, rm, rv = bn_train_ref(x, *w, 1e-5, 0.8)
    m = model_of([bn_node('bn', 'x', ['y', 'rm', 'rv'], 'p_', momentum=0.8, training_mode=1)],
                 [vinfo('x', ['N', 3, 2])],
                 [vinfo('y', ['N', 3, 2]), vinfo('rm', [3]), vinfo('rv', [3])], inits('p_', w))
    save(out, 'bn_training_mode', m, {'x': x}, {'y': y, 'rm': rm, 'rv': rv},
         'training_mode=1: batch statistics and running-statistics outputs')

    # 11. opset 6, IR 3: is_test=1, spatial=1, initializers also listed as inputs
    w = weights(2)
    x = RNG.randn(2, 2, 3).astype(np.float32)
    ins = [vinfo('x', [2, 2, 3])] + [vinfo('p_' + k, [2]) for k in 'sbmv']
    m = model_of([bn_node('bn', 'x', 'y', 'p_', is_test=1, spatial=1)], ins,
                 [vinfo('y', [2, 2, 3])], inits('p_', w), opset=6, ir=3)
    save(out, 'bn_opset6_ir3', m, {'x': x}, {'y': bn_ref(x, *w, 1e-5)},
         'opset 6 (is_test, spatial), IR 3 with initializers declared as inputs')

    # 11b. opset 1: consumed_inputs, is_test
    w = weights(3)
    x = RNG.randn(2, 3, 2).astype(np.float32)
    ins = [vinfo('x', [2, 3, 2])] + [vinfo('p_' + k, [3]) for k in 'sbmv']
    m = model_of([bn_node('bn', 'x', 'y', 'p_', is_test=1, consumed_inputs=[0, 0, 0, 1, 1])],
                 ins, [vinfo('y', [2, 3, 2])], inits('p_', w), opset=1, ir=3)
    save(out, 'bn_opset1_ir3', m, {'x': x}, {'y': bn_ref(x, *w, 1e-5)},
         'opset 1 (consumed_inputs, is_test), IR 3')

    # 12. two layers in a chain, channels-last in between
    w1, w2 = weights(4), weights(4)
    x = RNG.randn(2, 4, 3, 3).astype(np.float32)
    nodes = [bn_node('bn1', 'x', 'h', 'a_'),
             helper.make_node('Transpose', ['h'], ['ht'], name='t1', perm=[0, 2, 3, 1]),
             helper.make_node('Transpose', ['ht'], ['hc'], name='t2', perm=[0, 3, 1, 2]),
             bn_node('bn2', 'h', 'y', 'b_', eps=1e-2)]
    m = model_of(nodes[:1] + nodes[3:], [vinfo('x', ['N', 4, 3, 3])],
                 [vinfo('y', ['N', 4, 3, 3])], inits('a_', w1) + inits('b_', w2))
    save(out, 'bn_chain', m, {'x': x},
         {'y': bn_ref(bn_ref(x, *w1, 1e-5), *w2, 1e-2)}, 'two BatchNormalization layers')

    # 13. PyTorch's Linear on a rank-3 input: MatMul then Add(bias), the bias
    # on either side of the Add; each pair is one Dense with its bias
    x = RNG.randn(2, 5, 4).astype(np.float32)
    w1, b1 = RNG.randn(4, 6).astype(np.float32), RNG.randn(6).astype(np.float32)
    w2, b2 = RNG.randn(6, 3).astype(np.float32), RNG.randn(3).astype(np.float32)
    nodes = [helper.make_node('MatMul', ['x', 'w1'], ['m1'], name='fc1'),
             helper.make_node('Add', ['m1', 'b1'], ['h'], name='fc1_bias'),
             helper.make_node('MatMul', ['h', 'w2'], ['m2'], name='fc2'),
             helper.make_node('Add', ['b2', 'm2'], ['y'], name='fc2_bias')]
    m = model_of(nodes, [vinfo('x', ['N', 5, 4])], [vinfo('y', ['N', 5, 3])],
                 [tensor('w1', w1), tensor('b1', b1), tensor('w2', w2), tensor('b2', b2)])
    save(out, 'matmul_add_rank3', m, {'x': x}, {'y': (x @ w1 + b1) @ w2 + b2},
         'MatMul + Add(bias) pairs read as Dense layers with their bias')


if __name__ == '__main__':
    main()
