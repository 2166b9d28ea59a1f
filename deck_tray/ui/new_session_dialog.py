"""The "New session" dialog (Ctrl+N in the window, "New session…" in the tray menu; issue #15).

The user picks an agent, a folder (recent folders from the history index, or a folder
picker), optionally a git worktree branch and a first prompt, and presses Start. The app
starts it (:meth:`deck_tray.services.session_actions.SessionActions.new_session`) and reports
back with :meth:`NewSessionDialog.show_result`: on success the dialog closes and the new tab
opens; on a refusal the reason is shown and everything typed stays.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from deck_tray.core.launch import folder_error
from deck_tray.core.model import AgentKind
from deck_tray.core.worktree import branch_problem, sanitized_branch
from deck_tray.ui.icons import app_icon

#: The agents the dialog offers, in its order.
AGENTS = (AgentKind.CLAUDE_CODE, AgentKind.CODEX, AgentKind.OPENCODE)


@dataclass(frozen=True)
class NewSessionRequest:
    """What the dialog asks for.

    Attributes:
        agent: which agent.
        folder: the folder (absolute, ``~`` expanded).
        worktree: a branch to make a git worktree for (``""``: none).
        prompt: the first prompt (``""``: none).
        trust: answer the agent's folder-trust question with yes.
    """

    agent: AgentKind
    folder: str
    worktree: str = ""
    prompt: str = ""
    trust: bool = False


class NewSessionDialog(QDialog):
    """Start an agent session (non-modal; one per app).

    Args:
        folders: returns the recent folders, newest first (called each time the dialog opens, on
            the GUI thread: it must not block; see :meth:`set_folders` for a later update).
        worktree_root: returns the "Folder for new worktrees" setting (``""``: beside the
            repository), for the hint under the branch field.
        parent: the main window.

    Signals:
        start_requested(NewSessionRequest): the user pressed Start with valid input.

    Attributes:
        state: the named state shown: ``"ready"``, ``"invalid"``, ``"starting"``, ``"refused"``.
    """

    start_requested = Signal(object)

    def __init__(self, folders: Callable[[], list[str]], worktree_root: Callable[[], str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New session — deck-tray")
        self.setWindowIcon(app_icon())
        self.setModal(False)
        self.resize(620, 420)
        self._folders = folders
        self._worktree_root = worktree_root or (lambda: "")
        self.state = "ready"

        self.agent = QComboBox()
        for kind in AGENTS:
            self.agent.addItem(kind.label, kind)
        self.folder = QComboBox()
        self.folder.setEditable(True)
        self.folder.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.folder.setMinimumContentsLength(40)
        line = self.folder.lineEdit()
        assert line is not None
        line.setPlaceholderText("a folder, e.g. ~/src/project")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.browse)
        self.worktree = QLineEdit()
        self.worktree.setPlaceholderText("optional: a branch to start in its own git worktree")
        self.worktree_hint = QLabel()
        self.worktree_hint.setWordWrap(True)
        self.worktree_hint.setStyleSheet("color: palette(mid);")
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("optional: the first prompt, typed as soon as the agent is ready")
        self.prompt.setTabChangesFocus(True)
        self.trust = QCheckBox("If the agent asks whether I trust this folder, answer yes")

        form = QFormLayout()
        form.addRow("&Agent", self.agent)
        folder_label = QLabel("&Folder")
        folder_label.setBuddy(self.folder)
        form.addRow(folder_label, folder_row)
        form.addRow("&Worktree", self.worktree)
        form.addRow("", self.worktree_hint)
        form.addRow("First &prompt", self.prompt)
        form.addRow("", self.trust)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        self.start_button.setDefault(True)
        self.buttons.accepted.connect(self._start)
        self.buttons.rejected.connect(self.reject)
        QShortcut(QKeySequence("Ctrl+Return"), self, self._start)

        layout = QVBoxLayout(self)
        where = QLabel("The agent starts in a new tmux window: in the tmux session you are attached to, "
                       "else in the detached session “deck-tray”. Its tab opens here.")
        where.setWordWrap(True)
        layout.addWidget(where)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self.folder.currentTextChanged.connect(self._validate)
        self.worktree.textChanged.connect(self._validate)

    # -- showing ------------------------------------------------------------------------

    def present(self) -> None:
        """Show the dialog with the recent folders refreshed (what was typed is kept)."""
        self.set_folders(self._folders())
        self.show()
        self.prompt.setFocus() if self.folder.currentText() else self.folder.setFocus()
        self.raise_()
        self.activateWindow()

    def set_folders(self, folders: list[str]) -> None:
        """Offer ``folders`` (newest first) in the folder list; what was typed is kept, an empty
        field gets the newest."""
        typed = self.folder.currentText()
        self.folder.blockSignals(True)
        self.folder.clear()
        for path in folders:
            self.folder.addItem(path)
        self.folder.setEditText(typed or (self.folder.itemText(0) if self.folder.count() else ""))
        self.folder.blockSignals(False)
        if self.state != "starting":
            self._validate()

    def request(self) -> NewSessionRequest:
        """What the fields say now."""
        kind = self.agent.currentData()
        return NewSessionRequest(
            agent=kind if isinstance(kind, AgentKind) else AgentKind.CLAUDE_CODE,
            folder=os.path.abspath(os.path.expanduser(self.folder.currentText().strip()))
            if self.folder.currentText().strip() else "",
            worktree=self.worktree.text().strip(),
            prompt=self.prompt.toPlainText().strip("\n"),
            trust=self.trust.isChecked(),
        )

    def _set_state(self, state: str, text: str) -> None:
        self.state = state
        self.status.setText(text)
        dark = self.palette().window().color().lightness() < 128
        colour = ("#ff8a80" if dark else "#b00020") if state == "refused" else ""
        self.status.setStyleSheet(f"color: {colour};" if colour else "")
        busy = state == "starting"
        self.start_button.setEnabled(state not in ("starting", "invalid"))
        for w in (self.agent, self.folder, self.browse, self.worktree, self.prompt, self.trust):
            w.setEnabled(not busy)

    def _validate(self) -> bool:
        if self.state == "starting":
            return False
        req = self.request()
        hint = ""
        if req.worktree and branch_problem(req.worktree) is None:
            leaf = sanitized_branch(req.worktree)
            root = self._worktree_root()
            hint = (f"A new worktree goes to {root}/<repository>/{leaf}" if root else
                    f"A new worktree goes beside the repository: <repository>.worktrees/{leaf}") + \
                " (the branch is made from the current commit unless it exists)."
        self.worktree_hint.setText(hint)
        self.worktree_hint.setVisible(bool(hint))
        why = folder_error(req.folder) if req.folder else "choose a folder"
        if why is None and req.worktree:
            why = branch_problem(req.worktree)
        if why is not None:
            self._set_state("invalid", why[0].upper() + why[1:] + ".")
            return False
        self._set_state("ready", "")
        return True

    def _browse(self) -> None:
        start = self.request().folder or os.path.expanduser("~")
        chosen = QFileDialog.getExistingDirectory(self, "Folder for the new session", start)
        if chosen:
            self.folder.setEditText(chosen)

    def _start(self) -> None:
        if self.state == "starting" or not self._validate():
            return
        req = self.request()
        self._set_state("starting", f"Starting {req.agent.label} in {req.folder}…")
        self.start_requested.emit(req)

    # -- the app's answer ---------------------------------------------------------------

    def show_result(self, ok: bool, detail: str) -> None:
        """The start finished: close on success (the fields are cleared for next time); on a
        refusal show ``detail`` and keep every field as typed."""
        if ok:
            self._set_state("ready", "")
            self.prompt.clear()
            self.worktree.clear()
            self.accept()
            return
        self._set_state("refused", detail)
        self.start_button.setEnabled(True)
