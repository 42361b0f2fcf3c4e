/**
 * Qwen2ForCausalLM in TensorFlow.js: a Qwen2 / Qwen2.5 decoder with Hugging Face tensor names kept verbatim,
 * a per-layer KV cache, left-padding masks, loading/saving in HF layout, and a LoRA adapter (`adapter`, lora.ts).
 *
 *   embed_tokens -> L x [ RMSNorm -> GQA self-attention (RoPE, q/k/v biases) -> +residual
 *                         RMSNorm -> SwiGLU MLP -> +residual ] -> RMSNorm -> lm_head (tied or not)
 *
 * What it is not: a sampler (generate.ts), a tokenizer (tokenizer.ts) or a loss (logprobs.ts, src/train).
 * The hot ops (linear+LoRA, attention core, embedding, head) live in kernels.ts with hand-written gradients,
 * because autodiff of matMul on wasm is slow (docs/tfjs-on-cpu.md). Everything else here is autodiffed tf ops.
 *
 * Ownership: `forward` returns new tensors (logits and the new cache); the caller disposes them, and disposes
 * the cache it passed in once it no longer needs it (`disposeCache`). Weights are tf.Variables owned by the model.
 * The model also keeps derived copies of FROZEN weights (W^T per projection, concatenated q|k|v and gate|up, with
 * an active adapter's s B A folded in while LoRA trains), built on first use and rebuilt when a variable's data
 * changes; they count in tf.memory() and cost up to ~2x the frozen weights' memory. `invalidateCaches()` frees them; `dispose()` frees everything.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Qwen2Config, headDim, loadConfig, saveConfig, validateConfig } from './config';
import { RawTensor, readCheckpointWeights, takeTensor, writeSafetensors } from './safetensors';
import { FusedFrozen, LinearParams, attention, embedding, headLogprobs, linear, linearGroup, rmsNorm, rope, swiglu } from './kernels';
import { PROJECTIONS, projectionPath, projectionShape, ropeTables } from './layout';
import { FusedDecoder } from './decode';
import { LoraAdapter } from './lora';
import { Rng } from '../util/rng';

export { PROJECTIONS, projectionPath, projectionShape, type Projection } from './layout';

/** One layer's cache: keys/values after RoPE, [B, num_key_value_heads, T_past, head_dim]. */
export interface LayerCache {
  key: tf.Tensor4D;
  value: tf.Tensor4D;
}
/** past_key_values: one entry per decoder layer. */
export type KVCache = LayerCache[];

export interface ForwardOptions {
  /** The cache from the previous call (not disposed here). */
  past_key_values?: KVCache;
  /** [B, past + T], 1 = real token, 0 = padding (left padding). Default: all ones. */
  attention_mask?: tf.Tensor2D;
  /**
   * [B, T] int32. Default: from attention_mask as HF generate does (cumsum(mask) - 1, pads at 1), else
   * past .. past+T-1.
   */
  position_ids?: tf.Tensor2D;
  /** Return the new cache (default true). Training passes false. */
  use_cache?: boolean;
  /**
   * Logits for the last N positions only (HF's `logits_to_keep`): [B, N, V]. Generation's prefill keeps 1 and so
   * skips the LM head for every other prompt token. Default: every position.
   */
  logits_to_keep?: number;
}

export interface ForwardOutput {
  /** [B, T, V] */
  logits: tf.Tensor3D;
  /** New cache (past + these T positions); empty when use_cache is false. */
  past_key_values: KVCache;
}

/** Every weight of the checkpoint with its HF name and shape (lm_head.weight only when untied). */
export function weightShapes(c: Qwen2Config): [string, number[]][] {
  const out: [string, number[]][] = [['model.embed_tokens.weight', [c.vocab_size, c.hidden_size]]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    out.push([`model.layers.${l}.input_layernorm.weight`, [c.hidden_size]]);
    for (const p of PROJECTIONS) {
      const [i, o] = projectionShape(c, p);
      const base = projectionPath(l, p);
      out.push([`${base}.weight`, [o, i]]);
      if (p === 'q_proj' || p === 'k_proj' || p === 'v_proj') out.push([`${base}.bias`, [o]]);
    }
    out.push([`model.layers.${l}.post_attention_layernorm.weight`, [c.hidden_size]]);
  }
  out.push(['model.norm.weight', [c.hidden_size]]);
  if (!c.tie_word_embeddings) out.push(['lm_head.weight', [c.vocab_size, c.hidden_size]]);
  return out;
}

const NEG = -1e9;

export class Qwen2ForCausalLM {
  readonly config: Qwen2Config;
  /** Base weights by HF name. All trainable (full fine-tuning) until LoRA is added. */
  readonly params = new Map<string, tf.Variable>();
  /** The LoRA adapter and its state (none / active / disabled / merged); only lora.ts changes it. */
  readonly adapter: LoraAdapter = new LoraAdapter(this.params);
  /** Training mode (torch's module.training): enables LoRA dropout. Set by the data-parallel step around the loss. */
  training = false;

  /** Pre-transposed frozen weights, [in, out], keyed by name; invalidated when the variable's data changes. */
  private transposed = new Map<string, { dataId: object; t: tf.Tensor2D }>();
  /** Effective weights of frozen projection groups (q|k|v, gate|up, + an active adapter's s B A), keyed by module paths. */
  private fused = new Map<string, { ids: object[]; f: FusedFrozen }>();
  private ropeCos: tf.Tensor2D;
  private ropeSin: tf.Tensor2D;

  constructor(config: Qwen2Config, weights: Map<string, Float32Array | RawTensor>) {
    this.config = config;
    for (const [name, shape] of weightShapes(config)) {
      const w = weights.get(name);
      if (!w) throw new Error(`Qwen2ForCausalLM: missing weight '${name}'`);
      const data = w instanceof Float32Array ? w : w.data;
      this.params.set(name, makeVariable(data, shape));
    }
    const hd = headDim(config);
    const P = config.max_position_embeddings;
    const { cos, sin } = ropeTables(config);
    this.ropeCos = tf.keep(tf.tensor2d(cos, [P, hd]));
    this.ropeSin = tf.keep(tf.tensor2d(sin, [P, hd]));
  }

  /** Load `config.json` + `model.safetensors` (or a sharded index) from a Hugging Face model directory. */
  static async fromPretrained(dir: string): Promise<Qwen2ForCausalLM> {
    const config = loadConfig(dir);
    const tensors = readCheckpointWeights(dir);
    const file = fs.existsSync(path.join(dir, 'model.safetensors')) ? path.join(dir, 'model.safetensors') : path.join(dir, 'model.safetensors.index.json');
    const weights = new Map<string, RawTensor>();
    for (const [name, shape] of weightShapes(config)) weights.set(name, takeTensor(tensors, name, shape, file));
    return new Qwen2ForCausalLM(config, weights);
  }

  /**
   * A randomly initialised model, like HF's `_init_weights`: linear and embedding weights ~ N(0, initializer_range),
   * biases 0, norms 1. Same seed => same weights.
   */
  static random(config: Qwen2Config | Record<string, unknown>, seed: number): Qwen2ForCausalLM {
    const c = validateConfig(config as Record<string, unknown>, 'config');
    const std = typeof c.initializer_range === 'number' ? c.initializer_range : 0.02;
    const rng = new Rng(seed);
    const weights = new Map<string, Float32Array>();
    for (const [name, shape] of weightShapes(c)) {
      const n = shape.reduce((a, s) => a * s, 1);
      const data = new Float32Array(n);
      if (name.endsWith('norm.weight')) data.fill(1);
      else if (!name.endsWith('.bias')) for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
      weights.set(name, data);
    }
    return new Qwen2ForCausalLM(c, weights);
  }

  /** Write `config.json` and `model.safetensors` (F32, HF names) to `dir`. Writes the weights as they are now. */
  async savePretrained(dir: string): Promise<void> {
    fs.mkdirSync(dir, { recursive: true });
    saveConfig(this.config, dir);
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.params) out.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
    writeSafetensors(path.join(dir, 'model.safetensors'), out);
  }

  /** Base weights that are trainable, then the LoRA A/B (those with trainable = true). */
  trainableVariables(): tf.Variable[] {
    const out: tf.Variable[] = [];
    for (const v of this.params.values()) if (v.trainable) out.push(v);
    for (const v of this.adapter.variables()) if (v.trainable) out.push(v);
    return out;
  }

  /** Free every tensor the model owns. */
  dispose(): void {
    this.adapter.dispose();
    for (const v of this.params.values()) v.dispose();
    this.invalidateCaches();
    this.params.clear();
    this.ropeCos.dispose();
    this.ropeSin.dispose();
  }

  /** W^T for a frozen weight, cached until the variable's data changes (assign gives it a new dataId). */
  private frozenT(name: string): tf.Tensor2D | undefined {
    const v = this.params.get(name)!;
    if (v.trainable) return undefined;
    const e = this.transposed.get(name);
    if (e && e.dataId === v.dataId) return e.t;
    e?.t.dispose();
    const t = tf.keep(tf.transpose(v) as tf.Tensor2D);
    this.transposed.set(name, { dataId: v.dataId, t });
    return t;
  }

  /** Drop the cached transposes (after changing weights by hand). */
  invalidateCaches(): void {
    for (const e of this.transposed.values()) e.t.dispose();
    this.transposed.clear();
    for (const e of this.fused.values()) tf.dispose([e.f.W, e.f.WT, ...(e.f.b ? [e.f.b] : [])]);
    this.fused.clear();
  }

  /** Parameters of one projection for kernels.ts: weight, cached transpose, bias, and the adapter when active. */
  private projParams(modulePath: string, n: number): LinearParams {
    const W = this.params.get(`${modulePath}.weight`)!;
    const b = this.params.get(`${modulePath}.bias`);
    const m = this.adapter.active(modulePath);
    const lora: LinearParams['lora'] = m
      ? { A: m.A, B: m.B, scaling: this.adapter.scaling, dropoutMask: this.adapter.dropoutMask(n, W.shape[1] as number, this.training) }
      : undefined;
    return { W, WT: this.frozenT(`${modulePath}.weight`), b, lora };
  }

  /** Projections of the same x [N, in], fused into one product: [N, sum(out)]. */
  private proj(x: tf.Tensor2D, ...modulePaths: string[]): tf.Tensor2D {
    const ps = modulePaths.map((m) => this.projParams(m, x.shape[0]));
    return linearGroup(x, ps, this.fusedFrozen(modulePaths.join('+'), ps));
  }

  /**
   * Cached effective weights of a projection group whose base weights are frozen: concatenated W (+ scaling
   * B A when an adapter is active without dropout) and its transpose, rebuilt when any of W, b, A, B changes
   * (assign gives a variable a new dataId). Sampling (frozen, adapter merged or off) and LoRA training use it:
   * the adapter's W + s B A is then made once per optimizer step instead of once per forward call (the
   * gradients of A and B still come from linearGroup's backward). undefined = compute per call.
   */
  private fusedFrozen(key: string, ps: LinearParams[]): FusedFrozen | undefined {
    if (ps.some((p) => p.W.trainable || (p.b && p.b.trainable) || p.lora?.dropoutMask)) return undefined;
    const ids: unknown[] = [
      ...ps.map((p) => p.W.dataId),
      ...ps.filter((p) => p.b).map((p) => p.b!.dataId),
      ...ps.flatMap((p) => (p.lora ? [p.lora.A.dataId, p.lora.B.dataId, p.lora.scaling] : [null])),
    ];
    const e = this.fused.get(key);
    if (e && e.ids.length === ids.length && ids.every((id, i) => id === e.ids[i])) return e.f;
    if (e) {
      tf.dispose([e.f.W, e.f.WT, ...(e.f.b ? [e.f.b] : [])]);
      this.fused.delete(key);
    }
    const p0 = ps[0].W;
    const W = tf.keep(
      tf.tidy(() => {
        // Same floats as linearGroup's per-call fold: W + (B A) * scaling.
        const eff = ps.map((p) => (p.lora ? tf.add(p.W, tf.mul(tf.matMul(p.lora.B, p.lora.A), p.lora.scaling)) : p.W));
        // A lone frozen projection gets a clone (shares the variable's buffer on wasm), so that which entries
        // exist, and so tf.memory(), does not depend on whether sampling or training ran last.
        return eff.length === 1 ? (eff[0] === p0 ? tf.clone(p0) : eff[0]) : tf.concat(eff, 0);
      }) as tf.Tensor2D,
    );
    const f: FusedFrozen = { W, WT: tf.keep(tf.transpose(W) as tf.Tensor2D) };
    if (ps.some((p) => p.b)) {
      f.b = tf.keep(tf.tidy(() => (ps.length === 1 ? tf.clone(ps[0].b!) : tf.concat(ps.map((p) => (p.b ? p.b : tf.zeros([p.W.shape[0] as number]))), 0))) as tf.Tensor1D);
    }
    this.fused.set(key, { ids: ids as object[], f });
    return f;
  }

  /**
   * The decoder up to the final norm: hidden states [B*T, d] plus the new cache.
   * Shared by `forward` (logits) and logprobs.ts (fused head + log-softmax).
   */
  forwardHidden(input_ids: tf.Tensor2D, opts: ForwardOptions = {}): { hidden: tf.Tensor2D; past_key_values: KVCache } {
    const c = this.config;
    const [B, T] = input_ids.shape;
    const H = c.num_attention_heads;
    const KV = c.num_key_value_heads;
    const G = H / KV;
    const hd = headDim(c);
    const past = opts.past_key_values?.[0]?.key.shape[2] ?? 0;
    const Tk = past + T;
    const useCache = opts.use_cache ?? true;
    if (opts.past_key_values && opts.past_key_values.length !== c.num_hidden_layers) {
      throw new Error(`forward: past_key_values has ${opts.past_key_values.length} layers, model has ${c.num_hidden_layers}`);
    }
    if (opts.attention_mask && (opts.attention_mask.shape[0] !== B || opts.attention_mask.shape[1] !== Tk)) {
      throw new Error(`forward: attention_mask is [${opts.attention_mask.shape}], expected [${B}, ${Tk}] (past ${past} + ${T} new)`);
    }
    // Positions [B, T] and the additive mask [B|1, 1, G*T, Tk].
    let pos: tf.Tensor2D;
    if (opts.position_ids) pos = opts.position_ids.toInt();
    else if (opts.attention_mask) {
      const m = opts.attention_mask.toInt();
      const cum = tf.sub(tf.cumsum(m, 1), tf.scalar(1, 'int32'));
      const full = tf.where(tf.equal(m, 0), tf.onesLike(cum), cum) as tf.Tensor2D;
      pos = T === Tk ? full : (tf.slice(full, [0, past], [B, T]) as tf.Tensor2D);
    } else pos = tf.add(tf.range(past, Tk, 1, 'int32').reshape([1, T]), tf.zeros([B, T], 'int32')) as tf.Tensor2D;
    const cos = tf.gather(this.ropeCos, pos).reshape([B, T, 1, hd]) as tf.Tensor4D;
    const sin = tf.gather(this.ropeSin, pos).reshape([B, T, 1, hd]) as tf.Tensor4D;
    const causal = new Float32Array(T * Tk);
    for (let i = 0; i < T; i++) for (let j = 0; j < Tk; j++) causal[i * Tk + j] = j <= past + i ? 0 : NEG;
    let maskAdd: tf.Tensor4D = tf.tensor4d(causal, [1, 1, T, Tk]);
    if (opts.attention_mask) {
      const pad = tf.mul(tf.sub(1, opts.attention_mask.toFloat()), NEG).reshape([B, 1, 1, Tk]);
      maskAdd = tf.add(maskAdd, pad) as tf.Tensor4D; // [B, 1, T, Tk]
    }
    if (G > 1) {
      maskAdd = tf.concat(new Array(G).fill(maskAdd), 2) as tf.Tensor4D; // [mb, 1, G*T, Tk] (Tile is slow on wasm)
    }

    const newCache: KVCache = [];
    let x = embedding(this.params.get('model.embed_tokens.weight')!, input_ids.reshape([B * T]).toInt() as tf.Tensor1D); // [N, d]
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const h = rmsNorm(x, this.params.get(`model.layers.${l}.input_layernorm.weight`)!, c.rms_norm_eps);
      const qkv = this.proj(h, projectionPath(l, 'q_proj'), projectionPath(l, 'k_proj'), projectionPath(l, 'v_proj'));
      const [q0, k0, v0] = tf.split(qkv, [H * hd, KV * hd, KV * hd], 1);
      const q = rope(q0.reshape([B, T, H, hd]), cos, sin);
      let k = tf.transpose(rope(k0.reshape([B, T, KV, hd]), cos, sin), [0, 2, 1, 3]) as tf.Tensor4D; // [B, KV, T, hd]
      let v = tf.transpose(v0.reshape([B, T, KV, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
      if (opts.past_key_values) {
        k = tf.concat([opts.past_key_values[l].key, k], 2);
        v = tf.concat([opts.past_key_values[l].value, v], 2);
      }
      if (useCache) newCache.push({ key: k, value: v });
      // Query heads grouped by kv head: [B, H, T, hd] -> [B*KV, G*T, hd] (HF repeat_kv: head j uses kv head j // G).
      const q3 = tf.transpose(q, [0, 2, 1, 3]).reshape([B * KV, G * T, hd]) as tf.Tensor3D;
      const ctx = attention(q3, k.reshape([B * KV, Tk, hd]), v.reshape([B * KV, Tk, hd]), maskAdd, KV, 1 / Math.sqrt(hd));
      const ctx2 = tf.transpose(ctx.reshape([B, H, T, hd]), [0, 2, 1, 3]).reshape([B * T, H * hd]) as tf.Tensor2D;
      x = tf.add(x, this.proj(ctx2, projectionPath(l, 'o_proj')));
      const h2 = rmsNorm(x, this.params.get(`model.layers.${l}.post_attention_layernorm.weight`)!, c.rms_norm_eps);
      const gu = this.proj(h2, projectionPath(l, 'gate_proj'), projectionPath(l, 'up_proj')); // [N, 2 * ffn]
      x = tf.add(x, this.proj(swiglu(gu), projectionPath(l, 'down_proj')));
    }
    return { hidden: rmsNorm(x, this.params.get('model.norm.weight')!, c.rms_norm_eps), past_key_values: newCache };
  }

  /** The LM head weight [V, d]: lm_head.weight, or the embedding when tied. */
  headWeightName(): string {
    return this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  }

  /** Logits [B, T, V] (or [B, logits_to_keep, V]) for input_ids [B, T], with an optional cache / padding mask / positions. */
  forward(input_ids: tf.Tensor2D, opts: ForwardOptions = {}): ForwardOutput {
    return tf.tidy((): ForwardOutput & tf.TensorContainerObject => {
      const [B, T] = input_ids.shape;
      const { hidden, past_key_values } = this.forwardHidden(input_ids, opts);
      const name = this.headWeightName();
      const K = opts.logits_to_keep;
      if (K !== undefined && K < T) {
        if (!(Number.isInteger(K) && K >= 1)) throw new Error(`forward: logits_to_keep must be an integer in 1..${T}, got ${K}`);
        // The head on the last K positions only, as a plain 2-D product with the cached W^T (fast on wasm; and
        // the cache then holds the same entries whether sampling or training ran): [B*K, d] x [d, V].
        const d = hidden.shape[1];
        const h = hidden.reshape([B, T, d]).slice([0, T - K, 0], [B, K, d]).reshape([B * K, d]) as tf.Tensor2D;
        const logits = this.headLogits(h).reshape([B, K, this.config.vocab_size]) as tf.Tensor3D;
        return { logits, past_key_values: past_key_values as KVCache & tf.TensorContainerArray };
      }
      const logits = linear(hidden, { W: this.params.get(name)!, WT: this.frozenT(name) }).reshape([B, T, this.config.vocab_size]) as tf.Tensor3D;
      return { logits, past_key_values: past_key_values as KVCache & tf.TensorContainerArray };
    }) as ForwardOutput;
  }

  /**
   * The fused decode step for generate (src/model/decode.ts): on the wasm backend, with no adapter left active
   * (generate merges an active one first); undefined elsewhere. Reads the weights as they are now.
   */
  fusedDecoder(rows: number, capacity: number): FusedDecoder | undefined {
    if (this.adapter.state === 'active' || !FusedDecoder.supported(this.config)) return undefined;
    return new FusedDecoder(this, rows, capacity);
  }

  /** Logits [N, V] of hidden states [N, d] (after the final norm), through the cached transposed head. */
  headLogits(hidden: tf.Tensor2D): tf.Tensor2D {
    const name = this.headWeightName();
    return linear(hidden, { W: this.params.get(name)!, WT: this.frozenT(name) });
  }

  /** log p(targets) [B*T] through the fused head (see logprobs.ts for the public function). */
  headLogprobs(hidden: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
    const name = this.headWeightName();
    return headLogprobs(hidden, this.params.get(name)!, this.frozenT(name), targets);
  }
}

/** A trainable variable from data (the temporary tensor is disposed, so tf.memory() counts only the variable). */
export function makeVariable(data: Float32Array, shape: number[]): tf.Variable {
  const t = tf.tensor(data, shape, 'float32');
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

/** Dispose every tensor of a cache. */
export function disposeCache(cache: KVCache | undefined): void {
  if (!cache) return;
  for (const e of cache) {
    e.key.dispose();
    e.value.dispose();
  }
}
