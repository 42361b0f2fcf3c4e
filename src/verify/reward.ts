/**
 * Reward functions in TRL's shape: `(completions, columns) => number[]`, one number in [0, 1] per completion.
 *
 * Three modes over the same checks (check.ts), which fill the four 0/1 components {json, name, schema, execution}:
 *   seed    0.2*json + 0.3*name + 0.3*schema + 0.2*execution - the course's reward, exactly, with two deliberate
 *           differences that can only lower a score: a JSON value that is not an object scores 0 (the course's
 *           Python crashes there), and inputs the parser refuses (duplicate keys, NaN/Infinity, prototype keys,
 *           > 1 MB, nesting > 32) score 0 (Python's json.loads accepts some of them).
 *   tiered  1.0 when name, schema and execution all pass (the exact call); 0.5 when the name is right but the
 *           arguments are wrong or missing; 0.0 otherwise (wrong tool, invalid JSON). The RLVR write-up's tiers.
 *   strict  1.0 only when all four strict checks pass, else 0.0. All-or-nothing, like a BFCL accuracy; the
 *           components still say which checks passed, for logging.
 * And one reward that needs no gold call (`outcome`, for outcome-labelled rows: a request plus what the right
 * action gave, as an API log records it):
 *   outcome 1.0 when the completion parses as exactly one call {name, arguments}, the name is a control action
 *           or a tool the row's `catalog` lists, it is the row's `tool` (the action that produced the outcome),
 *           and executing the call in the sandbox gives exactly `expected_result`; else 0.0. It never reads
 *           `gold_call`. It reads `tool` because a bare number does not say which action produced it: in this
 *           sandbox convert_currency(1, A, B) prints get_exchange_rate(A, B)'s rate, convert_currency(x, A, A)
 *           prints any x, so without the action's name any listed amount tool could reproduce any figure.
 *
 * What this file is not: the checks themselves (check.ts) or aggregate metrics (metrics.ts).
 */
import { checkMode, prepare, REWARD_MODES } from './check';
import type { Check, Components, RewardMode } from './check';
import { isJsonObject, jsonTypeName, parseCall, quote } from './parse';
import type { ParseOptions } from './parse';
import { CONTROL_ACTIONS } from '../env/tools';
import { executeTool } from '../env/execute';
import { failure, success, type Result } from '../util/result';

export type { Components, RewardMode } from './check';
export { REWARD_MODES } from './check';

/**
 * The dataset columns a reward reads (TRL passes every column by name). seed / tiered / strict read the course's
 * `gold_call` and `expected_result`; outcome reads `expected_result`, `tool` and `catalog`.
 */
export interface RewardColumns {
  gold_call?: string[];
  expected_result: string[];
  /** The gold action's name per row (synth.ts Row.tool). */
  tool?: string[];
  /** The tool names each row's prompt lists (synth.ts Row.catalog). */
  catalog?: (readonly string[])[];
}

/** A batch's reward columns from its rows (rows without `tool` / `catalog` leave those columns out). */
export function rewardColumns(rows: readonly { gold_call?: string; expected_result: string; tool?: string; catalog?: readonly string[] }[]): RewardColumns {
  const out: RewardColumns = { expected_result: rows.map((r) => r.expected_result) };
  if (rows.every((r) => typeof r.gold_call === 'string')) out.gold_call = rows.map((r) => r.gold_call!);
  if (rows.every((r) => typeof r.tool === 'string')) out.tool = rows.map((r) => r.tool!);
  if (rows.every((r) => Array.isArray(r.catalog))) out.catalog = rows.map((r) => r.catalog!);
  return out;
}

/** TRL's reward function shape. */
export type RewardFn = (completions: string[], columns: RewardColumns) => number[];

/** The verdict on one completion. */
export interface Score {
  mode: RewardMode;
  /** In [0, 1]. */
  reward: number;
  /** 0/1 flags (see check.ts for what each means in each mode). */
  components: Components;
  /** Human-readable: 'ok', or every failed check joined by '; ' (e.g. `arguments.date: expected ISO date YYYY-MM-DD, got "Jan 3"`). */
  reason: string;
  /** The whole call is right in this mode: seed = name and execution pass; tiered/strict = reward 1. */
  exact: boolean;
  /** What the completion asked for: a name, '<invalid>' (not a JSON object) or '<no_name>'. */
  predicted_name: string;
  /** Set when the row itself is unusable (gold_call not a call, expected_result not a string). reward is then 0. */
  error?: string;
}

/** The seed reward's weights, the course's. */
export const SEED_WEIGHTS: Readonly<Components> = Object.freeze({ json: 0.2, name: 0.3, schema: 0.3, execution: 0.2 });

export type ScoreOptions = ParseOptions;

/** Turn one mode's checks into a Score. */
export function toScore(check: Check, mode: RewardMode): Score {
  const c = check.components;
  let reward: number;
  let exact: boolean;
  if (mode === 'seed') {
    // Sum in a fixed order and round to 1e-9 so that 0.2 + 0.3 + 0.3 + 0.2 is exactly 1.
    const raw = SEED_WEIGHTS.json * c.json + SEED_WEIGHTS.name * c.name + SEED_WEIGHTS.schema * c.schema + SEED_WEIGHTS.execution * c.execution;
    reward = Math.round(raw * 1e9) / 1e9;
    exact = c.name === 1 && c.execution === 1;
  } else if (mode === 'tiered') {
    exact = c.name === 1 && c.schema === 1 && c.execution === 1;
    reward = exact ? 1 : c.name === 1 ? 0.5 : 0;
  } else {
    exact = c.json === 1 && c.name === 1 && c.schema === 1 && c.execution === 1;
    reward = exact ? 1 : 0;
  }
  return {
    mode,
    reward,
    components: { ...c },
    reason: check.failures.length ? check.failures.join('; ') : 'ok',
    exact,
    predicted_name: check.predicted_name,
  };
}

function errorScore(mode: RewardMode, error: string): Score {
  return {
    mode,
    reward: 0,
    components: { json: 0, name: 0, schema: 0, execution: 0 },
    reason: `bad row: ${error}`,
    exact: false,
    predicted_name: '<invalid>',
    error,
  };
}

/** Score one completion against its gold call in one mode. Never throws. */
export function scoreCompletion(
  completion: string,
  gold_call: string,
  expected_result: string,
  mode: RewardMode = 'seed',
  opts: ScoreOptions = {},
): Score {
  if (!REWARD_MODES.includes(mode)) return errorScore(mode, `unknown reward mode ${quote(String(mode))} (gold-call modes: ${REWARD_MODES.join(', ')})`);
  const p = prepare(completion, gold_call, expected_result, opts);
  if (!p.success) return errorScore(mode, p.message);
  return toScore(checkMode(p.data, mode), mode);
}

/** Score one completion in every mode at once (one parse, executions shared). */
export function scoreAllModes(
  completion: string,
  gold_call: string,
  expected_result: string,
  opts: ScoreOptions = {},
): Record<RewardMode, Score> {
  const p = prepare(completion, gold_call, expected_result, opts);
  const out = {} as Record<RewardMode, Score>;
  for (const m of REWARD_MODES) out[m] = p.success ? toScore(checkMode(p.data, m), m) : errorScore(m, p.message);
  return out;
}

/** Build a TRL-shaped reward function for a mode. */
export function makeReward(mode: RewardMode, opts: ScoreOptions = {}): RewardFn {
  const fn: RewardFn = (completions, columns) => {
    const n = completions.length;
    const gold = columns?.gold_call ?? [];
    const expected = columns?.expected_result ?? [];
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      out[i] = scoreCompletion(completions[i], gold[i], expected[i], mode, opts).reward;
    }
    return out;
  };
  Object.defineProperty(fn, 'name', { value: `${mode}_reward` }); // TRL logs rewards/<fn.__name__>/mean
  return fn;
}

// ---------------------------------------------------------------------------------------------------------
// outcome: no gold call needed

/** What the outcome reward concluded about one completion. */
export interface OutcomeScore {
  /** 1 or 0. */
  reward: number;
  /** 'ok', or the first check that failed (same wording as the other modes where the check is the same). */
  reason: string;
  /** What the completion asked for: a name, '<invalid>' (not one call object) or '<no_name>'. */
  predicted_name: string;
}

/** One outcome-labelled row, as the outcome reward reads it. */
export interface OutcomeRow {
  expected_result: string;
  tool: string;
  catalog: readonly string[];
}

const CONTROL_NAMES: readonly string[] = CONTROL_ACTIONS.map((t) => t.name);

/** Check an outcome-labelled row: the three columns are there and agree (the row's action is listed or a control action). */
export function checkOutcomeRow(expected_result: unknown, tool: unknown, catalog: unknown): Result<OutcomeRow> {
  if (typeof expected_result !== 'string') return failure(`expected_result is ${jsonTypeName(expected_result)}, not a string`);
  if (typeof tool !== 'string') return failure(`tool is ${tool === undefined ? 'missing' : jsonTypeName(tool)}, not a string (the outcome reward needs the action's name)`);
  if (!Array.isArray(catalog) || !catalog.every((n) => typeof n === 'string')) {
    return failure(`catalog is ${catalog === undefined ? 'missing' : jsonTypeName(catalog)}, not a list of tool names`);
  }
  if (!CONTROL_NAMES.includes(tool) && !catalog.includes(tool)) return failure(`tool ${quote(tool)} is neither listed in the row's catalog nor a control action`);
  return success({ expected_result, tool, catalog: catalog as string[] });
}

/**
 * Score one completion against an outcome-labelled row (see the file comment). A failure only when the row is
 * unusable; a bad completion is a success with reward 0 and its reason. Never throws.
 */
export function scoreOutcome(completion: string, row: OutcomeRow, opts: ScoreOptions = {}): OutcomeScore {
  const zero = (reason: string, predicted_name = '<invalid>'): OutcomeScore => ({ reward: 0, reason, predicted_name });
  const parsed = parseCall(completion, opts);
  if (!parsed.success) return zero(parsed.message);
  const v = parsed.data.value;
  if (!isJsonObject(v)) return zero(`output is a JSON ${jsonTypeName(v)}, not an object: scores 0`);
  const name = typeof v.name === 'string' ? v.name : '<no_name>';
  const extra = Object.keys(v).filter((k) => k !== 'name' && k !== 'arguments');
  if (extra.length) return zero(`top level: unexpected key(s) ${extra.map((k) => quote(k)).join(', ')} (a call is exactly {"name", "arguments"})`, name);
  if (typeof v.name !== 'string') return zero(v.name === undefined ? 'name: missing' : `name: expected a string, got a ${jsonTypeName(v.name)}`, name);
  if (!isJsonObject(v.arguments)) return zero(v.arguments === undefined ? 'arguments: missing' : `arguments: expected an object, got a ${jsonTypeName(v.arguments)}`, name);
  if (!CONTROL_NAMES.includes(v.name) && !row.catalog.includes(v.name)) return zero(`name: ${quote(v.name)} is not listed in this row's catalog`, name);
  if (v.name !== row.tool) return zero(`name: expected ${quote(row.tool)}, got ${quote(v.name)}`, name);
  let r: ReturnType<typeof executeTool>;
  try {
    r = executeTool(v.name, v.arguments);
  } catch (e) {
    // executeTool promises never to throw; if it ever does, the completion still only scores 0 here.
    r = failure(`the executor threw: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!r.success) return zero(`execution: ${r.message}`, name);
  if (r.data.text !== row.expected_result) return zero(`execution: got ${quote(r.data.text)}, expected ${quote(row.expected_result)}`, name);
  return { reward: 1, reason: 'ok', predicted_name: name };
}

/** The outcome reward in TRL's shape: reads `expected_result`, `tool` and `catalog`; a row missing any scores 0. */
export function makeOutcomeReward(opts: ScoreOptions = {}): RewardFn {
  const fn: RewardFn = (completions, columns) => {
    const out = new Array<number>(completions.length);
    for (let i = 0; i < completions.length; i++) {
      const row = checkOutcomeRow(columns?.expected_result?.[i], columns?.tool?.[i], columns?.catalog?.[i]);
      out[i] = row.success ? scoreOutcome(completions[i], row.data, opts).reward : 0;
    }
    return out;
  };
  Object.defineProperty(fn, 'name', { value: 'outcome_reward' });
  return fn;
}

// ---------------------------------------------------------------------------------------------------------

/** The course's reward (0.2 / 0.3 / 0.3 / 0.2). */
export const seedReward: RewardFn = makeReward('seed');
/** 1.0 exact, 0.5 right name, 0.0 otherwise. */
export const tieredReward: RewardFn = makeReward('tiered');
/** 1.0 only if every strict check passes. */
export const strictReward: RewardFn = makeReward('strict');
/** 1.0 when the listed call executes to the row's expected_result (no gold call read). */
export const outcomeReward: RewardFn = makeOutcomeReward();

/** Every reward function by the name a config gives it (`reward_funcs`). */
export type RewardName = RewardMode | 'outcome';
export const REWARD_NAMES: readonly RewardName[] = [...REWARD_MODES, 'outcome'];
/** The columns each reward needs: a trainer can check its dataset before the first step. */
export const REWARD_COLUMNS: Readonly<Record<RewardName, readonly (keyof RewardColumns)[]>> = {
  seed: ['gold_call', 'expected_result'],
  tiered: ['gold_call', 'expected_result'],
  strict: ['gold_call', 'expected_result'],
  outcome: ['expected_result', 'tool', 'catalog'],
};
export const REWARDS: Record<RewardName, RewardFn> = { seed: seedReward, tiered: tieredReward, strict: strictReward, outcome: outcomeReward };

/**
 * Why `funcs` cannot score `rows` (a column some reward needs is missing from some row), or null: a trainer
 * checks this before its first step, so an outcome-labelled pool with a gold-call reward fails at once.
 */
export function rewardColumnsProblem(rows: readonly { id?: string; gold_call?: string; tool?: string; catalog?: readonly string[] }[], funcs: readonly string[]): string | null {
  for (const f of funcs) {
    const need = (REWARD_COLUMNS as Record<string, readonly (keyof RewardColumns)[] | undefined>)[f] ?? [];
    for (const col of need) {
      if (col === 'expected_result') continue; // every row has it (TrainRow)
      const bad = rows.find((r) => (col === 'catalog' ? !Array.isArray(r.catalog) : typeof r[col] !== 'string'));
      if (bad) {
        const fix = col === 'gold_call' ? " (an outcome-labelled row: use reward_funcs outcome, or the course's --pool_labels gold)" : '';
        return `reward '${f}' needs the column ${col}, which row ${bad.id ?? '?'} lacks${fix}`;
      }
    }
  }
  return null;
}
