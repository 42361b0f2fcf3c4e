/**
 * `predict`: a run's model asked through the CLI answers what the library answers in-process (same greedy
 * completions, calls parsed from them, results from the sandbox), on a tiny run folder built from the micro-SFT
 * fixture (tests/helpers/run_folder.ts; seconds, no course run). Covers --input with gold rows (metrics as eval
 * computes them, rows keep their fields), positional requests, standard input, bad input lines (FILE:LINE,
 * before any model loads), missing runs and flag errors; and the request checks of src/eval/ask.ts.
 * Run: node --import tsx --test tests/predict.test.ts
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/model/backend';
import { ChatTokenizer } from '../src/model/tokenizer';
import { loadMergedModel, resolveRunModel, type RunPhase } from '../src/train/runs';
import { synthesize, type Row } from '../src/env/synth';
import { buildMessages } from '../src/env/prompt';
import { TOOLS } from '../src/env/tools';
import { executeTool } from '../src/env/execute';
import { evaluate } from '../src/verify/metrics';
import { fourMetrics } from '../src/eval/evaluate';
import { ALL_REAL_TOOLS, answerOf, ask, checkRequest, parseRequests, requestMessages, scoreAnswers, type Answer } from '../src/eval/ask';
import { ROOT } from '../src/util/paths';
import { ArgError } from '../src/util/args';
import { main as predictMain } from '../src/cli/predict';
import { makeRunFolder } from './helpers/run_folder';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'predict-test-'));
const RUN = path.join(TMP, 'run');
let CHECKPOINT = '';

// Resolved here, so that a command run from another folder (cwd: TMP, for paths as the user gives them) finds tsx.
const TSX = import.meta.resolve('tsx');

function cli(args: string[], o: { input?: string; cwd?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', TSX, path.join(ROOT, 'src', 'run.ts'), 'predict', '--backend=wasm', ...args], {
    cwd: o.cwd ?? ROOT,
    encoding: 'utf8',
    input: o.input ?? '',
  });
}

/** The in-process answers of one phase of the run (the model loaded, asked and disposed). */
async function answersOf(phase: RunPhase, requests: { query: string; catalog?: string[] }[]): Promise<Answer[]> {
  const r = resolveRunModel(RUN, phase);
  const model = await loadMergedModel(r);
  try {
    return await ask(model, await ChatTokenizer.fromPretrained(r.tokenizer_dir), requests);
  } finally {
    model.dispose();
  }
}

// Gold rows: a few test rows (each with its catalog) and one heldout_tools row, plus a row with only a query.
const splits = synthesize({ seed: 3, n: 40, nValidation: 4, nTest: 10, nHeldout: 4 });
const GOLD: Row[] = [...splits.test, splits.heldout_tools[0]];
const ROWS: Record<string, unknown>[] = [...GOLD.map((r) => ({ ...r })), { query: "What was Apple's revenue in fiscal 2023?", note: 'kept as it came' }];
const INPUT = path.join(TMP, 'requests.jsonl');

before(async () => {
  await initBackend('wasm');
  ({ checkpoint: CHECKPOINT } = await makeRunFolder(RUN));
  fs.writeFileSync(INPUT, ROWS.map((r) => JSON.stringify(r)).join('\n') + '\n');
});

after(() => fs.rmSync(TMP, { recursive: true, force: true }));

test('requests: a row without a catalog lists every real tool; a dataset row\'s prompt is rebuilt exactly from query + catalog', () => {
  assert.deepEqual(ALL_REAL_TOOLS.map((t) => t.name), TOOLS.map((t) => t.name)); // train tools, then the held-out ones
  assert.deepEqual(requestMessages({ query: 'q' }), buildMessages('q', TOOLS));
  assert.match(requestMessages({ query: 'q' })[0].content, /get_market_cap\(ticker,date:YYYY-MM-DD\)/);
  for (const r of GOLD) assert.deepEqual(requestMessages(r), r.messages, r.id);
  const one = requestMessages({ query: 'q', catalog: ['get_revenue'] })[0].content.split('\n');
  assert.deepEqual(one.slice(4), ['get_revenue(company,fiscal_year) sales']);
});

test('requests: each bad line is named FILE:LINE with why; blank lines are skipped; every field is kept', () => {
  const text = ['{"query": "a", "id": 7, "extra": {"x": 1}}', '', 'not json', '{"q": 1}', '{"query": 3}', '[1]',
    '{"query": "b", "catalog": ["get_weather"]}', '{"query": "b", "catalog": ["no_call"]}', '{"query": "b", "catalog": "get_revenue"}',
    '{"query": "b", "gold_call": {"name": "no_call"}}', '{"query": "  "}'].join('\n');
  const got = parseRequests(text, 'requests.jsonl').map((l) => (l.success ? { line: l.line, row: l.data } : { line: l.line, message: l.message }));
  assert.deepEqual(got[0], { line: 1, row: { query: 'a', id: 7, extra: { x: 1 } } });
  const msgs = got.slice(1).map((g) => ('message' in g ? (g.message ?? '') : ''));
  assert.match(msgs[0], /^requests\.jsonl:3: not JSON \(/);
  assert.deepEqual(msgs.slice(1), [
    'requests.jsonl:4: missing "query"',
    'requests.jsonl:5: "query" is integer, not a string',
    'requests.jsonl:6: expected a JSON object with a "query", got array',
    'requests.jsonl:7: "catalog" lists "get_weather", which is no tool (src/env/tools.ts)',
    'requests.jsonl:8: "catalog" lists "no_call", a control action (always listed, never in a catalog)',
    'requests.jsonl:9: "catalog" is not a list of tool names',
    'requests.jsonl:10: "gold_call" is object, not a string',
    'requests.jsonl:11: "query" is empty',
  ]);
  assert.equal(checkRequest({ query: 'x', catalog: ['get_revenue', 'get_profit'] }).success, true);
});

test('answerOf: the call parsed from a completion and its result in the sandbox, or why not', () => {
  const g = GOLD.find((r) => r.behavior === 'execute')!;
  const a = answerOf(g.gold_call);
  assert.equal(a.result, g.expected_result);
  assert.equal(JSON.stringify(a.call), JSON.stringify(JSON.parse(g.gold_call)));
  assert.match(answerOf('hello').result, /^error: invalid JSON/);
  assert.deepEqual(answerOf('[1, 2]'), { completion: '[1, 2]', call: null, result: 'error: a JSON array, not a call {"name": ..., "arguments": {...}}' });
  assert.match(answerOf('{"name": "get_weather", "arguments": {}}').result, /^error: unknown tool/);
  assert.equal(answerOf('{"name": "ask_user", "arguments": {"missing": ["fiscal_year"], "question": "Which year?"}}').result, 'ask_user:fiscal_year');
  assert.match(answerOf('```json\n{"name": "no_call", "arguments": {}}\n```').result, /^error:/);
  assert.equal(answerOf('```json\n{"name": "no_call", "arguments": {}}\n```', { lenient: true }).result, 'no_call');
});

test('predict --input --output: rows keep their fields and add completion / call / result, as the library answers; the four metrics as eval computes them', async () => {
  const output = path.join(TMP, 'out', 'answers.jsonl');
  const r = cli(['--run', RUN, '--input', INPUT, '--output', output]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const out = fs.readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(out.length, ROWS.length);
  const want = await answersOf('grpo', ROWS as { query: string; catalog?: string[] }[]);
  out.forEach((o, i) => {
    const { completion, call, result, ...rest } = o;
    assert.deepEqual(rest, ROWS[i], `row ${i}: every input field kept as it came`);
    assert.equal(completion, want[i].completion, `row ${i}: the same greedy completion`);
    assert.equal(result, want[i].result);
    assert.deepEqual(call, want[i].call === null ? null : JSON.parse(JSON.stringify(want[i].call)));
    const a = answerOf(completion as string);
    if (a.call) assert.equal(result, (() => { const e = executeTool(a.call.name, a.call.arguments); return e.success ? e.data.text : `error: ${e.message}`; })());
  });
  // The metrics line: over the gold rows only (the last row has no gold), the numbers eval gives.
  const m = fourMetrics(evaluate(want.slice(0, GOLD.length).map((a) => a.completion), GOLD));
  const line = `metrics over ${GOLD.length} row(s) with gold_call and expected_result: ${Object.entries(m).map(([k, v]) => `${k} ${v}`).join('  ')}`;
  assert.ok(r.stdout.includes(line), `${line}\nnot in\n${r.stdout}`);
  assert.deepEqual(fourMetrics(scoreAnswers(ROWS as never, want).report), m);
  assert.match(r.stderr, /predict: grpo model of .* = .*sft \+ .*checkpoint-1 \(merged\)/);
  // --output -: the rows on stdout, nothing else; the summary and metrics on stderr.
  const dash = cli(['--run', RUN, '--input', INPUT, '--output', '-']);
  assert.equal(dash.status, 0, dash.stderr);
  assert.deepEqual(dash.stdout.trim().split('\n').map((l) => JSON.parse(l)), out);
  assert.ok(dash.stderr.includes(line));

  // The SFT phase is another model (the adapter is not a no-op), and --model + --adapter is the GRPO one again.
  const sft = await answersOf('sft', ROWS as { query: string }[]);
  assert.notDeepEqual(sft.map((a) => a.completion), want.map((a) => a.completion));
  const viaModel = path.join(TMP, 'via-model.jsonl');
  const r2 = cli(['--model', path.join(RUN, 'sft'), '--adapter', CHECKPOINT, '--input', INPUT, '--output', viaModel]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual(fs.readFileSync(viaModel, 'utf8').trim().split('\n').map((l) => JSON.parse(l).completion), want.map((a) => a.completion));
});

test('predict --input without --output: one line per row (FILE:LINE, call -> result), the metrics, nothing written', async () => {
  const before = fs.readdirSync(TMP).sort();
  const r = cli(['--run', RUN, '--phase', 'sft', '--input', 'requests.jsonl'], { cwd: TMP });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.deepEqual(fs.readdirSync(TMP).sort(), before);
  const sft = await answersOf('sft', ROWS as { query: string }[]);
  const rowLines = r.stdout.split('\n').filter((l) => l.startsWith('requests.jsonl:'));
  assert.equal(rowLines.length, ROWS.length);
  rowLines.forEach((l, i) => {
    assert.ok(l.startsWith(`requests.jsonl:${i + 1}  ${sft[i].call ? JSON.stringify(sft[i].call) : 'null'} -> ${sft[i].result}`), l);
    if (i < GOLD.length) assert.match(l, /\((exact match|expected .*)\)$/);
  });
  assert.match(r.stdout, /^metrics over 11 row\(s\) with gold_call and expected_result: response_validity [\d.]+ {2}function_name_accuracy [\d.]+ {2}schema_match [\d.]+ {2}exact_match [\d.]+$/m);
});

test('predict "request" ...: each request, its call and its result; standard input gives the same, one line at a time', async () => {
  const qs = ["What was Apple's revenue in fiscal 2023?", 'Buy 5 shares of MSFT', 'hello there'];
  const want = await answersOf('grpo', qs.map((query) => ({ query })));
  const expected = qs.map((q, i) => [`> ${q}`, `call: ${want[i].call ? JSON.stringify(want[i].call) : 'null'}`, `result: ${want[i].result}`].join('\n')).join('\n') + '\n';
  const r = cli(['--run', RUN, ...qs]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, expected);
  const s = cli(['--run', RUN], { input: `${qs[0]}\n\n  ${qs[1]}  \r\n${qs[2]}` }); // blank lines skipped, CRLF and spaces trimmed, no final newline
  assert.equal(s.status, 0, s.stderr);
  assert.equal(s.stdout, expected);
  // A request that starts with -- goes after a lone --.
  const d = cli(['--run', RUN, '--', '--help me']);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /^> --help me\ncall: /);
});

test('predict: a bad input line is named FILE:LINE and nothing is asked; a missing run, phase or model is refused with the folder named', () => {
  fs.writeFileSync(path.join(TMP, 'bad.jsonl'), '{"query": "fine"}\n{"query": "x"\n{"gold_call": "{}"}\n');
  const bad = cli(['--run', RUN, '--input', 'bad.jsonl'], { cwd: TMP });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^error: bad\.jsonl:2: not JSON \(/m);
  assert.match(bad.stderr, /^error: bad\.jsonl:3: missing "query"$/m);
  assert.match(bad.stderr, /2 bad line\(s\) in bad\.jsonl; nothing asked/);
  assert.doesNotMatch(bad.stderr, /\[backend\]/, 'no model loaded');
  assert.equal(bad.stdout, '');

  const missing = cli(['--run', path.join(TMP, 'nope'), 'hi']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^error: --run .*nope: no such folder$/m);
  const noGrpo = cli(['--run', path.join(RUN, 'sft'), 'hi']);
  assert.equal(noGrpo.status, 1);
  assert.match(noGrpo.stderr, /no complete checkpoint-<step> folder \(did GRPO run\? for the SFT model use --phase sft\)/);
  const noControl = cli(['--run', RUN, '--phase', 'control', 'hi']);
  assert.equal(noControl.status, 1);
  assert.match(noControl.stderr, /no control\/ folder/);
  const missingModel = cli(['--model', path.join(TMP, 'nope'), 'hi']);
  assert.equal(missingModel.status, 1);
  assert.match(missingModel.stderr, /--model .*nope: no such folder/);
  assert.match(cli(['--model', RUN, 'hi']).stderr, /^error: --model .*run: not a model folder/m);
});

test('predict: flags that do not go together are refused before anything loads (ArgError: run.ts exits 2)', async () => {
  const refused = (argv: string[], why: RegExp) => assert.rejects(predictMain(argv), (e: Error) => e instanceof ArgError && why.test(e.message), argv.join(' '));
  await refused(['--input', INPUT], /give the model with --run DIR/);
  await refused(['--run', RUN, '--model', RUN], /one of them/);
  await refused(['--run', RUN, '--adapter', CHECKPOINT, 'hi'], /--adapter goes with --model/);
  await refused(['--run', RUN, '--input', INPUT, 'hi'], /from --input or from arguments, not both/);
  await refused(['--run', RUN, '--output', 'x.jsonl', 'hi'], /--output needs --input/);
  await refused(['--run', RUN, '--input', INPUT, '--output', INPUT], /would overwrite --input/);
  await refused(['--run', RUN, '--phase', 'ppo', 'hi'], /--phase must be one of grpo \| sft \| control/);
  await refused(['--run', RUN, '--max_new_token=8', 'hi'], /did you mean --max_new_tokens\?/);
  const r = cli(['--run', RUN, '--output', 'x.jsonl', 'hi']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^error: --output needs --input .*\n\(see --help\)/);
});

test('predict --help and run.ts --help say what it does', () => {
  const h = cli(['--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /usage: npx tsx src\/run\.ts predict --run DIR \[--phase grpo\|sft\|control\] --input F\.jsonl \[--output F\.jsonl\]/);
  assert.match(h.stdout, /--model DIR \[--adapter DIR\]/);
  assert.match(h.stdout, new RegExp(ALL_REAL_TOOLS.map((t) => t.name).join(', ')));
  const all = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'run.ts'), '--help'], { cwd: ROOT, encoding: 'utf8' });
  assert.match(all.stdout, /^ {2}predict {4}ask a run's model/m);
});
