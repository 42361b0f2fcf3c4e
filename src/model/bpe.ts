/**
 * Train a small byte-level BPE tokenizer (Qwen2's pre-tokenizer, ChatML special tokens) on a list of texts,
 * and build the tokenizer.json / tokenizer_config.json objects of a Hugging Face tokenizer directory.
 *
 * Training is done by Hugging Face's Rust `tokenizers` (npm binding). The binding exposes no trainer options,
 * so it trains until no pair is left to merge and we cut the result to size here: the 256 byte-level base
 * tokens first (ids 0..255, in GPT-2's bytes_to_unicode order, like Qwen2), then the learned merges in rank
 * order until `vocab_size - special_tokens.length` ids are used, then the special tokens as added tokens
 * (`special: true`). A prefix of the merge list is always consistent (each merge only uses tokens made by
 * earlier merges). Special tokens are cut out of the corpus before training so no merges are wasted on them.
 *
 * Not here: loading or using the tokenizer (src/model/tokenizer.ts) and what the corpus is (src/model/tiny.ts).
 * There is deliberately no normalizer (Qwen2 uses NFC): without one, decode(encode(s)) === s for every string.
 *
 * Determinism: the trainer breaks count ties by pair ids, which follow the sorted alphabet, so the same
 * texts give the same merges; tests/tokenizer.test.ts checks same texts => same tokenizer.json bytes
 * across separate processes (Rust's HashMap seeds differ per process).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BPE, Tokenizer as RustTokenizer } from 'tokenizers';
import { CHATML_SPECIAL_TOKENS, CHATML_TEMPLATE } from './chat_template';

/** Qwen2's pre-tokenizer split pattern (single digits, letters with one leading non-letter, punctuation runs). */
export const QWEN2_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
const PRE_TOKENIZER = {
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: QWEN2_SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
    BYTE_LEVEL,
  ],
};

/** GPT-2's byte -> printable character map, in its own order (printable bytes first): the 256 base tokens. */
export function byteLevelAlphabet(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return cs.map((c) => String.fromCharCode(c));
}

/** Options of `trainByteLevelBpe`. */
export interface BpeTrainOptions {
  /** Total ids including the special tokens (config.json's vocab_size). Must be > 256 + specials. */
  vocab_size: number;
  /** Added tokens, in id order after the base vocabulary. Default ChatML: <|endoftext|>, <|im_start|>, <|im_end|>. */
  special_tokens?: readonly string[];
}

/** What training produced, with the numbers worth printing. */
export interface BpeTrainResult {
  /** The tokenizer.json object (Hugging Face layout, Qwen2-style pre-tokenizer and decoder). */
  tokenizer: Record<string, unknown>;
  /** Ids actually used (<= requested vocab_size when the corpus runs out of merges). */
  vocab_size: number;
  /** Merges kept / merges the trainer learned. */
  merges_kept: number;
  merges_learned: number;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Train a byte-level BPE on `texts` and cut it to `vocab_size` ids. Deterministic in `texts`. */
export function trainByteLevelBpe(texts: readonly string[], opts: BpeTrainOptions): BpeTrainResult {
  const specials = [...(opts.special_tokens ?? CHATML_SPECIAL_TOKENS)];
  const alphabet = byteLevelAlphabet();
  const baseSize = opts.vocab_size - specials.length;
  if (!Number.isInteger(opts.vocab_size) || baseSize < alphabet.length) {
    throw new RangeError(`trainByteLevelBpe: vocab_size must be an integer >= ${alphabet.length + specials.length}, got ${opts.vocab_size}`);
  }
  if (texts.length === 0) throw new RangeError('trainByteLevelBpe: empty corpus');

  // Special tokens are cut out (each becomes a line break) so the trainer never sees "<|", "im", "_start", ...
  const splitter = specials.length ? new RegExp(specials.map(escapeRegExp).join('|'), 'g') : null;
  const corpus = texts.map((t) => (splitter ? t.replace(splitter, '\n') : t)).join('\n');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bpe-'));
  let trained: { model: { vocab: Record<string, number>; merges: ([string, string] | string)[] } };
  try {
    const corpusFile = path.join(tmp, 'corpus.txt');
    fs.writeFileSync(corpusFile, corpus);
    // Start from a JSON description: the binding's splitPreTokenizer takes a literal, not a regex.
    const empty = new RustTokenizer(BPE.empty());
    const emptyFile = path.join(tmp, 'empty.json');
    empty.save(emptyFile, false);
    const spec = JSON.parse(fs.readFileSync(emptyFile, 'utf8'));
    spec.pre_tokenizer = PRE_TOKENIZER;
    spec.decoder = BYTE_LEVEL;
    const rust = RustTokenizer.fromString(JSON.stringify(spec));
    rust.train([corpusFile]);
    const outFile = path.join(tmp, 'trained.json');
    rust.save(outFile, false);
    trained = JSON.parse(fs.readFileSync(outFile, 'utf8'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const vocab: Record<string, number> = {};
  let next = 0;
  for (const ch of alphabet) vocab[ch] = next++;
  const merges: [string, string][] = [];
  const learned = trained.model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m));
  for (const [a, b] of learned) {
    if (!(a in vocab) || !(b in vocab)) throw new Error(`trainByteLevelBpe: merge (${a}, ${b}) uses an unknown token`);
    const merged = a + b;
    if (!(merged in vocab)) {
      if (next >= baseSize) break;
      vocab[merged] = next++;
    }
    merges.push([a, b]);
  }
  const added_tokens = specials.map((content, i) => ({
    id: next + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));

  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: null,
    pre_tokenizer: PRE_TOKENIZER,
    post_processor: BYTE_LEVEL,
    decoder: BYTE_LEVEL,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  return { tokenizer, vocab_size: next + specials.length, merges_kept: merges.length, merges_learned: learned.length };
}

/**
 * A Qwen2-style tokenizer_config.json for a ChatML tokenizer: eos `<|im_end|>`, pad `<|endoftext|>`, no BOS,
 * no clean-up of spaces (exact decode), the chat template inline, and `added_tokens_decoder` by id.
 */
export function chatTokenizerConfig(
  tokenizer: Record<string, unknown>,
  opts: { chat_template?: string; model_max_length?: number } = {},
): Record<string, unknown> {
  const added = (tokenizer.added_tokens ?? []) as { id: number; content: string }[];
  const added_tokens_decoder: Record<string, unknown> = {};
  for (const t of added) {
    const { id, ...rest } = t;
    added_tokens_decoder[String(id)] = rest;
  }
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder,
    additional_special_tokens: added.map((t) => t.content).filter((c) => c !== '<|endoftext|>'),
    bos_token: null,
    chat_template: opts.chat_template ?? CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|im_end|>',
    errors: 'replace',
    model_max_length: opts.model_max_length ?? 512,
    pad_token: '<|endoftext|>',
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };
}

/** Stable JSON text of a tokenizer file (2-space indent, trailing newline): same object => same bytes. */
export function jsonText(obj: unknown): string {
  return JSON.stringify(obj, null, 2) + '\n';
}

/** Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into `dir`; returns the paths. */
export function writeTokenizerFiles(
  dir: string,
  tokenizer: Record<string, unknown>,
  config: Record<string, unknown>,
): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const specialMap = {
    additional_special_tokens: config.additional_special_tokens ?? [],
    eos_token: config.eos_token,
    pad_token: config.pad_token,
  };
  const files: [string, unknown][] = [
    ['tokenizer.json', tokenizer],
    ['tokenizer_config.json', config],
    ['special_tokens_map.json', specialMap],
  ];
  return files.map(([name, obj]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, jsonText(obj));
    return file;
  });
}
