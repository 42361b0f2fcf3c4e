/**
 * Verifier regression tests: the golden table (tests/fixtures/verifier_golden.jsonl: completion, gold, and the
 * expected reward + components in each of seed / tiered / strict, written by hand), the course's five examples,
 * every synthesized gold call, the parser's guards, the metrics, and the verify / eval commands.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_DEPTH, MAX_INPUT_CHARS, numberLiteralKind, parseCall } from '../src/verify/parse';
import { isIsoDate } from '../src/verify/check';
import { REWARDS, REWARD_MODES, scoreAllModes, scoreCompletion, seedReward } from '../src/verify/reward';
import type { RewardMode } from '../src/verify/reward';
import { behaviorOf, evaluate } from '../src/verify/metrics';
import { synthesize } from '../src/env/synth';
import { ROOT } from '../src/util/paths';

const FIXTURES = path.join(ROOT, 'tests', 'fixtures');

interface Expect {
  reward: number;
  components: { json: number; name: number; schema: number; execution: number };
}
interface GoldenCase {
  id: string;
  kind: string;
  completion: string;
  gold_call: string;
  expected_result: string;
  seed: Expect;
  tiered: Expect;
  strict: Expect;
  lenient?: boolean;
  pad?: { text: string; times: number; at: 'start' | 'end' };
  reason_contains?: Partial<Record<RewardMode, string>>;
  note?: string;
}

function readJsonlFile<T>(file: string): T[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l, i) => [l, i] as const)
    .filter(([l]) => l.trim() !== '')
    .map(([l, i]) => {
      try {
        return JSON.parse(l) as T;
      } catch (e) {
        throw new Error(`${file}:${i + 1}: ${(e as Error).message}`);
      }
    });
}

const GOLDEN = readJsonlFile<GoldenCase>(path.join(FIXTURES, 'verifier_golden.jsonl'));

function completionOf(c: GoldenCase): string {
  if (!c.pad) return c.completion;
  const pad = c.pad.text.repeat(c.pad.times);
  return c.pad.at === 'start' ? pad + c.completion : c.completion + pad;
}

test('golden table: at least 60 cases covering every kind of mistake', () => {
  assert.ok(GOLDEN.length >= 60, `only ${GOLDEN.length} cases`);
  const kinds = new Set(GOLDEN.map((c) => c.kind));
  for (const k of [
    'exact', 'invalid_json', 'wrapper', 'not_object', 'two_calls', 'nan', 'duplicate_keys', 'prototype_keys',
    'deep_nesting', 'oversized', 'lookalike_name', 'wrong_name', 'wrong_action', 'wrong_value', 'date_format',
    'wrong_type', 'int_vs_float', 'missing_argument', 'extra_argument', 'extra_top_level', 'control_args',
    'ask_user_missing',
  ]) {
    assert.ok(kinds.has(k), `no golden case of kind ${k}`);
  }
  assert.equal(new Set(GOLDEN.map((c) => c.id)).size, GOLDEN.length, 'golden ids are unique');
});

test('golden table: reward and components in every mode', () => {
  const failures: string[] = [];
  for (const c of GOLDEN) {
    const completion = completionOf(c);
    for (const mode of REWARD_MODES) {
      const s = scoreCompletion(completion, c.gold_call, c.expected_result, mode, { lenient: c.lenient === true });
      const want = c[mode];
      if (s.reward !== want.reward || JSON.stringify(s.components) !== JSON.stringify(want.components)) {
        failures.push(`${c.id} [${mode}]: got ${s.reward} ${JSON.stringify(s.components)}, want ${want.reward} ${JSON.stringify(want.components)} (${s.reason})`);
      }
      const sub = c.reason_contains?.[mode];
      if (sub && !s.reason.includes(sub)) failures.push(`${c.id} [${mode}]: reason ${JSON.stringify(s.reason)} lacks ${JSON.stringify(sub)}`);
      if (s.reward === 1 ? s.reason !== 'ok' && mode !== 'seed' : s.reason === 'ok') {
        failures.push(`${c.id} [${mode}]: reason ${JSON.stringify(s.reason)} does not match reward ${s.reward}`);
      }
      if (s.error) failures.push(`${c.id} [${mode}]: unexpected row error ${s.error}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('golden table: the TRL-shaped reward functions give the same numbers in one batch', () => {
  const cases = GOLDEN.filter((c) => !c.lenient);
  const completions = cases.map(completionOf);
  const columns = { gold_call: cases.map((c) => c.gold_call), expected_result: cases.map((c) => c.expected_result) };
  for (const mode of REWARD_MODES) {
    assert.deepEqual(REWARDS[mode](completions, columns), cases.map((c) => c[mode].reward), mode);
  }
});

test('seed reward is the weighted sum of its components; tiered and strict follow their tiers', () => {
  for (const c of GOLDEN) {
    const s = scoreAllModes(completionOf(c), c.gold_call, c.expected_result, { lenient: c.lenient === true });
    const k = s.seed.components;
    assert.equal(s.seed.reward, Math.round((0.2 * k.json + 0.3 * k.name + 0.3 * k.schema + 0.2 * k.execution) * 1e9) / 1e9, c.id);
    assert.ok([0, 0.5, 1].includes(s.tiered.reward), c.id);
    assert.ok([0, 1].includes(s.strict.reward), c.id);
    // strict is never more generous than tiered, and a strict pass is a tiered pass
    assert.ok(s.strict.reward <= s.tiered.reward, `${c.id}: strict ${s.strict.reward} > tiered ${s.tiered.reward}`);
  }
});

test("the course's five examples score 1.0 in every mode", () => {
  const file = path.join(FIXTURES, 'course_examples.jsonl');
  assert.ok(fs.existsSync(file), `missing fixture ${file} (written by the environment)`);
  const rows = readJsonlFile<{ gold_call: string; expected_result: string }>(file);
  assert.equal(rows.length, 5);
  const completions = rows.map((r) => r.gold_call);
  const columns = { gold_call: rows.map((r) => r.gold_call), expected_result: rows.map((r) => r.expected_result) };
  assert.deepEqual(seedReward(completions, columns), [1, 1, 1, 1, 1]);
  for (const mode of REWARD_MODES) assert.deepEqual(REWARDS[mode](completions, columns), [1, 1, 1, 1, 1], mode);
  // the course's expected results, verbatim
  assert.deepEqual(rows.map((r) => r.expected_result), ['243.36', '418.58', '97690000000', '110.4', 'no_call']);
});

test('every gold call of every synthesized split scores 1.0 in every mode', () => {
  const splits = synthesize({ seed: 11, n: 200, nTest: 100, nHeldout: 60 });
  let n = 0;
  const failures: string[] = [];
  for (const rows of [splits.train, splits.test, splits.heldout_tools]) {
    for (const r of rows) {
      const s = scoreAllModes(r.gold_call, r.gold_call, r.expected_result);
      for (const mode of REWARD_MODES) if (s[mode].reward !== 1) failures.push(`${r.id} [${mode}] ${s[mode].reason}`);
      n++;
    }
  }
  assert.equal(n, 360);
  assert.deepEqual(failures, []);
});

test('parser: objects have no prototype, and nothing reaches Object.prototype', () => {
  const r = parseCall('{"name": "x", "arguments": {"a": {"b": 1}}}');
  assert.ok(r.success && r.data.call);
  assert.equal(Object.getPrototypeOf(r.data.call.arguments), null);
  for (const evil of [
    '{"__proto__": {"polluted": 1}}',
    '{"a": {"constructor": {"prototype": {"polluted": 1}}}}',
    '{"name": "x", "arguments": {"__proto__": {"polluted": 1}}}',
  ]) {
    const p = parseCall(evil);
    assert.equal(p.success, false, evil);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // a key that merely contains the word is fine
  assert.equal(parseCall('{"my__proto__": 1}').success, true);
});

test('parser: depth limit is exact, size limit is checked before parsing', () => {
  const nest = (d: number) => '['.repeat(d) + ']'.repeat(d);
  assert.equal(parseCall(nest(MAX_DEPTH)).success, true);
  const deep = parseCall(nest(MAX_DEPTH + 1));
  assert.ok(!deep.success && deep.message.includes('nesting'));
  // a 10,000-deep input must not overflow the stack
  assert.equal(parseCall(nest(10_000)).success, false);
  const big = parseCall(' '.repeat(MAX_INPUT_CHARS + 1));
  assert.ok(!big.success && big.message.includes('too long'));
  assert.equal(parseCall(' '.repeat(MAX_INPUT_CHARS - 2) + '{}').success, true);
});

test('parser: integer vs float literals, escapes, and what counts as a call', () => {
  const r = parseCall('{"name": "n", "arguments": {"i": 2024, "f": 2024.0, "e": 1e3, "s": "\\u00e9\\n\\"x\\""}}');
  assert.ok(r.success && r.data.call);
  const a = r.data.call.arguments;
  assert.equal(numberLiteralKind(a, 'i'), 'int');
  assert.equal(numberLiteralKind(a, 'f'), 'float');
  assert.equal(numberLiteralKind(a, 'e'), 'float');
  assert.equal(numberLiteralKind(a, 's'), undefined);
  assert.equal(a.s, 'é\n"x"');
  const noArgs = parseCall('{"name": "n"}');
  assert.ok(noArgs.success && noArgs.data.call === null);
  const arr = parseCall('[1, 2]');
  assert.ok(arr.success && arr.data.call === null && Array.isArray(arr.data.value));
  assert.equal(parseCall('{"a": "tab\there"}').success, false, 'raw control characters are not JSON');
  assert.equal(parseCall('{"a": 01}').success, false, 'leading zeros are not JSON');
  assert.equal(parseCall('```json\n{}\n```').success, false, 'lenient is off by default');
  assert.equal(parseCall(undefined as unknown as string).success, false);
});

test('ISO calendar dates', () => {
  for (const d of ['2024-02-29', '2025-01-03', '2000-02-29', '2025-12-31']) assert.ok(isIsoDate(d), d);
  for (const d of ['2025-02-29', '1900-02-29', '2025-13-01', '2025-00-10', '2025-04-31', '2025-1-3', '20250103', ' 2025-01-03']) {
    assert.ok(!isIsoDate(d), d);
  }
});

test('bad gold rows are error values, never exceptions', () => {
  for (const [gold, expected] of [
    ['not json', 'x'],
    ['[1]', 'x'],
    ['{"name": 1, "arguments": {}}', 'x'],
    [undefined, 'x'],
    ['{"name": "no_call", "arguments": {}}', undefined],
  ] as const) {
    const s = scoreCompletion('{"name": "no_call", "arguments": {}}', gold as unknown as string, expected as unknown as string, 'strict');
    assert.equal(s.reward, 0);
    assert.ok(s.error, `no error for ${String(gold)}`);
  }
  // a ragged batch (fewer gold rows than completions) scores the extra completions 0
  assert.deepEqual(seedReward(['{}', '{}'], { gold_call: ['{"name": "no_call", "arguments": {}}'], expected_result: ['no_call'] }), [0.2, 0]);
});

test('metrics: the four course metrics, breakdowns and confusion matrix on a hand-checked set', () => {
  const sp = '{"name": "get_stock_price", "arguments": {"ticker": "AAPL", "date": "2025-01-03"}}';
  const rv = '{"name": "get_revenue", "arguments": {"company": "Tesla", "fiscal_year": 2024}}';
  const nc = '{"name": "no_call", "arguments": {}}';
  const rows = [
    { gold_call: sp, expected_result: '243.36' },
    { gold_call: sp, expected_result: '243.36' },
    { gold_call: rv, expected_result: '97690000000' },
    { gold_call: rv, expected_result: '97690000000' },
    { gold_call: nc, expected_result: 'no_call' },
    { gold_call: nc, expected_result: 'no_call', behavior: 'no_call', tool: 'no_call' },
    { gold_call: 'broken', expected_result: 'x' },
  ];
  const preds = [
    sp, //                                                             valid, name, schema, exact
    '{"name": "get_stock_price", "arguments": {"ticker": "AAPL", "date": "Jan 3"}}', // valid, name, schema
    '{"name": "get_profit", "arguments": {"company": "Tesla", "fiscal_year": 2024}}', // valid
    'not json at all', //                                              nothing
    nc, //                                                             valid, name, schema, exact
    '{"name": "gеt_revenue", "arguments": {}}', //                     valid (look-alike name: unknown)
    nc, //                                                             (bad gold row: left out)
  ];
  const r = evaluate(preds, rows);
  assert.equal(r.n, 6);
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0].index, 6);
  assert.equal(r.response_validity, round6(5 / 6));
  assert.equal(r.function_name_accuracy, round6(3 / 6));
  assert.equal(r.schema_match, round6(3 / 6));
  assert.equal(r.exact_match, round6(2 / 6));
  // seed rewards: 1, 0.8, 0.2, 0, 1, 0.2
  assert.equal(r.reward_seed, round6(3.2 / 6));
  assert.equal(r.reward_tiered, round6(2.5 / 6));
  assert.equal(r.reward_strict, round6(2 / 6));
  assert.deepEqual(Object.keys(r.by_behavior), ['execute', 'no_call']);
  assert.equal(r.by_behavior.execute.n, 4);
  assert.equal(r.by_behavior.execute.exact_match, 0.25);
  assert.equal(r.by_behavior.no_call.exact_match, 0.5);
  assert.equal(r.by_tool.get_stock_price.schema_match, 1);
  assert.equal(r.by_tool.get_revenue.response_validity, 0.5);
  assert.deepEqual(r.confusion.gold, ['get_revenue', 'get_stock_price', 'no_call']);
  assert.deepEqual(r.confusion.counts, {
    get_stock_price: { get_stock_price: 2 },
    get_revenue: { get_profit: 1, '<invalid>': 1 },
    no_call: { no_call: 1, '<unknown>': 1 },
  });
  assert.deepEqual(r.unknown_names, { 'gеt_revenue': 1 });
  assert.equal(behaviorOf('ask_user'), 'ask_user');
  assert.equal(behaviorOf('get_profit'), 'execute');
});

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Run a command's main() with console output captured. */
async function runQuiet(main: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const log = console.log;
  const error = console.error;
  let out = '';
  let err = '';
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void (err += a.join(' ') + '\n');
  try {
    return { code: await main(argv), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('verify command: scores every good row, reports bad rows by line, loses nothing', async () => {
  const { main } = await import('../src/cli/verify');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-'));
  const input = path.join(dir, 'rows.jsonl');
  const sp = '{"name": "get_stock_price", "arguments": {"ticker": "AAPL", "date": "2025-01-03"}}';
  const lines = [
    JSON.stringify({ completion: sp, gold_call: sp, expected_result: '243.36', id: 'a' }),
    '{"completion": "x", oops',
    JSON.stringify({ completion: sp, gold_call: sp }),
    '',
    JSON.stringify({ completion: '{"name": "get_stock_price", "arguments": {"ticker": "AAPL", "date": "Jan 3"}}', gold_call: sp, expected_result: '243.36' }),
    JSON.stringify({ completion: sp, gold_call: '[]', expected_result: '243.36' }),
  ];
  fs.writeFileSync(input, lines.join('\n') + '\n');
  const output = path.join(dir, 'scored.jsonl');
  const r = await runQuiet(main, ['--input', input, '--reward', 'tiered', '--output', output]);
  assert.equal(r.code, 0);
  assert.match(r.err, /rows\.jsonl:2: not valid JSON/);
  assert.match(r.err, /rows\.jsonl:3: missing column expected_result/);
  assert.match(r.err, /rows\.jsonl:6: gold_call is not/);
  assert.match(r.out, /response_validity\s+1\.0000/);
  assert.match(r.out, /exact_match\s+0\.5000/);
  const out = readJsonlFile<Record<string, unknown>>(output);
  assert.equal(out.length, 5, 'every non-blank line comes back');
  assert.equal(out[0].id, 'a');
  assert.equal(out[0].reward, 1);
  assert.deepEqual(out[0].components, { json: 1, name: 1, schema: 1, execution: 1 });
  assert.equal(out[0].reason, 'ok');
  assert.equal(out[1].line, 2);
  assert.match(String(out[1].error), /:2: /);
  assert.equal(out[1].raw, '{"completion": "x", oops');
  assert.match(String(out[2].error), /:3: missing column expected_result/);
  assert.equal(out[3].reward, 0.5);
  assert.match(String(out[3].reason), /arguments\.date: expected ISO date YYYY-MM-DD, got "Jan 3"/);
  assert.match(String(out[4].error), /:6: /);

  const missing = await runQuiet(main, ['--input', path.join(dir, 'nope.jsonl')]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /cannot read/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('eval command: prints the tables and writes the JSON report', async () => {
  const { main } = await import('../src/cli/eval');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-'));
  const input = path.join(dir, 'preds.jsonl');
  const splits = synthesize({ seed: 3, n: 0, nTest: 40, nHeldout: 0 });
  const rows = splits.test.map((row, i) => ({
    completion: i % 4 === 0 ? 'garbage' : row.gold_call,
    gold_call: row.gold_call,
    expected_result: row.expected_result,
    behavior: row.behavior,
    tool: row.tool,
  }));
  fs.writeFileSync(input, rows.map((r) => JSON.stringify(r)).join('\n') + '\n{bad line\n');
  const outFile = path.join(dir, 'report.json');
  const r = await runQuiet(main, ['--predictions', input, '--out', outFile]);
  assert.equal(r.code, 0);
  assert.match(r.out, /function_name_accuracy/);
  assert.match(r.out, /behavior=execute/);
  assert.match(r.err, /preds\.jsonl:41: not valid JSON/);
  const report = JSON.parse(fs.readFileSync(outFile, 'utf8'));
  assert.equal(report.n, 40);
  assert.equal(report.exact_match, 0.75);
  assert.equal(report.response_validity, 0.75);
  assert.equal(report.left_out.length, 1);
  assert.equal(report.left_out[0].line, 41);
  const total = Object.values(report.by_behavior as Record<string, { n: number }>).reduce((a, m) => a + m.n, 0);
  assert.equal(total, 40);
  const invalid = Object.values(report.confusion.counts as Record<string, Record<string, number>>).reduce((a, c) => a + (c['<invalid>'] ?? 0), 0);
  assert.equal(invalid, 10);
  fs.rmSync(dir, { recursive: true, force: true });
});
