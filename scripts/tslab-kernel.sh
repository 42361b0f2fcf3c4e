#!/usr/bin/env bash
# Jupyter kernel launcher for the notebooks: starts the project's own tslab (node_modules/tslab, via
# scripts/tslab-kernel.cjs) FROM THE PROJECT ROOT, because tslab makes its working directory the TypeScript
# root and a notebook in notebooks/ could not otherwise import src/.
# Not a tslab install: scripts/setup-jupyter.sh copies this file into the "tslab" kernelspec.
#
# Usage (by Jupyter, see kernel.json): tslab-kernel.sh CONNECTION_FILE
# The project root is, in order: $TOOLCALL_GRPO_ROOT; the nearest folder above Jupyter's working directory (the
# notebook's folder) holding our package.json and node_modules/tslab; the root recorded at install time.
set -euo pipefail
conn="${1:?usage: tslab-kernel.sh CONNECTION_FILE}"

is_root() { [ -f "$1/node_modules/tslab/bin/tslab" ] && [ -f "$1/scripts/tslab-kernel.cjs" ] && grep -q '"name": *"toolcall-grpo"' "$1/package.json" 2>/dev/null; }

root="${TOOLCALL_GRPO_ROOT:-}"
if [ -z "$root" ]; then
  dir="$PWD"
  while :; do
    if is_root "$dir"; then root="$dir"; break; fi
    [ "$dir" = / ] && break
    dir="$(dirname "$dir")"
  done
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "$root" ] && [ -f "$here/project-root" ]; then root="$(cat "$here/project-root")"; fi
if [ -z "$root" ] || ! is_root "$root"; then
  echo "tslab-kernel: cannot find the toolcall-grpo project (with node_modules/tslab) above $PWD;" \
    "run 'npm install' there or set TOOLCALL_GRPO_ROOT" >&2
  exit 1
fi
cd "$root"
# tslab-kernel.cjs = `tslab kernel --config-path CONN` with our tsconfig's `strict: true` (see that file).
exec node "$root/scripts/tslab-kernel.cjs" "$conn"
