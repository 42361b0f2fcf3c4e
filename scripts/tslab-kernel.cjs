// Starts this project's tslab kernel with our TypeScript strictness. Run by scripts/tslab-kernel.sh from the
// project root: `node scripts/tslab-kernel.cjs CONNECTION_FILE`. (.cjs: package.json says "type": "module".)
//
// Why not plain `tslab kernel`: tslab type-checks cells and every imported src/ module with its own fixed
// compiler options and ignores tsconfig.json. Those options leave `strict` off, and without strictNullChecks
// TypeScript does not narrow result unions such as `{ok: true; ...} | {ok: false; reason}` on `if (!r.ok)`, so
// src/ code that passes `npm run typecheck` fails to compile in a notebook. We add `strict: true` (as in our
// tsconfig.json) to the options tslab passes to TypeScript, then start tslab as `tslab kernel` would.
//
// We also stop TypeScript from watching files on disk. tslab's compiler host can hold only one pending rebuild
// timer; when a src/ file changes while the kernel runs, the watcher schedules a second one and the next cell
// fails with "Unexpected pending rebuildTimer" (seen here by touching src/report/tables.ts mid-run). Without
// watchers the kernel sees src/ as it was when it started: restart the kernel after editing src/.
// TOOLCALL_GRPO_TSLAB_WATCH=1 keeps tslab's watching.
'use strict';
const path = require('node:path');

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node scripts/tslab-kernel.cjs CONNECTION_FILE');
  process.exit(2);
}
const tslabDir = path.dirname(require.resolve('tslab/package.json'));
// TypeScript's CommonJS exports are getter-only, so we swap the cached module for a proxy that differs in one
// function; tslab's converter requires it afterwards and gets the proxy.
const tsFile = require.resolve('@tslab/typescript-for-tslab', { paths: [tslabDir] });
const ts = require(tsFile);
const createWatchCompilerHost = ts.createWatchCompilerHost;
function strictWatchCompilerHost(rootFiles, options, ...rest) {
  return createWatchCompilerHost.call(ts, rootFiles, { ...options, strict: true }, ...rest);
}
require.cache[tsFile].exports = new Proxy(ts, {
  get: (target, key) => (key === 'createWatchCompilerHost' ? strictWatchCompilerHost : target[key]),
});
if (process.env.TOOLCALL_GRPO_TSLAB_WATCH !== '1') {
  const unwatched = () => ({ close() {} });
  ts.sys.watchFile = unwatched;
  ts.sys.watchDirectory = unwatched;
}

const { startKernel } = require(path.join(tslabDir, 'dist', 'main.js'));
const { getVersion } = require(path.join(tslabDir, 'dist', 'util.js'));
startKernel({ configPath, enableFindLocal: false, jsKernel: false, globalVersion: getVersion() });
