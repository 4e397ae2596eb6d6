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
const fs = require('fs');

function die(code, msg) {
  process.stderr.write('resnet_ort.js: ' + msg + '\n');
  process.exit(code);
}

// The first `rows` rows of a float32 .npy file.
function readNpyRows(file, rows) {
  const b = fs.readFileSync(file);
  if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') die(2, file + ': not an .npy file');
  const hlen = b[6] === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = b[6] === 1 ? 10 : 12;
  const header = b.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) die(2, file + ': unreadable .npy header');
  if (descr[1] !== '<f4' || fortran[1] === 'True') die(2, file + ': needs float32 in C order');
  const dims = shape[1].split(',').map(s => s.trim()).filter(s => s.length).map(Number);
  if (dims[0] < rows) die(2, file + ': has ' + dims[0] + ' samples, fewer than the batch ' + rows);
  dims[0] = rows;
  const n = dims.reduce((a, d) => a * d, 1);
  const off = hstart + hlen;
  // copy: the file's data offset need not be 4-byte aligned
  const data = new Float32Array(n);
  Buffer.from(data.buffer).set(b.subarray(off, off + 4 * n));
  return { dims, data };
}

async function main() {
  const args = process.argv.slice(2);
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    die(2, 'onnxruntime-node is not installed (NODE_PATH=' + (process.env.NODE_PATH || '') + '): ' + e.message);
  }
  if (args[0] === '--version') {
    process.stdout.write(ort.env.versions.common + '\n');
    return;
  }
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
