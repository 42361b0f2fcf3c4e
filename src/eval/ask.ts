/**
 * Asking a trained model: a request (its `query`, and optionally the `catalog` of tools its prompt lists) ->
 * the chat prompt the model trained on (env/prompt.ts buildMessages) -> a greedy completion (evaluate.ts
 * predict) -> the call parsed from it (verify/parse.ts) -> that call run in the sandbox (env/execute.ts).
 * What the `predict` command prints and writes, as functions a notebook can call.
 *
 *   catalog    a request without one lists every real tool (TRAIN_TOOLS + HELDOUT_TOOLS, in that order; not
 *              the synthetic ones): a user's question may be about any of them
 *   result     the sandbox's text ("391035000000", "ask_user:fiscal_year", "dry_run:buy 5 AAPL"), or
 *              `error: <why>` when the completion is no call or the call does not execute
 *   scoring    rows that carry both gold_call and expected_result get the verifier's four metrics
 *              (verify/metrics.ts, the checks the rewards use); the others are only answered
 *
 * Nothing here throws on model output or on a bad request line: both come back as values (Result, Answer).
 * Not here: reading argv or files (src/cli/predict.ts), loading the model (src/train/runs.ts).
 */
import type { Qwen2ForCausalLM } from '../model/qwen2';
import type { TokenizerLike } from '../train/batch';
import { buildMessages } from '../env/prompt';
import { CONTROL_ACTIONS, HELDOUT_TOOLS, TRAIN_TOOLS, getTool, type ToolSpec } from '../env/tools';
import { executeTool } from '../env/execute';
import { jsonTypeName, parseCall, type ParseOptions, type ToolCall } from '../verify/parse';
import { scoreRows, summarize, type EvalReport, type EvalRow, type RowScores } from '../verify/metrics';
import { failure, success, type Result } from '../util/result';
import { predict, type PredictOptions } from './evaluate';

/** What a request without a catalog lists: every real tool, train tools first (tools.ts order). */
export const ALL_REAL_TOOLS: readonly ToolSpec[] = [...TRAIN_TOOLS, ...HELDOUT_TOOLS];

/**
 * One request row. Only `query` is needed; every other field is kept as it came (an output row is the input row
 * plus completion / call / result). The typed ones are those this file reads.
 */
export type RequestRow = Record<string, unknown> & {
  query: string;
  /** Tool names the prompt lists, in order (control actions are always listed and are not named here). */
  catalog?: string[];
  /** With expected_result: the row is scored. */
  gold_call?: string;
  expected_result?: string;
};

/** One JSONL line of requests: its 1-based number, and the row or why not (`FILE:LINE: ...`). */
export type RequestLine = { line: number } & Result<RequestRow>;

/** What the model answered one request. */
export interface Answer {
  /** The model's raw text (special tokens skipped). */
  completion: string;
  /** The parsed call, or null when the completion is not one JSON {"name": ..., "arguments": {...}}. */
  call: ToolCall | null;
  /** The sandbox's text for the call, or `error: <why>` (no call, unknown tool, bad arguments). */
  result: string;
}

const CONTROL_NAMES: ReadonlySet<string> = new Set(CONTROL_ACTIONS.map((t) => t.name));

/** Check one parsed JSON value as a request (see RequestRow). Reasons quote the field: `missing "query"`. */
export function checkRequest(v: unknown): Result<RequestRow> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return failure(`expected a JSON object with a "query", got ${jsonTypeName(v)}`);
  const row = v as Record<string, unknown>;
  if (!('query' in row)) return failure('missing "query"');
  if (typeof row.query !== 'string') return failure(`"query" is ${jsonTypeName(row.query)}, not a string`);
  if (row.query.trim() === '') return failure('"query" is empty');
  if (row.catalog !== undefined) {
    if (!Array.isArray(row.catalog) || !row.catalog.every((x) => typeof x === 'string')) return failure('"catalog" is not a list of tool names');
    for (const name of row.catalog as string[]) {
      if (CONTROL_NAMES.has(name)) return failure(`"catalog" lists ${JSON.stringify(name)}, a control action (always listed, never in a catalog)`);
      if (!getTool(name)) return failure(`"catalog" lists ${JSON.stringify(name)}, which is no tool (src/env/tools.ts)`);
    }
  }
  for (const k of ['gold_call', 'expected_result'] as const) {
    if (row[k] !== undefined && typeof row[k] !== 'string') return failure(`"${k}" is ${jsonTypeName(row[k])}, not a string`);
  }
  return success(row as RequestRow);
}

/** Parse JSONL text of requests (blank lines skipped). `source` names the file in each reason: `requests.jsonl:7: not JSON (...)`. */
export function parseRequests(text: string, source: string): RequestLine[] {
  const out: RequestLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    if (raw.trim() === '') continue;
    const where = `${source}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      out.push({ line: i + 1, ...failure(`${where}: not JSON (${e instanceof Error ? e.message : String(e)})`) });
      continue;
    }
    const r = checkRequest(v);
    out.push({ line: i + 1, ...(r.success ? r : failure(`${where}: ${r.message}`)) });
  }
  return out;
}

/** The tools a request's prompt lists: its catalog (checked by checkRequest), else every real tool. */
export function requestTools(r: Pick<RequestRow, 'catalog'>): readonly ToolSpec[] {
  return r.catalog ? r.catalog.map((n) => getTool(n)!) : ALL_REAL_TOOLS;
}

/** The chat messages of a request: the compact system prompt over its tools, then the query. */
export function requestMessages(r: Pick<RequestRow, 'query' | 'catalog'>): { role: 'system' | 'user'; content: string }[] {
  return buildMessages(r.query, requestTools(r));
}

/** Parse a completion and run its call in the sandbox. Never throws. */
export function answerOf(completion: string, opts: ParseOptions = {}): Answer {
  const p = parseCall(completion, opts);
  if (!p.success) return { completion, call: null, result: `error: ${p.message}` };
  const call = p.data.call;
  if (!call) return { completion, call: null, result: `error: a JSON ${jsonTypeName(p.data.value)}, not a call {"name": ..., "arguments": {...}}` };
  const ex = executeTool(call.name, call.arguments);
  return { completion, call, result: ex.success ? ex.data.text : `error: ${ex.message}` };
}

export type AskOptions = PredictOptions & ParseOptions;

/** Greedy answers to requests, in order (batched as evaluate.ts predict batches; greedy, so the batching does not change them). */
export async function ask(model: Qwen2ForCausalLM, tok: TokenizerLike, requests: readonly Pick<RequestRow, 'query' | 'catalog'>[], o: AskOptions = {}): Promise<Answer[]> {
  // predict reads only `messages`; the gold columns of TrainRow are not used for generation.
  const rows = requests.map((r, i) => ({ id: `request-${i}`, messages: requestMessages(r), gold_call: '', expected_result: '' }));
  const completions = await predict(model, tok, rows, o);
  return completions.map((c) => answerOf(c, o));
}

/** True when a request carries what scoring needs: a gold_call and an expected_result. */
export function isGold(r: RequestRow): r is RequestRow & { gold_call: string; expected_result: string } {
  return typeof r.gold_call === 'string' && typeof r.expected_result === 'string';
}

/** The four metrics (and the rest of the report) over the gold rows; `index[i]` is the request row of `scores[i]`. */
export interface Scored {
  index: number[];
  scores: RowScores[];
  report: EvalReport;
}

/** Score the answers of the requests that carry gold (see isGold), as `eval` scores predictions. */
export function scoreAnswers(requests: readonly RequestRow[], answers: readonly Answer[], opts: ParseOptions = {}): Scored {
  const index = requests.flatMap((r, i) => (isGold(r) ? [i] : []));
  const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
  const rows: EvalRow[] = index.map((i) => {
    const r = requests[i] as RequestRow & { gold_call: string; expected_result: string };
    const unlisted = r.unlisted_tool === null ? null : str(r.unlisted_tool);
    return {
      gold_call: r.gold_call,
      expected_result: r.expected_result,
      behavior: str(r.behavior),
      tool: str(r.tool),
      // The tools the prompt listed: a request without a catalog listed every real tool.
      catalog: requestTools(r).map((t) => t.name),
      ...(unlisted !== undefined ? { unlisted_tool: unlisted } : {}),
    };
  });
  const scores = scoreRows(index.map((i) => answers[i].completion), rows, opts);
  return { index, scores, report: summarize(scores, rows) };
}
