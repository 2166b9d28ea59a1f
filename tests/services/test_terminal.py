""""Open in terminal" against a real tmux server on a private socket.

Each test starts its own server under the isolated ``$TMUX_TMPDIR`` (tests/conftest.py),
so :class:`Tmux` finds exactly that server. All waits are deadline polls.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import shlex
import socket as pysocket
import stat
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from deck_tray.services.panes import Tmux, socket_dir
from deck_tray.services.terminal import TerminalReport, open_in_pane
from tests.helpers import wait_until

pytestmark = pytest.mark.skipif(Tmux().binary is None, reason="tmux is not installed")


class Server:
    """A private tmux server (``-f /dev/null``: no user configuration)."""

    def __init__(self, name: str) -> None:
        d = socket_dir()
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket = str(d / name)
        self.clients: list[tuple[subprocess.Popen[bytes], int]] = []

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def new_session(self, name: str, width: int, height: int) -> None:
        self.tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), "sleep", "600")

    def show(self, target: str, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", target, fmt).strip()

    def pane_ids(self) -> set[str]:
        return set(self.tmux("list-panes", "-a", "-F", "#{pane_id}").split())

    def attach(self, session: str, width: int, height: int) -> None:
        """A real client on a pty of the given size, attached to ``session``."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        proc = subprocess.Popen(["tmux", "-S", self.socket, "attach-session", "-t", session],
                                stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                env={**os.environ, "TERM": "xterm-256color"})
        os.close(slave)
        threading.Thread(target=_drain, args=(master,), daemon=True).start()
        self.clients.append((proc, master))
        wait_until(lambda: session in self.tmux("list-clients", "-F", "#{client_session}").split(),
                   what="the client to attach")

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10)
        for proc, _master in self.clients:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server("terminal-test")
    yield s
    s.kill()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "my dir #{pane_id} ~x"  # a space, a tmux format and a tilde: all literal
    d.mkdir()
    return d


def open_pane(argv: list[str], cwd: Path | str, **kw: Any) -> TerminalReport:
    return asyncio.run(open_in_pane(Tmux(), argv, str(cwd), **kw))


def process_of(server: Server, pane_id: str) -> psutil.Process:
    return psutil.Process(int(server.show(pane_id, "#{pane_pid}")))


def test_wide_pane_is_split_side_by_side(server: Server, workdir: Path) -> None:
    server.new_session("work", 200, 50)
    before = server.pane_ids()
    report = open_pane(["sleep", "30"], workdir, title="deck #{x}", env={"DECK_TRAY_HINT": "a b=c"})
    assert report.ok, report.detail
    assert report.pane is not None and report.pane.pane_id not in before
    new = report.pane.pane_id
    assert report.pane.label == "work:0.1"
    assert "work:0.1" in report.detail and "to the right of your pane work:0.0" in report.detail
    assert server.show(new, "#{pane_left} #{pane_top} #{pane_width}") == "101 0 99"
    assert server.show(new, "#{pane_active} #{pane_current_command} #{pane_title}") == "1 sleep deck #{x}"
    proc = process_of(server, new)
    assert proc.cmdline() == ["sleep", "30"]  # run directly: no shell in between
    assert proc.cwd() == str(workdir)
    assert proc.environ()["DECK_TRAY_HINT"] == "a b=c"
    assert report.command == f"cd {shlex.quote(str(workdir))} && sleep 30"


def test_narrow_tall_window_is_split_top_and_bottom(server: Server, workdir: Path) -> None:
    server.new_session("narrow", 100, 50)
    report = open_pane(["sleep", "30"], workdir)
    assert report.ok, report.detail
    assert report.pane is not None
    assert server.show(report.pane.pane_id, "#{window_index} #{pane_left} #{pane_width}") == "0 0 100"
    assert int(server.show(report.pane.pane_id, "#{pane_top}")) > 0
    assert "below your pane narrow:0.0" in report.detail


def test_small_window_gets_a_new_window(server: Server, workdir: Path) -> None:
    server.new_session("tiny", 70, 20)
    report = open_pane(["sleep", "30"], workdir, title="oc #1")
    assert report.ok, report.detail
    assert report.pane is not None and report.pane.label == "tiny:1.0"
    assert server.show(report.pane.pane_id, "#{window_index}|#{window_name}|#{window_active}") == "1|oc #1|1"
    assert server.show("tiny:", "#{session_windows}") == "2"
    assert "in a new window of session tiny" in report.detail


def test_attached_client_decides_over_session_activity(server: Server, workdir: Path) -> None:
    server.new_session("z-mine", 200, 50)
    server.attach("z-mine", 90, 80)  # the window follows the client: 90 columns, stacked split
    wait_until(lambda: server.show("z-mine:", "#{window_width}") == "90", what="the window to fit the client")
    server.new_session("a-other", 200, 50)  # newer, and listed first: the fallback would pick it
    server.tmux("split-window", "-t", "z-mine", "-v", "sleep", "600")  # focus moves to z-mine:0.1
    report = open_pane(["sleep", "30"], workdir)
    assert report.ok, report.detail
    assert report.pane is not None and report.pane.label.startswith("z-mine:0.")
    assert "below your pane z-mine:0.1" in report.detail
    assert server.show("a-other:", "#{window_panes}") == "1"


def test_no_server_refuses_with_a_command_to_paste(tmp_path: Path) -> None:
    d = socket_dir()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    stale = pysocket.socket(pysocket.AF_UNIX)  # a socket file nobody listens on
    stale.bind(str(d / "stale"))
    stale.close()
    assert stat.S_ISSOCK((d / "stale").lstat().st_mode)
    argv = ["opencode", "attach", "http://127.0.0.1:4096", "--session", "ses_1 'x'"]
    report = open_pane(argv, tmp_path)
    assert not report.ok and report.pane is None
    assert report.detail.startswith("No tmux server is running. Start tmux, then try again — or run: ")
    assert shlex.join(argv) in report.detail
    pasted = report.detail.split("or run: ", 1)[1]
    assert shlex.split(pasted) == ["cd", str(tmp_path), "&&", *argv]


def test_command_that_exits_at_once_is_a_failure(server: Server, workdir: Path) -> None:
    server.new_session("work", 200, 50)
    before = server.pane_ids()
    report = open_pane(["false"], workdir)
    assert not report.ok
    assert "the command exited at once" in report.detail.lower()
    assert "false" in report.detail  # the command to run by hand
    assert report.pane is None
    assert wait_until(lambda: server.pane_ids() == before, what="the failed pane to close")


def test_missing_program_is_a_failure(server: Server, workdir: Path) -> None:
    server.new_session("work", 200, 50)
    report = open_pane(["/nonexistent/program", "--flag"], workdir)
    assert not report.ok and "exited at once" in report.detail


def test_dead_pane_kept_by_remain_on_exit(server: Server, workdir: Path) -> None:
    server.new_session("work", 200, 50)
    server.tmux("set-option", "-g", "remain-on-exit", "on")
    report = open_pane(["sh", "-c", "echo broken; exit 3"], workdir)
    assert not report.ok
    assert report.pane is not None and report.pane.label == "work:0.1"
    # tmux 3.3a now and then leaves the process a zombie and never learns its status.
    assert re.search(r"exited at once( with status 3)?; tmux kept its pane work:0\.1", report.detail)


def test_command_that_falls_back_to_a_shell_is_a_failure(server: Server, workdir: Path) -> None:
    server.new_session("work", 200, 50)
    report = open_pane(["env", "sh"], workdir, timeout_s=1.0)  # not a shell itself, but ends in one
    assert not report.ok
    assert report.pane is not None and "returned to a shell prompt" in report.detail


def test_single_argument_runs_without_a_shell(server: Server, workdir: Path, tmp_path: Path) -> None:
    prog = tmp_path / "my prog #1; echo"  # a shell would split this
    prog.write_text("#!/bin/sh\nexec sleep 31\n")
    prog.chmod(0o755)
    server.new_session("work", 200, 50)
    report = open_pane([str(prog)], workdir)
    assert report.ok, report.detail
    assert report.pane is not None
    assert process_of(server, report.pane.pane_id).cmdline() == ["sleep", "31"]


def test_missing_folder_is_refused(server: Server, tmp_path: Path) -> None:
    server.new_session("work", 200, 50)
    before = server.pane_ids()
    report = open_pane(["sleep", "30"], tmp_path / "gone")
    assert not report.ok and "does not exist" in report.detail
    assert server.pane_ids() == before


def test_secret_env_is_refused_before_tmux_runs(server: Server, workdir: Path) -> None:
    server.new_session("work", 200, 50)
    before = server.pane_ids()
    with pytest.raises(ValueError, match="keyring"):
        open_pane(["sleep", "30"], workdir, env={"OPENCODE_SERVER_PASSWORD": "hunter2"})
    assert server.pane_ids() == before


def test_tmux_not_installed(tmp_path: Path) -> None:
    mux = Tmux()
    mux.binary = None
    report = asyncio.run(open_in_pane(mux, ["opencode"], str(tmp_path)))
    assert not report.ok and report.detail.startswith("tmux is not installed")
    assert report.detail.endswith("&& opencode")
