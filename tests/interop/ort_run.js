// Runs ONNX models in ONNX Runtime (onnxruntime-node) on .npy inputs and
// writes one float32 .npy per output (named as nnplug run --out-dir does):
//   node ort_run.js MODEL.onnx OUT_DIR NAME=FILE.npy ...
//   node ort_run.js --batch JOBS.json      (many models, one process)
//   node ort_run.js --version
// Exit status: 0 ok, 1 ONNX Runtime refused or failed, 2 usage / bad files /
// onnxruntime-node missing. Also a module: readNpy and loadOrt serve
// bench/resnet_ort.js.
'use strict';
const fs = require('fs');
const path = require('path');

function die(code, msg) {
  process.stderr.write('ort_run.js: ' + msg + '\n');
  process.exit(code);
}

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') die(2, file + ': not an .npy file');
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = b.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) die(2, file + ': unreadable .npy header');
  if (fortran[1] === 'True') die(2, file + ': Fortran order is not supported');
  const dtype = descr[1];
  const dims = shape[1].split(',').map(s => s.trim()).filter(s => s.length).map(Number);
  const n = dims.reduce((a, d) => a * d, 1);
  const off = hstart + hlen;
  const out = new Float32Array(n);
  if (descr[1] === '<f4') {
    for (let i = 0; i < n; i++) out[i] = b.readFloatLE(off + 4 * i);
  } else if (descr[1] === '<f8') {
    for (let i = 0; i < n; i++) out[i] = b.readDoubleLE(off + 8 * i);
  } else {
    die(2, file + ': dtype ' + descr[1] + ' is not supported');
  }
  return { dims, data: out, dtype };
}

// onnxruntime-node, or exit 2 naming NODE_PATH. With `--version` as the
// first argument, prints ORT's version and returns null.
function loadOrt(args) {
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    die(2, 'onnxruntime-node is not installed (NODE_PATH=' + (process.env.NODE_PATH || '') + '): ' + e.message);
  }
  if (args[0] === '--version') {
    process.stdout.write(ort.env.versions.common + '\n');
    return null;
  }
  return ort;
}

function writeNpy(file, dims, data) {
  const shape = '(' + dims.join(', ') + (dims.length === 1 ? ',' : '') + ')';
  let header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ', }';
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const hb = Buffer.alloc(10);
  hb.write('\x93NUMPY', 0, 'latin1');
  hb[6] = 1; hb[7] = 0;
  hb.writeUInt16LE(header.length, 8);
  const db = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; i++) db.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([hb, Buffer.from(header, 'latin1'), db]));
}

function outName(name) {
  // the same file names as nnplug run --out-dir
  return (name.startsWith('.') ? '_' : '') + name.replace(/[^A-Za-z0-9._-]/g, '_') + '.npy';
}

// One model: returns null on success, else the error message.
async function runOne(ort, model, outDir, feeds) {
  const inputs = {};
  for (const [name, file] of Object.entries(feeds)) {
    const a = readNpy(file);
    inputs[name] = new ort.Tensor('float32', a.data, a.dims);
  }
  let session;
  try {
    session = await ort.InferenceSession.create(model);
  } catch (e) {
    return 'ONNX Runtime ' + ort.env.versions.common + ' refused ' + model + ': ' + e.message;
  }
  let results;
  try {
    results = await session.run(inputs);
  } catch (e) {
    return 'ONNX Runtime failed on ' + model + ': ' + e.message;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of session.outputNames) {
    const t = results[name];
    writeNpy(path.join(outDir, outName(name)), t.dims, t.data);
  }
  return null;
}

async function main() {
  const args = process.argv.slice(2);
  const ort = loadOrt(args);
  if (!ort) return;
  if (args[0] === '--batch' && args.length === 2) {
    // JOBS.json: [{"model": ..., "out": ..., "inputs": {"name": "file.npy"}}, ...];
    // one JSON line per job on stdout: {"model", "ok", "error"}
    const jobs = JSON.parse(fs.readFileSync(args[1], 'utf8'));
    for (const j of jobs) {
      const error = await runOne(ort, j.model, j.out, j.inputs);
      process.stdout.write(JSON.stringify({ model: j.model, ok: error === null, error }) + '\n');
    }
    return;
  }
  if (args.length < 2) die(2, 'usage: ort_run.js MODEL.onnx OUT_DIR NAME=FILE.npy ... | --batch JOBS.json | --version');
  const [model, outDir, ...rest] = args;
  const feeds = {};
  for (const f of rest) {
    const eq = f.indexOf('=');
    if (eq <= 0) die(2, 'expected NAME=FILE.npy, got ' + f);
    feeds[f.slice(0, eq)] = f.slice(eq + 1);
  }
  const error = await runOne(ort, model, outDir, feeds);
  if (error) die(1, error);
}

if (require.main === module) main().catch(e => die(1, e.stack || String(e)));

module.exports = { readNpy, loadOrt };
