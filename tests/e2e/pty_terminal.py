"""A plain pseudo-terminal for a real agent: no tmux, no zellij — what a terminal window gives it.

    with PtyTerminal(["claude"], env, cwd) as term:
        term.wait_for(r"\\? for shortcuts")
        term.type_line("please FAKE_BASH now")

The child is a session leader with the pty as its controlling terminal (as a terminal emulator
starts a shell), 120×40. A reader thread keeps everything it printed; :meth:`text` is that output
with escape sequences removed (enough to find the agents' prompts). :attr:`typed` records every
byte written to the terminal, so a test can assert that nothing was typed.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

_FORWARD = re.compile(rb"\x1b\[(\d*)C")  # cursor forward: TUIs draw spaces with it
_COLUMN = re.compile(rb"\x1b\[\d*G")  # to a column: a word gap in Claude Code's status line
_ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]"  # CSI
                   rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
                   rb"|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHMc]")


class PtyTerminal:
    """A child process on its own pseudo-terminal.

    Args:
        argv: the command.
        env: its whole environment.
        cwd: its working folder.
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str]) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = Path(cwd)
        self.typed = bytearray()
        self._out = bytearray()
        self._lock = threading.Lock()
        self.master = -1
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> Self:
        """Spawn the child on a new pty."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

        def controlling_tty() -> None:  # runs in the child after setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, preexec_fn=controlling_tty, close_fds=True)
        os.close(slave)
        self.master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._out += data

    @property
    def pid(self) -> int:
        """The child's pid."""
        assert self.proc is not None
        return self.proc.pid

    def text(self, last: int = 200_000) -> str:
        """The output so far (its last ``last`` bytes), escape sequences removed."""
        with self._lock:
            raw = bytes(self._out[-last:])
        return _plain(raw)

    def mark(self) -> int:
        """A position in the output; :meth:`wait_for` with ``since`` looks only after it."""
        with self._lock:
            return len(self._out)

    def wait_for(self, pattern: str, timeout: float = 90.0, since: int = 0) -> str:
        """Wait until the output after ``since`` matches ``pattern``; returns that output.

        Raises:
            AssertionError: not within ``timeout`` seconds (with the output's end).
        """
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                raw = bytes(self._out[since:])
            text = _plain(raw)
            if rx.search(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not shown within {timeout:g} s; output ends:\n{text[-3000:]}")
            time.sleep(0.1)

    def write(self, data: bytes) -> None:
        """Type ``data`` (recorded in :attr:`typed`)."""
        self.typed += data
        os.write(self.master, data)

    def type_line(self, text: str) -> None:
        """Type ``text``, pause 0.3 s (agents treat a fast Enter as pasted), press Enter."""
        self.write(text.encode())
        time.sleep(0.3)
        self.write(b"\r")

    def stop(self, timeout: float = 10.0) -> None:
        """End the child (SIGTERM to its session, SIGKILL after ``timeout``) and close the pty."""
        if self.proc is not None and self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _plain(raw: bytes) -> str:
    """Terminal output as text: cursor-forward and column moves become spaces, other escapes
    are dropped (not a screen: enough to find words and prompts)."""
    spaced = _COLUMN.sub(b" ", _FORWARD.sub(lambda m: b" " * int(m.group(1) or 1), raw))
    return _ANSI.sub(b"", spaced).decode("utf-8", "replace")
