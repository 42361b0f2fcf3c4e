/**
 * Checkpoints that survive a crash. Layout, Hugging Face Trainer style:
 *
 *   outputs/<run>/checkpoint-<step>/
 *     adapter_config.json + adapter_model.safetensors   (LoRA, PEFT format)  -- or config.json + model.safetensors
 *     optimizer.json + optimizer.bin                     (AdamW step and moments, float32 little-endian)
 *     trainer_state.json                                 (global_step, rng_state, data_cursor, [sampler_state], extra)
 *     training_config.json                               (the resolved config)
 *
 * Atomic: everything is written (and fsync'd) into a hidden `.checkpoint-<step>.tmp-<pid>` folder, which is
 * then renamed to `checkpoint-<step>`. A process killed at any moment leaves either the previous checkpoints
 * or the new complete one, never a half-written folder under the real name. Left-over temp folders are
 * removed by the next run.
 *
 * Not here: how weights are serialised (the model layer's saveAdapter / savePretrained, passed in as a
 * callback) and what the trainers keep in `extra`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AdamWState } from './optim';
import { writeSynced } from '../util/files';

export interface TrainerState {
  /** Optimizer steps completed when this checkpoint was written. */
  global_step: number;
  /** Rng.state of the sampling / data stream at that moment. */
  rng_state: number;
  /** Prompts consumed from the data order so far (the next prompt index; sampler.ts). */
  data_cursor: number;
  /** What else the prompt sampler needs to continue (JSON), when it needs anything (sampler.ts). */
  sampler_state?: unknown;
  /** Anything else the trainer needs to continue (e.g. the phase name). */
  extra?: Record<string, unknown>;
}

export interface SaveArgs {
  state: TrainerState;
  config: object;
  optimizer: AdamWState;
  /** Writes the weights (adapter or full model) into the given folder. */
  writeWeights: (dir: string) => Promise<void> | void;
  /** Keep only the newest N checkpoints (0 = all). */
  save_total_limit?: number;
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  config: Record<string, unknown>;
  optimizer: AdamWState;
}

const NAME = /^checkpoint-(\d+)$/;

/** Write checkpoint-<step> atomically; returns its path. */
export async function saveCheckpoint(runDir: string, a: SaveArgs): Promise<string> {
  fs.mkdirSync(runDir, { recursive: true });
  const step = a.state.global_step;
  const final = path.join(runDir, `checkpoint-${step}`);
  const tmp = path.join(runDir, `.checkpoint-${step}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  await a.writeWeights(tmp);
  writeOptimizer(tmp, a.optimizer);
  writeSynced(path.join(tmp, 'trainer_state.json'), JSON.stringify(a.state, null, 2) + '\n');
  writeSynced(path.join(tmp, 'training_config.json'), JSON.stringify(a.config, null, 2) + '\n');
  for (const f of fs.readdirSync(tmp)) fsyncPath(path.join(tmp, f)); // weights written by the callback too
  fsyncPath(tmp);
  if (fs.existsSync(final)) fs.rmSync(final, { recursive: true, force: true }); // same step saved twice
  fs.renameSync(tmp, final);
  fsyncPath(runDir);
  if (a.save_total_limit && a.save_total_limit > 0) {
    for (const old of listCheckpoints(runDir).slice(0, -a.save_total_limit)) fs.rmSync(old.dir, { recursive: true, force: true });
  }
  return final;
}

/** Complete checkpoints of a run, oldest first. */
export function listCheckpoints(runDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(runDir)) return [];
  return fs.readdirSync(runDir)
    .map((n) => ({ m: NAME.exec(n), n }))
    .filter((x) => x.m && fs.existsSync(path.join(runDir, x.n, 'trainer_state.json')))
    .map((x) => ({ step: Number(x.m![1]), dir: path.join(runDir, x.n) }))
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint folder of a run, or null. */
export function latestCheckpoint(runDir: string): string | null {
  const all = listCheckpoints(runDir);
  return all.length ? all[all.length - 1].dir : null;
}

/** Remove temp folders a killed run left behind. */
export function removeStaleTemps(runDir: string): void {
  if (!fs.existsSync(runDir)) return;
  for (const n of fs.readdirSync(runDir)) if (/^\.checkpoint-\d+\.tmp-/.test(n)) fs.rmSync(path.join(runDir, n), { recursive: true, force: true });
}

/** Read a checkpoint's trainer state, config and optimizer state (weights are loaded by the caller from `dir`). */
export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const read = (f: string) => {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) throw new Error(`checkpoint ${dir} is missing ${f}`);
    try {
      return JSON.parse(fs.readFileSync(p, 'utf8'));
    } catch (e) {
      throw new Error(`${p}: not valid JSON (${(e as Error).message})`);
    }
  };
  const state = read('trainer_state.json') as TrainerState;
  if (typeof state.global_step !== 'number' || typeof state.rng_state !== 'number' || typeof state.data_cursor !== 'number') {
    throw new Error(`${path.join(dir, 'trainer_state.json')}: needs numeric global_step, rng_state and data_cursor`);
  }
  return { dir, state, config: read('training_config.json'), optimizer: readOptimizer(dir) };
}

function writeOptimizer(dir: string, s: AdamWState): void {
  const sizes = s.exp_avg.map((a) => a.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  const buf = Buffer.alloc(total * 2 * 4);
  let off = 0;
  for (const arrs of [s.exp_avg, s.exp_avg_sq]) {
    for (const a of arrs) {
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(buf, off);
      off += a.byteLength;
    }
  }
  const index = { step: s.step, names: s.names, shapes: s.shapes, dtype: 'float32', order: 'exp_avg then exp_avg_sq, in names order' };
  writeSynced(path.join(dir, 'optimizer.bin'), buf);
  writeSynced(path.join(dir, 'optimizer.json'), JSON.stringify(index) + '\n');
}

function readOptimizer(dir: string): AdamWState {
  const jf = path.join(dir, 'optimizer.json'), bf = path.join(dir, 'optimizer.bin');
  if (!fs.existsSync(jf) || !fs.existsSync(bf)) throw new Error(`checkpoint ${dir} is missing optimizer.json / optimizer.bin`);
  const idx = JSON.parse(fs.readFileSync(jf, 'utf8')) as { step: number; names: string[]; shapes: number[][] };
  const bin = fs.readFileSync(bf);
  const sizes = idx.shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (bin.length !== total * 8) throw new Error(`${bf}: ${bin.length} bytes, expected ${total * 8} for the shapes in optimizer.json`);
  let off = 0;
  const take = () => sizes.map((n) => {
    const a = new Float32Array(n);
    Buffer.from(a.buffer).set(bin.subarray(off, off + n * 4));
    off += n * 4;
    return a;
  });
  const exp_avg = take();
  const exp_avg_sq = take();
  return { step: idx.step, names: idx.names, shapes: idx.shapes, exp_avg, exp_avg_sq };
}

function fsyncPath(p: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(p, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* some filesystems refuse fsync on directories; the rename is still atomic */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
