"""Claude Code formats: transcript parsing, live status files, paths (captured 2.1.197)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core import claude
from deck_tray.core.claude import (
    ClaudeTranscript,
    config_dir,
    encode_cwd,
    live_status_evidence,
    parse_live_status,
    read_live_status,
    transcript_path,
)
from deck_tray.core.model import EvidenceSource, MessageRole, RequestKind, SessionStatus

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
INTERACTIVE = FIXTURES / "claude-code-2.1.197-interactive.jsonl"
STATUS_CHANGES = FIXTURES / "claude-code-2.1.197-sessions-pid-json-changes.jsonl"
SESSION_ID = "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


RECORDS = load(INTERACTIVE)


def ts(rec: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()


def feed(records: list[dict[str, Any]]) -> ClaudeTranscript:
    t = ClaudeTranscript()
    for r in records:
        t.feed(r)
    return t


def index_of(pred: Any) -> int:
    for i, r in enumerate(RECORDS):
        if pred(r):
            return i
    raise AssertionError("record not found in fixture")


def _blocks(r: dict[str, Any]) -> list[dict[str, Any]]:
    c = (r.get("message") or {}).get("content")
    return [b for b in c if isinstance(b, dict)] if isinstance(c, list) else []


def tool_use_index(name: str, command_prefix: str = "") -> int:
    def pred(r: dict[str, Any]) -> bool:
        return r.get("type") == "assistant" and any(
            b.get("type") == "tool_use"
            and b.get("name") == name
            and str((b.get("input") or {}).get("command", "")).startswith(command_prefix)
            for b in _blocks(r)
        )

    return index_of(pred)


def text_index(prefix: str) -> int:
    return index_of(
        lambda r: (
            r.get("type") == "user"
            and any(b.get("type") == "text" and str(b.get("text", "")).startswith(prefix) for b in _blocks(r))
        )
    )


def upto(i: int) -> ClaudeTranscript:
    """The transcript state right after record ``i``."""
    return feed(RECORDS[: i + 1])


# -- the whole file -----------------------------------------------------------------


def test_whole_file_title_cwd_and_session_id() -> None:
    t = feed(RECORDS)
    assert t.title == "Fake session"
    assert t.display_title == "Fake session"
    assert t.cwd == "/home/dev/work/proj"
    assert t.session_id == SESSION_ID
    assert t.first_prompt == "please FAKE_BASH now"


def test_prompts_are_user_messages_in_order_without_tool_results_or_meta() -> None:
    t = feed(RECORDS)
    prompts = [m.text for m in t.messages if m.role is MessageRole.USER]
    assert prompts == [
        "please FAKE_BASH now",
        "second: FAKE_BASH please",
        "third: FAKE_ASK",
        "fourth: FAKE_BASH:rm -f fake-bash-ran.txt",
        "fifth: just say hi",
        "sixth: FAKE_SLOW",
        "seventh: FAKE_SLOW",
        "eighth: FAKE_WRITE",
        "resumed hello",
    ]
    for m in t.messages:
        assert "local-command-caveat" not in m.text
        assert "<command-name>" not in m.text
        assert "local-command-stdout" not in m.text


def test_tool_calls_are_tool_messages_with_their_outcome() -> None:
    t = feed(RECORDS)
    tools = [(m.text, m.state) for m in t.messages if m.role is MessageRole.TOOL]
    assert tools == [
        ("Bash(echo hello-from-fake-bash)", "done"),
        ("Bash(touch fake-bash-ran.txt && echo hello-from-fake-bash)", "done"),
        ("AskUserQuestion(Which colour should the fake widget be?)", "done"),
        ("Bash(rm -f fake-bash-ran.txt)", "error"),  # rejected with Esc
        ("Write(/home/dev/work/proj/fake-written.txt)", "done"),
    ]


def test_assistant_text_and_notices_are_shown() -> None:
    t = feed(RECORDS)
    assistant = [m.text for m in t.messages if m.role is MessageRole.ASSISTANT]
    assert "I will run a shell command." in assistant
    assert any(a.startswith("Hello from the fake model. You said: resumed hello") for a in assistant)
    notices = [m.text for m in t.messages if m.role is MessageRole.NOTICE]
    assert notices.count("Interrupted by the user") == 2  # rejected Bash + Esc while streaming
    assert "/exit" in [m.text for m in t.messages if m.role is MessageRole.COMMAND]


def test_whole_file_ends_idle_after_the_resumed_print_run() -> None:
    # The file ends with a `-p --resume` turn whose assistant record has stop_reason end_turn
    # (print mode writes no turn_duration).
    t = feed(RECORDS)
    ev = t.evidence()
    assert ev is not None
    assert ev.source is EvidenceSource.TRANSCRIPT
    assert ev.status is SessionStatus.IDLE
    assert ev.observed_at == pytest.approx(ts(RECORDS[-2]))  # the last assistant record
    assert t.pending_request() is None


def test_exit_command_ends_the_session() -> None:
    i = index_of(
        lambda r: (
            r.get("type") == "user"
            and isinstance((r.get("message") or {}).get("content"), str)
            and "<command-name>/exit</command-name>" in r["message"]["content"]
        )
    )
    t = upto(i + 1)  # the /exit record and its "See ya!" stdout record
    ev = t.evidence()
    assert ev is not None and ev.status is SessionStatus.ENDED


# -- stepping through ---------------------------------------------------------------


def test_prompted_bash_open_means_busy_with_the_pending_command() -> None:
    i = tool_use_index("Bash", "touch fake-bash-ran.txt")
    t = upto(i)
    ev = t.evidence()
    assert ev is not None
    assert ev.status is SessionStatus.BUSY
    assert ev.pending is not None
    assert ev.pending.kind is RequestKind.PERMISSION
    assert ev.pending.tool == "Bash"
    assert ev.pending.summary == "touch fake-bash-ran.txt && echo hello-from-fake-bash"
    assert ev.pending.request_id == "toolu_fake_f53d214ecbbf4ff6"
    assert ev.pending.options == claude.DEFAULT_PERMISSION_OPTIONS
    assert ev.observed_at == pytest.approx(ts(RECORDS[i]))
    assert t.messages[-1].role is MessageRole.TOOL and t.messages[-1].state == "pending"

    # Its tool_result closes it: working again, no pending request.
    t.feed(RECORDS[i + 1])
    ev = t.evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY and ev.pending is None
    assert t.pending_request() is None


def test_ask_user_question_open_is_a_pending_question_with_its_options() -> None:
    i = tool_use_index("AskUserQuestion")
    t = upto(i)
    ev = t.evidence()
    assert ev is not None
    assert ev.status is SessionStatus.BUSY
    assert ev.pending is not None
    assert ev.pending.kind is RequestKind.QUESTION
    assert ev.pending.tool == "AskUserQuestion"
    assert ev.pending.options == ("Red", "Blue")
    assert ev.pending.question == "Which colour should the fake widget be?"


def test_rejected_bash_then_interrupt_marker_is_idle_interrupted() -> None:
    i = text_index("[Request interrupted by user for tool use]")
    t = upto(i)
    ev = t.evidence()
    assert ev is not None
    assert ev.status is SessionStatus.IDLE
    assert ev.detail == "interrupted"
    assert t.pending_request() is None


def test_escape_while_streaming_is_idle_interrupted() -> None:
    i = index_of(
        lambda r: (
            r.get("type") == "user"
            and any(b.get("text") == "[Request interrupted by user]" for b in _blocks(r))
        )
    )
    before = upto(i - 1).evidence()
    assert before is not None and before.status is SessionStatus.BUSY  # synthetic partial answer
    ev = upto(i).evidence()
    assert ev is not None
    assert ev.status is SessionStatus.IDLE
    assert ev.detail == "interrupted"
    assert ev.observed_at == pytest.approx(ts(RECORDS[i]))


def test_turn_duration_is_idle_turn_finished() -> None:
    i = index_of(lambda r: r.get("type") == "system" and r.get("subtype") == "turn_duration")
    ev = upto(i).evidence()
    assert ev is not None
    assert ev.status is SessionStatus.IDLE
    assert ev.observed_at == pytest.approx(ts(RECORDS[i]))


def test_turn_duration_ends_the_turn_when_assistant_records_carry_no_stop_reason() -> None:
    # Per-block assistant records may carry stop_reason null; turn_duration is what says "done".
    env = {"sessionId": SESSION_ID, "cwd": "/home/dev/work/proj"}
    t = ClaudeTranscript()
    t.feed(
        {
            **env,
            "type": "user",
            "timestamp": "2026-11-22T02:00:00.000Z",
            "message": {"role": "user", "content": "say hi"},
        }
    )
    t.feed(
        {
            **env,
            "type": "assistant",
            "timestamp": "2026-11-22T02:00:01.000Z",
            "message": {
                "id": "msg_1",
                "role": "assistant",
                "stop_reason": None,
                "content": [{"type": "text", "text": "Hi!"}],
            },
        }
    )
    ev = t.evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY
    t.feed(
        {
            **env,
            "type": "system",
            "subtype": "turn_duration",
            "durationMs": 900,
            "timestamp": "2026-11-22T02:00:01.200Z",
        }
    )
    ev = t.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE
    assert ev.observed_at == pytest.approx(
        dt.datetime(2026, 11, 22, 2, 0, 1, 200000, tzinfo=dt.UTC).timestamp()
    )


def test_meta_string_record_is_not_a_prompt() -> None:
    t = ClaudeTranscript()
    t.feed(
        {
            "type": "user",
            "isMeta": True,
            "timestamp": "2026-11-22T02:00:00.000Z",
            "message": {"role": "user", "content": "Continue from where you left off."},
        }
    )
    assert [m for m in t.messages if m.role is MessageRole.USER] == []
    assert t.evidence() is None


def test_interrupt_forgets_tool_calls_that_never_got_a_result() -> None:
    env = {"sessionId": SESSION_ID, "cwd": "/home/dev/work/proj"}
    t = ClaudeTranscript()
    t.feed(
        {
            **env,
            "type": "user",
            "timestamp": "2026-11-22T02:00:00.000Z",
            "message": {"role": "user", "content": "run the slow thing"},
        }
    )
    t.feed(
        {
            **env,
            "type": "assistant",
            "timestamp": "2026-11-22T02:00:01.000Z",
            "message": {
                "id": "m1",
                "role": "assistant",
                "stop_reason": "tool_use",
                "content": [
                    {"type": "tool_use", "id": "toolu_x", "name": "Bash", "input": {"command": "sleep 100"}}
                ],
            },
        }
    )
    assert t.pending_request() is not None
    t.feed(
        {
            **env,
            "type": "user",
            "timestamp": "2026-11-22T02:00:05.000Z",
            "message": {
                "role": "user",
                "content": [{"type": "text", "text": "[Request interrupted by user for tool use]"}],
            },
        }
    )
    assert t.pending_request() is None
    # The next turn is not held "busy" by the forgotten call.
    t.feed(
        {
            **env,
            "type": "user",
            "timestamp": "2026-11-22T02:01:00.000Z",
            "message": {"role": "user", "content": "never mind, say hi"},
        }
    )
    t.feed(
        {
            **env,
            "type": "assistant",
            "timestamp": "2026-11-22T02:01:01.000Z",
            "message": {
                "id": "m2",
                "role": "assistant",
                "stop_reason": "end_turn",
                "content": [{"type": "text", "text": "Hi!"}],
            },
        }
    )
    ev = t.evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE and ev.pending is None


def test_a_typed_prompt_means_busy_working() -> None:
    i = index_of(
        lambda r: r.get("type") == "user" and (r.get("message") or {}).get("content") == "third: FAKE_ASK"
    )
    ev = upto(i).evidence()
    assert ev is not None and ev.status is SessionStatus.BUSY and ev.pending is None


def test_no_records_no_evidence() -> None:
    t = ClaudeTranscript()
    assert t.evidence() is None
    for r in RECORDS[:3]:  # metadata only: mode, permission-mode, ai-title
        t.feed(r)
    assert t.evidence() is None
    assert t.title == "Fake session"


def test_reset_forgets_everything_but_the_session_id() -> None:
    t = ClaudeTranscript("abc")
    for r in RECORDS:
        t.feed(r)
    t.reset()
    assert t.session_id == "abc"
    assert not t.messages and not t.title and not t.cwd and t.evidence() is None


def test_unknown_record_and_block_types_are_ignored() -> None:
    t = ClaudeTranscript()
    t.feed({"type": "brand-new-record", "whatever": 1})
    t.feed({"type": "assistant", "message": {"id": "m1", "content": [{"type": "hologram"}, "junk"]}})
    t.feed({"type": "user", "message": "not a dict"})
    assert [m.role for m in t.messages] == []


def test_custom_title_wins_over_generated_title() -> None:
    t = ClaudeTranscript()
    t.feed({"type": "custom-title", "customTitle": "My rename"})
    t.feed({"type": "ai-title", "aiTitle": "Generated"})
    assert t.display_title == "My rename"


def test_meta_record_with_list_content_is_not_a_prompt() -> None:
    env = {"sessionId": SESSION_ID, "cwd": "/home/dev/work/proj", "timestamp": "2026-11-22T01:40:00.000Z"}
    t = ClaudeTranscript()
    t.feed({**env, "type": "user", "message": {"role": "user", "content": "use the tde skill"}})
    t.feed(
        {
            **env,
            "type": "user",
            "isMeta": True,
            "message": {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Base directory for this skill: /home/dev/.claude/skills/tde"}
                ],
            },
        }
    )
    prompts = [m.text for m in t.messages if m.role is MessageRole.USER]
    assert prompts == ["use the tde skill"]


# -- live status files --------------------------------------------------------------

_SNAPSHOTS = load(STATUS_CHANGES)


def test_live_status_snapshots_map_to_busy_waiting_idle() -> None:
    seen: set[str] = set()
    for snap in _SNAPSHOTS:
        content = snap["content"]
        ls = parse_live_status(content)
        if content is None:  # the file was deleted
            assert ls is None
            continue
        assert ls is not None
        assert ls.pid == content["pid"]
        assert ls.session_id == content["sessionId"]
        assert ls.cwd == content["cwd"]
        assert ls.proc_start == content["procStart"]
        ev = live_status_evidence(ls)
        status = content.get("status")
        if status is None:  # `-p` runs write the file without a status
            assert ev is None
            continue
        seen.add(status)
        assert ev is not None
        assert ev.source is EvidenceSource.STATUS_FILE
        assert ev.observed_at == pytest.approx(content["statusUpdatedAt"] / 1000.0)
        assert ev.fresh_for is None
        expected = {
            "busy": SessionStatus.BUSY,
            "waiting": SessionStatus.WAITING_PERMISSION,
            "idle": SessionStatus.IDLE,
        }[status]
        assert ev.status is expected
        if status == "waiting":
            assert ev.detail == "permission prompt"
    assert seen == {"busy", "waiting", "idle"}


def test_live_status_of_a_print_run_has_no_status_but_parses() -> None:
    content = next(s["content"] for s in _SNAPSHOTS if s["content"] and "status" not in s["content"])
    ls = parse_live_status(content)
    assert ls is not None
    assert ls.status == ""
    assert ls.updated_at == pytest.approx(content["startedAt"] / 1000.0)
    assert live_status_evidence(ls) is None


@pytest.mark.parametrize(
    "obj",
    [None, [], "x", {}, {"pid": "13514", "sessionId": "s"}, {"pid": 1}, {"pid": 1, "sessionId": ""}],
)
def test_parse_live_status_rejects_non_status_objects(obj: object) -> None:
    assert parse_live_status(obj) is None


def test_read_live_status_tolerates_half_written_and_vanished_files(tmp_path: Path) -> None:
    good = next(s["content"] for s in _SNAPSHOTS if s["content"] and s["content"].get("status") == "waiting")
    p = tmp_path / "13514.json"
    p.write_text(json.dumps(good)[:40])
    assert read_live_status(p) is None
    p.write_text(json.dumps(good))
    ls = read_live_status(p)
    assert ls is not None and ls.status == "waiting" and ls.waiting_for == "permission prompt"
    assert read_live_status(tmp_path / "gone.json") is None


# -- paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cwd", "folder"),
    [
        ("/home/dev/work/proj", "-home-dev-work-proj"),
        ("/home/dev/work/My Proj.v2_x/sub-dir", "-home-dev-work-My-Proj-v2-x-sub-dir"),
        ("/home/dev/recipe/claude-proj", "-home-dev-recipe-claude-proj"),
    ],
)
def test_encode_cwd_matches_claude_folder_names(cwd: str, folder: str) -> None:
    assert encode_cwd(cwd) == folder


def test_transcript_path_is_projects_folder_and_session_file() -> None:
    p = transcript_path(Path("/cfg"), "/home/dev/work/My Proj.v2_x/sub-dir", "b77b")
    assert p == Path("/cfg/projects/-home-dev-work-My-Proj-v2-x-sub-dir/b77b.jsonl")


def test_config_dir_honours_claude_config_dir() -> None:
    assert config_dir({"CLAUDE_CONFIG_DIR": "/opt/claude-cfg", "HOME": "/home/dev"}) == Path(
        "/opt/claude-cfg"
    )
    assert config_dir({"HOME": "/home/dev"}) == Path("/home/dev/.claude")
    assert config_dir({"CLAUDE_CONFIG_DIR": "", "HOME": "/home/dev"}) == Path("/home/dev/.claude")
    assert config_dir({"CLAUDE_CONFIG_DIR": "~/alt", "HOME": "/home/dev"}) == Path("~/alt").expanduser()


def test_config_dir_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "c"))
    assert config_dir() == tmp_path / "c"


def test_first_prompt_written_after_the_answer_still_reads_in_time_order(fixtures_dir) -> None:
    """Claude Code 2.1.197 created this transcript at the first prompt and wrote the user
    record *after* the assistant's text and tool_use (captured live, the prompt still open)."""
    t = ClaudeTranscript()
    for line in (fixtures_dir / "claude-code-2.1.197-first-prompt-order.jsonl").read_text().splitlines():
        t.feed(json.loads(line))
    roles = [m.role for m in t.messages]
    assert roles == [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL]
    assert t.messages[0].text == "please FAKE_BASH now"
    ev = t.evidence()
    assert ev is not None and ev.pending is not None and ev.pending.tool == "Bash"
    assert "tool" in ev.detail or "Bash" in ev.detail
