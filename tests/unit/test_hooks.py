"""Hook and notify payloads (captured from Claude Code 2.1.197 and codex-cli 0.169.0) → evidence → status."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core import claude, codex
from deck_tray.core.hooks import (
    MAX_KEPT,
    MAX_SESSIONS,
    STATE_FRESH_S,
    WAITING_FRESH_S,
    HookEvent,
    HookStore,
    hook_evidence,
    parse_message,
)
from deck_tray.core.model import (
    AgentKind,
    Evidence,
    EvidenceSource,
    PendingRequest,
    RequestKind,
    SessionStatus,
)
from deck_tray.core.procs import AgentProcess
from deck_tray.core.scan import Scanner, build_session
from deck_tray.core.status import counted, decide, hook_claim

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
T0 = 1_795_311_345.0  # between the Codex fixture's function_call (…41.970) and its output (…48.760)


def _samples(name: str) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if ln.strip()]


CLAUDE = _samples("claude-code-2.1.197-hooks.jsonl")
CODEX = _samples("codex-0.169.0-hooks.jsonl")
NOTIFY = _samples("codex-0.169.0-notify.jsonl")


def claude_event(name: str, nth: int = 0, at: float = T0) -> HookEvent:
    found = [s["payload"] for s in CLAUDE if s["event"] == name]
    return HookEvent(AgentKind.CLAUDE_CODE, "hook", found[nth], at)


def codex_event(name: str, at: float = T0, **changes: Any) -> HookEvent:
    payload = dict(next(s["payload"] for s in CODEX if s["event"] == name), **changes)
    return HookEvent(AgentKind.CODEX, "hook", payload, at)


def status_of(*evidence: Evidence, now: float = T0 + 1) -> tuple[SessionStatus, str, PendingRequest | None]:
    return decide(evidence, now)


# -- one event → one claim ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "nth", "status", "detail"),
    [
        ("SessionStart", 0, SessionStatus.IDLE, "new session"),
        ("UserPromptSubmit", 0, SessionStatus.BUSY, "working on a prompt"),
        ("PreToolUse", 0, SessionStatus.BUSY, "running Bash"),
        ("PermissionRequest", 0, SessionStatus.WAITING_PERMISSION, "permission prompt"),
        ("PostToolUse", 0, SessionStatus.BUSY, "working"),
        ("Stop", 0, SessionStatus.IDLE, "turn finished"),
        ("SessionEnd", 0, SessionStatus.ENDED, "the user quit"),
        ("Notification", 0, SessionStatus.WAITING_PERMISSION, "permission prompt"),  # permission_prompt
        ("Notification", 1, SessionStatus.IDLE, "waiting for your input"),  # idle_prompt
    ],
)
def test_every_captured_claude_hook_claims_a_state(name: str, nth: int, status: SessionStatus, detail: str) -> None:
    ev = hook_evidence(claude_event(name, nth))
    assert ev is not None
    assert (ev.source, ev.status, ev.detail, ev.observed_at) == (EvidenceSource.HOOK, status, detail, T0)
    got, reason, _ = status_of(ev)
    assert got is status
    assert reason.endswith("— hook, 1 s ago")


def test_claude_permission_request_names_the_tool_and_the_command() -> None:
    ev = hook_evidence(claude_event("PermissionRequest"))
    assert ev is not None and ev.fresh_for == WAITING_FRESH_S
    assert ev.pending == PendingRequest(RequestKind.PERMISSION, "Bash", "touch fake-bash-ran.txt && echo "
                                        "hello-from-fake-bash", claude.DEFAULT_PERMISSION_OPTIONS)
    status, reason, pending = status_of(ev)
    assert status is SessionStatus.WAITING_PERMISSION
    assert reason == "permission prompt for Bash `touch fake-bash-ran.txt && echo hello-from-fake-bash` — hook, 1 s ago"
    assert pending == ev.pending


def test_claude_ask_user_question_permission_request_is_a_question() -> None:
    payload = dict(claude_event("PermissionRequest").payload, tool_name="AskUserQuestion", tool_input={
        "questions": [{"question": "Which colour?", "options": [{"label": "Red"}, {"label": "Blue"}]}]})
    ev = hook_evidence(HookEvent(AgentKind.CLAUDE_CODE, "hook", payload, T0))
    assert ev is not None and ev.status is SessionStatus.WAITING_QUESTION
    assert ev.pending == PendingRequest(RequestKind.QUESTION, "AskUserQuestion", "Which colour?", ("Red", "Blue"),
                                        "", "Which colour?")
    assert status_of(ev)[1].startswith("question “Which colour?” — hook")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("SessionStart", SessionStatus.BUSY),  # Codex fires it at the first prompt, not at start-up
        ("UserPromptSubmit", SessionStatus.BUSY),
        ("PreToolUse", SessionStatus.BUSY),
        ("PermissionRequest", SessionStatus.WAITING_PERMISSION),
        ("PostToolUse", SessionStatus.BUSY),
        ("Stop", SessionStatus.IDLE),
        ("SessionEnd", SessionStatus.ENDED),
    ],
)
def test_every_captured_codex_hook_claims_a_state(name: str, status: SessionStatus) -> None:
    event = codex_event(name)
    assert event.session_id == "01a200e7-910d-7341-b947-0fb5d14899a5"  # the rollout's thread id
    ev = hook_evidence(event)
    assert ev is not None and ev.status is status


def test_codex_permission_request_is_an_approval_with_codex_options() -> None:
    ev = hook_evidence(codex_event("PermissionRequest"))
    assert ev is not None
    assert ev.detail == "approval prompt"
    assert ev.pending == PendingRequest(RequestKind.PERMISSION, "Bash", "touch fake-shell-ran.txt && echo "
                                        "hello-from-fake-shell", codex.DEFAULT_APPROVAL_OPTIONS)


def test_codex_notify_turn_complete_is_idle_for_its_thread() -> None:
    event = HookEvent(AgentKind.CODEX, "notify", NOTIFY[1], T0)
    assert event.name == "agent-turn-complete"
    assert event.session_id == "01a200e7-910d-7341-b947-0fb5d14899a5"
    ev = hook_evidence(event)
    assert ev is not None and (ev.status, ev.detail) == (SessionStatus.IDLE, "turn finished (notify)")
    assert hook_evidence(HookEvent(AgentKind.CODEX, "notify", {"type": "approval-requested"}, T0)) is None


@pytest.mark.parametrize("payload", [
    {"hook_event_name": "SubagentStop", "session_id": "s"},
    {"hook_event_name": "PreCompact", "session_id": "s"},
    {"hook_event_name": "SessionStart", "session_id": "s", "source": "compact"},
    {"hook_event_name": "Notification", "session_id": "s", "notification_type": "auth_success"},
    {"session_id": "s"},
])
def test_events_that_say_nothing_about_the_state_claim_nothing(payload: dict[str, Any]) -> None:
    assert hook_evidence(HookEvent(AgentKind.CLAUDE_CODE, "hook", payload, T0)) is None


def test_socket_messages_are_validated() -> None:
    good = {"op": "hook", "agent": "codex", "kind": "notify", "payload": NOTIFY[0], "received": T0}
    ev = parse_message(good, now=T0 + 0.01)
    assert ev == HookEvent(AgentKind.CODEX, "notify", NOTIFY[0], T0)
    assert parse_message(dict(good, agent="opencode"), now=T0) is None
    assert parse_message(dict(good, kind="other"), now=T0) is None
    assert parse_message(dict(good, payload=[1]), now=T0) is None
    # A clock far off (or no clock) counts as "now".
    for bad in (T0 + 60, T0 - 7200, "x", True, None):
        got = parse_message(dict(good, received=bad), now=T0)
        assert got is not None and got.received == T0


# -- the store: evidence kept per session, forgetting ---------------------------------------------------------------
# (which of a session's hook observations speaks is status.py's rules H1-H5; see test_status_hooks.py)


def claim_of(store: HookStore, sid: str) -> Evidence | None:
    return hook_claim(store.evidence(sid))


def test_store_keeps_the_newest_claim_per_session_and_ignores_late_arrivals() -> None:
    store = HookStore(clock=lambda: T0)
    sid = "8ae9f6b8-8a54-4d74-80b9-d03b65269bdf"
    assert store.add(claude_event("UserPromptSubmit", at=T0)) == sid
    assert store.add(claude_event("Stop", at=T0 + 5)) == sid
    assert store.add(claude_event("PreToolUse", at=T0 + 1)) is None  # its forwarder was slower
    claim = claim_of(store, sid)
    assert claim is not None and claim.status is SessionStatus.IDLE
    assert status_of(*store.evidence(sid), now=T0 + 6)[0] is SessionStatus.IDLE
    assert store.transcript(sid).endswith(f"/{sid}.jsonl")
    assert store.add(HookEvent(AgentKind.CLAUDE_CODE, "hook", {"hook_event_name": "Stop"}, T0)) is None  # no id


def test_permission_notification_keeps_the_request_of_the_permission_hook() -> None:
    store = HookStore(clock=lambda: T0)
    perm = claude_event("PermissionRequest", at=T0)
    sid = perm.session_id
    store.add(perm)
    note = HookEvent(AgentKind.CLAUDE_CODE, "hook", dict(claude_event("Notification").payload, session_id=sid),
                     T0 + 6)
    assert store.add(note) is None
    claim = claim_of(store, sid)
    assert claim is not None and claim.pending is not None and claim.observed_at == T0
    # Much later it is about another prompt (whose PermissionRequest went missing).
    assert store.add(HookEvent(note.agent, note.kind, note.payload, T0 + 300)) == sid
    later = claim_of(store, sid)
    assert later is not None and later.pending is None and later.observed_at == T0 + 300


def test_store_keeps_only_what_the_hook_rules_can_pick_from() -> None:
    store = HookStore(clock=lambda: T0)
    sid = claude_event("Stop").session_id
    for k in range(MAX_KEPT + 10):
        store.add(claude_event("PreToolUse", at=T0 + k * 0.1))
    store.add(claude_event("Stop", at=T0 + 100))
    assert [e.observed_at for e in store.evidence(sid)] == [T0 + 100]  # older than SAME_PROMPT_S before it
    for k in range(MAX_KEPT + 10):
        store.add(claude_event("PreToolUse", at=T0 + 101 + k * 0.1))
    assert len(store.evidence(sid)) == MAX_KEPT


def test_store_forgets_old_and_surplus_sessions() -> None:
    now = [T0]
    store = HookStore(clock=lambda: now[0])
    for i in range(MAX_SESSIONS + 5):
        store.add(HookEvent(AgentKind.CODEX, "notify", {"type": "agent-turn-complete", "thread-id": f"t{i}"}, T0))
    assert len(store) == MAX_SESSIONS
    assert store.evidence("t0") == () and store.evidence(f"t{MAX_SESSIONS + 4}") != ()
    now[0] = T0 + 2 * 24 * 3600
    store.add(HookEvent(AgentKind.CODEX, "notify", {"type": "agent-turn-complete", "thread-id": "new"}, now[0]))
    assert len(store) == 1


# -- hook claims among the other evidence (ADR 002; rules H3-H5 in core/status.py) -----------------------------


def _store_with(event: HookEvent) -> tuple[HookStore, str]:
    store = HookStore(clock=lambda: T0)
    sid = store.add(event)
    assert sid is not None
    return store, sid


def holding(store: HookStore, sid: str, others: list[Evidence], now: float) -> Evidence | None:
    """The session's hook claim among ``others`` at ``now`` when it holds, else None."""
    found = [e for e in counted([*others, *store.evidence(sid)], now) if e.source is EvidenceSource.HOOK]
    return found[0] if found else None


OPEN_CALL = PendingRequest(RequestKind.PERMISSION, "exec_command", "touch fake-shell-ran.txt && echo "
                           "hello-from-fake-shell", codex.DEFAULT_APPROVAL_OPTIONS, "call_fake_1c4c316eabc7472d")


def test_a_prompt_hook_beats_the_transcripts_ambiguous_open_call_even_when_that_is_written_later() -> None:
    store, sid = _store_with(codex_event("PermissionRequest"))
    transcript = Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, T0 + 0.2,
                          "running exec_command or waiting for an answer", pending=OPEN_CALL)
    hook = holding(store, sid, [transcript], T0 + 1)
    assert hook is not None
    # The hook's request takes the transcript's call id (the notification is announced once per id).
    assert hook.pending is not None and hook.pending.request_id == OPEN_CALL.request_id
    status, reason, pending = status_of(transcript, *store.evidence(sid))
    assert status is SessionStatus.WAITING_PERMISSION
    assert reason.startswith("approval prompt for Bash `touch fake-shell-ran.txt")
    assert pending is not None and pending.tool == "Bash" and pending.request_id == OPEN_CALL.request_id


@pytest.mark.parametrize(
    ("later", "status"),
    [
        # Answered in the terminal: the tool's result is written after the prompt.
        (Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, T0 + 3, "working"), SessionStatus.BUSY),
        # Esc at the prompt fires no hook; the interrupt record / turn_aborted does the job.
        (Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, T0 + 3, "interrupted"), SessionStatus.IDLE),
        # The screen shows the agent at work again.
        (Evidence(EvidenceSource.SCREEN, SessionStatus.BUSY, T0 + 3, "working", 6.0), SessionStatus.BUSY),
    ],
)
def test_a_later_contradicting_observation_ends_a_prompt_claim(later: Evidence, status: SessionStatus) -> None:
    store, sid = _store_with(codex_event("PermissionRequest"))
    assert holding(store, sid, [later], T0 + 4) is None
    got, reason, _ = status_of(later, *store.evidence(sid), now=T0 + 4)
    assert got is status and "hook" not in reason


def test_an_interrupt_ends_a_busy_claim_and_an_earlier_record_does_not() -> None:
    store, sid = _store_with(claude_event("UserPromptSubmit"))
    earlier = Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, T0 - 10, "turn finished")
    assert holding(store, sid, [earlier], T0 + 1) is not None
    assert status_of(earlier, *store.evidence(sid), now=T0 + 1)[0] is SessionStatus.BUSY
    interrupted = Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, T0 + 20, "interrupted")
    assert holding(store, sid, [earlier, interrupted], T0 + 21) is None
    assert status_of(earlier, interrupted, *store.evidence(sid), now=T0 + 21)[1].startswith("interrupted — transcript")


def test_hook_claims_expire() -> None:
    store, sid = _store_with(claude_event("Stop"))
    assert holding(store, sid, [], T0 + STATE_FRESH_S) is not None
    assert holding(store, sid, [], T0 + STATE_FRESH_S + 1) is None
    assert status_of(*store.evidence(sid), now=T0 + STATE_FRESH_S + 1)[0] is SessionStatus.UNKNOWN
    store, sid = _store_with(codex_event("PermissionRequest"))
    assert store.is_waiting(sid, T0 + WAITING_FRESH_S)
    assert not store.is_waiting(sid, T0 + WAITING_FRESH_S + 1)
    store, sid = _store_with(claude_event("SessionEnd"))
    assert holding(store, sid, [], T0 + 10 * 24 * 3600) is not None  # until something newer says otherwise


def test_the_live_status_file_outranks_a_hook_and_borrows_its_request() -> None:
    store, sid = _store_with(claude_event("PermissionRequest"))
    status_file = Evidence(EvidenceSource.STATUS_FILE, SessionStatus.WAITING_PERMISSION, T0 + 0.01,
                           "permission prompt")
    assert holding(store, sid, [status_file], T0 + 1) is not None
    status, reason, pending = status_of(status_file, *store.evidence(sid))
    assert status is SessionStatus.WAITING_PERMISSION
    assert reason.startswith("permission prompt for Bash `touch fake-bash-ran.txt") and "live status file" in reason
    assert pending is not None and pending.tool == "Bash"
    # A status file rewritten to "busy" after the answer ends the hook's claim.
    busy = Evidence(EvidenceSource.STATUS_FILE, SessionStatus.BUSY, T0 + 2, "working")
    assert holding(store, sid, [busy], T0 + 3) is None


def test_the_screens_menu_labels_replace_the_guessed_ones() -> None:
    store, sid = _store_with(claude_event("PermissionRequest"))
    labels = ("Yes", "Yes, allow all edits during this session (shift+tab)", "No")
    screen = Evidence(EvidenceSource.SCREEN, SessionStatus.WAITING_PERMISSION, T0 + 1, "permission prompt", 6.0,
                      PendingRequest(RequestKind.PERMISSION, "Bash", "touch fake-bash-ran.txt", labels))
    hook = holding(store, sid, [screen], T0 + 1.5)
    assert hook is not None and hook.pending is not None
    assert hook.pending.options == labels
    assert hook.pending.summary == "touch fake-bash-ran.txt && echo hello-from-fake-bash"
    assert status_of(screen, *store.evidence(sid), now=T0 + 1.5)[2] == hook.pending


# -- through the scanner: a real rollout, hooks, notify ----------------------------------------------------------


def test_codex_rollout_plus_hooks_through_build_session(tmp_path: Path) -> None:
    """The rollout alone says "busy (running or waiting)"; the PermissionRequest hook makes it a prompt; the
    answer's output record ends the hook's claim; notify says the turn finished."""
    lines = (FIXTURES / "codex-0.169.0-tui-no-daemon.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    tid = "01a200e4-f2b5-78c1-9c58-e75423501563"
    rollout = tmp_path / ".codex" / "sessions" / "2026" / "11" / "22" / f"rollout-2026-11-22T01-35-34-{tid}.jsonl"
    rollout.parent.mkdir(parents=True)
    rollout.write_text("".join(lines[:14]), encoding="utf-8")  # up to the function_call, before its output
    now = [T0]
    os.utime(rollout, (T0, T0))
    procs = [AgentProcess(4242, "codex", "/home/dev/work/proj", open_rollouts=(str(rollout),))]
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", clock=lambda: now[0], process_lister=lambda: procs)
    store = HookStore(clock=lambda: now[0])

    def session() -> Any:
        [ob] = scanner.scan()
        return build_session(ob, now[0], extra=store.evidence(ob.id))

    before = session()
    assert before.status is SessionStatus.BUSY
    store.add(codex_event("PermissionRequest", at=T0, session_id=tid, transcript_path=str(rollout)))
    now[0] = T0 + 2
    waiting = session()
    assert waiting.status is SessionStatus.WAITING_PERMISSION
    assert waiting.reason.startswith("approval prompt for Bash `touch fake-shell-ran.txt && echo hello-from-fake")
    assert waiting.reason.endswith("— hook, 2 s ago")
    assert waiting.pending is not None and waiting.pending.request_id == "call_fake_1c4c316eabc7472d"
    # Answered in the TUI (no hook fires): the output record is written, the claim ends. The fixture's
    # records are older than the hook, so move them after it, as they are in a live run.
    later = [ln.replace("2026-11-22T01:35:4", "2026-11-22T01:36:0") for ln in lines[14:21]]
    with open(rollout, "a", encoding="utf-8") as fh:
        fh.write("".join(later[:1]))
    now[0] = T0 + 30
    os.utime(rollout, (now[0], now[0]))
    answered = session()
    assert answered.status is SessionStatus.BUSY, answered.reason
    with open(rollout, "a", encoding="utf-8") as fh:
        fh.write("".join(later[1:]))
    store.add(HookEvent(AgentKind.CODEX, "notify", dict(NOTIFY[1], **{"thread-id": tid}), T0 + 31))
    now[0] = T0 + 32
    os.utime(rollout, (now[0], now[0]))
    done = session()
    assert done.status is SessionStatus.IDLE
    assert done.reason.startswith("turn finished (notify) — hook")
