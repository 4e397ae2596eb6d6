// ONNX Runtime's side of bench/resnet_compare.sh: inference time of one
// batch of an ONNX model in onnxruntime-node (CPU execution provider).
//   node bench/resnet_ort.js MODEL.onnx X.npy --batch B [--threads N]
//        [--warmup W] [--reps R] [--config NAME]
//   node bench/resnet_ort.js --version
// Session options: intraOpNumThreads N, interOpNumThreads 1, sequential
// execution, graphOptimizationLevel 'all' (ORT then folds the
// BatchNormalization nodes into the convolutions, as it does for any eval
// model). The input is the first B samples of X.npy (float32, C order), fed
// to the model's only input; W untimed runs, then R timed ones.
// Output: one JSON line {"framework": "ort", "kind": "infer", "median_ms",
// "ms": [...], "session_ms", ...}. onnxruntime-node must be on NODE_PATH
// (tests/interop/setup_ort.sh installs it). Exit status 2: usage or missing
// module, 1: ONNX Runtime failed.
'use strict';
const path = require('path');
const { readNpy, loadOrt } = require(path.join(__dirname, '..', 'tests', 'interop', 'ort_run.js'));

function die(code, msg) {
  process.stderr.write('resnet_ort.js: ' + msg + '\n');
  process.exit(code);
}

// The first `rows` rows of a float32 .npy file.
function readNpyRows(file, rows) {
  const x = readNpy(file);
  if (x.dtype !== '<f4') die(2, file + ': needs float32 in C order');
  if (x.dims[0] < rows) die(2, file + ': has ' + x.dims[0] + ' samples, fewer than the batch ' + rows);
  const dims = [rows, ...x.dims.slice(1)];
  return { dims, data: x.data.subarray(0, dims.reduce((n, d) => n * d, 1)) };
}

async function main() {
  const args = process.argv.slice(2);
  const ort = loadOrt(args);
  if (!ort) return;
  const opt = { batch: 0, threads: 1, warmup: 1, reps: 5, config: '' };
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    const m = /^--(batch|threads|warmup|reps|config)$/.exec(args[i]);
    if (m && i + 1 < args.length) {
      opt[m[1]] = m[1] === 'config' ? args[++i] : Number(args[++i]);
    } else if (args[i].startsWith('--')) {
      die(2, 'unknown option ' + args[i]);
    } else {
      pos.push(args[i]);
    }
  }
  if (pos.length !== 2 || !(opt.batch > 0) || !(opt.threads > 0) || !(opt.reps > 0) || !(opt.warmup >= 0)) {
    die(2, 'usage: resnet_ort.js MODEL.onnx X.npy --batch B [--threads N] [--warmup W] [--reps R] [--config NAME]');
  }
  const [model, xfile] = pos;
  const x = readNpyRows(xfile, opt.batch);
  let session;
  const t0 = process.hrtime.bigint();
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: opt.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    die(1, 'ONNX Runtime ' + ort.env.versions.common + ' refused ' + model + ': ' + e.message);
  }
  const sessionMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (session.inputNames.length !== 1) die(1, model + ': expected one input, got ' + session.inputNames.join(', '));
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) };
  const ms = [];
  for (let r = 0; r < opt.warmup + opt.reps; r++) {
    const s = process.hrtime.bigint();
    try {
      await session.run(feeds);
    } catch (e) {
      die(1, 'ONNX Runtime failed on ' + model + ': ' + e.message);
    }
    const dt = Number(process.hrtime.bigint() - s) / 1e6;
    if (r >= opt.warmup) ms.push(dt);
  }
  const sorted = ms.slice().sort((a, b) => a - b);
  const k = sorted.length;
  const median = k % 2 ? sorted[(k - 1) / 2] : (sorted[k / 2 - 1] + sorted[k / 2]) / 2;
  process.stdout.write(JSON.stringify({
    framework: 'ort', version: ort.env.versions.common, kind: 'infer', config: opt.config,
    threads: opt.threads, batch: opt.batch, median_ms: median, ms, session_ms: sessionMs,
  }) + '\n');
  if (session.release) await session.release();
}

main().catch(e => die(1, e.stack || String(e)));
