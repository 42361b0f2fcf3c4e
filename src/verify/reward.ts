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
 *
 * What this file is not: the checks themselves (check.ts) or aggregate metrics (metrics.ts).
 */
import { checkMode, prepare, REWARD_MODES } from './check';
import type { Check, Components, RewardMode } from './check';
import type { ParseOptions } from './parse';

export type { Components, RewardMode } from './check';
export { REWARD_MODES } from './check';

/** The dataset columns a reward reads (TRL passes every column by name; these are the course's). */
export interface RewardColumns {
  gold_call: string[];
  expected_result: string[];
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
  const p = prepare(completion, gold_call, expected_result, opts);
  if (!p.ok) return errorScore(mode, p.error);
  return toScore(checkMode(p.prepared, mode), mode);
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
  for (const m of REWARD_MODES) out[m] = p.ok ? toScore(checkMode(p.prepared, m), m) : errorScore(m, p.error);
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

/** The course's reward (0.2 / 0.3 / 0.3 / 0.2). */
export const seedReward: RewardFn = makeReward('seed');
/** 1.0 exact, 0.5 right name, 0.0 otherwise. */
export const tieredReward: RewardFn = makeReward('tiered');
/** 1.0 only if every strict check passes. */
export const strictReward: RewardFn = makeReward('strict');

export const REWARDS: Record<RewardMode, RewardFn> = { seed: seedReward, tiered: tieredReward, strict: strictReward };
