import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  synthesize, writeSplits, readJsonl, allocate, TEMPLATES, DEFAULT_MIX, BEHAVIORS, TEST_DATES,
  isTestAmount, isTestQuantity, isTestFundamental, isTestPair, formatDate, formatAmount, formatMoney,
  formatFiscalYear, type Row, type Splits,
} from '../src/env/synth';
import { executeTool } from '../src/env/execute';
import { TOOLS, TRAIN_TOOLS, HELDOUT_TOOLS, CONTROL_ACTIONS } from '../src/env/tools';
import { TICKERS, COMPANIES, CURRENCIES } from '../src/env/market';
import { buildPrompt, compactSystemPrompt } from '../src/env/prompt';
import { Rng } from '../src/util/rng';

// The default dataset, built once (well under a second).
const S: Splits = synthesize({ seed: 0, n: 2000 });
const ALL: Row[] = [...S.train, ...S.test, ...S.heldout_tools];
const gold = (r: Row) => JSON.parse(r.gold_call) as { name: string; arguments: Record<string, unknown> };

test('synth: default sizes and the behaviour mix', () => {
  assert.deepEqual([S.train.length, S.test.length, S.heldout_tools.length], [2000, 300, 150]);
  for (const rows of [S.train, S.test]) {
    const counts = allocate(rows.length, DEFAULT_MIX);
    for (const b of BEHAVIORS) {
      const k = rows.filter((r) => r.behavior === b).length;
      assert.equal(k, counts[b], b);
      assert.ok(Math.abs(k / rows.length - DEFAULT_MIX[b]) <= 0.01, b);
    }
  }
  assert.ok(S.heldout_tools.every((r) => r.behavior === 'execute'));
  const custom = synthesize({ seed: 1, n: 200, nTest: 40, nHeldout: 10, mix: { execute: 1, no_call: 1 } });
  assert.deepEqual(new Set(custom.train.map((r) => r.behavior)), new Set(['execute', 'no_call']));
  assert.equal(custom.train.filter((r) => r.behavior === 'execute').length, 100);
  assert.throws(() => synthesize({ seed: 0, n: 10, mix: { execute: -1 } }), /mix/);
  assert.throws(() => synthesize({ seed: 0, n: 1.5 }), /integer/);
});

test('synth: same seed same bytes, different seed different rows', () => {
  const a = synthesize({ seed: 7, n: 300, nTest: 60, nHeldout: 30 });
  const b = synthesize({ seed: 7, n: 300, nTest: 60, nHeldout: 30 });
  const c = synthesize({ seed: 8, n: 300, nTest: 60, nHeldout: 30 });
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  assert.notEqual(JSON.stringify(a.train), JSON.stringify(c.train));
  assert.notEqual(JSON.stringify(a.test), JSON.stringify(c.test));
});

test('synth: writeSplits writes exactly the synthesized rows, one JSON object per line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synth-'));
  try {
    writeSplits(S, dir);
    for (const split of ['train', 'test', 'heldout_tools'] as const) {
      const file = path.join(dir, `${split}.jsonl`);
      const expected = S[split].map((r) => JSON.stringify(r) + '\n').join('');
      assert.ok(fs.readFileSync(file, 'utf8') === expected, `${file} differs from the synthesized rows`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('synth: at least 25 phrasings per tool and per control action', () => {
  for (const name of [...TOOLS, ...CONTROL_ACTIONS].map((t) => t.name)) {
    const n = TEMPLATES.filter((t) => t.tool === name).length;
    assert.ok(n >= 25, `${name} has ${n} templates`);
  }
  assert.equal(new Set(TEMPLATES.map((t) => t.id)).size, TEMPLATES.length);
});

test('synth: every gold call executes to expected_result; rows are well formed', () => {
  for (const r of ALL) {
    const g = gold(r);
    const res = executeTool(g.name, g.arguments);
    assert.ok(res.ok && res.text === r.expected_result, `${r.id}: ${r.gold_call}`);
    assert.equal(g.name, r.tool);
    assert.deepEqual(Object.keys(g), ['name', 'arguments']);
    const kind = r.behavior === 'execute' ? TOOLS.some((t) => t.name === g.name) : g.name === r.behavior;
    assert.ok(kind, r.id);
    assert.deepEqual(Object.keys(r), ['id', 'split', 'prompt', 'messages', 'query', 'gold_call', 'expected_result', 'behavior', 'tool', 'template_id']);
    const tools = r.split === 'heldout_tools' ? TOOLS : TRAIN_TOOLS;
    assert.equal(r.prompt, buildPrompt(r.query, tools));
    assert.deepEqual(r.messages, [{ role: 'system', content: compactSystemPrompt(tools) }, { role: 'user', content: r.query }]);
    assert.ok(TEMPLATES.some((t) => t.id === r.template_id && t.split === r.split), `${r.id}: template ${r.template_id}`);
    if (r.behavior === 'ask_user') {
      const missing = g.arguments.missing as string[];
      assert.deepEqual(missing, [...missing].sort());
      assert.equal(r.expected_result, 'ask_user:' + missing.join(','));
    }
  }
  const ids = ALL.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length);
});

test('synth: no prompt or query appears twice, within or across splits', () => {
  const prompts = ALL.map((r) => r.prompt), queries = ALL.map((r) => r.query);
  assert.equal(new Set(prompts).size, prompts.length);
  assert.equal(new Set(queries).size, queries.length);
});

test('synth: held-out tools never appear in train or test; heldout rows list them', () => {
  const held = new Set(HELDOUT_TOOLS.map((t) => t.name));
  for (const r of [...S.train, ...S.test]) {
    assert.ok(!held.has(r.tool), r.id);
    for (const h of held) assert.ok(!r.prompt.includes(h) && !r.messages[0].content.includes(h), r.id);
  }
  for (const r of S.heldout_tools) {
    assert.ok(held.has(r.tool));
    assert.ok(r.prompt.includes(`"name": "${r.tool}"`) && r.messages[0].content.includes(r.tool + '('));
  }
  assert.deepEqual(new Set(S.heldout_tools.map((r) => r.tool)), held);
});

test('synth: test holds out templates and argument values, but every entity string is in train', () => {
  const trainTemplates = new Set(S.train.map((r) => r.template_id));
  for (const r of S.test) assert.ok(!trainTemplates.has(r.template_id), r.template_id);
  for (const [rows, isTest] of [[S.train, false], [S.test, true]] as const) {
    for (const r of rows) {
      if (r.behavior !== 'execute') continue;
      const a = gold(r).arguments;
      if (r.tool === 'get_stock_price') assert.equal(TEST_DATES.includes(a.date as string), isTest, r.id);
      if (r.tool === 'convert_currency') assert.equal(isTestAmount(a.amount as number), isTest, r.id);
      if (r.tool === 'place_order') assert.equal(isTestQuantity(a.quantity as number), isTest, r.id);
      if (['get_revenue', 'get_profit', 'get_cash_flow'].includes(r.tool)) {
        assert.equal(isTestFundamental(a.company as string, a.fiscal_year as number), isTest, r.id);
      }
      if (r.tool === 'get_exchange_rate') assert.equal(isTestPair(a.from_currency as string, a.to_currency as string), isTest, r.id);
    }
  }
  const trainValues = new Set(S.train.flatMap((r) => Object.values(gold(r).arguments).map(String)));
  for (const v of [...TICKERS, ...COMPANIES, ...CURRENCIES]) assert.ok(trainValues.has(v), `${v} missing from train`);
  const testValues = new Set(S.test.flatMap((r) => Object.values(gold(r).arguments).map(String)));
  for (const v of testValues) if (/^[A-Z]{3,5}$/.test(v)) assert.ok(trainValues.has(v), `${v} only in test`);
});

test('synth: surface forms normalise to canonical gold values', () => {
  const forms = (f: (r: Rng) => string) => {
    const rng = new Rng(5), out = new Set<string>();
    for (let i = 0; i < 400; i++) out.add(f(rng));
    return out;
  };
  assert.deepEqual(forms((r) => formatDate('2025-01-03', r)), new Set([
    '2025-01-03', 'January 3, 2025', 'January 3rd 2025', '3 January 2025', 'Jan 3, 2025', '2025/01/03', '3 Jan 2025',
  ]));
  assert.ok(forms((r) => formatDate('2025-01-22', r)).has('January 22nd 2025'));
  assert.deepEqual(forms((r) => formatAmount(1200, r)), new Set(['1200', '1,200', '1.2k']));
  assert.deepEqual(forms((r) => formatAmount(49.5, r)), new Set(['49.5', '49.50']));
  assert.deepEqual(forms((r) => formatFiscalYear(2024, r)), new Set(['2024', 'FY2024', 'FY 2024', 'FY24', 'fiscal 2024', 'fiscal year 2024']));
  const usd = forms((r) => formatMoney(1200, 'USD', r));
  for (const s of ['$1,200', '$1.2k', '1,200 USD', 'USD 1200', '1200 US dollars']) assert.ok(usd.has(s), s);
  // In the data: a "$" amount is always from USD, "FY24" is 2024, a ticker in a revenue question maps to the company.
  const conv = ALL.filter((r) => r.tool === 'convert_currency' && /\$\d/.test(r.query));
  assert.ok(conv.length >= 5);
  for (const r of conv) assert.equal(gold(r).arguments.from_currency, 'USD', r.query);
  const fy24 = ALL.filter((r) => r.behavior === 'execute' && /\bFY24\b/.test(r.query));
  assert.ok(fy24.length > 5);
  for (const r of fy24) assert.equal(gold(r).arguments.fiscal_year, 2024, r.query);
  const tickerRevenue = S.train.filter((r) => r.tool === 'get_revenue' && TICKERS.some((t) => r.query.includes(t)));
  assert.ok(tickerRevenue.length > 5);
  for (const r of tickerRevenue) assert.ok(COMPANIES.includes(gold(r).arguments.company as string));
  const words = S.train.filter((r) => r.tool === 'place_order' && /\b(three|seven|ten|twelve)\b/.test(r.query));
  assert.ok(words.length > 0);
  const isoOnly = ALL.filter((r) => typeof gold(r).arguments.date === 'string');
  for (const r of isoOnly) assert.match(gold(r).arguments.date as string, /^\d{4}-\d{2}-\d{2}$/);
  assert.ok(isoOnly.some((r) => !r.query.includes(gold(r).arguments.date as string)), 'some dates are not ISO in the query');
});

test('synth: writeSplits and readJsonl round-trip; readJsonl names file:line on bad input', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synth-'));
  const small = synthesize({ seed: 3, n: 20, nTest: 5, nHeldout: 5 });
  const files = writeSplits(small, dir);
  assert.deepEqual(files.map((f) => path.basename(f)), ['train.jsonl', 'test.jsonl', 'heldout_tools.jsonl']);
  assert.deepEqual(readJsonl<Row>(files[0]), small.train);
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, '{"a": 1}\n\n{"a": 2\n');
  assert.throws(() => readJsonl(bad), (e: Error) => e.message.startsWith(`${bad}:3: invalid JSON`));
  assert.throws(() => readJsonl(path.join(dir, 'nope.jsonl')), /nope\.jsonl: cannot read/);
  fs.rmSync(dir, { recursive: true });
});
