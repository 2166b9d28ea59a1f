"""Render the "New session" dialog (issue #15) to PNG files, and with ``--live`` the real flow.

    python scripts/screenshots_new_session.py [OUT_DIR] [--dark] [--live]

Without ``--live``: the dialog with recent folders and a worktree branch, and the same after a
refusal (offscreen). With ``--live`` (needs tmux, the pinned Claude Code in ./.agents and the
test harness's fake model): the app starts a real Claude Code from the dialog in a private
tmux, and the window is captured once the new session's tab shows the answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import dark_palette  # noqa: E402

from deck_tray.ui.new_session_dialog import NewSessionDialog  # noqa: E402


def dialog_shots(out: Path, suffix: str, app: QApplication) -> None:
    base = Path(tempfile.mkdtemp())
    folders = [base / "src" / "payments-service", base / "src" / "deck-tray", base / "notes"]
    for f in folders:
        f.mkdir(parents=True)
    dialog = NewSessionDialog(lambda: [str(f) for f in folders], lambda: "")
    dialog.present()
    dialog.worktree.setText("fix/refund-rounding")
    dialog.prompt.setPlainText("Refunds of 0.005 round the wrong way. Find where and add a failing test first.")
    dialog.trust.setChecked(True)

    def shot(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        dialog.grab().save(str(out / f"{name}{suffix}.png"))

    shot("new-session-dialog")
    dialog._start()
    dialog.show_result(False, f"Nothing was started: Branch fix/refund-rounding is already checked out in "
                              f"{folders[0]}.worktrees/fix-refund-rounding, and git allows a branch in one "
                              "worktree only; open that folder instead, or pick another branch name.")
    shot("new-session-dialog-refused")
    dialog.folder.setEditText(str(base / "gone"))
    shot("new-session-dialog-invalid")


def list_shot(out: Path, suffix: str, app: QApplication) -> None:
    """The session list with a repository's session and two worktree sessions grouped under it."""
    import subprocess
    import time

    from screenshots import demo_sessions

    from deck_tray.core.model import SessionStatus
    from deck_tray.services.registry import SessionRegistry
    from deck_tray.ui.window import MainWindow

    base = Path(tempfile.mkdtemp())
    repo = base / "payments-service"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "README").write_text("x")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    for branch in ("fix/refund-rounding", "feat/receipts"):
        subprocess.run([*git, "worktree", "add", "-q", "-b", branch,
                        str(base / "payments-service.worktrees" / branch.replace("/", "-"))], check=True)
    from dataclasses import replace

    waiting, busy, idle, ended = demo_sessions()
    now = time.time()
    sessions = [
        replace(idle, id="a1", cwd=str(repo), title="Release notes for 2.4", updated_at=now - 60),
        replace(busy, id="a2", cwd=str(base / "payments-service.worktrees" / "fix-refund-rounding"),
                title="Refunds of 0.005 round the wrong way", status=SessionStatus.BUSY, updated_at=now - 5),
        replace(idle, id="a3", cwd=str(base / "payments-service.worktrees" / "feat-receipts"),
                title="Receipts as PDF", updated_at=now - 200),
        waiting, ended,
    ]
    reg = SessionRegistry()
    win = MainWindow(reg, QSettings(str(base / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1100, 560)
    win.show()
    reg.apply(sessions)
    win.open_session("a2")
    for _ in range(5):
        app.processEvents()
    win.grab().save(str(out / f"window-worktrees{suffix}.png"))


def live_shot(out: Path, suffix: str) -> None:
    from deck_tray.app import DeckTrayApp
    from deck_tray.core.model import AgentKind, SessionStatus
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux
    from tests.e2e.harness import FakeModel, find_agent_bin

    claude = find_agent_bin("claude")
    assert claude, "claude not found: ./scripts/test.sh installs it into ./.agents"
    tmp = Path(tempfile.mkdtemp(prefix="dt-shot-"))
    project = tmp / "payments-service"
    project.mkdir()
    home = tmp / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark",
        "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
        "projects": {str(project): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}}}))
    with FakeModel("anthropic", tmp / "fake") as model:
        os.environ.update({"HOME": str(home), "TMUX_TMPDIR": str(tmp), "ANTHROPIC_BASE_URL": model.base_url,
                           "ANTHROPIC_API_KEY": "dummy", "DISABLE_AUTOUPDATER": "1",
                           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "LANG": "C.UTF-8",
                           "PATH": f"{Path(claude).parent}:{os.environ['PATH']}"})
        app = DeckTrayApp(scanner=Scanner(home / ".claude", tmp / "no-codex"), mux=Tmux(),
                          settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), discover_opencode=False)
        import qasync

        loop = qasync.QEventLoop(QApplication.instance())
        asyncio.set_event_loop(loop)

        async def flow() -> None:
            app.start()
            try:
                app.window.resize(1100, 700)
                app.window.show()
                dialog = app.open_new_session()
                dialog.folder.setEditText(str(project))
                dialog.agent.setCurrentIndex(dialog.agent.findData(AgentKind.CLAUDE_CODE))
                dialog.prompt.setPlainText("Refunds of 0.005 round the wrong way. Find where.")
                dialog.start_button.click()
                for _ in range(1200):
                    await asyncio.sleep(0.1)
                    sid = next(iter(app.window.tabs_by_id), None)
                    s = app.registry.get(sid) if sid else None
                    if s is not None and s.status is SessionStatus.IDLE and len(s.messages) >= 2:
                        break
                await asyncio.sleep(0.5)
                app.window.grab().save(str(out / f"new-session-tab{suffix}.png"))
            finally:
                await app.stop()
                import subprocess

                subprocess.run(["tmux", "-S", str(tmp / f"tmux-{os.getuid()}" / "default"), "kill-server"],
                               capture_output=True, timeout=30)

        loop.run_until_complete(flow())


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
    dialog_shots(out, suffix, app)  # type: ignore[arg-type]
    list_shot(out, suffix, app)  # type: ignore[arg-type]
    if "--live" in sys.argv:
        live_shot(out, suffix)


if __name__ == "__main__":
    main()
