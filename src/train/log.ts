/**
 * metrics.jsonl: one JSON object per logged step, TRL's metric names (`reward`, `reward_std`,
 * `rewards/<fn>/mean`, `frac_reward_zero_std`, `completions/mean_length`, `completions/clipped_ratio`, `kl`,
 * `entropy`, `clip_ratio/...`, `learning_rate`, `grad_norm`) plus `step`, `step_seconds`, `tokens_per_second`.
 *
 * Each line is written with one appendFileSync call and fsync'd, so a SIGKILL leaves at most a partial last
 * line; opening the log for a resumed run drops that line and every line after the checkpoint's step, so the
 * file reads as if the run had never stopped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Metrics = Record<string, number | string | boolean | null>;

export class MetricsLog {
  private constructor(readonly file: string) {}

  /**
   * Open (create) `<dir>/metrics.jsonl`. With `resumeStep`, keep only the complete lines whose `step` is
   * <= resumeStep (what the checkpoint had seen); without it, start a fresh file.
   */
  static open(file: string, resumeStep?: number): MetricsLog {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (resumeStep === undefined) {
      fs.writeFileSync(file, '');
    } else {
      const kept = readMetrics(file, { tolerant: true }).filter((m) => typeof m.step === 'number' && m.step <= resumeStep);
      writeAtomic(file, kept.map((m) => JSON.stringify(m) + '\n').join(''));
    }
    return new MetricsLog(file);
  }

  /** Append one line and fsync it. Non-finite numbers become null (JSON has no NaN) and are named in `nonfinite`. */
  append(m: Metrics): void {
    const bad: string[] = [];
    const clean: Metrics = {};
    for (const [k, v] of Object.entries(m)) {
      if (typeof v === 'number' && !Number.isFinite(v)) {
        bad.push(k);
        clean[k] = null;
      } else clean[k] = v;
    }
    if (bad.length) clean.nonfinite = bad.join(',');
    const fd = fs.openSync(this.file, 'a');
    try {
      fs.writeSync(fd, JSON.stringify(clean) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Read a metrics.jsonl. `tolerant` skips a torn last line (a killed writer); otherwise bad lines are errors naming file:line. */
export function readMetrics(file: string, opts: { tolerant?: boolean } = {}): Metrics[] {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: Metrics[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as Metrics);
    } catch (e) {
      const last = i >= lines.length - 2;
      if (opts.tolerant && last) return;
      throw new Error(`${file}:${i + 1}: not a JSON line (${(e as Error).message})`);
    }
  });
  return out;
}

/** Write a file and fsync it before returning (the data is on disk, not only in the page cache). */
export function writeSynced(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, 'w');
  try {
    if (typeof data === 'string') fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Write a file via a temporary sibling and rename (readers see the old or the new file, never half). */
export function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeSynced(tmp, data);
  fs.renameSync(tmp, file);
}
