/**
 * `npx tsx src/run.ts serve [--host 127.0.0.1] [--port 8000] [--reward seed|tiered|strict] [--workers N]`
 *
 * The verifier as an HTTP reward service for distributed RL engines: OpenRLHF's `POST /get_reward`
 * (`--reward.remote_url http://HOST:PORT/get_reward`), and TRL / verl through the ten-line glue in
 * examples/distributed/. The wire format is in src/serve/wire.ts, the server in src/serve/server.ts.
 * SIGTERM / SIGINT: stop accepting, answer what is in flight, exit 0 (a second signal exits at once).
 *
 * Not a training command: it never loads a model or TensorFlow.js.
 */
import cluster from 'node:cluster';
import { ArgError, flagsHelp, parseFlags } from '../util/args';
import type { FlagSpec } from '../util/args';
import { REWARD_MODES } from '../verify/reward';
import type { RewardMode } from '../verify/reward';
import { DEFAULT_BODY_LIMIT, startServer } from '../serve/server';
import { DEFAULT_END_TOKENS } from '../serve/wire';

/** Default scoring threads: measured in `npm run bench` (service.by_setting); see README "Growing past one machine". */
export const DEFAULT_WORKERS = 0;

const FLAGS: Record<string, FlagSpec> = {
  host: { type: 'string', help: 'interface to bind (0.0.0.0 = every interface: only on a trusted network)', default: '127.0.0.1' },
  port: { type: 'int', help: 'TCP port (0 = any free port, printed at start)', default: 8000 },
  reward: { type: 'string', help: 'reward mode, as `verify --reward`', choices: REWARD_MODES, default: 'seed' },
  lenient: { type: 'bool', help: 'also accept a ```json fence or <tool_call> wrapper (as verify --lenient)', default: false },
  workers: { type: 'int', help: 'scoring worker threads per process (0 = score in the HTTP thread)', default: DEFAULT_WORKERS },
  processes: { type: 'int', help: 'server processes sharing the port (node:cluster; each parses HTTP and scores)', default: 1 },
  scores: { type: 'string', help: "what `scores` holds: the reward, or 1/0 for an exact call (for OpenRLHF's dynamic filtering)", choices: ['reward', 'exact'], default: 'reward' },
  end_tokens: { type: 'list', help: 'end tokens stripped from the end of text queries', default: [...DEFAULT_END_TOKENS] },
  body_limit_mb: { type: 'float', help: 'largest request body in MiB (413 above it)', default: DEFAULT_BODY_LIMIT / 1024 / 1024 },
};

export const help = `Serve the verifier as a reward over HTTP (OpenRLHF's /get_reward shape; TRL and verl glue in examples/distributed/).

usage: npx tsx src/run.ts serve [--host 127.0.0.1] [--port 8000] [--reward ${REWARD_MODES.join('|')}] [--workers N] [--processes N]

  POST /get_reward  {"query": [...], "prompts": [...], "labels": [...]}
                    -> {"rewards": [...], "scores": [...], "extra_logs": {"json", "name", "schema", "execution"}}
                    query[i]: the prompt + completion text (prompts[i] and trailing end tokens are stripped),
                              or an assistant message {"role": "assistant", "content", "tool_calls"}
                    labels[i]: {"gold_call", "expected_result"}, an object or a JSON string
  GET  /health      {"status": "ok", ...counters}
  SIGTERM / SIGINT  stop accepting, answer what is in flight, exit 0 (a second signal: exit at once)

${flagsHelp(FLAGS)}`;

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  const port = f.port as number;
  if (port < 0 || port > 65535) throw new ArgError(`--port must be in 0..65535, got ${port}`);
  const workers = f.workers as number;
  if (workers < 0) throw new ArgError(`--workers must be >= 0, got ${workers}`);
  const mb = f.body_limit_mb as number;
  if (!(mb > 0)) throw new ArgError(`--body_limit_mb must be > 0, got ${mb}`);
  const processes = f.processes as number;
  if (processes < 1) throw new ArgError(`--processes must be >= 1, got ${processes}`);
  if (processes > 1 && cluster.isPrimary) return primary(processes, `${f.host}:${port}`, `reward ${f.reward}${f.lenient ? ' (lenient)' : ''}`, workers);
  let srv;
  try {
    srv = await startServer({
      host: f.host as string,
      port,
      mode: f.reward as RewardMode,
      lenient: f.lenient as boolean,
      workers,
      scores: f.scores as 'reward' | 'exact',
      end_tokens: f.end_tokens as string[],
      body_limit: Math.floor(mb * 1024 * 1024),
    });
  } catch (e) {
    console.error(`error: cannot listen on ${f.host}:${port}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  const s = srv;
  // One line a client script can wait for (the tests and the benchmark read the URL from it). In a cluster,
  // the primary prints it once, when every process listens (they share one port).
  if (cluster.isWorker) process.send!({ listening: s.url });
  else console.log(`serve: reward ${f.reward}${f.lenient ? ' (lenient)' : ''} on ${s.url}/get_reward, ${s.workers} scoring worker thread(s); GET ${s.url}/health`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // In a cluster, Ctrl-C reaches every process and the primary passes SIGTERM on: the primary decides.
        if (cluster.isWorker) return;
        console.error(`serve: ${signal} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      console.error(`serve: ${signal}: no new connections; finishing ${s.stats.in_flight} request(s) in flight`);
      s.close().then(({ clean }) => {
        console.error(`serve: stopped after ${s.stats.requests} requests, ${s.stats.completions} completions scored, ${s.stats.bad_requests} refused${clean ? '' : ' (connections still open after the grace period were cut)'}`);
        resolve(clean ? 0 : 1);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * `--processes N`: fork N copies of this command that share one listening socket (node:cluster hands each new
 * connection to the next process). SIGTERM / SIGINT go on to every process, each closes as above, and this
 * one exits 0 when all exited 0. A process that dies otherwise is replaced.
 */
function primary(n: number, where: string, what: string, workers: number): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    let listening = 0;
    let failed = false;
    const fork = () => {
      const w = cluster.fork();
      w.on('message', (m: { listening?: string }) => {
        // Announce once every process listens (a signal before then would find one still starting).
        if (m?.listening && ++listening === n) {
          console.log(`serve: ${what} on ${m.listening}/get_reward, ${n} processes x ${workers} scoring worker thread(s); GET ${m.listening}/health`);
        }
      });
    };
    for (let i = 0; i < n; i++) fork();
    cluster.on('exit', (w, code, signal) => {
      if (code !== 0) failed = true;
      if (!stopping) {
        console.error(`serve: process ${w.process.pid} exited (code ${code}, signal ${signal}); starting another on ${where}`);
        fork();
        return;
      }
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : 0);
    });
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        console.error(`serve: ${signal} again: exiting now`);
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
        process.exit(130);
      }
      stopping = true;
      console.error(`serve: ${signal}: stopping ${n} processes`);
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
