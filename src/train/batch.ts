/**
 * Token layout shared by SFT and GRPO, as TRL lays it out: each row is a left-padded prompt followed by a
 * right-padded completion,
 *
 *   input_ids       [B, P + C]   pad .. pad p1 .. pk | c1 .. cm pad .. pad
 *   attention_mask  [B, P + C]   0 .. 0   1 .. 1    | 1 .. 1   0 .. 0
 *   completion_mask [B, C]                          | 1 .. 1   0 .. 0
 *
 * so every completion starts at the same column P and its log-probs are the last C positions' (TRL's
 * `logits_to_keep`). Position ids count real tokens only (0 at each row's first prompt token), the same
 * positions generation used, so the training forward sees exactly what sampling saw.
 *
 * Also here: turning a dataset row into prompt / completion ids with the tokenizer's own chat template, and the
 * seeded data order (epochs of shuffled indices, resumable from a cursor).
 *
 * Not here: the forward pass (src/model) or the losses (objectives.ts).
 */
import { Rng, hash32 } from '../util/rng';

/** What the trainers need from a tokenizer (ChatTokenizer satisfies it). */
export interface TokenizerLike {
  encode(text: string): number[];
  decode(ids: number[], opts?: { skip_special_tokens?: boolean }): string;
  applyChatTemplate(messages: { role: string; content: string }[], opts: { add_generation_prompt?: boolean }): string;
  eos_token_id: number;
  stop_token_ids: number[];
  pad_token_id: number;
}

/** The dataset columns the trainers read (src/env/synth.ts Row has them all). */
export interface TrainRow {
  id: string;
  messages: { role: string; content: string }[];
  /**
   * The gold call (JSON). Absent in an outcome-labelled row (a request plus what the right action returns, as an
   * API log gives it): GRPO's outcome reward can learn from such a row, SFT cannot.
   */
  gold_call?: string;
  expected_result: string;
  behavior?: string;
  /** The right action's name (a tool or a control action); the outcome reward reads it. */
  tool?: string;
  /** The tools the prompt lists (the outcome reward checks the call names one of them). */
  catalog?: readonly string[];
  /** The synth template ("ask_user.get_revenue.fiscal_year.03"): the curated SFT subset balances by it. */
  template_id?: string;
}

export interface Batch {
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  completion_mask: number[][];
  /** Completion ids, right-padded: [B, C]. */
  completion_ids: number[][];
  /** P: where completions start. */
  prompt_length: number;
  /** C: completion columns. */
  completion_length: number;
}

/** The id that ends an assistant turn: `<|im_end|>` when it is one token, else EOS. */
export function endOfTurnId(tok: TokenizerLike): number {
  const ids = tok.encode('<|im_end|>');
  return ids.length === 1 ? ids[0] : tok.eos_token_id;
}

/** A row's prompt ids: its chat messages through the tokenizer's template, with the assistant turn opened. */
export function promptIds(tok: TokenizerLike, row: TrainRow): number[] {
  return tok.encode(tok.applyChatTemplate(row.messages, { add_generation_prompt: true }));
}

/** The SFT target: the gold call's text, then the end-of-turn token (the model must learn to stop). */
export function goldCompletionIds(tok: TokenizerLike, row: TrainRow): number[] {
  if (row.gold_call === undefined) throw new Error(`row ${row.id}: no gold_call (an outcome-labelled row): SFT needs a gold call to imitate`);
  return [...tok.encode(row.gold_call), endOfTurnId(tok)];
}

/** A row with a gold call (what SFT and the evaluation read). */
export type GoldRow = TrainRow & { gold_call: string };

/**
 * The row as an API log would give it: the request, the right action's name and the result it returned, and
 * no gold call (`pool_labels: outcome`). GRPO then learns from the outcome reward alone.
 */
export function outcomeLabelled<R extends TrainRow>(row: R): Omit<R, 'gold_call'> {
  const { gold_call: _gold, ...rest } = row;
  return rest;
}

/**
 * Build a batch from prompt ids and completion ids (completion_mask 1 on every given completion token unless
 * `completion_masks` says otherwise). Prompts longer than `max_prompt_length` keep their last tokens.
 */
export function makeBatch(
  prompts: readonly (readonly number[])[],
  completions: readonly (readonly number[])[],
  pad: number,
  completion_masks?: readonly (readonly number[])[],
): Batch {
  const P = Math.max(...prompts.map((p) => p.length));
  const C = Math.max(1, ...completions.map((c) => c.length));
  const out: Batch = { input_ids: [], attention_mask: [], position_ids: [], completion_mask: [], completion_ids: [], prompt_length: P, completion_length: C };
  prompts.forEach((p, i) => {
    const c = completions[i];
    const cm = completion_masks ? completion_masks[i].slice(0, c.length) : c.map(() => 1);
    const lp = P - p.length, rc = C - c.length;
    // Completion positions past the mask's last 1 (a finished row's padding) are not attended either.
    const cAttend = c.map((_, j) => (j < cm.length && cm[j] ? 1 : 0));
    out.input_ids.push([...new Array<number>(lp).fill(pad), ...p, ...c, ...new Array<number>(rc).fill(pad)]);
    out.attention_mask.push([...new Array<number>(lp).fill(0), ...p.map(() => 1), ...cAttend, ...new Array<number>(rc).fill(0)]);
    const pos: number[] = [];
    let k = 0;
    for (let j = 0; j < P + C; j++) pos.push(j < lp ? 0 : k++);
    out.position_ids.push(pos);
    out.completion_mask.push([...cAttend, ...new Array<number>(rc).fill(0)]);
    out.completion_ids.push([...c, ...new Array<number>(rc).fill(pad)]);
  });
  return out;
}

/** Rows [start, end) of a batch (for micro-batches); keeps P and C. */
export function sliceBatch(b: Batch, start: number, end: number): Batch {
  return {
    input_ids: b.input_ids.slice(start, end),
    attention_mask: b.attention_mask.slice(start, end),
    position_ids: b.position_ids.slice(start, end),
    completion_mask: b.completion_mask.slice(start, end),
    completion_ids: b.completion_ids.slice(start, end),
    prompt_length: b.prompt_length,
    completion_length: b.completion_length,
  };
}

/**
 * The index of the `cursor`-th example in a seeded, epoch-by-epoch shuffled order over `n` examples.
 * Depends only on (seed, n, cursor), so a resumed run continues the same order from its saved cursor.
 */
export class DataOrder {
  private cache = new Map<number, number[]>();
  constructor(readonly n: number, readonly seed: number, readonly salt = 'data') {
    if (n < 1) throw new RangeError('DataOrder: no examples');
  }

  at(cursor: number): number {
    const epoch = Math.floor(cursor / this.n);
    let perm = this.cache.get(epoch);
    if (!perm) {
      perm = new Rng(hash32(`${this.salt}:${this.seed}:${epoch}`)).shuffle(Array.from({ length: this.n }, (_, i) => i));
      this.cache.clear();
      this.cache.set(epoch, perm);
    }
    return perm[cursor % this.n];
  }

  /** `count` indices starting at `cursor`. */
  take(cursor: number, count: number): number[] {
    return Array.from({ length: count }, (_, i) => this.at(cursor + i));
  }
}
