/**
 * The tool catalog: every action the model may choose, each with a JSON Schema for its arguments and a short
 * gloss (the few words the compact system prompt prints after its signature).
 *
 * Four kinds of entry:
 * - read tools: the course's three (get_stock_price, get_revenue, convert_currency, exactly as the course
 *   specifies them) plus confusable neighbours (get_profit, get_cash_flow, get_exchange_rate) and two tools
 *   that exist only for the held-out split (get_market_cap, get_dividend);
 * - one write tool, place_order, which execute.ts only ever runs in dry-run;
 * - control actions in the same JSON shape: no_call, ask_user, refuse;
 * - SYNTHETIC tools (issue 12): generated read tools over a broad vocabulary of financial metrics, with the
 *   argument shapes the real tools use (ticker + date, company + fiscal year, amount + two currencies, ticker +
 *   fiscal year, and a few others). They exist only to teach a model to READ its tool list: they appear in
 *   train and validation rows and catalogs, never in test or heldout_tools. Their mock figures are
 *   hash-based (market.ts `syntheticFigure`) so the sandbox executes them; their names and glosses avoid the
 *   held-out tools' words (market cap, capitalization, dividend).
 *
 * This file is data only: no lookups beyond `getTool`, no execution (see market.ts and execute.ts).
 */

export type ParamType = 'string' | 'integer' | 'number' | 'array';

export interface ParamSchema {
  type: ParamType;
  description: string;
  format?: 'date';
  enum?: string[];
  items?: { type: 'string' };
}

export interface ToolSpec {
  name: string;
  description: string;
  /** A few words the compact system prompt prints after the signature ("net income", "rate only"). */
  gloss: string;
  parameters: {
    type: 'object';
    properties: Record<string, ParamSchema>;
    required: string[];
    additionalProperties: false;
  };
  /** control = no_call / ask_user / refuse. */
  kind: 'read' | 'write' | 'control';
  /** true => appears only in the heldout_tools split. */
  heldout: boolean;
  /**
   * Set for synthetic tools: the argument shape, what the mock figure looks like, and whether the tool is one of
   * the GENERATED family (qualifier x metric, hundreds of names) rather than the curated table.
   */
  synthetic?: { shape: ArgShape; output: SyntheticOutput; generated?: boolean };
}

/** The argument shapes of the synthetic tools (the real tools' shapes, and a few others). */
export type ArgShape =
  | 'ticker+date'
  | 'company+fiscal_year'
  | 'ticker+fiscal_year'
  | 'amount+currencies'
  | 'currency_pair'
  | 'ticker'
  | 'company'
  | 'currency';

/**
 * A synthetic tool's mock figure: a number drawn (by hash) in [min, max] with `decimals` decimals, a share of
 * the converted amount (`fee_share` or `after_fee`: amount x rate x a hashed share), or one of `labels`.
 */
export type SyntheticOutput =
  | { kind: 'number'; min: number; max: number; decimals: number }
  | { kind: 'fee_share' | 'after_fee'; min: number; max: number }
  | { kind: 'label'; labels: readonly string[] };

function tool(
  name: string,
  description: string,
  gloss: string,
  properties: Record<string, ParamSchema>,
  kind: ToolSpec['kind'] = 'read',
  heldout = false,
): ToolSpec {
  // All arguments are required: the course's tools have no optional arguments, and neither do ours.
  return {
    name,
    description,
    gloss,
    parameters: { type: 'object', properties, required: Object.keys(properties), additionalProperties: false },
    kind,
    heldout,
  };
}

const ticker: ParamSchema = { type: 'string', description: 'Stock ticker symbol, e.g. AAPL.' };
const date: ParamSchema = { type: 'string', format: 'date', description: 'Trading day as YYYY-MM-DD.' };
const company: ParamSchema = { type: 'string', description: 'Company name, e.g. Apple.' };
const fiscalYear: ParamSchema = { type: 'integer', description: 'Fiscal year, e.g. 2024.' };
const fromCurrency: ParamSchema = { type: 'string', description: 'ISO 4217 code of the source currency, e.g. USD.' };
const toCurrency: ParamSchema = { type: 'string', description: 'ISO 4217 code of the target currency, e.g. EUR.' };

/** Real tools (read + write), including the held-out ones. Order = order in prompts. */
export const TOOLS: readonly ToolSpec[] = [
  // The course's three tools.
  tool('get_stock_price', 'Get the closing stock price for a ticker on a date.', 'close', { ticker, date }),
  tool('get_revenue', 'Get annual revenue for a company and fiscal year.', 'sales', { company, fiscal_year: fiscalYear }),
  tool('convert_currency', 'Convert money between currencies.', 'amount', {
    amount: { type: 'number', description: 'Amount of money in the source currency.' },
    from_currency: fromCurrency,
    to_currency: toCurrency,
  }),
  // Confusable neighbours: same arguments, different figure.
  tool('get_profit', 'Get annual net income (profit) for a company and fiscal year.', 'net income', {
    company,
    fiscal_year: fiscalYear,
  }),
  tool('get_cash_flow', 'Get annual operating cash flow for a company and fiscal year.', 'operating', {
    company,
    fiscal_year: fiscalYear,
  }),
  tool('get_exchange_rate', 'Get the exchange rate from one currency to another (no amount converted).', 'rate only', {
    from_currency: fromCurrency,
    to_currency: toCurrency,
  }),
  // The write tool: only ever executed in dry-run.
  tool(
    'place_order',
    'Place a market order to buy or sell shares (runs in dry-run: records the order, executes nothing).',
    'dry run',
    {
      ticker,
      side: { type: 'string', enum: ['buy', 'sell'], description: 'buy or sell.' },
      quantity: { type: 'integer', description: 'Number of shares, a positive integer.' },
    },
    'write',
  ),
  // Held-out tools: never in train or test, only in the heldout_tools split.
  tool('get_market_cap', 'Get the market capitalization of a company (by ticker) at the close of a date.', 'market capitalization', { ticker, date }, 'read', true),
  tool('get_dividend', 'Get the total dividend per share a company (by ticker) paid in a fiscal year.', 'per share', {
    ticker,
    fiscal_year: fiscalYear,
  }, 'read', true),
];

/** Control actions, in the same {name, arguments} shape as tool calls. */
export const CONTROL_ACTIONS: readonly ToolSpec[] = [
  tool('no_call', 'No tool is needed for this request, or no listed tool serves it.', 'nothing fits', {}, 'control'),
  tool('ask_user', 'A required argument is missing: ask the user for it.', 'args missing', {
    missing: { type: 'array', items: { type: 'string' }, description: 'Names of the required arguments the user did not give.' },
    question: { type: 'string', description: 'The question to ask the user.' },
  }, 'control'),
  tool('refuse', 'The request is harmful or out of scope: decline it.', 'harmful', {
    reason: { type: 'string', description: 'Why the request is declined.' },
  }, 'control'),
];

/** Tools a train/test prompt may list: every real tool that is not held out. */
export const TRAIN_TOOLS: readonly ToolSpec[] = TOOLS.filter((t) => !t.heldout);

/** Tools that exist only for the heldout_tools split. */
export const HELDOUT_TOOLS: readonly ToolSpec[] = TOOLS.filter((t) => t.heldout);

// --- synthetic tools ----------------------------------------------------------------------------------------
const currency: ParamSchema = { type: 'string', description: 'ISO 4217 currency code, e.g. EUR.' };
const amount: ParamSchema = { type: 'number', description: 'Amount of money in the source currency.' };

/** The arguments of each shape, with the real tools' argument names and descriptions. */
export const SHAPE_PARAMS: Readonly<Record<ArgShape, Record<string, ParamSchema>>> = {
  'ticker+date': { ticker, date },
  'company+fiscal_year': { company, fiscal_year: fiscalYear },
  'ticker+fiscal_year': { ticker, fiscal_year: fiscalYear },
  'amount+currencies': { amount, from_currency: fromCurrency, to_currency: toCurrency },
  currency_pair: { from_currency: fromCurrency, to_currency: toCurrency },
  ticker: { ticker },
  company: { company },
  currency: { currency },
};

const num = (min: number, max: number, decimals: number): SyntheticOutput => ({ kind: 'number', min, max, decimals });
const usd = num(1e8, 9e10, -6); // whole millions of dollars (decimals -6: rounded to 1e6)
const pct = num(0.5, 60, 2);

/**
 * The synthetic tool families: [name, shape, gloss, description, mock figure]. Names are the metric in snake
 * case, so a request's words and the listed name agree the way they do for a real tool. None of them serves a
 * no_call or refuse template's request (no CEO, founder, headquarters, head count, products or competitors).
 */
const SYNTHETIC_TABLE: readonly (readonly [string, ArgShape, string, string, SyntheticOutput])[] = [
  // ticker + date (the shape of get_stock_price)
  ['get_opening_price', 'ticker+date', 'open', 'Get the opening price of a ticker on a trading day.', num(5, 900, 2)],
  ['get_intraday_high', 'ticker+date', 'day high', 'Get the highest price a ticker traded at during a trading day.', num(5, 900, 2)],
  ['get_intraday_low', 'ticker+date', 'day low', 'Get the lowest price a ticker traded at during a trading day.', num(5, 900, 2)],
  ['get_trading_volume', 'ticker+date', 'shares', 'Get the number of shares of a ticker traded on a trading day.', num(1e5, 9e7, 0)],
  ['get_vwap', 'ticker+date', 'volume-weighted price', 'Get the volume-weighted average price of a ticker on a trading day.', num(5, 900, 2)],
  ['get_short_interest', 'ticker+date', 'shorted shares', 'Get the number of shares of a ticker sold short as of a trading day.', num(1e6, 3e8, 0)],
  ['get_implied_volatility', 'ticker+date', 'percent', 'Get the options-implied volatility of a ticker on a trading day, in percent.', num(10, 90, 2)],
  ['get_trade_count', 'ticker+date', 'trades', 'Get how many trades in a ticker were executed on a trading day.', num(1e4, 2e6, 0)],
  // company + fiscal year (the shape of get_revenue, get_profit, get_cash_flow)
  ['get_gross_profit', 'company+fiscal_year', 'revenue minus costs', 'Get annual gross profit (revenue minus cost of sales) for a company and fiscal year.', usd],
  ['get_operating_income', 'company+fiscal_year', 'EBIT', 'Get annual operating income for a company and fiscal year.', usd],
  ['get_ebitda', 'company+fiscal_year', 'before D&A', 'Get annual EBITDA for a company and fiscal year.', usd],
  ['get_total_assets', 'company+fiscal_year', 'balance sheet', 'Get total assets on the balance sheet at the end of a fiscal year.', usd],
  ['get_total_debt', 'company+fiscal_year', 'borrowings', 'Get total debt at the end of a fiscal year.', usd],
  ['get_rd_expense', 'company+fiscal_year', 'R&D', 'Get annual research and development expense for a company and fiscal year.', usd],
  ['get_capex', 'company+fiscal_year', 'capital spending', 'Get annual capital expenditure for a company and fiscal year.', usd],
  ['get_free_cash_flow', 'company+fiscal_year', 'after capex', 'Get annual free cash flow (operating cash flow minus capital expenditure).', usd],
  ['get_gross_margin', 'company+fiscal_year', 'percent', 'Get the gross margin of a company in a fiscal year, in percent.', pct],
  ['get_cash_balance', 'company+fiscal_year', 'year end', 'Get cash and cash equivalents at the end of a fiscal year.', usd],
  ['get_interest_expense', 'company+fiscal_year', 'on debt', 'Get annual interest expense for a company and fiscal year.', usd],
  ['get_tax_expense', 'company+fiscal_year', 'income tax', 'Get annual income tax expense for a company and fiscal year.', usd],
  ['get_inventory', 'company+fiscal_year', 'year end', 'Get the value of inventory at the end of a fiscal year.', usd],
  ['get_marketing_spend', 'company+fiscal_year', 'advertising', 'Get annual marketing and advertising spending for a company and fiscal year.', usd],
  // ticker + fiscal year
  ['get_eps', 'ticker+fiscal_year', 'diluted', 'Get the diluted EPS (net income over diluted shares) of a ticker for a fiscal year.', num(-2, 25, 2)],
  ['get_share_buybacks', 'ticker+fiscal_year', 'dollars', 'Get the dollars a company (by ticker) spent buying back its own shares in a fiscal year.', usd],
  ['get_shares_outstanding', 'ticker+fiscal_year', 'count', 'Get the number of shares outstanding of a ticker at the end of a fiscal year.', num(4e8, 2.5e10, -6)],
  ['get_annual_return', 'ticker+fiscal_year', 'percent', 'Get the total return of a ticker over a fiscal year, in percent.', num(-40, 120, 2)],
  ['get_stock_splits', 'ticker+fiscal_year', 'count', 'Get how many stock splits a ticker had in a fiscal year.', num(0, 2, 0)],
  // amount + two currencies (the shape of convert_currency)
  ['get_transfer_fee', 'amount+currencies', 'bank fee', 'Get the bank fee for an international transfer from one currency to another.', { kind: 'fee_share', min: 0.002, max: 0.03 }],
  ['get_fx_commission', 'amount+currencies', 'on a conversion', 'Get the commission charged for converting an amount between currencies.', { kind: 'fee_share', min: 0.001, max: 0.015 }],
  ['get_received_after_fees', 'amount+currencies', 'net of fees', 'Convert money and subtract the conversion fees: what is actually received.', { kind: 'after_fee', min: 0.005, max: 0.03 }],
  // two currencies (the shape of get_exchange_rate)
  ['get_forward_rate', 'currency_pair', 'three-month', 'Get the three-month forward exchange rate from one currency to another.', num(0.005, 170, 4)],
  ['get_fx_volatility', 'currency_pair', 'percent', 'Get the annualised volatility of a currency pair, in percent.', num(3, 20, 2)],
  ['get_rate_change', 'currency_pair', 'one month, percent', 'Get how much the exchange rate between two currencies moved over the last month, in percent.', num(-6, 6, 2)],
  // a ticker only
  ['get_beta', 'ticker', 'vs index', 'Get the beta of a ticker (how strongly it moves with the index).', num(0.3, 2.5, 2)],
  ['get_price_target', 'ticker', 'analysts', 'Get the average analyst price target for a ticker.', num(10, 1200, 2)],
  ['get_sector', 'ticker', 'industry', 'Get the industry sector a ticker belongs to.', { kind: 'label', labels: ['Technology', 'Consumer', 'Communication', 'Semiconductors', 'Automotive', 'Software'] }],
  ['get_listing_exchange', 'ticker', 'where listed', 'Get the stock exchange a ticker is listed on.', { kind: 'label', labels: ['NASDAQ', 'NYSE'] }],
  // a company only
  ['get_credit_rating', 'company', 'long-term', 'Get the long-term credit rating of a company.', { kind: 'label', labels: ['AAA', 'AA+', 'AA', 'AA-', 'A+', 'A', 'BBB'] }],
  ['get_esg_score', 'company', '0-100', 'Get the environmental, social and governance (ESG) score of a company, 0 to 100.', num(20, 95, 1)],
  // a currency only
  ['get_policy_rate', 'currency', 'central bank', 'Get the central bank policy interest rate for a currency, in percent.', num(-0.5, 6, 2)],
  ['get_bond_yield', 'currency', 'ten-year', 'Get the ten-year government bond yield in a currency, in percent.', num(0.2, 5.5, 2)],
];

/** The synthetic tools (train and validation only). Order = the table's. */
export const SYNTHETIC_TOOLS: readonly ToolSpec[] = SYNTHETIC_TABLE.map(([name, shape, gloss, description, output]) => ({
  ...tool(name, description, gloss, { ...SHAPE_PARAMS[shape] }),
  synthetic: { shape, output },
}));

/**
 * The GENERATED synthetic family: for each argument shape, every qualifier x metric pair ("median" x "trade
 * size" -> get_median_trade_size, gloss "median trade size"). Hundreds of names, each seen only a few times in
 * a dataset, so a model cannot learn them by heart: it has to match the request's words to a listed name,
 * which is what a held-out tool asks of it. The words avoid the real tools' figures (closing price, revenue,
 * profit, cash flow, exchange rate), the no_call topics (employees, founders, headquarters), the refusal
 * topics (insiders) and the held-out tools' words.
 */
const GENERATED_FAMILIES: readonly (readonly [ArgShape, readonly string[], readonly string[], string])[] = [
  ['ticker+date', ['average', 'median', 'peak', 'minimum', 'midday', 'pre-market', 'after-hours', 'intraday', 'weighted'],
    ['trade size', 'tick count', 'order imbalance', 'block trades', 'option volume', 'short volume', 'quote count', 'price range'], 'of a ticker on a trading day'],
  ['company+fiscal_year', ['total', 'average', 'domestic', 'international', 'deferred', 'accrued', 'long-term', 'short-term', 'year-end', 'peak'],
    ['payroll', 'rent', 'depreciation', 'amortization', 'goodwill', 'receivables', 'payables', 'reserves', 'backlog', 'bookings', 'leases', 'pension costs'], 'of a company in a fiscal year'],
  ['ticker+fiscal_year', ['average', 'median', 'peak', 'minimum', 'year-end', 'annual'],
    ['option grants', 'public float', 'analyst coverage', 'institutional ownership', 'short ratio', 'retail ownership'], 'of a ticker in a fiscal year'],
  ['amount+currencies', ['wire', 'card', 'cash', 'express', 'weekend', 'business'], ['fee', 'markup', 'surcharge', 'commission'], 'for moving money from one currency to another'],
  ['currency_pair', ['one-week', 'one-year', 'overnight', 'six-month'], ['forward points', 'swap rate', 'basis', 'implied volatility'], 'of a currency pair'],
  ['ticker', ['analyst', 'consensus', 'median', 'peak'], ['rating', 'growth estimate', 'risk score', 'momentum score'], 'of a ticker'],
  ['company', ['credit', 'governance', 'carbon', 'supply chain'], ['score', 'risk rating', 'outlook'], 'of a company'],
  ['currency', ['overnight', 'one-month', 'three-month'], ['deposit rate', 'lending rate', 'bill yield'], 'in a currency'],
];

const snake = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_');

/** The generated synthetic tools (train and validation only, and only when a dataset asks for them). */
export const GENERATED_TOOLS: readonly ToolSpec[] = GENERATED_FAMILIES.flatMap(([shape, qualifiers, metrics, what]) =>
  qualifiers.flatMap((q) => metrics.map((m): ToolSpec => ({
    ...tool(`get_${snake(q)}_${snake(m)}`, `Get the ${q} ${m} ${what}.`, `${q} ${m}`, { ...SHAPE_PARAMS[shape] }),
    synthetic: { shape, output: m.includes('fee') || m === 'markup' || m === 'surcharge' || m === 'commission' ? { kind: 'fee_share', min: 0.001, max: 0.03 } : num(1, 5000, 2), generated: true },
  }))),
);

const BY_NAME: ReadonlyMap<string, ToolSpec> = new Map(
  [...TOOLS, ...CONTROL_ACTIONS, ...SYNTHETIC_TOOLS, ...GENERATED_TOOLS].map((t) => [t.name, t]),
);

/** The argument names of a tool, joined: tools with the same key are confusable neighbours. */
export function argShapeKey(t: ToolSpec): string {
  return Object.keys(t.parameters.properties).join('+');
}

/**
 * Look up a tool, synthetic tool or control action by name. A Map, so prototype keys ('__proto__', 'toString')
 * are never found.
 */
export function getTool(name: string): ToolSpec | undefined {
  return typeof name === 'string' ? BY_NAME.get(name) : undefined;
}
