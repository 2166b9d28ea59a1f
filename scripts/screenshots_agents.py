"""Render the window with sessions of the agents added as adapters (issue #19) to PNG files.

    xvfb-run -a python scripts/screenshots_agents.py [OUT_DIR]

Saves ``window-agents.png`` and ``-dark.png``: a Gemini CLI session waiting on its shell
confirmation (its tab open, the options read from the captured screen), a Qwen Code session
working, a Copilot CLI question, beside a Claude Code session. Each is built by its adapter from
the files captured in real runs (``tests/fixtures/``); nothing runs.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import dark_palette, demo_sessions  # noqa: E402

from deck_tray.core.agents.copilot import CopilotTranscript  # noqa: E402
from deck_tray.core.agents.copilot import read_screen as copilot_screen  # noqa: E402
from deck_tray.core.agents.gemini import GeminiTranscript  # noqa: E402
from deck_tray.core.agents.gemini import read_screen as gemini_screen  # noqa: E402
from deck_tray.core.agents.qwen import QwenTranscript  # noqa: E402
from deck_tray.core.model import AgentKind, PaneRef, Session, SessionStatus  # noqa: E402
from deck_tray.core.screens import screen_evidence  # noqa: E402
from deck_tray.services.registry import SessionRegistry  # noqa: E402
from deck_tray.ui.window import MainWindow  # noqa: E402

FX = ROOT / "tests" / "fixtures"


def fed(st, name: str, upto: str | None = None):  # type: ignore[no-untyped-def]
    lines = (FX / name).read_text().splitlines()
    if upto is not None:
        lines = lines[:next(i for i, ln in enumerate(lines) if upto in ln) + 1]
    for line in lines:
        st.feed(json.loads(line))
    st.settle()
    return st


def agent_sessions() -> list[Session]:
    now = time.time()
    g = fed(GeminiTranscript("/home/dev/work/site"), "gemini-cli-0.61.0-shell-allow.jsonl", '"type":"gemini"')
    gs = gemini_screen((FX / "screens" / "gemini-cli-0.61.0-permission-shell.txt").read_text())
    gev = screen_evidence(AgentKind.GEMINI_CLI, gs, now)
    assert gev is not None
    gemini = Session(id=g.session_id, agent=AgentKind.GEMINI_CLI, cwd="/home/dev/work/site", title=g.title, pid=4101,
                     pane=PaneRef("tmux", "%7", "/tmp/tmux-1000/default", "work:3.0"),
                     status=SessionStatus.WAITING_PERMISSION, reason="approval prompt — screen, just now",
                     pending=gev.pending, updated_at=now - 1, messages=tuple(g.messages))
    q = fed(QwenTranscript(), "qwen-code-0.24.4-transcript.jsonl", '"type":"user"')
    qwen = Session(id=q.session_id, agent=AgentKind.QWEN_CODE, cwd="/home/dev/work/etl", title=q.title, pid=4202,
                   pane=PaneRef("tmux", "%8", "/tmp/tmux-1000/default", "work:4.0"), status=SessionStatus.BUSY,
                   reason="responding (pane title) — screen, just now", updated_at=now - 3, messages=tuple(q.messages))
    c = fed(CopilotTranscript(), "copilot-cli-1.0.102-events-ask-esc.jsonl", '"ask_user"')
    cs = copilot_screen((FX / "screens" / "copilot-cli-1.0.102-question.txt").read_text())
    cev = screen_evidence(AgentKind.COPILOT_CLI, cs, now)
    copilot = Session(id=c.session_id or "copilot-1", agent=AgentKind.COPILOT_CLI, cwd="/home/dev/work/cli",
                      title=c.title or "Copilot session", pid=4303,
                      pane=PaneRef("tmux", "%9", "/tmp/tmux-1000/default", "work:5.0"),
                      status=SessionStatus.WAITING_QUESTION if cev is not None else SessionStatus.BUSY,
                      reason="question — screen, just now", pending=cev.pending if cev is not None else None,
                      updated_at=now - 5, messages=tuple(c.messages))
    return [gemini, qwen, copilot]


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
        sessions = agent_sessions()
        reg.apply([*sessions, demo_sessions()[2]], source="files")
        win.show_servers([])
        win.open_session(sessions[0].id)
        for _ in range(8):
            app.processEvents()
        win.grab().save(str(out / f"window-agents{suffix}.png"))
        win.open_session(sessions[2].id)
        for _ in range(8):
            app.processEvents()
        win.grab().save(str(out / f"window-agents-question{suffix}.png"))
        win.close()
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
