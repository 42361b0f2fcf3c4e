/**
 * The tool catalog: every action the model may choose, each with a JSON Schema for its arguments.
 *
 * Three kinds of entry:
 * - read tools: the course's three (get_stock_price, get_revenue, convert_currency, exactly as the course
 *   specifies them) plus confusable neighbours (get_profit, get_cash_flow, get_exchange_rate) and two tools
 *   that exist only for the held-out split (get_market_cap, get_dividend);
 * - one write tool, place_order, which execute.ts only ever runs in dry-run;
 * - control actions in the same JSON shape: no_call, ask_user, refuse.
 *
 * This file is data only: no lookups, no execution (see market.ts and execute.ts).
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
}

function tool(
  name: string,
  description: string,
  properties: Record<string, ParamSchema>,
  kind: ToolSpec['kind'] = 'read',
  heldout = false,
): ToolSpec {
  // All arguments are required: the course's tools have no optional arguments, and neither do ours.
  return {
    name,
    description,
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
  tool('get_stock_price', 'Get the closing stock price for a ticker on a date.', { ticker, date }),
  tool('get_revenue', 'Get annual revenue for a company and fiscal year.', { company, fiscal_year: fiscalYear }),
  tool('convert_currency', 'Convert money between currencies.', {
    amount: { type: 'number', description: 'Amount of money in the source currency.' },
    from_currency: fromCurrency,
    to_currency: toCurrency,
  }),
  // Confusable neighbours: same arguments, different figure.
  tool('get_profit', 'Get annual net income (profit) for a company and fiscal year.', {
    company,
    fiscal_year: fiscalYear,
  }),
  tool('get_cash_flow', 'Get annual operating cash flow for a company and fiscal year.', {
    company,
    fiscal_year: fiscalYear,
  }),
  tool('get_exchange_rate', 'Get the exchange rate from one currency to another (no amount converted).', {
    from_currency: fromCurrency,
    to_currency: toCurrency,
  }),
  // The write tool: only ever executed in dry-run.
  tool(
    'place_order',
    'Place a market order to buy or sell shares (runs in dry-run: records the order, executes nothing).',
    {
      ticker,
      side: { type: 'string', enum: ['buy', 'sell'], description: 'buy or sell.' },
      quantity: { type: 'integer', description: 'Number of shares, a positive integer.' },
    },
    'write',
  ),
  // Held-out tools: never in train or test, only in the heldout_tools split.
  tool('get_market_cap', 'Get the market capitalization of a company (by ticker) at the close of a date.', { ticker, date }, 'read', true),
  tool('get_dividend', 'Get the total dividend per share a company (by ticker) paid in a fiscal year.', {
    ticker,
    fiscal_year: fiscalYear,
  }, 'read', true),
];

/** Control actions, in the same {name, arguments} shape as tool calls. */
export const CONTROL_ACTIONS: readonly ToolSpec[] = [
  tool('no_call', 'No tool is needed for this request.', {}, 'control'),
  tool('ask_user', 'A required argument is missing: ask the user for it.', {
    missing: { type: 'array', items: { type: 'string' }, description: 'Names of the required arguments the user did not give.' },
    question: { type: 'string', description: 'The question to ask the user.' },
  }, 'control'),
  tool('refuse', 'The request is harmful or out of scope: decline it.', {
    reason: { type: 'string', description: 'Why the request is declined.' },
  }, 'control'),
];

/** Tools a train/test prompt lists: every real tool that is not held out. */
export const TRAIN_TOOLS: readonly ToolSpec[] = TOOLS.filter((t) => !t.heldout);

/** Tools that exist only for the heldout_tools split. */
export const HELDOUT_TOOLS: readonly ToolSpec[] = TOOLS.filter((t) => t.heldout);

const BY_NAME: ReadonlyMap<string, ToolSpec> = new Map([...TOOLS, ...CONTROL_ACTIONS].map((t) => [t.name, t]));

/** Look up a tool or control action by name. A Map, so prototype keys ('__proto__', 'toString') are never found. */
export function getTool(name: string): ToolSpec | undefined {
  return typeof name === 'string' ? BY_NAME.get(name) : undefined;
}
