"""What a user does to a session — answer it, act on it, start one — run in the background,
each with a typed result that comes back as a signal (issue #17 item 3: these lived in
``DeckTrayApp``; the app only connects the window's requests here and these signals to the
window).

Answers (:meth:`SessionActions.send_reply`) go through the
:class:`~deck_tray.services.dispatcher.Dispatcher` and come back as a
:class:`~deck_tray.core.model.DeliveryReport` on :attr:`SessionActions.delivered`. The other
actions (:meth:`SessionActions.request`) come back as an
:class:`~deck_tray.core.model.ActionReport` on :attr:`SessionActions.acted`, except a hand-off,
which consumes the text typed as its goal and so is reported like an answer:

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
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal

from deck_tray.core.agents import ADAPTERS
from deck_tray.core.model import ActionReport, AgentKind, DeliveryReport, DeliveryState, PaneRef, Session, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
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
EXIT_COMMANDS = {AgentKind.CLAUDE_CODE: "/exit", AgentKind.CODEX: "/quit",
                 **{a.kind: a.exit_command() for a in ADAPTERS if a.exit_command()}}
#: Seconds an agent may take to exit after its exit command.
EXIT_TIMEOUT_S = 15.0
#: Seconds between rescans while a resumed session is not yet listed with its process and pane.
RESUME_RESCANS_S = (0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)


@dataclass(frozen=True)
class ActionResult:
    """How an action went.

    Attributes:
        report: what happened, or why not (and what to do); its ``detail`` is shown in the
            session's tab. A :class:`DeliveryReport` for a hand-off (it consumed the typed goal,
            which a refusal keeps), an :class:`ActionReport` for every other action.
        new_session: the id of a session the action started (a hand-off), to open in a tab.
    """

    report: ActionReport | DeliveryReport
    new_session: str = ""


@dataclass(frozen=True)
class Notice:
    """A sentence for the window's notice bar, with an optional button.

    Attributes:
        text: the sentence.
        button: the button's label (``""``: no button).
        on_click: what the button does (the notice goes when clicked).
        raise_window: show and raise the window with it (the user asked for what it is about).
    """

    text: str
    button: str = ""
    on_click: Callable[[], object] | None = None
    raise_window: bool = False


def handed_off(new_id: str, automatic: bool = False) -> DeliveryReport:
    """The report of a hand-off to session ``new_id`` (``automatic``: the context was nearly full)."""
    why = "context nearly full: " if automatic else ""
    return DeliveryReport(DeliveryState.ACCEPTED, f"{why}handed off to a new session ({new_id})")


class SessionActions(QObject):
    """Runs what a user asks of a session in the background and reports back by signal.

    Signals:
        delivered(str, DeliveryReport): session id, how an answer (or a hand-off) went.
        acted(str, ActionReport): session id, how an action of :data:`ACTIONS` went.
        notice(Notice): something to say outside a tab (a worktree to remove, a folder to
            trust, a password kept only for this run, where a started agent runs).
        open_requested(str): a session to open in a tab (a hand-off's new session, a started one).
        start_result(bool, str): how a start from the "New session" dialog went (ok, detail).

    Args:
        registry: the sessions (to see a resumed session listed).
        mux: the multiplexers (tmux opens the new panes).
        monitor: rescanned after a resume until the session is listed live.
        opencode: hand-offs and ``opencode attach``.
        raise_window: shows a process's terminal window (``(pid) -> RaiseResult``; the real one
            by default, a fake in tests).
        dispatcher: types a new session's first prompt (None: new sessions are refused).
        warm: the opencode servers deck-tray starts for new opencode sessions (None: those are refused).
        settings: where the user's session names are kept (:meth:`load_names`; None: not kept).
        worktree_root: the folder new git worktrees go under (the ``sessions/worktree_root``
            setting, read at each start).

    Attributes:
        past_session: finds a session that is not in the registry by id (a past one opened
            from the history keeps its own copy in its tab); None when unknown.
    """

    delivered = Signal(str, object)
    acted = Signal(str, object)
    notice = Signal(object)
    open_requested = Signal(str)
    start_result = Signal(bool, str)

    def __init__(self, registry: SessionRegistry, mux: Multiplexer, monitor: Monitor, opencode: OpencodeSource,
                 raise_window: Callable[[int], Awaitable[RaiseResult]] | None = None,
                 dispatcher: Dispatcher | None = None, warm: WarmServers | None = None,
                 settings: QSettings | None = None, worktree_root: Callable[[], str] = str) -> None:
        super().__init__()
        self.registry = registry
        self.mux = mux
        self.monitor = monitor
        self.opencode = opencode
        self._raise = raise_window or show_terminal
        self._tasks: set[asyncio.Task[Any]] = set()
        self.warm = warm
        self.dispatcher = dispatcher
        self.settings = settings
        self.worktree_root = worktree_root
        self.past_session: Callable[[str], Session | None] = lambda _id: None
        if settings is not None:
            self.load_names(settings)
        tmux = tmux_of(mux)
        self.launcher = Launcher(tmux, dispatcher, find_in_pane=self._listed_in_pane) \
            if tmux is not None and dispatcher is not None else None

    # -- requests from the window, the notifications and the socket ---------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; it is cancelled by :meth:`stop` (the app quits)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def busy(self) -> bool:
        """True while anything started here still runs (an answer, an action, a rescan)."""
        return bool(self._tasks)

    def send_reply(self, session_id: str, reply: Reply) -> asyncio.Task[DeliveryReport]:
        """Answer ``session_id`` with ``reply`` in the background; the outcome comes as
        :attr:`delivered` (and is the task's result)."""
        return self.spawn(self.send(session_id, reply))

    def notification_action(self, session_id: str, action: str) -> None:
        """A notification's action (:attr:`Notifier.action_invoked
        <deck_tray.services.notifier.Notifier.action_invoked>`): ``"allow"`` / ``"deny"`` answer the
        session (:meth:`send_reply`); ``"open"`` answers nothing (the window opens the tab)."""
        if action in ("allow", "deny"):
            self.send_reply(session_id, Reply(ReplyKind.ALLOW if action == "allow" else ReplyKind.DENY))

    async def send(self, session_id: str, reply: Reply) -> DeliveryReport:
        """Answer ``session_id`` with ``reply`` now (the dispatcher's target checks and delivery
        verification); emits :attr:`delivered` and rescans, then returns the report. A session
        the registry no longer knows is refused."""
        session = self.registry.get(session_id)
        if session is None:
            report = DeliveryReport(DeliveryState.REFUSED, "the session is no longer known", reply.text)
        elif self.dispatcher is None:
            report = DeliveryReport(DeliveryState.REFUSED, "answers are not set up in this process", reply.text)
        else:
            report = await self.dispatcher.dispatch(session, reply)
        self.delivered.emit(session_id, report)
        self.monitor.refresh()
        return report

    def request(self, session_id: str, action: str, arg: str = "") -> None:
        """Run ``action`` (:data:`ACTIONS`) on ``session_id`` in the background (a tab's menu or
        button); the outcome comes as :attr:`acted` (or :attr:`delivered` for a hand-off), a
        hand-off's new session as :attr:`open_requested`, and after an agent ended in a linked git
        worktree without uncommitted changes, a :class:`Notice` offering to remove it."""
        session = self.registry.get(session_id) or self.past_session(session_id)
        if session is None:
            self.acted.emit(session_id, ActionReport(False, "the session is gone"))
            return
        self.spawn(self._run_requested(session, action, arg))

    async def _run_requested(self, session: Session, action: str, arg: str) -> None:
        result = await self.run(session, action, arg)
        if isinstance(result.report, DeliveryReport):
            self.delivered.emit(session.id, result.report)
        else:
            self.acted.emit(session.id, result.report)
            if action == "end" and result.report.ok and session.agent is not AgentKind.OPENCODE:
                await self._offer_worktree_removal(session)
        if result.new_session:
            self._open_when_listed(result.new_session)

    async def _offer_worktree_removal(self, session: Session) -> None:
        """After a session in a linked git worktree ended: offer to remove the worktree (never
        when it has uncommitted changes; then say why it stays)."""
        from deck_tray.services.worktree import remove_worktree

        state = await self.worktree_left(session)
        if state is None:
            return
        if state.dirty:
            self.acted.emit(session.id, ActionReport(True, f"the worktree {state.path} stays: it has uncommitted "
                                                           "changes"))
            return

        async def remove() -> None:
            result = await remove_worktree(state.path)
            self.acted.emit(session.id, ActionReport(result.ok, result.detail))

        self.notice.emit(Notice(f"“{session.display_title}” ended. Its git worktree {state.path} (branch "
                                f"{state.branch or '?'}) has no uncommitted changes.", "Remove worktree",
                                lambda: self.spawn(remove())))

    def source_handed_off(self, old_id: str, new_id: str, automatic: bool) -> None:
        """The opencode source handed a full session off by itself (its ``handed_off`` signal):
        say so in the old session's tab and open the new one once it is listed."""
        self.delivered.emit(old_id, handed_off(new_id, automatic))
        self._open_when_listed(new_id)

    def _open_when_listed(self, session_id: str) -> None:
        async def when_listed() -> None:
            if await self.wait_listed(session_id):
                self.open_requested.emit(session_id)

        self.spawn(when_listed())

    def store_password(self, url: str, password: str) -> None:
        """Keep the password the user typed for the opencode server at ``url`` (the keyring when
        it works) and reconnect; when it is kept only until deck-tray quits, a :class:`Notice`
        says so and how to keep it. The password is never logged."""
        async def store() -> None:
            result = await self.opencode.set_password(url, password)
            if not result.persistent:
                self.notice.emit(Notice(result.detail))

        self.spawn(store())

    def start_requested(self, req: NewSession, worktree: str = "") -> None:
        """Start what the "New session" dialog asked for (in a new git worktree for branch
        ``worktree`` when given); :attr:`start_result` says how it went, then the session opens
        in a tab once listed, or a :class:`Notice` says where it runs or offers to trust its folder."""
        async def start() -> None:
            report, session = await self.start_and_find(req, worktree, self.worktree_root())
            self.start_result.emit(report.ok, report.detail)
            self._follow_started(req, report, session)

        self.spawn(start())

    def _follow_started(self, req: NewSession, report: LaunchReport, session: Session | None) -> None:
        if session is not None:
            self.open_requested.emit(session.id)
        elif report.waiting == "trust":
            async def trust() -> None:
                self._follow_started(req, *await self.trust_and_find(req, report))

            self.notice.emit(Notice(report.detail, "Trust and continue", lambda: self.spawn(trust()),
                                    raise_window=True))
        elif report.ok and report.pane is not None:
            self.notice.emit(Notice(
                f"{req.agent.label} runs in tmux pane {report.pane.label}; it is listed here once it writes "
                "its session (Codex: after the first prompt)."))

    # -- the actions ---------------------------------------------------------------------------

    async def run(self, session: Session, action: str, arg: str = "") -> ActionResult:
        """Run ``action`` on ``session`` (``arg``: the hand-off goal); never raises for the
        action's own failures (they are a ``REFUSED`` report)."""
        if action == "resume":
            return ActionResult(await self.resume(session))
        if action == "open_terminal":
            return ActionResult(await open_session_in_terminal(self.mux, session,
                                                               self.opencode.binary_for(session.server)))
        if action == "handoff":
            return await self.handoff(session, arg)
        if action == "show_terminal":
            return ActionResult(await self.show_terminal(session))
        if action == "end":
            return ActionResult(await self.end(session))
        if action == "rename":
            self.registry.set_label(session.id, arg)
            self._save_names()
            return ActionResult(ActionReport(True, f"renamed to “{arg.strip()}”" if arg.strip()
                                             else "the agent's own title is shown again"))
        if action == "dismiss":
            if self.registry.dismiss(session.id):
                self._save_names()
                return ActionResult(ActionReport(True, "removed from the list (still in the history)"))
            return ActionResult(ActionReport(False, "only ended sessions can be removed from the list"))
        return ActionResult(ActionReport(False, f"unknown action {action!r}"))

    async def resume(self, session: Session) -> ActionReport:
        """Resume a past or ended session in a new tmux pane; the registry then lists it live
        under the same id (both agents keep it), and its tab follows. Returns as soon as the
        pane runs; the rescans that list the session go on in the background."""
        report = await resume_in_terminal(self.mux, session)
        if report.ok:
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
            return ActionResult(DeliveryReport(DeliveryState.REFUSED, f"hand-off failed: {exc}", goal))
        return ActionResult(handed_off(new_id), new_session=new_id)

    async def show_terminal(self, session: Session) -> ActionReport:
        """Raise the window of the terminal ``session``'s agent runs in."""
        if session.pid is None:
            return ActionReport(False, "deck-tray knows no process for this session, so it cannot find its terminal "
                                       "window")
        result = await self._raise(session.pid)  # it logs what it did
        return ActionReport(result.ok, result.detail)

    async def end(self, session: Session) -> ActionReport:
        """End ``session`` (see the module table). State-first: the target is checked right before
        anything is typed; a busy or waiting agent is interrupted (Esc) and seen idle first; the
        exit command goes through the dispatcher; the agent's process is then seen gone."""
        import dataclasses

        from deck_tray.core import procs
        from deck_tray.core.screens import ScreenKind

        if session.agent is AgentKind.OPENCODE:
            report = await self.opencode.answer(session, Reply(ReplyKind.STOP))
            return ActionReport(True, "the running turn was stopped; opencode keeps the session on its server") \
                if report.delivered else ActionReport(False, report.detail)
        if session.status is SessionStatus.ENDED:
            return ActionReport(False, "the session has already ended")
        dispatcher = self.launcher.dispatcher if self.launcher is not None else None
        if dispatcher is None or session.pane is None or session.pid is None:
            return ActionReport(False, f"deck-tray cannot type into this agent's terminal; end it there with "
                                       f"{EXIT_COMMANDS[session.agent]}")
        why, screen = await dispatcher.check_target(session)
        if why is not None or screen is None:
            return ActionReport(False, f"nothing was typed: {why or 'the pane cannot be read'}")
        loop = asyncio.get_running_loop()
        if screen.kind is not ScreenKind.IDLE:
            await self.mux.send_key(session.pane, "Escape")
            deadline = loop.time() + 10.0
            while True:
                why, screen = await dispatcher.check_target(session)
                if why is not None or screen is None:
                    return ActionReport(False, f"after Esc: {why or 'the pane cannot be read'}")
                if screen.kind is ScreenKind.IDLE:
                    break
                if loop.time() > deadline:
                    return ActionReport(False, "the agent did not come back to its prompt after Esc; end it in its "
                                               "terminal")
                await asyncio.sleep(0.2)
        command = EXIT_COMMANDS[session.agent]
        idle = dataclasses.replace(session, status=SessionStatus.IDLE, pending=None)
        sent = await dispatcher.dispatch(idle, Reply(ReplyKind.PROMPT, command))
        if sent.state is DeliveryState.REFUSED:
            return ActionReport(False, f"{command} was not typed: {sent.detail}")
        deadline = loop.time() + EXIT_TIMEOUT_S
        while procs.is_alive(session.pid):
            if loop.time() > deadline:
                return ActionReport(False, f"{command} was typed, but the agent still runs after "
                                           f"{EXIT_TIMEOUT_S:.0f} s; look at {session.pane.location}")
            await asyncio.sleep(0.2)
        await self.monitor.refresh_now(incremental=False)
        pane = await self.mux.pane(session.pane)
        where = "its pane closed with it" if pane is None or pane.dead else f"{session.pane.location} stays open"
        return ActionReport(True, f"{session.agent.label} exited ({command}); {where}")

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

    def _save_names(self) -> None:
        if self.settings is not None:
            self.save_names(self.settings)

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

    async def stop(self, timeout: float = 1.5) -> None:
        """Cancel everything still running here (answers, actions, rescans; the app is quitting)
        and wait for it at most ``timeout`` seconds."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def wait_listed(self, session_id: str, timeout: float = 15.0) -> bool:
        """Wait until the registry lists ``session_id`` (a new session arrives over SSE)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.registry.get(session_id) is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return self.registry.get(session_id) is not None
