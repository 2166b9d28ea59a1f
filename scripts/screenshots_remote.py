"""Render the window with sessions of remote hosts (issue #18) to PNG files.

    xvfb-run -a python scripts/screenshots_remote.py [OUT_DIR]

Saves ``window-remote-hosts.png`` and ``-dark.png``: local sessions beside a remote host's
(``lab``, its waiting session open in a tab) and one of a host that cannot be reached (``gpu``,
greyed with why), the hosts' connections in the status bar. The sessions are the captured ones
of ``scripts/screenshots.py`` given a host; nothing connects anywhere.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import dark_palette, demo_sessions  # noqa: E402

from deck_tray.core.model import SessionStatus, remote_id  # noqa: E402
from deck_tray.services.registry import SessionRegistry  # noqa: E402
from deck_tray.ui.window import MainWindow  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")
    light = app.palette()
    for suffix, palette in (("", light), ("-dark", dark_palette())):
        app.setPalette(palette)
        reg = SessionRegistry(announce_hold=0)
        win = MainWindow(reg, QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat))
        win.resize(1100, 700)
        win.show()
        local = demo_sessions()
        waiting, busy = local[0], local[1]
        lab = replace(waiting, id=remote_id("lab", waiting.id), host="lab", cwd="/home/me/work/api-server",
                      title="Migrate the API server to the new auth middleware")
        gone = replace(busy, id=remote_id("gpu", busy.id), host="gpu", status=SessionStatus.UNKNOWN, pending=None,
                       cwd="/home/me/train", title="Tune the data loader",
                       reason=f"gpu unreachable since {time.strftime('%H:%M')}: gpu-box cannot be reached: ssh: "
                              "connect to host gpu-box port 22: No route to host. deck-tray keeps trying. "
                              "(last seen: Working)")
        reg.apply(local[2:], source="files")
        reg.apply([lab], source="remote lab")
        reg.apply([gone], source="remote gpu")
        win.show_servers([])
        win.show_remotes([
            {"name": "lab", "dest": "me@lab-box", "state": "connected", "detail": "1 session"},
            {"name": "gpu", "dest": "gpu-box", "state": "unreachable",
             "detail": "gpu-box cannot be reached: ssh: connect to host gpu-box port 22: No route to host."},
        ])
        win.open_session(lab.id)
        for _ in range(8):
            app.processEvents()
        win.grab().save(str(out / f"window-remote-hosts{suffix}.png"))
        win.close()
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
