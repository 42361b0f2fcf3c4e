/**
 * `npx tsx src/run.ts predict --run DIR [--phase grpo|sft|control] (--input F.jsonl [--output F.jsonl] | "request" ...)`
 *
 * Ask a trained model: greedy completions for requests, each parsed into a call and run in the sandbox
 * (src/eval/ask.ts). Three ways to give requests:
 *   --input F.jsonl   rows that need only `query` (optional `catalog`: the tool names the prompt lists; without
 *                     it, every real tool). With --output, each row is written back with all its fields plus
 *                     `completion`, `call` (the parsed object or null) and `result` (the sandbox's text, or
 *                     `error: ...`); without it, one line per row is printed. Rows with gold_call and
 *                     expected_result are scored: the four metrics are printed (eval's definitions).
 *   "request" ...     positional arguments: each is answered, its call and result printed
 *   (neither)         requests from standard input, one per line (a `> ` prompt on a terminal)
 * A bad input line (not JSON, no query, a catalog naming no tool) stops the command before the model loads,
 * each named as FILE:LINE.
 *
 * Which model: `--run` is what `course` writes (outputs/<run>/, or one phase folder of it), its phases as
 * `export` reads them (src/train/runs.ts); or `--model DIR [--adapter DIR]` for any checkpoint.
 *
 * What it is not: sampling (decoding is greedy, as the course's evaluation decodes) or a chat: each request is
 * answered on its own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ArgError, flagsHelp, parseFlagsAndPositionals } from '../util/args';
import type { FlagSpec } from '../util/args';
import { resolveUserPath } from '../util/paths';
import type { Success } from '../util/result';
import { initBackend } from '../model/backend';
import type { Qwen2ForCausalLM } from '../model/qwen2';
import { ChatTokenizer } from '../model/tokenizer';
import { has, loadMergedModel, resolveRunModel, type RunModel, type RunPhase, RUN_PHASES } from '../train/runs';
import { fourMetrics } from '../eval/evaluate';
import { ALL_REAL_TOOLS, ask, parseRequests, scoreAnswers, type Answer, type AskOptions, type RequestLine, type RequestRow } from '../eval/ask';

const FLAGS: Record<string, FlagSpec> = {
  run: { type: 'string', help: 'a course run folder (outputs/<run>, or what `course --out` wrote), or one phase folder of it' },
  phase: { type: 'string', help: "with --run, which model: the GRPO policy (SFT + the run's last GRPO adapter), the SFT model, or the control", choices: [...RUN_PHASES], default: 'grpo' },
  model: { type: 'string', help: 'instead of --run: any model folder (config.json + model.safetensors + tokenizer files)' },
  adapter: { type: 'string', help: 'with --model: a PEFT adapter folder to fold into it' },
  input: { type: 'string', help: 'JSONL file of requests: {query, catalog?, gold_call?, expected_result?, ...} per line' },
  output: { type: 'string', help: "with --input: where to write the rows with completion, call and result added ('-' = stdout; the summary and metrics then go to stderr)" },
  max_new_tokens: { type: 'int', help: 'longest completion, in tokens', default: 64 },
  batch_size: { type: 'int', help: 'requests per generate call (--input and positionals)', default: 32 },
  lenient: { type: 'bool', help: 'also accept a ```json fence or <tool_call> wrapper around the call', default: false },
  backend: { type: 'string', help: 'auto | wasm | cpu | tensorflow | webgpu (default: $TFJS_BACKEND, else auto)' },
};

export const help = `Ask a trained model: greedy completions for requests, the call parsed from each and its result in the sandbox.

usage: npx tsx src/run.ts predict --run DIR [--phase grpo|sft|control] --input F.jsonl [--output F.jsonl]
       npx tsx src/run.ts predict --run DIR "request" ...
       npx tsx src/run.ts predict --run DIR              (requests from standard input, one per line)
       npx tsx src/run.ts predict --model DIR [--adapter DIR] ...

Requests list every real tool unless an input row carries \`catalog\` (tool names, in prompt order):
  ${ALL_REAL_TOOLS.map((t) => t.name).join(', ')}
The prompt is built from query and catalog (a row's own messages are not read). Output rows keep every input
field and add completion (the model's text), call (the parsed {"name", "arguments"} or null) and result (the
sandbox's text, or "error: ..."). Rows with gold_call and expected_result are scored: response_validity,
function_name_accuracy, schema_match, exact_match (as \`eval\` computes them). Without --output, --input prints
one line per row and the metrics. A bad input line stops the command before the model loads, named FILE:LINE.

${flagsHelp(FLAGS)}`;

/** The model to ask, from --run / --phase or --model / --adapter; errors name the flag or folder. */
function resolveModel(f: { run?: string; phase: RunPhase; model?: string; adapter?: string }): RunModel {
  if (f.run !== undefined) return resolveRunModel(resolveUserPath(f.run), f.phase);
  const dir = resolveUserPath(f.model!);
  if (!fs.existsSync(dir)) throw new Error(`--model ${f.model}: no such folder`);
  if (!has(dir, 'config.json') || !has(dir, 'model.safetensors')) throw new Error(`--model ${f.model}: not a model folder (no config.json + model.safetensors)`);
  const adapters: string[] = [];
  if (f.adapter !== undefined) {
    const a = resolveUserPath(f.adapter);
    if (!has(a, 'adapter_config.json')) throw new Error(`--adapter ${f.adapter}: not a PEFT adapter folder (no adapter_config.json)`);
    adapters.push(a);
  }
  // `phase` only labels the model here (loadMergedModel reads base_model and adapters).
  return { phase: 'sft', base_model: dir, adapters, tokenizer_dir: dir };
}

/** `call: {...}` and `result: ...` lines of one answer. */
function answerLines(a: Answer): string[] {
  return [`call: ${a.call ? JSON.stringify(a.call) : 'null'}`, `result: ${a.result}`];
}

export async function main(argv: string[]): Promise<number> {
  const { flags: f, positionals } = parseFlagsAndPositionals(argv, FLAGS);
  const run = f.run as string | undefined;
  const modelDir = f.model as string | undefined;
  const input = f.input as string | undefined;
  const output = f.output as string | undefined;
  if ((run === undefined) === (modelDir === undefined)) throw new ArgError('give the model with --run DIR (a course run folder) or --model DIR, one of them');
  if (f.adapter !== undefined && modelDir === undefined) throw new ArgError('--adapter goes with --model (a run folder knows its adapters)');
  if (input !== undefined && positionals.length) throw new ArgError(`requests come from --input or from arguments, not both (got --input and ${JSON.stringify(positionals[0])})`);
  if (output !== undefined && input === undefined) throw new ArgError('--output needs --input (requests given as arguments or on stdin are printed)');
  if (input !== undefined && output !== undefined && output !== '-' && resolveUserPath(output) === resolveUserPath(input)) throw new ArgError('--output would overwrite --input');
  const opts: AskOptions = { max_new_tokens: f.max_new_tokens as number, batch_size: f.batch_size as number, lenient: f.lenient === true };

  // Read and check the input first: a bad line should not wait for a model to load.
  let lines: (RequestLine & Success<RequestRow>)[] = [];
  if (input !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(resolveUserPath(input), 'utf8');
    } catch (e) {
      console.error(`error: ${input}: cannot read (${e instanceof Error ? e.message : String(e)})`);
      return 1;
    }
    const parsed = parseRequests(text, input);
    const bad = parsed.filter((l) => !l.success);
    for (const l of bad) if (!l.success) console.error(`error: ${l.message}`);
    if (bad.length) {
      console.error(`predict: ${bad.length} bad line(s) in ${input}; nothing asked`);
      return 1;
    }
    lines = parsed as (RequestLine & Success<RequestRow>)[];
  }

  let model: Qwen2ForCausalLM;
  let tok: ChatTokenizer;
  try {
    const r = resolveModel({ run, phase: f.phase as RunPhase, model: modelDir, adapter: f.adapter as string | undefined });
    const what = run !== undefined ? `${r.phase} model of ${run}` : `model ${modelDir}`;
    console.error(`predict: ${what} = ${r.base_model}${r.adapters.map((a) => ` + ${a}`).join('')}${r.adapters.length ? ' (merged)' : ''}; greedy, max_new_tokens ${opts.max_new_tokens}`);
    await initBackend(f.backend as string | undefined);
    tok = await ChatTokenizer.fromPretrained(r.tokenizer_dir);
    model = await loadMergedModel(r);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  try {
    if (input !== undefined) return await answerFile(model, tok, input, output, lines, opts);
    if (positionals.length) {
      const answers = await ask(model, tok, positionals.map((query) => ({ query })), opts);
      answers.forEach((a, i) => console.log([`> ${positionals[i]}`, ...answerLines(a)].join('\n')));
      return 0;
    }
    return await answerStdin(model, tok, opts);
  } finally {
    model.dispose();
  }
}

/** --input: answer every row, write or print them, and score the gold ones. */
async function answerFile(
  model: Qwen2ForCausalLM,
  tok: ChatTokenizer,
  input: string,
  output: string | undefined,
  lines: readonly (RequestLine & Success<RequestRow>)[],
  opts: AskOptions,
): Promise<number> {
  const rows = lines.map((l) => l.data);
  const t0 = Date.now();
  const answers = await ask(model, tok, rows, opts);
  const seconds = (Date.now() - t0) / 1000;
  const scored = scoreAnswers(rows, answers, opts);
  const exact = new Map(scored.index.map((i, k) => [i, scored.scores[k].seed.exact]));
  // With `--output -` stdout carries the rows only; everything else goes to stderr.
  const log = output === '-' ? console.error : console.log;

  const out = rows.map((r, i) => ({ ...r, completion: answers[i].completion, call: answers[i].call, result: answers[i].result }));
  if (output === undefined) {
    rows.forEach((r, i) => {
      const mark = exact.has(i) ? (exact.get(i) ? '  (exact match)' : `  (expected ${r.expected_result})`) : '';
      log(`${input}:${lines[i].line}  ${answers[i].call ? JSON.stringify(answers[i].call) : 'null'} -> ${answers[i].result}${mark}`);
    });
  } else {
    const text = out.map((o) => JSON.stringify(o) + '\n').join('');
    if (output === '-') process.stdout.write(text);
    else {
      try {
        fs.mkdirSync(path.dirname(resolveUserPath(output)), { recursive: true });
        fs.writeFileSync(resolveUserPath(output), text);
      } catch (e) {
        console.error(`error: ${output}: cannot write (${e instanceof Error ? e.message : String(e)})`);
        return 1;
      }
    }
  }
  log(`predict: ${rows.length} request(s) from ${input} answered in ${seconds.toFixed(1)} s${output !== undefined && output !== '-' ? `, written to ${output}` : ''}`);
  for (const e of scored.report.errors) console.error(`error: ${input}:${lines[scored.index[e.index]].line}: ${e.error} (not scored)`);
  const n = scored.report.n;
  if (n > 0) {
    const m = fourMetrics(scored.report);
    log(`metrics over ${n} row(s) with gold_call and expected_result: ${Object.entries(m).map(([k, v]) => `${k} ${v}`).join('  ')}`);
  } else {
    log('metrics: no row carries both gold_call and expected_result; nothing scored');
  }
  return 0;
}

/** Standard input: one request per line, answered as it comes; a `> ` prompt on a terminal. */
async function answerStdin(model: Qwen2ForCausalLM, tok: ChatTokenizer, opts: AskOptions): Promise<number> {
  const tty = process.stdin.isTTY === true;
  const rl = readline.createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, prompt: '> ', crlfDelay: Infinity });
  if (tty) {
    console.log('Type a request and press Enter (Ctrl-D ends).');
    rl.prompt();
  }
  for await (const line of rl) {
    const query = line.trim();
    if (query !== '') {
      const [a] = await ask(model, tok, [{ query }], opts);
      console.log((tty ? answerLines(a) : [`> ${query}`, ...answerLines(a)]).join('\n'));
    }
    if (tty) rl.prompt();
  }
  return 0;
}
