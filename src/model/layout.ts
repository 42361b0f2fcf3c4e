/**
 * The names and shapes of a Qwen2 decoder layer's projections, Hugging Face's verbatim
 * (`model.layers.3.self_attn.q_proj`, weight [out, in]). The model (qwen2.ts) and its adapters (lora.ts) both
 * address weights by these paths; they live here so neither has to import the other for them.
 *
 * Also the RoPE tables (qwen2.ts and the fused decode step, decode.ts, build the same ones).
 * Not here: the config itself (config.ts) or the full list of checkpoint tensors (qwen2.ts `weightShapes`).
 */
import { headDim, type Qwen2Config } from './config';

/** The 7 projection kinds of a decoder layer, HF names. */
export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Projection = (typeof PROJECTIONS)[number];

/** Module path of a projection, e.g. `model.layers.3.self_attn.q_proj`. */
export function projectionPath(layer: number, p: Projection): string {
  const block = p === 'gate_proj' || p === 'up_proj' || p === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${block}.${p}`;
}

/** [in, out] features of a projection. */
export function projectionShape(c: Qwen2Config, p: Projection): [number, number] {
  const hd = headDim(c);
  const d = c.hidden_size;
  switch (p) {
    case 'q_proj':
      return [d, c.num_attention_heads * hd];
    case 'k_proj':
    case 'v_proj':
      return [d, c.num_key_value_heads * hd];
    case 'o_proj':
      return [c.num_attention_heads * hd, d];
    case 'gate_proj':
    case 'up_proj':
      return [d, c.intermediate_size];
    case 'down_proj':
      return [c.intermediate_size, d];
  }
}

/** RoPE tables cos / sin [max_position_embeddings, head_dim], HF layout emb = cat(freqs, freqs). */
export function ropeTables(config: Qwen2Config): { cos: Float32Array; sin: Float32Array } {
  const hd = headDim(config);
  const half = hd / 2;
  const P = config.max_position_embeddings;
  const cos = new Float32Array(P * hd);
  const sin = new Float32Array(P * hd);
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < half; i++) {
      const invFreq = 1 / Math.pow(config.rope_theta, (2 * i) / hd);
      const a = p * invFreq;
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(a);
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(a);
    }
  }
  return { cos, sin };
}
