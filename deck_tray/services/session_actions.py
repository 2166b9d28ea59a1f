"""What a user can do to a session besides answering it, each with a typed result (issue #17
item 3: these lived in ``DeckTrayApp``; the app now only routes a tab's request here and shows
the result).

=================  ==========================================================================
action             what happens
=================  ==========================================================================
``resume``         a past or ended Claude Code / Codex session continues in a new tmux pane
                   (:func:`~deck_tray.services.terminal_actions.resume_in_terminal`); the
                   registry is rescanned until it lists the session live with its pane
``open_terminal``  an opencode session opens in a new tmux pane (``opencode attach``)
``handoff``        an opencode session continues in a fresh one from a summary
``show_terminal``  the window of the terminal the agent runs in is raised (X11 + EWMH,
                   :func:`~deck_tray.services.window_raise.show_terminal`); for sessions
                   deck-tray cannot type into (issue #13)
``end``            the agent exits the way it would by hand (Claude Code ``/exit``, Codex
                   ``/quit``, a running turn interrupted with Esc first), state-first; a
                   pane deck-tray opened for it closes with it, the user's own pane stays;
                   opencode: the running turn is aborted (the server keeps the session)
``rename``         the session gets the user's own name in deck-tray (``arg``)
``dismiss``        an ended session leaves the list (it stays in the history)
=================  ==========================================================================

Starting a session (issue #15) is :meth:`SessionActions.new_session`: an optional git worktree
(:mod:`deck_tray.services.worktree`), then the agent in tmux (:mod:`deck_tray.services.launcher`),
then rescans until the registry lists the session in the new pane (:meth:`session_in_pane`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings

from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, PaneRef, Session, SessionStatus
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.launcher import Launcher, LaunchReport, NewSession
from deck_tray.services.monitor import Monitor
from deck_tray.services.opencode_client import OpencodeError
from deck_tray.services.opencode_source import OpencodeSource
from deck_tray.services.opencode_warm import WarmServers
from deck_tray.services.panes import Multiplexer
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.terminal_actions import open_session_in_terminal, resume_in_terminal, tmux_of
from deck_tray.services.window_raise import RaiseResult, show_terminal
from deck_tray.services.worktree import WorktreeState

log = logging.getLogger(__name__)

#: The actions :meth:`SessionActions.run` knows.
ACTIONS = ("resume", "open_terminal", "handoff", "show_terminal", "end", "rename", "dismiss")
#: What each agent exits with when typed at its prompt (Claude Code 2.1.197, Codex 0.169.0;
#: tests/e2e/harness.py uses the same).
EXIT_COMMANDS = {AgentKind.CLAUDE_CODE: "/exit", AgentKind.CODEX: "/quit"}
#: Seconds an agent may take to exit after its exit command.
EXIT_TIMEOUT_S = 15.0
#: Seconds between rescans while a resumed session is not yet listed with its process and pane.
RESUME_RESCANS_S = (0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)


@dataclass(frozen=True)
class ActionResult:
    """How an action went.

    Attributes:
        report: ``ACCEPTED`` with what happened, or ``REFUSED`` with why (and what to do); its
            ``detail`` is shown in the session's tab.
        new_session: the id of a session the action started (a hand-off), to open in a tab.
        as_delivery: show it where answers are reported (the opencode actions) rather than as
            an action note.
    """

    report: DeliveryReport
    new_session: str = ""
    as_delivery: bool = False


def handed_off(new_id: str, automatic: bool = False) -> DeliveryReport:
    """The report of a hand-off to session ``new_id`` (``automatic``: the context was nearly full)."""
    why = "context nearly full: " if automatic else ""
    return DeliveryReport(DeliveryState.ACCEPTED, f"{why}handed off to a new session ({new_id})")


class SessionActions:
    """Runs the session actions (:data:`ACTIONS`).

    Args:
        registry: the sessions (to see a resumed session listed).
        mux: the multiplexers (tmux opens the new panes).
        monitor: rescanned after a resume until the session is listed live.
        opencode: hand-offs and ``opencode attach``.
        raise_window: shows a process's terminal window (``(pid) -> RaiseResult``; the real one
            by default, a fake in tests).
        dispatcher: types a new session's first prompt (None: new sessions are refused).
        warm: the opencode servers deck-tray starts for new opencode sessions (None: those are refused).
    """

    def __init__(self, registry: SessionRegistry, mux: Multiplexer, monitor: Monitor, opencode: OpencodeSource,
                 raise_window: Callable[[int], Awaitable[RaiseResult]] | None = None,
                 dispatcher: Dispatcher | None = None, warm: WarmServers | None = None) -> None:
        self.registry = registry
        self.mux = mux
        self.monitor = monitor
        self.opencode = opencode
        self._raise = raise_window or show_terminal
        self._tasks: set[asyncio.Task[None]] = set()
        self.warm = warm
        tmux = tmux_of(mux)
        self.launcher = Launcher(tmux, dispatcher, find_in_pane=self._listed_in_pane) \
            if tmux is not None and dispatcher is not None else None

    async def run(self, session: Session, action: str, arg: str = "") -> ActionResult:
        """Run ``action`` on ``session`` (``arg``: the hand-off goal); never raises for the
        action's own failures (they are a ``REFUSED`` report)."""
        if action == "resume":
            return ActionResult(await self.resume(session))
        if action == "open_terminal":
            report = await open_session_in_terminal(self.mux, session, self.opencode.binary_for(session.server))
            return ActionResult(report, as_delivery=True)
        if action == "handoff":
            return await self.handoff(session, arg)
        if action == "show_terminal":
            return ActionResult(await self.show_terminal(session))
        if action == "end":
            return ActionResult(await self.end(session))
        if action == "rename":
            self.registry.set_label(session.id, arg)
            return ActionResult(DeliveryReport(DeliveryState.ACCEPTED, f"renamed to “{arg.strip()}”" if arg.strip()
                                               else "the agent's own title is shown again"))
        if action == "dismiss":
            if self.registry.dismiss(session.id):
                return ActionResult(DeliveryReport(DeliveryState.ACCEPTED, "removed from the list (still in the "
                                                                            "history)"))
            return ActionResult(DeliveryReport(DeliveryState.REFUSED, "only ended sessions can be removed from the "
                                                                       "list"))
        return ActionResult(DeliveryReport(DeliveryState.REFUSED, f"unknown action {action!r}"))

    async def resume(self, session: Session) -> DeliveryReport:
        """Resume a past or ended session in a new tmux pane; the registry then lists it live
        under the same id (both agents keep it), and its tab follows. Returns as soon as the
        pane runs; the rescans that list the session go on in the background."""
        report = await resume_in_terminal(self.mux, session)
        if report.delivered:
            task = asyncio.ensure_future(self._until_listed_live(session.id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return report

    async def _until_listed_live(self, session_id: str) -> None:
        # The agent takes a moment to open its files (Codex in daemon mode writes nothing
        # until the first prompt, so no file event comes): rescan the process table until the
        # session is listed with its process, instead of waiting for the next full scan.
        for delay in RESUME_RESCANS_S:
            await asyncio.sleep(delay)
            await self.monitor.refresh_now(incremental=False)
            listed = self.registry.get(session_id)
            if listed is not None and listed.pid is not None and listed.pane is not None:
                return

    async def handoff(self, session: Session, goal: str) -> ActionResult:
        """Continue an opencode session in a new one from a summary (``goal`` optional)."""
        try:
            new_id = await self.opencode.handoff(session, goal)
        except OpencodeError as exc:
            return ActionResult(DeliveryReport(DeliveryState.REFUSED, f"hand-off failed: {exc}", goal),
                                as_delivery=True)
        return ActionResult(handed_off(new_id), new_session=new_id, as_delivery=True)

    async def show_terminal(self, session: Session) -> DeliveryReport:
        """Raise the window of the terminal ``session``'s agent runs in."""
        if session.pid is None:
            return DeliveryReport(DeliveryState.REFUSED, "deck-tray knows no process for this session, so it "
                                                         "cannot find its terminal window")
        result = await self._raise(session.pid)  # it logs what it did
        return DeliveryReport(DeliveryState.ACCEPTED if result.ok else DeliveryState.REFUSED, result.detail)

    async def end(self, session: Session) -> DeliveryReport:
        """End ``session`` (see the module table). State-first: the target is checked right before
        anything is typed; a busy or waiting agent is interrupted (Esc) and seen idle first; the
        exit command goes through the dispatcher; the agent's process is then seen gone."""
        import dataclasses

        from deck_tray.core import procs
        from deck_tray.core.reply import Reply, ReplyKind
        from deck_tray.core.screens import ScreenKind

        if session.agent is AgentKind.OPENCODE:
            report = await self.opencode.answer(session, Reply(ReplyKind.STOP))
            return dataclasses.replace(report, detail="the running turn was stopped; opencode keeps the session "
                                                      "on its server" if report.delivered else report.detail)
        if session.status is SessionStatus.ENDED:
            return DeliveryReport(DeliveryState.REFUSED, "the session has already ended")
        dispatcher = self.launcher.dispatcher if self.launcher is not None else None
        if dispatcher is None or session.pane is None or session.pid is None:
            return DeliveryReport(DeliveryState.REFUSED, f"deck-tray cannot type into this agent's terminal; end it "
                                                         f"there with {EXIT_COMMANDS[session.agent]}")
        why, screen = await dispatcher.check_target(session)
        if why is not None or screen is None:
            return DeliveryReport(DeliveryState.REFUSED, f"nothing was typed: {why or 'the pane cannot be read'}")
        loop = asyncio.get_running_loop()
        if screen.kind is not ScreenKind.IDLE:
            await self.mux.send_key(session.pane, "Escape")
            deadline = loop.time() + 10.0
            while True:
                why, screen = await dispatcher.check_target(session)
                if why is not None or screen is None:
                    return DeliveryReport(DeliveryState.REFUSED, f"after Esc: {why or 'the pane cannot be read'}")
                if screen.kind is ScreenKind.IDLE:
                    break
                if loop.time() > deadline:
                    return DeliveryReport(DeliveryState.REFUSED, "the agent did not come back to its prompt after "
                                                                 "Esc; end it in its terminal")
                await asyncio.sleep(0.2)
        command = EXIT_COMMANDS[session.agent]
        idle = dataclasses.replace(session, status=SessionStatus.IDLE, pending=None)
        sent = await dispatcher.dispatch(idle, Reply(ReplyKind.PROMPT, command))
        if sent.state is DeliveryState.REFUSED:
            return DeliveryReport(DeliveryState.REFUSED, f"{command} was not typed: {sent.detail}")
        deadline = loop.time() + EXIT_TIMEOUT_S
        while procs.is_alive(session.pid):
            if loop.time() > deadline:
                return DeliveryReport(DeliveryState.UNKNOWN, f"{command} was typed, but the agent still runs after "
                                                             f"{EXIT_TIMEOUT_S:.0f} s; look at {session.pane.location}")
            await asyncio.sleep(0.2)
        await self.monitor.refresh_now(incremental=False)
        pane = await self.mux.pane(session.pane)
        where = "its pane closed with it" if pane is None or pane.dead else f"{session.pane.location} stays open"
        return DeliveryReport(DeliveryState.ACCEPTED, f"{session.agent.label} exited ({command}); {where}")

    async def new_session(self, req: NewSession, worktree: str = "", worktree_root: str = "",
                          env: dict[str, str] | None = None) -> LaunchReport:
        """Start ``req`` (in a new git worktree for branch ``worktree`` when given, at the place
        :func:`~deck_tray.core.worktree.worktree_path` gives for ``worktree_root``) with the
        environment ``env`` (default: the app's); the report says where it runs, or why nothing
        was started. Never raises for the start's own failures."""
        import dataclasses

        if self.launcher is None:
            return LaunchReport(False, "Nothing was started: tmux support is not set up (tmux is not installed).")
        made = ""
        if worktree:
            from deck_tray.services.worktree import add_worktree

            result = await add_worktree(req.folder, worktree, worktree_root)
            if not result.ok:
                return LaunchReport(False, f"Nothing was started: {result.detail}")
            req = dataclasses.replace(req, folder=result.path)
            made = result.detail + " "
        report = await self.launcher.start(req, env, warm=self.warm)
        return dataclasses.replace(report, detail=made + report.detail) if made else report

    async def new_from_message(self, msg: dict[str, Any], worktree_root: str = "") -> dict[str, Any]:
        """The socket's ``{"op": "new", ...}`` (see :mod:`deck_tray.services.ipc`): start it and
        answer ``{"ok", "detail", "pane", "session_id", "server", "prompt"}`` or ``{"error"}``."""
        from deck_tray.core.launch import agent_from_name

        try:
            agent = agent_from_name(str(msg.get("agent", "")))
        except ValueError as exc:
            return {"error": str(exc)}
        env, args = msg.get("env"), msg.get("args", [])
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            return {"error": "new needs the environment as an object of strings"}
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return {"error": "args must be a list of strings"}
        folder = msg.get("folder")
        if not isinstance(folder, str) or not folder:
            return {"error": "new needs a folder"}
        req = NewSession(agent, folder, str(msg.get("prompt") or ""), str(msg.get("name") or ""), tuple(args),
                         msg.get("trust") is True)
        report = await self.new_session(req, str(msg.get("worktree") or ""), worktree_root, env)
        return {"ok": report.ok, "detail": report.detail, "pane": str(report.pane) if report.pane else None,
                "session_id": report.session_id, "server": report.server,
                "prompt": report.prompt.state.value if report.prompt else None}

    async def start_and_find(self, req: NewSession, worktree: str = "", worktree_root: str = "",
                             env: dict[str, str] | None = None) -> tuple[LaunchReport, Session | None]:
        """:meth:`new_session`, then the session once the registry lists it (opencode: by its id,
        from the server's events; the others: by the new pane), or None (not listed within 30 s,
        or the agent waits on its folder-trust menu)."""
        report = await self.new_session(req, worktree, worktree_root, env)
        return report, await self._find_started(report)

    async def trust_and_find(self, req: NewSession, report: LaunchReport) -> tuple[LaunchReport, Session | None]:
        """Answer the folder-trust menu a start stopped at, go on, and find the session."""
        if self.launcher is None:
            return report, None
        report = await self.launcher.trust_and_continue(req, report)
        return report, await self._find_started(report)

    async def _find_started(self, report: LaunchReport) -> Session | None:
        if not report.ok or report.pane is None or report.waiting:
            return None
        if report.session_id:
            return self.registry.get(report.session_id) if await self.wait_listed(report.session_id, 30.0) else None
        return await self.session_in_pane(report.pane)

    def load_names(self, settings: QSettings) -> None:
        """The user's session names and dismissed sessions (``sessions/labels``, ``sessions/dismissed``:
        JSON in the settings file) into the registry; unreadable values are logged and skipped."""
        import json

        try:
            labels = json.loads(str(settings.value("sessions/labels", "{}")))
            dismissed = json.loads(str(settings.value("sessions/dismissed", "[]")))
        except ValueError:
            log.warning("the saved session names could not be read; starting without them")
            return
        if isinstance(labels, dict):
            self.registry.labels.update({str(k): str(v) for k, v in labels.items()})
        if isinstance(dismissed, list):
            self.registry.dismissed.update(str(x) for x in dismissed[-2000:])

    def save_names(self, settings: QSettings) -> None:
        """Store the registry's names and dismissed sessions (see :meth:`load_names`)."""
        import json

        settings.setValue("sessions/labels", json.dumps(self.registry.labels))
        settings.setValue("sessions/dismissed", json.dumps(sorted(self.registry.dismissed)))

    async def worktree_left(self, session: Session) -> WorktreeState | None:
        """After ``session`` ended: the linked git worktree it ran in (None: not in one)."""
        from deck_tray.services.worktree import worktree_status

        state = await worktree_status(session.cwd)
        return state if state.linked else None

    async def _listed_in_pane(self, pane: PaneRef) -> Session | None:
        await self.monitor.refresh_now(incremental=True)
        return next((s for s in self.registry.sessions() if s.pane is not None and s.pane.pane_id == pane.pane_id
                     and s.pane.server == pane.server), None)

    async def session_in_pane(self, pane: PaneRef, timeout: float = 30.0) -> Session | None:
        """Rescan until the registry lists a live session in ``pane`` (a started agent is listed
        once it wrote its status file or first record); None after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delays = iter(RESUME_RESCANS_S)
        while True:
            for s in self.registry.sessions():
                if s.pane is not None and s.pane.pane_id == pane.pane_id and s.pane.server == pane.server:
                    return s
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(next(delays, 1.0))
            await self.monitor.refresh_now(incremental=False)

    def cancel(self) -> None:
        """Stop the background rescans of resumed sessions (the app is quitting)."""
        for t in list(self._tasks):
            t.cancel()

    async def wait_listed(self, session_id: str, timeout: float = 15.0) -> bool:
        """Wait until the registry lists ``session_id`` (a new session arrives over SSE)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.registry.get(session_id) is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return self.registry.get(session_id) is not None
