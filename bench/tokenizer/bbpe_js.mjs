// bbpe_js.mjs — GPT-2's byte-level BPE (r50k_base) from npm's gpt-tokenizer on
// the same corpus, line by line, as bbpe_driver does.
//
//   node bbpe_js.mjs CORPUS [REPEAT] [IDS_OUT]
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.NPM_PREFIX + '/node_modules/');
const { encode } = require('gpt-tokenizer/cjs/encoding/r50k_base');
const version = require('gpt-tokenizer/package.json').version;

const [corpus, repeatArg, idsOut] = process.argv.slice(2);
const repeat = Number(repeatArg || 3);
const text = readFileSync(corpus, 'utf8');
const lines = text.split('\n');
if (lines[lines.length - 1] === '') lines.pop();
const bytes = Buffer.byteLength(text, 'utf8');
let best = Infinity, tokens = 0;
for (let r = 0; r < repeat; r++) {
  const keep = idsOut && r === repeat - 1;
  const out = [];
  tokens = 0;
  const t0 = process.hrtime.bigint();
  for (const line of lines) {
    const ids = encode(line, { allowedSpecial: new Set(), disallowedSpecial: new Set() });
    tokens += ids.length;
    if (keep) out.push(ids.join(' '));
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (keep) writeFileSync(idsOut, out.join('\n') + '\n');
  else if (s < best) best = s;
}
console.log(`gpt-tokenizer ${version} (node ${process.version}): ${lines.length} lines, ${tokens} tokens, ` +
  `best of ${repeat > 1 ? repeat - 1 : 1}: ${best.toFixed(3)} s, ${(bytes / best / 1e6).toFixed(2)} MB/s, ` +
  `${Math.round(tokens / best)} tokens/s`);
