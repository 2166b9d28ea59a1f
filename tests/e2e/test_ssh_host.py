"""The ssh test host of issue #18 itself (:mod:`tests.e2e.ssh_host`): a real sshd on loopback, a
second local user, deck-tray and a real agent there.

Needs root and ``/usr/sbin/sshd`` (Debian ``openssh-server``; ``./scripts/test.sh`` installs it);
skipped otherwise.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import deck_tray

from .harness import find_agent_bin, wait_until
from .ssh_host import (
    REMOTE_USER,
    SshHost,
    gone,
    unavailable_reason,
)

#: A failing ssh must say so within this many seconds (BatchMode: no prompt, no hang).
QUICK_S = 10.0


def _timed(host: SshHost, cmd: list[str] | str, **kwargs: object) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    proc = host.run(cmd, timeout=QUICK_S * 3, **kwargs)  # type: ignore[arg-type]
    return proc, time.monotonic() - t0


def test_login_as_the_second_user(ssh_host: SshHost) -> None:
    proc = ssh_host.run(["id", "-un"], check=True)
    assert proc.stdout.strip() == REMOTE_USER
    env = ssh_host.run("echo $HOME; echo $PATH; echo $TMUX_TMPDIR", check=True).stdout.split()
    assert env == [str(ssh_host.home), ssh_host.path, str(ssh_host.tmux_tmpdir)]
    assert "Accepted publickey for dt-remote" in ssh_host.log_text()


def test_deck_tray_runs_there(ssh_host: SshHost) -> None:
    proc = ssh_host.run(["deck-tray", "--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"deck-tray {deck_tray.__version__}"
    assert ssh_host.run(["python3", "-c", "import os; print(os.getuid())"], check=True).stdout.strip() == str(
        ssh_host.uid)


def test_tools_for_agents_run_there(ssh_host: SshHost) -> None:
    proc = ssh_host.run("tmux -V && node --version", check=True)
    assert proc.stdout.startswith("tmux ")
    for name in ("claude", "codex"):
        if find_agent_bin(name):
            assert ssh_host.run(["test", "-x", str(ssh_host.bin_dir / name)]).returncode == 0, name


def test_unknown_key_is_refused_quickly(ssh_host: SshHost) -> None:
    proc, took = _timed(ssh_host, ["true"], dest=ssh_host.stranger_dest)
    assert proc.returncode == 255
    assert "Permission denied (publickey)" in proc.stderr
    assert took < QUICK_S


def test_deck_tray_not_installed_there() -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with SshHost(deck_tray=False) as host:
        proc = host.run(["deck-tray", "--version"])
        assert proc.returncode == 127
        assert "deck-tray: command not found" in proc.stderr


def test_stopped_host_refuses_then_recovers(own_ssh_host: SshHost) -> None:
    host = own_ssh_host
    host.stop()
    proc, took = _timed(host, ["true"])
    assert proc.returncode == 255
    assert f"port {host.port}: Connection refused" in proc.stderr
    assert took < QUICK_S
    host.start()
    assert host.run(["id", "-un"], check=True).stdout.strip() == REMOTE_USER


def test_dropped_connection(own_ssh_host: SshHost) -> None:
    host = own_ssh_host
    # a long-running remote command, as `deck-tray serve --stdio` will be: it reads its stdin
    client = host.popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        remote_cat = wait_until(lambda: [p for p in host.processes() if p.name() == "cat"], 30, "the remote cat")[0]
        assert remote_cat.uids().real == host.uid
        assert host.kill_connections() >= 1
        _, err = client.communicate(timeout=QUICK_S)
        assert client.returncode == 255, err
        # the remote command sees its stdin end and exits
        wait_until(lambda: gone(remote_cat), QUICK_S, "the remote cat to end")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert host.running
    assert host.run(["true"]).returncode == 0


def test_changed_host_key(own_ssh_host: SshHost) -> None:
    host = own_ssh_host
    host.change_host_key()
    proc, took = _timed(host, ["true"])
    assert proc.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stderr
    assert "Host key verification failed." in proc.stderr
    assert took < QUICK_S
    host.trust_host_key()
    assert host.run(["true"]).returncode == 0


def test_clean_up_leaves_nothing(own_ssh_host: SshHost) -> None:
    host = own_ssh_host
    tmux = host.tmux()
    tmux.new_session("idle", ["sleep", "600"], host.home)
    sleeper = wait_until(lambda: [p for p in host.processes() if p.name() == "sleep"], 30, "the remote sleep")[0]
    sshd = psutil.Process(host.proc.pid)  # type: ignore[union-attr]
    run_dir, workdir = host.run_dir, host.workdir
    host.close()
    assert gone(sshd) and gone(sleeper)
    assert not Path(str(run_dir)).exists() and not Path(str(workdir)).exists()


def _serve_snapshot(host: SshHost, timeout: float = 60.0) -> dict[str, Any]:
    """The first ``snapshot`` line of ``deck-tray serve --stdio`` run over the host's ssh."""
    serve = host.popen(["deck-tray", "serve", "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert serve.stdout is not None and serve.stdin is not None
    lines: list[dict[str, Any]] = []
    buf = b""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([serve.stdout], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(serve.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                lines.append(json.loads(line))
                if lines[-1].get("op") == "snapshot":
                    return lines[-1]
        raise AssertionError(f"no snapshot from the remote deck-tray serve in {timeout:.0f} s: {lines}")
    finally:
        serve.stdin.close()  # serve ends when its input ends
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
