/**
 * `npx tsx src/run.ts verify --input FILE.jsonl [--reward seed|tiered|strict|outcome] [--output FILE.jsonl]`
 *
 * Scores a file of completions: each line is `{completion, gold_call, expected_result, ...}` (the course's
 * columns; `--reward outcome` also reads `tool` and `catalog`, synth.ts's columns, and never `gold_call`).
 * Writes every row back with `reward`, `components` (not for outcome) and `reason` added, and prints the
 * course's four metrics. A bad line (not JSON, a missing or non-string column, an unusable gold_call) is reported as
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
import { failure, success, type Failure, type Success } from '../util/result';
import { REWARD_NAMES, checkOutcomeRow, scoreOutcome } from '../verify/reward';
import type { RewardName } from '../verify/reward';
import { METRIC_NAMES, scoreRows, summarize } from '../verify/metrics';
import type { EvalRow, RowScores } from '../verify/metrics';

const FLAGS: Record<string, FlagSpec> = {
  input: { type: 'string', help: 'JSONL file of {completion, gold_call, expected_result} rows (required)' },
  reward: { type: 'string', help: 'reward written to each row (outcome: needs tool and catalog columns)', choices: REWARD_NAMES, default: 'seed' },
  output: { type: 'string', help: "where to write scored rows ('-' = stdout; default: INPUT with .scored.jsonl)" },
  lenient: { type: 'bool', help: 'also accept a ```json fence or <tool_call> wrapper', default: false },
};

export const help = `Score completions against gold calls and print the four metrics.

usage: npx tsx src/run.ts verify --input FILE.jsonl [--reward seed|tiered|strict|outcome] [--output FILE.jsonl]

${flagsHelp(FLAGS)}`;

/** A usable input row. */
export type CompletionRow = Record<string, unknown> & { completion: string } & EvalRow;

/** One input line (1-based `line`, its `raw` text): a usable row, or why not, naming FILE:LINE (with the row when it parsed). */
export type JsonlLine = { line: number; raw: string } & (Success<CompletionRow> | (Failure & { row?: Record<string, unknown> }));

/**
 * Read a JSONL file of completion rows without giving up on bad lines. Blank lines are skipped.
 * Throws only when the file itself cannot be read.
 */
export function readCompletionRows(file: string, required: readonly string[] = ['completion', 'gold_call', 'expected_result']): JsonlLine[] {
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
      out.push({ line: i + 1, raw, ...failure(`${where}: not valid JSON (${e instanceof Error ? e.message : String(e)})`) });
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      out.push({ line: i + 1, raw, ...failure(`${where}: expected a JSON object per line`) });
      continue;
    }
    const row = v as Record<string, unknown>;
    const bad = required.filter((k) => typeof row[k] !== 'string');
    if (bad.length) {
      const what = bad.map((k) => (k in row ? `${k} is not a string` : `missing column ${k}`)).join(', ');
      out.push({ line: i + 1, raw, row, ...failure(`${where}: ${what}`) });
      continue;
    }
    for (const k of ['behavior', 'tool'] as const) if (row[k] !== undefined && typeof row[k] !== 'string') delete row[k];
    if (row.catalog !== undefined && !(Array.isArray(row.catalog) && row.catalog.every((x) => typeof x === 'string'))) delete row.catalog;
    if (row.unlisted_tool !== undefined && row.unlisted_tool !== null && typeof row.unlisted_tool !== 'string') delete row.unlisted_tool;
    out.push({ line: i + 1, raw, ...success(row as CompletionRow) });
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
  const mode = flags.reward as RewardName;
  const lenient = flags.lenient === true;
  let lines: JsonlLine[];
  try {
    lines = readCompletionRows(input, mode === 'outcome' ? ['completion', 'expected_result'] : undefined);
  } catch (e) {
    console.error(`error: cannot read ${input}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }

  const good = lines.filter((l): l is JsonlLine & Success<CompletionRow> => l.success);
  // Outcome-labelled rows may have no gold_call: the four metrics then cover only the rows that have one.
  const withGold = good.filter((l) => typeof l.data.gold_call === 'string');
  const scores = scoreRows(withGold.map((l) => l.data.completion), withGold.map((l) => l.data), { lenient });
  const byLine = new Map<number, RowScores>();
  withGold.forEach((l, i) => byLine.set(l.line, scores[i]));
  let outcomeSum = 0, outcomeN = 0;

  const outRows: string[] = [];
  let errors = 0;
  for (const l of lines) {
    if (!l.success) {
      errors++;
      console.error(`error: ${l.message}`);
      outRows.push(JSON.stringify({ ...(l.row ?? { raw: l.raw }), line: l.line, error: l.message }));
      continue;
    }
    const bad = (why: string) => {
      errors++;
      const error = `${input}:${l.line}: ${why}`;
      console.error(`error: ${error}`);
      outRows.push(JSON.stringify({ ...l.data, line: l.line, error }));
    };
    if (mode === 'outcome') {
      const row = checkOutcomeRow(l.data.expected_result, l.data.tool, l.data.catalog);
      if (!row.success) bad(row.message);
      else {
        const o = scoreOutcome(l.data.completion, row.data, { lenient });
        outcomeSum += o.reward;
        outcomeN++;
        outRows.push(JSON.stringify({ ...l.data, reward: o.reward, reason: o.reason }));
      }
      continue;
    }
    const s = byLine.get(l.line)![mode];
    if (s.error) bad(s.error);
    else outRows.push(JSON.stringify({ ...l.data, reward: s.reward, components: s.components, reason: s.reason }));
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

  const report = summarize(scores, withGold.map((l) => l.data));
  const log = out === '-' ? console.error : console.log;
  const scored = mode === 'outcome' ? outcomeN : report.n;
  log(`verify: ${lines.length} rows read from ${input}, ${scored} scored, ${errors} with errors; reward mode ${mode}`);
  if (report.n) for (const k of METRIC_NAMES) log(`  ${k.padEnd(24)} ${report[k].toFixed(4)}`);
  const mean = mode === 'outcome' ? (outcomeN ? outcomeSum / outcomeN : 0) : report[`reward_${mode}`];
  log(`  ${('mean ' + mode + ' reward').padEnd(24)} ${mean.toFixed(4)}`);
  if (out !== '-') log(`wrote ${out}`);
  return 0;
}
