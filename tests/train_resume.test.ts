// End to end on a micro model: SFT -> GRPO in a real child process, SIGKILL mid-run, the last checkpoint
// loads, --resume finishes, and the resumed run's metrics equal an uninterrupted run's (same seed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/model/backend';
import { synthesize, writeSplits } from '../src/env/synth';
import { Qwen2ForCausalLM } from '../src/model/qwen2';
import { addLora, loadAdapter } from '../src/model/lora';
import { GRPOState, grpoStep, saveGRPOCheckpoint } from '../src/train/grpo';
import type { PromptSampler, SamplerPosition } from '../src/train/sampler';
import type { TrainRow } from '../src/train/batch';
import { GRPO_DEFAULTS } from '../src/train/config';
import { grpoPhase, loadStart } from '../src/train/phases';
import { makeBatch, promptIds, goldCompletionIds } from '../src/train/batch';
import { completionLogps, sharedPrefixLength } from '../src/train/logps';
import { per_token_logps } from '../src/model/logprobs';
import { latestCheckpoint, loadCheckpoint, listCheckpoints } from '../src/train/checkpoint';
import { isGRPOMetrics, readMetrics } from '../src/train/log';
import { ROOT } from '../src/util/paths';

const TIMING = new Set(['step_seconds', 'generation_seconds', 'train_seconds', 'tokens_per_second']);
const GRPO_FLAGS = ['--reward_funcs=seed', '--dynamic_sampling=false', '--max_steps=6', '--save_steps=2', '--num_generations=4', '--per_device_train_batch_size=8', '--gradient_accumulation_steps=2',
  '--max_completion_length=40', '--learning_rate=2e-3', '--beta=0.04', '--seed=3', '--backend=wasm', '--logging_steps=1'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'train-resume-'));
const dataDir = path.join(tmp, 'data');
// A micro Qwen2 already SFT'd (scripts/make-train-fixture.ts), so GRPO's rewards vary from the first step.
const sftDir = path.join(ROOT, 'tests/fixtures/micro-sft');

function trainArgs(out: string, extra: string[] = []): string[] {
  return ['--import', 'tsx', path.join(ROOT, 'src/run.ts'), 'train', '--algo=grpo', `--model=${sftDir}`, `--data=${dataDir}`, `--output_dir=${out}`, ...GRPO_FLAGS, ...extra];
}

function withoutTiming(ms: readonly object[]): Record<string, unknown>[] {
  return ms.map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => !TIMING.has(k))));
}

/**
 * Same keys, same discrete values (steps, rewards, lengths, exact match, skips), floats equal to 1e-6
 * relative. Why not bit-equal floats: two identical processes usually agree to the last bit, but under
 * CPU load we have seen ulp-level differences in wasm logits between processes (the V8 wasm tiers may
 * run a SIMD kernel differently), which moves e.g. the entropy estimate in its 8th digit and nothing else.
 */
function assertSameRun(b: Record<string, unknown>[], a: Record<string, unknown>[]): void {
  assert.equal(b.length, a.length);
  a.forEach((ma, i) => {
    const mb = b[i];
    assert.deepEqual(Object.keys(mb).sort(), Object.keys(ma).sort());
    for (const [k, va] of Object.entries(ma)) {
      const vb = mb[k];
      if (typeof va === 'number' && typeof vb === 'number') {
        assert.ok(Math.abs(va - vb) <= 1e-6 * Math.max(1, Math.abs(va)), `step ${ma.step} ${k}: ${vb} vs ${va}`);
      } else assert.deepEqual(vb, va, `step ${ma.step} ${k}`);
    }
  });
}

function closeFloats(x: Buffer, y: Buffer): boolean {
  if (x.length !== y.length) return false;
  const hx = x.readBigUInt64LE(0);
  if (hx !== y.readBigUInt64LE(0) || !x.subarray(0, 8 + Number(hx)).equals(y.subarray(0, 8 + Number(hx)))) return false; // same header
  const fx = new Float32Array(x.buffer.slice(x.byteOffset + 8 + Number(hx), x.byteOffset + x.length));
  const fy = new Float32Array(y.buffer.slice(y.byteOffset + 8 + Number(hx), y.byteOffset + y.length));
  return fx.every((v, i) => Math.abs(v - fy[i]) <= 1e-5 * Math.max(1e-3, Math.abs(v)));
}

test('setup: data; the micro SFT fixture is there', async () => {
  await initBackend('wasm');
  const splits = synthesize({ seed: 0, n: 300, nTest: 20, nHeldout: 10 });
  writeSplits(splits, dataDir);
  assert.ok(fs.existsSync(path.join(sftDir, 'model.safetensors')) && fs.existsSync(path.join(sftDir, 'tokenizer.json')),
    'missing tests/fixtures/micro-sft (npx tsx scripts/make-train-fixture.ts)');
});

test('GRPO: SIGKILL mid-run leaves a loadable checkpoint; --resume reproduces the uninterrupted run', async () => {
  // Uninterrupted reference run.
  const runA = path.join(tmp, 'runA');
  const a = spawnSync(process.execPath, trainArgs(runA), { cwd: ROOT, encoding: 'utf8' });
  assert.equal(a.status, 0, a.stderr);
  const metricsA = readMetrics(path.join(runA, 'metrics.jsonl')).filter(isGRPOMetrics);
  assert.deepEqual(metricsA.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  // The run learned something real: gradients flowed and rewards varied within groups.
  assert.ok(metricsA.some((m) => m.grad_norm > 0), 'no gradient in any step');
  assert.ok(metricsA.some((m) => m.frac_reward_zero_std < 1), 'every group had zero reward spread');
  for (const k of ['reward', 'reward_std', 'rewards/seed_reward/mean', 'frac_reward_zero_std', 'completions/mean_length', 'completions/clipped_ratio',
    'kl', 'entropy', 'clip_ratio/region_mean', 'learning_rate', 'grad_norm', 'step_seconds', 'tokens_per_second']) {
    assert.ok(k in metricsA[0], `metrics.jsonl lacks ${k}`);
  }
  assert.deepEqual(listCheckpoints(runA).map((c) => c.step), [4, 6]); // save_total_limit 2

  // Same run, killed with SIGKILL once step 3 is logged (somewhere in step 4 or the save of checkpoint-4).
  const runB = path.join(tmp, 'runB');
  const child = spawn(process.execPath, trainArgs(runB), { cwd: ROOT, stdio: 'ignore' });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const mf = path.join(runB, 'metrics.jsonl');
  for (;;) {
    await new Promise((r) => setTimeout(r, 25));
    if (readMetrics(mf, { tolerant: true }).length >= 3) break;
    if (child.exitCode !== null) assert.fail('child exited before it could be killed');
  }
  child.kill('SIGKILL');
  await exited;
  const last = latestCheckpoint(runB);
  assert.ok(last, 'no complete checkpoint after the kill');
  const ck = loadCheckpoint(last!);
  assert.ok(ck.state.global_step === 2 || ck.state.global_step === 4);
  const model = await Qwen2ForCausalLM.fromPretrained(sftDir);
  await loadAdapter(model, last!); // the adapter in the checkpoint is a valid PEFT adapter
  assert.equal(model.adapter.state, 'active');
  model.dispose();

  // Resume: continues from the checkpoint, rewrites metrics after it, and ends where run A ended.
  const c = spawnSync(process.execPath, trainArgs(runB, [`--resume=${runB}`]), { cwd: ROOT, encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const metricsB = readMetrics(path.join(runB, 'metrics.jsonl'));
  assertSameRun(withoutTiming(metricsB), withoutTiming(metricsA));
  // Final adapters agree (same tensors, same shapes, values to float rounding; see assertSameRun).
  const fa = fs.readFileSync(path.join(runA, 'checkpoint-6', 'adapter_model.safetensors'));
  const fb = fs.readFileSync(path.join(runB, 'checkpoint-6', 'adapter_model.safetensors'));
  assert.ok(closeFloats(fa, fb), 'final adapters differ');
  assert.deepEqual(loadCheckpoint(path.join(runB, 'checkpoint-6')).state.data_cursor, loadCheckpoint(path.join(runA, 'checkpoint-6')).state.data_cursor);
  assert.deepEqual(loadCheckpoint(path.join(runB, 'checkpoint-6')).state.rng_state, loadCheckpoint(path.join(runA, 'checkpoint-6')).state.rng_state);
});

test('GRPO in process: skip_zero_std_groups, dr_grpo, num_iterations=2; memory does not grow across steps', async () => {
  await initBackend('wasm');
  const rows = fs.readFileSync(path.join(dataDir, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const counts: number[] = [];
  const r = await grpoPhase({
    start: { base_model: sftDir, sft_adapter: null }, runDir: path.join(tmp, 'runC'), rows, progress: false,
    config: { ...GRPO_DEFAULTS, reward_funcs: ['seed'], dynamic_sampling: false, max_steps: 3, save_steps: 0, num_generations: 4, per_device_train_batch_size: 8, gradient_accumulation_steps: 1, max_completion_length: 40,
      learning_rate: 5e-3, loss_type: 'dr_grpo', num_iterations: 2, skip_zero_std_groups: true, mask_truncated_completions: true, seed: 5 },
    onStep: () => counts.push(tf.memory().numTensors),
  });
  assert.equal(r.steps, 3);
  assert.equal(counts[1], counts[0]);
  assert.equal(counts[2], counts[0]);
  for (const m of r.history) {
    assert.ok(typeof m.frac_groups_skipped === 'number');
    // Skipped groups are exactly the ones whose completions all agree on exact match.
    if (m.frac_groups_skipped === 1) assert.equal(m.skipped, 'every group had zero exact-match spread');
  }
  assert.deepEqual(listCheckpoints(path.join(tmp, 'runC')).map((c) => c.step), [3]); // saved at the end
});

test('grpoStep asks its sampler for the step\'s prompts; the sampler\'s position goes into the checkpoint and back', async () => {
  await initBackend('wasm');
  const rows: TrainRow[] = fs.readFileSync(path.join(dataDir, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  /** Every third row, in order: a stand-in for a filtering sampler, with state beyond the cursor. */
  class EveryThird implements PromptSampler {
    asked: number[] = [];
    constructor(private k = 0) {}
    next(n: number): TrainRow[] {
      this.asked.push(n);
      const out = Array.from({ length: n }, (_, i) => rows[(3 * (this.k + i)) % rows.length]);
      this.k += n;
      return out;
    }
    position(): SamplerPosition {
      return { data_cursor: 3 * this.k, sampler_state: { k: this.k, stride: 3 } };
    }
  }
  const { model, tokenizer } = await loadStart({ base_model: sftDir, sft_adapter: null });
  addLora(model, { r: 4, lora_alpha: 8 }, 0);
  const config = { ...GRPO_DEFAULTS, reward_funcs: ['seed'], dynamic_sampling: false, num_generations: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 1, max_completion_length: 8, seed: 2 };
  const sampler = new EveryThird();
  const state = GRPOState.create({ model, tokenizer, config, sampler });
  try {
    const r = await grpoStep(state);
    assert.deepEqual(sampler.asked, [2]); // prompts_per_step = 4 / 2
    assert.deepEqual(r.rollout.rows.map((x) => x.id), [rows[0].id, rows[0].id, rows[3].id, rows[3].id]);
    assert.equal(r.metrics.step, 1);
    assert.equal(state.step, 1);
    assert.equal(r.scored.rewards.length, 4);
    assert.equal(typeof r.metrics['rewards/seed_reward/mean'], 'number');
    const given = await grpoStep(state, [rows[1]]); // rows given: the sampler is not asked
    assert.deepEqual(sampler.asked, [2]);
    assert.deepEqual(given.rollout.rows.map((x) => x.id), [rows[1].id, rows[1].id]);
    const dir = await saveGRPOCheckpoint(state, path.join(tmp, 'runSampler'));
    const ck = loadCheckpoint(dir);
    assert.deepEqual([ck.state.global_step, ck.state.data_cursor, ck.state.sampler_state], [2, 6, { k: 2, stride: 3 }]);
    assert.equal(ck.state.rng_state, state.rng.state);
    // A state built from the checkpoint continues: same step, same sampling stream, the optimizer's moments.
    const again = GRPOState.create({ model, tokenizer, config, sampler: new EveryThird((ck.state.sampler_state as { k: number }).k), resume: ck });
    assert.deepEqual([again.step, again.rng.state, again.optimizer.step], [2, state.rng.state, 2]);
    again.dispose();
  } finally {
    state.dispose();
    model.dispose();
  }
  // Without an active adapter there is no policy to train (the reference is the adapter switched off).
  const bare = await loadStart({ base_model: sftDir, sft_adapter: null });
  assert.throws(() => GRPOState.create({ model: bare.model, tokenizer: bare.tokenizer, config, rows }), /active LoRA adapter/);
  assert.throws(() => { addLora(bare.model, { r: 2 }); GRPOState.create({ model: bare.model, tokenizer: bare.tokenizer, config, rows: [] }); }, /prompt pool is empty/);
  bare.model.dispose();
});

test('completionLogps: the shared-prefix forward gives per_token_logps values and gradients', async () => {
  await initBackend('wasm');
  const { model, tokenizer } = await loadStart({ base_model: sftDir, sft_adapter: null });
  const rows = synthesize({ seed: 1, n: 60, nTest: 5, nHeldout: 5 }).train.slice(0, 6);
  const b = makeBatch(rows.map((r) => promptIds(tokenizer, r)), rows.map((r) => goldCompletionIds(tokenizer, r)), tokenizer.pad_token_id);
  assert.ok(sharedPrefixLength(b) >= 16, 'rows should share the system prompt');
  assert.ok(new Set(b.attention_mask.map((m) => m.indexOf(1))).size > 1, 'rows should have different left padding');
  const vars = model.trainableVariables();
  const mask = tf.tensor2d(b.completion_mask);
  const plain = () => per_token_logps(model, tf.tensor2d(b.input_ids, undefined, 'int32'), { attention_mask: tf.tensor2d(b.attention_mask, undefined, 'int32'), logits_to_keep: b.completion_length });
  const g1 = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.mul(plain(), mask))) as tf.Scalar, vars);
  const g2 = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.mul(completionLogps(model, b), mask))) as tf.Scalar, vars);
  const v1 = (await g1.value.data())[0], v2 = (await g2.value.data())[0];
  assert.ok(Math.abs(v1 - v2) < 1e-3 * Math.abs(v1), `${v1} vs ${v2}`);
  for (const v of vars) {
    const x = await g1.grads[v.name].data(), y = await g2.grads[v.name].data();
    let n = 0, d = 0;
    for (let i = 0; i < x.length; i++) { n += x[i] * x[i]; d += (x[i] - y[i]) ** 2; }
    assert.ok(Math.sqrt(d) <= 1e-4 * Math.sqrt(n) + 1e-7, `gradient of ${v.name} differs`);
  }
  tf.dispose([g1.value, g2.value, mask, ...Object.values(g1.grads), ...Object.values(g2.grads)]);
  model.dispose();
});
