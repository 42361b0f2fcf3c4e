/**
 * The checks behind every reward and every metric: one parsed completion against one gold call.
 *
 * Each mode answers the same four questions - the `Components` - at its own strictness:
 *   json       did the output parse as one JSON object?                                 (same in every mode)
 *   name       is `name` exactly the gold name? (code-point equality: no case folding, no NFKC, so a Cyrillic
 *              'е' in "gеt_revenue" is a different name)                                (same in every mode)
 *   schema     are the arguments right in shape?
 *                seed:   the course's `schema_ok`: the name matches, `arguments` is an object, and every gold
 *                        argument is present with the gold value's type as Python sees it (str / int / float /
 *                        bool / list / dict: `2024.0` is a float, not an int). Extra arguments are allowed.
 *                tiered: the tool's JSON Schema, checked by ajv (required, types, enum, no additional
 *                        properties, `format: date`), for the gold tool, with the right name.
 *                strict: as tiered, plus: the top-level object holds exactly `name` and `arguments`, dates are
 *                        real calendar dates, control actions carry no tool arguments, and `ask_user.missing`
 *                        lists exactly the gold's missing arguments (no duplicates).
 *   execution  does running the call give `expected_result`?
 *                seed:   the course's rule: for a no_call gold, the name is no_call; otherwise run the call (only
 *                        the arguments the tool declares are passed, as the course's Python reads only those)
 *                        and compare `text` with expected_result.
 *                tiered/strict: run the call with its arguments as written and compare `text`.
 *
 * What this file is not: the weighting of components into a reward (reward.ts) or aggregation (metrics.ts).
 * Nothing here throws on model output; a bad gold row is reported as an error value.
 */
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { getTool } from '../env/tools';
import type { ToolSpec } from '../env/tools';
import { executeTool } from '../env/execute';
import type { ExecResult } from '../env/execute';
import { isJsonObject, jsonTypeName, numberLiteralKind, parseCall, quote } from './parse';
import type { ParseOptions, ParseResult } from './parse';
import { failure, success, type Result } from '../util/result';

export type RewardMode = 'seed' | 'tiered' | 'strict';
export const REWARD_MODES: readonly RewardMode[] = ['seed', 'tiered', 'strict'];

/** The four checks, each 0 or 1 (see the file comment for what each means per mode). */
export interface Components {
  json: number;
  name: number;
  schema: number;
  execution: number;
}

/** What one mode concluded about one completion. */
export interface Check {
  components: Components;
  /** Every failed check, in the order json -> name -> schema -> execution. Empty when all pass. */
  failures: string[];
  /** The name the completion asked for; '<invalid>' if it did not parse as an object, '<no_name>' if it has no string name. */
  predicted_name: string;
}

/** A parsed gold call. */
export interface Gold {
  name: string;
  arguments: Record<string, unknown>;
}

/** Everything the checks need about one (completion, gold, expected) triple, computed once and shared by the modes. */
export interface Prepared {
  parsed: ParseResult;
  gold: Gold;
  expected_result: string;
  /** Memoised executions, keyed by mode family ('seed' passes declared arguments only; 'raw' passes all). */
  exec: { seed?: ExecResult; raw?: ExecResult };
}

// ---------------------------------------------------------------------------------------------------------
// gold calls

const goldCache = new Map<string, Result<Gold>>();
const GOLD_CACHE_MAX = 4096;

/** Parse a gold_call column value (a JSON string). Cached: in GRPO the same gold comes num_generations times. */
export function parseGold(gold_call: string): Result<Gold> {
  if (typeof gold_call !== 'string') return failure(`gold_call is ${jsonTypeName(gold_call)}, not a JSON string`);
  const hit = goldCache.get(gold_call);
  if (hit) return hit;
  const p = parseCall(gold_call);
  let out: Result<Gold>;
  if (!p.success) out = failure(`gold_call is not valid JSON: ${p.message}`);
  else if (!p.data.call) out = failure('gold_call is not a {"name": string, "arguments": object} call');
  else out = success(p.data.call);
  if (goldCache.size >= GOLD_CACHE_MAX) goldCache.clear();
  goldCache.set(gold_call, out);
  return out;
}

/** Parse the completion and the gold once. A failure when the gold row itself is unusable. */
export function prepare(
  completion: string,
  gold_call: string,
  expected_result: string,
  opts: ParseOptions = {},
): Result<Prepared> {
  const g = parseGold(gold_call);
  if (!g.success) return g;
  if (typeof expected_result !== 'string') {
    return failure(`expected_result is ${jsonTypeName(expected_result)}, not a string`);
  }
  return success({ parsed: parseCall(completion, opts), gold: g.data, expected_result, exec: {} });
}

// ---------------------------------------------------------------------------------------------------------
// the three modes

/** The course's checks (see file comment). */
export function checkSeed(p: Prepared): Check {
  const head = checkHead(p);
  if (head.stop) return head.check;
  const { check, value } = head;
  const f = check.failures;
  const gold = p.gold;

  // schema: the course's schema_ok
  const schemaWhy = check.components.name ? seedSchemaFailure(value.arguments, gold) : 'schema not checked: the name is wrong';
  if (schemaWhy) f.push(schemaWhy);
  else check.components.schema = 1;

  // execution
  if (gold.name === 'no_call') {
    if (value.name === 'no_call') check.components.execution = 1;
    else f.push(`execution: the gold is no_call but the call is ${describeName(value.name)}`);
  } else {
    const why = executionFailure(runSeed(p, value), p.expected_result);
    if (why) f.push(why);
    else check.components.execution = 1;
  }
  return check;
}

/** JSON Schema checks (ajv) and execution with the arguments as written. */
export function checkTiered(p: Prepared): Check {
  const head = checkHead(p);
  if (head.stop) return head.check;
  const { check, value } = head;
  const f = check.failures;

  if (!check.components.name) f.push('schema not checked: the name is wrong');
  else {
    const why = schemaFailures(getTool(p.gold.name), value.arguments);
    if (why.length) f.push(...why);
    else check.components.schema = 1;
  }
  const why = executionFailure(runRaw(p, value), p.expected_result);
  if (why) f.push(why);
  else check.components.execution = 1;
  return check;
}

/** Berkeley-Function-Calling-style checks: tiered's, plus shape, calendar dates and control-action rules. */
export function checkStrict(p: Prepared): Check {
  const head = checkHead(p);
  if (head.stop) return head.check;
  const { check, value } = head;
  const f = check.failures;
  const schemaWhy: string[] = [];

  // exactly one call: the top-level object is {name, arguments} and nothing else
  const extraTop = Object.keys(value).filter((k) => k !== 'name' && k !== 'arguments');
  if (extraTop.length) schemaWhy.push(`top level: unexpected key(s) ${extraTop.map((k) => quote(k)).join(', ')} (a call is exactly {"name", "arguments"})`);
  if (!('arguments' in value)) schemaWhy.push('top level: missing "arguments"');

  if (!check.components.name) schemaWhy.push('schema not checked: the name is wrong');
  else {
    const tool = getTool(p.gold.name);
    const args = value.arguments;
    if (tool && tool.kind === 'control' && isJsonObject(args)) schemaWhy.push(...controlFailures(tool, args, p.gold));
    // ajv's additionalProperties errors would repeat controlFailures' for control actions
    const fromSchema = schemaFailures(tool, args).filter((w) => !(tool?.kind === 'control' && w.includes('unexpected argument')));
    schemaWhy.push(...fromSchema);
  }
  if (schemaWhy.length) f.push(...schemaWhy);
  else check.components.schema = 1;

  const why = executionFailure(runRaw(p, value), p.expected_result);
  if (why) f.push(why);
  else check.components.execution = 1;
  return check;
}

/** Run one mode's checks. */
export function checkMode(p: Prepared, mode: RewardMode): Check {
  return mode === 'seed' ? checkSeed(p) : mode === 'tiered' ? checkTiered(p) : checkStrict(p);
}

// ---------------------------------------------------------------------------------------------------------
// shared steps

type Head =
  | { stop: true; check: Check }
  | { stop: false; check: Check; value: Record<string, unknown> };

/** json and name: identical in every mode. Stops when the output is not a JSON object (everything scores 0). */
function checkHead(p: Prepared): Head {
  const components: Components = { json: 0, name: 0, schema: 0, execution: 0 };
  const parsed = p.parsed;
  if (!parsed.success) return { stop: true, check: { components, failures: [parsed.message], predicted_name: '<invalid>' } };
  const value = parsed.data.value;
  if (!isJsonObject(value)) {
    return {
      stop: true,
      check: { components, failures: [`output is a JSON ${jsonTypeName(value)}, not an object: scores 0`], predicted_name: '<invalid>' },
    };
  }
  components.json = 1;
  const check: Check = {
    components,
    failures: [],
    predicted_name: typeof value.name === 'string' ? value.name : '<no_name>',
  };
  if (value.name === p.gold.name) components.name = 1;
  else check.failures.push(nameFailure(value.name, p.gold.name));
  return { stop: false, check, value };
}

function describeName(n: unknown): string {
  if (n === undefined) return 'missing';
  return typeof n === 'string' ? quote(n) : `a ${jsonTypeName(n)}`;
}

function nameFailure(got: unknown, want: string): string {
  if (got === undefined) return `name: missing, expected ${quote(want)}`;
  if (typeof got !== 'string') return `name: expected the string ${quote(want)}, got a ${jsonTypeName(got)}`;
  const lookalike = lookalikeOf(got, want);
  if (lookalike) return `name: ${quote(got)} is not ${quote(want)}: ${lookalike}`;
  return `name: expected ${quote(want)}, got ${quote(got)}`;
}

// Common confusables of ASCII letters (Cyrillic, Greek, fullwidth handled by NFKC). Used only to explain a
// wrong name; a look-alike never counts as the right name.
const CONFUSABLES: Record<string, string> = {
  '\u0430': 'a', '\u0435': 'e', '\u043e': 'o', '\u0440': 'p', '\u0441': 'c', '\u0443': 'y', '\u0445': 'x',
  '\u0456': 'i', '\u0458': 'j', '\u0455': 's', '\u0501': 'd', '\u04bb': 'h', '\u0475': 'v', '\u03bf': 'o',
  '\u03b1': 'a', '\u03bd': 'v', '\u03c1': 'p', '\u03b9': 'i', '\u0131': 'i', '\u2010': '-', '\u2011': '-',
};

function lookalikeOf(got: string, want: string): string | null {
  if (/^[\x20-\x7e]*$/.test(got)) return null;
  const firstOdd = [...got].findIndex((ch) => ch.charCodeAt(0) > 0x7e || ch.charCodeAt(0) < 0x20);
  const ch = [...got][firstOdd];
  const code = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  const skeleton = [...got.normalize('NFKC')]
    .filter((c) => !/[\u200b-\u200f\u2060\ufeff\u00ad]/.test(c))
    .map((c) => CONFUSABLES[c] ?? c)
    .join('');
  if (skeleton === want) return `a look-alike using non-ASCII characters (${code} at index ${firstOdd}); look-alikes never match`;
  return `contains non-ASCII character ${code} at index ${firstOdd}`;
}

// ---- seed schema: the course's isinstance(value, type(gold_value)) ----

type PyType = 'str' | 'int' | 'float' | 'bool' | 'list' | 'dict' | 'NoneType';

function pyType(container: object, key: string): PyType {
  const v = (container as Record<string, unknown>)[key];
  if (v === null) return 'NoneType';
  if (typeof v === 'string') return 'str';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return numberLiteralKind(container, key) === 'float' ? 'float' : 'int';
  return Array.isArray(v) ? 'list' : 'dict';
}

function seedSchemaFailure(args: unknown, gold: Gold): string | null {
  if (!isJsonObject(args)) {
    return args === undefined ? 'arguments: missing' : `arguments: expected an object, got a ${jsonTypeName(args)}`;
  }
  for (const key of Object.keys(gold.arguments)) {
    if (!Object.prototype.hasOwnProperty.call(args, key)) return `arguments: missing ${quote(key)}`;
    const want = pyType(gold.arguments, key);
    const got = pyType(args, key);
    // Python: bool is a subclass of int, so the course would accept `true` for an int. We do not: a boolean
    // is not a fiscal year, and that quirk could only ever raise a score.
    if (want !== got) return `arguments.${key}: expected ${want} (the gold value's type), got ${got} ${preview(args[key])}`;
  }
  return null;
}

function preview(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 40 ? s.slice(0, 40) + '...' : s;
  } catch {
    return String(v);
  }
}

// ---- JSON Schema via ajv ----

const ajv = new Ajv({ allErrors: true, strict: false, formats: { date: isIsoDate } });
const validators = new Map<string, ValidateFunction | string>();

/** The compiled validator of a tool's `parameters` (compiled once per tool, then cached), or why it failed. */
function validatorFor(tool: ToolSpec): ValidateFunction | string {
  let v = validators.get(tool.name);
  if (v === undefined) {
    try {
      v = ajv.compile(tool.parameters);
    } catch (e) {
      v = `cannot compile the schema of ${tool.name}: ${e instanceof Error ? e.message : String(e)}`;
    }
    validators.set(tool.name, v);
  }
  return v;
}

/** True for a real calendar date written YYYY-MM-DD (2024-02-29 yes, 2025-02-29 and 2025-13-01 no). */
export function isIsoDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const y = +m[1];
  const mo = +m[2];
  const d = +m[3];
  if (mo < 1 || mo > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  return d <= days;
}

function schemaFailures(tool: ToolSpec | undefined, args: unknown): string[] {
  if (!tool) return ['schema: the gold tool is not in the catalog'];
  if (!isJsonObject(args)) {
    return [args === undefined ? 'arguments: missing' : `arguments: expected an object, got a ${jsonTypeName(args)}`];
  }
  const validate = validatorFor(tool);
  if (typeof validate === 'string') return [validate];
  if (validate(args)) return [];
  return (validate.errors ?? []).map((e) => ajvMessage(e, args));
}

function ajvMessage(e: ErrorObject, args: Record<string, unknown>): string {
  const path = 'arguments' + e.instancePath.split('/').slice(1).map((k) => (/^\d+$/.test(k) ? `[${k}]` : `.${k.replace(/~1/g, '/').replace(/~0/g, '~')}`)).join('');
  const value = valueAt(args, e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `arguments: missing required argument ${quote(String(p.missingProperty))}`;
    case 'additionalProperties':
      return `arguments: unexpected argument ${quote(String(p.additionalProperty))}`;
    case 'type':
      return `${path}: expected ${String(p.type)}, got ${jsonTypeName(value)} ${preview(value)}`;
    case 'format':
      return p.format === 'date'
        ? `${path}: expected ISO date YYYY-MM-DD, got ${preview(value)}`
        : `${path}: expected format ${String(p.format)}, got ${preview(value)}`;
    case 'enum':
      return `${path}: expected one of ${(p.allowedValues as unknown[]).map((x) => preview(x)).join(', ')}, got ${preview(value)}`;
    default:
      return `${path}: ${e.message ?? e.keyword}`;
  }
}

function valueAt(root: unknown, pointer: string): unknown {
  let v: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof v !== 'object' || v === null || !Object.prototype.hasOwnProperty.call(v, k)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

// ---- strict-only rules for control actions ----

function controlFailures(tool: ToolSpec, args: Record<string, unknown>, gold: Gold): string[] {
  const out: string[] = [];
  const allowed = tool.parameters.properties;
  for (const k of Object.keys(args)) {
    if (!Object.prototype.hasOwnProperty.call(allowed, k)) out.push(`arguments: control action ${tool.name} must not carry argument ${quote(k)}`);
  }
  if (tool.name === 'ask_user' && Array.isArray(args.missing)) {
    const got = args.missing as unknown[];
    const want = Array.isArray(gold.arguments.missing) ? (gold.arguments.missing as unknown[]) : [];
    const strs = got.filter((x): x is string => typeof x === 'string');
    const dup = strs.filter((x, i) => strs.indexOf(x) !== i);
    if (dup.length) out.push(`arguments.missing: lists ${quote(dup[0])} more than once`);
    const extra = strs.filter((x) => !want.includes(x));
    const lacking = want.filter((x) => typeof x === 'string' && !strs.includes(x)) as string[];
    if (extra.length || lacking.length) {
      const parts: string[] = [];
      if (lacking.length) parts.push(`does not list ${lacking.map((x) => quote(x)).join(', ')}`);
      if (extra.length) parts.push(`lists ${extra.map((x) => quote(x)).join(', ')}, which the user gave or which do not exist`);
      out.push(`arguments.missing: must list exactly the missing arguments [${want.map((x) => preview(x)).join(', ')}]: ${parts.join('; ')}`);
    }
  }
  return out;
}

// ---- execution ----

function safeExecute(name: string, args: unknown): ExecResult {
  try {
    return executeTool(name, args);
  } catch (e) {
    // executeTool promises never to throw; if it ever does, the completion still only scores 0 here.
    return failure(`the executor threw: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The course's execution: `execute_tool(call["name"], call["arguments"])`, reading only declared arguments. */
function runSeed(p: Prepared, value: Record<string, unknown>): ExecResult {
  if (p.exec.seed) return p.exec.seed;
  let r: ExecResult;
  if (typeof value.name !== 'string') r = failure(`no tool to run: name is ${describeName(value.name)}`);
  else if (!isJsonObject(value.arguments)) r = failure(`no arguments object to run with`);
  else {
    const tool = getTool(value.name);
    if (!tool) r = safeExecute(value.name, value.arguments); // unknown tool: let the executor say so
    else {
      const declared: Record<string, unknown> = Object.create(null);
      for (const k of Object.keys(tool.parameters.properties)) {
        if (Object.prototype.hasOwnProperty.call(value.arguments, k)) declared[k] = value.arguments[k];
      }
      r = safeExecute(value.name, declared);
    }
  }
  p.exec.seed = r;
  return r;
}

/** Execution with the arguments exactly as written (tiered and strict). */
function runRaw(p: Prepared, value: Record<string, unknown>): ExecResult {
  if (p.exec.raw) return p.exec.raw;
  let r: ExecResult;
  if (typeof value.name !== 'string') r = failure(`no tool to run: name is ${describeName(value.name)}`);
  else if (!isJsonObject(value.arguments)) r = failure(`no arguments object to run with`);
  else r = safeExecute(value.name, value.arguments);
  p.exec.raw = r;
  return r;
}

function executionFailure(r: ExecResult, expected: string): string | null {
  if (!r.success) return `execution: ${r.message}`;
  if (r.data.text === expected) return null;
  return `execution: got ${quote(r.data.text)}, expected ${quote(expected)}`;
}
