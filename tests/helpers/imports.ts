/**
 * The import graph of src/, read from the source text (no bundler, no madge): every `import ... from`,
 * `export ... from` and `import('...')` with a relative specifier, type-only imports included. Used by
 * tests/imports.test.ts to keep src/ free of import cycles and to check what a worker thread loads.
 *
 * What it is not: a TypeScript parser. It reads statements the way this project writes them (specifiers in
 * single or double quotes); comments are stripped first so an example in a doc comment is not an edge.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Edge {
  /** Absolute path of the imported .ts file. */
  to: string;
  /** true when the import is erased at run time (`import type`, `export type`, or only `type` names). */
  typeOnly: boolean;
}

/** Every .ts file under `dir`, recursively, as absolute paths. */
export function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

function stripComments(src: string): string {
  // Block comments, then line comments that start a line or follow whitespace (keeps '//' inside URLs in strings rare enough).
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
}

function resolveSpec(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null; // a package
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base, `${base}.ts`, path.join(base, 'index.ts'), base.replace(/\.js$/, '.ts')]) {
    if (c.endsWith('.ts') && fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  }
  throw new Error(`${from}: cannot resolve import '${spec}'`);
}

/** The relative imports of one file. */
export function importsOf(file: string): Edge[] {
  const src = stripComments(fs.readFileSync(file, 'utf8'));
  const edges: Edge[] = [];
  // import x from '...'; import { a, type b } from '...'; import type { T } from '...'; export { a } from '...'; export * from '...'
  const stmt = /\b(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]/g;
  for (let m: RegExpExecArray | null; (m = stmt.exec(src)); ) {
    const to = resolveSpec(file, m[4]);
    if (!to) continue;
    const names = m[3];
    const braces = /^\{([\s\S]*)\}$/.exec(names.trim());
    const allTypeNames = braces !== null && braces[1].split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '));
    edges.push({ to, typeOnly: Boolean(m[2]) || allTypeNames });
  }
  // side-effect imports: import '...';
  for (const m of src.matchAll(/\bimport\s+['"]([^'"]+)['"]/g)) {
    const to = resolveSpec(file, m[1]);
    if (to) edges.push({ to, typeOnly: false });
  }
  // dynamic imports: import('...')
  for (const m of src.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const to = resolveSpec(file, m[1]);
    if (to) edges.push({ to, typeOnly: false });
  }
  return edges;
}

/** The graph over `files` (absolute paths) -> their edges. */
export function importGraph(files: readonly string[]): Map<string, Edge[]> {
  return new Map(files.map((f) => [f, importsOf(f)]));
}

/** Every cycle found by a depth-first search, each as the list of files from the repeated one back to it. */
export function findCycles(graph: Map<string, Edge[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const e of graph.get(f) ?? []) {
      const s = state.get(e.to);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(e.to)), e.to]);
      else if (s === undefined) visit(e.to);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return cycles;
}

/** The files loaded at run time when `entry` is imported (type-only imports are erased, so they do not count). */
export function runtimeClosure(graph: Map<string, Edge[]>, entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const e of graph.get(f) ?? importsOf(f)) if (!e.typeOnly) todo.push(e.to);
  }
  return seen;
}
