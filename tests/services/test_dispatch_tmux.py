"""The dispatcher against a real tmux server and a stand-in agent that records every byte.

What reaches the pane is compared byte for byte: literal typing, bracketed paste of long
multi-line unicode text, Enter as its own key, menu keys, and refusals that type nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, PaneRef, Session, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.dispatcher import MENU_SETTLE_S, Dispatcher
from deck_tray.services.panes import Tmux, pane_for_pid, server_sockets
from tests.helpers import wait_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
STANDIN = Path(__file__).with_name("standin_agent.py")


@dataclass
class Pane:
    socket: str
    pane_id: str
    pid: int
    log: Path

    def session(self, status: SessionStatus = SessionStatus.IDLE) -> Session:
        return Session(id="11111111-2222", agent=AgentKind.CLAUDE_CODE, pid=self.pid, status=status,
                       pane=PaneRef("tmux", self.pane_id, self.socket, "t:0.0"))

    def received(self) -> bytes:
        return self.log.read_bytes() if self.log.exists() else b""


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-S", socket, "-f", "/dev/null", *args], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    sock_dir = Path(os.environ["TMUX_TMPDIR"]) / f"tmux-{os.getuid()}"
    sock_dir.mkdir(mode=0o700, exist_ok=True)
    socket = str(sock_dir / "dispatch-test")
    tmux(socket, "new-session", "-d", "-s", "keep", "-x", "120", "-y", "40", "sleep", "600")
    yield socket
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def start(server: str, tmp_path: Path, mode: str = "idle") -> Pane:
    log = tmp_path / f"received-{time.monotonic_ns()}.bin"
    out = tmux(server, "new-window", "-P", "-F", "#{pane_id} #{pane_pid}", sys.executable, str(STANDIN),
               str(log), mode)
    pane_id, pid = out.split()
    pane = Pane(server, pane_id, int(pid), log)
    marker = "Esc to cancel" if mode == "permission" else "? for shortcuts"
    wait_until(lambda: marker in tmux(server, "capture-pane", "-p", "-t", pane_id))
    return pane


def send(session: Session, reply: Reply) -> DeliveryReport:
    return asyncio.run(Dispatcher(Tmux(), accept_timeout=0.2).dispatch(session, reply))


def test_servers_are_found_and_the_pid_maps_to_its_pane(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path)
    assert server in server_sockets()
    panes = asyncio.run(Tmux().all_panes())
    found = pane_for_pid(pane.pid, panes)
    assert found is not None and found.pane_id == pane.pane_id and found.server == server


def test_single_line_is_typed_then_enter_alone(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path)
    report = send(pane.session(), Reply(ReplyKind.PROMPT, "run the tests please"))
    assert report.state is DeliveryState.SUBMITTED
    assert wait_until(lambda: pane.received() == b"run the tests please\r")


def test_long_multiline_unicode_goes_through_one_bracketed_paste(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path)
    text = "\n".join(f"línea {i}: 日本語 🚀 \"q\" $HOME `x`" for i in range(300))  # ≈ 10 KB
    report = send(pane.session(), Reply(ReplyKind.PROMPT, text))
    assert report.state is DeliveryState.SUBMITTED
    # tmux turns LF into CR inside a paste unless -r; deck-tray passes -r, so LF stays LF.
    expected = b"\x1b[200~" + text.encode() + b"\x1b[201~\r"
    assert wait_until(lambda: pane.received() == expected, 30)


def test_control_characters_never_reach_the_pane(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path)
    send(pane.session(), Reply(ReplyKind.PROMPT, "a\x1b[31mred\x1b[0m\x07b\x00c\r\nd\x1b]0;title\x07e"))
    got = wait_until(lambda: pane.received().endswith(b"\r") and pane.received())
    body = got[len(b"\x1b[200~"):-len(b"\x1b[201~\r")] if got.startswith(b"\x1b[200~") else got[:-1]
    assert body == b"aredbc\nde"


def test_permission_answers_use_the_menu_keys(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path, "permission")
    send(pane.session(SessionStatus.WAITING_PERMISSION), Reply(ReplyKind.ALLOW))
    assert wait_until(lambda: pane.received() == b"1")
    pane2 = start(server, tmp_path, "permission")
    send(pane2.session(SessionStatus.WAITING_PERMISSION), Reply(ReplyKind.DENY))
    assert wait_until(lambda: pane2.received() == b"\x1b")


def test_a_new_claude_menu_gets_its_key_once_it_takes_keys(server: str, tmp_path: Path) -> None:
    """Claude Code 2.1.332 drops a key pressed right as a session's first permission dialog appears
    (MENU_SETTLE_S): a request seen just now is answered MENU_SETTLE_S after it, once; an older one
    at once."""
    pane = start(server, tmp_path, "permission")
    t0 = time.monotonic()
    fresh = replace(pane.session(SessionStatus.WAITING_PERMISSION), updated_at=time.time())
    report = send(fresh, Reply(ReplyKind.ALLOW))
    assert time.monotonic() - t0 >= MENU_SETTLE_S - 0.05
    assert report.state is not DeliveryState.REFUSED, report
    assert wait_until(lambda: pane.received() == b"1")
    old = start(server, tmp_path, "permission")
    t0 = time.monotonic()
    send(replace(old.session(SessionStatus.WAITING_PERMISSION), updated_at=time.time() - 5), Reply(ReplyKind.ALLOW))
    assert time.monotonic() - t0 < MENU_SETTLE_S
    assert wait_until(lambda: old.received() == b"1")


def test_a_menu_reported_before_it_is_drawn_is_waited_for(server: str, tmp_path: Path) -> None:
    """The session waits on a permission its pane draws 0.6 s later (2.1.332 writes "waiting" first):
    the key goes to the menu once it is drawn and has taken keys, not refused."""
    pane = start(server, tmp_path, "late-permission")
    t0 = time.monotonic()
    report = send(pane.session(SessionStatus.WAITING_PERMISSION), Reply(ReplyKind.ALLOW))
    assert report.state is not DeliveryState.REFUSED, report
    assert time.monotonic() - t0 >= 0.5 + MENU_SETTLE_S
    assert wait_until(lambda: pane.received() == b"1")


def test_prompt_is_refused_while_a_menu_is_open(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path, "permission")
    report = send(pane.session(), Reply(ReplyKind.PROMPT, "hello"))
    assert report.state is DeliveryState.REFUSED
    assert "permission prompt" in report.detail and report.text == "hello"
    time.sleep(0.3)
    assert pane.received() == b""


def test_refused_when_the_pane_is_gone(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path)
    tmux(server, "kill-pane", "-t", pane.pane_id)
    report = send(pane.session(), Reply(ReplyKind.PROMPT, "keep me"))
    assert report.state is DeliveryState.REFUSED
    assert "no longer exists" in report.detail and report.text == "keep me"


def test_refused_when_a_shell_replaced_the_agent(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path)
    tmux(server, "respawn-pane", "-k", "-t", pane.pane_id, "bash", "--norc", "--noprofile")
    wait_until(lambda: tmux(server, "display", "-p", "-t", pane.pane_id, "#{pane_current_command}") == "bash\n")
    report = send(pane.session(), Reply(ReplyKind.PROMPT, "rm -rf typed-into-a-shell"))
    assert report.state is DeliveryState.REFUSED
    time.sleep(0.3)
    assert "typed-into-a-shell" not in tmux(server, "capture-pane", "-p", "-t", pane.pane_id)


def test_refused_when_the_agent_runs_in_another_pane(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path)
    other = start(server, tmp_path)
    report = send(replace(pane.session(), pid=other.pid), Reply(ReplyKind.PROMPT, "wrong target"))
    assert report.state is DeliveryState.REFUSED
    assert "no longer runs in pane" in report.detail
    time.sleep(0.3)
    assert pane.received() == b"" and other.received() == b""


def test_refused_for_ended_sessions_and_sessions_without_a_pane(server: str, tmp_path: Path) -> None:
    pane = start(server, tmp_path)
    ended = replace(pane.session(), status=SessionStatus.ENDED)
    assert send(ended, Reply(ReplyKind.PROMPT, "x")).state is DeliveryState.REFUSED
    nopane = replace(pane.session(), pane=None)
    report = send(nopane, Reply(ReplyKind.PROMPT, "x"))
    assert report.state is DeliveryState.REFUSED and "tmux" in report.detail
    time.sleep(0.3)
    assert pane.received() == b""


def test_refused_with_a_clear_reason_when_tmux_is_missing(server: str, tmp_path: Path, monkeypatch) -> None:
    pane = start(server, tmp_path)
    monkeypatch.setattr("deck_tray.services.panes.shutil.which", lambda _name: None)
    no_tmux = Tmux()
    assert not no_tmux.available
    report = asyncio.run(Dispatcher(no_tmux, accept_timeout=0.2).dispatch(pane.session(), Reply(ReplyKind.PROMPT, "x")))
    assert report.state is DeliveryState.REFUSED and "tmux is not installed" in report.detail
    assert report.text == "x"
