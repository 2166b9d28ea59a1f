"""Start an agent session in tmux (``deck-tray new``, the window's "New session"; issue #15).

State-first (DESIGN.md §7): *query* every tmux server (attached clients, sessions), *decide*
with the pure :func:`deck_tray.core.launch.decide`, *execute* one ``new-window`` (or
``new-session -d`` on the default socket, which starts the server when none runs), *verify*
that the pane stays up running the agent, tag it (tmux user option
:data:`~deck_tray.core.launch.PANE_TAG`), and only then report it. Starts are serialised: one
at a time.

The agent runs with the environment of the process that asked (``env``): it is written to a
``0600`` file in the user's runtime folder and read (then deleted) by ``deck-tray launch`` in
the pane, which ``exec``s the agent — so no variable (API keys included) is ever part of a
command line (``/proc/<pid>/cmdline`` is world-readable), and the pane's process *is* the agent.

The first prompt is typed through the :class:`~deck_tray.services.dispatcher.Dispatcher` (its
target checks, paste rules and verification) once the agent shows its input prompt — the
agent's own ready signal, read from its screen with :mod:`deck_tray.core.screens` (Claude Code
2.1.197: ``? for shortcuts``; Codex 0.169.0: its composer, after ``loading`` is gone). When
the agent first asks whether to trust the folder, that menu is answered only if the request
says so (``trust=True``); otherwise the report says the agent waits on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deck_tray.core.executables import find_agent
from deck_tray.core.launch import (
    AGENT_BINARIES,
    PANE_TAG,
    SESSION_NAME,
    LaunchPlan,
    TmuxSessionSpot,
    Where,
    agent_argv,
    decide,
    folder_error,
    launch_argv,
    window_name,
)
from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, PaneRef, Session, SessionStatus
from deck_tray.core.placement import command_line
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.screens import TRUST_TOOL, Screen, ScreenKind, input_line_is_dim, read_screen, trust_option
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.opencode_warm import WarmServers
from deck_tray.services.panes import MuxError, Tmux, socket_dir
from deck_tray.services.terminal import query, verify_started

log = logging.getLogger(__name__)

#: Size of a new detached session (tmux's default 80×24 is too small for the agents' menus).
DETACHED_SIZE = (160, 48)
#: Seconds an agent may take to show its input prompt after its pane started.
READY_TIMEOUT_S = 90.0
_POLL_S = 0.2
#: Codex 0.169.0 draws its composer while still "loading" (tests/e2e/harness.py CodexAgent).
_CODEX_LOADING = re.compile(r"^\s*loading\s*$", re.MULTILINE)


@dataclass(frozen=True)
class NewSession:
    """What the user asked to start.

    Attributes:
        agent: which agent.
        folder: where it runs (absolute path; must exist).
        prompt: the first prompt, typed once the agent is ready (``""``: none).
        name: the tmux window's name (``""``: ``<agent>: <folder name>``).
        args: extra arguments for the agent (after ``--`` on the command line).
        trust: answer the agent's folder-trust menu with "trust" if it shows one.
    """

    agent: AgentKind
    folder: str
    prompt: str = ""
    name: str = ""
    args: tuple[str, ...] = ()
    trust: bool = False


@dataclass(frozen=True)
class LaunchReport:
    """How a start went.

    Attributes:
        ok: the agent runs in a new pane.
        detail: what happened (and on failure what to do), for the user.
        pane: the new pane (None when nothing was opened).
        pid: the pane's process (the agent: ``deck-tray launch`` exec'd it).
        command: the command to run by hand (``cd DIR && AGENT ARGS``).
        ready_s: seconds from the start until the agent showed its input prompt (None: not seen).
        waiting: ``"trust"`` when the agent waits on its folder-trust menu, else ``""``.
        prompt: the first prompt's delivery (None when there was none or it was not sent).
        started_at: when the pane was opened (Unix seconds).
        session_id: the session's id when it is known at once (opencode: created through the
            server's API before the pane attaches to it), else ``""``.
        server: for opencode, the server's base URL.
    """

    ok: bool
    detail: str
    pane: PaneRef | None = None
    pid: int | None = None
    command: str = ""
    ready_s: float | None = None
    waiting: str = ""
    prompt: DeliveryReport | None = None
    started_at: float = field(default=0.0, compare=False)
    session_id: str = ""
    server: str = ""


def env_file_dir(env: Mapping[str, str] | None = None) -> Path:
    """The private folder the environment files go to: the one of the app's socket
    (:func:`deck_tray.services.ipc.socket_path`: ``$XDG_RUNTIME_DIR/deck-tray``, else the
    platformdirs runtime folder), made ``0700`` if needed.

    Raises:
        PermissionError: the folder belongs to another user.
    """
    from deck_tray.services.ipc import socket_path

    base = socket_path(env).parent
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = base.stat()
    if st.st_uid != os.getuid():
        raise PermissionError(f"{base} belongs to another user")
    if st.st_mode & 0o077:
        os.chmod(base, 0o700)
    return base


def write_env_file(env: Mapping[str, str], folder: Path) -> str:
    """Write ``env`` as JSON (``{"env": {...}}``) to a new ``0600`` file in ``folder``; its path."""
    fd, path = tempfile.mkstemp(prefix="launch-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"env": dict(env)}, fh)
    return path


#: Seconds a new pane's ``deck-tray launch`` gets to read its environment file before deck-tray
#: deletes the file itself: Python's start on a loaded machine takes seconds, and the file was
#: seen deleted before it was read (the pane's program then ran without its password).
ENV_FILE_WAIT_S = 20.0


async def wait_env_file_read(path: str, timeout_s: float = ENV_FILE_WAIT_S, poll_s: float = 0.1) -> bool:
    """Wait until the pane's ``deck-tray launch`` has read ``path`` (:func:`read_env_file` deletes
    it as it reads it); delete it when that did not happen within ``timeout_s`` seconds.

    Returns:
        True when it was read; False when deck-tray deleted it (the pane never read it).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while os.path.exists(path):
        if loop.time() >= deadline:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return True
            log.warning("a new pane did not read its environment file within %g s; deleted it", timeout_s)
            return False
        await asyncio.sleep(poll_s)
    return True


def read_env_file(path: str) -> dict[str, str]:
    """Read and delete an environment file written by :func:`write_env_file`.

    Raises:
        OSError: it is missing or unreadable. PermissionError: it is not this user's or others
            may read it. ValueError: it is not such a file.
    """
    st = os.stat(path)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{path} is not a private file of this user")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    os.unlink(path)
    env = data.get("env") if isinstance(data, dict) else None
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError(f"{path} does not hold an environment")
    return env


def _self_argv() -> list[str]:
    from deck_tray.services.terminal_actions import self_argv

    return self_argv()


class Launcher:
    """Starts agents in tmux, one at a time.

    Args:
        tmux: the tmux adapter (its ``env`` decides where servers are looked for).
        dispatcher: types the first prompt and answers the trust menu.
        ready_timeout: seconds to wait for the agent's input prompt.
        self_argv: how to run deck-tray's CLI in the pane (default: this interpreter or bundle).
        find_in_pane: a fresh look at the session running in a pane (None while none is
            listed there); the first prompt counts as taken once it shows in that session's
            conversation. Without it, only the agent's screen tells (slower: up to the
            dispatcher's accept timeout when the turn ends before the screen is read).
    """

    def __init__(self, tmux: Tmux, dispatcher: Dispatcher, *, ready_timeout: float = READY_TIMEOUT_S,
                 self_argv: Sequence[str] | None = None,
                 find_in_pane: Callable[[PaneRef], Awaitable[Session | None]] | None = None) -> None:
        self.tmux = tmux
        self.dispatcher = dispatcher
        self.find_in_pane = find_in_pane
        self.ready_timeout = ready_timeout
        self._self_argv = list(self_argv) if self_argv is not None else _self_argv()
        self._lock = asyncio.Lock()

    async def start(self, req: NewSession, env: Mapping[str, str] | None = None,
                    warm: WarmServers | None = None) -> LaunchReport:
        """Start ``req`` with the environment ``env`` (default: this process's).

        Returns:
            A report; refusals (folder missing, agent or tmux not found, tmux failed, the agent
            exited at once) are reports, never exceptions. ``ok`` means the agent runs; the
            first prompt's own delivery is in :attr:`LaunchReport.prompt`.
        """
        async with self._lock:
            return await self._start(req, dict(os.environ if env is None else env), warm)

    async def trust_and_continue(self, req: NewSession, report: LaunchReport) -> LaunchReport:
        """A start that stopped at the agent's folder-trust menu (``report.waiting == "trust"``):
        answer it with yes and go on (ready, first prompt) as :meth:`start` would have."""
        if report.pane is None:
            return _replace(report, ok=False, detail="nothing to continue: the start opened no pane")
        async with self._lock:
            return await self._until_ready(dataclasses.replace(req, trust=True),
                                           _replace(report, waiting="", detail=report.detail.split(" " + req.agent.label
                                                                                                 + " asks")[0]))

    async def _start(self, req: NewSession, env: dict[str, str], warm: WarmServers | None = None) -> LaunchReport:
        name = AGENT_BINARIES[req.agent]
        folder = os.path.abspath(os.path.expanduser(req.folder)) if req.folder else ""
        by_hand = command_line([name, *req.args], folder)
        why = folder_error(folder)
        if why is not None:
            return LaunchReport(False, f"Nothing was started: {why}.", command=by_hand)
        binary = find_agent(name, env)
        if binary is None:
            return LaunchReport(False, f"Nothing was started: {req.agent.label} ({name}) was not found on PATH. "
                                       f"Install it, or run it yourself: {by_hand}", command=by_hand)
        if self.tmux.binary is None:
            return LaunchReport(False, f"Nothing was started: tmux is not installed. Install tmux (deck-tray starts "
                                       f"agents in it), or run: {by_hand}", command=by_hand)
        if req.agent is AgentKind.OPENCODE:
            return await self._start_opencode(req, env, folder, binary, warm)
        argv = agent_argv(req.agent, binary, req.args)
        by_hand = command_line(argv, folder)

        report = await self._open_pane(req, argv, folder, env, by_hand)
        if not report.ok or report.pane is None:
            return report
        return await self._until_ready(req, report)

    async def _start_opencode(self, req: NewSession, env: dict[str, str], folder: str, binary: str,
                              warm: WarmServers | None) -> LaunchReport:
        """opencode: a server deck-tray owns for the folder (started when none runs, ``opencode
        serve`` on a free loopback port with a generated password), a session created through its
        API, ``deck-tray opencode-attach`` in the new pane (the password reaches it through the
        environment file, never argv), then the first prompt through the API."""
        from deck_tray.services.opencode_client import OpencodeClient, OpencodeError

        by_hand = command_line([binary, *req.args], folder)
        if warm is None:
            return LaunchReport(False, "Nothing was started: starting opencode sessions needs the running app "
                                       f"(it owns the opencode server). Start deck-tray, or run: {by_hand}",
                                command=by_hand)
        served = await warm.start(folder, binary)
        if not served.ok or not served.url:
            return LaunchReport(False, f"Nothing was started: {served.detail}", command=by_hand)
        url = served.url
        loop = asyncio.get_running_loop()
        password = await loop.run_in_executor(None, warm.credentials.lookup, url)
        user = warm.credentials.username()
        client = OpencodeClient(url, (user, password) if password else None)
        try:
            try:
                info = await client.create_session(req.name.strip(), folder)
            except OpencodeError as exc:
                return LaunchReport(False, f"Nothing was started: the opencode server {url} did not create a session "
                                           f"({exc}).", command=by_hand, server=url)
            sid = str(info.get("id") or "")
            attach = [*self._self_argv, "opencode-attach", url, sid, "--opencode-bin", binary]
            pane_env = dict(env)
            if password:
                pane_env.update(OPENCODE_SERVER_PASSWORD=password, OPENCODE_SERVER_USERNAME=user)
            report = await self._open_pane(req, attach, folder, pane_env, by_hand)
            how = "already served by deck-tray" if served.reused else f"started by deck-tray in {served.seconds:.1f} s"
            report = _replace(report, session_id=sid, server=url,
                              detail=report.detail.replace("Started opencode", f"Started opencode session {sid}", 1)
                              + f" Its server {url} was {how}." if report.ok else report.detail)
            if not report.ok or not req.prompt:
                return report
            try:
                await client.prompt(sid, req.prompt)
                sent = DeliveryReport(DeliveryState.ACCEPTED, "the opencode server took the prompt", req.prompt)
            except OpencodeError as exc:
                sent = DeliveryReport(DeliveryState.REFUSED, f"the opencode server refused the prompt: {exc}",
                                      req.prompt)
            detail = report.detail + (" The first prompt was sent." if sent.delivered else
                                      f" The first prompt was not sent: {sent.detail}")
            return _replace(report, prompt=sent, detail=detail, ready_s=time.time() - report.started_at)
        finally:
            await client.aclose()

    async def _open_pane(self, req: NewSession, argv: list[str], folder: str, env: Mapping[str, str],
                         by_hand: str) -> LaunchReport:
        """Query tmux, decide where (:func:`~deck_tray.core.launch.decide`), open the pane running
        ``argv`` with ``env`` (through the private environment file) and verify it."""
        panes, clients = await query(self.tmux)
        sessions = list({(p.server, p.session_id): TmuxSessionSpot(p.server, p.session_id, p.session)
                         for p in panes}.values())
        plan = decide(clients, sessions, str(socket_dir(self.tmux.env)))
        log.info("new %s session in %s: %s (%s)", req.agent.value, folder, plan.where.value, plan.reason)
        env_file = write_env_file(env, env_file_dir(env))
        opened = False
        try:
            report = await self._execute(req, plan, argv, folder, env_file, by_hand)
            opened = report.pane is not None
            return report
        finally:
            if not opened and os.path.exists(env_file):  # no pane: nothing will read it
                os.unlink(env_file)
            elif opened:
                await wait_env_file_read(env_file)

    async def _execute(self, req: NewSession, plan: LaunchPlan, argv: list[str], folder: str,
                       env_file: str, by_hand: str) -> LaunchReport:
        title = window_name(req.agent, folder, req.name).replace("#", "##")
        pane_argv = launch_argv(self._self_argv, env_file, folder, argv)
        common = ["-P", "-F", "#{pane_id}", "-c", folder.replace("#", "##"), "-n", title]
        if plan.where is Where.NEW_WINDOW:
            args = ["new-window", "-d", "-t", f"{plan.target}:", *common]
            where = (f"in a new window of your tmux session (not switched to; {plan.reason})" if plan.attached
                     else f"in a new window of the detached tmux session {SESSION_NAME}")
        else:
            # tmux -L makes its socket folder itself, tmux -S does not (3.3a: it then exits 0 and
            # prints nothing), so the default socket's folder is made here as tmux would: 0700.
            os.makedirs(os.path.dirname(plan.server), mode=0o700, exist_ok=True)
            w, h = DETACHED_SIZE
            args = ["new-session", "-d", "-s", plan.target, "-x", str(w), "-y", str(h), *common]
            where = f"in the new detached tmux session {plan.target} (attach with: tmux attach -t {plan.target})"
        started_at = time.time()
        try:
            out = await self.tmux.run(plan.server, *args, "--", *pane_argv)
        except MuxError as exc:
            return LaunchReport(False, f"tmux could not open a window ({exc}). Run it yourself: {by_hand}",
                                command=by_hand)
        pane_id = out.strip()
        if not pane_id.startswith("%"):
            return LaunchReport(False, f"tmux did not say which pane it opened ({pane_id!r}). Look for it in tmux, "
                                       f"or run: {by_hand}", command=by_hand)
        try:
            await self.tmux.run(plan.server, "set-option", "-p", "-t", pane_id, PANE_TAG, f"new:{req.agent.value}")
        except MuxError as exc:
            log.debug("could not tag pane %s: %s", pane_id, exc)
        started = await verify_started(self.tmux, plan.server, pane_id, pane_argv, where, by_hand,
                                       title=req.agent.label)
        if not started.ok or started.pane is None:
            return LaunchReport(False, started.detail, started.pane, command=by_hand, started_at=started_at)
        info = await self.tmux.pane(started.pane)
        pid = info.pane_pid if info is not None and info.pane_pid else None
        detail = f"Started {req.agent.label} in {folder}, tmux pane {started.pane.label}, {where}."
        return LaunchReport(True, detail, started.pane, pid, by_hand, started_at=started_at)

    async def screen(self, agent: AgentKind, pane: PaneRef) -> Screen | None:
        """The pane's parsed screen (None when it cannot be read). A Codex composer drawn while
        ``loading`` counts as busy."""
        try:
            text = await self.tmux.capture(pane)
        except MuxError:
            return None
        if agent is AgentKind.CODEX and _CODEX_LOADING.search(text):
            return Screen(ScreenKind.BUSY)
        screen = read_screen(agent, text)
        if screen.draft:
            # A fresh agent often shows a dim suggestion in its input line ("Try …"): not typed.
            try:
                if input_line_is_dim(await self.tmux.capture_styled(pane)):
                    screen = dataclasses.replace(screen, draft="")
            except MuxError:
                pass
        return screen

    async def _until_ready(self, req: NewSession, report: LaunchReport) -> LaunchReport:
        pane = report.pane
        assert pane is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        trust_answers, trust_at = 0, -1e9
        while True:
            info = await self.tmux.pane(pane)
            if info is None or info.dead:
                return _replace(report, ok=False, detail=f"{req.agent.label} exited before it was ready; its pane "
                                                          f"{pane.label} is gone. Run it yourself to see why: "
                                                          f"{report.command}")
            screen = await self.screen(req.agent, pane)
            if screen is not None and screen.kind is ScreenKind.PERMISSION and screen.tool == TRUST_TOOL:
                if not req.trust:
                    return _replace(report, waiting="trust", detail=(
                        f"{report.detail} {req.agent.label} asks whether you trust this folder; answer it in "
                        f"tmux pane {pane.label} (or start with --trust).") + _prompt_kept(req))
                yes = trust_option(screen)
                if yes is None:
                    return _replace(report, waiting="trust", detail=(
                        f"{report.detail} {req.agent.label} asks whether you trust this folder, and deck-tray cannot "
                        f"read which option says yes; answer it in tmux pane {pane.label}.") + _prompt_kept(req))
                # Keys sent while the menu is still being drawn can be lost (seen with Claude Code
                # 2.1.332 on a loaded machine): answer again if it is still there 3 s later.
                if trust_answers < 3 and loop.time() - trust_at >= 3.0:
                    trust_answers += 1
                    trust_at = loop.time()
                    answer = await self.dispatcher.dispatch(self._session(req, report),
                                                            Reply(ReplyKind.OPTION, yes.label))
                    log.info("folder trust answered (try %d): %s (%s)", trust_answers, answer.state.value,
                             answer.detail)
            elif screen is not None and screen.kind is ScreenKind.IDLE and not screen.draft:
                ready_s = time.time() - report.started_at
                log.info("%s ready in %.1f s", req.agent.label, ready_s)
                report = _replace(report, ready_s=ready_s)
                if not req.prompt:
                    return report
                sent = await self._first_prompt(req, report)
                detail = report.detail + (" The first prompt was sent." if sent.delivered else
                                          f" The first prompt was not sent: {sent.detail}")
                return _replace(report, prompt=sent, detail=detail)
            if loop.time() >= deadline:
                return _replace(report, detail=f"{report.detail} It did not show its input prompt within "
                                               f"{self.ready_timeout:.0f} s; look at tmux pane {pane.label}."
                                + _prompt_kept(req))
            await asyncio.sleep(_POLL_S)

    async def _first_prompt(self, req: NewSession, report: LaunchReport) -> DeliveryReport:
        """Type the first prompt through a dispatcher whose probe knows the session by its pane
        (the agent's session id is not known before it writes its first record)."""
        pane = report.pane
        assert pane is not None
        find = self.find_in_pane
        if find is None:
            return await self.dispatcher.dispatch(self._session(req, report), Reply(ReplyKind.PROMPT, req.prompt))

        async def probe(_sid: str) -> Session | None:
            return await find(pane)

        typist = Dispatcher(self.dispatcher.mux, probe, accept_timeout=self.dispatcher.accept_timeout)
        return await typist.dispatch(self._session(req, report), Reply(ReplyKind.PROMPT, req.prompt))

    @staticmethod
    def _session(req: NewSession, report: LaunchReport) -> Session:
        """The session as far as it is known before the agent wrote anything (for the dispatcher)."""
        assert report.pane is not None
        return Session(id=f"new:{report.pane.pane_id}", agent=req.agent, cwd=req.folder, pid=report.pid,
                       pane=report.pane, status=SessionStatus.IDLE)


def _prompt_kept(req: NewSession) -> str:
    return " The first prompt was not sent (it is kept)." if req.prompt else ""


def _replace(report: LaunchReport, **changes: object) -> LaunchReport:
    import dataclasses

    return dataclasses.replace(report, **changes)  # type: ignore[arg-type]
