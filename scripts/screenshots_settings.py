"""Render the settings dialog to PNG files (for docs and for looking at it).

    xvfb-run -a python scripts/screenshots_settings.py [OUT_DIR] [--dark] [--all-tabs]

Saves ``settings-dialog[-dark].png`` (the Notifications page over a stored sample of
settings); ``--all-tabs`` also saves one ``settings-<group>[-dark].png`` per page and one
with an invalid server URL typed in. Uses a throw-away home folder and settings file.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import dark_palette  # noqa: E402

from deck_tray.core import settings as cfg  # noqa: E402
from deck_tray.services.settings_store import SettingsStore, open_settings  # noqa: E402
from deck_tray.ui.settings_dialog import SettingsDialog  # noqa: E402


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")
    suffix = ""
    if "--dark" in sys.argv:
        pal = dark_palette()
        for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
            pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7c7f85"))  # as dark desktop themes do
        app.setPalette(pal)
        suffix = "-dark"
    # a throw-away home, so the dialog names the usual file (~/.config/deck-tray/deck-tray.ini)
    home = Path(tempfile.mkdtemp())
    os.environ["HOME"] = str(home)
    os.environ.pop("XDG_CONFIG_HOME", None)
    store = SettingsStore(open_settings())
    store.set(cfg.RENOTIFY_MINUTES, 10)
    store.set(cfg.QUIET_ENABLED, True)
    store.set(cfg.QUIET_START, dt.time(22, 30))
    store.set(cfg.OPENCODE_URLS, ("http://127.0.0.1:4096", "https://build-box.lan:4096"))
    dlg = SettingsDialog(store)
    dlg.show()

    def shot(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        dlg.grab().save(str(out / f"{name}{suffix}.png"))

    shot("settings-dialog")
    if "--all-tabs" in sys.argv:
        for group, index in dlg.pages.items():
            dlg.tabs.setCurrentIndex(index)
            shot(f"settings-{group.name.lower()}")
        dlg.tabs.setCurrentIndex(dlg.pages[cfg.Group.OPENCODE])
        editor = dlg.rows[cfg.OPENCODE_URLS.key].editor
        editor.entry.setText("http://127.0.0.1:40 96")  # type: ignore[attr-defined]
        editor.add()  # type: ignore[attr-defined]
        shot("settings-invalid-url")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
