/**
 * Batched autoregressive generation with a per-layer KV cache: prompts of different lengths in one batch,
 * temperature / top-k / top-p sampling or greedy, stop tokens, per-sequence finish, seeded.
 *
 * What it is: the rollout engine for GRPO and evaluation. Token ids in, completion ids + `completion_mask` +
 * per-token log-probs out (TRL names). It knows nothing of tokenizers, tools or rewards.
 * What it is not: beam search, repetition penalties, or streaming.
 *
 * How one call runs:
 *   1. Left-pad the prompts to the longest (pad id, attention_mask 0) and give each row its own position ids
 *      (0 at its first real token), so a short prompt sees the same positions it would see alone.
 *   2. Prefill: ONE forward over the DISTINCT prompts [U, P] fills the cache (U = B / num_generations in
 *      GRPO: identical prompts are detected by their ids), whose rows are then copied to the B rows (one
 *      gather); only the last position's logits are read back.
 *   3. Decode: each step feeds only the B new tokens ([B, 1]) with the cache, so a new token never re-runs
 *      the prompt. Per step there is exactly one device -> JS sync point: reading the [B, V] last-position
 *      logits, after which the rows are sampled in JS (src/model/sampling.ts) with the seeded Rng.
 *   4. A row that samples a stop token is finished: it emits `pad_token_id` from then on (mask 0, log-prob 0).
 *      Finished rows are dropped from the batch (the fused decode step moves cache rows in place, at once;
 *      through `forward`, once they are a quarter of the batch, by one gather of the cache), so
 *      they stop costing compute; the loop ends as soon as every row is finished or `max_new_tokens` is reached.
 * LoRA: if the model carries an active, unmerged adapter, it is merged into the base weights for the duration
 * of the call (one product per projection instead of three) and unmerged afterwards, also on error.
 *
 * Log-probs returned are log softmax(logits / temperature) of each sampled token, before top-k / top-p:
 * TRL computes `old_per_token_logps` the same way (logits divided by the sampling temperature), so GRPO's
 * importance ratio starts at exactly 1. Greedy uses temperature 1.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng';
import { checkSampling, DEFAULT_SAMPLING, sampleRow, type SamplingOptions } from './sampling';
import type { LoraAdapter } from './lora';

/**
 * What generate needs from a causal LM (Qwen2ForCausalLM satisfies it). The cache type is opaque here.
 * `logits_to_keep` (HF's name) may be ignored by a model: generate reads the last position of whatever comes back.
 * `adapter`, when present, is a LoRA adapter generate may merge into the weights for the call (lora.ts).
 */
export interface CausalLM<KV = unknown> {
  forward(
    input_ids: tf.Tensor2D,
    opts?: { past_key_values?: KV; attention_mask?: tf.Tensor2D; position_ids?: tf.Tensor2D; use_cache?: boolean; logits_to_keep?: number },
  ): { logits: tf.Tensor3D; past_key_values: KV };
  readonly adapter?: Pick<LoraAdapter, 'state' | 'merge' | 'unmerge'>;
  /**
   * Optional fast path for the decode steps: a fused step for `rows` rows and `capacity` cache columns, or
   * undefined where the model has none (generate then decodes through `forward`). Qwen2ForCausalLM has one on
   * wasm with no unmerged adapter (src/model/decode.ts).
   */
  fusedDecoder?(rows: number, capacity: number): FusedDecodeStep<KV> | undefined;
}

/** A model's fused decode step (see CausalLM.fusedDecoder); it owns its buffers until dispose(). */
export interface FusedDecodeStep<KV = unknown> {
  /** Fill the cache from the prefill's: row slot i from cache row source[i]; starts[i] = its first real column. */
  load(cache: KV, source: readonly number[], starts: readonly number[]): void;
  /** One token per live row slot at the given positions -> next-token logits [rows, V], row-major. */
  step(tokens: readonly number[], positions: readonly number[]): Float32Array;
  /** Keep row slots `keep` (ascending) as the live rows. */
  compact(keep: readonly number[]): void;
  dispose(): void;
}


/** Options with Hugging Face `GenerationConfig` names. */
export interface GenerateOptions extends Partial<SamplingOptions> {
  /** Upper bound on completion length (tokens). */
  max_new_tokens: number;
  /** Token ids that end a sequence (EOS, `<|im_end|>`); the stop token itself is part of the completion. */
  stop_token_ids?: readonly number[];
  /** Filler for left padding of prompts and for finished rows. */
  pad_token_id: number;
  /** Seed for the sampler; ignored when `rng` is given. Default 0. */
  seed?: number;
  /** Sampler stream to draw from (advanced in place, so successive calls continue one stream). */
  rng?: Rng;
  /**
   * One sampler stream per prompt instead of `rng` (each advanced in place). A row's samples then depend only
   * on its own stream, so a batch split across data-parallel replicas samples exactly what it would in one
   * piece.
   */
  rngs?: readonly Rng[];
  /** false = recompute the whole sequence every step (no cache). Only for checks; quadratic cost. */
  use_cache?: boolean;
  /**
   * Fold an active LoRA adapter into the base weights for the call (`adapter.merge()`, then `unmerge()`, which
   * restores the base bit for bit). Default true; only an adapter in state 'active' is touched (a disabled or
   * already merged one is left as it is). false = run the adapter unmerged (three products per projection).
   */
  merge_lora?: boolean;
  /**
   * Drop finished rows from the batch (and their cache rows): at once with the fused decode step, else once
   * they are a quarter of it, so rows that
   * stopped early stop costing compute. Outputs are the same either way. Default true.
   */
  compact_finished?: boolean;
  /**
   * Decode steps through the fused wasm step (src/model/decode.ts: a few calls per layer, the KV cache written
   * in place) when the model is a Qwen2ForCausalLM on wasm with no unmerged adapter; else through `forward`.
   * Same outputs up to float rounding. Default true.
   */
  fused_decode?: boolean;
  /**
   * Prefill each distinct prompt once and give the rows that repeat it (GRPO's `num_generations` completions
   * of one prompt) copies of its KV cache and last-position logits. Outputs are the same either way (each row
   * still samples from its own stream). Default true.
   */
  share_prompts?: boolean;
}

export type FinishReason = 'stop' | 'length';

/** Result of `generate`; every array has one entry per prompt, in prompt order. */
export interface GenerateOutput {
  /** Completion ids, all rows the same length (the number of decode steps run); `pad_token_id` after a stop. */
  sequences: number[][];
  /** 1 for generated tokens up to and including the stop token, 0 after (TRL's `completion_mask`). */
  completion_mask: number[][];
  /** log p(token) under softmax(logits / temperature) for each generated token; 0 where the mask is 0. */
  logprobs: number[][];
  /** Entropy (nats) of softmax(logits / temperature) at each generated position; 0 where the mask is 0. */
  entropies: number[][];
  /** 'stop' when a stop token was sampled, 'length' when `max_new_tokens` ran out. */
  finish_reasons: FinishReason[];
  /** Sequence lengths passed to `forward`, in call order (prefill P, then 1 per decode step): a cost trace. */
  forward_lengths: number[];
  /** Batch rows passed to `forward`, in call order: the prefill runs on the distinct prompts, then every row (fewer as finished rows are dropped). */
  forward_rows: number[];
}

/**
 * Generate completions for a batch of token-id prompts. See the file header for the algorithm and costs.
 * Leaves `tf.memory().numTensors` as it found it.
 */
export async function generate<KV>(model: CausalLM<KV>, prompts: readonly (readonly number[])[], opts: GenerateOptions): Promise<GenerateOutput> {
  const o: SamplingOptions = {
    do_sample: opts.do_sample ?? DEFAULT_SAMPLING.do_sample,
    temperature: opts.temperature ?? DEFAULT_SAMPLING.temperature,
    top_k: opts.top_k ?? DEFAULT_SAMPLING.top_k,
    top_p: opts.top_p ?? DEFAULT_SAMPLING.top_p,
  };
  checkSampling(o);
  const B = prompts.length;
  if (B === 0) return { sequences: [], completion_mask: [], logprobs: [], entropies: [], finish_reasons: [], forward_lengths: [], forward_rows: [] };
  if (!Number.isInteger(opts.max_new_tokens) || opts.max_new_tokens < 1) {
    throw new RangeError(`max_new_tokens must be an integer >= 1, got ${opts.max_new_tokens}`);
  }
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new RangeError(`generate: prompt ${i} is empty`);
  });
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  if (opts.rngs && opts.rngs.length !== B) throw new RangeError(`generate: ${opts.rngs.length} rngs for ${B} prompts`);
  const rowRng = (b: number): Rng => (opts.rngs ? opts.rngs[b] : rng);
  const stop = new Set(opts.stop_token_ids ?? []);
  const pad = opts.pad_token_id;
  const useCache = opts.use_cache ?? true;

  // Left padding. ids / mask / positions are kept in JS and grown by one column per step.
  const P = Math.max(...prompts.map((p) => p.length));
  const rows: number[][] = prompts.map((p) => [...new Array<number>(P - p.length).fill(pad), ...p]);
  const mask: number[][] = prompts.map((p) => [...new Array<number>(P - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const pos: number[][] = prompts.map((p) => [...new Array<number>(P - p.length).fill(0), ...p.map((_, j) => j)]);

  const out: GenerateOutput = {
    sequences: prompts.map(() => []),
    completion_mask: prompts.map(() => []),
    logprobs: prompts.map(() => []),
    entropies: prompts.map(() => []),
    finish_reasons: prompts.map(() => 'length' as FinishReason),
    forward_lengths: [],
    forward_rows: [],
  };
  const done = new Array<boolean>(B).fill(false);
  // Distinct prompts: uniq[u] = the first row with prompt u; slotOf[b] = u. Only the prefill uses them.
  const uniq: number[] = [];
  const slotOf: number[] = [];
  {
    const seen = new Map<string, number>();
    prompts.forEach((p, b) => {
      const k = p.join(',');
      let u = seen.get(k);
      if (u === undefined || opts.share_prompts === false || !useCache) {
        u = uniq.push(b) - 1;
        seen.set(k, u);
      }
      slotOf.push(u);
    });
  }

  let cache: KV | undefined;
  let scratch: Float64Array | undefined;
  // live[i] = the prompt index in batch slot i. Shrinks when finished rows are dropped (compaction).
  let live = prompts.map((_, i) => i);
  const compact = opts.compact_finished ?? true;
  // Merge only an adapter that is live in forward (enabled, not yet merged); undo exactly what we did.
  const adapter = model.adapter;
  const merge = opts.merge_lora !== false && adapter !== undefined && adapter.state === 'active';
  if (merge) adapter.merge();
  // The model's fused decode step, when it has one here (made after the merge: it reads the weights as they are).
  let decoder: FusedDecodeStep<KV> | undefined;
  try {
    // Prefill (or, without a cache, the full sequence every step). Returns the [live, V] last-position logits.
    const step = (first: boolean): tf.Tensor2D => {
      // The prefill runs on one row per distinct prompt (`feed`), then fans out to the live rows.
      const feed = first && uniq.length < live.length ? uniq : live;
      const n = feed.length;
      const S = rows[live[0]].length;
      const T = first || !useCache ? S : 1;
      out.forward_lengths.push(T);
      out.forward_rows.push(n);
      return tf.tidy(() => {
        const ids = tf.tensor2d(feed.map((b) => rows[b].slice(S - T)), [n, T], 'int32');
        const am = tf.tensor2d(feed.map((b) => mask[b]), [n, S], 'int32');
        const pid = tf.tensor2d(feed.map((b) => pos[b].slice(S - T)), [n, T], 'int32');
        const fwd = { past_key_values: useCache ? cache : undefined, attention_mask: am, position_ids: pid, use_cache: useCache };
        // Prefill keeps the last position's logits only (the [n, T, V] logits would cost a head product per prompt
        // token: ~12-18% of the prefill for the bench configs).
        const res = model.forward(ids, T > 1 ? { ...fwd, logits_to_keep: 1 } : fwd);
        const [, Tl, V] = res.logits.shape;
        let logits = (Tl === 1 ? res.logits.reshape([n, V]) : res.logits.slice([0, Tl - 1, 0], [n, 1, V]).reshape([n, V])) as tf.Tensor2D; // [n, V]
        let next = res.past_key_values;
        if (feed !== live) {
          // [U, ...] -> [live, ...]: each row gets its prompt's logits and cache rows (copies, one gather each;
          // the fused decoder copies the cache rows itself).
          const idx = tf.tensor1d(live.map((b) => slotOf[b]), 'int32');
          logits = tf.gather(logits, idx);
          if (!decoder) next = mapTensors(next, (t) => (t.shape[0] === n ? tf.gather(t, idx) : t)) as KV;
        }
        if (useCache) {
          keepAll(next);
          if (cache !== undefined) disposeReplaced(cache, next);
          cache = next;
        }
        return logits;
      });
    };

    if (useCache && opts.fused_decode !== false && opts.max_new_tokens > 1) decoder = model.fusedDecoder?.(B, P + opts.max_new_tokens);
    let last: tf.Tensor2D | Float32Array = step(true);
    const V = (last as tf.Tensor2D).shape[1];
    if (decoder) {
      // Hand the prefill's cache ([U or live rows, ...]) to the fused decoder, fanned out to the live rows.
      const fromU = uniq.length < live.length;
      decoder.load(cache as KV, live.map((b, i) => (fromU ? slotOf[b] : i)), live.map((b) => P - prompts[b].length));
      tf.dispose(tensorsIn(cache));
      cache = undefined;
    }
    for (let s = 0; s < opts.max_new_tokens; s++) {
      // The one sync point per step: [live, V] floats from the backend to JS (the fused step returns them).
      let buf: Float32Array;
      if (last instanceof Float32Array) buf = last;
      else {
        buf = (await last.data()) as Float32Array;
        last.dispose();
      }
      if (o.do_sample && (!scratch || scratch.length < V)) scratch = new Float64Array(V);
      const slot = new Map(live.map((b, i) => [b, i]));
      for (let b = 0; b < B; b++) {
        let tok = pad;
        if (!done[b]) {
          const { token, logprob, entropy } = sampleRow(buf, slot.get(b)! * V, V, o, rowRng(b), scratch);
          tok = token;
          out.sequences[b].push(token);
          out.completion_mask[b].push(1);
          out.logprobs[b].push(logprob);
          out.entropies[b].push(entropy);
          if (stop.has(token)) {
            done[b] = true;
            out.finish_reasons[b] = 'stop';
          }
        } else {
          out.sequences[b].push(pad);
          out.completion_mask[b].push(0);
          out.logprobs[b].push(0);
          out.entropies[b].push(0);
        }
        rows[b].push(tok);
        mask[b].push(1); // as HF: the mask grows with ones for every row; finished rows' outputs are ignored
        pos[b].push(pos[b][pos[b].length - 1] + 1);
      }
      if (s === opts.max_new_tokens - 1 || done.every((d) => d)) break;
      // Drop finished rows from the batch: the fused step moves cache rows in place (a memmove a row), so at once;
      // through forward, once a quarter of the batch is dead weight: one gather of the cache
      // (a copy of it) buys every later step a smaller batch.
      const still = live.filter((b) => !done[b]);
      if (compact && still.length < live.length && (decoder || still.length <= 0.75 * live.length)) {
        if (decoder) decoder.compact(still.map((b) => slot.get(b)!));
        else if (useCache && cache !== undefined) {
          const idx = still.map((b) => slot.get(b)!);
          const rowsBefore = live.length;
          const old: KV = cache;
          const keepIdx = tf.tensor1d(idx, 'int32');
          cache = mapTensors(old, (t) => (t.shape[0] === rowsBefore ? tf.gather(t, keepIdx) : t)) as KV;
          keepIdx.dispose();
          disposeReplaced(old, cache);
        }
        live = still;
      }
      if (decoder) {
        out.forward_lengths.push(1);
        out.forward_rows.push(live.length);
        last = decoder.step(live.map((b) => rows[b][rows[b].length - 1]), live.map((b) => pos[b][pos[b].length - 1]));
      } else last = step(false);
    }
  } finally {
    decoder?.dispose();
    if (cache !== undefined) tf.dispose(tensorsIn(cache));
    if (merge) adapter.unmerge();
  }
  return out;
}

/** Rebuild arrays and plain objects with every tensor replaced by f(tensor); other values are kept as they are. */
function mapTensors(x: unknown, f: (t: tf.Tensor) => tf.Tensor): unknown {
  if (x instanceof tf.Tensor) return f(x);
  if (Array.isArray(x)) return x.map((v) => mapTensors(v, f));
  if (x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.fromEntries(Object.entries(x as object).map(([k, v]) => [k, mapTensors(v, f)]));
  }
  return x;
}

/** Every tf.Tensor reachable from a value (arrays, plain objects and class instances' own fields). */
export function tensorsIn(x: unknown, acc: tf.Tensor[] = [], seen = new Set<unknown>()): tf.Tensor[] {
  if (x === null || typeof x !== 'object' || seen.has(x)) return acc;
  seen.add(x);
  if (x instanceof tf.Tensor) {
    acc.push(x);
    return acc;
  }
  if (ArrayBuffer.isView(x)) return acc;
  for (const v of Array.isArray(x) ? x : Object.values(x as object)) tensorsIn(v, acc, seen);
  return acc;
}

/** Keep a cache's tensors alive past the tf.tidy that created them. */
function keepAll(cache: unknown): void {
  for (const t of tensorsIn(cache)) tf.keep(t);
}

/** Dispose the tensors of the old cache that the new one does not reuse. */
function disposeReplaced(old: unknown, next: unknown): void {
  const live = new Set(tensorsIn(next));
  for (const t of tensorsIn(old)) if (!live.has(t)) t.dispose();
}
