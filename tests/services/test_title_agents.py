"""An agent that tells its state only in its pane title (Gemini CLI 0.61.0, issue #19), in a
real tmux pane: the app's monitor follows the title (one ``list-panes`` per server), reads
the confirmation's real options once the title says it waits, and an Allow typed by the
dispatcher answers it. The agent is a stand-in drawing the captured screens and titles
(``title_agent.py``); the real Gemini CLI runs in ``tests/e2e/test_gemini_cli.py``."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deck_tray.core.model import AgentKind, DeliveryState, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.scan import Scanner
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.monitor import Monitor
from deck_tray.services.panes import Tmux
from deck_tray.services.registry import SessionRegistry
from tests.helpers import run_until

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
              pytest.mark.usefixtures("qt_slate")]
AGENT = Path(__file__).with_name("title_agent.py")


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-S", socket, "-f", "/dev/null", *args], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    sock_dir = Path(os.environ["TMUX_TMPDIR"]) / f"tmux-{os.getuid()}"
    sock_dir.mkdir(mode=0o700, exist_ok=True)
    socket = str(sock_dir / "title-test")
    tmux(socket, "new-session", "-d", "-s", "keep", "-x", "160", "-y", "45", "sleep", "600")
    yield socket
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def test_the_title_says_waiting_the_screen_gives_the_options_and_allow_answers(
        server: str, tmp_path: Path, qloop: asyncio.AbstractEventLoop) -> None:
    log, ctl = tmp_path / "received.bin", tmp_path / "ctl"
    ctl.write_text("")
    out = tmux(server, "new-window", "-P", "-F", "#{pane_id} #{pane_pid}", sys.executable, str(AGENT), str(log),
               str(ctl))
    pane_id, pid = out.split()[0], int(out.split()[1])
    home = tmp_path / ".gemini"
    home.mkdir()
    proc = AgentProcess(pid, "gemini", str(tmp_path), started_at=time.time(), env=(("HOME", str(tmp_path)),))
    scanner = Scanner(tmp_path / ".claude", tmp_path / ".codex", process_lister=lambda: [proc],
                      adapter_homes={AgentKind.GEMINI_CLI: home})
    registry = SessionRegistry(announce_hold=0)
    monitor = Monitor(scanner, Tmux(), registry)
    sid = f"gemini-{pid}"

    def status() -> SessionStatus | None:
        s = registry.get(sid)
        return s.status if s is not None and s.pane is not None else None

    monitor.start()
    try:
        run_until(qloop, lambda: status() is SessionStatus.IDLE, "the ready title read as idle")
        ctl.write_text("working\n")
        run_until(qloop, lambda: status() is SessionStatus.BUSY, "the working title read as busy")
        t0 = time.monotonic()
        ctl.write_text("working\npermission\n")
        run_until(qloop, lambda: status() is SessionStatus.WAITING_PERMISSION, "the action-required title")
        seen_s = time.monotonic() - t0
        s = registry.get(sid)
        assert s is not None and s.pending is not None
        assert (s.pending.tool, s.pending.summary) == ("Shell", "touch gemini-ran.txt")
        assert s.pending.options == ("Allow once", "Allow for this session", "No, suggest changes")
        assert s.pane is not None and s.pane.pane_id == pane_id
        print(f"\ntitle → waiting seen after {seen_s * 1000:.0f} ms (title tick {monitor._title_tick.interval()} ms)")
        report = qloop.run_until_complete(Dispatcher(Tmux(), accept_timeout=10).dispatch(s, Reply(ReplyKind.ALLOW)))
        assert report.state is DeliveryState.ACCEPTED, report.detail
        assert log.read_bytes() == b"1"
        run_until(qloop, lambda: status() is SessionStatus.IDLE, "ready again after the answer")
    finally:
        qloop.run_until_complete(monitor.stop())
