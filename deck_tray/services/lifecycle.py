"""The app process's own life: a bounded shutdown, the display or bus going away, a hung holder replaced.

Issue #20: at a logout (the agent's tmux server, the app, the tray host, the notification
daemon, the X server and the session bus all ending at once) the app once stayed alive for
half an hour holding its socket, so no later start could run. What this module gives
``run_app`` (:mod:`deck_tray.commands.run`):

* :class:`GuiThreadGc` — garbage collection on the GUI thread only (the deadlock found here).
* :class:`HardExit` — once a quit starts, the process ends within a grace period whatever a
  thread is doing: :func:`faulthandler.dump_traceback_later` runs on a C thread that needs no
  GIL, writes every thread's Python stack to the log and calls ``_exit``.
* :func:`on_c_exit` — Qt's xcb platform calls C ``exit(1)`` from inside its event loop when the
  X connection breaks ("The X11 connection broke … Did the X11 server die?", qxcbconnection.cpp,
  Qt 6; the Wayland plugin does the same for a dead compositor). C ``exit`` then runs static
  destructors while Python's threads still run: measured here, 4 of 16 such tear-downs ended in
  a segmentation fault and the others in a cascade of "Event loop stopped before Future
  completed" and "Signal source has been deleted". A glibc ``on_exit`` handler registered late
  runs before those destructors: it saves what the user typed and ends the process itself.
* :func:`watch_bus` — the session bus closing means the desktop session ends: quit.
* :func:`holder_pid` / :func:`end_holder` — who holds the app's socket, and ending a hung one
  (``deck-tray --replace``): SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import faulthandler
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil
from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

#: Seconds from a quit request to the hard exit (the issue asks for an exit within 5 s).
GRACE_S = 4.0
#: Seconds ``--replace`` waits after SIGTERM before SIGKILL, and again after SIGKILL.
REPLACE_GRACE_S = 3.0


#: :class:`GuiThreadGc` collects the youngest generation at least every this many ticks.
YOUNG_EVERY_TICKS = 10


class GuiThreadGc(QObject):
    """Cyclic garbage collection on the GUI thread only, on a timer (as qutebrowser does).

    Python runs a collection in whichever thread allocates past the threshold. Measured here
    (issue #20): watchdog's dispatcher thread was inside a collection, holding the GIL, while
    the GUI thread, inside Qt's ``sendPostedEvents``, destroyed a queued call that held a Python
    object and waited for the GIL — the app never exited. With automatic collection off and
    this timer collecting on the GUI thread, no Qt wrapper is freed by a collection on another
    thread. Reference counting still frees everything that is not in a cycle at once.

    Args:
        interval_ms: how often the counts are looked at.
    """

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.collections = [0, 0, 0]
        self._ticks = 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect)

    def start(self) -> None:
        """Turn automatic collection off and collect from the timer."""
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer (automatic collection stays off: the process is ending)."""
        self._timer.stop()

    def collect(self) -> int:
        """Collect the oldest generation whose count passed its threshold (as Python would).

        Returns:
            The generation collected, or -1 when none was due.
        """
        counts = gc.get_count()
        self._ticks += 1
        gen = -1
        for g in (2, 1, 0):
            if self.threshold[g] and counts[g] > self.threshold[g]:
                gen = g
                break
        if gen < 0 and counts[0] and self._ticks % YOUNG_EVERY_TICKS == 0:
            gen = 0  # garbage below the threshold is not kept for ever
        if gen >= 0:
            gc.collect(gen)
            self.collections[gen] += 1
        return gen


class HardExit:
    """Ends the process a fixed time after :meth:`arm`, with every thread's stack in the log.

    Args:
        log_path: the file the stacks are appended to (the app's log); None: stderr.
    """

    def __init__(self, log_path: str | os.PathLike[str] | None = None) -> None:
        self._file: IO[str] | None = None
        if log_path is not None:
            try:
                self._file = open(log_path, "a", encoding="utf-8")
            except OSError as exc:
                log.warning("stacks of a hung shutdown go to stderr, not %s: %s", log_path, exc)
        self.armed_at: float | None = None

    def arm(self, seconds: float, why: str) -> None:
        """End the process with exit code 1 ``seconds`` from now unless :meth:`disarm` comes first.

        Re-arming restarts the countdown. The exit is ``_exit``: nothing else runs, so call it
        only once what must be kept (drafts, the reopen stack) is on disk or about to be.
        """
        log.info("%s: ending within %g s (a hard exit with every thread's stack logged if anything hangs)",
                 why, seconds)
        for h in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                h.flush()
        faulthandler.dump_traceback_later(seconds, repeat=False, file=self._file or sys.stderr.fileno(), exit=True)
        self.armed_at = time.monotonic()

    def disarm(self) -> None:
        """Cancel the countdown."""
        faulthandler.cancel_dump_traceback_later()
        self.armed_at = None



_ON_EXIT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)
_kept: list[Any] = []  # the C callbacks must outlive the call that registered them


def on_c_exit(callback: Callable[[int], None]) -> bool:
    """Call ``callback(status)`` when C ``exit(status)`` runs, before the handlers registered earlier
    (C++ static destructors of the libraries loaded so far).

    The callback runs on the thread that called ``exit`` with the GIL taken; it should end the
    process itself (``os._exit``). Register it only while the interpreter will not finalize
    normally: a process that registered it must leave through ``os._exit`` (see
    :func:`finish`), since a call after ``Py_Finalize`` would run Python code without an
    interpreter.

    Returns:
        False where glibc's ``on_exit`` is unavailable (nothing registered).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        register = libc.on_exit
    except (OSError, AttributeError) as exc:
        log.info("no on_exit in this C library (%s): a broken display connection ends the process as Qt does",
                 exc)
        return False
    register.argtypes = [_ON_EXIT, ctypes.c_void_p]
    register.restype = ctypes.c_int

    def trampoline(status: int, _arg: Any) -> None:
        callback(status)

    cb = _ON_EXIT(trampoline)
    _kept.append(cb)
    return bool(register(cb, None) == 0)


def finish(code: int) -> None:
    """Flush the logs and the standard streams, then end the process with ``code`` (``os._exit``).

    The last step of the app process: it skips the interpreter's finalization and the C++
    static destructors, which ran while daemon threads were still alive (a segmentation fault
    or a hang, issue #20); everything the app keeps was saved by its orderly stop before.
    """
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


async def watch_bus(on_closed: Callable[[str], None], bus: str = "SESSION") -> None:
    """Wait until the D-Bus session bus connection closes, then call ``on_closed(why)``.

    Holds one connection of its own (jeepney, asyncio) that receives nothing but the bus's own
    ``NameAcquired``. Returns without calling back when there is no bus to watch (jeepney
    missing, no address, cannot connect); cancel it to stop watching.
    """
    try:
        from jeepney.io.asyncio import open_dbus_connection  # type: ignore[import-untyped]
    except ImportError:
        return
    try:
        conn = await asyncio.wait_for(open_dbus_connection(bus), 5.0)
    except (OSError, EOFError, KeyError, RuntimeError, ValueError, TimeoutError) as exc:
        log.info("not watching the session bus (%s): its end will not end deck-tray", exc or type(exc).__name__)
        return
    log.info("watching the D-Bus session bus: its end ends deck-tray")
    try:
        while True:
            await conn.receive()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # EOF, ECONNRESET: the bus went away
        on_closed(f"the D-Bus session bus closed ({exc or type(exc).__name__})")
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


def return_freed_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim(0)``); True when
    something was returned, False when nothing was or the C library has no such call (musl).

    Closed tabs and released tab contents free megabytes that glibc keeps mapped: RSS stays
    at its high-water mark until they are trimmed. Thread-safe (glibc locks each arena while it
    trims it); a few milliseconds for a ~150 MB heap, so call it from a worker thread.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


def quit_signals() -> tuple[signal.Signals, ...]:
    """The signals that end the app (SIGINT from a terminal, SIGTERM from a session manager or
    ``kill``, SIGHUP when its terminal or session goes away)."""
    return (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# -- the socket's holder ---------------------------------------------------------------
def holder_pid(path: Path, timeout: float = 1.0) -> int | None:
    """The pid of the process listening on the Unix socket ``path`` (``SO_PEERCRED`` of a fresh
    connection: the kernel answers even when the holder's threads are stuck).

    Returns:
        None when nothing listens (no file, a stale file) or the holder is another user's.
    """
    from deck_tray.services import ipc

    creds = ipc.listener_credentials(path, timeout)
    if creds is None or creds[1] != os.getuid() or creds[0] <= 0:
        return None
    return creds[0]


def is_deck_tray(pid: int) -> bool:
    """Whether ``pid`` runs deck-tray (its command line names ``deck_tray`` or ``deck-tray``)."""
    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return False
    return "deck_tray" in cmd or "deck-tray" in cmd


def end_holder(pid: int, grace: float = REPLACE_GRACE_S) -> str:
    """End a deck-tray process: SIGTERM, then SIGKILL when it is still there after ``grace`` seconds.

    Returns:
        What happened, for the user ("ended by SIGTERM after 0.4 s", "… did not end on
        SIGTERM within 3 s; killed (SIGKILL)").

    Raises:
        PermissionError: ``pid`` is not a deck-tray of this user (nothing was sent).
        TimeoutError: it outlived SIGKILL by ``grace`` seconds (a process stuck in the kernel).
    """
    try:
        proc = psutil.Process(pid)
        if proc.uids().real != os.getuid() or not is_deck_tray(pid):
            raise PermissionError(f"process {pid} is not a deck-tray of this user; not ending it")
    except psutil.NoSuchProcess:
        return f"deck-tray (pid {pid}) had already ended"
    t0 = time.monotonic()
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(signal.SIGTERM)
    if _gone(proc, grace):
        return f"deck-tray (pid {pid}) ended on SIGTERM after {time.monotonic() - t0:.1f} s"
    log.warning("deck-tray (pid %d) did not end on SIGTERM within %g s; sending SIGKILL", pid, grace)
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.kill()
    if not _gone(proc, grace):
        raise TimeoutError(f"deck-tray (pid {pid}) is still there {grace:g} s after SIGKILL")
    return f"deck-tray (pid {pid}) did not end on SIGTERM within {grace:g} s; killed (SIGKILL)"


def _gone(proc: psutil.Process, timeout: float) -> bool:
    """Poll until ``proc`` has ended (a zombie counts: it runs nothing and holds no socket)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def restart_argv(argv: list[str] | None = None) -> list[str]:
    """The command that starts a deck-tray replacing this one: the same interpreter and
    arguments (``sys.argv``) plus ``--replace``, so the new process ends this one (SIGTERM, the
    orderly stop) before it takes the socket. In a PyInstaller bundle ``sys.executable`` is the
    bundle itself."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--replace" not in args:
        args.append("--replace")
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "deck_tray", *args]


def spawn_restart(argv: list[str] | None = None) -> int:
    """Start :func:`restart_argv` detached (its own session, no terminal); returns its pid.

    Raises:
        OSError: the process could not be started.
    """
    proc = subprocess.Popen(restart_argv(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    log.info("restarting: started pid %d (%s); it ends this process first", proc.pid, " ".join(restart_argv(argv)))
    return proc.pid
