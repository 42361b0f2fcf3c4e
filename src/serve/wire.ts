/**
 * The reward service's wire format, OpenRLHF's `POST /get_reward`, as plain functions: a request body in,
 * rows for the verifier out, and the verifier's scores back into a response body. No HTTP here (server.ts).
 *
 * Request (what OpenRLHF's remote reward client sends, one sample per request; TRL and verl glue in
 * examples/distributed/ send the same):
 *   {"query":   [q_0, ...],        q_i: text = the chat-templated prompt followed by the completion, decoded
 *                                   with special tokens kept (OpenRLHF); or an assistant message
 *                                   {"role": "assistant", "content": ..., "tool_calls": [...]} (TRL with a
 *                                   response parser), or TRL's conversational completion (a list of messages:
 *                                   its first assistant message is used)
 *    "prompts": [p_0, ...],        optional; p_i: the prompt text (stripped from q_i when q_i starts with it),
 *                                   or null
 *    "labels":  [l_0, ...]}        l_i: the row's gold, {"gold_call": ..., "expected_result": ...}, as an object
 *                                   or as a JSON string of one (OpenRLHF passes `row[--data.label_key]` as is)
 * Response (every key always present, one entry per query, empty lists for an empty request):
 *   {"rewards": [r_0, ...], "scores": [...], "extra_logs": {"json": [...], "name": [...], "schema": [...],
 *    "execution": [...]}}
 *   rewards   the verifier's reward in the chosen mode, exactly what `verify --reward MODE` gives the
 *             completion (scoreCompletion in src/verify/reward.ts);
 *   scores    what OpenRLHF's dynamic filtering reads: the reward (as its reference server serve_rm.py does),
 *             or with `scores: 'exact'` 1/0 for "the whole call is right in this mode" (DAPO filters groups on
 *             accuracy, not on partial credit);
 *   extra_logs the four 0/1 components; OpenRLHF logs the mean of each list.
 *
 * From a query to the completion the verifier scores:
 *   text      strip prompts[i] when it is a prefix, then trailing end tokens (`<|im_end|>`, `<|endoftext|>`, and
 *             whitespace next to them); nothing else is touched, so the verifier sees the model's bytes;
 *   message   with tool_calls: the call rebuilt as `{"name": <name>, "arguments": <arguments>}`, where
 *             `arguments` is the client's JSON text when it sent a string (OpenAI's shape: the strict parser then
 *             sees duplicated keys, `2024.0` vs `2024`) or JSON.stringify of an object (the HTTP layer's
 *             JSON.parse has already merged duplicate keys and turned 2024.0 into 2024: send a string when that
 *             matters); two or more tool calls are concatenated, which the parser refuses as two calls (0, like
 *             `two_calls` in verify); `content` is then ignored. Without tool_calls: `content`, as text above.
 * A completion that does not parse is model output, not a bad request: it scores 0 with the verifier's reason.
 * A request that is malformed (lists of different lengths, a query that is neither text nor a message, a label
 * that is not a gold) is refused with a message naming the field and the index, e.g.
 * `labels[3]: missing "expected_result"`.
 *
 * What this file is not: the HTTP server (server.ts), the checks (src/verify/), or a tokenizer: the query is text
 * the client decoded.
 */
import { scoreCompletion } from '../verify/reward';
import type { RewardMode, Score, ScoreOptions } from '../verify/reward';

/** TypeChat's result shape: the value, or one readable sentence saying why not. */
export type Result<T> = { success: true; data: T } | { success: false; message: string };

/** The end tokens stripped from the end of a text query by default (Qwen2 / ChatML's). */
export const DEFAULT_END_TOKENS: readonly string[] = ['<|im_end|>', '<|endoftext|>'];

/** The components logged in `extra_logs`, in this order. */
export const COMPONENT_KEYS = ['json', 'name', 'schema', 'execution'] as const;

/** The response body. */
export interface RewardResponse {
  rewards: number[];
  scores: number[];
  extra_logs: { json: number[]; name: number[]; schema: number[]; execution: number[] };
}

/** One completion to score, with its gold. */
export interface RewardItem {
  completion: string;
  gold_call: string;
  expected_result: string;
  /** The query was text, prompts[i] was a string, and the query did not start with it (scored whole). */
  prompt_not_prefix?: boolean;
}

/** How queries become completions and scores become a response. */
export interface WireOptions {
  /** Stripped from the end of text queries (repeatedly, with whitespace next to them). Default DEFAULT_END_TOKENS. */
  end_tokens?: readonly string[];
  /** `scores`: the reward (default), or 1/0 for an exact call in this mode. */
  scores?: 'reward' | 'exact';
}

const where = (field: string, i: number) => `${field}[${i}]`;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Remove end tokens (and the whitespace between them) from the end of `text`; leaves it alone otherwise. */
export function stripEndTokens(text: string, endTokens: readonly string[] = DEFAULT_END_TOKENS): string {
  let cut = text.length;
  for (;;) {
    let e = cut;
    while (e > 0 && (text[e - 1] === ' ' || text[e - 1] === '\n' || text[e - 1] === '\r' || text[e - 1] === '\t')) e--;
    const tok = endTokens.find((t) => t.length > 0 && text.endsWith(t, e));
    if (!tok) break;
    cut = e - tok.length;
  }
  return text.slice(0, cut);
}

/** The call text for an assistant message's tool_calls (see the file comment). */
function toolCallsText(calls: unknown[]): string {
  return calls
    .map((c) => {
      const fn = isObject(c) && isObject(c.function) ? c.function : isObject(c) ? c : {};
      const name = fn.name === undefined ? undefined : JSON.stringify(fn.name);
      const args = fn.arguments === undefined ? undefined : typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments);
      const parts: string[] = [];
      if (name !== undefined) parts.push(`"name": ${name}`);
      if (args !== undefined) parts.push(`"arguments": ${args}`);
      return `{${parts.join(', ')}}`;
    })
    .join('');
}

/**
 * The completion a query stands for (see the file comment). A malformed query (not text, not a message)
 * fails with a message naming `query[i]`.
 */
export function completionOf(query: unknown, prompt: unknown, i: number, endTokens: readonly string[] = DEFAULT_END_TOKENS): Result<{ completion: string; prompt_not_prefix: boolean }> {
  if (typeof query === 'string') {
    let text = query;
    let notPrefix = false;
    if (typeof prompt === 'string' && prompt.length > 0) {
      if (text.startsWith(prompt)) text = text.slice(prompt.length);
      else notPrefix = true;
    }
    return { success: true, data: { completion: stripEndTokens(text, endTokens), prompt_not_prefix: notPrefix } };
  }
  let msg: unknown = query;
  if (Array.isArray(query)) {
    msg = query.find((m) => isObject(m) && m.role === 'assistant');
    if (msg === undefined) return { success: false, message: `${where('query', i)}: a list of messages with no {"role": "assistant"} message` };
  }
  if (!isObject(msg)) {
    return { success: false, message: `${where('query', i)}: expected text or an assistant message {"role": "assistant", "content", "tool_calls"}, got ${typeName(query)}` };
  }
  if (msg.role !== undefined && msg.role !== 'assistant') {
    return { success: false, message: `${where('query', i)}: the message's role is ${JSON.stringify(msg.role)}, expected "assistant"` };
  }
  const calls = msg.tool_calls;
  if (calls !== undefined && calls !== null && !Array.isArray(calls)) {
    return { success: false, message: `${where('query', i)}.tool_calls: expected a list, got ${typeName(calls)}` };
  }
  if (Array.isArray(calls) && calls.length > 0) return { success: true, data: { completion: toolCallsText(calls), prompt_not_prefix: false } };
  const content = msg.content;
  if (content === undefined || content === null) return { success: true, data: { completion: '', prompt_not_prefix: false } };
  if (typeof content !== 'string') {
    return { success: false, message: `${where('query', i)}.content: expected text (or null), got ${typeName(content)}` };
  }
  return { success: true, data: { completion: stripEndTokens(content, endTokens), prompt_not_prefix: false } };
}

/** A label as the verifier's two columns. The gold's content is checked by the verifier itself (scoreCompletion). */
export function labelOf(label: unknown, i: number): Result<{ gold_call: string; expected_result: string }> {
  const at = where('labels', i);
  let v: unknown = label;
  if (typeof label === 'string') {
    if (label.trim() === '') {
      return { success: false, message: `${at}: empty, not a gold {"gold_call", "expected_result"} (OpenRLHF: pass --data.label_key label, older versions --label_key label)` };
    }
    try {
      v = JSON.parse(label);
    } catch (e) {
      return { success: false, message: `${at}: not valid JSON (${e instanceof Error ? e.message : String(e)})` };
    }
  }
  if (!isObject(v)) return { success: false, message: `${at}: expected a gold {"gold_call", "expected_result"} as an object or a JSON string, got ${typeName(v)}` };
  for (const k of ['gold_call', 'expected_result']) {
    if (!(k in v)) return { success: false, message: `${at}: missing "${k}"` };
  }
  const g = v.gold_call;
  // The dataset column is a JSON string; an object is accepted and written back as JSON.
  const gold_call = typeof g === 'string' ? g : isObject(g) ? JSON.stringify(g) : null;
  if (gold_call === null) return { success: false, message: `${at}.gold_call: expected a JSON string or an object, got ${typeName(g)}` };
  if (typeof v.expected_result !== 'string') return { success: false, message: `${at}.expected_result: expected a string, got ${typeName(v.expected_result)}` };
  return { success: true, data: { gold_call, expected_result: v.expected_result } };
}

/**
 * Check a request body and turn it into rows. Fails on the first malformed field, naming it and its index.
 * Does not look at the gold's content: `scoreItems` reports a gold the verifier cannot use.
 */
export function parseRequest(body: unknown, opts: WireOptions = {}): Result<RewardItem[]> {
  if (!isObject(body)) return { success: false, message: `body: expected a JSON object {"query": [...], "prompts": [...], "labels": [...]}, got ${typeName(body)}` };
  const { query, prompts, labels } = body;
  if (query === undefined) return { success: false, message: 'query: missing (a list of texts or assistant messages)' };
  if (!Array.isArray(query)) return { success: false, message: `query: expected a list, got ${typeName(query)}` };
  if (labels === undefined) return { success: false, message: 'labels: missing (a list of golds {"gold_call", "expected_result"}, one per query)' };
  if (!Array.isArray(labels)) return { success: false, message: `labels: expected a list, got ${typeName(labels)}` };
  if (labels.length !== query.length) return { success: false, message: `labels: ${labels.length} entries for ${query.length} queries (one label per query)` };
  if (prompts !== undefined && prompts !== null) {
    if (!Array.isArray(prompts)) return { success: false, message: `prompts: expected a list, got ${typeName(prompts)}` };
    if (prompts.length !== query.length) return { success: false, message: `prompts: ${prompts.length} entries for ${query.length} queries (one prompt per query)` };
  }
  const ps = Array.isArray(prompts) ? prompts : [];
  const items: RewardItem[] = [];
  for (let i = 0; i < query.length; i++) {
    const p = ps[i];
    if (p !== undefined && p !== null && typeof p !== 'string' && typeof query[i] === 'string') {
      return { success: false, message: `${where('prompts', i)}: expected text (or null) for a text query, got ${typeName(p)}` };
    }
    const c = completionOf(query[i], p, i, opts.end_tokens);
    if (!c.success) return c;
    const l = labelOf(labels[i], i);
    if (!l.success) return l;
    items.push({ completion: c.data.completion, ...l.data, ...(c.data.prompt_not_prefix ? { prompt_not_prefix: true } : {}) });
  }
  return { success: true, data: items };
}

/** What the response needs of one score (what a worker thread sends back). */
export interface WireScore {
  reward: number;
  exact: boolean;
  components: { json: number; name: number; schema: number; execution: number };
  /** Set when the gold row is unusable (the verifier's message). */
  error?: string;
}

/** Score rows with the verifier (never throws on model output). */
export function scoreRows(items: readonly RewardItem[], mode: RewardMode, opts: ScoreOptions = {}): WireScore[] {
  return items.map((it) => {
    const s: Score = scoreCompletion(it.completion, it.gold_call, it.expected_result, mode, opts);
    return { reward: s.reward, exact: s.exact, components: s.components, ...(s.error !== undefined ? { error: s.error } : {}) };
  });
}

/** The response body for scored rows, or the first row whose gold the verifier could not use. */
export function buildResponse(scores: readonly WireScore[], opts: WireOptions = {}): Result<RewardResponse> {
  const out: RewardResponse = { rewards: [], scores: [], extra_logs: { json: [], name: [], schema: [], execution: [] } };
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (s.error !== undefined) return { success: false, message: `${where('labels', i)}: not a usable gold: ${s.error}` };
    out.rewards.push(s.reward);
    out.scores.push(opts.scores === 'exact' ? (s.exact ? 1 : 0) : s.reward);
    for (const k of COMPONENT_KEYS) out.extra_logs[k].push(s.components[k]);
  }
  return { success: true, data: out };
}
