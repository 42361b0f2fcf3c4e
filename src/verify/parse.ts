/**
 * Parsing a model's completion into one tool call, safely.
 *
 * This is a small strict JSON parser (RFC 8259), not `JSON.parse`, because the verifier must see things
 * `JSON.parse` hides or allows: duplicated keys (JSON.parse silently keeps the last one, so a completion could
 * say two different names at once), keys like `__proto__` (prototype pollution), nesting deep enough to blow
 * the stack, and whether a number was written as an integer (`2024`) or a float (`2024.0`) - the course's
 * Python reward distinguishes `int` from `float`, and the seed reward reproduces it.
 *
 * It never throws on model output: every failure comes back as a `Failure` (src/util/result.ts) whose `message`
 * says why and where.
 * It is not a general JSON library: objects are built with a null prototype and it refuses inputs over
 * `MAX_INPUT_CHARS` before looking at them.
 */

import { failure, success, type Result } from '../util/result';

/** A parsed call: what the model asked to run. `arguments` is a null-prototype object. */
export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/**
 * One JSON value read from a completion. `value` is it (objects with a null prototype). `call` is set only when
 * the value is an object whose `name` is a string and whose `arguments` is an object; otherwise it is null
 * (e.g. an array, a string, or an object without a usable `name`) and scoring decides what that is worth.
 * `wrapper` says which lenient wrapper was removed, if any.
 */
export interface Parsed {
  call: ToolCall | null;
  value: unknown;
  wrapper?: 'fence' | 'tool_call';
}

/** The outcome of parsing a completion: the value read, or (not JSON, or refused by a guard) why not. */
export type ParseResult = Result<Parsed>;

export interface ParseOptions {
  /** Also accept a ```json fence or a <tool_call>...</tool_call> wrapper around the whole output. Default false. */
  lenient?: boolean;
}

/** Inputs longer than this (UTF-16 code units, i.e. string length) are refused unread. */
export const MAX_INPUT_CHARS = 1_000_000;
/** Deepest nesting of objects/arrays accepted. A tool call needs 3; 32 leaves room and bounds recursion. */
export const MAX_DEPTH = 32;
/** Keys that could reach an object's prototype if someone later copied the value into a plain object. */
export const FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

// Containers -> keys (or array indices) whose number was written with a fraction or exponent (`2024.0`, `1e3`).
// Only the float ones are recorded: most numbers in a tool call are integers.
const floatLiterals = new WeakMap<object, Set<string | number>>();

/**
 * How a number inside a parsed container was written: 'int' (`120`), 'float' (`120.0`, `1.2e2`), or undefined
 * when `container[key]` is not a number. This mirrors Python's `json.loads`, which returns `int` for the first
 * and `float` for the others; the seed reward's type check (`isinstance(value, type(gold_value))`) needs it.
 */
export function numberLiteralKind(container: object, key: string | number): 'int' | 'float' | undefined {
  const v = (container as Record<string | number, unknown>)[key];
  if (typeof v !== 'number') return undefined;
  return floatLiterals.get(container)?.has(key) ? 'float' : 'int';
}

/** A short name for a JSON value's type, for reasons: 'object', 'array', 'string', 'integer', 'number', ... */
export function jsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'object') return 'object';
  return typeof v; // string | boolean
}

/** True for a parsed JSON object (not an array, not null). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parse a completion as exactly one JSON value (whitespace around it is trimmed).
 * Strict by default: the whole trimmed text must be the JSON. With `{ lenient: true }` a single ```json fence
 * or `<tool_call>` wrapper around the whole text is removed first. Never throws.
 */
export function parseCall(text: string, opts: ParseOptions = {}): ParseResult {
  if (typeof text !== 'string') return failure(`completion is ${typeof text}, not a string`);
  if (text.length > MAX_INPUT_CHARS) {
    return failure(`output too long: ${text.length} characters > limit ${MAX_INPUT_CHARS}`);
  }
  let body = text.trim();
  let wrapper: 'fence' | 'tool_call' | undefined;
  if (opts.lenient) {
    const un = unwrap(body);
    if (un) {
      body = un.body;
      wrapper = un.wrapper;
    }
  }
  if (body.length === 0) return failure('empty output');
  let value: unknown;
  try {
    value = new Parser(body).parseDocument();
  } catch (e) {
    if (e instanceof JsonError) return failure(e.message);
    // Not expected (the parser bounds its own recursion), but model output must never crash the caller.
    return failure(`parser failure: ${e instanceof Error ? e.message : String(e)}`);
  }
  let call: ToolCall | null = null;
  if (isJsonObject(value) && typeof value.name === 'string' && isJsonObject(value.arguments)) {
    call = { name: value.name, arguments: value.arguments };
  }
  return success(wrapper ? { call, value, wrapper } : { call, value });
}

function unwrap(s: string): { body: string; wrapper: 'fence' | 'tool_call' } | null {
  if (s.startsWith('```') && s.endsWith('```') && s.length >= 6) {
    let inner = s.slice(3, -3);
    const m = /^(?:json)?[ \t]*\r?\n/i.exec(inner) ?? /^json(?=[\s{[])/i.exec(inner);
    if (m) inner = inner.slice(m[0].length);
    return { body: inner.trim(), wrapper: 'fence' };
  }
  const open = '<tool_call>';
  const close = '</tool_call>';
  if (s.startsWith(open) && s.endsWith(close) && s.length >= open.length + close.length) {
    return { body: s.slice(open.length, s.length - close.length).trim(), wrapper: 'tool_call' };
  }
  return null;
}

class JsonError extends Error {}

/** Recursive-descent JSON parser over one string. Throws JsonError (caught by parseCall). */
class Parser {
  private pos = 0;
  private depth = 0;
  private path: (string | number)[] = [];

  constructor(private readonly s: string) {}

  parseDocument(): unknown {
    this.ws();
    const v = this.value();
    this.ws();
    if (this.pos < this.s.length) {
      const c = this.s[this.pos];
      if (c === '{' || c === '[') {
        throw new JsonError(`more than one JSON value: a second value starts at position ${this.pos} (exactly one call expected)`);
      }
      throw new JsonError(`extra data after the JSON value at position ${this.pos}: ${quote(this.s.slice(this.pos, this.pos + 20))}`);
    }
    return v;
  }

  private fail(what: string): never {
    const where = this.path.length ? ` (in ${pathString(this.path)})` : '';
    if (this.pos >= this.s.length) throw new JsonError(`invalid JSON: unexpected end of input, ${what}${where}`);
    throw new JsonError(`invalid JSON: ${what} at position ${this.pos}, found ${quote(this.s.slice(this.pos, this.pos + 12))}${where}`);
  }

  private ws(): void {
    const s = this.s;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  private value(): unknown {
    const c = this.s[this.pos];
    switch (c) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c === '-' || (c >= '0' && c <= '9')) return this.number();
        for (const bad of ['NaN', 'Infinity', '-Infinity', 'undefined']) {
          if (this.s.startsWith(bad, this.pos)) {
            throw new JsonError(`invalid JSON: ${bad} is not a JSON value (position ${this.pos}${this.path.length ? `, in ${pathString(this.path)}` : ''})`);
          }
        }
        if (c === "'") this.fail('expected a value (JSON strings use double quotes)');
        return this.fail('expected a value');
    }
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) {
      throw new JsonError(`nesting deeper than ${MAX_DEPTH} levels at position ${this.pos}`);
    }
  }

  private object(): Record<string, unknown> {
    this.enter();
    this.pos++; // {
    const obj: Record<string, unknown> = Object.create(null);
    let floats: Set<string> | undefined;
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      this.depth--;
      return obj;
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') {
        this.fail(this.s[this.pos] === '}' ? 'trailing comma before }' : 'expected a double-quoted key');
      }
      const key = this.string();
      if (FORBIDDEN_KEYS.includes(key)) {
        throw new JsonError(`forbidden key ${quote(key)} in ${pathString(this.path)} (prototype keys are refused)`);
      }
      if (Object.prototype.hasOwnProperty.call(obj, key)) {
        throw new JsonError(`duplicate key ${quote(key)} in ${pathString(this.path)} (a call must say each thing once)`);
      }
      this.ws();
      if (this.s[this.pos] !== ':') this.fail("expected ':' after a key");
      this.pos++;
      this.ws();
      this.path.push(key);
      const start = this.pos;
      obj[key] = this.value();
      this.path.pop();
      if (typeof obj[key] === 'number' && isFloatLiteral(this.s, start, this.pos)) (floats ??= new Set()).add(key);
      this.ws();
      const c = this.s[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        break;
      }
      this.fail("expected ',' or '}'");
    }
    if (floats) floatLiterals.set(obj, floats);
    this.depth--;
    return obj;
  }

  private array(): unknown[] {
    this.enter();
    this.pos++; // [
    const arr: unknown[] = [];
    let floats: Set<number> | undefined;
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      this.depth--;
      return arr;
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] === ']') this.fail('trailing comma before ]');
      this.path.push(arr.length);
      const start = this.pos;
      const v = this.value();
      this.path.pop();
      if (typeof v === 'number' && isFloatLiteral(this.s, start, this.pos)) (floats ??= new Set()).add(arr.length);
      arr.push(v);
      this.ws();
      const c = this.s[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        break;
      }
      this.fail("expected ',' or ']'");
    }
    if (floats) floatLiterals.set(arr, floats);
    this.depth--;
    return arr;
  }

  private string(): string {
    const s = this.s;
    let p = this.pos + 1; // after the opening quote
    let out = '';
    let runStart = p;
    for (;;) {
      if (p >= s.length) {
        this.pos = p;
        this.fail('unterminated string');
      }
      const c = s.charCodeAt(p);
      if (c === 0x22) break; // "
      if (c < 0x20) {
        this.pos = p;
        this.fail('control character inside a string (escape it)');
      }
      if (c !== 0x5c) {
        p++;
        continue;
      }
      // backslash escape
      out += s.slice(runStart, p);
      const e = s[p + 1];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = s.slice(p + 2, p + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
            this.pos = p;
            this.fail('bad \\u escape');
          }
          out += String.fromCharCode(parseInt(hex, 16));
          p += 4;
          break;
        }
        default:
          this.pos = p;
          this.fail('bad escape in string');
      }
      p += 2;
      runStart = p;
    }
    out += s.slice(runStart, p);
    this.pos = p + 1;
    return out;
  }

  private number(): number {
    const s = this.s;
    const start = this.pos;
    let p = start;
    if (s[p] === '-') p++;
    if (s.startsWith('Infinity', p)) {
      throw new JsonError(`invalid JSON: -Infinity is not a JSON value (position ${start})`);
    }
    if (s[p] === '0') p++;
    else if (s[p] >= '1' && s[p] <= '9') while (s[p] >= '0' && s[p] <= '9') p++;
    else {
      this.pos = p;
      this.fail('expected a digit');
    }
    if (s[p] === '.') {
      p++;
      if (!(s[p] >= '0' && s[p] <= '9')) {
        this.pos = p;
        this.fail('expected a digit after the decimal point');
      }
      while (s[p] >= '0' && s[p] <= '9') p++;
    }
    if (s[p] === 'e' || s[p] === 'E') {
      p++;
      if (s[p] === '+' || s[p] === '-') p++;
      if (!(s[p] >= '0' && s[p] <= '9')) {
        this.pos = p;
        this.fail('expected a digit in the exponent');
      }
      while (s[p] >= '0' && s[p] <= '9') p++;
    }
    const v = Number(s.slice(start, p));
    if (!Number.isFinite(v)) throw new JsonError(`number ${s.slice(start, Math.min(p, start + 30))} is out of range (position ${start})`);
    this.pos = p;
    return v;
  }

  private literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.pos)) this.fail('expected a value');
    this.pos += word.length;
    return v;
  }
}

function isFloatLiteral(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s[i];
    if (c === '.' || c === 'e' || c === 'E') return true;
  }
  return false;
}

/** `arguments.date`, `arguments.missing[0]`; the top level is `(top level)`. */
export function pathString(path: readonly (string | number)[]): string {
  if (path.length === 0) return 'the top-level object';
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) out += (out ? '.' : '') + k;
    else out += `[${JSON.stringify(k)}]`;
  }
  return out;
}

/** A string shown in a reason: JSON-quoted, cut to 40 characters. */
export function quote(s: string): string {
  const cut = s.length > 40 ? s.slice(0, 40) + '...' : s;
  return JSON.stringify(cut);
}
