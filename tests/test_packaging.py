"""Packaging: the top-level ``resources/`` folder is the one copy of the icons, the desktop entry
and the AppStream metainfo (all named by the one app id); the wheel ships every one of them as
``deck_tray/resources/`` and an installed (non-editable) wheel finds them at run time;
``scripts/install_data.py`` installs the menu entry and hicolor icons from them; and the
PyInstaller spec keeps every Qt module the code imports."""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import site
import subprocess
import sys
import textwrap
import venv
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from deck_tray import APP_ID, __version__

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
DESKTOP = RESOURCES / f"{APP_ID}.desktop"
METAINFO = RESOURCES / f"{APP_ID}.metainfo.xml"
ICON = RESOURCES / f"{APP_ID}.svg"
# Every icon the code renders by name (deck_tray/ui/icons.py, the notifier's state-waiting.svg).
ICON_NAMES = (APP_ID, "state-waiting", "state-busy", "state-idle", "state-idle-dark")


def resource_files() -> list[Path]:
    """The files in resources/ that ship (no caches)."""
    return sorted(p for p in RESOURCES.iterdir() if p.is_file() and not p.name.endswith(".pyc"))


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
    assert k["Icon"] == APP_ID and ICON.is_file()
    assert k["Categories"].endswith(";") and "Development" in k["Categories"].split(";")
    assert k["StartupWMClass"] == "deck-tray"  # Qt's WM_CLASS class = applicationName()
    assert k["StartupNotify"] == "false"  # it may start into the tray without a window
    assert k["Terminal"] == "false"


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-validate is not installed")
def test_desktop_file_validate() -> None:
    r = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def test_metainfo() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == DESKTOP.name
    assert root.findtext("provides/binary") == "deck-tray"
    assert root.findtext("metadata_license") == "CC0-1.0" and root.findtext("project_license") == "MIT"
    releases = root.findall("releases/release")
    assert releases and releases[0].get("version") == __version__


@pytest.mark.skipif(not shutil.which("appstreamcli"), reason="appstreamcli is not installed")
def test_appstreamcli_validate() -> None:
    r = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_icons_are_svg() -> None:
    for name in ICON_NAMES:
        assert ET.parse(RESOURCES / f"{name}.svg").getroot().tag == "{http://www.w3.org/2000/svg}svg", name


def test_resources_live_once() -> None:
    """No second copy of a resource anywhere in the tree (the wheel and the bundle map resources/
    into deck_tray/resources at build time; the source tree has no such folder)."""
    assert not (ROOT / "deck_tray" / "resources").exists()
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    shipped = {p.name: p.read_bytes() for p in resource_files() if p.name != "__init__.py"}
    sizes = {len(b) for b in shipped.values()}

    def is_copy(rel: str) -> bool:
        path = ROOT / rel
        if rel.startswith("resources/") or not path.is_file():
            return False
        return path.name in shipped or (path.stat().st_size in sizes and path.read_bytes() in shipped.values())

    copies = [rel for rel in listed if rel and is_copy(rel)]
    assert not copies, f"copies of resources/ files: {copies}; keep the one in resources/"


# -- the wheel, built once, and installed (not editable) into a scratch venv -----------------------

@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of this tree (as pip and pipx build it)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("deck_tray", "resources"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
                        "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (tmp / "dist").glob("deck_tray-*.whl")
    return whl


def test_wheel_contents(wheel: Path) -> None:
    """Every resource, every module (pyproject lists the packages), and the console script."""
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f"deck_tray/resources/{p.name}" for p in resource_files()
               if f"deck_tray/resources/{p.name}" not in names]
    assert not missing, f"the wheel lacks {missing}; see [tool.setuptools.package-data] in pyproject.toml"
    modules = [p.relative_to(ROOT).as_posix() for p in (ROOT / "deck_tray").rglob("*.py")]
    missing = [m for m in modules if m not in names]
    assert not missing, f"the wheel lacks {missing}; add the package to [tool.setuptools] packages in pyproject.toml"
    assert not [n for n in names if n.startswith("resources/")], "resources/ must ship inside deck_tray only"
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "deck-tray = deck_tray.cli:main" in entry_points


RUNTIME_CHECK = textwrap.dedent("""
    import importlib.resources, sys
    from pathlib import Path
    import deck_tray
    from deck_tray.commands import autostart
    from deck_tray.ui import icons
    from PySide6.QtWidgets import QApplication

    venv = Path(sys.prefix).resolve()
    assert Path(deck_tray.__file__).resolve().is_relative_to(venv), deck_tray.__file__
    res = importlib.resources.files("deck_tray.resources")
    with importlib.resources.as_file(res / "state-waiting.svg") as p:  # as the notifier reads it
        assert Path(p).resolve().is_relative_to(venv) and Path(p).is_file(), p
    app = QApplication([])
    for name in sys.argv[1:]:
        image = icons.render(name, 32).toImage()
        assert not image.isNull() and image.pixelColor(16, 16).alpha() > 0, name
    assert not icons.app_icon().isNull() and not icons.tray_icon(2, False).isNull()
    assert "Icon=" + deck_tray.APP_ID in autostart.packaged_entry().splitlines()
    print("ok", res)
""")


def test_installed_wheel_finds_its_resources(wheel: Path, tmp_path: Path) -> None:
    """Installed from the wheel (not editable) into a venv that borrows this Python's packages for
    the dependencies, deck-tray renders every icon and writes its autostart entry, with this
    checkout out of reach (isolated mode, run from elsewhere)."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False, symlinks=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # The dependencies come from this interpreter's site-packages (a venv's too, where
    # --system-site-packages would only reach the base interpreter's), added after the venv's own
    # by a .pth file: the wheel's deck_tray comes first, and the .pth files there (this checkout's
    # editable install among them) are not run.
    (site_dir,) = env_dir.glob("lib/python3*/site-packages")
    (site_dir / "deps_from_the_test.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                        "--no-index", "--force-reinstall", "--disable-pip-version-check", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    r = subprocess.run([str(py), "-I", "-c", RUNTIME_CHECK, *ICON_NAMES], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stdout + r.stderr
    assert str(env_dir) in r.stdout
    config = tmp_path / "config"
    r = subprocess.run([str(env_dir / "bin" / "deck-tray"), "autostart", "enable"], cwd=tmp_path,
                       env={**env, "XDG_CONFIG_HOME": str(config)}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    entry = desktop_keys(config / "autostart" / DESKTOP.name)
    assert entry["Exec"] == str(env_dir / "bin" / "deck-tray") and entry["Icon"] == APP_ID


# -- scripts/install_data.py: the menu entry and hicolor icons, from resources/ ---------------------

def test_install_data(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "install_data.py"), "--destdir", str(tmp_path),
                        "--prefix", "/usr"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    share = tmp_path / "usr" / "share"
    assert (share / "applications" / DESKTOP.name).read_bytes() == DESKTOP.read_bytes()
    assert (share / "metainfo" / METAINFO.name).read_bytes() == METAINFO.read_bytes()
    hicolor = share / "icons" / "hicolor"
    assert (hicolor / "scalable" / "apps" / f"{APP_ID}.svg").read_bytes() == ICON.read_bytes()
    pngs = sorted(hicolor.glob(f"*x*/apps/{APP_ID}.png"))
    sizes = sorted(int(p.parent.parent.name.split("x")[0]) for p in pngs)
    assert {48, 64, 128, 256} <= set(sizes), sizes
    for png in pngs:
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        assert f"{width}x{height}" == png.parent.parent.name
    assert sorted(r.stdout.split()) == sorted(str(p) for p in share.rglob("*") if p.is_file())


# -- PyInstaller ------------------------------------------------------------------------------------

def _qt_modules_imported() -> set[str]:
    out: set[str] = set()
    for path in (ROOT / "deck_tray").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            out.update(n.split(".")[1] for n in names if n.startswith("PySide6.Qt"))
    return out


def test_the_bundle_keeps_every_qt_module_the_code_imports() -> None:
    spec = (ROOT / "packaging" / "deck-tray.spec").read_text(encoding="utf-8")
    line = next(ln for ln in spec.splitlines() if ln.startswith("QT_MODULES = "))
    kept = ast.literal_eval(line.split("=", 1)[1].strip())
    missing = _qt_modules_imported() - kept
    assert not missing, f"deck_tray imports {sorted(missing)}; add them to QT_MODULES in packaging/deck-tray.spec"


def test_the_bundle_takes_resources_from_the_one_copy() -> None:
    spec = (ROOT / "packaging" / "deck-tray.spec").read_text(encoding="utf-8")
    assert '(ROOT / "resources")' in spec and '"deck_tray/resources"' in spec
