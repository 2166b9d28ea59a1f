#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine, then run it:
# system packages (apt-get), the pinned agents (npm, into ./.agents), the project with its
# test extras (pip), then the linters and the whole pytest suite.
#
#   ./scripts/test.sh [pytest args...]
#   DECK_TRAY_AGENTS=latest ./scripts/test.sh [pytest args...]
#
# DECK_TRAY_SKIP_INSTALL=1 skips the install steps (for a machine already set up).
# DECK_TRAY_AGENTS=latest runs the end-to-end tests against the newest verified agent releases
# (./.agents-newest) instead of the pinned ones (./.agents; the default, DECK_TRAY_AGENTS=pinned).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DECK_TRAY_AGENTS=${DECK_TRAY_AGENTS:-pinned}
case "$DECK_TRAY_AGENTS" in
  pinned|latest) ;;
  *) echo "DECK_TRAY_AGENTS=$DECK_TRAY_AGENTS: expected pinned or latest" >&2; exit 2 ;;
esac
# The verified agent versions are kept once, in deck_tray/core/agent_versions.py (deck-tray doctor
# reads them too): one line per agent, "<binary> <npm package> <pinned> <newest>". The pinned
# releases go to ./.agents; the newest ones (the newest on the day they were checked) to
# ./.agents-newest — the hook-decision and new-session tests run both builds in every run
# (tests/e2e/harness.py agent_builds), DECK_TRAY_AGENTS=latest runs the whole suite on them.
AGENT_TABLE=$(PYTHONPATH=. $PY -m deck_tray.core.agent_versions)

if [[ "${DECK_TRAY_SKIP_INSTALL:-0}" != 1 ]]; then
  need=()
  # kitty and screen: the terminal adapters' tests run them for real (Konsole and WezTerm are faked:
  # konsole costs ~25 s and 254 MB, WezTerm is not packaged); trayer (a real XEmbed tray) and
  # xdotool: the tear-down and soak tests (#20); evilwm (126 kB): an EWMH window manager for
  # "Show terminal" (tests/services/test_window_raise.py); desktop-file-validate and appstreamcli:
  # the one copy of the desktop entry and metainfo in resources/ is checked (tests/test_packaging.py).
  for pair in tmux:tmux Xvfb:xvfb import:imagemagick git:git dunst:dunst dunstctl:dunst dbus-daemon:dbus \
              trayer:trayer xdotool:xdotool kitty:kitty screen:screen evilwm:evilwm \
              desktop-file-validate:desktop-file-utils appstreamcli:appstream; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
  done
  # openssh-server: the remote-host tests (#18, tests/e2e/ssh_host.py) run a private sshd of their own
  # on 127.0.0.1 as a second local user (the package's own service is neither used nor needed).
  [[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
  # Libraries Qt's offscreen platform (used by the GUI tests) loads, and those of its xcb platform
  # (the app under Xvfb in the doctor and screenshot tests), as scripts/run.sh installs them.
  if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3 \
               libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
               libxcb-randr0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0; do
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
    done
  fi
  # The Wayland desktops of issue #14, headless: GNOME's mutter and KDE's KWin, each with Xwayland
  # (tests/e2e/test_wayland.py; without recommends: ~110 packages, ~20 s).
  wayland=()
  for pair in mutter:mutter kwin_wayland:kwin-wayland Xwayland:xwayland; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || wayland+=("${pair#*:}")
  done
  if ((${#need[@]} + ${#wayland[@]})); then
    SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    if ((${#need[@]})); then
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if ((${#wayland[@]})); then
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${wayland[@]}" >/dev/null
    fi
  fi
  # have PREFIX BINARY VERSION: PREFIX/node_modules/.bin/BINARY is installed and prints VERSION.
  have() { [[ -x $1/node_modules/.bin/$2 ]] && [[ "$("$1/node_modules/.bin/$2" --version 2>/dev/null)" == *"$3"* ]]; }
  pinned=(); newest=(); pinned_ok=1; newest_ok=1
  while read -r bin pkg v_pinned v_newest; do
    pinned+=("$pkg@$v_pinned"); have .agents "$bin" "$v_pinned" || pinned_ok=0
    if [[ "$v_newest" != "$v_pinned" ]]; then
      newest+=("$pkg@$v_newest"); have .agents-newest "$bin" "$v_newest" || newest_ok=0
    fi
  done <<<"$AGENT_TABLE"
  if ((!pinned_ok)); then
    mkdir -p .agents
    npm install --prefix .agents --no-audit --no-fund --loglevel=error "${pinned[@]}" >/dev/null
  fi
  if ((!newest_ok)); then
    mkdir -p .agents-newest
    npm install --prefix .agents-newest --no-audit --no-fund --loglevel=error "${newest[@]}" >/dev/null
  fi
  $PY -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "Running pip as the 'root' user" || true
fi

export DECK_TRAY_AGENTS_DIR="$PWD/.agents"
export DECK_TRAY_NEWEST_AGENTS_DIR="$PWD/.agents-newest"
export DECK_TRAY_AGENTS
export QT_QPA_PLATFORM=offscreen
echo "== agents: $DECK_TRAY_AGENTS ($(while read -r bin pkg v_pinned v_newest; do
  [[ $DECK_TRAY_AGENTS == latest ]] && printf '%s %s; ' "$bin" "$v_newest" || printf '%s %s; ' "$bin" "$v_pinned"
done <<<"$AGENT_TABLE" | sed 's/; $//'))"

echo "== ruff";          $PY -m ruff check deck_tray tests bench scripts
echo "== import-linter"; lint-imports
echo "== mypy --strict (deck_tray)"; $PY -m mypy
# The one-folder PyInstaller bundle, built from scratch (nothing cached) and started: --version,
# sessions --json in an empty HOME, doctor, autostart, the app offscreen (about 1 min on 2 cores).
echo "== bundle (PyInstaller)"
if [[ "${DECK_TRAY_SKIP_BUNDLE:-0}" == 1 || $# -gt 0 ]]; then
  echo "bundle skipped ($([[ $# -gt 0 ]] && echo "pytest arguments given" || echo "DECK_TRAY_SKIP_BUNDLE=1")); run ./scripts/build_bundle.sh"
else
  bundle_rc=0; ./scripts/build_bundle.sh || bundle_rc=$?
  if [[ $bundle_rc -eq 3 ]]; then
    echo "bundle skipped: PyInstaller cannot be installed on this machine"
  elif [[ $bundle_rc -ne 0 ]]; then
    echo "bundle: FAILED (exit $bundle_rc)"; exit "$bundle_rc"
  fi
fi
# --tb=native: on CPython 3.11.7 (this machine's python3) pytest's own traceback formatting can
# crash with "SystemError: AST constructor recursion depth mismatch" (cpython#106905, fixed in
# 3.11.8) and end the run with INTERNALERROR, hiding which test failed (CI, 2026-12-06).
# --durations=30: the slowest tests, to keep CI within its budget (20 min).
# Without arguments, three runs:
# 1. the tests outside tests/e2e (unit, GUI, services: each its own private tmux socket, temporary
#    folders and Qt application) on one pytest-xdist worker per core, at most 4 (5:04 on one, 3:08 on
#    two here), each file on one worker (--dist loadfile: a file's module-scoped daemons, such as
#    test_notifier's dunst, serve all its tests, as in a serial run);
# 2. the end-to-end tests on as many workers, each file on one worker and the files that share the
#    dt-remote account together (--dist loadgroup; tests/e2e/conftest.py names the groups): they
#    mostly wait on agents, fake models and timers;
# 3. the end-to-end tests marked "alone" one at a time, with the machine to themselves: their goals
#    are times (tear-down within 5 s, resync within 5 s, pings within 1 s).
# Arguments: one pytest run, as given.
if [[ $# -gt 0 ]]; then
  echo "== pytest";        $PY -m pytest --tb=native --durations=30 "$@"
else
  workers=$(nproc 2>/dev/null || echo 2); ((workers > 4)) && workers=4; ((workers < 1)) && workers=1
  # Every run runs (a failure in one does not hide the others'); the script fails if any did.
  rc=0
  echo "== pytest (outside tests/e2e, $workers workers)"
  $PY -m pytest --tb=native --durations=30 -n "$workers" --dist loadfile --ignore=tests/e2e tests || rc=1
  echo "== pytest (tests/e2e, $workers workers)"
  $PY -m pytest --tb=native --durations=30 -n "$workers" --dist loadgroup -m "not alone" tests/e2e || rc=1
  echo "== pytest (tests/e2e marked alone, one at a time)"
  $PY -m pytest --tb=native --durations=10 -m alone tests/e2e || rc=1
  exit "$rc"
fi
