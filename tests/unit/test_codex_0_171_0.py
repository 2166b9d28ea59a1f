"""Codex CLI 0.171.0 (the newest verified release, 2026-12-06) through the same parsers as 0.169.0.

Fixtures, captured by driving the real ``codex`` 0.171.0 TUI (``--no-daemon``) in tmux against
the fake Responses API (``tests/fakes/fake_llm_openai_responses.py``), ``on-request`` approvals,
home paths replaced by ``/home/dev``:

* ``codex-0.171.0-tui-no-daemon.jsonl`` — its rollout: (1) a shell command approved with ``y``,
  (2) the same command refused with Esc (the turn is aborted), (3) a plain prompt;
* ``screens/codex-0.171.0-approval.txt`` — the pane while (1) waited for its approval.

The record shapes are those of 0.169.0 (``{"timestamp", "ordinal", "type", "payload"}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deck_tray.core.codex import CodexRollout
from deck_tray.core.model import AgentKind, MessageRole, RequestKind, SessionStatus
from deck_tray.core.screens import read_codex, screen_evidence
from deck_tray.core.status import decide

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROLLOUT = FIXTURES / "codex-0.171.0-tui-no-daemon.jsonl"
APPROVAL_SCREEN = FIXTURES / "screens" / "codex-0.171.0-approval.txt"
COMMAND = "touch fake-shell-ran.txt && echo hello-from-fake-shell"

RECORDS = [json.loads(ln) for ln in ROLLOUT.read_text(encoding="utf-8").splitlines() if ln.strip()]


def feed(records: list[dict[str, Any]]) -> CodexRollout:
    r = CodexRollout()
    for rec in records:
        r.feed(rec)
    return r


def find(ptype: str, start: int = 0) -> int:
    return next(i for i in range(start, len(RECORDS)) if (RECORDS[i].get("payload") or {}).get("type") == ptype)


def test_identity_title_and_conversation() -> None:
    r = feed(RECORDS)
    assert r.thread_id == "01a24c9a-d93e-72d3-a03b-5f69ab4ef7a3"
    assert (r.cwd, r.cli_version, r.source) == ("/home/dev/work/proj", "0.171.0", "cli")
    assert r.title == "please FAKE_SHELL now"
    assert [m.text for m in r.messages if m.role is MessageRole.USER] == [
        "please FAKE_SHELL now", "second: FAKE_SHELL please", "third: just say hi"]
    assert [(m.text, m.state) for m in r.messages if m.role is MessageRole.TOOL] == [
        (f"exec_command({COMMAND})", "done"),  # approved
        (f"exec_command({COMMAND})", "error"),  # refused with Esc
    ]
    assistant = [m.text for m in r.messages if m.role is MessageRole.ASSISTANT]
    assert assistant[0] == "I will run a shell command."
    assert assistant[-1] == "Hello from the fake model. You said: third: just say hi"
    assert [m.text for m in r.messages if m.role is MessageRole.NOTICE] == ["Interrupted by the user"]
    for m in r.messages:
        assert not m.text.startswith(("<environment_context>", "<turn_aborted>", "<skills_instructions>"))


def test_the_approval_is_waiting_permission_with_the_command_and_codex_keys() -> None:
    i = find("function_call")
    r = feed(RECORDS[: i + 1])
    transcript = r.evidence()
    assert transcript is not None and transcript.status is SessionStatus.BUSY  # the file alone cannot tell
    pending = r.pending_request()
    assert pending is not None and pending.kind is RequestKind.PERMISSION
    assert (pending.tool, pending.summary) == ("exec_command", COMMAND)
    screen = read_codex(APPROVAL_SCREEN.read_text(encoding="utf-8"))
    assert screen.subject == COMMAND
    assert [(o.label, o.hotkey) for o in screen.options] == [
        ("Yes, proceed", "y"),
        ("Yes, and don't ask again for commands that start with `touch fake-shell-ran.txt`", "p"),
        ("No, and tell Codex what to do differently", "esc"),
    ]
    seen = screen_evidence(AgentKind.CODEX, screen, transcript.observed_at + 1, hint=pending)
    assert seen is not None
    status, reason, asked = decide([transcript, seen], transcript.observed_at + 2)
    assert status is SessionStatus.WAITING_PERMISSION
    assert asked is not None and asked.summary == COMMAND and asked.options[0] == "Yes, proceed"
    assert reason.startswith(f"approval prompt for exec_command `{COMMAND}`")


def test_approved_command_runs_then_the_turn_is_idle() -> None:
    j = find("function_call_output")
    ev = feed(RECORDS[: j + 1]).evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY and ev.pending is None
    k = find("task_complete", j)
    done = feed(RECORDS[: k + 1]).evidence()
    assert done is not None and done.status is SessionStatus.IDLE and done.detail == "turn finished"


def test_refused_approval_aborts_the_turn() -> None:
    second = find("function_call", find("task_complete"))
    ev = feed(RECORDS[: second + 1]).evidence()
    assert ev is not None and ev.pending is not None and ev.pending.summary == COMMAND
    k = find("turn_aborted", second)
    aborted = feed(RECORDS[: k + 1]).evidence()
    assert aborted is not None and aborted.status is SessionStatus.IDLE and aborted.detail == "interrupted"


def test_the_file_ends_idle() -> None:
    r = feed(RECORDS)
    ev = r.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE and ev.detail == "turn finished"
    assert r.pending_request() is None
