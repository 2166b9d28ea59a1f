"""Hook and notify payloads → :class:`Evidence` (pure; the socket lives in ``services.ipc``).

Sources (``shared/reference/claude-code-and-codex.md`` §1.6, §2.5, §2.6, all seen):

* Claude Code 2.1.197 and Codex 0.169.0 hooks: one JSON object on the hook's stdin,
  ``{"hook_event_name", "session_id", "transcript_path", "cwd", ...}`` plus per event
  ``tool_name``/``tool_input`` (PreToolUse, PermissionRequest, PostToolUse),
  ``notification_type``/``message`` (Notification), ``source`` (SessionStart),
  ``reason`` (SessionEnd). Codex's ``session_id`` is the thread id of its rollout.
* Codex ``notify``: ``{"type": "agent-turn-complete", "thread-id", "turn-id", "cwd",
  "client", "input-messages", "last-assistant-message"}`` as the last argv element, once
  per finished turn (also for the TUI's hidden title thread, which has no rollout: its
  evidence is kept but matches no session).

What each event claims (:func:`hook_evidence`):

===========================================  ======================  ==========
event                                        status                  fresh for
===========================================  ======================  ==========
PermissionRequest (AskUserQuestion)          WAITING_QUESTION        1 h
PermissionRequest (any other tool)           WAITING_PERMISSION      1 h
Notification ``permission_prompt``           WAITING_PERMISSION      1 h
Notification ``elicitation_dialog``          WAITING_QUESTION        1 h
Notification ``idle_prompt``                 IDLE                    10 min
Stop / Codex notify ``agent-turn-complete``  IDLE                    10 min
StopFailure                                  IDLE (turn failed)      10 min
UserPromptSubmit, PreToolUse, PostToolUse*   BUSY                    10 min
SessionStart (Claude: startup/resume/clear)  IDLE                    10 min
SessionStart (Codex: fires at first prompt)  BUSY                    10 min
SessionEnd                                   ENDED                   until replaced
===========================================  ======================  ==========

Gemini CLI 0.61.0, Qwen Code 0.24.4 and Copilot CLI 1.0.102 (issue #19): their payloads are read
by their adapters (:meth:`deck_tray.core.agents.base.AgentAdapter.hook_status`, payload shapes in
each adapter module's docstring), the same freshness applying (waiting 1 h, busy/idle 10 min,
ended until replaced). Their session ids are the ones their transcripts carry (Gemini's
``session_id`` is the chats file's ``sessionId``, Qwen's its ``sessionId``, Copilot's ``sessionId``
its ``session-state/<id>`` folder). Copilot's payloads mostly do not name their event: the
forwarder adds the event its command was installed for (``deck-tray hook copilot-cli agentStop``).

Hooks rank above the screen and the transcript and below the live status file and the
process table (ADR 002). A hook is an *event*, not a state file: nothing fires when the
user answers a prompt in the terminal or presses Esc. The store therefore decides nothing:
it hands every recent hook observation of a session to the status function as plain
evidence, and :mod:`deck_tray.core.status` applies the hook rules (H1–H5: the newest event
replaces older ones, a ``permission_prompt`` notification repeats its ``PermissionRequest``,
claims expire, a later contradicting observation from another source ends a claim, a
prompt's request is completed from the screen and the transcript).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deck_tray.core import claude, codex
from deck_tray.core.agents import ADAPTERS, adapter_for
from deck_tray.core.model import AgentKind, Evidence, EvidenceSource, PendingRequest, RequestKind, SessionStatus
from deck_tray.core.records import question_parts
from deck_tray.core.status import SAME_PROMPT_S, hook_claim

#: Seconds a waiting claim (a prompt shown) is trusted without a contradicting observation.
WAITING_FRESH_S = 3600.0
#: Seconds a busy/idle claim is trusted; afterwards the transcript (which agrees in
#: every case seen) speaks alone.
STATE_FRESH_S = 600.0
#: Hook observations kept per session at most (a memory bound; see :meth:`HookStore.evidence`).
MAX_KEPT = 32
#: Sessions remembered at most (the oldest hook is forgotten first).
MAX_SESSIONS = 1000
#: Hooks older than this are forgotten (seconds).
FORGET_AFTER_S = 24 * 3600.0

_AGENTS = {"claude-code": AgentKind.CLAUDE_CODE, "codex": AgentKind.CODEX,
           **{a.kind.value: a.kind for a in ADAPTERS if a.hook_events}}
_KINDS = ("hook", "notify")
_END_REASONS = {
    "prompt_input_exit": "the user quit",
    "clear": "the conversation was cleared (/clear)",
    "logout": "the user logged out",
}


@dataclass(frozen=True)
class HookEvent:
    """One forwarded hook or notify call.

    Attributes:
        agent: who ran the hook.
        kind: ``"hook"`` (stdin payload of a hook) or ``"notify"`` (Codex's notify argv).
        payload: the agent's JSON object, as sent (see the module docstring).
        received: when the forwarder started, POSIX seconds.
        event: the event the hook's command was installed for (Copilot's ``deck-tray hook
            copilot-cli <event>``), ``""`` when the payload names it.
    """

    agent: AgentKind
    kind: str
    payload: Mapping[str, Any]
    received: float
    event: str = ""

    @property
    def name(self) -> str:
        """The event name: the forwarder's ``event``, else ``hook_event_name`` (or what the agent's
        adapter reads) for hooks, ``type`` for notify (``""`` if absent)."""
        if self.kind == "notify":
            return _str(self.payload.get("type"))
        if self.event:
            return self.event
        adapter = adapter_for(self.agent)
        return adapter.hook_event_name(self.payload) if adapter else _str(self.payload.get("hook_event_name"))

    @property
    def session_id(self) -> str:
        """Claude ``session_id``, Codex ``session_id`` (hooks) or ``thread-id`` (notify), an
        adapter's agent's id (:meth:`~deck_tray.core.agents.base.AgentAdapter.hook_session_id`);
        ``""`` if absent."""
        adapter = adapter_for(self.agent)
        if adapter is not None:
            return adapter.hook_session_id(self.payload)
        return _str(self.payload.get("session_id") or self.payload.get("thread-id"))

    @property
    def transcript(self) -> str:
        """``transcript_path`` (Copilot: ``transcriptPath``, hooks only), else ``""``."""
        return _str(self.payload.get("transcript_path") or self.payload.get("transcriptPath"))


def parse_message(msg: Mapping[str, Any], now: float | None = None) -> HookEvent | None:
    """The :class:`HookEvent` in one ``{"op": "hook", ...}`` socket message.

    Args:
        msg: ``{"op": "hook", "agent": "claude-code"|"codex"|"gemini-cli"|"qwen-code"|"copilot-cli",
            "kind": "hook"|"notify", "payload": {...}, "received": <POSIX seconds>, "event"?: str}``.
        now: the receiver's clock (default ``time.time()``); a ``received`` that is missing
            or more than 5 s ahead / 1 h behind it is replaced by ``now``.

    Returns:
        The event, or None when the agent, kind or payload is missing or malformed.
    """
    agent = _AGENTS.get(_str(msg.get("agent")))
    kind = _str(msg.get("kind"))
    payload = msg.get("payload")
    if agent is None or kind not in _KINDS or not isinstance(payload, Mapping):
        return None
    t = time.time() if now is None else now
    received = msg.get("received")
    if not isinstance(received, (int, float)) or isinstance(received, bool) or not t - 3600 <= received <= t + 5:
        received = t
    event = _str(msg.get("event"))
    return HookEvent(agent, kind, payload, float(received), event if len(event) <= 64 else "")


def hook_evidence(ev: HookEvent) -> Evidence | None:
    """What one event says about its session (table in the module docstring).

    Returns:
        Evidence from :attr:`EvidenceSource.HOOK` observed at ``ev.received``, or None for
        events that say nothing about the state (SubagentStop, PreCompact, unknown ones).
    """
    p = ev.payload
    at = ev.received
    name = ev.name
    adapter = adapter_for(ev.agent)
    if adapter is not None:
        claim = adapter.hook_status(name, p) if ev.kind == "hook" else None
        if claim is None:
            return None
        if claim.status is SessionStatus.ENDED:
            return Evidence(EvidenceSource.HOOK, claim.status, at, claim.reason)
        fresh = WAITING_FRESH_S if claim.status.is_waiting else STATE_FRESH_S
        return Evidence(EvidenceSource.HOOK, claim.status, at, claim.reason, fresh, claim.pending)
    if ev.kind == "notify":
        if name == "agent-turn-complete":
            return _state(SessionStatus.IDLE, at, "turn finished (notify)")
        return None
    codex_agent = ev.agent is AgentKind.CODEX
    if name == "PermissionRequest":
        pending = request_of(ev)
        status = SessionStatus.WAITING_QUESTION if pending.kind is RequestKind.QUESTION else \
            SessionStatus.WAITING_PERMISSION
        detail = "question" if pending.kind is RequestKind.QUESTION else \
            ("approval prompt" if codex_agent else "permission prompt")
        return Evidence(EvidenceSource.HOOK, status, at, detail, WAITING_FRESH_S, pending)
    if name == "Notification":
        ntype = _str(p.get("notification_type"))
        if ntype == "permission_prompt":
            return Evidence(EvidenceSource.HOOK, SessionStatus.WAITING_PERMISSION, at, "permission prompt",
                            WAITING_FRESH_S)
        if ntype == "elicitation_dialog":
            text = _str(p.get("message")) or "an MCP server asks for input"
            pending = PendingRequest(RequestKind.QUESTION, "MCP", text, (), "", text)
            return Evidence(EvidenceSource.HOOK, SessionStatus.WAITING_QUESTION, at, "question", WAITING_FRESH_S,
                            pending)
        if ntype == "idle_prompt":
            return _state(SessionStatus.IDLE, at, "waiting for your input")
        return None
    if name == "Stop":
        return _state(SessionStatus.IDLE, at, "turn finished")
    if name == "StopFailure":
        return _state(SessionStatus.IDLE, at, "turn failed")
    if name == "UserPromptSubmit":
        return _state(SessionStatus.BUSY, at, "working on a prompt")
    if name == "PreToolUse":
        return _state(SessionStatus.BUSY, at, f"running {_str(p.get('tool_name')) or 'a tool'}")
    if name in ("PostToolUse", "PostToolUseFailure"):
        return _state(SessionStatus.BUSY, at, "working")
    if name == "SessionStart":
        if codex_agent:
            return _state(SessionStatus.BUSY, at, "working on the first prompt")
        source = _str(p.get("source"))
        if source in ("startup", "resume", "clear"):
            return _state(SessionStatus.IDLE, at, "resumed" if source == "resume" else "new session")
        return None
    if name == "SessionEnd":
        reason = _str(p.get("reason"))
        return Evidence(EvidenceSource.HOOK, SessionStatus.ENDED, at, _END_REASONS.get(reason, "session ended"))
    return None


def request_of(ev: HookEvent) -> PendingRequest:
    """The request a ``PermissionRequest`` hook announces.

    Claude's ``AskUserQuestion`` becomes a question with the labels from its input; any
    other tool a permission whose summary is the command / file / URL (the same summary the
    transcript gives). ``request_id`` is empty (the hook carries no tool-use id) and
    ``options`` are the agent's usual menu until a screen or transcript says better
    (rule H5 in :mod:`deck_tray.core.status`).
    """
    tool = _str(ev.payload.get("tool_name"))
    tool_input = ev.payload.get("tool_input")
    if tool in (claude.QUESTION_TOOL, codex.QUESTION_TOOL):
        question, options = question_parts(tool_input)
        return PendingRequest(RequestKind.QUESTION, tool, question, options, "", question)
    if isinstance(tool_input, Mapping):
        summary = codex.call_summary(tool, dict(tool_input)) if ev.agent is AgentKind.CODEX else \
            claude.tool_summary(tool, dict(tool_input))
    else:
        summary = ""
    options = codex.DEFAULT_APPROVAL_OPTIONS if ev.agent is AgentKind.CODEX else claude.DEFAULT_PERMISSION_OPTIONS
    return PendingRequest(RequestKind.PERMISSION, tool, summary, options)


class HookStore:
    """Each session's recent hook observations (plain Python; the app feeds it from the socket).

    The store holds evidence and decides nothing: :func:`deck_tray.core.status.decide` is given
    :meth:`evidence` with the session's other observations and applies the hook rules.

    Args:
        clock: POSIX seconds, for forgetting old entries.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        #: session id → its kept hook evidence, oldest first (ties: in arrival order).
        self._evidence: dict[str, list[Evidence]] = {}
        self._transcripts: dict[str, str] = {}
        #: Sessions whose permission hook deck-tray holds while the agent shows no prompt.
        self._held: set[str] = set()

    def set_held(self, session_id: str, held: bool) -> None:
        """Whether deck-tray holds the session's permission hook of an agent that shows no prompt
        while it runs (Qwen Code, Copilot CLI: its screen and title say busy meanwhile). While
        held, the waiting claim is observed anew at every :meth:`evidence` (the agent does wait
        for that hook), so the busy spinner does not end it (rule H4)."""
        if held:
            self._held.add(session_id)
        else:
            self._held.discard(session_id)

    def __len__(self) -> int:
        return len(self._evidence)

    def add(self, ev: HookEvent) -> str | None:
        """Take one event.

        Returns:
            The session id when the session's hook claim (:func:`~deck_tray.core.status.hook_claim`)
            changed, so a refresh is worth it; else None (no id, an event that claims nothing,
            one forwarded late behind a newer one, or a notification repeating a prompt).
        """
        sid = ev.session_id
        if not sid:
            return None
        if ev.transcript:
            self._transcripts[sid] = ev.transcript
        new = hook_evidence(ev)
        if new is None:
            return None
        kept = self._evidence.pop(sid, [])
        before = hook_claim(kept)
        kept = _recent([*kept, new])
        self._evidence[sid] = kept
        self._forget()
        return sid if hook_claim(kept) != before else None

    def _forget(self) -> None:
        cutoff = self._clock() - FORGET_AFTER_S
        for sid in [k for k, kept in self._evidence.items() if kept[-1].observed_at < cutoff]:
            del self._evidence[sid]
        while len(self._evidence) > MAX_SESSIONS:
            del self._evidence[next(iter(self._evidence))]
        for sid in [k for k in self._transcripts if k not in self._evidence]:
            del self._transcripts[sid]

    def evidence(self, session_id: str) -> tuple[Evidence, ...]:
        """The session's recent hook observations, oldest first, for the status function.

        Kept: the newest observation and every one observed less than
        :data:`~deck_tray.core.status.SAME_PROMPT_S` before it (at most :data:`MAX_KEPT`) —
        all that rules H1 and H2 can pick from, so dropping the rest changes no decision.
        While the session's hook is held (:meth:`set_held`), its waiting claim is observed now.
        """
        kept = tuple(self._evidence.get(session_id, ()))
        if session_id not in self._held:
            return kept
        claim = hook_claim(kept)
        if claim is None or not claim.status.is_waiting:
            return kept
        now = dataclasses.replace(claim, observed_at=max(claim.observed_at, self._clock()))
        return (*(e for e in kept if e is not claim), now)

    def transcript(self, session_id: str) -> str:
        """The transcript / rollout path the session's hooks named, ``""`` if none."""
        return self._transcripts.get(session_id, "")

    def is_waiting(self, session_id: str, now: float) -> bool:
        """True while the session's hook claim says it waits and is fresh (its screen is worth
        reading; whether the claim still holds against the other sources is not checked)."""
        ev = hook_claim(self.evidence(session_id))
        return ev is not None and ev.status.is_waiting and ev.is_fresh(now)


def _recent(evidence: list[Evidence]) -> list[Evidence]:
    """``evidence`` sorted oldest first (stable) and cut to what :meth:`HookStore.evidence` keeps."""
    ordered = sorted(evidence, key=lambda e: e.observed_at)
    newest = ordered[-1].observed_at
    return [e for e in ordered if newest - e.observed_at < SAME_PROMPT_S][-MAX_KEPT:]


def _state(status: SessionStatus, at: float, detail: str) -> Evidence:
    return Evidence(EvidenceSource.HOOK, status, at, detail, STATE_FRESH_S)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
