"""Permission requests held open through the agents' own ``PermissionRequest`` hooks (issue #13).

``deck-tray hook <agent>`` sends a ``PermissionRequest`` with ``"wait": true`` and keeps its
connection to the app (:mod:`deck_tray.services.ipc`). The :class:`DecisionBroker` holds it until
one of:

* the user answers in deck-tray (window, notification action, ``deck-tray reply``): the hook
  prints the decision (:func:`deck_tray.core.decisions.decision_output`) and exits — no key is
  typed anywhere;
* the request is answered or withdrawn elsewhere — the session leaves the waiting state
  (answered in the terminal, Esc, the session ended) or a later hook of the same session
  arrives: the hook exits with no decision;
* :attr:`DecisionBroker.timeout_s` passes, or the hook goes away: no decision.

Claude Code keeps its own dialog live all the while, so the user at the terminal is never locked
out; whichever answers first wins. Its single-question ``AskUserQuestion`` is held the same way
and answered with an option label or free text. Codex shows its approval only after the hook
returns, so a Codex hook is held only when the user set :attr:`DecisionBroker.codex_hold_s` (the
"Let Codex wait for deck-tray" setting), only that long, and only for a session deck-tray knows
no pane of (in a pane, the answer is typed there without keeping the terminal waiting).

Qwen Code and Copilot CLI (issue #19) show no prompt while their permission hook runs: their hook
is held at most :attr:`DecisionBroker.short_wait_s` (the "Let Qwen and Copilot wait for
deck-tray" setting, a few seconds), a limit the socket also tells the forwarder
(:meth:`DecisionBroker.hold_limit`); then the agent shows its prompt and answers are typed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from deck_tray.core import decisions
from deck_tray.core.hooks import HookEvent, HookStore
from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, Session, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.registry import SessionRegistry

log = logging.getLogger(__name__)

#: Seconds a hook waits for the user's decision by default (the installed hook's own
#: ``timeout`` is a little longer, see :mod:`deck_tray.core.hooks_config`).
WAIT_S = 600.0


@dataclass
class _Held:
    event: HookEvent
    future: asyncio.Future[dict[str, Any] | None]
    since: float = field(default_factory=time.time)
    seen_waiting: bool = False


class DecisionBroker(QObject):
    """Holds waiting ``PermissionRequest`` hooks by session id and answers them.

    Args:
        registry: the sessions; a held request is withdrawn when its session leaves the
            waiting state it was held in.
        timeout_s: how long a hook is held at most.
        hooks: the hook store the status decision reads: told which sessions' Qwen Code / Copilot
            CLI hooks are held (:meth:`HookStore.set_held`: their terminals show a busy spinner
            meanwhile, yet they wait), before ``changed`` is emitted.

    Attributes:
        codex_hold_s: how long a Codex permission hook of a session with no known pane waits
            for deck-tray (seconds; 0: Codex hooks are not held). Set live from the settings.
        short_wait_s: how long a Qwen Code / Copilot CLI permission hook waits for deck-tray
            (seconds; 0: not held). Set live from the settings.

    Signals:
        changed(str): a session's hook became answerable, or stopped being (its id); its
            status is to be decided again (the hook store already knows).
    """

    changed = Signal(str)

    def __init__(self, registry: SessionRegistry, timeout_s: float = WAIT_S, parent: QObject | None = None,
                 *, hooks: HookStore | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.hooks = hooks
        self.timeout_s = timeout_s
        self.codex_hold_s = 0.0
        self.short_wait_s = 0.0
        self._held: dict[str, _Held] = {}
        #: Sessions whose held request was answered elsewhere:
        #: ``{id: (monotonic s, why, the reply kinds it took)}``.
        self._answered_elsewhere: dict[str, tuple[float, str, frozenset[ReplyKind]]] = {}
        registry.session_changed.connect(self._session_changed)
        registry.session_removed.connect(lambda sid: self.withdraw(sid, "the session is gone"))

    # -- the socket side -------------------------------------------------------------------
    async def hold(self, event: HookEvent) -> dict[str, Any] | None:
        """Hold one hook until a decision, a withdrawal or the timeout.

        Returns:
            The JSON object the hook prints, or None (it prints nothing; the agent's own
            dialog decides).
        """
        sid = event.session_id
        cur = self.registry.get(sid) if sid else None
        codex_hold = self.codex_hold_s > 0 and (cur is None or cur.pane is None)
        if not sid or not decisions.holds(event.agent, event.payload, codex_hold=codex_hold, event=event.name,
                                          short_wait_s=self.short_wait_s):
            return None
        limit = self.hold_limit(event)
        timeout_s = self.codex_hold_s if event.agent is AgentKind.CODEX else limit if limit is not None else \
            self.timeout_s
        old = self._held.pop(sid, None)
        if old is not None and not old.future.done():
            old.future.set_result(None)  # a newer request of the same session replaces it
        fut: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        held = _Held(event, fut)
        held.seen_waiting = cur is not None and cur.status.is_waiting
        self._held[sid] = held
        log.info("holding %s's permission hook for %s (%s) for a decision", event.agent.label, sid[:12],
                 event.payload.get("tool_name") or "?")
        self._changed(sid)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            log.info("no decision for %s within %g s; the agent's dialog decides", sid[:12], timeout_s)
            return None
        finally:
            if self._held.get(sid) is held:
                del self._held[sid]
                self._changed(sid)

    def _changed(self, sid: str) -> None:
        held = self.held(sid)
        if self.hooks is not None:
            self.hooks.set_held(sid, held is not None and decisions.short_wait(held.agent))
        self.changed.emit(sid)

    def hold_limit(self, event: HookEvent) -> float | None:
        """The most a hook of ``event``'s agent is held (seconds), told to the forwarder with
        ``held``: :attr:`short_wait_s` for Qwen Code and Copilot CLI; None for the others."""
        if decisions.short_wait(event.agent):
            return self.short_wait_s
        return None

    def hook_arrived(self, event: HookEvent) -> None:
        """Any hook of a session (the app's socket): a later event than the held request means
        the request was answered in the terminal (PostToolUse, PermissionDenied, Stop,
        UserPromptSubmit, SessionEnd …)."""
        held = self._held.get(event.session_id)
        if held is not None and event is not held.event and event.received >= held.event.received \
                and event.name not in ("PermissionRequest", "Notification", "PreToolUse", "permissionRequest",
                                       "notification", "preToolUse"):
            self.withdraw(event.session_id, f"{event.name or 'a later event'} arrived", elsewhere=True)

    def went_away(self, event: HookEvent) -> None:
        """The hook process closed its connection (the agent ended it, or it was killed)."""
        held = self._held.get(event.session_id)
        if held is not None and held.event is event:
            self.withdraw(event.session_id, "the hook process went away")

    # -- the app side ----------------------------------------------------------------------
    def held(self, session_id: str) -> HookEvent | None:
        """The held ``PermissionRequest`` of a session, or None."""
        h = self._held.get(session_id)
        return h.event if h is not None and not h.future.done() else None

    def withdraw(self, session_id: str, why: str, *, elsewhere: bool = False) -> None:
        """Let a held hook go without a decision (the agent's dialog decides).

        Args:
            session_id: whose.
            why: for the log.
            elsewhere: the request was answered elsewhere (the terminal): a permission answer
                that comes soon after is reported superseded (:meth:`answered_elsewhere`).
        """
        held = self._held.get(session_id)
        if held is not None and not held.future.done():
            log.info("released %s's permission hook for %s without a decision: %s", held.event.agent.label,
                     session_id[:12], why)
            held.future.set_result(None)
            if elsewhere:
                self._answered_elsewhere[session_id] = (time.monotonic(), why,
                                                        decisions.decidable(held.event.payload))
                if len(self._answered_elsewhere) > 200:
                    self._answered_elsewhere.pop(next(iter(self._answered_elsewhere)))

    def answered_elsewhere(self, session_id: str, reply_kind: ReplyKind | None = None,
                           within_s: float = 120.0) -> str | None:
        """Why the session's last held request was let go because it was answered elsewhere,
        if that was within ``within_s`` seconds, no new request is held and ``reply_kind`` (when
        given) is an answer to that request (a new prompt after it is not superseded); else None."""
        got = self._answered_elsewhere.get(session_id)
        if got is None or self.held(session_id) is not None or time.monotonic() - got[0] > within_s:
            return None
        if reply_kind is not None and (reply_kind not in got[2] or reply_kind is ReplyKind.PROMPT):
            return None
        return got[1]

    def decide(self, session: Session, reply: Reply) -> DeliveryReport | None:
        """Answer the held hook of ``session`` with ``reply``.

        Returns:
            ``SUBMITTED`` (the hook took the decision to the agent); ``REFUSED`` when ``reply``
            cannot answer the held request (an option it does not offer, empty text: the hook
            stays held, the text is kept); None when no hook is held for it or ``reply`` is not
            an answer a hook carries (use the pane instead).
        """
        held = self._held.get(session.id)
        if held is None or held.future.done() or reply.kind not in decisions.decidable(held.event.payload):
            return None
        try:
            out = decisions.decision_output(held.event.agent, reply, held.event.payload)
        except ValueError as exc:
            return DeliveryReport(DeliveryState.REFUSED, f"{exc}; nothing was sent", reply.text)
        self._answered_elsewhere.pop(session.id, None)
        held.future.set_result(out)
        note = decisions.always_note(held.event.agent, reply, held.event.payload)
        what = "question" if decisions.is_question(held.event.payload) else "permission"
        log.info("answered %s's %s hook for %s: %s", held.event.agent.label, what, session.id[:12],
                 reply.describe())
        return DeliveryReport(DeliveryState.SUBMITTED,
                              f"answered through {held.event.agent.label}'s permission hook{note}", reply.text)

    def _session_changed(self, s: Session) -> None:
        held = self._held.get(s.id)
        if held is None:
            return
        if s.status.is_waiting:
            held.seen_waiting = True
        elif held.seen_waiting or s.status is SessionStatus.ENDED:
            self.withdraw(s.id, f"the session is now {s.status.label.lower()}", elsewhere=True)

    def release_all(self) -> None:
        """Let every held hook go (the app is quitting)."""
        for sid in list(self._held):
            self.withdraw(sid, "deck-tray is quitting")


