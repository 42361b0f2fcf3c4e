/**
 * Logits processors and the token sampler, on the JS side, one row of last-position logits at a time.
 *
 * What it is: Hugging Face's logits warpers in the same order as `generate()` applies them (temperature,
 * then top-k, then top-p), a greedy pick, and a seeded draw through `src/util/rng`. Generation reads the
 * last-position logits back from the backend once per step ([B, V] floats) and calls `sampleRow` per row.
 * What it is not: a tensor op. At B=32, V=2048 a row costs microseconds in JS, far less than the forward
 * pass; doing it here keeps the sampler exact, seeded and identical on every backend.
 *
 * Log-probs: `sampleRow` returns the log-probability of the chosen token under softmax(logits / temperature)
 * computed BEFORE top-k / top-p, i.e. what TRL's GRPO trainer recomputes as `old_per_token_logps` (it divides
 * the model's logits by `temperature` and takes a plain log_softmax). Greedy uses temperature 1.
 */
import type { Rng } from '../util/rng';

/** Sampling knobs with Hugging Face names and defaults (`GenerationConfig`). */
export interface SamplingOptions {
  /** false = greedy (argmax, first index on ties), the evaluation setting. */
  do_sample: boolean;
  /** Logits are divided by this before softmax (> 0). Ignored by greedy. */
  temperature: number;
  /** Keep only the k most likely tokens (ties with the k-th kept, as HF does); 0 = off. */
  top_k: number;
  /** Keep the smallest set of most likely tokens whose probability sums to >= top_p; 1 = off. */
  top_p: number;
}

export const DEFAULT_SAMPLING: SamplingOptions = { do_sample: true, temperature: 1, top_k: 0, top_p: 1 };

/** Check the knobs once per generate call; throws RangeError naming the bad one. */
export function checkSampling(o: SamplingOptions): void {
  if (!(o.temperature > 0) || !Number.isFinite(o.temperature)) throw new RangeError(`temperature must be > 0, got ${o.temperature}`);
  if (!Number.isInteger(o.top_k) || o.top_k < 0) throw new RangeError(`top_k must be an integer >= 0, got ${o.top_k}`);
  if (!(o.top_p > 0 && o.top_p <= 1)) throw new RangeError(`top_p must be in (0, 1], got ${o.top_p}`);
}

/** Index of the largest value in row [off, off+V) (first one on ties, like torch.argmax). */
export function argmax(logits: Float32Array, off: number, V: number): number {
  let best = 0;
  let bv = logits[off];
  for (let i = 1; i < V; i++) {
    const v = logits[off + i];
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** log softmax(row / temperature)[token], in float64. */
export function tokenLogprob(logits: Float32Array, off: number, V: number, token: number, temperature: number): number {
  let m = -Infinity;
  for (let i = 0; i < V; i++) if (logits[off + i] > m) m = logits[off + i];
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp((logits[off + i] - m) / temperature);
  return (logits[off + token] - m) / temperature - Math.log(s);
}

/**
 * Pick one token from row `off..off+V` of `logits` (a [B, V] buffer read back from the model).
 * Returns the token, its log-prob under softmax(logits / temperature) before top-k / top-p (see header), and the
 * entropy (nats) of that same distribution: TRL's `entropy` metric, at no extra pass over the logits.
 * Consumes exactly one `rng.next()` when sampling, none when greedy, so streams stay aligned across rows.
 */
export function sampleRow(
  logits: Float32Array,
  off: number,
  V: number,
  o: SamplingOptions,
  rng: Rng,
  scratch?: Float64Array,
): { token: number; logprob: number; entropy: number } {
  if (!o.do_sample) {
    const token = argmax(logits, off, V);
    const m = logits[off + token];
    let z = 0;
    let zx = 0; // sum of e^(l - m) * (l - m), for the entropy
    for (let i = 0; i < V; i++) {
      const x = logits[off + i] - m;
      const e = Math.exp(x);
      z += e;
      zx += e * x;
    }
    return { token, logprob: -Math.log(z), entropy: Math.log(z) - zx / z };
  }
  const T = o.temperature;
  // p[i] = exp((l_i - max) / T) unnormalised; Z = sum. Float64 so a 150k vocab sums exactly enough.
  const p = scratch && scratch.length >= V ? scratch : new Float64Array(V);
  let m = -Infinity;
  for (let i = 0; i < V; i++) if (logits[off + i] > m) m = logits[off + i];
  let Z = 0;
  let ZX = 0; // sum of p_i * x_i with x_i = (l_i - m) / T: the entropy is log Z - ZX / Z
  const invT = 1 / T;
  for (let i = 0; i < V; i++) {
    const x = (logits[off + i] - m) * invT;
    const e = Math.exp(x);
    p[i] = e;
    Z += e;
    ZX += e * x;
  }
  const logZ = Math.log(Z);
  const entropy = logZ - ZX / Z; // of softmax(logits / T), before top-k / top-p (like the log-prob)

  // top-k: zero everything strictly below the k-th largest value (ties with it survive, as in HF).
  let mass = Z;
  if (o.top_k > 0 && o.top_k < V) {
    const kth = kthLargest(p, V, o.top_k);
    mass = 0;
    for (let i = 0; i < V; i++) {
      if (p[i] < kth) p[i] = 0;
      else mass += p[i];
    }
  }
  // top-p (HF TopPLogitsWarper on the renormalised survivors): keep the most likely tokens until their
  // cumulative probability reaches top_p; always keep at least one.
  if (o.top_p < 1) mass = applyTopP(p, V, mass, o.top_p);

  const u = rng.next() * mass;
  let acc = 0;
  let token = -1;
  for (let i = 0; i < V; i++) {
    if (p[i] === 0) continue;
    acc += p[i];
    token = i;
    if (acc > u) break;
  }
  // token is the last non-zero one if rounding left acc <= u; mass > 0 so one exists.
  return { token, logprob: (logits[off + token] - m) / T - logZ, entropy };
}

/**
 * The k-th largest of p[0..V) (1 <= k < V). Small k: one pass with a size-k min-heap, O(V log k) (top_k=50
 * over a 150k vocabulary is ~1 ms); large k: sort a copy.
 */
function kthLargest(p: Float64Array, V: number, k: number): number {
  if (k > 1024) {
    const a = Float64Array.from(p.subarray(0, V));
    a.sort();
    return a[V - k];
  }
  const h = new Float64Array(k); // min-heap of the k largest seen so far; h[0] is the smallest of them
  for (let i = 0; i < k; i++) heapPush(h, i, p[i]);
  for (let i = k; i < V; i++) {
    const x = p[i];
    if (x > h[0]) heapReplaceTop(h, k, x);
  }
  return h[0];
}

function heapPush(h: Float64Array, n: number, x: number): void {
  let i = n;
  h[i] = x;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent] <= h[i]) break;
    [h[parent], h[i]] = [h[i], h[parent]];
    i = parent;
  }
}

function heapReplaceTop(h: Float64Array, n: number, x: number): void {
  h[0] = x;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1, r = l + 1;
    let m = i;
    if (l < n && h[l] < h[m]) m = l;
    if (r < n && h[r] < h[m]) m = r;
    if (m === i) return;
    [h[m], h[i]] = [h[i], h[m]];
    i = m;
  }
}

/**
 * Zero out the tail of p so the kept tokens are the most likely ones whose sum (over `mass`) first reaches
 * top_p. Exact, but sorts only the tokens above a threshold: if the tokens with p >= t already hold top_p of
 * the mass, the kept set lies among them; otherwise lower t and retry (peaked distributions stop at once).
 * Returns the kept mass.
 */
function applyTopP(p: Float64Array, V: number, mass: number, top_p: number): number {
  const target = top_p * mass;
  let t = mass * 1e-3;
  for (;;) {
    const idx: number[] = [];
    let s = 0;
    for (let i = 0; i < V; i++) {
      if (p[i] > 0 && p[i] >= t) {
        idx.push(i);
        s += p[i];
      }
    }
    if (s >= target || t === 0) {
      // Descending by probability; ties by index so the result does not depend on sort stability.
      idx.sort((a, b) => p[b] - p[a] || a - b);
      let acc = 0;
      let n = 0;
      while (n < idx.length) {
        acc += p[idx[n]];
        n++;
        if (acc >= target) break;
      }
      // HF removes a token only when the ascending cumulative sum up to it is <= 1 - top_p, so a token tied
      // with the last kept one at the boundary is removed too; we keep exactly the first n, which differs
      // from HF only on exact float ties.
      const keep = new Uint8Array(V);
      for (let j = 0; j < n; j++) keep[idx[j]] = 1;
      let kept = 0;
      for (let i = 0; i < V; i++) {
        if (!keep[i]) p[i] = 0;
        else kept += p[i];
      }
      return kept;
    }
    t = t > mass * 1e-12 ? t / 100 : 0;
  }
}
