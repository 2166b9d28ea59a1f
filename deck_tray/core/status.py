"""The one status function: a session's evidence in, ``(SessionStatus, reason, pending)`` out.

Every source (live status file, transcript/rollout, screen, hook, opencode server, process
table) only produces :class:`Evidence`; this module alone decides what the session is doing
(DESIGN.md §4, ADR 002). Times are POSIX seconds.

General rules (every source):

* **Expiry.** Evidence whose freshness window (``fresh_for``) has passed is ignored.
* **Rank.** Among fresh evidence the strongest source wins (:attr:`EvidenceSource.rank`:
  process table > live status file = opencode server > hook > screen > transcript).
* **Newest between equals.** Between equally strong sources the newest observation wins.
* **Nothing fresh** gives ``UNKNOWN``.
* **Borrowed request.** A waiting winner that does not know *what* is asked borrows the
  request of the best other fresh observation (one with menu labels first, then the newest).
* **Question or permission.** A waiting status follows the request's kind (Claude's status
  file says "permission prompt" for ``AskUserQuestion`` too).

Hook rules (:attr:`EvidenceSource.HOOK`, made by :func:`deck_tray.core.hooks.hook_evidence` from
Claude Code hooks — captured from 2.1.197, run end to end with 2.1.332 — and Codex hooks and
``notify`` — captured from 0.169.0, run end to end with 0.171.0). A hook is an *event*, not a
state file: nothing fires when the user answers a prompt in the terminal or presses Esc, so
the hook observations of a session are reduced to at most one claim (:func:`counted`) before
the general rules rank it:

* **H1 — the newest hook event replaces the older ones.** Only the session's newest hook
  observation speaks, fresh or not: a ``PermissionRequest`` (fresh for 1 h) followed by a
  ``PostToolUse`` (fresh for 10 min) never speaks again once the ``PostToolUse`` expired. A
  hook forwarded late (an older ``observed_at``) loses to the newer one already known;
  between equal times the one listed last wins.
* **H2 — one prompt, two events.** A waiting hook claim that knows no request (Claude's
  ``Notification`` ``permission_prompt``, ~6 s after the prompt appeared) less than
  :data:`SAME_PROMPT_S` after a waiting claim that does (``PermissionRequest``) is the same
  prompt: the earlier claim speaks, with its request and the time the prompt appeared.
* **H3 — expiry.** The claim counts only while fresh (``fresh_for`` in
  :mod:`deck_tray.core.hooks`: 1 h for a prompt, 10 min for busy/idle, ``SessionEnd`` until
  replaced).
* **H4 — the session moved on.** The claim stops counting once a fresh observation from
  another source, observed *later*, claims another state: the transcript's tool result or
  interrupt record (``turn_aborted``), a screen showing the agent at work, a status file
  rewritten to ``busy``. Two waiting claims agree (permission vs question is the same prompt
  seen twice), and so does the transcript's open tool call (busy, with a request) with a
  waiting hook: that is what a prompt looks like in a transcript.
* **H5 — the hook's request, completed.** A waiting claim's request takes the tool-use / call
  id, the real menu labels and the question text from the best other fresh request of the same
  kind (the screen's first, then the newest); its own summary and tool stay.

A ``PermissionRequest`` hook that deck-tray holds open to answer it
(:mod:`deck_tray.services.decisions`) is a delivery channel, not evidence: holding it changes
nothing here.

The reason names the claim, its source and its age, e.g.
``"permission prompt for Bash `rm -f x` — live status file, 2 s ago"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from deck_tray.core.model import Evidence, EvidenceSource, PendingRequest, RequestKind, SessionStatus

#: H2: a waiting hook claim without a request this soon after one with a request is about the
#: same prompt (seconds; Claude's ``permission_prompt`` notification follows its
#: ``PermissionRequest`` by ~6 s).
SAME_PROMPT_S = 30.0


def hook_claim(evidence: Iterable[Evidence]) -> Evidence | None:
    """The one hook observation that speaks for a session (rules H1 and H2), fresh or not.

    Args:
        evidence: a session's observations, any sources, in the order they were received
            (the order only breaks ties between hooks observed at the same time).

    Returns:
        The newest :attr:`EvidenceSource.HOOK` observation — or, by H2, the earlier waiting
        claim with a request it repeats — or None when there is no hook observation. Whether
        it still holds (H3, H4) is :func:`counted`'s business.
    """
    hooks = [e for e in evidence if e.source is EvidenceSource.HOOK]
    if not hooks:
        return None
    order = sorted(range(len(hooks)), key=lambda i: (hooks[i].observed_at, i))
    newest = hooks[order[-1]]
    if not _waiting_unknown(newest):
        return newest
    for i in reversed(order[:-1]):
        earlier = hooks[i]
        if _waiting_unknown(earlier):
            continue  # a repeat of the same prompt: look further back
        if earlier.status.is_waiting and newest.observed_at - earlier.observed_at < SAME_PROMPT_S:
            return earlier
        break
    return newest


def _waiting_unknown(ev: Evidence) -> bool:
    """A waiting claim that does not know what is asked."""
    return ev.status.is_waiting and ev.pending is None


def moves_on(later: Evidence, hook: Evidence) -> bool:
    """Rule H4: whether observation ``later`` (another source) ends the claim of ``hook``.

    True when ``later`` was observed after the hook and claims another state. Waiting claims
    agree with each other, and the transcript's open tool call (busy, with a pending request)
    agrees with a waiting claim. Freshness is not checked here.
    """
    if later.source is EvidenceSource.HOOK or later.observed_at <= hook.observed_at:
        return False
    if later.status is hook.status or (later.status.is_waiting and hook.status.is_waiting):
        return False
    return not (hook.status.is_waiting and later.status is SessionStatus.BUSY
                and later.source is EvidenceSource.TRANSCRIPT and later.pending is not None)


def counted(evidence: Iterable[Evidence], now: float) -> list[Evidence]:
    """The evidence the ranking sees, after the hook rules H1–H5.

    Args:
        evidence: every observation known for the session, any order.
        now: the current time, POSIX seconds.

    Returns:
        Every non-hook observation as given (fresh or not, same order), followed by the hook
        claim (:func:`hook_claim`) when it is fresh (H3) and no later observation contradicts
        it (H4), its request completed from the other fresh requests (H5).
    """
    ev_list = list(evidence)
    others = [e for e in ev_list if e.source is not EvidenceSource.HOOK]
    claim = hook_claim(ev_list)
    if claim is None or not claim.is_fresh(now):
        return others
    fresh = [e for e in others if e.is_fresh(now)]
    if any(moves_on(e, claim) for e in fresh):
        return others
    return [*others, _completed(claim, fresh)]


def _completed(hook: Evidence, fresh: Sequence[Evidence]) -> Evidence:
    """Rule H5: ``hook`` with its request's id, labels and question taken from ``fresh``."""
    if hook.pending is None:
        return hook
    kind = hook.pending.kind
    donors = [e.pending for e in sorted(fresh, key=lambda e: (e.source is EvidenceSource.SCREEN, e.observed_at),
                                        reverse=True)
              if e.pending is not None and e.pending.kind is kind]
    if not donors:
        return hook
    best = next((pr for pr in donors if pr.options), donors[0])
    merged = dataclasses.replace(
        hook.pending,
        options=best.options or hook.pending.options,
        request_id=hook.pending.request_id or next((pr.request_id for pr in donors if pr.request_id), ""),
        question=hook.pending.question or best.question,
    )
    return dataclasses.replace(hook, pending=merged)


def pick(evidence: Iterable[Evidence], now: float) -> Evidence | None:
    """Return the winning observation (after the hook rules), or None when nothing fresh is known."""
    return _strongest(counted(evidence, now), now)


def _strongest(evidence: Iterable[Evidence], now: float) -> Evidence | None:
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
    """Derive a session's status (every rule in the module docstring).

    Args:
        evidence: every observation known for the session, any order; hook observations
            included as they came (all of a session's recent ones, :meth:`HookStore.evidence
            <deck_tray.core.hooks.HookStore.evidence>`).
        now: the current time, POSIX seconds.

    Returns:
        ``(status, reason, pending)``; ``pending`` is only set while the status is waiting.
    """
    ev_list = counted(evidence, now)
    best = _strongest(ev_list, now)
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
