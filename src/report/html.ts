/**
 * A standalone, offline HTML report: headings, paragraphs, tables (danfojs frames) and plotly figures in one
 * file with plotly.js-dist-min inlined once (no CDN; opens from disk without a network).
 *
 * Not a templating system: sections are rendered in order; text is escaped (no raw HTML from callers).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as dfd from 'danfojs-node';
import { escapeHtml } from './display';
import { type Figure, figureHtml, plotlyJs } from './plots';
import { frameHtml } from './tables';

/** One block of a report, in order. */
export type Section =
  | { heading: string; level?: 2 | 3 }
  | { text: string }
  | { table: dfd.DataFrame; caption?: string }
  | { figure: Figure }
  | { code: string };

const STYLE = `body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table.dataframe{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}
table.dataframe th,table.dataframe td{border:1px solid #ccc;padding:3px 8px}
table.dataframe th{background:#f3f3f3}pre{background:#f6f6f6;padding:.8em;overflow:auto}`;

/** Render a report to an HTML string. Figures are drawn by plotly.js inlined once in the <head>. */
export function renderReport(title: string, sections: readonly Section[]): string {
  const hasFigure = sections.some((s) => 'figure' in s);
  const body = sections
    .map((s, i) => {
      if ('heading' in s) return `<h${s.level ?? 2}>${escapeHtml(s.heading)}</h${s.level ?? 2}>`;
      if ('text' in s) return `<p>${escapeHtml(s.text)}</p>`;
      if ('table' in s) return (s.caption ? `<p><b>${escapeHtml(s.caption)}</b></p>` : '') + frameHtml(s.table, 400);
      if ('figure' in s) return figureHtml(s.figure, { id: `fig-${i}` });
      return `<pre>${escapeHtml(s.code)}</pre>`;
    })
    .join('\n');
  const lib = hasFigure ? `<script type="text/javascript">${plotlyJs()}</script>` : '';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style>${lib}</head>
<body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}

/** Write a report to `file` (parent folders created). Returns the absolute path. */
export function writeReport(file: string, title: string, sections: readonly Section[]): string {
  const abs = path.resolve(file);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, renderReport(title, sections));
  return abs;
}
