"""The one status function: a session's evidence in, ``(SessionStatus, reason)`` out.

Rules (DESIGN.md §4):

* Evidence whose freshness window has passed is ignored.
* Among fresh evidence the strongest source wins (:attr:`EvidenceSource.rank`);
  between equally strong sources the newest observation wins.
* No fresh evidence at all gives ``UNKNOWN``.

The reason names the claim, its source and its age, e.g.
``"permission prompt for Bash `rm -f x` — live status file, 2 s ago"``.
"""

from __future__ import annotations

from collections.abc import Iterable

from deck_tray.core.model import Evidence, PendingRequest, RequestKind, SessionStatus


def pick(evidence: Iterable[Evidence], now: float) -> Evidence | None:
    """Return the winning observation, or None when nothing fresh is known."""
    best: Evidence | None = None
    for ev in evidence:
        if not ev.is_fresh(now):
            continue
        if best is None or (ev.source.rank, ev.observed_at) > (best.source.rank, best.observed_at):
            best = ev
    return best


def decide(
    evidence: Iterable[Evidence], now: float
) -> tuple[SessionStatus, str, PendingRequest | None]:
    """Derive a session's status.

    Args:
        evidence: every observation known for the session, any order.
        now: the current time, POSIX seconds.

    Returns:
        ``(status, reason, pending)``; ``pending`` is only set while the status is waiting.
    """
    ev_list = list(evidence)
    best = pick(ev_list, now)
    if best is None:
        return SessionStatus.UNKNOWN, "no recent observation", None
    pending = best.pending if best.status.is_waiting else None
    if best.status.is_waiting and pending is None:
        # A weaker source (transcript, screen) often knows *what* is asked when the
        # strong one only knows *that* something is asked.
        pending = _best_pending(ev_list, now)
    status = best.status
    if status.is_waiting and pending is not None:
        # Claude's status file says "permission prompt" for AskUserQuestion too.
        status = (
            SessionStatus.WAITING_QUESTION
            if pending.kind is RequestKind.QUESTION
            else SessionStatus.WAITING_PERMISSION
        )
    return status, reason_text(best, pending, now), pending


def _best_pending(evidence: list[Evidence], now: float) -> PendingRequest | None:
    found: tuple[int, float, PendingRequest] | None = None
    for ev in evidence:
        if ev.pending is None or not ev.is_fresh(now):
            continue
        # Prefer the source that knows the menu options, then the newest.
        key = (len(ev.pending.options) > 0, ev.observed_at)
        if found is None or key > (found[0], found[1]):
            found = (int(key[0]), key[1], ev.pending)
    return found[2] if found else None


def reason_text(ev: Evidence, pending: PendingRequest | None, now: float) -> str:
    """Human reason: what, for what, from which source, how long ago."""
    what = ev.detail
    if pending is not None and pending.kind is RequestKind.QUESTION:
        what = f"question “{_clip(pending.question or pending.summary, 60)}”"
        if pending.asker:
            what = f"sub-agent “{_clip(pending.asker, 40)}” asks: {what}"
    elif pending is not None and pending.summary:
        what = f"{what} for {pending.tool or 'a command'} `{_clip(pending.summary, 60)}`"
    return f"{what} — {ev.source.value}, {age_text(now - ev.observed_at)}"


def age_text(seconds: float) -> str:
    """``"just now"``, ``"5 s ago"``, ``"3 min ago"``, ``"2 h ago"``, ``"4 d ago"``."""
    s = max(0.0, seconds)
    if s < 1:
        return "just now"
    if s < 60:
        return f"{int(s)} s ago"
    if s < 3600:
        return f"{int(s // 60)} min ago"
    if s < 86400:
        return f"{int(s // 3600)} h ago"
    return f"{int(s // 86400)} d ago"


def _clip(text: str, n: int) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"
