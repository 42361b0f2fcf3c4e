/**
 * `npx tsx src/run.ts eval --predictions FILE.jsonl [--out FILE.json]`
 *
 * Evaluates a file of predictions - rows `{completion, gold_call, expected_result, behavior?, tool?, catalog?,
 * unlisted_tool?}` - with the course's four metrics, per behaviour and per tool, a function-name confusion
 * matrix, and (with synth.ts's catalog columns) how often a right name came with right arguments
 * (`arguments_given_name`), how often the model called a tool its prompt did not list (`unlisted_calls`), and
 * the rows whose needed tool was not listed apart (`listed` / `unlisted`). Prints them as danfojs tables and
 * writes the full report as JSON. Bad lines are reported as FILE:LINE and left out.
 *
 * Not a generation command: producing the completions is the model's job (see the training commands).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { flagsHelp, parseFlags } from '../util/args';
import type { FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import { confusionTableRows, evaluate, metricsTableRows } from '../verify/metrics';
import { readCompletionRows } from './verify';
import type { CompletionRow, JsonlLine } from './verify';
import type { Success } from '../util/result';

const FLAGS: Record<string, FlagSpec> = {
  predictions: { type: 'string', help: 'JSONL file of {completion, gold_call, expected_result, behavior?, tool?, catalog?, unlisted_tool?} rows (required)' },
  out: { type: 'string', help: 'where to write the JSON report (default: PREDICTIONS with .eval.json)' },
  lenient: { type: 'bool', help: 'also accept a ```json fence or <tool_call> wrapper', default: false },
};

export const help = `Evaluate predictions: the four metrics, per behaviour and per tool, and a confusion matrix.

usage: npx tsx src/run.ts eval --predictions FILE.jsonl [--out FILE.json]

${flagsHelp(FLAGS)}`;

export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  if (typeof flags.predictions !== 'string') {
    console.error('error: --predictions FILE.jsonl is required\n(see --help)');
    return 2;
  }
  const input = resolveUserPath(flags.predictions);
  let lines: JsonlLine[];
  try {
    lines = readCompletionRows(input);
  } catch (e) {
    console.error(`error: cannot read ${input}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  const good = lines.filter((l): l is JsonlLine & Success<CompletionRow> => l.success);
  for (const l of lines) if (!l.success) console.error(`error: ${l.message} (row left out)`);

  const report = evaluate(good.map((l) => l.data.completion), good.map((l) => l.data), { lenient: flags.lenient === true });
  for (const e of report.errors) console.error(`error: ${input}:${good[e.index].line}: ${e.error} (row left out)`);

  // danfojs (and the TensorFlow.js it re-exports) is loaded only here, so `verify` and the library stay light.
  const dfd = await import('danfojs-node');
  const print = (rows: Record<string, string | number>[]) => printTable(dfd, rows);
  console.log(`eval: ${report.n} rows scored from ${input} (${lines.length - good.length + report.errors.length} left out)\n`);
  console.log('metrics (fractions of rows; reward_* = mean reward per mode)');
  print(metricsTableRows(report));
  console.log('function-name confusion (rows: gold name, columns: predicted name)');
  const conf = confusionTableRows(report.confusion);
  if (conf.length) print(conf);
  else console.log('  (no rows)');
  const unknown = Object.entries(report.unknown_names);
  if (unknown.length) {
    console.log(`names outside the catalog: ${unknown.slice(0, 10).map(([k, n]) => `${JSON.stringify(k)} x${n}`).join(', ')}${unknown.length > 10 ? ', ...' : ''}`);
  }

  const ext = path.extname(input);
  const out = resolveUserPath(typeof flags.out === 'string' ? flags.out : (ext ? input.slice(0, -ext.length) : input) + '.eval.json');
  const json = {
    predictions: input,
    left_out: [
      ...lines.flatMap((l) => (l.success ? [] : [{ line: l.line, error: l.message }])),
      ...report.errors.map((e) => ({ line: good[e.index].line, error: `${input}:${good[e.index].line}: ${e.error}` })),
    ],
    ...report,
    errors: undefined,
  };
  try {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(json, null, 2) + '\n');
  } catch (e) {
    console.error(`error: cannot write ${out}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  console.log(`wrote ${out}`);
  return 0;
}

/**
 * Print rows as a danfojs table with every row shown and columns as wide as their content (danfojs's defaults
 * cut at 10 rows and 16 characters, which hides most tool names).
 */
function printTable(dfd: typeof import('danfojs-node'), rows: Record<string, string | number>[]): void {
  const columns = Object.keys(rows[0]);
  const widths: Record<number, { width: number }> = { 0: { width: String(rows.length).length } };
  columns.forEach((c, i) => {
    const w = Math.max(c.length, ...rows.map((r) => String(r[c]).length));
    widths[i + 1] = { width: Math.min(Math.max(w, 3), 32) };
  });
  const df = new dfd.DataFrame(rows.map((r) => columns.map((c) => r[c])), {
    columns,
    config: { tableMaxRow: rows.length, tableMaxColInConsole: columns.length + 1, tableDisplayConfig: { columns: widths } },
  });
  df.print();
}
