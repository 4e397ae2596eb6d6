"""ONNX files traced at a fixed batch size, which reshape across the batch
axis, run as ONNX defines them, against ONNX Runtime:

  - a PyTorch export (torch.onnx.export, batch 1, opset 15) of a CNN whose
    forward flattens with x.view(1, -1) (a Reshape whose target starts with
    the literal 1), with BatchNormalization before and after it;
  - a model built with onnx.helper around Flatten(axis=0), as Keras-to-ONNX
    converters write it.

For each: `nnplug run` on a batch of 1 equals ONNX Runtime; a batch of 2 is
refused with exit 2 and a message naming the node that fixes the batch;
`nnplug train --batch-size 1` trains (exit 0, finite losses, weights move)
and `--batch-size 4` is refused naming that node. The model generated here
is checked with onnx.checker first.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itest  # noqa: E402
from itest import check, fresh, run  # noqa: E402


def torch_model(path):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn1 = nn.BatchNorm2d(4)
            self.fc1 = nn.Linear(4 * 6 * 6, 8)
            self.bn2 = nn.BatchNorm1d(8)
            self.fc2 = nn.Linear(8, 5)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv(x)))
            x = x.view(1, -1)
            return self.fc2(torch.relu(self.bn2(self.fc1(x))))

    torch.manual_seed(7)
    net = Net()
    with torch.no_grad():   # statistics that are not the defaults
        for bn in (net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    net.eval()
    torch.onnx.export(net, torch.randn(1, 3, 8, 8), path, opset_version=15,
                      input_names=['input'], output_names=['output'])


def flatten_model(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.RandomState(5)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), 'w'),
             numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), 'b'),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, 4).astype(np.float32), 'g'),
             numpy_helper.from_array(rng.uniform(-0.2, 0.2, 4).astype(np.float32), 'beta'),
             numpy_helper.from_array(rng.uniform(-0.5, 0.5, 4).astype(np.float32), 'mean'),
             numpy_helper.from_array(rng.uniform(0.5, 2.0, 4).astype(np.float32), 'var'),
             numpy_helper.from_array(rng.normal(0, 0.2, (64, 5)).astype(np.float32), 'fw'),
             numpy_helper.from_array(rng.normal(0, 0.1, 5).astype(np.float32), 'fb')]
    nodes = [helper.make_node('Conv', ['input', 'w', 'b'], ['c'], name='conv', kernel_shape=[3, 3]),
             helper.make_node('BatchNormalization', ['c', 'g', 'beta', 'mean', 'var'], ['n'],
                              name='bn'),
             helper.make_node('Relu', ['n'], ['r'], name='relu'),
             helper.make_node('Flatten', ['r'], ['f'], name='flatten0', axis=0),
             helper.make_node('Gemm', ['f', 'fw', 'fb'], ['output'], name='dense')]
    g = helper.make_graph(
        nodes, 'flatten_axis0',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 15)], producer_name='test')
    m.ir_version = 8
    onnx.save(m, path)


def case(a, d, name, model, in_shape, node):
    ok, msg = itest.onnx_check(model)
    check(ok, '%s: onnx.checker full_check %s' % (name, msg))
    rng = np.random.RandomState(11)
    x1, x2 = os.path.join(d, 'x1.npy'), os.path.join(d, 'x2.npy')
    np.save(x1, rng.normal(0, 1, (1,) + in_shape).astype(np.float32))
    np.save(x2, rng.normal(0, 1, (2,) + in_shape).astype(np.float32))
    itest.run_vs_ort(a, model, x1, d, name + ' (batch 1)', 1e-5)

    r = run([a.nnplug, 'run', model, '-i', 'input=' + x2, '--out-dir',
             fresh(os.path.join(d, 'o2'))])
    check(r.returncode == 2 and node in r.stderr and 'batch' in r.stderr,
          '%s: a batch of 2 exits 2 naming node %s (exit %d: %s)'
          % (name, node, r.returncode, r.stderr.strip()))

    n = 8
    xs, ys = os.path.join(d, 'X.npy'), os.path.join(d, 'Y.npy')
    np.save(xs, rng.normal(0, 1, (n,) + in_shape).astype(np.float32))
    np.save(ys, rng.randint(0, 5, n).astype(np.int64))
    common = ['--x', xs, '--y', ys, '--loss', 'sparse_categorical_crossentropy', '--from-logits',
              '--optimizer', 'sgd', '--lr', '0.01', '--seed', '1']
    od0, od = fresh(os.path.join(d, 'w0')), fresh(os.path.join(d, 'w1'))
    r = run([a.nnplug, 'train', model, '--batch-size', '1', '--epochs', '0', '--out-dir', od0,
             '--save', os.path.join(d, 'initial.onnx')] + common)
    check(r.returncode == 0, '%s: nnplug train --epochs 0 (exit %d: %s)'
          % (name, r.returncode, r.stderr.strip()[-300:]))
    saved = os.path.join(d, 'trained.onnx')
    r = run([a.nnplug, 'train', model, '--batch-size', '1', '--epochs', '2', '--out-dir', od,
             '--save', saved] + common)
    hist = os.path.join(od, 'batch_losses.npy')
    ok = r.returncode == 0 and os.path.exists(hist)
    check(ok, '%s: nnplug train --batch-size 1 (exit %d: %s)'
          % (name, r.returncode, r.stderr.strip()[-300:]))
    if ok:
        steps = np.load(hist)
        check(steps.shape == (2 * n,) and np.all(np.isfinite(steps)),
              '%s: %d finite step losses' % (name, steps.size))
        moved = [f for f in os.listdir(od) if f.endswith('.npy') and os.path.exists(
            os.path.join(od0, f)) and np.load(os.path.join(od0, f)).shape ==
            np.load(os.path.join(od, f)).shape and
            np.abs(np.load(os.path.join(od0, f)) - np.load(os.path.join(od, f))).max() > 1e-6]
        check(len(moved) > 0, '%s: training moved weights: %s' % (name, sorted(moved)[:4]))
    r = run([a.nnplug, 'train', model, '--batch-size', '4', '--epochs', '1', '--out-dir',
             fresh(os.path.join(d, 'w4')), '--save', os.path.join(d, 'b4.onnx')] + common)
    check(not os.path.exists(os.path.join(d, 'b4.onnx')), '%s: no file saved after the '
          'refusal' % name)
    check(r.returncode == 2 and node in r.stderr,
          '%s: nnplug train --batch-size 4 exits 2 naming node %s (exit %d: %s)'
          % (name, node, r.returncode, r.stderr.strip()[-300:]))


def main():
    a = itest.args(__doc__)
    d = fresh(os.path.join(a.work, 'fixed-batch'))
    tm = os.path.join(d, 'torch_view.onnx')
    torch_model(tm)
    import onnx
    reshapes = [n for n in onnx.load(tm).graph.node if n.op_type == 'Reshape']
    check(len(reshapes) == 1, 'the PyTorch export holds one Reshape (view): %d' % len(reshapes))
    if reshapes:
        case(a, fresh(os.path.join(d, 'torch')), 'PyTorch view(1, -1)', tm, (3, 8, 8),
             reshapes[0].name)
    fm = os.path.join(d, 'flatten_axis0.onnx')
    flatten_model(fm)
    case(a, fresh(os.path.join(d, 'flatten')), 'Flatten(axis=0)', fm, (3, 6, 6), 'flatten0')
    itest.finish('fixed_batch')


if __name__ == '__main__':
    main()
