// Started by tests/parallel.test.ts from a folder outside the project: prints ROOT, then starts a 2-process
// DataParallel (its worker boot script is found from ROOT) and greedy-generates through both ranks.
import * as path from 'node:path';
import { initBackend } from '../../src/model/backend';
import { Qwen2ForCausalLM } from '../../src/model/qwen2';
import { DataParallel } from '../../src/train/parallel';
import { ROOT } from '../../src/util/paths';

console.log(JSON.stringify({ root: ROOT, cwd: process.cwd() }));
await initBackend('wasm', { quiet: true });
const model = await Qwen2ForCausalLM.fromPretrained(path.join(ROOT, 'tests', 'fixtures', 'micro-sft'));
const dp = await DataParallel.start(model, 2);
try {
  const out = await dp.generate([[1, 2, 3], [4, 5, 6]], { max_new_tokens: 2, pad_token_id: 0, do_sample: false });
  console.log(JSON.stringify({ size: dp.size, rows: out.sequences.length }));
} finally {
  await dp.close();
  model.dispose();
}
