/**
 * Property tests for the verifier over >= 10,000 seeded random and mutated completions: scoring never throws,
 * rewards stay in [0, 1] on each mode's grid, components agree with the reward, scoring is deterministic, and
 * abusive variants of a completion (duplicate keys, prototype keys, look-alike names, NaN, concatenated calls,
 * deep nesting, oversized output, wrappers) never score above the completion itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/util/rng';
import { synthesize } from '../src/env/synth';
import { TOOLS, CONTROL_ACTIONS } from '../src/env/tools';
import { REWARDS, REWARD_MODES, scoreAllModes, scoreCompletion } from '../src/verify/reward';
import type { RewardMode, Score } from '../src/verify/reward';

const SEED = 20241121;
const splits = synthesize({ seed: SEED, n: 120, nTest: 40, nHeldout: 40 });
const GOLDS = [...splits.train, ...splits.test, ...splits.heldout_tools].map((r) => ({ gold_call: r.gold_call, expected_result: r.expected_result }));
const NAMES = [...TOOLS, ...CONTROL_ACTIONS].map((t) => t.name);

const GRID: Record<RewardMode, number[]> = {
  // 0, or 0.2 (json) + any of 0.3 (name), 0.3 (schema, which needs the name), 0.2 (execution)
  seed: [0, 0.2, 0.4, 0.5, 0.7, 0.8, 1],
  tiered: [0, 0.5, 1],
  strict: [0, 1],
};

// ---- generators ------------------------------------------------------------------------------------------

const ALPHABET = ['{', '}', '[', ']', '"', ':', ',', ' ', '\n', '\\', 'a', 'e', 'name', 'arguments', '0', '1', '.', '-', 'e5',
  'null', 'true', 'NaN', '\u0435', '\u200b', '\u0000', "'", '`', '<tool_call>', '__proto__', 'get_revenue', '\ud800'];

function randomString(rng: Rng): string {
  const n = rng.int(40);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.pick(ALPHABET);
  return s;
}

function randomValue(rng: Rng, depth: number): unknown {
  const k = rng.int(depth > 3 ? 5 : 7);
  switch (k) {
    case 0: return rng.pick(['AAPL', 'Tesla', '2025-01-03', 'Jan 3', '', 'USD', 'date', '\u0435']);
    case 1: return rng.int(3000) - 500;
    case 2: return Math.round(rng.next() * 1e4) / 100;
    case 3: return rng.next() < 0.5;
    case 4: return null;
    case 5: return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) o[rng.pick(['name', 'arguments', 'ticker', 'date', 'missing', 'x', 'amount'])] = randomValue(rng, depth + 1);
      return o;
    }
  }
}

const LOOKALIKE: Record<string, string> = { e: '\u0435', a: '\u0430', o: '\u043e', c: '\u0441', p: '\u0440' };

/** A structural edit of the gold call (still an honest attempt: valid JSON, no tricks). */
function mutateCall(rng: Rng, gold: { name: string; arguments: Record<string, unknown> }): Record<string, unknown> {
  const call: Record<string, unknown> = { name: gold.name, arguments: { ...gold.arguments } };
  const args = call.arguments as Record<string, unknown>;
  const keys = Object.keys(args);
  const edits = 1 + rng.int(2);
  for (let e = 0; e < edits; e++) {
    switch (rng.int(10)) {
      case 0: call.name = rng.pick(NAMES); break;
      case 1: call.name = rng.pick(['get_stock_quote', 'getRevenue', '', 'GET_REVENUE', gold.name + ' ']); break;
      case 2: if (keys.length) delete args[rng.pick(keys)]; break;
      case 3: args[rng.pick(['exchange', 'currency', 'note', 'ticker', 'date'])] = randomValue(rng, 2); break;
      case 4: if (keys.length) args[rng.pick(keys)] = randomValue(rng, 2); break;
      case 5: if (keys.length) { const k = rng.pick(keys); args[k] = typeof args[k] === 'number' ? String(args[k]) : args[k]; } break;
      case 6: call.arguments = rng.pick([null, [], 'x', 5, {}]); break;
      case 7: call[rng.pick(['thought', 'id', 'type'])] = 'x'; break;
      case 8: delete call[rng.pick(['name', 'arguments'])]; break;
      default: break; // no edit: the gold itself
    }
  }
  return call;
}

function serialize(rng: Rng, v: unknown): string {
  const r = rng.int(4);
  return r === 0 ? JSON.stringify(v, null, 2) : r === 1 ? ' ' + JSON.stringify(v) + '\n' : JSON.stringify(v);
}

function charMutate(rng: Rng, s: string): string {
  let out = s;
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const i = rng.int(out.length + 1);
    switch (rng.int(4)) {
      case 0: out = out.slice(0, i) + out.slice(i + 1); break;
      case 1: out = out.slice(0, i) + rng.pick(ALPHABET) + out.slice(i); break;
      case 2: out = out.slice(0, i) + rng.pick(ALPHABET) + out.slice(i + 1); break;
      default: out = out.slice(0, i) + out.slice(i + 1, i + 2) + out.slice(i, i + 1) + out.slice(i + 2); break;
    }
  }
  return out;
}

interface Sample { completion: string; gold_call: string; expected_result: string; honest?: Record<string, unknown> }

function makeSamples(n: number): Sample[] {
  const rng = new Rng(SEED);
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const g = rng.pick(GOLDS);
    const gold = JSON.parse(g.gold_call);
    const kind = rng.int(10);
    let completion: string;
    let honest: Record<string, unknown> | undefined;
    if (kind < 5) {
      honest = mutateCall(rng, gold);
      completion = serialize(rng, honest);
    } else if (kind < 8) completion = charMutate(rng, rng.next() < 0.5 ? g.gold_call : JSON.stringify(mutateCall(rng, gold)));
    else if (kind < 9) completion = JSON.stringify(randomValue(rng, 0)) ?? 'null';
    else completion = randomString(rng);
    out.push({ completion, gold_call: g.gold_call, expected_result: g.expected_result, honest });
  }
  return out;
}

const SAMPLES = makeSamples(10_000);

// ---- properties ------------------------------------------------------------------------------------------

function checkScore(s: Score, mode: RewardMode, where: string): void {
  assert.ok(Number.isFinite(s.reward) && s.reward >= 0 && s.reward <= 1, `${where}: reward ${s.reward}`);
  assert.ok(GRID[mode].includes(s.reward), `${where}: reward ${s.reward} is off the ${mode} grid`);
  const c = s.components;
  for (const k of ['json', 'name', 'schema', 'execution'] as const) assert.ok(c[k] === 0 || c[k] === 1, `${where}: ${k}=${c[k]}`);
  if (mode === 'seed') assert.equal(s.reward, Math.round((0.2 * c.json + 0.3 * c.name + 0.3 * c.schema + 0.2 * c.execution) * 1e9) / 1e9, where);
  if (mode === 'tiered') assert.equal(s.reward, c.name && c.schema && c.execution ? 1 : c.name ? 0.5 : 0, where);
  if (mode === 'strict') assert.equal(s.reward, c.json && c.name && c.schema && c.execution ? 1 : 0, where);
  if (!c.json) assert.equal(s.reward, 0, `${where}: no JSON object but reward ${s.reward}`);
  assert.equal(typeof s.reason, 'string');
  assert.ok(s.reason.length > 0 && s.reason.length < 4000, `${where}: reason length ${s.reason.length}`);
}

test(`${SAMPLES.length} random and mutated completions: never throws, rewards on the grid, deterministic`, () => {
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).length;
  let nonzero = 0;
  let perfect = 0;
  for (let i = 0; i < SAMPLES.length; i++) {
    const x = SAMPLES[i];
    const all = scoreAllModes(x.completion, x.gold_call, x.expected_result);
    const again = scoreAllModes(x.completion, x.gold_call, x.expected_result);
    assert.deepEqual(again, all, `sample ${i} not deterministic`);
    for (const mode of REWARD_MODES) {
      checkScore(all[mode], mode, `sample ${i} [${mode}] ${JSON.stringify(x.completion).slice(0, 80)}`);
      // one mode at a time gives what all modes at once give
      assert.deepEqual(scoreCompletion(x.completion, x.gold_call, x.expected_result, mode), all[mode]);
    }
    // json and name mean the same in every mode; a strict pass is a tiered pass
    assert.equal(all.tiered.components.json, all.seed.components.json);
    assert.equal(all.strict.components.name, all.seed.components.name);
    assert.ok(all.strict.reward <= all.tiered.reward, `sample ${i}: strict above tiered`);
    if (all.seed.reward > 0) nonzero++;
    if (all.strict.reward === 1) perfect++;
  }
  // the mix really exercises the scale: plenty of partial credit and some exact calls
  assert.ok(nonzero > SAMPLES.length / 3, `only ${nonzero} completions earn anything`);
  assert.ok(perfect > 200, `only ${perfect} exact calls`);
  assert.equal(Object.getOwnPropertyNames(Object.prototype).length, protoKeys, 'Object.prototype was modified');
  assert.equal(({} as Record<string, unknown>).admin, undefined);
});

test('the TRL-shaped reward functions agree with scoreCompletion over the whole random set', () => {
  const completions = SAMPLES.map((x) => x.completion);
  const columns = { gold_call: SAMPLES.map((x) => x.gold_call), expected_result: SAMPLES.map((x) => x.expected_result) };
  for (const mode of REWARD_MODES) {
    const batch = REWARDS[mode](completions, columns);
    assert.equal(batch.length, SAMPLES.length);
    for (let i = 0; i < SAMPLES.length; i += 7) {
      assert.equal(batch[i], scoreCompletion(completions[i], columns.gold_call[i], columns.expected_result[i], mode).reward);
    }
  }
});

test('non-string completions are scored 0, not thrown on', () => {
  const g = GOLDS[0];
  for (const bad of [undefined, null, 42, { name: 'x' }, ['a']]) {
    for (const mode of REWARD_MODES) {
      const s = scoreCompletion(bad as unknown as string, g.gold_call, g.expected_result, mode);
      assert.equal(s.reward, 0);
    }
  }
});

/** Abusive rewrites of an honest completion. Each returns null when it does not apply. */
const ABUSES: Record<string, (honest: Record<string, unknown>, text: string, goldName: string, rng: Rng) => string | null> = {
  duplicate_name: (h, text, goldName) => ('name' in h ? `{"name": ${JSON.stringify(goldName)}, ${text.trim().slice(1)}` : null),
  duplicate_name_after: (h, text, goldName) => ('name' in h ? text.trim().replace(/}$/, `, "name": ${JSON.stringify(goldName)}}`) : null),
  duplicate_argument: (h) => {
    const a = h.arguments;
    if (!a || typeof a !== 'object' || Array.isArray(a) || Object.keys(a).length === 0) return null;
    const k = Object.keys(a)[0];
    const inner = JSON.stringify(a).slice(1);
    return JSON.stringify({ ...h, arguments: '@@' }).replace('"@@"', `{${JSON.stringify(k)}: "decoy", ${inner}`);
  },
  proto_top: (h, text) => `{"__proto__": {"name": "x"}, ${text.trim().slice(1)}`,
  proto_arguments: (h) => (h.arguments && typeof h.arguments === 'object' && !Array.isArray(h.arguments)
    ? JSON.stringify({ ...h, arguments: '@@' }).replace('"@@"', `{"constructor": {"prototype": {"admin": true}}, ${JSON.stringify(h.arguments).slice(1)}`).replace(', }', '}')
    : null),
  lookalike_name: (h) => {
    if (typeof h.name !== 'string' || !/[eaocp]/.test(h.name)) return null;
    return JSON.stringify({ ...h, name: h.name.replace(/[eaocp]/, (c) => LOOKALIKE[c]) });
  },
  nan_value: (h) => {
    const a = h.arguments;
    if (!a || typeof a !== 'object' || Array.isArray(a)) return null;
    const k = Object.keys(a).find((x) => typeof (a as Record<string, unknown>)[x] === 'number');
    return k ? JSON.stringify({ ...h, arguments: { ...a, [k]: '@@' } }).replace('"@@"', 'NaN') : null;
  },
  concatenated: (h, text, goldName, rng) => text + (rng.next() < 0.5 ? '\n' : '') + text,
  hedge_two_calls: (h, text) => `[${text}, ${text}]`,
  deep_nesting: (h) => JSON.stringify({ ...h, pad: '@@' }).replace('"@@"', '['.repeat(40) + ']'.repeat(40)),
  fence_strict: (h, text) => '```json\n' + text + '\n```',
  tool_call_tag_strict: (h, text) => `<tool_call>${text}</tool_call>`,
};

test('abusive variants never score above the honest completion, in any mode', () => {
  const rng = new Rng(SEED + 1);
  const honestSamples = SAMPLES.filter((x) => x.honest).slice(0, 2000);
  const applied: Record<string, number> = {};
  for (const x of honestSamples) {
    const h = x.honest!;
    const goldName = JSON.parse(x.gold_call).name as string;
    const honest = scoreAllModes(x.completion, x.gold_call, x.expected_result);
    for (const [name, abuse] of Object.entries(ABUSES)) {
      const text = abuse(h, x.completion, goldName, rng);
      if (text === null) continue;
      applied[name] = (applied[name] ?? 0) + 1;
      const s = scoreAllModes(text, x.gold_call, x.expected_result);
      for (const mode of REWARD_MODES) {
        assert.ok(
          s[mode].reward <= honest[mode].reward,
          `${name} [${mode}]: ${s[mode].reward} > honest ${honest[mode].reward}\n  honest: ${x.completion}\n  abuse:  ${text}\n  ${s[mode].reason}`,
        );
      }
    }
    // lenient mode: a wrapper is worth exactly what its content is worth
    const wrapped = '```json\n' + x.completion.trim() + '\n```';
    for (const mode of REWARD_MODES) {
      assert.equal(scoreCompletion(wrapped, x.gold_call, x.expected_result, mode, { lenient: true }).reward, honest[mode].reward);
    }
  }
  for (const name of Object.keys(ABUSES)) assert.ok((applied[name] ?? 0) >= 50, `abuse ${name} applied only ${applied[name] ?? 0} times`);
});

test('oversized outputs are refused whatever they contain', () => {
  const rng = new Rng(SEED + 2);
  for (let i = 0; i < 12; i++) {
    const g = rng.pick(GOLDS);
    const pad = rng.pick([' ', '\n', 'x', '{}']).repeat(1_000_001);
    const text = rng.next() < 0.5 ? g.gold_call + pad : pad + g.gold_call;
    for (const mode of REWARD_MODES) {
      const s = scoreCompletion(text, g.gold_call, g.expected_result, mode, { lenient: rng.next() < 0.5 });
      assert.equal(s.reward, 0);
      assert.match(s.reason, /too long/);
    }
  }
});
