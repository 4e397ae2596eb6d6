#!/usr/bin/python3
"""PyTorch's side of bench/resnet_compare.sh: torchvision's ResNet-18 with
the weights of the ONNX file the script gives nnplug and ONNX Runtime.

    /usr/bin/python3 bench/resnet_torch.py train --x X.npy --y Y.npy --batch B
        --steps S [--warmup W] [--reps R] [--threads N] [--config NAME]
    /usr/bin/python3 bench/resnet_torch.py infer --x X.npy --batch B
        [--warmup W] [--reps R] [--threads N] [--config NAME]

The model: tools/export_torchvision_resnet18.py's make_model(64, 1000)
after torch.manual_seed(0), the module that script exports (1000 classes,
NCHW float32), so both sides start from the same weights.

train: bench/torch_train.py's loop. One "epoch" is S steps of batch B over
a fresh seeded permutation of the samples: gather the batch (index_select),
forward in training mode, CrossEntropyLoss (mean, from logits), zero_grad,
backward, SGD (lr 0.01, momentum 0.9) step, one .item() on the loss. W
epochs warm up, then R epochs are timed; each epoch's samples/s is listed.
infer: model.eval() under torch.no_grad() on the first B samples: W
untimed runs, then R timed ones, each one batch; every run's ms is listed.

Threads: torch.set_num_threads(N), one inter-op thread (and the caller sets
OMP_NUM_THREADS=N). Output: one JSON line. Needs Debian's python3-torch and
python3-torchvision: run with /usr/bin/python3."""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools'))
from export_torchvision_resnet18 import make_model  # noqa: E402
from torch_train import epoch_rates, setup  # noqa: E402  (bench/, this script's folder)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('mode', choices=('train', 'infer'))
    ap.add_argument('--x', required=True)
    ap.add_argument('--y')
    ap.add_argument('--batch', type=int, required=True)
    ap.add_argument('--steps', type=int, default=1)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--config', default='')
    a = ap.parse_args()
    setup(a.threads, a.seed)
    model = make_model(64, 1000)
    x = torch.from_numpy(np.load(a.x))
    out = {'framework': 'torch', 'version': torch.__version__, 'config': a.config,
           'threads': a.threads, 'batch': a.batch}
    if a.mode == 'infer':
        model.eval()
        xb = x[:a.batch].contiguous()
        ms = []
        with torch.no_grad():
            for r in range(a.warmup + a.reps):
                t0 = time.perf_counter()
                model(xb)
                dt = time.perf_counter() - t0
                if r >= a.warmup:
                    ms.append(dt * 1e3)
        out.update(kind='infer', median_ms=statistics.median(ms), ms=ms)
        print(json.dumps(out))
        return
    if not a.y:
        ap.error('train needs --y')
    y = torch.from_numpy(np.load(a.y).astype(np.int64)).reshape(-1)
    model.train()
    rates = epoch_rates(model, x, y, a.batch, a.steps, a.warmup, a.reps)
    out.update(kind='train', steps=a.steps, samples_per_s=statistics.median(rates),
               rates=rates)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
