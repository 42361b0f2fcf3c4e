/**
 * Completion log-probs for training, with the batch's common prompt prefix computed once.
 *
 * Every row of a batch starts with the same tokens (the chat template's system turn with the tool list: about
 * 100 of a tiny-model row's ~140 tokens). Running that prefix once, as a [1, Ps] forward whose keys/values are
 * tiled to the B rows, and then only each row's own tokens on top of it, gives the same log-probs as the plain
 * [B, P + C] forward (up to float rounding) for about a third of the tokens. Gradients flow through the tiled
 * cache back into the prefix forward, so full fine-tuning and LoRA train exactly as before.
 *
 * Layout of the suffix part (per row): [left pad | rest of the prompt | completion | right pad], attention mask
 * [1 x Ps | row mask]; the model derives positions from the mask (cumsum - 1), so every real token keeps the
 * position it had in sampling.
 *
 * Not here: the model (src/model/qwen2.ts) or the plain per_token_logps (src/model/logprobs.ts), which this
 * falls back to when the rows share fewer than `min_prefix` tokens.
 */
import * as tf from '@tensorflow/tfjs';
import type { Qwen2ForCausalLM, KVCache } from '../model/qwen2';
import { per_token_logps } from '../model/logprobs';
import type { Batch } from './batch';

/** Longest common prefix of the rows' real prompt tokens, leaving at least one prompt token per row. */
export function sharedPrefixLength(b: Batch): number {
  const starts = b.attention_mask.map((m) => m.indexOf(1)); // first real token of each row
  const lens = starts.map((s) => b.prompt_length - s);
  let n = Math.min(...lens) - 1;
  const first = b.input_ids[0].slice(starts[0], starts[0] + n);
  for (let i = 1; i < b.input_ids.length && n > 0; i++) {
    const row = b.input_ids[i];
    let k = 0;
    while (k < n && row[starts[i] + k] === first[k]) k++;
    n = k;
  }
  return Math.max(0, n);
}

/**
 * log p(completion token | prefix) [B, C] for a batch (differentiable: call inside tf.variableGrads for the
 * loss, or outside for old / reference log-probs).
 */
export function completionLogps(model: Qwen2ForCausalLM, b: Batch, min_prefix = 16): tf.Tensor2D {
  const Ps = sharedPrefixLength(b);
  const B = b.input_ids.length;
  const C = b.completion_length;
  if (Ps < min_prefix || B === 1) {
    return tf.tidy(() =>
      per_token_logps(model, tf.tensor2d(b.input_ids, undefined, 'int32'), {
        attention_mask: tf.tensor2d(b.attention_mask, undefined, 'int32'),
        logits_to_keep: C,
      }),
    );
  }
  return tf.tidy(() => {
    const starts = b.attention_mask.map((m) => m.indexOf(1));
    const prefix = tf.tensor2d([b.input_ids[0].slice(starts[0], starts[0] + Ps)], [1, Ps], 'int32');
    const { past_key_values } = model.forwardHidden(prefix, { use_cache: true }); // [1, KV, Ps, hd] per layer
    // B copies by concat (Tile is slow on wasm); the gradients of the copies add up in the prefix's k/v.
    const tiled: KVCache = past_key_values.map((l) => ({
      key: tf.concat(new Array<tf.Tensor4D>(B).fill(l.key), 0) as tf.Tensor4D,
      value: tf.concat(new Array<tf.Tensor4D>(B).fill(l.value), 0) as tf.Tensor4D,
    }));
    // Each row without its copy of the prefix; rows keep their length, so left padding grows by Ps.
    const S = b.prompt_length + C - Ps;
    const ids: number[][] = [];
    const mask: number[][] = [];
    for (let i = 0; i < B; i++) {
      const s = starts[i];
      const pad = s; // left pad before the row's first real token stays in front
      const restIds = [...b.input_ids[i].slice(0, pad), ...b.input_ids[i].slice(s + Ps)];
      const restMask = [...b.attention_mask[i].slice(0, pad), ...b.attention_mask[i].slice(s + Ps)];
      ids.push(restIds);
      mask.push([...new Array<number>(Ps).fill(1), ...restMask]);
    }
    const { hidden } = model.forwardHidden(tf.tensor2d(ids, [B, S], 'int32'), {
      past_key_values: tiled,
      attention_mask: tf.tensor2d(mask, [B, Ps + S], 'int32'),
      use_cache: false,
    }); // [B*S, d]
    const d = model.config.hidden_size;
    // Hidden state at position t predicts token t+1: the last C targets are predicted by positions S-1-C .. S-2.
    const h = tf.slice(hidden.reshape([B, S, d]), [0, S - 1 - C, 0], [B, C, d]).reshape([B * C, d]) as tf.Tensor2D;
    const targets = tf.tensor2d(ids, [B, S], 'int32').slice([0, S - C], [B, C]).reshape([B * C]) as tf.Tensor1D;
    return model.headLogprobs(h, targets).reshape([B, C]) as tf.Tensor2D;
  });
}
