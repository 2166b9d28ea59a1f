"""The hook rules of the status function (core/status.py H1-H5; ADR 002), as a user notices them.

Hook observations are built the way :func:`deck_tray.core.hooks.hook_evidence` builds them from
Claude Code (2.1.197 captured, 2.1.332) and Codex (0.169.0 captured, 0.171.0) hook events:
``PermissionRequest`` → waiting with a request, fresh 1 h; ``Notification`` ``permission_prompt``
→ waiting without a request, fresh 1 h; ``UserPromptSubmit``/``PreToolUse``/``PostToolUse`` →
busy, ``Stop`` → idle, fresh 10 min; ``SessionEnd`` → ended until replaced.
"""

from __future__ import annotations

import random

import pytest

from deck_tray.core import claude
from deck_tray.core.hooks import MAX_KEPT, STATE_FRESH_S, WAITING_FRESH_S, HookEvent, HookStore, hook_evidence
from deck_tray.core.model import AgentKind, Evidence, EvidenceSource, PendingRequest, RequestKind, SessionStatus
from deck_tray.core.status import SAME_PROMPT_S, counted, decide, hook_claim, pick

T0 = 1_795_311_345.0
H, TR, SC, SF = EvidenceSource.HOOK, EvidenceSource.TRANSCRIPT, EvidenceSource.SCREEN, EvidenceSource.STATUS_FILE
BUSY, IDLE, ENDED = SessionStatus.BUSY, SessionStatus.IDLE, SessionStatus.ENDED
PERM, QUESTION = SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION

RM = PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf build", claude.DEFAULT_PERMISSION_OPTIONS)


def permission_request(at: float, pending: PendingRequest = RM) -> Evidence:
    return Evidence(H, PERM, at, "permission prompt", WAITING_FRESH_S, pending)


def permission_notification(at: float) -> Evidence:
    return Evidence(H, PERM, at, "permission prompt", WAITING_FRESH_S)


def hook(status: SessionStatus, at: float, detail: str) -> Evidence:
    return Evidence(H, status, at, detail, STATE_FRESH_S if status is not ENDED else None)


def transcript(status: SessionStatus, at: float, detail: str, pending: PendingRequest | None = None) -> Evidence:
    return Evidence(TR, status, at, detail, None, pending)


# -- H1: the newest hook event replaces the older ones ------------------------------------------------------------


def test_after_the_turn_the_old_prompt_does_not_come_back_when_the_newer_hooks_expire() -> None:
    hooks = [permission_request(T0), hook(BUSY, T0 + 5, "working"), hook(IDLE, T0 + 10, "turn finished")]
    assert decide(hooks, T0 + 11)[:2] == (IDLE, "turn finished — hook, 1 s ago")
    # 11 min later the Stop hook has expired; the PermissionRequest (fresh for 1 h) stays replaced.
    status, reason, pending = decide(hooks, T0 + 10 + STATE_FRESH_S + 1)
    assert (status, pending) == (SessionStatus.UNKNOWN, None)
    with_file = [*hooks, transcript(IDLE, T0 + 9, "turn finished")]
    assert decide(with_file, T0 + 10 + STATE_FRESH_S + 1)[1].startswith("turn finished — transcript")


def test_a_hook_forwarded_late_does_not_undo_a_newer_one() -> None:
    stop = hook(IDLE, T0 + 5, "turn finished")
    late = hook(BUSY, T0 + 1, "running Bash")  # its forwarder was slower
    for order in ([stop, late], [late, stop]):
        assert decide(order, T0 + 6)[0] is IDLE
    assert hook_claim([stop, late]) is stop


def test_hooks_at_the_same_time_the_one_listed_last_wins() -> None:
    a, b = hook(BUSY, T0, "working"), hook(IDLE, T0, "turn finished")
    assert hook_claim([a, b]) is b and hook_claim([b, a]) is a


def test_a_new_session_after_the_end_is_alive_again() -> None:
    end = hook(ENDED, T0, "the user quit")
    assert decide([end], T0 + 10 * 86400)[0] is ENDED  # until something newer says otherwise
    assert decide([end, hook(IDLE, T0 + 60, "resumed")], T0 + 61)[:2] == (IDLE, "resumed — hook, 1 s ago")


# -- H2: Claude's permission_prompt notification repeats the PermissionRequest -------------------------------------


def test_the_notification_after_a_prompt_keeps_the_command_and_when_it_was_asked() -> None:
    hooks = [permission_request(T0), permission_notification(T0 + 6)]
    status, reason, pending = decide(hooks, T0 + 20)
    assert status is PERM and pending == RM
    assert reason == "permission prompt for Bash `rm -rf build` — hook, 20 s ago"


def test_a_notification_long_after_is_another_prompt_whose_request_is_unknown() -> None:
    hooks = [permission_request(T0), permission_notification(T0 + SAME_PROMPT_S)]
    status, reason, pending = decide(hooks, T0 + SAME_PROMPT_S + 2)
    assert (status, pending, reason) == (PERM, None, "permission prompt — hook, 2 s ago")


def test_the_notification_repeats_only_a_prompt_still_shown() -> None:
    # PermissionRequest, answered (PostToolUse), another prompt announced only by its notification.
    hooks = [permission_request(T0), hook(BUSY, T0 + 2, "working"), permission_notification(T0 + 8)]
    status, reason, pending = decide(hooks, T0 + 9)
    assert (status, pending) == (PERM, None) and reason == "permission prompt — hook, 1 s ago"


def test_an_idle_notification_after_a_prompt_is_not_a_repeat() -> None:
    hooks = [permission_request(T0), hook(IDLE, T0 + 6, "waiting for your input")]
    assert decide(hooks, T0 + 7)[0] is IDLE


# -- H3: claims expire --------------------------------------------------------------------------------------------


def test_an_unanswered_prompt_hook_stops_counting_after_an_hour() -> None:
    hooks = [permission_request(T0)]
    older_record = transcript(BUSY, T0 - 1, "running Bash or waiting for an answer", RM)
    assert decide([older_record, *hooks], T0 + WAITING_FRESH_S)[0] is PERM
    status, reason, _ = decide([older_record, *hooks], T0 + WAITING_FRESH_S + 1)
    assert status is BUSY and "transcript" in reason


# -- H4: the session moved on (no hook fires for an answer typed in the terminal or Esc) ---------------------------


@pytest.mark.parametrize(
    ("later", "status", "source"),
    [
        # Answered "Yes" in the terminal: the tool's result is written after the prompt.
        (transcript(BUSY, T0 + 3, "working"), BUSY, "transcript"),
        # Esc at the prompt: the interrupt record / Codex turn_aborted.
        (transcript(IDLE, T0 + 3, "interrupted"), IDLE, "transcript"),
        # The pane shows the agent at work again.
        (Evidence(SC, BUSY, T0 + 3, "working", 6.0), BUSY, "screen"),
        # Claude rewrote its status file to busy.
        (Evidence(SF, BUSY, T0 + 3, "working"), BUSY, "live status file"),
    ],
)
def test_a_stale_waiting_hook_does_not_keep_a_session_waiting_after_it_was_answered_in_the_terminal(
        later: Evidence, status: SessionStatus, source: str) -> None:
    hooks = [permission_request(T0), permission_notification(T0 + 6)]
    got, reason, pending = decide([later, *hooks], T0 + 4)
    assert (got, pending) == (status, None)
    assert f"— {source}," in reason


def test_records_written_before_the_prompt_do_not_end_it() -> None:
    hooks = [hook(BUSY, T0, "working on a prompt")]
    earlier = transcript(IDLE, T0 - 10, "turn finished")
    assert decide([earlier, *hooks], T0 + 1)[1] == "working on a prompt — hook, 1 s ago"


def test_the_transcripts_open_call_is_how_a_prompt_looks_and_does_not_end_it() -> None:
    open_call = transcript(BUSY, T0 + 0.2, "running Bash or waiting for an answer",
                           PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf build", (), "toolu_7"))
    status, _, pending = decide([open_call, permission_request(T0)], T0 + 1)
    assert status is PERM and pending is not None and pending.request_id == "toolu_7"


def test_a_question_on_screen_agrees_with_a_permission_hook() -> None:
    q = PendingRequest(RequestKind.QUESTION, "AskUserQuestion", "Which colour?", ("Red", "Blue"), "", "Which colour?")
    screen = Evidence(SC, QUESTION, T0 + 2, "question", 6.0, q)
    assert any(e.source is H for e in counted([screen, permission_request(T0)], T0 + 3))
    assert decide([screen, permission_request(T0)], T0 + 3)[1].endswith("— hook, 3 s ago")


def test_only_fresh_observations_end_a_claim() -> None:
    expired_screen = Evidence(SC, BUSY, T0 + 3, "working", 6.0)
    assert decide([expired_screen, permission_request(T0)], T0 + 4)[0] is BUSY
    assert decide([expired_screen, permission_request(T0)], T0 + 10)[0] is PERM


def test_a_newer_hook_after_the_answer_speaks_again() -> None:
    answered = transcript(BUSY, T0 + 3, "working")
    hooks = [permission_request(T0), hook(IDLE, T0 + 9, "turn finished")]
    assert decide([answered, *hooks], T0 + 10)[1] == "turn finished — hook, 1 s ago"


# -- H5: the hook's request completed from the screen and the transcript ------------------------------------------


def test_the_prompt_shows_the_real_menu_labels_and_keeps_its_own_command() -> None:
    labels = ("Yes", "Yes, and don't ask again for rm commands in /proj", "No")
    screen = Evidence(SC, PERM, T0 + 1, "permission prompt", 6.0,
                      PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf bu…", labels))
    record = transcript(BUSY, T0 + 0.5, "running Bash or waiting for an answer",
                        PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf build", (), "toolu_9"))
    status, reason, pending = decide([record, screen, permission_request(T0)], T0 + 2)
    assert status is PERM
    assert pending == PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf build", labels, "toolu_9")
    assert reason == "permission prompt for Bash `rm -rf build` — hook, 2 s ago"


def test_a_question_hook_takes_the_question_text_only_from_a_question() -> None:
    asked = PendingRequest(RequestKind.QUESTION, "MCP", "Pick a server", (), "", "")
    hook_q = Evidence(H, QUESTION, T0, "question", WAITING_FRESH_S, asked)
    other_perm = Evidence(SC, PERM, T0 + 1, "permission prompt", 6.0, RM)
    screen_q = Evidence(SC, QUESTION, T0 + 1, "question", 6.0,
                        PendingRequest(RequestKind.QUESTION, "MCP", "Pick", ("a", "b"), "", "Pick a server?"))
    pending = decide([other_perm, hook_q], T0 + 2)[2]
    assert pending == asked
    pending = decide([screen_q, hook_q], T0 + 2)[2]
    assert pending is not None and (pending.options, pending.question) == (("a", "b"), "Pick a server?")


# -- what the ranking sees ----------------------------------------------------------------------------------------


def test_the_status_file_outranks_a_hook_and_the_hook_outranks_the_screen() -> None:
    busy_file = Evidence(SF, BUSY, T0 - 5, "working")
    idle_screen = Evidence(SC, IDLE, T0 - 1, "ready", 6.0)
    stop = hook(IDLE, T0, "turn finished")
    assert pick([busy_file, stop], T0 + 1) is busy_file
    assert pick([idle_screen, stop], T0 + 1) is stop


def test_counted_keeps_every_other_observation_and_at_most_one_hook() -> None:
    stale = Evidence(SC, PERM, T0 - 100, "permission prompt", 6.0)
    record = transcript(BUSY, T0 - 50, "working")
    hooks = [hook(BUSY, T0, "working"), hook(IDLE, T0 + 1, "turn finished")]
    assert counted([stale, record, *hooks], T0 + 2) == [stale, record, hooks[1]]
    assert counted([stale, record, *hooks], T0 + 1 + STATE_FRESH_S + 1) == [stale, record]


# -- the store keeps what the rules pick from; the rules equal the store's former fold ------------------------------


def _old_fold(seq: list[Evidence]) -> Evidence | None:
    """The claim ``HookStore.add`` used to keep (before the rules moved to core/status.py)."""
    kept: Evidence | None = None
    for new in seq:
        if kept is not None:
            if new.observed_at < kept.observed_at:
                continue
            if (kept.status.is_waiting and new.status.is_waiting and kept.pending is not None
                    and new.pending is None and new.observed_at - kept.observed_at < SAME_PROMPT_S):
                continue
        kept = new
    return kept


_PAYLOADS = [
    {"hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": {"command": "rm -rf build"}},
    {"hook_event_name": "Notification", "notification_type": "permission_prompt"},
    {"hook_event_name": "Notification", "notification_type": "idle_prompt"},
    {"hook_event_name": "PreToolUse", "tool_name": "Bash"},
    {"hook_event_name": "PostToolUse"},
    {"hook_event_name": "Stop"},
    {"hook_event_name": "UserPromptSubmit"},
]


@pytest.mark.parametrize("seed", range(40))
def test_the_store_and_the_rules_pick_the_claim_the_store_used_to_keep(seed: int) -> None:
    rng = random.Random(seed)
    store = HookStore(clock=lambda: T0)
    at, seen = T0, []
    for _ in range(rng.randrange(1, 3 * MAX_KEPT)):
        at += rng.choice([0.0, 0.5, 3.0, 6.0, 25.0, 40.0])
        event = HookEvent(AgentKind.CLAUDE_CODE, "hook", dict(rng.choice(_PAYLOADS), session_id="s"), at)
        store.add(event)
        ev = hook_evidence(event)
        assert ev is not None
        seen.append(ev)
        assert hook_claim(store.evidence("s")) == hook_claim(seen) == _old_fold(seen)
