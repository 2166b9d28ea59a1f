"""Contract tests of the zellij adapter against a fake zellij 0.44.1 CLI (``fake_zellij/zellij``).

zellij cannot be installed here, so ``fake_zellij/zellij`` reproduces the CLI surface pinned in
``shared/reference/zellij.md`` (argv shapes, ``list-panes --json``, ``ls -n``, exit-code traps) and
records every invocation and every byte each pane would receive. A fake ``zellij --server …``
process starts the pane root processes with ``ZELLIJ_PANE_ID`` in their environment, as the real
server does, so pane pids and the agent's ancestry are real ``/proc`` facts.

What is pinned: the exact argv deck-tray sends (write-chars / paste / send-keys with ``--pane-id``
and ``--``), the exact bytes that reach the pane, that every call runs without the caller's
``ZELLIJ*`` variables, and every refusal types nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from deck_tray.core import procs
from deck_tray.core.executables import parse_version
from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, PaneRef, Session, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.panes import MuxError, pane_for_pid
from deck_tray.services.zellij import Zellij, parse_sessions
from tests.helpers import wait_until

FAKE_DIR = Path(__file__).resolve().with_name("fake_zellij")
FAKE = FAKE_DIR / "zellij"
SCREENS = Path(__file__).resolve().parents[1] / "fixtures" / "screens"
#: Unique per test process: pane_roots() matches servers by session name machine-wide.
WORK = f"work-{os.getpid()}"
OTHER = f"other-{os.getpid()}"
SEND_ACTIONS = ("write-chars", "paste", "send-keys", "write")
ZELLIJ_VARS = ("ZELLIJ", "ZELLIJ_SESSION_NAME", "ZELLIJ_PANE_ID")
AGENT = ["sleep", "300"]


def term(n: int, command: str | None = "claude", *, spawn: list[str] | None = AGENT, tab: int = 0,
         **extra: Any) -> dict[str, Any]:
    """A terminal pane of sessions.json (``command`` None: zellij could not look it up)."""
    pane: dict[str, Any] = {"id": n, "is_plugin": False, "tab_position": tab, "tab_name": f"tab{tab}",
                            "pane_cwd": "/tmp", **extra}
    if command is not None:
        pane["pane_command"] = command
    if spawn is not None:
        pane["spawn"] = spawn
    return pane


def plugin(n: int, url: str, *, selectable: bool) -> dict[str, Any]:
    return {"id": n, "is_plugin": True, "plugin_url": url, "title": url, "is_selectable": selectable}


def work_session(**pane3: Any) -> dict[str, Any]:
    """One tab-bar plugin, a selectable plugin that shares id 3 with a terminal, a held command
    pane, a suspended command pane, the agent in terminal_3 and another agent in terminal_4."""
    return {"panes": [
        plugin(0, "tab-bar", selectable=False),
        plugin(3, "session-manager", selectable=True),
        term(1, None, spawn=None, exited=True, is_held=True, terminal_command="cargo test"),
        term(2, "cargo", spawn=None, is_held=True, terminal_command="cargo run"),
        term(3, pane3.pop("pane_command", "claude"), **({"is_focused": True} | pane3)),
        term(4, tab=1),
    ]}


class FakeZellij:
    """The fake's state directory plus the servers a test started."""

    def __init__(self, state: Path, sock_dir: Path) -> None:
        self.state = state
        self.sock_dir = sock_dir  # short: a unix socket path has at most 107 bytes
        self.servers: dict[str, subprocess.Popen[bytes]] = {}

    def setup(self, sessions: dict[str, Any], *, version: str | None = None,
              started_as: dict[str, str] | None = None) -> dict[str, dict[int, int]]:
        """Write sessions.json and start a server for every live session, in order;
        ``{session: {pane id: pid}}``. ``started_as`` maps a renamed session to its name at start."""
        (self.state / "sessions.json").write_text(json.dumps(sessions), encoding="utf-8")
        if version is not None:
            (self.state / "version").write_text(version + "\n", encoding="utf-8")
        started_as = started_as or {}
        return {name: self.start_server(name, started_as.get(name, name))
                for name, s in sessions.items() if not s.get("exited")}

    def start_server(self, session: str, started_as: str) -> dict[int, int]:
        sock = self.sock_dir / "contract_version_1" / started_as
        pids_file = self.state / f"pids-{session}.json"
        proc = subprocess.Popen([str(FAKE), "--server", str(sock)], stdin=subprocess.DEVNULL,
                                env=dict(os.environ, FAKE_ZELLIJ_SERVES=session))
        self.servers[session] = proc
        deadline = time.monotonic() + 10
        while not pids_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"fake zellij server for {session} did not start")
            time.sleep(0.01)
        return {int(k): v for k, v in json.loads(pids_file.read_text(encoding="utf-8")).items()}

    def stop(self) -> None:
        """End the servers this test started and every process under them (psutil checks pid reuse)."""
        for proc in self.servers.values():
            try:
                tree = psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                tree = []
            for child in tree:
                try:
                    child.kill()
                except psutil.Error:
                    pass
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            _wait_gone(tree)

    def screen(self, pane_id: str, text: str, ansi: str | None = None) -> None:
        (self.state / f"screen-{pane_id}.txt").write_text(text, encoding="utf-8")
        if ansi is not None:
            (self.state / f"screen-{pane_id}.ansi").write_text(ansi, encoding="utf-8")

    def calls(self) -> list[dict[str, Any]]:
        """Every invocation but the servers the test itself started."""
        log = self.state / "argv.jsonl"
        if not log.exists():
            return []
        rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        return [r for r in rows if "--server" not in r["argv"]]

    def argvs(self) -> list[list[str]]:
        return [r["argv"] for r in self.calls()]

    def sends(self) -> list[list[str]]:
        """Calls that put bytes into a pane."""
        return [a for a in self.argvs() if "action" in a and a[a.index("action") + 1] in SEND_ACTIONS]

    def received(self, pane_id: str = "terminal_3") -> bytes:
        f = self.state / f"pane-{pane_id}.bytes"
        return f.read_bytes() if f.exists() else b""

    def written(self) -> dict[str, bytes]:
        """Every pane that received anything."""
        return {f.name: f.read_bytes() for f in self.state.glob("pane-*.bytes")}


def _running(proc: psutil.Process) -> bool:
    """Still running (a killed orphan can stay a zombie until init gets to it)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(tree: list[psutil.Process]) -> None:
    wait_until(lambda: not any(_running(p) for p in tree), timeout=5)


@pytest.fixture
def fz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeZellij]:
    state = tmp_path / "zellij-state"
    state.mkdir()
    # The fake's "#!/usr/bin/env python3" finds this interpreter, without site-packages (stdlib
    # only): a pyenv shim plus site-packages .pth files cost ~150 ms per zellij call otherwise.
    py_dir = tmp_path / "python-bin"
    py_dir.mkdir()
    python3 = py_dir / "python3"
    python3.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n', encoding="utf-8")
    python3.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKE_DIR), str(py_dir), os.environ.get("PATH", "")]))
    monkeypatch.setenv("FAKE_ZELLIJ_STATE", str(state))
    for var in ZELLIJ_VARS:
        monkeypatch.delenv(var, raising=False)
    fake = FakeZellij(state, Path(tempfile.mkdtemp(prefix="fzsock-")))
    try:
        yield fake
    finally:
        fake.stop()
        shutil.rmtree(fake.sock_dir, ignore_errors=True)


def claude_session(pid: int, pane_id: str = "terminal_3", server: str = WORK,
                   status: SessionStatus = SessionStatus.IDLE) -> Session:
    return Session(id="zellij-contract-1", agent=AgentKind.CLAUDE_CODE, pid=pid, status=status,
                   pane=PaneRef("zellij", pane_id, server, f"{server}/tab0/{pane_id}"))


def dispatch(session: Session, reply: Reply, mux: Zellij | None = None) -> DeliveryReport:
    return asyncio.run(Dispatcher(mux or Zellij(), accept_timeout=0.2).dispatch(session, reply))


def action(*args: str, session: str = WORK) -> list[str]:
    return ["--session", session, "action", *args]


def fixture_screen(name: str) -> str:
    return (SCREENS / name).read_text(encoding="utf-8")


def assert_nothing_typed(fz: FakeZellij, report: DeliveryReport, text: str, *phrases: str) -> None:
    assert report.state is DeliveryState.REFUSED, report
    assert report.text == text, "the user's text is kept for another try"
    for phrase in phrases:
        assert phrase in report.detail, report.detail
    assert fz.sends() == []
    assert fz.written() == {}


def test_fake_zellij_reproduces_the_documented_traps(fz: FakeZellij) -> None:
    """The fake must behave like zellij where deck-tray relies on it, or the other tests prove nothing."""
    fz.setup({WORK: work_session(), OTHER: {"panes": [term(1)]}})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["zellij", *args], capture_output=True, text=True, timeout=10)

    missing = run(*action("list-panes", "--json", session="nope"))
    assert missing.returncode == 0 and missing.stderr.startswith("Session 'nope' not found.")
    unknown_pane = run(*action("write-chars", "--pane-id", "terminal_99", "--", "hi"))
    assert unknown_pane.returncode == 0 and unknown_pane.stderr == ""
    assert run(*action("write-chars", "--pane-id", "term3", "--", "hi")).returncode == 2
    escape = run(*action("send-keys", "--pane-id", "terminal_3", "Escape"))
    assert escape.returncode == 2 and 'Invalid key at position 1: "Escape"' in escape.stderr
    assert run(*action("write-chars", "--pane-id", "terminal_3", "-x")).returncode == 2
    assert fz.written() == {}
    assert run(*action("paste", "--pane-id", "3", "--", "a\nb")).returncode == 0
    assert run(*action("send-keys", "--pane-id", "terminal_3", "Esc", "1", "Enter")).returncode == 0
    assert fz.received() == b"\x1b[200~a\nb\x1b[201~\x1b1\r"


# -- version -------------------------------------------------------------------------------------


def test_version_is_parsed(fz: FakeZellij) -> None:
    assert parse_version("zellij 0.44.1\n") == (0, 44, 1)
    assert parse_version("zellij 0.45.0") == (0, 45, 0)
    assert parse_version("zellij\n") is None
    z = Zellij()
    assert z.binary == str(FAKE)
    asyncio.run(z.probe())
    assert z.version == (0, 44, 1) and z.available
    assert fz.argvs() == [["--version"]]


def test_zellij_before_044_is_unavailable_and_says_what_is_needed(fz: FakeZellij) -> None:
    fz.setup({}, version="0.43.1")
    z = Zellij()
    asyncio.run(z.probe())
    assert z.version == (0, 43, 1)
    assert not z.available
    assert "0.44.0" in z.unavailable_reason and "0.43.1" in z.unavailable_reason
    assert z.reason_for(PaneRef("zellij", "terminal_3", WORK)) == z.unavailable_reason
    assert asyncio.run(z.all_panes()) == []


def test_dispatch_to_zellij_043_is_refused_with_that_reason(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()}, version="0.43.1")
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, "hello"))
    assert_nothing_typed(fz, report, "hello", "0.44.0")


# -- sessions and panes --------------------------------------------------------------------------


def test_exited_sessions_are_skipped(fz: FakeZellij) -> None:
    text = (f"{WORK} [Created 1h 2m 3s ago] \n"
            "old [Created 3days ago] (EXITED - attach to resurrect)\n"
            "mine [Created 5s ago] (current)\n\n")
    assert parse_sessions(text) == [WORK, "mine"]
    assert asyncio.run(Zellij().sessions()) == []  # "No active zellij sessions found." exits 1
    fz.setup({"old": {"exited": True}, WORK: {"panes": []}, OTHER: {"panes": []}})
    assert asyncio.run(Zellij().sessions()) == [WORK, OTHER]


def test_all_panes_lists_terminal_panes_with_their_root_pids(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session(), "old": {"exited": True, "panes": [term(7)]}})
    panes = asyncio.run(Zellij().all_panes())
    by_id = {p.pane_id: p for p in panes}
    assert sorted(by_id) == ["terminal_1", "terminal_2", "terminal_3", "terminal_4"]
    assert len(panes) == 4, "plugin_3 must not show up as a second terminal_3"
    assert all(p.multiplexer == "zellij" and p.server == WORK for p in panes)
    assert by_id["terminal_1"].dead, "a held pane whose command exited is dead"
    assert by_id["terminal_2"].dead, "a held (suspended) command pane is not an agent either"
    assert not by_id["terminal_3"].dead and not by_id["terminal_4"].dead
    assert by_id["terminal_3"].pane_pid == pids[WORK][3]
    assert by_id["terminal_4"].pane_pid == pids[WORK][4]
    assert by_id["terminal_3"].command == "claude" and by_id["terminal_1"].command == ""
    assert by_id["terminal_3"].focused and not by_id["terminal_4"].focused
    assert by_id["terminal_4"].window == "1"
    ref = by_id["terminal_3"].ref()
    assert (ref.multiplexer, ref.pane_id, ref.server) == ("zellij", "terminal_3", WORK)
    assert not any("old" in a for a in fz.argvs()), "an exited session is not asked for panes"


def test_an_agent_pid_maps_to_its_pane(fz: FakeZellij) -> None:
    session = work_session()
    session["panes"].append(term(5, "sh", spawn=["sh", "-c", "sleep 300; true"]))
    pids = fz.setup({WORK: session})
    panes = asyncio.run(Zellij().all_panes())
    found = pane_for_pid(pids[WORK][3], panes)
    assert found is not None and (found.pane_id, found.server) == ("terminal_3", WORK)
    found = pane_for_pid(pids[WORK][4], panes)
    assert found is not None and found.pane_id == "terminal_4"
    # An agent started from the pane's shell is found through its ancestors.
    grandchild = wait_until(lambda: psutil.Process(pids[WORK][5]).children())[0].pid
    found = pane_for_pid(grandchild, panes)
    assert found is not None and found.pane_id == "terminal_5"
    assert pane_for_pid(os.getpid(), panes) is None


# -- what is typed -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["run the tests please", "--help is no flag: naïve café 日本語 🚀 $HOME"],
                         ids=["ascii", "dash-unicode"])
def test_a_short_line_is_typed_then_enter_alone(fz: FakeZellij, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    pids = fz.setup({WORK: work_session(), OTHER: {"panes": [term(3)]}})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    # deck-tray started from inside another zellij pane must not aim at that pane or session.
    monkeypatch.setenv("ZELLIJ", "0")
    monkeypatch.setenv("ZELLIJ_SESSION_NAME", OTHER)
    monkeypatch.setenv("ZELLIJ_PANE_ID", "3")
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, text))
    assert report.state is DeliveryState.SUBMITTED, report
    assert fz.sends() == [
        action("write-chars", "--pane-id", "terminal_3", "--", text),
        action("send-keys", "--pane-id", "terminal_3", "Enter"),
    ]
    assert fz.received() == text.encode() + b"\r"
    assert fz.written().keys() == {"pane-terminal_3.bytes"}
    calls = fz.calls()
    assert calls and all(c[var] is None for c in calls for var in ZELLIJ_VARS), calls
    argvs = fz.argvs()
    first_send = argvs.index(fz.sends()[0])
    # zellij takes an unknown pane id silently: the pane must be checked before anything is sent.
    assert action("list-panes", "--json") in argvs[:first_send]
    assert action("dump-screen", "--pane-id", "terminal_3") in argvs[:first_send]


@pytest.mark.parametrize("text", [
    "- first: naïve café 日本語 🚀\n\tsecond \"quoted\" $HOME `x`\n--third",
    "long line " + "ü" * 250,
], ids=["multi-line", "long"])
def test_multi_line_and_long_text_goes_through_one_paste(fz: FakeZellij, text: str) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, text))
    assert report.state is DeliveryState.SUBMITTED, report
    assert fz.sends() == [
        action("paste", "--pane-id", "terminal_3", "--", text),
        action("send-keys", "--pane-id", "terminal_3", "Enter"),
    ]
    assert fz.received() == b"\x1b[200~" + text.encode() + b"\x1b[201~\r"


def test_allow_presses_1_on_a_permission_prompt(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-permission-bash.txt"))
    report = dispatch(claude_session(pids[WORK][3], status=SessionStatus.WAITING_PERMISSION), Reply(ReplyKind.ALLOW))
    assert report.state is DeliveryState.SUBMITTED, report
    assert fz.sends() == [action("send-keys", "--pane-id", "terminal_3", "1")]
    assert fz.received() == b"1"


def test_deny_presses_esc_by_its_zellij_name(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-permission-bash.txt"))
    report = dispatch(claude_session(pids[WORK][3], status=SessionStatus.WAITING_PERMISSION), Reply(ReplyKind.DENY))
    assert report.state is DeliveryState.SUBMITTED, report
    assert fz.sends() == [action("send-keys", "--pane-id", "terminal_3", "Esc")]
    assert fz.received() == b"\x1b"


def _draft_screens(ansi_line: str) -> tuple[str, str]:
    """The idle screen with ``ansi_line`` as the input line: (plain, ansi)."""
    ansi = fixture_screen("claude-2.1.197-idle.ansi").split("\n")
    ansi[6] = ansi_line
    plain = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", ln) for ln in ansi]
    return "\n".join(plain), "\n".join(ansi)


def test_a_dim_suggestion_is_read_with_ansi_and_typed_over(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_3", *_draft_screens("\x1b[39m❯\xa0\x1b[7mr\x1b[0m\x1b[2mun the tests again\x1b[22m"))
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, "fix it"))
    assert report.state is DeliveryState.SUBMITTED, report
    assert action("dump-screen", "--pane-id", "terminal_3", "--ansi") in fz.argvs()
    assert fz.received() == b"fix it\r"


def test_text_the_user_typed_in_the_pane_is_not_typed_over(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_3", *_draft_screens("\x1b[39m❯\xa0half-typed thought\x1b[7m \x1b[0m"))
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, "fix it"))
    assert_nothing_typed(fz, report, "fix it", "half-typed thought")
    assert action("dump-screen", "--pane-id", "terminal_3", "--ansi") in fz.argvs()


def test_text_beyond_the_argument_limit_is_refused_or_sent_whole(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    text = "\n".join(["ö" * 99] * 800)  # ≈ 160 KB of UTF-8: over Linux's 128 KiB for one argument
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, text))
    assert report.state in (DeliveryState.REFUSED, DeliveryState.SUBMITTED), report
    if report.state is DeliveryState.REFUSED:
        assert fz.written() == {} and report.text == text
    else:
        assert fz.received() == b"\x1b[200~" + text.encode() + b"\x1b[201~\r"


# -- refusals that type nothing ------------------------------------------------------------------


def test_refused_when_the_pane_is_no_longer_listed(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_9", fixture_screen("claude-2.1.197-idle.txt"))
    report = dispatch(claude_session(pids[WORK][3], pane_id="terminal_9"), Reply(ReplyKind.PROMPT, "hello"))
    assert_nothing_typed(fz, report, "hello", "terminal_9", "no longer exists")


def test_refused_when_the_pane_has_exited(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session(exited=True, is_held=True, exit_status=0)})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, "hello"))
    assert_nothing_typed(fz, report, "hello", "has exited")


def test_refused_when_the_session_has_exited(fz: FakeZellij) -> None:
    exited = work_session()
    exited["exited"] = True
    pids = fz.setup({WORK: exited, OTHER: {"panes": [term(3)]}})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    report = dispatch(claude_session(pids[OTHER][3]), Reply(ReplyKind.PROMPT, "hello"))
    assert_nothing_typed(fz, report, "hello", "no longer exists")


def test_refused_when_the_agent_runs_in_another_pane(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    report = dispatch(claude_session(pids[WORK][4]), Reply(ReplyKind.PROMPT, "hello"))
    assert_nothing_typed(fz, report, "hello", "no longer runs in pane terminal_3")


def test_refused_when_the_agent_has_exited(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session()})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    os.kill(pids[WORK][3], signal.SIGKILL)
    wait_until(lambda: not procs.is_alive(pids[WORK][3]))
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, "hello"))
    assert_nothing_typed(fz, report, "hello", "has exited")


@pytest.mark.parametrize("command", ["bash", "/usr/bin/zsh -l", "-bash"])
def test_refused_when_the_pane_shows_a_shell(fz: FakeZellij, command: str) -> None:
    pids = fz.setup({WORK: work_session(pane_command=command)})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    report = dispatch(claude_session(pids[WORK][3]), Reply(ReplyKind.PROMPT, "rm -rf typed-into-a-shell"))
    assert_nothing_typed(fz, report, "rm -rf typed-into-a-shell", "shows a shell")


def test_session_not_found_that_exits_0_is_a_failure(fz: FakeZellij) -> None:
    pids = fz.setup({WORK: work_session(), OTHER: {"panes": [term(3)]}})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    gone = PaneRef("zellij", "terminal_3", "gone", "gone/tab0/terminal_3")
    z = Zellij()
    with pytest.raises(MuxError, match="not found"):
        asyncio.run(z.capture(gone))
    with pytest.raises(MuxError, match="not found"):
        asyncio.run(z.list_panes("gone"))
    with pytest.raises(MuxError, match="not found"):
        asyncio.run(z.send_literal(gone, "hello"))
    with pytest.raises(MuxError, match="not found"):
        asyncio.run(z.send_key(gone, "Enter"))
    assert asyncio.run(z.pane(gone)) is None
    fz.state.joinpath("argv.jsonl").unlink()
    report = dispatch(claude_session(pids[WORK][3], server="gone"), Reply(ReplyKind.PROMPT, "hello"))
    assert_nothing_typed(fz, report, "hello")


def test_two_sessions_with_the_same_pane_id_keep_their_own_processes(fz: FakeZellij) -> None:
    """Two sessions, each with a terminal_3: each pane gets the root pid of its own session's server."""
    pids = fz.setup({WORK: work_session(), OTHER: {"panes": [term(3)]}})
    panes = asyncio.run(Zellij().all_panes())
    roots = {(p.server, p.pane_id): p.pane_pid for p in panes}
    assert roots[(WORK, "terminal_3")] == pids[WORK][3]
    assert roots[(OTHER, "terminal_3")] == pids[OTHER][3]
    assert pids[WORK][3] != pids[OTHER][3]


# -- renamed sessions (zellij rename-session moves the socket file; the server's argv keeps the old name)

def test_a_renamed_session_still_maps_its_panes_to_their_processes(fz: FakeZellij) -> None:
    renamed = f"renamed-{os.getpid()}"
    pids = fz.setup({renamed: work_session()}, started_as={renamed: WORK})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    panes = asyncio.run(Zellij().all_panes())
    found = pane_for_pid(pids[renamed][3], panes)
    assert found is not None and (found.server, found.pane_id) == (renamed, "terminal_3")
    report = dispatch(claude_session(pids[renamed][3], server=renamed), Reply(ReplyKind.PROMPT, "hello"))
    assert report.state is DeliveryState.SUBMITTED, report
    assert fz.received() == b"hello\r"


def test_a_new_session_with_a_renamed_sessions_old_name_is_not_confused_with_it(fz: FakeZellij) -> None:
    renamed = f"renamed-{os.getpid()}"
    # The new WORK server starts first here, so it has the lower pid and pane_roots() sees it first
    # (after a pid wrap-around, the same order as a renamed session started long before).
    pids = fz.setup({WORK: work_session(), renamed: work_session()}, started_as={renamed: WORK})
    fz.screen("terminal_3", fixture_screen("claude-2.1.197-idle.txt"))
    agent = pids[renamed][3]  # the agent in terminal_3 of the renamed session
    panes = asyncio.run(Zellij().all_panes())
    found = pane_for_pid(agent, panes)
    assert found is None or found.server == renamed, f"the agent was placed in session {found.server}"
    if found is not None:
        dispatch(claude_session(agent, server=found.server), Reply(ReplyKind.PROMPT, "for the renamed one"))
    assert not any(a[:2] == ["--session", WORK] for a in fz.sends()), fz.sends()
