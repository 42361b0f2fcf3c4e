/**
 * Dataset synthesis: seeded (query -> gold call) rows for the train, validation, test and heldout_tools splits.
 *
 * A row is built in five steps:
 *   1. a behaviour (execute / ask_user / refuse / no_call, in the configured mix), and for execute rows whether
 *      the tool is a synthetic one (`syntheticShare`, train and validation only) and whether it is left out of
 *      the catalog (`unlistedShare`: the gold is then no_call);
 *   2. a core template of that kind (templates.ts; the gold name first, uniform over tools / groups, then one
 *      of its templates);
 *   3. a phrasing of it (composer.ts: synonyms, openers, closers, word order, lower case, typos);
 *   4. canonical argument values and a surface form for each ("Jan 3, 2025" for 2025-01-03, "Apple" for AAPL,
 *      "$250" for 250 USD), filled into the phrasing's slots;
 *   5. a catalog (catalog.ts): the tools this row's prompt lists, sampled and shuffled.
 * The gold call is then EXECUTED and its text becomes `expected_result`, so every gold call runs by construction.
 *
 * The splits, and what each is for (the regime: SFT learns the format from a few demonstrations, GRPO
 * corrects mistakes on the broader pool, a validation split picks the SFT checkpoint GRPO starts from):
 *   core templates  every 5th template of each group (a tool, an ask_user missing-argument group, a refusal
 *                   category, no_call) is a TEST template; the rest are TRAIN templates. Of the train templates,
 *                   `demoFraction` (default 1/3) of each group are DEMONSTRATION templates (chosen by a hash of
 *                   the template id: the same for every seed). A third of the synthetic tools have none: they
 *                   are pool-only, so GRPO meets tools SFT never showed.
 *   train           rows from all train templates. `demonstration: true` marks the rows of demonstration
 *                   templates: the curated SFT set is drawn from them. The other train rows are GRPO's pool.
 *   validation      rows from train templates that are NOT demonstration templates (so SFT never sees their
 *                   phrasing), disjoint from train: for choosing the SFT checkpoint GRPO starts from.
 *   test            rows from the test templates only, real tools only, and held-out argument VALUES: 5 trading
 *                   days, some (company, fiscal year) pairs, some currency pairs for the rate tool, amounts and
 *                   order quantities whose hash falls in a test bucket. Entity strings themselves (tickers,
 *                   company names, currency codes) are NOT held out: every one of them appears in train,
 *                   because a small model cannot copy a name it has never seen, and the test asks whether it
 *                   generalises phrasings and value combinations, not whether it can invent a ticker.
 *   heldout_tools   execute rows whose gold tool (heldout: true in tools.ts) never appears in any other split:
 *                   not as a gold, not in a catalog, not in a request (no "market cap", "capitalization" or
 *                   "dividend" anywhere else).
 * Synthetic tools appear only in train and validation (as golds and in catalogs). No query (hence no prompt)
 * appears twice anywhere: a global set rejects repeats and we redraw.
 *
 * What this is not: a paraphrase model. Variety comes from templates x composition x values x surface forms.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng, hash32 } from '../util/rng';
import { CONTROL_ACTIONS, GENERATED_TOOLS, HELDOUT_TOOLS, SYNTHETIC_TOOLS, TRAIN_TOOLS, getTool, type ToolSpec } from './tools';
import { COMPANY_BY_TICKER, CURRENCIES, FISCAL_YEARS, TICKERS, TRADING_DAYS } from './market';
import { executeTool } from './execute';
import { buildMessages, buildPrompt } from './prompt';
import { compose, countPhrasings, COMPOSE_CLEAN, COMPOSE_DEFAULTS, type ComposeOptions, type Phrasing } from './composer';
import { sampleCatalog, CATALOG_DEFAULTS, type CatalogOptions } from './catalog';
import {
  ASK_USER_TEMPLATES, FILLERS, NO_CALL_TEMPLATES, REFUSE_TEMPLATES, SYNTHETIC_PHRASES, SYNTHETIC_TEMPLATES, TOOL_TEMPLATES,
} from './templates';

export type Split = 'train' | 'validation' | 'test' | 'heldout_tools';
export const SPLITS: readonly Split[] = ['train', 'validation', 'test', 'heldout_tools'];
export type Behavior = 'execute' | 'ask_user' | 'refuse' | 'no_call';
export const BEHAVIORS: readonly Behavior[] = ['execute', 'ask_user', 'refuse', 'no_call'];

export interface Row {
  /** `<split>-<index>`, e.g. train-00042. */
  id: string;
  split: Split;
  /** The course's prompt: instructions + the row's catalog as tool-list JSON + "User request: ...". */
  prompt: string;
  /** Chat form: the compact system prompt listing the row's catalog, then the user query. */
  messages: { role: 'system' | 'user'; content: string }[];
  query: string;
  /** JSON string {"name": ..., "arguments": {...}}. */
  gold_call: string;
  /** executeTool(gold).text: a tool's value, 'no_call', 'refuse' or 'ask_user:<sorted missing>'. */
  expected_result: string;
  /** The right action: an unlisted row's is no_call. */
  behavior: Behavior;
  /** The gold call's name (a tool or a control action). */
  tool: string;
  /** The core template (templates.ts) this row's phrasing was composed from, e.g. "get_revenue.03". */
  template_id: string;
  /** True for train rows of a demonstration template: the curated SFT set is drawn from these only. */
  demonstration: boolean;
  /** The tool names the prompt lists, in prompt order (control actions are always listed and not included). */
  catalog: string[];
  /** The tool an execute request needs when the catalog leaves it out (the gold is then no_call); else null. */
  unlisted_tool: string | null;
}

export type Mix = Record<Behavior, number>;
/** The default behaviour mix of requests (fractions of each split except heldout_tools, which is all execute). */
export const DEFAULT_MIX: Mix = { execute: 0.6, ask_user: 0.2, refuse: 0.1, no_call: 0.1 };

export interface SynthOptions {
  seed: number;
  /** Number of train rows. */
  n: number;
  /** Number of validation rows (default 300). */
  nValidation?: number;
  /** Number of test rows (default 300). */
  nTest?: number;
  /** Number of heldout_tools rows (default 150). */
  nHeldout?: number;
  /** Behaviour fractions of the requests (normalised); missing keys count as 0 when any key is given. */
  mix?: Partial<Mix>;
  /** Share of each group's train templates that are demonstration templates (default 1/3). */
  demoFraction?: number;
  /** Share of execute requests whose tool the catalog leaves out, gold no_call (train, validation, test; default 0.05). */
  unlistedShare?: number;
  /** Share of execute requests (train and validation) for a synthetic tool (default 0.1). */
  syntheticShare?: number;
  /**
   * Share of those synthetic requests whose tool comes from the GENERATED family (tools.ts GENERATED_TOOLS:
   * hundreds of qualifier x metric names, each rare) instead of the curated table; their tools then also fill
   * train and validation catalogs (default 0: off).
   */
  generatedShare?: number;
  /** The phrasing composer's shares (composer.ts COMPOSE_DEFAULTS). */
  compose?: Partial<ComposeOptions>;
  /** Catalog sizes and neighbour rates (catalog.ts CATALOG_DEFAULTS). */
  catalog?: Partial<CatalogOptions>;
}

/**
 * The defaults. The synthetic and unlisted shares were measured (seed 0, course run with SFT on the
 * demonstration rows): 0.25 / 0.1 cost 0.15 of test exact match after SFT (0.587 against 0.733 with neither),
 * 0.1 / 0.05 cost nothing (0.740); no share made heldout_tools exact match leave 0 (data/README.md).
 */
export const SYNTH_DEFAULTS = {
  nValidation: 300,
  nTest: 300,
  nHeldout: 150,
  demoFraction: 1 / 3,
  unlistedShare: 0.05,
  syntheticShare: 0.1,
  generatedShare: 0,
} as const;

export type Splits = Record<Split, Row[]>;

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
/** Where a core template's rows may go: 'train' templates feed train and validation. */
export type TemplateSplit = 'train' | 'test' | 'heldout_tools';

export interface Template {
  id: string;
  text: string;
  behavior: Behavior;
  /** Gold name: the tool for execute rows, else the control action. */
  tool: string;
  /** The group demonstration templates are chosen within: a tool, `ask_user.<tool>.<missing>`, `refuse.<category>`, 'no_call'. */
  group: string;
  /** The composer's synonym topic: the tool, an ask_user template's target tool, 'refuse' or 'no_call'. */
  topic: string;
  /** ask_user: the tool whose arguments are missing, and which. */
  target?: string;
  missing?: readonly string[];
  /** refuse: the gold reason. */
  reason?: string;
  split: TemplateSplit;
  /** A synthetic tool's template (train and validation only). */
  synthetic: boolean;
  /** A generated synthetic tool's template (tools.ts GENERATED_TOOLS). */
  generated: boolean;
  /** The wordings of the {metric} slot (synthetic templates). */
  metrics?: readonly string[];
}

const pad2 = (i: number) => String(i + 1).padStart(2, '0');

/** Every core template (real and synthetic tools, control actions) with its id and the split it belongs to. */
export const TEMPLATES: readonly Template[] = (() => {
  const out: Template[] = [];
  const heldout = new Set(HELDOUT_TOOLS.map((t) => t.name));
  for (const [tool, texts] of Object.entries(TOOL_TEMPLATES)) {
    texts.forEach((text, j) => out.push({
      id: `${tool}.${pad2(j)}`, text, behavior: 'execute', tool, group: tool, topic: tool, synthetic: false, generated: false,
      split: heldout.has(tool) ? 'heldout_tools' : isTestTemplate(j, texts.length) ? 'test' : 'train',
    }));
  }
  for (const g of ASK_USER_TEMPLATES) {
    const group = `ask_user.${g.tool}.${g.missing.join('+')}`;
    g.texts.forEach((text, j) => out.push({
      id: `${group}.${pad2(j)}`, text, behavior: 'ask_user', tool: 'ask_user', group, topic: g.tool, synthetic: false, generated: false,
      target: g.tool, missing: g.missing, split: isTestTemplate(j, g.texts.length) ? 'test' : 'train',
    }));
  }
  for (const g of REFUSE_TEMPLATES) {
    const group = `refuse.${g.category}`;
    g.texts.forEach((text, j) => out.push({
      id: `${group}.${pad2(j)}`, text, behavior: 'refuse', tool: 'refuse', group, topic: 'refuse', synthetic: false, generated: false,
      reason: g.reason, split: isTestTemplate(j, g.texts.length) ? 'test' : 'train',
    }));
  }
  NO_CALL_TEMPLATES.forEach((text, j) => out.push({
    id: `no_call.${pad2(j)}`, text, behavior: 'no_call', tool: 'no_call', group: 'no_call', topic: 'no_call', synthetic: false, generated: false,
    split: isTestTemplate(j, NO_CALL_TEMPLATES.length) ? 'test' : 'train',
  }));
  for (const t of [...SYNTHETIC_TOOLS, ...GENERATED_TOOLS]) {
    const generated = t.synthetic!.generated === true;
    const metrics = generated ? [t.gloss] : SYNTHETIC_PHRASES[t.name];
    SYNTHETIC_TEMPLATES[t.synthetic!.shape].forEach((text, j) => out.push({
      id: `${t.name}.${pad2(j)}`, text, behavior: 'execute', tool: t.name, group: t.name, topic: t.name, synthetic: true, generated, metrics, split: 'train',
    }));
  }
  return out;
})();

/** Synthetic tools with no demonstration template (every third one of each family): GRPO's pool holds tools SFT never showed. */
export const POOL_ONLY_TOOLS: ReadonlySet<string> = new Set(
  [...SYNTHETIC_TOOLS.filter((_, i) => i % 3 === 2), ...GENERATED_TOOLS.filter((_, i) => i % 3 === 2)].map((t) => t.name),
);

/**
 * The demonstration templates for a `demoFraction`: in every group, that share of its train templates
 * (rounded, at least 1), those with the smallest hash of their id. Pool-only synthetic tools have none.
 * Independent of the seed: the same templates are demonstrations in every run.
 */
export function demonstrationTemplates(demoFraction: number = SYNTH_DEFAULTS.demoFraction): ReadonlySet<string> {
  if (!(demoFraction >= 0 && demoFraction <= 1)) throw new Error(`synth: demoFraction must be in [0, 1], got ${demoFraction}`);
  const out = new Set<string>();
  if (demoFraction === 0) return out;
  const groups = new Map<string, Template[]>();
  for (const t of TEMPLATES) {
    if (t.split !== 'train' || POOL_ONLY_TOOLS.has(t.tool)) continue;
    if (!groups.has(t.group)) groups.set(t.group, []);
    groups.get(t.group)!.push(t);
  }
  for (const ts of groups.values()) {
    const k = Math.max(1, Math.round(demoFraction * ts.length));
    const ranked = ts.map((t) => ({ t, h: hash32(`demonstration:${t.id}`) })).sort((a, b) => a.h - b.h || (a.t.id < b.t.id ? -1 : 1));
    for (const { t } of ranked.slice(0, k)) out.add(t.id);
  }
  return out;
}

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

/** A bare amount: "250", "1200", "1,200", "1.2k", "49.50", "250.00". The gold is the number. */
export function formatAmount(a: number, rng: Rng): string {
  const forms = [String(a), String(a)];
  if (a >= 1000) forms.push(withCommas(a), withCommas(a));
  if (a >= 1000 && a % 100 === 0) forms.push(`${a / 1000}k`);
  if (!Number.isInteger(a)) forms.push(a.toFixed(2)); // 49.5 -> "49.50" (amounts have at most 2 decimals)
  else if (a < 1000) forms.push(`${a}.00`);
  return rng.pick(forms);
}

/**
 * An amount with its currency: "$250", "€75", "250€", "1,200 USD", "USD 1,200", "500 euros", "US$40". Symbol
 * forms are the most common for the currencies that have a symbol (an earlier model read "$250" as 2500 when
 * they were rare).
 */
export function formatMoney(a: number, code: string, rng: Rng): string {
  const amt = formatAmount(a, rng);
  const forms = [`${amt} ${code}`, `${code} ${amt}`, `${amt} ${rng.pick(CURRENCY_NAMES[code])}`];
  const sym = CURRENCY_SYMBOL[code];
  if (sym) forms.push(`${sym}${amt}`, `${sym}${amt}`, `${sym}${amt}`, `${sym} ${amt}`, `${amt}${sym}`);
  if (code === 'USD') forms.push(`US$${amt}`);
  return rng.pick(forms);
}

const currencySurface = (code: string, rng: Rng) => (rng.next() < 0.6 ? code : rng.pick(CURRENCY_NAMES[code]));
const possessive = (s: string) => `${s}'s`;

// --- argument draws -----------------------------------------------------------------------------------------
type Slots = Record<string, string>;
interface Draw { args: Record<string, unknown>; slots: Slots }

/**
 * Draw values from a pool, keeping only those that belong to the split: test values for test, the others for
 * train and validation, any for heldout_tools.
 */
function drawIn<T>(rng: Rng, draw: () => T, isTest: (v: T) => boolean, split: Split): T {
  for (let i = 0; i < 1000; i++) {
    const v = draw();
    if (split === 'heldout_tools' || isTest(v) === (split === 'test')) return v;
  }
  throw new Error(`synth: no value for split ${split} after 1000 draws`);
}

/** An amount of 1 to 4 digits, each length about as likely (plus round thousands and cents). */
function drawAmountValue(rng: Rng): number {
  switch (rng.int(6)) {
    case 0: return 1 + rng.int(9);
    case 1: return 10 + rng.int(90);
    case 2: return 100 + rng.int(900);
    case 3: return 1000 + rng.int(9000);
    case 4: return (1 + rng.int(50)) * (rng.next() < 0.5 ? 100 : 1000);
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

function drawPair(rng: Rng, split: Split, isTest: (p: readonly string[]) => boolean): readonly [string, string] {
  return drawIn(rng, () => {
    const f = rng.pick(CURRENCIES);
    return [f, rng.pick(CURRENCIES.filter((c) => c !== f))] as const;
  }, isTest, split);
}

function currencySlots(from_currency: string, to_currency: string, amount: number, rng: Rng): Slots {
  return {
    from: currencySurface(from_currency, rng), to: currencySurface(to_currency, rng),
    fromc: from_currency, toc: to_currency,
    amt: formatAmount(amount, rng), money: formatMoney(amount, from_currency, rng),
  };
}

/** Canonical arguments for a synthetic tool (train / validation values), plus every slot its shape's templates use. */
function drawSyntheticArgs(spec: ToolSpec, rng: Rng, split: Split): Draw {
  switch (spec.synthetic!.shape) {
    case 'ticker+date': return drawArgs('get_stock_price', rng, split);
    case 'company+fiscal_year': return drawArgs('get_revenue', rng, split);
    case 'ticker+fiscal_year': return drawArgs('get_dividend', rng, split);
    case 'amount+currencies': return drawArgs('convert_currency', rng, split);
    case 'currency_pair': return drawArgs('get_exchange_rate', rng, split);
    case 'ticker': {
      const ticker = rng.pick(TICKERS);
      return { args: { ticker }, slots: stockSlots(ticker, rng) };
    }
    case 'company': {
      const company = COMPANY_BY_TICKER[rng.pick(TICKERS)];
      return { args: { company }, slots: companySlots(company, rng) };
    }
    case 'currency': {
      const currency = rng.pick(CURRENCIES);
      return { args: { currency }, slots: { cur: currencySurface(currency, rng), curc: currency } };
    }
  }
}

/** Canonical arguments for `tool` in this split, plus every slot its templates may use. */
function drawArgs(tool: string, rng: Rng, split: Split): Draw {
  const spec = getTool(tool);
  if (spec?.synthetic) return drawSyntheticArgs(spec, rng, split);
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
      const [from_currency, to_currency] = drawPair(rng, split, pairTest);
      const amount = drawIn(rng, () => drawAmountValue(rng), (a) => tool === 'convert_currency' ? isTestAmount(a) : split === 'test', split);
      const args = tool === 'convert_currency' ? { amount, from_currency, to_currency } : { from_currency, to_currency };
      return { args, slots: currencySlots(from_currency, to_currency, amount, rng) };
    }
    case 'place_order': {
      const ticker = rng.pick(TICKERS);
      const side = rng.pick(['buy', 'sell'] as const);
      const quantity = drawIn(rng, () => (rng.next() < 0.3 ? 1 + rng.int(12) : rng.next() < 0.85 ? 1 + rng.int(500) : 500 + rng.int(9500)), isTestQuantity, split);
      const qty = quantity <= 12 && rng.next() < 0.3 ? NUMBER_WORDS[quantity] : quantity >= 1000 && rng.next() < 0.5 ? withCommas(quantity) : String(quantity);
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

/**
 * Fill `{slot}`s; a missing slot is a bug in the templates, so it throws. The first letter is capitalised
 * unless `capitalise` is false (a phrasing the composer lowered).
 */
export function render(text: string, slots: Slots, capitalise = true): string {
  const s = text.replace(/\{(\w+)\}/g, (_, k: string) => {
    if (!Object.prototype.hasOwnProperty.call(slots, k)) throw new Error(`synth: template slot {${k}} has no value in "${text}"`);
    return slots[k];
  });
  return capitalise ? s.charAt(0).toUpperCase() + s.slice(1) : s;
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
interface Case {
  query: string;
  gold: { name: string; arguments: Record<string, unknown> };
  /** The tool the request is about (gold tool, ask_user target), or null. */
  about: string | null;
}

/** Lower case, words only: how phrasings are compared with test templates. */
const normalise = (s: string) => ` ${s.toLowerCase().replace(/[^a-z0-9{}_' ]/g, ' ').replace(/\s+/g, ' ').trim()} `;

/** Each group's test templates, normalised: a train phrasing must not contain one (composition could recreate it). */
const TEST_CORES: ReadonlyMap<string, readonly string[]> = (() => {
  const m = new Map<string, string[]>();
  for (const t of TEMPLATES) if (t.split === 'test') (m.get(t.group) ?? m.set(t.group, []).get(t.group)!).push(normalise(t.text));
  return m;
})();

/** Does this phrasing of a train template contain one of its group's test templates (when the core itself does not)? */
export function recreatesTestTemplate(t: Template, phrasing: string): boolean {
  const cores = TEST_CORES.get(t.group);
  if (!cores) return false;
  const p = normalise(phrasing), raw = normalise(t.text);
  return cores.some((c) => p.includes(c) && !raw.includes(c));
}

/** A phrasing of `t`; for train and validation never one that recreates a test template of its group. */
function phrasingFor(t: Template, rng: Rng, split: Split, co: Readonly<ComposeOptions>): Phrasing {
  for (let i = 0; i < 20; i++) {
    const ph = compose(t, rng, co);
    if (t.split !== 'train' || !recreatesTestTemplate(t, ph.text)) return ph;
  }
  return { text: t.text, lower: false };
}

function makeCase(t: Template, rng: Rng, split: Split, co: Readonly<ComposeOptions>): Case {
  const ph = phrasingFor(t, rng, split, co);
  switch (t.behavior) {
    case 'execute': {
      const d = drawArgs(t.tool, rng, split);
      return { query: render(ph.text, d.slots, !ph.lower), gold: { name: t.tool, arguments: d.args }, about: t.tool };
    }
    case 'ask_user': {
      const d = drawArgs(t.target!, rng, split);
      const missing = [...t.missing!].sort();
      return {
        query: render(ph.text, d.slots, !ph.lower),
        gold: { name: 'ask_user', arguments: { missing, question: askUserQuestion(missing) } },
        about: t.target!,
      };
    }
    case 'refuse':
      return { query: render(ph.text, fillerSlots(rng), !ph.lower), gold: { name: 'refuse', arguments: { reason: t.reason! } }, about: null };
    case 'no_call':
      return { query: render(ph.text, fillerSlots(rng), !ph.lower), gold: { name: 'no_call', arguments: {} }, about: null };
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

/** One planned row: its request behaviour, and for execute requests whether the tool is synthetic (generated) / unlisted. */
interface Plan { behavior: Behavior; synthetic: boolean; generated: boolean; unlisted: boolean }

/** The plan of one split: behaviour counts from `allocate`, then the synthetic, generated and unlisted shares of execute. */
function planSplit(counts: Mix, syntheticShare: number, generatedShare: number, unlistedShare: number, rng: Rng): Plan[] {
  const plan: Plan[] = [];
  for (const b of BEHAVIORS) if (b !== 'execute') for (let i = 0; i < counts[b]; i++) plan.push({ behavior: b, synthetic: false, generated: false, unlisted: false });
  const ne = counts.execute;
  const nSyn = Math.round(ne * syntheticShare), nUn = Math.round(ne * unlistedShare), nGen = Math.round(nSyn * generatedShare);
  // kind 0 real, 1 curated synthetic, 2 generated synthetic
  const kind = rng.shuffle(Array.from({ length: ne }, (_, i) => (i < nGen ? 2 : i < nSyn ? 1 : 0)));
  const un = rng.shuffle(Array.from({ length: ne }, (_, i) => i < nUn));
  for (let i = 0; i < ne; i++) plan.push({ behavior: 'execute', synthetic: kind[i] > 0, generated: kind[i] === 2, unlisted: un[i] });
  return rng.shuffle(plan);
}

interface SplitSpec {
  split: Split;
  /** Templates rows may be drawn from. */
  templates: readonly Template[];
  /** Tools its catalogs are sampled from. */
  pool: readonly ToolSpec[];
  plan: Plan[];
}

/** Generate one split's rows; `seen` holds every query already used (across splits). */
function synthSplit(spec: SplitSpec, demos: ReadonlySet<string>, rng: Rng, seen: Set<string>, co: Readonly<ComposeOptions>, cat: Readonly<CatalogOptions>): Row[] {
  const { split, templates, pool, plan } = spec;
  // Candidate groups per plan kind: the gold name first (uniform over tools / ask_user groups / refuse
  // categories), then a template of it.
  const kinds = new Map<string, Map<string, Template[]>>();
  const kindOf = (p: Plan) => (p.behavior === 'execute' ? `execute:${p.synthetic}:${p.generated}` : p.behavior);
  for (const t of templates) {
    const k = t.behavior === 'execute' ? `execute:${t.synthetic}:${t.generated}` : t.behavior;
    const g = t.behavior === 'ask_user' || t.behavior === 'refuse' ? t.group : t.tool;
    if (!kinds.has(k)) kinds.set(k, new Map());
    const groups = kinds.get(k)!;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(t);
  }
  const rows: Row[] = [];
  for (const p of plan) {
    const groups = kinds.get(kindOf(p));
    if (!groups) throw new Error(`synth: no ${p.behavior}${p.generated ? ' (generated tool)' : p.synthetic ? ' (synthetic tool)' : ''} templates for split ${split}`);
    const keys = [...groups.keys()];
    let c: Case | undefined;
    let t: Template | undefined;
    for (let attempt = 0; attempt < 200; attempt++) {
      t = rng.pick(groups.get(rng.pick(keys))!);
      const cand = makeCase(t, rng, split, co);
      if (!seen.has(cand.query)) { c = cand; break; }
    }
    if (!c || !t) throw new Error(`synth: could not draw a new ${p.behavior} query for ${split} after 200 tries (too many rows for the templates?)`);
    seen.add(c.query);
    const about = c.about === null ? null : getTool(c.about)!;
    const unlisted = p.unlisted && about !== null;
    const catalog = sampleCatalog(rng, pool, about, !unlisted, cat);
    const gold = unlisted ? { name: 'no_call', arguments: {} } : c.gold;
    const r = executeTool(gold.name, gold.arguments);
    if (!r.success) throw new Error(`synth: gold call ${JSON.stringify(gold)} (template ${t.id}) failed: ${r.message}`);
    rows.push({
      id: `${split}-${String(rows.length).padStart(5, '0')}`,
      split,
      prompt: buildPrompt(c.query, catalog),
      messages: buildMessages(c.query, catalog),
      query: c.query,
      gold_call: JSON.stringify(gold),
      expected_result: r.data.text,
      behavior: unlisted ? 'no_call' : t.behavior,
      tool: gold.name,
      template_id: t.id,
      demonstration: split === 'train' && demos.has(t.id),
      catalog: catalog.map((x) => x.name),
      unlisted_tool: unlisted ? about!.name : null,
    });
  }
  return rows;
}

function share(name: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0 && v <= 1)) throw new Error(`synth: ${name} must be a number in [0, 1], got ${v}`);
  return v;
}

/**
 * Synthesize the four splits. Deterministic: the same options give the same rows, byte for byte.
 * heldout_tools is all `execute` (its point is the unseen tool); train, validation and test follow `mix`.
 */
export function synthesize(opts: SynthOptions): Splits {
  const { seed, n } = opts;
  const nValidation = opts.nValidation ?? SYNTH_DEFAULTS.nValidation;
  const nTest = opts.nTest ?? SYNTH_DEFAULTS.nTest, nHeldout = opts.nHeldout ?? SYNTH_DEFAULTS.nHeldout;
  for (const [k, v] of [['n', n], ['nValidation', nValidation], ['nTest', nTest], ['nHeldout', nHeldout]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`synth: ${k} must be an integer >= 0, got ${v}`);
  }
  const mix = normaliseMix(opts.mix);
  const demoFraction = share('demoFraction', opts.demoFraction ?? SYNTH_DEFAULTS.demoFraction);
  const unlistedShare = share('unlistedShare', opts.unlistedShare ?? SYNTH_DEFAULTS.unlistedShare);
  const syntheticShare = share('syntheticShare', opts.syntheticShare ?? SYNTH_DEFAULTS.syntheticShare);
  const generatedShare = share('generatedShare', opts.generatedShare ?? SYNTH_DEFAULTS.generatedShare);
  const co: ComposeOptions = { ...COMPOSE_DEFAULTS, ...opts.compose };
  const cat: CatalogOptions = { ...CATALOG_DEFAULTS, ...opts.catalog };
  if (!(Number.isInteger(cat.min) && cat.min >= 1 && Number.isInteger(cat.max) && cat.max >= cat.min)) {
    throw new Error(`synth: catalog sizes must be integers with 1 <= min <= max, got min ${cat.min}, max ${cat.max}`);
  }
  const demos = demonstrationTemplates(demoFraction);
  const root = new Rng(seed);
  const seen = new Set<string>();
  const trainPool = [...TRAIN_TOOLS, ...SYNTHETIC_TOOLS, ...(generatedShare > 0 ? GENERATED_TOOLS : [])];
  const byT = (s: TemplateSplit) => TEMPLATES.filter((t) => t.split === s);
  const heldoutMix: Mix = { execute: nHeldout, ask_user: 0, refuse: 0, no_call: 0 };
  const specs: SplitSpec[] = [
    { split: 'train', templates: byT('train'), pool: trainPool, plan: planSplit(allocate(n, mix), syntheticShare, generatedShare, unlistedShare, root.fork(11)) },
    { split: 'test', templates: byT('test'), pool: TRAIN_TOOLS, plan: planSplit(allocate(nTest, mix), 0, 0, unlistedShare, root.fork(12)) },
    { split: 'heldout_tools', templates: byT('heldout_tools'), pool: [...TRAIN_TOOLS, ...HELDOUT_TOOLS], plan: planSplit(heldoutMix, 0, 0, 0, root.fork(13)) },
    {
      split: 'validation', templates: byT('train').filter((t) => !demos.has(t.id)), pool: trainPool,
      plan: planSplit(allocate(nValidation, mix), syntheticShare, generatedShare, unlistedShare, root.fork(14)),
    },
  ];
  const out = {} as Splits;
  // train first, then test and heldout_tools, then validation: adding validation rows does not change the others.
  specs.forEach((sp, i) => (out[sp.split] = synthSplit(sp, demos, root.fork(i + 1), seen, co, cat)));
  return { train: out.train, validation: out.validation, test: out.test, heldout_tools: out.heldout_tools };
}

/** Write `<dir>/<split>.jsonl` for every split (one JSON row per line). Returns the paths. */
export function writeSplits(splits: Splits, dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return SPLITS.map((name) => {
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

/** Counts of rows per split, behaviour and gold tool (and demonstration / unlisted rows): for the CLI and the notebook. */
export function splitStats(splits: Splits): Record<Split, { rows: number; demonstration: number; unlisted: number; synthetic: number; behavior: Record<string, number>; tool: Record<string, number> }> {
  const count = (rows: Row[], key: (r: Row) => string) => {
    const m: Record<string, number> = {};
    for (const r of rows) m[key(r)] = (m[key(r)] ?? 0) + 1;
    return m;
  };
  const one = (rows: Row[]) => ({
    rows: rows.length,
    demonstration: rows.filter((r) => r.demonstration).length,
    unlisted: rows.filter((r) => r.unlisted_tool !== null).length,
    synthetic: rows.filter((r) => getTool(r.tool)?.synthetic).length,
    behavior: count(rows, (r) => r.behavior),
    tool: count(rows, (r) => r.tool),
  });
  return { train: one(splits.train), validation: one(splits.validation), test: one(splits.test), heldout_tools: one(splits.heldout_tools) };
}

/**
 * How many distinct phrasings (before slot filling) the composer makes of each tool's / behaviour's core
 * templates, per template split: `draws` compositions each (a core picked uniformly each time), without the
 * lower-case and typo variants, so the count is of wordings, not of noise. A lower bound on the true number.
 */
export function phrasingCounts(draws = 3000, seed = 7): { kind: string; templates_of: TemplateSplit; templates: number; phrasings: number }[] {
  const groups = new Map<string, Template[]>();
  for (const t of TEMPLATES) {
    if (t.generated) continue; // hundreds of tools with one wording each: see the composer test
    const key = `${t.behavior === 'execute' ? t.tool : t.behavior}|${t.split}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(t);
  }
  return [...groups].map(([key, ts]) => {
    const [kind, split] = key.split('|');
    return { kind, templates_of: split as TemplateSplit, templates: ts.length, phrasings: countPhrasings(ts, new Rng(seed), draws, COMPOSE_CLEAN) };
  });
}

/** The tools a prompt may list in each split (control actions aside; generated tools only when a dataset asks for them). */
export function catalogPool(split: Split): readonly ToolSpec[] {
  if (split === 'test') return TRAIN_TOOLS;
  if (split === 'heldout_tools') return [...TRAIN_TOOLS, ...HELDOUT_TOOLS];
  return [...TRAIN_TOOLS, ...SYNTHETIC_TOOLS, ...GENERATED_TOOLS];
}

/** Re-export for callers that only import synth. */
export type { ToolSpec };
export { CONTROL_ACTIONS };
