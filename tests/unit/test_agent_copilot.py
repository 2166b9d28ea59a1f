"""GitHub Copilot CLI 1.0.102 through its adapter (issue #19): ``events.jsonl`` at each point of
the captured runs, the screens, the processes, and sessions found by the scanner from a copied
``session-state`` tree and a process list (fixtures ``tests/fixtures/copilot-cli-1.0.102-*``,
``tests/fixtures/screens/copilot-cli-1.0.102-*``; the facts are in ``docs/agents/copilot-cli.md``)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.agents import ADAPTERS, adapter_for, default_homes
from deck_tray.core.agents.base import LiveProcess
from deck_tray.core.agents.copilot import ADAPTER, NO, YES, CopilotTranscript, read_screen, read_workspace
from deck_tray.core.agents.source import AdapterSource
from deck_tray.core.jsonl import SkippedFiles
from deck_tray.core.model import AgentKind, EvidenceSource, MessageRole, RequestKind, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.reply import FREE_TEXT, PlanError, Reply, ReplyKind, StepKind, plan, screen_matches
from deck_tray.core.scan import Scanner, build_session
from deck_tray.core.screens import TRUST_TOOL, ScreenKind, screen_evidence
from deck_tray.core.status import decide

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCREENS = FIXTURES / "screens"
ALLOW_RUN = FIXTURES / "copilot-cli-1.0.102-events.jsonl"  # FAKE_SHELL allowed with 1, then /exit
ASK_ESC_RUN = FIXTURES / "copilot-cli-1.0.102-events-ask-esc.jsonl"  # FAKE_ASK → Blue; FAKE_SHELL → Esc
WORKSPACE = FIXTURES / "copilot-cli-1.0.102-workspace.yaml"
RECORDS = [json.loads(ln) for ln in ALLOW_RUN.read_text().splitlines()]
SID = RECORDS[0]["data"]["sessionId"]
CWD = RECORDS[0]["data"]["context"]["cwd"]


def screen(name: str) -> str:
    return (SCREENS / f"copilot-cli-1.0.102-{name}.txt").read_text(encoding="utf-8")


def upto(records: list[dict[str, Any]], rtype: str, nth: int = 1) -> CopilotTranscript:
    """A transcript fed up to and including the ``nth`` record of type ``rtype``."""
    st = CopilotTranscript()
    seen = 0
    for rec in records:
        st.feed(rec)
        if rec["type"] == rtype:
            seen += 1
            if seen == nth:
                break
    else:
        raise AssertionError(f"no record #{nth} of type {rtype}")
    st.settle()
    return st


def status(st: CopilotTranscript) -> SessionStatus:
    ev = st.evidence()
    assert ev is not None and ev.source is EvidenceSource.TRANSCRIPT
    return ev.status


# -- events.jsonl -------------------------------------------------------------------------

def test_the_allowed_shell_run_at_each_point() -> None:
    assert status(upto(RECORDS, "session.start")) is SessionStatus.IDLE
    assert status(upto(RECORDS, "user.message")) is SessionStatus.BUSY
    assert status(upto(RECORDS, "tool.execution_start")) is SessionStatus.BUSY
    assert upto(RECORDS, "tool.execution_start").pending_request() is None
    assert status(upto(RECORDS, "permission.completed")) is SessionStatus.BUSY
    # The turn with the tool call ends, the model's next turn follows: still busy.
    assert status(upto(RECORDS, "assistant.turn_end")) is SessionStatus.BUSY
    assert status(upto(RECORDS, "assistant.turn_end", 2)) is SessionStatus.IDLE
    assert status(upto(RECORDS, "session.shutdown")) is SessionStatus.IDLE


def test_an_open_permission_request_is_waiting_with_the_command_and_the_dialogs_labels() -> None:
    st = upto(RECORDS, "permission.requested")
    ev = st.evidence()
    assert ev is not None and ev.status is SessionStatus.WAITING_PERMISSION
    pending = st.pending_request()
    assert pending is not None and ev.pending == pending
    assert pending.kind is RequestKind.PERMISSION
    assert (pending.tool, pending.summary) == ("bash", "touch copilot-ran.txt && echo hello-from-copilot")
    assert pending.request_id == RECORDS[8]["data"]["requestId"]
    # The labels of screens/copilot-cli-1.0.102-permission-shell.txt, without "(Esc to stop)".
    assert pending.options == tuple(o.label for o in read_screen(screen("permission-shell")).options)
    assert ev.observed_at == pytest.approx(1796604496.556)


def test_a_finished_session_has_prompt_tool_and_reply() -> None:
    st = upto(RECORDS, "session.shutdown")
    assert (st.session_id, st.cwd, st.title) == (SID, CWD, "please FAKE_SHELL now")
    assert st.started_at == pytest.approx(1796604491.443)
    assert [(m.role, m.text, m.state) for m in st.messages] == [
        (MessageRole.USER, "please FAKE_SHELL now", ""),
        (MessageRole.TOOL, "bash(touch copilot-ran.txt && echo hello-from-copilot)", "done"),
        (MessageRole.ASSISTANT, "Tool result received: hello-from-copilot\n<shellId: 0 completed with exit code 0>",
         ""),
    ]
    assert st.pending_request() is None


def test_ask_user_waits_for_an_answer_until_the_human_response() -> None:
    recs = [json.loads(ln) for ln in ASK_ESC_RUN.read_text().splitlines()]
    st = upto(recs, "tool.execution_start")
    ev = st.evidence()
    assert ev is not None and ev.status is SessionStatus.WAITING_QUESTION
    assert ev.pending is not None and ev.pending.kind is RequestKind.QUESTION
    assert (ev.pending.tool, ev.pending.question, ev.pending.options) == (
        "ask_user", "Which colour should I use?", ("Red", "Blue"))
    assert status(upto(recs, "human_response.recorded")) is SessionStatus.BUSY
    assert status(upto(recs, "assistant.turn_end", 2)) is SessionStatus.IDLE


def test_esc_on_the_permission_dialog_cancels_the_turn() -> None:
    recs = [json.loads(ln) for ln in ASK_ESC_RUN.read_text().splitlines()]
    assert status(upto(recs, "permission.requested")) is SessionStatus.WAITING_PERMISSION
    assert status(upto(recs, "permission.completed")) is SessionStatus.BUSY
    st = upto(recs, "abort")
    ev = st.evidence()
    assert ev is not None and (ev.status, ev.detail) == (SessionStatus.IDLE, "cancelled")
    tools = [m for m in st.messages if m.role is MessageRole.TOOL]
    assert [m.state for m in tools] == ["done", "error"]
    assert st.messages[-1].role is MessageRole.NOTICE


def test_a_sub_agents_turn_end_does_not_end_the_users_turn() -> None:
    st = upto(RECORDS, "tool.execution_complete")
    st.feed({"type": "assistant.message", "agentId": "sub-1", "timestamp": "2026-12-07T00:48:17.240Z",
             "data": {"content": "sub-agent text", "toolRequests": []}})
    st.feed({"type": "assistant.turn_end", "agentId": "sub-1", "timestamp": "2026-12-07T00:48:17.241Z",
             "data": {"turnId": "0"}})
    assert status(st) is SessionStatus.BUSY
    assert "sub-agent text" not in [m.text for m in st.messages]


def test_reset_forgets_the_records_and_keeps_the_workspace(tmp_path: Path) -> None:
    shutil.copy(WORKSPACE, tmp_path / "workspace.yaml")
    st = CopilotTranscript(tmp_path / "workspace.yaml")
    for rec in RECORDS[:9]:
        st.feed(rec)
    st.reset()
    assert st.evidence() is None and st.messages == [] and st.pending_request() is None
    st.settle()
    assert st.cwd == CWD


# -- workspace.yaml -----------------------------------------------------------------------

def test_workspace_yaml_is_read_strictly(tmp_path: Path) -> None:
    ws = read_workspace(WORKSPACE)
    assert (ws["id"], ws["cwd"], ws["name"], ws["user_named"]) == (SID, CWD, "please FAKE_SHELL now", "false")
    odd = tmp_path / "workspace.yaml"
    odd.write_text("id: x\nname: 'it''s: mine'\ncwd: \"/a b/\\u00e9\"\nsummary: |\n  long\n  text\n"
                   "nested:\n  key: v\nplain: a # comment\n", encoding="utf-8")
    assert read_workspace(odd) == {"id": "x", "name": "it's: mine", "cwd": "/a b/é", "plain": "a"}
    assert read_workspace(tmp_path / "missing.yaml") == {}


def test_a_name_the_user_gave_is_the_title(tmp_path: Path) -> None:
    path = tmp_path / "workspace.yaml"
    path.write_text(WORKSPACE.read_text().replace("name: please FAKE_SHELL now", "name: My refactor")
                    .replace("user_named: false", "user_named: true"))
    st = CopilotTranscript(path)
    for rec in RECORDS:
        st.feed(rec)
    st.settle()
    assert st.title == "My refactor"


# -- screens ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "kind"), [
    ("permission-shell", ScreenKind.PERMISSION), ("permission-deny-feedback", ScreenKind.PERMISSION),
    ("trust", ScreenKind.PERMISSION), ("question", ScreenKind.QUESTION), ("question-down", ScreenKind.QUESTION),
    ("question-free-text", ScreenKind.QUESTION), ("question-free-text-draft", ScreenKind.QUESTION),
    ("question-free-text-multiline", ScreenKind.QUESTION),
    ("busy", ScreenKind.BUSY), ("hook-running", ScreenKind.BUSY), ("idle", ScreenKind.IDLE),
    ("idle-after-allow", ScreenKind.IDLE), ("idle-draft", ScreenKind.IDLE), ("after-esc", ScreenKind.IDLE),
    ("exit", ScreenKind.UNKNOWN),
])
def test_screens_of_1_0_102(name: str, kind: ScreenKind) -> None:
    assert read_screen(screen(name)).kind is kind


def test_the_shell_dialog_gives_its_tool_command_and_real_options() -> None:
    s = read_screen(screen("permission-shell"))
    assert (s.title, s.tool, s.subject) == ("Do you want to run this command?", "Shell",
                                            "touch copilot-ran.txt && echo hello-from-copilot")
    assert [(o.number, o.hotkey, o.selected) for o in s.options] == [("1", "", True), ("2", "", False),
                                                                     ("3", "esc", False)]
    assert s.options[0].label == YES and s.options[2].label == NO
    assert s.options[1].label == ("Yes, and don't ask again for `touch` in this directory "
                                  "(/tmp/deck-tray-copilot/allow/project)")
    # 1 acts at once (test_shell_permission_allowed_with_1); Esc cancels the turn.
    assert [st.value for st in plan(AgentKind.COPILOT_CLI, Reply(ReplyKind.ALLOW), s, None)] == ["1"]
    assert [st.value for st in plan(AgentKind.COPILOT_CLI, Reply(ReplyKind.DENY), s, None)] == ["Escape"]


def test_the_screen_completes_the_transcripts_request() -> None:
    st = upto(RECORDS, "permission.requested")
    seen = screen_evidence(AgentKind.COPILOT_CLI, read_screen(screen("permission-shell")), 1.0, st.pending_request())
    assert seen is not None and seen.status is SessionStatus.WAITING_PERMISSION
    assert seen.pending is not None and seen.pending.summary == "touch copilot-ran.txt && echo hello-from-copilot"
    ev = st.evidence()
    assert ev is not None
    said, _, pending = decide([ev, seen], 2.0)
    assert said is SessionStatus.WAITING_PERMISSION and pending is not None and pending.options[0] == "Yes"


def test_the_trust_dialog_is_a_permission_for_the_folder() -> None:
    s = read_screen(screen("trust"))
    assert (s.tool, s.subject) == (TRUST_TOOL, "/tmp/deck-tray-copilot/trust/project")
    assert [o.label for o in s.options] == ["Yes", "Yes, and remember this folder for future sessions", "No"]


def test_the_question_has_no_digits_and_is_answered_with_arrows_from_the_selected_row() -> None:
    s = read_screen(screen("question"))
    assert (s.title, s.tool) == ("Which colour should I use?", "ask_user")
    assert [(o.number, o.label, o.selected) for o in s.options] == [
        ("", "Red", True), ("", "Blue", False), ("", "Other (type your answer)", False)]
    assert [st.value for st in plan(AgentKind.COPILOT_CLI, Reply(ReplyKind.OPTION, "Blue"), s, None)] == \
        ["Down", "Enter"]
    moved = read_screen(screen("question-down"))
    assert [st.value for st in plan(AgentKind.COPILOT_CLI, Reply(ReplyKind.OPTION, "Red"), moved, None)] == \
        ["Up", "Enter"]


def test_a_free_text_answer_moves_onto_other_without_enter_then_types_it() -> None:
    # 1.0.102: the arrows onto "Other (type your answer)" open its input box at once; Enter on the
    # empty box would not answer. Typing and Enter answer {"colour": "my own colour"}.
    s = read_screen(screen("question"))
    assert not s.free_text
    steps = plan(AgentKind.COPILOT_CLI, Reply(ReplyKind.PROMPT, "my own colour"), s, None)
    assert [(st.kind, st.value) for st in steps[:4]] == [
        (StepKind.KEY, "Down"), (StepKind.KEY, "Down"), (StepKind.WAIT_SCREEN, FREE_TEXT),
        (StepKind.LITERAL, "my own colour")]
    assert steps[-1].value == "Enter" and [st.value for st in steps].count("Enter") == 1
    moved = read_screen(screen("question-down"))
    assert [st.value for st in plan(AgentKind.COPILOT_CLI, Reply(ReplyKind.PROMPT, "teal"), moved, None)][:2] == \
        ["Down", FREE_TEXT]


def test_the_open_answer_box_takes_typing_and_the_row_keeps_its_label() -> None:
    s = read_screen(screen("question-free-text"))
    assert s.kind is ScreenKind.QUESTION and s.free_text and s.draft == "" and screen_matches(s, FREE_TEXT)
    # "Other (type your answer below)" while selected: the same option as before.
    assert [(o.label, o.selected) for o in s.options] == [
        ("Red", False), ("Blue", False), ("Other (type your answer)", True)]
    assert [st.kind for st in plan(AgentKind.COPILOT_CLI, Reply(ReplyKind.PROMPT, "teal"), s, None)][0] is \
        StepKind.WAIT_SCREEN


def test_text_in_the_answer_box_is_a_draft_that_is_not_added_to() -> None:
    s = read_screen(screen("question-free-text-draft"))
    assert s.kind is ScreenKind.QUESTION and s.draft == "abc" and not s.free_text
    with pytest.raises(PlanError, match="already holds text typed in the terminal.*'abc'"):
        plan(AgentKind.COPILOT_CLI, Reply(ReplyKind.PROMPT, "my own colour"), s, None)
    # A pasted answer of several lines grows the box above the form's footer: still the form
    # (not the idle input line), with the whole text as the draft.
    tall = read_screen(screen("question-free-text-multiline"))
    assert tall.kind is ScreenKind.QUESTION and tall.title == "Which colour should I use?"
    assert tall.draft == "line one\nline two\nline three\nline four\nline five\nline six"


def test_the_idle_input_line_and_a_draft() -> None:
    assert read_screen(screen("idle")).draft == ""
    assert read_screen(screen("idle-draft")).draft == "half typed"
    # Prompts echoed in the conversation (" ❯ please FAKE_SHELL now … 00:48") are not the input line.
    assert read_screen(screen("permission-shell")).kind is ScreenKind.PERMISSION


# -- processes and registry ---------------------------------------------------------------

def test_processes_of_the_npm_install_are_recognised_and_others_not() -> None:
    native = "/x/node_modules/@github/copilot-linux-x64/copilot"
    assert ADAPTER.matches_process("MainThread", [native])
    assert ADAPTER.matches_process("node", ["node", "/x/node_modules/.bin/copilot"])
    assert ADAPTER.matches_process("node", ["/usr/bin/node", "/x/node_modules/@github/copilot/npm-loader.js"])
    assert ADAPTER.matches_process("copilot", ["copilot", "--resume"])
    assert not ADAPTER.matches_process("MainThread", ["/usr/lib/firefox/firefox"])
    assert not ADAPTER.matches_process("node", ["node", "/x/bin/gemini"])
    assert not ADAPTER.matches_process("bash", ["bash", "-c", "copilot"])
    assert not ADAPTER.matches_process("gh", ["gh", "copilot", "suggest"])
    assert not ADAPTER.matches_process("node", ["node", "/x/copilot-language-server/dist/main.js"])


def test_the_registry_holds_copilot_once() -> None:
    kinds = [a.kind for a in ADAPTERS]
    assert kinds.count(AgentKind.COPILOT_CLI) == 1 and adapter_for(AgentKind.COPILOT_CLI) is ADAPTER
    assert (AgentKind.COPILOT_CLI.value, AgentKind.COPILOT_CLI.label) == ("copilot-cli", "Copilot CLI")
    assert default_homes({"HOME": "/h", "COPILOT_HOME": "/c"})[AgentKind.COPILOT_CLI] == Path("/c")
    assert default_homes({"HOME": "/h"})[AgentKind.COPILOT_CLI] == Path("/h/.copilot")
    assert (ADAPTER.binary, ADAPTER.env_keys, ADAPTER.title_rules, ADAPTER.exit_command()) == \
        ("copilot", ("COPILOT_HOME",), False, "/exit")
    assert ADAPTER.title_status("please FAKE_SHELL now - GitHub Copilot") is None


# -- the scanner --------------------------------------------------------------------------

def _home(tmp_path: Path, pid: int, *, events: bool = True) -> Path:
    """A ``COPILOT_HOME`` with the captured session, opened by ``pid``."""
    home = tmp_path / "copilot-home"
    d = home / "session-state" / SID
    d.mkdir(parents=True)
    shutil.copy(WORKSPACE, d / "workspace.yaml")
    (d / f"inuse.{pid}.lock").write_text(f"{pid}\n")
    if events:
        lines = ALLOW_RUN.read_text().splitlines()
        upto_perm = next(i for i, ln in enumerate(lines) if '"type":"permission.requested"' in ln)
        (d / "events.jsonl").write_text("\n".join(lines[:upto_perm + 1]) + "\n")
    return home


def test_the_scanner_lists_a_running_copilot_waiting_for_permission(tmp_path: Path) -> None:
    pid = os.getpid()
    home = _home(tmp_path, pid)
    now = time.time()
    proc = AgentProcess(pid, "copilot", CWD, started_at=now - 30,
                        env=(("HOME", str(tmp_path)), ("COPILOT_HOME", str(home))))
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [proc],
                      adapter_homes={AgentKind.COPILOT_CLI: home})
    obs = {ob.id: ob for ob in scanner.scan()}
    ob = obs[SID]
    assert (ob.agent, ob.pid, ob.cwd, ob.title) == (AgentKind.COPILOT_CLI, pid, CWD, "please FAKE_SHELL now")
    assert ob.pending_hint is not None and ob.pending_hint.tool == "bash"
    s = build_session(ob, now)
    assert s.status is SessionStatus.WAITING_PERMISSION
    assert home / "session-state" in scanner.watch_roots()


def test_before_the_first_prompt_the_process_is_listed_ready(tmp_path: Path) -> None:
    home = _home(tmp_path, 4242, events=False)
    now = time.time()
    proc = AgentProcess(4242, "copilot", "/work/other", started_at=now - 5, env=(("COPILOT_HOME", str(home)),))
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [proc],
                      adapter_homes={AgentKind.COPILOT_CLI: home})
    (ob,) = scanner.scan()
    assert (ob.id, ob.pid, ob.cwd) == ("copilot-4242", 4242, "/work/other")
    assert build_session(ob, now).status is SessionStatus.IDLE


def test_without_its_process_the_session_has_ended(tmp_path: Path) -> None:
    home = _home(tmp_path, 4243)
    now = time.time()
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now, process_lister=lambda: [],
                      adapter_homes={AgentKind.COPILOT_CLI: home})
    (ob,) = scanner.scan()
    s = build_session(ob, now)
    assert s.status is SessionStatus.ENDED and "Copilot CLI is no longer running" in s.reason


def test_a_lock_left_by_an_earlier_process_with_the_same_pid_is_not_linked(tmp_path: Path) -> None:
    home = _home(tmp_path, 4244)
    lock = home / "session-state" / SID / "inuse.4244.lock"
    os.utime(lock, (time.time() - 3600, time.time() - 3600))
    now = time.time()
    proc = AgentProcess(4244, "copilot", CWD, started_at=now - 10, env=(("COPILOT_HOME", str(home)),))
    src = AdapterSource(ADAPTER, home, history_s=86400, skipped=SkippedFiles())
    live = LiveProcess(proc.pid, proc.cwd, proc.started_at, dict(proc.env))
    obs, _ = src.scan(None, [live], now)
    by_id = {ob.id: ob for ob in obs}
    assert by_id[SID].pid is None and by_id["copilot-4244"].pid == 4244
