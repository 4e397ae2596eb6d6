#!/usr/bin/python3
"""End to end: import a PyTorch-exported CNN, train it for a few steps on
generated data, export it, and ONNX Runtime reproduces `nnplug run` on the
export.

    train_e2e.py --nnplug BIN --testdata DIR --source DIR --work DIR [--ort-js FILE]

The model is testdata/torch-export/cnn_bn2d_op15/model.onnx (PyTorch 1.13,
Conv-BN-ReLU-MaxPool-Conv-BN-ReLU-GlobalAvgPool-Flatten-Linear, BN nodes
kept). The data, made here with a seeded numpy: 64 images 3x16x16, N(0,1)
noise plus one of 10 fixed random patterns, the pattern's index being the
sparse label. Checks:
  - `nnplug train --epochs 2 --batch-size 8` (sparse categorical CE from
    logits, SGD lr 0.05 momentum 0.9) succeeds; the epoch loss goes down and
    the mean of the last 4 step losses is below the mean of the first 4;
  - every weight (kernels, the Gemm bias, gamma, beta, moving statistics)
    differs from the imported one (`--epochs 0 --out-dir` gives those),
    except the Conv biases: each feeds a training-mode BatchNormalization,
    so their gradient is exactly zero and they must stay put (within 1e-6);
  - the saved model passes onnx.checker full_check, has a symbolic batch, and
    ONNX Runtime on it equals `nnplug run` on it within 1e-5 (atol + rtol)
    on a batch of 8;
  - ONNX Runtime's inference-mode loss on the data is lower for the trained
    model than for the imported one.

torch.onnx.export without dynamic_axes fixes the input at [4,3,16,16]; nnplug
reads the first axis of a data input as the batch, so it trains this file on
batches of 8, and its export writes the batch as the symbolic "N". ONNX
Runtime keeps the file's fixed batch, so the imported file is run there on
batches of 4.

Needs /usr/bin/python3 with numpy and onnx, node and onnxruntime-node on
NODE_PATH. Torch is not needed."""
import os

import numpy as np

import itest
from itest import check, fresh, run


def ce(logits, labels):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-lp[np.arange(len(labels)), labels].mean())


def main():
    import onnx
    a = itest.args(__doc__.split('\n\n')[0], testdata=True)
    d = fresh(os.path.join(a.work, 'train-e2e'))
    src = os.path.join(a.testdata, 'torch-export', 'cnn_bn2d_op15', 'model.onnx')
    check(os.path.exists(src), 'the PyTorch export is there: %s' % src)

    rng = np.random.RandomState(2024)
    n, classes = 64, 10
    patterns = rng.normal(0, 1, (classes, 3, 16, 16))
    y = rng.randint(0, classes, n)
    x = (rng.normal(0, 1, (n, 3, 16, 16)) + patterns[y]).astype(np.float32)
    xf, yf, x8 = (os.path.join(d, f) for f in ('X.npy', 'Y.npy', 'X8.npy'))
    np.save(xf, x)
    np.save(yf, y.astype(np.int64))
    np.save(x8, x[:8])

    out, init = os.path.join(d, 'out.onnx'), os.path.join(d, 'initial.onnx')
    od, od0 = os.path.join(d, 'weights'), os.path.join(d, 'weights0')
    common = ['--x', xf, '--y', yf, '--loss', 'sparse_categorical_crossentropy', '--from-logits',
              '--optimizer', 'sgd', '--lr', '0.05', '--momentum', '0.9', '--batch-size', '8',
              '--seed', '3']
    r0 = run([a.nnplug, 'train', src, '--epochs', '0', '--save', init, '--out-dir', od0] + common)
    check(r0.returncode == 0, 'nnplug train --epochs 0 (the imported weights) (%s)'
          % r0.stderr.strip())
    r = run([a.nnplug, 'train', src, '--epochs', '2', '--save', out, '--out-dir', od] + common)
    if not check(r.returncode == 0 and os.path.exists(out), 'nnplug train --epochs 2 '
                 '--batch-size 8 --save out.onnx (%s)' % r.stderr.strip()):
        itest.finish('train_e2e')
    print(r.stderr.strip())

    hist = np.load(os.path.join(od, 'loss_history.npy'))
    steps = np.load(os.path.join(od, 'batch_losses.npy'))
    check(hist.shape == (2,) and steps.shape == (16,), 'history: %s epochs, %s steps'
          % (hist.shape, steps.shape))
    check(hist[1] < hist[0], 'the epoch loss went down: %s' % hist)
    check(steps[-4:].mean() < steps[:4].mean(), 'the step loss went down: first 4 %.4f, '
          'last 4 %.4f' % (steps[:4].mean(), steps[-4:].mean()))

    history = ('loss_history.npy', 'batch_losses.npy', 'history.svg')
    check(all(os.path.exists(os.path.join(o, f)) for o in (od0, od) for f in history),
          'the history (%s) in both --out-dir folders' % ', '.join(history))
    files = sorted(f for f in os.listdir(od0) if f not in history)
    check(len(files) == 14 and files == sorted(f for f in os.listdir(od) if f not in history),
          'the same 14 weights before and after: %s' % files)
    for f in files:
        w0, w1 = np.load(os.path.join(od0, f)), np.load(os.path.join(od, f))
        delta = float(np.abs(w1 - w0).max()) if w0.shape == w1.shape else float('nan')
        if f.endswith('Conv_bias.npy'):
            # each Conv feeds a BatchNormalization in training mode, which
            # subtracts the batch mean: the bias's gradient is exactly 0 in
            # exact arithmetic, so only rounding may move it
            check(np.all(np.isfinite(w1)) and delta < 1e-6, 'weight %s (before a training-mode '
                  'BN) did not move: max |delta| %.3g' % (f, delta))
        else:
            check(np.all(np.isfinite(w1)) and delta > 1e-4, 'weight %s changed (max |delta| '
                  '%.3g)' % (f, delta))

    m = onnx.load(out)
    ok, msg = itest.onnx_check(m)
    check(ok, 'out.onnx: onnx.checker full_check %s' % msg)
    check(m.graph.input[0].type.tensor_type.shape.dim[0].dim_param != '',
          'out.onnx: the batch dimension is symbolic')

    itest.run_vs_ort(a, out, x8, d, 'out.onnx (8 samples)', 1e-5)

    # the training helped, as an independent runtime sees it
    jobs = []
    for name, model in (('imported', src), ('trained', out)):
        for i in range(0, n, 4):   # the imported file takes batches of 4
            o = os.path.join(d, 'ort-%s' % name, str(i))
            os.makedirs(o, exist_ok=True)
            np.save(os.path.join(o, 'x.npy'), x[i:i + 4])
            jobs.append((model, o, {'input': os.path.join(o, 'x.npy')}))
    errs = itest.ort_batch(a, jobs, d)
    if check(not any(errs), 'ONNX Runtime on both models, 16 batches each (%s)' % (
            [e for e in errs if e][:1])):
        logits = [np.load(os.path.join(o, 'output.npy')) for _, o, _ in jobs]
        before, after = ce(np.concatenate(logits[:16]), y), ce(np.concatenate(logits[16:]), y)
        check(after < before, 'ONNX Runtime inference loss on the data: imported %.4f, '
              'trained %.4f' % (before, after))
    itest.finish('train_e2e')


if __name__ == '__main__':
    main()
