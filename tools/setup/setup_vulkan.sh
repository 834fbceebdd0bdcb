#!/usr/bin/env bash
# Make sure a Vulkan device exists that SAPIEN (ManiSkill 3's renderer) can render with, on CPU if need be.
#
# Debian 12 ships Mesa 22.3, whose lavapipe (CPU Vulkan) SAPIEN 3 cannot render with; Mesa 25 from
# bookworm-backports can. This script changes nothing when a working device is already there, and only on
# Debian 12 adds the bookworm-backports suite -- with the mirror address read from the machine's own apt
# sources, so no registry host is written into the repository -- then installs the newer Vulkan driver.
# Idempotent. Elsewhere it prints what to do and exits 0.
#
# usage: tools/setup/setup_vulkan.sh [PYTHON]   (PYTHON: an interpreter with sapien; default .venv/bin/python)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${1:-$root/.venv/bin/python}
backports_file=/etc/apt/sources.list.d/sole_r1-bookworm-backports.sources

# Render one tiny frame with SAPIEN: creating a device is not enough (Mesa 22.3 gets that far, then fails).
sapien_renders() {
  "$python" - <<'EOF' >/dev/null 2>&1
import numpy as np
import sapien
scene = sapien.Scene()
camera = scene.add_camera("probe", 16, 16, 1.0, 0.01, 10.0)
scene.update_render()
camera.take_picture()
assert np.asarray(camera.get_picture("Color")).shape[:2] == (16, 16)
EOF
}

# Without sapien, trust vulkaninfo: any device whose Mesa driver is >= 23, or a non-Mesa (vendor GPU) driver.
vulkaninfo_ok() {
  command -v vulkaninfo >/dev/null 2>&1 || return 1
  local summary
  summary=$(vulkaninfo --summary 2>/dev/null) || return 1
  grep -q "deviceName" <<<"$summary" || return 1
  if grep -q "Mesa" <<<"$summary"; then
    grep -Eq "driverInfo *= *Mesa (2[3-9]|[3-9][0-9])\." <<<"$summary"
  fi
}

have_working_vulkan() {
  if [ -x "$python" ] && "$python" -c "import sapien" >/dev/null 2>&1; then
    sapien_renders
  else
    vulkaninfo_ok
  fi
}

if have_working_vulkan; then
  echo "vulkan: a working Vulkan device is present; nothing to do"
  exit 0
fi

codename=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" ) || codename=""
distro=$( . /etc/os-release 2>/dev/null && echo "${ID:-}" ) || distro=""
if [ "$distro" != "debian" ] || [ "$codename" != "bookworm" ]; then
  echo "vulkan: no working Vulkan device found, and this is not Debian 12 (found '${distro:-?} ${codename:-?}')."
  echo "  Install your distribution's Mesa Vulkan drivers, version 23 or newer (Ubuntu 24.04+/Debian 13 ship"
  echo "  one: 'apt-get install mesa-vulkan-drivers libvulkan1'), or a GPU vendor driver, then rerun this script."
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "vulkan: no working Vulkan device found; adding bookworm-backports needs root."
  echo "  Rerun as root: sudo $0 ${1:-}"
  exit 0
fi

# "URI KEYRING" of the main 'bookworm' suite, from deb822 sources first, then one-line sources.
mirror_uri() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # Print the URIs of each stanza whose Suites list the plain 'bookworm' suite.
    awk 'BEGIN{RS=""; FS="\n"} {
           uris=""; key="-"; ok=0
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); uris = $i }
             if ($i ~ /^Signed-By:[ \t]*\//) { sub(/^Signed-By:[ \t]*/, "", $i); key = $i }
             if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == "bookworm") ok = 1 }
             if ($i ~ /^Enabled:[ \t]*no/) ok = 0
           }
           if (ok && uris != "") { split(uris, u, /[ \t]+/); print u[1], key }
         }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                       if ($(i + 1) == "bookworm") print $i, "-" }' "$f"
  done
}

if grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "vulkan: bookworm-backports is already among the apt sources"
else
  read -r uri keyring < <(mirror_uri | head -n1) || true
  if [ "${keyring:--}" = "-" ]; then
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  fi
  if [ -z "${uri:-}" ]; then
    echo "vulkan: could not find the 'bookworm' suite's mirror in /etc/apt/sources.list{,.d/}."
    echo "  Add bookworm-backports for your mirror by hand, then run:"
    echo "  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1"
    exit 0
  fi
  echo "vulkan: adding bookworm-backports from $uri to $backports_file"
  cat >"$backports_file" <<EOF
# Added by sole_r1 tools/setup/setup_vulkan.sh: Mesa >= 23 (CPU Vulkan that SAPIEN/ManiSkill can render with).
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: $keyring
EOF
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1

if have_working_vulkan; then
  echo "vulkan: working Vulkan device installed (Mesa from bookworm-backports)"
else
  echo "vulkan: installed mesa-vulkan-drivers from bookworm-backports, but rendering still fails." >&2
  echo "  Check with: $python -c 'import sapien; sapien.render.RenderSystem()' (or vulkaninfo --summary)" >&2
  exit 1
fi
