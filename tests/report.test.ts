/**
 * Tests for src/report: danfojs table helpers, plotly figure objects, the offline HTML report, and the seeded
 * call mutations used by the verifier chapter. Outside a notebook `showTable`/`showFigure` only print, so
 * these check the pure builders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frame, countFrame, crosstab, frameHtml, frameMarkdown } from '../src/report/tables';
import { barChart, histogramChart, heatmapChart, figureHtml } from '../src/report/plots';
import { renderReport, writeReport } from '../src/report/html';
import { MUTATIONS, mutateAll, mutateCall } from '../src/report/mutations';
import { Rng } from '../src/util/rng';

test('countFrame counts, sorts by count and keeps pinned zero rows', () => {
  const df = countFrame(['a', 'b', 'a', 'c', 'a', 'b'], (x) => x, 'letter');
  assert.deepEqual(df.columns, ['letter', 'count', 'share']);
  assert.deepEqual(df.values, [['a', 3, 0.5], ['b', 2, 0.333], ['c', 1, 0.167]]);
  const pinned = countFrame(['x'], (x) => x, 'k', ['y', 'x']);
  assert.deepEqual(pinned.values, [['y', 0, 0], ['x', 1, 1]]);
});

test('crosstab gives counts per (row, column) with totals, in the given order', () => {
  const items = [{ b: 'execute', s: 'train' }, { b: 'execute', s: 'test' }, { b: 'refuse', s: 'train' }, { b: 'execute', s: 'train' }];
  const df = crosstab(items, (x) => x.b, (x) => x.s, { rowName: 'behavior', rows: ['refuse', 'execute', 'no_call'], cols: ['train', 'test'] });
  assert.deepEqual(df.columns, ['behavior', 'train', 'test', 'total']);
  assert.deepEqual(df.values, [['refuse', 1, 0, 1], ['execute', 2, 1, 3], ['no_call', 0, 0, 0]]);
});

test('frameHtml escapes cell text and frameMarkdown escapes pipes', () => {
  const df = frame([{ q: '<script>alert(1)</script> & "x"', n: 2 }, { q: 'a|b', n: 3 }]);
  const html = frameHtml(df);
  assert.ok(!html.includes('<script>'), html);
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;'));
  assert.ok(html.includes('<td style="text-align:right">2</td>'));
  assert.ok(frameMarkdown(df).includes('a\\|b'));
});

test('plot builders return plain plotly {data, layout} objects', () => {
  const bar = barChart({ title: 't', x: ['a', 'b'], series: [{ name: 's1', y: [1, 2] }, { name: 's2', y: [3, 4] }], barmode: 'stack' });
  assert.equal(bar.data.length, 2);
  assert.deepEqual(bar.data[1], { type: 'bar', name: 's2', x: ['a', 'b'], y: [3, 4] });
  assert.equal(bar.layout.barmode, 'stack');
  const hist = histogramChart({ title: 'h', groups: { seed: [0, 0.2, 1], strict: [0, 1] }, binSize: 0.1 });
  assert.deepEqual(hist.data.map((t) => t.name), ['seed', 'strict']);
  assert.deepEqual(hist.data[0].xbins, { start: -0.05, end: 1.05, size: 0.1 });
  const heat = heatmapChart({ title: 'c', x: ['p1', 'p2'], y: ['g1'], z: [[1, 2]] });
  assert.deepEqual(heat.data[0].z, [[1, 2]]);
  assert.equal(JSON.parse(JSON.stringify(heat)).data[0].type, 'heatmap');
});

test('figureHtml cannot be broken out of its <script> by figure text', () => {
  const fig = barChart({ title: '</script><b>x</b>', x: ['a'], series: [{ name: 's', y: [1] }] });
  const html = figureHtml(fig, { id: 'f1' });
  assert.equal(html.split('</script>').length - 1, 1, 'only the closing tag of our own script');
  assert.ok(html.includes('<\\/script>'));
  assert.ok(html.includes('id="f1"'));
});

test('the HTML report inlines plotly.js once and loads nothing from the network', () => {
  const fig = barChart({ title: 'mix', x: ['a'], series: [{ name: 's', y: [1] }] });
  const sections = [
    { heading: 'Tables' },
    { text: 'A <b>bold</b> claim' },
    { table: frame([{ k: 'a', v: 1 }]), caption: 'cap' },
    { figure: fig },
    { figure: fig },
  ];
  const html = renderReport('Report', sections);
  const plotlySize = fs.statSync(path.join('node_modules', 'plotly.js-dist-min', 'plotly.min.js')).size;
  assert.ok(html.length > plotlySize, 'plotly.js is inlined');
  assert.ok(html.length < plotlySize * 1.5, 'and only once');
  assert.ok(!/<script[^>]*\ssrc=/i.test(html), 'no external scripts');
  assert.ok(!/<link[^>]*href=["']https?:/i.test(html), 'no external stylesheets');
  assert.ok(html.includes('A &lt;b&gt;bold&lt;/b&gt; claim'));
  assert.ok(html.includes('id="fig-3"') && html.includes('id="fig-4"'));
  assert.ok(!renderReport('No figures', [{ text: 'x' }]).includes('Plotly'), 'no plotly.js without figures');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'report-'));
  try {
    const file = writeReport(path.join(dir, 'sub', 'r.html'), 'Report', sections);
    assert.equal(fs.readFileSync(file, 'utf8'), html);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('mutations are seeded, named and change the call', () => {
  const gold = { name: 'get_revenue', arguments: { company: 'Tesla', fiscal_year: 2024 } };
  const a = mutateAll([gold], 3, 2);
  assert.deepEqual(mutateAll([gold], 3, 2), a, 'same seed, same mutations');
  assert.equal(a.length, MUTATIONS.length * 2);
  const exact = JSON.stringify(gold);
  for (const m of a) {
    if (m.mutation === 'exact') assert.equal(m.completion, exact);
    else assert.notEqual(m.completion, exact, m.mutation);
  }
  const rng = new Rng(1);
  assert.equal(mutateCall(gold, 'confusable_tool', rng).text.includes('"get_revenue"'), false);
  assert.equal(Object.keys(JSON.parse(mutateCall(gold, 'missing_arg', rng).text).arguments).length, 1);
  assert.ok(mutateCall(gold, 'lookalike_name', rng).text.includes('g\u0435t_revenue'));
  // date_format does not apply without a date: it falls back and says so.
  assert.equal(mutateCall(gold, 'date_format', rng).applied, 'wrong_value');
  const price = { name: 'get_stock_price', arguments: { ticker: 'AAPL', date: '2025-01-03' } };
  assert.equal(JSON.parse(mutateCall(price, 'date_format', rng).text).arguments.date, '01/03/2025');
});
