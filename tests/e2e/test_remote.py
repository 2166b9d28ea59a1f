"""Agents on another machine over the user's own ssh (#18), end to end: a real sshd on loopback, a
second local user with deck-tray, a real Claude Code in that user's tmux against the fake model;
the local app connects with the user's ssh (``DECK_TRAY_SSH_COMMAND``) and the CLI talks to it.

Needs root and ``/usr/sbin/sshd`` (``./scripts/test.sh`` installs openssh-server); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from PySide6.QtCore import QSettings

from deck_tray.app import DeckTrayApp
from deck_tray.core.model import SessionStatus
from deck_tray.core.record_kinds import unwrap_pastes
from deck_tray.core.scan import Scanner
from deck_tray.services.panes import Tmux
from deck_tray.services.remote import HostConfig, HostState, save_hosts

from .harness import FakeModel, find_agent_bin, until, wait_until
from .hook_helpers import run_with_app
from .ssh_host import RemoteClaudeAgent, RemoteCodexAgent, RemoteTmux, SshHost

pytestmark = [pytest.mark.e2e, pytest.mark.gui,
              pytest.mark.skipif(find_agent_bin("claude") is None, reason="claude not found (./scripts/test.sh)")]

REPO = Path(__file__).resolve().parents[2]
#: Rounds of the kill-and-resync test (the issue asks for 20 in a row).
KILL_ROUNDS = 20


class Local:
    """This machine's side: a HOME of its own (settings, no local agents), a runtime dir for the
    socket and the shared ssh connections, and the ssh command of the test host."""

    def __init__(self, host: SshHost) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="dt-local-"))
        self.runtime = Path(tempfile.mkdtemp(prefix="dt-rt-", dir="/tmp"))
        self.runtime.chmod(0o700)
        self.host = host
        self.settings_path = self.home / ".config" / "deck-tray" / "deck-tray.ini"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TMUX", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "XDG_CONFIG_HOME"))}
        self.env.update(HOME=str(self.home), XDG_RUNTIME_DIR=str(self.runtime), PYTHONPATH=str(REPO),
                        DECK_TRAY_SSH_COMMAND=host.ssh_command_line, TMUX_TMPDIR=str(self.home / "no-tmux"))

    def settings(self) -> QSettings:
        return QSettings(str(self.settings_path), QSettings.Format.IniFormat)

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.runtime, ignore_errors=True)

    async def cli(self, *args: str, timeout: float = 120) -> tuple[int, str, str]:
        """``deck-tray ARGS`` as the user runs it here."""
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "deck_tray", *args, env=self.env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode or 0, out.decode(), err.decode()

    def app(self, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> DeckTrayApp:
        for k, v in (("DECK_TRAY_SSH_COMMAND", self.env["DECK_TRAY_SSH_COMMAND"]),
                     ("XDG_RUNTIME_DIR", str(self.runtime))):
            monkeypatch.setenv(k, v)
        app = DeckTrayApp(scanner=Scanner(self.home / ".claude", self.home / ".codex"),
                          mux=Tmux(env={"TMUX_TMPDIR": str(self.home / "no-tmux")}), settings=self.settings(),
                          notification_backends=[], discover_opencode=False,
                          ipc_path=self.runtime / "deck-tray" / "ipc.sock")
        qtbot.addWidget(app.window)
        return app


@pytest.fixture
def local(ssh_host: SshHost) -> Iterator[Local]:
    here = Local(ssh_host)
    save_hosts(here.settings(), [HostConfig("lab", ssh_host.dest)])
    yield here
    here.close()


def texts_sent(model: FakeModel) -> list[str]:
    """Every text block the agent sent the fake model (Claude 2.1.332's paste wrapper taken off)."""
    out: list[str] = []
    for req in model.requests():
        for msg in (req.get("body") or {}).get("messages", []):
            content = msg.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out.extend(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return [unwrap_pastes(t) for t in out]


def test_a_remote_permission_is_seen_here_and_answered_from_the_cli(
        ssh_host: SshHost, local: Local, tmp_path: Path, qtbot: Any, qloop: asyncio.AbstractEventLoop,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The remote Claude Code asks; the local app lists ``lab:ID`` waiting; ``deck-tray reply
    lab:ID --allow`` runs the command there; a multi-line unicode prompt reaches the model
    byte-exact; a pane whose agent died is refused (the check runs over there)."""
    with (
        FakeModel("anthropic", tmp_path / "fake") as model,
        RemoteTmux(ssh_host) as tmux,
        RemoteClaudeAgent(tmux, model) as claude,
    ):
        app = local.app(qtbot, monkeypatch)

        async def steps() -> None:
            host = app.remotes.hosts["lab"]
            await until(lambda: host.status.state is HostState.CONNECTED, 60, "the host to connect")
            idle = await until(lambda: next((s for s in app.registry.sessions()
                                             if s.host == "lab" and s.pid == claude.pid), None), 60,
                               "the remote session to be listed")
            assert idle.id.startswith("lab:") and idle.pane is not None
            claude.type_line("please FAKE_BASH now")
            waiting = await until(lambda: (s := app.registry.get(idle.id)) and s.status.is_waiting and s, 60,
                                  "the remote permission to be seen here")
            assert waiting.status is SessionStatus.WAITING_PERMISSION and waiting.pending is not None
            rc, out, err = await local.cli("sessions", "--json")
            assert rc == 0, err
            row = next(r for r in json.loads(out) if r["id"] == idle.id)
            assert row["host"] == "lab" and row["status"] == "waiting_permission"
            rc, out, err = await local.cli("reply", idle.id, "--allow")
            assert rc == 0, (out, err)
            await until((claude.project / "fake-bash-ran.txt").exists, 60, "the approved command to run there")
            await until(lambda: (s := app.registry.get(idle.id)) and s.status is SessionStatus.IDLE, 90,
                        "the remote session to finish its turn")
            text = "first line: ünïcødé — 日本語 🚀\nsecond line\nthird \"quoted\" $HOME `x` 'single' \\ back"
            rc, out, err = await local.cli("reply", idle.local_id, text)  # the plain id: unambiguous
            assert rc == 0, (out, err)
            await until(lambda: text in texts_sent(model), 60, "the prompt to reach the model byte-exact")
            await until(lambda: (s := app.registry.get(idle.id)) and s.status is SessionStatus.IDLE, 90,
                        "the second turn to finish")
            # The agent dies; a plain shell takes over its pane over there.
            tmux.run("respawn-pane", "-k", "-t", claude.pane, "bash", "--norc", "--noprofile")
            await until(lambda: tmux.display(claude.pane, "#{pane_current_command}") == "bash", 30, "bash there")
            rc, out, err = await local.cli("reply", idle.id, "rm -rf should-never-be-typed")
            assert rc in (2, 3), (rc, out, err)
            await asyncio.sleep(0.5)  # give a wrongly sent key time to show before looking
            assert "should-never-be-typed" not in tmux.capture(claude.pane)

        run_with_app(qloop, app, steps)


@pytest.mark.skipif(find_agent_bin("codex") is None, reason="codex not found (./scripts/test.sh)")
def test_a_remote_codex_approval_is_answered_from_the_cli_alone(ssh_host: SshHost, local: Local,
                                                               tmp_path: Path) -> None:
    """Without the app: ``sessions --json`` asks the host, which lists its Codex waiting for
    approval; ``reply lab:ID --allow`` connects, answers over there, and the command runs."""
    with (
        FakeModel("openai", tmp_path / "fake") as model,
        RemoteTmux(ssh_host) as tmux,
        RemoteCodexAgent(tmux, model) as codex,
    ):
        codex.type_line("please FAKE_SHELL now")
        codex.wait_for(r"Would you like to run the following command\?")

        async def waiting() -> dict[str, Any]:
            async def listed() -> dict[str, Any] | None:
                rc, out, err = await local.cli("sessions", "--json")
                assert rc == 0, err
                return next((r for r in json.loads(out) if r["host"] == "lab" and r["agent"] == "codex"
                             and r["status"] == "waiting_permission"), None)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while loop.time() < deadline:
                row = await listed()
                if row is not None:
                    return row
                await asyncio.sleep(1.0)
            raise AssertionError("the remote Codex approval was not listed")

        row = asyncio.run(waiting())
        assert row["id"].startswith("lab:") and "fake-shell-ran.txt" in row["pending"]["summary"]
        rc, out, err = asyncio.run(local.cli("reply", row["id"], "--allow"))
        assert rc == 0, (out, err)
        assert out.strip() in ("submitted", "accepted"), out
        wait_until((codex.project / "fake-shell-ran.txt").exists, 60, "the approved command to run over there")


def _ssh_clients(local: Local) -> list[psutil.Process]:
    """This app's ssh processes (the shared connection's master included)."""
    out = []
    for p in psutil.process_iter(["name", "environ", "cmdline"]):
        try:
            if p.info["name"] == "ssh" and str(local.runtime) in " ".join(p.info["cmdline"] or []):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


@pytest.mark.alone  # the 5 s resync goal, measured with the machine to itself (scripts/test.sh)
def test_killed_ssh_reconnects_and_resyncs_without_answering_twice(
        ssh_host: SshHost, local: Local, tmp_path: Path, qtbot: Any, qloop: asyncio.AbstractEventLoop,
        monkeypatch: pytest.MonkeyPatch, figure: Any) -> None:
    """While a remote session waits, the app's ssh is killed, :data:`KILL_ROUNDS` times: each time
    the host reconnects and resyncs within 5 s, the session is still waiting, nothing was
    answered; then one answer runs the command once. Prints the reconnect figures."""
    with (
        FakeModel("anthropic", tmp_path / "fake") as model,
        RemoteTmux(ssh_host) as tmux,
        RemoteClaudeAgent(tmux, model) as claude,
    ):
        app = local.app(qtbot, monkeypatch)
        figures: list[float] = []

        async def steps() -> None:
            host = app.remotes.hosts["lab"]
            await until(lambda: host.status.state is HostState.CONNECTED, 60, "the host to connect")
            s = await until(lambda: next((x for x in app.registry.sessions() if x.host == "lab"
                                          and x.pid == claude.pid), None), 60, "the remote session")
            claude.type_line("please FAKE_BASH now")
            await until(lambda: (x := app.registry.get(s.id)) and x.status.is_waiting, 60, "the permission")
            for _ in range(KILL_ROUNDS):
                before = len(host.reconnects)
                victims = _ssh_clients(local)
                assert victims, "the app's ssh runs"
                t0 = time.monotonic()
                for p in victims:
                    p.send_signal(signal.SIGKILL)
                await until(lambda n=before: len(host.reconnects) > n, 30,  # type: ignore[misc]
                            "a reconnect and a fresh snapshot")
                figures.append(host.reconnects[-1] - t0)
                now = app.registry.get(s.id)
                assert now is not None and now.status is SessionStatus.WAITING_PERMISSION, now
                assert not (claude.project / "fake-bash-ran.txt").exists(), "nothing was answered"
            rc, out, err = await local.cli("reply", s.id, "--allow")
            assert rc == 0, (out, err)
            await until((claude.project / "fake-bash-ran.txt").exists, 60, "the approved command to run")
            await until(lambda: (x := app.registry.get(s.id)) and x.status is SessionStatus.IDLE, 90, "idle")

        run_with_app(qloop, app, steps)
        figures.sort()
        figure(f"kill ssh → reconnected and resynced: {len(figures)}/{KILL_ROUNDS} rounds, median "
               f"{figures[len(figures) // 2]:.2f} s, max {figures[-1]:.2f} s")
        assert len(figures) == KILL_ROUNDS and figures[-1] <= 5.0, figures


def test_an_unreachable_host_is_shown_then_recovers(
        own_ssh_host: SshHost, tmp_path: Path, qtbot: Any, qloop: asyncio.AbstractEventLoop,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """sshd stops: the host says it cannot be reached and its sessions stay listed, greyed with
    why; sshd comes back: connected again, the sessions live. A changed host key is said as that,
    with the ssh command to run."""
    here = Local(own_ssh_host)
    save_hosts(here.settings(), [HostConfig("lab", own_ssh_host.dest)])
    try:
        with (
            FakeModel("anthropic", tmp_path / "fake") as model,
            RemoteTmux(own_ssh_host) as tmux,
            RemoteClaudeAgent(tmux, model) as claude,
        ):
            app = here.app(qtbot, monkeypatch)
            host = app.remotes.hosts["lab"]
            host.unreachable_grace = 1.0

            async def steps() -> None:
                await until(lambda: host.status.state is HostState.CONNECTED, 60, "the host to connect")
                s = await until(lambda: next((x for x in app.registry.sessions() if x.host == "lab"
                                              and x.pid == claude.pid), None), 60, "the remote session")
                own_ssh_host.stop()
                for p in _ssh_clients(here):
                    p.send_signal(signal.SIGKILL)  # the link is gone with the host
                await until(lambda: host.status.state is HostState.UNREACHABLE, 30, "the host shown unreachable")
                assert "Connection refused" in host.status.detail
                grey = await until(lambda: (x := app.registry.get(s.id)) and x.status is SessionStatus.UNKNOWN
                                   and x, 30, "its session kept, shown unreachable")
                assert grey.reason.startswith("lab unreachable since") and "Connection refused" in grey.reason
                rc, out, err = await here.cli("remote", "list")
                assert rc == 0 and "unreachable" in out, (out, err)
                own_ssh_host.start()
                await until(lambda: host.status.state is HostState.CONNECTED, 60, "the host to come back")
                await until(lambda: (x := app.registry.get(s.id)) and x.status is SessionStatus.IDLE, 30,
                            "its session live again")
                own_ssh_host.change_host_key(trust=False)
                for p in _ssh_clients(here):
                    p.send_signal(signal.SIGKILL)
                await until(lambda: host.status.state is HostState.HOST_KEY, 60, "the host key problem said")
                assert "ssh -F" in host.status.detail and "nothing was sent" in host.status.detail
                own_ssh_host.trust_host_key()
                await until(lambda: host.status.state is HostState.CONNECTED, 60, "connected again")

            run_with_app(qloop, app, steps)
    finally:
        here.close()


def test_the_cli_alone_lists_remote_sessions_and_names_unreachable_hosts(ssh_host: SshHost, local: Local) -> None:
    """Without the app: ``sessions --json`` asks each host itself; a host that cannot be reached
    is named on stderr with why, and the command still answers."""
    with RemoteTmux(ssh_host) as tmux:
        tmux.new_session("idle", ["sleep", "600"], ssh_host.home)
        settings = local.settings()
        save_hosts(settings, [HostConfig("lab", ssh_host.dest), HostConfig("gone", ssh_host.stranger_dest)])
        del settings

        async def run() -> tuple[int, str, str]:
            return await local.cli("sessions", "--json")

        t0 = time.monotonic()
        rc, out, err = asyncio.run(run())
        took = time.monotonic() - t0
        assert rc == 0, err
        assert isinstance(json.loads(out), list)
        assert "remote host gone" in err and "Permission denied" in err, err
        assert "remote host lab" not in err, err
        print(f"\nsessions --json with two hosts, no app: {took:.1f} s")


def test_the_cli_finds_a_conversation_in_the_remote_history(ssh_host: SshHost, local: Local) -> None:
    """A Claude Code transcript in the remote user's ``~/.claude/projects`` (a captured one, its
    prompt made unique) is found by ``deck-tray search`` here with the setting on: in the text
    and ``--json`` (``"host": "lab"``, its id there), answered from the remote's own index; a
    host that cannot be logged in to is named on stderr and the exit code is still 0;
    ``--no-remote`` searches this machine only."""
    import uuid

    word = f"quokka{uuid.uuid4().hex[:10]}"
    sid = str(uuid.uuid4())
    proj = ssh_host.home / ".claude" / "projects" / "-home-lab-deploy"
    proj.mkdir(parents=True, exist_ok=True)
    captured = (REPO / "tests" / "fixtures" / "claude-code-2.1.332-interactive.jsonl").read_text()
    (proj / f"{sid}.jsonl").write_text(captured.replace("please FAKE_BASH now", f"please deploy the {word} service")
                                       .replace("a149cb9e-c8dd-4252-b1ef-e1c5cb3d7caf", sid))
    ssh_host.give(ssh_host.home / ".claude")
    settings = local.settings()
    save_hosts(settings, [HostConfig("lab", ssh_host.dest), HostConfig("gone", ssh_host.stranger_dest)])
    settings.setValue("remote/search_history", True)
    settings.sync()
    del settings
    local.env["XDG_DATA_HOME"] = str(local.home / ".local" / "share")  # this machine's index: the test's own

    async def run(*args: str) -> tuple[int, str, str]:
        return await local.cli(*args, timeout=60)

    t0 = time.monotonic()
    rc, out, err = asyncio.run(run("search", word, "--json"))
    took = time.monotonic() - t0
    assert rc == 0, (out, err)
    hits = json.loads(out)
    assert [(h["host"], h["session_id"], h["agent"], h["role"]) for h in hits] == [
        ("lab", sid, "claude-code", "user")], hits
    assert word in hits[0]["text"] and hits[0]["project"] == "/home/dev/work/proj"
    assert "remote host gone: not reachable" in err and "Permission denied" in err, err
    assert "remote host lab" not in err, err
    rc, out, err = asyncio.run(run("search", word))
    assert rc == 0 and "on lab" in out and f"session lab:{sid}" in out, (out, err)
    rc, out, err = asyncio.run(run("search", word, "--no-remote"))
    assert rc == 1 and "no matches" in err and "remote host" not in err, (out, err)
    print(f"\nsearch --json with two hosts (one refusing the login), no app: {took:.1f} s")


def test_remote_add_checks_the_host_and_says_what_is_wrong(ssh_host: SshHost, local: Local) -> None:
    async def run(*args: str) -> tuple[int, str, str]:
        return await local.cli(*args)

    # The refused one first: a shared connection to the same user@host:port (ControlPersist) is
    # used by every later ssh to it, as ssh itself does, whatever key that one would offer.
    rc, out, err = asyncio.run(run("remote", "add", "locked", ssh_host.stranger_dest))
    assert rc == 3 and "could not log in" in err and "ssh -F" in err, (out, err)
    rc, out, err = asyncio.run(run("remote", "add", "lab2", ssh_host.dest))
    assert rc == 0 and "Connected: deck-tray" in out, (out, err)
    rc, out, err = asyncio.run(run("remote", "add", "bad:name", ssh_host.dest))
    assert rc == 2 and "cannot name a host" in err
    rc, out, err = asyncio.run(run("remote", "list", "--json"))
    assert [r["name"] for r in json.loads(out)] == ["lab", "locked", "lab2"]
    rc, out, err = asyncio.run(run("remote", "remove", "locked"))
    assert rc == 0


def test_a_host_without_deck_tray_is_said_and_remote_install_puts_it_there(tmp_path: Path) -> None:
    """``remote add`` names the missing deck-tray and the command; ``remote install --yes`` shows
    each command, copies this version's wheel over ssh and installs it (``--no-deps``: the test
    host has no network to PyPI in CI's time budget), and ``deck-tray --version`` answers there."""
    from .ssh_host import SshHostUnavailable, ssh_host_fixture, unavailable_reason

    if (why := unavailable_reason()) is not None:
        pytest.skip(why)
    try:
        hosts = ssh_host_fixture(deck_tray=False)
        bare = next(hosts)
    except SshHostUnavailable as exc:
        pytest.skip(str(exc))
    here = Local(bare)
    try:
        async def run(*args: str) -> tuple[int, str, str]:
            return await here.cli(*args, timeout=600)

        rc, out, err = asyncio.run(run("remote", "add", "bare", bare.dest))
        assert rc == 3 and "deck-tray is not installed on" in err and "remote install" in err, (out, err)
        t0 = time.monotonic()
        rc, out, err = asyncio.run(run("remote", "install", "bare", "--yes", "--no-deps"))
        took = time.monotonic() - t0
        assert rc == 0, (out, err)
        assert "[1/4]" in out and "[4/4]" in out and "sha256" in out, out
        got = bare.run(["sh", "-c", '"$HOME/.local/bin/deck-tray" --version'])
        import deck_tray

        assert got.stdout.strip() == f"deck-tray {deck_tray.__version__}", (got.stdout, got.stderr)
        print(f"\nremote install --no-deps: {took:.1f} s")
    finally:
        here.close()
        hosts.close()
