#!/usr/bin/python3
"""nnplug's ONNX interchange against independent tools: ONNX's own node tests,
the malformed-file cases, numpy references, onnx.checker and ONNX Runtime.

    interop.py --nnplug BIN --testdata DIR --source DIR --work DIR [--ort-js FILE] SUITE

SUITE:
  onnx-node   testdata/onnx-node cases through `nnplug run`, checked by compare.py
  torch-export  testdata/torch-export models (PyTorch's exporter: Conv, BN, ReLU,
              MaxPool, GlobalAveragePool, Flatten, Gemm), inference and --training
  bad-inputs  testdata/bad-inputs cases: exit 2, the named words, no output file
  generated   gen_models.py models (Transpose folding, Constant/Identity chains,
              float16/bfloat16/float64, typed fields, external data, training mode,
              opset 6 / IR 3) through `nnplug run`, against numpy references
  export      every generated and onnx-node model exported at opsets 9..17, the
              torch-export models at 9/11/13/15/17 and the Keras JSON models at
              9/13/15/17: onnx.checker full_check, ONNX Runtime
              (onnxruntime-node) outputs equal to `nnplug run` of the same file
              within 1e-5, deterministic bytes, export(import(f)) == f
  keras       `convert a.json b.onnx && convert b.onnx c.json` gives a.json's
              layer configs (TimeDistributed included: its Reshape pair comes back
              through the nnplug.layers metadata)
  cli         exit codes and messages of run / convert / info on bad usage

Needs /usr/bin/python3 (numpy, onnx) and, for `export`, node with
onnxruntime-node on NODE_PATH: without them the suite FAILS (never skips).
Exit status 0 when every check passed."""
import argparse
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if ok:
        print('ok    %s' % what)
    else:
        print('FAIL  %s' % what)
        failures.append(what)
    sys.stdout.flush()
    return ok


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def compare_py(a):
    return [sys.executable, os.path.join(a.testdata, 'compare.py')]


def case_inputs(case_dir):
    with open(os.path.join(case_dir, 'case.json')) as f:
        case = json.load(f)
    return case, {k: os.path.join(case_dir, v['file']) for k, v in case.get('inputs', {}).items()}


def nnplug_run(a, model, inputs, out_dir, extra=()):
    cmd = [a.nnplug, 'run', model]
    for k, v in inputs.items():
        cmd += ['-i', '%s=%s' % (k, v)]
    return run(cmd + ['--out-dir', out_dir] + list(extra))


def close(got_dir, exp_dir, names, atol, rtol):
    """All outputs present, same shapes, |g - e| <= atol + rtol |e|; returns a message."""
    worst = 0.0
    for n in names:
        fn = n + '.npy'
        g, e = os.path.join(got_dir, fn), os.path.join(exp_dir, fn)
        if not os.path.exists(g) or not os.path.exists(e):
            return 'missing %s' % fn
        g, e = np.load(g).astype(np.float64), np.load(e).astype(np.float64)
        if g.shape != e.shape:
            return '%s: shape %s vs %s' % (n, g.shape, e.shape)
        d = np.abs(g - e)
        if not np.all(d <= atol + rtol * np.abs(e)):
            return '%s: max |diff| %.3g' % (n, float(d.max()))
        worst = max(worst, float(d.max()) if d.size else 0.0)
    return 'max |diff| %.3g' % worst


# ---- suites ----------------------------------------------------------------

def suite_onnx_node(a):
    root = os.path.join(a.testdata, 'onnx-node')
    for name in sorted(os.listdir(root)):
        c = os.path.join(root, name)
        _, inputs = case_inputs(c)
        out = fresh(os.path.join(a.work, 'onnx-node', name))
        r = nnplug_run(a, os.path.join(c, 'model.onnx'), inputs, out)
        if not check(r.returncode == 0, 'onnx-node/%s: nnplug run (%s)' % (name, r.stderr.strip())):
            continue
        r = run(compare_py(a) + [c, out])
        check(r.returncode == 0, 'onnx-node/%s: compare.py\n%s' % (name, r.stdout.strip()))


def suite_torch_export(a):
    root = os.path.join(a.testdata, 'torch-export')
    for name in sorted(os.listdir(root)):
        c = os.path.join(root, name)
        case, inputs = case_inputs(c)
        for variant in [None] + sorted(case.get('variants', {})):
            flags = case['variants'][variant].get('run_flags', '').split() if variant else []
            out = fresh(os.path.join(a.work, 'torch-export', name + ('-' + variant if variant
                                                                      else '')))
            r = nnplug_run(a, os.path.join(c, 'model.onnx'), inputs, out, flags)
            what = 'torch-export/%s%s' % (name, ' [%s]' % variant if variant else '')
            if not check(r.returncode == 0, '%s: nnplug run %s (%s)' % (
                    what, ' '.join(flags), r.stderr.strip())):
                continue
            r = run(compare_py(a) + [c, out] + (['--variant', variant] if variant else []))
            check(r.returncode == 0, '%s: compare.py\n%s' % (what, r.stdout.strip()))


def suite_bad_inputs(a):
    root = os.path.join(a.testdata, 'bad-inputs')
    for name in sorted(os.listdir(root)):
        c = os.path.join(root, name)
        _, inputs = case_inputs(c)
        out = fresh(os.path.join(a.work, 'bad-inputs', name))
        r = nnplug_run(a, os.path.join(c, 'model.onnx'), inputs, out)
        err = os.path.join(a.work, 'bad-inputs', name + '.stderr')
        with open(err, 'w') as f:
            f.write(r.stderr)
        rc = r.returncode if r.returncode >= 0 else 128 - r.returncode
        r2 = run(compare_py(a) + [c, out, '--exit-code', str(rc), '--stderr', err, '--strict'])
        check(r2.returncode == 0, 'bad-inputs/%s: exit %d, %s\n%s' % (
            name, rc, r.stderr.strip(), r2.stdout.strip()))


def generate(a):
    # named after the generator's own bytes: an edited gen_models.py regenerates
    with open(os.path.join(HERE, 'gen_models.py'), 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    gen = os.path.join(a.work, 'generated-' + digest)
    if not os.path.isdir(gen):
        # suites may run in parallel: each writes its own copy, the first rename wins
        tmp = '%s.tmp.%d' % (gen, os.getpid())
        r = run([sys.executable, os.path.join(HERE, 'gen_models.py'), tmp])
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            check(False, 'gen_models.py')
            return None
        try:
            os.rename(tmp, gen)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return gen


def suite_generated(a):
    gen = generate(a)
    if not gen:
        return
    for name in sorted(os.listdir(gen)):
        c = os.path.join(gen, name)
        _, inputs = case_inputs(c)
        out = fresh(os.path.join(a.work, 'generated-out', name))
        r = nnplug_run(a, os.path.join(c, 'model.onnx'), inputs, out)
        if not check(r.returncode == 0, 'generated/%s: nnplug run (%s)' % (name, r.stderr.strip())):
            continue
        r = run(compare_py(a) + [c, out])
        check(r.returncode == 0, 'generated/%s: against numpy\n%s' % (name, r.stdout.strip()))


def export_sources(a):
    """(label, model, bindings, data inputs, reference dir or None, output names, opsets)."""
    src = []
    gen = generate(a)
    for name in sorted(os.listdir(gen)) if gen else []:
        c = os.path.join(gen, name)
        case, inputs = case_inputs(c)
        src.append(('generated/' + name, os.path.join(c, 'model.onnx'), {}, inputs,
                    os.path.join(c, 'expected'), list(case['outputs']), range(9, 18)))
    root = os.path.join(a.testdata, 'onnx-node')
    for name in sorted(os.listdir(root)):
        c = os.path.join(root, name)
        case, inputs = case_inputs(c)
        data = {'x': inputs.pop('x')}
        src.append(('onnx-node/' + name, os.path.join(c, 'model.onnx'), inputs, data,
                    os.path.join(c, 'expected'), list(case['outputs']), range(9, 18)))
    root = os.path.join(a.testdata, 'torch-export')
    for name in sorted(os.listdir(root)):
        c = os.path.join(root, name)
        case, inputs = case_inputs(c)
        src.append(('torch-export/' + name, os.path.join(c, 'model.onnx'), {}, inputs,
                    os.path.join(c, 'expected'), list(case['outputs']), (9, 11, 13, 15, 17)))
    root = os.path.join(a.testdata, 'keras-tfjs')
    for name in sorted(os.listdir(root)):
        c = os.path.join(root, name)
        src.append(('keras-tfjs/' + name, os.path.join(c, 'model.json'), {},
                    {None: os.path.join(c, 'inputs', 'Xprobe.npy')}, None, None, (9, 13, 15, 17)))
    return src


def suite_export(a):
    import onnx
    work = fresh(os.path.join(a.work, 'export'))
    r = run(['node', a.ort_js, '--version'])
    if not check(r.returncode == 0, 'onnxruntime-node loads (%s%s)' % (
            r.stdout.strip(), r.stderr.strip())):
        return
    jobs, runs = [], []
    for label, model, binds, data, ref, outs, opsets in export_sources(a):
        tag = label.replace('/', '__')
        for opset in opsets:
            f = os.path.join(work, '%s-op%d.onnx' % (tag, opset))
            cmd = [a.nnplug, 'convert', model, f, '--opset', str(opset)]
            for k, v in binds.items():
                cmd += ['-i', '%s=%s' % (k, v)]
            r = run(cmd)
            if not check(r.returncode == 0 and os.path.exists(f),
                         '%s: convert --opset %d (%s)' % (label, opset, r.stderr.strip())):
                continue
            try:
                m = onnx.load(f)
                onnx.checker.check_model(m, full_check=True)
                ok, msg = True, ''
                want_ir = {9: 4, 10: 5, 11: 6, 12: 7, 13: 7, 14: 7}.get(opset, 8)
                ops = [(o.domain, o.version) for o in m.opset_import]
                if m.ir_version != want_ir or ops != [('', opset)]:
                    ok, msg = False, 'IR %d, opsets %s' % (m.ir_version, ops)
                shapes = set(v.name for v in m.graph.value_info) | \
                    set(v.name for v in m.graph.input) | set(v.name for v in m.graph.output) | \
                    set(t.name for t in m.graph.initializer)
                unknown = [o for n in m.graph.node for o in n.output if o and o not in shapes]
                if unknown:
                    ok, msg = False, 'no value_info for %s' % unknown
                if m.graph.input[0].type.tensor_type.shape.dim[0].dim_param != 'N':
                    ok, msg = False, 'batch dimension is not symbolic "N"'
            except Exception as e:  # noqa: BLE001
                ok, msg = False, str(e).splitlines()[0]
            if not check(ok, '%s: opset %d: onnx.checker full_check, IR version, value infos %s'
                         % (label, opset, msg)):
                continue
            names = [i.name for i in m.graph.input]
            feeds = {(k if k else names[0]): v for k, v in data.items()}
            nn_dir = fresh(os.path.join(work, 'nnplug', '%s-op%d' % (tag, opset)))
            r = nnplug_run(a, f, feeds, nn_dir)
            if not check(r.returncode == 0, '%s: opset %d: nnplug run of the export (%s)' % (
                    label, opset, r.stderr.strip())):
                continue
            ort_dir = os.path.join(work, 'ort', '%s-op%d' % (tag, opset))
            shutil.rmtree(ort_dir, ignore_errors=True)
            jobs.append({'model': f, 'out': ort_dir, 'inputs': feeds})
            runs.append((label, opset, nn_dir, ort_dir, ref,
                         outs or [o.name for o in m.graph.output]))
        # determinism: the same source twice, and export(import(export))
        f1 = os.path.join(work, '%s-a.onnx' % tag)
        f2 = os.path.join(work, '%s-b.onnx' % tag)
        f3 = os.path.join(work, '%s-c.onnx' % tag)
        cmd = []
        for k, v in binds.items():
            cmd += ['-i', '%s=%s' % (k, v)]
        r1 = run([a.nnplug, 'convert', model, f1] + cmd)
        r2 = run([a.nnplug, 'convert', model, f2] + cmd)
        r3 = run([a.nnplug, 'convert', f1, f3])
        check(r1.returncode == r2.returncode == r3.returncode == 0 and
              filecmp.cmp(f1, f2, shallow=False) and filecmp.cmp(f1, f3, shallow=False),
              '%s: deterministic bytes, and export(import(export)) == export' % label)
    jobfile = os.path.join(work, 'jobs.json')
    with open(jobfile, 'w') as fh:
        json.dump(jobs, fh)
    r = run(['node', a.ort_js, '--batch', jobfile])
    results = {}
    for line in r.stdout.splitlines():
        try:
            j = json.loads(line)
            results[j['model']] = j
        except ValueError:
            pass
    check(r.returncode == 0, 'ONNX Runtime batch ran (%s)' % r.stderr.strip()[-500:])
    for (label, opset, nn_dir, ort_dir, ref, outs), job in zip(runs, jobs):
        j = results.get(job['model'])
        if not check(j is not None and j['ok'], '%s: opset %d: ONNX Runtime runs it (%s)' % (
                label, opset, j and j['error'])):
            continue
        msg = close(nn_dir, ort_dir, outs, 1e-5, 1e-5)
        check(msg.startswith('max'), '%s: opset %d: nnplug run == ONNX Runtime within 1e-5 (%s)'
              % (label, opset, msg))
        if ref:
            msg = close(nn_dir, ref, outs, 1e-5, 1e-4)
            check(msg.startswith('max'), '%s: opset %d: against the reference (%s)' % (
                label, opset, msg))


def snake(k):
    out = ''
    for ch in k:
        out += '_' + ch.lower() if ch.isupper() else ch
    return out


def layer_configs(path):
    with open(path) as f:
        j = json.load(f)
    return [(l['class_name'], l['config']) for l in j['config']['layers']
            if l['class_name'] != 'InputLayer']


def suite_keras(a):
    root = os.path.join(a.testdata, 'keras-tfjs')
    work = fresh(os.path.join(a.work, 'keras'))
    for name in sorted(os.listdir(root)):
        src = os.path.join(root, name, 'model.json')
        b, c, d = (os.path.join(work, name + s) for s in ('.onnx', '.json', '.direct.json'))
        r = run([a.nnplug, 'convert', src, b])
        if not check(r.returncode == 0, 'keras-tfjs/%s: convert a.json b.onnx (%s)' % (
                name, r.stderr.strip())):
            continue
        r = run([a.nnplug, 'convert', b, c])
        r2 = run([a.nnplug, 'convert', src, d])
        if not check(r.returncode == 0 and r2.returncode == 0, 'keras-tfjs/%s: convert b.onnx '
                     'c.json (%s%s)' % (name, r.stderr.strip(), r2.stderr.strip())):
            continue
        got, direct = layer_configs(c), layer_configs(d)
        check(got == direct, 'keras-tfjs/%s: c.json layer configs == a.json read and written '
              'directly' % name)
        ok, bad = True, []
        for (cls_a, cfg_a), (cls_c, cfg_c) in zip(layer_configs(src), got):
            ok &= cls_a == cls_c
            for k, v in cfg_a.items():
                k2 = snake(k)
                if k2 in ('batch_input_shape', 'dtype'):
                    continue
                if cfg_c.get(k2) != v:
                    ok = False
                    bad.append('%s: %r vs %r' % (k2, v, cfg_c.get(k2)))
        check(ok and len(got) == len(layer_configs(src)),
              'keras-tfjs/%s: every key of a.json kept exactly %s' % (name, bad[:3]))


def suite_cli(a):
    work = fresh(os.path.join(a.work, 'cli'))
    c = os.path.join(a.testdata, 'onnx-node', 'test_batchnorm_example')
    model = os.path.join(c, 'model.onnx')
    _, inputs = case_inputs(c)
    out = os.path.join(work, 'out')
    binds = []
    for k in ('s', 'bias', 'mean', 'var'):
        binds += ['-i', '%s=%s' % (k, inputs[k])]

    def expect(cmd, code, words, what, no_files=True):
        r = run(cmd)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        ok = r.returncode == code and (code == 0 or len(lines) == 1) and \
            all(w in r.stderr for w in words)
        if no_files:
            ok &= os.listdir(work) == []
        check(ok, 'cli: %s: exit %d (%s)' % (what, r.returncode, r.stderr.strip()))
        return r

    expect([a.nnplug, 'run', model, '-i', 'x=' + inputs['x'], '--out-dir', out], 2,
           ["graph input 's'", model], 'unbound parameter input')
    expect([a.nnplug, 'run', model, '-i', 'x=' + inputs['x'], '-i', 'nope=' + inputs['x']] + binds
           + ['--out-dir', out], 2, ["'nope'"], 'unknown input name')
    expect([a.nnplug, 'run', model] + binds + ['--out-dir', out], 2, ["input 'x'"],
           'input not given')
    expect([a.nnplug, 'run', model, '-i', inputs['s']] + binds + ['--out-dir', out], 2,
           ['input'], 'wrong shape')
    expect([a.nnplug, 'run', model, '-i', 'x=' + inputs['x']] + binds + ['-o', 'zz=' + out], 2,
           ['zz'], 'unknown output name')
    expect([a.nnplug, 'run', model, '-i', 'x=/nonexistent.npy'] + binds, 2, ['/nonexistent.npy'],
           'missing input file')
    expect([a.nnplug, 'run', '/nonexistent.onnx', '-i', 'x=' + inputs['x']], 2,
           ['/nonexistent.onnx'], 'missing model')
    expect([a.nnplug, 'run', model, '--threads', '0'], 2, ['--threads'], 'bad --threads')
    expect([a.nnplug, 'run', model, '--threads', '5000'], 2, ['--threads', '1024'],
           '--threads above the maximum every command shares')
    expect([a.nnplug, 'convert', model, os.path.join(work, 'm.onnx'), '--opset', '8'] + binds, 2,
           ['opset'], 'opset outside 9..17')
    expect([a.nnplug, 'convert', model, os.path.join(work, 'm.txt')] + binds, 2, ['m.txt'],
           'unknown output format')
    expect([a.nnplug, 'convert', model, os.path.join(work, 'm.json'), '--fold-bn'] + binds, 2,
           ['--fold-bn', 'm.json'], '--fold-bn to .json')
    expect([a.nnplug, 'convert', os.path.join(a.testdata, 'bad-inputs', 'truncated', 'model.onnx'),
            os.path.join(work, 'm.onnx')], 2, ['truncated', 'protobuf'], 'convert a malformed file')
    # success paths: -o NAME=FILE, unnamed -i, --training, --threads, info
    f = os.path.join(work, 'y.npy')
    r = expect([a.nnplug, 'run', model, '-i', inputs['x']] + binds + ['-o', 'y=' + f,
               '--threads', '2'], 0, [], '-i FILE without a name, -o NAME=FILE', no_files=False)
    exp = np.load(os.path.join(c, 'expected', 'y.npy'))
    check(r.returncode == 0 and np.allclose(np.load(f), exp, atol=1e-5, rtol=1e-4),
          'cli: -o output equals the expected array')
    os.remove(f)
    r = expect([a.nnplug, 'run', model, '-i', inputs['x']] + binds + ['-o', 'y=' + f,
               '--training'], 0, [], '--training', no_files=False)
    x = np.load(inputs['x']).astype(np.float64)
    s, b = np.load(inputs['s']), np.load(inputs['bias'])
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    want = (s[None, :, None, None] * (x - mu[None, :, None, None]) /
            np.sqrt(var[None, :, None, None] + 1e-5) + b[None, :, None, None])
    check(r.returncode == 0 and np.allclose(np.load(f), want, atol=1e-5, rtol=1e-4),
          'cli: --training uses batch statistics')
    os.remove(f)
    r = run([a.nnplug, 'info', model])
    check(r.returncode == 0 and 'BatchNormalization' in r.stdout and 'parameter inputs' in r.stdout
          and '12 params' in r.stdout, 'cli: info (%s)' % r.stderr.strip())
    r = run([a.nnplug, 'info', os.path.join(a.testdata, 'keras-tfjs', 'defaults_2d', 'model.json')])
    check(r.returncode == 0 and 'BatchNormalization' in r.stdout, 'cli: info on Keras JSON (%s)'
          % r.stderr.strip())


SUITES = {'onnx-node': suite_onnx_node, 'torch-export': suite_torch_export,
          'bad-inputs': suite_bad_inputs,
          'generated': suite_generated, 'export': suite_export, 'keras': suite_keras,
          'cli': suite_cli}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--nnplug', required=True)
    ap.add_argument('--testdata', required=True)
    ap.add_argument('--source', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--ort-js', default=os.path.join(HERE, 'ort_run.js'))
    ap.add_argument('suite', choices=sorted(SUITES) + ['all'])
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    for name, fn in SUITES.items():
        if a.suite in (name, 'all'):
            fn(a)
    print('%d checks, %d failed' % (checks, len(failures)))
    for f in failures:
        print('FAILED: ' + f.splitlines()[0])
    sys.exit(1 if failures or not checks else 0)


if __name__ == '__main__':
    main()
