"""What Claude transcripts and Codex rollouts have in common: timestamps, the
conversation window, and the turn phase that becomes transcript evidence.
"""

from __future__ import annotations

import collections
import datetime as _dt
from typing import Any

from deck_tray.core.model import (
    Evidence,
    EvidenceSource,
    Message,
    MessageRole,
    PendingRequest,
    SessionStatus,
)

#: Conversation items kept per session (the newest).
MAX_MESSAGES = 400
#: Seconds of silence after an answer without an end-of-turn mark before the turn counts as
#: finished (Claude Code 1.0.x–2.1.4x write ``stop_reason: null`` on every block and rarely
#: ``turn_duration``: the public corpus, tests/fixtures/public/; ADR 009).
QUIET_S = 60.0


def iso_seconds(raw: Any) -> float:
    """An ISO 8601 time (``Z`` or offset) as POSIX seconds; 0 if it is not a string or not a time."""
    if isinstance(raw, str) and raw:
        try:
            return _dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return 0.0


def iso_timestamp(rec: dict[str, Any]) -> float:
    """A record's ``timestamp`` (ISO 8601, ``Z`` or offset) as POSIX seconds; 0 if absent or bad."""
    return iso_seconds(rec.get("timestamp"))


def question_parts(inp: Any) -> tuple[str, tuple[str, ...]]:
    """First question and its option labels from a question tool's input.

    Both Claude's ``AskUserQuestion`` and Codex's ``request_user_input`` take
    ``{"questions": [{"question": str, "options": [{"label": str, ...}], ...}]}``.
    """
    if isinstance(inp, dict):
        qs = inp.get("questions")
        if isinstance(qs, list) and qs and isinstance(qs[0], dict):
            q = qs[0]
            raw_opts = q.get("options")
            opts = tuple(
                str(o.get("label"))
                for o in (raw_opts if isinstance(raw_opts, list) else [])
                if isinstance(o, dict) and o.get("label")
            )
            return str(q.get("question") or ""), opts
    return "", ()


class TurnLog:
    """The recent conversation and the phase of the current turn, fed in file order.

    Phases: ``"working"`` (the model or a tool runs), ``"tool"`` (a tool call has no result
    yet: running, or waiting for the user), ``"done"`` (turn finished), ``"interrupted"``,
    ``"ended"`` (the user quit). Records are not always written in time order, so a record
    older than the one that set the phase does not move it back, and messages are kept
    sorted by time.

    Args:
        max_messages: conversation items kept (the newest); None keeps every one (a whole
            conversation read once, :func:`deck_tray.core.past.conversation_from_transcript`).
    """

    def __init__(self, max_messages: int | None = MAX_MESSAGES) -> None:
        self.messages: collections.deque[Message] = collections.deque(maxlen=max_messages)
        self.phase = ""
        self.phase_at = 0.0
        self.last_at = 0.0
        self.unmarked = False

    def set_phase(self, phase: str, ts: float, *, unmarked: bool = False) -> None:
        """Move the turn to ``phase`` unless a newer record already set it.

        Args:
            phase: the new phase (``"working"``, ``"done"``, ``"interrupted"``, …).
            ts: the record's time (POSIX seconds; 0: unknown, then the last record's time is used).
            unmarked: the record was an answer that may end the turn but carries no mark saying
                so (``stop_reason: null``): see :meth:`evidence_list`.
        """
        if ts and self.phase_at and ts < self.phase_at:
            return
        self.phase = phase
        self.phase_at = ts or self.last_at
        self.unmarked = unmarked

    def add(self, msg: Message) -> None:
        """Add a message at its place in time."""
        i = len(self.messages)
        while msg.timestamp and i > 0 and self.messages[i - 1].timestamp > msg.timestamp:
            i -= 1
        if i == len(self.messages):
            self.messages.append(msg)
            return
        if len(self.messages) == self.messages.maxlen:
            if i == 0:
                return  # older than everything kept in a full window
            self.messages.popleft()
            i -= 1
        self.messages.insert(i, msg)

    def close_tool(self, key: str, state: str) -> None:
        """Mark the tool call ``key`` as ``"done"`` or ``"error"``."""
        for i in range(len(self.messages) - 1, -1, -1):
            m = self.messages[i]
            if m.role is MessageRole.TOOL and m.key == key:
                self.messages[i] = Message(m.role, m.text, m.timestamp, m.key, state)
                return

    def pending_request(self) -> PendingRequest | None:
        """The open call that may be a request to the user (subclasses know which)."""
        return None

    def evidence_list(self) -> list[Evidence]:
        """What the file alone says: :meth:`evidence`, and after an unmarked answer (the last
        record is the model's text, ``stop_reason`` null, no tool call open) also *idle*, which
        wins once the *working* claim expires :data:`QUIET_S` after that answer when nothing
        was written since (ADR 009). Stronger sources — a live status file, a hook, the screen,
        the process table — decide before either."""
        ev = self.evidence()
        if ev is None:
            return []
        if ev.status is SessionStatus.BUSY and self.phase == "working" and self.unmarked:
            at = ev.observed_at
            return [Evidence(ev.source, SessionStatus.BUSY, at, "working", fresh_for=QUIET_S),
                    Evidence(ev.source, SessionStatus.IDLE, at - 0.001,
                             f"answered; no end-of-turn mark in this version, quiet for {QUIET_S:.0f} s")]
        return [ev]

    def evidence(self) -> Evidence | None:
        """What the file alone says (the weakest evidence; see :mod:`deck_tray.core.status`)."""
        at = self.phase_at or self.last_at
        src = EvidenceSource.TRANSCRIPT
        if self.phase == "done":
            return Evidence(src, SessionStatus.IDLE, at, "turn finished")
        if self.phase == "interrupted":
            return Evidence(src, SessionStatus.IDLE, at, "interrupted")
        if self.phase == "ended":
            return Evidence(src, SessionStatus.ENDED, at, "the user quit")
        if self.phase == "tool":
            pend = self.pending_request()
            detail = f"running {pend.tool} or waiting for an answer" if pend else "running a tool"
            return Evidence(src, SessionStatus.BUSY, at, detail, pending=pend)
        if self.phase == "working":
            return Evidence(src, SessionStatus.BUSY, at, "working")
        return None
