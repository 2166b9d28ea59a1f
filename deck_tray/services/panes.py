"""Terminal multiplexer panes: one interface, tmux and zellij behind it.

:class:`Multiplexer` is what the collector and the dispatcher use: list every pane with
the pid of its first process (or find the one pane an agent's environment names), read a
pane's screen, type text, paste, press keys. :class:`Tmux` drives tmux (3.2+; checked with
3.3a), :class:`deck_tray.services.zellij.Zellij` drives zellij 0.44+, the terminals with a
remote-control interface (kitty, GNU screen, WezTerm, Konsole) are in
:mod:`deck_tray.services.terminals`, and :class:`MuxSet` routes by :attr:`PaneRef.multiplexer`.

tmux is driven through its CLI with argv lists (``asyncio.create_subprocess_exec``;
never a shell). Servers are found by their sockets under ``$TMUX_TMPDIR`` (default
``/tmp``) ``/tmux-<uid>/``, so ``tmux -L work`` servers are found too. One batched
``list-panes -a -F …`` per server gives every pane with its ``pane_pid``; an agent's pane
is the one whose ``pane_pid`` is the agent or one of its ancestors (psutil).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from typing_extensions import override

from deck_tray.core import procs
from deck_tray.core.model import PaneRef

log = logging.getLogger(__name__)

_SEP = "\x1f"
_FIELDS = (
    "pane_id", "pane_pid", "pane_current_command", "pane_dead", "session_name",
    "window_index", "pane_index", "pane_active", "window_active", "session_attached",
    # Last, so a title holding the separator cannot shift the other fields: the state of the
    # agents that set their pane title (Gemini CLI, Qwen Code; deck_tray.core.agents).
    "pane_title",
)
_FORMAT = _SEP.join("#{" + f + "}" for f in _FIELDS)
#: Seconds a tmux call may take before it counts as failed.
TMUX_TIMEOUT_S = 5.0


class MuxError(RuntimeError):
    """A multiplexer command failed; the message holds the multiplexer's own words."""



class PartialSendError(MuxError):
    """A send made of several calls failed after the first one ran: part of the text may
    already be in the pane, so it must not be sent again."""


class MuxTimeoutError(MuxError):
    """A multiplexer command did not finish in time and was killed (it may have done part of its work)."""


class ScreenUnreadableError(MuxError):
    """The adapter cannot read this pane's screen at all (e.g. Konsole before 24.05 has no
    D-Bus method for it); the message says why. Typing may still be possible."""


@dataclass(frozen=True)
class PaneInfo:
    """One pane as its multiplexer lists it.

    Attributes:
        server: tmux socket path / zellij session name.
        pane_id: stable id (tmux ``%3``, zellij ``terminal_3``).
        pane_pid: the pane's first process (0 when unknown).
        command: the foreground command's name (tmux ``pane_current_command``, zellij
            ``pane_command``'s first word), ``""`` if unknown.
        dead: the pane's process exited (tmux remain-on-exit, zellij held command pane).
        session: tmux session name or zellij tab name; ``window``/``index``: position.
        focused: the pane the user is looking at.
        multiplexer: the adapter's :attr:`Multiplexer.name` (``"tmux"``, ``"zellij"``, ``"kitty"`` …).
        foreground_pgid: the process group in the foreground of the pane's terminal, as the
            terminal (or ``/proc/<pid>/stat`` field 8) reports it; 0 when the adapter does not
            report one (tmux, zellij), -1 when it reports that nothing is in the foreground.
            The dispatcher types only when the agent's process group is this one.
        label: the human location when the adapter sets its own (terminals), else ``""``.
        title: the pane's title as the program in it set it (tmux ``pane_title``; an escape
            sequence ``OSC 0/2``), ``""`` when the adapter does not report one. Gemini CLI and
            Qwen Code keep their state there (:meth:`AgentAdapter.title_status`).
    """

    server: str
    pane_id: str
    pane_pid: int
    command: str
    dead: bool
    session: str
    window: str
    index: str
    focused: bool
    multiplexer: str = "tmux"
    foreground_pgid: int = 0
    label: str = ""
    title: str = ""

    def ref(self) -> PaneRef:
        """The stable reference stored with a session."""
        if self.label:
            label = self.label
        elif self.multiplexer == "tmux":
            label = f"{self.session}:{self.window}.{self.index}"
        else:
            label = f"{self.server}/{self.session}/{self.pane_id}"
        return PaneRef(self.multiplexer, self.pane_id, self.server, label)


class Multiplexer(ABC):
    """What deck-tray needs from a terminal multiplexer. All methods are coroutines that
    raise :class:`MuxError` when the multiplexer fails or refuses."""

    #: ``PaneRef.multiplexer`` value this adapter serves.
    name = ""

    @property
    @abstractmethod
    def available(self) -> bool:
        """True when the multiplexer is installed (and new enough to target panes)."""

    @property
    def unavailable_reason(self) -> str:
        """Why :attr:`available` is False, in words for the user."""
        return f"{self.name} is not installed"

    def reason_for(self, ref: PaneRef) -> str | None:
        """Why ``ref`` cannot be typed into through this adapter, or None when it can."""
        return None if self.available else self.unavailable_reason

    async def ensure_ready(self) -> None:  # noqa: B027 (optional hook, nothing to do by default)
        """Learn what :attr:`available` depends on (versions), once; cheap afterwards."""

    @abstractmethod
    async def all_panes(self) -> list[PaneInfo]:
        """Every pane of every server/session of the user (stale ones skipped)."""

    async def pane_for_agent(self, pid: int, env: Mapping[str, str]) -> PaneInfo | None:
        """The pane the agent ``pid`` runs in, found from its environment rather than by
        listing every pane (terminals cannot list the panes of every window).

        Args:
            pid: the agent process.
            env: its environment (``/proc/<pid>/environ``).

        Returns:
            The pane its environment names, as the adapter's terminal confirms it; None when
            the environment names none of this adapter's panes (the default: tmux and zellij
            are found through :meth:`all_panes`). The caller still checks ancestry
            (:func:`pane_for_pid`).
        """
        return None

    @abstractmethod
    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        """Current facts of one pane, or None if it (or its server) is gone."""

    @abstractmethod
    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        """The pane's visible text (without colours)."""

    async def capture_styled(self, ref: PaneRef) -> str:
        """The pane's visible text with SGR escape sequences (to tell dim text apart)."""
        return await self.capture(ref)

    @abstractmethod
    async def send_literal(self, ref: PaneRef, text: str) -> None:
        """Type ``text`` as is (no Enter)."""

    @abstractmethod
    async def paste(self, ref: PaneRef, text: str) -> None:
        """Paste ``text`` as one bracketed paste (no Enter)."""

    @abstractmethod
    async def send_key(self, ref: PaneRef, key: str) -> None:
        """Press one key, named as tmux names it (``Enter``, ``Escape``, ``1``, ``y``)."""


class MuxSet(Multiplexer):
    """Several multiplexers as one: lists all panes, routes each call by the ref's
    :attr:`PaneRef.multiplexer`."""

    name = "any"

    def __init__(self, muxes: Iterable[Multiplexer]) -> None:
        self.muxes = {m.name: m for m in muxes}

    @property
    @override
    def available(self) -> bool:
        return any(m.available for m in self.muxes.values())

    def for_ref(self, ref: PaneRef) -> Multiplexer:
        """The adapter of ``ref``. Raises MuxError for an unknown multiplexer."""
        mux = self.muxes.get(ref.multiplexer)
        if mux is None:
            raise MuxError(f"no adapter for {ref.multiplexer}")
        return mux

    def reason_for(self, ref: PaneRef) -> str | None:
        """Why ``ref``'s multiplexer cannot be used, or None when it can."""
        mux = self.muxes.get(ref.multiplexer)
        if mux is None:
            return f"deck-tray cannot type into {ref.multiplexer} panes"
        return None if mux.available else mux.unavailable_reason

    @override
    async def ensure_ready(self) -> None:
        await asyncio.gather(*(m.ensure_ready() for m in self.muxes.values()))

    async def pane_for_agent(self, pid: int, env: Mapping[str, str]) -> PaneInfo | None:
        """The innermost pane any adapter finds for ``pid`` from its environment (nested
        terminals: screen inside kitty is screen), confirmed by ancestry; None if none does."""
        live = [m for m in self.muxes.values() if m.available]
        results = await asyncio.gather(*(m.pane_for_agent(pid, env) for m in live), return_exceptions=True)
        found: list[PaneInfo] = []
        for mux, res in zip(live, results, strict=True):
            if isinstance(res, BaseException):
                log.debug("%s did not find the pane of pid %d: %s", mux.name, pid, res)
            elif res is not None:
                found.append(res)
        if not found:
            return None
        return await asyncio.get_running_loop().run_in_executor(None, pane_for_pid, pid, found, env)

    @override
    async def all_panes(self) -> list[PaneInfo]:
        live = [m for m in self.muxes.values() if m.available]
        results = await asyncio.gather(*(m.all_panes() for m in live), return_exceptions=True)
        out: list[PaneInfo] = []
        for mux, res in zip(live, results, strict=True):
            if isinstance(res, BaseException):
                log.debug("%s did not list its panes: %s", mux.name, res)
                continue
            out.extend(res)
        return out

    @override
    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        return await self.for_ref(ref).pane(ref)

    @override
    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        return await self.for_ref(ref).capture(ref, lines)

    @override
    async def capture_styled(self, ref: PaneRef) -> str:
        return await self.for_ref(ref).capture_styled(ref)

    @override
    async def send_literal(self, ref: PaneRef, text: str) -> None:
        await self.for_ref(ref).send_literal(ref, text)

    @override
    async def paste(self, ref: PaneRef, text: str) -> None:
        await self.for_ref(ref).paste(ref, text)

    @override
    async def send_key(self, ref: PaneRef, key: str) -> None:
        await self.for_ref(ref).send_key(ref, key)


def tmux_binary() -> str | None:
    """Path of the tmux executable, or None when tmux is not installed."""
    return shutil.which("tmux")


def socket_dir(env: dict[str, str] | None = None) -> Path:
    """``$TMUX_TMPDIR`` (or ``/tmp``) ``/tmux-<uid>``."""
    e = os.environ if env is None else env
    return Path(e.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"


def server_sockets(env: dict[str, str] | None = None) -> list[str]:
    """Socket paths of the user's tmux servers (live or stale; stale ones fail to answer)."""
    d = socket_dir(env)
    out: list[str] = []
    try:
        entries = list(d.iterdir())
    except OSError:
        return out
    for p in entries:
        try:
            if stat.S_ISSOCK(p.lstat().st_mode):
                out.append(str(p))
        except OSError:
            continue
    return sorted(out)


async def run_argv(argv: list[str], *, timeout: float, input_bytes: bytes | None = None,
                   env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run an argv list (never a shell); return ``(exit code, stdout, stderr)``.

    Raises:
        MuxError: it could not start. MuxTimeoutError: it took longer than ``timeout`` seconds
            (then killed).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input_bytes is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )
    except OSError as exc:
        raise MuxError(f"cannot run {argv[0]}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(input_bytes), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise MuxTimeoutError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} timed out after {timeout:.0f} s") from None
    rc = proc.returncode if proc.returncode is not None else -1
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


class Tmux(Multiplexer):
    """Async tmux client for one or many servers (addressed by socket path).

    Args:
        binary: tmux executable (default: found on PATH).
        env: environment for socket discovery (default ``os.environ``).
    """

    name = "tmux"

    def __init__(self, binary: str | None = None, env: dict[str, str] | None = None) -> None:
        self.binary = binary or tmux_binary()
        self.env = env

    @property
    def available(self) -> bool:
        """True when a tmux executable exists."""
        return self.binary is not None

    async def run(self, socket: str, *args: str, input_bytes: bytes | None = None) -> str:
        """Run ``tmux -S socket ARGS``; return stdout.

        Raises:
            MuxError: tmux is missing, timed out, or exited non-zero.
        """
        if self.binary is None:
            raise MuxError("tmux is not installed")
        rc, out, err = await run_argv([self.binary, "-S", socket, *args], timeout=TMUX_TIMEOUT_S,
                                      input_bytes=input_bytes)
        if rc != 0:
            raise MuxError(err.strip() or f"tmux {args[0]} failed")
        return out

    async def list_panes(self, socket: str) -> list[PaneInfo]:
        """Every pane of one server (one call). Raises MuxError if the server is gone."""
        out = await self.run(socket, "list-panes", "-a", "-F", _FORMAT)
        rows: list[PaneInfo] = []
        for line in out.splitlines():
            parts = line.split(_SEP, len(_FIELDS) - 1)
            if len(parts) != len(_FIELDS):
                continue
            try:
                pid = int(parts[1])
            except ValueError:
                continue
            rows.append(PaneInfo(
                server=socket, pane_id=parts[0], pane_pid=pid, command=parts[2], dead=parts[3] == "1",
                session=parts[4], window=parts[5], index=parts[6],
                focused=parts[7] == "1" and parts[8] == "1" and parts[9] not in ("", "0"), title=parts[10],
            ))
        return rows

    async def all_panes(self) -> list[PaneInfo]:
        """Panes of every reachable server; unreachable (stale) sockets are skipped."""
        if self.binary is None:
            return []
        sockets = server_sockets(self.env)
        results = await asyncio.gather(*(self.list_panes(s) for s in sockets), return_exceptions=True)
        panes: list[PaneInfo] = []
        for sock, res in zip(sockets, results, strict=True):
            if isinstance(res, BaseException):
                log.debug("tmux server %s did not answer: %s", sock, res)
                continue
            panes.extend(res)
        return panes

    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        """Current facts of one pane, or None if it (or its server) is gone."""
        try:
            panes = await self.list_panes(ref.server)
        except MuxError:
            return None
        return next((p for p in panes if p.pane_id == ref.pane_id), None)

    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        """The pane's visible text (plus ``lines`` of history), without colours."""
        return await self.run(ref.server, "capture-pane", "-p", "-J", "-S", f"-{lines}", "-t", ref.pane_id)

    async def capture_styled(self, ref: PaneRef) -> str:
        """The visible text with SGR sequences (``capture-pane -e``)."""
        return await self.run(ref.server, "capture-pane", "-p", "-e", "-J", "-t", ref.pane_id)

    async def send_literal(self, ref: PaneRef, text: str) -> None:
        """Type ``text`` literally (``send-keys -l``)."""
        await self.run(ref.server, "send-keys", "-t", ref.pane_id, "-l", "--", text)

    async def send_key(self, ref: PaneRef, key: str) -> None:
        """Press one named key (``Enter``, ``Escape``, ``1``)."""
        await self.run(ref.server, "send-keys", "-t", ref.pane_id, key)

    async def paste(self, ref: PaneRef, text: str) -> None:
        """Bracketed paste of ``text`` through a uniquely named buffer, deleted after use."""
        name = f"deck-tray-{uuid.uuid4().hex[:12]}"
        await self.run(ref.server, "load-buffer", "-b", name, "-", input_bytes=text.encode("utf-8"))
        await self.run(ref.server, "paste-buffer", "-p", "-r", "-d", "-b", name, "-t", ref.pane_id)


def pane_for_pid(pid: int, panes: list[PaneInfo], env: Mapping[str, str] | None = None) -> PaneInfo | None:
    """The pane that runs ``pid``: the pane whose ``pane_pid`` is the pid or an ancestor.

    When several panes match (nested multiplexers), the innermost one the agent's environment
    names (``TMUX``/``TMUX_PANE``, ``ZELLIJ_SESSION_NAME``/``ZELLIJ_PANE_ID``; terminal panes
    come from :meth:`Multiplexer.pane_for_agent`, so their environment named them) wins, then
    the innermost (the nearest ancestor). ``env`` is the agent's environment (default: read
    from ``/proc``)."""
    chain = procs.ancestors(pid)
    if not chain:
        return None
    by_pid: dict[int, list[PaneInfo]] = {}
    for p in panes:
        if not p.dead:
            by_pid.setdefault(p.pane_pid, []).append(p)
    env = procs.environ(pid) if env is None else env
    tmux_pane = env.get("TMUX_PANE", "")
    tmux_sock = env.get("TMUX", "").split(",", 1)[0]
    zj_pane = f"terminal_{env['ZELLIJ_PANE_ID']}" if env.get("ZELLIJ_PANE_ID") else ""
    zj_session = env.get("ZELLIJ_SESSION_NAME", "")

    def named(c: PaneInfo) -> bool:
        if c.multiplexer == "tmux":
            return c.pane_id == tmux_pane and (
                not tmux_sock or os.path.realpath(c.server) == os.path.realpath(tmux_sock))
        if c.multiplexer == "zellij":
            return c.pane_id == zj_pane and c.server == zj_session
        return True

    matches = [c for anc in chain for c in by_pid.get(anc, [])]
    if not matches:
        return None
    return next((c for c in matches if named(c)), matches[0])


def pid_under_pane(pid: int, pane: PaneInfo) -> bool:
    """True if ``pid`` is the pane's process or one of its descendants."""
    return pane.pane_pid in procs.ancestors(pid)


def is_shell(command: str) -> bool:
    """True if a pane's foreground command is a plain shell."""
    return command.lstrip("-").rsplit("/", 1)[-1] in procs.SHELLS
