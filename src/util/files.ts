/**
 * Writing files so that a crash never leaves half of one: `writeSynced` (written and fsync'd before it returns)
 * and `writeAtomic` (via a temporary sibling and a rename: readers see the old file or the new one).
 * Checkpoints, metrics logs, configs and summaries all go through these two.
 *
 * Not here: the checkpoint layout (src/train/checkpoint.ts) or the metrics log (src/train/log.ts).
 */
import * as fs from 'node:fs';

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

/** JSON with two-space indents and a final newline, written atomically (configs, summaries). */
export function writeJson(file: string, value: unknown): void {
  writeAtomic(file, JSON.stringify(value, null, 2) + '\n');
}
