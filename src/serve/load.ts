/**
 * A bounded load generator for the reward service: `clients` concurrent keep-alive clients, each sending
 * `requests` requests of `completions` rows in OpenRLHF's shape (query = a ChatML prompt + the completion +
 * `<|im_end|>`, prompts = that prompt, labels = gold objects), checking every reward against the one given
 * with the row. It stops by itself after clients x requests requests. Used by tests/serve.test.ts (correctness
 * under load) and by `npm run bench` (src/serve/bench.ts: completions per second).
 *
 * What it is not: a benchmark harness with warm-up and statistics, or a tool for remote hosts (it is meant for
 * loopback; client and server then share the machine's cores, which the numbers include).
 */
import * as http from 'node:http';

/** One row to send, with the reward the service must answer. */
export interface LoadRow {
  completion: string;
  gold_call: string;
  expected_result: string;
  reward: number;
}

export interface LoadOptions {
  /** The /get_reward URL. */
  url: string;
  clients: number;
  requests: number;
  completions: number;
  rows: readonly LoadRow[];
}

export interface LoadResult {
  clients: number;
  requests: number;
  completions: number;
  /** Requests answered 200 with the right number of rewards. */
  answered: number;
  /** Requests that failed (network error or a status other than 200). First error kept in `first_error`. */
  failed: number;
  /** Rewards that differed from the expected ones. */
  wrong_rewards: number;
  first_error?: string;
  seconds: number;
  completions_per_second: number;
  requests_per_second: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
}

/** A templated prompt like the ones OpenRLHF sends (the service strips it). */
export const LOAD_PROMPT = '<|im_start|>system\nReply with one JSON call<|im_end|>\n<|im_start|>user\nWhat did Apple close at on 2025-01-03?<|im_end|>\n<|im_start|>assistant\n';

function post(agent: http.Agent, url: URL, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Run the load and check every answer. Never throws for a failed request: it is counted. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (o.rows.length === 0) throw new Error('runLoad: no rows');
  const url = new URL(o.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.clients });
  const lat: number[] = [];
  let answered = 0, failed = 0, wrong = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const client = async (c: number) => {
    for (let r = 0; r < o.requests; r++) {
      const start = ((c * o.requests + r) * o.completions) % o.rows.length;
      const rows = Array.from({ length: o.completions }, (_, k) => o.rows[(start + k) % o.rows.length]);
      const body = JSON.stringify({
        query: rows.map((x) => LOAD_PROMPT + x.completion + '<|im_end|>'),
        prompts: rows.map(() => LOAD_PROMPT),
        labels: rows.map((x) => ({ gold_call: x.gold_call, expected_result: x.expected_result })),
      });
      const t = performance.now();
      try {
        const res = await post(agent, url, body);
        lat.push(performance.now() - t);
        if (res.status !== 200) {
          failed++;
          firstError ??= `status ${res.status}: ${res.text.slice(0, 200)}`;
          continue;
        }
        const out = JSON.parse(res.text) as { rewards: number[] };
        if (!Array.isArray(out.rewards) || out.rewards.length !== rows.length) {
          failed++;
          firstError ??= `expected ${rows.length} rewards, got ${res.text.slice(0, 200)}`;
          continue;
        }
        answered++;
        rows.forEach((x, k) => {
          if (out.rewards[k] !== x.reward) wrong++;
        });
      } catch (e) {
        failed++;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const total = o.clients * o.requests;
  return {
    clients: o.clients,
    requests: total,
    completions: total * o.completions,
    answered,
    failed,
    wrong_rewards: wrong,
    ...(firstError !== undefined ? { first_error: firstError } : {}),
    seconds: Math.round(seconds * 1000) / 1000,
    completions_per_second: Math.round((answered * o.completions) / seconds),
    requests_per_second: Math.round(answered / seconds),
    latency_ms: { p50: r1(percentile(lat, 0.5)), p90: r1(percentile(lat, 0.9)), p99: r1(percentile(lat, 0.99)), max: r1(lat[lat.length - 1] ?? 0) },
  };
}
