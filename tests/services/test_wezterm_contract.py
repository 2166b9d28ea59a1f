"""Contract tests of the WezTerm adapter against ``fake_wezterm/wezterm``.

WezTerm cannot be installed here, so the fake reproduces the CLI surface read from WezTerm's
source (argv, ``list --format json``, send-text's paste and ``--no-paste`` paths, error lines and
exit codes, auto-start of a mux server) on real ptys. The first test checks the fake does what the
source says where deck-tray relies on it; the others pin the exact argv and environment deck-tray
uses and the refusals that type nothing. The typing and refusal scenarios shared by every terminal
are in ``test_terminal_adapters.py`` (the ``wezterm`` rig).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core import procs
from deck_tray.core.model import DeliveryState, PaneRef
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.panes import MuxError, MuxSet
from deck_tray.services.terminals.wezterm import NO_SOCKET, WezTerm, _error
from tests.helpers import wait_until

from .terminal_rigs import FAKE_WEZTERM_DIR, Recording, WezTermRig

ERROR_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}  ERROR  wezterm > (.*); terminating$")
#: A raw-mode recorder that, unlike the stand-in agent, does not turn on bracketed paste.
PLAIN_RECORDER = ("import os, sys, tty; tty.setraw(0); out = open(sys.argv[1], 'ab', buffering=0)\n"
                  "while True:\n    d = os.read(0, 65536)\n    if not d: break\n    out.write(d)\n")


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WezTermRig]:
    r = WezTermRig(tmp_path)
    monkeypatch.setenv("PATH", r.env["PATH"])
    monkeypatch.setenv("FAKE_WEZTERM_LOG", r.env["FAKE_WEZTERM_LOG"])
    for var in ("WEZTERM_PANE", "WEZTERM_UNIX_SOCKET"):
        monkeypatch.delenv(var, raising=False)
    try:
        yield r
    finally:
        r.stop()


def wezterm(rig: WezTermRig, *args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["wezterm", *args], env=dict(rig.env, **env), input=stdin, capture_output=True, timeout=20)


def listing(rig: WezTermRig, sock: str) -> list[dict[str, Any]]:
    out = wezterm(rig, "cli", "--no-auto-start", "list", "--format", "json", WEZTERM_UNIX_SOCKET=sock)
    return list(json.loads(out.stdout))


def test_the_fake_behaves_as_wezterms_source_says(rig: WezTermRig) -> None:
    agent = rig.start_agent()
    sock = agent.ref.server
    plain_log = rig.tmp / "plain.bin"
    rig.open([sys.executable, "-c", PLAIN_RECORDER, str(plain_log)])
    wait_until(plain_log.exists, what="the plain recorder")
    plain = max(listing(rig, sock), key=lambda p: p["pane_id"])
    assert plain["pane_id"] > int(agent.ref.pane_id)

    # A pane that does not exist: exit 1 and the error line, for send-text and get-text alike.
    for args in (["send-text", "--pane-id", "99", "--no-paste", "x"], ["get-text", "--pane-id", "99"]):
        r = wezterm(rig, "cli", "--no-auto-start", *args, WEZTERM_UNIX_SOCKET=sock)
        m = ERROR_LINE.match(r.stderr.decode().strip())
        assert r.returncode == 1 and m and m.group(1) == "no such pane 99", r.stderr
    # No GUI at the socket: a connect error, and an auto-start attempt unless --no-auto-start.
    gone = str(rig.tmp / "gone.sock")
    r = wezterm(rig, "cli", "--no-auto-start", "list", WEZTERM_UNIX_SOCKET=gone)
    m = ERROR_LINE.match(r.stderr.decode().strip())
    assert r.returncode == 1 and m and m.group(1).startswith(f'failed to connect to Socket("{gone}")')
    assert not any(c.get("auto_start") for c in rig.calls())
    r = wezterm(rig, "cli", "list", WEZTERM_UNIX_SOCKET=gone)
    assert r.returncode == 1 and "Will try spawning server" in r.stderr.decode()
    assert any(c.get("auto_start") for c in rig.calls())
    # Paste wraps only where the program asked for bracketed paste; elsewhere LF becomes CR.
    assert wezterm(rig, "cli", "send-text", "--pane-id", agent.ref.pane_id, stdin=b"a\nb",
                   WEZTERM_UNIX_SOCKET=sock).returncode == 0
    wait_until(lambda: agent.received() == b"\x1b[200~a\nb\x1b[201~", what="the bracketed paste")
    assert wezterm(rig, "cli", "send-text", "--pane-id", str(plain["pane_id"]), "a\nb\x1b[201~c",
                   WEZTERM_UNIX_SOCKET=sock).returncode == 0
    wait_until(lambda: plain_log.read_bytes() == b"a\rbc", what="the plain paste")
    # --no-paste writes the bytes as they are; an unknown argument is clap's exit 2.
    assert wezterm(rig, "cli", "send-text", "--pane-id", agent.ref.pane_id, "--no-paste", stdin=b"x\ny\r",
                   WEZTERM_UNIX_SOCKET=sock).returncode == 0
    wait_until(lambda: agent.received().endswith(b"x\ny\r"), what="the raw text")
    assert wezterm(rig, "cli", "send-text", "--bogus", WEZTERM_UNIX_SOCKET=sock).returncode == 2
    # list --format json carries the documented fields, tty_name a real pty.
    entry = next(p for p in listing(rig, sock) if str(p["pane_id"]) == agent.ref.pane_id)
    assert {"window_id", "tab_id", "pane_id", "workspace", "size", "title", "cwd", "is_active", "is_zoomed",
            "tty_name"} <= set(entry)
    assert os.stat(entry["tty_name"]).st_rdev == procs.tty_facts(agent.pid).tty_nr  # type: ignore[union-attr]


def test_deck_tray_uses_exactly_these_calls(rig: WezTermRig) -> None:
    agent = rig.start_agent()
    sock, pane = agent.ref.server, agent.ref.pane_id
    assert sock == procs.environ(agent.pid)["WEZTERM_UNIX_SOCKET"] and pane == procs.environ(agent.pid)["WEZTERM_PANE"]
    before = len(rig.calls())
    dispatcher = Dispatcher(rig.adapter, accept_timeout=0)
    asyncio.run(dispatcher.dispatch(agent.session(), Reply(ReplyKind.PROMPT, "one\ntwo")))
    asyncio.run(dispatcher.dispatch(agent.session(), Reply(ReplyKind.PROMPT, "three")))
    wait_until(lambda: agent.received().endswith(b"three\r"), what="both prompts")
    calls = rig.calls()[before:]
    for c in calls:
        assert c["argv"][:2] == ["cli", "--no-auto-start"], c
        assert c["env"].get("WEZTERM_UNIX_SOCKET") == sock and "WEZTERM_PANE" not in c["env"], c
        assert not c.get("auto_start")
    sends = [c["argv"][2:] for c in calls if c["argv"][2] == "send-text"]
    assert sends == [
        ["send-text", "--pane-id", pane],  # the paste (text on stdin)
        ["send-text", "--pane-id", pane, "--no-paste"],  # Enter
        ["send-text", "--pane-id", pane, "--no-paste"],  # the typed line
        ["send-text", "--pane-id", pane, "--no-paste"],  # Enter
    ]
    reads = {tuple(c["argv"][2:]) for c in calls if c["argv"][2] != "send-text"}
    assert reads <= {("list", "--format", "json"), ("get-text", "--pane-id", pane),
                     ("get-text", "--pane-id", pane, "--escapes")}
    assert agent.received() == b"\x1b[200~one\ntwo\x1b[201~\rthree\r"


def test_a_pane_without_a_socket_is_placed_and_refused(rig: WezTermRig) -> None:
    agent = rig.start_agent()
    env = {k: v for k, v in procs.environ(agent.pid).items() if k != "WEZTERM_UNIX_SOCKET"}  # as under Flatpak
    pane = asyncio.run(MuxSet([WezTerm()]).pane_for_agent(agent.pid, env))
    assert pane is not None and pane.server == "" and pane.pane_pid == agent.pane.pane_pid
    recording = Recording(WezTerm())
    session = replace(agent.session(), pane=pane.ref())
    report = asyncio.run(Dispatcher(recording, accept_timeout=0).dispatch(session, Reply(ReplyKind.PROMPT, "hi")))
    assert report.state is DeliveryState.REFUSED and report.detail.startswith(NO_SOCKET) and recording.sends == []


def test_a_wezterm_too_old_to_name_the_tty_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = WezTermRig(tmp_path)
    r.env["FAKE_WEZTERM_OLD"] = "1"
    monkeypatch.setenv("PATH", r.env["PATH"])
    try:
        r.open(["sleep", "60"])
        pane = asyncio.run(WezTerm().list_panes(r.sock))[0]
        assert pane["tty_name"] is None
        with pytest.raises(MuxError, match="20230408"):
            asyncio.run(WezTerm().pane(PaneRef("wezterm", str(pane["pane_id"]), r.sock)))
    finally:
        r.stop()


def test_error_lines_become_their_message() -> None:
    assert _error("12:00:01.123  ERROR  wezterm > no such pane 4; terminating\n", 1) == "no such pane 4"
    assert _error("Error: x.  Will try spawning server.\n12:00:01.123  ERROR  wezterm > (after spawning server) "
                  "failed to connect to Socket(\"/s\"); terminating\n", 1).startswith("(after spawning server)")
    assert _error("", 1) == "wezterm cli failed (1)"
    assert FAKE_WEZTERM_DIR.joinpath("wezterm").exists()
