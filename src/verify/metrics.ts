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
 * fraction of completions that pass every strict check), and two numbers for reading the tool list (issue 12):
 *   arguments_given_name    among rows whose name is right, the share whose call executes to expected_result:
 *                           "the tool was right" is function_name_accuracy, "and then the arguments were" is this
 *   unlisted_calls          the share of rows whose completion names a tool the row's catalog does not list
 *                           (control actions are always listed; rows without a catalog never count)
 * Rows whose request needs a tool the catalog does not list (`unlisted_tool`, gold no_call) are broken out in
 * `by_listing` (listed vs unlisted), so a split's exact match can be read with and without them.
 *
 * Where the course's Python would crash (a JSON value that is not an object), the completion counts as
 * invalid here. Nothing in this file throws on model output.
 */
import { CONTROL_ACTIONS, getTool } from '../env/tools';
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
  /** The tool names the row's prompt listed (synth.ts Row.catalog). */
  catalog?: readonly string[];
  /** The tool the request needs when the catalog does not list it (gold no_call); null or absent otherwise. */
  unlisted_tool?: string | null;
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
  /** Among rows with the right name, the share whose call executes to expected_result (0 when none has it). */
  arguments_given_name: number;
  /** The share of rows whose completion names a tool its catalog does not list. */
  unlisted_calls: number;
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
  /** listed: rows whose needed tool (or control action) is in the catalog; unlisted: rows whose is not (gold no_call). */
  by_listing: { listed: MetricSet; unlisted: MetricSet };
  confusion: ConfusionMatrix;
  /** Names outside the catalog the model produced (hallucinated tools, look-alikes), with counts. */
  unknown_names: Record<string, number>;
}

const CONTROL_NAMES: readonly string[] = CONTROL_ACTIONS.map((t) => t.name);

/** All three modes' scores for one row. */
export type RowScores = Record<RewardMode, Score>;

/** Score each prediction in every mode (one parse per row). */
export function scoreRows(predictions: string[], rows: EvalRow[], opts: ScoreOptions = {}): RowScores[] {
  const out: RowScores[] = [];
  for (let i = 0; i < rows.length; i++) {
    const p = prepare(predictions[i], rows[i]?.gold_call, rows[i]?.expected_result, opts);
    const s = {} as RowScores;
    for (const m of REWARD_MODES) {
      s[m] = p.success
        ? toScore(checkMode(p.data, m), m)
        : { mode: m, reward: 0, components: { json: 0, name: 0, schema: 0, execution: 0 }, reason: `bad row: ${p.message}`, exact: false, predicted_name: '<invalid>', error: p.message };
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
  return g.success ? g.data.name : null;
}

/** Aggregate already-computed scores (e.g. the verify CLI's) into a report. */
export function summarize(scores: RowScores[], rows: EvalRow[]): EvalReport {
  const all = new Acc();
  const byBehavior = new Map<string, Acc>();
  const byTool = new Map<string, Acc>();
  const listed = new Acc();
  const unlisted = new Acc();
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
    let pred = s.seed.predicted_name;
    const offList = Array.isArray(row.catalog) && !pred.startsWith('<') && !CONTROL_NAMES.includes(pred) && !row.catalog.includes(pred);
    all.add(s, offList);
    getAcc(byBehavior, behavior).add(s, offList);
    getAcc(byTool, tool).add(s, offList);
    (typeof row.unlisted_tool === 'string' ? unlisted : listed).add(s, offList);

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
    by_listing: { listed: listed.result(), unlisted: unlisted.result() },
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
  nameAndExecution = 0;
  offList = 0;

  add(s: RowScores, offList: boolean): void {
    const c = s.seed.components;
    this.n++;
    this.json += c.json;
    this.name += c.name;
    this.schema += c.schema;
    this.execution += c.execution;
    this.nameAndExecution += c.name * c.execution;
    this.offList += offList ? 1 : 0;
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
      arguments_given_name: this.name ? round6(this.nameAndExecution / this.name) : 0,
      unlisted_calls: f(this.offList),
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
    arguments_given_name: m.arguments_given_name,
    unlisted_calls: m.unlisted_calls,
  });
  return [
    row('all', report),
    ...Object.entries(report.by_behavior).map(([k, m]) => row(`behavior=${k}`, m)),
    ...Object.entries(report.by_tool).map(([k, m]) => row(`tool=${k}`, m)),
    ...(report.by_listing.unlisted.n ? [row('listed', report.by_listing.listed), row('unlisted', report.by_listing.unlisted)] : []),
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
