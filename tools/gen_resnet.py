#!/usr/bin/python3
"""Writes a ResNet-18 as PyTorch's ONNX exporter would, with onnx.helper and
numpy only (no torch needed):

    gen_resnet.py OUT.onnx [--width 64] [--classes 1000] [--input-shape 1,3,224,224]
                  [--dynamic-batch] [--seed 0] [--input IN.npy] [--expected OUT.npy]

Topology: torchvision.models.resnet18 -- conv1 7x7/2 (pad 3) + BN + ReLU +
MaxPool 3x3/2 (pad 1); four stages of two BasicBlocks (conv 3x3 + BN + ReLU +
conv 3x3 + BN, Add of the identity, ReLU) with widths w, 2w, 4w, 8w; the
first block of stages 2-4 has stride 2 and a downsample branch (1x1/2 conv +
BN) on its identity path; GlobalAveragePool, Flatten(axis=1), Gemm (transB=1).
--width 64 --classes 1000 is the real ResNet-18 (11.7M parameters); CI uses a
reduced width (for example 8) with the same topology on a small input.

Export style: torch.onnx.export(model.eval(), x, f, opset_version=15,
training=TrainingMode.PRESERVE, do_constant_folding=False,
input_names=["input"], output_names=["output"]) of PyTorch 1.13: IR version 8,
opset 15, producer "pytorch" 1.13.0; Conv without bias, each followed by its
BatchNormalization(X, weight, bias, running_mean, running_var) node with
epsilon 1e-5, momentum 0.9 (PyTorch's 0.1 in ONNX's convention) and
training_mode 0; node names "/layer1/layer1.0/conv1/Conv", values
"<node>_output_0", initializers "layer1.0.conv1.weight", "bn1.running_var",
"fc.bias" in module order. The batch is fixed (as torch traces it) unless
--dynamic-batch names it "N". tools/export_torchvision_resnet18.py makes the
same file from torchvision itself, to compare against.

Weights (seeded numpy RandomState): conv W ~ N(0, 2/fan_in) (He), fc W ~
N(0, 1/fan_in), fc bias ~ U(-0.1, 0.1), BN gamma ~ U(0.5, 1.5), beta ~
N(0, 0.1^2). The BN running statistics are calibrated so that activations
stay O(1) through all 8 residual blocks in inference mode: a float64 numpy
forward pass over 4 seeded random inputs sets each BN's running mean and
(biased) variance to its input's batch statistics, then perturbs them (mean
+ 0.1 std N(0,1), variance x U(0.8, 1.25)) so that inference and training
mode differ.

--input writes a seeded N(0,1) input of --input-shape; --expected writes the
float64 numpy forward (inference mode) of that input, as float32."""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from numpy.lib.stride_tricks import sliding_window_view

EPS = 1e-5
MOMENTUM = 0.9


# ---- numpy reference ops (NCHW, float64) ------------------------------------

def conv(x, w, stride, pad):
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def bn(x, p):
    g, b, m, v = (p[k].reshape(1, -1, 1, 1) for k in ('weight', 'bias', 'running_mean',
                                                       'running_var'))
    return (x - m) / np.sqrt(v + EPS) * g + b


def maxpool(x, k, s, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s].max(axis=(4, 5))


def relu(x):
    return np.maximum(x, 0)


# ---- the model: parameters in module order, then the graph ------------------

class Builder:
    def __init__(self, rng, calib):
        self.rng = rng
        self.params = []      # (name, array) in PyTorch's state_dict order
        self.nodes = []
        self.x = calib        # calibration activations (float64), follows the graph

    def param(self, name, a):
        self.params.append((name, a.astype(np.float32)))
        return name

    def node(self, op, scope, inputs, n_out=1, **attrs):
        name = scope + '/' + op
        outs = ['%s_output_%d' % (name, i) for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0]

    def conv(self, scope, prefix, x, cin, cout, k, stride, pad):
        w = self.rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
        wname = self.param(prefix + '.weight', w)
        self.x = conv(self.x, w.astype(np.float32).astype(np.float64), stride, pad)
        return self.node('Conv', scope, [x, wname], dilations=[1, 1], group=1,
                         kernel_shape=[k, k], pads=[pad] * 4, strides=[stride] * 2)

    def bn(self, scope, prefix, x, c):
        r = self.rng
        mean = self.x.mean(axis=(0, 2, 3))
        std = self.x.std(axis=(0, 2, 3))
        p = {'weight': r.uniform(0.5, 1.5, c), 'bias': r.normal(0, 0.1, c),
             'running_mean': mean + 0.1 * std * r.normal(0, 1, c),
             'running_var': std ** 2 * r.uniform(0.8, 1.25, c)}
        names = [self.param('%s.%s' % (prefix, k), p[k])
                 for k in ('weight', 'bias', 'running_mean', 'running_var')]
        self.x = bn(self.x, {k: v.astype(np.float32).astype(np.float64) for k, v in p.items()})
        return self.node('BatchNormalization', scope, [x] + names, epsilon=EPS,
                         momentum=MOMENTUM, training_mode=0)

    def relu(self, scope, x):
        self.x = relu(self.x)
        return self.node('Relu', scope, [x])

    def block(self, stage, i, x, cin, cout, stride):
        """torchvision BasicBlock layer<stage>.<i>."""
        mod = 'layer%d.%d' % (stage, i)
        sc = '/layer%d/%s' % (stage, mod)
        identity = self.x
        h = self.conv(sc + '/conv1', mod + '.conv1', x, cin, cout, 3, stride, 1)
        h = self.bn(sc + '/bn1', mod + '.bn1', h, cout)
        h = self.relu(sc + '/relu', h)
        h = self.conv(sc + '/conv2', mod + '.conv2', h, cout, cout, 3, 1, 1)
        h = self.bn(sc + '/bn2', mod + '.bn2', h, cout)
        main = self.x
        if stride != 1 or cin != cout:
            self.x = identity
            x = self.conv(sc + '/downsample/downsample.0', mod + '.downsample.0', x, cin, cout,
                          1, stride, 0)
            x = self.bn(sc + '/downsample/downsample.1', mod + '.downsample.1', x, cout)
            identity = self.x
        self.x = main + identity
        h = self.node('Add', sc, [h, x])
        return self.relu(sc + '/relu_1', h)


def forward_shapes(shape, width):
    n, _, h, w = shape
    for k, s, p in ((7, 2, 3), (3, 2, 1), (3, 2, 1), (3, 2, 1), (3, 2, 1)):
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if h < 1 or w < 1:
            sys.exit('gen_resnet.py: input %s is too small for ResNet-18' % (shape,))


def build(width, classes, shape, seed, dynamic):
    rng = np.random.RandomState(seed)
    calib = np.random.RandomState(seed + 1).normal(0, 1, (4,) + tuple(shape[1:]))
    b = Builder(rng, calib)
    cin = shape[1]
    x = b.conv('/conv1', 'conv1', 'input', cin, width, 7, 2, 3)
    x = b.bn('/bn1', 'bn1', x, width)
    x = b.relu('/relu', x)
    b.x = maxpool(b.x, 3, 2, 1)
    x = b.node('MaxPool', '/maxpool', [x], ceil_mode=0, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
               strides=[2, 2])
    c = width
    for stage in range(1, 5):
        cout = width * 2 ** (stage - 1)
        for i in range(2):
            stride = 2 if (stage > 1 and i == 0) else 1
            x = b.block(stage, i, x, c, cout, stride)
            c = cout
    x = b.node('GlobalAveragePool', '/avgpool', [x])
    x = b.node('Flatten', '', [x], axis=1)
    fw = b.param('fc.weight', rng.normal(0, np.sqrt(1.0 / c), (classes, c)))
    fb = b.param('fc.bias', rng.uniform(-0.1, 0.1, classes))
    gemm = helper.make_node('Gemm', [x, fw, fb], ['output'], name='/fc/Gemm', alpha=1.0,
                            beta=1.0, transB=1)
    b.nodes.append(gemm)
    dims = ['N' if dynamic else shape[0]] + list(shape[1:])
    graph = helper.make_graph(
        b.nodes, 'torch_jit',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info('output', TensorProto.FLOAT,
                                       [dims[0], classes])],
        initializer=[numpy_helper.from_array(a, n) for n, a in b.params])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 15)],
                              producer_name='pytorch', producer_version='1.13.0')
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model, dict(b.params)


def reference(params, x, width):
    """Inference-mode forward in float64 (the graph gen_resnet writes)."""
    p = {k: v.astype(np.float64) for k, v in params.items()}

    def bnp(prefix, h):
        return bn(h, {k: p['%s.%s' % (prefix, k)]
                      for k in ('weight', 'bias', 'running_mean', 'running_var')})
    h = relu(bnp('bn1', conv(x, p['conv1.weight'], 2, 3)))
    h = maxpool(h, 3, 2, 1)
    for stage in range(1, 5):
        for i in range(2):
            mod = 'layer%d.%d' % (stage, i)
            stride = 2 if (stage > 1 and i == 0) else 1
            t = relu(bnp(mod + '.bn1', conv(h, p[mod + '.conv1.weight'], stride, 1)))
            t = bnp(mod + '.bn2', conv(t, p[mod + '.conv2.weight'], 1, 1))
            if mod + '.downsample.0.weight' in p:
                h = bnp(mod + '.downsample.1', conv(h, p[mod + '.downsample.0.weight'], stride, 0))
            h = relu(t + h)
    h = h.mean(axis=(2, 3))
    return h @ p['fc.weight'].T + p['fc.bias']


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('out')
    ap.add_argument('--width', type=int, default=64, help='channels of stage 1 (64: ResNet-18)')
    ap.add_argument('--classes', type=int, default=1000)
    ap.add_argument('--input-shape', default='1,3,224,224', help='N,C,H,W')
    ap.add_argument('--dynamic-batch', action='store_true', help='batch dimension "N"')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--input', help='write a seeded N(0,1) input of --input-shape here')
    ap.add_argument('--expected', help='write the numpy (float64) inference output here')
    a = ap.parse_args()
    shape = tuple(int(d) for d in a.input_shape.split(','))
    if len(shape) != 4 or min(shape) < 1 or a.width < 1 or a.classes < 1:
        ap.error('--input-shape needs 4 positive dims; --width and --classes must be >= 1')
    forward_shapes(shape, a.width)
    model, params = build(a.width, a.classes, shape, a.seed, a.dynamic_batch)
    onnx.save(model, a.out)
    if a.input or a.expected:
        x = np.random.RandomState(a.seed + 2).normal(0, 1, shape).astype(np.float32)
        if a.input:
            np.save(a.input, x)
        if a.expected:
            np.save(a.expected, reference(params, x.astype(np.float64), a.width)
                    .astype(np.float32))
    n = sum(v.size for v in params.values())
    print('%s: ResNet-18 width %d, %d classes, input %s, %d nodes, %d parameters' % (
        a.out, a.width, a.classes, 'x'.join(map(str, ('N',) + shape[1:] if a.dynamic_batch
                                                 else shape)), len(model.graph.node), n))


if __name__ == '__main__':
    main()
