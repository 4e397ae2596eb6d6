#!/usr/bin/python3
"""Exports torchvision's ResNet-18 to ONNX the way PyTorch users do, for
manual checks against nnplug (not used by CI, which has no torch):

    export_torchvision_resnet18.py OUT.onnx [--width 64] [--classes 1000]
        [--input-shape 1,3,224,224] [--dynamic-batch] [--seed 0]
        [--input IN.npy] [--expected OUT.npy] [--compare GEN.onnx]

Needs Debian's python3-torch and python3-torchvision (apt-get install -y
python3-torchvision), run with /usr/bin/python3. Random initialization
(torch.manual_seed(--seed); weights=None: nothing is downloaded), eval mode,
then

    torch.onnx.export(model, x, OUT, opset_version=15,
                      training=TrainingMode.PRESERVE, do_constant_folding=False,
                      input_names=["input"], output_names=["output"])

which keeps every BatchNormalization node (the default eval-mode export folds
them into the convolutions). --width W builds torchvision's ResNet with
BasicBlock [2, 2, 2, 2] and stage widths W, 2W, 4W, 8W (64: the real
ResNet-18). The running statistics are set to seeded values (mean ~ N(0,
0.1^2), var ~ U(0.5, 1.5)), gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1^2), so that
inference differs from a fresh module's identity normalization.

--input / --expected write a seeded N(0,1) input and torch's eval-mode output
on it; then, for example:

    nnplug run OUT.onnx -i IN.npy -o output=got.npy   # compare with OUT.npy

--compare GEN.onnx checks that tools/gen_resnet.py's file (made with the same
--width/--classes/--input-shape) has the same graph as torch's export: node
names, op types, attributes, inputs and outputs, initializer names and
shapes, opset and IR version. Exit status 1 on a difference."""
import argparse
import sys

import numpy as np
import onnx
import torch
import torchvision
from onnx import helper
from torch.onnx import TrainingMode


def make_model(width, classes):
    if width == 64:
        m = torchvision.models.resnet18(weights=None, num_classes=classes)
    else:
        # torchvision's ResNet with the stage widths scaled: the same module
        # structure (names, strides, downsample), narrower channels.
        from torchvision.models.resnet import BasicBlock, ResNet

        class Narrow(ResNet):
            def __init__(self):
                torch.nn.Module.__init__(self)
                self._norm_layer = torch.nn.BatchNorm2d
                self.inplanes = width
                self.dilation = 1
                self.groups = 1
                self.base_width = 64
                self.conv1 = torch.nn.Conv2d(3, width, 7, 2, 3, bias=False)
                self.bn1 = torch.nn.BatchNorm2d(width)
                self.relu = torch.nn.ReLU(inplace=True)
                self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
                self.layer1 = self._make_layer(BasicBlock, width, 2)
                self.layer2 = self._make_layer(BasicBlock, width * 2, 2, stride=2)
                self.layer3 = self._make_layer(BasicBlock, width * 4, 2, stride=2)
                self.layer4 = self._make_layer(BasicBlock, width * 8, 2, stride=2)
                self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
                self.fc = torch.nn.Linear(width * 8, classes)
        m = Narrow()
    g = torch.Generator().manual_seed(12345)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            with torch.no_grad():
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return m.eval()


def attrs(n):
    out = {}
    for a in n.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = [round(x, 6) for x in v] if isinstance(v, list) and v and \
            isinstance(v[0], float) else (round(v, 6) if isinstance(v, float) else v)
    return out


def compare(torch_file, gen_file):
    a, b = onnx.load(torch_file), onnx.load(gen_file)
    diffs = []
    if a.ir_version != b.ir_version:
        diffs.append('IR version %d vs %d' % (a.ir_version, b.ir_version))
    if [(o.domain, o.version) for o in a.opset_import] != \
            [(o.domain, o.version) for o in b.opset_import]:
        diffs.append('opsets differ')
    if len(a.graph.node) != len(b.graph.node):
        diffs.append('%d nodes vs %d' % (len(a.graph.node), len(b.graph.node)))
    for x, y in zip(a.graph.node, b.graph.node):
        for what, u, v in (('name', x.name, y.name), ('op', x.op_type, y.op_type),
                           ('inputs', list(x.input), list(y.input)),
                           ('outputs', list(x.output), list(y.output)),
                           ('attributes', attrs(x), attrs(y))):
            if u != v:
                diffs.append('node %s: %s %s vs %s' % (x.name, what, u, v))
    ia = [(t.name, list(t.dims)) for t in a.graph.initializer]
    ib = [(t.name, list(t.dims)) for t in b.graph.initializer]
    if sorted(ia) != sorted(ib):
        diffs.append('initializers differ: %s' % sorted(set(map(str, ia)) ^ set(map(str, ib))))
    elif ia != ib:
        diffs.append('initializers in another order')
    for what, u, v in (('inputs', a.graph.input, b.graph.input),
                       ('outputs', a.graph.output, b.graph.output)):
        if [x.SerializeToString() for x in u] != [x.SerializeToString() for x in v]:
            diffs.append('graph %s differ: %s vs %s' % (what, u, v))
    for d in diffs:
        print('DIFF ' + d)
    print('%s and %s: %s' % (torch_file, gen_file, 'same graph' if not diffs else
                             '%d differences' % len(diffs)))
    return not diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('out')
    ap.add_argument('--width', type=int, default=64)
    ap.add_argument('--classes', type=int, default=1000)
    ap.add_argument('--input-shape', default='1,3,224,224')
    ap.add_argument('--dynamic-batch', action='store_true')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--input')
    ap.add_argument('--expected')
    ap.add_argument('--compare')
    a = ap.parse_args()
    shape = tuple(int(d) for d in a.input_shape.split(','))
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    model = make_model(a.width, a.classes)
    x = torch.from_numpy(np.random.RandomState(a.seed + 2).normal(0, 1, shape).astype(np.float32))
    torch.onnx.export(model, x, a.out, opset_version=15, training=TrainingMode.PRESERVE,
                      do_constant_folding=False, input_names=['input'], output_names=['output'],
                      dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}}
                      if a.dynamic_batch else None)
    onnx.checker.check_model(onnx.load(a.out), full_check=True)
    if a.input:
        np.save(a.input, x.numpy())
    if a.expected:
        with torch.no_grad():
            np.save(a.expected, model(x).numpy())
    print('%s: torchvision %s ResNet-18 width %d, torch %s' % (
        a.out, torchvision.__version__, a.width, torch.__version__))
    if a.compare and not compare(a.out, a.compare):
        sys.exit(1)


if __name__ == '__main__':
    main()
