/**
 * Plotly figures as plain objects (`{ data, layout }`, exactly what plotly.js takes) for the course's charts,
 * and `showFigure` to draw one in a notebook.
 *
 * In a notebook a figure is sent as `application/vnd.plotly.v1+json` (JupyterLab with the plotly extension,
 * VS Code) together with `text/html` that draws it with plotly.js inlined once per kernel session (plain
 * JupyterLab / Notebook; no CDN, works offline). Not a charting library: a few builders, no styling system.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NODE_MODULES } from '../util/paths';
import { displayBundle, escapeHtml } from './display';

/** One plotly trace; only the keys we use are typed, anything else passes through. */
export interface Trace {
  type: 'bar' | 'histogram' | 'box' | 'heatmap' | 'scatter';
  name?: string;
  x?: unknown[];
  y?: unknown[];
  z?: number[][];
  [key: string]: unknown;
}

/** A plotly figure. */
export interface Figure {
  data: Trace[];
  layout: Record<string, unknown>;
}

const BASE_LAYOUT = { margin: { l: 60, r: 20, t: 50, b: 60 }, height: 380 };

function layout(title: string, extra: Record<string, unknown>): Record<string, unknown> {
  return { ...BASE_LAYOUT, title: { text: title }, ...extra };
}

/**
 * Bars for categories `x`, one trace per series; `barmode` 'group' (side by side) or 'stack'.
 * Typical use: behaviour or tool counts per split.
 */
export function barChart(opts: {
  title: string;
  x: readonly string[];
  series: readonly { name: string; y: readonly number[] }[];
  barmode?: 'group' | 'stack';
  xTitle?: string;
  yTitle?: string;
}): Figure {
  return {
    data: opts.series.map((s) => ({ type: 'bar', name: s.name, x: [...opts.x], y: [...s.y] })),
    layout: layout(opts.title, {
      barmode: opts.barmode ?? 'group',
      xaxis: { title: { text: opts.xTitle ?? '' } },
      yaxis: { title: { text: opts.yTitle ?? '' } },
    }),
  };
}

/**
 * Histograms of several samples on one axis (e.g. rewards per mode), overlaid with transparency.
 * `binSize` fixes the bin width so that discrete values (0, 0.2, 0.5, ...) land in their own bins.
 */
export function histogramChart(opts: {
  title: string;
  groups: Record<string, readonly number[]>;
  binSize?: number;
  range?: [number, number];
  xTitle?: string;
  barmode?: 'overlay' | 'group';
}): Figure {
  const [lo, hi] = opts.range ?? [0, 1];
  const size = opts.binSize ?? 0.05;
  return {
    data: Object.entries(opts.groups).map(([name, xs]) => ({
      type: 'histogram',
      name,
      x: [...xs],
      xbins: { start: lo - size / 2, end: hi + size / 2, size },
      opacity: opts.barmode === 'group' ? 1 : 0.6,
    })),
    layout: layout(opts.title, {
      barmode: opts.barmode ?? 'overlay',
      xaxis: { title: { text: opts.xTitle ?? '' }, range: [lo - size, hi + size] },
      yaxis: { title: { text: 'count' } },
    }),
  };
}

/** A heatmap with row labels `y`, column labels `x` and cell values `z[row][col]` written into the cells. */
export function heatmapChart(opts: {
  title: string;
  x: readonly string[];
  y: readonly string[];
  z: readonly (readonly number[])[];
  xTitle?: string;
  yTitle?: string;
}): Figure {
  return {
    data: [
      {
        type: 'heatmap',
        x: [...opts.x],
        y: [...opts.y],
        z: opts.z.map((r) => [...r]),
        text: opts.z.map((r) => r.map(String)),
        texttemplate: '%{text}',
        colorscale: 'Blues',
        showscale: false,
      },
    ],
    layout: layout(opts.title, {
      xaxis: { title: { text: opts.xTitle ?? '' }, type: 'category' },
      yaxis: { title: { text: opts.yTitle ?? '' }, type: 'category', autorange: 'reversed' },
      height: Math.max(300, 40 * opts.y.length + 120),
    }),
  };
}

let plotlySource: string | null = null;

/** The plotly.js-dist-min bundle (about 4.8 MB), read once from node_modules. */
export function plotlyJs(): string {
  if (plotlySource === null) {
    const file = path.join(NODE_MODULES, 'plotly.js-dist-min', 'plotly.min.js');
    if (!fs.existsSync(file)) throw new Error(`plotly.js not found at ${file}; run 'npm install'`);
    plotlySource = fs.readFileSync(file, 'utf8');
  }
  return plotlySource;
}

let divCounter = 0;

/**
 * HTML that draws `fig` into its own div. With `includePlotlyJs` the plotly.js bundle is inlined first (once per
 * page is enough); without it the page must already have `window.Plotly`.
 */
export function figureHtml(fig: Figure, opts: { includePlotlyJs?: boolean; id?: string } = {}): string {
  const id = opts.id ?? `tcg-plot-${Date.now().toString(36)}-${divCounter++}`;
  const lib = opts.includePlotlyJs ? `<script type="text/javascript">${plotlyJs()}</script>\n` : '';
  // `</` inside JSON strings must not close the <script> element.
  const json = JSON.stringify(fig).replace(/<\//g, '<\\/');
  return (
    `${lib}<div id="${escapeHtml(id)}" style="width:100%;min-height:${Number(fig.layout.height ?? 380)}px"></div>\n` +
    `<script type="text/javascript">(function(){var f=${json};` +
    `function draw(){window.Plotly.newPlot(${JSON.stringify(id)},f.data,f.layout,{responsive:true});}` +
    `if(window.Plotly){draw();}else{var t=setInterval(function(){if(window.Plotly){clearInterval(t);draw();}},100);}` +
    `})();</script>`
  );
}

/** A one-line text description of a figure (what non-graphical front ends show). */
export function figureText(fig: Figure): string {
  const title = (fig.layout.title as { text?: string } | undefined)?.text ?? 'figure';
  return `<plotly figure: ${title}; traces: ${fig.data.map((t) => t.name ?? t.type).join(', ')}>`;
}

let plotlyShown = false;

/** Draw a figure in a notebook (see the file comment); prints `figureText` elsewhere. */
export function showFigure(fig: Figure): void {
  const first = !plotlyShown;
  plotlyShown = true;
  displayBundle({
    'application/vnd.plotly.v1+json': fig,
    'text/html': figureHtml(fig, { includePlotlyJs: first }),
    'text/plain': figureText(fig),
  });
}
