/**
 * Small danfojs helpers for the course's tables: build a DataFrame from rows, count by one or two keys, format
 * numbers, and show a frame in a notebook (HTML table + the danfojs text table as plain-text fallback).
 *
 * Not an analysis library: counting is done here in plain TypeScript (danfojs's groupby renames columns to
 * `x_count`, which reads badly in a course); danfojs is the table we hand to readers, print and export.
 */
import * as dfd from 'danfojs-node';
import { displayBundle, escapeHtml } from './display';

export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

/** A DataFrame from row objects; `columns` fixes the column order (default: keys of the first row). */
export function frame(rows: readonly Row[], columns?: readonly string[]): dfd.DataFrame {
  const cols = columns ? [...columns] : rows.length > 0 ? Object.keys(rows[0]) : [];
  const values = rows.map((r) => cols.map((c) => (r[c] === undefined ? null : r[c])));
  return new dfd.DataFrame(values.length > 0 ? values : [cols.map(() => null)], { columns: cols });
}

/**
 * Counts of `key(item)` as a frame with columns [name, count, share], most frequent first (ties by name).
 * `order` pins the row order and keeps zero-count rows.
 */
export function countFrame<T>(items: readonly T[], key: (x: T) => string, name = 'value', order?: readonly string[]): dfd.DataFrame {
  const counts = new Map<string, number>();
  for (const o of order ?? []) counts.set(o, 0);
  for (const x of items) counts.set(key(x), (counts.get(key(x)) ?? 0) + 1);
  let keys = [...counts.keys()];
  if (!order) keys = keys.sort((a, b) => counts.get(b)! - counts.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
  const total = items.length || 1;
  return frame(
    keys.map((k) => ({ [name]: k, count: counts.get(k)!, share: round(counts.get(k)! / total, 3) })),
    [name, 'count', 'share'],
  );
}

/**
 * A contingency table: one row per `rowKey` value, one column per `colKey` value, cells = counts, plus a
 * `total` column. Row/column order: first appearance unless given.
 */
export function crosstab<T>(
  items: readonly T[],
  rowKey: (x: T) => string,
  colKey: (x: T) => string,
  opts: { rowName?: string; rows?: readonly string[]; cols?: readonly string[] } = {},
): dfd.DataFrame {
  const rows = [...(opts.rows ?? [])];
  const cols = [...(opts.cols ?? [])];
  const counts = new Map<string, number>();
  for (const x of items) {
    const r = rowKey(x);
    const c = colKey(x);
    if (!rows.includes(r)) rows.push(r);
    if (!cols.includes(c)) cols.push(c);
    counts.set(r + '\u0000' + c, (counts.get(r + '\u0000' + c) ?? 0) + 1);
  }
  const rowName = opts.rowName ?? 'key';
  const out: Row[] = rows.map((r) => {
    const row: Row = { [rowName]: r };
    let total = 0;
    for (const c of cols) {
      const n = counts.get(r + '\u0000' + c) ?? 0;
      row[c] = n;
      total += n;
    }
    row.total = total;
    return row;
  });
  return frame(out, [rowName, ...cols, 'total']);
}

/** Round to `digits` decimals (for display only). */
export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The frame as an HTML table (the index is not shown). Long cell text is cut to `maxChars`. */
export function frameHtml(df: dfd.DataFrame, maxChars = 160): string {
  const cols = df.columns as string[];
  const values = df.values as unknown as Cell[][];
  const cell = (v: Cell) => {
    let s = v === null || v === undefined ? '' : String(v);
    if (s.length > maxChars) s = s.slice(0, maxChars - 1) + '\u2026';
    const align = typeof v === 'number' ? ' style="text-align:right"' : ' style="text-align:left"';
    return `<td${align}>${escapeHtml(s)}</td>`;
  };
  const head = cols.map((c) => `<th>${escapeHtml(String(c))}</th>`).join('');
  const body = values.map((r) => `<tr>${(Array.isArray(r) ? r : [r]).map(cell).join('')}</tr>`).join('\n');
  return `<table class="dataframe"><thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

/** The frame as a GitHub-style markdown table (handy for README numbers). */
export function frameMarkdown(df: dfd.DataFrame): string {
  const cols = df.columns as string[];
  const values = df.values as unknown as Cell[][];
  const esc = (v: Cell) => String(v ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| ${cols.join(' | ')} |`,
    `| ${cols.map(() => '---').join(' | ')} |`,
    ...values.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** Show a frame: an HTML table in a notebook (with danfojs's text table as fallback), the text table elsewhere. */
export function showTable(df: dfd.DataFrame, caption?: string): void {
  const cap = caption ? `<p><b>${escapeHtml(caption)}</b></p>` : '';
  displayBundle({
    'text/html': cap + frameHtml(df),
    'text/plain': (caption ? caption + '\n' : '') + df.toString(),
  });
}

/** Show plain row objects as a table (shorthand for `showTable(frame(rows))`). */
export function showRows(rows: readonly Row[], caption?: string, columns?: readonly string[]): void {
  showTable(frame(rows, columns), caption);
}
