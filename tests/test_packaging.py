"""``packaging/``: the desktop entry, AppStream metainfo and icon under the one app id, the
copies the wheel ships, the wheel itself, and the PyInstaller spec's Qt module list."""

from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from deck_tray import APP_ID, __version__

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
DESKTOP = PACKAGING / f"{APP_ID}.desktop"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
ICON = PACKAGING / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"


def desktop_keys(path: Path) -> dict[str, str]:
    p = configparser.ConfigParser(interpolation=None)
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read_string(path.read_text(encoding="utf-8"))
    assert p.sections() == ["Desktop Entry"]
    return dict(p["Desktop Entry"])


def test_app_id_is_reverse_dns() -> None:
    parts = APP_ID.split(".")
    assert len(parts) >= 3 and all(p.replace("_", "").isalnum() for p in parts)


def test_desktop_entry() -> None:
    k = desktop_keys(DESKTOP)
    assert k["Type"] == "Application"
    assert k["Exec"] == "deck-tray" and k["TryExec"] == "deck-tray"
    assert k["Icon"] == APP_ID
    assert k["Categories"].endswith(";") and "Development" in k["Categories"].split(";")
    assert k["StartupWMClass"] == "deck-tray"  # Qt's WM_CLASS class = applicationName()
    assert k["StartupNotify"] == "false"  # it may start into the tray without a window
    assert k["Terminal"] == "false"
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(DESKTOP)], check=True, capture_output=True, text=True)


def test_metainfo() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == f"{APP_ID}.desktop"
    assert root.findtext("provides/binary") == "deck-tray"
    assert root.findtext("metadata_license") == "CC0-1.0" and root.findtext("project_license") == "MIT"
    releases = root.findall("releases/release")
    assert releases and releases[0].get("version") == __version__
    if shutil.which("appstreamcli"):
        r = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_icon_is_the_app_icon() -> None:
    assert ICON.read_bytes() == (ROOT / "deck_tray" / "resources" / "deck-tray.svg").read_bytes()
    assert ET.parse(ICON).getroot().tag == "{http://www.w3.org/2000/svg}svg"


def test_the_package_ships_the_same_desktop_entry() -> None:
    assert (ROOT / "deck_tray" / "resources" / f"{APP_ID}.desktop").read_bytes() == DESKTOP.read_bytes()


def test_wheel_contents(tmp_path: Path) -> None:
    """A wheel built from this tree (as pip and pipx build it) carries what `autostart enable` reads."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "deck_tray", src / "deck_tray", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                        "-w", str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (tmp_path / "wheel").glob("deck_tray-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for res in (f"{APP_ID}.desktop", "deck-tray.svg", "state-waiting.svg"):
        assert f"deck_tray/resources/{res}" in names
    assert "deck_tray/commands/autostart.py" in names and "deck_tray/commands/doctor/checks.py" in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "deck-tray = deck_tray.cli:main" in entry_points


def _qt_modules_imported() -> set[str]:
    out: set[str] = set()
    for path in (ROOT / "deck_tray").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            out.update(n.split(".")[1] for n in names if n.startswith("PySide6.Qt"))
    return out


def test_the_bundle_keeps_every_qt_module_the_code_imports() -> None:
    spec = (PACKAGING / "deck-tray.spec").read_text(encoding="utf-8")
    line = next(ln for ln in spec.splitlines() if ln.startswith("QT_MODULES = "))
    kept = ast.literal_eval(line.split("=", 1)[1].strip())
    missing = _qt_modules_imported() - kept
    assert not missing, f"deck_tray imports {sorted(missing)}; add them to QT_MODULES in packaging/deck-tray.spec"
