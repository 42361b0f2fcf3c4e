/**
 * Executes every notebooks/*.ipynb headless through real Jupyter (`jupyter nbconvert --to notebook --execute`)
 * on the "tslab" kernel, one test per notebook, and fails on any cell error with the cell's real error text.
 *
 * Not a notebook linter: it checks that the chapters run end to end from a clean kernel. It skips nothing: if
 * Jupyter or the kernel is missing the test FAILS and says to run scripts/setup-jupyter.sh (.ci/run does).
 * Executed copies go to a temp folder; the committed notebooks are never rewritten.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from '../src/util/paths';

const NOTEBOOK_DIR = path.join(ROOT, 'notebooks');
const KERNEL = 'tslab';
const PER_NOTEBOOK_TIMEOUT_S = 300;
const SETUP_HINT = 'run `bash scripts/setup-jupyter.sh` (installs Debian Jupyter packages and the tslab kernel)';

interface CellOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  ename?: string;
  evalue?: string;
  traceback?: string[];
}
interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: CellOutput[];
}

const joinText = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join('') : (t ?? ''));
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '');

/** Why the Jupyter set-up is unusable, or null when jupyter, nbconvert and the tslab kernel are all there. */
function setupProblem(): string | null {
  const nb = spawnSync('jupyter', ['nbconvert', '--version'], { encoding: 'utf8' });
  if (nb.error || nb.status !== 0) return `jupyter nbconvert is not available (${nb.error?.message ?? nb.stderr.trim()})`;
  const ks = spawnSync('jupyter', ['kernelspec', 'list', '--json'], { encoding: 'utf8' });
  if (ks.status !== 0) return `jupyter kernelspec list failed: ${ks.stderr.trim()}`;
  const specs = Object.keys(JSON.parse(ks.stdout).kernelspecs ?? {});
  if (!specs.includes(KERNEL)) return `no '${KERNEL}' kernel registered (have: ${specs.join(', ') || 'none'})`;
  return null;
}

/** Run nbconvert on one notebook into `outDir`; returns the process result. */
function nbconvert(file: string, outDir: string, allowErrors: boolean) {
  const args = ['nbconvert', '--to', 'notebook', '--execute'];
  if (allowErrors) args.push('--allow-errors');
  args.push(
    `--ExecutePreprocessor.kernel_name=${KERNEL}`,
    `--ExecutePreprocessor.timeout=${PER_NOTEBOOK_TIMEOUT_S}`,
    '--output-dir', outDir,
    file,
  );
  return spawnSync('jupyter', args, { cwd: ROOT, encoding: 'utf8', timeout: PER_NOTEBOOK_TIMEOUT_S * 1000, maxBuffer: 64 << 20 });
}

/**
 * The real error text of a failed notebook. tslab writes compile and runtime errors to the cell's stderr and
 * sends no `error` output, so nbconvert alone only says "<Error>:". We re-run with --allow-errors (which keeps
 * the executed copy) and collect the stderr of every code cell, in order; the first one is the failure (tslab
 * then drops requests for 200 ms, so later cells may be silently empty).
 */
function realErrorText(file: string, outDir: string): string {
  const again = nbconvert(file, outDir, true);
  const outFile = path.join(outDir, path.basename(file));
  if (again.status !== 0 || !fs.existsSync(outFile)) return '(could not re-run with --allow-errors to collect stderr)';
  const cells: Cell[] = JSON.parse(fs.readFileSync(outFile, 'utf8')).cells;
  const parts: string[] = [];
  cells.forEach((c, i) => {
    if (c.cell_type !== 'code') return;
    const outs = c.outputs ?? [];
    const stderr = outs.filter((o) => o.output_type === 'stream' && o.name === 'stderr').map((o) => joinText(o.text));
    const errs = outs.filter((o) => o.output_type === 'error').map((o) => `${o.ename}: ${o.evalue}\n${(o.traceback ?? []).join('\n')}`);
    if (stderr.length + errs.length === 0) return;
    const src = joinText(c.source).split('\n').slice(0, 4).join('\n');
    parts.push(`cell ${i}:\n${src}\n--- stderr:\n${stripAnsi([...stderr, ...errs].join('\n')).trim()}`);
  });
  return parts.length > 0 ? parts.join('\n\n') : '(no cell wrote to stderr)';
}

const notebooks = fs.existsSync(NOTEBOOK_DIR)
  ? fs.readdirSync(NOTEBOOK_DIR).filter((f) => f.endsWith('.ipynb')).sort()
  : [];

test('there are notebooks to run', () => {
  assert.ok(notebooks.length > 0, `no .ipynb files in ${NOTEBOOK_DIR}`);
});

test('chapter 3 runs the trainer\'s own step and objectives, not a step rebuilt from optimizer parts', () => {
  const cells: Cell[] = JSON.parse(fs.readFileSync(path.join(NOTEBOOK_DIR, '03-grpo-training.ipynb'), 'utf8')).cells;
  const code = cells.filter((c) => c.cell_type === 'code').map((c) => joinText(c.source)).join('\n');
  for (const part of ['GradAccumulator', 'optimizerStep', 'variableGrads', 'new AdamW', '.apply(']) assert.ok(!code.includes(part), `notebook 03 uses ${part}`);
  for (const piece of ['grpoStep(', 'policyUpdate(', 'rollout(', 'scoreRollout(', 'grpoObjective(']) assert.ok(code.includes(piece), `notebook 03 no longer calls ${piece}`);
});

for (const name of notebooks) {
  test(`notebook ${name} runs headless on the ${KERNEL} kernel without errors`, { timeout: (PER_NOTEBOOK_TIMEOUT_S + 30) * 1000 }, () => {
    const problem = setupProblem();
    assert.equal(problem, null, `${problem}; ${SETUP_HINT}`);

    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nb-'));
    try {
      const file = path.join(NOTEBOOK_DIR, name);
      const t0 = Date.now();
      const run = nbconvert(file, outDir, false);
      const seconds = (Date.now() - t0) / 1000;
      console.log(`# ${name}: executed in ${seconds.toFixed(1)} s`);
      if (run.status !== 0) {
        // nbconvert's own message names the failing cell's source; the error text comes from its stderr.
        const tail = stripAnsi(run.stderr ?? '');
        const cellMsg = tail.includes('CellExecutionError')
          ? tail.slice(tail.indexOf('An error occurred while executing')).trim()
          : tail.split('\n').slice(-30).join('\n');
        assert.fail(
          `${name} failed (nbconvert exit ${run.status}${run.error ? ', ' + run.error.message : ''}):\n${cellMsg}\n\n` +
            `Cell stderr from a re-run with --allow-errors:\n${realErrorText(file, outDir)}`,
        );
      }
      const cells: Cell[] = JSON.parse(fs.readFileSync(path.join(outDir, name), 'utf8')).cells;
      const code = cells.filter((c) => c.cell_type === 'code');
      assert.ok(code.length > 0, `${name} has no code cells`);
      assert.ok(code.some((c) => (c.outputs ?? []).length > 0), `${name} executed but no cell produced output`);
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  });
}
