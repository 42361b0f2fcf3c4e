// The tiny default model directory: Hugging Face layout, loaded back through the same loaders as any
// checkpoint, deterministic bytes, and prompt/completion ids that fit the config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildMessages } from '../src/env/prompt';
import { loadConfig } from '../src/model/config';
import { Qwen2ForCausalLM } from '../src/model/qwen2';
import { CHATML_TEMPLATE } from '../src/model/chat_template';
import { chatCorpus, makeTinyModel, tokenLengthStats, TINY_ARCH, type ChatRow } from '../src/model/tiny';
import { ChatTokenizer } from '../src/model/tokenizer';
import { Rng } from '../src/util/rng';

// Stand-in rows in the synthetic rows' shape (compact system prompt + query, gold call as the course writes it).
function standInRows(n: number): ChatRow[] {
  const rng = new Rng(7);
  return Array.from({ length: n }, () => {
    if (rng.next() < 0.5) {
      const t = rng.pick(['AAPL', 'MSFT', 'NVDA', 'TSLA']);
      const d = `2025-01-${String(1 + rng.int(28)).padStart(2, '0')}`;
      return { messages: buildMessages(`What was ${t}'s closing price on ${d}?`), gold_call: `{"name": "get_stock_price", "arguments": {"ticker": "${t}", "date": "${d}"}}` };
    }
    const a = 10 * (1 + rng.int(100));
    return { messages: buildMessages(`Convert ${a} USD to EUR.`), gold_call: `{"name": "convert_currency", "arguments": {"amount": ${a}, "from_currency": "USD", "to_currency": "EUR"}}` };
  });
}
const ROWS = standInRows(200);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-test-'));
const SMALL = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 };

test('chatCorpus renders rows exactly as ChatTokenizer.applyChatTemplate does', async () => {
  const [text] = chatCorpus(ROWS.slice(0, 1));
  const sys = ROWS[0].messages[0].content;
  assert.equal(text, `<|im_start|>system\n${sys}<|im_end|>\n<|im_start|>user\n${ROWS[0].messages[1].content}<|im_end|>\n<|im_start|>assistant\n${ROWS[0].gold_call}<|im_end|>\n`);
});

test('makeTinyModel writes a Hugging Face directory that loads back through fromPretrained + ChatTokenizer', async () => {
  const dir = path.join(root, 'a');
  const info = await makeTinyModel(dir, { seed: 0, rows: ROWS, vocab_size: 400 });
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json']) {
    assert.ok(fs.existsSync(path.join(dir, f)), f);
  }
  const raw = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(raw.model_type, 'qwen2');
  assert.deepEqual(raw.architectures, ['Qwen2ForCausalLM']);
  for (const [k, v] of Object.entries(TINY_ARCH)) assert.equal(raw[k], v, k);
  assert.equal(raw.tie_word_embeddings, true);
  const config = loadConfig(dir);
  const tok = await ChatTokenizer.fromPretrained(dir);
  assert.equal(config.vocab_size, tok.vocab_size);
  assert.equal(config.vocab_size, info.tokenizer.vocab_size);
  assert.equal(config.vocab_size, 400);
  assert.equal(config.eos_token_id, tok.eos_token_id);
  assert.equal(tok.idToToken(tok.eos_token_id), '<|im_end|>');
  assert.equal(tok.idToToken(tok.pad_token_id), '<|endoftext|>');
  const gen = JSON.parse(fs.readFileSync(path.join(dir, 'generation_config.json'), 'utf8'));
  assert.deepEqual(gen.eos_token_id, tok.stop_token_ids);
  assert.equal(tok.chatTemplate(), CHATML_TEMPLATE);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')).model_max_length, TINY_ARCH.max_position_embeddings);

  // One model at a time: tf.Variable names (HF tensor names) are global in tfjs.
  const loaded = new Map<string, Float32Array>();
  const model = await Qwen2ForCausalLM.fromPretrained(dir);
  for (const [name, v] of model.params) loaded.set(name, v.dataSync() as Float32Array);
  model.dispose();
  const again = Qwen2ForCausalLM.random(config, 0);
  let n = 0;
  for (const [name, v] of again.params) {
    n += v.size;
    assert.deepEqual(loaded.get(name), v.dataSync(), name);
  }
  assert.equal(loaded.size, again.params.size);
  again.dispose();
  assert.equal(n, info.num_parameters);
});

test('a tiny model runs on its own tokenizer\'s prompt ids; round trips are exact', async () => {
  const dir = path.join(root, 'small');
  await makeTinyModel(dir, { seed: 1, rows: ROWS, vocab_size: 400, ...SMALL });
  const tok = await ChatTokenizer.fromPretrained(dir);
  const model = await Qwen2ForCausalLM.fromPretrained(dir);
  const before = tf.memory().numTensors;
  const ids = tok.encodeChat(ROWS[0].messages);
  const { logits, past_key_values } = model.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
  assert.deepEqual(logits.shape, [1, ids.length, 400]);
  tf.dispose([logits, ...past_key_values.flatMap((c) => [c.key, c.value])]);
  model.dispose();
  assert.ok(tf.memory().numTensors <= before);
  for (const r of ROWS.slice(0, 20)) {
    const text = tok.applyChatTemplate([...r.messages, { role: 'assistant', content: r.gold_call }]);
    assert.equal(tok.decode(tok.encode(text)), text);
  }
  const stats = tokenLengthStats(tok, ROWS);
  assert.equal(stats.rows, ROWS.length);
  assert.ok(stats.prompt.max + stats.completion.max <= TINY_ARCH.max_position_embeddings);
  assert.ok(stats.completion.mean > 5 && stats.completion.mean <= stats.completion.max);
});

test('same rows and seed => same bytes in every file; another seed changes only the weights', async () => {
  const [a, b, c] = ['d1', 'd2', 'd3'].map((d) => path.join(root, d));
  await makeTinyModel(a, { seed: 5, rows: ROWS, vocab_size: 400, ...SMALL });
  await makeTinyModel(b, { seed: 5, rows: ROWS, vocab_size: 400, ...SMALL });
  await makeTinyModel(c, { seed: 6, rows: ROWS, vocab_size: 400, ...SMALL });
  for (const f of fs.readdirSync(a)) {
    assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f);
    const same = fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(c, f)));
    assert.equal(same, f !== 'model.safetensors', f);
  }
});

test('the tiny CLI writes the directory and prints token-length stats for each split', async () => {
  const { main } = await import('../src/cli/tiny');
  const dir = path.join(root, 'cli');
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    assert.equal(await main(['--out', dir, '--n', '150', '--vocab-size', '512', '--backend', 'cpu']), 0);
  } finally {
    console.log = log;
  }
  const out = JSON.parse(lines[lines.length - 1]);
  assert.equal(out.config.vocab_size, out.tokenizer.vocab_size);
  for (const split of ['train', 'test', 'heldout_tools']) {
    const s = out.token_lengths[split];
    assert.ok(s.rows > 0 && s.prompt.mean > 0 && s.prompt.max >= s.prompt.mean && s.completion.max >= s.completion.mean, split);
  }
  assert.equal(out.token_lengths.train.rows, 150);
  assert.ok(fs.existsSync(path.join(dir, 'model.safetensors')));
});

test('makeTinyModel refuses an empty corpus', async () => {
  await assert.rejects(makeTinyModel(path.join(root, 'e'), { seed: 0, rows: [] }), /rows.*corpus/);
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
