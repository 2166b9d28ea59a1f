"""Ctrl+N: the "New session" dialog — recent folders, validation with named states, the
request it emits, and that a refusal keeps everything typed (issue #15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from deck_tray.core.model import AgentKind
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.new_session_dialog import NewSessionDialog, NewSessionRequest
from deck_tray.ui.window import MainWindow

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qt_slate")]


def test_recent_folders_validation_and_the_request(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = tmp_path / "alpha", tmp_path / "beta project"
    a.mkdir()
    b.mkdir()
    dialog = NewSessionDialog(lambda: [str(b), str(a)], lambda: "")
    qtbot.addWidget(dialog)
    dialog.present()
    assert [dialog.folder.itemText(i) for i in range(dialog.folder.count())] == [str(b), str(a)]
    assert dialog.folder.currentText() == str(b) and dialog.state == "ready"

    dialog.folder.setEditText(str(tmp_path / "gone"))
    assert dialog.state == "invalid" and "does not exist" in dialog.status.text()
    assert not dialog.start_button.isEnabled()
    dialog.folder.setEditText(str(a))
    dialog.worktree.setText("bad name")
    assert dialog.state == "invalid" and not dialog.start_button.isEnabled()
    dialog.worktree.setText("feat/login")
    assert dialog.state == "ready"
    assert "<repository>.worktrees/feat-login" in dialog.worktree_hint.text()

    dialog.agent.setCurrentIndex(dialog.agent.findData(AgentKind.CODEX))
    dialog.prompt.setPlainText("Fix the login page\nand add a test")
    dialog.trust.setChecked(True)
    got: list[NewSessionRequest] = []
    dialog.start_requested.connect(got.append)
    dialog.start_button.click()
    assert got == [NewSessionRequest(AgentKind.CODEX, str(a), "feat/login", "Fix the login page\nand add a test",
                                     True)]
    assert dialog.state == "starting" and not dialog.prompt.isEnabled() and not dialog.start_button.isEnabled()
    dialog.start_button.click()
    assert len(got) == 1, "no second start while one runs"

    # Refused: the reason is shown, nothing typed is lost, Start works again.
    dialog.show_result(False, "Nothing was started: tmux is not installed.")
    assert dialog.state == "refused" and "tmux is not installed" in dialog.status.text()
    assert dialog.prompt.toPlainText() == "Fix the login page\nand add a test" and dialog.prompt.isEnabled()
    assert dialog.start_button.isEnabled()

    # Started: the dialog closes; the next one starts empty but keeps the folder.
    dialog.show_result(True, "Started")
    assert not dialog.isVisible() and dialog.prompt.toPlainText() == "" and dialog.worktree.text() == ""
    dialog.present()
    assert dialog.folder.currentText() == str(a)


def test_ctrl_n_in_the_window_asks_for_a_new_session(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(SessionRegistry(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.new_session_requested, timeout=2000):
        window.new_action.trigger()
    assert window.new_action.shortcut().toString() == "Ctrl+N"


def test_worktree_sessions_are_grouped_under_their_repository(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import time

    from deck_tray.core.model import PaneRef, Session, SessionStatus
    from deck_tray.core.worktree import linked_worktree

    repo, other = tmp_path / "shop", tmp_path / "notes"
    repo.mkdir()
    other.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True, timeout=60)
    (repo / "a").write_text("a")
    subprocess.run([*git, "add", "a"], check=True, timeout=60)
    subprocess.run([*git, "commit", "-qm", "a"], check=True, timeout=60)
    wt = tmp_path / "shop.worktrees" / "feat-x"
    subprocess.run([*git, "worktree", "add", "-q", "-b", "feat/x", str(wt)], check=True, timeout=60)
    (wt / "sub").mkdir()
    found = linked_worktree(str(wt / "sub"))
    assert found is not None and found.top == str(wt) and found.repo_root == str(repo) and found.name == "feat-x"
    assert linked_worktree(str(repo)) is None and linked_worktree(str(other)) is None

    now = time.time()
    pane = PaneRef("tmux", "%1", "/tmp/tmux-0/default", "work:1.0")
    sessions = [Session("main", AgentKind.CLAUDE_CODE, str(repo), "On main", 1, pane, SessionStatus.IDLE,
                        updated_at=now),
                Session("wt", AgentKind.CODEX, str(wt / "sub"), "On the branch", 2, pane, SessionStatus.IDLE,
                        updated_at=now - 5),
                Session("notes", AgentKind.CLAUDE_CODE, str(other), "Notes", 3, pane, SessionStatus.IDLE,
                        updated_at=now - 9)]
    registry = SessionRegistry()
    window = MainWindow(registry, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    registry.apply(sessions)
    assert window.listed() == {"Ready": ["main", "wt", "notes"]}
    head = window.session_list.topLevelItem(0)
    assert head.child(0).text(0) == "⎇ shop" and head.child(0).childCount() == 2
    assert "shop ⎇ feat-x" in head.child(0).child(1).text(0)
    assert head.child(1).data(0, 256) == "notes"
