/**
 * Completion log-probs for training, with the prompt computed once per distinct prompt (GRPO) or the batch's
 * common prompt prefix computed once (SFT), instead of once per row.
 *
 * Two ways to share, chosen per batch (both give the plain [B, P + C] forward's log-probs and gradients, up to
 * float rounding; gradients flow through the shared keys/values back into the shared forward):
 *
 *   per prompt      GRPO's rows come in groups of `num_generations` completions of ONE prompt. Each distinct
 *                   prompt but its last token runs once, as a [U, Pu] forward (U distinct prompts, left-padded
 *                   among themselves); its keys/values are gathered to the B rows, and each row then runs only
 *                   [last prompt token | completion] (C + 1 tokens) on top. Works whatever the prompts share
 *                   with each other (per-row tool catalogs included).
 *   common prefix   rows with distinct prompts that start with the same tokens (SFT: the system turn with the
 *                   tool list): that prefix runs once as [1, Ps], tiled to the B rows, then each row's own
 *                   tokens [rest of the prompt | completion].
 *
 * Layout of the second forward (per row): [left pad | own tokens | completion | right pad], attention mask
 * [shared part's mask | row mask]; the model derives positions from the mask (cumsum - 1), so every real token
 * keeps the position it had in sampling.
 *
 * Not here: the model (src/model/qwen2.ts) or the plain per_token_logps (src/model/logprobs.ts), which this
 * falls back to when rows share neither a prompt nor `min_prefix` leading tokens.
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
 * The distinct prompts of a batch: `prompts[u]` (real tokens, no padding) and `group[i]` = u for row i.
 * Rows are grouped by their prompt tokens only (completions may differ).
 */
export function distinctPrompts(b: Batch): { prompts: number[][]; group: number[] } {
  const prompts: number[][] = [];
  const group: number[] = [];
  const seen = new Map<string, number>();
  b.input_ids.forEach((row, i) => {
    const p = row.slice(b.attention_mask[i].indexOf(1), b.prompt_length);
    const k = p.join(',');
    let u = seen.get(k);
    if (u === undefined) {
      u = prompts.push(p) - 1;
      seen.set(k, u);
    }
    group.push(u);
  });
  return { prompts, group };
}

/**
 * log p(completion token | prefix) [B, C] for a batch (differentiable: call inside tf.variableGrads for the
 * loss, or outside for old / reference log-probs).
 */
export function completionLogps(model: Qwen2ForCausalLM, b: Batch, min_prefix = 16): tf.Tensor2D {
  const B = b.input_ids.length;
  if (B > 1) {
    const d = distinctPrompts(b);
    if (d.prompts.length < B && d.prompts.every((p) => p.length >= 2)) return perPromptLogps(model, b, d.prompts, d.group);
  }
  const Ps = sharedPrefixLength(b);
  if (Ps < min_prefix || B === 1) {
    return tf.tidy(() =>
      per_token_logps(model, tf.tensor2d(b.input_ids, undefined, 'int32'), {
        attention_mask: tf.tensor2d(b.attention_mask, undefined, 'int32'),
        logits_to_keep: b.completion_length,
      }),
    );
  }
  return commonPrefixLogps(model, b, Ps);
}

/** The per-prompt path (see the header): [U, Pu] prompt forward, gathered to B rows, then [B, 1 + C]. */
function perPromptLogps(model: Qwen2ForCausalLM, b: Batch, prompts: number[][], group: number[]): tf.Tensor2D {
  return tf.tidy(() => {
    const B = b.input_ids.length;
    const U = prompts.length;
    const C = b.completion_length;
    const P = b.prompt_length;
    // Each prompt but its last token, left-padded to Pu: [U, Pu].
    const Pu = Math.max(...prompts.map((p) => p.length - 1));
    const preIds = prompts.map((p) => [...new Array<number>(Pu - p.length + 1).fill(0), ...p.slice(0, -1)]);
    const preMask = prompts.map((p) => [...new Array<number>(Pu - p.length + 1).fill(0), ...new Array<number>(p.length - 1).fill(1)]);
    const { past_key_values } = model.forwardHidden(tf.tensor2d(preIds, [U, Pu], 'int32'), {
      attention_mask: tf.tensor2d(preMask, [U, Pu], 'int32'),
      use_cache: true,
    }); // [U, KV, Pu, hd] per layer
    // Row i gets its prompt's keys/values (a gather; its gradient sums the group's rows back into the prompt's).
    const idx = tf.tensor1d(group, 'int32');
    const cache: KVCache = past_key_values.map((l) => ({ key: tf.gather(l.key, idx) as tf.Tensor4D, value: tf.gather(l.value, idx) as tf.Tensor4D }));
    // [last prompt token | completion]: S = 1 + C columns; mask [prompt's prefix mask | 1 | row's completion mask].
    const S = 1 + C;
    const ids: number[][] = [];
    const mask: number[][] = [];
    for (let i = 0; i < B; i++) {
      ids.push([b.input_ids[i][P - 1], ...b.input_ids[i].slice(P)]);
      mask.push([...preMask[group[i]], 1, ...b.attention_mask[i].slice(P)]);
    }
    const { hidden } = model.forwardHidden(tf.tensor2d(ids, [B, S], 'int32'), {
      past_key_values: cache,
      attention_mask: tf.tensor2d(mask, [B, Pu + S], 'int32'),
      use_cache: false,
    }); // [B*S, d]
    const d = model.config.hidden_size;
    // Position j of the suffix predicts completion token j (column j + 1).
    const h = tf.slice(hidden.reshape([B, S, d]), [0, 0, 0], [B, C, d]).reshape([B * C, d]) as tf.Tensor2D;
    const targets = tf.tensor1d(b.input_ids.flatMap((r) => r.slice(P)), 'int32');
    return model.headLogprobs(h, targets).reshape([B, C]) as tf.Tensor2D;
  });
}

/** The common-prefix path (see the header): [1, Ps] forward tiled to B rows, then each row's own tokens. */
function commonPrefixLogps(model: Qwen2ForCausalLM, b: Batch, Ps: number): tf.Tensor2D {
  const B = b.input_ids.length;
  const C = b.completion_length;
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
