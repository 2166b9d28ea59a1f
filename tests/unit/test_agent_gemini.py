"""Gemini CLI 0.61.0 through its adapter (issue #19): the transcript, the screens and the pane
titles captured from real runs (``tests/fixtures/gemini-cli-0.61.0-*``), and sessions found by
the scanner from its files and a process."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.agents import ADAPTERS, adapter_for, default_homes
from deck_tray.core.agents.gemini import ADAPTER, GeminiTranscript, read_screen
from deck_tray.core.model import AgentKind, EvidenceSource, MessageRole, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.reply import FREE_TEXT, PlanError, Reply, ReplyKind, StepKind, plan, screen_matches
from deck_tray.core.scan import Scanner, build_session
from deck_tray.core.screens import ScreenKind

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCREENS = FIXTURES / "screens"
SHELL = FIXTURES / "gemini-cli-0.61.0-shell-allow.jsonl"
HEADER = json.loads(SHELL.read_text().splitlines()[0])
SID = HEADER["sessionId"]


def feed(lines: list[str]) -> GeminiTranscript:
    st = GeminiTranscript("/work/p")
    for line in lines:
        st.feed(json.loads(line))
    st.settle()
    return st


def test_a_finished_turn_shows_prompt_tool_and_reply_and_is_idle() -> None:
    st = feed(SHELL.read_text().splitlines())
    assert st.session_id == SID
    assert st.title == "please FAKE_SHELL now"
    assert [(m.role, m.text, m.state) for m in st.messages] == [
        (MessageRole.USER, "please FAKE_SHELL now", ""),
        (MessageRole.TOOL, "Shell(touch gemini-ran.txt)", "done"),
        (MessageRole.ASSISTANT, "FAKE_DONE", ""),
    ]
    ev = st.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE and ev.source is EvidenceSource.TRANSCRIPT


def test_while_the_confirmation_is_open_the_file_says_busy_and_holds_no_tool_call() -> None:
    """0.61.0 writes the model's reply (empty, no toolCalls) before the box is drawn and nothing
    while it is open: the file alone cannot tell waiting from running."""
    lines = SHELL.read_text().splitlines()
    upto = next(i for i, ln in enumerate(lines) if '"type":"gemini"' in ln)
    st = feed(lines[:upto + 1])
    ev = st.evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY
    assert st.pending_request() is None
    assert [m.role for m in st.messages] == [MessageRole.USER]


def test_a_record_with_a_known_id_replaces_it_and_set_messages_replaces_the_list() -> None:
    head = json.dumps({"sessionId": "s", "startTime": "2026-12-07T00:00:00Z", "kind": "main"})
    a = json.dumps({"id": "a", "timestamp": "2026-12-07T00:00:01Z", "type": "user", "content": [{"text": "one"}]})
    b = json.dumps({"id": "b", "timestamp": "2026-12-07T00:00:02Z", "type": "gemini", "content": ""})
    b2 = json.dumps({"id": "b", "timestamp": "2026-12-07T00:00:02Z", "type": "gemini", "content": "two"})
    st = feed([head, a, b, b2])
    assert [m.text for m in st.messages] == ["one", "two"]
    reset = json.dumps({"$set": {"messages": [{"id": "c", "type": "user", "content": [{"text": "three"}]}]}})
    st.feed(json.loads(reset))
    st.settle()
    assert [m.text for m in st.messages] == ["three"]
    st.feed({"$rewindTo": "c"})
    st.settle()
    assert st.messages == []


@pytest.mark.parametrize(("name", "kind"), [
    ("permission-shell", ScreenKind.PERMISSION), ("permission-write", ScreenKind.PERMISSION),
    ("question", ScreenKind.QUESTION), ("busy", ScreenKind.BUSY), ("idle", ScreenKind.IDLE),
    ("after-allow", ScreenKind.IDLE), ("question-free-text", ScreenKind.QUESTION),
    ("question-free-text-draft", ScreenKind.QUESTION), ("question-free-text-kept", ScreenKind.QUESTION),
])
def test_screens_of_0_61_0(name: str, kind: ScreenKind) -> None:
    assert read_screen((SCREENS / f"gemini-cli-0.61.0-{name}.txt").read_text()).kind is kind


def test_the_shell_confirmation_gives_its_command_and_real_options() -> None:
    s = read_screen((SCREENS / "gemini-cli-0.61.0-permission-shell.txt").read_text())
    assert (s.title, s.tool, s.subject) == ("Allow execution of [Shell]?", "Shell", "touch gemini-ran.txt")
    assert [o.label for o in s.options] == ["Allow once", "Allow for this session", "No, suggest changes"]
    # Allow is the digit 1 (acts at once), Deny is Esc (cancels the turn), the session-wide
    # allow is 2: as verified in the run.
    assert [st.value for st in plan(AgentKind.GEMINI_CLI, Reply(ReplyKind.ALLOW), s, None)] == ["1"]
    assert [st.value for st in plan(AgentKind.GEMINI_CLI, Reply(ReplyKind.DENY), s, None)] == ["Escape"]
    assert [st.value for st in plan(AgentKind.GEMINI_CLI, Reply(ReplyKind.ALLOW_ALWAYS), s, None)] == ["2"]


def test_a_question_is_answered_by_its_option_digit() -> None:
    s = read_screen((SCREENS / "gemini-cli-0.61.0-question.txt").read_text())
    assert s.title == "Which colour do you prefer?"
    assert [o.label for o in s.options][:3] == ["Red", "Blue", "Green"]
    assert [st.value for st in plan(AgentKind.GEMINI_CLI, Reply(ReplyKind.OPTION, "Blue"), s, None)] == ["2"]


def gemini_screen(name: str) -> str:
    return (SCREENS / f"gemini-cli-0.61.0-{name}.txt").read_text()


def test_a_free_text_answer_wraps_up_to_the_hidden_last_row_then_types_it() -> None:
    # 0.61.0 adds a free-text row after the options; at 45 lines it is hidden under "▼". From
    # "● 1.  Red" one Up wraps to it ("● 4.  Enter a custom value"); typing and Enter answer
    # {"0": "my own colour"}.
    s = read_screen(gemini_screen("question"))
    assert not s.free_text and "Enter a custom value" not in [o.label for o in s.options]
    steps = plan(AgentKind.GEMINI_CLI, Reply(ReplyKind.PROMPT, "my own colour"), s, None)
    assert [(st.kind, st.value) for st in steps[:3]] == [
        (StepKind.KEY, "Up"), (StepKind.WAIT_SCREEN, FREE_TEXT), (StepKind.LITERAL, "my own colour")]
    assert steps[-1].value == "Enter"
    # From row 3, three Ups: 2, 1, then the wrap to the last row.
    kept = read_screen(gemini_screen("question-free-text-kept"))
    assert [o.number for o in kept.options if o.selected] == ["3"]
    assert [st.value for st in plan(AgentKind.GEMINI_CLI, Reply(ReplyKind.PROMPT, "teal"), kept, None)][:4] == \
        ["Up", "Up", "Up", FREE_TEXT]


def test_the_selected_free_text_row_takes_typing() -> None:
    s = read_screen(gemini_screen("question-free-text"))
    assert s.kind is ScreenKind.QUESTION and s.free_text and screen_matches(s, FREE_TEXT)
    assert [(o.number, o.label, o.selected) for o in s.options] == [
        ("2", "Blue", False), ("3", "Green", False), ("4", "Enter a custom value", True)]
    assert not screen_matches(read_screen(gemini_screen("question")), FREE_TEXT)
    assert not read_screen(gemini_screen("question-free-text-kept")).free_text
    steps = plan(AgentKind.GEMINI_CLI, Reply(ReplyKind.PROMPT, "line one\nline two"), s, None)
    assert [(st.kind, st.value) for st in steps][:2] == [(StepKind.WAIT_SCREEN, FREE_TEXT),
                                                       (StepKind.PASTE, "line one\nline two")]


def test_text_in_the_selected_free_text_row_is_not_added_to() -> None:
    s = read_screen(gemini_screen("question-free-text-draft"))
    assert s.free_text and [o.label for o in s.options if o.selected] == ["abc"]
    with pytest.raises(PlanError, match="may already hold text typed in the terminal.*'abc'"):
        plan(AgentKind.GEMINI_CLI, Reply(ReplyKind.PROMPT, "my own colour"), s, None)


def test_titles_say_the_state_and_other_titles_say_nothing() -> None:
    titles = (SCREENS / "gemini-cli-0.61.0-titles.txt")
    if titles.exists():
        text = titles.read_text()
        assert "✋  Action Required" in text and "◇  Ready" in text
    pad = " " * 50
    assert ADAPTER.title_status(f"◇  Ready (proj1){pad}") == (SessionStatus.IDLE, "ready for a prompt (pane title)")
    assert ADAPTER.title_status(f"✦  Working… (proj1){pad}")[0] is SessionStatus.BUSY  # type: ignore[index]
    assert ADAPTER.title_status(f"✋  Action Required (proj1){pad}")[0] is SessionStatus.WAITING_PERMISSION  # type: ignore[index]
    for other in ("", "bash", "✳ Claude Code", "Qwen - proj", "◇ one space"):
        assert ADAPTER.title_status(other) is None


def test_processes_of_the_npm_install_are_recognised_and_others_not() -> None:
    assert ADAPTER.matches_process("node", ["node", "/home/u/.npm-global/bin/gemini"])
    assert ADAPTER.matches_process("node", ["/usr/bin/node", "--max-old-space-size=4096",
                                            "/x/node_modules/@google/gemini-cli/dist/index.js"])
    assert ADAPTER.matches_process("gemini", ["gemini"])
    assert not ADAPTER.matches_process("node", ["node", "/x/bin/claude"])
    assert not ADAPTER.matches_process("bash", ["bash", "-c", "gemini"])


def test_the_registry_holds_each_adapter_once() -> None:
    kinds = [a.kind for a in ADAPTERS]
    assert len(kinds) == len(set(kinds)) and adapter_for(AgentKind.GEMINI_CLI) is ADAPTER
    assert adapter_for(AgentKind.CLAUDE_CODE) is None
    assert default_homes({"HOME": "/h", "GEMINI_CLI_HOME": "/g"})[AgentKind.GEMINI_CLI] == Path("/g/.gemini")
    assert default_homes({"HOME": "/h"})[AgentKind.GEMINI_CLI] == Path("/h/.gemini")


def _home(tmp_path: Path, cwd: str) -> Path:
    home = tmp_path / ".gemini"
    chats = home / "tmp" / "project" / "chats"
    chats.mkdir(parents=True)
    (home / "tmp" / "project" / ".project_root").write_text(cwd)
    (home / "projects.json").write_text(json.dumps({"projects": {cwd: "project"}}))
    shutil.copy(SHELL, chats / f"session-2026-12-07T00-40-{SID[:8]}.jsonl")
    return home


def test_the_scanner_lists_a_running_gemini_with_its_conversation(tmp_path: Path) -> None:
    cwd = "/work/project"
    home = _home(tmp_path, cwd)
    started = datetime.datetime.fromisoformat(HEADER["startTime"].replace("Z", "+00:00")).timestamp() - 1.0
    proc = AgentProcess(os.getpid(), "gemini", cwd, started_at=started, env=(("HOME", str(tmp_path)),))
    now = started + 60
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [proc],
                      adapter_homes={AgentKind.GEMINI_CLI: home})
    obs = {ob.id: ob for ob in scanner.scan()}
    ob = obs[SID]
    assert (ob.agent, ob.pid, ob.cwd, ob.title) == (AgentKind.GEMINI_CLI, os.getpid(), cwd, "please FAKE_SHELL now")
    assert build_session(ob, now).status is SessionStatus.IDLE
    assert home / "tmp" in scanner.watch_roots()


def test_without_its_process_the_session_has_ended(tmp_path: Path) -> None:
    home = _home(tmp_path, "/work/project")
    now = time.time()
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [],
                      adapter_homes={AgentKind.GEMINI_CLI: home})
    (ob,) = scanner.scan()
    s = build_session(ob, now)
    assert s.status is SessionStatus.ENDED and "Gemini CLI is no longer running" in s.reason


def test_a_new_gemini_without_a_prompt_yet_is_listed_ready(tmp_path: Path) -> None:
    home = tmp_path / ".gemini"
    home.mkdir()
    now = time.time()
    proc = AgentProcess(4242, "gemini", "/work/other", started_at=now - 5, env=(("HOME", str(tmp_path)),))
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [proc],
                      adapter_homes={AgentKind.GEMINI_CLI: home})
    (ob,) = scanner.scan()
    assert (ob.id, ob.pid, ob.cwd) == ("gemini-4242", 4242, "/work/other")
    assert build_session(ob, now).status is SessionStatus.IDLE


def test_a_process_of_another_gemini_home_is_not_claimed(tmp_path: Path) -> None:
    home = _home(tmp_path, "/work/project")
    now = time.time()
    proc = AgentProcess(4243, "gemini", "/work/project", started_at=now,
                        env=(("HOME", str(tmp_path)), ("GEMINI_CLI_HOME", "/elsewhere")))
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [proc],
                      adapter_homes={AgentKind.GEMINI_CLI: home})
    assert {ob.pid for ob in scanner.scan()} == {None}


def test_after_a_cancel_the_prompt_is_kept_and_the_file_says_ready() -> None:
    """0.61.0 rewrites the list after Esc: one user record holding its context part and the prompt."""
    st = feed((FIXTURES / "gemini-cli-0.61.0-cancelled.jsonl").read_text().splitlines())
    assert [(m.role, m.text) for m in st.messages] == [(MessageRole.USER, "please FAKE_SHELL now")]
    assert st.title == "please FAKE_SHELL now"
    ev = st.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE


def test_project_folders_are_read_again_only_when_they_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan asks for the project folders every tick while a Gemini CLI runs: ``projects.json`` is
    read again only when it or the ``tmp`` folder changed, and a project Gemini registers later is
    found; a folder that does not name its project yet is looked at again next time."""
    from deck_tray.core.agents import gemini

    home = _home(tmp_path, "/work/project")
    reads: list[str] = []
    real_read = Path.read_text

    def counting(self: Path, *a: Any, **k: Any) -> str:
        reads.append(self.name)
        return real_read(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", counting)
    assert gemini._project_slugs(home) == {"/work/project": "project"}
    first = len(reads)
    assert gemini._project_slugs(home) == {"/work/project": "project"}
    assert len(reads) == first, "nothing changed: nothing read again"
    (home / "tmp" / "other").mkdir()  # made by Gemini a moment before its .project_root
    assert gemini._project_slugs(home) == {"/work/project": "project"}
    (home / "tmp" / "other" / ".project_root").write_text("/work/other")
    assert gemini._project_slugs(home) == {"/work/project": "project", "/work/other": "other"}
    (home / "projects.json").write_text(json.dumps({"projects": {"/work/project": "project",
                                                                 "/work/third": "third"}}))
    assert gemini._project_slugs(home)["/work/third"] == "third"
