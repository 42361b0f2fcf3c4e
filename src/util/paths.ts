/**
 * Where the project lives on disk.
 *
 * Modules under src/ are run both by tsx (ESM) and by the tslab notebook kernel (CommonJS), so they can use
 * neither `import.meta` nor `__dirname`. We find the project root by walking up from the working
 * directory to the package.json named "toolcall-grpo".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

function findRoot(start: string): string {
  let dir = path.resolve(start);
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'toolcall-grpo') return dir;
      } catch {
        /* not ours; keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(start); // not inside the project: fall back to cwd
    dir = up;
  }
}

/** Absolute path of the project root (the folder holding package.json). */
export const ROOT = findRoot(process.cwd());
export const DATA_DIR = path.join(ROOT, 'data');
export const OUTPUTS_DIR = path.join(ROOT, 'outputs');
export const NODE_MODULES = path.join(ROOT, 'node_modules');

/** Resolve a path given on the command line against the current directory. */
export function resolveUserPath(p: string): string {
  return path.resolve(process.cwd(), p);
}
