"""The status function: which observation wins, and the reason shown to the user."""

from __future__ import annotations

import pytest

from deck_tray.core.model import Evidence, EvidenceSource, PendingRequest, RequestKind, SessionStatus
from deck_tray.core.status import age_text, decide, pick

NOW = 1_795_311_100.0

BASH = PendingRequest(
    RequestKind.PERMISSION, "Bash", "rm -f x", ("Yes", "Yes, and don't ask again", "No"), "t1"
)
BASH_NO_OPTIONS = PendingRequest(RequestKind.PERMISSION, "Bash", "rm -f x", (), "t1")
QUESTION = PendingRequest(
    RequestKind.QUESTION,
    "AskUserQuestion",
    "Which colour should the fake widget be?",
    ("Red", "Blue"),
    "t2",
    "Which colour should the fake widget be?",
)


def ev(
    source: EvidenceSource,
    status: SessionStatus,
    age: float,
    detail: str = "",
    *,
    fresh_for: float | None = None,
    pending: PendingRequest | None = None,
) -> Evidence:
    return Evidence(source, status, NOW - age, detail or status.value, fresh_for, pending)


def test_strongest_fresh_source_wins_even_if_older() -> None:
    evidence = [
        ev(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, 1, "working"),
        ev(EvidenceSource.SCREEN, SessionStatus.BUSY, 2, "working", fresh_for=6),
        ev(EvidenceSource.STATUS_FILE, SessionStatus.IDLE, 30, "ready for a prompt"),
    ]
    status, reason, pending = decide(evidence, NOW)
    assert status is SessionStatus.IDLE
    assert "live status file" in reason
    assert pending is None


def test_process_table_end_beats_everything() -> None:
    evidence = [
        ev(EvidenceSource.STATUS_FILE, SessionStatus.BUSY, 1, "working"),
        ev(EvidenceSource.PROCESS, SessionStatus.ENDED, 100, "Claude Code is no longer running"),
    ]
    status, reason, _ = decide(evidence, NOW)
    assert status is SessionStatus.ENDED
    assert reason.startswith("Claude Code is no longer running — process table")


def test_equal_rank_newest_wins_regardless_of_order() -> None:
    old = ev(EvidenceSource.STATUS_FILE, SessionStatus.BUSY, 20, "working")
    new = ev(EvidenceSource.SSE, SessionStatus.IDLE, 3, "ready for a prompt")
    for order in ([old, new], [new, old]):
        status, reason, _ = decide(order, NOW)
        assert status is SessionStatus.IDLE
        assert reason == "ready for a prompt — opencode server, 3 s ago"
    assert pick([old, new], NOW) is new


def test_stale_evidence_is_ignored() -> None:
    stale_screen = ev(
        EvidenceSource.SCREEN,
        SessionStatus.WAITING_PERMISSION,
        10,
        "permission prompt",
        fresh_for=6,
        pending=BASH,
    )
    transcript = ev(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, 20, "working")
    status, reason, pending = decide([stale_screen, transcript], NOW)
    assert status is SessionStatus.BUSY
    assert "transcript" in reason
    assert pending is None
    # Still within its window: the screen wins.
    fresh_screen = ev(
        EvidenceSource.SCREEN,
        SessionStatus.WAITING_PERMISSION,
        5,
        "permission prompt",
        fresh_for=6,
        pending=BASH,
    )
    status, _, pending = decide([fresh_screen, transcript], NOW)
    assert status is SessionStatus.WAITING_PERMISSION
    assert pending == BASH


def test_nothing_fresh_is_unknown() -> None:
    assert decide([], NOW)[0] is SessionStatus.UNKNOWN
    only_stale = [ev(EvidenceSource.SCREEN, SessionStatus.BUSY, 60, fresh_for=6)]
    status, reason, pending = decide(only_stale, NOW)
    assert status is SessionStatus.UNKNOWN
    assert reason
    assert pending is None


def test_waiting_status_file_borrows_the_pending_request_from_the_transcript() -> None:
    evidence = [
        ev(
            EvidenceSource.TRANSCRIPT,
            SessionStatus.BUSY,
            3,
            "running Bash or waiting for an answer",
            pending=BASH,
        ),
        ev(EvidenceSource.STATUS_FILE, SessionStatus.WAITING_PERMISSION, 2, "permission prompt"),
    ]
    status, reason, pending = decide(evidence, NOW)
    assert status is SessionStatus.WAITING_PERMISSION
    assert pending == BASH
    assert pending is not None and pending.options == ("Yes", "Yes, and don't ask again", "No")
    assert reason == "permission prompt for Bash `rm -f x` — live status file, 2 s ago"


def test_borrowed_pending_prefers_the_source_that_knows_the_options() -> None:
    screen_pending = PendingRequest(
        RequestKind.PERMISSION,
        "Bash",
        "rm -f x",
        ("Yes", "Yes, and always allow access to proj/", "No"),
        "t1",
    )
    evidence = [
        ev(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, 1, pending=BASH_NO_OPTIONS),  # newer, no options
        ev(EvidenceSource.SCREEN, SessionStatus.BUSY, 2, fresh_for=6, pending=screen_pending),
        ev(EvidenceSource.STATUS_FILE, SessionStatus.WAITING_PERMISSION, 3, "permission prompt"),
    ]
    _, _, pending = decide(evidence, NOW)
    assert pending == screen_pending


def test_pending_is_not_borrowed_from_stale_evidence() -> None:
    evidence = [
        ev(EvidenceSource.SCREEN, SessionStatus.WAITING_PERMISSION, 30, fresh_for=6, pending=BASH),
        ev(EvidenceSource.STATUS_FILE, SessionStatus.WAITING_PERMISSION, 2, "permission prompt"),
    ]
    status, reason, pending = decide(evidence, NOW)
    assert status is SessionStatus.WAITING_PERMISSION
    assert pending is None
    assert reason == "permission prompt — live status file, 2 s ago"


def test_question_pending_turns_waiting_permission_into_waiting_question() -> None:
    evidence = [
        ev(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, 4, pending=QUESTION),
        ev(EvidenceSource.STATUS_FILE, SessionStatus.WAITING_PERMISSION, 2, "permission prompt"),
    ]
    status, reason, pending = decide(evidence, NOW)
    assert status is SessionStatus.WAITING_QUESTION
    assert pending == QUESTION
    assert pending is not None and pending.options == ("Red", "Blue")
    assert reason == "question “Which colour should the fake widget be?” — live status file, 2 s ago"


def test_pending_is_only_reported_while_waiting() -> None:
    evidence = [
        ev(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, 4, pending=BASH),
        ev(EvidenceSource.STATUS_FILE, SessionStatus.BUSY, 2, "working"),
    ]
    status, reason, pending = decide(evidence, NOW)
    assert status is SessionStatus.BUSY
    assert pending is None
    assert reason == "working — live status file, 2 s ago"


def test_reason_clips_long_commands_to_one_line() -> None:
    long_cmd = "echo " + "a" * 200 + "\n && rm -rf build"
    p = PendingRequest(RequestKind.PERMISSION, "Bash", long_cmd, ())
    status, reason, _ = decide(
        [
            ev(
                EvidenceSource.SCREEN,
                SessionStatus.WAITING_PERMISSION,
                0.2,
                "permission prompt",
                fresh_for=6,
                pending=p,
            )
        ],
        NOW,
    )
    assert status is SessionStatus.WAITING_PERMISSION
    assert "\n" not in reason
    assert "…`" in reason
    assert reason.endswith("— screen, just now")
    assert len(reason) < 120


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "just now"),
        (0, "just now"),
        (0.99, "just now"),
        (1, "1 s ago"),
        (2.7, "2 s ago"),
        (59.9, "59 s ago"),
        (60, "1 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h ago"),
        (86399, "23 h ago"),
        (86400, "1 d ago"),
        (4 * 86400 + 5, "4 d ago"),
    ],
)
def test_age_text_buckets(seconds: float, text: str) -> None:
    assert age_text(seconds) == text
