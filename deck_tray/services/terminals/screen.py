r"""GNU screen through ``screen -S <session> -p <window> -X/-Q``, run with screen 4.9.0 (Debian 12).

Facts this relies on (``shared/reference/terminals.md`` §2, and re-checked here):

* Every window's programs get ``STY=<server pid>.<session name>`` and ``WINDOW=<n>``;
  ``SCREENDIR`` (when set) is where the session's socket lives. The window's first process is a
  child of the server (the ``STY`` pid) with those two variables; it is a session leader, so
  its ``tpgid`` (``/proc/<pid>/stat`` field 8) is the window's foreground group. screen itself
  reports no pids.
* ``-p N -Q number`` answers ``"N (title)"``, or ``Could not find pre-select window.`` (exit 1);
  a gone session answers ``No screen session found.`` (exit 1). ``-X stuff`` to a window that
  does not exist exits 0 and types nothing, hence the check before every send.
* ``-X stuff TEXT`` parses TEXT: ``$VAR`` is expanded (from the *server's* environment) and
  ``^X`` is a control character, so ``\``, ``$`` and ``^`` are escaped with a backslash; real
  ESC, CR, LF and UTF-8 bytes pass unchanged. One ``stuff`` of 757 bytes or more was dropped
  silently, so text goes in calls of at most :data:`STUFF_MAX_BYTES` (after escaping, cut on
  character boundaries).
* When the window's program does not read (raw mode), screen keeps what it cannot write; after
  about 21 KB of ``stuff`` screen 4.9's server spins at full CPU and answers nothing any more, for
  every window of the session, even once the program is gone (seen here). So each part is sent
  only once the one before has been read: ``-Q number`` (screen runs commands in order) and then
  the window's tty input queue (``FIONREAD`` on the pty) must be empty within
  :data:`DRAIN_TIMEOUT_S`; otherwise the rest is not sent and the send is reported partial.
* ``-X hardcopy FILE`` writes the visible screen. screen 4.x writes **one byte per cell** (the
  low byte of the character: ``❯`` U+276F becomes ``o``, ``─`` becomes NUL), screen 5 writes
  UTF-8. The file is decoded as UTF-8 when it is valid, else as Latin-1, and NULs become
  spaces: ASCII words ("Do you want to proceed?", "? for shortcuts") read right either way.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import struct
import tempfile
import termios
import time
from collections.abc import Mapping

import psutil

from deck_tray.core import procs
from deck_tray.core.model import PaneRef
from deck_tray.services.panes import MuxError, PaneInfo, PartialSendError
from deck_tray.services.terminals.common import (
    CommandTerminal,
    child_env,
    foreground_of,
    off_loop,
    sending,
    unless_gone,
)

log = logging.getLogger(__name__)

SCREEN_TIMEOUT_S = 5.0
#: Seconds the window's program has to read one part before the rest is given up.
DRAIN_TIMEOUT_S = 3.0
#: Longest ``-X stuff`` argument sent at once (757 bytes and more were dropped by 4.9.0).
STUFF_MAX_BYTES = 700
_GONE = ("No screen session found", "Could not find pre-select window")


def _error(stdout: str, stderr: str, rc: int) -> str:
    """The last line of screen's own words (it prints its errors to stdout)."""
    words = (stdout.strip() or stderr.strip()).splitlines()
    return words[-1] if words else f"screen failed ({rc})"


def escape_stuff(text: str) -> str:
    r"""``text`` escaped for ``screen -X stuff`` (``\`` → ``\\``, ``$`` → ``\$``, ``^`` → ``\^``)."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("^", "\\^")


def stuff_chunks(text: str, limit: int = STUFF_MAX_BYTES) -> list[str]:
    """``text`` escaped and cut into ``stuff`` arguments of at most ``limit`` UTF-8 bytes, never
    inside a character or between a backslash and the character it escapes."""
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    for ch in text:
        piece = escape_stuff(ch)
        n = len(piece.encode("utf-8"))
        if cur and size + n > limit:
            chunks.append("".join(cur))
            cur, size = [], 0
        cur.append(piece)
        size += n
    if cur:
        chunks.append("".join(cur))
    return chunks


def decode_hardcopy(data: bytes) -> str:
    """A hardcopy file as text: UTF-8 (screen 5) or one Latin-1 byte per cell (screen 4.x)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.replace("\x00", " ")


def split_server(server: str) -> tuple[str, str]:
    """``PaneRef.server`` → ``(STY, SCREENDIR or "")``: ``"/dir/123.name"`` or ``"123.name"``."""
    if "/" in server:
        d, sty = os.path.split(server)
        return sty, d
    return server, ""


def input_queue(tty: str) -> int | None:
    """Bytes typed into the terminal ``tty`` (``/dev/pts/N``) that its program has not read yet
    (``FIONREAD`` on the pty); None when the tty cannot be opened."""
    try:
        fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return None
    finally:
        os.close(fd)


def window_tty(root: int) -> str:
    """The pty of a window's first process (its stdin), ``""`` if it is not a ``/dev/pts`` one."""
    try:
        path = os.readlink(f"/proc/{root}/fd/0")
    except OSError:
        return ""
    return path if path.startswith("/dev/pts/") else ""


def window_root(sty: str, window: str) -> int:
    """The first process of screen window ``window`` of session ``sty``: the server's child
    whose environment has ``STY=sty`` and ``WINDOW=window``; 0 if there is none."""
    head = sty.split(".", 1)[0]
    if not head.isdigit():
        return 0
    try:
        children = psutil.Process(int(head)).children()
    except psutil.Error:
        return 0
    for child in children:
        env = procs.environ(child.pid)
        if env.get("STY") == sty and env.get("WINDOW") == window:
            return child.pid
    return 0


class Screen(CommandTerminal):
    """GNU screen windows. A :class:`PaneRef` is ``PaneRef("screen", "<WINDOW>", "<STY>"`` (or
    ``"<SCREENDIR>/<STY>"``) ``, "<session name>:<WINDOW>")``.

    Args:
        binary: the screen executable (default: found on PATH).
    """

    name = program = "screen"

    async def run(self, ref: PaneRef, *args: str) -> str:
        """``screen -S STY -p WINDOW ARGS``; stdout.

        Raises:
            MuxError: screen is missing, timed out, or failed (its own words).
        """
        sty, screendir = split_server(ref.server)
        extra = {"SCREENDIR": screendir} if screendir else {}
        return await self.call(["-S", sty, "-p", ref.pane_id, *args], timeout=SCREEN_TIMEOUT_S,
                               env=child_env(("STY", "WINDOW", "SCREENDIR"), **extra), error=_error)

    async def pane_for_agent(self, pid: int, env: Mapping[str, str]) -> PaneInfo | None:
        """The window ``STY``/``WINDOW`` name, as screen confirms it."""
        sty, window = env.get("STY", ""), env.get("WINDOW", "")
        if not sty or not window.isdigit():
            return None
        screendir = env.get("SCREENDIR", "")
        return await self.pane(PaneRef(self.name, window, os.path.join(screendir, sty) if screendir else sty))

    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        """The window now (``-Q number``, its first process from ``/proc``); None if it is gone."""
        if await unless_gone(self.run(ref, "-Q", "number"), _GONE) is None:
            return None
        sty, _dir = split_server(ref.server)
        root = await off_loop(lambda: window_root(sty, ref.pane_id))
        fg, command = foreground_of(root) if root else (-1, "")
        return PaneInfo(
            server=ref.server, pane_id=ref.pane_id, pane_pid=root, command=command, dead=False,
            session=sty.partition(".")[2], window=ref.pane_id, index=ref.pane_id, focused=False,
            multiplexer=self.name, foreground_pgid=fg, label=f"{sty.partition('.')[2]}:{ref.pane_id}",
        )

    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        """The window's screen through ``-X hardcopy`` into a private file (see the module notes
        on screen 4.x's one byte per cell)."""
        with tempfile.TemporaryDirectory(prefix="deck-tray-screen-") as d:
            path = os.path.join(d, "hardcopy")
            await self.run(ref, "-X", "hardcopy", path)
            # screen runs commands in order: once a query on the same session answers, the
            # hardcopy before it has been written.
            await self.run(ref, "-Q", "number")
            deadline = time.monotonic() + SCREEN_TIMEOUT_S
            while not os.path.exists(path):
                if time.monotonic() > deadline:
                    raise MuxError("screen wrote no hardcopy of the window")
                await asyncio.sleep(0.02)
            with open(path, "rb") as fh:
                return decode_hardcopy(fh.read())

    async def write(self, ref: PaneRef, text: str) -> None:
        """``-X stuff`` in parts of at most :data:`STUFF_MAX_BYTES` escaped bytes, each after the
        window's program has read the one before (see the module notes).

        Raises:
            MuxError: the first part failed (nothing typed). PartialSendError: a later one
                failed or timed out, or the program stopped reading: the rest was not sent.
        """
        chunks = stuff_chunks(text)
        tty = ""
        if len(chunks) > 1:
            sty, _dir = split_server(ref.server)
            tty = window_tty(await off_loop(lambda: window_root(sty, ref.pane_id)))
        for i, chunk in enumerate(chunks):
            try:
                if i:
                    await self._drained(ref, tty, i)
                with sending():
                    await self.run(ref, "-X", "stuff", chunk)
            except PartialSendError:
                raise
            except MuxError as exc:
                if i == 0:
                    raise
                raise PartialSendError(f"screen stopped taking the text after {i} parts: {exc}") from exc

    async def _drained(self, ref: PaneRef, tty: str, parts: int) -> None:
        """Wait until screen wrote what it was given and the program read it.

        Raises:
            PartialSendError: not within :data:`DRAIN_TIMEOUT_S` (or the tty is unknown).
        """
        with sending():
            await self.run(ref, "-Q", "number")
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        empty = 0
        while True:
            left = input_queue(tty) if tty else None
            # Written bytes reach the queue a moment later (the kernel moves them in a work
            # item): empty twice, 10 ms apart, counts as read.
            empty = empty + 1 if left == 0 else 0
            if empty >= 2:
                return
            if left is None or time.monotonic() > deadline:
                raise PartialSendError(
                    f"the program in screen window {ref.pane_id} stopped reading after {parts} parts of the "
                    "text, so the rest was not sent (more would hang screen)")
            await asyncio.sleep(0.01)
