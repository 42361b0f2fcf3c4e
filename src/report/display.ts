/**
 * Rich output for notebooks: sends one Jupyter `display_data` message carrying several mime types (e.g. a plotly
 * figure as `application/vnd.plotly.v1+json` AND as self-rendering `text/html`), so each front end picks what it
 * can draw. Outside a tslab kernel (tsx, tests) it prints the `text/plain` entry instead.
 *
 * Not a tslab replacement: tslab's public `display.raw` sends one mime type per message, so we reach its
 * kernel-side `lastWriteDisplayData` hook (the same one `display.raw` calls) and fall back to `display.html`.
 */

/** A Jupyter mime bundle: mime type -> payload (string, or JSON object for `application/*+json`). */
export type MimeBundle = Record<string, unknown>;

interface TslabJupyter {
  lastWriteDisplayData?: ((data: { data: MimeBundle; metadata: object; transient: object }, update: boolean) => void) | null;
}

function tslabJupyter(): TslabJupyter | null {
  // Inside tslab, src/ modules are compiled to CommonJS and `require` exists; under tsx (ESM) it does not.
  if (typeof require !== 'function') return null;
  try {
    return require('tslab/dist/jupyter') as TslabJupyter;
  } catch {
    return null;
  }
}

/** True when running inside a tslab kernel cell. */
export function inNotebook(): boolean {
  return typeof tslabJupyter()?.lastWriteDisplayData === 'function';
}

/** Display a mime bundle in the notebook, or print its `text/plain` entry elsewhere. */
export function displayBundle(bundle: MimeBundle): void {
  const jupyter = tslabJupyter();
  if (jupyter && typeof jupyter.lastWriteDisplayData === 'function') {
    jupyter.lastWriteDisplayData({ data: bundle, metadata: {}, transient: {} }, false);
    return;
  }
  const text = bundle['text/plain'];
  console.log(typeof text === 'string' ? text : JSON.stringify(bundle).slice(0, 200));
}

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
