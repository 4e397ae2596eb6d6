#!/usr/bin/python3
"""PyTorch's batch normalization on the shapes bench/bn_compare.c uses.

Times torch.nn.functional.batch_norm on CPU, float32:
  fwd-infer  training=False (running statistics), under no_grad
  fwd-train  training=True (batch statistics, running ones updated), no_grad
  bwd        autograd backward of a training-mode call: grads of the input,
             weight and bias (torch.autograd.grad, so nothing accumulates
             into .grad; the forward is not timed)
in NCHW contiguous and channels_last memory (plain NC for 2-D), at each
thread count (torch.set_num_threads). Prints one JSON object per line, with
the fields of `nnplug bench --json` plus layout and logical shape.

Run it with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 bench/torch_bn.py [--reps N] [--threads 1,2]

Bandwidth uses the same compulsory traffic as nnplug (fwd-infer 2S,
fwd-train 3S, bwd 5S for a tensor of S bytes). Times include PyTorch's
Python-side dispatch, which is what a PyTorch user pays; it dominates only
for the smallest shape. The backward also allocates fresh gradient tensors
on every call, as autograd does (nnplug and oneDNN write into buffers
allocated once), which makes its times bimodal.

Leave torch.set_num_interop_threads alone: on a 2-core machine setting it
made every later 2-thread call take whole 4 ms scheduler ticks.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("torch_bn.py: no torch module in %s (apt-get install python3-torch, "
             "run with /usr/bin/python3)" % sys.executable)

# Logical NCHW (or NC) shapes; the NHWC case of bn_compare is the
# channels_last row of the first one (the same bytes in memory).
SHAPES = [(32, 64, 56, 56), (256, 2048), (128, 256, 14, 14), (8, 16, 16, 16),
          (64, 64, 112, 112)]
DIRECTIONS = ("fwd-infer", "fwd-train", "bwd")
TRAFFIC = {"fwd-infer": 2, "fwd-train": 3, "bwd": 5}
EPS = 1e-3          # Keras's default, as in bn_compare
MOMENTUM = 0.01     # PyTorch's meaning: 1 - Keras's 0.99
CHUNK = 5           # timed runs per alternating round, as in bn_compare
TARGET_MS = 150.0   # per layout and row, at least: small shapes get more runs
MAX_REPS = 3000


class Case:
    """Tensors of one shape in one memory layout, and a run per direction."""

    def __init__(self, shape, layout, gen):
        self.layout = layout
        c = shape[1]
        x = torch.randn(shape, generator=gen)
        dy = torch.randn(shape, generator=gen)
        if layout == "nhwc":
            x = x.contiguous(memory_format=torch.channels_last)
            dy = dy.contiguous(memory_format=torch.channels_last)
        self.x, self.dy = x, dy
        self.rm, self.rv = torch.zeros(c), torch.ones(c)
        self.w, self.b = torch.ones(c), torch.zeros(c)
        # autograd copies for the backward; the graph is built once and
        # kept (retain_graph) so that only the backward is timed
        self.xg = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
        self.wg = self.w.clone().requires_grad_()
        self.bg = self.b.clone().requires_grad_()
        self.yg = None

    def prepare(self, direction):
        if direction == "bwd":
            self.yg = F.batch_norm(self.xg, self.rm, self.rv, self.wg, self.bg, True,
                                   MOMENTUM, EPS)

    def run(self, direction):
        if direction == "bwd":
            torch.autograd.grad(self.yg, (self.xg, self.wg, self.bg), self.dy,
                                retain_graph=True)
            return
        with torch.no_grad():
            F.batch_norm(self.x, self.rm, self.rv, self.w, self.b,
                         direction == "fwd-train", MOMENTUM, EPS)


def measure(cases, direction, min_reps):
    """Samples (ms) per case: a warm-up, a probe to size the run count, then
    short rounds of CHUNK runs alternating between the layouts, each after
    an untimed run, so that foreign load hits every layout alike."""
    for c in cases:
        c.prepare(direction)
        c.run(direction)
    # the fastest of a few runs: one run slowed by foreign load must not
    # cut the run count
    probe = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        cases[0].run(direction)
        probe = min(probe, (time.perf_counter() - t0) * 1e3)
    reps = min_reps
    if probe > 0 and TARGET_MS / probe > reps:
        reps = min(MAX_REPS, int(TARGET_MS / probe))
    rounds = -(-reps // CHUNK)
    samples = [[] for _ in cases]
    for _ in range(rounds):
        for c, s in zip(cases, samples):
            c.run(direction)
            for _ in range(CHUNK):
                t0 = time.perf_counter()
                c.run(direction)
                s.append((time.perf_counter() - t0) * 1e3)
    return samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15,
                    help="runs per measurement, at least (more for small shapes)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--only", default=None,
                    help="only shapes whose label (e.g. [32,64,56,56]) contains this")
    args = ap.parse_args()
    try:
        threads = [int(t) for t in args.threads.split(",")]
        if args.reps < 1 or min(threads) < 1:
            raise ValueError
    except ValueError:
        ap.error("--reps and --threads must be positive integers")

    gen = torch.Generator().manual_seed(42)
    print(json.dumps({"tool": "torch", "impl": "env", "torch": torch.__version__,
                      "parallel": torch.__config__.parallel_info().splitlines()[-1].strip()}))
    for shape in SHAPES:
        label = "[" + ",".join(str(d) for d in shape) + "]"
        if args.only and args.only not in label:
            continue
        layouts = ("nchw", "nhwc") if len(shape) == 4 else ("nc",)
        cases = [Case(shape, layout, gen) for layout in layouts]
        nbytes = 4
        for d in shape:
            nbytes *= d
        for t in threads:
            torch.set_num_threads(t)
            got = torch.get_num_threads()
            for direction in DIRECTIONS:
                for c, s in zip(cases, measure(cases, direction, args.reps)):
                    med = statistics.median(s)
                    gbps = TRAFFIC[direction] * nbytes / (med * 1e-3) / 1e9
                    print(json.dumps({
                        "tool": "torch", "impl": "torch", "layout": c.layout,
                        "logical": list(shape), "shape": list(c.x.shape),
                        "direction": direction, "threads": got,
                        "median_ms": med, "min_ms": min(s), "max_ms": max(s),
                        "runs": len(s), "gbps": gbps}), flush=True)


if __name__ == "__main__":
    main()
