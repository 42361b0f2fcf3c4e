// The trainers' log-prob forward (src/train/logps.ts): the per-prompt path (GRPO groups) and the
// common-prefix path (SFT) give the plain per_token_logps values and gradients, LoRA and full fine-tuning.
// Run: node --import tsx --test tests/logps.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { Qwen2ForCausalLM } from '../src/model/qwen2';
import { addLora } from '../src/model/lora';
import { per_token_logps } from '../src/model/logprobs';
import { makeBatch, type Batch } from '../src/train/batch';
import { completionLogps, distinctPrompts, sharedPrefixLength } from '../src/train/logps';
import { Rng } from '../src/util/rng';

const CONFIG = {
  model_type: 'qwen2', vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128, rope_theta: 10000,
  rms_norm_eps: 1e-6, tie_word_embeddings: true, initializer_range: 0.2,
};

before(async () => {
  await initBackend('wasm');
});

function toks(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => 1 + rng.int(62));
}

/** Values and gradients of sum(logps * mask) by the plain forward and by completionLogps. */
async function compare(model: Qwen2ForCausalLM, b: Batch): Promise<void> {
  const vars = model.trainableVariables();
  const mask = tf.tensor2d(b.completion_mask);
  const plain = () => per_token_logps(model, tf.tensor2d(b.input_ids, undefined, 'int32'), { attention_mask: tf.tensor2d(b.attention_mask, undefined, 'int32'), logits_to_keep: b.completion_length });
  const want = tf.tidy(() => plain().arraySync());
  const got = tf.tidy(() => completionLogps(model, b).arraySync());
  b.completion_mask.forEach((m, i) => m.forEach((x, j) => x && assert.ok(Math.abs(want[i][j] - got[i][j]) < 1e-4, `row ${i} tok ${j}: ${got[i][j]} vs ${want[i][j]}`)));
  const n0 = tf.memory().numTensors;
  const g1 = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.mul(plain(), mask))) as tf.Scalar, vars);
  const g2 = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.mul(completionLogps(model, b), mask))) as tf.Scalar, vars);
  for (const v of vars) {
    const x = await g1.grads[v.name].data(), y = await g2.grads[v.name].data();
    let n = 0, d = 0;
    for (let i = 0; i < x.length; i++) { n += x[i] * x[i]; d += (x[i] - y[i]) ** 2; }
    assert.ok(Math.sqrt(d) <= 1e-4 * Math.sqrt(n) + 1e-7, `gradient of ${v.name} differs: |d| ${Math.sqrt(d)} vs |g| ${Math.sqrt(n)}`);
  }
  tf.dispose([g1.value, g2.value, ...Object.values(g1.grads), ...Object.values(g2.grads)]);
  assert.equal(tf.memory().numTensors, n0);
  mask.dispose();
}

/** 3 prompts of different lengths (no common prefix) x 3 completions of different lengths each. */
function groupedBatch(rng: Rng): Batch {
  const prompts = [toks(rng, 9), toks(rng, 5), toks(rng, 12)];
  const P: number[][] = [], C: number[][] = [], M: number[][] = [];
  for (const p of prompts) for (let g = 0; g < 3; g++) {
    const c = toks(rng, 2 + rng.int(6));
    P.push(p);
    C.push(c);
    M.push(c.map((_, j) => (g === 1 && j === c.length - 1 ? 0 : 1))); // one masked-out last token
  }
  return makeBatch(P, C, 0, M);
}

test('per-prompt path: grouped rows (GRPO) give plain per_token_logps values and LoRA gradients', async () => {
  const model = Qwen2ForCausalLM.random(CONFIG, 3);
  addLora(model, { r: 4, lora_alpha: 8 }, 1);
  const r = new Rng(2);
  for (const m of model.adapter.modules.values()) m.B.assign(tf.tensor(Array.from({ length: m.B.size }, () => r.normal() * 0.3), m.B.shape));
  const b = groupedBatch(new Rng(4));
  const d = distinctPrompts(b);
  assert.equal(d.prompts.length, 3);
  assert.deepEqual(d.group, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.equal(sharedPrefixLength(b), 0, 'the prompts share no prefix: only the per-prompt path shares work');
  await compare(model, b);
  model.dispose();
});

test('per-prompt path with full fine-tuning; common-prefix path for distinct prompts (SFT)', async () => {
  const model = Qwen2ForCausalLM.random(CONFIG, 5);
  const rng = new Rng(6);
  await compare(model, groupedBatch(rng));
  const sys = toks(rng, 18);
  const P = [[...sys, ...toks(rng, 3)], [...sys, ...toks(rng, 6)], [...sys, ...toks(rng, 1)]];
  const b = makeBatch(P, P.map(() => toks(rng, 4)), 0);
  assert.equal(distinctPrompts(b).prompts.length, 3);
  assert.ok(sharedPrefixLength(b) >= 16);
  await compare(model, b);
  model.dispose();
});
