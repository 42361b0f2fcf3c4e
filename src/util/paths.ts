/**
 * Where the project lives on disk: ROOT is found from this module's own file, never from the current directory,
 * so `models/tiny-base`, `tests/fixtures/` and the worker boot script resolve to the same place whichever folder
 * a command, a test or a notebook kernel is started from. If the file's location cannot be read, or the folder
 * two levels above it is not the project (a package.json named "toolcall-grpo"), importing this module throws
 * an error that says so: a silently wrong root is worse than none.
 *
 * How the file is found: modules under src/ run both under tsx (ESM) and in the tslab notebook kernel (CommonJS),
 * so neither `import.meta.url` nor `__dirname` exists in both. V8's structured stack trace does: the call site
 * of a function defined here names this file (a file: URL under tsx, a plain path under tslab).
 *
 * Not here: paths the user types (resolveUserPath: those are relative to the current directory, as usual).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The path of the source file this function is defined in, from V8's call sites; null if unavailable. */
function thisFile(): string | null {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = Math.max(1, limit);
    Error.prepareStackTrace = (_e, sites) => sites;
    const sites = new Error().stack as unknown as NodeJS.CallSite[] | undefined;
    const name = Array.isArray(sites) ? sites[0]?.getFileName() : undefined;
    if (!name) return null;
    return name.startsWith('file:') ? fileURLToPath(name) : name;
  } catch {
    return null;
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}

/** The project root: two folders above src/util/paths.ts. Throws, saying why, when that is not the project. */
export function findRoot(file: string | null = thisFile()): string {
  if (!file) throw new Error('toolcall-grpo: cannot locate the project root: this engine gives no file name for src/util/paths.ts in its stack trace');
  const root = path.resolve(path.dirname(file), '..', '..');
  const pkg = path.join(root, 'package.json');
  let name: unknown;
  try {
    name = (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: unknown }).name;
  } catch {
    name = undefined;
  }
  if (name !== 'toolcall-grpo') {
    throw new Error(`toolcall-grpo: cannot locate the project root: ${file} should be src/util/paths.ts inside the project, but ${pkg} is not toolcall-grpo's package.json`);
  }
  return root;
}

/** Absolute path of the project root (the folder holding package.json). */
export const ROOT = findRoot();
export const DATA_DIR = path.join(ROOT, 'data');
export const OUTPUTS_DIR = path.join(ROOT, 'outputs');
export const NODE_MODULES = path.join(ROOT, 'node_modules');

/** Resolve a path given on the command line against the current directory. */
export function resolveUserPath(p: string): string {
  return path.resolve(process.cwd(), p);
}
