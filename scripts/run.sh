#!/usr/bin/env bash
# Install deck-tray for this user and start it (Debian/Ubuntu; other distros: install
# tmux and Qt's xcb runtime libraries yourself, then `pip install --user .`).
#
#   ./scripts/run.sh [deck-tray args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# Qt 6's X11 platform plugin loads these at start (libxcb-cursor0 and the icccm/keysyms
# helpers are missing on many minimal desktops).
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
             libxcb-randr0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libfontconfig1; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
  done
fi
if ((${#need[@]})) && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  echo "deck-tray: installing ${need[*]} with apt-get"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [[ -n "${VIRTUAL_ENV:-}" || $(id -u) -eq 0 ]]; then
  $PY -m pip install -q --disable-pip-version-check . 2>&1 | grep -v "Running pip as the 'root' user" || true
else
  $PY -m pip install -q --disable-pip-version-check --user . 2>&1 || \
    $PY -m pip install -q --disable-pip-version-check --user --break-system-packages .
fi
exec $PY -m deck_tray "$@"
