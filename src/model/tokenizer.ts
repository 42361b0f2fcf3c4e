/**
 * ChatTokenizer: a Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json) loaded with
 * @huggingface/tokenizers (pure JS), plus the checkpoint's own chat template rendered with @huggingface/jinja,
 * plus the ids generation stops on. A Qwen2.5 directory works as it comes; so does the tiny default
 * (src/model/tiny.ts), which is written in the same layout.
 *
 * What it is not: a tokenizer trainer (src/model/bpe.ts) or a prompt builder (src/env/prompt.ts). It knows
 * nothing of tools beyond passing `tools` through to a template that wants them.
 *
 * Conventions, as in transformers' `apply_chat_template(..., tokenize=False)` followed by
 * `tokenizer(text, add_special_tokens=False)`: the template already writes every special token the model
 * needs, so `encode` adds none (Qwen2 has no BOS anyway). Special tokens written as text in the input
 * (`<|im_start|>`, ...) become their single ids, so `decode(encode(s)) === s` for any string s.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';

/** One chat message. Templates may read more keys (`tool_calls`, ...), so extra keys pass through. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** Options of `applyChatTemplate`, with transformers' names. Extra keys become template variables. */
export interface ChatTemplateOptions {
  /** Append the opening of an assistant turn (`<|im_start|>assistant\n` in ChatML). Default false. */
  add_generation_prompt?: boolean;
  /** Tool schemas for templates that render them (Qwen2.5 does); undefined = no tools section. */
  tools?: readonly unknown[];
  [key: string]: unknown;
}

/** Where each part of a loaded tokenizer came from (for messages and for `toString`). */
export interface TokenizerSources {
  tokenizer_json: string;
  tokenizer_config: string;
  chat_template: string | null;
  generation_config: string | null;
}

/** A special token as tokenizer_config.json stores it: a string, or an AddedToken object, or null. */
type TokenField = string | { content?: string } | null | undefined;

function tokenContent(t: TokenField): string | null {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof t.content === 'string') return t.content;
  return null;
}

/** Read and parse a JSON file; errors name the file. */
function readJsonFile(file: string, what: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new Error(`${file}: not found (${what})`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${what}): ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('top level is not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: corrupt JSON (${what}): ${(e as Error).message}`);
  }
}

/**
 * Pick the chat template of a checkpoint directory, in transformers' order of precedence:
 * chat_template.jinja, then chat_template.json, then `chat_template` in tokenizer_config.json.
 * A list of named templates (older multi-template format) is kept as a name -> template map.
 */
function findChatTemplate(
  dir: string | null,
  config: Record<string, unknown>,
  configFile: string,
): { templates: Map<string, string>; source: string | null } {
  const templates = new Map<string, string>();
  const addFrom = (value: unknown, source: string): boolean => {
    if (typeof value === 'string') {
      templates.set('default', value);
      return true;
    }
    if (Array.isArray(value)) {
      for (const item of value) {
        const it = item as { name?: unknown; template?: unknown };
        if (typeof it?.name !== 'string' || typeof it?.template !== 'string') {
          throw new Error(`${source}: chat_template list entries need string "name" and "template"`);
        }
        templates.set(it.name, it.template);
      }
      return templates.size > 0;
    }
    if (value !== undefined && value !== null) throw new Error(`${source}: chat_template must be a string or a list`);
    return false;
  };
  if (dir) {
    const jinja = path.join(dir, 'chat_template.jinja');
    if (fs.existsSync(jinja)) {
      templates.set('default', fs.readFileSync(jinja, 'utf8'));
      return { templates, source: jinja };
    }
    const json = path.join(dir, 'chat_template.json');
    if (fs.existsSync(json)) {
      const obj = readJsonFile(json, 'chat template');
      if (addFrom(obj.chat_template, json)) return { templates, source: json };
    }
  }
  if (addFrom(config.chat_template, configFile)) return { templates, source: configFile };
  return { templates, source: null };
}

/** Tokenizer + chat template + stop ids of one checkpoint. Build with `fromPretrained(dir)`. */
export class ChatTokenizer {
  /** The id generation ends with: the checkpoint's eos_token (ChatML: `<|im_end|>`). */
  readonly eos_token_id: number;
  /** Every id that ends a completion: eos_token, generation_config's eos_token_id(s), `<|im_end|>`, `<|endoftext|>`. */
  readonly stop_token_ids: number[];
  /** Padding id (pad_token; else generation_config's pad_token_id; else eos). Never trained on: masked. */
  readonly pad_token_id: number;
  /** Number of ids the tokenizer can produce (base vocabulary + added tokens) = max id + 1. */
  readonly vocab_size: number;
  /** The raw tokenizer_config.json object. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Where each part came from. */
  readonly sources: TokenizerSources;

  private readonly tok: Tokenizer;
  private readonly templates: Map<string, string>;
  private readonly compiled = new Map<string, Template>();
  private readonly specialIds: Set<number>;
  private readonly cleanUp: boolean;

  private constructor(
    tok: Tokenizer,
    config: Record<string, unknown>,
    templates: Map<string, string>,
    generationConfig: Record<string, unknown> | null,
    sources: TokenizerSources,
  ) {
    this.tok = tok;
    this.config = config;
    this.templates = templates;
    this.sources = sources;
    this.cleanUp = config.clean_up_tokenization_spaces === true;

    const added = tok.get_added_tokens_decoder();
    this.specialIds = new Set([...added].filter(([, t]) => t.special).map(([id]) => id));
    let maxId = -1;
    for (const id of tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocab_size = maxId + 1;

    const idOf = (t: string | null): number | undefined => (t === null ? undefined : tok.token_to_id(t));
    const genEos = generationConfig?.eos_token_id;
    const genEosIds = (Array.isArray(genEos) ? genEos : genEos === undefined || genEos === null ? [] : [genEos]).filter(
      (x): x is number => Number.isInteger(x),
    );
    const configEos = idOf(tokenContent(config.eos_token as TokenField));
    const imEnd = tok.token_to_id('<|im_end|>');
    const endOfText = tok.token_to_id('<|endoftext|>');
    const eos = configEos ?? genEosIds[0] ?? imEnd ?? endOfText;
    if (eos === undefined) {
      throw new Error(
        `${sources.tokenizer_config}: no eos_token (and no eos_token_id in generation_config.json, no <|im_end|> or <|endoftext|> token): generation could never stop`,
      );
    }
    this.eos_token_id = eos;
    const stops: number[] = [];
    for (const id of [eos, ...genEosIds, imEnd, endOfText]) if (id !== undefined && !stops.includes(id)) stops.push(id);
    this.stop_token_ids = stops;

    const genPad = generationConfig?.pad_token_id;
    this.pad_token_id = idOf(tokenContent(config.pad_token as TokenField)) ?? (Number.isInteger(genPad) ? (genPad as number) : eos);
  }

  /**
   * Load `dir/tokenizer.json` and `dir/tokenizer_config.json` (both required), the chat template
   * (chat_template.jinja / chat_template.json / tokenizer_config.json) and, when present,
   * `dir/generation_config.json` (its eos_token_id, a number or a list, joins the stop ids).
   * Errors name the missing or corrupt file.
   */
  static async fromPretrained(dir: string): Promise<ChatTokenizer> {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory (tokenizer)`);
    const tokFile = path.join(dir, 'tokenizer.json');
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const genFile = path.join(dir, 'generation_config.json');
    const tokenizerJson = readJsonFile(tokFile, 'tokenizer');
    const config = readJsonFile(cfgFile, 'tokenizer config');
    const generationConfig = fs.existsSync(genFile) ? readJsonFile(genFile, 'generation config') : null;
    return ChatTokenizer.build(tokenizerJson, config, generationConfig, dir, {
      tokenizer_json: tokFile,
      tokenizer_config: cfgFile,
      generation_config: generationConfig ? genFile : null,
    });
  }

  /**
   * Build from already-parsed objects (tokenizer.json, tokenizer_config.json, optional
   * generation_config.json): for tests and for code that has just trained a tokenizer in memory.
   */
  static fromObjects(
    tokenizerJson: Record<string, unknown>,
    config: Record<string, unknown>,
    generationConfig: Record<string, unknown> | null = null,
  ): ChatTokenizer {
    return ChatTokenizer.build(tokenizerJson, config, generationConfig, null, {
      tokenizer_json: '<tokenizer.json object>',
      tokenizer_config: '<tokenizer_config.json object>',
      generation_config: generationConfig ? '<generation_config.json object>' : null,
    });
  }

  private static build(
    tokenizerJson: Record<string, unknown>,
    config: Record<string, unknown>,
    generationConfig: Record<string, unknown> | null,
    dir: string | null,
    files: Omit<TokenizerSources, 'chat_template'>,
  ): ChatTokenizer {
    const model = tokenizerJson.model as { type?: unknown } | undefined;
    if (!model || typeof model !== 'object') throw new Error(`${files.tokenizer_json}: no "model" section`);
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson, config);
    } catch (e) {
      throw new Error(`${files.tokenizer_json}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    const { templates, source } = findChatTemplate(dir, config, files.tokenizer_config);
    return new ChatTokenizer(tok, config, templates, generationConfig, { ...files, chat_template: source });
  }

  /** Text -> ids. No special tokens are added; special tokens written in the text map to their ids. */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Ids -> text. With `skip_special_tokens` the added tokens marked special (`<|im_end|>`, ...) are dropped.
   * Ids the tokenizer does not know (a model's padded vocabulary can be larger than the tokenizer's) are
   * dropped rather than thrown on: decoding model output never throws.
   */
  decode(ids: ArrayLike<number>, opts: { skip_special_tokens?: boolean } = {}): string {
    const keep: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab_size) continue;
      if (opts.skip_special_tokens && this.specialIds.has(id)) continue;
      if (this.tok.id_to_token(id) === undefined) continue; // a hole in the id range
      keep.push(id);
    }
    if (keep.length === 0) return ''; // the JS library refuses an empty list
    return this.tok.decode(keep, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUp });
  }

  /** The id of a token string (e.g. '<|im_end|>'), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** True when `id` is an added token marked special (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`, ...). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** The raw chat template that `applyChatTemplate` would use (default, or `tool_use` when tools are given). */
  chatTemplate(opts: { tools?: readonly unknown[] } = {}): string {
    const name = opts.tools && this.templates.has('tool_use') ? 'tool_use' : 'default';
    const t = this.templates.get(name);
    if (t === undefined) {
      throw new Error(
        `${this.sources.tokenizer_config}: no chat_template (looked in chat_template.jinja, chat_template.json and tokenizer_config.json)` +
          (this.templates.size ? `; named templates: ${[...this.templates.keys()].join(', ')}` : ''),
      );
    }
    return t;
  }

  /**
   * Render messages with the checkpoint's chat template, as transformers' `apply_chat_template(messages,
   * tokenize=False, ...)`: the template sees `messages`, `add_generation_prompt`, `tools` (undefined when
   * not given), the special tokens (`bos_token`, `eos_token`, `pad_token`, `unk_token`) and any extra option.
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const source = this.chatTemplate({ tools: opts.tools });
    let compiled = this.compiled.get(source);
    if (!compiled) {
      try {
        compiled = new Template(source);
      } catch (e) {
        throw new Error(`${this.sources.chat_template}: chat template does not parse: ${(e as Error).message}`);
      }
      this.compiled.set(source, compiled);
    }
    const specials: Record<string, string> = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
      const v = tokenContent(this.config[key] as TokenField);
      if (v !== null) specials[key] = v;
    }
    const { add_generation_prompt = false, tools, ...extra } = opts;
    const context: Record<string, unknown> = { ...specials, ...extra, messages, add_generation_prompt };
    if (tools !== undefined) context.tools = tools;
    try {
      return compiled.render(context);
    } catch (e) {
      throw new Error(`${this.sources.chat_template}: chat template failed to render: ${(e as Error).message}`);
    }
  }

  /**
   * Prompt ids for generation: `encode(applyChatTemplate(messages, {add_generation_prompt: true, ...opts}))`.
   * Completion ids can be appended as `encode(completion)`: a ChatML prompt ends in a special token plus
   * "\n", so the concatenation tokenizes the same as the joined text.
   */
  encodeChat(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, { add_generation_prompt: true, ...opts }));
  }
}
