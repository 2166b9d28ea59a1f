"""Render the settings dialog's "Remote hosts" page (issue #18) to PNG files.

    xvfb-run -a python scripts/screenshots_remote_settings.py [OUT_DIR] [--invalid]

Saves ``settings-remote-hosts.png`` and ``settings-remote-hosts-dark.png``: three stored hosts as
the running app reports them (connected, unreachable with ssh's long explanation, login failed).
``--invalid`` also saves ``settings-remote-hosts-invalid[-dark].png``: a host added in the dialog
and not applied yet, and a name that cannot be used typed into the fields. Uses a throw-away
home folder and settings file; nothing connects anywhere.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import dark_palette  # noqa: E402

from deck_tray.core import settings as cfg  # noqa: E402
from deck_tray.services.remote import HostConfig, HostState, HostStatus, explain, host_json, save_hosts  # noqa: E402
from deck_tray.services.settings_store import SettingsStore, open_settings  # noqa: E402
from deck_tray.ui.settings_dialog import SettingsDialog  # noqa: E402

HOSTS = [HostConfig("lab", "me@lab-box"), HostConfig("gpu-01", "ssh://me@gpu-01.lan:2222"),
         HostConfig("pi", "pi@raspberrypi.local")]


def statuses() -> list[dict[str, object]]:
    """What the app's ``Remotes.statuses()`` says of :data:`HOSTS` (the details as
    :func:`deck_tray.services.remote.explain` words them from OpenSSH's stderr)."""
    today = dt.datetime.now().replace(hour=14, minute=2, second=0, microsecond=0).timestamp()
    lab, gpu, pi = HOSTS
    _s, unreachable = explain(255, ["ssh: connect to host gpu-01.lan port 2222: No route to host"],
                              ["ssh"], gpu.dest)
    _s, login = explain(255, ["pi@raspberrypi.local: Permission denied (publickey,password)."], ["ssh"], pi.dest)
    return [host_json(st) for st in (
        HostStatus(lab.name, lab.dest, HostState.CONNECTED, "3 sessions", today - 3600, "0.1.0", 3),
        HostStatus(gpu.name, gpu.dest, HostState.UNREACHABLE, unreachable, today),
        HostStatus(pi.name, pi.dest, HostState.LOGIN_FAILED, login, today + 60),
    )]


def render(out: Path, suffix: str, app: QApplication, invalid: bool) -> None:
    store = SettingsStore(open_settings())
    save_hosts(store.qsettings, HOSTS)  # as `deck-tray remote add` stores them
    dlg = SettingsDialog(store)
    dlg.tabs.setCurrentIndex(dlg.pages[cfg.Group.REMOTE])
    dlg.set_remote_statuses(statuses())
    dlg.show()

    def shot(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        dlg.grab().save(str(out / f"{name}{suffix}.png"))

    shot("settings-remote-hosts")
    if invalid:
        editor = dlg.rows[cfg.REMOTE_HOSTS.key].editor
        editor.name.setText("build")  # type: ignore[attr-defined]
        editor.dest.setText("ci@build.lan")  # type: ignore[attr-defined]
        editor.add()  # type: ignore[attr-defined]
        editor.name.setText("my box")  # type: ignore[attr-defined]
        editor.dest.setText("me@box")  # type: ignore[attr-defined]
        editor.add()  # type: ignore[attr-defined]
        shot("settings-remote-hosts-invalid")
    dlg.close()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    # a throw-away home, so the dialog names the usual file (~/.config/deck-tray/deck-tray.ini)
    home = Path(tempfile.mkdtemp())
    os.environ["HOME"] = str(home)
    os.environ.pop("XDG_CONFIG_HOME", None)
    os.environ.pop("DECK_TRAY_SSH_COMMAND", None)
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    light = app.palette()
    render(out, "", app, "--invalid" in sys.argv)
    QSettings(open_settings().fileName(), QSettings.Format.IniFormat).clear()
    dark = dark_palette()
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        dark.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7c7f85"))  # as dark desktop themes do
    app.setPalette(dark)
    render(out, "-dark", app, "--invalid" in sys.argv)
    app.setPalette(light)
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
