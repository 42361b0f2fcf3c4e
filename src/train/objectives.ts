/**
 * The GRPO loss, with TRL's formulas and names, as a tfjs function of per-token log-probs, plus the same
 * formula on plain arrays (for tests, metrics and the notebook).
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
 * scaled here so that the sum equals the loss TRL defines over the step (grpo: mean over all the step's
 * sequences; bnpo: TRL's per-micro-batch mean divided by the number of micro-batches; dapo: the step's tokens).
 *
 * tfjs has no tf.stopGradient; `stopGradient` below is one made with tf.customGrad (zero gradient), which is
 * what lets num_iterations = 1 use old_logp = logp.detach() without a second forward pass (ratio = 1, and its
 * gradient is d logp). Comparison ops have no gradient and must stay out of the loss: the clip metrics are
 * computed on arrays after the step (lossMetrics).
 *
 * Not here: how log-probs are computed (src/model/logprobs.ts) or the advantages (advantage.ts).
 */
import * as tf from '@tensorflow/tfjs';

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
