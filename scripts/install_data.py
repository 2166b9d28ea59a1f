#!/usr/bin/env python3
"""Install deck-tray's desktop integration from the top-level ``resources/`` folder (the one copy):

    PREFIX/share/applications/<APP_ID>.desktop
    PREFIX/share/metainfo/<APP_ID>.metainfo.xml
    PREFIX/share/icons/hicolor/scalable/apps/<APP_ID>.svg
    PREFIX/share/icons/hicolor/<N>x<N>/apps/<APP_ID>.png   (N in SIZES, rendered from the SVG)

    python3 scripts/install_data.py --prefix ~/.local                  # a menu entry for this user
    python3 scripts/install_data.py --destdir "$pkgdir" --prefix /usr  # a distribution package
    python3 scripts/install_data.py --prefix build/AppDir/usr          # scripts/build_bundle.sh

The PNGs are rendered with PySide6's QtSvg (a project dependency); ``--no-png`` installs the
scalable icon only. The app id is the name of the one ``.desktop`` file in resources/. Caches
(``update-desktop-database``, ``gtk-update-icon-cache``) are left to the caller or the package
manager. Prints every file it writes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
# The hicolor sizes menus, docks and software centres look up (48 is the icon theme spec's minimum).
SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


def app_id(resources: Path = RESOURCES) -> str:
    """The app id: the stem of the one ``*.desktop`` file in ``resources``."""
    (desktop,) = resources.glob("*.desktop")
    return desktop.stem


def render_png(svg: Path, size: int, out: Path) -> None:
    """Render ``svg`` to a ``size`` x ``size`` PNG at ``out`` (transparent background)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])  # QPainter needs one
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(svg)).render(painter, QRectF(0, 0, size, size))
    painter.end()
    if not image.save(str(out), "PNG"):
        raise OSError(f"could not write {out}")


def install(prefix: Path, destdir: Path | None = None, png: bool = True, resources: Path = RESOURCES) -> list[Path]:
    """Copy the desktop entry, metainfo and icons under ``destdir``/``prefix``/share; the paths written."""
    aid = app_id(resources)
    root = destdir / str(prefix).lstrip("/") if destdir else prefix
    share = root / "share"
    icons = share / "icons" / "hicolor"
    copies = [
        (resources / f"{aid}.desktop", share / "applications" / f"{aid}.desktop"),
        (resources / f"{aid}.metainfo.xml", share / "metainfo" / f"{aid}.metainfo.xml"),
        (resources / f"{aid}.svg", icons / "scalable" / "apps" / f"{aid}.svg"),
    ]
    written = []
    for src, dst in copies:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        dst.chmod(0o644)
        written.append(dst)
    if png:
        for size in SIZES:
            dst = icons / f"{size}x{size}" / "apps" / f"{aid}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            render_png(resources / f"{aid}.svg", size, dst)
            dst.chmod(0o644)
            written.append(dst)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefix", type=Path, default=Path.home() / ".local", help="default: ~/.local")
    ap.add_argument("--destdir", type=Path, help="staging root prepended to PREFIX (packagers)")
    ap.add_argument("--no-png", action="store_true", help="install the scalable SVG icon only")
    args = ap.parse_args(argv)
    for path in install(args.prefix.expanduser(), args.destdir, png=not args.no_png):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
