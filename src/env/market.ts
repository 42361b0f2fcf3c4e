/**
 * Mock market data the tools read: closing prices, annual fundamentals, exchange rates, shares outstanding
 * and dividends, and the figures of the synthetic tools (`syntheticFigure`, hash-based, computed on demand).
 *
 * The course's figures are kept verbatim (AAPL/MSFT closes on 2025-01-02/03, Apple/Microsoft/Tesla FY2024
 * revenue, the USD->EUR, EUR->USD and USD->JPY rates). EVERYTHING ELSE IS SYNTHETIC: generated
 * deterministically from `hash32`/`Rng` with fixed salts, plausible in size but not real market data.
 * It is built once at import and deep-frozen; nothing in the project writes to it (execute.ts is read-only
 * and its write tool runs in dry-run).
 *
 * What this is not: a price model, or a source of facts about real companies.
 */
import { Rng, hash32 } from '../util/rng';
import type { SyntheticOutput } from './tools';

/** Ticker -> company name. 10 companies; the first three are the course's. */
export const COMPANY_BY_TICKER: Readonly<Record<string, string>> = Object.freeze({
  AAPL: 'Apple',
  MSFT: 'Microsoft',
  TSLA: 'Tesla',
  AMZN: 'Amazon',
  GOOGL: 'Alphabet',
  META: 'Meta',
  NVDA: 'Nvidia',
  NFLX: 'Netflix',
  INTC: 'Intel',
  ADBE: 'Adobe',
});

export const TICKERS: readonly string[] = Object.freeze(Object.keys(COMPANY_BY_TICKER));
export const COMPANIES: readonly string[] = Object.freeze(TICKERS.map((t) => COMPANY_BY_TICKER[t]));
export const FISCAL_YEARS: readonly number[] = Object.freeze([2022, 2023, 2024]);
export const CURRENCIES: readonly string[] = Object.freeze(['USD', 'EUR', 'JPY', 'GBP', 'CHF', 'CAD']);

/** Every weekday of January 2025 after New Year's Day: 22 trading days (holidays are ignored: mock data). */
export const TRADING_DAYS: readonly string[] = Object.freeze(
  Array.from({ length: 30 }, (_, i) => new Date(Date.UTC(2025, 0, 2 + i)))
    .filter((d) => d.getUTCDay() !== 0 && d.getUTCDay() !== 6)
    .map((d) => d.toISOString().slice(0, 10)),
);

export interface MarketData {
  /** prices[ticker][YYYY-MM-DD] = closing price (2 decimals). */
  prices: Record<string, Record<string, number>>;
  /** revenue/profit/cash_flow[company][fiscal_year] = US dollars (integers). */
  revenue: Record<string, Record<string, number>>;
  profit: Record<string, Record<string, number>>;
  cash_flow: Record<string, Record<string, number>>;
  /** fx[from][to] = units of `to` per unit of `from` (from != to). */
  fx: Record<string, Record<string, number>>;
  /** shares_outstanding[ticker] (synthetic, for get_market_cap). */
  shares_outstanding: Record<string, number>;
  /** dividends[ticker][fiscal_year] = dividend per share in USD (2 decimals). */
  dividends: Record<string, Record<string, number>>;
}

// --- the course's figures, verbatim -------------------------------------------------------------------------
const COURSE_PRICES: Record<string, Record<string, number>> = {
  AAPL: { '2025-01-02': 243.85, '2025-01-03': 243.36 },
  MSFT: { '2025-01-02': 418.58, '2025-01-03': 423.35 },
};
const COURSE_REVENUE_2024: Record<string, number> = {
  Apple: 391035000000,
  Microsoft: 245122000000,
  Tesla: 97690000000,
};
const COURSE_FX: Record<string, Record<string, number>> = {
  USD: { EUR: 0.92, JPY: 157.2 },
  EUR: { USD: 1.09 },
};

// --- synthetic anchors (plausible sizes, not real data) -----------------------------------------------------
const SYNTH_START_PRICE: Record<string, number> = {
  TSLA: 410.0, AMZN: 220.2, GOOGL: 190.6, META: 599.2, NVDA: 138.3, NFLX: 885.1, INTC: 20.2, ADBE: 440.7,
};
const SYNTH_REVENUE_2024: Record<string, number> = {
  Amazon: 638e9, Alphabet: 350e9, Meta: 164.5e9, Nvidia: 130.5e9, Netflix: 39e9, Intel: 53.1e9, Adobe: 21.5e9,
};
/** Net margin and operating-cash-flow margin per company (synthetic). Intel's negative margin is deliberate. */
const SYNTH_MARGINS: Record<string, [number, number]> = {
  Apple: [0.24, 0.3], Microsoft: [0.36, 0.48], Tesla: [0.08, 0.15], Amazon: [0.09, 0.18], Alphabet: [0.28, 0.36],
  Meta: [0.37, 0.55], Nvidia: [0.55, 0.49], Netflix: [0.22, 0.19], Intel: [-0.2, 0.15], Adobe: [0.26, 0.37],
};
const SYNTH_SHARES: Record<string, number> = {
  AAPL: 15.1e9, MSFT: 7.43e9, TSLA: 3.21e9, AMZN: 10.5e9, GOOGL: 12.2e9, META: 2.52e9, NVDA: 24.5e9,
  NFLX: 0.428e9, INTC: 4.33e9, ADBE: 0.44e9,
};
/** Base dividend per share per year (0 = pays none) (synthetic). */
const SYNTH_DIVIDEND: Record<string, number> = {
  AAPL: 0.96, MSFT: 3.0, TSLA: 0, AMZN: 0, GOOGL: 0.6, META: 2.0, NVDA: 0.04, NFLX: 0, INTC: 0.5, ADBE: 0,
};
/** Units of each currency per US dollar (USD->EUR and USD->JPY are the course's; the rest synthetic). */
const USD_RATE: Record<string, number> = { USD: 1, EUR: 0.92, JPY: 157.2, GBP: 0.79, CHF: 0.89, CAD: 1.43 };

const round2 = (x: number): number => Math.round(x * 100) / 100;
const roundMillions = (x: number): number => Math.round(x / 1e6) * 1e6;

function buildPrices(): MarketData['prices'] {
  const out: MarketData['prices'] = {};
  for (const t of TICKERS) {
    const rng = new Rng(hash32('synthetic-prices:' + t));
    const fixed = COURSE_PRICES[t] ?? {};
    const row: Record<string, number> = {};
    let p = SYNTH_START_PRICE[t] ?? 100;
    for (const day of TRADING_DAYS) {
      if (day in fixed) p = fixed[day];
      else p = round2(p * (1 + 0.015 * rng.normal())); // a seeded random walk, ~1.5% daily moves
      row[day] = p;
    }
    out[t] = row;
  }
  return out;
}

function buildFundamentals(): Pick<MarketData, 'revenue' | 'profit' | 'cash_flow'> {
  const revenue: MarketData['revenue'] = {}, profit: MarketData['profit'] = {}, cash_flow: MarketData['cash_flow'] = {};
  for (const c of COMPANIES) {
    const rng = new Rng(hash32('synthetic-fundamentals:' + c));
    const [net, ocf] = SYNTH_MARGINS[c];
    const rev: Record<string, number> = {}, pro: Record<string, number> = {}, cf: Record<string, number> = {};
    // Walk backwards from FY2024 with a synthetic growth rate per year.
    let r = COURSE_REVENUE_2024[c] ?? roundMillions(SYNTH_REVENUE_2024[c]);
    for (let i = FISCAL_YEARS.length - 1; i >= 0; i--) {
      const y = String(FISCAL_YEARS[i]);
      rev[y] = r;
      pro[y] = roundMillions(r * (net + 0.03 * rng.normal()));
      cf[y] = roundMillions(r * (ocf + 0.03 * rng.normal()));
      r = roundMillions(r / (1 + 0.02 + 0.12 * rng.next()));
    }
    revenue[c] = sortKeys(rev);
    profit[c] = sortKeys(pro);
    cash_flow[c] = sortKeys(cf);
  }
  return { revenue, profit, cash_flow };
}

function buildFx(): MarketData['fx'] {
  // Full table derived from one USD base so cross rates are consistent; 6 significant digits; the course's
  // three quoted rates override (EUR->USD is 1.09 in the course, 1/0.92 = 1.08696 derived).
  const out: MarketData['fx'] = {};
  for (const a of CURRENCIES) {
    out[a] = {};
    for (const b of CURRENCIES) {
      if (a === b) continue;
      out[a][b] = COURSE_FX[a]?.[b] ?? Number((USD_RATE[b] / USD_RATE[a]).toPrecision(6));
    }
  }
  return out;
}

function buildDividends(): MarketData['dividends'] {
  const out: MarketData['dividends'] = {};
  for (const t of TICKERS) {
    const rng = new Rng(hash32('synthetic-dividends:' + t));
    const row: Record<string, number> = {};
    for (const y of FISCAL_YEARS) {
      const base = SYNTH_DIVIDEND[t];
      row[String(y)] = base === 0 ? 0 : round2(base * (0.9 + 0.05 * (y - 2022)) * (1 + 0.02 * rng.next()));
    }
    out[t] = row;
  }
  return out;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o as object)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** The whole mock market, deep-frozen. */
export const MARKET: Readonly<MarketData> = deepFreeze({
  prices: buildPrices(),
  ...buildFundamentals(),
  fx: buildFx(),
  shares_outstanding: { ...SYNTH_SHARES },
  dividends: buildDividends(),
});

/** Own-property lookup in a table (never walks the prototype: '__proto__' or 'toString' are not keys). */
export function lookup<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

/**
 * A synthetic tool's figure for one canonical argument key (e.g. "AAPL|2025-01-03"): deterministic, from a hash
 * of the tool's name and the key, so the same call always gives the same answer and nothing is stored.
 * `number`: uniform in [min, max], rounded to `decimals` decimals (negative: to 10^-decimals, e.g. -6 = whole
 * millions). `label`: one of the labels. (The fee tools' figures depend on the amount: `syntheticShare`.)
 * Synthetic: plausible in size, not real data.
 */
export function syntheticFigure(tool: string, key: string, out: Extract<SyntheticOutput, { kind: 'number' | 'label' }>): number | string {
  const u = hash32(`synthetic-tool:${tool}:${key}`) / 4294967296; // [0, 1)
  if (out.kind === 'label') return out.labels[Math.floor(u * out.labels.length)];
  const x = out.min + u * (out.max - out.min);
  const d = out.decimals;
  const v = d >= 0 ? Number(x.toFixed(d)) : Math.round(x / 10 ** -d) * 10 ** -d;
  return v === 0 ? 0 : v; // no -0
}

/** The hashed share (in [min, max]) a fee tool takes of a converted amount, per tool and currency pair. */
export function syntheticShare(tool: string, pair: string, out: { min: number; max: number }): number {
  const u = hash32(`synthetic-share:${tool}:${pair}`) / 4294967296;
  return Number((out.min + u * (out.max - out.min)).toFixed(4));
}
