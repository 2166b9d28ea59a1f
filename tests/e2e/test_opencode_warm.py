"""Warm opencode servers (:mod:`deck_tray.services.opencode_warm`).

The ``e2e`` tests run the real ``opencode serve`` 1.18.33 in a scratch HOME whose project
points at the loopback fake model (:mod:`tests.e2e.opencode_harness`): Basic auth with
the generated password, the password kept out of argv, a SIGKILL survived on the same
URL, and a clean stop. The others run a small stand-in ``opencode`` (a Python script
written per test) to reach the failure paths: early exit, no listening line, a crash
loop, a port taken by someone else, a missing binary.

The keyring is always a test backend (an in-memory one, or keyring's ``fail`` backend), so
the developer's keyring is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import keyring
import psutil
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from deck_tray.services import opencode_warm
from deck_tray.services.opencode_warm import (
    OUTPUT_LINES,
    WarmServers,
    WarmState,
    WarmStatus,
    port_accepts,
)
from deck_tray.services.secrets import SERVICE, Credentials

from .harness import until
from .opencode_harness import OPENCODE_VERSION, FakeOpenAIModel, OpencodeServe, find_opencode

needs_opencode = pytest.mark.skipif(
    find_opencode() is None,
    reason="opencode not found (install with ./scripts/test.sh or "
    f"`npm install --prefix .agents opencode-ai@{OPENCODE_VERSION}`, or set DECK_TRAY_AGENTS_DIR)",
)


class MemoryKeyring(KeyringBackend):
    """A keyring in a dict: ``entries[(service, user)] = password``."""

    priority = 1

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        yield ring
    finally:
        keyring.set_keyring(before)


@pytest.fixture
def fail_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(before)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ----------------------------------------------------------------------------- real opencode


@pytest.fixture
def model(tmp_path: Path) -> Iterator[FakeOpenAIModel]:
    with FakeOpenAIModel(tmp_path / "fake") as fake:
        yield fake


@pytest.fixture
def scratch(tmp_path: Path, model: FakeOpenAIModel) -> tuple[dict[str, str], Path]:
    """``(environment, project folder)``: a scratch HOME and a git project whose ``opencode.json``
    points at the fake model (the harness's layout; its own server is never started)."""
    oc = OpencodeServe(tmp_path / "oc", model.v1_url)
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        Path(oc.env[key]).mkdir(parents=True, exist_ok=True)
    return dict(oc.env), oc.add_project("work")


@pytest.mark.e2e
@needs_opencode
def test_warm_server_auth_reuse_crash_restart_and_stop(
    scratch: tuple[dict[str, str], Path], memory_keyring: MemoryKeyring,
    qloop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture,
) -> None:
    """Start → Basic auth with the stored password only; reuse; SIGKILL → same URL again; stop_all → gone."""
    caplog.set_level(logging.DEBUG, logger="deck_tray")
    env, project = scratch
    binary = find_opencode()
    assert binary is not None
    creds = Credentials({})
    warm = WarmServers(creds, env=env, stop_timeout=10.0)
    seen: list[WarmStatus] = []
    warm.listeners.append(seen.append)
    passwords: list[str] = []

    async def scenario() -> None:
        try:
            # two concurrent starts for one folder: one server
            first, second = await asyncio.gather(warm.start(str(project), binary), warm.start(str(project), binary))
            assert first.ok and second.ok, (first.detail, first.output)
            assert {first.reused, second.reused} == {False, True}
            url = first.url
            assert url is not None and url.startswith("http://127.0.0.1:") and second.url == url
            server = first.server
            assert server is not None and server.state is WarmState.RUNNING
            assert warm.server_for(str(project)) is server
            assert warm.started_urls() == [url]
            assert first.stored is not None and first.stored.persistent  # the memory keyring took it

            password = creds.lookup(url)
            assert password and len(password) >= 32
            passwords.append(password)
            assert memory_keyring.entries[(SERVICE, url)] == password
            pid = server.pid
            assert pid is not None
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert password.encode() not in cmdline
            assert cmdline.split(b"\0")[1:6] == [b"serve", b"--hostname", b"127.0.0.1", b"--port",
                                                 str(server.port).encode()]
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"OPENCODE_SERVER_PASSWORD={password}".encode() in environ
            assert b"OPENCODE_SERVER_USERNAME=opencode" in environ
            assert b"OPENCODE_DISABLE_AUTOUPDATE=1" in environ
            assert os.getpgid(pid) == pid  # its own process group

            async with httpx.AsyncClient(base_url=url, timeout=15) as anon, \
                    httpx.AsyncClient(base_url=url, auth=(creds.username(), password), timeout=15) as authed:
                assert (await anon.get("/session")).status_code == 401
                assert (await anon.get("/session", auth=("opencode", "wrong"))).status_code == 401
                resp = await authed.get("/session")
                assert resp.status_code == 200 and resp.json() == []
                assert (await authed.get("/path")).json()["directory"] == str(project.resolve())

                # a crash: restarted on the same URL with the same password
                os.kill(pid, signal.SIGKILL)
                await until(lambda: server.state is WarmState.RESTARTING, 30, "the restart to begin")
                assert warm.server_for(str(project)) is server  # still the folder's server
                await until(lambda: server.state is WarmState.RUNNING and server.pid not in (None, pid),
                            90, f"the restart (state {server.state.value}: {server.detail})")
                assert server.url == url and server.restarts == 1
                assert "was killed by SIGKILL" in server.detail
                assert _gone(pid)

                async def answers() -> bool:
                    try:
                        return (await authed.get("/session")).status_code == 200
                    except httpx.HTTPError:
                        return False

                await until(answers, 60, "the restarted server to answer", interval=0.1)
                assert (await anon.get("/session")).status_code == 401
            assert creds.lookup(url) == password

            new_pid = server.pid
            assert new_pid is not None
            await warm.stop_all()
            assert server.state is WarmState.STOPPED
            assert _gone(new_pid)
            assert not await port_accepts(server.port)
            assert warm.started_urls() == [] and warm.server_for(str(project)) is None
            assert creds.lookup(url) is None and (SERVICE, url) not in memory_keyring.entries
        finally:
            await warm.stop_all()

    qloop.run_until_complete(scenario())
    states = [s.state for s in seen if s.url == seen[-1].url]
    assert states == [WarmState.STARTING, WarmState.RUNNING, WarmState.RESTARTING, WarmState.RUNNING,
                      WarmState.STOPPED], states
    assert passwords and passwords[0] not in caplog.text  # never logged, also not at DEBUG


# ----------------------------------------------------------------------------- a stand-in opencode

STANDIN = r'''
import os, signal, socket, subprocess, sys, time
mode = os.environ.get("STANDIN_MODE", "serve")
port = int(sys.argv[sys.argv.index("--port") + 1])
if mode == "exit":
    for i in range(OUTPUT_LINES + 10):
        print(f"line {i}", flush=True)
    print("password is " + os.environ["OPENCODE_SERVER_PASSWORD"], file=sys.stderr, flush=True)
    print("\x1b[91m\x1b[1mError: \x1b[0mboom", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "silent":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.environ["STANDIN_CHILD"], "w") as f:
        f.write(str(child.pid))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # so that SIGKILL is needed
    print("warming up", flush=True)
    time.sleep(600)
sock = socket.socket()
try:
    sock.bind(("127.0.0.1", port))
except OSError:
    print("\x1b[91m\x1b[1mError: \x1b[0mUnexpected error\n\nServeError", file=sys.stderr, flush=True)
    sys.exit(1)
sock.listen()
print(f"opencode server listening on http://127.0.0.1:{port}", flush=True)
if mode == "crash":
    time.sleep(0.3)
    sys.exit(1)
time.sleep(600)
'''


@pytest.fixture
def standin(tmp_path: Path) -> str:
    """Path of an executable stand-in for ``opencode`` (mode from ``$STANDIN_MODE``)."""
    path = tmp_path / "bin" / "opencode"
    path.parent.mkdir()
    path.write_text(f"#!{sys.executable}\n" + STANDIN.replace("OUTPUT_LINES", str(OUTPUT_LINES)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _env(mode: str, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "STANDIN_MODE": mode, **extra}


def test_early_exit_reports_the_last_output_without_the_password(
    standin: str, tmp_path: Path, fail_keyring: None, qloop: asyncio.AbstractEventLoop,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="deck_tray")
    creds = Credentials({})
    warm = WarmServers(creds, env=_env("exit"))

    async def scenario() -> None:
        result = await warm.start(str(tmp_path), standin)
        assert not result.ok and result.url is None
        assert "exited with code 3" in result.detail and "opencode serve" in result.detail
        lines = result.output.splitlines()
        assert len(lines) == OUTPUT_LINES
        assert lines[-2] == "password is ***" and lines[-1] == "Error: boom"  # redacted, no ANSI
        assert "line 59" in result.output and "line 0\n" not in result.output
        assert result.server is not None and result.server.state is WarmState.FAILED
        assert warm.started_urls() == [] and warm.server_for(str(tmp_path)) is None
        assert creds.lookup(result.server.url) is None  # the password stored for it is forgotten
        await warm.stop_all()

    qloop.run_until_complete(scenario())
    assert "password is " not in caplog.text.replace("password is ***", "")


def test_no_listening_line_times_out_and_kills_the_group(
    standin: str, tmp_path: Path, fail_keyring: None, qloop: asyncio.AbstractEventLoop,
) -> None:
    child_file = tmp_path / "child.pid"
    warm = WarmServers(Credentials({}), env=_env("silent", STANDIN_CHILD=str(child_file)),
                       start_timeout=3.0, stop_timeout=1.0)

    async def scenario() -> None:
        result = await warm.start(str(tmp_path), standin)
        assert not result.ok
        assert "did not report that it was listening within 3 s" in result.detail
        assert "warming up" in result.output
        child = int(await until(child_file.read_text, 10, "the child pid"))
        await until(lambda: _gone(child), 10, "the server's child to be killed with its group")
        await warm.stop_all()

    qloop.run_until_complete(scenario())


def test_crash_loop_gives_up_after_five_failures(
    standin: str, tmp_path: Path, fail_keyring: None, qloop: asyncio.AbstractEventLoop,
) -> None:
    warm = WarmServers(Credentials({}), env=_env("crash"), backoff=(0.05, 0.2))
    seen: list[WarmStatus] = []
    warm.listeners.append(seen.append)

    async def scenario() -> None:
        result = await warm.start(str(tmp_path), standin)
        assert result.ok and result.server is not None  # it said it was listening
        server = result.server
        await until(lambda: server.state is WarmState.FAILED, 30, "the watcher to give up")
        assert "failed 5 times in a row" in server.detail and "exited with code 1" in server.detail
        assert server.restarts == 4 and server.pid is None
        assert warm.server_for(str(tmp_path)) is None
        await warm.stop_all()
        assert server.state is WarmState.STOPPED

    qloop.run_until_complete(scenario())
    states = [s.state for s in seen]
    assert states == ([WarmState.STARTING, WarmState.RUNNING] + [WarmState.RESTARTING, WarmState.RUNNING] * 4
                      + [WarmState.FAILED, WarmState.STOPPED]), states


def test_a_taken_port_is_retried_on_another_port(
    standin: str, tmp_path: Path, fail_keyring: None, qloop: asyncio.AbstractEventLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = [int(taken.getsockname()[1])]
    real_free_port = opencode_warm.free_port
    monkeypatch.setattr(opencode_warm, "free_port", lambda: ports.pop() if ports else real_free_port())
    creds = Credentials({})
    warm = WarmServers(creds, env=_env("serve"))

    async def scenario() -> None:
        try:
            result = await warm.start(str(tmp_path), standin)
            assert result.ok, result.detail
            assert result.server is not None and result.server.port != taken.getsockname()[1]
            assert creds.lookup(f"http://127.0.0.1:{taken.getsockname()[1]}") is None
            assert creds.lookup(result.server.url) is not None
            assert warm.started_urls() == [result.server.url]
        finally:
            await warm.stop_all()

    try:
        qloop.run_until_complete(scenario())
    finally:
        taken.close()


def test_missing_binary_and_missing_folder(
    tmp_path: Path, fail_keyring: None, qloop: asyncio.AbstractEventLoop,
) -> None:
    warm = WarmServers(Credentials({}), env=_env("serve"))

    async def scenario() -> None:
        result = await warm.start(str(tmp_path), str(tmp_path / "no-such-opencode"))
        assert not result.ok and "could not run" in result.detail and "No such file" in result.detail
        result = await warm.start(str(tmp_path / "nowhere"), "opencode")
        assert not result.ok and "is not an existing folder" in result.detail
        await warm.stop_all()

    qloop.run_until_complete(scenario())
