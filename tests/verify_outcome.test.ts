/**
 * The outcome reward (src/verify/reward.ts `outcome`: no gold call, only what the right action gave) and the
 * metrics for reading a tool list (src/verify/metrics.ts: arguments_given_name, unlisted_calls, by_listing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  REWARDS, REWARD_NAMES, REWARD_COLUMNS, checkOutcomeRow, outcomeReward, rewardColumns, scoreCompletion, scoreOutcome,
} from '../src/verify/reward';
import { evaluate } from '../src/verify/metrics';
import { synthesize } from '../src/env/synth';
import { TOOLS } from '../src/env/tools';
import { executeTool } from '../src/env/execute';
import { Rng } from '../src/util/rng';
import { ROOT } from '../src/util/paths';

interface GoldenCase {
  id: string;
  completion: string;
  gold_call: string;
  expected_result: string;
  lenient?: boolean;
  pad?: { text: string; times: number; at: 'start' | 'end' };
}
const GOLDEN: GoldenCase[] = fs.readFileSync(path.join(ROOT, 'tests/fixtures/verifier_golden.jsonl'), 'utf8')
  .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const completionOf = (c: GoldenCase) => (!c.pad ? c.completion : c.pad.at === 'start' ? c.pad.text.repeat(c.pad.times) + c.completion : c.completion + c.pad.text.repeat(c.pad.times));
const ALL_TOOLS = TOOLS.map((t) => t.name);

const call = (name: string, args: Record<string, unknown>) => JSON.stringify({ name, arguments: args });
const RATE = { expected_result: '0.92', tool: 'get_exchange_rate', catalog: ['get_exchange_rate', 'convert_currency', 'get_stock_price'] };
const PRICE = { expected_result: '243.36', tool: 'get_stock_price', catalog: ['convert_currency', 'get_stock_price'] };

test('outcome: on the golden table it gives exactly the strict verdict (every case), reading no gold call', () => {
  const diffs: string[] = [];
  for (const c of GOLDEN) {
    const tool = JSON.parse(c.gold_call).name as string;
    const o = scoreOutcome(completionOf(c), { expected_result: c.expected_result, tool, catalog: ALL_TOOLS }, { lenient: c.lenient === true });
    const strict = scoreCompletion(completionOf(c), c.gold_call, c.expected_result, 'strict', { lenient: c.lenient === true });
    if (o.reward !== strict.reward) diffs.push(`${c.id}: outcome ${o.reward} (${o.reason}) vs strict ${strict.reward} (${strict.reason})`);
    assert.equal(o.reason === 'ok', o.reward === 1, c.id);
  }
  assert.deepEqual(diffs, []);
  assert.ok(GOLDEN.length >= 100);
  // In TRL's shape, by name, without a gold_call column at all.
  const cases = GOLDEN.filter((c) => !c.lenient);
  const columns = {
    expected_result: cases.map((c) => c.expected_result),
    tool: cases.map((c) => JSON.parse(c.gold_call).name as string),
    catalog: cases.map(() => ALL_TOOLS),
  };
  const got = REWARDS.outcome(cases.map(completionOf), columns);
  assert.deepEqual(got, cases.map((c) => scoreCompletion(completionOf(c), c.gold_call, c.expected_result, 'strict').reward));
  // A gold_call column, right or garbage, changes nothing.
  assert.deepEqual(REWARDS.outcome(cases.map(completionOf), { ...columns, gold_call: cases.map(() => 'garbage') }), got);
  assert.equal(REWARDS.outcome.name, 'outcome_reward');
  assert.deepEqual(REWARD_NAMES, ['seed', 'tiered', 'strict', 'outcome']);
  assert.deepEqual(Object.keys(REWARDS), ['seed', 'tiered', 'strict', 'outcome']);
  assert.deepEqual(REWARD_COLUMNS.outcome, ['expected_result', 'tool', 'catalog']);
});

test('outcome: cannot be gamed by another tool with the same output, an unlisted tool, or a malformed call', () => {
  const score = (c: string, row = RATE, lenient = false) => scoreOutcome(c, row, { lenient });
  assert.equal(score(call('get_exchange_rate', { from_currency: 'USD', to_currency: 'EUR' })).reward, 1);
  // Same text from another listed tool: convert_currency of 1 unit prints the rate; of x in the same currency prints x.
  const conv1 = score(call('convert_currency', { amount: 1, from_currency: 'USD', to_currency: 'EUR' }));
  assert.equal(conv1.reward, 0);
  assert.match(conv1.reason, /name: expected "get_exchange_rate", got "convert_currency"/);
  assert.equal(score(call('convert_currency', { amount: 243.36, from_currency: 'USD', to_currency: 'USD' }), PRICE).reward, 0);
  assert.equal(score(call('get_stock_price', { ticker: 'AAPL', date: '2025-01-03' }), PRICE).reward, 1);
  // A tool the row's prompt did not list, even the right one by name.
  const unlisted = { expected_result: '243.36', tool: 'get_stock_price', catalog: ['get_revenue'] };
  assert.equal(checkOutcomeRow(unlisted.expected_result, unlisted.tool, unlisted.catalog).success, false, 'such a row is itself inconsistent');
  const offList = score(call('get_profit', { company: 'Apple', fiscal_year: 2024 }), { ...RATE });
  assert.match(offList.reason, /"get_profit" is not listed in this row's catalog/);
  // An unlisted row: the needed tool is absent, the right action is no_call.
  const noTool = { expected_result: 'no_call', tool: 'no_call', catalog: ['get_profit', 'get_cash_flow'] };
  assert.equal(score(call('get_revenue', { company: 'Tesla', fiscal_year: 2024 }), noTool).reward, 0);
  assert.equal(score(call('get_profit', { company: 'Tesla', fiscal_year: 2024 }), noTool).reward, 0);
  assert.equal(score(call('no_call', {}), noTool).reward, 1);
  // Malformed: duplicated keys, two calls, a list of calls, extra top-level keys, look-alike names, wrappers.
  const good = call('get_exchange_rate', { from_currency: 'USD', to_currency: 'EUR' });
  for (const bad of [
    '{"name": "convert_currency", "name": "get_exchange_rate", "arguments": {"from_currency": "USD", "to_currency": "EUR"}}',
    '{"name": "get_exchange_rate", "arguments": {"from_currency": "GBP", "from_currency": "USD", "to_currency": "EUR"}}',
    good + good,
    good + '\n' + call('no_call', {}),
    `[${good}]`,
    `[${good}, ${good}]`,
    '{"name": "get_exchange_rate", "arguments": {"from_currency": "USD", "to_currency": "EUR"}, "thought": "x"}',
    '{"name": "get_exchange_rate", "arguments": {"from_currency": "USD", "to_currency": "EUR", "amount": 1}}',
    '{"name": "gеt_exchange_rate", "arguments": {"from_currency": "USD", "to_currency": "EUR"}}',
    '{"name": "get_exchange_rate", "arguments": {"__proto__": {}, "from_currency": "USD", "to_currency": "EUR"}}',
    '{"name": "get_exchange_rate", "arguments": {"from_currency": "usd", "to_currency": "EUR"}}',
    '{"name": "get_exchange_rate"}',
    '{"arguments": {"from_currency": "USD", "to_currency": "EUR"}}',
    '{"name": ["get_exchange_rate"], "arguments": {}}',
    '"0.92"',
    '0.92',
    '```json\n' + good + '\n```',
    ' '.repeat(1_000_001) + good,
    '['.repeat(5000) + ']'.repeat(5000),
    '{"name": "get_exchange_rate", "arguments": {"from_currency": NaN, "to_currency": "EUR"}}',
    '',
  ]) {
    const s = score(bad);
    assert.equal(s.reward, 0, `${bad.slice(0, 80)} scored ${s.reward}`);
    assert.notEqual(s.reason, 'ok');
  }
  assert.equal(score('```json\n' + good + '\n```', RATE, true).reward, 1, 'lenient accepts the fence, as in the other modes');
  // Control actions: the result must match exactly; the free text does not matter.
  const ask = { expected_result: 'ask_user:date,ticker', tool: 'ask_user', catalog: ['get_stock_price'] };
  assert.equal(score(call('ask_user', { missing: ['ticker', 'date'], question: 'anything' }), ask).reward, 1);
  assert.equal(score(call('ask_user', { missing: ['date'], question: '?' }), ask).reward, 0);
  assert.equal(score(call('ask_user', { missing: ['date', 'ticker', 'ticker'], question: '?' }), ask).reward, 0);
  assert.equal(score(call('ask_user', { missing: ['date', 'ticker'], question: '?', extra: 1 }), ask).reward, 0);
  assert.equal(score(call('refuse', { reason: 'no' }), { expected_result: 'refuse', tool: 'refuse', catalog: [] }).reward, 1);
  assert.equal(score(call('no_call', { reason: 'x' }), noTool).reward, 0);
});

test('outcome: bad rows score 0 and say why; nothing it is given makes it throw', () => {
  assert.match((checkOutcomeRow(undefined, 'no_call', []) as { message: string }).message, /expected_result is/);
  assert.match((checkOutcomeRow('no_call', undefined, []) as { message: string }).message, /tool is missing/);
  assert.match((checkOutcomeRow('no_call', 'no_call', undefined) as { message: string }).message, /catalog is missing/);
  assert.match((checkOutcomeRow('no_call', 'no_call', [1]) as { message: string }).message, /not a list of tool names/);
  const c = call('no_call', {});
  assert.deepEqual(outcomeReward([c, c, c], { expected_result: ['no_call', 'no_call'], tool: ['no_call', 'no_call', 'no_call'] } as never), [0, 0, 0]);
  assert.deepEqual(outcomeReward([c], undefined as never), [0]);
  const rng = new Rng(9);
  const junk: unknown[] = [null, undefined, 42, '', 'no_call', [], {}, ['x'], { a: 1 }, NaN, '{', c];
  for (let i = 0; i < 3000; i++) {
    const cols = { expected_result: [rng.pick(junk)], tool: [rng.pick(junk)], catalog: [rng.pick(junk)] } as never;
    const comp = rng.next() < 0.5 ? String(rng.pick(junk)) : (rng.pick(junk) as string);
    const r = outcomeReward([comp], cols);
    assert.ok(r.length === 1 && (r[0] === 0 || r[0] === 1));
  }
});

test('outcome: every synthesized gold call scores 1 with its row\'s columns; calling an unlisted row\'s tool scores 0', () => {
  const s = synthesize({ seed: 5, n: 400, nValidation: 60, nTest: 100, nHeldout: 40 });
  const rows = [...s.train, ...s.validation, ...s.test, ...s.heldout_tools];
  const cols = rewardColumns(rows);
  assert.ok(cols.gold_call && cols.tool && cols.catalog);
  assert.deepEqual(REWARDS.outcome(rows.map((r) => r.gold_call), cols), rows.map(() => 1));
  assert.deepEqual(REWARDS.strict(rows.map((r) => r.gold_call), cols), rows.map(() => 1));
  const un = rows.filter((r) => r.unlisted_tool !== null);
  assert.ok(un.length >= 10);
  for (const r of un) {
    const wrong = call(r.unlisted_tool!, {});
    assert.equal(scoreOutcome(wrong, r).reward, 0, r.id);
  }
  // Columns are left out when any row lacks them (so a reward that needs them scores 0 instead of guessing).
  assert.deepEqual(Object.keys(rewardColumns([{ expected_result: 'x' }])), ['expected_result']);
});

test('metrics: the tool right, then the arguments given the tool; calls of unlisted tools; listed vs unlisted rows', () => {
  const sp = call('get_stock_price', { ticker: 'AAPL', date: '2025-01-03' });
  const mc = call('get_market_cap', { ticker: 'AAPL', date: '2025-01-03' });
  const nc = call('no_call', {});
  const cap = executeTool('get_market_cap', { ticker: 'AAPL', date: '2025-01-03' });
  assert.ok(cap.success);
  const capText = cap.data.text;
  const rows = [
    { gold_call: mc, expected_result: capText, catalog: ['get_market_cap', 'get_stock_price'] },
    { gold_call: mc, expected_result: capText, catalog: ['get_market_cap', 'get_stock_price'] },
    { gold_call: mc, expected_result: capText, catalog: ['get_market_cap'] },
    { gold_call: mc, expected_result: capText, catalog: ['get_market_cap'] },
    { gold_call: nc, expected_result: 'no_call', catalog: ['get_revenue'], unlisted_tool: 'get_stock_price' },
    { gold_call: nc, expected_result: 'no_call', catalog: ['get_revenue'], unlisted_tool: 'get_stock_price' },
    { gold_call: nc, expected_result: 'no_call', catalog: ['get_revenue'], unlisted_tool: null },
  ];
  const preds = [
    call('get_market_cap', { ticker: 'MSFT', date: '2025-01-03' }), // right tool, wrong arguments
    sp, //                                                            listed neighbour
    call('get_market_cap', { ticker: 'AAPL', date: '2025-01-03' }), // right
    call('get_dividend', { ticker: 'AAPL', fiscal_year: 2024 }), //  a tool the catalog does not list
    sp, //                                                            the needed but unlisted tool
    nc, //                                                            right
    nc, //                                                            right
  ];
  const r = evaluate(preds, rows);
  assert.equal(r.n, 7);
  assert.equal(r.by_tool.get_market_cap.function_name_accuracy, 0.5);
  assert.equal(r.by_tool.get_market_cap.arguments_given_name, 0.5, 'two right names, one with the right arguments');
  assert.equal(r.by_tool.get_market_cap.exact_match, 0.25);
  assert.equal(r.by_tool.no_call.arguments_given_name, 1);
  assert.equal(r.unlisted_calls, round6(2 / 7)); // get_dividend and the unlisted get_stock_price
  assert.equal(r.by_listing.unlisted.n, 2);
  assert.equal(r.by_listing.unlisted.exact_match, 0.5);
  assert.equal(r.by_listing.unlisted.unlisted_calls, 0.5);
  assert.equal(r.by_listing.listed.n, 5);
  assert.equal(r.by_listing.listed.exact_match, 0.4);
  // Rows without a catalog never count as unlisted calls; a report without unlisted rows has an empty group.
  const plain = evaluate([sp], [{ gold_call: sp, expected_result: '243.36' }]);
  assert.equal(plain.unlisted_calls, 0);
  assert.equal(plain.arguments_given_name, 1);
  assert.equal(plain.by_listing.unlisted.n, 0);
});

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Run a command's main() with console output captured. */
async function runQuiet(main: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const log = console.log, error = console.error;
  let out = '', err = '';
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void (err += a.join(' ') + '\n');
  try {
    return { code: await main(argv), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('verify --reward outcome scores outcome-labelled rows (no gold_call); eval breaks out unlisted rows', async () => {
  const os = await import('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outcome-'));
  const input = path.join(dir, 'rows.jsonl');
  const rate = call('get_exchange_rate', { from_currency: 'USD', to_currency: 'EUR' });
  const lines = [
    { completion: rate, expected_result: '0.92', tool: 'get_exchange_rate', catalog: ['get_exchange_rate'] },
    { completion: call('convert_currency', { amount: 1, from_currency: 'USD', to_currency: 'EUR' }), expected_result: '0.92', tool: 'get_exchange_rate', catalog: ['get_exchange_rate', 'convert_currency'] },
    { completion: rate, expected_result: '0.92', tool: 'get_exchange_rate' },
  ];
  fs.writeFileSync(input, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const { main } = await import('../src/cli/verify');
  const output = path.join(dir, 'scored.jsonl');
  const r = await runQuiet(main, ['--input', input, '--reward', 'outcome', '--output', output]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /rows\.jsonl:3: catalog is missing/);
  assert.match(r.out, /2 scored, 1 with errors; reward mode outcome/);
  assert.match(r.out, /mean outcome reward\s+0\.5000/);
  const out = fs.readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => o.reward), [1, 0, undefined]);
  assert.match(out[1].reason, /expected "get_exchange_rate", got "convert_currency"/);

  const s = synthesize({ seed: 2, n: 0, nValidation: 0, nTest: 60, nHeldout: 0 });
  const preds = path.join(dir, 'preds.jsonl');
  fs.writeFileSync(preds, s.test.map((row) => JSON.stringify({ ...row, completion: row.unlisted_tool ? call(row.unlisted_tool, {}) : row.gold_call })).join('\n') + '\n');
  const ev = await import('../src/cli/eval');
  const e = await runQuiet(ev.main, ['--predictions', preds, '--out', path.join(dir, 'report.json')]);
  assert.equal(e.code, 0, e.err);
  const rep = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
  const nUn = s.test.filter((x) => x.unlisted_tool).length;
  assert.ok(nUn >= 2);
  assert.equal(rep.by_listing.unlisted.n, nUn);
  assert.equal(rep.by_listing.unlisted.exact_match, 0);
  assert.equal(rep.by_listing.unlisted.unlisted_calls, 1);
  assert.equal(rep.by_listing.listed.exact_match, 1);
  assert.match(e.out, /unlisted_calls/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("GRPO's scoreRollout gives the outcome reward its columns (tool, catalog) from the rows", async () => {
  const { scoreRollout } = await import('../src/train/grpo');
  const s = synthesize({ seed: 4, n: 40, nValidation: 0, nTest: 0, nHeldout: 0 });
  const rows = s.train.slice(0, 12);
  const r = scoreRollout(rows.map((x) => x.gold_call), rows, { reward_funcs: ['outcome', 'strict'], reward_weights: [] });
  assert.deepEqual(r.per_func.outcome_reward, rows.map(() => 1));
  assert.deepEqual(r.per_func.strict_reward, rows.map(() => 1));
});
