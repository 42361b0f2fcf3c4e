/**
 * Dataset synthesis: seeded, templated (query -> gold call) rows for the train, test and heldout_tools splits.
 *
 * Each row is built by picking a behaviour (execute / ask_user / refuse / no_call, in the configured mix),
 * a template (templates.ts), canonical argument values, and a surface form for each value ("Jan 3, 2025" for
 * 2025-01-03, "Apple" for AAPL, "$1.2k" for 1200 USD). The gold call is then EXECUTED and its text becomes
 * `expected_result`, so every gold call runs by construction.
 *
 * What is held out, and why:
 * - test: same tools as train, but (a) every 5th template of each group is used only in test, and (b) held-out
 *   argument VALUES: 5 trading days, some (company, fiscal year) pairs, some currency pairs for the rate tool,
 *   amounts and order quantities whose hash falls in a test bucket. Entity strings themselves (tickers,
 *   company names, currency codes) are NOT held out: every one of them appears in train, because a small model
 *   cannot copy a name it has never seen, and the test asks whether it generalises phrasings and value
 *   combinations, not whether it can invent a ticker.
 * - heldout_tools: execute rows whose gold tool (heldout: true in tools.ts) never appears in train; their
 *   prompts list all tools, the held-out ones included.
 * - No query (hence no prompt) appears twice anywhere: a global set rejects repeats and we redraw.
 *
 * What this is not: a paraphrase model. Variety comes from templates x values x surface forms only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng, hash32 } from '../util/rng';
import { TOOLS, TRAIN_TOOLS, HELDOUT_TOOLS, type ToolSpec } from './tools';
import { COMPANY_BY_TICKER, CURRENCIES, FISCAL_YEARS, TICKERS, TRADING_DAYS } from './market';
import { executeTool } from './execute';
import { buildMessages, buildPrompt } from './prompt';
import { ASK_USER_TEMPLATES, FILLERS, NO_CALL_TEMPLATES, REFUSE_TEMPLATES, TOOL_TEMPLATES } from './templates';

export type Split = 'train' | 'test' | 'heldout_tools';
export type Behavior = 'execute' | 'ask_user' | 'refuse' | 'no_call';
export const BEHAVIORS: readonly Behavior[] = ['execute', 'ask_user', 'refuse', 'no_call'];

export interface Row {
  id: string;
  split: Split;
  /** The course's prompt: instructions + tool list JSON + "User request: ...". */
  prompt: string;
  /** Chat form: compact system prompt + the user query. */
  messages: { role: 'system' | 'user'; content: string }[];
  query: string;
  /** JSON string {"name": ..., "arguments": {...}}. */
  gold_call: string;
  /** executeTool(gold).text */
  expected_result: string;
  behavior: Behavior;
  /** The gold call's name (a tool or a control action). */
  tool: string;
  template_id: string;
}

export type Mix = Record<Behavior, number>;
/** The default behaviour mix (fractions of each split except heldout_tools, which is all execute). */
export const DEFAULT_MIX: Mix = { execute: 0.6, ask_user: 0.2, refuse: 0.1, no_call: 0.1 };

export interface SynthOptions {
  seed: number;
  /** Number of train rows. */
  n: number;
  /** Number of test rows (default 300). */
  nTest?: number;
  /** Number of heldout_tools rows (default 150). */
  nHeldout?: number;
  /** Behaviour fractions (normalised); missing keys count as 0 when any key is given. */
  mix?: Partial<Mix>;
}

export type Splits = { train: Row[]; test: Row[]; heldout_tools: Row[] };

// --- held-out values ----------------------------------------------------------------------------------------
/** Trading days used only in test (and freely in heldout_tools). The course's 2025-01-02/03 stay in train. */
export const TEST_DATES: readonly string[] = ['2025-01-09', '2025-01-16', '2025-01-23', '2025-01-28', '2025-01-31'];
const bucket = (key: string) => hash32(key) % 5 === 0; // ~20% of values land in the test bucket
const COURSE_PAIRS = new Set(['Apple:2024', 'Microsoft:2024', 'Tesla:2024', 'USD:EUR', 'EUR:USD', 'USD:JPY']);
/** (company, fiscal year) pairs used only in test. */
export const isTestFundamental = (company: string, year: number) =>
  !COURSE_PAIRS.has(`${company}:${year}`) && bucket(`fundamental:${company}:${year}`);
/** Currency pairs used only in test (for get_exchange_rate). */
export const isTestPair = (from: string, to: string) => !COURSE_PAIRS.has(`${from}:${to}`) && bucket(`pair:${from}:${to}`);
/** Amounts used only in test (for convert_currency). */
export const isTestAmount = (a: number) => bucket(`amount:${a}`);
/** Order quantities used only in test (for place_order). */
export const isTestQuantity = (q: number) => bucket(`quantity:${q}`);

/** Is template j of a group of `len` held out for test? Every 5th; in a small group (3-4), the last one. */
export function isTestTemplate(j: number, len: number): boolean {
  return len >= 5 ? j % 5 === 4 : len >= 3 && j === len - 1;
}

// --- template inventory -------------------------------------------------------------------------------------
export interface Template {
  id: string;
  text: string;
  behavior: Behavior;
  /** Gold name: the tool for execute rows, else the control action. */
  tool: string;
  /** ask_user: the tool whose arguments are missing, and which. */
  target?: string;
  missing?: readonly string[];
  /** refuse: the gold reason. */
  reason?: string;
  split: Split;
}

const pad2 = (i: number) => String(i + 1).padStart(2, '0');

/** Every template with its id and the split it belongs to. */
export const TEMPLATES: readonly Template[] = (() => {
  const out: Template[] = [];
  const heldout = new Set(HELDOUT_TOOLS.map((t) => t.name));
  for (const [tool, texts] of Object.entries(TOOL_TEMPLATES)) {
    texts.forEach((text, j) => out.push({
      id: `${tool}.${pad2(j)}`, text, behavior: 'execute', tool,
      split: heldout.has(tool) ? 'heldout_tools' : isTestTemplate(j, texts.length) ? 'test' : 'train',
    }));
  }
  for (const g of ASK_USER_TEMPLATES) {
    g.texts.forEach((text, j) => out.push({
      id: `ask_user.${g.tool}.${g.missing.join('+')}.${pad2(j)}`, text, behavior: 'ask_user', tool: 'ask_user',
      target: g.tool, missing: g.missing, split: isTestTemplate(j, g.texts.length) ? 'test' : 'train',
    }));
  }
  for (const g of REFUSE_TEMPLATES) {
    g.texts.forEach((text, j) => out.push({
      id: `refuse.${g.category}.${pad2(j)}`, text, behavior: 'refuse', tool: 'refuse', reason: g.reason,
      split: isTestTemplate(j, g.texts.length) ? 'test' : 'train',
    }));
  }
  NO_CALL_TEMPLATES.forEach((text, j) => out.push({
    id: `no_call.${pad2(j)}`, text, behavior: 'no_call', tool: 'no_call',
    split: isTestTemplate(j, NO_CALL_TEMPLATES.length) ? 'test' : 'train',
  }));
  return out;
})();

// --- surface forms --------------------------------------------------------------------------------------------
export const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
export const CURRENCY_NAMES: Record<string, string[]> = {
  USD: ['US dollars', 'dollars'], EUR: ['euros'], JPY: ['Japanese yen', 'yen'], GBP: ['British pounds', 'pounds sterling'],
  CHF: ['Swiss francs'], CAD: ['Canadian dollars'],
};
export const CURRENCY_SYMBOL: Record<string, string> = { USD: '$', EUR: '€', GBP: '£', JPY: '¥' };
export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];

function ordinal(d: number): string {
  const s = d % 10 === 1 && d !== 11 ? 'st' : d % 10 === 2 && d !== 12 ? 'nd' : d % 10 === 3 && d !== 13 ? 'rd' : 'th';
  return `${d}${s}`;
}

/**
 * A date written one of several unambiguous ways (half the time ISO). Day-first and month-first numeric forms
 * ("03/01/2025") are avoided: they are ambiguous, and a gold answer must be decidable.
 */
export function formatDate(iso: string, rng: Rng): string {
  const [y, m, d] = iso.split('-').map(Number);
  const month = MONTHS[m - 1], mon = month.slice(0, 3);
  const forms = [
    iso, iso, iso, iso, iso,
    `${month} ${d}, ${y}`, `${month} ${ordinal(d)} ${y}`, `${d} ${month} ${y}`, `${mon} ${d}, ${y}`,
    `${iso.replace(/-/g, '/')}`, `${d} ${mon} ${y}`,
  ];
  return rng.pick(forms);
}

/** A fiscal year as "2024", "FY2024", "FY 2024", "FY24", "fiscal 2024" or "fiscal year 2024". */
export function formatFiscalYear(y: number, rng: Rng): string {
  return rng.pick([String(y), String(y), `FY${y}`, `FY ${y}`, `FY${String(y).slice(2)}`, `fiscal ${y}`, `fiscal year ${y}`]);
}

function withCommas(a: number): string {
  const [i, f] = String(a).split('.');
  return i.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (f ? '.' + f : '');
}

/** A bare amount: "1200", "1,200", "1.2k", "49.50". The gold is the number. */
export function formatAmount(a: number, rng: Rng): string {
  const forms = [String(a)];
  if (a >= 1000) forms.push(withCommas(a), withCommas(a));
  if (a >= 1000 && a % 100 === 0) forms.push(`${a / 1000}k`);
  if (!Number.isInteger(a)) forms.push(a.toFixed(2)); // 49.5 -> "49.50" (amounts have at most 2 decimals)
  return rng.pick(forms);
}

/** An amount with its currency: "$1,200", "€500", "1,200 USD", "USD 1,200", "500 euros". */
export function formatMoney(a: number, code: string, rng: Rng): string {
  const amt = formatAmount(a, rng);
  const forms = [`${amt} ${code}`, `${code} ${amt}`, `${amt} ${rng.pick(CURRENCY_NAMES[code])}`];
  if (CURRENCY_SYMBOL[code]) forms.push(`${CURRENCY_SYMBOL[code]}${amt}`, `${CURRENCY_SYMBOL[code]}${amt}`);
  return rng.pick(forms);
}

const currencySurface = (code: string, rng: Rng) => (rng.next() < 0.6 ? code : rng.pick(CURRENCY_NAMES[code]));
const possessive = (s: string) => `${s}'s`;

// --- argument draws -----------------------------------------------------------------------------------------
type Slots = Record<string, string>;
interface Draw { args: Record<string, unknown>; slots: Slots }

/** Draw values from a pool, keeping only those that belong to the split (test values for test, else the rest). */
function drawIn<T>(rng: Rng, draw: () => T, isTest: (v: T) => boolean, split: Split): T {
  for (let i = 0; i < 1000; i++) {
    const v = draw();
    if (split === 'heldout_tools' || isTest(v) === (split === 'test')) return v;
  }
  throw new Error(`synth: no value for split ${split} after 1000 draws`);
}

function drawAmountValue(rng: Rng): number {
  switch (rng.int(4)) {
    case 0: return 1 + rng.int(999);
    case 1: return (1 + rng.int(200)) * 100;
    case 2: return (1 + rng.int(50)) * 1000;
    default: return 1 + rng.int(999) + rng.pick([0.5, 0.25, 0.99, 0.75, 0.1]);
  }
}

function stockSlots(ticker: string, rng: Rng): Slots {
  const name = rng.next() < 0.6 ? ticker : COMPANY_BY_TICKER[ticker];
  return { stock: name, stock_pos: possessive(name), tick: ticker };
}

function companySlots(company: string, rng: Rng): Slots {
  const ticker = TICKERS.find((t) => COMPANY_BY_TICKER[t] === company)!;
  const name = rng.next() < 0.8 ? company : ticker;
  return { co: name, co_pos: possessive(name), tick: ticker, stock: rng.next() < 0.6 ? ticker : company };
}

/** Canonical arguments for `tool` in this split, plus every slot its templates may use. */
function drawArgs(tool: string, rng: Rng, split: Split): Draw {
  switch (tool) {
    case 'get_stock_price':
    case 'get_market_cap': {
      const ticker = rng.pick(TICKERS);
      const date = drawIn(rng, () => rng.pick(TRADING_DAYS), (d) => TEST_DATES.includes(d), split);
      return { args: { ticker, date }, slots: { ...stockSlots(ticker, rng), date: formatDate(date, rng) } };
    }
    case 'get_revenue':
    case 'get_profit':
    case 'get_cash_flow': {
      const [company, fiscal_year] = drawIn(
        rng,
        () => [COMPANY_BY_TICKER[rng.pick(TICKERS)], rng.pick(FISCAL_YEARS)] as const,
        ([c, y]) => isTestFundamental(c, y),
        split,
      );
      return { args: { company, fiscal_year }, slots: { ...companySlots(company, rng), fy: formatFiscalYear(fiscal_year, rng) } };
    }
    case 'get_dividend': {
      const ticker = rng.pick(TICKERS), fiscal_year = rng.pick(FISCAL_YEARS);
      return { args: { ticker, fiscal_year }, slots: { ...stockSlots(ticker, rng), fy: formatFiscalYear(fiscal_year, rng) } };
    }
    case 'get_exchange_rate':
    case 'convert_currency': {
      const pairTest = tool === 'get_exchange_rate' ? ([f, t]: readonly string[]) => isTestPair(f, t) : () => split === 'test';
      const [from_currency, to_currency] = drawIn(rng, () => {
        const f = rng.pick(CURRENCIES);
        return [f, rng.pick(CURRENCIES.filter((c) => c !== f))] as const;
      }, pairTest, split);
      const amount = drawIn(rng, () => drawAmountValue(rng), (a) => tool === 'convert_currency' ? isTestAmount(a) : split === 'test', split);
      const slots: Slots = {
        from: currencySurface(from_currency, rng), to: currencySurface(to_currency, rng),
        fromc: from_currency, toc: to_currency,
        amt: formatAmount(amount, rng), money: formatMoney(amount, from_currency, rng),
      };
      const args = tool === 'convert_currency' ? { amount, from_currency, to_currency } : { from_currency, to_currency };
      return { args, slots };
    }
    case 'place_order': {
      const ticker = rng.pick(TICKERS);
      const side = rng.pick(['buy', 'sell'] as const);
      const quantity = drawIn(rng, () => (rng.next() < 0.3 ? 1 + rng.int(12) : 1 + rng.int(500)), isTestQuantity, split);
      const qty = quantity <= 12 && rng.next() < 0.3 ? NUMBER_WORDS[quantity] : String(quantity);
      const verb = side === 'buy' ? rng.pick(['buy', 'buy', 'purchase']) : rng.pick(['sell', 'sell', 'unload']);
      return { args: { ticker, side, quantity }, slots: { ...stockSlots(ticker, rng), side: verb, side_noun: side, qty } };
    }
    default:
      throw new Error(`synth: no argument drawer for tool ${tool}`);
  }
}

/** Slots for no_call / refuse templates (fillers plus a company). */
function fillerSlots(rng: Rng): Slots {
  const company = rng.pick(TICKERS.map((t) => COMPANY_BY_TICKER[t]));
  return {
    ...companySlots(company, rng),
    topic: rng.pick(FILLERS.topic), concept: rng.pick(FILLERS.concept), country: rng.pick(FILLERS.country),
    victim: rng.pick(FILLERS.victim), usd: rng.pick(FILLERS.usd),
    n1: String(2 + rng.int(98)), n2: String(2 + rng.int(98)),
  };
}

/** Fill `{slot}`s; a missing slot is a bug in the templates, so it throws. The first letter is capitalised. */
export function render(text: string, slots: Slots): string {
  const s = text.replace(/\{(\w+)\}/g, (_, k: string) => {
    if (!Object.prototype.hasOwnProperty.call(slots, k)) throw new Error(`synth: template slot {${k}} has no value in "${text}"`);
    return slots[k];
  });
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const OPENERS = ['Hey, ', 'Quick one: ', 'Question: ', 'Okay, ', 'Listen, ', 'So, '];

/**
 * Sometimes put a conversational opener before a no_call / refuse query ("Hey, write a poem..."): these
 * templates have few slots, and the opener multiplies how many distinct queries they can make.
 */
function opener(q: string, rng: Rng): string {
  if (rng.next() >= 0.35 || /^(Hi|Good morning|Thanks)\b/.test(q)) return q;
  const first = /^(I|I'm|I'd)\b/.test(q) || /^[A-Z]{2}/.test(q) ? q : q.charAt(0).toLowerCase() + q.slice(1);
  return rng.pick(OPENERS) + first;
}

const ARG_QUESTIONS: Record<string, string> = {
  ticker: 'Which stock (ticker) do you mean?',
  date: 'Which date (YYYY-MM-DD)?',
  company: 'Which company?',
  fiscal_year: 'Which fiscal year?',
  amount: 'How much money?',
  from_currency: 'Which currency are you converting from?',
  to_currency: 'Which currency should it be in?',
  side: 'Buy or sell?',
  quantity: 'How many shares?',
};

/** The gold ask_user question for a set of missing arguments (the verifier scores `missing`, not the wording). */
export function askUserQuestion(missing: readonly string[]): string {
  return missing.map((m) => ARG_QUESTIONS[m] ?? `What is the ${m}?`).join(' ');
}

// --- rows ---------------------------------------------------------------------------------------------------
interface Case { query: string; gold: { name: string; arguments: Record<string, unknown> }; template_id: string }

function makeCase(t: Template, rng: Rng, split: Split): Case {
  switch (t.behavior) {
    case 'execute': {
      const d = drawArgs(t.tool, rng, split);
      return { query: render(t.text, d.slots), gold: { name: t.tool, arguments: d.args }, template_id: t.id };
    }
    case 'ask_user': {
      const d = drawArgs(t.target!, rng, split);
      const missing = [...t.missing!].sort();
      return {
        query: render(t.text, d.slots),
        gold: { name: 'ask_user', arguments: { missing, question: askUserQuestion(missing) } },
        template_id: t.id,
      };
    }
    case 'refuse':
      return { query: opener(render(t.text, fillerSlots(rng)), rng), gold: { name: 'refuse', arguments: { reason: t.reason! } }, template_id: t.id };
    case 'no_call':
      return { query: opener(render(t.text, fillerSlots(rng)), rng), gold: { name: 'no_call', arguments: {} }, template_id: t.id };
  }
}

/** Split `n` into integer counts proportional to `mix` (largest remainder; ties in BEHAVIORS order). */
export function allocate(n: number, mix: Mix): Mix {
  const total = BEHAVIORS.reduce((s, b) => s + mix[b], 0);
  const exact = BEHAVIORS.map((b) => (n * mix[b]) / total);
  const counts = exact.map(Math.floor);
  const order = BEHAVIORS.map((_, i) => i).sort((a, b) => (exact[b] - counts[b]) - (exact[a] - counts[a]) || a - b);
  for (let k = 0; counts.reduce((s, c) => s + c, 0) < n; k++) counts[order[k % order.length]]++;
  return Object.fromEntries(BEHAVIORS.map((b, i) => [b, counts[i]])) as Mix;
}

function normaliseMix(mix: Partial<Mix> | undefined): Mix {
  if (!mix) return { ...DEFAULT_MIX };
  const m = Object.fromEntries(BEHAVIORS.map((b) => [b, mix[b] ?? 0])) as Mix;
  for (const b of BEHAVIORS) {
    if (!(Number.isFinite(m[b]) && m[b] >= 0)) throw new Error(`synth: mix.${b} must be a number >= 0, got ${m[b]}`);
  }
  for (const k of Object.keys(mix)) if (!BEHAVIORS.includes(k as Behavior)) throw new Error(`synth: unknown behaviour '${k}' in mix`);
  if (BEHAVIORS.every((b) => m[b] === 0)) throw new Error('synth: mix is all zeros');
  return m;
}

/** Generate one split's rows; `seen` holds every query already used (across splits). */
function synthSplit(split: Split, counts: Mix, rng: Rng, seen: Set<string>): Row[] {
  const tools = split === 'heldout_tools' ? TOOLS : TRAIN_TOOLS;
  const pool = TEMPLATES.filter((t) => t.split === split);
  const byBehavior = (b: Behavior) => pool.filter((t) => t.behavior === b);
  const plan: Behavior[] = [];
  for (const b of BEHAVIORS) for (let i = 0; i < counts[b]; i++) plan.push(b);
  rng.shuffle(plan);
  const rows: Row[] = [];
  for (const behavior of plan) {
    const candidates = byBehavior(behavior);
    if (candidates.length === 0) throw new Error(`synth: no ${behavior} templates for split ${split}`);
    // Pick the gold name first (uniform over tools / ask_user targets), then a template of it.
    const groups = groupBy(candidates, (t) => (behavior === 'ask_user' ? `${t.target}:${t.missing!.join('+')}` : t.tool));
    const keys = [...groups.keys()];
    let c: Case | undefined;
    for (let attempt = 0; attempt < 200; attempt++) {
      const t = rng.pick(groups.get(rng.pick(keys))!);
      const cand = makeCase(t, rng, split);
      if (!seen.has(cand.query)) { c = cand; break; }
    }
    if (!c) throw new Error(`synth: could not draw a new ${behavior} query for ${split} after 200 tries (too many rows for the templates?)`);
    seen.add(c.query);
    const r = executeTool(c.gold.name, c.gold.arguments);
    if (!r.ok) throw new Error(`synth: gold call ${JSON.stringify(c.gold)} (template ${c.template_id}) failed: ${r.error}`);
    rows.push({
      id: `${split}-${String(rows.length).padStart(5, '0')}`,
      split,
      prompt: buildPrompt(c.query, tools),
      messages: buildMessages(c.query, tools),
      query: c.query,
      gold_call: JSON.stringify(c.gold),
      expected_result: r.text,
      behavior,
      tool: c.gold.name,
      template_id: c.template_id,
    });
  }
  return rows;
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    if (!m.has(k)) m.set(k, []);
    m.get(k)!.push(x);
  }
  return m;
}

/**
 * Synthesize the three splits. Deterministic: the same options give the same rows, byte for byte.
 * heldout_tools is all `execute` (its point is the unseen tool); train and test follow `mix`.
 */
export function synthesize(opts: SynthOptions): Splits {
  const { seed, n } = opts;
  const nTest = opts.nTest ?? 300, nHeldout = opts.nHeldout ?? 150;
  for (const [k, v] of [['n', n], ['nTest', nTest], ['nHeldout', nHeldout]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`synth: ${k} must be an integer >= 0, got ${v}`);
  }
  const mix = normaliseMix(opts.mix);
  const root = new Rng(seed);
  const seen = new Set<string>();
  const train = synthSplit('train', allocate(n, mix), root.fork(1), seen);
  const test = synthSplit('test', allocate(nTest, mix), root.fork(2), seen);
  const heldout_tools = synthSplit('heldout_tools', { execute: nHeldout, ask_user: 0, refuse: 0, no_call: 0 }, root.fork(3), seen);
  return { train, test, heldout_tools };
}

/** Write `<dir>/train.jsonl`, `test.jsonl`, `heldout_tools.jsonl` (one JSON row per line). Returns the paths. */
export function writeSplits(splits: Splits, dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return (['train', 'test', 'heldout_tools'] as const).map((name) => {
    const file = path.join(dir, `${name}.jsonl`);
    fs.writeFileSync(file, splits[name].map((r) => JSON.stringify(r) + '\n').join(''));
    return file;
  });
}

/** Read a JSONL file (blank lines skipped). A bad line throws an Error that names `file:line`. */
export function readJsonl<T>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${e instanceof Error ? e.message : String(e)})`);
  }
  const out: T[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: invalid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  return out;
}

/** Counts of rows per split, behaviour and gold tool: for the CLI and the notebook. */
export function splitStats(splits: Splits): Record<Split, { rows: number; behavior: Record<string, number>; tool: Record<string, number> }> {
  const count = (rows: Row[], key: (r: Row) => string) => {
    const m: Record<string, number> = {};
    for (const r of rows) m[key(r)] = (m[key(r)] ?? 0) + 1;
    return m;
  };
  const one = (rows: Row[]) => ({ rows: rows.length, behavior: count(rows, (r) => r.behavior), tool: count(rows, (r) => r.tool) });
  return { train: one(splits.train), test: one(splits.test), heldout_tools: one(splits.heldout_tools) };
}

/** Re-export for callers that only import synth. */
export type { ToolSpec };
