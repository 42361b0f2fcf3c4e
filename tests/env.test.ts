import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TOOLS, CONTROL_ACTIONS, TRAIN_TOOLS, HELDOUT_TOOLS, SYNTHETIC_TOOLS, GENERATED_TOOLS, SHAPE_PARAMS, argShapeKey, getTool } from '../src/env/tools';
import { MARKET, TICKERS, COMPANIES, CURRENCIES, FISCAL_YEARS, TRADING_DAYS } from '../src/env/market';
import { executeTool, dryRunLog, clearDryRunLog, roundHalfEven2, isIsoDate } from '../src/env/execute';
import { buildPrompt, buildMessages, compactSystemPrompt, signature } from '../src/env/prompt';
import { sampleCatalog, CATALOG_DEFAULTS } from '../src/env/catalog';
import { SYNTHETIC_PHRASES } from '../src/env/templates';
import { Rng } from '../src/util/rng';
import { ROOT } from '../src/util/paths';

const text = (name: string, args: unknown) => {
  const r = executeTool(name, args);
  assert.ok(r.success, `${name} ${JSON.stringify(args)} failed: ${r.success ? '' : r.message}`);
  return r.data.text;
};
const error = (name: string, args: unknown) => {
  const r = executeTool(name, args);
  assert.equal(r.success, false, `${name} should fail`);
  return r.success ? '' : r.message;
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
    assert.ok(r.success ? typeof r.data.text === 'string' : typeof r.message === 'string');
  }
});

test('execute: the write tool is dry-run only; market data is unchanged after any sequence of calls', () => {
  const before = structuredClone(MARKET);
  clearDryRunLog();
  const r = executeTool('place_order', { ticker: 'AAPL', side: 'buy', quantity: 10 });
  assert.ok(r.success);
  assert.equal(r.data.text, 'dry_run:buy 10 AAPL');
  assert.deepEqual(dryRunLog(), [{ tool: 'place_order', ticker: 'AAPL', side: 'buy', quantity: 10, status: 'dry_run' }]);
  // Editing what came back changes neither the log nor the market.
  (r.data.value as Record<string, unknown>).quantity = 999;
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
    if (res.success && res.data.value && typeof res.data.value === 'object') (res.data.value as Record<string, unknown>).tampered = true;
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

test("prompt: the course's prompt extended with ask_user, refuse and unlisted tools; compact system prompt", () => {
  const p = buildPrompt('Convert 120 USD to EUR.');
  const course = fs.readFileSync(path.join(ROOT, 'tests/fixtures/course_examples.jsonl'), 'utf8').split('\n')[0];
  const courseIntro = (JSON.parse(course).prompt as string).split('\n\n')[0];
  assert.ok(p.startsWith(courseIntro), 'our instructions start with the course\'s');
  assert.match(p, /"name": "ask_user", "arguments": \{"missing"/);
  assert.match(p, /"name": "refuse", "arguments": \{"reason"/);
  assert.match(p, /If no listed tool serves the request, return no_call\./);
  assert.ok(p.endsWith('\n\nUser request: Convert 120 USD to EUR.\n'));
  const list = JSON.parse(p.split('Available tools:\n')[1].split('\n\nUser request:')[0]);
  assert.deepEqual(list.map((t: { name: string }) => t.name), TRAIN_TOOLS.map((t) => t.name));
  assert.deepEqual(Object.keys(list[0]), ['name', 'description', 'parameters']);
  const s = compactSystemPrompt();
  assert.ok(s.length < 480, `compact prompt is ${s.length} chars`);
  const lines = s.split('\n');
  assert.equal(lines.length, 1 + TRAIN_TOOLS.length + CONTROL_ACTIONS.length);
  assert.deepEqual(lines.slice(1, 4), ['no_call() nothing fits', 'ask_user(missing,question) args missing', 'refuse(reason) harmful']);
  assert.equal(lines[4], 'get_stock_price(ticker,date:YYYY-MM-DD) close');
  for (const t of [...TRAIN_TOOLS, ...CONTROL_ACTIONS]) assert.ok(lines.some((l) => l.startsWith(t.name + '(')), t.name);
  assert.ok(!s.includes('get_market_cap'));
  assert.ok(compactSystemPrompt(TOOLS).includes('get_market_cap(ticker,date:YYYY-MM-DD) market capitalization'));
  assert.deepEqual(buildMessages('hi'), [{ role: 'system', content: s }, { role: 'user', content: 'hi' }]);
});

test('prompt: lists exactly the given catalog, in its order, each tool with its gloss', () => {
  const catalog = [getTool('get_gross_margin')!, getTool('get_profit')!, getTool('get_trading_volume')!];
  const lines = compactSystemPrompt(catalog).split('\n');
  // The fixed lines first (rows with different catalogs still share a prompt prefix), then the catalog in order.
  assert.deepEqual(lines.slice(0, 4), compactSystemPrompt([]).split('\n'));
  assert.deepEqual(lines.slice(4), [
    'get_gross_margin(company,fiscal_year) percent',
    'get_profit(company,fiscal_year) net income',
    'get_trading_volume(ticker,date:YYYY-MM-DD) shares',
  ]);
  const p = buildPrompt('x', catalog);
  const list = JSON.parse(p.split('Available tools:\n')[1].split('\n\nUser request:')[0]);
  assert.deepEqual(list.map((t: { name: string }) => t.name), ['get_gross_margin', 'get_profit', 'get_trading_volume']);
  for (const t of [...TOOLS, ...SYNTHETIC_TOOLS, ...CONTROL_ACTIONS]) assert.ok(t.gloss.length > 0 && t.gloss.length <= 24, `${t.name} gloss "${t.gloss}"`);
});

test('synthetic tools: generated catalog, real shapes, no held-out words, known to getTool', () => {
  assert.ok(SYNTHETIC_TOOLS.length >= 30, `${SYNTHETIC_TOOLS.length} synthetic tools`);
  const names = [...TOOLS, ...CONTROL_ACTIONS, ...SYNTHETIC_TOOLS].map((t) => t.name);
  assert.equal(new Set(names).size, names.length, 'names are unique across real, control and synthetic');
  const shapes = new Set(SYNTHETIC_TOOLS.map((t) => t.synthetic!.shape));
  for (const sh of ['ticker+date', 'company+fiscal_year', 'amount+currencies', 'ticker+fiscal_year']) assert.ok(shapes.has(sh as never), sh);
  assert.ok(shapes.size >= 6);
  for (const t of SYNTHETIC_TOOLS) {
    assert.equal(getTool(t.name), t);
    assert.equal(t.kind, 'read');
    assert.equal(t.heldout, false);
    assert.match(t.name, /^get_[a-z_]+$/);
    assert.deepEqual(t.parameters.properties, SHAPE_PARAMS[t.synthetic!.shape]);
    assert.doesNotMatch(`${t.name} ${t.description} ${t.gloss}`, /market.?cap|capitali[sz]|dividend/i, t.name);
    assert.ok(SYNTHETIC_PHRASES[t.name]?.length >= 3, `${t.name} needs >= 3 wordings`);
  }
  // The real argument names carry over, so a model that learned them on the real tools can fill these.
  assert.deepEqual(Object.keys(getTool('get_opening_price')!.parameters.properties), ['ticker', 'date']);
  assert.deepEqual(Object.keys(getTool('get_transfer_fee')!.parameters.properties), ['amount', 'from_currency', 'to_currency']);
  assert.equal(argShapeKey(getTool('get_ebitda')!), argShapeKey(getTool('get_revenue')!));
});

test('generated synthetic tools: hundreds of qualifier x metric names over the same shapes, known to getTool, executable', () => {
  assert.ok(GENERATED_TOOLS.length >= 300, `${GENERATED_TOOLS.length} generated tools`);
  const names = [...TOOLS, ...CONTROL_ACTIONS, ...SYNTHETIC_TOOLS, ...GENERATED_TOOLS].map((t) => t.name);
  assert.equal(new Set(names).size, names.length, 'no generated name repeats another tool');
  const args: Record<string, unknown> = { ticker: 'NFLX', date: '2025-01-21', company: 'Netflix', fiscal_year: 2022, amount: 40, from_currency: 'EUR', to_currency: 'USD', currency: 'GBP' };
  for (const t of GENERATED_TOOLS) {
    assert.equal(getTool(t.name), t);
    assert.ok(t.synthetic?.generated, t.name);
    assert.equal(t.name, 'get_' + t.gloss.toLowerCase().replace(/[^a-z0-9]+/g, '_'), `${t.name}: the name is its gloss in snake case`);
    assert.doesNotMatch(`${t.name} ${t.description}`, /market.?cap|capitali[sz]|dividend|revenue|profit|cash.?flow|employee|insider/i, t.name);
    const own = Object.fromEntries(Object.keys(t.parameters.properties).map((k) => [k, args[k]]));
    assert.ok(text(t.name, own).length > 0, t.name);
  }
});

test('synthetic tools execute on deterministic hash-based figures; bad arguments are errors', () => {
  const a = text('get_opening_price', { ticker: 'AAPL', date: '2025-01-03' });
  assert.equal(text('get_opening_price', { ticker: 'AAPL', date: '2025-01-03' }), a, 'same call, same answer');
  assert.notEqual(text('get_opening_price', { ticker: 'MSFT', date: '2025-01-03' }), a);
  assert.match(a, /^\d+(\.\d{1,2})?$/);
  assert.match(text('get_ebitda', { company: 'Apple', fiscal_year: 2024 }), /^\d+000000$/);
  assert.ok(['NASDAQ', 'NYSE'].includes(text('get_listing_exchange', { ticker: 'NVDA' })));
  assert.match(text('get_policy_rate', { currency: 'EUR' }), /^-?\d+(\.\d+)?$/);
  const fee = Number(text('get_transfer_fee', { amount: 1000, from_currency: 'USD', to_currency: 'EUR' }));
  assert.ok(fee > 0 && fee < 1000 * 0.92 * 0.031, `fee ${fee}`);
  const after = Number(text('get_received_after_fees', { amount: 1000, from_currency: 'USD', to_currency: 'EUR' }));
  assert.ok(after < 920 && after > 920 * 0.96, `after fees ${after}`);
  for (const t of SYNTHETIC_TOOLS) {
    const args: Record<string, unknown> = { ticker: 'TSLA', date: '2025-01-10', company: 'Tesla', fiscal_year: 2023, amount: 250, from_currency: 'GBP', to_currency: 'JPY', currency: 'CHF' };
    const own = Object.fromEntries(Object.keys(t.parameters.properties).map((k) => [k, args[k]]));
    assert.ok(text(t.name, own).length > 0, t.name);
  }
  assert.match(error('get_opening_price', { ticker: 'IBM', date: '2025-01-03' }), /unknown ticker "IBM"/);
  assert.match(error('get_opening_price', { ticker: 'aapl', date: '2025-01-03' }), /did you mean 'AAPL'/);
  assert.match(error('get_opening_price', { ticker: 'AAPL', date: '2025-01-04' }), /not a trading day/);
  assert.match(error('get_opening_price', { ticker: 'AAPL', date: 'Jan 3' }), /YYYY-MM-DD/);
  assert.match(error('get_ebitda', { company: 'AAPL', fiscal_year: 2024 }), /use the company name 'Apple'/);
  assert.match(error('get_ebitda', { company: 'Apple', fiscal_year: 2019 }), /fiscal year 2019/);
  assert.match(error('get_policy_rate', { currency: 'XYZ' }), /unknown currency "XYZ"/);
  assert.match(error('get_beta', { ticker: 'AAPL', date: '2025-01-03' }), /unknown argument "date"/);
  assert.match(error('get_beta', {}), /missing required argument 'ticker'/);
});

test('catalog: the about tool, neighbours often, the rest from the pool, shuffled, within the size and length limits', () => {
  const rng = new Rng(4);
  const pool = [...TRAIN_TOOLS, ...SYNTHETIC_TOOLS];
  const rev = getTool('get_revenue')!;
  let neighbours = 0, first = 0, real = 0, total = 0, full = 0;
  const sizes = new Set<number>();
  const allReal = pool.filter((t) => !t.synthetic);
  for (let i = 0; i < 2000; i++) {
    const c = sampleCatalog(rng, pool, rev, true);
    assert.ok(c.includes(rev), 'the needed tool is listed');
    assert.equal(new Set(c).size, c.length, 'no tool twice');
    if (c.length === allReal.length && c.every((t) => !t.synthetic)) full++; // the whole real menu, shuffled
    else {
      assert.ok(c.length >= 1 && c.length <= CATALOG_DEFAULTS.max, `catalog of ${c.length} tools`);
      const chars = c.filter((t) => t !== rev).reduce((a, t) => a + signature(t).length + 1, signature(rev).length + 1);
      assert.ok(chars <= Math.max(CATALOG_DEFAULTS.maxChars, signature(rev).length + 1), `catalog of ${chars} characters`);
    }
    sizes.add(c.length);
    if (c.some((t) => t.name === 'get_profit' || t.name === 'get_cash_flow')) neighbours++;
    if (c[0] === rev) first++;
    real += c.filter((t) => !t.synthetic).length;
    total += c.length;
    const un = sampleCatalog(rng, pool, rev, false);
    assert.ok(!un.includes(rev), 'an unlisted row never lists its tool');
  }
  assert.ok(full > 100 && full < 320, `the full real menu in ${full} of 2000 (CATALOG_DEFAULTS.full = ${CATALOG_DEFAULTS.full})`);
  assert.ok(neighbours / 2000 > 0.5, `real neighbours in ${neighbours} of 2000`);
  assert.ok(first / 2000 > 0.15 && first / 2000 < 0.6, `gold first in ${first} of 2000: the order is shuffled`);
  assert.ok(sizes.size >= 3, `sizes ${[...sizes]}`);
  assert.ok(real / total > 0.4, 'real tools are common even though synthetic ones outnumber them in the pool');
  // A synthetic tool's row never gets the full real menu (it would not fit the tiny model's SFT window).
  const ebitda = getTool('get_ebitda')!;
  for (let i = 0; i < 300; i++) assert.ok(sampleCatalog(rng, pool, ebitda, true).includes(ebitda), 'a synthetic gold is listed');
  const none = sampleCatalog(new Rng(1), TRAIN_TOOLS, null, true);
  assert.ok(none.length >= CATALOG_DEFAULTS.min && none.every((t) => TRAIN_TOOLS.includes(t)), 'a no_call / refuse row lists train tools');
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
