"""The part of a terminal emulator the fake WezTerm and the fake Konsole share (stdlib only).

A :class:`PtyPane` runs a program on a real pseudo-terminal, as a terminal does: the program is
a session leader with the pty as its controlling terminal, so pids, ``tty_name``, the
foreground process group and ``/proc`` ancestry are real facts. Its output is drained (so it
never blocks), the bracketed-paste mode it asks for (``ESC[?2004h``/``l``) is tracked, and a
crude screen (escape sequences dropped, the last ``rows`` lines) is kept for ``get-text``.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import termios
import threading

_ESC = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


class PtyPane:
    """One program on its own pty.

    Args:
        argv: the program and its arguments.
        env: its whole environment.
        cwd: its working directory.
        rows, cols: the pty's size.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None = None,
                 rows: int = 40, cols: int = 120) -> None:
        self.rows = rows
        master, slave = os.openpty()
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.tty_name = os.ttyname(slave)
        pid = os.fork()
        if pid == 0:  # the child: a new session whose controlling terminal is the pty
            try:
                os.close(master)
                os.login_tty(slave)
                if cwd:
                    os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        os.close(slave)
        self.pid = pid
        self.master = master
        self.output = bytearray()
        self.bracketed_paste = False
        self.exit_status: int | None = None
        self.lock = threading.Lock()
        self.closed = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        threading.Thread(target=self._reap, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            if not data:
                break
            with self.lock:
                self.output += data
                on, off = self.output.rfind(b"\x1b[?2004h"), self.output.rfind(b"\x1b[?2004l")
                self.bracketed_paste = on > off

    def _reap(self) -> None:
        """A terminal closes the pane when its program exits, whoever else still holds the pty."""
        try:
            _pid, status = os.waitpid(self.pid, 0)
            self.exit_status = status
        except ChildProcessError:
            self.exit_status = 0
        self.closed.set()

    @property
    def alive(self) -> bool:
        return not self.closed.is_set()

    def write(self, data: bytes) -> None:
        """What a terminal does with typed or pasted input: write it to the pty master."""
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def foreground_pgid(self) -> int:
        """The pty's foreground process group (``tcgetpgrp`` on the master, as terminals do)."""
        try:
            return os.tcgetpgrp(self.master)
        except OSError:
            return -1

    def screen_lines(self) -> list[str]:
        """A crude screen: the output without escape sequences, split into lines, the last ``rows``."""
        with self.lock:
            raw = bytes(self.output)
        text = _ESC.sub(b"", raw).decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "")
        return text.split("\n")[-self.rows:]

    def hangup(self) -> None:
        """Close the pane as a terminal does when its tab is closed: SIGHUP the program."""
        try:
            os.killpg(self.pid, 1)
        except OSError:
            pass
