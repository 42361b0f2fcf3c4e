/**
 * The reward service's throughput, for `npm run bench` (`service` in its JSON): completions scored per second
 * by `serve` as a child process under the bounded load of load.ts (default 32 clients x 25 requests x 16
 * completions, keep-alive, loopback), once per number of scoring worker threads, next to the in-process
 * verifier on the same rows, and requests of one completion each (how OpenRLHF posts: one sample per request).
 * The rows are the verifier benchmark's mix (src/verify/bench.ts), seed reward.
 *
 * How to read it: on loopback the load generator runs on the same cores as the server, so the numbers are what
 * one machine does with both; `loadavg_at_start` says how busy it was. Each setting runs `repeat` times,
 * interleaved (every set-up once, then again), and the best run is reported: on a shared machine other work only slows
 * a run down. What it is not: a correctness test (tests/serve.test.ts checks every reward under load too).
 */
import * as os from 'node:os';
import { benchMix } from '../verify/bench';
import { scoreCompletion } from '../verify/reward';
import { runLoad } from './load';
import type { LoadResult, LoadRow } from './load';
import { spawnServe } from './spawn';

/** One server set-up to time: processes sharing the port x scoring threads per process. */
export interface ServiceSetting {
  processes: number;
  workers: number;
}

export interface ServiceBenchOptions {
  settings?: ServiceSetting[];
  clients?: number;
  requests?: number;
  completions?: number;
  repeat?: number;
}

/** The in-process verifier on `rows` (seed mode, one thread, >= minMs): completions per second and CPU us each. */
function inProcess(rows: readonly LoadRow[], minMs = 400): { completions_per_second: number; cpu_us_per_completion: number } {
  for (const x of rows) scoreCompletion(x.completion, x.gold_call, x.expected_result, 'seed');
  let done = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let ms = 0;
  while (ms < minMs) {
    for (const x of rows) scoreCompletion(x.completion, x.gold_call, x.expected_result, 'seed');
    done += rows.length;
    ms = performance.now() - t0;
  }
  const cpu = process.cpuUsage(cpu0);
  return { completions_per_second: Math.round((done / ms) * 1000), cpu_us_per_completion: Math.round(((cpu.user + cpu.system) / done) * 10) / 10 };
}

/** The server's CPU time so far (GET /health's cpu_ms). */
async function serverCpuMs(base: string): Promise<number> {
  const res = await fetch(`${base}/health`);
  return ((await res.json()) as { cpu_ms: number }).cpu_ms;
}

export async function benchService(o: ServiceBenchOptions = {}): Promise<Record<string, unknown>> {
  const settings = o.settings ?? [{ processes: 1, workers: 0 }, { processes: 1, workers: 1 }, { processes: 1, workers: 2 }, { processes: 2, workers: 0 }];
  const key = (s: ServiceSetting) => `processes=${s.processes},workers=${s.workers}`;
  const clients = o.clients ?? 32, requests = o.requests ?? 25, completions = o.completions ?? 16, repeat = o.repeat ?? 2;
  const rows: LoadRow[] = benchMix().map((x) => ({ ...x, reward: scoreCompletion(x.completion, x.gold_call, x.expected_result, 'seed').reward }));
  const loadavg = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const runs: Record<string, (LoadResult & { server_cpu_us_per_completion: number | null })[]> = {};
  for (let k = 0; k < repeat; k++) {
    for (const st of settings) {
      console.error(`[bench] service: ${key(st)}, ${clients} clients x ${requests} requests x ${completions} completions (run ${k + 1}/${repeat}) ...`);
      const srv = await spawnServe(['--workers', String(st.workers), '--processes', String(st.processes)]);
      try {
        const url = `${srv.url}/get_reward`;
        await runLoad({ url, clients: 4, requests: 5, completions, rows }); // warm-up: JIT, ajv schemas, sockets
        // /health reports the CPU of the process that answers it: only meaningful with one process.
        const cpu0 = st.processes === 1 ? await serverCpuMs(srv.url) : 0;
        const r = await runLoad({ url, clients, requests, completions, rows });
        const cpu = st.processes === 1 ? (await serverCpuMs(srv.url)) - cpu0 : null;
        const perCompletion = cpu === null ? null : Math.round(((cpu * 1000) / Math.max(1, r.answered * completions)) * 10) / 10;
        (runs[key(st)] ??= []).push({ ...r, server_cpu_us_per_completion: perCompletion });
      } finally {
        await srv.stop('SIGTERM');
      }
    }
  }
  // OpenRLHF's own shape: one sample per request (its remote client posts each sample as it is generated).
  console.error(`[bench] service: one completion per request (OpenRLHF's shape), ${clients} clients x 100 requests ...`);
  const single: LoadResult[] = [];
  for (let k = 0; k < repeat; k++) {
    const srv = await spawnServe([]);
    try {
      const url = `${srv.url}/get_reward`;
      await runLoad({ url, clients: 4, requests: 20, completions: 1, rows });
      single.push(await runLoad({ url, clients, requests: 100, completions: 1, rows }));
    } finally {
      await srv.stop('SIGTERM');
    }
  }
  const bestSingle = single.reduce((a, b) => (b.requests_per_second > a.requests_per_second ? b : a));

  const by_setting: Record<string, unknown> = {};
  for (const st of settings) {
    const rs = runs[key(st)];
    const best = rs.reduce((a, b) => (b.completions_per_second > a.completions_per_second ? b : a));
    const cpus = rs.map((r) => r.server_cpu_us_per_completion).filter((x): x is number => x !== null);
    by_setting[key(st)] = {
      completions_per_second: best.completions_per_second,
      requests_per_second: best.requests_per_second,
      latency_ms: best.latency_ms,
      // CPU the server process (its worker threads included) spent per completion: less sensitive to other
      // work on a shared machine than wall time.
      server_cpu_us_per_completion: cpus.length ? Math.min(...cpus) : null,
      all_runs_completions_per_second: rs.map((r) => r.completions_per_second),
      answered: rs.reduce((a, r) => a + r.answered, 0),
      failed: rs.reduce((a, r) => a + r.failed, 0),
      wrong_rewards: rs.reduce((a, r) => a + r.wrong_rewards, 0),
    };
  }
  return {
    load: { clients, requests_per_client: requests, completions_per_request: completions, repeat, mix_size: rows.length, reward: 'seed' },
    loadavg_at_start: loadavg,
    in_process: inProcess(rows),
    by_setting,
    one_completion_per_request: {
      clients,
      requests_per_client: 100,
      requests_per_second: bestSingle.requests_per_second,
      latency_ms: bestSingle.latency_ms,
      all_runs_requests_per_second: single.map((r) => r.requests_per_second),
      failed: single.reduce((a, r) => a + r.failed, 0),
      wrong_rewards: single.reduce((a, r) => a + r.wrong_rewards, 0),
    },
  };
}
