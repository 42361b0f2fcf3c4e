// The pretraining corpus (src/env/corpus.ts) and loop (src/train/pretrain.ts): the corpus is seeded and never
// contains the task (tool names, the call format, request templates); packing keeps every token; a few steps on
// a small model lower the loss and leave no tensor behind; the `pretrain` command writes a loadable HF dir.
// Run: node --import tsx --test tests/pretrain.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { makeTinyModel } from '../src/model/tiny';
import { Qwen2ForCausalLM } from '../src/model/qwen2';
import { ChatTokenizer } from '../src/model/tokenizer';
import { corpusDocument, corpusDocuments } from '../src/env/corpus';
import { TOOLS, CONTROL_ACTIONS } from '../src/env/tools';
import { ASK_USER_TEMPLATES, NO_CALL_TEMPLATES, REFUSE_TEMPLATES, TOOL_TEMPLATES } from '../src/env/templates';
import { COMPANIES, CURRENCIES, TICKERS } from '../src/env/market';
import { Packer, pretrain } from '../src/train/pretrain';
import { PRETRAIN_DEFAULTS } from '../src/train/config';
import { ROOT } from '../src/util/paths';

before(async () => {
  await initBackend('wasm');
});

test('corpus: seeded; covers every ticker, company and currency; never the task itself', () => {
  const docs = corpusDocuments(3000, 7);
  assert.deepEqual(corpusDocuments(3000, 7), docs, 'same seed, same documents');
  assert.notDeepEqual(corpusDocuments(50, 8), docs.slice(0, 50));
  const text = docs.join('\n');
  for (const t of TICKERS) assert.ok(text.includes(t), `ticker ${t}`);
  for (const c of COMPANIES) assert.ok(text.includes(c), `company ${c}`);
  for (const c of CURRENCIES) assert.ok(text.includes(c), `currency ${c}`);
  for (const tool of [...TOOLS, ...CONTROL_ACTIONS]) assert.ok(!text.includes(tool.name), `tool name ${tool.name} in the corpus`);
  assert.ok(!text.includes('"name"') && !text.includes('"arguments"'), 'the call format in the corpus');
  // No request template (its slots matching anything) appears in a document.
  const templates = [...Object.values(TOOL_TEMPLATES).flat(), ...ASK_USER_TEMPLATES.flatMap((g) => g.texts), ...NO_CALL_TEMPLATES, ...REFUSE_TEMPLATES.flatMap((g) => g.texts)];
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const t of templates) {
    if (t.replace(/\{\w+\}/g, ' ').trim().split(/\s+/).length < 4) continue; // too little text of its own to tell
    const re = new RegExp(t.split(/\{\w+\}/).map(esc).join('.+?'), 'i');
    assert.ok(!docs.some((d) => re.test(d)), `template "${t}" in the corpus`);
  }
});

test('packing: sequences of seq_len + 1 ids, documents separated, nothing dropped', () => {
  const docs = ['a b c', 'd e', 'f g h i'];
  let k = 0;
  const enc = (s: string) => s.split(' ').map((w) => w.charCodeAt(0));
  const p = new Packer(enc, () => docs[k++ % docs.length], 0, 4);
  const seqs = [p.sequence(), p.sequence(), p.sequence()];
  assert.ok(seqs.every((s) => s.length === 5));
  assert.deepEqual(seqs.flat(), [0, 97, 98, 99, 0, 100, 101, 0, 102, 103, 104, 105, 0, 97, 98]);
});

test('pretrain: a few steps on a small model lower the loss; no tensor is left behind', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pretrain-test-'));
  await makeTinyModel(dir, { seed: 1, corpus: corpusDocuments(300, 1), vocab_size: 400, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1 });
  const tok = await ChatTokenizer.fromPretrained(dir);
  const model = await Qwen2ForCausalLM.fromPretrained(dir);
  const config = { ...PRETRAIN_DEFAULTS, learning_rate: 1e-2, warmup_ratio: 0, lr_scheduler_type: 'constant' as const, max_steps: 12, logging_steps: 4, per_device_train_batch_size: 4, seq_len: 32, num_processes: 1 };
  const run = (c: typeof config) => pretrain({ model, encode: (t) => tok.encode(t), sep_token_id: tok.encode('<|endoftext|>')[0], pad_token_id: tok.pad_token_id, document: corpusDocument, config: c, progress: false });
  await run({ ...config, max_steps: 1, learning_rate: 0 }); // first use builds the kernels' caches
  const n0 = tf.memory().numTensors;
  const r = await run(config);
  assert.equal(r.history.length, 3);
  assert.equal(r.tokens, 12 * 4 * 32);
  const losses = r.history.map((m) => m.loss);
  assert.ok(losses[2] < losses[0], `loss ${losses.join(' -> ')}`);
  assert.equal(tf.memory().numTensors, n0);
  model.dispose();
});

test('pretrain command: writes a Hugging Face model dir that loads, with its config and metrics', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pretrain-cli-'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/run.ts'), 'pretrain', `--out=${out}`, '--max_steps=2', '--logging_steps=1',
    '--per_device_train_batch_size=2', '--seq_len=16', '--tokenizer_docs=300', '--num_processes=1'], { encoding: 'utf8', cwd: ROOT });
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'pretrain_config.json', 'metrics.jsonl']) {
    assert.ok(fs.existsSync(path.join(out, f)), f);
  }
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 2);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'pretrain_config.json'), 'utf8')).max_steps, 2);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/run.ts'), 'pretrain', `--out=${out}`, '--seq_len=2'], { encoding: 'utf8', cwd: ROOT });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--seq_len: must be >= 8 \(got 2\)/);
});
