"""Qwen Code 0.24.4 through its adapter (issue #19): its transcript, screens and pane titles
captured from real runs (``tests/fixtures/qwen-code-0.24.4-*``), and a session found by the
scanner from its per-process file ``sessions/<pid>.json``."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from deck_tray.core.agents.qwen import ADAPTER, QwenTranscript, read_screen, slug
from deck_tray.core.model import AgentKind, MessageRole, RequestKind, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.reply import ENTER_PAUSE_S, FREE_TEXT, PlanError, Reply, ReplyKind, StepKind, plan, screen_matches
from deck_tray.core.scan import Scanner, build_session
from deck_tray.core.screens import ScreenKind

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCREENS = FIXTURES / "screens"
TRANSCRIPT = FIXTURES / "qwen-code-0.24.4-transcript.jsonl"
LINES = TRANSCRIPT.read_text().splitlines()
SID = json.loads(LINES[0])["sessionId"]


def feed(lines: list[str]) -> QwenTranscript:
    st = QwenTranscript()
    for line in lines:
        st.feed(json.loads(line))
    return st


def test_a_finished_turn_shows_prompt_tool_and_reply_and_is_idle() -> None:
    st = feed(LINES)
    assert (st.session_id, st.title) == (SID, "please FAKE_SHELL now")
    assert st.cwd.endswith("/project")
    assert [(m.role, m.text, m.state) for m in st.messages] == [
        (MessageRole.USER, "please FAKE_SHELL now", ""),
        (MessageRole.TOOL, "run_shell_command(touch gemini-ran.txt)", "done"),
        (MessageRole.ASSISTANT, "FAKE_DONE", ""),
    ]
    ev = st.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE


def test_the_tool_call_is_written_before_the_answer_and_names_what_is_asked() -> None:
    upto = next(i for i, ln in enumerate(LINES) if '"functionCall"' in ln)
    st = feed(LINES[:upto + 1])
    pending = st.pending_request()
    assert pending is not None and pending.kind is RequestKind.PERMISSION
    assert (pending.tool, pending.summary) == ("run_shell_command", "touch gemini-ran.txt")
    ev = st.evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY and ev.pending == pending


@pytest.mark.parametrize(("name", "kind"), [
    ("permission-shell", ScreenKind.PERMISSION), ("question", ScreenKind.QUESTION), ("busy", ScreenKind.BUSY),
    ("idle", ScreenKind.IDLE), ("after-allow", ScreenKind.IDLE), ("after-question", ScreenKind.IDLE),
    ("question-free-text", ScreenKind.QUESTION), ("question-free-text-draft", ScreenKind.QUESTION),
    ("question-free-text-kept", ScreenKind.QUESTION),
])
def test_screens_of_0_24_4(name: str, kind: ScreenKind) -> None:
    assert read_screen((SCREENS / f"qwen-code-0.24.4-{name}.txt").read_text()).kind is kind


def test_the_permission_box_gives_its_real_options_and_allow_is_the_digit_1() -> None:
    s = read_screen((SCREENS / "qwen-code-0.24.4-permission-shell.txt").read_text())
    assert s.title == "Allow execution of: 'touch'?" and s.tool == "Shell"
    assert [o.label for o in s.options][0] == "Yes, allow once"
    assert [o.label for o in s.options][-1] == "No, suggest changes"
    assert [st.value for st in plan(AgentKind.QWEN_CODE, Reply(ReplyKind.ALLOW), s, None)] == ["1"]
    assert [st.value for st in plan(AgentKind.QWEN_CODE, Reply(ReplyKind.DENY), s, None)] == ["Escape"]


def test_a_question_gives_its_text_and_options() -> None:
    s = read_screen((SCREENS / "qwen-code-0.24.4-question.txt").read_text())
    assert s.title == "Which colour do you prefer?"
    assert [o.label for o in s.options] == ["Red", "Blue", "Green", "Type something..."]


def question(name: str = "question") -> str:
    return (SCREENS / f"qwen-code-0.24.4-{name}.txt").read_text()


def test_a_free_text_answer_opens_the_last_row_with_its_digit_then_types_it() -> None:
    s = read_screen(question())
    assert not s.free_text and s.draft == ""
    steps = plan(AgentKind.QWEN_CODE, Reply(ReplyKind.PROMPT, "my own colour"), s, None)
    # 0.24.4: "4" opens "Type something..." as an input without answering; typing and Enter
    # answer "**Colour**: my own colour" (the run of qwen-code-0.24.4-question-free-text.txt).
    assert [(st.kind, st.value) for st in steps] == [
        (StepKind.KEY, "4"), (StepKind.WAIT_SCREEN, FREE_TEXT), (StepKind.LITERAL, "my own colour"),
        (StepKind.PAUSE, str(ENTER_PAUSE_S)), (StepKind.KEY, "Enter")]


def test_the_open_free_text_row_takes_typing_and_keeps_its_label() -> None:
    s = read_screen(question("question-free-text"))
    assert s.kind is ScreenKind.QUESTION and s.free_text and s.draft == ""
    assert screen_matches(s, FREE_TEXT)
    assert [(o.number, o.label, o.selected) for o in s.options] == [
        ("1", "Red", False), ("2", "Blue", False), ("3", "Green", False), ("4", "Type something...", True)]
    assert not screen_matches(read_screen(question()), FREE_TEXT)
    # Already open: no key before the wait; several lines go as one bracketed paste (0.24.4
    # keeps the newlines: "line one\nline two" reached the model).
    steps = plan(AgentKind.QWEN_CODE, Reply(ReplyKind.PROMPT, "line one\nline two"), s, None)
    assert [(st.kind, st.value) for st in steps][:2] == [(StepKind.WAIT_SCREEN, FREE_TEXT),
                                                       (StepKind.PASTE, "line one\nline two")]


def test_text_typed_in_the_terminal_is_not_added_to() -> None:
    s = read_screen(question("question-free-text-draft"))
    assert s.kind is ScreenKind.QUESTION and s.draft == "abc" and not s.free_text
    assert s.options[-1].label == "Type something..."
    with pytest.raises(PlanError, match="already holds text typed in the terminal.*'abc'"):
        plan(AgentKind.QWEN_CODE, Reply(ReplyKind.PROMPT, "my own colour"), s, None)
    # Left with the cursor elsewhere, the row shows that text instead of "Type something...".
    kept = read_screen(question("question-free-text-kept"))
    assert [o.label for o in kept.options] == ["Red", "Blue", "Green", "abc"]
    with pytest.raises(PlanError, match="free-text row .* is not on the agent's screen"):
        plan(AgentKind.QWEN_CODE, Reply(ReplyKind.PROMPT, "my own colour"), kept, None)
    # An option is still answered by its digit.
    assert [st.value for st in plan(AgentKind.QWEN_CODE, Reply(ReplyKind.OPTION, "Blue"), kept, None)] == ["2"]


def test_titles_from_the_run() -> None:
    rows = [ln.split("\t", 1) for ln in (SCREENS / "qwen-code-0.24.4-titles.txt").read_text().splitlines()]
    said = {state: ADAPTER.title_status(title) for state, title in rows}
    assert said["idle"] == (SessionStatus.IDLE, "ready for a prompt (pane title)")
    assert said["busy"][0] is SessionStatus.BUSY  # type: ignore[index]
    assert said["waiting-shell"][0] is SessionStatus.WAITING_PERMISSION  # type: ignore[index]
    assert said["after-exit"] is None
    assert ADAPTER.title_status("◇  Ready (proj)") is None


def test_processes_and_folders() -> None:
    assert ADAPTER.matches_process("node", ["node", "/x/node_modules/.bin/qwen"])
    assert ADAPTER.matches_process("node", ["node", "--expose-gc", "/x/node_modules/@qwen-code/qwen-code/cli.js"])
    assert not ADAPTER.matches_process("node", ["node", "/x/bin/gemini"])
    assert slug("/tmp/deck-tray-gq/qwen_shell/project") == "-tmp-deck-tray-gq-qwen-shell-project"
    assert ADAPTER.home({"HOME": "/h"}) == Path("/h/.qwen")
    assert ADAPTER.home({"HOME": "/h", "QWEN_HOME": "/q"}) == Path("/q")


def test_the_scanner_links_the_process_through_its_sessions_file(tmp_path: Path) -> None:
    home = tmp_path / ".qwen"
    cwd = json.loads(LINES[0])["cwd"]
    chats = home / "projects" / slug(cwd) / "chats"
    chats.mkdir(parents=True)
    shutil.copy(TRANSCRIPT, chats / f"{SID}.jsonl")
    pid = os.getpid()
    pid_file = json.loads((FIXTURES / "qwen-code-0.24.4-session-pid.json").read_text())
    pid_file["pid"] = pid
    (home / "sessions").mkdir()
    (home / "sessions" / f"{pid}.json").write_text(json.dumps(pid_file))
    now = time.time()
    proc = AgentProcess(pid, "qwen", cwd, started_at=now - 30, env=(("HOME", str(tmp_path)),))
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [proc],
                      adapter_homes={AgentKind.QWEN_CODE: home})
    (ob,) = scanner.scan()
    assert (ob.id, ob.agent, ob.pid, ob.cwd) == (SID, AgentKind.QWEN_CODE, pid, cwd)
    assert build_session(ob, now).status is SessionStatus.IDLE
    # The process exits: its sessions file goes, the session has ended.
    (home / "sessions" / f"{pid}.json").unlink()
    scanner.process_lister = lambda: []
    (ob,) = scanner.scan()
    assert build_session(ob, now).status is SessionStatus.ENDED


def test_before_the_first_prompt_the_session_is_listed_by_its_id(tmp_path: Path) -> None:
    home = tmp_path / ".qwen"
    (home / "sessions").mkdir(parents=True)
    now = time.time()
    (home / "sessions" / "4321.json").write_text(json.dumps({"pid": 4321, "sessionId": SID, "cwd": "/w/p"}))
    proc = AgentProcess(4321, "qwen", "/w/p", started_at=now, env=(("HOME", str(tmp_path)),))
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [proc],
                      adapter_homes={AgentKind.QWEN_CODE: home})
    (ob,) = scanner.scan()
    assert (ob.id, ob.pid) == (SID, 4321)
    assert build_session(ob, now).status is SessionStatus.IDLE
