"""A real "other machine" for issue #18: a private sshd on loopback, logging in as a second local user.

Plain Python (no pytest import), like :mod:`tests.e2e.harness`.  :class:`SshHost` gives the tests
what deck-tray will meet on a host the user reaches with their own ssh:

* a second local account (:data:`REMOTE_USER`, ``dt-remote``; created once, kept) that can run
  ``deck-tray`` (a wrapper for this checkout), ``python3`` (the interpreter running the tests),
  ``tmux``, ``node`` and the pinned agents (``claude``, ``codex``, ``opencode``);
* a real OpenSSH server (``/usr/sbin/sshd``, Debian's ``openssh-server``) of its own on a free
  127.0.0.1 port: its own host key, config, pid file and log (``-E``), public-key login only,
  started and stopped by the test (:meth:`SshHost.stop` / :meth:`SshHost.start` for "host
  unreachable, then back"), :meth:`SshHost.kill_connections` (a dropped link) and
  :meth:`SshHost.change_host_key` (the changed-host-key warning);
* a client ``ssh_config`` naming the host :data:`ALIAS` (``lab``) with its own key and a known_hosts
  file already holding the host key, so ``StrictHostKeyChecking yes`` and ``BatchMode yes`` hold:
  ``[*host.ssh_command, host.dest, ...]`` is ``ssh -F <config> lab ...``;
* real agents in the remote user's own tmux server (:class:`RemoteTmux`, :class:`RemoteClaudeAgent`,
  :class:`RemoteCodexAgent`: the harness's agents, with every tmux command sent over ssh), talking
  to the harness's fake model servers, which run locally (as root) on 127.0.0.1.

Each :class:`SshHost` is independent (its own sshd, port, keys and *run directory*), so two test
runs on one machine do not meet: every command that comes in over its ssh runs with ``HOME``,
``TMPDIR``, ``TMUX_TMPDIR``, ``XDG_RUNTIME_DIR`` and ``PATH`` under ``~dt-remote/.dt-ssh-runs/<run>/``
(``SetEnv`` in the sshd config; the login's working directory stays the account's real home, as
sshd does it). Remote agents share that ``HOME`` (``~/.claude``, ``~/.codex``) as a real user's do,
so a ``deck-tray serve --stdio`` run over the same ssh sees them.
Everything a run started (sshd, its connections, the user's processes whose environment points into
the run directory) is stopped on exit, also when the ``with`` body raised; the run directory and the
root-only scratch directory (keys, configs, log) are removed. A run whose pytest died without
cleaning up is cleaned up by the next one (:func:`reap_stale_runs`).

What it changes on the machine, once (idempotent, reported in :attr:`SshHost.machine_changes`):
``useradd dt-remote`` (+ ``usermod -p '*'``: sshd without PAM refuses an account whose password
field starts with ``!``, which is how ``useradd`` leaves it), ``/run/sshd`` (sshd's privilege
separation directory, which Debian's service unit creates, not the package), and ``chmod o+x`` on
directories on the way to the interpreter, the checkout and the agents (``/root`` is 0700 here:
the pyenv Python under it is otherwise out of the second user's reach).

Example::

    with SshHost() as host, FakeModel("anthropic") as model:
        assert host.run(["id", "-un"]).stdout.strip() == "dt-remote"
        with RemoteTmux(host) as tmux, RemoteClaudeAgent(tmux, model) as claude:
            claude.type_line("please FAKE_BASH now")
            claude.wait_for(r"Do you want to proceed\\?")
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import site
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psutil

from tests.helpers import end_process

from .harness import REPO_ROOT, ClaudeAgent, CodexAgent, FakeModel, HarnessError, TmuxServer, find_agent_bin, wait_until

__all__ = [
    "ALIAS",
    "REMOTE_USER",
    "RemoteClaudeAgent",
    "RemoteCodexAgent",
    "RemoteTmux",
    "SshHost",
    "SshHostUnavailable",
    "ensure_user",
    "gone",
    "reap_stale_runs",
    "unavailable_reason",
]

REMOTE_USER = "dt-remote"
"""The second local account the tests log in as."""

ALIAS = "lab"
"""``Host`` alias of the test host in the client config (what a user writes in ``~/.ssh/config``)."""

STRANGER_SUFFIX = "-stranger"
"""``<alias>-stranger``: the same host, with a client key it does not know (``Permission denied``)."""

SSHD = "/usr/sbin/sshd"
"""Debian's OpenSSH server binary (``openssh-server``). Must be run by its absolute path (it
re-executes itself for every connection)."""

PRIVSEP_DIR = Path("/run/sshd")
"""sshd's privilege separation directory (compiled in; Debian's unit creates it, the package does not)."""

RUNS_DIRNAME = ".dt-ssh-runs"
"""Directory under the remote user's home holding one directory per :class:`SshHost`."""

SSH_TIMEOUT_S = 60.0
"""Default deadline of one ssh command (a failure is quick; this only bounds a hang)."""

_COUNTER = itertools.count()


class SshHostUnavailable(RuntimeError):
    """The machine cannot host the test sshd (not root, a tool missing); the message says why."""


# --------------------------------------------------------------------------- machine set-up


def unavailable_reason() -> str | None:
    """Why an :class:`SshHost` cannot run here (a sentence for ``pytest.skip``), or None when it can."""
    if os.geteuid() != 0:
        return f"needs root: creates the local user {REMOTE_USER!r} and runs a private sshd"
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} not found: apt-get install openssh-server (./scripts/test.sh installs it)"
    missing = [t for t in ("ssh", "ssh-keygen", "useradd", "usermod", "tmux") if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not found (Debian: openssh-client, passwd, tmux)"
    return None


def _run(argv: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise HarnessError(f"{shlex.join(argv)} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return proc


def _shadow_password(user: str) -> str | None:
    """The password field of ``user`` in ``/etc/shadow``, or None."""
    with contextlib.suppress(OSError):
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 1 and fields[0] == user:
                return fields[1]
    return None


def ensure_user(user: str = REMOTE_USER, changes: list[str] | None = None) -> pwd.struct_passwd:
    """Create local account ``user`` (home directory, ``/bin/bash``) unless it exists; return it.

    Also unlocks it for public-key logins: sshd with ``UsePAM no`` refuses ("account is locked") an
    account whose password field starts with ``!`` (``useradd``'s default); ``*`` means "no password
    login" without that. Each change made is appended to ``changes``.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        _run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", "deck-tray ssh tests", user])
        entry = pwd.getpwnam(user)
        if changes is not None:
            changes.append(f"useradd --create-home --shell /bin/bash {user} (uid {entry.pw_uid}, home {entry.pw_dir})")
    password = _shadow_password(user)
    if password is None or password.startswith("!"):
        _run(["usermod", "-p", "*", user])
        if changes is not None:
            changes.append(f"usermod -p '*' {user} (was {password!r}: sshd without PAM refuses a locked account)")
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(mode=0o755, parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        if changes is not None:
            changes.append(f"mkdir {home}")
    return entry


def ensure_privsep_dir(changes: list[str] | None = None) -> None:
    """Create :data:`PRIVSEP_DIR` (root, 0755) when missing: sshd exits with "Missing privilege
    separation directory: /run/sshd" without it."""
    if not PRIVSEP_DIR.is_dir():
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(PRIVSEP_DIR, 0o755)
        if changes is not None:
            changes.append(f"mkdir -m 0755 {PRIVSEP_DIR} (sshd's privilege separation directory)")


def grant_traverse(path: str | os.PathLike[str], changes: list[str] | None = None) -> None:
    """Make ``path``'s directories (and ``path`` itself when a directory) searchable by every user
    (``chmod o+x``, the bit only: nothing becomes listable or readable that was not)."""
    p = Path(os.path.realpath(path))
    for d in [p, *p.parents]:
        try:
            st = d.stat()
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            os.chmod(d, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            if changes is not None:
                changes.append(f"chmod o+x {d} (was {stat.S_IMODE(st.st_mode):o})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssh_version() -> tuple[int, int]:
    """``(major, minor)`` of the installed OpenSSH (from ``ssh -V``), ``(0, 0)`` when unknown."""
    proc = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=30)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", proc.stderr + proc.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _proc_env(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except (psutil.Error, OSError):
        return {}


def _under(path: str, root: Path) -> bool:
    return bool(path) and (path == str(root) or path.startswith(str(root) + os.sep))


def _run_processes(uid: int, run_dir: Path) -> list[psutil.Process]:
    """Processes of ``uid`` belonging to run ``run_dir``: their ``HOME``/``TMUX_TMPDIR`` or their
    working directory lies in it (every command that came in over that run's sshd has them)."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["uids"]):
        try:
            if proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            env = _proc_env(proc)
            cwd = ""
            with contextlib.suppress(psutil.Error, OSError):
                cwd = proc.cwd()
        except psutil.Error:
            continue
        if any(_under(v, run_dir) for v in (env.get("HOME", ""), env.get("TMUX_TMPDIR", ""), cwd)):
            found.append(proc)
    return found


def gone(proc: psutil.Process) -> bool:
    """Whether ``proc`` has ended: exited, or a zombie. (PID 1 of some containers reaps orphans
    late, and an orphaned process of the remote account, e.g. the user half of a killed ssh
    connection, then stays a zombie for a while: ``psutil.wait_procs`` would wait for that.)"""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def wait_gone(procs: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until every process in ``procs`` is :func:`gone` or ``timeout`` seconds passed; return
    those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if not gone(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _stop_processes(procs: Sequence[psutil.Process], sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)
    alive = wait_gone(procs, timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    wait_gone(alive, timeout)


def _owner_alive(owner: dict[str, Any]) -> bool:
    try:
        proc = psutil.Process(int(owner["pid"]))
        return abs(proc.create_time() - float(owner["started"])) < 1.0
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def reap_stale_runs(user: str = REMOTE_USER) -> list[str]:
    """Clean up after runs whose test process is gone (killed before its clean-up): their sshd, the
    user's processes of that run, their directories. Returns the run directories removed."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return []
    runs = Path(entry.pw_dir) / RUNS_DIRNAME
    removed: list[str] = []
    if not runs.is_dir():
        return removed
    for run_dir in sorted(runs.iterdir()):
        try:
            owner = json.loads((run_dir / "owner.json").read_text())
        except (OSError, ValueError):
            owner = {}
        if _owner_alive(owner):
            continue
        if isinstance(owner, dict) and owner.get("sshd_config"):
            config = str(owner["sshd_config"])
            sshds = []
            for proc in psutil.process_iter(["cmdline"]):
                # sshd rewrites its title ("sshd: /usr/sbin/sshd -D -f <config> ... [listener] ...")
                if config in " ".join(proc.info["cmdline"] or []):
                    sshds.append(proc)
            _stop_processes(sshds)
            workdir = Path(config).parent
            if workdir.name.startswith("dt-sshhost-"):
                shutil.rmtree(workdir, ignore_errors=True)
        _stop_processes(_run_processes(entry.pw_uid, run_dir))
        shutil.rmtree(run_dir, ignore_errors=True)
        removed.append(str(run_dir))
    return removed


# --------------------------------------------------------------------------- the host


class SshHost:
    """A private sshd on 127.0.0.1 letting the test log in as :data:`REMOTE_USER` with its own key.

    Use as a context manager (set-up + :meth:`start`, then :meth:`close`), or call :meth:`setup`,
    :meth:`start` and :meth:`close` yourself. Raises :class:`SshHostUnavailable` when the machine
    cannot do it (:func:`unavailable_reason`).

    Attributes (after :meth:`setup`):
        user, uid, gid: the remote account.
        dest: the ``Host`` alias to pass to ssh (:data:`ALIAS`); :attr:`stranger_dest` is the same
            host with a key it does not accept.
        ssh_command: ``["ssh", "-F", <client config>]``: the user's ssh, as deck-tray is told to run it.
        ssh_config, known_hosts, client_key: client side files (root-only scratch directory).
        port: the TCP port sshd listens on (127.0.0.1; the same after :meth:`stop` / :meth:`start`).
        run_dir: this host's directory under the account's home (owned by the account).
        home: ``HOME`` of every command run over this host's ssh (``run_dir/home``).
        bin_dir: ``home/.local/bin``: ``deck-tray``, ``python3``, ``claude``, ``codex``, ``opencode``.
        tmp_dir, tmux_tmpdir, runtime_dir: ``TMPDIR``, ``TMUX_TMPDIR`` and ``XDG_RUNTIME_DIR`` of those
            commands.
        agents_dir: where :class:`RemoteClaudeAgent` / :class:`RemoteCodexAgent` put their scratch dirs.
        path: ``PATH`` of those commands.
        sshd_log: sshd's log (``-E``, ``LogLevel VERBOSE``); :meth:`log_text` reads it.
        machine_changes: what :meth:`setup` changed on the machine outside its own directories.
        timings: seconds each set-up step took (``user``, ``files``, ``keys``, ``sshd``, ``login``).
    """

    def __init__(
        self,
        user: str = REMOTE_USER,
        alias: str = ALIAS,
        *,
        deck_tray: bool = True,
        python: str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        """Args:
        user: the local account to log in as (created when missing).
        alias: the ``Host`` alias in the client config.
        deck_tray: put the ``deck-tray`` wrapper on the remote ``PATH`` (False: "deck-tray is not
            installed there", ``bash: line 1: deck-tray: command not found``, exit 127).
        python: interpreter of the wrapper (default ``sys.executable``, which has this checkout
            installed editable).
        start_timeout: seconds sshd gets to answer on its port.
        """
        self.user: str = user
        self.dest: str = alias
        self.stranger_dest: str = alias + STRANGER_SUFFIX
        self.install_deck_tray: bool = deck_tray
        self.python: str = python or sys.executable
        self.start_timeout: float = start_timeout
        self.machine_changes: list[str] = []
        self.timings: dict[str, float] = {}
        self.workdir: Path | None = None
        self.run_dir: Path | None = None
        self.port: int = 0
        self.uid = self.gid = -1
        self.account_home: Path = Path("/nonexistent")
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmuxes: list[RemoteTmux] = []
        self._codex_projects: list[Path] = []
        self._host_key_n = 0
        self._closed = False

    # -- paths
    def _work(self, name: str) -> Path:
        if self.workdir is None:
            raise HarnessError("SshHost not set up")
        return self.workdir / name

    def _run_path(self, *parts: str) -> Path:
        if self.run_dir is None:
            raise HarnessError("SshHost not set up")
        return self.run_dir.joinpath(*parts)

    @property
    def home(self) -> Path:
        """``HOME`` of the commands run over this host's ssh."""
        return self._run_path("home")

    @property
    def bin_dir(self) -> Path:
        """``~/.local/bin`` of :attr:`home` (first on :attr:`path`)."""
        return self.home / ".local" / "bin"

    @property
    def tmp_dir(self) -> Path:
        """``TMPDIR`` of the remote commands (``/tmp`` may be closed to other users: it is 0700 here)."""
        return self._run_path("tmp")

    @property
    def runtime_dir(self) -> Path:
        """``XDG_RUNTIME_DIR`` of the remote commands (0700; what pam_systemd gives a real ssh login)."""
        return self._run_path("runtime")

    @property
    def tmux_tmpdir(self) -> Path:
        """``TMUX_TMPDIR`` of the remote commands: servers' sockets are in ``<it>/tmux-<uid>/``."""
        return self._run_path("tmux")

    @property
    def agents_dir(self) -> Path:
        """Parent of the remote agents' scratch directories."""
        return self._run_path("agents")

    @property
    def authorized_keys(self) -> Path:
        """The ``AuthorizedKeysFile`` of this sshd (in :attr:`run_dir`, so ``StrictModes yes`` holds)."""
        return self._run_path("authorized_keys")

    @property
    def ssh_config(self) -> Path:
        """The client config file (``ssh -F``)."""
        return self._work("ssh_config")

    @property
    def known_hosts(self) -> Path:
        """The client's known_hosts, holding this host's current trusted key."""
        return self._work("known_hosts")

    @property
    def client_key(self) -> Path:
        """The client's private key (ed25519, authorized)."""
        return self._work("client_ed25519")

    @property
    def stranger_key(self) -> Path:
        """A private key the host does not accept (used by :attr:`stranger_dest`)."""
        return self._work("stranger_ed25519")

    @property
    def host_key(self) -> Path:
        """The host's current private key."""
        return self._work(f"host_ed25519_{self._host_key_n}")

    @property
    def sshd_config(self) -> Path:
        """The server config file (``sshd -f``)."""
        return self._work("sshd_config")

    @property
    def sshd_log(self) -> Path:
        """sshd's log file (``sshd -E``)."""
        return self._work("sshd.log")

    @property
    def ssh_command(self) -> list[str]:
        """``["ssh", "-F", <client config>]``; append options, then :attr:`dest` and the command."""
        return ["ssh", "-F", str(self.ssh_config)]

    @property
    def ssh_command_line(self) -> str:
        """:attr:`ssh_command` as one shell-quoted line (``DECK_TRAY_SSH_COMMAND``, the setting)."""
        return shlex.join(self.ssh_command)

    @property
    def path(self) -> str:
        """``PATH`` of the remote commands: :attr:`bin_dir`, node's and tmux's directories, the system's."""
        dirs = [str(self.bin_dir)]
        for tool in ("node", "tmux"):
            found = shutil.which(tool)
            if found:
                dirs.append(str(Path(os.path.realpath(found)).parent))
        dirs += ["/usr/local/bin", "/usr/bin", "/bin"]
        return ":".join(dict.fromkeys(dirs))

    # -- set-up
    def setup(self) -> Self:
        """Create the account, directories, keys and configs (sshd is started by :meth:`start`)."""
        reason = unavailable_reason()
        if reason:
            raise SshHostUnavailable(reason)
        t0 = time.monotonic()
        entry = ensure_user(self.user, self.machine_changes)
        self.uid, self.gid, self.account_home = entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)
        ensure_privsep_dir(self.machine_changes)
        self.timings["user"] = time.monotonic() - t0

        t0 = time.monotonic()
        reap_stale_runs(self.user)
        self.workdir = Path(tempfile.mkdtemp(prefix="dt-sshhost-"))  # root only (0700)
        runs = self.account_home / RUNS_DIRNAME
        runs.mkdir(mode=0o755, exist_ok=True)
        os.chown(runs, self.uid, self.gid)
        run_id = f"{os.getpid()}-{next(_COUNTER)}-{secrets.token_hex(2)}"
        self.run_dir = runs / run_id
        for d in (self.run_dir, self.home, self.bin_dir, self.tmp_dir, self.runtime_dir, self.tmux_tmpdir,
                  self.agents_dir):
            d.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(self.tmp_dir, 0o700)
        os.chmod(self.runtime_dir, 0o700)
        (self.run_dir / "owner.json").write_text(json.dumps({
            "pid": os.getpid(),
            "started": psutil.Process().create_time(),
            "sshd_config": str(self.sshd_config),
        }))
        self._write_bin_dir()
        self._give(self.run_dir)
        self._grant_access()
        self.timings["files"] = time.monotonic() - t0

        t0 = time.monotonic()
        for key in (self.host_key, self.client_key, self.stranger_key):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"deck-tray-test {key.name}", "-f", str(key)])
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        os.chmod(self.authorized_keys, 0o644)
        os.chown(self.authorized_keys, self.uid, self.gid)
        self.port = _free_port()
        self._write_sshd_config()
        self.trust_host_key()
        self._write_client_config()
        _run([SSHD, "-t", "-f", str(self.sshd_config)])
        self.timings["keys"] = time.monotonic() - t0
        return self

    def _write_bin_dir(self) -> None:
        if self.install_deck_tray:
            wrapper = self.bin_dir / "deck-tray"
            wrapper.write_text(
                "#!/bin/sh\n"
                f"# deck-tray of the checkout {REPO_ROOT} (tests/e2e/ssh_host.py)\n"
                f"exec {shlex.quote(self.python)} -m deck_tray \"$@\"\n"
            )
            wrapper.chmod(0o755)
        (self.bin_dir / "python3").symlink_to(self.python)
        for name in ("claude", "codex", "opencode"):
            found = find_agent_bin(name)
            if found:
                (self.bin_dir / name).symlink_to(found)

    def _grant_access(self) -> None:
        """``chmod o+x`` what the account must reach: the interpreter and its ``sys.path``, the
        checkout, the agents and node."""
        roots = [Path(os.path.realpath(p)) for p in (sys.prefix, sys.base_prefix, *site.getsitepackages())]
        targets: list[str] = [self.python, sys.prefix, sys.base_prefix, str(REPO_ROOT)]
        # the interpreter's own sys.path entries only (not the test's working directory or script dir)
        targets += [p for p in sys.path if p and os.path.exists(p)
                    and any(Path(os.path.realpath(p)).is_relative_to(r) for r in roots)]
        for name in ("claude", "codex", "opencode", "node", "tmux"):
            found = find_agent_bin(name) if name in ("claude", "codex", "opencode") else shutil.which(name)
            if found:
                targets.append(found)
        for target in dict.fromkeys(targets):
            grant_traverse(target, self.machine_changes)

    def _give(self, path: Path) -> None:
        """``chown -R`` ``path`` to the account (symlinks themselves, not their targets)."""
        os.chown(path, self.uid, self.gid, follow_symlinks=False)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)

    def give(self, path: str | os.PathLike[str]) -> None:
        """Hand ``path`` (a file or tree the test wrote as root under :attr:`run_dir`) to the account."""
        self._give(Path(path))

    def _write_sshd_config(self) -> None:
        setenv = {
            "PATH": self.path,
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp_dir),
            "TMUX_TMPDIR": str(self.tmux_tmpdir),
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        lines = [
            "# written by tests/e2e/ssh_host.py",
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self._work('sshd.pid')}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "UsePAM no",
            "PermitRootLogin no",
            f"AllowUsers {self.user}",
            "StrictModes yes",
            "PermitUserEnvironment no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "LogLevel VERBOSE",
            # tests poll (a capture-pane per ssh connection): more unauthenticated ones at once than
            # the default 10:30:100 lets through
            "MaxStartups 100",
            "SetEnv " + " ".join(f"{k}={v}" for k, v in setenv.items()),
        ]
        if _openssh_version() >= (9, 8):
            # 9.8+ penalises a source address for failed logins and dropped connections: the tests
            # do both on purpose, from 127.0.0.1
            lines.append("PerSourcePenalties no")
        self.sshd_config.write_text("\n".join(lines) + "\n")

    def _client_block(self, alias: str, key: Path) -> str:
        return "\n".join([
            f"Host {alias}",
            "  HostName 127.0.0.1",
            f"  Port {self.port}",
            f"  User {self.user}",
            f"  IdentityFile {key}",
            "  IdentitiesOnly yes",
            "  IdentityAgent none",
            f"  UserKnownHostsFile {self.known_hosts}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  UpdateHostKeys no",
            "  CheckHostIP no",
            "  BatchMode yes",
            "  ConnectTimeout 15",
            "  ControlMaster no",
            "  ControlPath none",
            "",
        ])

    def _write_client_config(self) -> None:
        self.ssh_config.write_text(
            "# written by tests/e2e/ssh_host.py\n"
            + self._client_block(self.dest, self.client_key)
            + self._client_block(self.stranger_dest, self.stranger_key)
        )

    def host_key_line(self) -> str:
        """The known_hosts line for the host's current key (``[127.0.0.1]:<port> ssh-ed25519 ...``)."""
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}\n"

    def trust_host_key(self) -> None:
        """Write the host's current key into the client's known_hosts (only it)."""
        self.known_hosts.write_text(self.host_key_line())

    # -- sshd
    @property
    def running(self) -> bool:
        """Whether this host's sshd (the listener) is running."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Self:
        """Start sshd (``-D -f <config> -E <log>``) and wait until it greets on its port; no-op when
        running. Raises :class:`HarnessError` (with the log's tail) when it exits or stays silent.

        The first start takes another free port when the one picked was taken meanwhile; later
        ones (after :meth:`stop`) keep the port, as a host that comes back does."""
        if self.workdir is None:
            self.setup()
        if self.running:
            return self
        t0 = time.monotonic()
        first = "sshd" not in self.timings
        for attempt in range(3):
            log_start = self.sshd_log.stat().st_size if self.sshd_log.exists() else 0
            with open(self.sshd_log, "ab") as log:
                self.proc = subprocess.Popen(
                    [SSHD, "-D", "-f", str(self.sshd_config), "-E", str(self.sshd_log)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + self.start_timeout
            while not self._greets():
                if self.proc.poll() is not None:
                    new_lines = self.log_text()[log_start:]
                    if first and attempt < 2 and "Address already in use" in new_lines:
                        break
                    raise HarnessError(f"sshd exited with {self.proc.returncode}; its log:\n{self.log_text()[-3000:]}")
                if time.monotonic() >= deadline:
                    self.stop()
                    raise HarnessError(f"sshd did not answer on 127.0.0.1:{self.port} within "
                                       f"{self.start_timeout:.0f} s; its log:\n{self.log_text()[-3000:]}")
                time.sleep(0.05)
            else:
                break
            # the port was taken between picking and binding it: another one
            self.port = _free_port()
            self._write_sshd_config()
            self.trust_host_key()
            self._write_client_config()
        self.timings.setdefault("sshd", time.monotonic() - t0)
        return self

    def _greets(self) -> bool:
        """Whether something on the port sends an SSH identification string."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
                s.settimeout(2.0)
                return s.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def accepts(self) -> bool:
        """Whether the port accepts a TCP connection right now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2.0):
                return True
        except OSError:
            return False

    def connections(self) -> list[psutil.Process]:
        """sshd's per-connection processes (privileged monitor and user child), not the listener."""
        found: dict[int, psutil.Process] = {}
        listener = self.proc.pid if self.proc is not None else -1
        if self.running:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(listener).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if child.name().startswith("sshd"):
                            found[child.pid] = child
        # also those that outlived their listener (stop() then start(): the old ones are orphans)
        with contextlib.suppress(psutil.Error):
            for conn in psutil.net_connections(kind="tcp4"):
                if (conn.pid and conn.pid != listener and conn.laddr and conn.laddr.port == self.port
                        and conn.status != psutil.CONN_LISTEN):
                    with contextlib.suppress(psutil.Error):
                        proc = psutil.Process(conn.pid)
                        if proc.name().startswith("sshd"):
                            found[proc.pid] = proc
        return list(found.values())

    def kill_connections(self) -> int:
        """SIGKILL every open ssh connection's server side (a dropped link: the client sees the
        connection closed; what the connections ran is left to notice EOF). sshd keeps listening.
        Returns how many processes were killed."""
        procs = self.connections()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        wait_gone(procs, 10)
        wait_until(lambda: not self.connections(), 10, "ssh connections to close")
        return len(procs)

    def stop(self) -> None:
        """Stop sshd and drop its open connections (the host is unreachable: "Connection refused")."""
        conns = self.connections()
        end_process(self.proc)
        for proc in conns + self.connections():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        wait_gone(conns, 10)
        if self.port:
            wait_until(lambda: not self.accepts(), 10, f"127.0.0.1:{self.port} to refuse connections")

    def restart(self) -> Self:
        """:meth:`stop`, then :meth:`start`."""
        self.stop()
        return self.start()

    def change_host_key(self, trust: bool = False) -> None:
        """Give the host a new host key (restarting sshd when it runs); the client's known_hosts keeps
        the old one (ssh: "REMOTE HOST IDENTIFICATION HAS CHANGED!", exit 255) unless ``trust``."""
        was_running = self.running
        self._host_key_n += 1
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deck-tray-test new host key",
              "-f", str(self.host_key)])
        self._write_sshd_config()
        if trust:
            self.trust_host_key()
        if was_running:
            self.restart()

    def log_text(self) -> str:
        """sshd's log so far."""
        try:
            return self.sshd_log.read_text(errors="replace")
        except (OSError, HarnessError):
            return ""

    # -- remote commands
    def ssh_argv(self, cmd: Sequence[str] | str, dest: str | None = None, options: Sequence[str] = ()) -> list[str]:
        """argv running ``cmd`` on the host: ``ssh -F <config> [options] <dest> <command line>``.

        A list is quoted (``shlex.join``) into the one command line ssh sends (the remote login shell
        runs it: ``bash -c``); a string is sent as it is.
        """
        line = cmd if isinstance(cmd, str) else shlex.join(cmd)
        return [*self.ssh_command, *options, dest or self.dest, line]

    def run(self, cmd: Sequence[str] | str, *, dest: str | None = None, options: Sequence[str] = (),
            input: str | None = None, check: bool = False, timeout: float = SSH_TIMEOUT_S,
            ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` on the host over ssh (see :meth:`ssh_argv`); text output. ``check`` raises
        :class:`HarnessError` with ssh's stderr on a non-zero exit."""
        argv = self.ssh_argv(cmd, dest, options)
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise HarnessError(f"{shlex.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def popen(self, cmd: Sequence[str] | str, *, dest: str | None = None, options: Sequence[str] = (),
              **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` on the host over ssh and return the local ``ssh`` process (e.g.
        ``host.popen(["deck-tray", "serve", "--stdio"], stdin=PIPE, stdout=PIPE)``)."""
        return subprocess.Popen(self.ssh_argv(cmd, dest, options), **kwargs)

    def tmux(self, name: str | None = None) -> RemoteTmux:
        """A :class:`RemoteTmux` on this host (killed by :meth:`close` at the latest)."""
        return RemoteTmux(self, name)

    def processes(self) -> list[psutil.Process]:
        """The account's processes started through this host (see :func:`_run_processes`)."""
        if self.run_dir is None:
            return []
        return _run_processes(self.uid, self.run_dir)

    # -- tear-down
    def close(self) -> None:
        """Kill the remote tmux servers, stop sshd and everything the account runs for this host,
        remove the run and scratch directories. Idempotent; the account itself stays."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for tmux in list(self._tmuxes):
            try:
                tmux.kill()
            except Exception as exc:  # clean up the rest regardless
                errors.append(f"tmux {tmux.name}: {exc}")
        try:
            self.stop()
        except Exception as exc:
            errors.append(f"sshd: {exc}")
        if self.run_dir is not None:
            _stop_processes(_run_processes(self.uid, self.run_dir))
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise HarnessError("SshHost clean-up: " + "; ".join(errors))

    def __enter__(self) -> Self:
        t0 = time.monotonic()
        try:
            self.setup()
            self.start()
            t1 = time.monotonic()
            self.run(["true"], check=True)
            self.timings["login"] = time.monotonic() - t1
        except BaseException:
            with contextlib.suppress(Exception):
                self.close()
            raise
        self.timings["total"] = time.monotonic() - t0
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def ssh_host_fixture(**kwargs: Any) -> Iterator[SshHost]:
    """Generator for a pytest fixture: ``yield from ssh_host_fixture()`` inside one that turns
    :class:`SshHostUnavailable` into a skip (this module does not import pytest)."""
    with SshHost(**kwargs) as host:
        yield host


# --------------------------------------------------------------------------- remote tmux and agents


class RemoteTmux(TmuxServer):
    """A tmux server of the remote account, driven over ssh (``ssh lab tmux -L <name> ...``).

    Everything :class:`tests.e2e.harness.TmuxServer` offers works (each command is one ssh login:
    0.2-0.4 s on a loaded 2-core machine). The server runs as the account, with its socket where the account's own tmux
    and a remote deck-tray look: ``$TMUX_TMPDIR/tmux-<uid>/<name>`` (:attr:`socket_path`,
    ``TMUX_TMPDIR`` = :attr:`SshHost.tmux_tmpdir`). Its panes get the environment of the ssh login
    that started it (``HOME``, ``PATH``, ``TMPDIR`` of the host) plus ``new-session -e``.
    """

    def __init__(self, host: SshHost, name: str | None = None) -> None:
        super().__init__(tmpdir=host.tmux_tmpdir, name=name)
        self.host: SshHost = host
        self.socket_dir = host.tmux_tmpdir / f"tmux-{host.uid}"
        self.socket_path = self.socket_dir / self.name
        self.client_env = {"TMUX_TMPDIR": str(host.tmux_tmpdir)}
        host._tmuxes.append(self)

    def start(self) -> Self:
        """Nothing to prepare: the remote tmux creates its socket directory itself."""
        return self

    def _argv(self, *args: str) -> list[str]:
        return self.host.ssh_argv(["tmux", "-u", "-f", "/dev/null", "-L", self.name, *args])

    def kill(self) -> None:
        """Kill the server and what runs in its panes (over ssh; as root when sshd is down)."""
        if self.host.running:
            super().kill()
        if self.socket_path.exists():
            # sshd down (or the server did not answer): the processes still belong to the host's run
            for proc in psutil.process_iter(["uids", "cmdline"]):
                cmd = proc.info["cmdline"] or []
                if proc.info["uids"] and proc.info["uids"].real == self.host.uid and "-L" in cmd and self.name in cmd:
                    _stop_processes([proc])
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
        with contextlib.suppress(ValueError):
            self.host._tmuxes.remove(self)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class _RemoteAgent:
    """What a harness agent needs to run as the remote account: its files handed to the account,
    the host's ``PATH``/``TMPDIR``, and (``own_home=False``, the default) the account's ``HOME``
    (:attr:`SshHost.home`), where a remote ``deck-tray serve`` looks for sessions (``~/.claude``,
    ``~/.codex``). Mixed in before the harness class."""

    host: SshHost
    scratch: Path
    home: Path
    project: Path

    def _remote_init(self, tmux: RemoteTmux, prefix: str, name: str | None) -> Path:
        self.host = tmux.host
        return tmux.host.agents_dir / (name or f"{prefix}-{next(_COUNTER)}")

    def _use_home(self, own_home: bool) -> None:
        if not own_home:
            self.home = self.host.home

    def _hand_over(self) -> None:
        self.host.give(self.scratch)
        if not self.home.is_relative_to(self.scratch):
            self.host.give(self.home)

    def prepare(self) -> None:
        super().prepare()  # type: ignore[misc]
        self._hand_over()

    def env(self) -> dict[str, str]:
        env: dict[str, str] = super().env()  # type: ignore[misc]
        env.update(PATH=self.host.path, TMPDIR=str(self.host.tmp_dir))
        return env


class RemoteClaudeAgent(_RemoteAgent, ClaudeAgent):
    """:class:`tests.e2e.harness.ClaudeAgent` as the remote account, in a :class:`RemoteTmux`.

    Its scratch directory (``project/``, and ``home/`` with ``own_home=True``) is
    ``<host.agents_dir>/<name>``, owned by the account. By default ``HOME`` is the account's
    (:attr:`SshHost.home`), shared by every agent on the host as a real user's is; ``.claude.json``
    there keeps the trusted projects of the agents started before. Pid lookup and the final kill use
    the local ``/proc`` (the "remote" is this machine)."""

    def __init__(self, tmux: RemoteTmux, model: FakeModel, name: str | None = None, *, own_home: bool = False,
                 **kwargs: Any) -> None:
        scratch = self._remote_init(tmux, "claude", name)
        super().__init__(tmux, model, scratch, **kwargs)
        self._use_home(own_home)

    def prepare(self) -> None:
        """:meth:`ClaudeAgent.prepare`, keeping what ``.claude.json`` held (other agents' projects)."""
        targets = [self.home / ".claude.json"]
        if self.custom_config_dir is not None:
            targets.append(self.custom_config_dir / ".claude.json")
        before = {path: _read_json(path) for path in targets}
        ClaudeAgent.prepare(self)
        for path, old in before.items():
            if old:
                new = _read_json(path)
                projects = {**old.get("projects", {}), **new.get("projects", {})}
                path.write_text(json.dumps({**old, **new, "projects": projects}, indent=1))
        self._hand_over()


class RemoteCodexAgent(_RemoteAgent, CodexAgent):
    """:class:`tests.e2e.harness.CodexAgent` as the remote account, in a :class:`RemoteTmux`
    (scratch ``<host.agents_dir>/<name>``: ``project/``, and with ``own_home=True`` ``home/`` and
    ``codex-home/``). By default ``HOME`` is the account's and ``CODEX_HOME`` its ``~/.codex``,
    shared by the host's agents (``config.toml`` is rewritten by each start, trusting every project
    started on the host so far)."""

    def __init__(self, tmux: RemoteTmux, model: FakeModel, name: str | None = None, *, own_home: bool = False,
                 **kwargs: Any) -> None:
        scratch = self._remote_init(tmux, "codex", name)
        super().__init__(tmux, model, scratch, **kwargs)
        self._use_home(own_home)
        if not own_home:
            self.codex_home = self.home / ".codex"

    def config_toml(self) -> str:
        """:meth:`CodexAgent.config_toml` plus the other projects started on the host, trusted."""
        others = [p for p in self.host._codex_projects if p != self.project]
        return super().config_toml() + "".join(
            f'\n[projects.{json.dumps(str(p))}]\ntrust_level = "trusted"\n' for p in others)

    def prepare(self) -> None:
        """:meth:`CodexAgent.prepare`, the files handed to the account."""
        if self.project not in self.host._codex_projects:
            self.host._codex_projects.append(self.project)
        super().prepare()
