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
import html
import re
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPalette, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QTextEdit, QToolButton, QWidget

#: At most this many matches are highlighted (all are counted).
MAX_HIGHLIGHTS = 2000


def utf16_positions(text: str) -> Callable[[int], int]:
    """Map a Python string index of ``text`` to a QTextDocument position (UTF-16 units)."""
    if text.isascii():
        return lambda i: i
    wide = [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF]
    if not wide:
        return lambda i: i
    return lambda i: i + bisect.bisect_left(wide, i)


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

    def __init__(self, view: QTextEdit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.not_loaded = 0
        self.loading = False
        self.remark = ""  # shown instead of the loading note until the text changes
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
        """Search the view again (its text changed, or the field did) and redraw."""
        self._timer.stop()
        if self.isHidden():
            return
        needle = self.edit.text()
        doc = self.view.document()
        raw = doc.toRawText()
        to_pos = utf16_positions(raw)
        self._spans = [(to_pos(a), to_pos(b)) for a, b in find_spans(raw, needle)]
        total = doc.characterCount()
        if not self._spans:
            self._current = -1
        elif self._from_end is not None:
            # The same match as before: the one at the same distance from the end.
            want = total - self._from_end
            self._current = min(range(len(self._spans)), key=lambda i: abs(self._spans[i][0] - want))
        else:
            # A new search starts at the match nearest the bottom of what is in view
            # (the newest messages are at the bottom).
            self._current = self._nearest_visible()
        self._show(scroll=self._from_end is None)

    def refresh_soon(self) -> None:
        """Search again shortly (coalesces the bursts of a conversation being built)."""
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def select_near(self, position: int) -> None:
        """Make the match at or nearest after document ``position`` current (and show it)."""
        if not self._spans:
            return
        starts = [a for a, _b in self._spans]
        i = min(bisect.bisect_left(starts, position), len(starts) - 1)
        self._current = i
        self._show(scroll=True)

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
        all_bg, cur_bg, cur_fg = self._colors()
        selections: list[QTextEdit.ExtraSelection] = []
        lo = max(0, self._current - MAX_HIGHLIGHTS // 2)
        for i, (a, b) in enumerate(self._spans[lo:lo + MAX_HIGHLIGHTS], start=lo):
            sel = QTextEdit.ExtraSelection()
            cur = QTextCursor(doc)
            cur.setPosition(a)
            cur.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cur  # type: ignore[attr-defined]
            fmt = QTextCharFormat()
            fmt.setBackground(cur_bg if i == self._current else all_bg)
            if i == self._current:
                fmt.setForeground(cur_fg)
            sel.format = fmt  # type: ignore[attr-defined]
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
