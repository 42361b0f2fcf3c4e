import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TOOLS, CONTROL_ACTIONS, TRAIN_TOOLS, HELDOUT_TOOLS, getTool } from '../src/env/tools';
import { MARKET, TICKERS, COMPANIES, CURRENCIES, FISCAL_YEARS, TRADING_DAYS } from '../src/env/market';
import { executeTool, dryRunLog, clearDryRunLog, roundHalfEven2, isIsoDate } from '../src/env/execute';
import { buildPrompt, buildMessages, compactSystemPrompt } from '../src/env/prompt';
import { Rng } from '../src/util/rng';
import { ROOT } from '../src/util/paths';

const text = (name: string, args: unknown) => {
  const r = executeTool(name, args);
  assert.ok(r.ok, `${name} ${JSON.stringify(args)} failed: ${r.ok ? '' : r.error}`);
  return r.text;
};
const error = (name: string, args: unknown) => {
  const r = executeTool(name, args);
  assert.equal(r.ok, false, `${name} should fail`);
  return r.ok ? '' : r.error;
};

test("catalog: the course's three tools exactly, all arguments required", () => {
  const sp = getTool('get_stock_price')!, rev = getTool('get_revenue')!, cc = getTool('convert_currency')!;
  assert.deepEqual(Object.fromEntries(Object.entries(sp.parameters.properties).map(([k, s]) => [k, s.type])), { ticker: 'string', date: 'string' });
  assert.equal(sp.parameters.properties.date.format, 'date');
  assert.deepEqual(sp.parameters.required, ['ticker', 'date']);
  assert.deepEqual(Object.fromEntries(Object.entries(rev.parameters.properties).map(([k, s]) => [k, s.type])), { company: 'string', fiscal_year: 'integer' });
  assert.deepEqual(rev.parameters.required, ['company', 'fiscal_year']);
  assert.deepEqual(Object.fromEntries(Object.entries(cc.parameters.properties).map(([k, s]) => [k, s.type])),
    { amount: 'number', from_currency: 'string', to_currency: 'string' });
  assert.deepEqual(cc.parameters.required, ['amount', 'from_currency', 'to_currency']);
  for (const t of [...TOOLS, ...CONTROL_ACTIONS]) {
    assert.equal(t.parameters.type, 'object');
    assert.equal(t.parameters.additionalProperties, false);
    assert.deepEqual([...t.parameters.required].sort(), Object.keys(t.parameters.properties).sort(), t.name);
  }
});

test('catalog: confusables, held-out, write tool, control actions, safe lookup', () => {
  for (const n of ['get_profit', 'get_cash_flow']) {
    assert.deepEqual(getTool(n)!.parameters.properties, getTool('get_revenue')!.parameters.properties);
  }
  assert.ok(getTool('get_exchange_rate'));
  assert.ok(HELDOUT_TOOLS.length >= 1 && HELDOUT_TOOLS.every((t) => t.kind === 'read'));
  assert.ok(!TRAIN_TOOLS.some((t) => t.heldout));
  assert.deepEqual(TOOLS.filter((t) => t.kind === 'write').map((t) => t.name), ['place_order']);
  assert.deepEqual(CONTROL_ACTIONS.map((t) => [t.name, t.kind, Object.keys(t.parameters.properties)]), [
    ['no_call', 'control', []],
    ['ask_user', 'control', ['missing', 'question']],
    ['refuse', 'control', ['reason']],
  ]);
  assert.equal(getTool('ask_user')!.parameters.properties.missing.items?.type, 'string');
  const names = [...TOOLS, ...CONTROL_ACTIONS].map((t) => t.name);
  assert.equal(new Set(names).size, names.length);
  for (const bad of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '']) assert.equal(getTool(bad), undefined);
});

test("market: the course's figures verbatim, synthetic extension of the required size", () => {
  assert.equal(MARKET.prices.AAPL['2025-01-02'], 243.85);
  assert.equal(MARKET.prices.AAPL['2025-01-03'], 243.36);
  assert.equal(MARKET.prices.MSFT['2025-01-02'], 418.58);
  assert.equal(MARKET.prices.MSFT['2025-01-03'], 423.35);
  assert.equal(MARKET.revenue.Apple['2024'], 391035000000);
  assert.equal(MARKET.revenue.Microsoft['2024'], 245122000000);
  assert.equal(MARKET.revenue.Tesla['2024'], 97690000000);
  assert.equal(MARKET.fx.USD.EUR, 0.92);
  assert.equal(MARKET.fx.EUR.USD, 1.09);
  assert.equal(MARKET.fx.USD.JPY, 157.2);
  assert.ok(TICKERS.length >= 10 && TRADING_DAYS.length >= 20);
  for (const d of TRADING_DAYS) assert.ok(![0, 6].includes(new Date(d + 'T00:00:00Z').getUTCDay()), `${d} is a weekend`);
  for (const t of TICKERS) {
    assert.deepEqual(Object.keys(MARKET.prices[t]), [...TRADING_DAYS]);
    for (const p of Object.values(MARKET.prices[t])) assert.ok(p > 0 && Number(p.toFixed(2)) === p);
  }
  assert.equal(COMPANIES.length, 10);
  assert.equal(FISCAL_YEARS.length, 3);
  for (const f of ['revenue', 'profit', 'cash_flow'] as const) {
    for (const c of COMPANIES) {
      assert.deepEqual(Object.keys(MARKET[f][c]), FISCAL_YEARS.map(String));
      for (const v of Object.values(MARKET[f][c])) assert.ok(Number.isInteger(v));
    }
  }
  assert.equal(CURRENCIES.length, 6);
  for (const a of CURRENCIES) for (const b of CURRENCIES) if (a !== b) assert.ok(MARKET.fx[a][b] > 0, `${a}->${b}`);
  // Cross rates are consistent (derived from one base), except where the course's rounded EUR->USD overrides.
  for (const a of CURRENCIES) for (const b of CURRENCIES) for (const c of CURRENCIES) {
    const edges = [`${a}${b}`, `${b}${c}`, `${a}${c}`];
    if (new Set([a, b, c]).size < 3 || edges.includes('EURUSD')) continue;
    const direct = MARKET.fx[a][c], via = MARKET.fx[a][b] * MARKET.fx[b][c];
    assert.ok(Math.abs(via / direct - 1) < 1e-4, `${a}->${b}->${c}`);
  }
  assert.ok(Object.isFrozen(MARKET) && Object.isFrozen(MARKET.prices.AAPL));
});

test("execute: the course's examples and the text format", () => {
  assert.equal(text('get_stock_price', { ticker: 'AAPL', date: '2025-01-03' }), '243.36');
  assert.equal(text('get_stock_price', { ticker: 'MSFT', date: '2025-01-02' }), '418.58');
  assert.equal(text('get_revenue', { company: 'Tesla', fiscal_year: 2024 }), '97690000000');
  assert.equal(text('get_revenue', { company: 'Apple', fiscal_year: 2024 }), '391035000000');
  assert.equal(text('convert_currency', { amount: 120, from_currency: 'USD', to_currency: 'EUR' }), '110.4');
  assert.equal(text('convert_currency', { amount: 10, from_currency: 'USD', to_currency: 'JPY' }), '1572');
  assert.equal(text('convert_currency', { amount: 100, from_currency: 'EUR', to_currency: 'USD' }), '109');
  assert.equal(text('get_exchange_rate', { from_currency: 'USD', to_currency: 'EUR' }), '0.92');
  assert.equal(text('no_call', {}), 'no_call');
  assert.equal(text('refuse', { reason: 'illegal' }), 'refuse');
  assert.equal(text('ask_user', { missing: ['ticker', 'date'], question: 'Which?' }), 'ask_user:date,ticker');
  assert.equal(text('get_profit', { company: 'Apple', fiscal_year: 2023 }), String(MARKET.profit.Apple['2023']));
  assert.equal(text('get_cash_flow', { company: 'Meta', fiscal_year: 2022 }), String(MARKET.cash_flow.Meta['2022']));
  assert.equal(text('get_market_cap', { ticker: 'AAPL', date: '2025-01-02' }), String(Math.round(243.85 * MARKET.shares_outstanding.AAPL)));
  assert.equal(text('get_dividend', { ticker: 'TSLA', fiscal_year: 2024 }), '0');
});

test('execute: bad calls come back as errors, never exceptions', () => {
  assert.match(error('get_weather', { city: 'Paris' }), /unknown tool/);
  assert.match(error('get_stock_price', { ticker: 'AAPL', date: '2025-01-03', extra: 1 }), /unknown argument "extra"/);
  assert.match(error('get_stock_price', { ticker: 'AAPL' }), /missing required argument 'date'/);
  assert.match(error('get_stock_price', { ticker: 7, date: '2025-01-03' }), /must be a string/);
  assert.match(error('get_stock_price', { ticker: 'AAPL', date: '2025/01/03' }), /YYYY-MM-DD/);
  assert.match(error('get_stock_price', { ticker: 'AAPL', date: '2025-02-30' }), /YYYY-MM-DD/);
  assert.match(error('get_stock_price', { ticker: 'AAPL', date: '2025-01-04' }), /not a trading day/);
  assert.match(error('get_stock_price', { ticker: 'IBM', date: '2025-01-03' }), /unknown ticker/);
  assert.match(error('get_stock_price', { ticker: 'aapl', date: '2025-01-03' }), /did you mean 'AAPL'/);
  assert.match(error('get_revenue', { company: 'Apple', fiscal_year: '2024' }), /must be an integer/);
  assert.match(error('get_revenue', { company: 'Apple', fiscal_year: 2024.5 }), /must be an integer/);
  assert.match(error('get_revenue', { company: 'Apple', fiscal_year: 2019 }), /no revenue/);
  assert.match(error('get_revenue', { company: 'AAPL', fiscal_year: 2024 }), /use the company name 'Apple'/);
  assert.match(error('convert_currency', { amount: '120', from_currency: 'USD', to_currency: 'EUR' }), /finite number/);
  assert.match(error('convert_currency', { amount: NaN, from_currency: 'USD', to_currency: 'EUR' }), /finite number/);
  assert.match(error('convert_currency', { amount: 1, from_currency: 'USD', to_currency: 'XYZ' }), /no exchange rate/);
  assert.match(error('place_order', { ticker: 'AAPL', side: 'short', quantity: 1 }), /buy \| sell/);
  assert.match(error('place_order', { ticker: 'AAPL', side: 'buy', quantity: 0 }), /quantity/);
  assert.match(error('no_call', { reason: 'x' }), /unknown argument/);
  assert.match(error('ask_user', { missing: [], question: 'q' }), /at least one/);
  assert.match(error('ask_user', { missing: 'date', question: 'q' }), /must be an array/);
  for (const args of [null, undefined, [], 'AAPL', 42, true, () => 1]) assert.match(error('get_stock_price', args), /must be an object/);
  // Prototype tricks: JSON.parse makes '__proto__' an own key; it is an unknown argument, and nothing is polluted.
  assert.match(error('get_stock_price', JSON.parse('{"__proto__": {"x": 1}, "ticker": "AAPL", "date": "2025-01-03"}')), /unknown argument "__proto__"/);
  assert.match(error('get_stock_price', { constructor: 'x', ticker: 'AAPL', date: '2025-01-03' }), /unknown argument "constructor"/);
  assert.match(error('get_stock_price', { ticker: '__proto__', date: '2025-01-03' }), /unknown ticker/);
  assert.match(error('get_revenue', { company: 'toString', fiscal_year: 2024 }), /unknown company/);
  assert.match(error('__proto__', {}), /unknown tool/);
  assert.equal(({} as Record<string, unknown>).x, undefined);
  // Huge inputs: rejected with a short message.
  const huge = 'A'.repeat(1_000_000);
  const e1 = error('get_stock_price', { ticker: huge, date: '2025-01-03' });
  assert.ok(e1.length < 200, e1.slice(0, 200));
  const e2 = error(huge, {});
  assert.ok(e2.length < 200);
  const many = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => ['k' + i, i]));
  assert.match(error('get_stock_price', many), /unknown argument/);
  // A getter that throws is contained.
  const evil = { ticker: 'AAPL', get date(): string { throw new Error('boom'); } };
  assert.match(error('get_stock_price', evil), /internal error: "boom"/);
  assert.match(error(42 as unknown as string, {}), /tool name must be a string/);
});

test('execute: random junk never throws', () => {
  const rng = new Rng(3);
  const names = [...TOOLS, ...CONTROL_ACTIONS].map((t) => t.name).concat(['', '__proto__', 'get_stock_price ']);
  const values: unknown[] = ['AAPL', 'Apple', '2025-01-03', 'USD', 'buy', 2024, 120, -1, 0.5, 1e308, NaN, null, [], ['date'], {}, true, '', 'x'.repeat(300)];
  const keys = ['ticker', 'date', 'company', 'fiscal_year', 'amount', 'from_currency', 'to_currency', 'side', 'quantity', 'missing', 'question', 'reason', '__proto__'];
  for (let i = 0; i < 3000; i++) {
    const args: Record<string, unknown> = {};
    for (let k = rng.int(5); k > 0; k--) args[rng.pick(keys)] = rng.pick(values);
    const r = executeTool(rng.pick(names), rng.next() < 0.1 ? rng.pick(values) : args);
    assert.ok(r.ok ? typeof r.text === 'string' : typeof r.error === 'string');
  }
});

test('execute: the write tool is dry-run only; market data is unchanged after any sequence of calls', () => {
  const before = structuredClone(MARKET);
  clearDryRunLog();
  const r = executeTool('place_order', { ticker: 'AAPL', side: 'buy', quantity: 10 });
  assert.ok(r.ok);
  assert.equal(r.text, 'dry_run:buy 10 AAPL');
  assert.deepEqual(dryRunLog(), [{ tool: 'place_order', ticker: 'AAPL', side: 'buy', quantity: 10, status: 'dry_run' }]);
  // Editing what came back changes neither the log nor the market.
  (r.value as Record<string, unknown>).quantity = 999;
  dryRunLog()[0].quantity = 5;
  assert.equal(dryRunLog()[0].quantity, 10);
  const rng = new Rng(11);
  const calls: [string, Record<string, unknown>][] = [
    ['place_order', { ticker: 'MSFT', side: 'sell', quantity: 1_000_000 }],
    ['place_order', { ticker: 'TSLA', side: 'buy', quantity: 3 }],
    ['get_stock_price', { ticker: 'AAPL', date: '2025-01-03' }],
    ['convert_currency', { amount: 5, from_currency: 'EUR', to_currency: 'JPY' }],
    ['get_revenue', { company: 'Apple', fiscal_year: 2024 }],
    ['ask_user', { missing: ['date'], question: '?' }],
  ];
  for (let i = 0; i < 500; i++) {
    const [n, a] = rng.pick(calls);
    const res = executeTool(n, a);
    if (res.ok && res.value && typeof res.value === 'object') (res.value as Record<string, unknown>).tampered = true;
  }
  assert.deepEqual(MARKET, before);
  assert.equal(text('get_stock_price', { ticker: 'AAPL', date: '2025-01-03' }), '243.36');
  assert.ok(dryRunLog().length > 1);
  clearDryRunLog();
  assert.equal(dryRunLog().length, 0);
});

test("rounding follows Python's round(x, 2)", () => {
  // Values checked against CPython: round(0.125,2)=0.12, round(0.375,2)=0.38, round(2.675,2)=2.67,
  // round(1.005,2)=1.0, round(110.39999999999999,2)=110.4, round(-0.125,2)=-0.12.
  assert.equal(roundHalfEven2(0.125), 0.12);
  assert.equal(roundHalfEven2(0.375), 0.38);
  assert.equal(roundHalfEven2(2.675), 2.67);
  assert.equal(roundHalfEven2(1.005), 1);
  assert.equal(roundHalfEven2(120 * 0.92), 110.4);
  assert.equal(roundHalfEven2(-0.125), -0.12);
  assert.ok(isIsoDate('2024-02-29') && !isIsoDate('2025-02-29') && !isIsoDate('2025-1-03'));
});

test("prompt: the course's prompt extended with ask_user and refuse; compact system prompt", () => {
  const p = buildPrompt('Convert 120 USD to EUR.');
  const course = fs.readFileSync(path.join(ROOT, 'tests/fixtures/course_examples.jsonl'), 'utf8').split('\n')[0];
  const courseIntro = (JSON.parse(course).prompt as string).split('\n\n')[0];
  assert.ok(p.startsWith(courseIntro), 'our instructions start with the course\'s');
  assert.match(p, /"name": "ask_user", "arguments": \{"missing"/);
  assert.match(p, /"name": "refuse", "arguments": \{"reason"/);
  assert.ok(p.endsWith('\n\nUser request: Convert 120 USD to EUR.\n'));
  const list = JSON.parse(p.split('Available tools:\n')[1].split('\n\nUser request:')[0]);
  assert.deepEqual(list.map((t: { name: string }) => t.name), TRAIN_TOOLS.map((t) => t.name));
  assert.deepEqual(Object.keys(list[0]), ['name', 'description', 'parameters']);
  const s = compactSystemPrompt();
  assert.ok(s.length < 450, `compact prompt is ${s.length} chars`);
  const lines = s.split('\n');
  assert.equal(lines.length, 1 + TRAIN_TOOLS.length + CONTROL_ACTIONS.length);
  assert.equal(lines[1], 'get_stock_price(ticker,date:YYYY-MM-DD) close');
  for (const t of [...TRAIN_TOOLS, ...CONTROL_ACTIONS]) assert.ok(lines.some((l) => l.startsWith(t.name + '(')), t.name);
  assert.ok(!s.includes('get_market_cap'));
  assert.ok(compactSystemPrompt(TOOLS).includes('get_market_cap(ticker,date:YYYY-MM-DD)'));
  assert.deepEqual(buildMessages('hi'), [{ role: 'system', content: s }, { role: 'user', content: 'hi' }]);
});

test("fixture: the course's five examples execute to their expected results", () => {
  const rows = fs.readFileSync(path.join(ROOT, 'tests/fixtures/course_examples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 5);
  for (const r of rows) {
    assert.deepEqual(Object.keys(r), ['prompt', 'gold_call', 'expected_result']);
    const g = JSON.parse(r.gold_call);
    assert.equal(text(g.name, g.arguments), r.expected_result);
  }
  assert.deepEqual(rows.map((r) => r.expected_result), ['243.36', '418.58', '97690000000', '110.4', 'no_call']);
  assert.match(rows[4].prompt, /User request: Write a short poem about financial markets\.\n$/);
});
