import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  synthesize, writeSplits, readJsonl, allocate, TEMPLATES, DEFAULT_MIX, BEHAVIORS, TEST_DATES, SPLITS, SYNTH_DEFAULTS,
  POOL_ONLY_TOOLS, demonstrationTemplates, recreatesTestTemplate, catalogPool,
  isTestAmount, isTestQuantity, isTestFundamental, isTestPair, formatDate, formatAmount, formatMoney,
  formatFiscalYear, type Row, type Splits,
} from '../src/env/synth';
import { executeTool } from '../src/env/execute';
import { TOOLS, TRAIN_TOOLS, HELDOUT_TOOLS, CONTROL_ACTIONS, SYNTHETIC_TOOLS, getTool } from '../src/env/tools';
import { TICKERS, COMPANIES, CURRENCIES } from '../src/env/market';
import { buildPrompt, compactSystemPrompt } from '../src/env/prompt';
import { Rng } from '../src/util/rng';

// The course's dataset size (train 3000), built once (about a second).
const S: Splits = synthesize({ seed: 0, n: 3000 });
const ALL: Row[] = [...S.train, ...S.validation, ...S.test, ...S.heldout_tools];
const gold = (r: Row) => JSON.parse(r.gold_call) as { name: string; arguments: Record<string, unknown> };

test('synth: default sizes, the request mix, and the unlisted and synthetic shares of execute requests', () => {
  assert.deepEqual([S.train.length, S.validation.length, S.test.length, S.heldout_tools.length], [3000, 300, 300, 150]);
  for (const rows of [S.train, S.validation, S.test]) {
    const counts = allocate(rows.length, DEFAULT_MIX);
    // The mix is of requests: an unlisted row is an execute request whose right action is no_call.
    const request = (r: Row) => (r.unlisted_tool ? 'execute' : r.behavior);
    for (const b of BEHAVIORS) assert.equal(rows.filter((r) => request(r) === b).length, counts[b], b);
    const unlisted = rows.filter((r) => r.unlisted_tool !== null);
    assert.equal(unlisted.length, Math.round(counts.execute * SYNTH_DEFAULTS.unlistedShare));
    for (const r of unlisted) assert.deepEqual([r.behavior, r.tool, r.expected_result], ['no_call', 'no_call', 'no_call']);
  }
  const synthetic = (rows: Row[]) => rows.filter((r) => getTool(r.unlisted_tool ?? r.tool)?.synthetic).length;
  assert.equal(synthetic(S.train), Math.round(allocate(3000, DEFAULT_MIX).execute * SYNTH_DEFAULTS.syntheticShare));
  assert.equal(synthetic(S.test) + synthetic(S.heldout_tools), 0);
  assert.ok(S.heldout_tools.every((r) => r.behavior === 'execute' && r.unlisted_tool === null));
  const custom = synthesize({ seed: 1, n: 200, nValidation: 20, nTest: 40, nHeldout: 10, mix: { execute: 1, no_call: 1 }, unlistedShare: 0, syntheticShare: 0 });
  assert.deepEqual(new Set(custom.train.map((r) => r.behavior)), new Set(['execute', 'no_call']));
  assert.equal(custom.train.filter((r) => r.behavior === 'execute').length, 100);
  assert.ok(custom.train.every((r) => !getTool(r.tool)?.synthetic && r.unlisted_tool === null));
  assert.throws(() => synthesize({ seed: 0, n: 10, mix: { execute: -1 } }), /mix/);
  assert.throws(() => synthesize({ seed: 0, n: 1.5 }), /integer/);
  assert.throws(() => synthesize({ seed: 0, n: 10, unlistedShare: 2 }), /unlistedShare/);
  assert.throws(() => synthesize({ seed: 0, n: 10, demoFraction: -0.1 }), /demoFraction/);
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
    for (const split of SPLITS) {
      const file = path.join(dir, `${split}.jsonl`);
      const expected = S[split].map((r) => JSON.stringify(r) + '\n').join('');
      assert.ok(fs.readFileSync(file, 'utf8') === expected, `${file} differs from the synthesized rows`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('synth: at least 25 core templates per tool and per control action, 10 per synthetic tool', () => {
  for (const name of [...TOOLS, ...CONTROL_ACTIONS].map((t) => t.name)) {
    const n = TEMPLATES.filter((t) => t.tool === name).length;
    assert.ok(n >= 25, `${name} has ${n} templates`);
  }
  for (const t of SYNTHETIC_TOOLS) assert.ok(TEMPLATES.filter((x) => x.tool === t.name).length >= 10, t.name);
  assert.equal(new Set(TEMPLATES.map((t) => t.id)).size, TEMPLATES.length);
  assert.ok(TEMPLATES.filter((t) => t.synthetic).every((t) => t.split === 'train'), 'synthetic templates are train-side only');
});

test('synth: every gold call executes to expected_result; rows are well formed', () => {
  for (const r of ALL) {
    const g = gold(r);
    const res = executeTool(g.name, g.arguments);
    assert.ok(res.success && res.data.text === r.expected_result, `${r.id}: ${r.gold_call}`);
    assert.equal(g.name, r.tool);
    assert.deepEqual(Object.keys(g), ['name', 'arguments']);
    const kind = r.behavior === 'execute' ? getTool(g.name)?.kind !== 'control' : g.name === r.behavior;
    assert.ok(kind, r.id);
    assert.deepEqual(Object.keys(r), [
      'id', 'split', 'prompt', 'messages', 'query', 'gold_call', 'expected_result', 'behavior', 'tool', 'template_id',
      'demonstration', 'catalog', 'unlisted_tool',
    ]);
    // The prompt lists exactly the row's catalog, in order, from the split's pool; the needed tool is listed
    // unless the row is an unlisted row.
    const tools = r.catalog.map((n) => getTool(n)!);
    assert.ok(tools.every((t) => catalogPool(r.split).includes(t)), `${r.id}: catalog ${r.catalog}`);
    assert.equal(new Set(r.catalog).size, r.catalog.length);
    assert.equal(r.prompt, buildPrompt(r.query, tools));
    assert.deepEqual(r.messages, [{ role: 'system', content: compactSystemPrompt(tools) }, { role: 'user', content: r.query }]);
    if (r.behavior === 'execute') assert.ok(r.catalog.includes(r.tool), r.id);
    if (r.unlisted_tool) assert.ok(!r.catalog.includes(r.unlisted_tool), r.id);
    if (r.behavior === 'ask_user') assert.ok(r.catalog.includes(r.template_id.split('.')[1]), `${r.id}: the ask_user target is listed`);
    const t = TEMPLATES.find((x) => x.id === r.template_id);
    assert.ok(t, `${r.id}: template ${r.template_id}`);
    assert.equal(t.split, r.split === 'validation' ? 'train' : r.split, `${r.id}: template ${r.template_id} is a ${t.split} template`);
    assert.equal(r.unlisted_tool ?? r.tool, t.tool);
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

test('synth: held-out tools, their words and their phrasings never appear in train, validation or test; heldout rows list them', () => {
  const held = new Set(HELDOUT_TOOLS.map((t) => t.name));
  const words = /market.?cap|capitali[sz]ation|dividend/i;
  // A word of a held-out template that no other template has (e.g. "capitalization") is its phrasing's mark.
  const vocab = (texts: string[]) => new Set(texts.flatMap((x) => x.toLowerCase().match(/[a-z]+/g) ?? []));
  const heldVocab = vocab(TEMPLATES.filter((t) => t.split === 'heldout_tools').map((t) => t.text));
  const otherVocab = vocab(TEMPLATES.filter((t) => t.split !== 'heldout_tools').map((t) => t.text));
  const marks = [...heldVocab].filter((w) => !otherVocab.has(w));
  assert.ok(marks.includes('dividend') && marks.includes('capitalization'), `marks: ${marks}`);
  for (const r of [...S.train, ...S.validation, ...S.test]) {
    assert.ok(!held.has(r.tool) && !r.catalog.some((n) => held.has(n)), r.id);
    for (const h of held) assert.ok(!r.prompt.includes(h) && !r.messages[0].content.includes(h), r.id);
    assert.doesNotMatch(r.query, words, r.id);
    assert.doesNotMatch(r.messages[0].content, words, r.id);
    assert.doesNotMatch(r.prompt, words, r.id);
    const q = new Set(r.query.toLowerCase().match(/[a-z]+/g) ?? []);
    for (const m of marks) assert.ok(!q.has(m), `${r.id}: "${m}" from a held-out template in "${r.query}"`);
  }
  for (const r of S.heldout_tools) {
    assert.ok(held.has(r.tool));
    assert.ok(r.prompt.includes(`"name": "${r.tool}"`) && r.messages[0].content.includes(r.tool + '('));
  }
  assert.deepEqual(new Set(S.heldout_tools.map((r) => r.tool)), held);
});

test('synth: test holds out templates and argument values, but every entity string is in train', () => {
  const trainTemplates = new Set([...S.train, ...S.validation].map((r) => r.template_id));
  for (const r of S.test) assert.ok(!trainTemplates.has(r.template_id), r.template_id);
  for (const [rows, isTest] of [[S.train, false], [S.validation, false], [S.test, true]] as const) {
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
  assert.deepEqual(forms((r) => formatAmount(250, r)), new Set(['250', '250.00']));
  const usd = forms((r) => formatMoney(1200, 'USD', r));
  for (const s of ['$1,200', '$1.2k', '1,200 USD', 'USD 1200', '1200 US dollars']) assert.ok(usd.has(s), s);
  const small = forms((r) => formatMoney(250, 'USD', r));
  for (const s of ['$250', '$ 250', '250$', 'US$250', '$250.00', '250 USD', 'USD 250', '250 dollars']) assert.ok(small.has(s), s);
  assert.ok(forms((r) => formatMoney(75, 'EUR', r)).has('€75'));
  // Amounts of 1 to 4 digits are all common, and symbols are the commonest way a dollar amount is written.
  const amounts = ALL.filter((r) => r.tool === 'convert_currency').map((r) => gold(r).arguments.amount as number);
  const digits = (a: number) => String(Math.trunc(a)).length;
  for (const d of [1, 2, 3, 4]) assert.ok(amounts.filter((a) => digits(a) === d).length / amounts.length > 0.08, `${d}-digit amounts`);
  const usdRows = ALL.filter((r) => r.tool === 'convert_currency' && gold(r).arguments.from_currency === 'USD' && r.query.includes(String(gold(r).arguments.amount)));
  assert.ok(usdRows.filter((r) => /\$/.test(r.query)).length > usdRows.length / 4, 'the $ sign is common');
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
  const small = synthesize({ seed: 3, n: 20, nValidation: 5, nTest: 5, nHeldout: 5 });
  const files = writeSplits(small, dir);
  assert.deepEqual(files.map((f) => path.basename(f)), ['train.jsonl', 'validation.jsonl', 'test.jsonl', 'heldout_tools.jsonl']);
  assert.deepEqual(readJsonl<Row>(files[1]), small.validation);
  assert.deepEqual(readJsonl<Row>(files[0]), small.train);
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, '{"a": 1}\n\n{"a": 2\n');
  assert.throws(() => readJsonl(bad), (e: Error) => e.message.startsWith(`${bad}:3: invalid JSON`));
  assert.throws(() => readJsonl(path.join(dir, 'nope.jsonl')), /nope\.jsonl: cannot read/);
  fs.rmSync(dir, { recursive: true });
});

test('splits: demonstration templates are a third of each group\'s train templates; pool-only synthetic tools have none', () => {
  const demos = demonstrationTemplates();
  assert.deepEqual([...demonstrationTemplates()], [...demos], 'the same templates every time (seed-independent)');
  const groups = new Map<string, { all: number; demo: number }>();
  for (const t of TEMPLATES.filter((x) => x.split === 'train')) {
    const g = groups.get(t.group) ?? { all: 0, demo: 0 };
    g.all++;
    if (demos.has(t.id)) g.demo++;
    groups.set(t.group, g);
  }
  for (const [group, g] of groups) {
    if (POOL_ONLY_TOOLS.has(group)) assert.equal(g.demo, 0, group);
    else assert.equal(g.demo, Math.max(1, Math.round(g.all / 3)), group);
  }
  assert.ok(POOL_ONLY_TOOLS.size >= 10 && [...POOL_ONLY_TOOLS].every((n) => getTool(n)?.synthetic));
  for (const t of TEMPLATES) if (demos.has(t.id)) assert.equal(t.split, 'train', `${t.id} is a demonstration but a ${t.split} template`);
  // Every real tool, ask_user group, refusal category and no_call has demonstrations.
  for (const g of ['get_stock_price', 'convert_currency', 'ask_user.get_revenue.fiscal_year', 'refuse.fraud', 'no_call']) assert.ok(groups.get(g)!.demo >= 1, g);
  const half = demonstrationTemplates(0.5);
  assert.ok(half.size > demos.size);
  assert.equal(demonstrationTemplates(0).size, 0);
});

test('splits: train marks its demonstration rows; validation comes from the other train templates, disjoint from train', () => {
  const demos = demonstrationTemplates();
  for (const r of S.train) assert.equal(r.demonstration, demos.has(r.template_id), r.id);
  const share = S.train.filter((r) => r.demonstration).length / S.train.length;
  assert.ok(share > 0.25 && share < 0.4, `demonstration rows: ${share}`);
  const demoTools = new Set(S.train.filter((r) => r.demonstration).map((r) => r.tool));
  for (const t of [...TRAIN_TOOLS.map((x) => x.name), 'ask_user', 'refuse', 'no_call']) assert.ok(demoTools.has(t), `${t} has demonstration rows`);
  for (const t of POOL_ONLY_TOOLS) assert.ok(!demoTools.has(t), `${t} is pool-only`);
  assert.ok(S.train.some((r) => !r.demonstration && POOL_ONLY_TOOLS.has(r.tool)), 'the pool holds tools SFT never showed');
  for (const r of [...S.validation, ...S.test, ...S.heldout_tools]) assert.equal(r.demonstration, false, r.id);
  for (const r of S.validation) assert.ok(!demos.has(r.template_id), `${r.id}: ${r.template_id} is a demonstration template`);
  const trainQueries = new Set(S.train.map((r) => r.query));
  assert.ok(S.validation.every((r) => !trainQueries.has(r.query)));
  // Adding validation rows changes no other split.
  const noVal = synthesize({ seed: 0, n: 3000, nValidation: 0 });
  assert.equal(JSON.stringify(noVal.train), JSON.stringify(S.train));
  assert.equal(JSON.stringify(noVal.test), JSON.stringify(S.test));
  assert.equal(JSON.stringify(noVal.heldout_tools), JSON.stringify(S.heldout_tools));
});

test('splits: catalogs vary in size, order and content; synthetic tools only in train and validation', () => {
  for (const split of SPLITS) {
    const rows = S[split];
    assert.ok(new Set(rows.map((r) => r.catalog.join(','))).size > rows.length / 2, `${split}: catalogs repeat too often`);
    assert.ok(new Set(rows.map((r) => r.catalog.length)).size >= 3, `${split}: catalog sizes`);
  }
  const syn = new Set(SYNTHETIC_TOOLS.map((t) => t.name));
  for (const r of [...S.test, ...S.heldout_tools]) assert.ok(!r.catalog.some((n) => syn.has(n)), r.id);
  assert.ok(S.train.filter((r) => r.catalog.some((n) => syn.has(n))).length > S.train.length / 2);
  // The gold tool is not always in the same place.
  const at = new Set(S.train.filter((r) => r.behavior === 'execute').map((r) => r.catalog.indexOf(r.tool)));
  assert.ok(at.size >= 4, `gold positions ${[...at]}`);
  // A confusable neighbour is listed with the gold tool often.
  const rev = S.train.filter((r) => r.tool === 'get_revenue');
  assert.ok(rev.filter((r) => r.catalog.includes('get_profit') || r.catalog.includes('get_cash_flow')).length > rev.length / 3);
});

test('splits: no train or validation phrasing recreates a test template of its group', () => {
  const byId = new Map(TEMPLATES.map((t) => [t.id, t]));
  for (const r of [...S.train, ...S.validation]) assert.ok(!recreatesTestTemplate(byId.get(r.template_id)!, r.query), `${r.id}: ${r.query}`);
  // The check itself: a train core whose synonym swap would give the test core "What was the cash from operations in {fy}?".
  const core = TEMPLATES.find((t) => t.id === 'ask_user.get_cash_flow.company.01')!;
  assert.equal(core.split, 'train');
  assert.ok(recreatesTestTemplate(core, 'What was the cash from operations in FY2024?'.replace('FY2024', '{fy}')));
  assert.ok(!recreatesTestTemplate(core, core.text));
});

test('splits: generatedShare draws synthetic requests from the generated family, each tool rare; off by default', () => {
  const isGen = (r: Row) => !!getTool(r.unlisted_tool ?? r.tool)?.synthetic?.generated;
  assert.equal(S.train.filter(isGen).length + S.validation.filter(isGen).length, 0);
  assert.ok(S.train.every((r) => r.catalog.every((n) => !getTool(n)?.synthetic?.generated)), 'no generated tool listed by default');
  const g = synthesize({ seed: 0, n: 3000, nValidation: 100, nTest: 50, nHeldout: 20, syntheticShare: 0.25, generatedShare: 1 });
  const rows = g.train.filter(isGen);
  const synthetic = g.train.filter((r) => getTool(r.unlisted_tool ?? r.tool)?.synthetic);
  assert.equal(rows.length, synthetic.length, 'every synthetic request is for a generated tool');
  const perTool = new Map<string, number>();
  for (const r of rows) perTool.set(r.unlisted_tool ?? r.tool, (perTool.get(r.unlisted_tool ?? r.tool) ?? 0) + 1);
  assert.ok(perTool.size > 150, `${perTool.size} distinct generated tools`);
  assert.ok(Math.max(...perTool.values()) <= 8, 'no generated tool is common enough to learn by heart');
  for (const r of [...g.test, ...g.heldout_tools]) assert.ok(r.catalog.every((n) => !getTool(n)?.synthetic), r.id);
  for (const r of [...g.train, ...g.validation, ...g.test]) assert.doesNotMatch(r.query + r.messages[0].content, /market.?cap|capitali[sz]ation|dividend/i, r.id);
  const byId = new Map(TEMPLATES.map((t) => [t.id, t]));
  for (const r of g.train) assert.ok(!recreatesTestTemplate(byId.get(r.template_id)!, r.query), r.id);
  assert.throws(() => synthesize({ seed: 0, n: 10, generatedShare: 1.5 }), /generatedShare/);
});
