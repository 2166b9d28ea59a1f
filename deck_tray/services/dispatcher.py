"""The only way text leaves deck-tray: state-first sending into an agent's tmux or zellij pane
or terminal window (kitty, GNU screen, WezTerm, Konsole).

For every reply: *query* the pane (it exists, is alive, still runs the agent's pid, its
foreground command is not a shell, the agent is in the foreground where the terminal
reports it, and what its screen shows) → *decide* a key plan
(:func:`deck_tray.core.reply.plan`) → *execute* it (text, pause ≥ 150 ms, Enter as its
own key) → *verify* the agent took it. Any failed check refuses with the reason and the
text is kept in the report. Nothing is ever sent twice: a failure after the first key
reached the pane reports ``UNKNOWN``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from deck_tray.core import decisions, procs
from deck_tray.core.model import (
    AgentKind,
    DeliveryReport,
    DeliveryState,
    MessageRole,
    Session,
    SessionStatus,
)
from deck_tray.core.record_kinds import unwrap_pastes
from deck_tray.core.reply import (
    FREE_TEXT,
    PlanError,
    Reply,
    ReplyKind,
    Step,
    StepKind,
    plan,
    sanitize,
    screen_matches,
)
from deck_tray.core.screens import Screen, ScreenKind, input_line_is_dim, read_screen
from deck_tray.services.panes import (
    Multiplexer,
    MuxError,
    PartialSendError,
    ScreenUnreadableError,
    is_shell,
    pid_under_pane,
)

log = logging.getLogger(__name__)
_NO_TTY = procs.TtyFacts(0, 0, 0, -1)
#: Seconds after Enter when a prompt still shown in the agent's input line means the Enter was
#: lost and it is pressed once more (Gemini CLI 0.61.0 at start-up, docs/agents/gemini-qwen-notes.md).
ENTER_AGAIN_S = 1.5

#: Replies a held hook can carry: a permission's and a question's.
_HOOK_KINDS = decisions.DECIDABLE | decisions.QUESTION_DECIDABLE

#: Seconds Claude Code's menu must have been waiting before its answer key is pressed.
#: Claude Code 2.1.332 drops a key that arrives right after the *first* permission dialog of a
#: session appears: the digit is neither taken nor left anywhere (the dialog stays, the prompt
#: box stays empty), and the same key pressed again is taken. Measured on this machine with
#: tmux ``send-keys 1`` after the dialog was first seen: at once lost 4 times in 5, 0.5 s
#: and 1.0 s later taken every time; later dialogs of the session take it at once (screen:
#: ``tests/fixtures/screens/claude-2.1.332-permission-bash.txt``). 2.1.197 takes it at once.
#: So the key waits until the request is this old (a click a second after the notification
#: is not delayed) instead of being sent twice: nothing is ever resent.
MENU_SETTLE_S = 1.0

#: Seconds to wait for the menu a session is known to wait on to be drawn, before planning
#: against the screen as it is (Claude Code 2.1.332 reports the wait before it draws it).
MENU_APPEAR_S = 2.0
_MENU_STATES = (SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION)
_MENU_SCREENS = (ScreenKind.PERMISSION, ScreenKind.QUESTION)

#: Returns a fresh snapshot of a session by id (or None), used to verify acceptance.
Probe = Callable[[str], Awaitable[Session | None]]


class ApiAnswerer(Protocol):
    """Answers sessions through an agent's own API (opencode), not a pane."""

    async def answer(self, session: Session, reply: Reply) -> DeliveryReport:
        """Deliver ``reply``; never raises for delivery problems."""
        ...


class HookAnswerer(Protocol):
    """Answers permissions through the agent's own waiting ``PermissionRequest`` hook
    (:class:`deck_tray.services.decisions.DecisionBroker`)."""

    def decide(self, session: Session, reply: Reply) -> DeliveryReport | None:
        """``SUBMITTED`` when a held hook took ``reply``, ``REFUSED`` when it cannot answer the
        held request; None when none is held (or ``reply`` is no answer to it)."""
        ...

    def answered_elsewhere(self, session_id: str, reply_kind: ReplyKind | None = None,
                           within_s: float = 120.0) -> str | None:
        """Why the last held request was let go as answered elsewhere, recently, when
        ``reply_kind`` answers such a request; else None."""
        ...


class Dispatcher:
    """Sends replies and reports an honest :class:`DeliveryState`: a permission through the
    agent's waiting hook when there is one (no key typed), else into its pane.

    Args:
        mux: the multiplexer(s) (a :class:`~deck_tray.services.panes.MuxSet` for tmux, zellij and
            the terminals).
        probe: fetches a fresh session snapshot, to see the agent take the answer.
        accept_timeout: seconds to wait for ``ACCEPTED`` after Enter (or after a hook's decision).
        api: answers opencode sessions through their server (None: they are refused).
        hooks: answers permissions through held ``PermissionRequest`` hooks (None: panes only).
        remote: answers sessions of other machines through their host's deck-tray, which runs
            every target check there (:class:`deck_tray.services.remote.Remotes`; None: they are
            refused).
    """

    def __init__(self, mux: Multiplexer, probe: Probe | None = None, *, accept_timeout: float = 15.0,
                 api: ApiAnswerer | None = None, hooks: HookAnswerer | None = None,
                 remote: ApiAnswerer | None = None) -> None:
        self.mux = mux
        self.remote = remote
        self.probe = probe
        self.api = api
        self.hooks = hooks
        self.accept_timeout = accept_timeout
        self._locks: dict[str, asyncio.Lock] = {}

    async def dispatch(self, session: Session, reply: Reply) -> DeliveryReport:
        """Deliver ``reply`` to ``session``; never raises for delivery problems."""
        lock = self._locks.setdefault(session.id, asyncio.Lock())
        async with lock:
            if session.host:
                if self.remote is None:
                    return self._refuse(reply, f"the session runs on {session.host}, and remote hosts are not set "
                                               "up in this process")
                log.info("sending %s to %s on %s", reply.describe(), session.local_id[:12], session.host)
                return await self.remote.answer(session, reply)
            if session.agent is AgentKind.OPENCODE:
                if self.api is None:
                    return self._refuse(reply, "opencode sessions are answered through the opencode server, "
                                               "and no server connection is set up")
                log.info("sending %s to opencode session %s", reply.describe(), session.id[:12])
                return await self.api.answer(session, reply)
            if self.hooks is not None and reply.kind in _HOOK_KINDS:
                report = await self._through_hook(session, reply)
                if report is not None:
                    return report
            try:
                return await self._dispatch(session, reply)
            except MuxError as exc:
                which = session.pane.multiplexer if session.pane else "the multiplexer"
                return self._refuse(reply, f"{which} failed before anything was typed: {exc}")

    async def _through_hook(self, session: Session, reply: Reply) -> DeliveryReport | None:
        """A permission or question answer through the agent's held hook: ``ACCEPTED`` once the
        session leaves the waiting state, ``SUPERSEDED`` when the terminal answered first,
        ``REFUSED`` when the answer does not fit the request; None when no hook is held (the
        pane path follows)."""
        assert self.hooks is not None
        report = self.hooks.decide(session, reply)
        if report is not None and report.state is DeliveryState.REFUSED:
            log.info("reply refused: %s", report.detail)
            return report
        if report is None:
            why = self.hooks.answered_elsewhere(session.id, reply.kind)
            if why is None:
                return None
            log.info("%s for %s superseded: %s", reply.describe(), session.id[:12], why)
            return DeliveryReport(DeliveryState.SUPERSEDED,
                                  f"the request was already answered in the terminal ({why}); nothing was sent",
                                  reply.text)
        if self.probe is not None:
            deadline = time.monotonic() + self.accept_timeout
            while time.monotonic() < deadline:
                fresh = await self.probe(session.id)
                if fresh is None or not fresh.status.is_waiting:
                    return DeliveryReport(DeliveryState.ACCEPTED, f"the agent took it ({report.detail})", reply.text)
                await asyncio.sleep(0.1)
        return report

    @staticmethod
    def _refuse(reply: Reply, why: str) -> DeliveryReport:
        log.info("reply refused: %s", why)
        return DeliveryReport(DeliveryState.REFUSED, why, reply.text)

    async def check_target(self, session: Session) -> tuple[str | None, Screen | None]:
        """Query step: ``(refusal reason or None, parsed screen)``."""
        if session.agent is AgentKind.OPENCODE:
            return "opencode sessions are answered through the opencode server", None
        if session.status is SessionStatus.ENDED or session.pid is None:
            return "the agent is no longer running, so nothing was typed", None
        ref = session.pane
        if ref is None:
            return ("no terminal pane is known for this session; deck-tray can only type into agents "
                    "running inside tmux, zellij, GNU screen, or a kitty (with remote control on), WezTerm "
                    "or Konsole window"), None
        await self.mux.ensure_ready()
        unusable = self.mux.reason_for(ref)
        if unusable is not None:
            return f"{unusable}, so nothing was typed", None
        pane = await self.mux.pane(ref)
        if pane is None:
            return f"pane {ref.pane_id} ({ref.label or ref.server}) no longer exists", None
        if pane.dead:
            return f"the process in pane {ref.pane_id} has exited", None
        if not procs.is_alive(session.pid):
            return f"the agent (pid {session.pid}) has exited", None
        if not pid_under_pane(session.pid, pane):
            return f"the agent (pid {session.pid}) no longer runs in pane {ref.pane_id}", None
        if is_shell(pane.command):
            return f"pane {ref.pane_id} shows a shell ({pane.command}), not the agent", None
        if pane.foreground_pgid and (procs.tty_facts(session.pid) or _NO_TTY).pgrp != pane.foreground_pgid:
            return (f"the agent (pid {session.pid}) is not the program in the foreground of {ref.multiplexer} "
                    f"{ref.label or ref.pane_id} ({pane.command or 'another program'} is)"), None
        try:
            text = await self.mux.capture(ref)
        except ScreenUnreadableError as exc:
            if session.status in (SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION):
                return f"{exc}; the agent waits on a menu, so answer it in the terminal", None
            log.info("typing without reading the screen: %s", exc)
            return None, Screen(ScreenKind.UNKNOWN)
        screen = read_screen(session.agent, text)
        if screen.draft:
            # Agents show dim placeholders and suggestions in their input line; only text in
            # normal colours is something the user typed there.
            styled = await self.mux.capture_styled(ref)
            if input_line_is_dim(styled):
                screen = replace(screen, draft="")
        return None, screen

    async def _dispatch(self, session: Session, reply: Reply) -> DeliveryReport:
        why, screen = await self.check_target(session)
        if why is not None or screen is None:
            return self._refuse(reply, why or "the pane could not be read")
        shown_at: float | None = None
        if session.status in _MENU_STATES and screen.kind not in _MENU_SCREENS:
            # The agent says it waits on a menu its screen does not show yet: Claude Code 2.1.332
            # writes "waiting" (and the transcript its tool call) before it draws the dialog.
            deadline = time.monotonic() + MENU_APPEAR_S
            while screen.kind not in _MENU_SCREENS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                why, screen = await self.check_target(session)
                if why is not None or screen is None:
                    return self._refuse(reply, why or "the pane could not be read")
            if screen.kind in _MENU_SCREENS:
                shown_at = time.time()
        try:
            steps = plan(session.agent, reply, screen, session.pending)
        except PlanError as exc:
            return self._refuse(reply, str(exc))
        settle = _menu_settle_left(session, screen, shown_at)
        if settle > 0:
            # A brand-new Claude menu: wait until it takes keys, then query again (state-first).
            log.info("waiting %.2f s for Claude's new %s menu to take keys", settle, screen.kind.value)
            await asyncio.sleep(settle)
            why, screen = await self.check_target(session)
            if why is not None or screen is None:
                return self._refuse(reply, why or "the pane could not be read")
            try:
                steps = plan(session.agent, reply, screen, session.pending)
            except PlanError as exc:
                return self._refuse(reply, str(exc))
        ref = session.pane
        assert ref is not None
        log.info("sending %s to %s (%s)", reply.describe(), session.id[:8], ref)
        started = time.time()
        state = DeliveryState.REFUSED
        for i, step in enumerate(steps):
            try:
                await self._run(step, session)
            except (MuxError, TimeoutError) as exc:
                if state is DeliveryState.REFUSED and not isinstance(exc, PartialSendError):
                    return self._refuse(reply, f"could not type into the pane: {exc}")
                return DeliveryReport(
                    DeliveryState.UNKNOWN,
                    f"part of the answer reached the pane, then this failed: {exc}. Check the pane; "
                    "deck-tray does not send it again.",
                    reply.text,
                )
            if step.sends_text:
                state = DeliveryState.SUBMITTED if _is_submit(steps, i) else DeliveryState.SENT
        if state is not DeliveryState.SUBMITTED:
            state = DeliveryState.SENT
        accepted = await self._verify(session, reply, screen, started)
        if accepted:
            return DeliveryReport(DeliveryState.ACCEPTED, "the agent took the answer", reply.text)
        return DeliveryReport(
            DeliveryState.SUBMITTED,
            "typed and submitted; the agent has not shown that it took it yet",
            reply.text,
        )

    async def _run(self, step: Step, session: Session) -> None:
        ref = session.pane
        assert ref is not None
        if step.kind is StepKind.LITERAL:
            await self.mux.send_literal(ref, step.value)
        elif step.kind is StepKind.PASTE:
            await self.mux.paste(ref, step.value)
        elif step.kind is StepKind.KEY:
            await self.mux.send_key(ref, step.value)
        elif step.kind is StepKind.PAUSE:
            await asyncio.sleep(float(step.value))
        elif step.kind is StepKind.WAIT_SCREEN:
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline:
                if screen_matches(read_screen(session.agent, await self.mux.capture(ref)), step.value):
                    return
                await asyncio.sleep(0.1)
            what = "text field" if step.value == FREE_TEXT else f"{step.value} prompt"
            raise TimeoutError(f"the agent did not show its {what} within 15 s")

    async def _verify(self, session: Session, reply: Reply, before: Screen, started: float) -> bool:
        ref = session.pane
        assert ref is not None
        text = sanitize(reply.text)
        deadline = time.monotonic() + self.accept_timeout
        first_line = text.strip().split("\n", 1)[0].strip()
        enter_again_at = time.monotonic() + ENTER_AGAIN_S if reply.kind is ReplyKind.PROMPT and first_line else None
        while time.monotonic() < deadline:
            try:
                screen = read_screen(session.agent, await self.mux.capture(ref))
            except MuxError:
                return False
            if enter_again_at is not None and time.monotonic() >= enter_again_at:
                enter_again_at = None
                if screen.kind is ScreenKind.IDLE and len(screen.draft) >= 4 and \
                        first_line.startswith(screen.draft.strip()[:40]):
                    # Our text still sits in the input line: the Enter was lost (Gemini CLI
                    # 0.61.0 drops one while it is still initializing). Pressing it again submits
                    # what is there; nothing can be sent twice.
                    log.info("the agent's input line still holds the text after Enter; pressing Enter again")
                    await self.mux.send_key(ref, "Enter")
            menu_before = before.kind in (ScreenKind.PERMISSION, ScreenKind.QUESTION)
            if menu_before and screen.kind not in (ScreenKind.PERMISSION, ScreenKind.QUESTION):
                if reply.kind is not ReplyKind.DENY or not text:
                    return True
            if self.probe is not None:
                fresh = await self.probe(session.id)
                if fresh is not None:
                    if reply.kind in (ReplyKind.PROMPT, ReplyKind.DENY) and text and any(
                        m.role is MessageRole.USER and unwrap_pastes(m.text).strip() == text.strip()
                        and m.timestamp >= started - 2
                        for m in fresh.messages[-20:]
                    ):
                        return True
                    if reply.kind is not ReplyKind.PROMPT and not fresh.status.is_waiting:
                        if reply.kind is not ReplyKind.DENY or not text:
                            return True
            if reply.kind is ReplyKind.PROMPT and screen.kind is ScreenKind.BUSY and not menu_before:
                return True
            await asyncio.sleep(0.25)
        return False


def _menu_settle_left(session: Session, screen: Screen, shown_at: float | None = None,
                      now: float | None = None) -> float:
    """Seconds to wait before pressing a key in Claude Code's menu on ``screen``: what is left of
    :data:`MENU_SETTLE_S` since the menu was seen appearing (``shown_at``, POSIX seconds), else
    since the session was last seen changing (``updated_at``: the status file's or the
    transcript's time of the request); 0 for other agents and screens."""
    if session.agent is not AgentKind.CLAUDE_CODE or screen.kind not in _MENU_SCREENS:
        return 0.0
    since = shown_at if shown_at is not None else session.updated_at
    age = (time.time() if now is None else now) - since
    return min(MENU_SETTLE_S, max(0.0, MENU_SETTLE_S - age))


def _is_submit(steps: list[Step], i: int) -> bool:
    """True if step ``i`` is the last key of the plan (the final Enter or menu key)."""
    return all(not s.sends_text for s in steps[i + 1:])
