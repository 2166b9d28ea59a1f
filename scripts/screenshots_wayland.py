"""Screenshots of the pinned window on real Wayland desktops (issue #14), light and dark.

    python scripts/screenshots_wayland.py [OUT_DIR]

Each shot starts a headless compositor with Xwayland (tests/e2e/wayland_desktop.py: KDE's KWin
5.27 and GNOME's mutter 43 from Debian 12), a red "Other app" window that takes focus, and the
deck-tray window with the sample sessions of scripts/screenshots.py, pinned, on the platform
deck-tray picks there (core.display: through XWayland). KWin composites the screen for us
(``org.kde.KWin.ScreenShot2``), at output scale 1 and 2; mutter has no screenshot interface
without gnome-shell, so its shots are the X11 screen of its Xwayland (every X11 window as
mutter stacked it).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from PySide6.QtWidgets import QApplication
from deck_tray.core import display
import os
platform = display.choose(os.environ, pinned=sys.argv[3] == "pinned")
argv = [sys.argv[0]] + (["-platform", platform.qpa] if platform.qpa else [])
app = QApplication(argv)
app.setStyle("Fusion")
sys.path.insert(0, sys.argv[1] + "/scripts")
from screenshots import dark_palette, demo_sessions
if sys.argv[2] == "dark":
    app.setPalette(dark_palette())
import tempfile
from pathlib import Path
from PySide6.QtCore import QSettings
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.window import MainWindow
settings = QSettings(str(Path(tempfile.mkdtemp()) / "shots.ini"), QSettings.Format.IniFormat)
reg = SessionRegistry()
win = MainWindow(reg, settings, platform=platform)
sessions = demo_sessions()
reg.apply(sessions)
win.set_pinned(sys.argv[3] == "pinned")
win.resize(620, 600)
win.move(600, 120)
win.show()
win.open_session(sessions[0].id)
print("ready", app.platformName(), flush=True)
app.exec()
"""


def shoot(out: Path, compositor: str, theme: str, scale: float) -> Path:
    from tests.e2e.live_desktop import wait_for
    from tests.e2e.wayland_desktop import WaylandDesktop

    name = f"wayland-{'kde' if compositor == 'kwin' else 'gnome'}-pinned{'' if scale == 1 else '-scale2'}" \
           f"{'-dark' if theme == 'dark' else ''}.png"
    with WaylandDesktop(compositor, scale=scale) as desk:
        other = desk.other_window("Other app", platform="wayland" if compositor == "kwin" else "xcb")
        assert other.stdout is not None
        other.stdout.readline()
        env = dict(desk.env)
        env.pop("QT_QPA_PLATFORM", None)
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), theme, "pinned"], env=env,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            print(compositor, theme, scale, child.stdout.readline().strip())
            time.sleep(1.0)  # let the compositor draw the frame (no "frame done" to wait on from here)
            path = out / name
            if compositor == "kwin":
                wait_for(lambda: desk.kwin_windows(), 20, "KWin lists the windows")
                desk.kwin_screenshot(path)
            else:
                x_screen(desk, path)
            return path
        finally:
            child.kill()
            child.wait(10)


def x_screen(desk: object, path: Path) -> None:
    """The X11 windows of mutter's Xwayland, each window's own pixels (``GetImage``; a rootless
    Xwayland's root has none) painted where it is, bottom to top in mutter's stacking order
    (``_NET_CLIENT_LIST_STACKING``), on a black screen; saved as PNG."""
    from PySide6.QtGui import QColor, QImage, QPainter
    from Xlib import X, Xatom

    dpy = desk.x_display()  # type: ignore[attr-defined]
    try:
        root = dpy.screen().root
        w, h = desk.size  # type: ignore[attr-defined]
        canvas = QImage(w, h, QImage.Format.Format_RGB32)
        canvas.fill(QColor("black"))
        painter = QPainter(canvas)
        stack = root.get_full_property(dpy.intern_atom("_NET_CLIENT_LIST_STACKING"), Xatom.WINDOW)
        for wid in (stack.value if stack is not None else []):
            win = dpy.create_resource_object("window", wid)
            geo = win.get_geometry()
            pos = win.translate_coords(root, 0, 0)
            raw = win.get_image(0, 0, geo.width, geo.height, X.ZPixmap, 0xFFFFFFFF)
            img = QImage(raw.data, geo.width, geo.height, geo.width * 4, QImage.Format.Format_RGB32)
            painter.drawImage(-pos.x, -pos.y, img)
        painter.end()
        canvas.save(str(path))
    finally:
        dpy.close()


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.instance() or QGuiApplication(["shots", "-platform", "offscreen"])
    for theme in ("light", "dark"):
        for compositor, scale in (("kwin", 1.0), ("kwin", 2.0), ("mutter", 1.0)):
            print("saved", shoot(out, compositor, theme, scale))


if __name__ == "__main__":
    main()
