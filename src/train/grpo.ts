/**
 * GRPO, TRL's GRPOTrainer reduced to one step you can read top to bottom (`grpoStep`) and a loop around it
 * (`trainGRPO`: step -> log -> save):
 *
 *   prompts (sampler) -> rollout -> reward -> advantage -> (old / ref log-probs) -> loss + backward -> clip + AdamW
 *
 * The policy is the model with a LoRA adapter; the reference for the KL term (beta > 0) is the same model
 * with the adapter switched off, so there is never a second copy of the weights.
 *
 * The pieces are public, so a notebook or a variant of the step can run them one by one:
 *   GRPOState      model + tokenizer + config + optimizer + sampling stream + step + prompt sampler + ranks
 *   rollout        sample num_generations completions per prompt (advances the sampling stream)
 *   scoreRollout   the reward functions on (completions, rows): a plain function, no model
 *   policyUpdate   advantages -> loss batch -> num_iterations updates (update.ts) -> loss-side metrics
 *   grpoStep       prompts from the sampler (or given) -> the three above -> the step's metrics
 *
 * What is simplified, on purpose (see nanochat's chat_rl.py for the same habit):
 * - One generation batch per step. With num_iterations > 1 the same batch is reused for that many optimizer
 *   updates inside the step (TRL spreads them over steps; the maths is the same).
 * - Log-probs in the loss use temperature 1 (the model's own distribution); sampling may use another
 *   temperature, which TRL folds into the log-probs. With num_iterations = 1 (default) the ratio is
 *   exp(logp - logp.detach()) = 1 either way, so this only matters for num_iterations > 1.
 * - `entropy` is the mean per-token entropy of the sampling distribution (from generate), not of the
 *   training forward.
 * - No vLLM, no reward model, no multi-GPU gather: the reward functions are plain functions on strings.
 *
 * Not here: the losses (objectives.ts), the update (update.ts), the prompt order (sampler.ts), loading models
 * and adapters from disk (phases.ts).
 */
import * as path from 'node:path';
import type { Qwen2ForCausalLM } from '../model/qwen2';
import { saveAdapter } from '../model/lora';
import { REWARDS, checkOutcomeRow, rewardColumns, rewardColumnsProblem, scoreCompletion, scoreOutcome, type RewardFn } from '../verify/reward';
import { Rng, rowStreams } from '../util/rng';
import { Progress } from '../util/progress';
import { grpoBatchShape, type GRPOConfig } from './config';
import { computeAdvantages, mean, std, zeroSignalGroups, type Advantages } from './advantage';
import { grpoObjective, logpsNoGrad, lossMetrics, type LossMetrics, type StepSize } from './objectives';
import { update, skippedMessage } from './update';
import { AdamW, allFinite, learningRateAt } from './optim';
import { makeBatch, promptIds, sliceBatch, type TokenizerLike, type TrainRow } from './batch';
import { EpochSampler, type PromptSampler } from './sampler';
import { removeStaleTemps, saveCheckpoint, type LoadedCheckpoint } from './checkpoint';
import { MetricsLog, type GRPOMetrics } from './log';
import { DataParallel } from './parallel';

/**
 * Everything a GRPO step reads and advances. `step`, `rng` and the sampler's position are what a checkpoint
 * saves (with the optimizer's moments and the adapter); a state built from a checkpoint continues it exactly.
 */
export class GRPOState {
  /** Optimizer steps done (global_step). */
  step: number;
  /** The sampling stream: every completion draws its own stream from it (rowStreams). */
  rng: Rng;
  readonly optimizer: AdamW;

  private constructor(
    /** The policy: base weights frozen, a LoRA adapter active. */
    readonly model: Qwen2ForCausalLM,
    readonly tokenizer: TokenizerLike,
    readonly config: GRPOConfig,
    /** Where each step's prompts come from (sampler.ts). */
    readonly sampler: PromptSampler,
    /** Sampling and each micro-batch's loss run on these ranks (size 1 = this thread only). */
    readonly parallel: DataParallel,
    resume: LoadedCheckpoint | null,
  ) {
    if (model.adapter.state !== 'active') {
      throw new Error(`GRPO: the policy needs an active LoRA adapter (addLora / loadAdapter first; the reference model is the adapter switched off), the adapter is ${model.adapter.state}`);
    }
    this.optimizer = new AdamW(model.trainableVariables(), config);
    this.step = 0;
    this.rng = new Rng(config.seed);
    if (resume) {
      this.optimizer.loadState(resume.optimizer);
      this.rng = Rng.fromState(resume.state.rng_state);
      this.step = resume.state.global_step;
    }
  }

  /**
   * A fresh state, or one continuing `resume` (whose adapter the caller has loaded into `model`). The prompts
   * come from `sampler`, else from `rows` in the default order (resumed at the checkpoint's data_cursor).
   */
  static create(o: {
    model: Qwen2ForCausalLM;
    tokenizer: TokenizerLike;
    config: GRPOConfig;
    rows?: readonly TrainRow[];
    sampler?: PromptSampler;
    parallel?: DataParallel | null;
    resume?: LoadedCheckpoint | null;
  }): GRPOState {
    const resume = o.resume ?? null;
    const problem = o.rows ? rewardColumnsProblem(o.rows, o.config.reward_funcs) : null;
    if (problem) throw new Error(`GRPO: ${problem}`);
    const sampler = o.sampler ?? new EpochSampler(o.rows ?? [], o.config.seed, resume ? { data_cursor: resume.state.data_cursor, sampler_state: resume.state.sampler_state } : undefined);
    return new GRPOState(o.model, o.tokenizer, o.config, sampler, o.parallel ?? DataParallel.local(o.model), resume);
  }

  /** Free the optimizer's moments (the model and the ranks belong to the caller). */
  dispose(): void {
    this.optimizer.dispose();
  }
}

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
 * Sample `num_generations` completions for each row with the state's policy. Each completion draws from its own
 * stream, taken from `s.rng` (which advances: sampling is seeded and resumable), so the samples are the same
 * whether or not the batch is split over data-parallel ranks. Generation merges the adapter for the call and
 * restores the base weights bit for bit afterwards.
 */
export async function rollout(s: GRPOState, rows: readonly TrainRow[]): Promise<Rollout> {
  const { tokenizer: tok, config: c } = s;
  const t0 = Date.now();
  const repeated = rows.flatMap((r) => new Array<TrainRow>(c.num_generations).fill(r));
  const prompt_ids = rows.flatMap((r) => new Array<number[]>(c.num_generations).fill(promptIds(tok, r))); // template + encode once per prompt
  const out = await s.parallel.generate(prompt_ids, {
    max_new_tokens: c.max_completion_length,
    temperature: c.temperature,
    top_p: c.top_p,
    top_k: c.top_k,
    do_sample: true,
    stop_token_ids: tok.stop_token_ids,
    pad_token_id: tok.pad_token_id,
    rngs: rowStreams(s.rng, prompt_ids.length), // rng advances by one draw per completion; the checkpoint saves it
  });
  const lens = out.completion_mask.map((m) => m.reduce((a, x) => a + x, 0));
  const completion_ids = out.sequences.map((seq, i) => seq.slice(0, lens[i]));
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

/**
 * Rewards of a rollout: each function's, their weighted sum, and exact match: the course's (seed mode) for a
 * row with a gold call, the outcome reward's verdict (right listed action, right result) for an
 * outcome-labelled one.
 */
export interface Scored {
  /** [B*G] weighted sum over reward functions. */
  rewards: number[];
  /** Function name (TRL: `fn.__name__`, e.g. seed_reward) -> [B*G]. */
  per_func: Record<string, number[]>;
  /** [B*G] name and execution right: the course's exact match (see exactMatch). */
  exact: boolean[];
}

/**
 * The reward functions of `c.reward_funcs` (names of src/verify/reward.ts REWARDS, checked when the config is
 * resolved) on the completions, weighted by `c.reward_weights` (empty = all 1), plus exact match.
 */
export function scoreRollout(completions: string[], rows: readonly TrainRow[], c: Pick<GRPOConfig, 'reward_funcs' | 'reward_weights'>): Scored {
  const columns = rewardColumns(rows); // gold_call, expected_result, and tool + catalog when the rows have them (outcome)
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
  const exact = completions.map((t, i) => exactMatch(t, rows[i]));
  return { rewards, per_func, exact };
}

/** Exact match of one completion: against the gold call when the row has one, else by its outcome. */
export function exactMatch(completion: string, row: TrainRow): boolean {
  if (row.gold_call !== undefined) return scoreCompletion(completion, row.gold_call, row.expected_result, 'seed').exact;
  const o = checkOutcomeRow(row.expected_result, row.tool, row.catalog);
  return o.success && scoreOutcome(completion, o.data).reward === 1;
}

/** What one policy update did. */
export interface PolicyUpdate {
  advantages: Advantages;
  /** [B] groups left out of the loss (skip_zero_std_groups: all exact or none). */
  dropped_groups: boolean[];
  learning_rate: number;
  /** The loss of the last optimizer pass (NaN when no group was kept). */
  loss: number;
  grad_norm: number;
  /** Why the step applied nothing, if it did not. */
  skipped?: string;
  /** Clip fractions and KL of the updated policy (0 by construction with one iteration and no KL). */
  loss_metrics: LossMetrics;
  seconds: number;
}

/**
 * Train the policy on a scored rollout: group-relative advantages, optionally without zero-signal groups, the
 * [prompt | completion] loss batch, old / reference log-probs when needed, then `num_iterations` updates of
 * the clipped surrogate over micro-batches of `per_device_train_batch_size` completions.
 */
export async function policyUpdate(s: GRPOState, ro: Rollout, sc: Scored, o: { nothing_kept?: boolean } = {}): Promise<PolicyUpdate> {
  const { model, config: c } = s;
  const G = c.num_generations;
  const t0 = Date.now();
  const advantages = computeAdvantages(sc.rewards, G, c.scale_rewards);
  const dropped_groups = c.skip_zero_std_groups || o.nothing_kept ? zeroSignalGroups(sc.exact, G) : new Array<boolean>(ro.rows.length / G).fill(false);
  const kept = ro.rows.flatMap((_, i) => (dropped_groups[Math.floor(i / G)] ? [] : [i]));
  const learning_rate = learningRateAt(s.step, c);
  const u: PolicyUpdate = {
    advantages, dropped_groups, learning_rate, loss: NaN, grad_norm: NaN,
    skipped: kept.length === 0 ? (o.nothing_kept ? `no group with exact-match spread in ${c.max_num_gen_batches} generation batches` : 'every group had zero exact-match spread') : undefined,
    loss_metrics: { 'clip_ratio/low_mean': 0, 'clip_ratio/high_mean': 0, 'clip_ratio/region_mean': 0, kl: 0 },
    seconds: 0,
  };
  if (kept.length > 0) {
    // The loss batch: [prompt | completion] rows; truncated completions masked out if asked.
    const masks = kept.map((i) => ro.completion_ids[i].map(() => (c.mask_truncated_completions && ro.truncated[i] ? 0 : 1)));
    const batch = makeBatch(kept.map((i) => ro.prompt_ids[i]), kept.map((i) => ro.completion_ids[i]), s.tokenizer.pad_token_id, masks);
    const A = kept.map((i) => advantages.advantages[i]);
    const micro = chunks(kept.length, c.per_device_train_batch_size);
    const size: StepSize = { num_sequences: kept.length, num_tokens: batch.completion_mask.flat().reduce((a, x) => a + x, 0), num_micro_batches: micro.length };
    // Old log-probs (only needed when the batch is reused) and the reference's (adapter off), no gradient.
    const old = c.num_iterations > 1 ? await logpsNoGrad(model, batch) : null;
    let ref: number[][] | null = null;
    if (c.beta > 0) {
      model.adapter.disable();
      try {
        ref = await logpsNoGrad(model, batch);
      } finally {
        model.adapter.enable();
      }
    }
    const objectives = micro.map(([a, b]) => grpoObjective(sliceBatch(batch, a, b), A.slice(a, b), old?.slice(a, b) ?? null, ref?.slice(a, b) ?? null, c, size));
    for (let it = 0; it < c.num_iterations; it++) {
      const r = await update(s.parallel, s.optimizer, objectives, learning_rate, c.max_grad_norm);
      u.loss = r.loss;
      u.grad_norm = r.grad_norm;
      u.skipped = skippedMessage(r);
      if (r.skipped) break;
    }
    // Clip and KL metrics need the updated policy's log-probs; with one iteration and no KL they are 0 by
    // construction (ratio = 1 at the only update), so the extra forward is skipped.
    if (old || ref) u.loss_metrics = lossMetrics(await logpsNoGrad(model, batch), old, ref, A, batch.completion_mask, c);
  }
  u.seconds = (Date.now() - t0) / 1000;
  return u;
}

export interface GRPOStepResult {
  metrics: GRPOMetrics;
  /** The completions trained on (with dynamic sampling: the kept groups of every generation batch). */
  rollout: Rollout;
  scored: Scored;
  update: PolicyUpdate;
  /** Every completion sampled in the step, kept or not (= `rollout` without dynamic sampling). */
  sampled: { rollout: Rollout; scored: Scored };
}

/**
 * One GRPO step: `rows` (default: the next prompts_per_step prompts from the state's sampler) -> rollout ->
 * reward -> advantage -> loss -> update; advances `s.step`. Returns the step's metrics (TRL's names) with its
 * samples and scores.
 *
 * With `dynamic_sampling` (DAPO's), the step draws generation batches of prompts_per_step prompts until
 * prompts_per_step groups whose exact-match outcomes differ are collected (or max_num_gen_batches were drawn),
 * and trains on those groups only: a group that is all right or all wrong has zero advantage everywhere and
 * would only dilute the step. Rows given explicitly are one generation batch, not filtered.
 */
export async function grpoStep(s: GRPOState, rows?: readonly TrainRow[]): Promise<GRPOStepResult> {
  const t0 = Date.now();
  const c = s.config;
  const G = c.num_generations;
  const P = grpoBatchShape(c).prompts_per_step;
  let ro: Rollout;
  let sc: Scored;
  let sampled: { rollout: Rollout; scored: Scored };
  let gen_batches = 1;
  let nothing_kept = false;
  if (rows || !c.dynamic_sampling) {
    ro = await rollout(s, rows ?? s.sampler.next(P)); // 1. G sampled completions per prompt
    sc = scoreRollout(ro.completions, ro.rows, c); // 2. rewards (and exact match on the side)
    sampled = { rollout: ro, scored: sc };
  } else {
    const batches: { rollout: Rollout; scored: Scored }[] = [];
    const keptParts: { rollout: Rollout; scored: Scored }[] = [];
    let kept = 0;
    for (gen_batches = 0; kept < P && gen_batches < c.max_num_gen_batches; gen_batches++) {
      const r = await rollout(s, s.sampler.next(P));
      const q = scoreRollout(r.completions, r.rows, c);
      batches.push({ rollout: r, scored: q });
      const signal = zeroSignalGroups(q.exact, G).flatMap((zero, g) => (zero ? [] : [g]));
      const take = signal.slice(0, P - kept);
      keptParts.push(selectGroups(r, q, take, G));
      kept += take.length;
    }
    sampled = concatScored(batches);
    nothing_kept = kept === 0; // then the update is skipped (every group of `sampled` has zero spread)
    ({ rollout: ro, scored: sc } = nothing_kept ? sampled : concatScored(keptParts));
  }
  const u = await policyUpdate(s, ro, sc, { nothing_kept }); // 3-5. advantages, loss, update(s)
  s.step += 1;
  const metrics = grpoMetrics(s.step, ro, sc, u, (Date.now() - t0) / 1000);
  // The pool's pass rate and zero-spread share are measured over everything sampled, not just what was kept.
  metrics.exact_match = mean(sampled.scored.exact.map(Number));
  metrics.frac_zero_exact_spread = mean(zeroSignalGroups(sampled.scored.exact, G).map(Number));
  metrics.num_gen_batches = gen_batches;
  metrics.num_prompts_drawn = sampled.rollout.rows.length / G;
  metrics.generation_seconds = sampled.rollout.seconds;
  return { metrics, rollout: ro, scored: sc, update: u, sampled };
}

/** Groups `groups` (indices of prompts) of a scored rollout of `G` completions per prompt, in that order. */
export function selectGroups(ro: Rollout, sc: Scored, groups: readonly number[], G: number): { rollout: Rollout; scored: Scored } {
  const idx = groups.flatMap((g) => Array.from({ length: G }, (_, j) => g * G + j));
  const at = <T>(xs: readonly T[]) => idx.map((i) => xs[i]);
  return {
    rollout: {
      rows: at(ro.rows), prompt_ids: at(ro.prompt_ids), completion_ids: at(ro.completion_ids), completions: at(ro.completions),
      logprobs: at(ro.logprobs), entropies: at(ro.entropies), truncated: at(ro.truncated), seconds: ro.seconds,
    },
    scored: { rewards: at(sc.rewards), per_func: Object.fromEntries(Object.entries(sc.per_func).map(([k, v]) => [k, at(v)])), exact: at(sc.exact) },
  };
}

/** Scored rollouts one after the other (generation seconds add up). */
export function concatScored(parts: readonly { rollout: Rollout; scored: Scored }[]): { rollout: Rollout; scored: Scored } {
  const cat = <T>(f: (p: { rollout: Rollout; scored: Scored }) => readonly T[]) => parts.flatMap((p) => [...f(p)]);
  const funcs = parts.length ? Object.keys(parts[0].scored.per_func) : [];
  return {
    rollout: {
      rows: cat((p) => p.rollout.rows), prompt_ids: cat((p) => p.rollout.prompt_ids), completion_ids: cat((p) => p.rollout.completion_ids),
      completions: cat((p) => p.rollout.completions), logprobs: cat((p) => p.rollout.logprobs), entropies: cat((p) => p.rollout.entropies),
      truncated: cat((p) => p.rollout.truncated), seconds: parts.reduce((a, p) => a + p.rollout.seconds, 0),
    },
    scored: {
      rewards: cat((p) => p.scored.rewards),
      per_func: Object.fromEntries(funcs.map((k) => [k, cat((p) => p.scored.per_func[k])])),
      exact: cat((p) => p.scored.exact),
    },
  };
}

/** A step's metrics with TRL's names. */
function grpoMetrics(step: number, ro: Rollout, sc: Scored, u: PolicyUpdate, secs: number): GRPOMetrics {
  const lens = ro.completion_ids.map((x) => x.length);
  const terminated = lens.filter((_, i) => !ro.truncated[i]);
  const perFunc: Record<`rewards/${string}/mean` | `rewards/${string}/std`, number> = {};
  for (const [k, v] of Object.entries(sc.per_func)) {
    perFunc[`rewards/${k}/mean`] = mean(v);
    perFunc[`rewards/${k}/std`] = std(v);
  }
  const m: GRPOMetrics = {
    phase: 'grpo',
    step,
    loss: u.loss,
    reward: mean(sc.rewards),
    reward_std: mean(u.advantages.std_grouped_rewards),
    ...perFunc,
    exact_match: mean(sc.exact.map(Number)),
    frac_reward_zero_std: u.advantages.frac_reward_zero_std,
    frac_groups_skipped: mean(u.dropped_groups.map(Number)),
    'completions/mean_length': mean(lens),
    'completions/min_length': Math.min(...lens),
    'completions/max_length': Math.max(...lens),
    'completions/clipped_ratio': mean(ro.truncated.map(Number)),
    'completions/mean_terminated_length': mean(terminated),
    kl: u.loss_metrics.kl,
    entropy: mean(ro.entropies.flat()),
    'clip_ratio/low_mean': u.loss_metrics['clip_ratio/low_mean'],
    'clip_ratio/high_mean': u.loss_metrics['clip_ratio/high_mean'],
    'clip_ratio/region_mean': u.loss_metrics['clip_ratio/region_mean'],
    learning_rate: u.learning_rate,
    grad_norm: u.grad_norm,
    step_seconds: secs,
    generation_seconds: ro.seconds,
    train_seconds: u.seconds,
    tokens_per_second: lens.reduce((a, b) => a + b, 0) / secs,
  };
  if (u.skipped) m.skipped = u.skipped;
  return m;
}

/**
 * Write checkpoint-<step> of the state into `runDir`: the adapter (PEFT), the optimizer, the sampling stream,
 * the sampler's position and the config (atomically; never with non-finite weights). Returns its path.
 */
export async function saveGRPOCheckpoint(s: GRPOState, runDir: string, o: { base_model_name_or_path?: string | null; extra?: Record<string, unknown> } = {}): Promise<string> {
  if (!(await allFinite(s.optimizer.vars))) throw new Error(`step ${s.step}: adapter weights are not finite; refusing to write a checkpoint`);
  return saveCheckpoint(runDir, {
    state: { global_step: s.step, rng_state: s.rng.state, ...s.sampler.position(), extra: { phase: 'grpo', ...o.extra } },
    config: s.config,
    optimizer: await s.optimizer.state(),
    writeWeights: (dir) => saveAdapter(s.model, dir, o.base_model_name_or_path ?? null),
    save_total_limit: s.config.save_total_limit,
  });
}

export interface GRPOOptions {
  /** Policy = this model with its LoRA adapter active (addLora / loadAdapter done by the caller). */
  model: Qwen2ForCausalLM;
  tokenizer: TokenizerLike;
  /** The prompt pool (read by the default sampler). */
  rows: readonly TrainRow[];
  /** Replaces the default sampler over `rows` (a resumed run: built from the checkpoint's position by the caller). */
  sampler?: PromptSampler;
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
  onStep?: (m: GRPOMetrics, r: Rollout, s: Scored) => void;
  progress?: boolean;
  /** Split sampling and each micro-batch's loss over these data-parallel ranks of `model` (default: this thread). */
  parallel?: DataParallel | null;
}

export interface GRPOResult {
  steps: number;
  seconds: number;
  history: GRPOMetrics[];
  last_checkpoint: string | null;
}

/** The GRPO training loop: step -> log -> save, until max_steps. */
export async function trainGRPO(o: GRPOOptions): Promise<GRPOResult> {
  const c = o.config;
  const s = GRPOState.create(o);
  removeStaleTemps(o.runDir);
  const log = MetricsLog.open(path.join(o.runDir, 'metrics.jsonl'), o.resume ? s.step : undefined);
  const bar = o.progress === false ? null : new Progress({ label: 'grpo', total: c.max_steps, start: s.step, every: Math.max(1, Math.floor(c.max_steps / 10)) });
  const history: GRPOMetrics[] = [];
  let last_checkpoint = o.resume?.dir ?? null;
  const t0 = Date.now();
  try {
    while (s.step < c.max_steps) {
      const { metrics: m, rollout: ro, scored: sc } = await grpoStep(s);
      if (m.step % c.logging_steps === 0 || m.step === c.max_steps || m.skipped) {
        log.append(m);
        history.push(m);
      }
      o.onStep?.(m, ro, sc);
      bar?.update(m.step, { reward: m.reward, exact: m.exact_match });
      if ((c.save_steps > 0 && m.step % c.save_steps === 0) || m.step === c.max_steps) {
        last_checkpoint = await saveGRPOCheckpoint(s, o.runDir, { base_model_name_or_path: o.base_model_name_or_path, extra: o.extra });
      }
    }
  } finally {
    s.dispose();
  }
  return { steps: s.step, seconds: (Date.now() - t0) / 1000, history, last_checkpoint };
}

/** [start, end) ranges of at most `size` covering n. */
function chunks(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}
