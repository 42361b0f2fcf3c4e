/**
 * Model evaluation: greedy completions for dataset rows, then the verifier's four metrics (src/verify/metrics.ts,
 * the same checks the rewards use). Used between phases of the course run and by notebook 04. Its own folder
 * because it is neither training (src/train: nothing here updates a weight) nor the verifier (src/verify never
 * touches a model): it is where the two meet.
 *
 * Not here: the metrics themselves (evaluate in src/verify/metrics.ts), sampling (src/model/generate.ts) or the
 * course's report (src/report/course.ts).
 */
import * as fs from 'node:fs';
import type { Qwen2ForCausalLM } from '../model/qwen2';
import { evaluate, type EvalReport } from '../verify/metrics';
import { promptIds, type GoldRow, type TokenizerLike, type TrainRow } from '../train/batch';
import { DataParallel } from '../train/parallel';

export interface PredictOptions {
  /** Rows per generate call (default 32). */
  batch_size?: number;
  /** Default 64. */
  max_new_tokens?: number;
  /** Split each batch's rows over these data-parallel ranks of the model (greedy: same outputs; default this thread). */
  parallel?: DataParallel | null;
}

/** Greedy completions (decoded, special tokens skipped), one per row, in row order. */
export async function predict(model: Qwen2ForCausalLM, tok: TokenizerLike, rows: readonly TrainRow[], o: PredictOptions = {}): Promise<string[]> {
  const bs = o.batch_size ?? 32;
  const out: string[] = [];
  // Similar prompt lengths in one batch waste less left padding; results go back to row order.
  const ids = rows.map((r) => promptIds(tok, r));
  const order = ids.map((p, i) => ({ i, n: p.length })).sort((a, b) => a.n - b.n || a.i - b.i).map((x) => x.i);
  const res = new Array<string>(rows.length);
  const parallel = o.parallel ?? DataParallel.local(model);
  for (let s = 0; s < order.length; s += bs) {
    const idx = order.slice(s, s + bs);
    const opts = { max_new_tokens: o.max_new_tokens ?? 64, do_sample: false, stop_token_ids: tok.stop_token_ids, pad_token_id: tok.pad_token_id };
    const prompts = idx.map((i) => ids[i]);
    const g = await parallel.generate(prompts, opts);
    g.sequences.forEach((seq, j) => {
      const len = g.completion_mask[j].reduce((a, x) => a + x, 0);
      res[idx[j]] = tok.decode(seq.slice(0, len), { skip_special_tokens: true });
    });
  }
  out.push(...res);
  return out;
}

/** Predict and score a split (rows with gold calls). */
export async function evaluateModel(
  model: Qwen2ForCausalLM,
  tok: TokenizerLike,
  rows: readonly GoldRow[],
  o: PredictOptions = {},
): Promise<{ predictions: string[]; report: EvalReport; seconds: number }> {
  const t0 = Date.now();
  const predictions = await predict(model, tok, rows, o);
  const report = evaluate(predictions, rows.map((r) => ({ gold_call: r.gold_call, expected_result: r.expected_result, behavior: r.behavior, tool: r.tool })));
  return { predictions, report, seconds: (Date.now() - t0) / 1000 };
}

/**
 * SFT's `evaluate` callback as the course and `train --algo sft` use it: greedy exact match on `rows` (the
 * validation split), generated on the trainer's data-parallel ranks.
 */
export function exactMatchOn(rows: readonly GoldRow[]): (model: Qwen2ForCausalLM, tok: TokenizerLike, parallel: DataParallel) => Promise<number> {
  return async (model, tok, parallel) => (await evaluateModel(model, tok, rows, { parallel })).report.exact_match;
}

/** The course's four metrics. */
export type FourMetrics = Record<'response_validity' | 'function_name_accuracy' | 'schema_match' | 'exact_match', number>;

/** The four course metrics of a report, rounded to 4 decimals (summary.json). */
export function fourMetrics(r: EvalReport): FourMetrics {
  const q = (x: number) => Math.round(x * 10000) / 10000;
  return {
    response_validity: q(r.response_validity),
    function_name_accuracy: q(r.function_name_accuracy),
    schema_match: q(r.schema_match),
    exact_match: q(r.exact_match),
  };
}

/** Write predictions as JSONL rows {id, split, behavior, tool, gold_call, expected_result, completion} (the eval CLI reads them). */
export function writePredictions(file: string, rows: readonly (GoldRow & { split?: string })[], predictions: readonly string[]): void {
  const lines = rows.map((r, i) =>
    JSON.stringify({ id: r.id, split: r.split, behavior: r.behavior, tool: r.tool, gold_call: r.gold_call, expected_result: r.expected_result, completion: predictions[i] }),
  );
  fs.writeFileSync(file, lines.join('\n') + (lines.length ? '\n' : ''));
}
