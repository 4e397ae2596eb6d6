#!/usr/bin/python3
"""The real ResNet-18: torchvision's model exported by PyTorch, trained by
nnplug and by PyTorch from the same weights on the same data, step for step.

    resnet18_torch.py --nnplug BIN --source DIR --work DIR [--ort-js FILE]

The file is made here by tools/export_torchvision_resnet18.py (torchvision's
resnet18, width 64, 10 classes, seeded gamma/beta/running statistics, opset
15, BatchNormalization nodes kept, symbolic batch). PyTorch's side builds the
same torchvision module and loads the file's initializers into it by name,
in float64 (the reference; nnplug runs in float32). Data, seeded numpy: 16
images 3x64x64 (3x112x112 with RESNET18_TORCH_HW=112: Winograd kernels in
the first stage's training), N(0,1), labels 0..9.

Training: full-batch SGD (lr 0.01, momentum 0.9), sparse categorical
cross-entropy from logits (torch: CrossEntropyLoss), 3 steps; in training
mode BatchNormalization normalizes with the batch statistics in both.
Keras's momentum SGD (v = m v - lr g; w += v) and PyTorch's (v = m v + g;
w -= lr v) are the same updates for a constant learning rate.

Checks:
  - the three step losses (before each update) agree within 1e-5, 1e-4 and
    1e-3 relative: step 1 tests the forward pass, steps 2 and 3 the
    gradients of every weight through the updates, with float32 rounding
    amplified by each step (the third loss moves by 2e-4 between an -O3 and
    a sanitizer build);
  - after the first step, all 21 kernels, 20 gammas and betas, the Linear
    bias and the 20 moving means agree with PyTorch's: max |nnplug - torch|
    <= 1% of the change torch made to that tensor (the kernels' change is
    lr times their gradient, so this bounds each gradient's error), or
    within 3x the distance PyTorch's own float32 step lands from its float64
    step for that kind of weight, when that is larger: float32 rounding near
    ReLU's kink and in BatchNormalization's low-variance channels is
    amplified in the early layers' gradients (PyTorch's float32 kernels land
    up to 2% of the change away from float64 here). Losses likewise: the
    fixed tolerances below, or 3x PyTorch float32's distance. ONNX
    momentum 0.9 is PyTorch momentum 0.1 for the moving means. The moving
    variances are not compared: PyTorch folds the unbiased batch variance
    into running_var, ONNX and Keras the biased one;
  - two training steps (batch 8) at 1, 2 and 3 threads give byte-identical
    weights, losses and .onnx files;
  - `nnplug convert --fold-bn` of the saved model passes onnx.checker,
    has 20 nodes fewer (no BatchNormalization), and ONNX Runtime on it
    equals `nnplug run` on the unfolded file within 1e-4;
  - the saved 3-step model passes onnx.checker, and ONNX Runtime on it
    equals `nnplug run` on it within 1e-4 (atol + rtol) on 4 images.
For scale: PyTorch's own float32 run of these 3 steps ends 4e-3 (relative)
away from its float64 loss; nnplug's float32 run, 3e-5 to 2.2e-4.

Needs /usr/bin/python3 with numpy, onnx, torch and torchvision (Debian's
python3-torch and python3-torchvision), node and onnxruntime-node on
NODE_PATH. A missing one is a failure."""
import os
import sys

import numpy as np

import itest
from itest import check, fresh, run

STEPS, N, CLASSES = 3, 16, 10
# images HWxHW; RESNET18_TORCH_HW=112 puts the first stage at 28x28, where
# training runs Winograd kernels
HW = int(os.environ.get("RESNET18_TORCH_HW", "64"))
LOSS_TOL, UPDATE_TOL = (1e-5, 1e-4, 1e-3), 1e-2
FLOAT32_FACTOR = 3


def main():
    a = itest.args(__doc__.split('\n\n')[0])
    try:
        import onnx
        import torch
        import torchvision
        from onnx import numpy_helper
    except ImportError as e:
        check(False, 'torch, torchvision and onnx import (%s): install python3-torch '
              'python3-torchvision python3-onnx' % e)
        itest.finish('resnet18_torch')
    d = fresh(os.path.join(a.work, 'resnet18-torch'))
    src = os.path.join(d, 'resnet18.onnx')
    tool = os.path.join(a.source, 'tools', 'export_torchvision_resnet18.py')
    r = run([sys.executable, tool, src, '--classes', str(CLASSES), '--input-shape',
             '4,3,%d,%d' % (HW, HW), '--dynamic-batch'])
    if not check(r.returncode == 0, 'export_torchvision_resnet18.py (%s)'
                 % (r.stderr.strip().splitlines() or [''])[-1]):
        itest.finish('resnet18_torch')

    rng = np.random.RandomState(7)
    x = rng.normal(0, 1, (N, 3, HW, HW)).astype(np.float32)
    y = rng.randint(0, CLASSES, N).astype(np.int64)
    xf, yf, x4 = (os.path.join(d, f) for f in ('X.npy', 'Y.npy', 'X4.npy'))
    np.save(xf, x)
    np.save(yf, y)
    np.save(x4, x[:4])

    # nnplug: one full-batch step (weights), and 3 (losses, the export)
    out, od1, od = (os.path.join(d, f) for f in ('trained.onnx', 'weights1', 'weights'))
    common = [a.nnplug, 'train', src, '--x', xf, '--y', yf, '--loss',
              'sparse_categorical_crossentropy', '--from-logits', '--optimizer', 'sgd', '--lr',
              '0.01', '--momentum', '0.9', '--batch-size', str(N), '--seed', '1']
    r1 = run(common + ['--epochs', '1', '--save', os.path.join(d, 'step1.onnx'),
                       '--out-dir', od1])
    r = run(common + ['--epochs', str(STEPS), '--save', out, '--out-dir', od])
    if not check(r1.returncode == 0 and r.returncode == 0, 'nnplug train resnet18.onnx, 1 and '
                 '%d full-batch steps (%s)' % (STEPS, (r1.stderr + r.stderr).strip()[-300:])):
        itest.finish('resnet18_torch')
    print(r.stderr.strip())
    nn_loss = np.load(os.path.join(od, 'loss_history.npy'))

    # PyTorch from the file's initializers: float64 (the reference) and
    # float32 (how far float32 arithmetic itself lands from it)
    m = onnx.load(src)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    torch.set_num_threads(2)

    def torch_run(dtype):
        net = torchvision.models.resnet18(weights=None, num_classes=CLASSES).to(dtype)
        state = net.state_dict()
        missing = [k for k in state if k not in init and not k.endswith('num_batches_tracked')]
        net.load_state_dict({k: (torch.from_numpy(init[k]).to(dtype) if k in init else v)
                             for k, v in state.items()})
        before = {k: v.detach().clone().double().numpy() for k, v in net.state_dict().items()}
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        lossf = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x).to(dtype), torch.from_numpy(y)
        losses, after = [], None
        for i in range(STEPS):
            opt.zero_grad()
            loss = lossf(net(xt), yt)
            losses.append(loss.item())
            loss.backward()
            opt.step()
            if i == 0:
                after = {k: v.detach().clone().double().numpy()
                         for k, v in net.state_dict().items()}
        return missing, before, after, losses

    missing, before, after, t_loss = torch_run(torch.float64)
    check(not missing, 'every torch parameter is an initializer of the file (%s)' % missing[:3])
    _, _, after32, t32_loss = torch_run(torch.float32)

    rel = np.abs(nn_loss - np.array(t_loss)) / np.abs(np.array(t_loss))
    rel32 = np.abs(np.array(t32_loss) - np.array(t_loss)) / np.abs(np.array(t_loss))
    loss_tol = np.maximum(np.array(LOSS_TOL), FLOAT32_FACTOR * rel32)
    check(nn_loss.shape == (STEPS,) and np.all(rel <= loss_tol),
          'step losses: nnplug %s, torch %s (relative differences %s; torch float32 %s; '
          'tolerances %s)'
          % (np.round(nn_loss, 6).tolist(), np.round(t_loss, 6).tolist(),
             ['%.2g' % v for v in rel], ['%.2g' % v for v in rel32],
             ['%.2g' % v for v in loss_tol]))

    # the initializer each nnplug weight file holds: from the graph's nodes
    role = {'Conv': {1: 'kernel'}, 'Gemm': {1: 'kernel', 2: 'bias'},
            'BatchNormalization': {1: 'gamma', 2: 'beta', 3: 'moving_mean'}}
    files = set(os.listdir(od1))
    worst = {'kernel': (0.0, ''), 'gamma': (0.0, ''), 'beta': (0.0, ''), 'bias': (0.0, ''),
             'moving_mean': (0.0, '')}
    count = dict.fromkeys(worst, 0)
    worst32 = dict.fromkeys(worst, 0.0)
    ratios = []
    for n in m.graph.node:
        for idx, w in role.get(n.op_type, {}).items():
            name = n.input[idx]
            layer = n.name.replace('/', '_')
            f = next((c for c in ('%s_%s.npy' % (layer, w), '%s.npy' % w) if c in files), None)
            if f is None:
                check(False, '%s (%s of %s): no weight file' % (name, w, n.name))
                continue
            got = np.load(os.path.join(od1, f)).astype(np.float64)
            want, w0 = after[name], before[name]
            if w == 'kernel' and got.ndim == 4:
                got = got.transpose(3, 2, 0, 1)   # Keras [kh, kw, C, F] -> [F, C, kh, kw]
            elif w == 'kernel':
                got = got.T                       # Keras [in, out] -> Linear [out, in]
            if got.shape != want.shape:
                check(False, '%s: shape %s, torch %s' % (name, got.shape, want.shape))
                continue
            err, step = float(np.abs(got - want).max()), float(np.abs(want - w0).max())
            ratio = err / step if step > 0 else float('inf')
            ratio32 = float(np.abs(after32[name] - want).max()) / step if step > 0 else 0.0
            worst[w] = max(worst[w], (ratio, name))
            worst32[w] = max(worst32[w], ratio32)
            count[w] += 1
            ratios.append((w, name, err, step, ratio))
    # the tolerance of each kind of weight: 1%, or FLOAT32_FACTOR times the
    # farthest PyTorch's own float32 step lands from float64 for that kind
    tol = {w: max(UPDATE_TOL, FLOAT32_FACTOR * worst32[w]) for w in worst}
    for w, name, err, step, ratio in ratios:
        if ratio > tol[w]:
            check(False, '%s after one step: max |nnplug - torch| %.3g is %.2g of '
                  'torch\'s largest change %.3g (tolerance %.2g)' % (name, err, ratio, step, tol[w]))
    check(count == {'kernel': 21, 'gamma': 20, 'beta': 20, 'bias': 1, 'moving_mean': 20},
          'compared with torch: %s' % count)
    for w, (ratio, name) in worst.items():
        check(0 < ratio <= tol[w], '%s after one step: worst %s, difference %.2g of '
              'its largest change (torch float32: %.2g; tolerance %.2g)'
              % (w, name, ratio, worst32[w], tol[w]))

    # the same bits at 1, 2 and 3 threads: two steps (the first batch of 16,
    # shuffled, then the rest), every weight file, the losses, the .onnx
    runs = {}
    for t in (1, 2, 3):
        td = os.path.join(d, 'threads%d' % t)
        os.makedirs(td, exist_ok=True)
        rt = run(common[:-4] + ['--seed', '3', '--batch-size', '8', '--epochs', '1',
                                '--threads', str(t), '--save', os.path.join(td, 'model.onnx'),
                                '--out-dir', td])
        if not check(rt.returncode == 0, 'nnplug train --threads %d (%s)'
                     % (t, rt.stderr.strip()[-200:])):
            itest.finish('resnet18_torch')
        runs[t] = {f: open(os.path.join(td, f), 'rb').read() for f in sorted(os.listdir(td))
                   if f.endswith('.npy') or f.endswith('.onnx')}
    differ = sorted(f for t in (2, 3) for f in runs[1] if runs[t].get(f) != runs[1][f])
    check(len(runs[1]) > 60 and not differ,
          'two training steps give the same bytes at 1, 2 and 3 threads (%d files; differing: '
          '%s)' % (len(runs[1]), differ[:4]))

    ok, msg = itest.onnx_check(out)
    check(ok, 'trained.onnx: onnx.checker full_check %s' % msg)
    itest.run_vs_ort(a, out, x4, d, 'trained.onnx (4 images)', 1e-4)

    # the inference export: BatchNormalization folded into the convolutions
    folded = os.path.join(d, 'folded.onnx')
    r = run([a.nnplug, 'convert', out, folded, '--fold-bn'])
    if check(r.returncode == 0, 'nnplug convert --fold-bn (%s)' % r.stderr.strip()):
        ok, msg = itest.onnx_check(folded)
        check(ok, 'folded.onnx: onnx.checker full_check %s' % msg)
        ops = [n.op_type for n in onnx.load(folded).graph.node]
        ops0 = [n.op_type for n in onnx.load(out).graph.node]
        check(len(ops) == len(ops0) - 20 and 'BatchNormalization' not in ops,
              'folded.onnx has %d nodes, no BatchNormalization (trained.onnx: %d)'
              % (len(ops), len(ops0)))
        itest.run_vs_ort(a, out, x4, os.path.join(d, 'fold'), 'trained.onnx vs ONNX Runtime on '
                         'folded.onnx (4 images)', 1e-4, ort_model=folded)
    itest.finish('resnet18_torch')


if __name__ == '__main__':
    main()
