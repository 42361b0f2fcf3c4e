// The fused decode step (src/model/decode.ts) against Qwen2ForCausalLM.forward with a KV cache: left-padded
// rows, a prefill fanned out to repeated rows, compaction, capacity; generate through it = generate without it.
// Run: node --import tsx --test tests/decode.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { Qwen2ForCausalLM, disposeCache, type KVCache } from '../src/model/qwen2';
import { addLora } from '../src/model/lora';
import { FusedDecoder } from '../src/model/decode';
import { generate } from '../src/model/generate';
import { Rng } from '../src/util/rng';
import { ROOT } from '../src/util/paths';

const CONFIG = {
  model_type: 'qwen2', vocab_size: 64, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128, rope_theta: 10000,
  rms_norm_eps: 1e-6, tie_word_embeddings: true, initializer_range: 0.2,
};
// head_dim 16; prompts of different lengths (left-padded to 9)
const PROMPTS = [[5, 9, 11, 3, 7, 21, 30, 2, 8], [12, 40], [33, 1, 17, 60], [4, 4, 4, 4, 4, 4]];

let model: Qwen2ForCausalLM;
before(async () => {
  await initBackend('wasm');
  model = Qwen2ForCausalLM.random(CONFIG, 7);
  // non-zero biases, so the fused q|k|v bias is checked too
  const r = new Rng(2);
  for (const [n, v] of model.params) if (n.endsWith('.bias')) v.assign(tf.tensor(Array.from({ length: v.size }, () => r.normal() * 0.1), v.shape));
});

function padded(prompts: number[][]): { ids: number[][]; mask: number[][]; pos: number[][]; P: number } {
  const P = Math.max(...prompts.map((p) => p.length));
  return {
    P,
    ids: prompts.map((p) => [...new Array(P - p.length).fill(0), ...p]),
    mask: prompts.map((p) => [...new Array(P - p.length).fill(0), ...p.map(() => 1)]),
    pos: prompts.map((p) => [...new Array(P - p.length).fill(0), ...p.map((_, j) => j)]),
  };
}

/** tf.tidy for results that hold tensors the caller keeps (tidy's types only take TensorContainers). */
function tidyKept<T>(f: () => T): T {
  return tf.tidy(f as unknown as () => tf.TensorContainer) as unknown as T;
}

function maxDiff(a: Float32Array | number[], b: Float32Array | number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('FusedDecoder: step logits = forward with the cache (left padding, fanned-out prefill, compaction)', () => {
  assert.ok(FusedDecoder.supported(model.config));
  const { ids, mask, pos, P } = padded(PROMPTS);
  // forward reference on the 6 rows [0, 1, 2, 3, 1, 2] (rows 4, 5 repeat prompts 1, 2)
  const src = [0, 1, 2, 3, 1, 2];
  const steps = 5;
  const r = new Rng(3);
  const toks = Array.from({ length: steps }, () => src.map(() => 1 + r.int(62)));
  let cache: KVCache = tidyKept(() => {
    const res = model.forwardHidden(tf.tensor2d(src.map((u) => ids[u]), undefined, 'int32'), { attention_mask: tf.tensor2d(src.map((u) => mask[u]), undefined, 'int32'), position_ids: tf.tensor2d(src.map((u) => pos[u]), undefined, 'int32') });
    for (const c of res.past_key_values) tf.keep(c.key) && tf.keep(c.value);
    return res.past_key_values;
  });
  const want: number[][][] = [];
  let m = src.map((u) => [...mask[u]]);
  for (let s = 0; s < steps; s++) {
    m = m.map((row) => [...row, 1]);
    const out = tidyKept(() => {
      const res = model.forward(tf.tensor2d(toks[s].map((t) => [t]), undefined, 'int32'), { past_key_values: cache, attention_mask: tf.tensor2d(m, undefined, 'int32'), position_ids: tf.tensor2d(src.map((u) => [pos[u][P - 1] + 1 + s]), undefined, 'int32') });
      for (const c of res.past_key_values) tf.keep(c.key) && tf.keep(c.value);
      return { lg: res.logits.arraySync() as number[][][], c: res.past_key_values };
    });
    disposeCache(cache);
    cache = out.c;
    want.push(out.lg.map((x: number[][]) => x[0]));
  }
  disposeCache(cache);
  // the fused decoder, prefilled from the 4 distinct prompts and fanned out
  const n0 = tf.memory().numTensors;
  const pre: KVCache = tidyKept(() => {
    const res = model.forwardHidden(tf.tensor2d(ids, undefined, 'int32'), { attention_mask: tf.tensor2d(mask, undefined, 'int32'), position_ids: tf.tensor2d(pos, undefined, 'int32') });
    for (const c of res.past_key_values) tf.keep(c.key) && tf.keep(c.value);
    return res.past_key_values;
  });
  const dec = new FusedDecoder(model, src.length, P + steps);
  dec.load(pre, src, src.map((u) => P - PROMPTS[u].length));
  disposeCache(pre);
  let live = src.map((_, i) => i); // reference row of each live slot
  for (let s = 0; s < steps; s++) {
    if (s === 3) {
      live = [0, 2, 3, 5]; // drop reference rows 1 and 4
      dec.compact([0, 2, 3, 5]);
    }
    const lg = dec.step(live.map((i) => toks[s][i]), live.map((i) => pos[src[i]][P - 1] + 1 + s));
    live.forEach((i, slot) => {
      const d = maxDiff(lg.subarray(slot * 64, (slot + 1) * 64), want[s][i]);
      assert.ok(d < 1e-4, `step ${s} row ${i}: max |fused - forward| = ${d}`);
    });
  }
  assert.equal(dec.length, P + steps);
  assert.throws(() => dec.step(live.map(() => 1), live.map(() => 50)), /cache full/);
  dec.dispose();
  assert.equal(tf.memory().numTensors, n0);
});

test('generate: the fused decode path = the forward path (sampled, repeated prompts, stop tokens, merged LoRA)', async () => {
  const m = Qwen2ForCausalLM.random(CONFIG, 9);
  addLora(m, { r: 4, lora_alpha: 8 }, 3);
  const r = new Rng(5);
  for (const l of m.adapter.modules.values()) l.B.assign(tf.tensor(Array.from({ length: l.B.size }, () => r.normal() * 0.3), l.B.shape));
  const prompts = [...PROMPTS, ...PROMPTS];
  const o = { pad_token_id: 0, max_new_tokens: 12, temperature: 1, stop_token_ids: [63, 62, 61] };
  const streams = () => prompts.map((_, i) => new Rng(40 + i));
  const slow = await generate(m, prompts, { ...o, rngs: streams(), fused_decode: false });
  const fast = await generate(m, prompts, { ...o, rngs: streams() });
  assert.deepEqual(fast.sequences, slow.sequences);
  assert.deepEqual(fast.completion_mask, slow.completion_mask);
  // the fused path drops a finished row at once, forward only once a quarter of the batch has finished
  assert.ok(fast.forward_rows.every((n, i) => n <= slow.forward_rows[i]), `${fast.forward_rows} vs ${slow.forward_rows}`);
  assert.equal(fast.forward_rows.length, slow.forward_rows.length);
  assert.ok(maxDiff(fast.logprobs.flat(), slow.logprobs.flat()) < 1e-4);
  assert.ok(maxDiff(fast.entropies.flat(), slow.entropies.flat()) < 1e-4);
  // greedy too, and the adapter is unmerged afterwards
  const g1 = await generate(m, prompts, { ...o, do_sample: false, fused_decode: false });
  const g2 = await generate(m, prompts, { ...o, do_sample: false });
  assert.deepEqual(g2.sequences, g1.sequences);
  assert.equal(m.adapter.state, 'active');
  const n = tf.memory().numTensors;
  await generate(m, prompts, { ...o, rngs: streams() });
  assert.equal(tf.memory().numTensors, n);
  m.dispose();
});

test('the committed wasm bytes are src/model/wasm/decode.wat assembled (scripts/build-wasm.ts --check)', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'build-wasm.ts'), '--check'], { encoding: 'utf8', cwd: ROOT });
  assert.equal(r.status, 0, r.stderr + r.stdout);
});
