"""The tray app as a process: one instance per user, the qasync loop, and an exit that never hangs.

``deck-tray`` (no subcommand) and ``deck-tray --replace`` run :func:`run_app`. It makes sure no
other deck-tray serves the socket (raising that one's window instead, or ending it with
``--replace``), sets up logging and the QApplication, builds :class:`deck_tray.app.DeckTrayApp`
(the composition root), runs the loop once, and quits on the tray's or window's Quit, SIGINT /
SIGTERM / SIGHUP, the session bus closing or the display connection breaking: drafts and window
state saved, each service's stop bounded, the process ended by :func:`lifecycle.finish` within
:data:`lifecycle.GRACE_S` seconds (ADR 005, issue #20).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.handlers
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import platformdirs
import qasync
from PySide6.QtWidgets import QApplication

from deck_tray import APP_ID, __version__
from deck_tray.app import DeckTrayApp
from deck_tray.core import display
from deck_tray.services import ipc, lifecycle, qt_messages
from deck_tray.services.settings_store import open_settings
from deck_tray.ui.errors import ErrorReporter
from deck_tray.ui.icons import app_icon

log = logging.getLogger("deck_tray")


def setup_logging() -> str:
    """Log to a rotating file under the platformdirs log dir (and stderr); returns the path."""
    log_dir = platformdirs.user_log_dir("deck-tray", appauthor=False)
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, "deck-tray.log")
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.addHandler(logging.StreamHandler())
    root.setLevel(logging.INFO)
    return path


def install_error_funnel(loop: asyncio.AbstractEventLoop, reporter: ErrorReporter) -> None:
    """Send uncaught errors (main thread, threads, loop) to one place: the log + a message."""
    report = reporter.report
    sys.excepthook = report
    threading.excepthook = lambda a: report(a.exc_type, a.exc_value or Exception(), a.exc_traceback)

    def loop_handler(_loop: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        exc = ctx.get("exception")
        if isinstance(exc, BaseException):
            report(type(exc), exc, exc.__traceback__)
        else:
            log.error("event loop: %s", ctx.get("message"))

    loop.set_exception_handler(loop_handler)


def settle_heap() -> None:
    """Collect once and move everything alive after start-up into the permanent generation.

    The libraries loaded at start-up (Qt bindings, httpx and its backends) leave ~30 ms of
    objects for every full garbage collection to walk; under a fast event stream those
    collections were the longest GUI-thread stalls (bench/bench_opencode.py).
    """
    gc.collect()
    gc.freeze()


def _raise_running(sock: Path, op: str = "show") -> bool:
    """If a deck-tray answers on ``sock``, have it raise its window (``op`` ``show``) or toggle it
    (``toggle``); True when one did.

    Raises:
        SystemExit: one holds the socket but does not answer (exit code 1); the message names
            its pid and ``deck-tray --replace``.
    """
    # The launcher's activation token (xdg-activation on Wayland, startup notification on X11)
    # lets the running deck-tray take focus.
    token = os.environ.get("XDG_ACTIVATION_TOKEN", "") or os.environ.get("DESKTOP_STARTUP_ID", "")
    try:
        ipc.request({"op": op, "token": token} if token else {"op": op}, path=sock, timeout=3.0)
    except ipc.NotRunning:
        return False  # nothing listens, or a file left by an app that died: start() reclaims it
    except ipc.IpcError as exc:
        pid = lifecycle.holder_pid(sock)
        who = f"deck-tray (pid {pid})" if pid else "a deck-tray"
        raise SystemExit(f"deck-tray: {who} holds {sock} but does not answer ({exc}); it seems hung.\n"
                         "Run 'deck-tray --replace' to end it and start a new one.") from exc
    print("deck-tray is already running; its window was " + ("raised" if op == "show" else "shown or hidden"))
    return True


def _replace_running(sock: Path) -> None:
    """End the deck-tray holding ``sock`` (answering or hung), for ``deck-tray --replace``.

    Raises:
        SystemExit: the holder is not a deck-tray of this user, or outlived SIGKILL.
    """
    pid = lifecycle.holder_pid(sock)
    if pid is None:
        return
    try:
        print(lifecycle.end_holder(pid), flush=True)
    except (PermissionError, TimeoutError) as exc:
        raise SystemExit(f"deck-tray: {exc}") from exc


def run_app(opencode_urls: Sequence[str] = (), *, replace: bool = False, toggle: bool = False) -> int:
    """Start the tray app; the process ends in here (``os._exit``) once the app has stopped.

    Quitting (the tray's or window's Quit, SIGINT / SIGTERM / SIGHUP, the session bus closing,
    the display connection breaking) saves drafts and window state first, stops the services
    (each step bounded), and ends the process at most :data:`lifecycle.GRACE_S` seconds after
    the request, whatever a thread is doing (every thread's stack is logged then).

    Args:
        opencode_urls: opencode servers to follow besides the discovered and configured ones.
        replace: end a deck-tray already holding the socket (SIGTERM, then SIGKILL) and start.
        toggle: have a running deck-tray show its window at the oldest waiting request or hide
            it (``deck-tray --toggle``, for a desktop's own keyboard shortcut); start when none runs.

    Returns:
        0 when another deck-tray answered and raised (or toggled) its window; otherwise it does
        not return.

    Raises:
        SystemExit: a deck-tray holds the socket but does not answer (without ``replace``), or
            ``replace`` could not end it.
    """
    sock = ipc.socket_path()
    if replace:
        _replace_running(sock)
    elif _raise_running(sock, "toggle" if toggle else "show"):
        return 0
    log_path = setup_logging()
    qt_messages.install()  # Qt's own warnings into the log, from the QApplication on
    # Qt picks its platform when the QApplication is made: a pinned window on Wayland runs
    # through XWayland, where it can stay on top (core.display). Passed as "-platform", not
    # QT_QPA_PLATFORM, so terminals and agents started from the app do not inherit it.
    platform = display.choose(os.environ, pinned=bool(open_settings().value("window/pinned", False, type=bool)))
    argv = [*sys.argv, "-platform", platform.qpa] if platform.qpa else list(sys.argv)
    qapp = QApplication.instance() or QApplication(argv)
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("deck-tray")
    qapp.setApplicationVersion(__version__)
    qapp.setDesktopFileName(APP_ID)
    qapp.setWindowIcon(app_icon())
    qapp.setQuitOnLastWindowClosed(False)
    log.info("deck-tray %s starting (pid %d); log at %s", __version__, os.getpid(), log_path)
    log.info("window platform: %s (Qt runs %s)", platform.detail, qapp.platformName())
    hard_exit = lifecycle.HardExit(log_path)
    running: list[DeckTrayApp] = []
    stopped: list[bool] = []

    def last_moments(why: str, code: int) -> None:
        """Qt will not run its event loop again: save synchronously and end the process."""
        hard_exit.arm(lifecycle.GRACE_S, why)
        if running and not stopped:
            try:
                running[0].stop_now()
            except Exception:
                log.exception("saving state before the exit failed")
        log.info("deck-tray exits (code %d)", code)
        lifecycle.finish(code)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        app = DeckTrayApp(opencode_urls=opencode_urls, ipc_path=sock, platform=platform)
        install_error_funnel(loop, ErrorReporter(app.window))
        why: list[str] = []

        def request_quit(reason: str) -> None:
            if not app.quit_event.is_set():
                why.append(reason)
                app.quit_event.set()

        for sig in lifecycle.quit_signals():
            loop.add_signal_handler(sig, request_quit, sig.name)
        try:
            app.start()
        except ipc.AlreadyRunning:  # another one started at the same moment
            _raise_running(sock)
            return
        running.append(app)
        # The launcher's token was for the first window (Qt's Wayland platform used it when the
        # window was shown); programs started from the app must not inherit a spent one.
        for name in ("XDG_ACTIVATION_TOKEN", "DESKTOP_STARTUP_ID"):
            os.environ.pop(name, None)
        # The Wayland platform calls C exit() when the compositor goes away; registered after
        # start-up, this runs before the destructors Qt registered.
        lifecycle.on_c_exit(lambda status: last_moments(
            f"the display connection broke (Qt called exit({status}))", status or 1))
        bus = asyncio.ensure_future(lifecycle.watch_bus(request_quit))
        await app.start_notifications()
        await app.quit_event.wait()
        hard_exit.arm(lifecycle.GRACE_S, f"quitting: {why[0] if why else 'Quit chosen'}")
        bus.cancel()
        await app.stop()
        stopped.append(True)

    settle_heap()
    collector = lifecycle.GuiThreadGc()
    collector.start()
    # The loop is run once and never closed, and nothing runs Qt's event loop after it ended
    # on its own: when the X connection breaks, QXcbConnection leaves the loop with 1, and
    # again at every later processEvents (qasync's run_until_complete drains the queue once
    # more, asyncio.Runner's clean-up runs the loop again: both were seen spinning or hung
    # on events of a dying process, issue #20).
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    task = loop.create_task(main())
    task.add_done_callback(lambda _t: loop.stop())
    code = 0
    try:
        loop.run_forever()
        if not task.done():  # Qt left its event loop: the display connection broke, or Qt quit
            last_moments("Qt's event loop ended on its own (the display connection broke?)", 1)
        task.result()
    except SystemExit as exc:  # another deck-tray won the race for the socket and did not answer
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("deck-tray stopped on an error")
        code = 1
    if running and not stopped:
        last_moments("the app ended before its orderly stop", code or 1)
    log.info("deck-tray exits (code %d)", code)
    lifecycle.finish(code)
    return code  # not reached: finish() ends the process
