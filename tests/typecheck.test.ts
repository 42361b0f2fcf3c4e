// The type check, inside `npm test`: tsx strips types without checking them, so without this a type error would
// pass every other test. Two compilers: the project's TypeScript (`npm run typecheck`, strict, tsconfig.json)
// and tslab's 5.0.4, which compiles src/ whenever a notebook imports it (so src/ must stay within what 5.0.4
// accepts: no newer syntax or lib calls). Run: node --import tsx --test tests/typecheck.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../src/util/paths';

function tsc(bin: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [bin, '--noEmit', '-p', ROOT], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

test('npm run typecheck: the project compiles with its own TypeScript, strict', () => {
  const r = tsc(path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'));
  assert.equal(r.status, 0, `type errors:\n${r.out}`);
});

test("src/ and tests/ compile with tslab's TypeScript 5.0.4 too (what the notebooks use)", () => {
  const bin = path.join(ROOT, 'node_modules', '@tslab', 'typescript-for-tslab', 'bin', 'tsc');
  assert.ok(fs.existsSync(bin), `${bin} missing: run npm install (tslab is a dependency)`);
  const r = tsc(bin);
  assert.equal(r.status, 0, `type errors under TypeScript 5.0.4:\n${r.out}`);
});
