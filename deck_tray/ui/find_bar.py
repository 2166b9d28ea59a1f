"""Find in a session tab (Ctrl+F): a bar over the conversation view.

Every match in what the view holds is highlighted, the current one stronger and scrolled
into view; Enter / F3 goes to the next, Shift+Enter / Shift+F3 to the previous (both
wrap), Esc closes. The search is one regular-expression pass over the document's raw text
(case-insensitive, the typed text literally), so a whole rendered conversation (at most
:data:`~deck_tray.ui.session_tab.MAX_RENDERED` messages of at most 8000 characters) takes
milliseconds; highlights are capped at :data:`MAX_HIGHLIGHTS`.

The view fills in over several event-loop turns (older pieces are prepended) and is
rebuilt when the session changes: the owner calls :meth:`FindBar.refresh` then, and the
current match stays the same one (it is remembered by its distance from the end of the
document, which prepending does not change).
"""

from __future__ import annotations

import bisect
import concurrent.futures
import html
import itertools
import re
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPalette, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QTextEdit, QToolButton, QWidget

#: At most this many matches are highlighted (all are counted).
MAX_HIGHLIGHTS = 400
#: Documents up to this many characters are searched on the GUI thread (a few ms).
SYNC_CHARS = 200_000
_WIDE = re.compile("[\U00010000-\U0010FFFF]")


def utf16_positions(text: str) -> Callable[[int], int]:
    """Map a Python string index of ``text`` to a QTextDocument position (UTF-16 units)."""
    if text.isascii() or len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text):
        return lambda i: i
    wide = [m.start() for m in _WIDE.finditer(text)]
    if not wide:
        return lambda i: i
    return lambda i: i + bisect.bisect_left(wide, i)


def search_document(raw: str, needle: str) -> list[tuple[int, int]]:
    """Document positions ``(start, end)`` of every match of ``needle`` in ``raw`` (a
    document's raw text); plain Python, run on a worker thread for long documents."""
    spans = find_spans(raw, needle)
    if not spans:
        return spans
    to_pos = utf16_positions(raw)
    return [(to_pos(a), to_pos(b)) for a, b in spans]


class FindRelay(QObject):
    """Brings a worker thread's search result to the GUI thread (a queued signal). One is
    kept for the process per find bar (never freed on the worker thread); a tab whose content
    is built again hands its relay to the new bar (:class:`FindBar`'s ``relay``)."""

    done = Signal(int, object, int)  # generation, spans, document length


_Relay = FindRelay
_RELAYS: list[FindRelay] = []
_GENS = itertools.count(1)  # searches, across find bars (a relay may serve several in turn)
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="find-in-tab")


def find_spans(text: str, needle: str) -> list[tuple[int, int]]:
    """``(start, end)`` Python indices of every case-insensitive occurrence of ``needle``."""
    if not needle:
        return []
    pattern = re.compile(re.escape(needle), re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


class FindBar(QWidget):
    """The find bar of one :class:`~deck_tray.ui.session_tab.SessionTab`.

    Args:
        view: the conversation view it searches and highlights.
        parent: owning widget.
        relay: where worker-thread results arrive (a new one when None).

    Signals:
        closed(): the bar was closed (Esc or its button); the view got the focus back.
        load_all_requested(): the user asked to show the messages the view leaves out.

    Attributes:
        not_loaded: set by the owner: how many older messages the view does not hold
            (0: everything is there); shown beside the count.
        loading: set by the owner: older pieces are still being added.
        remark: set by the owner: a note shown beside the count until the text changes.
    """

    closed = Signal()
    load_all_requested = Signal()

    def __init__(self, view: QTextEdit, parent: QWidget | None = None, *, relay: FindRelay | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.not_loaded = 0
        self.loading = False
        self.remark = ""  # shown instead of the loading note until the text changes
        self._gen = 0
        self._searching = False
        self._pending: tuple[int, Callable[[], None] | None] | None = None  # select_near after a search
        if relay is None:
            relay = FindRelay()
            _RELAYS.append(relay)  # kept for the process: never freed on the worker thread
        self._relay = relay
        self._relay.done.connect(self._apply)
        view.document().contentsChange.connect(self._document_changed)
        self._spans: list[tuple[int, int]] = []  # document positions
        self._current = -1
        self._from_end: int | None = None  # distance of the current match from the end
        self.setObjectName("findbar")

        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Find in conversation")
        self.edit.setClearButtonEnabled(True)
        self.edit.setMinimumWidth(160)
        self.edit.textChanged.connect(self._text_changed)
        self.edit.installEventFilter(self)
        self.prev_button = QToolButton()
        self.prev_button.setText("▲")
        self.prev_button.setToolTip("Previous match (Shift+Enter)")
        self.prev_button.setAutoRaise(True)
        self.prev_button.clicked.connect(self.previous)
        self.next_button = QToolButton()
        self.next_button.setText("▼")
        self.next_button.setToolTip("Next match (Enter)")
        self.next_button.setAutoRaise(True)
        self.next_button.clicked.connect(self.next)
        self.count = QLabel()
        self.count.setTextFormat(Qt.TextFormat.PlainText)
        self.count.setMinimumWidth(90)
        self.note = QLabel()
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.note.setStyleSheet("color: palette(mid);")
        self.note.linkActivated.connect(lambda _href: self.load_all_requested.emit())
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Close (Esc)")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.close_bar)

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 2)
        row.addWidget(self.edit, 1)
        row.addWidget(self.prev_button)
        row.addWidget(self.next_button)
        row.addWidget(self.count)
        row.addWidget(self.note, 1)
        row.addWidget(self.close_button)
        for seq, slot in (("F3", self.next), ("Ctrl+G", self.next),
                          ("Shift+F3", self.previous), ("Ctrl+Shift+G", self.previous)):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
        # Typing is searched after a short pause, so a fast typist is not searched per key.
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self.refresh)
        self.hide()

    # -- opening and closing -----------------------------------------------------------
    def detach(self) -> None:
        """Receive no more results through the relay (it goes on to another bar)."""
        self._relay.done.disconnect(self._apply)

    def open(self, text: str | None = None) -> None:
        """Show the bar with the focus in its field (``text`` replaces what it holds)."""
        if text is not None and text != self.edit.text():
            self.edit.blockSignals(True)
            self.edit.setText(text)
            self.edit.blockSignals(False)
            self._from_end = None
            self.remark = ""
        self.show()
        self.edit.setFocus()
        self.edit.selectAll()
        self.refresh()

    def close_bar(self) -> None:
        """Hide the bar and its highlights; the conversation keeps the current match selected."""
        self._timer.stop()
        self.hide()
        self.view.setExtraSelections([])
        self.view.setFocus()
        self.closed.emit()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """In the field: Esc closes, Enter goes to the next match, Shift+Enter to the previous."""
        if obj is self.edit and isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Escape:
                self.close_bar()
                return True
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                if self._timer.isActive():
                    self.refresh()
                if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                    self.previous()
                else:
                    self.next()
                return True
        return super().eventFilter(obj, event)

    # -- searching -----------------------------------------------------------------------
    @property
    def matches(self) -> int:
        """How many matches the view holds."""
        return len(self._spans)

    @property
    def current(self) -> int:
        """Index of the current match (0-based), -1 when there is none."""
        return self._current

    def _text_changed(self) -> None:
        self._from_end = None
        self.remark = ""
        self._timer.start()

    def refresh(self) -> None:
        """Search the view again (its text changed, or the field did) and redraw.

        A document up to :data:`SYNC_CHARS` is searched at once; a longer one on a worker
        thread (the count says "Searching…" meanwhile), so the GUI never waits for it.
        """
        self._timer.stop()
        if self.isHidden():
            return
        needle = self.edit.text()
        doc = self.view.document()
        raw = doc.toRawText()
        self._gen = gen = next(_GENS)
        if len(raw) <= SYNC_CHARS or not needle:
            self._apply(gen, search_document(raw, needle), doc.characterCount())
            return
        self._searching = True
        self.count.setText("Searching…")
        relay, total = self._relay, doc.characterCount()
        try:
            _POOL.submit(lambda: relay.done.emit(gen, search_document(raw, needle), total))
        except RuntimeError:  # interpreter shutting down
            self._searching = False

    def _apply(self, gen: int, spans: object, total: int) -> None:
        if gen != self._gen:
            return  # the document or the text changed since: a newer search runs
        assert isinstance(spans, list)
        self._searching = False
        self._spans = spans
        starts = [a for a, _b in spans]
        if not spans:
            self._current = -1
        elif self._pending is not None:
            pos, _then = self._pending
            self._current = min(bisect.bisect_left(starts, pos), len(starts) - 1)
        elif self._from_end is not None:
            # The same match as before: the one at the same distance from the end.
            target = total - self._from_end
            i = bisect.bisect_left(starts, target)
            near = [j for j in (i - 1, i) if 0 <= j < len(starts)]
            self._current = min(near, key=lambda j: abs(starts[j] - target))
        else:
            # A new search starts at the match nearest the bottom of what is in view
            # (the newest messages are at the bottom).
            self._current = self._nearest_visible()
        pending, self._pending = self._pending, None
        self._show(scroll=self._from_end is None or pending is not None)
        if pending is not None and pending[1] is not None:
            pending[1]()

    def _document_changed(self, *_args: object) -> None:
        """The view's text changed: a search in flight is stale (its positions are)."""
        if self._searching:
            self._gen = next(_GENS)
            self.refresh_soon()

    def refresh_soon(self) -> None:
        """Search again shortly (coalesces the bursts of a conversation being built)."""
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def select_near(self, position: int, then: Callable[[], None] | None = None) -> None:
        """Make the match at or nearest after document ``position`` current and show it,
        then call ``then`` (after a search still running, when there is one)."""
        if self._searching or self._timer.isActive():
            self._pending = (position, then)
            if self._timer.isActive():
                self.refresh()
            return
        if self._spans:
            starts = [a for a, _b in self._spans]
            self._current = min(bisect.bisect_left(starts, position), len(starts) - 1)
            self._show(scroll=True)
        if then is not None:
            then()

    def next(self) -> None:
        """Go to the next match (wraps to the first)."""
        if self._spans:
            self._current = (self._current + 1) % len(self._spans)
            self._show(scroll=True)

    def previous(self) -> None:
        """Go to the previous match (wraps to the last)."""
        if self._spans:
            self._current = (self._current - 1) % len(self._spans)
            self._show(scroll=True)

    def _nearest_visible(self) -> int:
        bottom = self.view.cursorForPosition(self.view.viewport().rect().bottomRight()).position()
        starts = [a for a, _b in self._spans]
        i = bisect.bisect_right(starts, bottom) - 1
        return max(i, 0)

    def _colors(self) -> tuple[QColor, QColor, QColor]:
        dark = self.view.palette().color(QPalette.ColorRole.Base).lightness() < 128
        if dark:
            return QColor("#6b5a17"), QColor("#d9822b"), QColor("#ffffff")
        return QColor("#fff1a8"), QColor("#f59e42"), QColor("#000000")

    def _show(self, scroll: bool) -> None:
        doc = self.view.document()
        last = doc.characterCount() - 1
        if self._spans and self._spans[-1][1] > last:  # never for a current result; a safety net
            self._spans = [(a, b) for a, b in self._spans if b <= last]
            self._current = min(self._current, len(self._spans) - 1)
        all_bg, cur_bg, cur_fg = self._colors()
        selections: list[QTextEdit.ExtraSelection] = []
        lo = max(0, self._current - MAX_HIGHLIGHTS // 2)
        for i, (a, b) in enumerate(self._spans[lo:lo + MAX_HIGHLIGHTS], start=lo):
            sel = QTextEdit.ExtraSelection()
            cur = QTextCursor(doc)
            cur.setPosition(a)
            cur.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cur
            fmt = QTextCharFormat()
            fmt.setBackground(cur_bg if i == self._current else all_bg)
            if i == self._current:
                fmt.setForeground(cur_fg)
            sel.format = fmt
            selections.append(sel)
        self.view.setExtraSelections(selections)
        if 0 <= self._current < len(self._spans):
            a, b = self._spans[self._current]
            self._from_end = doc.characterCount() - a
            if scroll:
                cur = QTextCursor(doc)
                cur.setPosition(a)
                cur.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
                self.view.setTextCursor(cur)
                self.view.ensureCursorVisible()
        self._update_labels()

    def _update_labels(self) -> None:
        needle = self.edit.text()
        bad = "background: rgba(220,38,38,0.15);"
        if not needle:
            self.count.setText("")
            self.edit.setStyleSheet("")
        elif not self._spans:
            self.count.setText("No matches")
            self.edit.setStyleSheet(f"QLineEdit {{ {bad} }}")
        else:
            self.count.setText(f"{self._current + 1} of {len(self._spans)}")
            self.edit.setStyleSheet("")
        self.prev_button.setEnabled(len(self._spans) > 1)
        self.next_button.setEnabled(len(self._spans) > 1)
        if self.remark:
            self.note.setText(html.escape(self.remark))
            self.note.setToolTip("")
        elif self.loading:
            self.note.setText("older messages are still loading…")
            self.note.setToolTip("The count grows as the rest of the conversation is added")
        elif self.not_loaded:
            n = self.not_loaded
            self.note.setText(f"{n} older message{'s' if n != 1 else ''} not searched — "
                              "<a href='load'>show them</a>")
            self.note.setToolTip("Only the newest messages are shown; Ctrl+Shift+F searches all history")
        else:
            self.note.setText("")
            self.note.setToolTip("")
