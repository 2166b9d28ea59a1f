"""Codex rollouts: conversation, title and turn state (0.169.0 captures + older shapes)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core import codex
from deck_tray.core.codex import CodexRollout, codex_home, thread_id_from_path
from deck_tray.core.model import EvidenceSource, MessageRole, RequestKind, SessionStatus
from deck_tray.core.record_kinds import codex_arguments

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DAEMON = FIXTURES / "codex-0.169.0-tui-daemon.jsonl"
NO_DAEMON = FIXTURES / "codex-0.169.0-tui-no-daemon.jsonl"
EXEC = FIXTURES / "codex-0.169.0-exec.jsonl"


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def feed(records: list[dict[str, Any]]) -> CodexRollout:
    r = CodexRollout()
    for rec in records:
        r.feed(rec)
    return r


def ts(rec: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()


def find(records: list[dict[str, Any]], pred: Any, start: int = 0) -> int:
    for i in range(start, len(records)):
        if pred(records[i]):
            return i
    raise AssertionError("record not found")


def is_payload(ptype: str, **fields: Any) -> Any:
    def pred(r: dict[str, Any]) -> bool:
        p = r.get("payload")
        return (
            isinstance(p, dict) and p.get("type") == ptype and all(p.get(k) == v for k, v in fields.items())
        )

    return pred


# -- whole files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "thread_id", "title", "source"),
    [
        (DAEMON, "01a200e3-41ea-7420-b0df-79244f839570", "please FAKE_SHELL now", "vscode"),
        (NO_DAEMON, "01a200e4-f2b5-78c1-9c58-e75423501563", "hooks FAKE_SHELL", "cli"),
        (EXEC, "01a200e2-3b74-7260-8ec7-4dd0b34227be", "hello", "exec"),
    ],
)
def test_fixture_identity_cwd_and_title(path: Path, thread_id: str, title: str, source: str) -> None:
    r = feed(load(path))
    assert r.thread_id == thread_id
    assert r.cwd == "/home/dev/work/proj"
    assert r.title == title  # the first typed prompt, never <environment_context>
    assert r.cli_version == "0.169.0"
    assert r.source == source
    for m in r.messages:
        assert not m.text.startswith(("<environment_context>", "<turn_aborted>", "<trimmed developer"))


def test_no_daemon_conversation_in_order() -> None:
    r = feed(load(NO_DAEMON))
    users = [m.text for m in r.messages if m.role is MessageRole.USER]
    assert users == ["hooks FAKE_SHELL", "slow FAKE_SLOW", "slow2 FAKE_SLOW"]
    assistant = [m.text for m in r.messages if m.role is MessageRole.ASSISTANT]
    assert assistant[0] == "I will run a shell command."
    assert len(assistant) == 4
    tools = [(m.text, m.state) for m in r.messages if m.role is MessageRole.TOOL]
    assert tools == [("exec_command(touch fake-shell-ran.txt && echo hello-from-fake-shell)", "done")]
    ev = r.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE
    assert ev.source is EvidenceSource.TRANSCRIPT


def test_exec_run_ends_idle_with_one_exchange() -> None:
    recs = load(EXEC)
    r = feed(recs)
    assert [(m.role, m.text) for m in r.messages] == [
        (MessageRole.USER, "hello"),
        (MessageRole.ASSISTANT, "Hello from the fake model. You said: hello"),
    ]
    ev = r.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE
    assert ev.observed_at == pytest.approx(ts(recs[find(recs, is_payload("task_complete"))]))


def test_daemon_rollout_ends_interrupted_with_the_cancelled_command_marked_error() -> None:
    r = feed(load(DAEMON))
    ev = r.evidence()
    assert ev is not None
    assert ev.status is SessionStatus.IDLE
    assert ev.detail == "interrupted"
    assert r.pending_request() is None
    tools = [(m.text, m.state) for m in r.messages if m.role is MessageRole.TOOL]
    assert tools[0] == ("exec_command(touch fake-shell-ran.txt && echo hello-from-fake-shell)", "done")
    assert tools[-1] == ("exec_command(rm -f fake-shell-ran.txt)", "error")
    assert [m.text for m in r.messages if m.role is MessageRole.NOTICE][-1] == "Interrupted by the user"
    users = [m.text for m in r.messages if m.role is MessageRole.USER]
    assert users == [
        "please FAKE_SHELL now",
        "second FAKE_ASK",
        "third FAKE_ASK",
        "fourth FAKE_SHELL:rm -f fake-shell-ran.txt",
    ]


# -- stepping through ---------------------------------------------------------------


def test_escalated_exec_command_open_is_a_pending_permission() -> None:
    recs = load(NO_DAEMON)
    i = find(recs, is_payload("function_call", name="exec_command"))
    r = feed(recs[: i + 1])
    ev = r.evidence()
    assert ev is not None
    assert ev.status is SessionStatus.BUSY
    assert ev.pending is not None
    assert ev.pending.kind is RequestKind.PERMISSION
    assert ev.pending.tool == "exec_command"
    assert ev.pending.summary == "touch fake-shell-ran.txt && echo hello-from-fake-shell"
    assert ev.pending.request_id == "call_fake_1c4c316eabc7472d"
    assert ev.pending.options == codex.DEFAULT_APPROVAL_OPTIONS
    assert ev.observed_at == pytest.approx(ts(recs[i]))

    # The output arrives: still working, nothing pending.
    j = find(recs, is_payload("function_call_output"), i)
    r2 = feed(recs[: j + 1])
    ev2 = r2.evidence()
    assert ev2 is not None and ev2.status is SessionStatus.BUSY and ev2.pending is None

    # task_complete: idle.
    k = find(recs, is_payload("task_complete"), j)
    ev3 = feed(recs[: k + 1]).evidence()
    assert ev3 is not None and ev3.status is SessionStatus.IDLE and ev3.detail == "turn finished"


def test_unescalated_command_is_just_running() -> None:
    r = CodexRollout()
    r.feed(
        {
            "timestamp": "2026-11-22T01:00:00.000Z",
            "type": "response_item",
            "payload": {
                "type": "function_call",
                "name": "exec_command",
                "call_id": "c1",
                "arguments": json.dumps({"cmd": "ls -la"}),
            },
        }
    )
    ev = r.evidence()
    assert ev is not None
    assert ev.status is SessionStatus.BUSY
    assert ev.pending is None
    assert [(m.text, m.state) for m in r.messages] == [("exec_command(ls -la)", "pending")]


def test_request_user_input_in_the_fixture_is_a_pending_question() -> None:
    recs = load(DAEMON)
    i = find(recs, is_payload("function_call", call_id="call_fake_0af970a250ec4cd4"))
    ev = feed(recs[: i + 1]).evidence()
    assert ev is not None
    assert ev.status is SessionStatus.BUSY
    assert ev.pending is not None
    assert ev.pending.kind is RequestKind.QUESTION
    assert ev.pending.tool == "request_user_input"
    assert ev.pending.request_id == "call_fake_0af970a250ec4cd4"


def test_request_user_input_with_full_arguments_has_the_option_labels() -> None:
    # The captured arguments are trimmed; restore the full question from the same capture.
    recs = load(DAEMON)
    i = find(recs, is_payload("function_call", call_id="call_fake_0af970a250ec4cd4"))
    call = json.loads(json.dumps(recs[i]))
    call["payload"]["arguments"] = json.dumps(
        {
            "questions": [
                {
                    "id": "widget_colour",
                    "header": "Colour",
                    "question": "Which colour should the fake widget be?",
                    "options": [
                        {"label": "Red (Recommended)", "description": "A red widget"},
                        {"label": "Blue", "description": "A blue widget"},
                    ],
                }
            ]
        }
    )
    r = feed([*recs[:i], call])
    ev = r.evidence()
    assert ev is not None and ev.pending is not None
    assert ev.pending.kind is RequestKind.QUESTION
    assert ev.pending.question == "Which colour should the fake widget be?"
    assert ev.pending.summary == "Which colour should the fake widget be?"
    assert ev.pending.options == ("Red (Recommended)", "Blue")
    assert r.messages[-1].text == "request_user_input(Which colour should the fake widget be?)"

    # Answered: the output closes it, then the turn completes.
    rest = recs[i + 1 :]
    for rec in rest[: find(rest, is_payload("function_call_output")) + 1]:
        r.feed(rec)
    assert r.pending_request() is None
    assert r.messages[[m.key for m in r.messages].index("call_fake_0af970a250ec4cd4")].state == "done"


def test_turn_aborted_is_idle_interrupted() -> None:
    recs = load(DAEMON)
    i = find(recs, is_payload("turn_aborted"))
    before = feed(recs[:i]).evidence()
    assert before is not None and before.status is SessionStatus.BUSY
    ev = feed(recs[: i + 1]).evidence()
    assert ev is not None
    assert ev.status is SessionStatus.IDLE
    assert ev.detail == "interrupted"
    assert ev.observed_at == pytest.approx(ts(recs[i]))


def test_reset_forgets_the_conversation() -> None:
    r = feed(load(NO_DAEMON))
    r.reset()
    assert not r.messages and not r.title and r.evidence() is None


# -- older record shapes ------------------------------------------------------------

TID = "5973b6c0-94b8-487b-a530-2aeb6098ae0e"


def _old(ts_: str, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": ts_, "type": type_, "payload": payload}


def test_old_envelope_without_ordinal_and_with_event_messages() -> None:
    recs = [
        _old(
            "2025-09-01T10:00:00.000Z",
            "session_meta",
            {
                "id": TID,
                "timestamp": "2025-09-01T10:00:00.000Z",
                "cwd": "/home/dev/old",
                "cli_version": "0.30.0",
            },
        ),
        _old(
            "2025-09-01T10:00:01.000Z",
            "response_item",
            {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "<environment_context>\n  <cwd>/home/dev/old</cwd>\n</environment_context>",
                    }
                ],
            },
        ),
        _old("2025-09-01T10:00:02.000Z", "event_msg", {"type": "task_started"}),
        _old(
            "2025-09-01T10:00:02.100Z",
            "event_msg",
            {"type": "user_message", "message": "fix the flaky test", "kind": "plain"},
        ),
        _old("2025-09-01T10:00:03.000Z", "event_msg", {"type": "agent_message", "message": "On it."}),
        _old(
            "2025-09-01T10:00:04.000Z",
            "response_item",
            {
                "type": "local_shell_call",
                "call_id": "sh1",
                "status": "completed",
                "action": {"type": "exec", "command": ["bash", "-lc", "pytest -x"]},
            },
        ),
    ]
    r = feed(recs)
    assert r.thread_id == TID
    assert r.cwd == "/home/dev/old"
    assert r.title == "fix the flaky test"
    assert [m.text for m in r.messages if m.role is MessageRole.USER] == ["fix the flaky test"]
    ev = r.evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY
    assert [m.text for m in r.messages if m.role is MessageRole.TOOL] == ["local_shell_call(pytest -x)"]

    r.feed(
        _old(
            "2025-09-01T10:00:09.000Z", "event_msg", {"type": "task_complete", "last_agent_message": "Done."}
        )
    )
    ev = r.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE
    assert ev.observed_at == pytest.approx(dt.datetime(2025, 9, 1, 10, 0, 9, tzinfo=dt.UTC).timestamp())


def test_old_envelope_prompt_in_both_item_and_event_is_shown_once() -> None:
    recs = [
        _old("2025-09-01T10:00:00.000Z", "session_meta", {"id": TID, "cwd": "/home/dev/old"}),
        _old(
            "2025-09-01T10:00:02.000Z",
            "response_item",
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "explain main.rs"}],
            },
        ),
        _old("2025-09-01T10:00:02.001Z", "event_msg", {"type": "user_message", "message": "explain main.rs"}),
        _old(
            "2025-09-01T10:00:05.000Z",
            "response_item",
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "It starts the server."}],
            },
        ),
        _old(
            "2025-09-01T10:00:05.100Z",
            "event_msg",
            {"type": "agent_message", "message": "It starts the server."},
        ),
        _old(
            "2025-09-01T10:01:00.000Z",
            "response_item",
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and lib.rs?"}]},
        ),
        _old("2025-09-01T10:01:00.001Z", "event_msg", {"type": "user_message", "message": "and lib.rs?"}),
    ]
    r = feed(recs)
    assert [m.text for m in r.messages if m.role is MessageRole.USER] == ["explain main.rs", "and lib.rs?"]
    assert [m.text for m in r.messages if m.role is MessageRole.ASSISTANT] == ["It starts the server."]
    assert r.title == "explain main.rs"


def test_oldest_bare_item_shape() -> None:
    recs = [
        {"id": TID, "timestamp": "2025-04-20T08:00:00.000Z", "instructions": "You are a coding agent."},
        {"record_type": "state"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "<user_instructions>\nbe brief\n</user_instructions>"}
            ],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list the files"}]},
    ]
    r = feed(recs)
    assert r.thread_id == TID
    assert r.title == "list the files"
    assert [m.text for m in r.messages if m.role is MessageRole.USER] == ["list the files"]
    ev = r.evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY and ev.pending is None

    r.feed(
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running ls."}]}
    )
    r.feed(
        {
            "type": "function_call",
            "name": "shell",
            "call_id": "call_1",
            "arguments": json.dumps(
                {"command": ["bash", "-lc", "ls -la"], "sandbox_permissions": "require_escalated"}
            ),
        }
    )
    ev = r.evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY
    assert ev.pending is not None and ev.pending.kind is RequestKind.PERMISSION
    assert ev.pending.summary == "ls -la"
    assert r.messages[-1].text == "shell(ls -la)"

    r.feed(
        {"type": "function_call_output", "call_id": "call_1", "output": {"output": "a\nb", "metadata": {}}}
    )
    assert r.pending_request() is None
    assert r.messages[-1].state == "done"
    assert [m.text for m in r.messages if m.role is MessageRole.ASSISTANT] == ["Running ls."]


# -- helpers ------------------------------------------------------------------------


def test_thread_id_from_path() -> None:
    p = (
        "/home/dev/.codex/sessions/2026/11/22/"
        "rollout-2026-11-22T01-35-34-01a200e4-f2b5-78c1-9c58-e75423501563.jsonl"
    )
    assert thread_id_from_path(p) == "01a200e4-f2b5-78c1-9c58-e75423501563"
    assert thread_id_from_path("/x/rollout-2026-11-22T01-35-34-notanid.jsonl") is None
    assert thread_id_from_path("/x/history.jsonl") is None
    assert thread_id_from_path(p + ".bak") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"cmd": "ls"}', {"cmd": "ls"}),
        ({"cmd": "ls"}, {"cmd": "ls"}),
        ("not json", {"raw": "not json"}),
        ("[1, 2]", {"raw": "[1, 2]"}),
        (None, {}),
    ],
)
def test_parse_arguments(raw: Any, expected: dict[str, Any]) -> None:
    assert codex_arguments(raw) == expected


def test_codex_home_honours_codex_home() -> None:
    assert codex_home({"CODEX_HOME": "/opt/codex", "HOME": "/home/dev"}) == Path("/opt/codex")
    assert codex_home({"HOME": "/home/dev"}) == Path("/home/dev/.codex")
