// LoRA and training through the model: hand-written gradients (kernels.ts) against plain autodiff of a naive
// implementation, adapter/base weights after an optimizer step, full fine-tuning, merge/unmerge, disable,
// PEFT save/load, per_token_logps, and no tensor leaks. Run: node --import tsx --test tests/model-lora.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { Qwen2ForCausalLM, disposeCache } from '../src/model/qwen2';
import { addLora, saveAdapter, loadAdapter, peftKey } from '../src/model/lora';
import { per_token_logps, per_token_logps_and_entropy } from '../src/model/logprobs';
import { readSafetensors } from '../src/model/safetensors';
import { Rng } from '../src/util/rng';
import type { Qwen2Config } from '../src/model/config';

const CFG = {
  model_type: 'qwen2', vocab_size: 61, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rope_theta: 10000,
  rms_norm_eps: 1e-6, hidden_act: 'silu', tie_word_embeddings: true,
} as unknown as Qwen2Config;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lora-test-'));

before(async () => {
  await initBackend(process.env.TFJS_BACKEND ?? 'wasm');
});

function randomIds(B: number, T: number, V: number, seed: number): tf.Tensor2D {
  const r = new Rng(seed);
  return tf.tensor2d(Array.from({ length: B }, () => Array.from({ length: T }, () => r.int(V))), [B, T], 'int32');
}

/** Make every B matrix non-zero so the adapter matters (and A gets a gradient). */
function perturbB(m: Qwen2ForCausalLM, seed: number): void {
  const r = new Rng(seed);
  for (const mod of m.adapter.modules.values()) {
    const t = tf.tensor(Array.from({ length: mod.B.size }, () => r.normal() * 0.1), mod.B.shape);
    mod.B.assign(t);
    t.dispose();
  }
}

/** A plain-tf, autodiffed Qwen2 (no custom gradients, no cache), for checking kernels.ts. [B, T-1]. */
function naiveLogps(m: Qwen2ForCausalLM, ids: tf.Tensor2D): tf.Tensor2D {
  const c = m.config;
  const [B, T] = ids.shape;
  const H = c.num_attention_heads, KV = c.num_key_value_heads, hd = c.hidden_size / H, G = H / KV;
  const p = (n: string) => m.params.get(n)!;
  const lin = (x: tf.Tensor2D, mp: string) => {
    let y = tf.matMul(x, p(`${mp}.weight`), false, true);
    const b = m.params.get(`${mp}.bias`);
    if (b) y = tf.add(y, b);
    const l = m.adapter.active(mp);
    if (l) y = tf.add(y, tf.mul(tf.matMul(tf.matMul(x, l.A, false, true), l.B, false, true), m.adapter.scaling));
    return y as tf.Tensor2D;
  };
  const norm = (x: tf.Tensor2D, n: string) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), c.rms_norm_eps))), p(n)) as tf.Tensor2D;
  const invf = Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(c.rope_theta, (2 * i) / hd));
  const ang = Array.from({ length: T }, (_, t) => [...invf, ...invf].map((f) => t * f));
  const cos = tf.tensor(ang.map((r) => r.map(Math.cos))).reshape([1, 1, T, hd]);
  const sin = tf.tensor(ang.map((r) => r.map(Math.sin))).reshape([1, 1, T, hd]);
  const rope = (x: tf.Tensor) => {
    const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, hd / 2]);
    const x2 = tf.slice(x, [0, 0, 0, hd / 2], [-1, -1, -1, hd / 2]);
    return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], 3), sin)) as tf.Tensor4D;
  };
  const causal = tf.tensor(Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (j <= i ? 0 : -1e9)))).reshape([1, 1, T, T]);
  let x = tf.gather(p('model.embed_tokens.weight'), ids.reshape([-1])) as tf.Tensor2D;
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const pre = `model.layers.${l}`;
    const h = norm(x, `${pre}.input_layernorm.weight`);
    const q = rope(tf.transpose(lin(h, `${pre}.self_attn.q_proj`).reshape([B, T, H, hd]), [0, 2, 1, 3]));
    let k = rope(tf.transpose(lin(h, `${pre}.self_attn.k_proj`).reshape([B, T, KV, hd]), [0, 2, 1, 3]));
    let v = tf.transpose(lin(h, `${pre}.self_attn.v_proj`).reshape([B, T, KV, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
    const rep = Array.from({ length: H }, (_, i) => Math.floor(i / G));
    k = tf.gather(k, rep, 1);
    v = tf.gather(v, rep, 1);
    const s = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)), causal);
    const ctx = tf.transpose(tf.matMul(tf.softmax(s), v), [0, 2, 1, 3]).reshape([B * T, H * hd]) as tf.Tensor2D;
    x = tf.add(x, lin(ctx, `${pre}.self_attn.o_proj`));
    const h2 = norm(x, `${pre}.post_attention_layernorm.weight`);
    const g = lin(h2, `${pre}.mlp.gate_proj`);
    x = tf.add(x, lin(tf.mul(tf.mul(g, tf.sigmoid(g)), lin(h2, `${pre}.mlp.up_proj`)) as tf.Tensor2D, `${pre}.mlp.down_proj`));
  }
  const logits = tf.matMul(norm(x, 'model.norm.weight'), p(m.headWeightName()), false, true);
  const lp = tf.logSoftmax(logits).reshape([B, T, c.vocab_size]);
  const tgt = tf.oneHot(tf.slice(ids, [0, 1], [B, T - 1]), c.vocab_size);
  return tf.sum(tf.mul(tf.slice(lp, [0, 0, 0], [B, T - 1, c.vocab_size]), tgt), -1) as tf.Tensor2D;
}

async function maxRel(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const x = (await a.data()) as Float32Array, y = (await b.data()) as Float32Array;
  let d = 0, r = 0;
  for (let i = 0; i < x.length; i++) {
    d = Math.max(d, Math.abs(x[i] - y[i]));
    r = Math.max(r, Math.abs(y[i]));
  }
  return r === 0 ? d : d / r;
}

/** Compare gradients of sum(w * logps) between the fast path and the naive one, for every trainable variable. */
async function checkGrads(m: Qwen2ForCausalLM, label: string): Promise<void> {
  const ids = randomIds(3, 9, CFG.vocab_size, 5);
  const w = tf.tensor2d(Array.from({ length: 3 }, (_, b) => Array.from({ length: 8 }, (_, t) => Math.sin(b * 8 + t))));
  const vars = m.trainableVariables();
  const fast = tf.variableGrads(() => tf.sum(tf.mul(per_token_logps(m, ids), w)) as tf.Scalar, vars);
  const slow = tf.variableGrads(() => tf.sum(tf.mul(naiveLogps(m, ids), w)) as tf.Scalar, vars);
  assert.ok(Math.abs(fast.value.dataSync()[0] - slow.value.dataSync()[0]) < 1e-3 * Math.abs(slow.value.dataSync()[0]) + 1e-3, `${label}: loss`);
  let worst = 0;
  const names = new Map<string, string>();
  for (const [n, v] of m.params) names.set(v.name, n);
  for (const [n, l] of m.adapter.modules) { names.set(l.A.name, n + '.A'); names.set(l.B.name, n + '.B'); }
  for (const k of Object.keys(slow.grads)) {
    const e = await maxRel(fast.grads[k], slow.grads[k]);
    if (process.env.DEBUG_GRADS && e > 2e-3) console.log(label, names.get(k), e);
    worst = Math.max(worst, e);
  }
  assert.ok(worst < 2e-3, `${label}: worst relative gradient error ${worst}`);
  assert.equal(Object.keys(fast.grads).length, vars.length);
  tf.dispose([ids, w, fast.value, slow.value, fast.grads, slow.grads] as unknown as tf.Tensor[]);
}

test('gradients: LoRA path equals autodiff of a naive model', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 1);
  addLora(m, { r: 4, lora_alpha: 8 }, 2);
  perturbB(m, 3);
  assert.equal(m.trainableVariables().length, 2 * 7 * CFG.num_hidden_layers);
  await checkGrads(m, 'lora');
  m.dispose();
});

test('gradients: full fine-tuning (tied and untied head) equals autodiff of a naive model', async () => {
  for (const tie of [true, false]) {
    const m = Qwen2ForCausalLM.random({ ...CFG, tie_word_embeddings: tie }, 4);
    // non-trivial biases and norms so their gradients are exercised
    for (const [n, v] of m.params) if (!n.endsWith('proj.weight') && !n.includes('embed') && !n.startsWith('lm_head')) {
      const t = tf.tidy(() => tf.add(v, tf.randomNormal(v.shape, 0, 0.1, 'float32', 9)));
      v.assign(t);
      t.dispose();
    }
    await checkGrads(m, `full tie=${tie}`);
    m.dispose();
  }
});

test('per_token_logps equals log_softmax of forward logits; entropy matches', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 6);
  const ids = randomIds(2, 7, CFG.vocab_size, 8);
  const { logits } = m.forward(ids, { use_cache: false });
  const want = tf.tidy(() => {
    const lp = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [2, 6, -1]));
    return tf.sum(tf.mul(lp, tf.oneHot(tf.slice(ids, [0, 1], [2, 6]), CFG.vocab_size)), -1);
  });
  const got = per_token_logps(m, ids);
  assert.deepEqual(got.shape, [2, 6]);
  assert.ok((await maxRel(got, want)) < 1e-5);
  const last3 = per_token_logps(m, ids, { logits_to_keep: 3 });
  assert.ok((await maxRel(last3, tf.slice(want, [0, 3], [2, 3]))) < 1e-5);
  const { per_token_logps: lp2, entropies } = per_token_logps_and_entropy(m, ids);
  assert.ok((await maxRel(lp2, want)) < 1e-5);
  const ent = (await entropies.data()) as Float32Array;
  assert.ok(ent.every((e) => e > 0 && e <= Math.log(CFG.vocab_size) + 1e-4));
  m.dispose();
});

test('LoRA: new adapter is a no-op; one Adam step changes the adapter and not the base; disable = base', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 10);
  const ids = randomIds(2, 8, CFG.vocab_size, 11);
  const base = m.forward(ids, { use_cache: false }).logits;
  addLora(m, { r: 4, lora_alpha: 16, lora_dropout: 0.1 }, 12);
  assert.ok((await maxRel(m.forward(ids, { use_cache: false }).logits, base)) < 1e-6);
  const before = new Map([...m.params].map(([n, v]) => [n, v.dataSync().slice()]));
  const beforeA = [...m.adapter.modules.values()].map((l) => l.A.dataSync().slice());
  const opt = tf.train.adam(1e-2);
  const step = () => {
    m.training = true;
    const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(per_token_logps(m, ids))) as tf.Scalar, m.trainableVariables());
    opt.applyGradients(grads as tf.NamedTensorMap as Record<string, tf.Variable>);
    m.training = false;
    tf.dispose([value, grads] as unknown as tf.Tensor[]);
  };
  step();
  for (const [n, v] of m.params) assert.deepEqual(v.dataSync(), before.get(n), `base ${n} changed`);
  const mods = [...m.adapter.modules.values()];
  // Step 1: B moves off zero; A has zero gradient while B = 0 (as in PEFT), so it moves from step 2 on.
  assert.ok(mods.every((l, i) => l.B.dataSync().some((x) => x !== 0) && l.A.dataSync().every((x, j) => x === beforeA[i][j])));
  step();
  for (const [n, v] of m.params) assert.deepEqual(v.dataSync(), before.get(n), `base ${n} changed`);
  assert.ok(mods.every((l, i) => l.A.dataSync().some((x, j) => x !== beforeA[i][j])));
  const tuned = m.forward(ids, { use_cache: false }).logits;
  assert.ok((await maxRel(tuned, base)) > 1e-4);
  m.adapter.disable();
  assert.equal(m.adapter.state, 'disabled');
  assert.ok((await maxRel(m.forward(ids, { use_cache: false }).logits, base)) < 1e-6);
  m.adapter.enable();
  assert.equal(m.adapter.state, 'active');
  assert.ok((await maxRel(m.forward(ids, { use_cache: false }).logits, tuned)) < 1e-6);
  opt.dispose();
  m.dispose();
});

test('LoRA: merged forward equals the unmerged one; unmerge restores the base exactly', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 20);
  addLora(m, { r: 4, lora_alpha: 8 }, 21);
  perturbB(m, 22);
  const ids = randomIds(2, 8, CFG.vocab_size, 23);
  const q = 'model.layers.0.self_attn.q_proj.weight';
  const w0 = m.params.get(q)!.dataSync().slice();
  const unmerged = m.forward(ids, { use_cache: false }).logits;
  m.adapter.merge();
  assert.equal(m.adapter.state, 'merged');
  assert.notDeepEqual(m.params.get(q)!.dataSync(), w0);
  const merged = m.forward(ids, { use_cache: false }).logits;
  assert.ok((await maxRel(merged, unmerged)) < 1e-5);
  assert.throws(() => m.adapter.disable(), /merged/);
  assert.throws(() => m.adapter.merge(), /merged/); // only an active adapter merges
  m.adapter.unmerge();
  assert.equal(m.adapter.state, 'active');
  assert.deepEqual(m.params.get(q)!.dataSync(), w0);
  assert.ok((await maxRel(m.forward(ids, { use_cache: false }).logits, unmerged)) < 1e-6);
  m.dispose();
});

test('LoRA state: none -> active -> disabled -> active -> merged -> none; merge_and_unload folds it for good', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 24);
  assert.equal(m.adapter.state, 'none');
  assert.throws(() => m.adapter.disable(), /no adapter/);
  assert.ok(m.trainableVariables().length > 0 && m.trainableVariables().every((v) => [...m.params.values()].includes(v)), 'full fine-tuning without an adapter');
  const ids = randomIds(2, 8, CFG.vocab_size, 25);
  addLora(m, { r: 4, lora_alpha: 8 }, 26);
  perturbB(m, 27);
  assert.equal(m.adapter.state, 'active');
  assert.ok(m.trainableVariables().every((v) => m.adapter.variables().includes(v)), 'only the adapter trains');
  const tuned = m.forward(ids, { use_cache: false }).logits;
  m.adapter.disable();
  assert.throws(() => m.adapter.merge(), /disabled/); // a disabled adapter is off: merging would turn it on
  m.adapter.enable();
  m.adapter.merge();
  m.adapter.remove(); // restores the base first
  assert.equal(m.adapter.state, 'none');
  assert.equal(m.adapter.modules.size, 0);
  addLora(m, { r: 4, lora_alpha: 8 }, 26);
  perturbB(m, 27);
  m.adapter.mergeAndUnload();
  assert.equal(m.adapter.state, 'none');
  assert.ok((await maxRel(m.forward(ids, { use_cache: false }).logits, tuned)) < 1e-5, 'the folded base computes what base + adapter did');
  m.dispose();
});

test('LoRA: PEFT save -> load round trip is exact, with PEFT names and config', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 30);
  addLora(m, { r: 4, lora_alpha: 16, lora_dropout: 0.05, target_modules: ['q_proj', 'v_proj', 'down_proj'] }, 31);
  perturbB(m, 32);
  const dir = tmp();
  await saveAdapter(m, dir, 'outputs/tiny');
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.task_type, 'CAUSAL_LM');
  assert.equal(cfg.bias, 'none');
  assert.deepEqual([cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.base_model_name_or_path], [4, 16, 0.05, 'outputs/tiny']);
  assert.deepEqual(cfg.target_modules, ['q_proj', 'v_proj', 'down_proj']);
  const t = readSafetensors(path.join(dir, 'adapter_model.safetensors'));
  assert.equal(t.size, 2 * 3 * CFG.num_hidden_layers);
  assert.deepEqual(t.get('base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight')!.shape, [4, 32]);
  assert.deepEqual(t.get('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight')!.shape, [32, 4]);
  const m2 = Qwen2ForCausalLM.random(CFG, 30);
  await loadAdapter(m2, dir);
  assert.equal(m2.adapter.scaling, 4);
  assert.equal(m2.adapter.state, 'active');
  for (const [name, l] of m.adapter.modules) {
    assert.deepEqual(m2.adapter.modules.get(name)!.A.dataSync(), l.A.dataSync());
    assert.deepEqual(m2.adapter.modules.get(name)!.B.dataSync(), l.B.dataSync());
    assert.ok(t.has(peftKey(name, 'A')));
  }
  assert.ok(m2.trainableVariables().every((v) => [...m2.adapter.modules.values()].some((l) => l.A === v || l.B === v)));
  fs.rmSync(path.join(dir, 'adapter_model.safetensors'));
  await assert.rejects(loadAdapter(m2, dir), /adapter_model\.safetensors: file not found/);
  m.dispose();
  m2.dispose();
});

test('full fine-tuning: one step changes the embeddings (trainable gather) and every weight', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 40);
  const ids = randomIds(2, 8, CFG.vocab_size, 41);
  const before = new Map([...m.params].map(([n, v]) => [n, v.dataSync().slice()]));
  const opt = tf.train.adam(1e-3);
  const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(per_token_logps(m, ids))) as tf.Scalar, m.trainableVariables());
  opt.applyGradients(grads as tf.NamedTensorMap as Record<string, tf.Variable>);
  tf.dispose([value, grads] as unknown as tf.Tensor[]);
  for (const [n, v] of m.params) assert.notDeepEqual(v.dataSync(), before.get(n), `${n} did not change`);
  opt.dispose();
  m.dispose();
});

test('no tensor leaks: numTensors is the same after repeated forward + cache + train steps', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 50);
  addLora(m, { r: 4, lora_alpha: 8, lora_dropout: 0.1 }, 51);
  const ids = randomIds(2, 8, CFG.vocab_size, 52);
  const opt = tf.train.adam(1e-3);
  const step = () => {
    const a = m.forward(ids);
    const next = tf.tensor2d([[1], [2]], [2, 1], 'int32');
    const b = m.forward(next, { past_key_values: a.past_key_values });
    disposeCache(a.past_key_values);
    disposeCache(b.past_key_values);
    tf.dispose([a.logits, b.logits, next]);
    const old = per_token_logps(m, ids);
    m.training = true;
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.mul(tf.exp(tf.sub(per_token_logps(m, ids), old)), -1)) as tf.Scalar, m.trainableVariables());
    m.training = false;
    opt.applyGradients(grads as tf.NamedTensorMap as Record<string, tf.Variable>);
    tf.dispose([old, value, grads] as unknown as tf.Tensor[]);
    m.adapter.merge();
    tf.dispose(m.forward(ids, { use_cache: false }).logits);
    m.adapter.unmerge();
  };
  step();
  const n1 = tf.memory().numTensors;
  step();
  step();
  assert.equal(tf.memory().numTensors, n1);
  opt.dispose();
  m.dispose();
});

test('LoRA: the cached effective weights (W + s B A) follow every change of A and B', async () => {
  const m = Qwen2ForCausalLM.random(CFG, 20);
  addLora(m, { r: 4, lora_alpha: 8 }, 21);
  const ids = randomIds(2, 7, CFG.vocab_size, 22);
  for (let k = 0; k < 3; k++) {
    perturbB(m, 30 + k); // a new B (and, from k = 1, a new A): as an optimizer step assigns them
    if (k > 0) for (const l of m.adapter.modules.values()) l.A.assign(tf.mul(l.A, 1.5));
    const got = m.forward(ids, { use_cache: false }).logits;
    // a fresh model with the same weights has no cache history
    const fresh = Qwen2ForCausalLM.random(CFG, 20);
    addLora(fresh, { r: 4, lora_alpha: 8 }, 21);
    for (const [p, l] of m.adapter.modules) {
      fresh.adapter.modules.get(p)!.A.assign(l.A);
      fresh.adapter.modules.get(p)!.B.assign(l.B);
    }
    const want = fresh.forward(ids, { use_cache: false }).logits;
    assert.ok((await maxRel(got, want)) < 1e-6, `after change ${k}`);
    tf.dispose([got, want]);
    fresh.dispose();
  }
  m.dispose();
});
