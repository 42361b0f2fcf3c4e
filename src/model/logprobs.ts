/**
 * Per-token log-probabilities of given sequences under the model: the quantity SFT's cross-entropy and the
 * GRPO loss are built from (TRL's `_get_per_token_logps`). Differentiable: call it inside `tf.variableGrads`.
 *
 * What it is not: a loss. It returns log p(input_ids[:, t+1] | input_ids[:, <= t]); masking, ratios, KL and
 * averaging belong to src/train. The LM head, log-softmax and target gather run as one fused op (kernels.ts),
 * so the [B, T, V] logits never stay on the gradient tape (only their softmax does, for the backward).
 *
 * Memory: the tape keeps every activation until backward ends (wasm heap: 4 GiB). Micro-batch in the caller
 * (several calls, gradients summed) when B * T * (layers * ~20 * d + V) floats gets near a GB.
 */
import * as tf from '@tensorflow/tfjs';
import { Qwen2ForCausalLM } from './qwen2';

export interface PerTokenLogpsOptions {
  /** [B, T], 1 = real, 0 = left padding. */
  attention_mask?: tf.Tensor2D;
  /** Only the last `logits_to_keep` next-token positions (the completion): output [B, logits_to_keep]. Default T-1. */
  logits_to_keep?: number;
}

function targetsAndHidden(model: Qwen2ForCausalLM, input_ids: tf.Tensor2D, opts: PerTokenLogpsOptions) {
  const [B, T] = input_ids.shape;
  const K = opts.logits_to_keep ?? T - 1;
  if (!(K >= 1 && K <= T - 1)) throw new Error(`per_token_logps: logits_to_keep must be in 1..${T - 1}, got ${K}`);
  const d = model.config.hidden_size;
  const { hidden } = model.forwardHidden(input_ids, { attention_mask: opts.attention_mask, use_cache: false }); // [B*T, d]
  // Hidden state at position t predicts token t+1: keep positions T-1-K .. T-2.
  const h = tf.slice(hidden.reshape([B, T, d]), [0, T - 1 - K, 0], [B, K, d]).reshape([B * K, d]) as tf.Tensor2D;
  const targets = tf.slice(input_ids, [0, T - K], [B, K]).reshape([B * K]).toInt() as tf.Tensor1D;
  return { h, targets, B, K };
}

/**
 * log p(input_ids[b, t+1] | prefix) for the last `logits_to_keep` positions: [B, K] (K = T-1 by default).
 * Padding positions get values too; mask them in the loss.
 */
export function per_token_logps(model: Qwen2ForCausalLM, input_ids: tf.Tensor2D, opts: PerTokenLogpsOptions = {}): tf.Tensor2D {
  return tf.tidy(() => {
    const { h, targets, B, K } = targetsAndHidden(model, input_ids, opts);
    return model.headLogprobs(h, targets).reshape([B, K]) as tf.Tensor2D;
  });
}

/**
 * Like per_token_logps, plus the entropy of the next-token distribution at the same positions, [B, K] each.
 * The entropy goes through the full logits with autodiffed ops (slower backward); use it for logging or an
 * entropy bonus, not by default.
 */
export function per_token_logps_and_entropy(
  model: Qwen2ForCausalLM,
  input_ids: tf.Tensor2D,
  opts: PerTokenLogpsOptions = {},
): { per_token_logps: tf.Tensor2D; entropies: tf.Tensor2D } {
  return tf.tidy(() => {
    const { h, targets, B, K } = targetsAndHidden(model, input_ids, opts);
    const logps = model.headLogprobs(h, targets).reshape([B, K]) as tf.Tensor2D;
    const W = model.params.get(model.headWeightName())!;
    const logp = tf.logSoftmax(tf.matMul(h, W, false, true)); // [B*K, V]
    const entropies = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)).reshape([B, K]) as tf.Tensor2D;
    return { per_token_logps: logps, entropies };
  });
}
