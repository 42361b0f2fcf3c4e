/**
 * The reward service (`serve`): the wire format as plain functions, then the server as a real child process on
 * loopback (a free port): the same rewards as the `verify` command over the golden table and mutated calls, in
 * every mode, as text and as assistant messages; malformed requests (4xx naming the field and index, and the
 * server keeps serving); a bounded load (32 clients x 25 requests x 16 completions) with every reward checked;
 * SIGTERM with a request in flight; the standard-library Python client and the TRL / verl glue against a real
 * server. No timing assertions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from '../src/util/paths';
import { synthesize } from '../src/env/synth';
import { mutateAll } from '../src/report/mutations';
import type { Call } from '../src/report/mutations';
import { REWARD_MODES, scoreCompletion } from '../src/verify/reward';
import type { RewardMode } from '../src/verify/reward';
import { completionOf, labelOf, parseRequest, stripEndTokens } from '../src/serve/wire';
import { LOAD_PROMPT, runLoad } from '../src/serve/load';
import type { LoadRow } from '../src/serve/load';
import { spawnServe } from '../src/serve/spawn';
import type { ServeChild } from '../src/serve/spawn';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-test-'));
const GOLD = '{"name": "get_stock_price", "arguments": {"ticker": "AAPL", "date": "2025-01-03"}}';
const LABEL = { gold_call: GOLD, expected_result: '243.36' };

interface Row {
  id: string;
  completion: string;
  gold_call: string;
  expected_result: string;
}

/** The golden table (pads applied) and every mutation of 40 synthesized gold calls. */
function rows(): Row[] {
  const golden = fs
    .readFileSync(path.join(ROOT, 'tests', 'fixtures', 'verifier_golden.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Row & { pad?: { text: string; times: number; at: 'start' | 'end' } });
  const out: Row[] = golden.map((c) => {
    const pad = c.pad ? c.pad.text.repeat(c.pad.times) : '';
    const completion = c.pad ? (c.pad.at === 'start' ? pad + c.completion : c.completion + pad) : c.completion;
    return { id: `golden:${c.id}`, completion, gold_call: c.gold_call, expected_result: c.expected_result };
  });
  const synth = synthesize({ seed: 5, n: 40, nTest: 0, nHeldout: 0 }).train;
  for (const m of mutateAll(synth.map((r) => JSON.parse(r.gold_call) as Call), 7)) {
    const r = synth[m.gold_index];
    out.push({ id: `mutation:${r.id}:${m.mutation}`, completion: m.completion, gold_call: r.gold_call, expected_result: r.expected_result });
  }
  return out;
}
const ROWS = rows();

/** `verify --reward MODE` on ROWS: reward and components per row, read from its output file. */
function verifyCli(mode: RewardMode, lenient: boolean): { reward: number; components: Record<string, number> }[] {
  const input = path.join(TMP, 'rows.jsonl');
  if (!fs.existsSync(input)) fs.writeFileSync(input, ROWS.map((r) => JSON.stringify(r) + '\n').join(''));
  const output = path.join(TMP, `verify-${mode}${lenient ? '-lenient' : ''}.jsonl`);
  const args = ['--import', 'tsx', 'src/run.ts', 'verify', '--input', input, '--reward', mode, '--output', output, ...(lenient ? ['--lenient'] : [])];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return fs.readFileSync(output, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}/get_reward`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function withServer<T>(flags: string[], f: (s: ServeChild) => Promise<T>): Promise<T> {
  const s = await spawnServe(flags);
  try {
    return await f(s);
  } finally {
    const r = await s.stop('SIGTERM');
    assert.equal(r.code, 0, `serve ${flags.join(' ')} exited ${r.code} (${r.signal}): ${r.stderr}`);
  }
}

// ---- the wire format, as functions ----

test('wire: end tokens and the prompt prefix are stripped from text queries, nothing else', () => {
  assert.equal(stripEndTokens('{"a": 1}<|im_end|>'), '{"a": 1}');
  assert.equal(stripEndTokens('{"a": 1}<|im_end|>\n<|endoftext|><|endoftext|>'), '{"a": 1}');
  assert.equal(stripEndTokens('{"a": 1}  \n'), '{"a": 1}  \n', 'whitespace alone is left for the verifier');
  assert.equal(stripEndTokens('<|im_end|>'), '');
  assert.equal(stripEndTokens('x</s>', ['</s>']), 'x');
  const c = completionOf('PROMPT{"a": 1}<|im_end|>', 'PROMPT', 0);
  assert.deepEqual(c, { success: true, data: { completion: '{"a": 1}', prompt_not_prefix: false } });
  const d = completionOf('other{"a": 1}', 'PROMPT', 0);
  assert.deepEqual(d, { success: true, data: { completion: 'other{"a": 1}', prompt_not_prefix: true } });
});

test('wire: an assistant message is scored by its tool call (arguments as text keep their literals)', () => {
  const msg = (args: unknown, extra: object = {}) => ({ role: 'assistant', content: 'ignored prose', tool_calls: [{ type: 'function', function: { name: 'get_revenue', arguments: args } }], ...extra });
  const text = (q: unknown) => {
    const c = completionOf(q, null, 0);
    assert.ok(c.success, JSON.stringify(c));
    return c.data.completion;
  };
  assert.equal(text(msg({ company: 'Apple', fiscal_year: 2024 })), '{"name": "get_revenue", "arguments": {"company":"Apple","fiscal_year":2024}}');
  assert.equal(text(msg('{"company": "Apple", "fiscal_year": 2024.0}')), '{"name": "get_revenue", "arguments": {"company": "Apple", "fiscal_year": 2024.0}}');
  assert.equal(text([msg({}), { role: 'tool', content: '1' }]), '{"name": "get_revenue", "arguments": {}}', "TRL's message list: its first assistant message");
  assert.equal(text({ role: 'assistant', content: '{"x": 1}<|im_end|>' }), '{"x": 1}', 'no tool_calls: the content');
  assert.equal(text({ role: 'assistant', content: null, tool_calls: [] }), '');
  const two = text({ role: 'assistant', tool_calls: [{ function: { name: 'a', arguments: {} } }, { function: { name: 'b', arguments: {} } }] });
  assert.equal(scoreCompletion(two, GOLD, '243.36').reward, 0, 'two tool calls score 0, as two calls do in verify');
  for (const [q, field] of [[42, 'query[0]'], [{ role: 'user', content: 'x' }, 'query[0]'], [{ role: 'assistant', tool_calls: {} }, 'query[0].tool_calls'], [{ role: 'assistant', content: 5 }, 'query[0].content'], [[{ role: 'user', content: 'x' }], 'query[0]']] as const) {
    const r = completionOf(q, null, 0);
    assert.ok(!r.success && r.message.startsWith(field + ':'), JSON.stringify(r));
  }
});

test('wire: labels as objects or JSON text; malformed requests name the field and the index', () => {
  assert.deepEqual(labelOf(LABEL, 0), { success: true, data: LABEL });
  assert.deepEqual(labelOf(JSON.stringify(LABEL), 0), { success: true, data: LABEL });
  assert.deepEqual(labelOf({ gold_call: JSON.parse(GOLD), expected_result: '243.36' }, 0), { success: true, data: { gold_call: JSON.stringify(JSON.parse(GOLD)), expected_result: '243.36' } });
  const cases: [unknown, string][] = [
    [[], 'body:'],
    [{ labels: [] }, 'query: missing'],
    [{ query: 'x', labels: [] }, 'query: expected a list'],
    [{ query: ['a', 'b'] }, 'labels: missing'],
    [{ query: ['a', 'b'], labels: [LABEL] }, 'labels: 1 entries for 2 queries'],
    [{ query: ['a'], prompts: ['a', 'b'], labels: [LABEL] }, 'prompts: 2 entries for 1 queries'],
    [{ query: ['a', 'b'], prompts: ['a', 7], labels: [LABEL, LABEL] }, 'prompts[1]:'],
    [{ query: ['a', 'b', 'c'], labels: [LABEL, LABEL, { gold_call: GOLD }] }, 'labels[2]: missing "expected_result"'],
    [{ query: ['a', 'b'], labels: [LABEL, '{"gold_call": '] }, 'labels[1]: not valid JSON'],
    [{ query: ['a', 'b'], labels: [LABEL, ''] }, 'labels[1]: empty'],
    [{ query: ['a', 'b'], labels: [LABEL, { gold_call: GOLD, expected_result: 1 }] }, 'labels[1].expected_result:'],
    [{ query: ['a', 3], labels: [LABEL, LABEL] }, 'query[1]:'],
  ];
  for (const [body, want] of cases) {
    const r = parseRequest(body);
    assert.ok(!r.success && r.message.startsWith(want), `${JSON.stringify(body)} -> ${JSON.stringify(r)}, want ${want}`);
  }
});

// ---- the server as a child process ----

test("serve gives verify's rewards and components over the golden table and mutated calls, in every mode, as text and as messages", { timeout: 180_000 }, async () => {
  // The gold-call modes: a label carries gold_call and expected_result (the outcome reward needs tool and catalog).
  const configs: [RewardMode, boolean][] = [...REWARD_MODES.map((m) => [m, false] as [RewardMode, boolean]), ['seed', true]];
  const servers = await Promise.all(configs.map(([m, lenient]) => spawnServe(['--reward', m, ...(lenient ? ['--lenient'] : [])])));
  try {
    for (let k = 0; k < configs.length; k++) {
      const [mode, lenient] = configs[k];
      const want = verifyCli(mode, lenient);
      assert.equal(want.length, ROWS.length);
      const got: { reward: number; components: Record<string, number> }[] = [];
      for (let i = 0; i < ROWS.length; i += 16) {
        const chunk = ROWS.slice(i, i + 16);
        // OpenRLHF's shape: the templated prompt + the completion + the end token, the prompt alongside.
        const r = await post(servers[k].url, { query: chunk.map((x) => LOAD_PROMPT + x.completion + '<|im_end|>'), prompts: chunk.map(() => LOAD_PROMPT), labels: chunk.map((x, j) => (j % 2 ? { gold_call: x.gold_call, expected_result: x.expected_result } : JSON.stringify({ gold_call: x.gold_call, expected_result: x.expected_result }))) });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        const out = r.json as { rewards: number[]; scores: number[]; extra_logs: Record<string, number[]> };
        assert.deepEqual(Object.keys(out).sort(), ['extra_logs', 'rewards', 'scores']);
        assert.deepEqual(Object.keys(out.extra_logs).sort(), ['execution', 'json', 'name', 'schema']);
        assert.deepEqual(out.scores, out.rewards);
        chunk.forEach((_, j) => got.push({ reward: out.rewards[j], components: { json: out.extra_logs.json[j], name: out.extra_logs.name[j], schema: out.extra_logs.schema[j], execution: out.extra_logs.execution[j] } }));
      }
      const diff = ROWS.map((x, i) => ({ id: x.id, got: got[i], want: { reward: want[i].reward, components: want[i].components } })).filter((d) => JSON.stringify(d.got) !== JSON.stringify(d.want));
      assert.deepEqual(diff, [], `${mode}${lenient ? ' lenient' : ''}: rewards differ from verify's`);
      // A zero was scored, not refused: unparseable completions are in the table.
      assert.ok(got.some((g) => g.reward === 0) && got.some((g) => g.reward === 1));

      // The same mutated calls as assistant messages with tool_calls (TRL with a response parser).
      const calls = ROWS.map((x, i) => ({ x, i, v: (() => { try { return JSON.parse(x.completion); } catch { return null; } })() }))
        .filter(({ x, v }) => x.id.startsWith('mutation:') && v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).join() === 'name,arguments');
      assert.ok(calls.length > 200, `only ${calls.length} mutated calls to send as messages`);
      const r = await post(servers[k].url, {
        query: calls.map(({ v }) => ({ role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: v.name, arguments: v.arguments } }] })),
        labels: calls.map(({ x }) => ({ gold_call: x.gold_call, expected_result: x.expected_result })),
      });
      assert.equal(r.status, 200);
      assert.deepEqual((r.json as { rewards: number[] }).rewards, calls.map(({ i }) => want[i].reward), `${mode}: tool_calls messages`);
    }
  } finally {
    for (const s of servers) assert.equal((await s.stop('SIGTERM')).code, 0);
  }
});

test('serve: malformed requests get a 4xx that names the field and index, and the server keeps serving', { timeout: 180_000 }, async () => {
  await withServer(['--body_limit_mb', '0.05'], async (s) => {
    const empty = await post(s.url, { query: [], prompts: [], labels: [] });
    assert.deepEqual(empty, { status: 200, json: { rewards: [], scores: [], extra_logs: { json: [], name: [], schema: [], execution: [] } } });
    const bad: [unknown, number, string][] = [
      ['{"query": [', 400, 'body: not valid JSON'],
      [{ query: ['a', 'b'], labels: [LABEL] }, 400, 'labels: 1 entries for 2 queries'],
      [{ query: ['a', 'b', 'c'], labels: [LABEL, LABEL, { gold_call: GOLD }] }, 400, 'labels[2]: missing "expected_result"'],
      [{ query: ['a', { role: 'assistant', tool_calls: 'x' }], labels: [LABEL, LABEL] }, 400, 'query[1].tool_calls:'],
      [{ query: ['a', 'b'], labels: [LABEL, { gold_call: 'not a call', expected_result: '1' }] }, 400, 'labels[1]: not a usable gold'],
      [{ query: ['x'.repeat(60_000)], labels: [LABEL] }, 413, 'body:'],
    ];
    for (const [body, status, msg] of bad) {
      const r = await post(s.url, body);
      assert.equal(r.status, status, JSON.stringify(r.json));
      assert.ok(String(r.json.error).startsWith(msg), `${r.json.error} should start with ${msg}`);
    }
    const get = await fetch(`${s.url}/get_reward`);
    assert.equal(get.status, 405);
    assert.equal((await fetch(`${s.url}/nope`, { method: 'POST', body: '{}' })).status, 404);
    // Still serving, and it counted what it refused.
    const ok = await post(s.url, { query: [GOLD, 'not json'], labels: [LABEL, LABEL] });
    assert.deepEqual(ok.json.rewards, [1, 0]);
    const health = (await (await fetch(`${s.url}/health`)).json()) as Record<string, unknown>;
    assert.equal(health.status, 'ok');
    assert.equal(health.bad_requests, bad.length + 2);
    assert.equal(health.requests, 2);
  });
});

test('serve: a bounded load (32 clients x 25 requests x 16 completions) is answered in full with the right rewards, in one thread, with worker threads and with two processes', { timeout: 180_000 }, async () => {
  const synth = synthesize({ seed: 9, n: 60, nTest: 0, nHeldout: 0 }).train;
  const loadRows: LoadRow[] = mutateAll(synth.map((r) => JSON.parse(r.gold_call) as Call), 3).map((m) => {
    const r = synth[m.gold_index];
    return { completion: m.completion, gold_call: r.gold_call, expected_result: r.expected_result, reward: scoreCompletion(m.completion, r.gold_call, r.expected_result, 'seed').reward };
  });
  for (const [flags, load] of [[[], { clients: 32, requests: 25 }], [['--workers', '2'], { clients: 8, requests: 10 }], [['--processes', '2'], { clients: 8, requests: 10 }]] as const) {
    await withServer([...flags], async (s) => {
      const r = await runLoad({ url: `${s.url}/get_reward`, ...load, completions: 16, rows: loadRows });
      assert.equal(r.failed, 0, r.first_error);
      assert.equal(r.answered, load.clients * load.requests, flags.join(' '));
      assert.equal(r.wrong_rewards, 0, flags.join(' '));
    });
  }
});

test('serve: SIGTERM with a request in flight answers it, refuses new connections, and exits 0', { timeout: 180_000 }, async () => {
  const s = await spawnServe([]);
  try {
    const port = Number(new URL(s.url).port);
    const body = JSON.stringify({ query: [GOLD, 'nope'], labels: [LABEL, LABEL] });
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    let reply = '';
    sock.on('data', (c: Buffer) => (reply += c.toString()));
    const ended = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    // Headers and half the body: the request is in flight while the signal arrives.
    sock.write(`POST /get_reward HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 20)}`);
    // Wait until the server is handling it (its headers parsed, the body still coming), then signal.
    const inFlight = async () => ((await (await fetch(`${s.url}/health`)).json()) as { in_flight: number }).in_flight;
    while ((await inFlight()) !== 1) await new Promise((r) => setTimeout(r, 20));
    s.child.kill('SIGTERM');
    while (!s.stderr().includes('SIGTERM: no new connections')) await new Promise((r) => setTimeout(r, 20));
    assert.ok(s.stderr().includes('finishing 1 request(s) in flight'), s.stderr());
    const refused = await new Promise<string>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve('connected');
      });
      c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED', 'a new connection after SIGTERM');
    sock.write(body.slice(20));
    await ended;
    assert.match(reply, /^HTTP\/1\.1 200/);
    assert.match(reply, /connection: close/i);
    assert.deepEqual(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)).rewards, [1, 0]);
    const exit = await s.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
  } finally {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  }
});

test('serve: SIGINT (Ctrl-C) closes as SIGTERM does, also with two processes', { timeout: 180_000 }, async () => {
  for (const flags of [[], ['--processes', '2']]) {
    const s = await spawnServe(flags);
    assert.deepEqual((await post(s.url, { query: [GOLD], labels: [LABEL] })).json.rewards, [1]);
    const r = await s.stop('SIGINT');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /SIGINT/);
  }
});

// ---- the Python side ----

const PY = path.join(ROOT, 'examples', 'distributed');

test('examples/distributed: the Python files compile', () => {
  const files = ['reward_client.py', 'trl_reward.py', 'verl_reward.py'].map((f) => path.join(PY, f));
  const r = spawnSync('python3', ['-m', 'py_compile', ...files], { encoding: 'utf8', env: { ...process.env, PYTHONPYCACHEPREFIX: path.join(TMP, 'pycache') } });
  assert.equal(r.status, 0, r.stderr);
});

test('examples/distributed: the standard-library client, the TRL reward function and the verl compute_score talk to a real server', { timeout: 180_000 }, async () => {
  await withServer(['--reward', 'tiered'], async (s) => {
    const url = `${s.url}/get_reward`;
    const env = { ...process.env, PYTHONPYCACHEPREFIX: path.join(TMP, 'pycache'), TOOLCALL_REWARD_URL: url };
    const want = (c: string, g = GOLD, e = '243.36') => scoreCompletion(c, g, e, 'tiered').reward;
    // The client as a script: text rows with prompts, labels as text and as objects.
    const file = path.join(TMP, 'client_rows.jsonl');
    const sample = ROWS.slice(0, 40);
    fs.writeFileSync(file, sample.map((x, i) => JSON.stringify({ query: LOAD_PROMPT + x.completion + '<|im_end|>', prompt: LOAD_PROMPT, label: i % 2 ? { gold_call: x.gold_call, expected_result: x.expected_result } : JSON.stringify({ gold_call: x.gold_call, expected_result: x.expected_result }) }) + '\n').join(''));
    const run = spawnSync('python3', [path.join(PY, 'reward_client.py'), '--url', url, '--input', file, '--batch', '16'], { encoding: 'utf8', env });
    assert.equal(run.status, 0, run.stderr);
    const answers = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rewards: number[] });
    assert.deepEqual(answers.flatMap((a) => a.rewards), sample.map((x) => scoreCompletion(x.completion, x.gold_call, x.expected_result, 'tiered').reward));
    // A refused request: exit 2 with the server's message.
    fs.writeFileSync(file, JSON.stringify({ query: 'x', label: { gold_call: GOLD } }) + '\n');
    const bad = spawnSync('python3', [path.join(PY, 'reward_client.py'), '--url', url, '--input', file], { encoding: 'utf8', env });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /400: labels\[0\]: missing "expected_result"/);

    // The glue, called as TRL and verl call it (neither is installed: the functions only need the client).
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(PY)})
from trl_reward import toolcall_reward
from verl_reward import compute_score, compute_score_batch
label = ${JSON.stringify(LABEL)}
gold = json.loads(label["gold_call"])
completions = [
    [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": gold["name"], "arguments": gold["arguments"]}}]}],
    [{"role": "assistant", "content": ${JSON.stringify(GOLD)}}],
    [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_stock_price", "arguments": {"ticker": "AAPL", "date": "01/03/2025"}}}]}],
    ${JSON.stringify(GOLD.replace('AAPL', 'MSFT'))},
]
print(json.dumps({
    "trl": toolcall_reward(prompts=[[]] * 4, completions=completions, label=[label] * 4, completion_ids=None),
    "verl": compute_score("toolcall-grpo", ${JSON.stringify(GOLD)}, json.dumps(label), {"split": "test"}),
    "verl_batch": compute_score_batch(["toolcall-grpo"] * 2, ["nope", ${JSON.stringify(GOLD)}], [json.dumps(label)] * 2, [{}, {}]),
}))
`;
    const glue = spawnSync('python3', ['-c', script], { encoding: 'utf8', env });
    assert.equal(glue.status, 0, glue.stderr);
    const out = JSON.parse(glue.stdout) as { trl: number[]; verl: Record<string, number>; verl_batch: Record<string, number>[] };
    assert.deepEqual(out.trl, [1, 1, want('{"name": "get_stock_price", "arguments": {"ticker": "AAPL", "date": "01/03/2025"}}'), want(GOLD.replace('AAPL', 'MSFT'))]);
    assert.ok(out.trl[2] === 0.5 && out.trl[3] === 0.5, 'tiered: right name, wrong arguments');
    assert.deepEqual(out.verl, { score: 1, json: 1, name: 1, schema: 1, execution: 1 });
    assert.deepEqual(out.verl_batch, [{ score: 0, json: 0, name: 0, schema: 0, execution: 0 }, { score: 1, json: 1, name: 1, schema: 1, execution: 1 }]);
  });
});

test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));
