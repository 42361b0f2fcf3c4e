/**
 * The tiny default model: a byte-level BPE tokenizer trained on the synthetic corpus plus a small random
 * Qwen2, written as a Hugging Face directory (config.json, model.safetensors, tokenizer.json,
 * tokenizer_config.json with the ChatML template, generation_config.json, special_tokens_map.json) and loaded
 * back with the same `Qwen2ForCausalLM.fromPretrained` + `ChatTokenizer.fromPretrained` as any checkpoint.
 *
 * What it is not: a corpus builder. `src/model` knows nothing of tools, so the caller hands in the rows
 * (`synthesize(...).train`: messages + gold_call) or the rendered texts; `chatCorpus` renders rows exactly as
 * the tokenizer's chat template will at training time.
 *
 * The size, and why. Numbers measured with `npx tsx src/run.ts tiny --out /tmp/tiny` (seed 0, 2000 synthetic
 * train rows; prompt = chat template + generation prompt, completion = gold call + <|im_end|>):
 * - Architecture = torch_ref.py's config (a): hidden 128, 4 layers, 4 query / 2 KV heads, SwiGLU 384, tied
 *   embeddings; 919,680 parameters. It is the shape the tfjs kernels are benchmarked on against PyTorch, small
 *   enough for SFT + GRPO + evaluations within the 15-minute course budget on 2 cores, and the task (pick one
 *   of ~10 names, copy a few values from the query into JSON) needs memory for phrasings, not depth.
 * - Vocabulary 1024 (256 bytes + 765 merges + 3 ChatML specials). The corpus has 1399 merges in all. Prompt
 *   and completion tokens (mean/max) on train: V=512 128.4/183 and 27.9/62; V=768 119.1/153 and 23.4/48;
 *   V=1024 116.8/140 and 22.2/36; V=1536 114.6/126 and 22.1/36; every merge (V=1658) 114.5/126 and 22.1/35.
 *   Past 1024 the sequences barely shrink while the LM head (V x 128 multiply-adds per token, ~14% of the
 *   weight matmuls at V=1024) keeps growing. At 1024: test prompts 117.4/131, completions 22.1/29;
 *   heldout_tools (all tools listed) 147.3/155 and 28.1/31. Completions by behaviour (train mean): execute
 *   23.4, ask_user 23.6, refuse 24.2, no_call 10.
 * - Of the ~117 prompt tokens, 102 are the same in every train/test row (97 before the query: ChatML + the
 *   compact system prompt; 5 after it). The BPE already cuts that system prompt to one token per
 *   pre-tokenizer piece; Qwen2's split keeps `get`, `_stock`, `_price` and every digit apart, so names and
 *   numbers share tokens between the query, the tool list and the JSON, and copying stays easy.
 * - max_position_embeddings 512: the longest prompt (155, heldout_tools) plus the longest completion (36) is < 200.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import type { Qwen2Config } from './config';
import { Qwen2ForCausalLM } from './qwen2';
import { chatTokenizerConfig, jsonText, trainByteLevelBpe, writeTokenizerFiles } from './bpe';
import { CHATML_TEMPLATE } from './chat_template';
import type { ChatMessage, ChatTokenizer } from './tokenizer';

/** The architecture part of the tiny config (vocab_size comes from the trained tokenizer). */
export interface TinyArch {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  max_position_embeddings: number;
}

/** Defaults: torch_ref.py's config (a), the shape the tfjs kernels are benchmarked on. */
export const TINY_ARCH: TinyArch = {
  hidden_size: 128, // d: 4 heads of 32
  intermediate_size: 384, // SwiGLU width, 3d
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2, // GQA as in Qwen2.5 (2 query heads share each K/V head)
  max_position_embeddings: 512, // longest prompt + longest completion < 200 tokens (see the header)
};

/** Default number of token ids, special tokens included (the BPE is cut to it). */
export const TINY_VOCAB_SIZE = 1024;

/** A row as the synthetic splits hold it: the chat messages (system + user) and the gold completion. */
export interface ChatRow {
  messages: readonly ChatMessage[];
  gold_call: string;
}

/** Options of `makeTinyModel`. Give `rows` (rendered with `chatCorpus`) or `corpus` (texts as they are). */
export interface TinyModelOptions extends Partial<TinyArch> {
  /** Seed of the random weights. The tokenizer depends only on the corpus. */
  seed: number;
  /** Rows to train the tokenizer on (the synthetic train split). */
  rows?: readonly ChatRow[];
  /** Or: texts to train the tokenizer on. */
  corpus?: readonly string[];
  /** Token ids including the 3 ChatML specials; default TINY_VOCAB_SIZE. Fewer if the corpus runs out of merges. */
  vocab_size?: number;
  /** rope_theta, default 10000 (the sequences are short). */
  rope_theta?: number;
}

/** What `makeTinyModel` wrote. */
export interface TinyModelInfo {
  dir: string;
  files: string[];
  config: Qwen2Config;
  /** Parameters of the model (tied embeddings counted once). */
  num_parameters: number;
  tokenizer: { vocab_size: number; merges_kept: number; merges_learned: number };
}

/**
 * Render rows as chat texts the way training will see them: the ChatML template over
 * messages + {role: 'assistant', content: gold_call}.
 */
export function chatCorpus(rows: readonly ChatRow[], template: string = CHATML_TEMPLATE): string[] {
  const t = new Template(template);
  return rows.map((r) =>
    t.render({ messages: [...r.messages, { role: 'assistant', content: r.gold_call }], add_generation_prompt: false }),
  );
}

/** The tiny Qwen2 config.json object for a given vocabulary and special-token ids (HF keys verbatim). */
export function tinyConfig(
  vocab_size: number,
  ids: { bos_token_id: number; eos_token_id: number },
  arch: Partial<TinyArch> = {},
  rope_theta = 10000,
): Qwen2Config {
  const a = { ...TINY_ARCH, ...arch };
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size,
    hidden_size: a.hidden_size,
    intermediate_size: a.intermediate_size,
    num_hidden_layers: a.num_hidden_layers,
    num_attention_heads: a.num_attention_heads,
    num_key_value_heads: a.num_key_value_heads,
    max_position_embeddings: a.max_position_embeddings,
    rope_theta,
    rms_norm_eps: 1e-6,
    hidden_act: 'silu',
    tie_word_embeddings: true, // at this size the embedding is a large share of the weights
    bos_token_id: ids.bos_token_id,
    eos_token_id: ids.eos_token_id,
    use_sliding_window: false,
    sliding_window: null,
    attention_dropout: 0.0,
    initializer_range: 0.02,
    torch_dtype: 'float32',
    use_cache: true,
  };
}

/**
 * Train the tokenizer on the corpus, build the tiny config, initialise random weights with `seed`, and write
 * the whole Hugging Face directory to `dir`. Same corpus and seed => same bytes in every file.
 */
export async function makeTinyModel(dir: string, opts: TinyModelOptions): Promise<TinyModelInfo> {
  const texts = opts.corpus ?? (opts.rows ? chatCorpus(opts.rows) : null);
  if (!texts || texts.length === 0) throw new Error('makeTinyModel: give `rows` or `corpus` (non-empty) to train the tokenizer on');
  const bpe = trainByteLevelBpe(texts, { vocab_size: opts.vocab_size ?? TINY_VOCAB_SIZE });
  const added = bpe.tokenizer.added_tokens as { id: number; content: string }[];
  const idOf = (c: string): number => added.find((t) => t.content === c)!.id;
  const endoftext = idOf('<|endoftext|>');
  const imEnd = idOf('<|im_end|>');

  const arch: Partial<TinyArch> = {};
  for (const k of Object.keys(TINY_ARCH) as (keyof TinyArch)[]) if (opts[k] !== undefined) arch[k] = opts[k];
  const config = tinyConfig(bpe.vocab_size, { bos_token_id: endoftext, eos_token_id: imEnd }, arch, opts.rope_theta);

  fs.mkdirSync(dir, { recursive: true });
  const files = writeTokenizerFiles(
    dir,
    bpe.tokenizer,
    chatTokenizerConfig(bpe.tokenizer, { chat_template: CHATML_TEMPLATE, model_max_length: config.max_position_embeddings }),
  );
  const generation = { bos_token_id: endoftext, eos_token_id: [imEnd, endoftext], pad_token_id: endoftext };
  const genFile = path.join(dir, 'generation_config.json');
  fs.writeFileSync(genFile, jsonText(generation));
  files.push(genFile);

  const model = Qwen2ForCausalLM.random(config, opts.seed);
  let num_parameters = 0;
  try {
    for (const v of model.params.values()) num_parameters += v.size;
    await model.savePretrained(dir);
  } finally {
    model.dispose();
  }
  files.push(path.join(dir, 'config.json'), path.join(dir, 'model.safetensors'));
  return {
    dir,
    files,
    config,
    num_parameters,
    tokenizer: { vocab_size: bpe.vocab_size, merges_kept: bpe.merges_kept, merges_learned: bpe.merges_learned },
  };
}

/** Mean / max of a list of lengths. */
export interface LengthStats {
  mean: number;
  p95: number;
  max: number;
}

function lengthStats(xs: number[]): LengthStats {
  const s = xs.slice().sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return { mean: Math.round(mean * 10) / 10, p95: s[Math.min(s.length - 1, Math.floor(0.95 * s.length))] ?? 0, max: s[s.length - 1] ?? 0 };
}

/**
 * Token lengths under a tokenizer: prompt = chat template with add_generation_prompt; completion =
 * gold_call + the eos token (what SFT trains on and what GRPO must generate before it can stop).
 */
export function tokenLengthStats(tok: ChatTokenizer, rows: readonly ChatRow[]): { prompt: LengthStats; completion: LengthStats; rows: number } {
  const p: number[] = [];
  const c: number[] = [];
  for (const r of rows) {
    p.push(tok.encodeChat(r.messages).length);
    c.push(tok.encode(r.gold_call).length + 1);
  }
  return { prompt: lengthStats(p), completion: lengthStats(c), rows: rows.length };
}
