"""Render the window with sample sessions to PNG files (for docs and for looking at it).

    python scripts/screenshots.py [OUT_DIR] [--dark]

Sessions are built from the captured transcripts in tests/fixtures (real Claude Code
2.1.197 and codex-cli 0.169.0 records); statuses are set to show each state.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deck_tray.core.claude import ClaudeTranscript  # noqa: E402
from deck_tray.core.codex import CodexRollout  # noqa: E402
from deck_tray.core.model import (  # noqa: E402
    AgentKind,
    PaneRef,
    PendingRequest,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.services.registry import SessionRegistry  # noqa: E402
from deck_tray.ui.window import MainWindow  # noqa: E402


def demo_sessions() -> list[Session]:
    fx = ROOT / "tests" / "fixtures"
    ct = ClaudeTranscript()
    lines = (fx / "claude-code-2.1.197-interactive.jsonl").read_text().splitlines()
    for line in lines[:17]:  # up to the second prompted Bash, still unanswered
        ct.feed(json.loads(line))
    cx = CodexRollout()
    for line in (fx / "codex-0.169.0-tui-no-daemon.jsonl").read_text().splitlines():
        cx.feed(json.loads(line))
    now = time.time()
    waiting = Session(
        id=ct.session_id, agent=AgentKind.CLAUDE_CODE, cwd="/home/dev/work/proj",
        title="Clean up the build artefacts before the release branch is cut", pid=13514,
        pane=PaneRef("tmux", "%3", "/tmp/tmux-1000/default", "work:1.0"),
        status=SessionStatus.WAITING_PERMISSION,
        reason=("permission prompt for Bash `touch fake-bash-ran.txt && echo hello-from-fake-bash`"
                " — live status file, 2 s ago"),
        pending=PendingRequest(RequestKind.PERMISSION, "Bash", "touch fake-bash-ran.txt && echo hello-from-fake-bash",
                               ("Yes", "Yes, and always allow access to proj/ from this project", "No"), "toolu_1"),
        updated_at=now - 2, messages=tuple(ct.messages),
    )
    busy = Session(
        id=cx.thread_id, agent=AgentKind.CODEX, cwd="/home/dev/work/api", title=cx.title or "Codex session", pid=2201,
        pane=PaneRef("tmux", "%5", "/tmp/tmux-1000/default", "work:2.0"), status=SessionStatus.BUSY,
        reason="working — transcript, just now", updated_at=now - 1, messages=tuple(cx.messages),
    )
    idle = replace(busy, id="01a200e9-0000-7000-8000-000000000001", title="Write the changelog", pid=2301,
                   status=SessionStatus.IDLE, reason="turn finished — transcript, 4 min ago", updated_at=now - 240)
    ended = replace(busy, id="01a200e9-0000-7000-8000-000000000002", title="Investigate flaky test", pid=None,
                    pane=None, status=SessionStatus.ENDED,
                    reason="no Codex process has this session open — process table, 2 h ago", updated_at=now - 7200)
    return [waiting, busy, idle, ended]


def dark_palette() -> QPalette:
    p = QPalette()
    for role, color in [
        (QPalette.ColorRole.Window, "#2b2d31"), (QPalette.ColorRole.WindowText, "#e6e6e6"),
        (QPalette.ColorRole.Base, "#1e1f22"), (QPalette.ColorRole.AlternateBase, "#2b2d31"),
        (QPalette.ColorRole.Text, "#e6e6e6"), (QPalette.ColorRole.Button, "#3a3d42"),
        (QPalette.ColorRole.ButtonText, "#e6e6e6"), (QPalette.ColorRole.Highlight, "#3d6fd6"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.PlaceholderText, "#8a8d93"),
        (QPalette.ColorRole.Mid, "#9aa0a6"),
    ]:
        p.setColor(role, QColor(color))
    return p


def long_conversation() -> Session:
    """A finished session with the whole captured Claude transcript (8 turns)."""
    fx = ROOT / "tests" / "fixtures"
    ct = ClaudeTranscript()
    for line in (fx / "claude-code-2.1.197-interactive.jsonl").read_text().splitlines():
        ct.feed(json.loads(line))
    extra = (
        "Here is what changed:\n\n"
        "1. **Build** — the `dist/` folder is removed before packaging.\n"
        "2. **Tests** — `pytest -q` now runs the slow suite only with `--slow`.\n\n"
        "```bash\nmake clean && make dist\n```\n\nAnything else?"
    )
    from deck_tray.core.model import Message, MessageRole

    msgs = (*ct.messages, Message(MessageRole.ASSISTANT, extra, time.time() - 30))
    return Session(
        id="6c891d37-ea8a-4230-a6e5-8df46b7b1a8b", agent=AgentKind.CLAUDE_CODE, cwd="/home/dev/work/proj",
        title="Release checklist", pid=13600, pane=PaneRef("tmux", "%7", "/tmp/tmux-1000/default", "work:3.0"),
        status=SessionStatus.IDLE, reason="turn finished — live status file, 30 s ago",
        updated_at=time.time() - 30, messages=msgs,
    )


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else ROOT / "docs" / "screenshots"
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
    win.resize(1100, 700)
    win.show()

    def shot(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        win.grab().save(str(out / f"{name}{suffix}.png"))

    shot("window-empty")
    sessions = [*demo_sessions(), long_conversation()]
    reg.apply(sessions)
    win.open_session(sessions[1].id)
    win.open_session(sessions[4].id)
    shot("window-long-conversation")
    win.open_session(sessions[0].id)
    win.close_tab(win.tabs.indexOf(win.tabs_by_id[sessions[1].id]))  # shows the reopen button
    shot("window-waiting")
    # Issue #13: agents in a plain terminal window. A Claude Code question held through its hook
    # (options and Send enabled with no pane), and a Codex permission deck-tray cannot deliver.
    ask = replace(sessions[0], id="a5d0c3e1-0000-4000-8000-00000000000a", pane=None, pid=4242,
                  title="pick a colour for the widget", status=SessionStatus.WAITING_QUESTION,
                  reason="question — PermissionRequest hook",
                  pending=PendingRequest(RequestKind.QUESTION, "AskUserQuestion",
                                         "Which colour should the widget be?", ("Red", "Blue", "Type something."),
                                         question="Which colour should the widget be?"))
    cdx = replace(sessions[2] if sessions[2].agent is AgentKind.CODEX else sessions[1],
                  id="c0de0000-0000-4000-8000-00000000000c", pane=None, pid=4343,
                  status=SessionStatus.WAITING_PERMISSION, reason="approval — PermissionRequest hook",
                  pending=PendingRequest(RequestKind.PERMISSION, "exec_command", "cargo test --workspace",
                                         ("Yes, proceed", "Yes, and don't ask again for this command", "No")))
    reg.apply([*sessions, ask, cdx])
    win.open_session(ask.id)
    win.set_hook_held(ask.id, True)
    shot("window-question-through-hook")
    win.open_session(cdx.id)
    shot("window-codex-plain-terminal")
    win.pin_action.setChecked(True)
    win.resize(600, 640)
    shot("window-pinned")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
