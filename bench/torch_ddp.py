#!/usr/bin/python3
"""PyTorch DistributedDataParallel (gloo) on the models of
bench/train_compare.sh, the peer of bench/distributed.sh:

    /usr/bin/python3 bench/torch_ddp.py --model mlp|cnn --x X.npy --y Y.npy
        --batch B --steps S --world K --threads T [--warmup W] [--reps R]

K processes on this machine (torch.multiprocessing, gloo over loopback),
each with T intra-op threads and B/K samples of every global batch of B;
the epoch timing of bench/torch_train.py. Process 0 prints one JSON line
with the median samples/s (global samples) and every epoch's rate."""
import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import torch_train


def worker(rank, a, init_file, out_file):
    dist.init_process_group('gloo', init_method='file://' + init_file, rank=rank,
                            world_size=a.world)
    torch_train.setup(a.threads, 0)
    x = torch.from_numpy(np.load(a.x))
    y = torch.from_numpy(np.load(a.y).astype(np.int64)).reshape(-1)
    if a.model == 'cnn' and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2).contiguous()
    model = nn.parallel.DistributedDataParallel(torch_train.make(a.model).train())
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    n, local = x.shape[0], a.batch // a.world
    rates = []
    for epoch in range(a.warmup + a.reps):
        g = torch.Generator().manual_seed(epoch)
        perm = torch.randperm(n, generator=g)
        dist.barrier()
        t0 = time.perf_counter()
        for s in range(a.steps):
            at = (s * a.batch) % n + rank * local
            idx = perm[at:at + local]
            loss = loss_fn(model(x.index_select(0, idx)), y.index_select(0, idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
        dist.barrier()
        if epoch >= a.warmup:
            rates.append(a.steps * a.batch / (time.perf_counter() - t0))
    if rank == 0:
        with open(out_file, 'w') as f:
            json.dump({'framework': 'torch ' + torch.__version__ + ' DDP gloo',
                       'model': a.model, 'world': a.world, 'threads': a.threads,
                       'batch': a.batch, 'samples_per_s': statistics.median(rates),
                       'rates': rates}, f)
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', choices=('mlp', 'cnn'), required=True)
    ap.add_argument('--x', required=True)
    ap.add_argument('--y', required=True)
    ap.add_argument('--batch', type=int, required=True)
    ap.add_argument('--steps', type=int, required=True)
    ap.add_argument('--world', type=int, default=2)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--reps', type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        init, out = os.path.join(d, 'init'), os.path.join(d, 'out.json')
        mp.spawn(worker, args=(a, init, out), nprocs=a.world, join=True)
        print(open(out).read())


if __name__ == '__main__':
    main()
