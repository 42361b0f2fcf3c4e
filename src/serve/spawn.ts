/**
 * Start `serve` as a real child process on loopback (any free port) and stop it with a signal, as a process
 * manager would. Used by tests/serve.test.ts and the service benchmark (bench.ts in this folder).
 *
 * It runs `node --import tsx src/run.ts serve --port 0 ...` (no tsx wrapper process, so the signal reaches the
 * server itself) and reads the URL from the line the command prints when it listens.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from '../util/paths';

export interface ServeChild {
  /** Base URL, e.g. http://127.0.0.1:40123 (append /get_reward or /health). */
  url: string;
  child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Send `signal` and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Resolves when the process exits by itself or by `stop`. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn the server with extra flags (e.g. ['--reward', 'strict', '--workers', '1']); rejects if it does not come up in `timeoutMs`. */
export function spawnServe(flags: string[] = [], timeoutMs = 60_000): Promise<ServeChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'run.ts'), 'serve', '--port', '0', ...flags], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise<ServeChild>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start in ${timeoutMs} ms; stdout: ${out} stderr: ${err}`));
    }, timeoutMs);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (code ${code}, signal ${signal}) before listening; stderr: ${err}`));
    });
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /on (http:\/\/\S+)\/get_reward/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        url: m[1],
        child,
        stderr: () => err,
        exited,
        async stop(signal: NodeJS.Signals = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          const r = await exited;
          return { ...r, stderr: err };
        },
      });
    });
  });
}
