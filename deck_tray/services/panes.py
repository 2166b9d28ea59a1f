"""tmux panes: discovery of every tmux server of the user, pid → pane mapping, sending.

tmux is driven through its CLI with argv lists (``asyncio.create_subprocess_exec``;
never a shell). Servers are found by their sockets under ``$TMUX_TMPDIR`` (default
``/tmp``) ``/tmux-<uid>/``, so ``tmux -L work`` servers are found too. One batched
``list-panes -a -F …`` per server gives every pane with its ``pane_pid``; an agent's pane
is the one whose ``pane_pid`` is the agent or one of its ancestors (psutil). Checked with
tmux 3.3a.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from deck_tray.core import procs
from deck_tray.core.model import PaneRef

log = logging.getLogger(__name__)

_SEP = "\x1f"
_FIELDS = (
    "pane_id", "pane_pid", "pane_current_command", "pane_dead", "session_name",
    "window_index", "pane_index", "pane_active", "window_active", "session_attached",
)
_FORMAT = _SEP.join("#{" + f + "}" for f in _FIELDS)
#: Seconds a tmux call may take before it counts as failed.
TMUX_TIMEOUT_S = 5.0


class TmuxError(RuntimeError):
    """A tmux command failed; the message holds tmux's own words."""


@dataclass(frozen=True)
class PaneInfo:
    """One row of ``list-panes -a``.

    Attributes:
        socket: the server's socket path.
        pane_id: stable id (``%3``).
        pane_pid: the pane's first process.
        command: ``pane_current_command`` (the foreground process name).
        dead: the pane's process exited (remain-on-exit).
        session: tmux session name; ``window``/``index``: window and pane numbers.
        focused: the active pane of the active window of an attached session.
    """

    socket: str
    pane_id: str
    pane_pid: int
    command: str
    dead: bool
    session: str
    window: str
    index: str
    focused: bool

    def ref(self) -> PaneRef:
        """The stable reference stored with a session."""
        return PaneRef("tmux", self.pane_id, self.socket, f"{self.session}:{self.window}.{self.index}")


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


class Tmux:
    """Async tmux client for one or many servers (addressed by socket path).

    Args:
        binary: tmux executable (default: found on PATH).
        env: environment for socket discovery (default ``os.environ``).
    """

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
            TmuxError: tmux is missing, timed out, or exited non-zero.
        """
        if self.binary is None:
            raise TmuxError("tmux is not installed")
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-S", socket, *args,
            stdin=asyncio.subprocess.PIPE if input_bytes is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(input_bytes), TMUX_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TmuxError(f"tmux {args[0]} timed out after {TMUX_TIMEOUT_S:.0f} s") from None
        if proc.returncode != 0:
            raise TmuxError(err.decode("utf-8", "replace").strip() or f"tmux {args[0]} failed")
        return out.decode("utf-8", "replace")

    async def list_panes(self, socket: str) -> list[PaneInfo]:
        """Every pane of one server (one call). Raises TmuxError if the server is gone."""
        out = await self.run(socket, "list-panes", "-a", "-F", _FORMAT)
        rows: list[PaneInfo] = []
        for line in out.splitlines():
            parts = line.split(_SEP)
            if len(parts) != len(_FIELDS):
                continue
            try:
                pid = int(parts[1])
            except ValueError:
                continue
            rows.append(PaneInfo(
                socket=socket, pane_id=parts[0], pane_pid=pid, command=parts[2], dead=parts[3] == "1",
                session=parts[4], window=parts[5], index=parts[6],
                focused=parts[7] == "1" and parts[8] == "1" and parts[9] not in ("", "0"),
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
        except TmuxError:
            return None
        return next((p for p in panes if p.pane_id == ref.pane_id), None)

    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        """The pane's visible text (plus ``lines`` of history), without colours."""
        return await self.run(ref.server, "capture-pane", "-p", "-J", "-S", f"-{lines}", "-t", ref.pane_id)

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


def pane_for_pid(pid: int, panes: list[PaneInfo]) -> PaneInfo | None:
    """The pane that runs ``pid``: the agent's environment names it (``TMUX``/``TMUX_PANE``),
    confirmed by ancestry; else the pane whose ``pane_pid`` is the pid or an ancestor."""
    chain = procs.ancestors(pid)
    if not chain:
        return None
    by_pid: dict[int, list[PaneInfo]] = {}
    for p in panes:
        if not p.dead:
            by_pid.setdefault(p.pane_pid, []).append(p)
    env = procs.environ(pid)
    hint_pane = env.get("TMUX_PANE", "")
    hint_sock = env.get("TMUX", "").split(",", 1)[0]
    for anc in chain:
        cands = by_pid.get(anc, [])
        if not cands:
            continue
        for c in cands:
            if c.pane_id == hint_pane and (not hint_sock or os.path.realpath(c.socket) == os.path.realpath(hint_sock)):
                return c
        return cands[0]
    return None


def pid_under_pane(pid: int, pane: PaneInfo) -> bool:
    """True if ``pid`` is the pane's process or one of its descendants."""
    return pane.pane_pid in procs.ancestors(pid)


def is_shell(command: str) -> bool:
    """True if a pane's foreground command is a plain shell."""
    return command.lstrip("-").rsplit("/", 1)[-1] in procs.SHELLS
