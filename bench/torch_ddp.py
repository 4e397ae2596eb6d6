#!/usr/bin/python3
"""PyTorch DistributedDataParallel (gloo) on the models of
bench/train_compare.sh, the peer of bench/distributed.sh:

    /usr/bin/python3 bench/torch_ddp.py --model mlp|cnn --x X.npy --y Y.npy
        --batch B --steps S --world K --threads T [--warmup W] [--reps R]

K processes on this machine (torch.multiprocessing, gloo over loopback),
each with T intra-op threads and B/K samples of every global batch of B;
the epoch timing of bench/torch_train.py. Process 0 prints one JSON line
with the median samples/s (global samples) and every epoch's rate."""
import json
import os
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import torch_train


def worker(rank, a, init_file, out_file):
    dist.init_process_group('gloo', init_method='file://' + init_file, rank=rank,
                            world_size=a.world)
    torch_train.setup(a.threads, 0)
    x, y = torch_train.load_data(a)
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
    ap = torch_train.arguments(__doc__)
    ap.add_argument('--world', type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        init, out = os.path.join(d, 'init'), os.path.join(d, 'out.json')
        mp.spawn(worker, args=(a, init, out), nprocs=a.world, join=True)
        print(open(out).read())


if __name__ == '__main__':
    main()
