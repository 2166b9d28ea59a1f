"""One tab per opened session: conversation, status and reason, quick answers, answer box."""

from __future__ import annotations

import html
import re
import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import (
    QKeyEvent,
    QKeySequence,
    QPalette,
    QShortcut,
    QShowEvent,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextDocumentFragment,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from deck_tray.core.decisions import decidable_for
from deck_tray.core.model import (
    AgentKind,
    DeliveryReport,
    DeliveryState,
    Message,
    MessageRole,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.status import age_text
from deck_tray.ui.find_bar import FindBar, utf16_positions
from deck_tray.ui.persist import WindowMemory

_BANNER_COLORS = {
    SessionStatus.WAITING_PERMISSION: ("#fff4e5", "#8a4b00", "#f0a030"),
    SessionStatus.WAITING_QUESTION: ("#fff4e5", "#8a4b00", "#f0a030"),
    SessionStatus.BUSY: ("#e8f0fe", "#1a4fa3", "#6b9bef"),
    SessionStatus.IDLE: ("#e9f7ef", "#1e6b3a", "#6cc08b"),
    SessionStatus.ENDED: ("#f0f0f0", "#555555", "#bbbbbb"),
    SessionStatus.UNKNOWN: ("#f0f0f0", "#555555", "#bbbbbb"),
}
_BANNER_COLORS_DARK = {
    SessionStatus.WAITING_PERMISSION: ("#3d2a0f", "#ffc46b", "#b8741a"),
    SessionStatus.WAITING_QUESTION: ("#3d2a0f", "#ffc46b", "#b8741a"),
    SessionStatus.BUSY: ("#172a4d", "#9cc3ff", "#3d6fd6"),
    SessionStatus.IDLE: ("#15331f", "#8fdcab", "#2f8a52"),
    SessionStatus.ENDED: ("#2f3136", "#b0b3b8", "#55585e"),
    SessionStatus.UNKNOWN: ("#2f3136", "#b0b3b8", "#55585e"),
}
_DELIVERY_TEXT = {
    DeliveryState.SENT: "Typed into the pane…",
    DeliveryState.SUBMITTED: "Submitted — waiting for the agent to take it",
    DeliveryState.ACCEPTED: "Delivered — the agent took it",
    DeliveryState.SUPERSEDED: "Not sent",
    DeliveryState.REFUSED: "Not sent",
    DeliveryState.UNKNOWN: "Delivery unknown",
}
MAX_RENDERED = 200
#: A long conversation is built in pieces of about this many characters, newest first, one
#: piece per event-loop turn, so opening a 100 MB transcript never holds the GUI for long.
CHUNK_CHARS = 12_000
#: The newest piece, shown at once, is smaller: it is all the first paint has to lay out.
FIRST_CHUNK_CHARS = 4_000


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _clock(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts)) if ts else ""


def _conversation_parts(messages: tuple[Message, ...], limit: int = MAX_RENDERED) -> list[tuple[int, str]]:
    """(size, markdown) of each item :func:`render_conversation` joins, oldest first."""
    shown = messages[-limit:] if limit > 0 else ()
    parts: list[tuple[int, str]] = []
    if len(messages) > len(shown):
        parts.append((0, f"*… {len(messages) - len(shown)} earlier messages are not shown*"))
    for m in shown:
        text = m.text if len(m.text) < 8000 else m.text[:8000] + " …"
        when = _clock(m.timestamp)
        if m.role is MessageRole.USER:
            md = f"**You**{' · ' + when if when else ''}\n\n{_quote(text)}"
        elif m.role is MessageRole.ASSISTANT:
            md = f"**Agent**{' · ' + when if when else ''}\n\n{text}"
        elif m.role is MessageRole.TOOL:
            mark = {"pending": "○", "done": "✓", "error": "✗"}.get(m.state, "•")
            one = " ".join(text.split())
            one = (one if len(one) <= 160 else one[:159] + "…").replace("`", "'")
            md = f"{mark} `{one}`"
        else:
            md = f"*{text.strip()}*"
        parts.append((len(md), md))
    if not shown:
        parts.append((0, "*No conversation yet — it appears after the first prompt.*"))
    return parts


def render_conversation(messages: tuple[Message, ...]) -> str:
    """Markdown of the newest :data:`MAX_RENDERED` messages, oldest first.

    Prompts are quoted under **You**, the agent's text is rendered as the markdown it is,
    tool calls take one line with their state (○ running or asked, ✓ done, ✗ failed or
    rejected), notices are in italics.
    """
    return "\n\n".join(md for _n, md in _conversation_parts(messages))


def conversation_chunks(messages: tuple[Message, ...], chunk_chars: int = CHUNK_CHARS,
                        first_chars: int = FIRST_CHUNK_CHARS, limit: int = MAX_RENDERED) -> list[str]:
    """:func:`render_conversation` cut between messages into pieces of about ``chunk_chars``
    (the first ``first_chars``), **newest first** (joined oldest first with blank lines they
    are the same markdown)."""
    chunks: list[str] = []
    group: list[str] = []
    size = 0
    for n, md in reversed(_conversation_parts(messages, limit)):
        if group and size + n > (chunk_chars if chunks else first_chars):
            chunks.append("\n\n".join(reversed(group)))
            group, size = [], 0
        group.append(md)
        size += n
    chunks.append("\n\n".join(reversed(group)))
    return chunks


class SessionTab(QWidget):
    """The view of one session.

    Ctrl+F opens a find bar over the conversation (:class:`~deck_tray.ui.find_bar.FindBar`);
    :meth:`reveal` shows a search hit in it. A *past* session (:meth:`set_past`: one the
    registry does not list, opened from the history) is read-only, with "Resume in terminal".

    Signals:
        reply_requested(str, Reply): the user asked to send ``Reply`` to session id ``str``.
        action_requested(str, str, str): session id, action (``"open_terminal"``,
            ``"handoff"``, ``"resume"`` or ``"show_terminal"``) and its argument (the hand-off goal, may be empty).
        revealed(bool): a :meth:`reveal` finished; True when the hit's own text was found
            (False: the nearest match of the term is shown, or none).
    """

    reply_requested = Signal(str, object)
    action_requested = Signal(str, str, str)
    revealed = Signal(bool)

    def __init__(self, session: Session, memory: WindowMemory | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.memory = memory
        self._recall: list[str] = []
        self._recall_pos = 0
        self._recall_draft = ""
        self._rendered_key: tuple[int, object] | None = None
        self._busy_sending = False
        #: A held PermissionRequest hook takes Allow / Always allow / Deny, or a question's option
        #: and free text (see set_hook_held).
        self.hook_held = False
        self._limit = MAX_RENDERED  # newest messages rendered ("show them" raises it)
        self._reveal: tuple[str, str] | None = None  # (term, context) waiting for the view
        self.past = False

        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.where = QLabel()
        self.where.setTextFormat(Qt.TextFormat.PlainText)
        self.where.setWordWrap(True)  # a long folder must not widen the window
        self.where.setStyleSheet("color: palette(mid);")
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # opencode sessions are driven through their server: stop, attach, hand off.
        self.actions_row = QWidget()
        ar = QHBoxLayout(self.actions_row)
        ar.setContentsMargins(0, 0, 0, 0)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the running turn (opencode abort)")
        self.stop_button.clicked.connect(lambda: self._emit(Reply(ReplyKind.STOP)))
        self.terminal_button = QPushButton("Open in terminal")
        self.terminal_button.setToolTip("Open this session in a new tmux pane next to yours (opencode attach)")
        self.terminal_button.clicked.connect(
            lambda: self.action_requested.emit(self.session.id, "open_terminal", ""))
        self.handoff_button = QPushButton("Hand off…")
        self.handoff_button.setToolTip(
            "Start a fresh session that continues this one from a short summary (goal, todos, files)")
        self.handoff_button.clicked.connect(self._ask_handoff)
        self.resume_button = QPushButton("Resume in terminal")
        self.resume_button.clicked.connect(
            lambda: self.action_requested.emit(self.session.id, "resume", ""))
        # Agents in a plain terminal window (nothing deck-tray can type into): bring that window up.
        self.show_terminal_button = QPushButton("Show terminal")
        self.show_terminal_button.setToolTip(
            "Raise the terminal window this agent runs in, to answer there (X11; Wayland does not allow it)")
        self.show_terminal_button.clicked.connect(
            lambda: self.action_requested.emit(self.session.id, "show_terminal", ""))
        for b in (self.stop_button, self.terminal_button, self.handoff_button, self.resume_button,
                  self.show_terminal_button):
            ar.addWidget(b)
        ar.addStretch(1)
        self.past_note = QLabel(
            "A past session, read from its transcript. Resume it to continue the conversation.")
        self.past_note.setWordWrap(True)
        self.past_note.setStyleSheet("color: palette(mid);")
        self.past_note.hide()

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)

        self.request_box = QFrame()
        self.request_box.setObjectName("request")
        rb = QVBoxLayout(self.request_box)
        rb.setContentsMargins(10, 8, 10, 8)
        self.request_text = QLabel()
        self.request_text.setWordWrap(True)
        self.request_text.setTextFormat(Qt.TextFormat.RichText)
        self.request_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rb.addWidget(self.request_text)
        self.buttons_row = QHBoxLayout()
        rb.addLayout(self.buttons_row)
        self.request_box.setStyleSheet(
            "#request { border: 1px solid #f0a030; border-radius: 6px; background: rgba(240,160,48,0.08); }"
        )

        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)
        self.view.document().setUndoRedoEnabled(False)  # read-only: no undo stack of prepended pieces
        self._older: list[str] = []  # conversation pieces still to prepend, newest first
        self._older_timer = QTimer(self)
        self._older_timer.setSingleShot(True)
        self._older_timer.setInterval(0)
        self._older_timer.timeout.connect(self._prepend_older)
        self.find_bar = FindBar(self.view, self)
        self.find_bar.load_all_requested.connect(self.show_all_messages)
        find = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self.open_find)

        self.answer = QPlainTextEdit()
        self.answer.setPlaceholderText("Type a prompt for the agent… (Ctrl+Enter sends)")
        self.answer.setMaximumHeight(90)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._send_text)
        QShortcut(QKeySequence("Ctrl+Return"), self.answer, self._send_text)
        QShortcut(QKeySequence("Ctrl+Enter"), self.answer, self._send_text)
        self.answer.installEventFilter(self)
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(300)
        self._draft_timer.timeout.connect(self.save_draft)
        if memory is not None:
            self.answer.setPlainText(memory.draft(session.id))
        self.answer.textChanged.connect(self._draft_timer.start)
        self.delivery = QLabel()
        self.delivery.setWordWrap(True)
        self.delivery.setTextFormat(Qt.TextFormat.PlainText)

        answer_row = QHBoxLayout()
        answer_row.addWidget(self.answer, 1)
        answer_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.where)
        layout.addWidget(self.actions_row)
        layout.addWidget(self.banner)
        layout.addWidget(self.request_box)
        layout.addWidget(self.past_note)
        layout.addWidget(self.find_bar)
        layout.addWidget(self.view, 1)
        self.answer_row = QWidget()
        self.answer_row.setLayout(answer_row)
        answer_row.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.answer_row)
        layout.addWidget(self.delivery)
        self.update_session(session)

    # -- updates -------------------------------------------------------------------
    def set_hook_held(self, held: bool) -> None:
        """The agent's ``PermissionRequest`` hook waits for an answer from deck-tray (issue #13):
        Allow / Always allow / Deny, or a question's options and a typed answer, work even where
        no pane is known."""
        if held != self.hook_held:
            self.hook_held = held
            self.update_session(self.session)

    def update_session(self, session: Session) -> None:
        """Show a newer snapshot of the session."""
        self.session = session
        self.title.setText(session.display_title)
        where = [session.agent.label]
        if session.cwd:
            where.append(session.cwd)
        if self.past:
            where.append("past session" + (f" of server {session.server}" if session.server else ""))
        elif session.server:
            where.append(f"server {session.server}")
        elif self._through_hook(session):
            what = "question" if session.status is SessionStatus.WAITING_QUESTION else "permission"
            where.append((session.pane.location + "; " if session.pane else "")
                         + f"the {what} is answered through its hook")
        elif session.pane is not None:
            where.append(session.pane.location)
        else:
            where.append("not in a terminal deck-tray can type into")
        self.where.setText("  ·  ".join(where))
        self.where.setToolTip(f"session {session.id}")
        bg, fg, border = (_BANNER_COLORS_DARK if self._dark() else _BANNER_COLORS)[session.status]
        self.banner.setStyleSheet(
            f"#banner {{ background: {bg}; color: {fg}; border: 1px solid {border}; "
            "border-radius: 6px; padding: 6px 10px; }"
        )
        self.banner.setText(
            f"<b>{html.escape(session.status.label)}</b> — {html.escape(session.reason.split(' — ')[0])}"
            f"<br><span style='font-size:small'>{html.escape(self._provenance(session))}</span>"
        )
        self._update_request(session)
        key = (len(session.messages), session.messages[-1] if session.messages else None)
        if key != self._rendered_key:
            self._rendered_key = key
            self._render()
        can_type = self._reachable(session) or (self._through_hook(session) and session.pending is not None
                                                and ReplyKind.PROMPT in decidable_for(session.pending.kind))
        self.answer.setReadOnly(False)
        self.send_button.setEnabled(can_type and not self._busy_sending)
        if session.status is SessionStatus.ENDED:
            self.send_button.setToolTip("The agent is no longer running")
        elif can_type and self._through_hook(session) and not session.server:
            self.send_button.setToolTip("Send as your answer to the question, through the agent's hook (Ctrl+Enter)")
        elif session.server and not can_type:
            self.send_button.setToolTip("The opencode server is not reachable; your text is kept")
        elif session.server:
            self.send_button.setToolTip("Send through the opencode server (Ctrl+Enter)")
        elif session.pane is None:
            self.send_button.setToolTip("No pane or terminal window deck-tray can type into is known for this session")
        else:
            self.send_button.setToolTip("Type this into the agent's pane (Ctrl+Enter)")
        resumable = self._resumable(session)
        self.resume_button.setVisible(resumable)
        self.resume_button.setToolTip(
            f"Continue this session in a new tmux pane ({self._resume_command(session)})" if resumable else "")
        outside = (not session.server and not self.past and session.pane is None and session.pid is not None
                   and session.status is not SessionStatus.ENDED)
        self.show_terminal_button.setVisible(outside)
        self.actions_row.setVisible(bool(session.server) or resumable or outside)
        self.terminal_button.setVisible(bool(session.server))
        for b in (self.stop_button, self.handoff_button):
            b.setVisible(bool(session.server) and not self.past)
        if session.server:
            self.stop_button.setEnabled(can_type and session.status in (
                SessionStatus.BUSY, SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION))
            self.handoff_button.setEnabled(can_type)
            self.terminal_button.setEnabled(session.status is not SessionStatus.ENDED)

    def _render(self) -> None:
        """Rebuild the view: the newest piece now, older ones prepended one per event-loop turn."""
        chunks = conversation_chunks(self.session.messages, limit=self._limit)
        self.view.setMarkdown(chunks[0])
        self._older = chunks[1:]
        if self._older:
            self._older_timer.start()
        self.find_bar.loading = bool(self._older)
        self.find_bar.not_loaded = max(0, len(self.session.messages) - self._limit)
        self.find_bar.refresh_soon()
        if self._reveal is not None and not self._older:
            QTimer.singleShot(0, self._finish_reveal)
        else:
            # Newest at the bottom; the layout finishes after this call, so scroll once it has.
            QTimer.singleShot(0, self.scroll_to_end)

    @staticmethod
    def _resumable(session: Session) -> bool:
        """Claude Code and Codex sessions with no agent process running them can be resumed."""
        if session.agent not in (AgentKind.CLAUDE_CODE, AgentKind.CODEX) or session.server:
            return False
        return session.pid is None or session.status is SessionStatus.ENDED

    @staticmethod
    def _resume_command(session: Session) -> str:
        return (f"claude --resume {session.id}" if session.agent is AgentKind.CLAUDE_CODE
                else f"codex resume {session.id}")

    def set_past(self, past: bool) -> None:
        """A past session (not listed by the registry) is read-only: no answer box, a note
        saying so, and "Resume in terminal". A registry snapshot for it makes it live again."""
        self.past = past
        self.past_note.setVisible(past)
        self.answer_row.setVisible(not past)
        self.update_session(self.session)

    # -- find ----------------------------------------------------------------------
    def open_find(self) -> None:
        """Ctrl+F: open the find bar, with the selected text of the conversation if any."""
        picked = self.view.textCursor().selectedText().strip()
        self.find_bar.open(picked if picked and "\u2029" not in picked and len(picked) < 200 else None)

    def show_all_messages(self) -> None:
        """Render the whole conversation, not only the newest :data:`MAX_RENDERED` messages."""
        if len(self.session.messages) > self._limit:
            self._limit = len(self.session.messages)
            self._render()

    def reveal(self, term: str, context: str = "") -> None:
        """Show a search hit: the find bar holds ``term`` and its current match is the one in
        ``context`` (text around the hit, e.g. a search snippet), selected and scrolled into
        view. Older pieces still loading, or messages not rendered yet, are waited for /
        rendered first. Emits :attr:`revealed` when done."""
        self._reveal = (term, context)
        self.find_bar.open(term)
        if not self._older:
            self._finish_reveal()

    def _finish_reveal(self) -> None:
        if self._reveal is None:
            return
        term, context = self._reveal
        self.find_bar.open(term)
        raw = self.view.document().toRawText()
        words = re.findall(r"\w+", context)[:16]
        found = None
        if words:
            pattern = re.compile(r"\W+".join(re.escape(w) for w in words), re.IGNORECASE)
            found = pattern.search(raw)
            if found is None and len(self.session.messages) > self._limit:
                self.show_all_messages()  # the hit may be older than what is rendered: render it all
                return
            if found is None and len(words) > 4:  # the snippet may cross a message boundary
                mid = len(words) // 2
                for part in (words[:mid], words[mid:]):
                    found = re.search(r"\W+".join(re.escape(w) for w in part), raw, re.IGNORECASE)
                    if found is not None and term.casefold() in found.group(0).casefold():
                        break
                    found = None
        if found is None:
            self._reveal = None
            self.find_bar.remark = "the hit is not in the messages this tab holds (it may be older)"
            self.find_bar.refresh()
            self.revealed.emit(False)
            return
        inner = found.group(0).casefold().find(term.casefold())
        start = found.start() + max(inner, 0)

        def done() -> None:
            self._reveal = None
            self.revealed.emit(True)

        self.find_bar.select_near(utf16_positions(raw)(start), done)

    def _through_hook(self, session: Session) -> bool:
        """A held hook answers this session's request (it waits, and the hook is held)."""
        return self.hook_held and session.status.is_waiting and not self.past

    @staticmethod
    def _reachable(session: Session) -> bool:
        """Whether an answer can be delivered at all (pane known, or opencode server connected)."""
        if session.status is SessionStatus.ENDED:
            return False
        if session.server:
            return session.status is not SessionStatus.UNKNOWN
        return session.pane is not None

    def _ask_handoff(self) -> None:
        dlg = QInputDialog(self)
        dlg.setWindowTitle("Hand off")
        dlg.setLabelText("A new session continues from a short summary of this one.\n"
                         "Goal for the new session (optional):")
        dlg.setOkButtonText("Hand off")
        dlg.textValueSelected.connect(lambda goal: self.action_requested.emit(self.session.id, "handoff", goal))
        dlg.open()

    def scroll_to_end(self) -> None:
        """Show the newest message."""
        bar = self.view.verticalScrollBar()
        bar.setValue(bar.maximum())

    def heightForWidth(self, width: int) -> int:
        """The tab stack asks every tab, shown or not; a hidden one needs no answer (its word-
        wrapped labels would be laid out again on every layout pass, for every open tab)."""
        if self.isHidden():
            return -1
        return super().heightForWidth(width)

    def showEvent(self, event: QShowEvent) -> None:
        """A tab shown again finishes building its conversation."""
        super().showEvent(event)
        if self._older:
            self._older_timer.start()

    def _prepend_older(self) -> None:
        """Put the next older piece of the conversation on top, keeping what is in view.

        Only while the tab is visible (a hidden tab resumes when shown): so one tab at a
        time builds, and many open tabs never add up to a long stall.
        """
        if not self._older or not self.isVisible():
            return
        doc = self.view.document()
        piece = QTextDocument()
        piece.setMarkdown(self._older.pop(0))
        # Ends in an empty block with the format of the current first block: inserted at the
        # start, that block merges with the first one, which so keeps its own format.
        end = QTextCursor(piece)
        end.movePosition(QTextCursor.MoveOperation.End)
        end.insertBlock(doc.begin().blockFormat(), QTextCharFormat())
        bar = self.view.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        QTextCursor(doc).insertFragment(QTextDocumentFragment(piece))
        doc.documentLayout().documentSize()  # lay the new piece out so the range is current
        bar.setValue(bar.maximum() - from_bottom)
        self.find_bar.loading = bool(self._older)
        if self._older:
            self._older_timer.start()
            self.find_bar.refresh_soon()
        elif self._reveal is not None:
            self._finish_reveal()
        else:
            self.find_bar.refresh()

    def _dark(self) -> bool:
        return self.palette().color(QPalette.ColorRole.Base).lightness() < 128

    @staticmethod
    def _provenance(session: Session) -> str:
        parts = session.reason.split(" — ", 1)
        src = parts[1] if len(parts) > 1 else ""
        if session.updated_at:
            src = f"{src} · last activity {age_text(time.time() - session.updated_at)}".strip(" ·")
        return src

    def _update_request(self, session: Session) -> None:
        while self.buttons_row.count():
            item = self.buttons_row.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.hide()  # out of sight now: deleteLater waits for the event loop (a stale row was seen)
                w.deleteLater()
        p = session.pending
        if p is None or not session.status.is_waiting:
            self.request_box.hide()
            return
        self.request_box.show()
        asker = f"<br><i>Asked by sub-agent “{html.escape(p.asker)}”</i>" if p.asker else ""
        if not self._reachable(session) and not self._through_hook(session) and not session.server:
            # Nothing can deliver an answer (no pane, no held hook): say so, and what to do.
            there = " (Show terminal)" if session.pid is not None else ""
            hint = (f"Codex asks in its terminal, where deck-tray cannot type. Answer there{there}, "
                    "or turn on “Let Codex wait for deck-tray” in Settings to answer Codex from here."
                    if session.agent is AgentKind.CODEX else
                    "This agent runs in a terminal deck-tray cannot type into, and its hook is not waiting "
                    f"for deck-tray: answer in its terminal{there}. With deck-tray's hooks installed "
                    "(deck-tray hooks install), permissions are answered from here.")
            asker += f"<br><span style='font-size:small'><i>{html.escape(hint)}</i></span>"
        if p.kind is RequestKind.QUESTION:
            self.request_text.setText(f"<b>Question</b><br>{html.escape(p.question or p.summary)}{asker}")
            for label in p.options:
                if label.lower().startswith(("type something", "chat about", "none of the above")):
                    continue
                self._add_button(label, Reply(ReplyKind.OPTION, label), primary=False)
            if session.server:
                self._add_button("Dismiss", Reply(ReplyKind.DENY), primary=False,
                                 tip="Dismiss the question; the agent stops this turn")
            self.answer.setPlaceholderText("Or type your own answer… (Ctrl+Enter sends)")
        else:
            tool = html.escape(p.tool or "The agent")
            self.request_text.setText(
                f"<b>{tool}</b> wants to run:<br><code>{html.escape(p.summary)}</code>{asker}"
            )
            self._add_button("Allow", Reply(ReplyKind.ALLOW), primary=True,
                             tip=p.options[0] if p.options else "")
            if len(p.options) >= 3:
                self._add_button("Always allow", Reply(ReplyKind.ALLOW_ALWAYS), primary=False,
                                 tip=p.options[1])
            self._add_button("Deny", Reply(ReplyKind.DENY, ""), primary=False,
                             tip="Reject. Text in the answer box goes to the agent as your reason."
                             if session.server or self.hook_held else
                             "Reject (Esc). Text in the answer box is sent as the next prompt.")
        self.buttons_row.addStretch(1)

    def _add_button(self, text: str, reply: Reply, *, primary: bool, tip: str = "") -> None:
        b = QPushButton(text)
        if tip:
            b.setToolTip(tip)
        if primary:
            b.setStyleSheet("font-weight: bold;")
        pending = self.session.pending
        through_hook = self._through_hook(self.session) and pending is not None \
            and reply.kind in decidable_for(pending.kind)
        b.setEnabled(not self._busy_sending and (through_hook or self._reachable(self.session)))

        def clicked() -> None:
            r = reply
            if r.kind is ReplyKind.DENY and self.session.pending is not None \
                    and self.session.pending.kind is RequestKind.PERMISSION:
                r = Reply(ReplyKind.DENY, self.answer.toPlainText())
            self._emit(r)

        b.clicked.connect(clicked)
        self.buttons_row.addWidget(b)

    # -- drafts and recall ---------------------------------------------------------
    def save_draft(self) -> None:
        """Persist the answer box now (also done 300 ms after each change)."""
        self._draft_timer.stop()
        if self.memory is not None:
            self.memory.save_draft(self.session.id, self.answer.toPlainText())

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Up on the first line recalls earlier answers; Down goes forward again."""
        if obj is self.answer and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            cursor = self.answer.textCursor()
            if key == Qt.Key.Key_Up and cursor.blockNumber() == 0 and self.memory is not None:
                if self._recall_pos == 0:
                    self._recall = self.memory.history(self.session.id)
                    self._recall_draft = self.answer.toPlainText()
                if self._recall_pos < len(self._recall):
                    self._recall_pos += 1
                    self.answer.setPlainText(self._recall[-self._recall_pos])
                    return True
            elif key == Qt.Key.Key_Down and self._recall_pos > 0 and \
                    cursor.blockNumber() == self.answer.document().blockCount() - 1:
                self._recall_pos -= 1
                self.answer.setPlainText(self._recall[-self._recall_pos] if self._recall_pos else self._recall_draft)
                return True
        return super().eventFilter(obj, event)

    # -- sending -------------------------------------------------------------------
    def _send_text(self) -> None:
        text = self.answer.toPlainText()
        if not text.strip() or not self.send_button.isEnabled():
            return
        self._emit(Reply(ReplyKind.PROMPT, text))

    def _emit(self, reply: Reply) -> None:
        self._busy_sending = True
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        for i in range(self.buttons_row.count()):
            item = self.buttons_row.itemAt(i)
            w = item.widget() if item is not None else None
            if w is not None:
                w.setEnabled(False)
        self.delivery.setText(f"Sending {reply.describe()}…")
        self.reply_requested.emit(self.session.id, reply)

    def show_action(self, report: DeliveryReport) -> None:
        """Show how an action (e.g. Resume in terminal) went: its detail, green when it
        worked, red when not; the answer box is left alone."""
        ok = report.state is DeliveryState.ACCEPTED
        self.delivery.setStyleSheet("color: #1e6b3a;" if ok else "color: #b42318;")
        self.delivery.setText(report.detail if ok else f"Could not do it: {report.detail}")

    def show_delivery(self, report: DeliveryReport) -> None:
        """Show how the last answer went; on success the answer box is cleared."""
        self._busy_sending = False
        text = _DELIVERY_TEXT[report.state]
        if report.state is DeliveryState.REFUSED:
            text = f"Not sent: {report.detail}. Your text is kept."
            self.delivery.setStyleSheet("color: #b42318;")
        elif report.state is DeliveryState.SUPERSEDED:
            text = f"Not sent: {report.detail}."
            self.delivery.setStyleSheet("color: #b54708;")
        elif report.state is DeliveryState.UNKNOWN:
            text = f"Delivery unknown: {report.detail}"
            self.delivery.setStyleSheet("color: #b54708;")
        else:
            self.delivery.setStyleSheet("color: #1e6b3a;")
            if report.text and self.memory is not None:
                self.memory.add_history(self.session.id, report.text)
            if report.text and report.text == self.answer.toPlainText():
                self.answer.clear()
                self.save_draft()
            self._recall_pos = 0
        self.delivery.setText(text)
        self.update_session(self.session)

