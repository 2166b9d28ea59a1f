"""Screenshots of real public session files in the window (issue #16), light and dark.

    python scripts/screenshots_corpus.py [OUT_DIR] [--dark]

The sessions come from the public corpus (tests/fixtures/public/): Claude Code 1.0.98 with three
sub-agents run inline (``isSidechain``), one of them asking for a permission when the file ends; and
a Claude Code 2.1.x session that shows typed prompts, a command with arguments, harness text,
thinking, a compaction and sub-agent threads, each as what it is.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from screenshots import dark_palette  # noqa: E402

from deck_tray.core.model import SessionStatus  # noqa: E402
from deck_tray.core.scan import Scanner, build_session  # noqa: E402
from deck_tray.services.registry import SessionRegistry  # noqa: E402
from deck_tray.ui.window import MainWindow  # noqa: E402

PUBLIC = ROOT / "tests" / "fixtures" / "public" / "claude"


def corpus_sessions() -> list:
    out = []
    for case in ("ccviewer", "spotter"):
        scanner = Scanner(PUBLIC / case, PUBLIC / case / "none", history_s=1e12, process_lister=lambda: [])
        for ob in scanner.scan():
            s = build_session(ob, ob.updated_at + 1)
            if s.status is SessionStatus.ENDED and ob.pending_hint is not None:
                # Show it as it was while running: the sub-agent's request waiting.
                s = replace(s, status=SessionStatus.WAITING_PERMISSION, pending=ob.pending_hint,
                            reason="permission prompt — transcript")
            out.append(s)
    return out


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")
    suffix = ""
    if "--dark" in sys.argv:
        app.setPalette(dark_palette())
        suffix = "-dark"
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "shots.ini"), QSettings.Format.IniFormat)
    reg = SessionRegistry()
    win = MainWindow(reg, settings)
    win.resize(1100, 760)
    win.show()
    sessions = corpus_sessions()
    reg.apply(sessions)

    def shot(name: str) -> None:
        for _ in range(20):
            app.processEvents()
        win.grab().save(str(out / f"{name}{suffix}.png"))

    win.open_session("ae4a77f8-aedd-4bc1-888f-c94edc91af04")
    shot("window-record-kinds")
    win.open_session("fe5e1c67-53e7-4862-81ae-d0e013e3270b")
    shot("window-subagents")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
