// The module graph of src/, read from the import statements (tests/helpers/imports.ts, no bundler): no import
// cycle anywhere (type-only imports count: a cycle of types is still two files that cannot be read apart), and
// a data-parallel worker thread loads the model and the objectives only, never a trainer, the rewards (ajv) or
// the checkpoints. Run: node --import tsx --test tests/imports.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from '../src/util/paths';
import { findCycles, importGraph, importsOf, runtimeClosure, tsFiles } from './helpers/imports';

const SRC = path.join(ROOT, 'src');
const rel = (f: string) => path.relative(SRC, f);

test('src/ has no import cycle, type imports included', () => {
  const files = tsFiles(SRC);
  assert.ok(files.length > 40, `only ${files.length} files under src/`);
  const cycles = findCycles(importGraph(files));
  assert.deepEqual(cycles.map((c) => c.map(rel).join(' -> ')), []);
});

test('a data-parallel worker loads the model and the objectives, not GRPO, the rewards or the checkpoints', () => {
  const graph = importGraph(tsFiles(SRC));
  const loaded = [...runtimeClosure(graph, path.join(SRC, 'train', 'parallel_worker.ts'))].map(rel);
  assert.ok(loaded.includes(path.join('train', 'objectives.ts')), 'the worker computes the objectives');
  for (const f of loaded) {
    assert.ok(!f.startsWith('verify' + path.sep) && !f.startsWith('env' + path.sep), `a worker loads ${f}`);
    for (const banned of ['grpo.ts', 'sft.ts', 'pretrain.ts', 'checkpoint.ts', 'config.ts', 'update.ts', 'phases.ts']) {
      assert.notEqual(f, path.join('train', banned), `a worker loads train/${banned}`);
    }
  }
});

test('the import reader sees every kind of import (and not the ones in comments)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imports-'));
  for (const n of ['a', 'b', 'c', 'd', 'e']) fs.writeFileSync(path.join(dir, `${n}.ts`), '');
  fs.writeFileSync(path.join(dir, 'x.ts'), [
    "import { a } from './a';",
    "import type { B } from './b';",
    "import { type C1, type C2 } from './c';",
    "export * from './d';",
    "const e = () => import('./e');",
    "// import { z } from './z';",
    '/* import { y } from "./y"; */',
  ].join('\n'));
  const edges = importsOf(path.join(dir, 'x.ts')).map((e) => [path.basename(e.to), e.typeOnly]);
  assert.deepEqual(edges.sort(), [['a.ts', false], ['b.ts', true], ['c.ts', true], ['d.ts', false], ['e.ts', false]]);
  fs.writeFileSync(path.join(dir, 'a.ts'), "import type { X } from './x';");
  assert.deepEqual(findCycles(importGraph([path.join(dir, 'x.ts'), path.join(dir, 'a.ts')])).map((c) => c.map((f) => path.basename(f))), [['x.ts', 'a.ts', 'x.ts']]);
  fs.rmSync(dir, { recursive: true, force: true });
});
