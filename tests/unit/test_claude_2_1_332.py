"""Claude Code 2.1.332 (the newest verified release, 2026-12-06) through the same parsers as 2.1.197.

Fixtures, captured by driving the real ``claude`` 2.1.332 in tmux against the fake Anthropic
model (``tests/fakes/fake_llm_anthropic.py``), home paths replaced by ``/home/dev``:

* ``claude-code-2.1.332-interactive.jsonl`` — the transcript of one session: (1) a Bash command in
  the default "auto" permission mode (it ran without asking), then Shift+Tab to "manual" mode,
  (2) a Bash command asked and allowed ("1"), (3) an AskUserQuestion answered "Blue", (4) a Bash
  command asked and refused with Esc, (5) a plain prompt;
* ``claude-code-2.1.332-sessions-pid-json-changes.jsonl`` — every version of its
  ``sessions/<pid>.json`` status file meanwhile (``{"ts", "file", "content"}``, ``null`` once
  deleted at exit);
* ``screens/claude-2.1.332-{permission-bash,question}.txt`` — the pane at (2) and (3).

What 2.1.332 changed there, as the files show it: the session starts in ``permissionMode:
"auto"``; the asking mode, which its footer calls "manual mode", is still ``"default"`` in the
files (the name ``manual`` appears only on screen); the environment block ("Primary working
directory: …") is a ``system``-role message, stored in ``api-request-blob`` records; a question
is ``waitingFor: "input needed"`` (2.1.197: ``"permission prompt"`` for both); no ``ai-title``
record (no title request was made).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.claude import ClaudeTranscript, live_status_evidence, parse_live_status
from deck_tray.core.model import AgentKind, EvidenceSource, MessageRole, RequestKind, SessionStatus
from deck_tray.core.screens import ScreenKind, read_claude, screen_evidence
from deck_tray.core.status import decide

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCREENS = FIXTURES / "screens"
TRANSCRIPT = FIXTURES / "claude-code-2.1.332-interactive.jsonl"
STATUS_CHANGES = FIXTURES / "claude-code-2.1.332-sessions-pid-json-changes.jsonl"
SESSION_ID = "a149cb9e-c8dd-4252-b1ef-e1c5cb3d7caf"
CWD = "/home/dev/work/proj"


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


RECORDS = load(TRANSCRIPT)
SNAPSHOTS = [s["content"] for s in load(STATUS_CHANGES)]


def feed(records: list[dict[str, Any]]) -> ClaudeTranscript:
    t = ClaudeTranscript()
    for r in records:
        t.feed(r)
    return t


def tool_use_index(name: str, command_prefix: str = "", after: int = 0) -> int:
    for i, r in enumerate(RECORDS):
        content = (r.get("message") or {}).get("content")
        if i >= after and r.get("type") == "assistant" and isinstance(content, list) and any(
            b.get("type") == "tool_use" and b.get("name") == name
            and str((b.get("input") or {}).get("command", "")).startswith(command_prefix)
            for b in content
        ):
            return i
    raise AssertionError(f"no {name} call in the fixture")


def prompt_index(text: str) -> int:
    return next(i for i, r in enumerate(RECORDS)
                if r.get("type") == "user" and (r.get("message") or {}).get("content") == text)


def waiting(n: int) -> dict[str, Any]:
    """The ``n``-th (0-based) status-file version that says ``waiting``."""
    return [c for c in SNAPSHOTS if c and c.get("status") == "waiting"][n]


def status_at(records: list[dict[str, Any]], snapshot: dict[str, Any]) -> Any:
    """``decide`` over the transcript up to a point and the status file version of that moment."""
    ls = parse_live_status(snapshot)
    assert ls is not None
    live = live_status_evidence(ls)
    assert live is not None
    transcript = feed(records).evidence()
    assert transcript is not None
    return decide([live, transcript], ls.updated_at + 2)


# -- the whole file: what the tab shows ---------------------------------------------


def test_title_cwd_and_conversation() -> None:
    t = feed(RECORDS)
    assert t.session_id == SESSION_ID and t.cwd == CWD
    assert t.title == ""  # no ai-title record in 2.1.332's file
    assert t.display_title == t.first_prompt == "please FAKE_BASH now"
    assert [m.text for m in t.messages if m.role is MessageRole.USER] == [
        "please FAKE_BASH now",
        "second: FAKE_BASH please",
        "third: FAKE_ASK",
        "fourth: FAKE_BASH:rm -f fake-bash-ran.txt",
        "fifth: just say hi",
    ]
    assert [(m.text, m.state) for m in t.messages if m.role is MessageRole.TOOL] == [
        ("Bash(touch fake-bash-ran.txt && echo hello-from-fake-bash)", "done"),  # auto mode: not asked
        ("Bash(touch fake-bash-ran.txt && echo hello-from-fake-bash)", "done"),  # manual mode: allowed
        ("AskUserQuestion(Which colour should the fake widget be?)", "done"),
        ("Bash(rm -f fake-bash-ran.txt)", "error"),  # refused with Esc
    ]
    assistant = [m.text for m in t.messages if m.role is MessageRole.ASSISTANT]
    assert assistant[:2] == ["I will run a shell command.", "FAKE_DONE. The tool returned: hello-from-fake-bash"]
    assert any('"Which colour should the fake widget be?"="Blue"' in a for a in assistant)
    assert [m.text for m in t.messages if m.role is MessageRole.NOTICE] == ["Interrupted by the user"]


def test_new_record_types_add_nothing_to_the_conversation() -> None:
    """2.1.332 writes api-request*, atis-latch, tools-used, cost-state and prompt_snapshot records:
    none is a message, and the system prompt / environment block never shows."""
    kinds = {r.get("type") for r in RECORDS}
    assert {"api-request", "api-request-shape", "api-request-blob", "atis-latch", "tools-used", "cost-state"} <= kinds
    t = feed(RECORDS)
    assert len(t.messages) == 17
    for m in t.messages:
        assert "# Environment" not in m.text and "Primary working directory" not in m.text
        assert "system-reminder" not in m.text


def test_the_file_ends_idle() -> None:
    ev = feed(RECORDS).evidence()
    assert ev is not None and ev.source is EvidenceSource.TRANSCRIPT
    assert ev.status is SessionStatus.IDLE and ev.detail == "turn finished"
    final = [c for c in SNAPSHOTS if c and c.get("status")][-1]
    status, reason, pending = status_at(RECORDS, final)
    assert (status, pending) == (SessionStatus.IDLE, None)
    assert reason.startswith("ready for a prompt — live status file")
    assert SNAPSHOTS[-1] is None  # the status file is deleted at exit


# -- the 2.1.332 facts --------------------------------------------------------------


def test_default_permission_mode_is_auto_and_the_asking_mode_is_recorded_as_default() -> None:
    modes = [r["permissionMode"] for r in RECORDS if r.get("type") == "permission-mode"]
    assert modes[0] == "auto" and modes[-1] == "default"
    assert "manual" not in modes  # "manual mode" is only the footer's name for it
    prompts = {r["message"]["content"]: r.get("permissionMode") for r in RECORDS
               if r.get("type") == "user" and isinstance((r.get("message") or {}).get("content"), str)}
    assert prompts["please FAKE_BASH now"] == "auto"
    assert {prompts[p] for p in prompts if p != "please FAKE_BASH now"} == {"default"}
    # In auto mode the Bash command ran without a permission prompt: no "waiting" before turn 2.
    first_turn = [c.get("status") for c in SNAPSHOTS[:5] if c]
    assert first_turn == [None, "idle", "busy", "idle", "busy"] and "waiting" not in first_turn
    auto = next(r for r in RECORDS if (r.get("attachment") or {}).get("type") == "auto_mode")
    assert auto["attachment"]["bypass"] is False
    assert any((r.get("attachment") or {}).get("type") == "auto_mode_exit" for r in RECORDS)


def test_the_environment_block_is_a_system_role_message() -> None:
    blobs = [r["message"] for r in RECORDS if r.get("type") == "api-request-blob"]
    system = [m for m in blobs if m.get("role") == "system"]
    env = next(m for m in system if m["content"][0]["text"].startswith("# Environment"))
    assert f"Primary working directory: {CWD}\n" in env["content"][0]["text"]
    # The fake model reads the session's folder from it (Claude Code 2.1.332 has none in `system`).
    spec = importlib.util.spec_from_file_location(
        "fake_llm_anthropic", Path(__file__).resolve().parents[1] / "fakes" / "fake_llm_anthropic.py")
    assert spec is not None and spec.loader is not None
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    shape = next(r["shape"] for r in RECORDS if r.get("type") == "api-request-shape")
    assert "Primary working directory" not in json.dumps(shape["system"])
    assert fake._cwd_from_system({"system": shape["system"], "messages": [*blobs]}) == CWD


def test_status_file_versions() -> None:
    """The fields deck-tray reads are unchanged; 2.1.332 adds ``tmux`` (session:window.pane)."""
    first = next(c for c in SNAPSHOTS if c)
    ls = parse_live_status(first)
    assert ls is not None
    assert (ls.session_id, ls.cwd, ls.version, ls.name) == (SESSION_ID, CWD, "2.1.332", "proj-14")
    assert ls.proc_start.isdigit()
    assert first["tmux"] == "claude-1:@0.%0"
    assert [(c["status"], c.get("waitingFor")) for c in SNAPSHOTS if c and c.get("status") == "waiting"] == [
        ("waiting", "permission prompt"), ("waiting", "input needed"), ("waiting", "permission prompt")]
    assert [c.get("status") if c else None for c in SNAPSHOTS].count("idle") == 6


# -- the status at each point -------------------------------------------------------


def test_bash_asked_in_manual_mode_is_waiting_permission_with_the_command() -> None:
    i = tool_use_index("Bash", "touch", after=prompt_index("second: FAKE_BASH please"))
    status, reason, pending = status_at(RECORDS[: i + 1], waiting(0))
    assert status is SessionStatus.WAITING_PERMISSION
    assert pending is not None and pending.kind is RequestKind.PERMISSION
    assert (pending.tool, pending.summary) == ("Bash", "touch fake-bash-ran.txt && echo hello-from-fake-bash")
    assert reason == ("permission prompt for Bash `touch fake-bash-ran.txt && echo hello-from-fake-bash`"
                      " — live status file, 2 s ago")
    # Allowed ("1"): its result arrives, nothing is pending; the turn then ends.
    j = next(k for k in range(i, len(RECORDS)) if RECORDS[k].get("type") == "user")
    after = feed(RECORDS[: j + 1]).evidence()
    assert after is not None and after.status is SessionStatus.BUSY and after.pending is None
    end = next(k for k in range(j, len(RECORDS)) if RECORDS[k].get("subtype") == "turn_duration")
    done = feed(RECORDS[: end + 1]).evidence()
    assert done is not None and done.status is SessionStatus.IDLE


def test_ask_user_question_is_a_question_with_its_options() -> None:
    i = tool_use_index("AskUserQuestion")
    status, reason, pending = status_at(RECORDS[: i + 1], waiting(1))
    assert status is SessionStatus.WAITING_QUESTION
    assert pending is not None and pending.kind is RequestKind.QUESTION
    assert pending.question == "Which colour should the fake widget be?"
    assert pending.options == ("Red", "Blue")
    assert reason.startswith("question “Which colour should the fake widget be?” — live status file")


def test_refused_bash_is_waiting_then_interrupted() -> None:
    i = tool_use_index("Bash", "rm -f")
    status, _, pending = status_at(RECORDS[: i + 1], waiting(2))
    assert status is SessionStatus.WAITING_PERMISSION
    assert pending is not None and pending.summary == "rm -f fake-bash-ran.txt"
    j = next(k for k in range(i, len(RECORDS)) if any(
        b.get("text") == "[Request interrupted by user for tool use]"
        for b in (RECORDS[k].get("message") or {}).get("content") or [] if isinstance(b, dict)))
    ev = feed(RECORDS[: j + 1]).evidence()
    assert ev is not None and ev.status is SessionStatus.IDLE and ev.detail == "interrupted"


def test_the_permission_screen_gives_the_four_real_options_and_the_command() -> None:
    """2.1.332's menu has a fourth option and a "Tip:" line above the command (in a dashed box)."""
    screen = read_claude((SCREENS / "claude-2.1.332-permission-bash.txt").read_text(encoding="utf-8"))
    assert screen.kind is ScreenKind.PERMISSION and screen.tool == "Bash"
    assert screen.subject == "touch fake-bash-ran.txt && echo hello-from-fake-bash"
    assert [(o.number, o.label) for o in screen.options] == [
        ("1", "Yes"),
        ("2", "Yes, and always allow access to /home/dev/work/proj from this project"),
        ("3", "Yes, and switch to auto mode · auto mode handles these prompts for you"),
        ("4", "No"),
    ]
    i = tool_use_index("Bash", "touch", after=prompt_index("second: FAKE_BASH please"))
    transcript = feed(RECORDS[: i + 1]).evidence()
    assert transcript is not None and transcript.pending is not None
    seen = screen_evidence(AgentKind.CLAUDE_CODE, screen, transcript.observed_at + 1, hint=transcript.pending)
    assert seen is not None
    status, _, pending = decide([transcript, seen], transcript.observed_at + 2)
    assert status is SessionStatus.WAITING_PERMISSION
    assert pending is not None and pending.options[-1] == "No" and len(pending.options) == 4


def test_the_question_screen_gives_its_options() -> None:
    screen = read_claude((SCREENS / "claude-2.1.332-question.txt").read_text(encoding="utf-8"))
    assert screen.kind is ScreenKind.QUESTION
    assert screen.title == "Which colour should the fake widget be?"
    assert [o.label for o in screen.options] == ["Red", "Blue", "Type something.", "Chat about this"]


@pytest.mark.parametrize("n", [0, 1, 2])
def test_every_wait_has_an_open_call_in_the_transcript(n: int) -> None:
    """Each ``waiting`` status-file version was written after its tool call reached the file."""
    snap = waiting(n)
    t = feed([r for r in RECORDS if not r.get("timestamp") or _ms(r["timestamp"]) <= snap["statusUpdatedAt"]])
    assert t.pending_request() is not None


def _ms(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000
