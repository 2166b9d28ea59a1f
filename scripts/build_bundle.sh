#!/usr/bin/env bash
# Build the one-folder PyInstaller bundle dist/deck-tray/ (packaging/deck-tray.spec) and check
# that it starts: `--version`, `sessions --json` in an empty HOME, `doctor`, `autostart enable`,
# and the tray app itself for a few seconds (offscreen). Then, when appimagetool is on PATH, wrap
# the bundle into dist/deck-tray-<version>-<arch>.AppImage.
#
#   ./scripts/build_bundle.sh
#
# PYTHON picks the interpreter (default python3); the project's dependencies must be importable
# there (otherwise it installs the project with its [bundle] extra, like scripts/test.sh does).
# DECK_TRAY_SKIP_INSTALL=1 installs nothing. Exit codes: 0 built and checked, 3 skipped because
# PyInstaller cannot be installed, anything else: the build or a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
# PyInstaller's helper processes must import this tree's deck_tray, not another installed copy.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

say() { echo "build_bundle: $*"; }

if ! $PY -m PyInstaller --version >/dev/null 2>&1 && [[ "${DECK_TRAY_SKIP_INSTALL:-0}" != 1 ]]; then
  say "installing PyInstaller (the [bundle] extra)"
  $PY -m pip install -q --disable-pip-version-check 'pyinstaller>=6.10' 2>&1 | grep -v "Running pip as the 'root' user" || true
fi
if ! $PY -m PyInstaller --version >/dev/null 2>&1; then
  say "SKIPPED: PyInstaller is not installed and cannot be installed here (pip install 'pyinstaller>=6.10'); no bundle built"
  exit 3
fi
if ! $PY -c "import PySide6.QtWidgets, PySide6.QtSvg, qasync, httpx, httpx_sse, orjson, watchdog, keyring, psutil, platformdirs, tomlkit" 2>/dev/null; then
  [[ "${DECK_TRAY_SKIP_INSTALL:-0}" == 1 ]] && { say "the project's dependencies are not installed for $PY"; exit 1; }
  say "installing the project's dependencies"
  $PY -m pip install -q --disable-pip-version-check -e '.[bundle]' 2>&1 | grep -v "Running pip as the 'root' user" || true
fi

VERSION=$($PY -c "import deck_tray; print(deck_tray.__version__)")
APP_ID=$($PY -c "import deck_tray; print(deck_tray.APP_ID)")
say "building deck-tray $VERSION with PyInstaller $($PY -m PyInstaller --version)"
start=$SECONDS
rm -rf dist/deck-tray
$PY -m PyInstaller --noconfirm --clean --log-level ERROR --distpath dist --workpath build/pyinstaller \
  packaging/deck-tray.spec
BUILD_S=$((SECONDS - start))
BIN=dist/deck-tray/deck-tray
say "built dist/deck-tray/ in ${BUILD_S} s: $(du -sh dist/deck-tray | cut -f1) ($(find dist/deck-tray -type f | wc -l) files)"

# -- smoke tests: the bundle must run without this tree or its Python ------------------------------
scratch=$(mktemp -d)
app_pid=""
cleanup() { [[ -n "$app_pid" ]] && kill "$app_pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
mkdir -p "$scratch/home"
clean_env=(env -i "HOME=$scratch/home" "PATH=/usr/bin:/bin" "XDG_RUNTIME_DIR=$scratch" "LANG=C.UTF-8")
from_root() { (cd "$scratch" && "${clean_env[@]}" "$@"); }

out=$(from_root "$ROOT/$BIN" --version)
[[ "$out" == "deck-tray $VERSION" ]] || { say "FAIL: --version printed '$out'"; exit 1; }
say "ok: --version → $out"

out=$(from_root "$ROOT/$BIN" sessions --json)
echo "$out" | $PY -c "import json, sys; v = json.load(sys.stdin); assert isinstance(v, list), v" \
  || { say "FAIL: sessions --json printed: $out"; exit 1; }
say "ok: sessions --json in an empty HOME → a JSON array of $(echo "$out" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))') sessions"

rc=0; from_root "$ROOT/$BIN" doctor > "$scratch/doctor.txt" 2>&1 || rc=$?
if [[ $rc -gt 1 ]] || ! grep -q "^OK    PySide6" "$scratch/doctor.txt"; then
  say "FAIL: doctor exited $rc:"; cat "$scratch/doctor.txt"; exit 1
fi
say "ok: doctor runs (exit $rc; no session bus in this clean environment)"

from_root env "XDG_CONFIG_HOME=$scratch/config" "$ROOT/$BIN" autostart enable >/dev/null
grep -qx "Exec=$ROOT/$BIN" "$scratch/config/autostart/$APP_ID.desktop" \
  || { say "FAIL: autostart entry:"; cat "$scratch/config/autostart/$APP_ID.desktop"; exit 1; }
say "ok: autostart enable writes Exec=$ROOT/$BIN"

# The tray app: it must come up (Qt, plugins, qasync, icons) and stay up.
(cd "$scratch" && exec "${clean_env[@]}" QT_QPA_PLATFORM=offscreen "$ROOT/$BIN" > "$scratch/app.txt" 2>&1) &
app_pid=$!
sleep 4
if ! kill -0 "$app_pid" 2>/dev/null; then
  say "FAIL: the app exited within 4 s:"; cat "$scratch/app.txt"; exit 1
fi
kill "$app_pid"; wait "$app_pid" 2>/dev/null || true; app_pid=""
if grep -q "Traceback" "$scratch/app.txt" "$scratch"/home/.local/state/deck-tray/log/*.log 2>/dev/null; then
  say "FAIL: the app logged an error:"; cat "$scratch/app.txt"; exit 1
fi
say "ok: the app starts (offscreen) and runs for 4 s"

# -- AppImage --------------------------------------------------------------------------------------
if ! command -v appimagetool >/dev/null 2>&1; then
  say "AppImage SKIPPED: appimagetool is not on PATH. It is not in the registries this project can use"
  say "  (Debian has no appimagetool package; the PyPI tools that build AppImages, 'appimage' and"
  say "  'pyproject-appimage', download appimagetool from GitHub at run time). Put appimagetool on PATH"
  say "  to get dist/deck-tray-$VERSION-$(uname -m).AppImage; the one-folder bundle above is complete."
  exit 0
fi
appdir=build/AppDir
rm -rf "$appdir"
mkdir -p "$appdir/usr/lib"
cp -a dist/deck-tray "$appdir/usr/lib/deck-tray"
# The desktop entry, metainfo and hicolor icons, from resources/ (the one copy).
$PY scripts/install_data.py --prefix "$appdir/usr" >/dev/null
cp "resources/$APP_ID.desktop" "$appdir/"
cp "resources/$APP_ID.svg" "$appdir/$APP_ID.svg"
ln -s "$APP_ID.svg" "$appdir/.DirIcon"
cat > "$appdir/AppRun" <<'EOF'
#!/bin/sh
HERE=$(dirname "$(readlink -f "$0")")
exec "$HERE/usr/lib/deck-tray/deck-tray" "$@"
EOF
chmod +x "$appdir/AppRun"
out=$("$appdir/AppRun" --version)
[[ "$out" == "deck-tray $VERSION" ]] || { say "FAIL: AppDir/AppRun --version printed '$out'"; exit 1; }
image="dist/deck-tray-$VERSION-$(uname -m).AppImage"
ARCH=$(uname -m) appimagetool --no-appstream "$appdir" "$image"
out=$("$ROOT/$image" --appimage-extract-and-run --version 2>/dev/null || "$ROOT/$image" --version)
[[ "$out" == "deck-tray $VERSION" ]] || { say "FAIL: the AppImage printed '$out'"; exit 1; }
say "built $image: $(du -sh "$image" | cut -f1); ok: --version"
