// Pure parts of training on synthetic arrays and tensors: config resolution, advantages, objectives, optimizer,
// checkpoint, log, progress.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ArgError, parseFlags } from '../src/util/args';
import { GRPO_DEFAULTS, configFlagSpec, formatResolved, grpoBatchShape, resolve, type PhaseName, type PresetName } from '../src/train/config';
import { computeAdvantages, zeroSignalGroups, std } from '../src/train/advantage';
import { grpoLoss, grpoLossReference, lossMetrics, stopGradient, type LossOptions } from '../src/train/objectives';
import { REWARDS } from '../src/verify/reward';
import { AdamW, GradAccumulator, allFinite, clipByGlobalNorm, globalNorm, learningRateAt, optimizerStep } from '../src/train/optim';
import { saveCheckpoint, loadCheckpoint, latestCheckpoint, listCheckpoints, removeStaleTemps } from '../src/train/checkpoint';
import { MetricsLog, readMetrics } from '../src/train/log';
import { Progress, fmtTime } from '../src/util/progress';
import { Rng } from '../src/util/rng';

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} != ${b}`);
const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'train-test-'));

/** A phase's config from command-line words, as `train` resolves it. */
function parseConfig<P extends PhaseName>(phase: P, argv: string[], preset: PresetName | null = null, checkpoint?: { file: string; config: Record<string, unknown> }) {
  return resolve(phase, preset, parseFlags(argv, configFlagSpec(phase)), { checkpoint });
}

test('config: overrides typed by the field tables; unknown keys, wrong types and bad ranges rejected', () => {
  const c = parseConfig('grpo', ['--learning_rate=5e-6', '--num_generations', '4', '--per_device_train_batch_size=8',
    '--loss_type=dr_grpo', '--reward_funcs=seed,strict', '--reward_weights=1,0.5', '--mask_truncated_completions']).config;
  assert.equal(c.learning_rate, 5e-6);
  assert.equal(c.num_generations, 4);
  assert.equal(c.loss_type, 'dr_grpo');
  assert.deepEqual(c.reward_funcs, ['seed', 'strict']);
  assert.deepEqual(c.reward_weights, [1, 0.5]);
  assert.equal(c.mask_truncated_completions, true);
  assert.equal(c.beta, GRPO_DEFAULTS.beta); // untouched keys keep their defaults
  assert.deepEqual(grpoBatchShape(c), { completions_per_step: 32, prompts_per_step: 8, prompts_per_micro_batch: 2 }); // x4 accumulation
  assert.throws(() => parseConfig('grpo', ['--learnin_rate=1']), (e: Error) => e instanceof ArgError && /unknown flag --learnin_rate; did you mean --learning_rate\?/.test(e.message));
  assert.throws(() => parseConfig('grpo', ['--num_generations=2.5']), /expects an integer/);
  assert.throws(() => parseConfig('grpo', ['--beta=abc']), /expects a number/);
  assert.throws(() => parseConfig('grpo', ['--loss_type=ppo']), /must be one of/);
  assert.throws(() => parseConfig('grpo', ['--num_generations=3']), /--num_generations: per_device_train_batch_size=16 must be a multiple of num_generations=3/);
  assert.throws(() => parseConfig('grpo', ['--num_generations=4', '--per_device_train_batch_size=6']), /--per_device_train_batch_size: per_device_train_batch_size=6 must be a multiple/);
  assert.throws(() => parseConfig('grpo', ['--num_generations=1', '--per_device_train_batch_size=4']), /--num_generations: must be >= 2/);
  assert.throws(() => parseConfig('grpo', ['--reward_weights=1,2']), /--reward_weights: reward_weights needs 1 weights/);
  assert.throws(() => parseConfig('grpo', ['--reward_weights=1,x']), /expects numbers/);
  assert.throws(() => parseConfig('sft', ['--warmup_ratio=1.5']), /--warmup_ratio: must be in \[0, 1\) \(got 1.5\)/);
  assert.throws(() => parseConfig('sft', ['--num_generations=4']), /unknown flag/); // not an SFT key
  assert.throws(() => parseConfig('pretrain', ['--seq_len=4']), /--seq_len: must be >= 8/);
});

test('config: reward names are checked against REWARDS when resolved, with a did-you-mean', () => {
  const known = Object.keys(REWARDS);
  assert.ok(known.includes('seed') && known.includes('strict'));
  for (const name of known) assert.deepEqual(parseConfig('grpo', [`--reward_funcs=${name}`]).config.reward_funcs, [name]);
  assert.throws(() => parseConfig('grpo', ['--reward_funcs=seed,strcit']), (e: Error) => e instanceof ArgError
    && /--reward_funcs: 'strcit' is not one of/.test(e.message) && /did you mean 'strict'\?/.test(e.message));
  assert.throws(() => parseConfig('grpo', ['--reward_funcs=']), /needs at least one reward function/);
});

test('config: presets are data; defaults < preset < what the command sets < flags, each value with its source', () => {
  const base = parseConfig('sft', [], 'tiny-base');
  assert.equal(base.config.learning_rate, 1e-3); // the course's SFT from the pretrained base = the defaults
  assert.equal(base.source.learning_rate, 'default');
  const scratch = parseConfig('sft', [], 'tiny-scratch');
  assert.equal(scratch.config.learning_rate, 3e-3);
  assert.equal(scratch.source.learning_rate, 'preset');
  const real = parseConfig('sft', ['--lora_r=8'], 'checkpoint-lora');
  assert.deepEqual([real.config.use_peft, real.config.learning_rate, real.config.lora_r, real.config.lora_alpha], [true, 2e-4, 8, 32]);
  assert.equal(real.source.lora_r, 'flag');
  assert.equal(parseConfig('grpo', [], 'checkpoint-lora').config.learning_rate, 5e-5);
  // SFT's LoRA has its own fields: --sft.lora_r does not touch GRPO's.
  const flags = parseFlags(['--sft.lora_r=4', '--sft.learning_rate=0.01'], { ...configFlagSpec('sft', 'sft.'), ...configFlagSpec('grpo', 'grpo.') });
  const sft = resolve('sft', 'checkpoint-lora', flags, { prefix: 'sft.', set: { seed: 3, output_dir: '/tmp/x/sft' } });
  const grpo = resolve('grpo', 'checkpoint-lora', flags, { prefix: 'grpo.', set: { seed: 3 } });
  assert.deepEqual([sft.config.lora_r, grpo.config.lora_r], [4, 16]);
  assert.deepEqual([sft.config.seed, sft.source.seed, sft.config.output_dir], [3, 'command', '/tmp/x/sft']);
  assert.equal(sft.config.learning_rate, 0.01); // a flag beats the preset
  assert.throws(() => resolve('sft', 'nope' as PresetName, {}), /unknown preset 'nope'/);
  // Folders: a flag is relative to the current directory, and every resolved folder is absolute.
  assert.equal(parseConfig('grpo', ['--output_dir=some/run']).config.output_dir, path.resolve('some/run'));
  assert.ok(path.isAbsolute(parseConfig('grpo', []).config.output_dir));
  assert.match(formatResolved('sft config', scratch), /sft config \(preset tiny-scratch\):\n[\s\S]*learning_rate +0\.003 {2}\(preset tiny-scratch\)/);
});

test('config --resume: the checkpoint config is validated; flags that change it are listed; some fields cannot change', () => {
  const file = '/runs/r/checkpoint-4/training_config.json';
  const saved = { ...parseConfig('grpo', ['--max_steps=6', '--seed=3']).config } as Record<string, unknown>;
  const same = parseConfig('grpo', ['--max_steps=6', '--seed=3'], 'tiny-base', { file, config: saved });
  assert.deepEqual(same.overrides, []); // the same values again are no override
  assert.equal(same.source.max_steps, 'checkpoint');
  assert.match(formatResolved('grpo config', same), /--resume from \/runs\/r\/checkpoint-4\/training_config\.json: the command line overrides nothing/);
  const longer = parseConfig('grpo', ['--max_steps=10', '--num_processes=1'], 'tiny-base', { file, config: saved });
  assert.equal(longer.config.max_steps, 10);
  assert.equal(longer.config.seed, 3); // from the checkpoint, not the default
  assert.deepEqual(longer.overrides.map((o) => [o.key, o.checkpoint, o.value]), [['max_steps', 6, 10], ['num_processes', 0, 1]]);
  assert.match(formatResolved('grpo config', longer), /max_steps +10 {2}<- --max_steps \(checkpoint: 6\)[\s\S]*overrides max_steps 6 -> 10, num_processes 0 -> 1/);
  assert.throws(() => parseConfig('grpo', ['--lora_r=8'], 'tiny-base', { file, config: saved }), /--lora_r=8: cannot change when resuming \(the run started with 16/);
  assert.throws(() => parseConfig('grpo', [], 'tiny-base', { file, config: { ...saved, learning_rate: 'fast' } }), new RegExp(`${file}: learning_rate: expects a number`));
  assert.throws(() => parseConfig('grpo', [], 'tiny-base', { file, config: { ...saved, lora_rank: 4 } }), /unknown grpo config key lora_rank/);
  assert.throws(() => parseConfig('grpo', [], 'tiny-base', { file, config: { ...saved, reward_funcs: ['gone'] } }), /training_config\.json: reward_funcs: 'gone' is not one of/);
  const { top_k: _dropped, ...older } = saved;
  void _dropped;
  const old = parseConfig('grpo', [], 'tiny-base', { file, config: older });
  assert.deepEqual(old.missing, ['top_k']);
  assert.equal(old.config.top_k, 0);
});

test('advantages: group mean-centred, scaled by group / batch / no std (unbiased, +1e-4)', () => {
  const r = [1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5];
  const g = computeAdvantages(r, 4, 'group');
  const s0 = std([1, 0, 0, 0]); // sum of squares 0.75 / (n - 1) = 0.25
  close(s0, 0.5);
  close(g.advantages[0], 0.75 / (s0 + 1e-4));
  close(g.advantages[1], -0.25 / (s0 + 1e-4));
  assert.deepEqual(g.advantages.slice(4), [0, 0, 0, 0]);
  assert.deepEqual(g.is_std_zero, [false, true]);
  assert.equal(g.frac_reward_zero_std, 0.5);
  assert.deepEqual(g.mean_grouped_rewards, [0.25, 0.5]);
  const b = computeAdvantages(r, 4, 'batch');
  close(b.advantages[0], 0.75 / (std(r) + 1e-4));
  const n = computeAdvantages(r, 4, 'none');
  assert.deepEqual(n.advantages, [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]);
  // Each group's advantages sum to zero.
  close(g.advantages.slice(0, 4).reduce((a, x) => a + x, 0), 0);
  assert.throws(() => computeAdvantages([1, 2, 3], 2, 'group'), /multiple of num_generations/);
});

test('zero-signal groups are judged on exact match, not on partial credit', () => {
  // Group 0: seed rewards differ (0.2 vs 0.5: both wrong) -> reward std > 0 but no exact-match signal.
  const rewards = [0.2, 0.5, 0.2, 0.5, 1, 0.2, 0.2, 0.2];
  const exact = [false, false, false, false, true, false, false, false];
  assert.deepEqual(computeAdvantages(rewards, 4, 'group').is_std_zero, [false, false]);
  assert.deepEqual(zeroSignalGroups(exact, 4), [true, false]);
  assert.deepEqual(zeroSignalGroups([true, true, false, false], 2), [true, true]);
});

const OPTS: LossOptions = { beta: 0.04, epsilon: 0.2, epsilon_high: 0.28, loss_type: 'grpo', max_completion_length: 5 };

function lossCase(rng: Rng) {
  const B = 4, T = 5;
  const lp = Array.from({ length: B }, () => Array.from({ length: T }, () => -0.1 - 2 * rng.next()));
  const old = lp.map((r) => r.map((x) => x + 0.4 * (rng.next() - 0.5)));
  const ref = lp.map((r) => r.map((x) => x + 0.3 * (rng.next() - 0.5)));
  const adv = [1.2, -0.7, 0.3, -1.1];
  const mask = [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]];
  return { B, T, lp, old, ref, adv, mask };
}

test('grpoLoss matches the array formula for every loss_type (one micro-batch)', () => {
  const { B, T, lp, old, ref, adv, mask } = lossCase(new Rng(3));
  const tokens = mask.flat().reduce((a, b) => a + b, 0);
  for (const loss_type of ['grpo', 'bnpo', 'dapo', 'dr_grpo'] as const) {
    const o = { ...OPTS, loss_type };
    const v = tf.tidy(() => grpoLoss({
      per_token_logps: tf.tensor2d(lp), old_per_token_logps: tf.tensor2d(old), ref_per_token_logps: tf.tensor2d(ref),
      advantages: tf.tensor1d(adv), completion_mask: tf.tensor2d(mask),
    }, o, { num_sequences: B, num_tokens: tokens, num_micro_batches: 1 }).dataSync()[0]);
    close(v, grpoLossReference(lp, old, ref, adv, mask, o));
  }
  // The aggregations really differ (grpo weights short sequences' tokens more).
  const a = grpoLossReference(lp, old, ref, adv, mask, { ...OPTS, loss_type: 'grpo' });
  const b = grpoLossReference(lp, old, ref, adv, mask, { ...OPTS, loss_type: 'bnpo' });
  assert.ok(Math.abs(a - b) > 1e-3);
  assert.equal(T, 5);
});

test('loss with micro-batches: summed micro-batch losses equal the whole-step loss', () => {
  const { B, lp, old, ref, adv, mask } = lossCase(new Rng(4));
  const tokens = mask.flat().reduce((a, b) => a + b, 0);
  for (const loss_type of ['grpo', 'dapo', 'dr_grpo'] as const) {
    const o = { ...OPTS, loss_type };
    const whole = grpoLossReference(lp, old, ref, adv, mask, o);
    let sum = 0;
    for (const [s, e] of [[0, 2], [2, 4]]) {
      sum += tf.tidy(() => grpoLoss({
        per_token_logps: tf.tensor2d(lp.slice(s, e)), old_per_token_logps: tf.tensor2d(old.slice(s, e)),
        ref_per_token_logps: tf.tensor2d(ref.slice(s, e)), advantages: tf.tensor1d(adv.slice(s, e)),
        completion_mask: tf.tensor2d(mask.slice(s, e)),
      }, o, { num_sequences: B, num_tokens: tokens, num_micro_batches: 2 }).dataSync()[0]);
    }
    close(sum, whole);
  }
});

test('num_iterations=1 (old = detached current): loss is -mean(A), gradient is -A/len per token (grpo)', () => {
  const lp = [[-1, -2, -0.5], [-0.3, -0.2, -0.1]];
  const mask = [[1, 1, 0], [1, 1, 1]];
  const adv = [1.5, -0.5];
  const x = tf.variable(tf.tensor2d(lp));
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => grpoLoss({
    per_token_logps: x as unknown as tf.Tensor2D, old_per_token_logps: null, ref_per_token_logps: null,
    advantages: tf.tensor1d(adv), completion_mask: tf.tensor2d(mask),
  }, { ...OPTS, beta: 0 }, { num_sequences: 2, num_tokens: 5, num_micro_batches: 1 }), [x]);
  close(value.dataSync()[0], -(1.5 + -0.5) / 2);
  const g = grads[x.name].arraySync() as number[][];
  // d/dlogp of -(ratio * A) with ratio = exp(lp - sg(lp)) = 1 is -A, then / tokens(seq) / B.
  close(g[0][0], -1.5 / 2 / 2); close(g[0][1], -1.5 / 2 / 2); assert.equal(g[0][2], 0);
  close(g[1][0], 0.5 / 3 / 2);
  tf.dispose([value, grads[x.name]]);
  assert.equal(tf.memory().numTensors, before);
  // stopGradient really stops it.
  const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(stopGradient(t), t)))(tf.tensor1d([2, 3]));
  assert.deepEqual(Array.from(g2.dataSync()), [2, 3]);
  x.dispose();
});

test('clipping: gradient is zero where the ratio is clipped on the advantage side; metrics count those tokens', () => {
  // Token ratios exp(0.5)=1.65 (A>0: clipped high), exp(-0.5)=0.61 (A<0: clipped low), exp(0.1) in range.
  const old = [[0, 0, 0], [0, 0, 0]];
  const lpv = [[0.5, 0.1, 0.0], [-0.5, 0.1, 0.0]];
  const adv = [1, -1];
  const mask = [[1, 1, 1], [1, 1, 1]];
  const x = tf.variable(tf.tensor2d(lpv));
  const { grads, value } = tf.variableGrads(() => grpoLoss({
    per_token_logps: x as unknown as tf.Tensor2D, old_per_token_logps: tf.tensor2d(old), ref_per_token_logps: null,
    advantages: tf.tensor1d(adv), completion_mask: tf.tensor2d(mask),
  }, { ...OPTS, beta: 0, epsilon_high: 0.2 }, { num_sequences: 2, num_tokens: 6, num_micro_batches: 1 }), [x]);
  const g = grads[x.name].arraySync() as number[][];
  assert.equal(g[0][0], 0); // clipped high with A > 0: no gradient
  assert.equal(g[1][0], 0); // clipped low with A < 0: no gradient
  assert.ok(g[0][1] < 0 && g[1][1] > 0);
  const m = lossMetrics(lpv, old, null, adv, mask, { epsilon: 0.2, epsilon_high: 0.2 });
  close(m['clip_ratio/high_mean'], 1 / 6);
  close(m['clip_ratio/low_mean'], 1 / 6);
  close(m['clip_ratio/region_mean'], 2 / 6);
  assert.equal(m.kl, 0);
  tf.dispose([value, grads[x.name], x]);
});

test('k3 KL is zero at the reference and positive elsewhere', () => {
  const lp = [[-1, -2]], mask = [[1, 1]];
  assert.equal(lossMetrics(lp, null, lp, [0], mask, OPTS).kl, 0);
  const kl = lossMetrics(lp, null, [[-1.5, -1]], [0], mask, OPTS).kl;
  const k = (d: number) => Math.exp(d) - d - 1;
  close(kl, (k(-0.5) + k(1)) / 2);
});

test('learning rate schedules: warmup then constant / linear / cosine', () => {
  const c = { learning_rate: 1, max_steps: 10, warmup_ratio: 0.2, lr_scheduler_type: 'linear' as const };
  assert.equal(learningRateAt(0, c), 0);
  assert.equal(learningRateAt(1, c), 0.5);
  assert.equal(learningRateAt(2, c), 1);
  close(learningRateAt(6, c), 0.5);
  assert.equal(learningRateAt(10, c), 0);
  assert.equal(learningRateAt(6, { ...c, lr_scheduler_type: 'constant' }), 1);
  close(learningRateAt(6, { ...c, lr_scheduler_type: 'cosine' }), 0.5);
  close(learningRateAt(4, { ...c, lr_scheduler_type: 'cosine' }), 0.5 * (1 + Math.cos(Math.PI * 0.25)));
});

test('AdamW: owns exactly its two moments per variable; dispose() gives them all back', () => {
  const w = tf.variable(tf.zeros([3, 2]), true, 'leak_w');
  const b = tf.variable(tf.zeros([2]), true, 'leak_b');
  const n0 = tf.memory().numTensors;
  const opt = new AdamW([w, b], { weight_decay: 0, adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8 });
  assert.equal(tf.memory().numTensors, n0 + 4);
  opt.dispose();
  assert.equal(tf.memory().numTensors, n0);
  tf.dispose([w, b]);
});

test('AdamW: matches a hand-computed step, decays matrices only, state round-trips exactly', async () => {
  const w = tf.variable(tf.tensor2d([[1, -2], [3, 4]]), true, 'w');
  const b = tf.variable(tf.tensor1d([0.5, 0.5]), true, 'b');
  const opt = new AdamW([w, b], { weight_decay: 0.1, adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8 });
  const gw = tf.tensor2d([[0.1, 0.2], [-0.3, 0.0]]);
  const gb = tf.tensor1d([1, -1]);
  opt.apply([gw, gb], 0.01);
  // Step 1: mhat = g, vhat = g^2 -> update = sign(g) (when g != 0); w <- w(1 - lr*wd) - lr*sign(g).
  const wv = w.arraySync() as number[][];
  close(wv[0][0], 1 * (1 - 0.001) - 0.01);
  close(wv[1][0], 3 * (1 - 0.001) + 0.01);
  close(wv[1][1], 4 * (1 - 0.001)); // g = 0: decay only
  const bv = b.arraySync() as number[];
  close(bv[0], 0.5 - 0.01); // no decay on 1-D
  const st = await opt.state();
  opt.apply([gw, gb], 0.01);
  const after2 = w.arraySync();
  // Restore into a fresh optimizer on variables reset to the post-step-1 values: the next step is identical.
  const w2 = tf.variable(tf.tensor2d(wv), true, 'w2');
  const b2 = tf.variable(tf.tensor1d(bv), true, 'b2');
  const opt2 = new AdamW([w2, b2], opt.opts);
  opt2.loadState(st);
  assert.equal(opt2.step, 1);
  opt2.apply([gw, gb], 0.01);
  assert.deepEqual(w2.arraySync(), after2);
  assert.throws(() => opt2.loadState({ ...st, shapes: [[3], [2]] }), /shape/);
  tf.dispose([w, b, w2, b2, gw, gb]);
  opt.dispose(); opt2.dispose();
});

test('global-norm clipping and gradient accumulation', async () => {
  const g = [tf.tensor1d([3, 0]), tf.tensor1d([0, 4])];
  const n = await globalNorm(g);
  close(n, 5);
  const c = clipByGlobalNorm(g, n, 1);
  close(await globalNorm(c), 1, 1e-5);
  assert.ok(!Number.isFinite(await globalNorm([tf.tensor1d([NaN, 1])])));
  const x = tf.variable(tf.zeros([2]), true, 'acc_x');
  const before = tf.memory().numTensors;
  const acc = new GradAccumulator([x]);
  acc.add({ acc_x: tf.tensor1d([1, 2]) });
  acc.add({ acc_x: tf.tensor1d([3, 4]) });
  const [sum] = acc.take();
  assert.deepEqual(Array.from(sum.dataSync()), [4, 6]);
  sum.dispose();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([...g, ...c, x]);
});

test('checkpoint: atomic save, newest found, limit kept, stale temps removed, optimizer exact', async () => {
  const dir = tmpdir();
  const opt = { step: 3, names: ['a', 'b'], shapes: [[2], [1, 2]], exp_avg: [new Float32Array([1, 2]), new Float32Array([0.1, -3])],
    exp_avg_sq: [new Float32Array([5, 6]), new Float32Array([7e-9, 8])] };
  for (const step of [2, 4, 6]) {
    await saveCheckpoint(dir, {
      state: { global_step: step, rng_state: 1234 + step, data_cursor: step * 4 },
      config: { lr: 1 }, optimizer: opt, save_total_limit: 2,
      writeWeights: (d) => fs.writeFileSync(path.join(d, 'adapter_model.safetensors'), 'w' + step),
    });
  }
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [4, 6]);
  const latest = latestCheckpoint(dir)!;
  assert.equal(path.basename(latest), 'checkpoint-6');
  // A killed save leaves only a hidden temp folder: not a checkpoint, and cleaned up later.
  fs.mkdirSync(path.join(dir, '.checkpoint-8.tmp-999'));
  fs.mkdirSync(path.join(dir, 'checkpoint-9')); // no trainer_state.json: incomplete, ignored
  assert.equal(path.basename(latestCheckpoint(dir)!), 'checkpoint-6');
  removeStaleTemps(dir);
  assert.ok(!fs.existsSync(path.join(dir, '.checkpoint-8.tmp-999')));
  const ck = loadCheckpoint(latest);
  assert.deepEqual(ck.state, { global_step: 6, rng_state: 1240, data_cursor: 24 });
  assert.deepEqual(ck.optimizer, opt);
  assert.equal(fs.readFileSync(path.join(latest, 'adapter_model.safetensors'), 'utf8'), 'w6');
  fs.writeFileSync(path.join(latest, 'optimizer.bin'), 'short');
  assert.throws(() => loadCheckpoint(latest), /optimizer.bin: 5 bytes/);
  assert.throws(() => loadCheckpoint(path.join(dir, 'checkpoint-9')), /missing trainer_state.json/);
});

test('metrics log: appends, non-finite named, torn line and later steps dropped on resume', () => {
  const dir = tmpdir();
  const f = path.join(dir, 'metrics.jsonl');
  const log = MetricsLog.open(f);
  for (let s = 1; s <= 5; s++) log.append({ phase: 'sft', step: s, loss: s / 10, learning_rate: 1, grad_norm: s === 3 ? NaN : 1, num_tokens: 9, step_seconds: 0.1 });
  assert.match(fs.readFileSync(f, 'utf8').split('\n')[2], /"grad_norm":null.*"nonfinite":"grad_norm"/); // JSON has no NaN
  fs.appendFileSync(f, '{"step": 6, "rew'); // a writer killed mid-line
  assert.throws(() => readMetrics(f), /metrics.jsonl:6/);
  const rows = readMetrics(f, { tolerant: true });
  assert.equal(rows.length, 5);
  assert.ok(Number.isNaN(rows[2].grad_norm)); // read back as the number it was
  assert.equal(rows[2].nonfinite, 'grad_norm');
  assert.equal(rows[1].grad_norm, 1);
  MetricsLog.open(f, 4);
  assert.deepEqual(readMetrics(f).map((m) => m.step), [1, 2, 3, 4]);
  MetricsLog.open(f);
  assert.deepEqual(readMetrics(f), []);
});

test('progress: plain mode prints every N steps and the last; tty mode redraws', () => {
  const out: string[] = [];
  const p = new Progress({ label: 'grpo', total: 25, every: 10, tty: false, write: (s) => out.push(s) });
  for (let s = 1; s <= 25; s++) p.update(s, { reward: 0.5 });
  assert.equal(out.length, 4); // steps 1, 10, 20, 25
  assert.match(out[3], /grpo \[#+\] 25\/25 {2}reward 0\.500/);
  const tty: string[] = [];
  const q = new Progress({ label: 'x', total: 2, tty: true, write: (s) => tty.push(s) });
  q.update(1); q.update(2);
  assert.ok(tty[0].startsWith('\r'));
  assert.equal(tty[tty.length - 1], '\n');
  assert.equal(fmtTime(7), '7.0s');
  assert.equal(fmtTime(59.9), '59.9s');
  assert.equal(fmtTime(59.96), '1m00s');
  assert.equal(fmtTime(75), '1m15s');
  assert.equal(fmtTime(119.6), '2m00s'); // was "1m60s"
  assert.equal(fmtTime(3725), '1h02m05s');
});

test('a non-finite gradient skips the update: weights and optimizer state unchanged, reported as skipped', async () => {
  const w = tf.variable(tf.tensor1d([1, 2]), true, 'nan_w');
  const opt = new AdamW([w], { weight_decay: 0, adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8 });
  const acc = new GradAccumulator([w]);
  acc.add({ nan_w: tf.tensor1d([NaN, 1]) });
  const before = tf.memory().numTensors;
  const r = await optimizerStep(opt, acc, 0.1, 1.0);
  assert.equal(r.skipped, true);
  assert.ok(!Number.isFinite(r.grad_norm));
  assert.deepEqual(Array.from(w.dataSync()), [1, 2]);
  assert.equal(opt.step, 0);
  assert.equal(tf.memory().numTensors, before - 1); // the accumulated NaN grad was disposed
  assert.equal(await allFinite([w]), true);
  acc.add({ nan_w: tf.tensor1d([3, 4]) });
  const ok = await optimizerStep(opt, acc, 0.1, 1.0);
  assert.equal(ok.skipped, false);
  close(ok.grad_norm, 5);
  assert.equal(opt.step, 1);
  w.assign(tf.tensor1d([Infinity, 0]));
  assert.equal(await allFinite([w]), false);
  tf.dispose(w);
  opt.dispose();
});

test('curated SFT subset: behaviours keep their share, every ask_user group and tool is represented, seeded, no repeats', async () => {
  const { synthesize } = await import('../src/env/synth');
  const { curatedSubset } = await import('../src/train/sft');
  const train = synthesize({ seed: 0, n: 3000, nTest: 0, nHeldout: 0 }).train;
  const sub = curatedSubset(train, 1000, 0);
  assert.equal(sub.length, 1000);
  assert.equal(new Set(sub.map((r) => r.id)).size, 1000);
  assert.deepEqual(curatedSubset(train, 1000, 0).map((r) => r.id), sub.map((r) => r.id));
  const count = (f: (r: (typeof sub)[number]) => boolean, rows = sub) => rows.filter(f).length;
  for (const b of ['execute', 'ask_user', 'refuse', 'no_call']) {
    const want = (1000 * count((r) => r.behavior === b, train)) / train.length;
    assert.ok(Math.abs(count((r) => r.behavior === b) - want) <= 1, `${b}: ${count((r) => r.behavior === b)} vs ${want}`);
  }
  const groups = (rows: typeof sub) => new Set(rows.filter((r) => r.behavior === 'ask_user').map((r) => r.template_id.split('.').slice(0, 3).join('.')));
  assert.deepEqual([...groups(sub)].sort(), [...groups(train)].sort());
  const tools = new Set(sub.filter((r) => r.behavior === 'execute').map((r) => r.tool));
  assert.deepEqual([...tools].sort(), [...new Set(train.filter((r) => r.behavior === 'execute').map((r) => r.tool))].sort());
  assert.equal(curatedSubset(train, 0, 0).length, train.length);
});
