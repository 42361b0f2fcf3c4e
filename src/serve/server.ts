/**
 * The reward service: the verifier behind OpenRLHF's `POST /get_reward` (wire.ts has the format), plus
 * `GET /health`. Started by `npx tsx src/run.ts serve` (src/cli/serve.ts) and by the tests and the benchmark.
 *
 * Why node:http and not fastify: the service is one route, a health check and a JSON body, so fastify's
 * routing, plugins and hooks would carry no weight here, and what it would add (JSON-schema validation) is what
 * wire.ts does by hand to name the field *and the index* in every message ("labels[3]: missing
 * \"expected_result\"", where ajv-style errors say "/labels/3 must have required property"). The rest is small
 * with node:http: a body-size limit (413), 400/404/405 as JSON, and a graceful close (`server.close()` +
 * `closeIdleConnections()`). It also adds no dependency: fastify 5.12's tree, installed here, asks for
 * node >= 22 in one package (light-my-request -> cookie 2), and this project supports node 20. The time goes
 * into the verifier either way (README "Growing past one machine" has the measured per-request cost).
 *
 * Statuses: 200 with rewards (a completion that does not parse scores 0 - that is model output); 400 for a
 * malformed request (not JSON, lists of different lengths, a label that is not a gold: the message names the
 * field and index); 413 for a body over the limit; 404 / 405 for other paths and methods; 503 after a close
 * began; 500 only for a bug (a scoring worker that died). The server keeps serving after every one of them.
 *
 * Closing (SIGTERM / SIGINT in the command): stop accepting connections, answer what is in flight, close idle
 * keep-alive connections (replies sent while closing carry `Connection: close`), then stop the workers. If
 * something is still open after `graceMs`, it is cut and `close()` reports `clean: false`.
 *
 * What it is not: a tokenizer, a queue, or authentication. Bind it to a trusted network (default 127.0.0.1).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RewardMode } from '../verify/reward';
import { ScorePool } from './pool';
import { buildResponse, DEFAULT_END_TOKENS, parseRequest } from './wire';
import type { WireOptions } from './wire';

export interface ServeOptions {
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Port; 0 = any free port (default 8000). */
  port?: number;
  /** Reward mode (a key of REWARDS; default 'seed'). */
  mode?: RewardMode;
  /** Accept a ```json fence or <tool_call> wrapper around the call (verify --lenient). Default false. */
  lenient?: boolean;
  /** Scoring worker threads; 0 = score in the HTTP thread. */
  workers?: number;
  /** Largest request body in bytes (default 32 MiB; a completion over the verifier's 1 MB guard still fits and scores 0). */
  body_limit?: number;
  end_tokens?: readonly string[];
  scores?: WireOptions['scores'];
  /** Log lines (default: stderr). */
  log?: (line: string) => void;
}

/** Counters of this process, for `GET /health` and the closing line (with --processes N each process counts its own). */
export interface ServeStats {
  requests: number;
  completions: number;
  bad_requests: number;
  in_flight: number;
  prompt_not_prefix: number;
}

export interface RunningServer {
  url: string;
  port: number;
  stats: ServeStats;
  /** Workers actually running. */
  workers: number;
  /** Stop accepting, finish in-flight requests, stop workers. */
  close(graceMs?: number): Promise<{ clean: boolean }>;
}

export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

/** Start the service; resolves once it listens. */
export async function startServer(o: ServeOptions = {}): Promise<RunningServer> {
  const mode: RewardMode = o.mode ?? 'seed';
  const limit = o.body_limit ?? DEFAULT_BODY_LIMIT;
  const wire: WireOptions = { end_tokens: o.end_tokens ?? DEFAULT_END_TOKENS, scores: o.scores ?? 'reward' };
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const pool = await ScorePool.start(o.workers ?? 0, mode, o.lenient ?? false);
  const stats: ServeStats = { requests: 0, completions: 0, bad_requests: 0, in_flight: 0, prompt_not_prefix: 0 };
  let closing = false;
  let idleWaiters: (() => void)[] = [];

  // Log the first few of a kind, then every 1000th, so a misconfigured client cannot flood the log.
  const seen = new Map<string, number>();
  const logSome = (kind: string, line: string) => {
    const n = (seen.get(kind) ?? 0) + 1;
    seen.set(kind, n);
    if (n <= 5 || n % 1000 === 0) log(`${line}${n > 5 ? ` (${n} so far)` : ''}`);
  };

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) };
    if (closing) headers.Connection = 'close';
    res.writeHead(status, headers);
    res.end(text);
  };
  const fail = (res: http.ServerResponse, status: number, message: string) => {
    stats.bad_requests++;
    logSome(`status ${status}`, `serve: ${status} ${message.length > 300 ? message.slice(0, 300) + '...' : message}`);
    send(res, status, { error: message });
  };

  async function getReward(body: Buffer, res: http.ServerResponse): Promise<void> {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (e) {
      return fail(res, 400, `body: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const req = parseRequest(json, wire);
    if (!req.success) return fail(res, 400, req.message);
    const items = req.data;
    let scores;
    try {
      scores = await pool.score(items);
    } catch (e) {
      return fail(res, 500, `internal error while scoring: ${e instanceof Error ? e.message : String(e)}`);
    }
    const out = buildResponse(scores, wire);
    if (!out.success) return fail(res, 400, out.message);
    const np = items.filter((x) => x.prompt_not_prefix).length;
    if (np) {
      stats.prompt_not_prefix += np;
      logSome('prompt', `serve: warning: ${np} text quer${np === 1 ? 'y does' : 'ies do'} not start with prompts[i]; scored the whole query (check that prompts are the templated prompt text)`);
    }
    stats.requests++;
    stats.completions += items.length;
    send(res, 200, out.data);
  }

  const server = http.createServer((req, res) => {
    stats.in_flight++;
    res.on('close', () => {
      stats.in_flight--;
      if (stats.in_flight === 0 && closing) {
        server.closeIdleConnections();
        const w = idleWaiters;
        idleWaiters = [];
        for (const f of w) f();
      }
    });
    const url = (req.url ?? '/').split('?')[0];
    if (closing) {
      req.resume();
      return send(res, 503, { error: 'shutting down' });
    }
    if (url === '/health') {
      req.resume();
      if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, `${req.method} /health: use GET`);
      const cpu = process.cpuUsage(); // this process, worker threads included
      // in_flight: this health request left out
      return send(res, 200, { status: 'ok', reward: mode, pid: process.pid, workers: pool.size, ...stats, in_flight: stats.in_flight - 1, cpu_ms: Math.round((cpu.user + cpu.system) / 1000) });
    }
    if (url !== '/get_reward') {
      req.resume();
      return fail(res, 404, `no route ${req.method} ${url} (POST /get_reward, GET /health)`);
    }
    if (req.method !== 'POST') {
      req.resume();
      return fail(res, 405, `${req.method} /get_reward: use POST with a JSON body`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) tooBig = true; // keep reading (and dropping) so the client gets to read the 413
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooBig) return fail(res, 413, `body: ${size} bytes is over the limit of ${limit} bytes (serve --body_limit_mb)`);
      getReward(Buffer.concat(chunks, size), res).catch((e) => fail(res, 500, `internal error: ${e instanceof Error ? e.message : String(e)}`));
    });
    req.on('error', () => res.destroy());
  });
  server.keepAliveTimeout = 65_000; // longer than typical client pools' idle time, so a reused socket is rarely closed under it

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8000, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    stats,
    workers: pool.size,
    async close(graceMs = 30_000) {
      if (closing) return { clean: false };
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const drained = stats.in_flight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const r = await Promise.race([drained.then(() => closed).then(() => 'done' as const), timeout]);
      clearTimeout(timer);
      if (r === 'timeout') server.closeAllConnections();
      await pool.close();
      return { clean: r === 'done' };
    },
  };
}
