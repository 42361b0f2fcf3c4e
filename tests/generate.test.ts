// Tests for src/model/sampling.ts and src/model/generate.ts on a tiny one-layer attention LM defined here
// (same forward contract as Qwen2ForCausalLM: ids [B,T], attention_mask [B,past+T], position_ids, KV cache).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/util/rng';
import { argmax, sampleRow, tokenLogprob, type SamplingOptions } from '../src/model/sampling';
import { generate, type CausalLM } from '../src/model/generate';

type ToyKV = { k: tf.Tensor3D; v: tf.Tensor3D };

/** One attention layer + learned position embeddings; masks exactly like a decoder (causal + padding). */
class ToyLM implements CausalLM<ToyKV> {
  readonly V = 13;
  readonly d = 8;
  E: tf.Tensor2D; P: tf.Tensor2D; Wq: tf.Tensor2D; Wk: tf.Tensor2D; Wv: tf.Tensor2D; Wo: tf.Tensor2D;
  calls: number[] = [];
  constructor(seed: number) {
    const r = new Rng(seed);
    const m = (a: number, b: number, s: number) => tf.tensor2d(Array.from({ length: a * b }, () => r.normal() * s), [a, b]);
    this.E = m(this.V, this.d, 1); this.P = m(64, this.d, 0.5);
    this.Wq = m(this.d, this.d, 0.7); this.Wk = m(this.d, this.d, 0.7); this.Wv = m(this.d, this.d, 0.7); this.Wo = m(this.d, this.V, 1.2);
  }
  forward(ids: tf.Tensor2D, o: { past_key_values?: ToyKV; attention_mask?: tf.Tensor2D; position_ids?: tf.Tensor2D } = {}) {
    const [B, T] = ids.shape;
    this.calls.push(T);
    return tf.tidy(() => {
      const pid = o.position_ids ?? tf.tensor2d(Array.from({ length: B }, () => Array.from({ length: T }, (_, j) => j)), [B, T], 'int32');
      const x = tf.add(tf.gather(this.E, ids), tf.gather(this.P, pid)) as tf.Tensor3D; // [B, T, d]
      const lin = (w: tf.Tensor2D) => tf.matMul(x.reshape([B * T, this.d]), w).reshape([B, T, -1]) as tf.Tensor3D;
      let k = lin(this.Wk), v = lin(this.Wv);
      const q = lin(this.Wq);
      const past = o.past_key_values ? o.past_key_values.k.shape[1] : 0;
      if (o.past_key_values) {
        k = tf.concat([o.past_key_values.k, k], 1);
        v = tf.concat([o.past_key_values.v, v], 1);
      }
      const S = past + T;
      const am = o.attention_mask ? o.attention_mask.toFloat() : tf.ones([B, S]);
      const causal = tf.tensor2d(Array.from({ length: T }, (_, t) => Array.from({ length: S }, (_, j) => (j <= past + t ? 1 : 0))), [T, S]);
      const allow = tf.mul(am.reshape([B, 1, S]), causal.reshape([1, T, S])); // [B, T, S]
      const scores = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(this.d)), tf.mul(tf.sub(1, allow), -1e9));
      const h = tf.add(x, tf.matMul(tf.softmax(scores), v)) as tf.Tensor3D;
      const logits = tf.matMul(h.reshape([B * T, this.d]), this.Wo).reshape([B, T, this.V]) as tf.Tensor3D;
      return { logits, past_key_values: { k, v } };
    });
  }
  dispose() {
    tf.dispose([this.E, this.P, this.Wq, this.Wk, this.Wv, this.Wo]);
  }
}

/** Teacher forcing: log softmax(logits / temperature) of each completion token, by one full forward. */
function teacherLogps(m: ToyLM, prompt: number[], completion: number[], temperature: number): number[] {
  return tf.tidy(() => {
    const ids = [...prompt, ...completion];
    const { logits } = m.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
    const lp = (tf.logSoftmax(tf.div(logits, temperature)) as tf.Tensor3D).arraySync()[0];
    return completion.map((t, i) => lp[prompt.length - 1 + i][t]);
  });
}

const PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [8, 9], [3, 3, 10, 11]];
const BASE = { pad_token_id: 0, max_new_tokens: 6 };

test('sampling: greedy = argmax; top_k=1 and tiny top_p = argmax; log-prob is log softmax(l / T)', () => {
  const r = new Rng(3);
  const row = Float32Array.from(Array.from({ length: 50 }, () => r.normal() * 3));
  const best = argmax(row, 0, 50);
  const g = sampleRow(row, 0, 50, { do_sample: false, temperature: 1, top_k: 0, top_p: 1 }, r);
  assert.equal(g.token, best);
  for (const o of [{ top_k: 1, top_p: 1 }, { top_k: 0, top_p: 1e-6 }]) {
    const s = sampleRow(row, 0, 50, { do_sample: true, temperature: 0.7, ...o }, new Rng(9));
    assert.equal(s.token, best);
    assert.ok(Math.abs(s.logprob - tokenLogprob(row, 0, 50, best, 0.7)) < 1e-12);
  }
  let z = 0;
  for (let i = 0; i < 50; i++) z += Math.exp(tokenLogprob(row, 0, 50, i, 0.7));
  assert.ok(Math.abs(z - 1) < 1e-9);
});

test('sampling: entropy is that of softmax(l / T) before top-k/top-p (uniform = log V; matches a direct sum)', () => {
  const V = 7;
  const uniform = new Float32Array(V).fill(0.3);
  for (const o of [{ do_sample: false, temperature: 1, top_k: 0, top_p: 1 }, { do_sample: true, temperature: 0.5, top_k: 2, top_p: 0.9 }]) {
    assert.ok(Math.abs(sampleRow(uniform, 0, V, o, new Rng(0)).entropy - Math.log(V)) < 1e-12);
  }
  const rng = new Rng(3);
  const logits = Float32Array.from({ length: 2 * V }, () => 3 * rng.normal());
  for (const T of [1, 0.7]) {
    const row = Array.from(logits.subarray(V, 2 * V), (l) => l / T);
    const m = Math.max(...row);
    const z = row.reduce((a, l) => a + Math.exp(l - m), 0);
    const direct = -row.reduce((a, l) => a + (Math.exp(l - m) / z) * (l - m - Math.log(z)), 0);
    const got = sampleRow(logits, V, V, { do_sample: true, temperature: T, top_k: 3, top_p: 0.8 }, new Rng(1)).entropy;
    assert.ok(Math.abs(got - direct) < 1e-9, `T=${T}: ${got} vs ${direct}`);
  }
});

test('sampling: top_k / top_p restrict the support; empirical frequencies follow the distribution', () => {
  const row = Float32Array.from([0, Math.log(2), Math.log(4), Math.log(8), Math.log(1)]); // p ∝ 1,2,4,8,1
  const count = (o: Partial<SamplingOptions>, n: number) => {
    const c = new Array(5).fill(0), r = new Rng(11);
    for (let i = 0; i < n; i++) c[sampleRow(row, 0, 5, { do_sample: true, temperature: 1, top_k: 0, top_p: 1, ...o }, r).token]++;
    return c;
  };
  const k2 = count({ top_k: 2 }, 2000);
  assert.equal(k2[0] + k2[1] + k2[4], 0);
  assert.ok(Math.abs(k2[3] / 2000 - 8 / 12) < 0.04, `top_k=2 freq ${k2}`);
  // top_p = 0.7: sorted probs 8/16=.5, 4/16=.25 -> cumulative .75 >= .7, so tokens 3 and 2 only.
  const p7 = count({ top_p: 0.7 }, 2000);
  assert.equal(p7[0] + p7[1] + p7[4], 0);
  assert.ok(p7[2] > 0 && p7[3] > 0);
  const all = count({}, 8000);
  [1, 2, 4, 8, 1].forEach((w, i) => assert.ok(Math.abs(all[i] / 8000 - w / 16) < 0.02, `freq ${all}`));
});

test('sampling: top_k keeps exactly the k largest (heap path k <= 1024, sort path above)', () => {
  const r = new Rng(21);
  const V = 3000;
  const row = Float32Array.from({ length: V }, () => r.normal() * 0.5); // flat: every kept token gets drawn
  const rank = [...row.keys()].sort((a, b) => row[b] - row[a]);
  for (const k of [7, 1500]) {
    const allowed = new Set(rank.slice(0, k));
    const seen = new Set<number>();
    const rr = new Rng(k);
    for (let i = 0; i < 3000; i++) {
      const t = sampleRow(row, 0, V, { do_sample: true, temperature: 1, top_k: k, top_p: 1 }, rr).token;
      assert.ok(allowed.has(t), `k=${k}: token ${t} is not in the top k`);
      seen.add(t);
    }
    if (k === 7) assert.equal(seen.size, 7);
    else assert.ok(seen.size > 700, `k=${k}: only ${seen.size} distinct tokens drawn`);
  }
});

test('generate: prefill once, then one token per forward; greedy with cache = greedy by full recompute', async () => {
  const m = new ToyLM(1);
  m.calls = [];
  const a = await generate(m, PROMPTS, { ...BASE, do_sample: false });
  assert.deepEqual(m.calls, [7, 1, 1, 1, 1, 1]); // P=7, then 5 decode steps of T=1 for 6 new tokens
  assert.deepEqual(a.forward_lengths, m.calls);
  const b = await generate(m, PROMPTS, { ...BASE, do_sample: false, use_cache: false });
  assert.deepEqual(b.forward_lengths, [7, 8, 9, 10, 11, 12]);
  assert.deepEqual(a.sequences, b.sequences);
  for (let i = 0; i < PROMPTS.length; i++) for (let j = 0; j < 6; j++) assert.ok(Math.abs(a.logprobs[i][j] - b.logprobs[i][j]) < 1e-4);
  m.dispose();
});

test('generate: left padding does not change a row (batched greedy = each prompt alone)', async () => {
  const m = new ToyLM(2);
  const batched = await generate(m, PROMPTS, { ...BASE, do_sample: false });
  for (let i = 0; i < PROMPTS.length; i++) {
    const alone = await generate(m, [PROMPTS[i]], { ...BASE, do_sample: false });
    assert.deepEqual(alone.sequences[0], batched.sequences[i]);
    alone.logprobs[0].forEach((x, j) => assert.ok(Math.abs(x - batched.logprobs[i][j]) < 1e-4));
  }
  m.dispose();
});

test('generate: sampled log-probs match teacher forcing (left-padded batch, temperature 0.8, top-k/top-p)', async () => {
  const m = new ToyLM(3);
  const out = await generate(m, PROMPTS, { ...BASE, max_new_tokens: 8, do_sample: true, temperature: 0.8, top_k: 6, top_p: 0.9, seed: 5 });
  for (let i = 0; i < PROMPTS.length; i++) {
    const want = teacherLogps(m, PROMPTS[i], out.sequences[i], 0.8);
    want.forEach((w, j) => assert.ok(Math.abs(w - out.logprobs[i][j]) < 1e-4, `row ${i} tok ${j}: ${w} vs ${out.logprobs[i][j]}`));
  }
  m.dispose();
});

test('generate: seeded sampling is deterministic; different seeds differ; top_k=1 = greedy', async () => {
  const m = new ToyLM(4);
  const o = { ...BASE, max_new_tokens: 10, do_sample: true, temperature: 1.5 };
  const a = await generate(m, PROMPTS, { ...o, seed: 1 });
  const b = await generate(m, PROMPTS, { ...o, seed: 1 });
  const c = await generate(m, PROMPTS, { ...o, seed: 2 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.sequences, c.sequences);
  const g = await generate(m, PROMPTS, { ...BASE, max_new_tokens: 10, do_sample: false });
  const k1 = await generate(m, PROMPTS, { ...o, top_k: 1, seed: 9 });
  assert.deepEqual(k1.sequences, g.sequences);
  m.dispose();
});

test('generate: stop tokens end rows (pad + mask 0 after), loop ends when all rows are done', async () => {
  const m = new ToyLM(5);
  const free = await generate(m, PROMPTS, { ...BASE, do_sample: false });
  const stopTok = free.sequences[0][1]; // row 0 stops at its 2nd token (or earlier if it appears sooner)
  const out = await generate(m, PROMPTS, { ...BASE, do_sample: false, stop_token_ids: [stopTok] });
  for (let i = 0; i < PROMPTS.length; i++) {
    const at = free.sequences[i].indexOf(stopTok);
    if (at < 0) {
      assert.equal(out.finish_reasons[i], 'length');
      assert.deepEqual(out.completion_mask[i], new Array(6).fill(1));
      continue;
    }
    assert.equal(out.finish_reasons[i], 'stop');
    assert.deepEqual(out.sequences[i].slice(0, at + 1), free.sequences[i].slice(0, at + 1));
    out.sequences[i].forEach((t, j) => {
      assert.equal(out.completion_mask[i][j], j <= at ? 1 : 0);
      if (j > at) assert.equal(t, 0);
      if (j > at) assert.equal(out.logprobs[i][j], 0);
    });
  }
  // Every row stops on its first token => a single prefill, no decode step.
  const firsts = [...new Set(free.sequences.map((s) => s[0]))];
  m.calls = [];
  const one = await generate(m, PROMPTS, { ...BASE, do_sample: false, stop_token_ids: firsts });
  assert.deepEqual(m.calls, [7]);
  assert.deepEqual(one.sequences.map((s) => s.length), [1, 1, 1]);
  m.dispose();
});

test('generate: finished rows are dropped from the batch; outputs equal the uncompacted run', async () => {
  const m = new ToyLM(7);
  const prompts = [...PROMPTS, [2, 5], [7, 7, 1], [12, 4, 4, 9]];
  const o = { ...BASE, max_new_tokens: 12, do_sample: true, temperature: 1.3, seed: 4 };
  const free = await generate(m, prompts, { ...o, compact_finished: false });
  // A stop token that ends some rows early but not all: one that occurs in the first half of 2..n-2 rows.
  const rowsWith = (t: number) => free.sequences.filter((r) => r.slice(0, 6).includes(t) && r.indexOf(t) < 6).length;
  const stopTok = [...new Set(free.sequences.flat())].find((t) => rowsWith(t) >= 2 && free.sequences.filter((r) => r.includes(t)).length <= prompts.length - 2)!;
  assert.ok(stopTok !== undefined);
  const a = await generate(m, prompts, { ...o, stop_token_ids: [stopTok], compact_finished: false });
  const b = await generate(m, prompts, { ...o, stop_token_ids: [stopTok] });
  assert.ok(a.finish_reasons.includes('stop') && a.finish_reasons.includes('length'), `${a.finish_reasons}`);
  assert.deepEqual(b.sequences, a.sequences);
  assert.deepEqual(b.completion_mask, a.completion_mask);
  assert.deepEqual(b.finish_reasons, a.finish_reasons);
  a.logprobs.forEach((r, i) => r.forEach((x, j) => assert.ok(Math.abs(x - b.logprobs[i][j]) < 1e-5)));
  assert.ok(a.forward_rows.every((n) => n === prompts.length));
  assert.ok(b.forward_rows[b.forward_rows.length - 1] < prompts.length, `rows per forward ${b.forward_rows}`);
  m.dispose();
});

test('generate: tf.memory().numTensors unchanged after repeated calls; bad input named', async () => {
  const m = new ToyLM(6);
  await generate(m, PROMPTS, { ...BASE, seed: 1 });
  const n = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await generate(m, PROMPTS, { ...BASE, seed: i, top_p: 0.9 });
  await generate(m, PROMPTS, { ...BASE, do_sample: false, use_cache: false });
  await generate(m, PROMPTS, { ...BASE, seed: 3, stop_token_ids: [1, 2, 3, 4, 5] }); // compaction path
  assert.equal(tf.memory().numTensors, n);
  await assert.rejects(generate(m, PROMPTS, { ...BASE, max_new_tokens: 0 }), /max_new_tokens/);
  await assert.rejects(generate(m, [[]], BASE), /prompt 0 is empty/);
  m.dispose();
});
