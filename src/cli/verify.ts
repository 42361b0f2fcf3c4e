/**
 * `npx tsx src/run.ts verify --input FILE.jsonl [--reward seed|tiered|strict] [--output FILE.jsonl]`
 *
 * Scores a file of completions: each line is `{completion, gold_call, expected_result, ...}` (the course's
 * columns). Writes every row back with `reward`, `components` and `reason` added, and prints the course's four
 * metrics. A bad line (not JSON, a missing or non-string column, an unusable gold_call) is reported as
 * FILE:LINE on stderr and written with an `error` field; every other line is still scored. The exit code is
 * non-zero only when the input cannot be read or the output cannot be written.
 *
 * Not a training command: it never loads a model or TensorFlow.js.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { flagsHelp, parseFlags } from '../util/args';
import type { FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { REWARD_MODES } from '../verify/reward';
import type { RewardMode } from '../verify/reward';
import { METRIC_NAMES, scoreRows, summarize } from '../verify/metrics';
import type { EvalRow, RowScores } from '../verify/metrics';

const FLAGS: Record<string, FlagSpec> = {
  input: { type: 'string', help: 'JSONL file of {completion, gold_call, expected_result} rows (required)' },
  reward: { type: 'string', help: 'reward mode written to each row', choices: REWARD_MODES, default: 'seed' },
  output: { type: 'string', help: "where to write scored rows ('-' = stdout; default: INPUT with .scored.jsonl)" },
  lenient: { type: 'bool', help: 'also accept a ```json fence or <tool_call> wrapper', default: false },
};

export const help = `Score completions against gold calls and print the four metrics.

usage: npx tsx src/run.ts verify --input FILE.jsonl [--reward seed|tiered|strict] [--output FILE.jsonl]

${flagsHelp(FLAGS)}`;

/** One input line: either a usable row or an error naming FILE:LINE. */
export type JsonlLine =
  | { line: number; ok: true; row: Record<string, unknown> & { completion: string } & EvalRow }
  | { line: number; ok: false; error: string; raw: string; row?: Record<string, unknown> };

/**
 * Read a JSONL file of completion rows without giving up on bad lines. Blank lines are skipped.
 * Throws only when the file itself cannot be read.
 */
export function readCompletionRows(file: string): JsonlLine[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: JsonlLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    if (raw.trim() === '') continue;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      out.push({ line: i + 1, ok: false, raw, error: `${where}: not valid JSON (${e instanceof Error ? e.message : String(e)})` });
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      out.push({ line: i + 1, ok: false, raw, error: `${where}: expected a JSON object per line` });
      continue;
    }
    const row = v as Record<string, unknown>;
    const bad = ['completion', 'gold_call', 'expected_result'].filter((k) => typeof row[k] !== 'string');
    if (bad.length) {
      const what = bad.map((k) => (k in row ? `${k} is not a string` : `missing column ${k}`)).join(', ');
      out.push({ line: i + 1, ok: false, raw, row, error: `${where}: ${what}` });
      continue;
    }
    for (const k of ['behavior', 'tool'] as const) if (row[k] !== undefined && typeof row[k] !== 'string') delete row[k];
    out.push({ line: i + 1, ok: true, row: row as Record<string, unknown> & { completion: string } & EvalRow });
  }
  return out;
}

/** Default output path: `x.jsonl` -> `x.scored.jsonl`. */
function defaultOutput(input: string): string {
  const ext = path.extname(input);
  return (ext ? input.slice(0, -ext.length) : input) + '.scored.jsonl';
}

export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  if (typeof flags.input !== 'string') {
    console.error('error: --input FILE.jsonl is required\n(see --help)');
    return 2;
  }
  const input = resolveUserPath(flags.input);
  const mode = flags.reward as RewardMode;
  let lines: JsonlLine[];
  try {
    lines = readCompletionRows(input);
  } catch (e) {
    console.error(`error: cannot read ${input}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }

  const good = lines.filter((l): l is Extract<JsonlLine, { ok: true }> => l.ok);
  const scores = scoreRows(good.map((l) => l.row.completion), good.map((l) => l.row), { lenient: flags.lenient === true });
  const byLine = new Map<number, RowScores>();
  good.forEach((l, i) => byLine.set(l.line, scores[i]));

  const outRows: string[] = [];
  let errors = 0;
  for (const l of lines) {
    if (!l.ok) {
      errors++;
      console.error(`error: ${l.error}`);
      outRows.push(JSON.stringify({ ...(l.row ?? { raw: l.raw }), line: l.line, error: l.error }));
      continue;
    }
    const s = byLine.get(l.line)![mode];
    if (s.error) {
      errors++;
      const error = `${input}:${l.line}: ${s.error}`;
      console.error(`error: ${error}`);
      outRows.push(JSON.stringify({ ...l.row, line: l.line, error }));
      continue;
    }
    outRows.push(JSON.stringify({ ...l.row, reward: s.reward, components: s.components, reason: s.reason }));
  }

  const out = flags.output === '-' ? '-' : resolveUserPath(typeof flags.output === 'string' ? flags.output : defaultOutput(input));
  const body = outRows.join('\n') + (outRows.length ? '\n' : '');
  if (out === '-') process.stdout.write(body);
  else {
    try {
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, body);
    } catch (e) {
      console.error(`error: cannot write ${out}: ${e instanceof Error ? e.message : String(e)}`);
      return 1;
    }
  }

  const report = summarize(scores, good.map((l) => l.row));
  const log = out === '-' ? console.error : console.log;
  log(`verify: ${lines.length} rows read from ${input}, ${report.n} scored, ${errors} with errors; reward mode ${mode}`);
  for (const k of METRIC_NAMES) log(`  ${k.padEnd(24)} ${report[k].toFixed(4)}`);
  log(`  ${('mean ' + mode + ' reward').padEnd(24)} ${report[`reward_${mode}`].toFixed(4)}`);
  if (out !== '-') log(`wrote ${out}`);
  return 0;
}
