"""The search window with the agents watched through an adapter (issue #19: Gemini CLI 0.61.0,
Qwen Code 0.24.4): their hits listed and filtered, a past session opened as a read-only tab (from
the index, else from its file), and a remote one explained without a resume command deck-tray
does not know."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from deck_tray.core.history import HistoryRole, SearchHit
from deck_tray.core.model import AgentKind, MessageRole
from deck_tray.core.wire import RemoteHit
from deck_tray.services.history_store import HistoryIndex
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.search_window import SearchWindow, link, resume_command
from deck_tray.ui.window import MainWindow

pytestmark = pytest.mark.gui

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GEMINI_ID = "600a6902-a7c5-41aa-bf06-befb0646cb57"
GEMINI_ASK_ID = "feaf7721-5451-4a7b-accd-dc111821c790"
QWEN_ID = "9c0934bc-c2f9-4dd7-a039-37299c7e949d"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The captured sessions where Gemini CLI and Qwen Code keep them."""
    tmp = tmp_path / "home" / ".gemini" / "tmp" / "proj"
    (tmp / "chats").mkdir(parents=True)
    (tmp / ".project_root").write_text("/home/dev/gem-proj")
    out = {GEMINI_ID: tmp / "chats" / "session-2026-12-07T00-47-600a6902.jsonl",
           GEMINI_ASK_ID: tmp / "chats" / "session-2026-12-07T00-47-feaf7721.jsonl",
           QWEN_ID: tmp_path / "home" / ".qwen" / "projects" / "-p" / "chats" / f"{QWEN_ID}.jsonl"}
    out[QWEN_ID].parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "gemini-cli-0.61.0-shell-allow.jsonl", out[GEMINI_ID])
    shutil.copy(FIXTURES / "gemini-cli-0.61.0-ask-user.jsonl", out[GEMINI_ASK_ID])
    shutil.copy(FIXTURES / "qwen-code-0.24.4-transcript.jsonl", out[QWEN_ID])
    return out


@pytest.fixture
def history(tmp_path: Path, files: dict[str, Path]):
    index = HistoryIndex(tmp_path / "history.db")
    index.sync_files([(AgentKind.GEMINI_CLI, str(files[GEMINI_ID])), (AgentKind.QWEN_CODE, str(files[QWEN_ID]))])
    yield index
    index.close()


def _window(tmp_path: Path, qtbot) -> MainWindow:
    win = MainWindow(SessionRegistry(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    return win


def test_adapter_hits_are_listed_filtered_and_open_as_past_tabs(qtbot, tmp_path: Path, history: HistoryIndex) -> None:
    win = _window(tmp_path, qtbot)
    w = SearchWindow(history)
    qtbot.addWidget(w)
    link(w, win)
    w.present()
    assert {AgentKind.GEMINI_CLI, AgentKind.QWEN_CODE} <= set(w.agent_boxes)
    w.query.setText("FAKE_SHELL")
    w.run_now()
    qtbot.waitUntil(lambda: w.state == "results", timeout=5000)
    assert {(h.agent, h.session_id) for h in w.hits()} == {(AgentKind.GEMINI_CLI, GEMINI_ID),
                                                           (AgentKind.QWEN_CODE, QWEN_ID)}
    w.agent_boxes[AgentKind.QWEN_CODE].setChecked(False)
    w.run_now()
    qtbot.waitUntil(lambda: w.state == "results" and len(w.hits()) == 1, timeout=5000)
    hit = w.hits()[0]
    assert hit.agent is AgentKind.GEMINI_CLI and hit.project == "/home/dev/gem-proj"
    w.open_requested.emit(hit)
    qtbot.waitUntil(lambda: GEMINI_ID in win.tabs_by_id, timeout=5000)
    tab = win.tabs_by_id[GEMINI_ID]
    assert tab.past and win.current_tab() is tab
    assert [m.text for m in tab.session.messages] == ["please FAKE_SHELL now", "Shell(touch gemini-ran.txt)",
                                                      "FAKE_DONE"]
    assert not tab.resume_button.isVisibleTo(tab), "no resume command is known for it"


def test_a_session_not_indexed_opens_from_its_file_or_says_why(qtbot, tmp_path: Path, history: HistoryIndex,
                                                               files: dict[str, Path]) -> None:
    w = SearchWindow(history)
    qtbot.addWidget(w)
    hit = SearchHit(AgentKind.GEMINI_CLI, GEMINI_ASK_ID, "please FAKE_ASK now", "/home/dev/gem-proj",
                    str(files[GEMINI_ASK_ID]), "", 0, HistoryRole.USER, time.time(), "please FAKE_ASK now",
                    (("FAKE_ASK", True),), -1.0)
    with qtbot.waitSignal(w.past_loaded, timeout=5000) as sig:
        w.load_past(hit)
    _hit, session, why = sig.args
    assert why == "" and session is not None and session.agent is AgentKind.GEMINI_CLI
    assert [m.role for m in session.messages] == [MessageRole.USER, MessageRole.TOOL, MessageRole.ASSISTANT]
    assert "Which colour do you prefer?" in session.messages[1].text
    files[GEMINI_ASK_ID].unlink()
    with qtbot.waitSignal(w.past_loaded, timeout=5000) as sig:
        w.load_past(hit)
    assert sig.args[1] is None and "cannot be read" in sig.args[2]


def test_a_remote_adapter_session_is_explained_without_a_resume_command(qtbot) -> None:
    w = SearchWindow(None)
    qtbot.addWidget(w)
    w.present()
    hit = RemoteHit(AgentKind.GEMINI_CLI, GEMINI_ID, "please FAKE_SHELL now", "/home/lab/proj", "", "", 0,
                    HistoryRole.USER, time.time() - 60, "please FAKE_SHELL now", (("FAKE_SHELL", True),), -1.0,
                    host="lab")
    assert resume_command(hit) == ""
    assert resume_command(RemoteHit(AgentKind.OPENCODE, "ses_1", "", "", "", "http://x", 0, HistoryRole.USER, 0.0,
                                    "", (), 0.0, host="lab")) == "opencode --session ses_1"
    box = w.show_remote_hit(hit)
    assert "does not know how Gemini CLI resumes a session" in w.notice and GEMINI_ID in w.notice
    assert [b.text() for b in box.buttons() if b.text().startswith("Copy")] == ["Copy session id"]
