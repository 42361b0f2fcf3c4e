/**
 * A one-line terminal progress bar: step / total, a few named values (reward, loss), elapsed and ETA.
 * On a TTY it redraws in place; otherwise (CI, a log file, a notebook) it prints a plain line every
 * `every` steps and at the end, so logs stay short.
 */

export interface ProgressOptions {
  /** Label printed first, e.g. 'grpo'. */
  label: string;
  total: number;
  /** Non-TTY: print every N steps (default 10). */
  every?: number;
  /** Force TTY or plain mode (default: process.stdout.isTTY). */
  tty?: boolean;
  /** Where to write (default process.stdout). */
  write?: (s: string) => void;
  /** Step to start from (a resumed run). */
  start?: number;
}

export class Progress {
  private t0 = Date.now();
  private startStep: number;
  private tty: boolean;
  private every: number;
  private write: (s: string) => void;

  constructor(private o: ProgressOptions) {
    this.startStep = o.start ?? 0;
    this.tty = o.tty ?? Boolean(process.stdout.isTTY);
    this.every = Math.max(1, o.every ?? 10);
    this.write = o.write ?? ((s) => process.stdout.write(s));
  }

  /** Report that `step` (1-based, steps done) is finished, with values to show. */
  update(step: number, values: Record<string, number | undefined> = {}): void {
    const done = step - this.startStep;
    const elapsed = (Date.now() - this.t0) / 1000;
    const eta = done > 0 ? (elapsed / done) * (this.o.total - step) : NaN;
    const vals = Object.entries(values)
      .filter(([, v]) => v !== undefined && Number.isFinite(v))
      .map(([k, v]) => `${k} ${v!.toFixed(3)}`)
      .join('  ');
    const w = 20;
    const filled = Math.round((w * step) / Math.max(1, this.o.total));
    const bar = '#'.repeat(filled) + '-'.repeat(Math.max(0, w - filled));
    const line = `${this.o.label} [${bar}] ${step}/${this.o.total}  ${vals}  ${fmtTime(elapsed)} elapsed, eta ${fmtTime(eta)}`;
    if (this.tty) {
      this.write(`\r\x1b[2K${line}`);
      if (step >= this.o.total) this.write('\n');
    } else if (step % this.every === 0 || step >= this.o.total || step === this.startStep + 1) {
      this.write(line + '\n');
    }
  }

  /** Print a message without breaking the bar. */
  log(msg: string): void {
    this.write(this.tty ? `\r\x1b[2K${msg}\n` : msg + '\n');
  }
}

/** 7 -> "7.0s", 75 -> "1m15s", 119.6 -> "2m00s" (never "1m60s"), 3725 -> "1h02m05s". */
export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (Math.round(s * 10) < 600) return `${s.toFixed(1)}s`; // below 59.95 s: "59.9s", never "60.0s"
  const t = Math.round(s); // whole seconds first, so the seconds field can never read 60
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${sec}s` : `${m}m${sec}s`;
}
