/**
 * Sandboxed tool execution: validate a call's arguments against its schema, then look the answer up in the
 * mock market.
 *
 * `executeTool` never throws, whatever it is given (unknown names, `__proto__` keys, non-objects, megabyte
 * strings): every failure is a `Failure` (src/util/result.ts) whose `message` is a short, readable reason. The
 * write tool (place_order) runs in dry-run only: it appends a record to an in-memory log and touches nothing
 * else. Synthetic tools (tools.ts) run on their hash-based figures (market.ts `syntheticFigure`) once their
 * arguments name a known ticker, trading day, company, fiscal year and currency.
 *
 * `text` follows the course's `str(result)`: numbers as JS `String(n)` ("243.36", "391035000000", "110.4");
 * control actions give "no_call", "refuse" and "ask_user:<sorted missing names joined by ','>".
 *
 * What this is not: the verifier (src/verify decides what a call is worth) or a JSON parser.
 */
import { getTool, type ParamSchema, type ToolSpec } from './tools';
import { COMPANIES, COMPANY_BY_TICKER, CURRENCIES, FISCAL_YEARS, MARKET, TRADING_DAYS, lookup, syntheticFigure, syntheticShare } from './market';
import { failure, success, type Result } from '../util/result';

/** What running a call gave: the value and its text (what the verifier compares with expected_result). */
export interface Executed {
  value: unknown;
  text: string;
}

export type ExecResult = Result<Executed>;

/** What place_order would have done. */
export interface DryRunRecord {
  tool: 'place_order';
  ticker: string;
  side: 'buy' | 'sell';
  quantity: number;
  status: 'dry_run';
}

/** Longest string argument accepted (anything longer is an error, and never echoed in full). */
const MAX_STRING = 200;
/** The dry-run log keeps the most recent records only, so a long RL run cannot grow it without bound. */
const MAX_LOG = 10_000;
const LOG: DryRunRecord[] = [];

/** The dry-run log (most recent last). A copy: callers cannot edit it. */
export function dryRunLog(): DryRunRecord[] {
  return LOG.map((r) => ({ ...r }));
}

/** Empty the dry-run log. */
export function clearDryRunLog(): void {
  LOG.length = 0;
}

/** Execute one call. Never throws. */
export function executeTool(name: string, args: unknown): ExecResult {
  try {
    return run(name, args);
  } catch (e) {
    // Defensive only: nothing below is expected to throw.
    return fail(`internal error: ${show(e instanceof Error ? e.message : String(e))}`);
  }
}

function run(name: string, args: unknown): ExecResult {
  if (typeof name !== 'string') return fail(`tool name must be a string, got ${typeOf(name)}`);
  const spec = getTool(name);
  if (!spec) return fail(`unknown tool ${show(name)}`);
  const checked = checkArgs(spec, args);
  if (!checked.success) return checked;
  const a = checked.data;
  if (spec.synthetic) return runSynthetic(spec, a);
  switch (spec.name) {
    case 'no_call':
      return ok(null, 'no_call');
    case 'refuse':
      return ok({ reason: a.reason }, 'refuse');
    case 'ask_user': {
      const missing = (a.missing as string[]).slice().sort();
      if (missing.length === 0) return fail('ask_user: missing must name at least one argument');
      return ok({ missing, question: a.question }, 'ask_user:' + missing.join(','));
    }
    case 'get_stock_price':
      return price(a.ticker as string, a.date as string);
    case 'get_market_cap': {
      const p = price(a.ticker as string, a.date as string);
      if (!p.success) return p;
      const cap = Math.round((p.data.value as number) * MARKET.shares_outstanding[a.ticker as string]);
      return num(cap);
    }
    case 'get_revenue':
    case 'get_profit':
    case 'get_cash_flow': {
      const field = spec.name === 'get_revenue' ? 'revenue' : spec.name === 'get_profit' ? 'profit' : 'cash_flow';
      const byYear = lookup(MARKET[field], a.company as string);
      if (!byYear) return fail(`unknown company ${show(a.company)}${hintCompany(a.company as string)}`);
      const v = lookup(byYear, String(a.fiscal_year));
      if (v === undefined) return fail(`no ${field} for ${a.company} in fiscal year ${a.fiscal_year} (have ${Object.keys(byYear).join(', ')})`);
      return num(v);
    }
    case 'get_dividend': {
      const byYear = lookup(MARKET.dividends, a.ticker as string);
      if (!byYear) return fail(`unknown ticker ${show(a.ticker)}`);
      const v = lookup(byYear, String(a.fiscal_year));
      if (v === undefined) return fail(`no dividend for ${a.ticker} in fiscal year ${a.fiscal_year}`);
      return num(v);
    }
    case 'get_exchange_rate':
    case 'convert_currency': {
      const from = a.from_currency as string, to = a.to_currency as string;
      const rate = fxRate(from, to);
      if (rate === undefined) return fail(`no exchange rate from ${show(from)} to ${show(to)}`);
      if (spec.name === 'get_exchange_rate') return num(rate);
      return num(roundHalfEven2((a.amount as number) * rate));
    }
    case 'place_order': {
      const ticker = a.ticker as string;
      if (!lookup(MARKET.prices, ticker)) return fail(`unknown ticker ${show(ticker)}`);
      const quantity = a.quantity as number;
      if (quantity <= 0 || quantity > 1_000_000) return fail(`quantity must be between 1 and 1000000, got ${quantity}`);
      const rec: DryRunRecord = { tool: 'place_order', ticker, side: a.side as 'buy' | 'sell', quantity, status: 'dry_run' };
      LOG.push(rec);
      if (LOG.length > MAX_LOG) LOG.splice(0, LOG.length - MAX_LOG);
      return ok({ ...rec }, `dry_run:${rec.side} ${rec.quantity} ${rec.ticker}`);
    }
    default:
      return fail(`tool ${spec.name} has no implementation`);
  }
}

function fxRate(from: string, to: string): number | undefined {
  if (from === to && lookup(MARKET.fx, from)) return 1;
  return lookup(lookup(MARKET.fx, from) ?? {}, to);
}

/**
 * A synthetic tool: check that every argument names something the mock market knows, then read the figure.
 * The key is the canonical arguments in schema order ("AAPL|2025-01-03"); fee tools take a hashed share of
 * the converted amount (rounded as convert_currency rounds).
 */
function runSynthetic(spec: ToolSpec, a: Record<string, unknown>): ExecResult {
  const syn = spec.synthetic!;
  const parts: string[] = [];
  for (const k of Object.keys(spec.parameters.properties)) {
    const v = a[k];
    const why = unknownValue(k, v);
    if (why) return fail(`${spec.name}: ${why}`);
    if (k !== 'amount') parts.push(String(v));
  }
  const key = parts.join('|');
  const out = syn.output;
  if (out.kind === 'number' || out.kind === 'label') {
    const v = syntheticFigure(spec.name, key, out);
    return typeof v === 'number' ? num(v) : ok(v, v);
  }
  const rate = fxRate(a.from_currency as string, a.to_currency as string)!;
  const converted = (a.amount as number) * rate;
  const share = syntheticShare(spec.name, key, out);
  return num(roundHalfEven2(out.kind === 'fee_share' ? converted * share : converted * (1 - share)));
}

/** Why an argument value is not one the mock market knows (null when it is). Types are already checked. */
function unknownValue(k: string, v: unknown): string | null {
  switch (k) {
    case 'ticker':
      return lookup(MARKET.prices, v as string) ? null : `unknown ticker ${show(v)}${hintTicker(v as string)}`;
    case 'date':
      return TRADING_DAYS.includes(v as string) ? null : `no data for ${v} (not a trading day in the mock data)`;
    case 'company':
      return COMPANIES.includes(v as string) ? null : `unknown company ${show(v)}${hintCompany(v as string)}`;
    case 'fiscal_year':
      return FISCAL_YEARS.includes(v as number) ? null : `no data for fiscal year ${v} (have ${FISCAL_YEARS.join(', ')})`;
    case 'currency':
    case 'from_currency':
    case 'to_currency':
      return CURRENCIES.includes(v as string) ? null : `unknown currency ${show(v)}`;
    default:
      return null;
  }
}

function price(ticker: string, date: string): ExecResult {
  const byDate = lookup(MARKET.prices, ticker);
  if (!byDate) return fail(`unknown ticker ${show(ticker)}${hintTicker(ticker)}`);
  const p = lookup(byDate, date);
  if (p === undefined) return fail(`no closing price for ${ticker} on ${date} (not a trading day in the mock data)`);
  return num(p);
}

/**
 * Check `args` against the tool's schema: a plain object, no unknown keys, every required key present with
 * the right type. Returns the arguments (a null-prototype copy), or why not.
 */
export function checkArgs(spec: ToolSpec, args: unknown): Result<Record<string, unknown>> {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    return failure(`${spec.name}: arguments must be an object, got ${typeOf(args)}`);
  }
  const props = spec.parameters.properties;
  const keys = Object.keys(args);
  for (const k of keys) {
    if (!Object.prototype.hasOwnProperty.call(props, k)) return failure(`${spec.name}: unknown argument ${show(k)}`);
  }
  const out: Record<string, unknown> = Object.create(null);
  for (const k of spec.parameters.required) {
    if (!keys.includes(k)) return failure(`${spec.name}: missing required argument '${k}'`);
    const v = (args as Record<string, unknown>)[k];
    const why = checkValue(props[k], v);
    if (why) return failure(`${spec.name}: argument '${k}' ${why}`);
    out[k] = v;
  }
  return success(out);
}

function checkValue(s: ParamSchema, v: unknown): string | null {
  switch (s.type) {
    case 'string':
      if (typeof v !== 'string') return `must be a string, got ${typeOf(v)}`;
      if (v.length > MAX_STRING) return `is too long (${v.length} characters)`;
      if (s.enum && !s.enum.includes(v)) return `must be one of ${s.enum.join(' | ')}, got ${show(v)}`;
      if (s.format === 'date' && !isIsoDate(v)) return `must be a date as YYYY-MM-DD, got ${show(v)}`;
      return null;
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v) ? null : `must be an integer, got ${typeOf(v)} ${show(v)}`;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? null : `must be a finite number, got ${typeOf(v)} ${show(v)}`;
    case 'array':
      if (!Array.isArray(v)) return `must be an array, got ${typeOf(v)}`;
      if (v.length > 16) return `has too many items (${v.length})`;
      for (const x of v) if (typeof x !== 'string' || x.length > MAX_STRING) return 'must hold short strings only';
      return null;
  }
}

/** A real calendar date written YYYY-MM-DD. */
export function isIsoDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3];
}

/**
 * Python's `round(x, 2)` on a double. JS `toFixed` already rounds the exact binary value; the only
 * difference is an exact tie, which for 2 decimals happens only at odd multiples of 1/8 (x.125, x.375, ...):
 * Python rounds those half to even, toFixed away from zero.
 */
export function roundHalfEven2(x: number): number {
  if (!Number.isFinite(x) || Math.abs(x) >= 1e15) return x;
  if (Number.isInteger(x * 8) && !Number.isInteger(x * 4)) {
    const lo = Math.floor(x * 100); // exact: x * 100 = 12.5 * k
    return (lo % 2 === 0 ? lo : lo + 1) / 100;
  }
  return Number(x.toFixed(2));
}

function num(v: number): ExecResult {
  return ok(v, String(v));
}

function ok(value: unknown, text: string): ExecResult {
  return success({ value, text });
}

function fail(message: string): ExecResult {
  return failure(message);
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** A value for an error message: JSON-ish, cut to 40 characters so huge inputs never flood a log. */
function show(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  } catch {
    s = '<unprintable>';
  }
  return s.length > 40 ? s.slice(0, 37) + '...' : s;
}

function hintTicker(t: string): string {
  const up = typeof t === 'string' ? t.toUpperCase() : '';
  if (up !== t && lookup(MARKET.prices, up)) return ` (did you mean '${up}'?)`;
  for (const [tk, c] of Object.entries(COMPANY_BY_TICKER)) if (c.toLowerCase() === String(t).toLowerCase()) return ` (use the ticker '${tk}')`;
  return '';
}

function hintCompany(c: string): string {
  const byTicker = lookup(COMPANY_BY_TICKER, String(c).toUpperCase());
  return byTicker ? ` (use the company name '${byTicker}')` : '';
}
