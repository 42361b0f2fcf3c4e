/**
 * The Qwen2 model configuration, with Hugging Face `config.json` keys kept verbatim, and its loader/validator.
 *
 * What it is not: a general transformers config. Only what a Qwen2 / Qwen2.5 decoder needs is typed; unknown
 * keys are kept (and written back) untouched. Unsupported settings (another model_type, a non-SiLU activation,
 * sliding-window attention, rope scaling) are refused with an error that names the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Qwen2Config {
  /** Always 'qwen2'. */
  model_type: 'qwen2';
  /** Token vocabulary size V (rows of model.embed_tokens.weight). */
  vocab_size: number;
  /** Model width d. */
  hidden_size: number;
  /** SwiGLU inner width. */
  intermediate_size: number;
  /** Decoder layers L. */
  num_hidden_layers: number;
  /** Query heads H; head_dim = hidden_size / H. */
  num_attention_heads: number;
  /** Key/value heads (grouped-query attention); divides num_attention_heads. */
  num_key_value_heads: number;
  /** Longest position the RoPE table is built for. */
  max_position_embeddings: number;
  /** RoPE base frequency. */
  rope_theta: number;
  /** RMSNorm epsilon. */
  rms_norm_eps: number;
  /** Only 'silu' is supported. */
  hidden_act: 'silu';
  /** true: lm_head shares model.embed_tokens.weight; false: a separate lm_head.weight. */
  tie_word_embeddings: boolean;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  use_sliding_window?: boolean;
  sliding_window?: number | null;
  attention_dropout?: number;
  initializer_range?: number;
  torch_dtype?: string;
  architectures?: string[];
  rope_scaling?: unknown;
  use_cache?: boolean;
  [key: string]: unknown;
}

/** Raised for an unsupported or malformed config; the message names the file. */
export class ConfigError extends Error {}

/** head_dim = hidden_size / num_attention_heads. */
export function headDim(c: Qwen2Config): number {
  return c.hidden_size / c.num_attention_heads;
}

/** Check a parsed config; `source` names the file in errors. Returns it typed, defaults filled. */
export function validateConfig(raw: Record<string, unknown>, source = 'config'): Qwen2Config {
  const c = { ...raw } as Qwen2Config;
  const fail = (msg: string): never => {
    throw new ConfigError(`${source}: ${msg}`);
  };
  if (c.model_type !== 'qwen2') fail(`model_type is ${JSON.stringify(c.model_type)}; only "qwen2" is supported`);
  c.hidden_act = (c.hidden_act ?? 'silu') as 'silu';
  if (c.hidden_act !== 'silu') fail(`hidden_act ${JSON.stringify(c.hidden_act)} is not supported (only "silu")`);
  for (const k of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads'] as const) {
    if (!Number.isInteger(c[k]) || (c[k] as number) <= 0) fail(`${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  if (c.num_key_value_heads === undefined || c.num_key_value_heads === null) c.num_key_value_heads = c.num_attention_heads;
  if (!Number.isInteger(c.num_key_value_heads) || c.num_key_value_heads <= 0) fail(`num_key_value_heads must be a positive integer`);
  if (c.hidden_size % c.num_attention_heads !== 0) fail(`hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`);
  if (c.num_attention_heads % c.num_key_value_heads !== 0) fail(`num_attention_heads ${c.num_attention_heads} is not divisible by num_key_value_heads ${c.num_key_value_heads}`);
  if (headDim(c) % 2 !== 0) fail(`head_dim ${headDim(c)} must be even for rotary embeddings`);
  if (c.head_dim !== undefined && c.head_dim !== headDim(c)) fail(`head_dim ${c.head_dim} != hidden_size / num_attention_heads`);
  if (c.use_sliding_window === true) fail('use_sliding_window=true (sliding-window attention) is not supported');
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) fail('rope_scaling is not supported');
  c.rope_theta = c.rope_theta ?? 10000;
  c.rms_norm_eps = c.rms_norm_eps ?? 1e-6;
  c.max_position_embeddings = c.max_position_embeddings ?? 32768;
  c.tie_word_embeddings = c.tie_word_embeddings ?? false; // transformers' Qwen2Config default
  if (typeof c.rope_theta !== 'number' || !(c.rope_theta > 0)) fail(`rope_theta must be a positive number`);
  if (typeof c.rms_norm_eps !== 'number' || !(c.rms_norm_eps > 0)) fail(`rms_norm_eps must be a positive number`);
  return c;
}

/** Read and validate `<dir>/config.json`. */
export function loadConfig(dir: string): Qwen2Config {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new ConfigError(`${file}: file not found`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return validateConfig(raw, file);
}

/** Write `<dir>/config.json` (keys as given, plus architectures). */
export function saveConfig(config: Qwen2Config, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const out = { architectures: ['Qwen2ForCausalLM'], ...config };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(out, null, 2) + '\n');
}
