/**
 * The fused decode step: one new token per row through a Qwen2ForCausalLM (its `fusedDecoder`), on the wasm
 * backend, in a handful of calls instead of ~60 tfjs ops per layer.
 *
 * Why: at the course's sizes (hidden 128, 16-32 rows) a decode step through `forward` was dominated by per-op
 * cost: ~250 kernel dispatches, a copy of the whole KV cache per layer (concat), and attention as tfjs's
 * batched matmul, a scalar loop on wasm (0.7-3 ms per product at 32 rows; docs/benchmarks.md). Here a step
 * is, per layer: 4 XNNPACK products (tfjs's own `_FusedMatMul`, on the same weights every step so XNNPACK
 * packs them once), SIMD kernels for attention, RMSNorm, SwiGLU and the residual adds
 * (src/model/wasm/decode.wat, a module that shares the backend's memory) and a short JS loop for RoPE and the
 * cache write, all reading and writing the wasm heap in place. The KV cache is preallocated to `capacity`
 * columns and written in place (keys transposed, [rows, kv_heads, head_dim, capacity], so the attention kernel
 * reads four columns as one vector).
 *
 * Same maths as `Qwen2ForCausalLM.forward` with a cache, up to float rounding (sums in another order, exp as a
 * polynomial accurate to ~1 ulp); tests/decode.test.ts checks the logits against forward.
 *
 * What it is not: a general forward. No gradients, no LoRA adapter that is not merged (generate merges it), no
 * other backend (`FusedDecoder.supported` says when it applies; generate falls back to `forward` otherwise).
 * Ownership: the decoder owns every buffer it allocates (tfjs tensors kept out of any tidy); `dispose()`
 * frees them. Nothing else may hold these tensors, since the decoder writes into them.
 */
import * as tf from '@tensorflow/tfjs';
import { headDim, type Qwen2Config } from './config';
import { projectionPath, ropeTables } from './layout';
import { simdKernels, simdUsable, type SimdKernels, type WasmMemory } from './simd';

/** What the decoder reads from the model (Qwen2ForCausalLM; not imported: qwen2.ts imports this file). */
export interface DecoderModel {
  readonly config: Qwen2Config;
  readonly params: Map<string, tf.Variable>;
  headWeightName(): string;
}
/** A prefill's KV cache: per layer keys / values [U, kv_heads, P, head_dim] after RoPE (qwen2.ts KVCache). */
export type PrefillCache = { key: tf.Tensor4D; value: tf.Tensor4D }[];

interface WasmModule {
  HEAPF32: Float32Array;
  HEAP32: Int32Array;
  asm: { memory: WasmMemory };
  cwrap: (name: string, ret: null, args: string[]) => (...args: unknown[]) => void;
}
interface WasmBackend {
  wasm: WasmModule;
  dataIdMap: { get(id: object): { id: number; memoryOffset: number } };
}

/** The SIMD kernels plus tfjs's XNNPACK product, for one wasm backend. */
type Kernels = SimdKernels & { fusedMatMul: (...args: unknown[]) => void };
let kernels: Kernels | undefined;

function backendKernels(be: WasmBackend): Kernels {
  const memory = be.wasm.asm.memory;
  if (kernels && kernels.memory === memory) return kernels;
  const fusedMatMul = be.wasm.cwrap('_FusedMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number', 'number', 'number', 'number', 'number']);
  kernels = { ...simdKernels(memory), fusedMatMul };
  return kernels;
}

/** A kept float32 buffer on the wasm heap: its tensor (for disposal), tfjs id and byte offset. */
interface Buf {
  t: tf.Tensor;
  id: number;
  off: number;
}

function shapeBytes(s: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(s).buffer);
}

export class FusedDecoder {
  /** True when the fused step can run this model here: wasm backend (single-threaded build), head_dim % 8 == 0,
   * hidden and intermediate sizes % 4 == 0. */
  static supported(c: Qwen2Config): boolean {
    if (tf.getBackend() !== 'wasm') return false;
    const be = tf.backend() as unknown as WasmBackend;
    if (!simdUsable(be.wasm?.asm?.memory)) return false;
    return headDim(c) % 8 === 0 && c.hidden_size % 4 === 0 && c.intermediate_size % 4 === 0;
  }

  private readonly be: WasmBackend;
  private readonly k: Kernels;
  private readonly owned: tf.Tensor[] = [];
  private readonly d: number;
  private readonly H: number;
  private readonly KV: number;
  private readonly hd: number;
  private readonly F: number;
  private readonly V: number;
  private readonly QKV: number;
  private readonly eps: number;
  private readonly cos: Float32Array;
  private readonly sin: Float32Array;
  /** Per layer: the products' weights [in, out] (q|k|v with its bias), norm weights, cache buffers. */
  private readonly layers: {
    qkv: Buf; bqkv: Buf; o: Buf; gu: Buf; down: Buf; ln1: number; ln2: number; kT: Buf; v: Buf;
  }[] = [];
  private readonly embedOff: number;
  private readonly head: Buf;
  /** Byte offsets of the final norm's weight (the variable's own buffer). */
  private readonly lnf: number;
  // Scratch, sized for `rows`.
  private readonly x: Buf;
  private readonly h: Buf;
  private readonly qkvOut: Buf;
  private readonly ctx: Buf;
  private readonly o: Buf;
  private readonly guOut: Buf;
  private readonly act: Buf;
  private readonly logits: Buf;
  private readonly scores: Buf;
  private readonly starts: Buf;
  /** When set, decoders made from then on add ms per part of `step` to it ('products', 'attention', 'step',
   * and the count 'steps'); `npm run bench -- --profile` reads it. */
  static profile: Record<string, number> | null = null;
  private readonly timers = FusedDecoder.profile;
  /** Live rows (the first `n` row slots of every buffer) and filled cache columns. */
  private n: number;
  private tk = 0;

  /**
   * Buffers for `rows` rows and `capacity` cache columns (prompt + new tokens). Reads the model's weights as
   * they are now (generate merges an adapter before): build a new decoder after the weights change.
   */
  constructor(model: DecoderModel, rows: number, readonly capacity: number) {
    const c = model.config;
    this.be = tf.backend() as unknown as WasmBackend;
    this.k = backendKernels(this.be);
    this.d = c.hidden_size;
    this.H = c.num_attention_heads;
    this.KV = c.num_key_value_heads;
    this.hd = headDim(c);
    this.F = c.intermediate_size;
    this.V = c.vocab_size;
    this.QKV = (this.H + 2 * this.KV) * this.hd;
    this.eps = c.rms_norm_eps;
    const tabs = ropeTables(c);
    this.cos = tabs.cos;
    this.sin = tabs.sin;
    const cap = capacity + 8; // the attention kernel may read 7 columns past the filled ones (masked)
    const p = (name: string) => model.params.get(name)!;
    const keepT = (t: tf.Tensor): Buf => {
      this.owned.push(t);
      const e = this.be.dataIdMap.get(t.dataId);
      return { t, id: e.id, off: e.memoryOffset };
    };
    // [in, out] weights: transposes and concatenations made once per decoder (XNNPACK packs them on first use).
    const wT = (names: string[]) => keepT(tf.tidy(() => tf.transpose(names.length === 1 ? p(names[0]) : tf.concat(names.map(p), 0))));
    const vec = (name: string) => this.be.dataIdMap.get(p(name).dataId).memoryOffset; // read in place
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const q = projectionPath(l, 'q_proj'), kk = projectionPath(l, 'k_proj'), v = projectionPath(l, 'v_proj');
      this.layers.push({
        qkv: wT([`${q}.weight`, `${kk}.weight`, `${v}.weight`]),
        bqkv: keepT(tf.tidy(() => tf.concat([p(`${q}.bias`), p(`${kk}.bias`), p(`${v}.bias`)], 0))),
        o: wT([`${projectionPath(l, 'o_proj')}.weight`]),
        gu: wT([`${projectionPath(l, 'gate_proj')}.weight`, `${projectionPath(l, 'up_proj')}.weight`]),
        down: wT([`${projectionPath(l, 'down_proj')}.weight`]),
        ln1: vec(`model.layers.${l}.input_layernorm.weight`),
        ln2: vec(`model.layers.${l}.post_attention_layernorm.weight`),
        kT: keepT(tf.zeros([rows, this.KV, this.hd, cap])),
        v: keepT(tf.zeros([rows, this.KV, cap, this.hd])),
      });
    }
    this.embedOff = this.be.dataIdMap.get(p('model.embed_tokens.weight').dataId).memoryOffset;
    this.head = wT([model.headWeightName()]);
    this.lnf = vec('model.norm.weight');
    const buf = (n: number) => keepT(tf.zeros([n]));
    this.x = buf(rows * this.d);
    this.h = buf(rows * Math.max(this.d, this.F));
    this.qkvOut = buf(rows * this.QKV);
    this.ctx = buf(rows * this.H * this.hd);
    this.o = buf(rows * this.d);
    this.guOut = buf(rows * 2 * this.F);
    this.act = buf(rows * this.F);
    this.logits = buf(rows * this.V);
    this.scores = buf(cap);
    this.starts = keepT(tf.zeros([rows], 'int32'));
    this.n = rows;
  }

  /** Cache columns in use (prompt columns + decoded tokens). */
  get length(): number {
    return this.tk;
  }

  /**
   * Fill the cache from a prefill's cache ([U, KV, P, hd] per layer, after RoPE): row slot i gets prompt
   * `source[i]`'s columns; `starts[i]` = its first real column (left padding before). Call once, first.
   */
  load(cache: PrefillCache, source: readonly number[], starts: readonly number[]): void {
    const P = cache[0].key.shape[2];
    const cap = this.capacity + 8;
    const { KV, hd } = this;
    if (source.length !== this.n || P > this.capacity) throw new Error(`FusedDecoder.load: ${source.length} rows / ${P} columns for ${this.n} / ${this.capacity}`);
    cache.forEach((lc, l) => {
      const kT = tf.transpose(lc.key, [0, 1, 3, 2]); // [U, KV, hd, P]
      const heap = this.be.wasm.HEAPF32; // after the transpose's allocation
      const kOff = this.be.dataIdMap.get(kT.dataId).memoryOffset >>> 2;
      const vOff = this.be.dataIdMap.get(lc.value.dataId).memoryOffset >>> 2;
      const L = this.layers[l];
      const dk = L.kT.off >>> 2, dv = L.v.off >>> 2;
      source.forEach((u, i) => {
        for (let h = 0; h < KV; h++) {
          const src = (u * KV + h) * hd * P;
          const dst = (i * KV + h) * hd * cap;
          for (let j = 0; j < hd; j++) heap.copyWithin(dk + dst + j * cap, kOff + src + j * P, kOff + src + (j + 1) * P);
          heap.copyWithin(dv + (i * KV + h) * cap * hd, vOff + src, vOff + src + P * hd);
        }
      });
      kT.dispose();
    });
    const st = this.be.wasm.HEAP32;
    starts.forEach((s, i) => (st[(this.starts.off >>> 2) + i] = s));
    this.tk = P;
  }

  /** Keep only row slots `keep` (in this order) as the live rows: moves their cache rows in place. */
  compact(keep: readonly number[]): void {
    const cap = this.capacity + 8;
    const block = this.KV * this.hd * cap;
    const heap = this.be.wasm.HEAPF32;
    const st = this.be.wasm.HEAP32;
    const so = this.starts.off >>> 2;
    keep.forEach((from, to) => {
      if (from === to) return;
      if (from < to) throw new Error('FusedDecoder.compact: slots must keep their order');
      for (const L of this.layers) {
        for (const b of [L.kT, L.v]) heap.copyWithin((b.off >>> 2) + to * block, (b.off >>> 2) + from * block, (b.off >>> 2) + (from + 1) * block);
      }
      st[so + to] = st[so + from];
    });
    this.n = keep.length;
  }

  private matmul(a: Buf, n: number, w: Buf, inF: number, outF: number, out: Buf, bias?: Buf): void {
    const t0 = this.timers ? performance.now() : 0;
    this.k.fusedMatMul(a.id, shapeBytes([1, n, inF]), 3, w.id, shapeBytes([1, inF, outF]), 3, false, false, 0, bias ? bias.id : 0, 0, 0, out.id);
    if (this.timers) this.timers.products = (this.timers.products ?? 0) + performance.now() - t0;
  }

  /**
   * One decode step: `tokens[i]` at position `positions[i]` for each live row slot i, written into cache
   * column `length` (the same for every row; left padding is masked through each row's start). Returns the
   * next-token logits [n, V] (a copy, row-major).
   */
  step(tokens: readonly number[], positions: readonly number[]): Float32Array {
    const t0 = this.timers ? performance.now() : 0;
    const n = this.n;
    const { d, H, KV, hd, F, V, QKV } = this;
    const G = H / KV;
    const cap = this.capacity + 8;
    if (tokens.length !== n || positions.length !== n) throw new Error(`FusedDecoder.step: ${tokens.length} tokens for ${n} rows`);
    if (this.tk >= this.capacity) throw new Error(`FusedDecoder.step: cache full (${this.capacity} columns)`);
    const col = this.tk;
    const tk = col + 1;
    const xo = this.x.off >>> 2, qo = this.qkvOut.off >>> 2;
    let heap = this.be.wasm.HEAPF32;
    const eo = this.embedOff >>> 2;
    for (let r = 0; r < n; r++) heap.copyWithin(xo + r * d, eo + tokens[r] * d, eo + (tokens[r] + 1) * d);
    const half = hd / 2;
    const cos = this.cos, sin = this.sin;
    for (const L of this.layers) {
      this.k.rmsNorm(this.x.off, L.ln1, this.h.off, n, d, this.eps);
      this.matmul(this.h, n, L.qkv, d, QKV, this.qkvOut, L.bqkv);
      heap = this.be.wasm.HEAPF32; // a product may have grown the heap
      // RoPE on the q and k heads in place (x*cos + rotate_half(x)*sin), then k^T and v into cache column `col`.
      const kTo = L.kT.off >>> 2, vo = L.v.off >>> 2;
      for (let r = 0; r < n; r++) {
        const pr = positions[r] * hd;
        for (let j = 0; j < H + KV; j++) {
          const b = qo + r * QKV + j * hd;
          for (let i = 0; i < half; i++) {
            const x1 = heap[b + i], x2 = heap[b + i + half];
            heap[b + i] = Math.fround(x1 * cos[pr + i]) + Math.fround(-x2 * sin[pr + i]);
            heap[b + i + half] = Math.fround(x2 * cos[pr + i + half]) + Math.fround(x1 * sin[pr + i + half]);
          }
        }
        for (let h = 0; h < KV; h++) {
          const kb = qo + r * QKV + (H + h) * hd;
          const vb = qo + r * QKV + (H + KV + h) * hd;
          const kd = kTo + (r * KV + h) * hd * cap + col;
          for (let i = 0; i < hd; i++) heap[kd + i * cap] = heap[kb + i];
          heap.copyWithin(vo + ((r * KV + h) * cap + col) * hd, vb, vb + hd);
        }
      }
      const ta = this.timers ? performance.now() : 0;
      this.k.attn(this.qkvOut.off, QKV, L.kT.off, L.v.off, this.ctx.off, H * hd, this.scores.off, this.starts.off, n, KV, G, hd, cap, tk, 1 / Math.sqrt(hd));
      if (this.timers) this.timers.attention = (this.timers.attention ?? 0) + performance.now() - ta;
      this.matmul(this.ctx, n, L.o, H * hd, d, this.o);
      this.k.addInto(this.x.off, this.o.off, n * d);
      this.k.rmsNorm(this.x.off, L.ln2, this.h.off, n, d, this.eps);
      this.matmul(this.h, n, L.gu, d, 2 * F, this.guOut);
      this.k.siluMul(this.guOut.off, this.act.off, n, F);
      this.matmul(this.act, n, L.down, F, d, this.o);
      this.k.addInto(this.x.off, this.o.off, n * d);
    }
    this.k.rmsNorm(this.x.off, this.lnf, this.h.off, n, d, this.eps);
    this.matmul(this.h, n, this.head, d, V, this.logits);
    this.tk = tk;
    const lo = this.logits.off >>> 2;
    const logits = this.be.wasm.HEAPF32.slice(lo, lo + n * V);
    if (this.timers) {
      this.timers.step = (this.timers.step ?? 0) + performance.now() - t0;
      this.timers.steps = (this.timers.steps ?? 0) + 1;
    }
    return logits;
  }

  /** Free every buffer. */
  dispose(): void {
    tf.dispose(this.owned);
    this.owned.length = 0;
  }
}
