#!/usr/bin/env node
// ort_bench.js — ONNX Runtime (CPU, fp32) on the bench's model, driven line by line by
// bench/bench.py compare so that its passes alternate with ours and PyTorch's.
//
//   NODE_PATH=build/bench/engine/ort/node_modules node bench/ort/ort_bench.js MODEL.onnx CASES THREADS SPIN
//
// MODEL.onnx: bench.py onnx's export of the bench model (inputs input_ids, attention_mask:
// int64 [batch, seq]; output logits).  CASES: bench.py cases' file (the same ids as ours).
// Session: graphOptimizationLevel "all", intraOpNumThreads THREADS, interOpNumThreads 1,
// sequential execution, session.intra_op.allow_spinning SPIN (1 or 0).
// Protocol (stdin → stdout, one line each):
//   (at start)  "ready VERSION LOAD_MS"
//   "run K"     one pass on case K → "ms TIME" (wall clock of session.run, ms)
//   "logits K"  one pass on case K → "logits v v v ..." (batch × labels, row-major)
//   "quit"
'use strict';
const fs = require('fs');
const readline = require('readline');
const ort = require('onnxruntime-node');

function readCases(path) {
  const buf = fs.readFileSync(path);
  if (buf.toString('latin1', 0, 4) !== 'CBBC') throw new Error(path + ': not a cases file');
  let off = 4;
  const n = buf.readInt32LE(off); off += 4;
  const cases = [];
  for (let i = 0; i < n; i++) {
    const b = buf.readInt32LE(off), t = buf.readInt32LE(off + 4), ln = buf.readInt32LE(off + 8);
    off += 12;
    const name = buf.toString('utf8', off, off + ln);
    off += (ln + 3) & ~3;
    const ids = new BigInt64Array(b * t), mask = new BigInt64Array(b * t);
    for (let j = 0; j < b * t; j++) {
      ids[j] = BigInt(buf.readInt32LE(off + 4 * j));
      mask[j] = 1n;
    }
    off += 4 * b * t;
    cases.push({name, b, t,
      feeds: {input_ids: new ort.Tensor('int64', ids, [b, t]), attention_mask: new ort.Tensor('int64', mask, [b, t])}});
  }
  return cases;
}

async function main() {
  const [model, casesPath, threads, spin] = process.argv.slice(2);
  if (!spin) {
    process.stderr.write('usage: ort_bench.js MODEL.onnx CASES THREADS SPIN\n');
    process.exit(2);
  }
  const cases = readCases(casesPath);
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: {session: {intra_op: {allow_spinning: String(spin)}}},
  });
  const version = require('onnxruntime-node/package.json').version;
  const out = session.outputNames[0];
  process.stdout.write(`ready ${version} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)}\n`);
  const rl = readline.createInterface({input: process.stdin, terminal: false});
  for await (const line of rl) {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'quit') break;
    const c = cases[Number(arg)];
    if (!c || (cmd !== 'run' && cmd !== 'logits')) {
      process.stdout.write('error bad command\n');
      continue;
    }
    const s = process.hrtime.bigint();
    const r = await session.run(c.feeds);
    const ms = Number(process.hrtime.bigint() - s) / 1e6;
    if (cmd === 'run') process.stdout.write(`ms ${ms.toFixed(3)}\n`);
    else process.stdout.write('logits ' + Array.from(r[out].data, (v) => v.toPrecision(9)).join(' ') + '\n');
  }
  await session.release();
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
