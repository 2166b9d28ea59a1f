"""Search every conversation (Ctrl+Shift+F): a query field, filters and ranked results.

* Typing searches after a pause (:data:`DEBOUNCE_MS`); the query runs on a worker thread
  (SQLite FTS5 in :class:`deck_tray.services.history_index.HistoryIndex`), and the answer
  of an older query that arrives late is dropped.
* Filters: agents, project (part of the folder), a date range, and "Only my prompts" /
  "Only answers".
* Each result shows the session title (elided), agent, project, date and a snippet with
  the matched words in bold. Enter or a double click opens the session's tab scrolled to
  the hit (:func:`open_hit`).
* Named states instead of an empty list: start typing, the index is still being built
  ("Indexing… n of m files"), no history yet, no matches, and errors (with what to do).
* Remote hosts (#18, the ``remote/search_history`` setting): every configured host is asked at
  the same time as this machine's index (:class:`deck_tray.services.remote.RemoteHistory`); its
  hits merge in by rank as they arrive, each marked "on HOST", without moving the selection. A
  slow or unreachable host never holds up this machine's results: the status line says
  "lab: searching…", then "lab: 3 results", "lab: not reachable" or "lab: too old" (the
  tooltip says why and what to do). A remote hit opens the host's live session tab when the
  host lists the session; a past one says, in words, how to resume it over there.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as _dt
import html
import logging
import re
import shlex
import time
from typing import NamedTuple, Protocol

from PySide6.QtCore import (
    QDate,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QClipboard,
    QCloseEvent,
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPalette,
    QShortcut,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from deck_tray.core import past
from deck_tray.core.history import ROLE_LABELS, HistoryEntry, HistoryRole, QueryError, SearchHit, SearchQuery
from deck_tray.core.model import AgentKind, Session, remote_id
from deck_tray.core.wire import hit_host
from deck_tray.services.remote import HostSearch, RemoteHistory
from deck_tray.ui.icons import app_icon
from deck_tray.ui.window import MainWindow

log = logging.getLogger(__name__)

#: Pause after the last key before the query runs (milliseconds).
DEBOUNCE_MS = 250
#: Results asked for per query.
RESULT_LIMIT = 100

_DAY = 86_400.0
_RANGES = (("Any time", None), ("Past 24 hours", _DAY), ("Past 7 days", 7 * _DAY),
           ("Past 30 days", 30 * _DAY), ("Past year", 365 * _DAY), ("Between…", -1.0))
_ROLES: tuple[tuple[str, frozenset[HistoryRole]], ...] = (
    ("Prompts, answers and tools", frozenset()),
    ("Only my prompts", frozenset({HistoryRole.USER})),
    ("Only answers", frozenset({HistoryRole.ASSISTANT})))
_HINT = ("Words must all occur · \"a phrase\" · prefix* · this OR that.\n"
         "Enter opens the session at the hit.")


class HistorySource(Protocol):
    """What the window needs of the index (:class:`deck_tray.services.history_index.HistoryIndex`)."""

    def search(self, q: SearchQuery) -> list[SearchHit]:
        """Ranked hits (blocking)."""
        ...

    def session_entries(self, agent: AgentKind, session_id: str) -> list[HistoryEntry]:
        """Every entry of one session in order (blocking)."""
        ...


def count_sessions(index: HistorySource) -> int | None:
    """Worker thread: how many sessions the index holds (0: "No history yet"), None if unknown."""
    stats = getattr(index, "stats", None)
    if callable(stats):
        try:
            return int(stats().get("sessions", 0))
        except Exception as exc:
            log.debug("history stats failed: %s", exc)
    return None


class _Answer(NamedTuple):
    """A worker thread's answer to one query (carried by :attr:`_Relay.done`)."""

    hits: list[SearchHit]
    sessions: int | None  # sessions in the index when counted (only for no hits), else None
    elapsed_ms: float


def _py_date(d: QDate) -> _dt.date:
    """``d`` as a :class:`datetime.date` (``QDate.toPython()`` is typed ``object``)."""
    return _dt.date(d.year(), d.month(), d.day())


class _Relay(QObject):
    """Carries a worker thread's answer to the GUI thread (a queued signal). One per window,
    kept alive in :data:`_RELAYS` so a late answer never frees it on the worker thread."""

    done = Signal(int, object, object)  # generation, _Answer or None, error or None
    past = Signal(object, object, str)  # hit, Session or None, why not


_RELAYS: list[_Relay] = []


def when_text(ts: float, now: float | None = None) -> str:
    """A result's date: the time today, the weekday this week, else the date."""
    if ts <= 0:
        return ""
    now = time.time() if now is None else now
    t = time.localtime(ts)
    if time.strftime("%Y-%m-%d", t) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M", t)
    if now - ts < 6 * _DAY:
        return time.strftime("%a %H:%M", t)
    if t.tm_year == time.localtime(now).tm_year:
        return time.strftime("%d %b", t)
    return time.strftime("%d %b %Y", t)


def _project_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if path else ""


def snippet_html(hit: SearchHit, mark: str) -> str:
    """The snippet as HTML with the matched segments bold on ``mark`` (one line breaks kept)."""
    out = []
    for seg, is_match in hit.snippet or ((hit.text[:200], False),):
        text = html.escape(re.sub(r"\s+", " ", seg))
        out.append(f"<b style='background:{mark}'>{text}</b>" if is_match else text)
    return "".join(out)


class ResultDelegate(QStyledItemDelegate):
    """Paints one result: title and date, agent · project · role, and the snippet (2 lines)."""

    PAD = 8

    def _fonts(self, option: QStyleOptionViewItem) -> tuple[QFont, QFont]:
        bold = QFont(option.font)
        bold.setBold(True)
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.9))
        return bold, small

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        """Fixed height: a title line, a detail line and two snippet lines."""
        bold, small = self._fonts(option)
        body = QFontMetrics(option.font)
        h = QFontMetrics(bold).height() + QFontMetrics(small).height() + 2 * body.lineSpacing()
        return QSize(200, h + 2 * self.PAD + 6)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        """Draw the result (selection background from the style)."""
        hit = index.data(Qt.ItemDataRole.UserRole)
        if not isinstance(hit, SearchHit):
            return super().paint(painter, option, index)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        pal: QPalette = opt.palette
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        fg = pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        muted = QColor(fg)
        muted.setAlphaF(0.68)
        bold, small = self._fonts(opt)
        r: QRect = opt.rect.adjusted(self.PAD, self.PAD - 2, -self.PAD, -self.PAD)
        painter.save()
        # Line 1: title … date
        when = when_text(hit.ts)
        painter.setFont(small)
        date_w = painter.fontMetrics().horizontalAdvance(when) + 8
        painter.setPen(muted)
        line_h = painter.fontMetrics().height()
        painter.setFont(bold)
        title_h = painter.fontMetrics().height()
        painter.setFont(small)
        painter.drawText(QRect(r.right() - date_w, r.top(), date_w, title_h),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), when)
        painter.setFont(bold)
        painter.setPen(fg)
        title = painter.fontMetrics().elidedText(hit.title or hit.session_id[:8], Qt.TextElideMode.ElideRight,
                                                 r.width() - date_w)
        painter.drawText(QRect(r.left(), r.top(), r.width() - date_w, title_h),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), title)
        # Line 2: [on HOST ·] agent · project · who
        who = ROLE_LABELS.get(hit.role, hit.role.value) + (" · in a sub-agent" if hit.thread else "")
        detail = " · ".join(x for x in (hit.agent.label, _project_name(hit.project), who) if x)
        painter.setFont(small)
        y = r.top() + title_h + 1
        left = r.left()
        host = hit_host(hit)
        if host:  # a remote host's hit: its name first, in the accent colour, never elided
            on = f"on {host}"
            accent = pal.color(QPalette.ColorRole.Link)
            if pal.color(QPalette.ColorRole.Base).lightness() < 128 and accent.lightness() < 150:
                accent = accent.lighter(175)  # a dark palette without a light link colour
            painter.setPen(pal.color(QPalette.ColorRole.HighlightedText) if selected else accent)
            small_bold = QFont(small)
            small_bold.setBold(True)
            painter.setFont(small_bold)
            on_w = painter.fontMetrics().horizontalAdvance(on)
            painter.drawText(QRect(left, y, on_w, line_h),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), on)
            painter.setFont(small)
            left += on_w
            detail = " · " + detail
        painter.setPen(muted)
        painter.drawText(QRect(left, y, r.right() - left, line_h),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         painter.fontMetrics().elidedText(detail, Qt.TextElideMode.ElideMiddle, r.right() - left))
        y += line_h + 3
        # Lines 3–4: the snippet, matches bold and marked.
        doc = QTextDocument()
        doc.setDefaultFont(opt.font)
        doc.setDocumentMargin(0)
        dark = pal.color(QPalette.ColorRole.Base).lightness() < 128
        mark = "rgba(255,200,0,0.35)" if not dark else "rgba(255,190,60,0.30)"
        doc.setHtml(f"<span style='color:{fg.name()}'>{snippet_html(hit, mark)}</span>")
        doc.setTextWidth(r.width())
        clip_h = r.bottom() - y
        painter.translate(r.left(), y)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.clip = QRectF(0, 0, r.width(), clip_h)
        painter.setClipRect(ctx.clip)
        doc.documentLayout().draw(painter, ctx)
        painter.restore()
        return None


def resume_command(hit: SearchHit) -> str:
    """The command that continues the session of ``hit`` in its folder (on the machine it is
    on): ``cd FOLDER && claude --resume ID`` / ``codex resume ID`` / ``opencode --session ID``;
    ``""`` for an agent whose resume command deck-tray does not know (the agents watched through
    an adapter: :class:`~deck_tray.core.agents.base.AgentAdapter` names none)."""
    words = {AgentKind.CLAUDE_CODE: ["claude", "--resume", hit.session_id],
             AgentKind.CODEX: ["codex", "resume", hit.session_id],
             AgentKind.OPENCODE: ["opencode", "--session", hit.session_id]}.get(hit.agent)
    if words is None:
        return ""
    cmd = shlex.join(words)
    return f"cd {shlex.quote(hit.project)} && {cmd}" if hit.project else cmd


class SearchWindow(QWidget):
    """The history search window (one per app, non-modal).

    Args:
        index: the history index, or None while it is not available (the window says so).
        parent: owner (the main window), for stacking only; the window is a top-level one.
        remote: the remote hosts' search (None: this machine only); asked with every query,
            its answers merged in as they come.

    Signals:
        open_requested(SearchHit): the user opened a result (Enter, double click).
        past_loaded(SearchHit, Session | None, str): :meth:`load_past` finished: the session
            rebuilt for a read-only tab, or None and why.

    Attributes:
        state: the named state shown: ``"start"``, ``"indexing"``, ``"no_history"``,
            ``"no_matches"``, ``"error"``, ``"results"``, ``"unavailable"``, ``"asking_hosts"``
            (nothing here, remote hosts still asked).
        hosts: each remote host asked for the current query: its :class:`HostSearch`, or None
            while it has not answered.
        notice: the last thing said about opening a hit that cannot open here (a remote past
            session), ``""`` before.
    """

    open_requested = Signal(object)
    past_loaded = Signal(object, object, str)

    def __init__(self, index: HistorySource | None, parent: QWidget | None = None,
                 remote: RemoteHistory | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.index = index
        self.remote = remote
        self.hosts: dict[str, HostSearch | None] = {}
        self._local_hits: list[SearchHit] | None = None  # this machine's answer to the current query
        self.notice = ""
        self.setWindowTitle("Search history — deck-tray")
        self.setWindowIcon(app_icon())
        self.resize(760, 620)
        self.state = ""
        self._gen = 0
        self._remote_gen = 0  # the query generation the hosts were last asked for
        self._refresh_only = False  # the next run is the index's refresh of the same query
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-search")
        # Not a child: a worker that answers after the window is gone emits on a live object
        # (whose connections to the window Qt has removed).
        self._relay = _Relay()
        _RELAYS.append(self._relay)  # kept for the process: never freed on a worker thread
        self._relay.done.connect(self._answered)
        self._relay.past.connect(self.past_loaded)
        pool = self._pool
        self.destroyed.connect(lambda *_a: pool.shutdown(wait=False, cancel_futures=True))
        self._progress: tuple[int, int] | None = None  # (done, total) while the index builds
        self._sessions: int | None = None  # sessions in the index, when last counted (0: no history)
        self._last_query: SearchQuery | None = None
        self.elapsed_ms = 0.0
        if remote is not None:
            remote.answered.connect(self._host_answered)

        self.query = QLineEdit()
        self.query.setPlaceholderText("Search every conversation…")
        self.query.setClearButtonEnabled(True)
        f = self.query.font()
        f.setPointSizeF(f.pointSizeF() * 1.15)
        self.query.setFont(f)
        self.query.textChanged.connect(self.schedule)
        self.query.installEventFilter(self)

        self.agent_boxes: dict[AgentKind, QCheckBox] = {}
        filters = QHBoxLayout()
        filters.setSpacing(10)
        for kind in AgentKind:
            box = QCheckBox(kind.label)
            box.setChecked(True)
            box.toggled.connect(self.schedule)
            self.agent_boxes[kind] = box
            filters.addWidget(box)
        self.project = QLineEdit()
        self.project.setPlaceholderText("Project folder…")
        self.project.setClearButtonEnabled(True)
        self.project.setMaximumWidth(180)
        self.project.textChanged.connect(self.schedule)
        filters.addWidget(self.project)
        filters.addStretch(1)
        filters2 = QHBoxLayout()
        filters2.setSpacing(10)
        self.when = QComboBox()
        for label, _span in _RANGES:
            self.when.addItem(label)
        self.when.currentIndexChanged.connect(self._range_changed)
        today = QDate.currentDate()
        self.since_date = QDateEdit(today.addDays(-7))
        self.until_date = QDateEdit(today)
        for d in (self.since_date, self.until_date):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
            d.dateChanged.connect(self.schedule)
            d.hide()
        self.and_label = QLabel("and")
        self.and_label.hide()
        self.roles = QComboBox()
        for label, _roles in _ROLES:
            self.roles.addItem(label)
        self.roles.currentIndexChanged.connect(self.schedule)
        filters2.addWidget(self.when)
        filters2.addWidget(self.since_date)
        filters2.addWidget(self.and_label)
        filters2.addWidget(self.until_date)
        filters2.addWidget(self.roles)
        filters2.addStretch(1)

        self.results = QListWidget()
        self.results.setItemDelegate(ResultDelegate(self.results))
        self.results.setUniformItemSizes(True)
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.results.itemActivated.connect(self._activated)
        self.results.itemDoubleClicked.connect(self._activated)
        self.results.installEventFilter(self)

        self.state_title = QLabel()
        self.state_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_title.setWordWrap(True)
        tf = self.state_title.font()
        tf.setPointSizeF(tf.pointSizeF() * 1.3)
        tf.setBold(True)
        self.state_title.setFont(tf)
        self.state_detail = QLabel()
        self.state_detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_detail.setWordWrap(True)
        self.state_detail.setTextFormat(Qt.TextFormat.PlainText)
        self.state_detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_detail.setStyleSheet("color: palette(mid);")
        self.clear_filters_button = QPushButton("Clear filters")
        self.clear_filters_button.clicked.connect(self.clear_filters)
        self.clear_filters_button.hide()
        state_page = QWidget()
        sv = QVBoxLayout(state_page)
        sv.addStretch(1)
        sv.addWidget(self.state_title)
        sv.addWidget(self.state_detail)
        sv.addWidget(self.clear_filters_button, 0, Qt.AlignmentFlag.AlignHCenter)
        sv.addStretch(2)
        self.stack = QStackedWidget()
        self.stack.addWidget(state_page)
        self.stack.addWidget(self.results)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setStyleSheet("color: palette(mid);")

        layout = QVBoxLayout(self)
        layout.addWidget(self.query)
        layout.addLayout(filters)
        layout.addLayout(filters2)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.status)

        esc = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        esc.setContext(Qt.ShortcutContext.WindowShortcut)
        esc.activated.connect(self.close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.run_now)
        self._show_state("start")

    # -- presenting ----------------------------------------------------------------------
    def present(self, text: str | None = None) -> None:
        """Show and raise the window with the focus in the query (``text`` replaces it)."""
        if text is not None:
            self.query.setText(text)
        elif not self.query.text().strip():
            self.run_now()  # counts the indexed sessions: "No history yet" shows at once
        self.show()
        self.raise_()
        self.activateWindow()
        self.query.setFocus()
        self.query.selectAll()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing only hides: the query and filters stay for the next time."""
        self._timer.stop()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the worker thread (a query in flight finishes; its answer is dropped)."""
        self._gen += 1
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.remote is not None:
            self.remote.cancel()

    # -- index state -----------------------------------------------------------------------
    def set_index(self, index: HistorySource | None) -> None:
        """Use ``index`` from now on (None: not available) and search again."""
        self.index = index
        self.schedule()

    def set_progress(self, done: int, total: int) -> None:
        """The indexer's ``progress(done, total)``: while ``done < total`` the index is building."""
        was = self._progress
        self._progress = (done, total) if done < total else None
        if self.state in ("start", "indexing", "no_history", "no_matches"):
            self._refresh_state(no_results=self.results.count() == 0)
        if was is not None and self._progress is None and self.query.text().strip():
            self._refresh_only = True
            self.schedule()  # built: ask again
        self._update_status()

    def index_updated(self) -> None:
        """The indexer's ``updated()``: new entries, so the shown query is asked again (and
        "No history yet" checked again)."""
        self._sessions = None
        if self.isVisible():
            self._refresh_only = True  # this machine's index changed, not the hosts': they are not asked again
            self.schedule()

    # -- querying -----------------------------------------------------------------------------
    def schedule(self) -> None:
        """Search after :data:`DEBOUNCE_MS` without further changes."""
        self._timer.start()

    def build_query(self) -> SearchQuery | None:
        """The query the fields describe, or None when there is nothing to search for."""
        text = self.query.text().strip()
        if not text:
            return None
        agents = frozenset(k for k, b in self.agent_boxes.items() if b.isChecked())
        if len(agents) == len(self.agent_boxes):
            agents = frozenset()
        since = until = None
        span = _RANGES[self.when.currentIndex()][1]
        if span is not None and span > 0:
            since = time.time() - span
        elif span is not None:
            since = _dt.datetime.combine(_py_date(self.since_date.date()), _dt.time()).timestamp()
            until = _dt.datetime.combine(_py_date(self.until_date.date()), _dt.time()).timestamp() + _DAY
        return SearchQuery(text=text, agents=agents, project=self.project.text().strip(), since=since,
                           until=until, roles=_ROLES[self.roles.currentIndex()][1], limit=RESULT_LIMIT)

    def filters_active(self) -> bool:
        """Whether any filter narrows the search."""
        return (any(not b.isChecked() for b in self.agent_boxes.values()) or bool(self.project.text().strip())
                or self.when.currentIndex() != 0 or self.roles.currentIndex() != 0)

    def clear_filters(self) -> None:
        """Back to every agent, project, time and role."""
        for b in self.agent_boxes.values():
            b.setChecked(True)
        self.project.clear()
        self.when.setCurrentIndex(0)
        self.roles.setCurrentIndex(0)
        self.run_now()

    def run_now(self) -> None:
        """Run the query the fields describe now (on the worker thread)."""
        self._timer.stop()
        q = self.build_query()
        keep_hosts = self._refresh_only and q is not None and q == self._last_query and bool(self.hosts)
        self._refresh_only = False
        self._gen += 1
        gen = self._gen
        self._last_query = q
        self._local_hits = None
        if not keep_hosts:
            self.hosts = {}
            if self.remote is not None:
                self.remote.cancel()
        if q is None:
            self.results.clear()
            self._refresh_state()
            if self.index is not None and self._sessions is None:
                source, relay = self.index, self._relay
                try:
                    self._pool.submit(lambda: relay.done.emit(gen, _Answer([], count_sessions(source), 0.0), None))
                except RuntimeError:
                    pass
            return
        if not any(b.isChecked() for b in self.agent_boxes.values()):
            self.results.clear()
            self._show_state("no_matches", "No agent selected", "Tick at least one agent above.")
            return
        index = self.index
        if index is None:
            self._show_state("unavailable", "The history index is not available",
                             "deck-tray could not open its history database; see the log for why.")
            return
        relay = self._relay
        if self.remote is not None and not keep_hosts:  # with this machine's; the answers come one by one
            self._remote_gen = gen
            self.hosts = dict.fromkeys(self.remote.search(gen, q))

        # Captures no widget: the last reference to a Qt object must never be dropped on
        # the worker thread (it would be destroyed there).
        def work() -> None:
            started = time.perf_counter()
            try:
                hits = index.search(q)
                elapsed = (time.perf_counter() - started) * 1000.0
                sessions = count_sessions(index) if not hits else None
            except Exception as exc:
                relay.done.emit(gen, None, exc)
                return
            relay.done.emit(gen, _Answer(hits, sessions, elapsed), None)

        try:
            self._pool.submit(work)
        except RuntimeError:  # shut down
            return
        self.status.setText("Searching…")

    def _answered(self, gen: int, answer: object, error: object) -> None:
        if gen != self._gen:
            return  # an older query answered late: dropped
        if isinstance(error, BaseException):
            if isinstance(error, QueryError):
                self._show_state("error", "Nothing to search for", f"{error}. {_HINT.splitlines()[0]}")
            else:
                log.warning("history search failed: %s", error)
                self._show_state("error", "Search failed",
                                 f"{error}. Try again; if it keeps failing, see the log file "
                                 "(the history index may be rebuilt with the next start).")
            self._update_status()
            return
        assert isinstance(answer, _Answer)
        hits, sessions, self.elapsed_ms = answer
        if sessions is not None:
            self._sessions = sessions
        if self._last_query is None:  # the empty query's session count arrived
            self._refresh_state()
            return
        self._local_hits = list(hits)
        self._show_hits(first=True)

    def _host_answered(self, gen: int, answer: object) -> None:
        """One remote host's answer (:attr:`RemoteHistory.answered`): merged in as it comes."""
        if gen != self._remote_gen or not isinstance(answer, HostSearch) or answer.host not in self.hosts:
            return  # for an older query, or a host no longer asked
        self.hosts[answer.host] = answer
        if answer.problem is not None:
            log.info("history search on %s: %s", answer.host, answer.detail)
        if self._local_hits is not None:  # else this machine's answer shows everything
            self._show_hits(first=False)
        else:
            self._update_status()

    def _show_hits(self, *, first: bool) -> None:
        """This machine's hits and the remote hosts' that arrived, by rank (lower is better), at
        most :data:`RESULT_LIMIT`; the selected result stays selected (``first``: row 0)."""
        hits = list(self._local_hits or ())
        for got in self.hosts.values():
            if got is not None:
                hits += got.hits
        if any(got is not None and got.hits for got in self.hosts.values()):
            hits = sorted(hits, key=lambda h: h.rank)[:RESULT_LIMIT]
        current = self.results.currentItem()
        keep = None if first or current is None else current.data(Qt.ItemDataRole.UserRole)
        self.results.clear()
        row = 0
        for i, hit in enumerate(hits):
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, hit)
            host = hit_host(hit)
            item.setToolTip(f"{hit.title}\n{hit.project}\n{hit.agent.label} · "
                            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(hit.ts)) if hit.ts else ''}"
                            + (f" · on {host}" if host else ""))
            self.results.addItem(item)
            if keep is not None and hit == keep:
                row = i
        if hits:
            self.results.setCurrentRow(row)
            self._show_state("results")
        elif any(got is None for got in self.hosts.values()):
            waiting = ", ".join(h for h, got in self.hosts.items() if got is None)
            self._show_state("asking_hosts", f"Nothing here for “{self._last_query.text if self._last_query else ''}”",
                             f"Still asking {waiting}…")
        else:
            self._refresh_state(no_results=True)
        self._update_status()

    # -- states --------------------------------------------------------------------------------
    def _refresh_state(self, no_results: bool = False) -> None:
        q = self._last_query
        if self.state in ("results", "asking_hosts") and not no_results and q is not None:
            return
        if self._progress is not None and (q is None or no_results):
            done, total = self._progress
            self._show_state("indexing", f"Indexing… {done:,} of {total:,} files",
                             "Your conversations are being read; results appear as they are indexed.")
        elif self._sessions == 0 and (q is None or no_results):
            self._show_state("no_history", "No history yet",
                             "Conversations of Claude Code, Codex and opencode on this machine appear here "
                             "once an agent has run.")
        elif q is None:
            self._show_state("start", "Search every conversation", _HINT)
        elif no_results:
            more = " or clear the filters" if self.filters_active() else ""
            self._show_state("no_matches", f"No matches for “{q.text}”",
                             f"Try fewer or other words{more}. {_HINT.splitlines()[0]}")

    def _show_state(self, state: str, title: str = "", detail: str = "") -> None:
        self.state = state
        if state == "results":
            self.stack.setCurrentWidget(self.results)
        else:
            if state == "start" and not title:
                title, detail = "Search every conversation", _HINT
            self.state_title.setText(title)
            self.state_detail.setText(detail)
            self.clear_filters_button.setVisible(state == "no_matches" and self.filters_active())
            self.stack.setCurrentIndex(0)
        self._update_status()

    def _update_status(self) -> None:
        parts = []
        if self.state == "results":
            n = self.results.count()
            parts.append(f"{n} result{'s' if n != 1 else ''}" + (" (the best ones)" if n >= RESULT_LIMIT else ""))
        if self._progress is not None:
            done, total = self._progress
            parts.append(f"Indexing… {done:,} of {total:,} files — results may be incomplete")
        tips = []
        for host, got in self.hosts.items():
            parts.append(f"{host}: searching…" if got is None else got.label)
            if got is not None and got.detail:
                tips.append(got.detail)
        self.status.setText(" · ".join(parts))
        self.status.setToolTip("\n".join(tips))

    def _range_changed(self, i: int) -> None:
        custom = _RANGES[i][1] == -1.0
        for w in (self.since_date, self.and_label, self.until_date):
            w.setVisible(custom)
        self.schedule()

    def load_past(self, hit: SearchHit) -> None:
        """Rebuild the session of ``hit`` on the worker thread (index entries, else its
        transcript); :attr:`past_loaded` carries it back."""
        index, relay = self.index, self._relay

        def work() -> None:
            session = None
            why = ""
            try:
                entries = index.session_entries(hit.agent, hit.session_id) if index is not None else []
                session = past.session_from_entries(hit, entries) if entries else past.session_from_transcript(hit)
                if session is None and not past.has_reader(hit.agent):
                    why = (f"the history has no entries of this session, and this deck-tray cannot read "
                           f"{hit.agent.label} session files")
                elif session is None:
                    why = (f"the history has no entries of this session and its transcript "
                           f"{hit.source_path or ''} cannot be read").replace("  ", " ")
            except Exception as exc:
                log.warning("could not load past session %s: %s", hit.session_id, exc)
                why = f"reading it failed ({exc})"
            relay.past.emit(hit, session, why)

        try:
            self._pool.submit(work)
        except RuntimeError:
            pass

    def show_remote_hit(self, hit: SearchHit) -> QMessageBox:
        """Say, in words, why a remote host's past session does not open here and how to
        continue it over there (non-modal, with the entry and a "Copy command" button, which
        copies the command and closes the note)."""
        host = hit_host(hit)
        cmd = resume_command(hit)
        title = hit.title or hit.session_id[:8]
        if cmd:
            how = f"To continue it, run this on {host}:\n{cmd}"
        else:  # an agent whose resume command deck-tray does not know: what identifies the session
            how = (f"deck-tray does not know how {hit.agent.label} resumes a session; on {host}, its session id is "
                   f"{hit.session_id}" + (f" (folder {hit.project})" if hit.project else "") + ".")
            cmd = hit.session_id
        self.notice = (f"“{title}” is a past session on {host}: deck-tray opens a remote session only while "
                       f"{host} lists it, and cannot resume sessions of another machine.\n\n{how}")
        self.status.setText(f"“{title}” is on {host} and not running there; see the note to resume it there.")
        box = QMessageBox(QMessageBox.Icon.Information, f"A session on {host} — deck-tray", self.notice,
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        text = re.sub(r"\s+", " ", hit.text).strip()
        box.setInformativeText(f"The entry found ({ROLE_LABELS.get(hit.role, hit.role.value)}, "
                               f"{when_text(hit.ts) or 'no date'}):\n{text[:600] + ('…' if len(text) > 600 else '')}")
        copy = box.addButton("Copy command" if cmd != hit.session_id else "Copy session id",
                             QMessageBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: self._copy(cmd))
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.show()
        return box

    def _copy(self, text: str) -> None:
        QApplication.clipboard().setText(text, QClipboard.Mode.Clipboard)
        self.status.setText("Copied: " + text)

    # -- results -------------------------------------------------------------------------------
    def hits(self) -> list[SearchHit]:
        """The results shown, best first."""
        out = []
        for i in range(self.results.count()):
            hit = self.results.item(i).data(Qt.ItemDataRole.UserRole)
            if isinstance(hit, SearchHit):
                out.append(hit)
        return out

    def _activated(self, item: QListWidgetItem) -> None:
        hit = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(hit, SearchHit):
            self.open_requested.emit(hit)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Down in the query goes to the results, Enter opens the current one, Esc closes."""
        if isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key == Qt.Key.Key_Escape:
                self.close()
                return True
            if obj is self.query and key in (Qt.Key.Key_Down, Qt.Key.Key_PageDown) and self.results.count():
                self.results.setFocus()
                if self.results.currentRow() < 0:
                    self.results.setCurrentRow(0)
                return True
            if obj is self.query and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                if self._timer.isActive():
                    self.run_now()  # Enter before the pause: search now, open nothing yet
                    return True
                cur = self.results.currentItem()
                if cur is not None and self.state == "results":
                    self._activated(cur)
                return True
        return super().eventFilter(obj, event)


def link(search: SearchWindow, window: MainWindow) -> None:
    """Open results in ``window``: a session the registry lists (or a tab already open) in
    its tab, any other as a read-only past-session tab rebuilt off the GUI thread; either
    scrolled to the hit, which is selected in the tab's find bar."""

    def term(hit: SearchHit) -> str:
        """The typed text when the hit holds it as typed (a phrase), else its first match."""
        typed = search.query.text().strip().strip('"')
        return typed if typed and typed.casefold() in hit.text.casefold() else past.hit_term(hit)

    def opened(hit: SearchHit) -> None:
        host = hit_host(hit)
        if host:  # a remote host's: its live tab when the host lists it, else words
            rid = remote_id(host, hit.session_id)
            if window.registry.get(rid) is not None or rid in window.tabs_by_id:
                window.show_hit(dataclasses.replace(hit, session_id=rid), term=term(hit))
            else:
                search.show_remote_hit(hit)
            return
        if window.registry.get(hit.session_id) is not None or hit.session_id in window.tabs_by_id:
            window.show_hit(hit, term=term(hit))
        else:
            search.status.setText(f"Opening “{hit.title}”…")
            search.load_past(hit)

    def loaded(hit: SearchHit, session: Session | None, why: str) -> None:
        if session is None:
            search.status.setText(f"Could not open “{hit.title}”: {why}.")
            return
        search._update_status()
        window.show_hit(hit, session, term(hit))

    search.open_requested.connect(opened)
    search.past_loaded.connect(loaded)
