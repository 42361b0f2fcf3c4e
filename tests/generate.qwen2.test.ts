// generate() on a real (random, tiny) Qwen2ForCausalLM with a LoRA adapter, on the wasm backend:
// sampled log-probs = per_token_logps by teacher forcing, cache = full recompute, merged = unmerged, memory flat.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { Qwen2ForCausalLM } from '../src/model/qwen2';
import { addLora } from '../src/model/lora';
import { per_token_logps } from '../src/model/logprobs';
import { generate } from '../src/model/generate';
import { Rng } from '../src/util/rng';

const CONFIG = {
  model_type: 'qwen2', vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128, rope_theta: 10000,
  rms_norm_eps: 1e-6, tie_word_embeddings: true, initializer_range: 0.2,
};
const PAD = 0;
// Different lengths: the batch is left-padded to 9.
const PROMPTS = [[5, 9, 11, 3, 7, 21, 30, 2, 8], [12, 40], [33, 1, 17, 60], [4, 4, 4, 4, 4, 4]];

let model: Qwen2ForCausalLM;

before(async () => {
  await initBackend('wasm');
  model = Qwen2ForCausalLM.random(CONFIG, 7);
  addLora(model, { r: 4, lora_alpha: 8 }, 3);
  // B starts at zero in a fresh adapter; give it weights so merging changes something.
  const r = new Rng(5);
  for (const m of model.adapter.modules.values()) m.B.assign(tf.tensor(Array.from({ length: m.B.size }, () => r.normal() * 0.3), m.B.shape));
});

/** Teacher forcing through per_token_logps on the left-padded [prompt + completion] batch. */
function teacher(prompts: number[][], completions: number[][]): number[][] {
  const P = Math.max(...prompts.map((p) => p.length));
  const K = completions[0].length;
  const ids = prompts.map((p, i) => [...new Array(P - p.length).fill(PAD), ...p, ...completions[i]]);
  const mask = prompts.map((p) => [...new Array(P - p.length).fill(0), ...new Array(p.length + K).fill(1)]);
  return tf.tidy(() => {
    const lp = per_token_logps(model, tf.tensor2d(ids, undefined, 'int32'), { attention_mask: tf.tensor2d(mask, undefined, 'int32'), logits_to_keep: K });
    return lp.arraySync();
  });
}

test('qwen2: sampled log-probs agree with per_token_logps (teacher forcing, left-padded batch, adapter merged)', async () => {
  const out = await generate(model, PROMPTS, { pad_token_id: PAD, max_new_tokens: 10, do_sample: true, temperature: 1, top_k: 20, top_p: 0.95, seed: 1, stop_token_ids: [63] });
  assert.equal(model.adapter.state, 'active');
  const want = teacher(PROMPTS, out.sequences);
  let worst = 0;
  for (let i = 0; i < PROMPTS.length; i++) {
    for (let j = 0; j < out.sequences[i].length; j++) {
      if (!out.completion_mask[i][j]) continue;
      worst = Math.max(worst, Math.abs(want[i][j] - out.logprobs[i][j]));
    }
  }
  assert.ok(worst < 1e-4, `max |sampled - teacher| = ${worst}`);
});

test('qwen2: greedy through the cache = greedy by full recompute; merged = unmerged; base weights restored', async () => {
  const before = tf.tidy(() => [...model.params.values()].map((v) => v.dataSync().slice()));
  const o = { pad_token_id: PAD, max_new_tokens: 12, do_sample: false };
  const cached = await generate(model, PROMPTS, o);
  const full = await generate(model, PROMPTS, { ...o, use_cache: false });
  const unmerged = await generate(model, PROMPTS, { ...o, merge_lora: false });
  assert.deepEqual(cached.forward_lengths, [9, ...new Array(11).fill(1)]);
  assert.deepEqual(cached.sequences, full.sequences);
  assert.deepEqual(cached.sequences, unmerged.sequences);
  for (let i = 0; i < PROMPTS.length; i++) {
    for (let j = 0; j < 12; j++) {
      assert.ok(Math.abs(cached.logprobs[i][j] - full.logprobs[i][j]) < 1e-4);
      assert.ok(Math.abs(cached.logprobs[i][j] - unmerged.logprobs[i][j]) < 1e-4);
    }
  }
  const after = tf.tidy(() => [...model.params.values()].map((v) => v.dataSync().slice()));
  after.forEach((a, i) => assert.deepEqual(a, before[i]));
  // The adapter matters: without it the greedy continuation differs.
  model.adapter.disable();
  const base = await generate(model, PROMPTS, o);
  model.adapter.enable();
  assert.notDeepEqual(base.sequences, cached.sequences);
});

test('qwen2: a prompt alone = the same prompt in a left-padded batch (greedy)', async () => {
  const o = { pad_token_id: PAD, max_new_tokens: 8, do_sample: false };
  const batched = await generate(model, PROMPTS, o);
  for (let i = 0; i < PROMPTS.length; i++) {
    const alone = await generate(model, [PROMPTS[i]], o);
    assert.deepEqual(alone.sequences[0], batched.sequences[i]);
  }
});

test('qwen2: tf.memory().numTensors unchanged after repeated generate calls', async () => {
  const o = { pad_token_id: PAD, max_new_tokens: 6, temperature: 0.9, top_p: 0.9 };
  await generate(model, PROMPTS, { ...o, seed: 0 });
  const n = tf.memory().numTensors;
  for (let s = 1; s < 4; s++) await generate(model, PROMPTS, { ...o, seed: s });
  assert.equal(tf.memory().numTensors, n);
});

test('qwen2: dropping finished rows (KV cache gathered) changes nothing in the outputs', async () => {
  const o = { pad_token_id: PAD, max_new_tokens: 10, temperature: 1.2, seed: 11 };
  const free = await generate(model, PROMPTS, o);
  // Stop on the first token of two rows so they finish at step 1; the others run on.
  const stop = [free.sequences[0][0], free.sequences[1][0]];
  const a = await generate(model, PROMPTS, { ...o, stop_token_ids: stop, compact_finished: false });
  const b = await generate(model, PROMPTS, { ...o, stop_token_ids: stop });
  assert.deepEqual(b.sequences, a.sequences);
  a.logprobs.forEach((r, i) => r.forEach((x, j) => assert.ok(Math.abs(x - b.logprobs[i][j]) < 1e-4)));
  if (a.finish_reasons.includes('length')) assert.ok(Math.min(...b.forward_rows) < PROMPTS.length, `${b.forward_rows}`);
});

test('qwen2: repeated prompts are prefilled once (GRPO groups); outputs equal prefilling every row', async () => {
  // 4 distinct prompts x 3 completions each, groups interleaved with a left-padded batch, one stream per row.
  const prompts = [...PROMPTS, ...PROMPTS, ...PROMPTS];
  const streams = () => prompts.map((_, i) => new Rng(100 + i));
  const o = { pad_token_id: PAD, max_new_tokens: 8, temperature: 1.1, stop_token_ids: [63] };
  const each = await generate(model, prompts, { ...o, rngs: streams(), share_prompts: false });
  const once = await generate(model, prompts, { ...o, rngs: streams() });
  assert.equal(each.forward_rows[0], prompts.length);
  assert.equal(once.forward_rows[0], PROMPTS.length);
  assert.deepEqual(once.sequences, each.sequences);
  assert.deepEqual(once.logprobs, each.logprobs); // the prompt's rows are computed the same way: bit for bit
  assert.deepEqual(once.entropies, each.entropies);
  const n = tf.memory().numTensors;
  await generate(model, prompts, { ...o, rngs: streams() });
  assert.equal(tf.memory().numTensors, n);
});
