"""Issue #20: the process-level pieces of a bounded shutdown (deck_tray.services.lifecycle, handover)."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deck_tray.services import lifecycle
from deck_tray.services.handover import Handover

REPO = Path(__file__).resolve().parents[2]


def run_py(code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_handover_runs_on_the_loop_thread_and_drops_after_close(qloop: Any) -> None:
    got: list[tuple[str, int]] = []
    h = Handover()

    async def scenario() -> None:
        assert h.open()
        done = threading.Event()

        def worker() -> None:
            h.call(lambda v: got.append((v, threading.get_ident())), "first")
            done.set()

        threading.Thread(target=worker).start()
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert h.call(got.append, "queued, then closed")
        h.close()
        assert not h.call(got.append, "after close")
        await asyncio.sleep(0.05)

    qloop.run_until_complete(scenario())
    assert got == [("first", threading.get_ident())]


def test_handover_without_a_loop_delivers_nothing() -> None:
    h = Handover()
    assert not h.open()
    assert not h.call(print, "x")


N = 2000


class Cycle:
    """A reference cycle that records the thread its collection ran on."""

    freed_on: list[int] = []

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        Cycle.freed_on.append(threading.get_ident())


def test_cycles_are_collected_on_the_gui_thread_only(qloop: Any) -> None:
    """With GuiThreadGc started, a worker thread making garbage cycles past the threshold collects
    nothing itself; the GUI thread's timer does (without it, the worker's allocations collect)."""
    collector = lifecycle.GuiThreadGc(interval_ms=20)
    was_enabled = gc.isenabled()
    Cycle.freed_on.clear()
    gui = threading.get_ident()

    async def scenario() -> None:
        collector.start()
        try:
            def churn() -> None:
                for _ in range(N):  # past threshold 0 (700): Python would collect on this thread
                    Cycle()

            t = threading.Thread(target=churn)
            t.start()
            t.join()
            deadline = time.monotonic() + 10
            while len(Cycle.freed_on) < N and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            collector.stop()

    try:
        qloop.run_until_complete(scenario())
    finally:
        if was_enabled:
            gc.enable()
    assert len(Cycle.freed_on) == N
    assert set(Cycle.freed_on) == {gui}, "every cycle was freed on the GUI thread"
    assert sum(collector.collections) >= 1


def test_hard_exit_ends_a_deadlocked_process_and_logs_its_stacks(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    t0 = time.monotonic()
    out = run_py(f"""
        import threading
        from deck_tray.services.lifecycle import HardExit
        HardExit({str(log)!r}).arm(0.5, "quitting: test")
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()  # a deadlock: only the hard exit ends this
    """)
    took = time.monotonic() - t0
    assert out.returncode == 1, out.stderr
    assert took < 10
    text = log.read_text()
    assert "Timeout (0:00:00.500000)!" in text and 'File "<string>", line 7' in text


def test_on_c_exit_runs_before_the_exit(tmp_path: Path) -> None:
    """C exit() (what Qt's Wayland plugin calls when the compositor goes away) reaches the callback."""
    mark = tmp_path / "mark"
    out = run_py(f"""
        import ctypes, os
        from deck_tray.services import lifecycle
        def last(status):
            open({str(mark)!r}, "w").write(f"status {{status}}")
            os._exit(status)
        assert lifecycle.on_c_exit(last)
        ctypes.CDLL(None).exit(7)
    """)
    assert out.returncode == 7, out.stderr
    assert mark.read_text() == "status 7"


@pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (Debian: dbus)")
def test_watch_bus_reports_the_bus_closing(tmp_path: Path, qloop: Any) -> None:
    r, w = os.pipe()
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", "--nosyslog",
                               f"--address=unix:path={tmp_path}/bus", f"--print-address={w}"], pass_fds=[w])
    os.close(w)
    with os.fdopen(r) as f:
        address = f.readline().strip()
    said: list[str] = []

    async def scenario() -> None:
        task = asyncio.ensure_future(lifecycle.watch_bus(said.append, bus=address))
        await asyncio.sleep(0.3)
        assert not task.done()
        daemon.kill()
        await asyncio.wait_for(task, 10)

    try:
        qloop.run_until_complete(scenario())
    finally:
        daemon.kill()
        daemon.wait(5)
    assert len(said) == 1 and said[0].startswith("the D-Bus session bus closed")


def test_end_holder_refuses_a_process_that_is_not_deck_tray() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        with pytest.raises(PermissionError, match="not a deck-tray"):
            lifecycle.end_holder(proc.pid)
        assert proc.poll() is None, "nothing was sent to it"
    finally:
        proc.kill()
        proc.wait()


def test_end_holder_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "deck_tray_standin.py"  # its command line names deck_tray
    script.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "print('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        said = lifecycle.end_holder(proc.pid, grace=0.5)
        assert "killed (SIGKILL)" in said
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_holder_pid_of_a_listening_socket_and_of_a_stale_file(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    assert lifecycle.holder_pid(path) == os.getpid()
    srv.close()  # the file stays: a stale socket
    assert path.exists() and lifecycle.holder_pid(path) is None
