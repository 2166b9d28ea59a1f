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
