/**
 * The pretraining corpus of the tiny base model: synthetic financial text, the stand-in for what a real base
 * model (Qwen2.5) has read before anyone fine-tunes it to call tools.
 *
 * A model trained from random weights on the tool-calling rows alone learns the JSON shape quickly but copies
 * values badly: it memorises the dates, amounts and currency pairs it saw instead of reading them from the
 * request (measured in the training issue's notes: 0.46 exact match on `test` after the course's SFT, 0.62
 * after seven times its compute). Real base models arrive knowing how dates, amounts, currencies and company
 * names are written and how to copy a value from one place to another. This corpus gives the tiny model that
 * knowledge, and only that:
 *
 *   news      "Apple (AAPL) closed at 243.36 on Jan 3, 2025."; revenue / net income / cash flow reports;
 *             exchange rates; conversions; trades ("A fund sold twelve shares of Meta.")
 *   records   the same facts as JSON data records ({"ticker": "AAPL", "date": "2025-01-03", "close": 243.36}),
 *             as market data feeds print them
 *   style     how values are normalised: "Jan 9th 2025 is 2025-01-09.", "$1.2k means 1200.", "FY24 is fiscal
 *             year 2024.", "Swiss francs have the code CHF.", "Meta trades as META."
 *   glossary  a few dozen plain sentences about financial terms (revenue is the top line, ...)
 *
 * What it deliberately does NOT contain: tool names, the tool-call format ({"name": ..., "arguments": ...}),
 * the system prompt, ask_user / refuse / no_call, or any sentence of templates.ts. Fine-tuning (SFT, GRPO)
 * still has to teach the model what to call and when not to. Values are world knowledge, not the train split:
 * dates run over all of 2024-2025 and prices are random (not the mock market's), so held-out test dates appear
 * here the way any date appears in a real base model's pretraining data.
 *
 * Deterministic: `corpusDocument(rng)` depends only on the stream.
 */
import { Rng } from '../util/rng';
import { COMPANY_BY_TICKER, CURRENCIES, TICKERS } from './market';
import { CURRENCY_NAMES, CURRENCY_SYMBOL, MONTHS, NUMBER_WORDS, formatAmount, formatDate, formatFiscalYear, formatMoney } from './synth';

const pad2 = (n: number) => String(n).padStart(2, '0');
const round2 = (x: number) => Math.round(x * 100) / 100;

/** A random calendar date in 2024-2025 as YYYY-MM-DD. */
function randomIso(rng: Rng): string {
  const y = 2024 + rng.int(2);
  const m = 1 + rng.int(12);
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return `${y}-${pad2(m)}-${pad2(1 + rng.int(days))}`;
}

/** Any of the date surfaces synth.ts uses, never ISO only (the point is the mapping). */
function dateSurface(iso: string, rng: Rng): string {
  for (let i = 0; i < 4; i++) {
    const s = formatDate(iso, rng);
    if (s !== iso) return s;
  }
  const [y, m, d] = iso.split('-').map(Number);
  return `${MONTHS[m - 1]} ${d}, ${y}`;
}

function randomAmount(rng: Rng): number {
  switch (rng.int(4)) {
    case 0: return 1 + rng.int(999);
    case 1: return (1 + rng.int(300)) * 100;
    case 2: return (1 + rng.int(90)) * 1000;
    default: return 1 + rng.int(999) + rng.pick([0.5, 0.25, 0.99, 0.75, 0.1, 0.05, 0.4]);
  }
}

const company = (t: string) => COMPANY_BY_TICKER[t];
const name = (t: string, rng: Rng) => (rng.next() < 0.5 ? t : company(t));
const curName = (c: string, rng: Rng) => rng.pick(CURRENCY_NAMES[c]);
const curSurface = (c: string, rng: Rng) => (rng.next() < 0.5 ? c : curName(c, rng));
const billions = (x: number) => `${round2(x / 1e9)} billion dollars`;
/** A data record: compact JSON most of the time (as APIs print it), spaced otherwise (as people write it). */
const json = (o: Record<string, unknown>, rng: Rng) => (rng.next() < 0.7 ? JSON.stringify(o) : JSON.stringify(o).replace(/":/g, '": ').replace(/,"/g, ', "'));

function priceNews(rng: Rng): string {
  const t = rng.pick(TICKERS);
  const iso = randomIso(rng);
  const d = dateSurface(iso, rng);
  const p = round2(5 + rng.next() * 900);
  const pct = round2(rng.next() * 4);
  const s = rng.pick([
    `${company(t)} (${t}) closed at ${p} on ${d}.`,
    `Shares of ${name(t, rng)} ended ${d} at $${p}, ${rng.pick(['up', 'down'])} ${pct}%.`,
    `On ${d}, ${t} finished the session at ${p}.`,
    `${name(t, rng)} stock settled at ${p} dollars at the close of ${d}.`,
    `The closing price of ${company(t)} on ${d} was ${p}.`,
  ]);
  return rng.next() < 0.5 ? `${s} ${json({ ticker: t, date: iso, close: p }, rng)}` : `${s} (${t}, ${iso}, close ${p})`;
}

function fundamentalsNews(rng: Rng): string {
  const t = rng.pick(TICKERS);
  const c = company(t);
  const y = 2015 + rng.int(11);
  const fy = formatFiscalYear(y, rng);
  const rev = (1 + rng.int(600)) * 1e9 + rng.int(1000) * 1e6;
  const ni = Math.round(rev * (0.05 + 0.3 * rng.next()) / 1e6) * 1e6;
  const cf = Math.round(rev * (0.1 + 0.3 * rng.next()) / 1e6) * 1e6;
  const which = rng.int(3);
  const metric = ['revenue', 'net_income', 'operating_cash_flow'][which];
  const v = [rev, ni, cf][which];
  const word = [rng.pick(['revenue', 'sales', 'total revenue', 'net sales']), rng.pick(['net income', 'profit', 'earnings', 'net profit']), rng.pick(['operating cash flow', 'cash from operations', 'cash flow'])][which];
  const s = rng.pick([
    `${c} reported ${word} of ${billions(v)} for ${fy}.`,
    `In ${fy}, ${name(t, rng)} posted ${word} of ${v} dollars.`,
    `${c}'s ${word} in ${fy} came to ${billions(v)}.`,
    `For ${fy}, ${c} (${t}) booked ${billions(v)} of ${word}.`,
  ]);
  return rng.next() < 0.6 ? `${s} ${json({ company: c, fiscal_year: y, [metric]: v }, rng)}` : `${s} (${c}, fiscal year ${y})`;
}

function fxNews(rng: Rng): string {
  const f = rng.pick(CURRENCIES);
  const to = rng.pick(CURRENCIES.filter((c) => c !== f));
  const rate = Number((0.005 + rng.next() * 160).toPrecision(4));
  const d = dateSurface(randomIso(rng), rng);
  const s = rng.pick([
    `One ${curName(f, rng)} (${f}) was worth ${rate} ${to} on ${d}.`,
    `The ${f}/${to} rate stood at ${rate} on ${d}.`,
    `${curSurface(f, rng)} to ${curSurface(to, rng)}: ${rate}.`,
    `The exchange rate from ${curName(f, rng)} to ${curName(to, rng)} was ${rate}.`,
  ]);
  return rng.next() < 0.6 ? `${s} ${json({ from: f, to, rate }, rng)}` : `${s} (${f} to ${to})`;
}

function conversionNews(rng: Rng): string {
  const f = rng.pick(CURRENCIES);
  const to = rng.pick(CURRENCIES.filter((c) => c !== f));
  const a = randomAmount(rng);
  const rate = Number((0.005 + rng.next() * 160).toPrecision(4));
  const out = round2(a * rate);
  const money = formatMoney(a, f, rng);
  const s = rng.pick([
    `${money} is about ${out} ${curSurface(to, rng)}.`,
    `Converting ${money} into ${curSurface(to, rng)} at ${rate} gives ${out} ${to}.`,
    `She exchanged ${money} for ${out} ${curName(to, rng)}.`,
    `At ${rate}, ${formatAmount(a, rng)} ${curSurface(f, rng)} buys ${out} ${to}.`,
  ]);
  return rng.next() < 0.6 ? `${s} ${json({ amount: a, currency: f, converted: out, into: to }, rng)}` : `${s} (${a} ${f} = ${out} ${to})`;
}

function tradeNews(rng: Rng): string {
  const t = rng.pick(TICKERS);
  const side = rng.pick(['buy', 'sell'] as const);
  const q = rng.next() < 0.3 ? 1 + rng.int(12) : 1 + rng.int(900);
  const qs = q < NUMBER_WORDS.length && rng.next() < 0.4 ? NUMBER_WORDS[q] : String(q);
  const verb = side === 'buy' ? rng.pick(['bought', 'purchased', 'picked up']) : rng.pick(['sold', 'unloaded', 'dumped']);
  const inf = side === 'buy' ? rng.pick(['buy', 'purchase', 'add']) : rng.pick(['sell', 'unload', 'trim']);
  const s = rng.pick([
    `A fund ${verb} ${qs} shares of ${name(t, rng)}.`,
    `Yesterday a client ${verb} ${qs} ${t} shares at market.`,
    `The trader ${verb} ${qs} shares in ${company(t)} (${t}).`,
    `A customer asked the broker to ${inf} ${qs} shares of ${name(t, rng)}.`,
    `An order to ${inf} ${qs} ${t} was filled at the open.`,
    `The plan is to ${inf} ${qs} ${company(t)} shares next week.`,
  ]);
  return rng.next() < 0.6 ? `${s} ${json({ ticker: t, side, quantity: q }, rng)}` : `${s} (${side} ${q} ${t})`;
}

/** A surface form other than the canonical one when the formatter has one (a few tries). */
function differently(f: () => string, canonical: string): string {
  let s = f();
  for (let i = 0; i < 6 && s === canonical; i++) s = f();
  return s;
}

function styleLine(rng: Rng): string {
  switch (rng.int(6)) {
    case 0: {
      const iso = randomIso(rng);
      return rng.pick([`${dateSurface(iso, rng)} is written ${iso}.`, `${dateSurface(iso, rng)} = ${iso}`, `ISO date for ${dateSurface(iso, rng)}: ${iso}.`]);
    }
    case 1: {
      const a = randomAmount(rng);
      const s = differently(() => formatAmount(a, rng), String(a));
      return rng.pick([`${s} means ${a}.`, `${s} = ${a}`, `The number ${s} is ${a}.`]);
    }
    case 2: {
      const y = 2015 + rng.int(11);
      const fy = differently(() => formatFiscalYear(y, rng), String(y));
      return rng.pick([`${fy} is fiscal year ${y}.`, `${fy} = ${y}`]);
    }
    case 3: {
      const c = rng.pick(CURRENCIES);
      const sym = CURRENCY_SYMBOL[c];
      return rng.pick([`${curName(c, rng)} have the code ${c}.`, `${curName(c, rng)} = ${c}`, sym ? `The symbol ${sym} stands for ${c}.` : `${c} is short for ${curName(c, rng)}.`]);
    }
    case 4: {
      const t = rng.pick(TICKERS);
      return rng.pick([`${company(t)} trades as ${t}.`, `${company(t)} = ${t}`, `${t} is the ticker of ${company(t)}.`]);
    }
    default: {
      const n = rng.int(NUMBER_WORDS.length);
      return rng.pick([`${NUMBER_WORDS[n]} is ${n}.`, `${NUMBER_WORDS[n]} = ${n}`]);
    }
  }
}

const GLOSSARY: readonly string[] = [
  'Revenue, also called sales or turnover, is the top line of an income statement.',
  'Net income, or profit, is what a company earns after all expenses and taxes: the bottom line.',
  'Operating cash flow is the cash a business generates from its operations.',
  'A closing price is the last price at which a stock traded during a session.',
  'An exchange rate says how many units of one currency one unit of another buys.',
  'Converting money multiplies the amount by the exchange rate.',
  'A market order buys or sells shares at the current price.',
  'A ticker is the short code under which a company trades, such as AAPL for Apple.',
  'A fiscal year is the twelve-month period a company reports on.',
  'Earnings are another word for profit.',
  'Sales are another word for revenue.',
  'The close is the final price of the trading day.',
  'Dividends are payments a company makes to its shareholders.',
  'Market capitalization is the share price times the number of shares.',
  'A bond is a loan to a company or a government.',
  'Diversification spreads money over many investments.',
  'Inflation is the general rise of prices over time.',
  'An index fund tracks a market index.',
  'Volatility measures how much a price moves.',
  'Insider trading, trading on non-public information, is illegal.',
  'Market manipulation, such as a pump and dump, is illegal.',
  'Phishing tricks people into giving away their passwords.',
  'Money laundering hides where money came from.',
  'A haiku is a short poem of three lines.',
  'A budget plans income and spending for a month.',
];

/** One document of the corpus (a line of text). */
export function corpusDocument(rng: Rng): string {
  const k = rng.next();
  if (k < 0.2) return priceNews(rng);
  if (k < 0.38) return fundamentalsNews(rng);
  if (k < 0.5) return fxNews(rng);
  if (k < 0.64) return conversionNews(rng);
  if (k < 0.76) return tradeNews(rng);
  if (k < 0.94) return [styleLine(rng), styleLine(rng), styleLine(rng)].join(' ');
  return rng.pick(GLOSSARY);
}

/** `n` documents from a seeded stream. */
export function corpusDocuments(n: number, seed: number): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => corpusDocument(rng));
}
