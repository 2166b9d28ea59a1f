"""Ctrl+Shift+F: the history search window over a real HistoryIndex of captured and
generated transcripts — ranked results as you type, filters, named states, stale answers
dropped, and opening a result at the hit (live tab or read-only past tab)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from deck_tray.core import past, wire
from deck_tray.core.history import HistoryRole, SearchHit, SearchQuery
from deck_tray.core.model import AgentKind, Message, MessageRole, PaneRef, SessionStatus
from deck_tray.core.wire import RemoteHit
from deck_tray.services.history_store import HistoryIndex
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.remote import HostSearch, RemoteHistory, Remotes, SearchProblem
from deck_tray.ui import search_window
from deck_tray.ui.search_window import SearchWindow, link
from deck_tray.ui.window import MainWindow

pytestmark = pytest.mark.gui

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OLD_TS = time.mktime((2025, 3, 10, 12, 0, 0, 0, 0, -1))
LONG_SID = "5b0f3c7e-1111-4222-8333-944455556666"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def write_claude(path: Path, sid: str, cwd: str, turns: list[tuple[str, str]], t0: float) -> None:
    """A Claude Code transcript: one typed prompt and one text answer per turn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"type": "ai-title", "aiTitle": f"Generated {sid[:4]}", "sessionId": sid}]
    for i, (prompt, answer) in enumerate(turns):
        ts = t0 + 60 * i
        lines.append({"type": "user", "message": {"role": "user", "content": prompt}, "uuid": f"u{i}",
                      "timestamp": _iso(ts), "cwd": cwd, "sessionId": sid, "promptSource": "typed"})
        lines.append({"type": "assistant", "message": {"role": "assistant", "model": "m", "id": f"m{i}",
                                                        "content": [{"type": "text", "text": answer}]},
                      "uuid": f"a{i}", "timestamp": _iso(ts + 5), "cwd": cwd, "sessionId": sid})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.fixture
def history(tmp_path: Path) -> HistoryIndex:
    """Captured Claude and Codex transcripts plus a long generated one from March 2025."""
    claude = tmp_path / "claude" / "projects"
    codex = tmp_path / "codex" / "sessions" / "2026" / "11" / "22"
    claude.mkdir(parents=True)
    codex.mkdir(parents=True)
    sid = "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"
    (claude / "-home-dev-work-proj").mkdir()
    shutil.copy(FIXTURES / "claude-code-2.1.197-interactive.jsonl", claude / "-home-dev-work-proj" / f"{sid}.jsonl")
    shutil.copy(FIXTURES / "codex-0.169.0-exec.jsonl",
                codex / "rollout-2026-11-22T01-00-00-01a200e2-3b74-7260-8ec7-4dd0b34227be.jsonl")
    turns = [(f"step {i}: look at module {i}", f"Module {i} looks fine, nothing to change.") for i in range(150)]
    turns[20] = ("why does the token refresh fail after midnight?",
                 "The token refresh compares local time with UTC; fixed in auth/refresh.py.")
    write_claude(claude / "-home-dev-api" / f"{LONG_SID}.jsonl", LONG_SID, "/home/dev/api", turns, OLD_TS)
    index = HistoryIndex(tmp_path / "history.db")
    files = [(AgentKind.CLAUDE_CODE, str(p)) for p in claude.glob("*/*.jsonl")]
    files += [(AgentKind.CODEX, str(p)) for p in codex.glob("*.jsonl")]
    assert index.sync_files(files) > 300
    yield index
    index.close()


def make_search(qtbot, index) -> SearchWindow:
    w = SearchWindow(index)
    qtbot.addWidget(w)
    w.resize(760, 560)
    w.present()
    return w


def typed(qtbot, w: SearchWindow, text: str) -> None:
    w.query.clear()
    QTest.keyClicks(w.query, text)


def test_typing_shows_ranked_results_from_both_agents(qtbot, history: HistoryIndex) -> None:
    w = make_search(qtbot, history)
    assert w.state == "start"
    typed(qtbot, w, "hello")
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    hits = w.hits()
    assert {h.agent for h in hits} == {AgentKind.CLAUDE_CODE, AgentKind.CODEX}
    assert hits[0].role is HistoryRole.USER, "a prompt that matches ranks first"
    assert [h.rank for h in hits] == sorted(h.rank for h in hits)
    assert any(m for h in hits for _s, m in h.snippet)
    assert "result" in w.status.text()
    html = search_window.snippet_html(hits[0], "yellow")
    assert "<b" in html and "hello" in html.lower()
    w.agent_boxes[AgentKind.CODEX].setFocus()
    QTest.keyClick(w.windowHandle(), Qt.Key.Key_Escape)
    assert not w.isVisible(), "Esc closes the window"
    w.present()
    assert w.query.text() == "hello", "what was typed is kept"


def test_typing_is_debounced_and_a_late_answer_is_dropped(qtbot) -> None:
    calls: list[str] = []
    gate = threading.Event()

    class Slow:
        def search(self, q: SearchQuery) -> list[SearchHit]:
            calls.append(q.text)
            if q.text == "first":
                gate.wait(5)  # answers after the second query
            return [SearchHit(AgentKind.CODEX, q.text, f"title {q.text}", "/p", "", "", 0, HistoryRole.USER,
                              time.time(), q.text, ((q.text, True),), -1.0)]

        def session_entries(self, agent, session_id):
            return []

    w = make_search(qtbot, Slow())
    typed(qtbot, w, "first")
    qtbot.waitUntil(lambda: calls == ["first"], timeout=3000)
    typed(qtbot, w, "second")
    qtbot.wait(search_window.DEBOUNCE_MS + 150)
    gate.set()
    qtbot.waitUntil(lambda: w.state == "results", timeout=3000)
    qtbot.wait(100)
    assert calls == ["first", "second"], "one query per pause in typing, not one per key"
    assert [h.session_id for h in w.hits()] == ["second"], "the late answer to 'first' was dropped"


def test_filters(qtbot, history: HistoryIndex) -> None:
    w = make_search(qtbot, history)
    typed(qtbot, w, "hello")
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    w.agent_boxes[AgentKind.CLAUDE_CODE].setChecked(False)
    qtbot.waitUntil(lambda: w.hits() and {h.agent for h in w.hits()} == {AgentKind.CODEX}, timeout=5000)
    w.agent_boxes[AgentKind.CLAUDE_CODE].setChecked(True)
    w.roles.setCurrentIndex(2)  # Only answers
    qtbot.waitUntil(lambda: w.hits() and {h.role for h in w.hits()} == {HistoryRole.ASSISTANT}, timeout=5000)
    w.roles.setCurrentIndex(1)  # Only my prompts
    qtbot.waitUntil(lambda: w.hits() and {h.role for h in w.hits()} == {HistoryRole.USER}, timeout=5000)
    w.roles.setCurrentIndex(0)
    typed(qtbot, w, "token refresh")
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    w.project.setText("work/proj")
    qtbot.waitUntil(lambda: w.state == "no_matches", timeout=5000)
    assert w.clear_filters_button.isVisible()
    w.project.setText("api")
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    assert {h.project for h in w.hits()} == {"/home/dev/api"}
    w.when.setCurrentIndex(2)  # Past 7 days: the March 2025 session is older
    qtbot.waitUntil(lambda: w.state == "no_matches", timeout=5000)
    w.when.setCurrentIndex(len(search_window._RANGES) - 1)  # Between…
    assert w.since_date.isVisible()
    from PySide6.QtCore import QDate
    w.since_date.setDate(QDate(2025, 3, 1))
    w.until_date.setDate(QDate(2025, 3, 31))
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    w.clear_filters()
    qtbot.waitUntil(lambda: w.state == "results" and not w.filters_active(), timeout=5000)


def test_named_states(qtbot, tmp_path: Path, history: HistoryIndex) -> None:
    w = make_search(qtbot, history)
    typed(qtbot, w, "zebracornflakes")
    qtbot.waitUntil(lambda: w.state == "no_matches", timeout=5000)
    assert "No matches for “zebracornflakes”" in w.state_title.text()
    assert not w.clear_filters_button.isVisible()
    typed(qtbot, w, "***")
    qtbot.waitUntil(lambda: w.state == "error", timeout=5000)
    assert "Nothing to search for" in w.state_title.text()
    w.set_progress(3, 10)
    typed(qtbot, w, "zebracornflakes")
    qtbot.waitUntil(lambda: w.state == "indexing", timeout=5000)
    assert w.state_title.text() == "Indexing… 3 of 10 files"
    w.set_progress(10, 10)
    assert w.state == "no_matches"
    # An empty index: "No history yet" as soon as the window opens.
    empty = HistoryIndex(tmp_path / "empty.db")
    w2 = make_search(qtbot, empty)
    qtbot.waitUntil(lambda: w2.state == "no_history", timeout=5000)
    assert w2.state_title.text() == "No history yet"
    empty.sync_files([(AgentKind.CLAUDE_CODE, str(next((tmp_path / "claude" / "projects").glob("*/*.jsonl"))))])
    w2.index_updated()  # the indexer's updated()
    qtbot.waitUntil(lambda: w2.state == "start", timeout=5000)
    empty.close()
    w3 = make_search(qtbot, None)
    typed(qtbot, w3, "x")
    qtbot.waitUntil(lambda: w3.state == "unavailable", timeout=5000)


def _window(tmp_path: Path, qtbot, reg: SessionRegistry) -> MainWindow:
    win = MainWindow(reg, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    return win


def _open_first(qtbot, w: SearchWindow, text: str) -> SearchHit:
    typed(qtbot, w, text)
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    hit = w.hits()[0]
    w.results.setCurrentRow(0)
    QTest.keyClick(w.query, Qt.Key.Key_Return)  # Enter opens the current result
    return hit


def test_opening_a_past_session_opens_a_read_only_tab_at_the_hit(qtbot, tmp_path: Path,
                                                                history: HistoryIndex) -> None:
    reg = SessionRegistry()
    win = _window(tmp_path, qtbot, reg)
    w = make_search(qtbot, history)
    link(w, win)
    hit = _open_first(qtbot, w, "token refresh")
    assert hit.session_id == LONG_SID and hit.role is HistoryRole.USER
    qtbot.waitUntil(lambda: LONG_SID in win.tabs_by_id, timeout=5000)
    tab = win.tabs_by_id[LONG_SID]
    assert win.current_tab() is tab and tab.past
    assert not tab.answer_row.isVisibleTo(tab) and tab.past_note.isVisibleTo(tab)
    assert tab.resume_button.isVisibleTo(tab)
    assert len(tab.session.messages) == 300, "the whole session, from the index"
    qtbot.waitUntil(lambda: tab._reveal is None and not tab._older, timeout=10_000)
    cur = tab.view.textCursor()
    assert cur.selectedText().lower() == "token refresh", "the typed phrase, as the hit holds it"
    assert "why does the token refresh fail" in cur.block().text()
    assert tab.view.viewport().rect().contains(tab.view.cursorRect(cur).center()), "scrolled to the hit"
    assert tab.find_bar.isVisible() and tab.find_bar.edit.text() == "token refresh"
    # The registry starts listing it (resumed): the tab follows the live session.
    live = replace(tab.session, status=SessionStatus.IDLE, pid=4242, pane=PaneRef("tmux", "%3", "/s", "w:1.1"),
                   reason="ready — live status file, just now")
    reg.apply([live])
    qtbot.waitUntil(lambda: not tab.past, timeout=3000)
    assert tab.answer_row.isVisibleTo(tab) and not tab.resume_button.isVisibleTo(tab)


def test_opening_a_listed_session_opens_its_own_tab_at_the_hit(qtbot, tmp_path: Path,
                                                              history: HistoryIndex) -> None:
    reg = SessionRegistry()
    probe = SearchHit(AgentKind.CLAUDE_CODE, "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a", "", "/home/dev/work/proj",
                      str(tmp_path / "claude/projects/-home-dev-work-proj/6c891d37-ea8a-4230-a6e5-8df46b7b1a8a.jsonl"),
                      "", 0, HistoryRole.USER, 0.0, "", (), 0.0)
    s = past.session_from_transcript(probe)
    assert s is not None and s.messages
    reg.apply([replace(s, status=SessionStatus.IDLE, pid=99, reason="ready — transcript")])
    win = _window(tmp_path, qtbot, reg)
    w = make_search(qtbot, history)
    link(w, win)
    typed(qtbot, w, "resumed")
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    hit = next(h for h in w.hits() if h.session_id == s.id)
    w.open_requested.emit(hit)
    tab = win.tabs_by_id.get(s.id)
    assert tab is not None and not tab.past and win.current_tab() is tab
    qtbot.waitUntil(lambda: tab._reveal is None, timeout=5000)
    assert tab.view.textCursor().selectedText().lower() == "resumed"


def test_entry_points_and_the_resume_button(qtbot, tmp_path: Path) -> None:
    from PySide6.QtGui import QKeySequence

    from deck_tray.core.model import Session
    from deck_tray.ui.tray import Tray

    reg = SessionRegistry()
    win = _window(tmp_path, qtbot, reg)
    assert win.search_action.shortcut() == QKeySequence("Ctrl+Shift+F")
    with qtbot.waitSignal(win.search_requested, timeout=1000):
        QTest.keyClick(win.windowHandle(), Qt.Key.Key_F,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    tray = Tray(reg)
    tray.rebuild_menu()
    entry = next(a for a in tray.menu.actions() if a.text() == "Search history…")
    with qtbot.waitSignal(tray.search_requested, timeout=1000):
        entry.trigger()
    ended = Session(id="c-ended", agent=AgentKind.CLAUDE_CODE, cwd="/w", title="ended one",
                    status=SessionStatus.ENDED, reason="ended — process table")
    live = Session(id="x-live", agent=AgentKind.CODEX, cwd="/w", title="live one", pid=7,
                   pane=PaneRef("tmux", "%1", "/s", "w:1.0"), status=SessionStatus.IDLE, reason="ready — rollout")
    oc = Session(id="ses_1", agent=AgentKind.OPENCODE, cwd="/w", title="oc", status=SessionStatus.IDLE,
                 reason="ready — server", server="http://127.0.0.1:4096")
    reg.apply([ended, live, oc])
    t_ended, t_live, t_oc = (win.open_session(s.id) for s in (ended, live, oc))
    assert t_ended is not None and t_live is not None and t_oc is not None
    assert t_ended.resume_button.isVisibleTo(t_ended) and "claude --resume c-ended" in t_ended.resume_button.toolTip()
    assert not t_live.resume_button.isVisibleTo(t_live), "a running agent is answered, not resumed"
    assert not t_oc.resume_button.isVisibleTo(t_oc) and t_oc.terminal_button.isVisibleTo(t_oc)
    with qtbot.waitSignal(win.action_requested, timeout=1000) as sig:
        t_ended.resume_button.click()
    assert sig.args == ["c-ended", "resume", ""]


def test_the_indexer_fills_the_window_as_it_builds(qtbot, qloop, tmp_path: Path, history: HistoryIndex) -> None:
    """The real HistoryIndexer over the same transcripts: the window shows its progress and,
    once built, the results (the ``history`` fixture only provides the files here)."""
    import asyncio

    from deck_tray.services.history_indexer import HistoryIndexer

    indexer = HistoryIndexer(HistoryIndex(tmp_path / "fresh.db"), lambda: (tmp_path / "claude", tmp_path / "codex"))
    w = make_search(qtbot, indexer.index)
    seen: list[tuple[int, int]] = []
    indexer.progress.connect(lambda done, total: seen.append((done, total)))
    indexer.progress.connect(w.set_progress)
    indexer.updated.connect(w.index_updated)
    typed(qtbot, w, "token refresh")

    async def run() -> None:
        indexer.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while not (w.state == "results" and seen and seen[-1][0] == seen[-1][1]):
                assert loop.time() < deadline, f"state {w.state}, progress {seen}"
                await asyncio.sleep(0.05)
        finally:
            await indexer.stop()

    qloop.run_until_complete(run())
    assert seen[-1] == (3, 3), seen
    assert w.hits()[0].session_id == LONG_SID
    assert "Indexing" not in w.status.text()
    indexer.index.close()


# -- remote hosts (#18) ----------------------------------------------------------------------------

class FakeRemote(RemoteHistory):
    """The remote hosts' search as the window sees it: hosts ``lab`` and ``gone``; the test says
    when each answers (:meth:`answer`)."""

    def __init__(self, on: bool = True) -> None:
        super().__init__(Remotes(SessionRegistry()), lambda: self.on)
        self.on = on
        self.asked: list[tuple[int, SearchQuery]] = []
        self.cancelled = 0

    def search(self, gen: int, query: SearchQuery) -> list[str]:
        self.cancel()
        if not self.enabled():
            return []
        self.asked.append((gen, query))
        return ["lab", "gone"]

    def cancel(self) -> None:
        self.cancelled += 1

    def answer(self, got: HostSearch, gen: int | None = None) -> None:
        self.answered.emit(self.asked[-1][0] if gen is None else gen, got)


REMOTE_SID = "a149cb9e-c8dd-4252-b1ef-e1c5cb3d7caf"
REMOTE_TS = time.time() - 3600


def remote_hit(rank: float = -1000.0, text: str = "hello from the lab machine") -> RemoteHit:
    return RemoteHit(AgentKind.CLAUDE_CODE, REMOTE_SID, "Deploy on the lab box", "/home/lab/proj", "", "", 4,
                     HistoryRole.USER, REMOTE_TS, text, (("hello", True), (" from the lab machine", False)),
                     rank, host="lab")


GONE = HostSearch("gone", problem=SearchProblem.NOT_REACHABLE,
                  detail="gone (me@gone) is not connected: me@gone cannot be reached: Connection refused.")


def test_remote_hits_merge_in_and_an_unreachable_host_is_named(qtbot, tmp_path: Path, history: HistoryIndex) -> None:
    remote = FakeRemote()
    w = SearchWindow(history, remote=remote)
    qtbot.addWidget(w)
    w.present()
    typed(qtbot, w, "hello")
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    local = w.hits()
    assert local and not any(wire.hit_host(h) for h in local), "this machine's results do not wait for the hosts"
    assert remote.asked[-1][1].text == "hello"
    assert "lab: searching…" in w.status.text() and "gone: searching…" in w.status.text()
    w.results.setCurrentRow(1)
    chosen = w.hits()[1]
    remote.answer(HostSearch("lab", (remote_hit(),)))
    remote.answer(GONE)
    hits = w.hits()
    assert len(hits) == len(local) + 1 and hits[0] == remote_hit()
    assert wire.hit_host(hits[0]) == "lab", "the best rank first, marked with its host"
    assert w.results.currentItem().data(Qt.ItemDataRole.UserRole) == chosen, "the selection did not move"
    assert "lab: 1 result" in w.status.text() and "gone: not reachable" in w.status.text()
    assert "Connection refused" in w.status.toolTip(), "the tooltip says why"
    assert "on lab" in w.results.item(0).toolTip()
    # This machine's index grew: its results are asked again, the hosts' answers stay (not asked again).
    asked = len(remote.asked)
    gen = w._gen
    w.index_updated()
    qtbot.waitUntil(lambda: w._gen > gen and w._local_hits is not None, timeout=5000)
    assert len(remote.asked) == asked and wire.hit_host(w.hits()[0]) == "lab"
    assert "gone: not reachable" in w.status.text()
    # An answer to an older query is dropped (once this machine's results for the new one are in:
    # until then the list still shows the old query's, the lab's hit among them).
    gen = w._gen
    typed(qtbot, w, "hello world")
    qtbot.waitUntil(lambda: remote.asked[-1][1].text == "hello world", timeout=5000)
    qtbot.waitUntil(lambda: w._gen > gen and w._local_hits is not None, timeout=5000)
    assert not any(wire.hit_host(h) for h in w.hits()), "the new query's list starts without the hosts'"
    remote.answer(HostSearch("lab", (remote_hit(),)), gen=remote.asked[-2][0])
    assert not any(wire.hit_host(h) for h in w.hits())
    # The setting off: no host is asked, the status line names none.
    remote.on = False
    typed(qtbot, w, "hello")
    qtbot.waitUntil(lambda: w.state == "results" and "searching" not in w.status.text(), timeout=5000)
    assert "lab" not in w.status.text()


def test_nothing_here_waits_for_the_hosts_then_shows_theirs(qtbot, history: HistoryIndex) -> None:
    remote = FakeRemote()
    w = SearchWindow(history, remote=remote)
    qtbot.addWidget(w)
    w.present()
    typed(qtbot, w, "quokka")
    qtbot.waitUntil(lambda: w.state == "asking_hosts", timeout=5000)
    assert "Still asking lab, gone" in w.state_detail.text()
    remote.answer(GONE)
    assert w.state == "asking_hosts" and "Still asking lab…" in w.state_detail.text()
    remote.answer(HostSearch("lab", (), problem=SearchProblem.TOO_OLD,
                             detail="lab's deck-tray is too old for history search; run deck-tray remote install lab"))
    assert w.state == "no_matches" and "lab: too old" in w.status.text()
    assert "deck-tray remote install lab" in w.status.toolTip()
    typed(qtbot, w, "quokka")
    qtbot.waitUntil(lambda: w.state == "asking_hosts", timeout=5000)
    remote.answer(HostSearch("lab", (remote_hit(text="the quokka on lab"),)))
    assert w.state == "results" and [wire.hit_host(h) for h in w.hits()] == ["lab"]


def test_opening_a_remote_hit_opens_its_live_tab_or_says_how_to_resume_it(qtbot, tmp_path: Path,
                                                                          history: HistoryIndex) -> None:
    from deck_tray.core.model import Session, remote_id

    reg = SessionRegistry()
    win = _window(tmp_path, qtbot, reg)
    remote = FakeRemote()
    w = SearchWindow(history, remote=remote)
    qtbot.addWidget(w)
    link(w, win)
    w.present()
    typed(qtbot, w, "hello")
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    remote.answer(HostSearch("lab", (remote_hit(),)))
    hit = w.hits()[0]
    # Not listed by lab (a past session there): no tab, the words and the command to run there.
    w.results.setCurrentRow(0)
    QTest.keyClick(w.query, Qt.Key.Key_Return)
    assert not win.tabs_by_id
    assert "past session on lab" in w.notice and "cannot resume sessions of another machine" in w.notice
    assert w.notice.endswith(f"run this on lab:\ncd /home/lab/proj && claude --resume {REMOTE_SID}")
    assert "is on lab and not running there" in w.status.text()
    box = next(b for b in w.findChildren(QMessageBox) if b.isVisible())
    assert "hello from the lab machine" in box.informativeText()
    copy = next(b for b in box.buttons() if b.text() == "Copy command")
    copy.click()
    assert QApplication.clipboard().text() == f"cd /home/lab/proj && claude --resume {REMOTE_SID}"
    # Listed live by lab: its own tab (id lab:ID) opens at the hit.
    rid = remote_id("lab", REMOTE_SID)
    reg.apply([Session(id=rid, agent=AgentKind.CLAUDE_CODE, cwd="/home/lab/proj", title="Deploy on the lab box",
                       status=SessionStatus.IDLE, reason="ready — on lab", host="lab", pid=77,
                       messages=(Message(MessageRole.USER, "hello from the lab machine", time.time()),))],
              complete=False, source="remote lab")
    w.open_requested.emit(hit)
    tab = win.tabs_by_id.get(rid)
    assert tab is not None and win.current_tab() is tab and not tab.past
