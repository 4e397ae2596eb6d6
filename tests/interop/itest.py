"""Small helpers shared by the interop scripts resnet.py, train_e2e.py,
train_threads.py and resnet18_torch.py: checks that print ok/FAIL and are counted, subprocess
calls, ONNX Runtime through ort_run.js, array comparison.

Each script takes --nnplug BIN --source DIR --work DIR (and --testdata DIR
where it needs the reference data), like interop.py, and exits 0 when every
check passed. A missing tool (numpy, onnx, node, onnxruntime-node) is a
failure, never a skip."""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []
checks = [0]


def args(description, testdata=False):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument('--nnplug', default=os.environ.get('NNP_BIN'), required=not
                    os.environ.get('NNP_BIN'))
    ap.add_argument('--source', default=os.environ.get('NNP_SOURCE_DIR',
                                                       os.path.dirname(os.path.dirname(HERE))))
    ap.add_argument('--work', required=True)
    ap.add_argument('--ort-js', default=os.path.join(HERE, 'ort_run.js'))
    ap.add_argument('--testdata', default=os.environ.get('NNP_TESTDATA'),
                    required=testdata and not os.environ.get('NNP_TESTDATA'))
    return ap.parse_args()


def check(ok, what):
    checks[0] += 1
    print('%s  %s' % ('ok  ' if ok else 'FAIL', what))
    sys.stdout.flush()
    if not ok:
        failures.append(what)
    return ok


def finish(name):
    print('%s: %d checks, %d failed' % (name, checks[0], len(failures)))
    for f in failures:
        print('  FAILED: ' + f.splitlines()[0])
    sys.exit(1 if failures or checks[0] == 0 else 0)


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def ort(a, model, out_dir, feeds):
    """ONNX Runtime outputs of model on {name: file.npy} into out_dir; None or the error."""
    r = run(['node', a.ort_js, model, out_dir] + ['%s=%s' % kv for kv in feeds.items()])
    return None if r.returncode == 0 else (r.stderr.strip() or r.stdout.strip() or
                                           'exit %d' % r.returncode)


def ort_batch(a, jobs, work):
    """Several models in one ONNX Runtime process: jobs is a list of (model,
    out_dir, {name: file.npy}); returns the list of errors (None: ok)."""
    import json
    f = os.path.join(work, 'ort_jobs.json')
    with open(f, 'w') as fh:
        json.dump([{'model': m, 'out': o, 'inputs': i} for m, o, i in jobs], fh)
    r = run(['node', a.ort_js, '--batch', f])
    res = []
    for line in r.stdout.splitlines():
        try:
            res.append(json.loads(line))
        except ValueError:
            pass
    if len(res) != len(jobs):
        return ['ort_run.js --batch: %s' % (r.stderr.strip()[-500:] or 'no result')] * len(jobs)
    return [None if j['ok'] else j['error'] for j in res]


def close(got, exp, atol, rtol):
    """(ok, message): same shape and |got - exp| <= atol + rtol |exp| everywhere."""
    got, exp = np.asarray(got, np.float64), np.asarray(exp, np.float64)
    if got.shape != exp.shape:
        return False, 'shape %s vs %s' % (got.shape, exp.shape)
    d = np.abs(got - exp)
    bad = ~(d <= atol + rtol * np.abs(exp))
    worst = float(d.max()) if d.size else 0.0
    rel = float((d / np.maximum(np.abs(exp), 1e-30)).max()) if d.size else 0.0
    msg = 'max |diff| %.3g, max rel %.3g' % (worst, rel)
    if bad.any():
        return False, '%s; %d of %d elements outside atol %g + rtol %g' % (
            msg, int(bad.sum()), d.size, atol, rtol)
    return True, msg


def onnx_check(model):
    """(ok, message) of onnx.checker's full check on a model (path or proto)."""
    import onnx
    try:
        onnx.checker.check_model(onnx.load(model) if isinstance(model, str) else model,
                                 full_check=True)
        return True, ''
    except Exception as e:  # noqa: BLE001
        return False, str(e).splitlines()[0]


def run_vs_ort(a, model, x_file, work, label, tol, ort_model=None):
    """Checks that `nnplug run` and ONNX Runtime both run model (ONNX Runtime:
    ort_model when given) on input x_file (the graph input 'input') and
    agree within tol (atol + rtol) on 'output'."""
    nn_dir, ort_dir = fresh(os.path.join(work, 'nnplug')), fresh(os.path.join(work, 'ort'))
    r = run([a.nnplug, 'run', model, '-i', 'input=' + x_file, '--out-dir', nn_dir])
    check(r.returncode == 0, 'nnplug run %s (%s)' % (label, r.stderr.strip()))
    err = ort(a, ort_model or model, ort_dir, {'input': x_file})
    check(err is None, 'ONNX Runtime runs %s (%s)' % (label, err or ''))
    if r.returncode == 0 and err is None:
        ok, msg = close(np.load(os.path.join(nn_dir, 'output.npy')),
                        np.load(os.path.join(ort_dir, 'output.npy')), tol, tol)
        check(ok, 'ONNX Runtime reproduces nnplug run on %s within %g (%s)' % (label, tol, msg))

