#!/usr/bin/python3
"""PyTorch's side of bench/train_compare.sh: full training steps of the same
models on the same data, timed the way `nnplug train` reports them.

    /usr/bin/python3 bench/torch_train.py --model mlp|cnn --x X.npy --y Y.npy
        --batch B --steps S [--warmup W] [--reps R] [--threads N]

Models (Keras's settings where the frameworks differ: BN epsilon 1e-3 and
momentum 0.99, i.e. PyTorch momentum 0.01):
  mlp  Linear(784, 256) BN ReLU Linear(256, 256) BN ReLU Linear(256, 10)
  cnn  Conv2d(3, 32, 3, pad 1) BN ReLU MaxPool(2) Conv2d(32, 64, 3, pad 1)
       BN ReLU AdaptiveAvgPool(1) Flatten Linear(64, 10); NCHW input
Loss: cross entropy from logits, mean over the batch (Keras's sparse
categorical cross-entropy from logits). Optimizer: SGD lr 0.01 momentum 0.9.

One "epoch" is S steps of batch B over a fresh seeded permutation of the
samples: gather the batch (index_select, as nnplug's gather copies rows),
forward, loss, zero_grad, backward, optimizer step, one .item() on the loss
(nnplug reads every step's loss too). W epochs warm up, then R epochs are
timed each; the output is one JSON line with the median samples/s and every
epoch's rate. Threads: torch.set_num_threads(N), one inter-op thread.
Needs Debian's python3-torch (run with /usr/bin/python3)."""
import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn


def make(model):
    bn = dict(eps=1e-3, momentum=0.01)
    if model == 'mlp':
        return nn.Sequential(nn.Linear(784, 256), nn.BatchNorm1d(256, **bn), nn.ReLU(),
                             nn.Linear(256, 256), nn.BatchNorm1d(256, **bn), nn.ReLU(),
                             nn.Linear(256, 10))
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32, **bn), nn.ReLU(),
                         nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64, **bn), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def setup(threads, seed):
    """`threads` intra-op threads, one inter-op thread, seeded."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(seed)


def epoch_rates(model, x, y, batch, steps, warmup, reps):
    """Samples/s of each epoch after `warmup`: `steps` SGD-momentum steps
    (lr 0.01, momentum 0.9, cross-entropy) over a fresh permutation."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    rates = []
    for epoch in range(warmup + reps):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for s in range(steps):
            idx = perm[(s * batch) % n:(s * batch) % n + batch]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
        dt = time.perf_counter() - t0
        if epoch >= warmup:
            rates.append(steps * batch / dt)
    return rates


def arguments(doc):
    """The options this script and torch_ddp.py share."""
    ap = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    ap.add_argument('--model', choices=('mlp', 'cnn'), required=True)
    ap.add_argument('--x', required=True)
    ap.add_argument('--y', required=True)
    ap.add_argument('--batch', type=int, required=True)
    ap.add_argument('--steps', type=int, required=True)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--threads', type=int, default=1)
    return ap


def load_data(a):
    """x (NCHW for the CNN: nnplug's file is channels_last) and int64 y."""
    x = torch.from_numpy(np.load(a.x))
    y = torch.from_numpy(np.load(a.y).astype(np.int64)).reshape(-1)
    if a.model == 'cnn' and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2).contiguous()
    return x, y


def main():
    ap = arguments(__doc__)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    setup(a.threads, a.seed)
    x, y = load_data(a)
    model = make(a.model).train()
    rates = epoch_rates(model, x, y, a.batch, a.steps, a.warmup, a.reps)
    print(json.dumps({'framework': 'torch ' + torch.__version__, 'model': a.model,
                      'threads': a.threads, 'batch': a.batch, 'steps': a.steps,
                      'samples_per_s': statistics.median(rates), 'rates': rates}))


if __name__ == '__main__':
    main()
