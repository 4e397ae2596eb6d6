#!/usr/bin/python3
"""Helpers of bench/resnet_compare.sh (run with an interpreter that has
numpy; `prep` also needs onnx, torch and torchvision):

    resnet_run.py prep [--config NAME] WORK SIZE BATCH SAMPLES
        WORK/model.onnx: tools/export_torchvision_resnet18.py's torchvision
        ResNet-18 (1000 classes, seed 0, BatchNormalization kept, opset 15)
        with the input fixed at BATCH x 3 x SIZE x SIZE; WORK/x.npy (SAMPLES
        seeded N(0,1) images, float32 NCHW) and WORK/y.npy (int64 labels in
        0..999); WORK/meta.json with the forward FLOPs, also printed as a
        JSON line. Files already there for the same arguments are kept.
    resnet_run.py flops MODEL.onnx
        forward FLOPs per sample: 2 x MACs of every Conv and Gemm (MatMul),
        from the shapes ONNX shape inference gives; the other nodes
        (BatchNormalization, Relu, pools, Add) are not counted.
    resnet_run.py train-nnplug --config C --threads N --warmup W --steps S
                  --batch B -- NNPLUG train ...
    resnet_run.py train-torch --config C --threads N -- PYTHON resnet_torch.py train ...
        run the command, its stderr into WORK/*.log lines stamped with the
        time they arrived; print one JSON line with the run's peak resident
        memory (getrusage RUSAGE_CHILDREN: this process runs one child) and
        its samples/s per epoch (see below); exit status 1 if it failed.
    resnet_run.py infer-nnplug --config C --threads N -- NNPLUG bench ... --json
        one JSON line from `nnplug bench --json`'s object.
    resnet_run.py table RESULTS.jsonl [--stat median|best]
        the combined table.

nnplug's training rate: `nnplug train` prints "Epoch k/E ... R samples/s"
after each epoch, R by the fit loop's own clock over that epoch's steps
(the checkpoint save that follows is not timed), but rounded to an integer:
too coarse when an epoch takes seconds (224x224: 5-7 samples/s, +-10%).
On a terminal it also redraws a progress line after every step. So
train-nnplug gives its stderr a pseudo-terminal, stamps each line with the
time its last byte arrived, and takes epoch k's rate as (S-1) x B over the
time from the line of its first step to the line of its last step (S steps
of B samples; the first step, which also shuffles, is left out). Both the
printed rates ("printed") and these ("rates", what the table uses) are in
the JSON line; a warning goes to stderr when they differ by more than the
rounding and 5%. The first W epochs are dropped."""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def flops_per_sample(path):
    import onnx
    from onnx import shape_inference
    m = shape_inference.infer_shapes(onnx.load(path))
    shapes = {}
    for v in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        dims = v.type.tensor_type.shape.dim
        # a symbolic dimension (a dynamic batch) counts as 1
        shapes[v.name] = [d.dim_value if d.HasField('dim_value') else 1 for d in dims]
    for t in m.graph.initializer:
        shapes[t.name] = list(t.dims)
    batch = shapes[m.graph.input[0].name][0]
    total = 0
    for n in m.graph.node:
        if n.op_type == 'Conv':
            w, y = shapes[n.input[1]], shapes[n.output[0]]
            cin_per_group = w[1]   # the weight is [Cout, Cin / group, kh, kw]
            k = 1
            for d in w[2:]:
                k *= d
            out = 1
            for d in y:
                out *= d
            total += 2 * out * cin_per_group * k
        elif n.op_type in ('Gemm', 'MatMul'):
            a, y = shapes[n.input[0]], shapes[n.output[0]]
            trans_a = next((a_.i for a_ in n.attribute if a_.name == 'transA'), 0)
            kdim = a[-2] if (n.op_type == 'Gemm' and trans_a) else a[-1]
            out = 1
            for d in y:
                out *= d
            total += 2 * out * kdim
    return total / batch


def prep(a):
    os.makedirs(a.work, exist_ok=True)
    meta_path = os.path.join(a.work, 'meta.json')
    want = {'size': a.size, 'batch': a.batch, 'samples': a.samples, 'seed': 0}
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        if all(meta.get(k) == v for k, v in want.items()) and all(
                os.path.exists(os.path.join(a.work, f)) for f in ('model.onnx', 'x.npy', 'y.npy')):
            print(json.dumps(dict(meta, kind='config', config=a.config)))
            return
    except (OSError, ValueError):
        pass
    import numpy as np
    model = os.path.join(a.work, 'model.onnx')
    subprocess.run([sys.executable, os.path.join(HERE, '..', 'tools',
                                                 'export_torchvision_resnet18.py'), model,
                    '--input-shape', '%d,3,%d,%d' % (a.batch, a.size, a.size), '--seed', '0'],
                   check=True, stdout=subprocess.DEVNULL)
    r = np.random.RandomState(0)
    np.save(os.path.join(a.work, 'x.npy'),
            r.normal(0, 1, (a.samples, 3, a.size, a.size)).astype(np.float32))
    np.save(os.path.join(a.work, 'y.npy'), r.randint(0, 1000, a.samples).astype(np.int64))
    meta = dict(want, flops_per_sample=flops_per_sample(model))
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    print(json.dumps(dict(meta, kind='config', config=a.config)))


def run_stamped(cmd, log, tty=False):
    """Runs cmd; its stderr goes to log, each line (split at \\n and \\r)
    stamped with the seconds since the start at which it arrived. tty: stderr
    is a pseudo-terminal (nnplug train then prints a progress line after
    every step). Returns (rc, stdout text, [(t, line)], t_exit, max_rss_kib)."""
    import pty
    import tempfile
    lines = []
    t0 = time.perf_counter()
    with open(log, 'w') as lf, tempfile.TemporaryFile() as out:
        if tty:
            rfd, wfd = pty.openpty()
        else:
            rfd, wfd = os.pipe()
        p = subprocess.Popen(cmd, stdout=out, stderr=wfd, stdin=subprocess.DEVNULL)
        os.close(wfd)
        buf, buf_t = b'', 0.0   # the line being read, the time its last byte came

        def emit(raw, t):
            line = raw.decode(errors='replace').rstrip()
            if line:
                lines.append((t, line))
                lf.write('%10.4f %s\n' % (t, line))

        while True:
            try:
                chunk = os.read(rfd, 65536)
            except OSError:   # EIO: the pseudo-terminal's other side closed
                chunk = b''
            t = time.perf_counter() - t0
            if not chunk:
                break
            for piece in re.split(rb'([\r\n])', chunk):
                if piece in (b'\r', b'\n'):
                    emit(buf, buf_t)
                    buf = b''
                elif piece:
                    buf, buf_t = buf + piece, t
        emit(buf, buf_t)
        os.close(rfd)
        rc = p.wait()
        t_exit = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors='replace')
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return rc, text, lines, t_exit, rss


STEP_RE = re.compile(r'Epoch (\d+)/\d+ \[[^]]*\] (\d+)/(\d+) loss')
EPOCH_RE = re.compile(r'^Epoch (\d+)/\d+ loss .* ([0-9.]+) samples/s')


def train_nnplug(a):
    rc, out, lines, t_exit, rss = run_stamped(a.cmd, a.log, tty=True)
    if rc != 0:
        sys.stderr.write('resnet_run.py: nnplug train failed (exit %d); its log, %s:\n' % (rc, a.log))
        sys.stderr.write(''.join(l + '\n' for _, l in lines[-20:]))
        sys.exit(1)
    printed, first, last = {}, {}, {}
    for t, l in lines:
        m = STEP_RE.search(l)
        if m:
            e, s = int(m.group(1)), int(m.group(2))
            if s == 1:
                first[e] = t
            if s == int(m.group(3)):
                last[e] = t
            continue
        m = EPOCH_RE.search(l)
        if m:
            printed[int(m.group(1))] = float(m.group(2))
    keep = [e for e in sorted(printed) if e > a.warmup]
    rates = []
    for e in keep:
        if a.steps >= 2 and e in first and e in last and last[e] > first[e]:
            s = (a.steps - 1) * a.batch / (last[e] - first[e])
        else:
            s = printed[e]
        rates.append(s)
        p = printed[e]
        if abs(s - p) > 0.5 + 0.05 * p:
            sys.stderr.write('resnet_run.py: warning: %s t%d epoch %d: %.2f samples/s from the '
                             'step stamps, %.0f printed\n' % (a.config, a.threads, e, s, p))
    if not rates:
        sys.stderr.write('resnet_run.py: no timed epochs in %s\n' % a.log)
        sys.exit(1)
    print(json.dumps({'framework': 'nnplug', 'kind': 'train', 'config': a.config,
                      'threads': a.threads, 'batch': a.batch, 'steps': a.steps,
                      'rates': rates, 'printed': [printed[e] for e in keep],
                      'wall_s': t_exit, 'max_rss_kib': rss}))


def train_torch(a):
    rc, out, lines, t_exit, rss = run_stamped(a.cmd, a.log)
    if rc != 0:
        sys.stderr.write('resnet_run.py: PyTorch training failed (exit %d):\n' % rc)
        sys.stderr.write(''.join(l + '\n' for _, l in lines[-20:]))
        sys.exit(1)
    j = json.loads(out.strip().splitlines()[-1])
    j.update(wall_s=t_exit, max_rss_kib=rss)
    print(json.dumps(j))


def infer_nnplug(a):
    p = subprocess.run(a.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.stderr.write('resnet_run.py: nnplug bench failed (exit %d):\n%s' % (
            p.returncode, p.stderr.decode(errors='replace')))
        sys.exit(1)
    j = json.loads(p.stdout.decode())
    print(json.dumps({'framework': 'nnplug', 'kind': 'infer', 'config': a.config,
                      'threads': a.threads, 'batch': j.get('batch'),
                      'median_ms': j['median_ms'], 'min_ms': j['min_ms'],
                      'max_ms': j['max_ms'], 'reps': j.get('reps')}))


# ---- the table ---------------------------------------------------------------

def table(a):
    recs = [json.loads(l) for l in open(a.results) if l.strip()]
    best_of = a.stat == 'best'
    meta = next((r for r in recs if r.get('kind') == 'header'), {})
    peak = {r['threads']: r['gflops'] for r in recs if r.get('bench') == 'fma_peak'}
    peak_isa = next((r['isa'] for r in recs if r.get('bench') == 'fma_peak'), '?')
    conf = {r['config']: r for r in recs if r.get('kind') == 'config'}
    train, infer, rss = {}, {}, {}
    for r in recs:
        k = (r.get('framework'), r.get('config'), r.get('threads'))
        if r.get('kind') == 'train':
            train.setdefault(k, []).extend(r['rates'])
            rss.setdefault(k, []).append(r['max_rss_kib'])
        elif r.get('kind') == 'infer':
            # one value per round: that round's median (nnplug bench reports
            # only its median); the rounds' medians are then pooled
            infer.setdefault(k, []).append(r['median_ms'])

    def pick(v, better):
        return better(v) if best_of else statistics.median(v)

    def noisy(v, low_is_good):
        # the median over 1.5x worse than the best: a busy machine
        if len(v) < 2:
            return False
        m, b = statistics.median(v), (min(v) if low_is_good else max(v))
        return (m / b if low_is_good else b / m) > 1.5

    configs = [c for c in meta.get('configs', []) if c in conf]
    threads = meta.get('threads', [])
    print()
    print('ResNet-18 (torchvision, 1000 classes): %s' % meta.get('nnplug', 'nnplug ?'))
    print('CPU: %s, %s processors; threads: %s; rounds: %s; %s; load at start %s' % (
        meta.get('cpu', '?'), meta.get('nproc', '?'), ' '.join(map(str, threads)),
        meta.get('rounds', '?'), 'best of the pooled values' if best_of else
        'medians of the pooled values', meta.get('load', '?')))
    print('peers: PyTorch %s; ONNX Runtime %s (onnxruntime-node)' % (
        meta.get('torch', '?'), meta.get('ort', '-')))
    print('FMA peak (bench/fma_peak, %s): %s' % (peak_isa, ', '.join(
        '%d thread%s %.0f GFLOP/s' % (t, '' if t == 1 else 's', peak[t]) for t in sorted(peak))))
    for c in configs:
        f = conf[c]
        print('  %dx%d batch %d: %.3f GFLOP per forward batch (Conv+Gemm); training step = 3x'
              % (f['size'], f['size'], f['batch'], f['flops_per_sample'] * f['batch'] / 1e9))
    print()
    h1 = ' ' * 26 + ' training '.center(33, '-') + ' ' * 7 + ' inference '.center(23, '-') \
        + '  ' + ' peer / nnplug '.center(20, '-')
    h2 = '%-14s %-9s  %9s %7s %6s %8s  %3s  %8s %7s %6s  %6s %6s %6s' % (
        'config', 'framework', 'samples/s', 'GFLOP/s', '%peak', 'maxRSS', '', 'ms/batch',
        'GFLOP/s', '%peak', 'train', 'infer', 'mem')
    print(h1)
    print(h2)
    print('-' * len(h2))
    names = (('nnplug', 'nnplug'), ('torch', 'PyTorch'), ('ort', 'ORT'))
    for c in configs:
        fl, bs, size = conf[c]['flops_per_sample'], conf[c]['batch'], conf[c]['size']
        for t in threads:
            pk = peak.get(t)
            label = '%dx%d b%d %dt' % (size, size, bs, t)
            base_tr = train.get(('nnplug', c, t))
            base_in = infer.get(('nnplug', c, t))
            base_mem = rss.get(('nnplug', c, t))
            base_tr = pick(base_tr, max) if base_tr else None
            base_in = pick(base_in, min) if base_in else None
            base_mem = max(base_mem) if base_mem else None
            for fw, name in names:
                k = (fw, c, t)
                tr, inf, mem = train.get(k), infer.get(k), rss.get(k)
                if not (tr or inf):
                    continue
                cols = []
                flag = ''
                if tr:
                    v = pick(tr, max)
                    gf = 3 * fl * v / 1e9
                    flag += '!' if noisy(tr, False) else ''
                    cols.append('%9s %7.1f %5.1f%% %7.0fM' % (
                        '%.2f' % v if v < 100 else '%.1f' % v, gf,
                        100 * gf / pk if pk else float('nan'), max(mem) / 1024))
                else:
                    cols.append('%9s %7s %6s %8s' % ('-', '-', '-', '-'))
                if inf:
                    v_in = pick(inf, min)
                    gf = fl * bs / (v_in / 1e3) / 1e9
                    flag += '!' if noisy(inf, True) else ''
                    cols.append('%8.2f %7.1f %5.1f%%' % (v_in, gf, 100 * gf / pk if pk else
                                                         float('nan')))
                else:
                    cols.append('%8s %7s %6s' % ('-', '-', '-'))
                if fw == 'nnplug':
                    ratios = ''
                else:
                    r_tr = '%.2fx' % (base_tr / pick(tr, max)) if tr and base_tr else '-'
                    r_in = '%.2fx' % (pick(inf, min) / base_in) if inf and base_in else '-'
                    r_mem = '%.2fx' % (max(mem) / base_mem) if mem and base_mem else '-'
                    ratios = '%6s %6s %6s' % (r_tr, r_in, r_mem)
                print(('%-14s %-9s  %s  %-3s  %s  %s' % (label if fw == 'nnplug' else '', name,
                                                        cols[0], flag, cols[1], ratios)).rstrip())
    print()
    print('peer / nnplug: train = nnplug samples/s / peer samples/s, infer = peer ms / nnplug ms')
    print('(both: peer time / nnplug time, > 1: nnplug faster); mem = peer maxRSS / nnplug maxRSS')
    print('(> 1: nnplug uses less). samples/s: every timed epoch of every round pooled; ms/batch:')
    print('the rounds\' medians pooled. maxRSS: peak resident memory of the training process')
    print('(largest over the rounds). GFLOP/s: Conv+Gemm FLOPs only, training = 3x forward;')
    print('%peak: of the FMA peak at the same thread count. !: a median over 1.5x off the best')
    print('value (someone else was using the machine).')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='what', required=True)
    p = sub.add_parser('prep')
    p.add_argument('--config', default='')
    p.add_argument('work')
    p.add_argument('size', type=int)
    p.add_argument('batch', type=int)
    p.add_argument('samples', type=int)
    p = sub.add_parser('flops')
    p.add_argument('model')
    for name in ('train-nnplug', 'train-torch', 'infer-nnplug'):
        p = sub.add_parser(name)
        p.add_argument('--config', required=True)
        p.add_argument('--threads', type=int, required=True)
        p.add_argument('--log', default=os.devnull)
        p.add_argument('--warmup', type=int, default=1)
        p.add_argument('--steps', type=int, default=1)
        p.add_argument('--batch', type=int, default=1)
        p.add_argument('cmd', nargs=argparse.REMAINDER)
    p = sub.add_parser('table')
    p.add_argument('results')
    p.add_argument('--stat', choices=('median', 'best'), default='median')
    a = ap.parse_args()
    if hasattr(a, 'cmd') and a.cmd and a.cmd[0] == '--':
        a.cmd = a.cmd[1:]
    if a.what == 'prep':
        prep(a)
    elif a.what == 'flops':
        print(flops_per_sample(a.model))
    elif a.what == 'train-nnplug':
        train_nnplug(a)
    elif a.what == 'train-torch':
        train_torch(a)
    elif a.what == 'infer-nnplug':
        infer_nnplug(a)
    else:
        table(a)


if __name__ == '__main__':
    main()
