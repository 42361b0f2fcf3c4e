/**
 * Evaluation: the course's four metrics, computed through the same checks the rewards use (check.ts), plus
 * breakdowns per behaviour and per tool and a function-name confusion matrix.
 *
 * Definitions (n = rows with a usable gold call; rows whose gold_call or expected_result is broken are counted
 * in `errors` and left out of every denominator). Each metric is a fraction of n, taken from the seed mode's
 * components, which are the course's checks:
 *   response_validity       the completion parses as one JSON object            (seed component `json`)
 *   function_name_accuracy  its `name` equals the gold name, code point for code point  (component `name`)
 *   schema_match            the course's schema_ok: right name, `arguments` an object holding every gold
 *                           argument with the gold value's type (extra arguments allowed)  (component `schema`)
 *   exact_match             for a no_call gold: the name is no_call; otherwise executing the call gives
 *                           expected_result                                      (component `execution`)
 * Also reported: the mean reward of each mode (`reward_seed`, `reward_tiered`, `reward_strict`; the last is the
 * fraction of completions that pass every strict check).
 *
 * Where the course's Python would crash (a JSON value that is not an object), the completion counts as
 * invalid here. Nothing in this file throws on model output.
 */
import { getTool } from '../env/tools';
import { checkMode, parseGold, prepare, REWARD_MODES } from './check';
import type { RewardMode } from './check';
import { toScore } from './reward';
import type { Score, ScoreOptions } from './reward';

/** A dataset row, as far as evaluation needs it. `behavior` and `tool` default to what the gold call says. */
export interface EvalRow {
  gold_call: string;
  expected_result: string;
  behavior?: string;
  tool?: string;
}

/** The metrics of one group of rows. */
export interface MetricSet {
  n: number;
  response_validity: number;
  function_name_accuracy: number;
  schema_match: number;
  exact_match: number;
  reward_seed: number;
  reward_tiered: number;
  reward_strict: number;
}

export const METRIC_NAMES = ['response_validity', 'function_name_accuracy', 'schema_match', 'exact_match'] as const;

/** Gold name x predicted label counts. Predicted labels: a catalog name, '<unknown>', '<no_name>' or '<invalid>'. */
export interface ConfusionMatrix {
  gold: string[];
  predicted: string[];
  /** counts[gold][predicted]; absent = 0. */
  counts: Record<string, Record<string, number>>;
}

export interface EvalReport extends MetricSet {
  /** Rows whose gold_call / expected_result could not be used, with their index and why. */
  errors: { index: number; error: string }[];
  by_behavior: Record<string, MetricSet>;
  by_tool: Record<string, MetricSet>;
  confusion: ConfusionMatrix;
  /** Names outside the catalog the model produced (hallucinated tools, look-alikes), with counts. */
  unknown_names: Record<string, number>;
}

/** All three modes' scores for one row. */
export type RowScores = Record<RewardMode, Score>;

/** Score each prediction in every mode (one parse per row). */
export function scoreRows(predictions: string[], rows: EvalRow[], opts: ScoreOptions = {}): RowScores[] {
  const out: RowScores[] = [];
  for (let i = 0; i < rows.length; i++) {
    const p = prepare(predictions[i], rows[i]?.gold_call, rows[i]?.expected_result, opts);
    const s = {} as RowScores;
    for (const m of REWARD_MODES) {
      s[m] = p.ok
        ? toScore(checkMode(p.prepared, m), m)
        : { mode: m, reward: 0, components: { json: 0, name: 0, schema: 0, execution: 0 }, reason: `bad row: ${p.error}`, exact: false, predicted_name: '<invalid>', error: p.error };
    }
    out.push(s);
  }
  return out;
}

/** Evaluate predictions (completions) against rows. `predictions[i]` answers `rows[i]`. */
export function evaluate(predictions: string[], rows: EvalRow[], opts: ScoreOptions = {}): EvalReport {
  return summarize(scoreRows(predictions, rows, opts), rows);
}

/** The behaviour a gold call stands for: its control action's name, or 'execute' for a real tool. */
export function behaviorOf(goldName: string): string {
  return goldName === 'no_call' || goldName === 'ask_user' || goldName === 'refuse' ? goldName : 'execute';
}

function goldNameOf(row: EvalRow): string | null {
  const g = parseGold(row.gold_call);
  return g.ok ? g.gold.name : null;
}

/** Aggregate already-computed scores (e.g. the verify CLI's) into a report. */
export function summarize(scores: RowScores[], rows: EvalRow[]): EvalReport {
  const all = new Acc();
  const byBehavior = new Map<string, Acc>();
  const byTool = new Map<string, Acc>();
  const errors: { index: number; error: string }[] = [];
  const counts: Record<string, Record<string, number>> = Object.create(null);
  const predLabels = new Set<string>();
  const unknown: Record<string, number> = Object.create(null);

  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (s.seed.error) {
      errors.push({ index: i, error: s.seed.error });
      continue;
    }
    const row = rows[i];
    const goldName = goldNameOf(row) ?? '<unknown>';
    const behavior = row.behavior ?? behaviorOf(goldName);
    const tool = row.tool ?? goldName;
    all.add(s);
    getAcc(byBehavior, behavior).add(s);
    getAcc(byTool, tool).add(s);

    let pred = s.seed.predicted_name;
    if (!pred.startsWith('<') && !getTool(pred)) {
      unknown[pred] = (unknown[pred] ?? 0) + 1;
      pred = '<unknown>';
    }
    predLabels.add(pred);
    const rowCounts = (counts[goldName] ??= Object.create(null) as Record<string, number>);
    rowCounts[pred] = (rowCounts[pred] ?? 0) + 1;
  }

  const gold = Object.keys(counts).sort(catalogOrder);
  const predicted = [...predLabels].sort(catalogOrder);
  return {
    ...all.result(),
    errors,
    by_behavior: mapResult(byBehavior),
    by_tool: mapResult(byTool),
    confusion: { gold, predicted, counts: plain(counts) },
    unknown_names: plain(unknown),
  };
}

// Catalog names in a stable order: alphabetical, with the '<...>' labels last.
function catalogOrder(a: string, b: string): number {
  const ax = a.startsWith('<') ? 1 : 0;
  const bx = b.startsWith('<') ? 1 : 0;
  return ax - bx || (a < b ? -1 : a > b ? 1 : 0);
}

function plain<T>(o: Record<string, T>): Record<string, T> {
  return JSON.parse(JSON.stringify(o));
}

function getAcc(m: Map<string, Acc>, k: string): Acc {
  let a = m.get(k);
  if (!a) m.set(k, (a = new Acc()));
  return a;
}

function mapResult(m: Map<string, Acc>): Record<string, MetricSet> {
  const out: Record<string, MetricSet> = {};
  for (const k of [...m.keys()].sort(catalogOrder)) out[k] = m.get(k)!.result();
  return out;
}

/** Running sums for one group. */
class Acc {
  n = 0;
  json = 0;
  name = 0;
  schema = 0;
  execution = 0;
  seed = 0;
  tiered = 0;
  strict = 0;

  add(s: RowScores): void {
    const c = s.seed.components;
    this.n++;
    this.json += c.json;
    this.name += c.name;
    this.schema += c.schema;
    this.execution += c.execution;
    this.seed += s.seed.reward;
    this.tiered += s.tiered.reward;
    this.strict += s.strict.reward;
  }

  result(): MetricSet {
    const f = (x: number) => (this.n ? round6(x / this.n) : 0);
    return {
      n: this.n,
      response_validity: f(this.json),
      function_name_accuracy: f(this.name),
      schema_match: f(this.schema),
      exact_match: f(this.execution),
      reward_seed: f(this.seed),
      reward_tiered: f(this.tiered),
      reward_strict: f(this.strict),
    };
  }
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Rows for a table: one per group ('all', 'behavior=...', 'tool=...'), metrics as columns. */
export function metricsTableRows(report: EvalReport): Record<string, string | number>[] {
  const row = (group: string, m: MetricSet) => ({
    group,
    n: m.n,
    response_validity: m.response_validity,
    function_name_accuracy: m.function_name_accuracy,
    schema_match: m.schema_match,
    exact_match: m.exact_match,
    reward_seed: m.reward_seed,
    reward_tiered: m.reward_tiered,
    reward_strict: m.reward_strict,
  });
  return [
    row('all', report),
    ...Object.entries(report.by_behavior).map(([k, m]) => row(`behavior=${k}`, m)),
    ...Object.entries(report.by_tool).map(([k, m]) => row(`tool=${k}`, m)),
  ];
}

/** The confusion matrix as table rows: one per gold name, one column per predicted label. */
export function confusionTableRows(c: ConfusionMatrix): Record<string, string | number>[] {
  return c.gold.map((g) => {
    const r: Record<string, string | number> = { gold: g };
    for (const p of c.predicted) r[p] = c.counts[g]?.[p] ?? 0;
    return r;
  });
}
