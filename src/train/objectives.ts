/**
 * The training objectives, by kind, in one place: what each trainer minimises, as a tfjs scalar on the gradient
 * tape, plus the GRPO formula on plain arrays (for tests, metrics and the notebook).
 *
 *   cross_entropy  pretraining and SFT: - sum over the completion tokens of log p(token | prefix), divided by
 *                  the whole optimizer step's completion tokens (TRL SFTTrainer's `completion_only_loss`,
 *                  averaged per token over the step; pretraining's "completion" is every token but the first)
 *   grpo           TRL's clipped surrogate with TRL's names:
 *
 *   ratio r_t        = exp(logp_t - old_logp_t)
 *   per_token_loss_t = -min(r_t * A, clip(r_t, 1 - epsilon, 1 + epsilon_high) * A)  [+ beta * kl_t]
 *   kl_t (k3)        = exp(ref_t - logp_t) - (ref_t - logp_t) - 1
 *
 * then aggregated by `loss_type`:
 *   grpo    mean over each sequence's tokens, then mean over sequences (long answers weigh less per token)
 *   bnpo    sum over all tokens / number of tokens in the (micro-)batch
 *   dapo    sum over all tokens / number of tokens in the whole optimizer step (global token mean)
 *   dr_grpo sum over all tokens / (sequences * max_completion_length) (no length bias at all)
 *
 * Gradient accumulation: a step is several micro-batches whose gradients are summed. Each micro-batch loss is
 * scaled here so that the sum equals the loss defined over the step (cross_entropy and dapo: the step's tokens;
 * grpo: mean over all the step's sequences; bnpo: TRL's per-micro-batch mean divided by the number of
 * micro-batches). The same holds for a micro-batch split by rows over data-parallel replicas (parallel.ts).
 *
 * An `Objective` is plain data (a batch and a few arrays): it can be sliced by rows and posted to a worker
 * thread, which computes `objectiveLoss` on its replica. Nothing here knows rewards, rollouts or checkpoints.
 *
 * tfjs has no tf.stopGradient; `stopGradient` below is one made with tf.customGrad (zero gradient), which is
 * what lets num_iterations = 1 use old_logp = logp.detach() without a second forward pass (ratio = 1, and its
 * gradient is d logp). Comparison ops have no gradient and must stay out of the loss: the clip metrics are
 * computed on arrays after the step (lossMetrics).
 *
 * Not here: how log-probs are computed (logps.ts, src/model/logprobs.ts), the advantages (advantage.ts), the
 * update that differentiates these (update.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { Qwen2ForCausalLM } from '../model/qwen2';
import { completionLogps } from './logps';
import { sliceBatch, type Batch } from './batch';

export type LossType = 'grpo' | 'bnpo' | 'dapo' | 'dr_grpo';

export interface LossOptions {
  beta: number;
  epsilon: number;
  epsilon_high: number;
  loss_type: LossType;
  max_completion_length: number;
}

/** How big the whole optimizer step is, so each micro-batch's share of the loss can be scaled. */
export interface StepSize {
  /** Sequences (completions) in the whole optimizer step. */
  num_sequences: number;
  /** Completion tokens (mask sum) in the whole optimizer step. */
  num_tokens: number;
  /** Micro-batches in the step. */
  num_micro_batches: number;
}

/** Identity forward, zero gradient: `x.detach()` for tfjs. */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  (args[1] as tf.GradSaveFunc)([x]);
  return { value: x.clone(), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.zerosLike(saved[0]) };
}) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * The micro-batch loss (a scalar to differentiate). Call inside `tf.variableGrads`.
 * per_token_logps [B, T] from the current policy (on the tape); old/ref [B, T] constants or null
 * (old null = detached current = num_iterations 1; ref null = no KL); advantages [B]; completion_mask [B, T] float.
 */
export function grpoLoss(
  inp: {
    per_token_logps: tf.Tensor2D;
    old_per_token_logps: tf.Tensor2D | null;
    ref_per_token_logps: tf.Tensor2D | null;
    advantages: tf.Tensor1D;
    completion_mask: tf.Tensor2D;
  },
  opts: LossOptions,
  step: StepSize,
): tf.Scalar {
  return tf.tidy(() => {
    const logp = inp.per_token_logps; // [B, T]
    const old = inp.old_per_token_logps ?? (stopGradient(logp) as tf.Tensor2D);
    const A = inp.advantages.expandDims(1); // [B, 1]
    const mask = inp.completion_mask; // [B, T]
    const ratio = tf.exp(tf.sub(logp, old)); // [B, T]
    const clipped = tf.clipByValue(ratio, 1 - opts.epsilon, 1 + opts.epsilon_high);
    let perToken = tf.neg(tf.minimum(tf.mul(ratio, A), tf.mul(clipped, A))); // [B, T]
    if (opts.beta !== 0 && inp.ref_per_token_logps) {
      const d = tf.sub(inp.ref_per_token_logps, logp);
      const kl = tf.sub(tf.sub(tf.exp(d), d), 1); // [B, T] k3, >= 0
      perToken = tf.add(perToken, tf.mul(kl, opts.beta));
    }
    const masked = tf.mul(perToken, mask);
    const B = mask.shape[0];
    switch (opts.loss_type) {
      case 'grpo': {
        const perSeq = tf.div(tf.sum(masked, 1), tf.maximum(tf.sum(mask, 1), 1)); // [B]
        return tf.div(tf.sum(perSeq), step.num_sequences) as tf.Scalar;
      }
      case 'bnpo':
        return tf.div(tf.div(tf.sum(masked), tf.maximum(tf.sum(mask), 1)), step.num_micro_batches) as tf.Scalar;
      case 'dapo':
        return tf.div(tf.sum(masked), Math.max(step.num_tokens, 1)) as tf.Scalar;
      case 'dr_grpo':
        return tf.div(tf.sum(masked), step.num_sequences * opts.max_completion_length) as tf.Scalar;
      default:
        throw new Error(`unknown loss_type ${String(opts.loss_type)} (B=${B})`);
    }
  });
}

/** Arrays in, the same loss out (one micro-batch = the whole step). For tests and the notebook. */
export function grpoLossReference(
  per_token_logps: number[][],
  old_per_token_logps: number[][] | null,
  ref_per_token_logps: number[][] | null,
  advantages: number[],
  completion_mask: number[][],
  opts: LossOptions,
): number {
  const B = completion_mask.length;
  let total = 0, tokens = 0;
  const perSeq: number[] = [];
  for (let i = 0; i < B; i++) {
    let s = 0, n = 0;
    for (let t = 0; t < completion_mask[i].length; t++) {
      const m = completion_mask[i][t];
      const lp = per_token_logps[i][t];
      const r = Math.exp(lp - (old_per_token_logps ? old_per_token_logps[i][t] : lp));
      const c = Math.min(Math.max(r, 1 - opts.epsilon), 1 + opts.epsilon_high);
      let l = -Math.min(r * advantages[i], c * advantages[i]);
      if (opts.beta !== 0 && ref_per_token_logps) {
        const d = ref_per_token_logps[i][t] - lp;
        l += opts.beta * (Math.exp(d) - d - 1);
      }
      s += l * m;
      n += m;
    }
    perSeq.push(s / Math.max(n, 1));
    total += s;
    tokens += n;
  }
  switch (opts.loss_type) {
    case 'grpo': return perSeq.reduce((a, b) => a + b, 0) / B;
    case 'bnpo':
    case 'dapo': return total / Math.max(tokens, 1);
    case 'dr_grpo': return total / (B * opts.max_completion_length);
  }
}

/** TRL's loss-side metrics, from arrays: clip fractions (masked token means) and the k3 KL. */
export interface LossMetrics {
  'clip_ratio/low_mean': number;
  'clip_ratio/high_mean': number;
  'clip_ratio/region_mean': number;
  /** Masked mean k3 KL to the reference (0 when there is none). */
  kl: number;
}

export function lossMetrics(
  per_token_logps: number[][],
  old_per_token_logps: number[][] | null,
  ref_per_token_logps: number[][] | null,
  advantages: number[],
  completion_mask: number[][],
  opts: Pick<LossOptions, 'epsilon' | 'epsilon_high'>,
): LossMetrics {
  let low = 0, high = 0, n = 0, kl = 0;
  for (let i = 0; i < completion_mask.length; i++) {
    for (let t = 0; t < completion_mask[i].length; t++) {
      const m = completion_mask[i][t];
      if (!m) continue;
      const lp = per_token_logps[i][t];
      const r = old_per_token_logps ? Math.exp(lp - old_per_token_logps[i][t]) : 1;
      if (r < 1 - opts.epsilon && advantages[i] < 0) low += m;
      if (r > 1 + opts.epsilon_high && advantages[i] > 0) high += m;
      if (ref_per_token_logps) {
        const d = ref_per_token_logps[i][t] - lp;
        kl += m * (Math.exp(d) - d - 1);
      }
      n += m;
    }
  }
  const d = Math.max(n, 1);
  return { 'clip_ratio/low_mean': low / d, 'clip_ratio/high_mean': high / d, 'clip_ratio/region_mean': (low + high) / d, kl: kl / d };
}

// ---------------------------------------------------------------------------------------------------------------
// Objectives as data: what a micro-batch (or a replica's share of one) is trained on.
// ---------------------------------------------------------------------------------------------------------------

/** Pretraining / SFT: masked cross-entropy on the completion tokens. */
export interface CrossEntropyObjective {
  kind: 'cross_entropy';
  batch: Batch;
  /** Completion tokens in the whole optimizer step (the per-token mean's denominator). */
  num_tokens: number;
}

/** GRPO's clipped surrogate for a batch of completions. */
export interface GRPOObjective {
  kind: 'grpo';
  batch: Batch;
  /** [B] one per completion. */
  advantages: number[];
  /** [B, C] sampling-time log-probs, or null = the detached current ones (num_iterations 1). */
  old_per_token_logps: number[][] | null;
  /** [B, C] the reference model's log-probs, or null = no KL term. */
  ref_per_token_logps: number[][] | null;
  loss: LossOptions;
  step: StepSize;
}

export type Objective = CrossEntropyObjective | GRPOObjective;

/** The cross-entropy objective of a batch, `num_tokens` being the whole step's completion tokens. */
export function crossEntropyObjective(batch: Batch, num_tokens: number): CrossEntropyObjective {
  return { kind: 'cross_entropy', batch, num_tokens };
}

/** The GRPO objective of a batch (only the loss options are kept from `opts`, e.g. a whole GRPOConfig). */
export function grpoObjective(
  batch: Batch,
  advantages: number[],
  old_per_token_logps: number[][] | null,
  ref_per_token_logps: number[][] | null,
  opts: LossOptions,
  step: StepSize,
): GRPOObjective {
  const loss: LossOptions = { beta: opts.beta, epsilon: opts.epsilon, epsilon_high: opts.epsilon_high, loss_type: opts.loss_type, max_completion_length: opts.max_completion_length };
  return { kind: 'grpo', batch, advantages, old_per_token_logps, ref_per_token_logps, loss, step };
}

/** Rows (sequences) of an objective's batch. */
export function objectiveRows(o: Objective): number {
  return o.batch.input_ids.length;
}

/** Rows [s, e) of an objective (a replica's share); the step-level normalisers are kept, so shares' losses add up. */
export function sliceObjective(o: Objective, s: number, e: number): Objective {
  const batch = sliceBatch(o.batch, s, e);
  if (o.kind === 'cross_entropy') return { ...o, batch };
  return {
    ...o,
    batch,
    advantages: o.advantages.slice(s, e),
    old_per_token_logps: o.old_per_token_logps?.slice(s, e) ?? null,
    ref_per_token_logps: o.ref_per_token_logps?.slice(s, e) ?? null,
  };
}

/**
 * Sum of -log p over the batch's completion tokens, divided by `num_tokens` (the step's completion tokens):
 * summing this over the step's micro-batches gives the per-token mean. Call inside tf.variableGrads.
 */
export function crossEntropyLoss(model: Qwen2ForCausalLM, b: Batch, num_tokens: number): tf.Scalar {
  return tf.tidy(() => {
    const logps = completionLogps(model, b); // [B, C]
    const mask = tf.tensor2d(b.completion_mask); // [B, C]; prompt tokens are not in it at all
    return tf.div(tf.neg(tf.sum(tf.mul(logps, mask))), Math.max(1, num_tokens)) as tf.Scalar;
  });
}

/** The objective's loss on the tape: current log-probs against its constants. Call inside tf.variableGrads. */
export function objectiveLoss(model: Qwen2ForCausalLM, o: Objective): tf.Scalar {
  if (o.kind === 'cross_entropy') return crossEntropyLoss(model, o.batch, o.num_tokens);
  return tf.tidy(() => {
    const logps = completionLogps(model, o.batch); // [b, C], the shared prompt prefix computed once
    return grpoLoss(
      {
        per_token_logps: logps,
        old_per_token_logps: o.old_per_token_logps ? tf.tensor2d(o.old_per_token_logps) : null,
        ref_per_token_logps: o.ref_per_token_logps ? tf.tensor2d(o.ref_per_token_logps) : null,
        advantages: tf.tensor1d(o.advantages),
        completion_mask: tf.tensor2d(o.batch.completion_mask),
      },
      o.loss,
      o.step,
    );
  });
}

/** The objective's value with no gradient (the notebook shows it; training reads it from update.ts). */
export async function objectiveValue(model: Qwen2ForCausalLM, o: Objective): Promise<number> {
  const t = tf.tidy(() => objectiveLoss(model, o));
  const v = (await t.data())[0];
  t.dispose();
  return v;
}

/** Per-token log-probs [B, C] of a batch's completions without gradient (GRPO's old policy / reference). */
export async function logpsNoGrad(model: Qwen2ForCausalLM, b: Batch): Promise<number[][]> {
  const t = completionLogps(model, b);
  const v = (await t.array()) as number[][];
  t.dispose();
  return v;
}
