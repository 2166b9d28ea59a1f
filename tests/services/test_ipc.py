"""The app's socket with real processes: the ``deck-tray hook`` forwarder, single instance, the CLI.

Every test has its own short ``XDG_RUNTIME_DIR`` (socket paths may have 107 bytes) and runs
``python -m deck_tray`` from this checkout as the agents (and users) would.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deck_tray.commands import hook_forwarder as forwarder
from deck_tray.core import claude, codex
from deck_tray.core.hooks import HookEvent
from deck_tray.core.model import (
    AgentKind,
    DeliveryReport,
    DeliveryState,
    PaneRef,
    PendingRequest,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.core.opencode import ServerPhase, ServerState
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services import ipc
from tests.helpers import until

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CLAUDE_HOOKS = [json.loads(ln) for ln in (FIXTURES / "claude-code-2.1.197-hooks.jsonl").read_text().splitlines()]
NOTIFY = [json.loads(ln) for ln in (FIXTURES / "codex-0.169.0-notify.jsonl").read_text().splitlines()]
PERMISSION = next(s["payload"] for s in CLAUDE_HOOKS if s["event"] == "PermissionRequest")
pytestmark = pytest.mark.usefixtures("qt_slate")  # tests/conftest.py; runtime comes from there too


def env_for(runtime: Path, home: Path) -> dict[str, str]:
    """Environment of a deck-tray process that sees this runtime dir and ``home`` (and this checkout)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TMUX", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "XDG_RUNTIME_DIR", "PYTHON"))}
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    return env


async def run_cli(env: dict[str, str], *args: str, stdin: bytes | None = None,
                  timeout: float = 60) -> tuple[int, bytes, bytes, float]:
    """``python -m deck_tray ARGS`` without blocking the loop the server runs on; (rc, out, err, seconds)."""
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deck_tray", *args, env=env, cwd=REPO,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    assert proc.returncode is not None
    return proc.returncode, out, err, time.perf_counter() - t0


class Served:
    """An :class:`ipc.IpcServer` on the test's loop and what reached it."""

    def __init__(self, path: Path, sessions: list[Session] | None = None, home: Path | None = None,
                 report: DeliveryReport | None = None) -> None:
        self.hooks: list[HookEvent] = []
        self.shows = 0
        self.tokens: list[str] = []
        self.replies: list[tuple[str, Reply]] = []
        self._sessions = sessions or []
        self._home = home or Path("/nonexistent")
        self._report = report or DeliveryReport(DeliveryState.ACCEPTED, "the agent took it")
        self.server = ipc.IpcServer(path, sessions=self.answer_sessions, reply=self.reply)
        self.server.hook_received.connect(self.hooks.append)
        self.server.show_requested.connect(self._shown)

    def _shown(self, token: str) -> None:
        self.shows += 1
        self.tokens.append(token)

    async def answer_sessions(self) -> dict[str, Any]:
        env = {"HOME": str(self._home)}
        return ipc.sessions_answer(self._sessions, claude_dir=str(claude.config_dir(env)),
                                   codex_dir=str(codex.codex_home(env)),
                                   servers=[ServerState("http://127.0.0.1:4096", ServerPhase.UNREACHABLE, "down")])

    async def reply(self, session_id: str, reply: Reply) -> DeliveryReport:
        self.replies.append((session_id, reply))
        return self._report


def socket_of(runtime: Path) -> Path:
    return runtime / "deck-tray" / "ipc.sock"


# -- the forwarder ------------------------------------------------------------------------------------------------


def test_forwarder_delivers_a_claude_hook_and_prints_nothing(qloop: asyncio.AbstractEventLoop, runtime: Path,
                                                             tmp_path: Path) -> None:
    served = Served(socket_of(runtime))
    served.server.start()

    async def go() -> None:
        before = time.time()
        rc, out, err, _ = await run_cli(env_for(runtime, tmp_path), "hook", "claude-code",
                                        stdin=json.dumps(PERMISSION, indent=2).encode())
        assert (rc, out, err) == (0, b"", b"")
        await until(lambda: served.hooks)
        [ev] = served.hooks
        assert ev == HookEvent(AgentKind.CLAUDE_CODE, "hook", PERMISSION, ev.received)
        assert before <= ev.received <= time.time()
        await served.server.stop()

    qloop.run_until_complete(go())
    assert not socket_of(runtime).exists(), "the socket file goes with the server"


def test_doctor_says_the_app_runs_and_which_hooks_reached_it(qloop: asyncio.AbstractEventLoop, runtime: Path,
                                                               tmp_path: Path) -> None:
    async def doctor_line(env: dict[str, str]) -> dict[str, str]:
        rc, out, err, _ = await run_cli(env, "doctor", "--json")
        assert rc in (0, 1), err
        return next(c for c in json.loads(out) if c["name"] == "deck-tray app")

    async def go() -> None:
        env = env_for(runtime, tmp_path)
        line = await doctor_line(env)
        assert line["level"] == "WARN" and line["detail"].startswith("not running")
        assert "autostart enable" in line["hint"]
        served = Served(socket_of(runtime))
        served.server.start()
        line = await doctor_line(env)
        assert line["level"] == "OK" and "no hook received since it started" in line["detail"], line
        rc, _out, _err, _ = await run_cli(env, "hook", "claude-code", stdin=json.dumps(PERMISSION).encode())
        assert rc == 0
        await until(lambda: served.hooks)
        line = await doctor_line(env)
        assert line["level"] == "OK" and "last hook from claude-code PermissionRequest" in line["detail"], line
        await served.server.stop()

    qloop.run_until_complete(go())


def test_forwarder_takes_codex_notify_from_the_last_argument(qloop: asyncio.AbstractEventLoop, runtime: Path,
                                                             tmp_path: Path) -> None:
    served = Served(socket_of(runtime))
    served.server.start()

    async def go() -> None:
        env = env_for(runtime, tmp_path)
        # stdin stays open and empty (as Codex leaves it): the payload is the argument, stdin is not read.
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deck_tray", "hook", "codex", json.dumps(NOTIFY[1]), env=env, cwd=REPO,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        out = await asyncio.wait_for(proc.stdout.read(), 30)
        assert await proc.wait() == 0 and out == b""
        assert time.perf_counter() - t0 < STDIN_NOT_AWAITED_S
        assert proc.stdin is not None
        proc.stdin.close()
        await until(lambda: served.hooks)
        assert served.hooks[0].kind == "notify" and served.hooks[0].payload == NOTIFY[1]
        assert served.hooks[0].session_id == NOTIFY[1]["thread-id"]
        await served.server.stop()

    qloop.run_until_complete(go())


#: A forwarder that waited for stdin would take at least STDIN_TIMEOUT_S; this is well above a cold start.
STDIN_NOT_AWAITED_S = forwarder.STDIN_TIMEOUT_S + 5.0


@pytest.mark.parametrize("case", ["no socket", "stale socket", "garbage payload", "no payload"])
def test_forwarder_exits_0_silently_when_it_cannot_deliver(runtime: Path, tmp_path: Path, case: str) -> None:
    stdin = json.dumps(PERMISSION).encode()
    if case == "stale socket":
        path = socket_of(runtime)
        path.parent.mkdir(mode=0o700)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.close()  # the file stays, nobody listens: what a killed app leaves
    elif case == "garbage payload":
        stdin = b"this is not json"
    elif case == "no payload":
        stdin = b""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "deck_tray", "hook", "claude-code"], input=stdin,
                         env=env_for(runtime, tmp_path), cwd=REPO, capture_output=True, timeout=30)
    elapsed = time.perf_counter() - t0
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    assert elapsed < 5.0  # a cold interpreter start; the measured figures are in the report


def test_forwarder_never_fails_even_for_bad_arguments(runtime: Path, tmp_path: Path) -> None:
    for args in (["hook"], ["hook", "opencode"], ["hook", "codex", "not json"]):
        res = subprocess.run([sys.executable, "-m", "deck_tray", *args], input=b"", env=env_for(runtime, tmp_path),
                             cwd=REPO, capture_output=True, timeout=30)
        assert (res.returncode, res.stdout, res.stderr) == (0, b"", b""), args


def test_the_hook_path_imports_neither_qt_nor_asyncio_nor_the_core(runtime: Path, tmp_path: Path) -> None:
    probe = ("import sys\n"
             "before = set(sys.modules)\n"
             "from deck_tray.cli import main\n"
             "rc = main(['hook', 'claude-code'])\n"
             "sys.stderr.write(repr((rc, sorted(set(sys.modules) - before))))\n")
    res = subprocess.run([sys.executable, "-c", probe], input=json.dumps(PERMISSION).encode(),
                         env=env_for(runtime, tmp_path), cwd=REPO, capture_output=True, timeout=30)
    rc, new = ast.literal_eval(res.stderr.decode())
    assert rc == 0 and res.stdout == b""
    # Only our four small modules and two C extensions, whatever site-packages' .pth hooks preloaded.
    assert set(new) - {"_socket", "select"} == {"deck_tray", "deck_tray.cli", "deck_tray.commands",
                                                   "deck_tray.commands.hook_forwarder"}


def test_forwarder_clips_huge_payloads(qloop: asyncio.AbstractEventLoop, runtime: Path) -> None:
    served = Served(socket_of(runtime))
    served.server.start()
    payload = dict(PERMISSION, tool_input={"file_path": "/x", "content": "y" * 3_000_000})
    raw = json.dumps(payload).encode()

    async def go() -> None:
        line = b'{"op":"hook","agent":"claude-code","kind":"hook","received":1,"payload":%s}\n' % \
            forwarder._clipped(raw)
        assert len(line) < 10_000
        assert await asyncio.get_running_loop().run_in_executor(None, forwarder.send, str(socket_of(runtime)), line,
                                                                  1.0)
        await until(lambda: served.hooks)
        content = served.hooks[0].payload["tool_input"]["content"]
        assert content.startswith("yyyy") and content.endswith("[clipped by deck-tray]")
        await served.server.stop()

    qloop.run_until_complete(go())


def test_forwarder_and_server_agree_on_the_socket_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/4242")
    assert forwarder.socket_path() == str(ipc.socket_path()) == "/run/user/4242/deck-tray/ipc.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "  ")
    assert forwarder.socket_path() == str(ipc.socket_path())
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert forwarder.socket_path() == str(ipc.socket_path())
    assert ipc.socket_path().name == "ipc.sock" and ipc.socket_path().parent.name == "deck-tray"


# -- the server ---------------------------------------------------------------------------------------------------


def test_socket_and_folder_are_private_and_the_peer_is_checked(qloop: asyncio.AbstractEventLoop,
                                                               runtime: Path) -> None:
    path = socket_of(runtime)
    path.parent.mkdir(mode=0o755)  # made too open by someone: tightened
    served = Served(path)
    served.server.start()
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(path).st_mode) and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        assert ipc.peer_credentials(s) is not None
        pid, uid, _gid = ipc.peer_credentials(s) or (0, 0, 0)
        assert uid == os.getuid() and pid == os.getpid()  # this process serves it
    qloop.run_until_complete(served.server.stop())


def test_peer_decision_admits_only_the_apps_own_uid() -> None:
    assert ipc.peer_allowed((123, 1000, 1000), 1000)
    assert not ipc.peer_allowed((123, 1001, 1000), 1000)
    assert not ipc.peer_allowed((123, 0, 0), 1000), "not even root talks to a user's app"
    assert ipc.peer_allowed((123, 0, 0), 0)
    assert not ipc.peer_allowed(None, 1000), "unknown credentials are refused"
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert ipc.peer_credentials(a) == (os.getpid(), os.getuid(), os.getgid())


def test_a_stale_socket_is_replaced_and_other_files_are_not(qloop: asyncio.AbstractEventLoop,
                                                            runtime: Path, tmp_path: Path) -> None:
    path = socket_of(runtime)
    path.parent.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and not ipc.answers(path)
    served = Served(path)
    served.server.start()

    async def go() -> None:
        rc, out, _, _ = await run_cli(env_for(runtime, tmp_path), "hook", "claude-code",
                                      stdin=json.dumps(PERMISSION).encode())
        assert (rc, out) == (0, b"")
        await until(lambda: served.hooks)
        await served.server.stop()

    qloop.run_until_complete(go())
    path.write_text("not a socket")
    with pytest.raises(ipc.IpcError, match="not a socket"):
        ipc.IpcServer(path).start()
    assert path.read_text() == "not a socket"


def test_a_second_server_finds_the_first(qloop: asyncio.AbstractEventLoop, runtime: Path) -> None:
    first = Served(socket_of(runtime))
    first.server.start()
    with pytest.raises(ipc.AlreadyRunning):
        ipc.IpcServer(socket_of(runtime)).start()
    assert ipc.answers(socket_of(runtime)), "the loser did not take the socket away"
    qloop.run_until_complete(first.server.stop())


def test_a_folder_of_another_user_is_refused(runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    socket_of(runtime).parent.mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: 4242)
    with pytest.raises(ipc.IpcError, match="belongs to uid"):
        ipc.prepare_dir(socket_of(runtime).parent)


def test_requests_and_malformed_lines(qloop: asyncio.AbstractEventLoop, runtime: Path) -> None:
    path = socket_of(runtime)
    served = Served(path)
    served.server.start()

    def raw(lines: bytes) -> list[dict[str, Any]]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(path))
            s.sendall(lines)
            s.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return [json.loads(ln) for ln in data.splitlines()]

    async def go() -> None:
        loop = asyncio.get_running_loop()
        ping = await loop.run_in_executor(None, lambda: ipc.request({"op": "ping"}, path=path))
        assert ping["ok"] is True and ping["pid"] == os.getpid()
        assert await loop.run_in_executor(None, lambda: ipc.request({"op": "show"}, path=path)) == {"ok": True}
        assert served.shows == 1
        # A token that is not a string is not handed on.
        await loop.run_in_executor(None, lambda: ipc.request({"op": "show", "token": 7}, path=path))
        assert served.tokens == ["", ""]
        for bad in ({"op": "nope"}, {"op": "reply", "id": "x", "kind": "shout", "text": ""},
                    {"op": "reply", "kind": "allow"}):
            with pytest.raises(ipc.Refused):
                await loop.run_in_executor(None, lambda b=bad: ipc.request(b, path=path))
        # Several requests on one connection; a bad line gets an error and the connection goes on; a hook
        # (even a malformed one) gets no answer.
        answers = await loop.run_in_executor(None, raw, b'garbage\n[1]\n{"op":"hook","agent":"x"}\n{"op":"ping"}\n')
        assert [a.get("error") for a in answers] == ["not a JSON line", "not a JSON object", None]
        assert answers[2]["ok"] is True
        assert served.hooks == []
        # A line over the limit closes the connection without an answer.
        assert await loop.run_in_executor(None, raw, b"x" * (ipc.MAX_LINE + 10) + b"\n") == []
        await served.server.stop()

    qloop.run_until_complete(go())


def test_request_tells_no_app_from_a_silent_one(runtime: Path) -> None:
    path = socket_of(runtime)
    with pytest.raises(ipc.NotRunning):
        ipc.request({"op": "ping"}, path=path)
    path.parent.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen(1)
        t0 = time.monotonic()
        with pytest.raises(ipc.IpcError) as err:
            ipc.request({"op": "ping"}, path=path, timeout=0.3)
        assert not isinstance(err.value, ipc.NotRunning)
        assert time.monotonic() - t0 < 2


# -- single instance and the CLI through the running app --------------------------------------------------------


def test_starting_deck_tray_again_raises_the_running_one(qloop: asyncio.AbstractEventLoop, runtime: Path,
                                                         tmp_path: Path) -> None:
    served = Served(socket_of(runtime))
    served.server.start()

    async def go() -> None:
        # The launcher's xdg-activation token goes to the running app, which raises its window with it.
        env = dict(env_for(runtime, tmp_path), XDG_ACTIVATION_TOKEN="kwin-42")
        rc, out, err, _ = await run_cli(env, timeout=60)
        assert rc == 0, err
        assert out.decode().strip() == "deck-tray is already running; its window was raised"
        assert served.shows == 1
        assert served.tokens == ["kwin-42"]
        await served.server.stop()

    qloop.run_until_complete(go())


def _sessions() -> list[Session]:
    pending = PendingRequest(RequestKind.PERMISSION, "Bash", "rm -f x", ("Yes", "Yes, and don't ask again", "No"),
                             "toolu_1")
    return [
        Session("6c891d37-ea8a-4230-a6e5-8df46b7b1a8a", AgentKind.CLAUDE_CODE, "/home/dev/proj", "Fix the bug", 4242,
                PaneRef("tmux", "%17", "/tmp/tmux-0/default", "work:2.1"), SessionStatus.WAITING_PERMISSION,
                "permission prompt for Bash `rm -f x` — hook, 1 s ago", pending, 1_795_311_001.127),
        Session("01a200e4-f2b5-78c1-9c58-e75423501563", AgentKind.CODEX, "/home/dev/other", "hooks FAKE_SHELL", None,
                None, SessionStatus.ENDED, "no Codex process has this session open — process table, 1 h ago", None,
                1_795_300_000.0),
    ]


def test_cli_sessions_come_from_the_running_app(qloop: asyncio.AbstractEventLoop, runtime: Path,
                                                tmp_path: Path) -> None:
    home = tmp_path / "home"
    served = Served(socket_of(runtime), _sessions(), home)
    served.server.start()

    async def go() -> None:
        env = env_for(runtime, home)
        rc, out, err, _ = await run_cli(env, "sessions", "--json")
        assert rc == 0, err
        # answer_via: the app served no map here, so each session's own (its pane's multiplexer)
        assert json.loads(out) == [{**s.to_json(), "answer_via": s.pane.multiplexer if s.pane else
                                    ("api" if s.agent.value == "opencode" else None)} for s in _sessions()]
        assert b"opencode server http://127.0.0.1:4096 unreachable: down" in err  # the app's server problems
        rc, out, err, _ = await run_cli(env, "sessions")
        assert rc == 0, err
        table = out.decode()
        assert "6c891d37  claude-code  waiting_permission  tmux work:2.1" in table
        assert "01a200e4" not in table  # ended: only with --all
        # Another HOME is another world: the app's sessions are not that world's.
        rc, out, err, _ = await run_cli(env_for(runtime, tmp_path / "elsewhere"), "sessions", "--json")
        assert rc == 0, err
        assert [s for s in json.loads(out) if s["agent"] != "opencode"] == []
        await served.server.stop()

    qloop.run_until_complete(go())


def test_cli_sessions_scan_the_folder_the_settings_name(qloop: asyncio.AbstractEventLoop, runtime: Path,
                                                        tmp_path: Path) -> None:
    """No app running: the CLI scans what the app would, including a Claude folder set in Settings."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere-claude"
    sid = "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"  # the session of the captured transcript
    project = elsewhere / "projects" / "-home-dev-recipe-claude-proj"
    project.mkdir(parents=True)
    shutil.copy(FIXTURES / "claude-code-2.1.197-interactive.jsonl", project / f"{sid}.jsonl")
    env = env_for(runtime, home)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    ini = tmp_path / "config" / "deck-tray" / "deck-tray.ini"

    async def ids() -> list[str]:
        rc, out, err, _ = await run_cli(env, "sessions", "--json")
        assert rc == 0, err
        return [s["id"] for s in json.loads(out) if s["agent"] == "claude-code"]

    async def go() -> None:
        assert await ids() == []  # ~/.claude has nothing
        ini.parent.mkdir(parents=True)
        ini.write_text(f"[paths]\nclaude_config_dir={elsewhere}\n")
        assert await ids() == [sid]

    qloop.run_until_complete(go())


def test_cli_watch_prints_the_waybar_line_again_only_when_it_changes(
        qloop: asyncio.AbstractEventLoop, runtime: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    sessions = _sessions()
    served = Served(socket_of(runtime), sessions, home)
    served.server.start()

    async def go() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deck_tray", "sessions", "--waybar", "--watch", "--interval", "0.2",
            env=env_for(runtime, home), cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        try:
            first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
            assert first["class"] == "waiting" and first["text"] == "1 waiting"
            assert "Claude Code · Fix the bug — Needs permission: rm -f x" in first["tooltip"]
            # The permission was answered: the session now works; one new line says so.
            sessions[0] = dataclasses.replace(sessions[0], status=SessionStatus.BUSY, pending=None)
            second = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
            assert (second["class"], second["text"]) == ("busy", "1 busy")
            # Polls that find nothing new print nothing.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(proc.stdout.readline(), 1.5)
        finally:
            proc.terminate()
            await proc.wait()
        await served.server.stop()

    qloop.run_until_complete(go())


@pytest.mark.parametrize(("report", "rc", "shown"), [
    (DeliveryReport(DeliveryState.ACCEPTED, "the agent took it"), 0, "accepted"),
    (DeliveryReport(DeliveryState.REFUSED, "the pane is gone"), 3, "refused: the pane is gone"),
])
def test_cli_reply_goes_through_the_running_app(qloop: asyncio.AbstractEventLoop, runtime: Path, tmp_path: Path,
                                                report: DeliveryReport, rc: int, shown: str) -> None:
    home = tmp_path / "home"
    served = Served(socket_of(runtime), _sessions(), home, report)
    served.server.start()

    async def go() -> None:
        got, out, err, _ = await run_cli(env_for(runtime, home), "reply", "6c89", "--allow")
        assert got == rc, err
        assert shown in (out + err).decode()
        assert served.replies == [("6c891d37-ea8a-4230-a6e5-8df46b7b1a8a", Reply(ReplyKind.ALLOW))]
        await served.server.stop()

    qloop.run_until_complete(go())


def test_session_json_round_trip() -> None:
    for s in _sessions():
        back = ipc.session_from_json(s.to_json(), s.pane.label if s.pane else "")
        assert back.to_json() == s.to_json()
        assert back.pane == s.pane
    view = ipc.parse_sessions_answer(ipc.sessions_answer(_sessions(), claude_dir="/c", codex_dir="/x", servers=[]))
    assert [s.id for s in view.sessions] == [s.id for s in _sessions()]
    with pytest.raises(ipc.IpcError):
        ipc.parse_sessions_answer({"sessions": [{"id": "x"}], "claude_dir": "/c", "codex_dir": "/x"})
