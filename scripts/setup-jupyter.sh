#!/usr/bin/env bash
# Installs what the notebooks need to run in Jupyter with the TypeScript kernel, and nothing else:
#   1. Debian's Jupyter packages (nbconvert + nbclient for headless runs, IPython/ipykernel), if missing;
#   2. a kernelspec named "tslab" whose launcher (scripts/tslab-kernel.sh) starts this project's
#      node_modules/tslab from the project root, so notebooks can import src/.
# Not a global tslab install (`npx tslab install` wants a global binary). Run after `npm install`.
# Idempotent; works as root on a fresh Debian 12, or as a user with sudo. Kernel goes to the user's kernelspecs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKGS=(jupyter-nbconvert python3-nbclient jupyter-client jupyter-core python3-ipython python3-ipykernel)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-jupyter: installing ${missing[*]} (apt)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup-jupyter: need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Try with the current package lists first; refresh them only if that fails (fresh images ship none).
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup-jupyter: Debian Jupyter packages already installed"
fi

if [ ! -f "$ROOT/node_modules/tslab/bin/tslab" ]; then
  echo "setup-jupyter: $ROOT/node_modules/tslab is missing; run 'npm install' (or 'npm ci') first" >&2
  exit 1
fi

spec="$(mktemp -d)"
trap 'rm -rf "$spec"' EXIT
cp "$ROOT/scripts/tslab-kernel.sh" "$spec/launch.sh"
chmod 755 "$spec" "$spec/launch.sh"
printf '%s\n' "$ROOT" >"$spec/project-root"
cat >"$spec/kernel.json" <<JSON
{
  "argv": ["bash", "{resource_dir}/launch.sh", "{connection_file}"],
  "display_name": "TypeScript (tslab, toolcall-grpo)",
  "language": "typescript"
}
JSON
jupyter kernelspec install --user --replace --name tslab "$spec" >/dev/null
jupyter kernelspec list | grep -E '^ +tslab ' | sed 's/^ */setup-jupyter: kernel /' 
