#!/usr/bin/python3
"""A ResNet-18 in PyTorch's export style through nnplug and ONNX Runtime.

    resnet.py --nnplug BIN --source DIR --work DIR [--ort-js FILE]   (NNP_RESNET_WIDTH=8)

tools/gen_resnet.py writes, at test time, a reduced-width ResNet-18 (the
torchvision topology and PyTorch 1.13's export style: Conv without bias ->
BatchNormalization(training_mode=0) -> Relu, Add for the residuals, the 1x1
downsample branches, MaxPool, GlobalAveragePool, Flatten, Gemm; opset 15)
with a fixed batch of 2 on 3x64x64 inputs, and the same model with a
symbolic batch. Checks:
  - `nnplug info` lists every ONNX node, served by the plugin of the expected
    layer kind, and the model's parameter count;
  - `nnplug run` equals ONNX Runtime (onnxruntime-node) within rtol 1e-4 +
    atol 1e-5, and gen_resnet.py's float64 numpy forward within the same
    bound (20 convolutions in float32: summation order alone moves the logits
    by ~1e-6 relative, far inside it);
  - `nnplug run` gives the same bytes with --threads 1, 2 and 3;
  - the symbolic-batch model on a batch of 5, against ONNX Runtime and numpy;
  - `nnplug convert` of the model: onnx.checker full_check passes and ONNX
    Runtime on the exported file equals `nnplug run` on it (rtol 1e-4 + atol
    1e-5, as above), and nnplug's output is the original model's, bit for bit.
Needs /usr/bin/python3 with numpy and onnx, node and onnxruntime-node on
NODE_PATH (tests/interop/setup_ort.sh). Torch is not needed."""
import filecmp
import os
import sys

import numpy as np

import itest
from itest import check, close, fresh, run

KIND = {'Conv': 'Conv2D', 'BatchNormalization': 'BatchNormalization', 'Relu': 'ReLU',
        'MaxPool': 'MaxPooling2D', 'Add': 'Add', 'GlobalAveragePool': 'GlobalAveragePooling2D',
        'Flatten': 'Flatten', 'Gemm': 'Dense'}
RTOL, ATOL = 1e-4, 1e-5


def info_nodes(text):
    """{node name: (op, layer kind, plugin path)} from the nodes: section of `nnplug info`."""
    nodes, on = {}, False
    for line in text.splitlines():
        if line == 'nodes:':
            on = True
            continue
        if on and not line.startswith('  '):
            break
        if on:
            t = line.split()
            # NAME OP-VERSION -> layer LAYER KIND plugin PATH
            if len(t) >= 8 and t[2] == '->' and t[3] == 'layer' and t[6] == 'plugin':
                nodes[t[0]] = (t[1].rsplit('-', 1)[0], t[5], t[7])
            else:
                nodes[t[0]] = (t[1] if len(t) > 1 else '', None, None)
    return nodes


def generate(a, d, name, shape, dynamic):
    model = os.path.join(d, name + '.onnx')
    cmd = [sys.executable, os.path.join(a.source, 'tools', 'gen_resnet.py'), model,
           '--width', a.width, '--classes', 10, '--input-shape', shape, '--seed', 7,
           '--input', os.path.join(d, name + '_input.npy'),
           '--expected', os.path.join(d, name + '_numpy.npy')]
    if dynamic:
        cmd.append('--dynamic-batch')
    r = run(cmd)
    check(r.returncode == 0 and os.path.exists(model), 'gen_resnet.py %s: %s' % (
        name, (r.stdout + r.stderr).strip()))
    return model if r.returncode == 0 else None


def nnplug_out(a, model, x, out, extra=()):
    r = run([a.nnplug, 'run', model, '-i', 'input=' + x, '--out-dir', out] + list(extra))
    ok = r.returncode == 0 and os.path.exists(os.path.join(out, 'output.npy'))
    check(ok, 'nnplug run %s %s (%s)' % (os.path.basename(model), ' '.join(extra),
                                         r.stderr.strip()))
    return np.load(os.path.join(out, 'output.npy')) if ok else None


def ort_out(a, model, x, out):
    err = itest.ort(a, model, out, {'input': x})
    check(err is None, 'ONNX Runtime runs %s (%s)' % (os.path.basename(model), err or ''))
    return None if err else np.load(os.path.join(out, 'output.npy'))


def against(got, exp, what, atol=ATOL, rtol=RTOL):
    if got is None or exp is None:
        return check(False, what + ': an output is missing')
    ok, msg = close(got, exp, atol, rtol)
    return check(ok, '%s (%s)' % (what, msg))


def main():
    import onnx
    a = itest.args(__doc__.split('\n\n')[0])
    a.width = int(os.environ.get('NNP_RESNET_WIDTH', '8'))
    d = fresh(os.path.join(a.work, 'resnet'))
    r = run(['node', a.ort_js, '--version'])
    check(r.returncode == 0, 'onnxruntime-node loads (%s%s)' % (r.stdout.strip(),
                                                                r.stderr.strip()))

    # ---- fixed batch, as torch.onnx.export traces it
    model = generate(a, d, 'resnet18_w%d' % a.width, '2,3,64,64', False)
    if not model:
        itest.finish('resnet')
    base = model[:-5]
    x, ref = base + '_input.npy', np.load(base + '_numpy.npy')
    m = onnx.load(model)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    check(ops == {'Conv': 20, 'BatchNormalization': 20, 'Relu': 17, 'Add': 8, 'MaxPool': 1,
                  'GlobalAveragePool': 1, 'Flatten': 1, 'Gemm': 1},
          'ResNet-18 op histogram %s' % ops)

    r = run([a.nnplug, 'info', model])
    if check(r.returncode == 0, 'nnplug info (%s)' % r.stderr.strip()):
        listed = info_nodes(r.stdout)
        for n in m.graph.node:
            got = listed.get(n.name)
            ok = got is not None and got[0] == n.op_type and got[1] == KIND[n.op_type] and \
                got[2] is not None and got[2].endswith('.so') and os.path.exists(got[2])
            check(ok, 'nnplug info: node %s (%s) -> %s' % (n.name, n.op_type, got))
        check(len(listed) == len(m.graph.node), 'nnplug info lists %d nodes, the model has %d'
              % (len(listed), len(m.graph.node)))
        n_params = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
        check('total: %d params' % n_params in r.stdout, 'nnplug info: %d parameters'
              % n_params)

    got = fixed = nnplug_out(a, model, x, fresh(os.path.join(d, 'nnplug')))
    ort = ort_out(a, model, x, fresh(os.path.join(d, 'ort')))
    against(got, ort, 'nnplug run == ONNX Runtime')
    against(got, ref, 'nnplug run == numpy float64 forward')
    against(ort, ref, 'ONNX Runtime == numpy float64 forward (the reference itself)')
    outs = []
    for t in (1, 2, 3):
        o = fresh(os.path.join(d, 'threads%d' % t))
        nnplug_out(a, model, x, o, ['--threads', str(t)])
        outs.append(os.path.join(o, 'output.npy'))
    check(all(os.path.exists(f) for f in outs) and
          all(filecmp.cmp(outs[0], f, shallow=False) for f in outs[1:]),
          'nnplug run: the same bytes with --threads 1, 2, 3')

    # ---- symbolic batch (dynamic_axes), a batch of 5
    dyn = generate(a, d, 'resnet18_w%d_dyn' % a.width, '5,3,64,64', True)
    if dyn:
        xd = dyn[:-5] + '_input.npy'
        got = nnplug_out(a, dyn, xd, fresh(os.path.join(d, 'dyn-nnplug')))
        ort = ort_out(a, dyn, xd, fresh(os.path.join(d, 'dyn-ort')))
        against(got, ort, 'batch N=5: nnplug run == ONNX Runtime')
        against(got, np.load(dyn[:-5] + '_numpy.npy'), 'batch N=5: nnplug run == numpy')

    # ---- nnplug's own export of the imported model
    exp = os.path.join(d, 'exported.onnx')
    r = run([a.nnplug, 'convert', model, exp])
    if check(r.returncode == 0 and os.path.exists(exp), 'nnplug convert (%s)' % r.stderr.strip()):
        ok, msg = itest.onnx_check(exp)
        check(ok, 'exported ResNet: onnx.checker full_check %s' % msg)
        g2 = nnplug_out(a, exp, x, fresh(os.path.join(d, 'export-nnplug')))
        o2 = ort_out(a, exp, x, fresh(os.path.join(d, 'export-ort')))
        against(g2, o2, 'exported: nnplug run == ONNX Runtime')
        against(g2, fixed, 'exported: nnplug run == the original model\'s', 0, 0)
    itest.finish('resnet')


if __name__ == '__main__':
    main()
