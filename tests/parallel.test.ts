// Data parallelism over worker threads (src/train/parallel.ts): the split gives the same gradients (up to float
// summation order) and the same samples as one process, weights reach the replicas, errors come back as
// rejections naming the rank, and no tensor is left behind. Run: node --import tsx --test tests/parallel.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { Qwen2ForCausalLM } from '../src/model/qwen2';
import { ChatTokenizer } from '../src/model/tokenizer';
import { addLora } from '../src/model/lora';
import { generate } from '../src/model/generate';
import { DataParallel, localValueAndGrads, numProcessesFor, shares } from '../src/train/parallel';
import { crossEntropyObjective, grpoObjective, type CrossEntropyObjective, type Objective } from '../src/train/objectives';
import { goldCompletionIds, makeBatch, promptIds } from '../src/train/batch';
import { AdamW } from '../src/train/optim';
import { GRPO_DEFAULTS } from '../src/train/config';
import { synthesize } from '../src/env/synth';
import { Rng, rowStreams } from '../src/util/rng';
import { ROOT, findRoot } from '../src/util/paths';

const FIX = path.join(ROOT, 'tests', 'fixtures', 'micro-sft');
let tok: ChatTokenizer;
const rows = synthesize({ seed: 3, n: 12, nTest: 0, nHeldout: 0 }).train;

before(async () => {
  await initBackend('wasm');
  tok = await ChatTokenizer.fromPretrained(FIX);
});

function sftJob(): CrossEntropyObjective {
  const b = makeBatch(rows.map((r) => promptIds(tok, r)), rows.map((r) => goldCompletionIds(tok, r)), tok.pad_token_id);
  return crossEntropyObjective(b, b.completion_mask.flat().reduce((a, x) => a + x, 0));
}

async function maxRelDiff(a: tf.Tensor[], b: tf.Tensor[]): Promise<number> {
  let d = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    const x = (await a[i].data()) as Float32Array, y = (await b[i].data()) as Float32Array;
    for (let j = 0; j < x.length; j++) {
      d = Math.max(d, Math.abs(x[j] - y[j]));
      scale = Math.max(scale, Math.abs(x[j]));
    }
  }
  return d / scale;
}

test('shares: contiguous, near-equal, covering; processes: wasm only, 0 = one per core', () => {
  assert.deepEqual(shares(10, 3), [[0, 3], [3, 6], [6, 10]]);
  assert.deepEqual(shares(1, 2), [[0, 0], [0, 1]]);
  assert.equal(numProcessesFor(3, 'wasm'), 3);
  assert.ok(numProcessesFor(0, 'wasm') >= 1 && numProcessesFor(0, 'wasm') <= 4);
  assert.equal(numProcessesFor(4, 'webgpu'), 1);
  assert.equal(numProcessesFor(2, 'tensorflow'), 1);
});

test('full fine-tuning: gradients over 2 processes equal one process; an optimizer step reaches the replica', async () => {
  const model = await Qwen2ForCausalLM.fromPretrained(FIX);
  const vars = model.trainableVariables();
  const job = sftJob();
  const dp = await DataParallel.start(model, 2);
  try {
    assert.equal(dp.size, 2);
    const warm = localValueAndGrads(model, job, vars); // first use builds the model's caches
    tf.dispose([warm.value, ...warm.grads]);
    const n0 = tf.memory().numTensors;
    const one = localValueAndGrads(model, job, vars);
    const two = await dp.valueAndGrads(job, vars);
    const v1 = (await one.value.data())[0];
    assert.ok(Math.abs(two.value - v1) / v1 < 1e-5, `loss ${two.value} vs ${v1}`);
    assert.ok((await maxRelDiff(one.grads, two.grads)) < 1e-4);

    // Step rank 0, sync, and the replica's share must now be computed with the new weights.
    const opt = new AdamW(vars, { adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8, weight_decay: 0 });
    opt.apply(one.grads, 1e-2);
    opt.dispose();
    tf.dispose([one.value, ...one.grads, ...two.grads]);
    await dp.syncWeights();
    const after1 = localValueAndGrads(model, job, vars);
    const after2 = await dp.valueAndGrads(job, vars);
    const a1 = (await after1.value.data())[0];
    assert.ok(Math.abs(a1 - v1) > 1e-3, 'the step changed the loss');
    assert.ok(Math.abs(after2.value - a1) / a1 < 1e-5, `after sync: ${after2.value} vs ${a1}`);
    tf.dispose([after1.value, ...after1.grads, ...after2.grads]);
    assert.equal(tf.memory().numTensors, n0, 'no tensor left behind');
  } finally {
    await dp.close();
    model.dispose();
  }
});

test('LoRA GRPO loss: gradients over 2 processes equal one process (only adapter weights train)', async () => {
  const model = await Qwen2ForCausalLM.fromPretrained(FIX);
  addLora(model, { r: 4, lora_alpha: 8 }, 1);
  // A non-zero B, so the adapter matters in the forward.
  for (const m of model.adapter.modules.values()) m.B.assign(tf.randomNormal(m.B.shape as [number, number], 0, 0.05, 'float32', 7));
  const vars = model.trainableVariables();
  const sft = sftJob();
  const n = sft.batch.input_ids.length;
  const job = grpoObjective(sft.batch, Array.from({ length: n }, (_, i) => (i % 3) - 1), null, null, { ...GRPO_DEFAULTS, loss_type: 'dapo' },
    { num_sequences: n, num_tokens: sft.num_tokens, num_micro_batches: 1 });
  const dp = await DataParallel.start(model, 2);
  try {
    const one = localValueAndGrads(model, job, vars);
    const two = await dp.valueAndGrads(job, vars);
    const v1 = (await one.value.data())[0];
    assert.ok(Math.abs(two.value - v1) <= 1e-5 * Math.max(1, Math.abs(v1)), `loss ${two.value} vs ${v1}`);
    assert.ok((await maxRelDiff(one.grads, two.grads)) < 1e-4);
    tf.dispose([one.value, ...one.grads, ...two.grads]);
  } finally {
    await dp.close();
    model.dispose();
  }
});

test('generate: 2 processes sample exactly what one does (one stream per row); greedy too', async () => {
  const model = await Qwen2ForCausalLM.fromPretrained(FIX);
  const prompts = rows.slice(0, 7).map((r) => promptIds(tok, r));
  const opts = { max_new_tokens: 24, pad_token_id: tok.pad_token_id, stop_token_ids: tok.stop_token_ids, temperature: 1.2 };
  const dp = await DataParallel.start(model, 2);
  try {
    const streamsA = rowStreams(new Rng(5), prompts.length);
    const streamsB = rowStreams(new Rng(5), prompts.length);
    const one = await generate(model, prompts, { ...opts, do_sample: true, rngs: streamsA });
    const two = await dp.generate(prompts, { ...opts, do_sample: true, rngs: streamsB });
    assert.deepEqual(two.sequences, one.sequences);
    assert.deepEqual(two.completion_mask, one.completion_mask);
    assert.deepEqual(two.finish_reasons, one.finish_reasons);
    two.logprobs.forEach((l, i) => l.forEach((x, j) => assert.ok(Math.abs(x - one.logprobs[i][j]) < 1e-5)));
    assert.deepEqual(streamsB.map((r) => r.state), streamsA.map((r) => r.state), 'streams advance as in one process');
    const g1 = await generate(model, prompts, { ...opts, do_sample: false });
    const g2 = await dp.generate(prompts, { ...opts, do_sample: false });
    assert.deepEqual(g2.sequences, g1.sequences);
    await assert.rejects(dp.generate(prompts, { ...opts, do_sample: true, rng: new Rng(1) }), /one stream per prompt/);
  } finally {
    await dp.close();
    model.dispose();
  }
});

test('a failing replica rejects with its rank; close() stops the workers', async () => {
  const model = await Qwen2ForCausalLM.fromPretrained(FIX);
  const dp = await DataParallel.start(model, 2);
  try {
    const job = sftJob();
    // Only rank 1's share (the second half of the rows) holds an id past the vocabulary.
    const half = job.batch.input_ids.length / 2;
    const bad: Objective = { ...job, batch: { ...job.batch, input_ids: job.batch.input_ids.map((r, i) => (i >= half ? r.map(() => 1e9) : r)) } };
    await assert.rejects(dp.valueAndGrads(bad, model.trainableVariables()), /rank 1/);
  } finally {
    await dp.close();
    await dp.close(); // twice is fine
    model.dispose();
  }
});

test('trainSFT with 2 processes follows the 1-process run (loss per step within float rounding)', async () => {
  const { trainSFT } = await import('../src/train/sft');
  const { SFT_DEFAULTS } = await import('../src/train/config');
  const config = { ...SFT_DEFAULTS, max_steps: 3, logging_steps: 1, per_device_train_batch_size: 6, learning_rate: 3e-3, warmup_ratio: 0 };
  const losses: number[][] = [];
  for (const n of [1, 2]) {
    const model = await Qwen2ForCausalLM.fromPretrained(FIX);
    const dp = await DataParallel.start(model, n);
    try {
      const r = await trainSFT({ model, tokenizer: tok, rows, config, progress: false, parallel: dp });
      losses.push(r.history.map((m) => m.loss));
    } finally {
      await dp.close();
      model.dispose();
    }
  }
  assert.equal(losses[1].length, 3);
  losses[1].forEach((l, i) => assert.ok(Math.abs(l - losses[0][i]) / losses[0][i] < 1e-4, `step ${i + 1}: ${l} vs ${losses[0][i]}`));
  assert.ok(losses[0][2] < losses[0][0], 'the loss went down');
});

test('started from a folder outside the project, ROOT and the workers\' boot script still resolve (or it fails saying so)', () => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'elsewhere-'));
  const tsx = pathToFileURL(path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const r = spawnSync(process.execPath, ['--import', tsx, path.join(ROOT, 'tests', 'helpers', 'parallel_elsewhere.ts')], { cwd: elsewhere, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [where, done] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual([where.root, where.cwd], [ROOT, fs.realpathSync(elsewhere)]);
  assert.deepEqual(done, { size: 2, rows: 2 });
  assert.equal(findRoot(path.join(ROOT, 'src', 'util', 'paths.ts')), ROOT);
  assert.throws(() => findRoot(path.join(elsewhere, 'src', 'util', 'paths.ts')), /cannot locate the project root: .* is not toolcall-grpo's package.json/);
  assert.throws(() => findRoot(null), /cannot locate the project root/);
  fs.rmSync(elsewhere, { recursive: true, force: true });
});
