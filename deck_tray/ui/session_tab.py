"""One tab per opened session: conversation, status and reason, quick answers, answer box."""

from __future__ import annotations

import concurrent.futures
import html
import itertools
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QKeySequence,
    QPalette,
    QResizeEvent,
    QShortcut,
    QShowEvent,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextDocumentFragment,
    QWheelEvent,
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

from deck_tray.core import past
from deck_tray.core.agents import ADAPTERS
from deck_tray.core.decisions import decidable_for
from deck_tray.core.model import (
    ActionReport,
    AgentKind,
    DeliveryReport,
    DeliveryState,
    Message,
    MessageRole,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.core.records import MAX_MESSAGES
from deck_tray.core.reply import Reply, ReplyKind, takes_free_text
from deck_tray.core.scan import TAIL_BYTES
from deck_tray.core.status import age_text
from deck_tray.ui.find_bar import _RELAYS as _FIND_RELAYS
from deck_tray.ui.find_bar import FindBar, FindRelay, utf16_positions
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
#: Scrolling to the top of a tab renders this many older messages (a page).
PAGE_MESSAGES = 200
#: The view holds about this much rendered markdown at most (characters). Inserting a piece at
#: the top makes Qt move every block below it (about 10 ms per million characters), so a
#: conversation paged far up drops its newest pieces (they come back scrolling down): every
#: insertion stays well under the 50 ms a stall may take (bench/bench_paging.py).
WINDOW_CHARS = 500_000
NO_CONVERSATION = "No conversation yet — it appears after the first prompt."
#: The answer box's placeholder when no question is pending.
PROMPT_PLACEHOLDER = "Type a prompt for the agent… (Ctrl+Enter sends)"
#: Label prefixes (casefolded) of the question rows that are not answers but the way to type one
#: (Claude Code "Type something." / "Chat about this", Codex "None of the above", and each
#: adapter's free-text row): never shown as option buttons; the answer box takes that answer.
FREE_TEXT_ROWS = ("type something", "chat about", "none of the above",
                  *(a.free_text_label.casefold() for a in ADAPTERS if a.free_text_label))

log = logging.getLogger(__name__)


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _clock(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts)) if ts else ""


def _one_line(text: str, width: int = 160) -> str:
    """``text`` on one line, at most ``width`` characters (a collapsed item)."""
    one = " ".join(text.split())
    return one if len(one) <= width else one[:width - 1] + "…"


def _md_escape(text: str) -> str:
    """``text`` with the characters markdown would read as emphasis or code escaped."""
    return re.sub(r"([\\`*_\[\]<>#])", r"\\\1", text)


def _message_md(m: Message) -> str:
    """The markdown of one conversation item (see :func:`render_conversation`)."""
    text = m.text if len(m.text) < 8000 else m.text[:8000] + " …"
    when = _clock(m.timestamp)
    if m.role is MessageRole.USER:
        return f"**You**{' · ' + when if when else ''}\n\n{_quote(text)}"
    if m.role is MessageRole.ASSISTANT:
        return f"**Agent**{' · ' + when if when else ''}\n\n{text}"
    if m.role is MessageRole.TOOL:
        mark = {"pending": "○", "done": "✓", "error": "✗"}.get(m.state, "•")
        return f"{mark} `{_one_line(text).replace('`', chr(39))}`"
    if m.role is MessageRole.COMMAND:
        return f"**You ran**{' · ' + when if when else ''} `{_one_line(text).replace('`', chr(39))}`"
    if m.role is MessageRole.HARNESS:
        return f"*{_md_escape(m.state.capitalize() or 'Added by the agent')}: {_md_escape(_one_line(text))}*"
    if m.role is MessageRole.COMPACTION:
        return f"---\n\n*Conversation compacted — the agent goes on from its summary: {_md_escape(_one_line(text))}*"
    if m.role is MessageRole.THINKING:
        return f"*Thinking: {_md_escape(_one_line(text))}*"
    if m.role is MessageRole.IMAGE:
        return f"*[Image attached: {_md_escape(text or 'image')}]*"
    if m.role is MessageRole.ERROR:
        return f"**Error:** {_md_escape(_one_line(text, 300))}"
    if m.role is MessageRole.SUBAGENT:
        mark = {"waiting": "○", "done": "✓"}.get(m.state, "◌")
        return f"{mark} **Sub-agent** {_md_escape(_one_line(text, 240))}"
    return f"*{text.strip()}*"


def _words_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """The words of a search snippet, in order, whole, anything but letters between them."""
    return re.compile(r"\b" + r"\W+".join(re.escape(w) for w in words) + r"\b", re.IGNORECASE)


def _earlier_note(n: int) -> str:
    return f"Scroll up for {n} earlier message{'s' if n != 1 else ''}"


def _conversation_parts(messages: tuple[Message, ...], limit: int = MAX_RENDERED) -> list[tuple[int, str]]:
    """(size, markdown) of each item :func:`render_conversation` joins, oldest first."""
    shown = messages[-limit:] if limit > 0 else ()
    parts: list[tuple[int, str]] = []
    if len(messages) > len(shown):
        parts.append((0, f"*{_earlier_note(len(messages) - len(shown))}*"))
    for m in shown:
        md = _message_md(m)
        parts.append((len(md), md))
    if not shown:
        parts.append((0, f"*{NO_CONVERSATION}*"))
    return parts


def render_conversation(messages: tuple[Message, ...]) -> str:
    """Markdown of the newest :data:`MAX_RENDERED` messages, oldest first (after a line
    "Scroll up for N earlier messages" when there are more).

    Prompts are quoted under **You**, the agent's text is rendered as the markdown it is,
    tool calls take one line with their state (○ running or asked, ✓ done, ✗ failed or
    rejected), notices are in italics. Collapsed to one line each: commands (**You ran**),
    harness text (named by what added it), thinking, a compaction (after a rule), an image
    placeholder, an error, and each sub-agent's thread (○ waiting, ◌ working, ✓ done).
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


@dataclass
class _Part:
    """Messages ``[start, end)`` of what a tab holds, as markdown (one piece of the view).

    ``cursor`` marks where the piece starts in the view once it is there (a cursor of the
    document: Qt moves it as text is inserted or removed before it)."""

    start: int
    end: int
    md: str
    cursor: QTextCursor | None = None


def _cut(messages: Sequence[Message], start: int, end: int, first_chars: int = CHUNK_CHARS,
         chunk_chars: int = CHUNK_CHARS) -> list[_Part]:
    """``messages[start:end]`` cut between messages into pieces of about ``chunk_chars`` of
    markdown (the newest one ``first_chars``), **newest first**."""
    out: list[_Part] = []
    group: list[str] = []
    size, hi = 0, end
    for i in range(end - 1, start - 1, -1):
        md = _message_md(messages[i])
        if group and size + len(md) > (chunk_chars if out else first_chars):
            out.append(_Part(i + 1, hi, "\n\n".join(reversed(group))))
            group, size, hi = [], 0, i + 1
        group.append(md)
        size += len(md)
    if group:
        out.append(_Part(start, hi, "\n\n".join(reversed(group))))
    return out


class _Relay(QObject):
    """Brings a worker thread's transcript read to the GUI thread (a queued signal)."""

    loaded = Signal(int, object, str)  # generation, older messages (tuple) or None, error


_RELAYS: list[_Relay] = []  # kept for the process: never freed on the worker thread
_LOAD_GENS = itertools.count(1)  # reads of a tab's transcript, across its contents


@dataclass(frozen=True)
class Kept:
    """What a tab keeps of its content while it is released (:meth:`SessionTab.release`):
    what the user typed and where they were; everything else comes from the session again.

    Attributes:
        draft: the answer box's text; ``cursor``: the cursor's position in it.
        recall, recall_pos, recall_draft: Up/Down recall of earlier answers, as it stood.
        busy_sending: an answer was sent and its report has not come back yet.
        delivery, delivery_style: the line saying how the last answer went, and its colour.
        held: the conversation the tab holds (older messages read from the transcript too);
            ``live_start``: where the registry's window of it starts.
        transcript, transcript_error, big_file: reading the whole transcript: ``""``,
            ``"loaded"`` or ``"error"`` (and why); whether it is longer than the scan reads.
        paged: the user paged away from the newest messages; ``lo``, ``hi``: the messages
            shown then (``held[lo:hi]``).
        scroll: the scroll bar's value (pixels) when the view was not at its bottom, else None.
        find: the find bar's text when it was open, else None.
    """

    draft: str
    cursor: int
    recall: list[str]
    recall_pos: int
    recall_draft: str
    busy_sending: bool
    delivery: str
    delivery_style: str
    held: tuple[Message, ...]
    live_start: int
    transcript: str
    transcript_error: str
    big_file: bool | None
    paged: bool
    lo: int
    hi: int
    scroll: int | None
    find: str | None


_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="older-messages")


def _read_older(agent: AgentKind, path: str, head: tuple[Message, ...]) -> tuple[tuple[Message, ...] | None, str]:
    """On the worker: the messages of the transcript older than ``head`` (the first ones a tab
    holds), or None and why the transcript cannot be read."""
    try:
        full = past.conversation_from_transcript(agent, path)
    except OSError as exc:
        return None, f"the transcript {path} cannot be read: {exc.strerror or exc}"
    except Exception as exc:  # a parser bug must not leave the tab loading for ever
        log.warning("reading %s failed", path, exc_info=True)
        return None, f"the transcript {path} cannot be read: {exc}"
    return past.older_than(full, head), ""


class TabContent(QWidget):
    """What a session's tab shows: title, status, request and answer buttons, the
    conversation, the answer box. :class:`SessionTab` builds it while the tab may be looked at
    and drops it otherwise (see :meth:`SessionTab.release`).

    The conversation shows the newest :data:`MAX_RENDERED` messages under a line saying what is
    above them; scrolling to the top adds :data:`PAGE_MESSAGES` older ones at a time (those the
    tab holds, then the whole transcript of a Claude Code or Codex session, read on a worker
    thread), the view staying still. A view paged far up keeps :data:`WINDOW_CHARS` and offers
    the newest messages back ("N newer messages ↓", or scrolling down).

    Ctrl+F opens a find bar over the conversation (:class:`~deck_tray.ui.find_bar.FindBar`);
    :meth:`reveal` shows a search hit in it. A *past* session (:meth:`set_past`: one the
    registry does not list, opened from the history) is read-only, with "Resume in terminal".

    Args:
        session: the session shown.
        memory: where drafts and earlier answers are remembered; None: nowhere.
        parent: owning widget.
        relay, find_relay: where worker-thread results arrive (the tab's, kept across its
            contents); new ones when None.
        kept: what an earlier content of the same tab kept (:meth:`keep`): it starts from there.
        past, hook_held: as :meth:`set_past` and :meth:`set_hook_held` would set them.

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

    def __init__(self, session: Session, memory: WindowMemory | None = None, parent: QWidget | None = None, *,
                 relay: _Relay | None = None, find_relay: FindRelay | None = None, kept: Kept | None = None,
                 past: bool = False, hook_held: bool = False) -> None:
        super().__init__(parent)
        self.session = session
        self.memory = memory
        self._recall: list[str] = []
        self._recall_pos = 0
        self._recall_draft = ""
        self._busy_sending = False
        #: A held PermissionRequest hook takes Allow / Always allow / Deny, or a question's option
        #: and free text (see set_hook_held).
        self.hook_held = hook_held
        self._reveal: tuple[str, str] | None = None  # (term, context) waiting for the view
        # The conversation the tab holds (``_held``: older messages read from the transcript or
        # dropped by the live window, then the live window from ``_live_start`` on); the view
        # shows ``_held[_lo:_hi]`` as pieces (``_parts``, top to bottom) under a note line.
        self._held: tuple[Message, ...] = ()
        self._live_start = 0
        self._lo = self._hi = 0
        self._parts: list[_Part] = []
        self._paged = False  # the user moved away from the newest page: updates keep the view
        self._ready = False  # the first build is in place and scrolled: scrolling may page
        self._finishing = False  # a page is in, the view is being trimmed and its note updated
        self._paging = False  # the pieces being added are a page the user scrolled to
        self._transcript = ""  # "", "loading", "loaded" or "error" (reading the whole transcript)
        self._transcript_error = ""
        self._load_gen = 0
        self._big_file: bool | None = None  # the transcript is longer than the live scan reads
        if relay is None:
            relay = _Relay()
            _RELAYS.append(relay)
        self._relay = relay
        self._relay.loaded.connect(self._older_loaded)
        self.past = past
        self._restore: tuple[int, int] | None = None  # the paged window to show again (kept)
        self._scroll_back: int | None = None  # where the view was scrolled to (kept)

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
        self._older: list[_Part] = []  # conversation pieces still to prepend, newest first
        self._older_timer = QTimer(self)
        self._older_timer.setSingleShot(True)
        self._older_timer.setInterval(0)
        self._older_timer.timeout.connect(self._prepend_older)
        self._newer: list[_Part] = []  # pieces still to append (scrolling down), oldest first
        self._newer_timer = QTimer(self)
        self._newer_timer.setSingleShot(True)
        self._newer_timer.setInterval(0)
        self._newer_timer.timeout.connect(self._append_newer)
        self._edge_timer = QTimer(self)
        self._edge_timer.setSingleShot(True)
        self._edge_timer.setInterval(0)
        self._edge_timer.timeout.connect(self._at_edge)
        self.view.verticalScrollBar().valueChanged.connect(self._scrolled)
        # Over the bottom of the view when the newest messages are not in it (paged far up).
        self.newer_button = QPushButton(self.view)
        self.newer_button.setToolTip("Show the newest messages")
        self.newer_button.clicked.connect(self.show_newest)
        self.newer_button.hide()
        self.find_bar = FindBar(self.view, self, relay=find_relay)
        self.find_bar.load_all_requested.connect(self.show_all_messages)
        find = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self.open_find)

        self.answer = QPlainTextEdit()
        self.answer.setPlaceholderText(PROMPT_PLACEHOLDER)
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
        self.view.viewport().installEventFilter(self)  # the wheel at the top: older messages
        self.view.installEventFilter(self)  # resized: the newer-messages button follows
        if kept is not None:
            self._take(kept)
        if past:
            self.past_note.setVisible(True)
            self.answer_row.setVisible(False)
        self.update_session(session)

    # -- kept while released -------------------------------------------------------
    def detach(self) -> None:
        """Receive no more worker-thread results (the relays go on to the tab's next content)."""
        self._relay.loaded.disconnect(self._older_loaded)
        self.find_bar.detach()

    def keep(self) -> Kept:
        """What this content holds that the user would miss if it were built again from the
        session alone (see :class:`Kept`)."""
        bar = self.view.verticalScrollBar()
        cur = self.answer.textCursor()
        return Kept(
            draft=self.answer.toPlainText(), cursor=cur.position(), recall=list(self._recall),
            recall_pos=self._recall_pos, recall_draft=self._recall_draft, busy_sending=self._busy_sending,
            delivery=self.delivery.text(), delivery_style=self.delivery.styleSheet(), held=self._held,
            live_start=self._live_start, transcript=self._transcript, transcript_error=self._transcript_error,
            big_file=self._big_file, paged=self._paged, lo=self._lo, hi=self._hi,
            scroll=None if bar.value() >= bar.maximum() else bar.value(),
            find=self.find_bar.edit.text() if self.find_bar.isVisibleTo(self) else None)

    def _take(self, kept: Kept) -> None:
        """Start from what an earlier content of the same tab kept (before the first build)."""
        self.answer.setPlainText(kept.draft)
        cur = self.answer.textCursor()
        cur.setPosition(min(kept.cursor, len(kept.draft)))
        self.answer.setTextCursor(cur)
        self._recall, self._recall_pos, self._recall_draft = list(kept.recall), kept.recall_pos, kept.recall_draft
        self._busy_sending = kept.busy_sending
        self.delivery.setStyleSheet(kept.delivery_style)
        self.delivery.setText(kept.delivery)
        self._held, self._live_start = kept.held, kept.live_start
        self._transcript = "" if kept.transcript == "loading" else kept.transcript
        self._transcript_error, self._big_file = kept.transcript_error, kept.big_file
        if kept.paged and kept.held:
            self._paged = True
            # Showing the newest messages: follow them (more may have come meanwhile).
            self._restore = (kept.lo, -1 if kept.hi >= len(kept.held) else kept.hi)
        self._scroll_back = kept.scroll
        if kept.find is not None:
            self.find_bar.open(kept.find)

    def releasable(self) -> bool:
        """False while something is under way that needs this content (a hit being revealed,
        the whole transcript being read)."""
        return self._reveal is None and self._transcript != "loading"

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
        if session.host:  # a remote host's session (#18): answered through deck-tray there
            where.append(f"on {session.host}")
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
        self._set_messages(session.messages)
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
        self._show_note()
        self.past_note.setVisible(past)
        self.answer_row.setVisible(not past)
        self.update_session(self.session)

    # -- find ----------------------------------------------------------------------
    def open_find(self) -> None:
        """Ctrl+F: open the find bar, with the selected text of the conversation if any."""
        picked = self.view.textCursor().selectedText().strip()
        self.find_bar.open(picked if picked and "\u2029" not in picked and len(picked) < 200 else None)

    def show_all_messages(self) -> None:
        """Render the messages the tab holds from the oldest on (as many as the view takes:
        :data:`WINDOW_CHARS`), not only the newest :data:`MAX_RENDERED`."""
        if self._lo > 0:
            self._paged = True
            self._rebuild(0, self._window_end(0))

    def reveal(self, term: str, context: str = "") -> None:
        """Show a search hit: the find bar holds ``term`` and its current match is the one in
        ``context`` (text around the hit, e.g. a search snippet), selected and scrolled into
        view. Older pieces still loading are waited for; a hit in messages the view does not
        show is rendered first, and one older than the messages the tab holds is looked for
        in the whole transcript (read on a worker thread). Emits :attr:`revealed` when done."""
        self._reveal = (term, context)
        self.find_bar.open(term)
        if not self._building():
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
            whole = _words_pattern(words)
            found = whole.search(raw)
            if found is None:
                # Not in view: in the messages the tab holds? Else in the whole transcript?
                if self._reveal_held(whole, term):
                    return  # the hit's page is being built; then this again
                if self._may_have_more():
                    self._load_transcript()  # then this again
                    return
            if found is None and len(words) > 4:  # the snippet may cross a message boundary
                mid = len(words) // 2
                halves = [_words_pattern(part) for part in (words[:mid], words[mid:])]
                if any(self._reveal_held(h, term) for h in halves):
                    return
                for half in halves:
                    found = half.search(raw)
                    if found is not None and term.casefold() in found.group(0).casefold():
                        break
                    found = None
        if found is None:
            self._reveal = None
            why = (f" ({self._transcript_error})" if self._transcript == "error" else
                   "" if self._transcript == "loaded" or not self._may_be_older() else " (it may be older)")
            self.find_bar.remark = f"the hit is not in the messages this tab holds{why}"
            self.find_bar.refresh()
            self.revealed.emit(False)
            return
        inner = found.group(0).casefold().find(term.casefold())
        start = found.start() + max(inner, 0)

        def done() -> None:
            self._reveal = None
            self.revealed.emit(True)

        self.find_bar.select_near(utf16_positions(raw)(start), done)

    def _reveal_held(self, pattern: re.Pattern[str], term: str) -> bool:
        """Build the page of the oldest message the tab holds but does not show whose text
        matches ``pattern`` (holding ``term``); False when there is none."""
        for i, m in enumerate(self._held):
            if self._lo <= i < self._hi:
                continue
            hit = pattern.search(m.text)
            if hit is not None and term.casefold() in hit.group(0).casefold():
                self._paged = True
                lo = max(0, i - PAGE_MESSAGES // 2)
                self._rebuild(lo, self._window_end(lo, i + PAGE_MESSAGES))
                return True
        return False

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
        if self._newer:
            self._newer_timer.start()

    # -- the conversation: what the tab holds, the pieces in view, older pages -------------
    def _set_messages(self, live: tuple[Message, ...]) -> None:
        """A snapshot's messages (the live window): joined to what the tab holds; the view
        follows (the newest page again, or only its changed end once the user paged)."""
        old = self._held
        held = self._join(live)
        if held == old and self._parts:
            return
        self._held = held
        if self._restore is not None:
            (lo, hi), self._restore = self._restore, None
            hi = len(held) if hi < 0 else min(hi, len(held))
            if 0 <= lo < hi:
                self._rebuild(lo, hi)
                return
            self._paged = False
        if not self._paged or not self._parts:
            self._rebuild(max(0, len(held) - MAX_RENDERED), len(held))
            return
        if self._hi == len(old) and not self._newer:  # the view shows the newest: follow
            first = self._lo
            for i in range(self._lo, min(len(old), len(held))):
                if old[i] is not held[i] and old[i] != held[i]:
                    break
                first = i + 1
            k = max((j for j, p in enumerate(self._parts) if p.start <= first), default=0)
            if k == 0:
                self._rebuild(self._lo, len(held))
                return
            self._replace_tail(k)
        self._show_note()

    def _join(self, live: tuple[Message, ...]) -> tuple[Message, ...]:
        """What the tab holds after a snapshot: the older messages it held (read from the
        transcript, or dropped by the live window as it moved on) and ``live``."""
        old, start = self._held, self._live_start
        if live and old:
            first = live[0]
            for i in range(start, len(old)):
                if old[i] is first or past.same_message(old[i], first):
                    self._live_start = i
                    return old[:i] + live
        # No common start: the window jumped (a rewritten file, or more new messages than
        # it keeps): start over from it.
        self._live_start = 0
        if old and self._transcript in ("loaded", "error"):
            self._transcript = ""
        return live

    def _window_end(self, lo: int, at_least: int = 0) -> int:
        """Where a view starting at message ``lo`` ends: the newest message when it fits in
        :data:`WINDOW_CHARS` (or is near ``at_least``), else where that budget runs out."""
        held, size = self._held, 0
        for i in range(lo, len(held)):
            size += len(held[i].text) + 40
            if size > WINDOW_CHARS and i >= at_least:
                return i if len(held) - i > PAGE_MESSAGES else len(held)
        return len(held)

    def _rebuild(self, lo: int, hi: int) -> None:
        """Show ``_held[lo:hi]``: the newest piece now, older ones prepended one per event-loop
        turn; then the hit waiting to be revealed, else the newest message."""
        self._older_timer.stop()
        self._newer_timer.stop()
        self._newer = []
        self._ready = False  # replacing the text scrolls to the top: that is not the user paging
        self._finishing = self._paging = False
        self._lo, self._hi = lo, hi
        parts = _cut(self._held, lo, hi, first_chars=FIRST_CHUNK_CHARS)
        self._parts = []
        self._older = parts[1:]
        # The first block is the note line at the top of the conversation (_show_note).
        self.view.setMarkdown("…\n\n" + parts[0].md if parts else "…")
        doc = self.view.document()
        if parts:
            parts[0].cursor = QTextCursor(doc.begin().next())
        self._parts = parts[:1]
        self._show_note()
        if self._older:
            self._older_timer.start()
        self.find_bar.refresh_soon()
        if self._reveal is not None and not self._older:
            QTimer.singleShot(0, self, self._finish_reveal)
        elif self._reveal is None:
            # Newest at the bottom; the layout finishes after this call, so scroll once it has.
            QTimer.singleShot(0, self, self._settle)

    def _settle(self) -> None:
        if self._scroll_back is not None and not self._older:  # built again: where the user left it
            self.view.verticalScrollBar().setValue(self._scroll_back)
            self._scroll_back = None
        elif self._hi == len(self._held):
            self.scroll_to_end()
        self._ready = True

    def _building(self) -> bool:
        return bool(self._older or self._newer) or self._finishing or self._transcript == "loading"

    def _may_be_older(self) -> bool:
        """Whether the conversation may have begun before what the tab holds."""
        if self.past or not self._held:
            return False
        if len(self.session.messages) >= MAX_MESSAGES:
            return True
        if self.session.transcript and self.session.agent in (AgentKind.CLAUDE_CODE, AgentKind.CODEX):
            if self._big_file is None:  # once per tab: a stat, not a read
                try:
                    self._big_file = os.stat(self.session.transcript).st_size > TAIL_BYTES
                except OSError:
                    self._big_file = False
            return self._big_file
        return False

    def _may_have_more(self) -> bool:
        """Whether older messages may be read from the session's transcript (not read yet)."""
        return (self._transcript == "" and bool(self.session.transcript)
                and self.session.agent in (AgentKind.CLAUDE_CODE, AgentKind.CODEX) and self._may_be_older())

    def _show_note(self) -> None:
        """Say at the top of the conversation what is above it."""
        held = self._held
        error = False
        if not held:
            text = NO_CONVERSATION
        elif self._older or (self._lo == 0 and self._transcript == "loading"):
            text = "Loading earlier messages…"
        elif self._lo > 0:
            text = _earlier_note(self._lo)
        elif self._transcript == "error":
            text, error = f"Earlier messages cannot be shown: {self._transcript_error}.", True
        elif self._may_have_more():
            text = "Scroll up for earlier messages (read from the transcript)"
        elif self._transcript != "loaded" and self._may_be_older():
            text = "Earlier messages are not kept here — Ctrl+Shift+F searches all history"
        else:
            text = "Start of the conversation"
        doc = self.view.document()
        first = doc.begin()
        if first.text() != text:
            cur = QTextCursor(first)
            cur.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
            fmt = QTextCharFormat()
            fmt.setFontItalic(True)
            fmt.setForeground(QColor("#d05050" if error else "#808080"))
            bar = self.view.verticalScrollBar()
            from_bottom = bar.maximum() - bar.value()
            cur.beginEditBlock()  # one change to lay out (an edit at the top moves every block below)
            cur.insertText(text, fmt)
            if first.blockFormat().bottomMargin() != 8:
                block = QTextBlockFormat()
                block.setAlignment(Qt.AlignmentFlag.AlignHCenter)
                block.setBottomMargin(8)
                cur.setBlockFormat(block)
            cur.endEditBlock()
            if self._ready:
                doc.documentLayout().documentSize()
                bar.setValue(bar.maximum() - from_bottom)
        n = self._lo + len(held) - self._hi
        self.find_bar.loading = self._building()
        self.find_bar.not_loaded = n
        newer = len(held) - self._hi
        self.newer_button.setVisible(newer > 0)
        if newer > 0:
            self.newer_button.setText(f"{newer} newer message{'s' if newer != 1 else ''} ↓")
            self._place_newer_button()

    def _place_newer_button(self) -> None:
        b, vp = self.newer_button, self.view.viewport()
        b.adjustSize()
        b.move(vp.x() + vp.width() - b.width() - 12, vp.y() + vp.height() - b.height() - 10)
        b.raise_()

    def show_newest(self) -> None:
        """Back to the newest page (the view follows the conversation again)."""
        self._paged = False
        self._rebuild(max(0, len(self._held) - MAX_RENDERED), len(self._held))

    def _scrolled(self, _value: int) -> None:
        # Looked at once the change that moved the bar is done (the view's own edits move it too).
        self._edge_timer.start()

    def _at_edge(self) -> None:
        bar = self.view.verticalScrollBar()
        if bar.value() <= bar.minimum():
            self._page_up()
        elif bar.value() >= bar.maximum() and self._hi < len(self._held):
            self._page_down()

    def _page_up(self) -> None:
        """The top of the view was reached: the next older page, from what the tab holds,
        else from the transcript (read on a worker thread)."""
        if not self._ready or self._building() or not self.isVisible():
            return
        if self._lo > 0:
            lo = max(0, self._lo - PAGE_MESSAGES)
            self._paged = True
            self._older = _cut(self._held, lo, self._lo)
            self._paging = True
            self._lo = lo
            self._show_note()
            self._older_timer.start()
        elif self._may_have_more():
            self._load_transcript()

    def _page_down(self) -> None:
        """The bottom of a view that does not reach the newest messages: the next page."""
        if not self._ready or self._building() or not self.isVisible():
            return
        hi = min(len(self._held), self._hi + PAGE_MESSAGES)
        self._newer = list(reversed(_cut(self._held, self._hi, hi)))
        self._hi = hi
        self._show_note()
        self._newer_timer.start()

    def _load_transcript(self) -> None:
        """Read the whole transcript on the worker; :meth:`_older_loaded` joins it."""
        self._transcript = "loading"
        self._load_gen = next(_LOAD_GENS)
        gen, relay = self._load_gen, self._relay
        agent, path, head = self.session.agent, self.session.transcript, self._held[:40]
        self._show_note()
        self.find_bar.refresh_soon()
        try:
            _POOL.submit(lambda: relay.loaded.emit(gen, *_read_older(agent, path, head)))
        except RuntimeError:  # interpreter shutting down
            self._transcript = ""

    def _older_loaded(self, gen: int, older: object, error: str) -> None:
        if gen != self._load_gen or self._transcript != "loading":
            return
        if not isinstance(older, tuple):
            self._transcript, self._transcript_error = "error", error
            self._show_note()  # what is shown stays
            self._finish_reveal()
            return
        self._transcript = "loaded"
        n = len(older)
        if n:
            self._held = older + self._held
            self._live_start += n
            self._lo += n
            self._hi += n
            for p in (*self._parts, *self._older, *self._newer):
                p.start += n
                p.end += n
        self._show_note()
        if self._reveal is not None:
            self._finish_reveal()
        elif n and self.view.verticalScrollBar().value() <= self.view.verticalScrollBar().minimum() + 40:
            self._page_up()  # the user is still at the top, waiting for them

    def _insert(self, part: _Part, at: int, fmt: QTextBlockFormat, *, top: bool) -> None:
        """Insert the markdown of ``part`` at document position ``at`` (the start of a block
        when ``top``, else the end of the document) as blocks of their own."""
        piece = QTextDocument()
        piece.setMarkdown(part.md)
        edge = QTextCursor(piece)
        if top:
            # Ends in an empty block with the format of the block at ``at``: inserted at its
            # start, that block merges with it, which so keeps its own format.
            edge.movePosition(QTextCursor.MoveOperation.End)
            edge.insertBlock(fmt, QTextCharFormat())
        else:
            # Starts with an empty block: it merges with the last block of the view.
            edge.insertBlock(piece.begin().blockFormat(), piece.begin().charFormat())
        doc = self.view.document()
        cur = QTextCursor(doc)
        cur.setPosition(at)
        cur.insertFragment(QTextDocumentFragment(piece))
        part.cursor = QTextCursor(doc)
        part.cursor.setPosition(at if top else at + 1)

    def _prepend_older(self) -> None:
        """Put the next older piece of the conversation on top (under the note line),
        keeping what is in view.

        Only while the tab is visible (a hidden tab resumes when shown): so one tab at a
        time builds, and many open tabs never add up to a long stall.
        """
        if not self._older or not self.isVisible() or not self._parts:
            return
        part = self._older.pop(0)
        top = self._parts[0].cursor
        assert top is not None
        doc = self.view.document()
        bar = self.view.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        self._insert(part, top.position(), top.block().blockFormat(), top=True)
        self._parts.insert(0, part)
        doc.documentLayout().documentSize()  # lay the new piece out so the range is current
        bar.setValue(bar.maximum() - from_bottom)
        if self._older:
            self._older_timer.start()
            self.find_bar.refresh_soon()
            return
        if self._paging:
            self._finish_page(bottom=True)
        else:  # a (re)build: small enough to finish now
            self._show_note()
            self._built()

    def _append_newer(self) -> None:
        """Put the next newer piece at the bottom (scrolling down a view paged far up)."""
        if not self._newer or not self.isVisible():
            return
        part = self._newer.pop(0)
        doc = self.view.document()
        self._insert(part, doc.characterCount() - 1, QTextBlockFormat(), top=False)
        self._parts.append(part)
        if self._newer:
            self._newer_timer.start()
            self.find_bar.refresh_soon()
            return
        self._finish_page(bottom=False)

    def _finish_page(self, *, bottom: bool) -> None:
        """A page is in: keep the view within its size, then update the note line and go on
        (each in an event-loop turn of its own: each moves every block of the view)."""
        self._finishing = True
        self._paging = False

        def note() -> None:
            self._finishing = False
            self._show_note()
            self._built()

        def trim() -> None:
            self._trim(bottom=bottom)
            QTimer.singleShot(0, self, note)

        QTimer.singleShot(0, self, trim)

    def _built(self) -> None:
        """The pieces asked for are in: the hit waiting for them, else the find bar."""
        if self._reveal is not None:
            self._finish_reveal()
            return
        self.find_bar.refresh()
        if not self._ready or self._scroll_back is not None:
            QTimer.singleShot(0, self, self._settle)

    def _trim(self, *, bottom: bool) -> None:
        """Keep the view within :data:`WINDOW_CHARS`: drop its newest pieces (``bottom``,
        after paging up) or its oldest (after paging down), what is in view staying still."""
        size = sum(len(p.md) for p in self._parts)
        drop = 0
        for p in (reversed(self._parts) if bottom else self._parts):
            if size <= WINDOW_CHARS or len(self._parts) - drop <= 2:
                break
            size -= len(p.md)
            drop += 1
        if not drop:
            return
        doc = self.view.document()
        bar = self.view.verticalScrollBar()
        cur = QTextCursor(doc)
        if bottom:
            first = self._parts[-drop].cursor
            assert first is not None
            cur.setPosition(first.position() - 1)  # from the end of the block above
            cur.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
            value = bar.value()
            cur.removeSelectedText()
            self._hi = self._parts[-drop].start
            del self._parts[-drop:]
            bar.setValue(value)
        else:
            nxt = self._parts[drop].cursor
            assert nxt is not None
            cur.setPosition(doc.begin().position() + doc.begin().length() - 1)  # the note's end
            cur.setPosition(nxt.position() - 1, QTextCursor.MoveMode.KeepAnchor)
            from_bottom = bar.maximum() - bar.value()
            cur.removeSelectedText()
            del self._parts[:drop]
            self._lo = self._parts[0].start
            doc.documentLayout().documentSize()
            bar.setValue(bar.maximum() - from_bottom)

    def _replace_tail(self, k: int) -> None:
        """The newest messages changed from piece ``k`` on: render them again (the view
        stays where it is, or at the bottom when it was there)."""
        doc = self.view.document()
        bar = self.view.verticalScrollBar()
        at_end = bar.value() >= bar.maximum()
        value = bar.value()
        start = self._parts[k].start
        anchor = self._parts[k].cursor
        assert anchor is not None
        cur = QTextCursor(doc)
        cur.setPosition(anchor.position() - 1)
        cur.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cur.removeSelectedText()
        del self._parts[k:]
        for part in reversed(_cut(self._held, start, len(self._held))):
            self._insert(part, doc.characterCount() - 1, QTextBlockFormat(), top=False)
            self._parts.append(part)
        self._hi = len(self._held)
        doc.documentLayout().documentSize()
        if at_end:
            self.scroll_to_end()
        else:
            bar.setValue(value)
        self.find_bar.refresh_soon()

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
        if p is None or not session.status.is_waiting or p.kind is not RequestKind.QUESTION:
            self.answer.setPlaceholderText(PROMPT_PLACEHOLDER)
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
                if label.casefold().startswith(FREE_TEXT_ROWS):
                    continue
                self._add_button(label, Reply(ReplyKind.OPTION, label), primary=False)
            if session.server:
                self._add_button("Dismiss", Reply(ReplyKind.DENY), primary=False,
                                 tip="Dismiss the question; the agent stops this turn")
            typed = session.server or self._through_hook(session) or takes_free_text(session.agent)
            self.answer.setPlaceholderText("Or type your own answer… (Ctrl+Enter sends)" if typed else
                                           f"{session.agent.label} takes one of the options above as its answer")
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
        """Up on the first line recalls earlier answers; Down goes forward again. The wheel
        turned up at the top of the conversation asks for older messages (also when it does
        not fill the view, or after an error)."""
        if obj is self.view.viewport() and isinstance(event, QWheelEvent) and event.angleDelta().y() > 0:
            bar = self.view.verticalScrollBar()
            if bar.value() <= bar.minimum():
                self._page_up()
            return super().eventFilter(obj, event)
        if obj is self.view and isinstance(event, QResizeEvent):
            if self.newer_button.isVisible():
                QTimer.singleShot(0, self, self._place_newer_button)
            return super().eventFilter(obj, event)
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

    def show_action(self, report: ActionReport) -> None:
        """Show how an action (e.g. Resume in terminal) went: its detail, green when it
        worked, red when not; the answer box is left alone."""
        self.delivery.setStyleSheet("color: #1e6b3a;" if report.ok else "color: #b42318;")
        self.delivery.setText(report.detail if report.ok else f"Could not do it: {report.detail}")

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


#: Tabs whose content stays built: the current one and the others shown most recently
#: (MainWindow releases the rest). A built content of 200 messages takes about 2 MB.
KEEP_BUILT = 3


class SessionTab(QWidget):
    """One session's tab: cheap while nobody looks at it.

    Its content (:class:`TabContent`: the widgets and the rendered conversation, about 2 MB
    for :data:`MAX_RENDERED` messages) is built when the tab is made and whenever it is shown
    again after :meth:`release`, which drops it (the window releases all but the
    :data:`KEEP_BUILT` tabs shown last). What the user typed, the conversation the tab holds
    (older messages read from the transcript too), the page they were on and where they had
    scrolled survive (:class:`Kept`); the title, status and request come from the session.

    Members of the content not defined here (``find_bar``, ``banner``, ``request_box``, …)
    are reached through the tab, and touching one builds the content.

    Args:
        session: the session shown.
        memory: where drafts and earlier answers are remembered; None: nowhere.
        parent: owning widget.

    Signals:
        reply_requested(str, Reply): the user asked to send ``Reply`` to session id ``str``.
        action_requested(str, str, str): session id, action and argument (see :class:`TabContent`).
        revealed(bool): a :meth:`reveal` finished (see :class:`TabContent`).
    """

    reply_requested = Signal(str, object)
    action_requested = Signal(str, str, str)
    revealed = Signal(bool)

    def __init__(self, session: Session, memory: WindowMemory | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.memory = memory
        self.past = False
        self.hook_held = False
        self._content: TabContent | None = None
        self._kept: Kept | None = None
        self._reports: list[DeliveryReport | ActionReport] = []  # arrived while released
        self._relay = _Relay()
        _RELAYS.append(self._relay)
        self._find_relay = FindRelay()
        _FIND_RELAYS.append(self._find_relay)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.content()

    # -- the content ---------------------------------------------------------------
    @property
    def built(self) -> bool:
        """Whether the content is built (False after :meth:`release`, until shown again)."""
        return self._content is not None

    def content(self) -> TabContent:
        """The content, built now if it was released (from the session and what was kept)."""
        c = self._content
        if c is not None:
            return c
        kept, self._kept = self._kept, None
        c = TabContent(self.session, self.memory, relay=self._relay, find_relay=self._find_relay, kept=kept,
                       past=self.past, hook_held=self.hook_held)
        c.reply_requested.connect(self.reply_requested)
        c.action_requested.connect(self.action_requested)
        c.revealed.connect(self.revealed)
        self._content = c
        layout = self.layout()
        assert layout is not None
        layout.addWidget(c)
        if self.isVisible():
            c.show()
        reports, self._reports = self._reports, []
        for r in reports:
            if isinstance(r, DeliveryReport):
                c.show_delivery(r)
            else:
                c.show_action(r)
        return c

    def release(self) -> bool:
        """Drop the content of a tab nobody looks at; it is built again when the tab is shown.

        Returns:
            True when the tab holds no content now; False when it keeps it: the tab is
            visible, or something is under way (a hit being revealed, the transcript being read).
        """
        c = self._content
        if c is None:
            return True
        if self.isVisible() or not c.releasable():
            return False
        c.save_draft()
        self._kept = c.keep()
        c.detach()
        self._content = None
        layout = self.layout()
        if layout is not None:
            layout.removeWidget(c)
        c.hide()
        c.deleteLater()
        return True

    def showEvent(self, event: QShowEvent) -> None:
        """A released tab is built again when shown."""
        self.content()
        super().showEvent(event)

    def heightForWidth(self, width: int) -> int:
        """The tab stack asks every tab, shown or not; a hidden one needs no answer (its word-
        wrapped labels would be laid out again on every layout pass, for every open tab)."""
        if self.isHidden():
            return -1
        return super().heightForWidth(width)

    def __getattr__(self, name: str) -> Any:
        """The content's members (building it when released), for what this class does not
        define itself."""
        if name.startswith("__") or "_content" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.content(), name)

    @property
    def view(self) -> QTextBrowser:
        """The conversation (builds the content when released)."""
        return self.content().view

    @property
    def answer(self) -> QPlainTextEdit:
        """The answer box (builds the content when released)."""
        return self.content().answer

    # -- what the window tells every tab ---------------------------------------------
    def update_session(self, session: Session) -> None:
        """Show a newer snapshot of the session (a released tab only remembers it)."""
        self.session = session
        if self._content is not None:
            self._content.update_session(session)

    def set_hook_held(self, held: bool) -> None:
        """See :meth:`TabContent.set_hook_held`."""
        self.hook_held = held
        if self._content is not None:
            self._content.set_hook_held(held)

    def set_past(self, past: bool) -> None:
        """See :meth:`TabContent.set_past`."""
        self.past = past
        if self._content is not None:
            self._content.set_past(past)

    def save_draft(self) -> None:
        """Persist the answer box now (a released tab saved it when released)."""
        if self._content is not None:
            self._content.save_draft()

    def show_delivery(self, report: DeliveryReport) -> None:
        """See :meth:`TabContent.show_delivery` (a released tab shows it when built again)."""
        if self._content is None:
            self._reports.append(report)
        else:
            self._content.show_delivery(report)

    def show_action(self, report: ActionReport) -> None:
        """See :meth:`TabContent.show_action` (a released tab shows it when built again)."""
        if self._content is None:
            self._reports.append(report)
        else:
            self._content.show_action(report)

    def reveal(self, term: str, context: str = "") -> None:
        """See :meth:`TabContent.reveal`."""
        self.content().reveal(term, context)

