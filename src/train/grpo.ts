/**
 * GRPO, TRL's GRPOTrainer reduced to one loop you can read top to bottom (`trainGRPO`):
 *
 *   rollout -> reward -> advantage -> (old / ref log-probs) -> loss + backward -> clip + AdamW step -> log -> save
 *
 * The policy is the model with a LoRA adapter; the reference for the KL term (beta > 0) is the same model
 * with the adapter switched off, so there is never a second copy of the weights.
 *
 * What is simplified, on purpose (see nanochat's chat_rl.py for the same habit):
 * - One process, one generation batch per step. With num_iterations > 1 the same batch is reused for that
 *   many optimizer updates inside the step (TRL spreads them over steps; the maths is the same).
 * - Log-probs in the loss use temperature 1 (the model's own distribution); sampling may use another
 *   temperature, which TRL folds into the log-probs. With num_iterations = 1 (default) the ratio is
 *   exp(logp - logp.detach()) = 1 either way, so this only matters for num_iterations > 1.
 * - `entropy` is the mean per-token entropy of the sampling distribution (from generate), not of the
 *   training forward.
 * - No vLLM, no reward model, no multi-GPU gather: the reward functions are plain functions on strings.
 *
 * The helpers above the loop (rollout, scoreRollout, ...) are exported so notebook 03 can run one step by hand.
 */
import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import type { Qwen2ForCausalLM } from '../model/qwen2';
import { completionLogps } from './logps';
import { generate } from '../model/generate';
import { disableLora, enableLora, saveAdapter } from '../model/lora';
import { REWARDS, scoreCompletion, type RewardFn, type RewardMode } from '../verify/reward';
import { Rng, rowStreams } from '../util/rng';
import { Progress } from '../util/progress';
import { grpoBatchShape, type GRPOConfig } from './config';
import { computeAdvantages, mean, std, zeroSignalGroups } from './advantage';
import { grpoLoss, lossMetrics, type StepSize } from './loss';
import { AdamW, GradAccumulator, allFinite, learningRateAt, optimizerStep } from './optim';
import { DataOrder, makeBatch, promptIds, sliceBatch, type Batch, type TokenizerLike, type TrainRow } from './batch';
import { removeStaleTemps, saveCheckpoint, type LoadedCheckpoint } from './checkpoint';
import { MetricsLog, type Metrics } from './log';
import type { DataParallel } from './parallel';

/** One step's samples: `num_generations` consecutive completions per prompt. */
export interface Rollout {
  /** [B*G] the dataset row behind each completion (each prompt's row repeated G times). */
  rows: TrainRow[];
  prompt_ids: number[][];
  /** [B*G] completion ids cut at the end of the mask (the stop token included). */
  completion_ids: number[][];
  /** [B*G] the decoded completions (special tokens skipped): what the reward functions read. */
  completions: string[];
  /** [B*G] per-token log-probs at sampling time. */
  logprobs: number[][];
  /** [B*G] per-token entropy of the sampling distribution. */
  entropies: number[][];
  /** [B*G] true when max_completion_length cut the completion. */
  truncated: boolean[];
  /** Seconds spent generating. */
  seconds: number;
}

/**
 * Sample `num_generations` completions for each row. Each completion draws from its own stream, taken from
 * `rng` (which advances: sampling is seeded and resumable), so the samples are the same whether or not the
 * batch is split over data-parallel replicas.
 */
export async function rollout(
  model: Qwen2ForCausalLM,
  tok: TokenizerLike,
  rows: readonly TrainRow[],
  c: GRPOConfig,
  rng: Rng,
  parallel: DataParallel | null = null,
): Promise<Rollout> {
  const t0 = Date.now();
  const repeated = rows.flatMap((r) => new Array<TrainRow>(c.num_generations).fill(r));
  const prompt_ids = rows.flatMap((r) => new Array<number[]>(c.num_generations).fill(promptIds(tok, r))); // template + encode once per prompt
  const opts = {
    max_new_tokens: c.max_completion_length,
    temperature: c.temperature,
    top_p: c.top_p,
    top_k: c.top_k,
    do_sample: true,
    stop_token_ids: tok.stop_token_ids,
    pad_token_id: tok.pad_token_id,
    rngs: rowStreams(rng, prompt_ids.length), // rng advances by one draw per completion; the checkpoint saves it
  };
  // generate merges the adapter for sampling and restores the base weights bit for bit afterwards
  const out = parallel ? await parallel.generate(prompt_ids, opts) : await generate(model, prompt_ids, opts);
  const lens = out.completion_mask.map((m) => m.reduce((a, x) => a + x, 0));
  const completion_ids = out.sequences.map((s, i) => s.slice(0, lens[i]));
  return {
    rows: repeated,
    prompt_ids,
    completion_ids,
    completions: completion_ids.map((ids) => tok.decode(ids, { skip_special_tokens: true })),
    logprobs: out.logprobs.map((l, i) => l.slice(0, lens[i])),
    entropies: out.entropies.map((e, i) => e.slice(0, lens[i])),
    truncated: out.finish_reasons.map((f) => f === 'length'),
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Rewards of a rollout: each function's, their weighted sum, and exact match (the course's, seed mode). */
export interface Scored {
  /** [B*G] weighted sum over reward functions. */
  rewards: number[];
  /** Function name (TRL: `fn.__name__`, e.g. seed_reward) -> [B*G]. */
  per_func: Record<string, number[]>;
  /** [B*G] name and execution right: the course's exact match. */
  exact: boolean[];
}

export function scoreRollout(completions: string[], rows: readonly TrainRow[], c: Pick<GRPOConfig, 'reward_funcs' | 'reward_weights'>): Scored {
  const columns = { gold_call: rows.map((r) => r.gold_call), expected_result: rows.map((r) => r.expected_result) };
  const weights = c.reward_weights.length ? c.reward_weights : c.reward_funcs.map(() => 1);
  const rewards = new Array<number>(completions.length).fill(0);
  const per_func: Record<string, number[]> = {};
  c.reward_funcs.forEach((name, k) => {
    const fn: RewardFn | undefined = (REWARDS as Record<string, RewardFn>)[name];
    if (!fn) throw new Error(`unknown reward function '${name}' (known: ${Object.keys(REWARDS).join(', ')})`);
    const r = fn(completions, columns);
    per_func[fn.name || name] = r;
    r.forEach((x, i) => (rewards[i] += weights[k] * x));
  });
  const exact = completions.map((t, i) => scoreCompletion(t, rows[i].gold_call, rows[i].expected_result, 'seed' as RewardMode).exact);
  return { rewards, per_func, exact };
}

/** Per-token log-probs [B, C] of a batch's completions without gradient (old policy / reference). */
export async function logpsNoGrad(model: Qwen2ForCausalLM, b: Batch): Promise<number[][]> {
  const t = completionLogps(model, b);
  const v = (await t.array()) as number[][];
  t.dispose();
  return v;
}

/** The micro-batch loss on the tape: current log-probs vs old / ref constants. Call inside tf.variableGrads. */
export function microBatchLoss(
  model: Qwen2ForCausalLM,
  b: Batch,
  advantages: number[],
  old: number[][] | null,
  ref: number[][] | null,
  c: GRPOConfig,
  step: StepSize,
): tf.Scalar {
  return tf.tidy(() => {
    const logps = completionLogps(model, b); // [b, C], the shared prompt prefix computed once
    return grpoLoss(
      {
        per_token_logps: logps,
        old_per_token_logps: old ? tf.tensor2d(old) : null,
        ref_per_token_logps: ref ? tf.tensor2d(ref) : null,
        advantages: tf.tensor1d(advantages),
        completion_mask: tf.tensor2d(b.completion_mask),
      },
      c,
      step,
    );
  });
}

export interface GRPOOptions {
  /** Policy = this model with its LoRA adapter enabled (addLora / loadAdapter done by the caller). */
  model: Qwen2ForCausalLM;
  tokenizer: TokenizerLike;
  /** The prompt pool. */
  rows: readonly TrainRow[];
  config: GRPOConfig;
  /** metrics.jsonl and checkpoint-<step>/ go here. */
  runDir: string;
  /** Continue from this checkpoint (its adapter already loaded into `model` by the caller). */
  resume?: LoadedCheckpoint | null;
  /** Written into adapter_config.json and trainer_state.extra. */
  base_model_name_or_path?: string | null;
  /** Saved with every checkpoint (trainer_state.extra), e.g. how to rebuild the base model. */
  extra?: Record<string, unknown>;
  /** Called after every step with its metrics and rollout (notebook live plots). */
  onStep?: (m: Metrics, r: Rollout, s: Scored) => void;
  progress?: boolean;
  /** Split sampling and each micro-batch's loss over these data-parallel replicas of `model` (parallel.ts). */
  parallel?: DataParallel | null;
}

export interface GRPOResult {
  steps: number;
  seconds: number;
  history: Metrics[];
  last_checkpoint: string | null;
}

/** The GRPO training loop. */
export async function trainGRPO(o: GRPOOptions): Promise<GRPOResult> {
  const { model, tokenizer: tok, config: c } = o;
  const G = c.num_generations;
  const { prompts_per_step } = grpoBatchShape(c);
  const vars = model.trainableVariables();
  if (model.lora.size === 0) throw new Error('trainGRPO: add a LoRA adapter first (the reference model is the adapter switched off)');
  const opt = new AdamW(vars, c);
  const order = new DataOrder(o.rows.length, c.seed, 'grpo');
  let rng = new Rng(c.seed);
  let step = 0;
  let cursor = 0;
  if (o.resume) {
    opt.loadState(o.resume.optimizer);
    rng = Rng.fromState(o.resume.state.rng_state);
    step = o.resume.state.global_step;
    cursor = o.resume.state.data_cursor;
  }
  removeStaleTemps(o.runDir);
  const log = MetricsLog.open(path.join(o.runDir, 'metrics.jsonl'), o.resume ? step : undefined);
  const bar = o.progress === false ? null : new Progress({ label: 'grpo', total: c.max_steps, start: step, every: Math.max(1, Math.floor(c.max_steps / 10)) });
  const history: Metrics[] = [];
  let last_checkpoint: string | null = o.resume?.dir ?? null;
  const t0 = Date.now();

  const save = async () => {
    if (!(await allFinite(vars))) throw new Error(`step ${step}: adapter weights are not finite; refusing to write a checkpoint`);
    last_checkpoint = await saveCheckpoint(o.runDir, {
      state: { global_step: step, rng_state: rng.state, data_cursor: cursor, extra: { phase: 'grpo', ...o.extra } },
      config: c,
      optimizer: await opt.state(),
      writeWeights: (dir) => saveAdapter(model, dir, o.base_model_name_or_path ?? null),
      save_total_limit: c.save_total_limit,
    });
  };

  try {
    while (step < c.max_steps) {
      const ts = Date.now();
      // 1. Rollout: prompts_per_step prompts, G sampled completions each.
      const rows = order.take(cursor, prompts_per_step).map((i) => o.rows[i]);
      cursor += prompts_per_step;
      const ro = await rollout(model, tok, rows, c, rng, o.parallel ?? null);

      // 2. Reward: each function on the decoded completions, weighted sum; exact match on the side.
      const sc = scoreRollout(ro.completions, ro.rows, c);

      // 3. Advantage: relative to the group. Optionally drop groups with no exact-match signal.
      const adv = computeAdvantages(sc.rewards, G, c.scale_rewards);
      const dropGroup = c.skip_zero_std_groups ? zeroSignalGroups(sc.exact, G) : rows.map(() => false);
      const keep = ro.rows.map((_, i) => !dropGroup[Math.floor(i / G)]);
      const kept = keep.flatMap((k, i) => (k ? [i] : []));

      // 4. The loss batch: [prompt | completion] rows; truncated completions masked out if asked.
      const masks = kept.map((i) => ro.completion_ids[i].map(() => (c.mask_truncated_completions && ro.truncated[i] ? 0 : 1)));
      const lr = learningRateAt(step, c);
      let loss = NaN, grad_norm = NaN, skipped = kept.length === 0 ? 'every group had zero exact-match spread' : '';
      let lm = { 'clip_ratio/low_mean': 0, 'clip_ratio/high_mean': 0, 'clip_ratio/region_mean': 0, kl: 0 };
      const tt = Date.now();
      if (kept.length > 0) {
        const batch = makeBatch(kept.map((i) => ro.prompt_ids[i]), kept.map((i) => ro.completion_ids[i]), tok.pad_token_id, masks);
        const A = kept.map((i) => adv.advantages[i]);
        const micro = chunks(kept.length, c.per_device_train_batch_size);
        const sizes: StepSize = {
          num_sequences: kept.length,
          num_tokens: batch.completion_mask.flat().reduce((a, x) => a + x, 0),
          num_micro_batches: micro.length,
        };

        // Old log-probs (only needed when the batch is reused) and the reference's (adapter off), no gradient.
        const old = c.num_iterations > 1 ? await logpsNoGrad(model, batch) : null;
        let ref: number[][] | null = null;
        if (c.beta > 0) {
          disableLora(model);
          try {
            ref = await logpsNoGrad(model, batch);
          } finally {
            enableLora(model);
          }
        }

        // 5. Loss + backward per micro-batch, gradients summed; then clip and one AdamW update.
        for (let it = 0; it < c.num_iterations; it++) {
          const acc = new GradAccumulator(vars);
          loss = 0;
          for (const [s, e] of micro) {
            const mb = sliceBatch(batch, s, e);
            const [a, od, rf] = [A.slice(s, e), old?.slice(s, e) ?? null, ref?.slice(s, e) ?? null];
            if (o.parallel) {
              const r = await o.parallel.valueAndGrads({ kind: 'grpo', batch: mb, advantages: a, old: od, ref: rf, config: c, step: sizes }, vars);
              loss += r.value;
              acc.addList(r.grads);
              continue;
            }
            const { value, grads } = tf.variableGrads(() => microBatchLoss(model, mb, a, od, rf, c, sizes), vars);
            loss += (await value.data())[0];
            value.dispose();
            acc.add(grads);
          }
          if (!Number.isFinite(loss)) {
            acc.dispose();
            skipped = 'non-finite loss: update skipped';
            break;
          }
          const r = await optimizerStep(opt, acc, lr, c.max_grad_norm);
          grad_norm = r.grad_norm;
          if (r.skipped) {
            skipped = 'non-finite gradient: update skipped';
            break;
          }
          await o.parallel?.syncWeights();
        }
        // Clip and KL metrics need the updated policy's log-probs; with one iteration and no KL they are 0 by
        // construction (ratio = 1 at the only update), so the extra forward is skipped.
        if (old || ref) lm = lossMetrics(await logpsNoGrad(model, batch), old, ref, A, batch.completion_mask, c);
      }
      step += 1;

      // 6. Log, with TRL's names.
      const lens = ro.completion_ids.map((x) => x.length);
      const genTokens = lens.reduce((a, b) => a + b, 0);
      const terminated = lens.filter((_, i) => !ro.truncated[i]);
      const secs = (Date.now() - ts) / 1000;
      const m: Metrics = {
        phase: 'grpo',
        step,
        loss,
        reward: mean(sc.rewards),
        reward_std: mean(adv.std_grouped_rewards),
        ...Object.fromEntries(Object.entries(sc.per_func).flatMap(([k, v]) => [[`rewards/${k}/mean`, mean(v)], [`rewards/${k}/std`, std(v)]])),
        exact_match: mean(sc.exact.map(Number)),
        frac_reward_zero_std: adv.frac_reward_zero_std,
        frac_groups_skipped: mean(dropGroup.map(Number)),
        'completions/mean_length': mean(lens),
        'completions/min_length': Math.min(...lens),
        'completions/max_length': Math.max(...lens),
        'completions/clipped_ratio': mean(ro.truncated.map(Number)),
        'completions/mean_terminated_length': mean(terminated),
        kl: lm.kl,
        entropy: mean(ro.entropies.flat()),
        'clip_ratio/low_mean': lm['clip_ratio/low_mean'],
        'clip_ratio/high_mean': lm['clip_ratio/high_mean'],
        'clip_ratio/region_mean': lm['clip_ratio/region_mean'],
        learning_rate: lr,
        grad_norm,
        step_seconds: secs,
        generation_seconds: ro.seconds,
        train_seconds: (Date.now() - tt) / 1000,
        tokens_per_second: genTokens / secs,
      };
      if (skipped) m.skipped = skipped;
      if (step % c.logging_steps === 0 || step === c.max_steps || skipped) {
        log.append(m);
        history.push(m);
      }
      o.onStep?.(m, ro, sc);
      bar?.update(step, { reward: m.reward as number, exact: m.exact_match as number });

      // 7. Save: every save_steps and at the end (atomically; never with non-finite weights).
      if ((c.save_steps > 0 && step % c.save_steps === 0) || step === c.max_steps) await save();
    }
  } finally {
    opt.dispose();
  }
  return { steps: step, seconds: (Date.now() - t0) / 1000, history, last_checkpoint };
}

/** [start, end) ranges of at most `size` covering n. */
function chunks(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}
