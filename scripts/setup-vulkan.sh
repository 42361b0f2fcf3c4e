#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa's lavapipe, 'llvmpipe' adapter) so the WebGPU backend (Dawn, through
# the `webgpu` npm package) has an adapter on a machine without a GPU. Used by CI for the webgpu tests.
#
# Dawn rejects Debian 12's Mesa 22 lavapipe; bookworm-backports' Mesa 25 works. The backports source is derived
# from this machine's own apt source (same mirror, same keyring), so no address is hard-coded here.
# Idempotent; needs root (CI and the dev machines run as root; otherwise it re-runs itself with sudo). Not needed
# on a machine with a real GPU driver.
set -euo pipefail
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then exec sudo -E bash "$0" "$@"; fi

if ldconfig -p | grep -q libvulkan.so.1 && ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 \
   && dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q bpo12; then
  echo "setup-vulkan: Mesa lavapipe from backports already installed"
  exit 0
fi

. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"
bp="/etc/apt/sources.list.d/${codename}-backports.sources"
if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  src=""
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -q "Suites:.*\b${codename}\b" "$f" && { src="$f"; break; }
  done
  if [ -n "$src" ]; then
    # deb822 format: take the first stanza that lists the main suite, swap its suites for backports.
    awk -v cb="${codename}-backports" '
      BEGIN { RS=""; done=0 }
      !done && /Suites:/ {
        n = split($0, lines, "\n"); out = ""
        for (i = 1; i <= n; i++) {
          if (lines[i] ~ /^#/) continue
          if (lines[i] ~ /^Suites:/) lines[i] = "Suites: " cb
          out = out lines[i] "\n"
        }
        printf "%s", out; done = 1
      }' "$src" > "$bp"
  elif [ -f /etc/apt/sources.list ]; then
    # one-line format: reuse the first 'deb <mirror> <codename> ...' line's mirror.
    mirror=$(awk -v c="$codename" '$1=="deb" && $3==c {print $2; exit}' /etc/apt/sources.list)
    echo "deb ${mirror} ${codename}-backports main" > /etc/apt/sources.list.d/${codename}-backports.list
  else
    echo "setup-vulkan: cannot find this machine's apt source to derive ${codename}-backports from" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -t "${codename}-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
echo "setup-vulkan: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
