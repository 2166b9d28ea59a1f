"""Process facts from ``/proc`` and psutil: liveness, start time, agent processes.

Linux only (``/proc/<pid>/stat`` field 22 is the start time in clock ticks since boot,
the value Claude Code writes as ``procStart``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import psutil

log = logging.getLogger(__name__)

SHELLS = frozenset({"bash", "sh", "dash", "zsh", "fish", "ksh", "mksh", "tcsh", "csh", "nu", "xonsh", "elvish"})


def proc_start(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time, clock ticks) or None if no such pid."""
    rest = _stat_fields(pid)
    # rest[0] is field 3, so field 22 is rest[19].
    return rest[19] if rest is not None and len(rest) > 19 else None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces; rest[0] is field 3.
    return raw[raw.rfind(")") + 2:].split()


def is_alive(pid: int, expected_start: str = "") -> bool:
    """True if ``pid`` runs (not a zombie) and, when ``expected_start`` is given, started then."""
    rest = _stat_fields(pid)
    if rest is None or len(rest) < 20 or rest[0] in ("Z", "X"):
        return False
    return not expected_start or rest[19] == expected_start


@dataclass(frozen=True)
class TtyFacts:
    """Where a process sits on its terminal, from ``/proc/<pid>/stat`` (fields 5–8).

    Attributes:
        pgrp: its process group (field 5).
        session: its session id (field 6): the pid of the session leader, normally the
            first process a terminal window or multiplexer pane started.
        tty_nr: its controlling terminal as a device number (field 7; 0: none).
        tpgid: the foreground process group of that terminal (field 8; -1: no terminal).
            The process is in the foreground when ``pgrp == tpgid``; this works in every
            terminal (checked with GNU screen 4.9, kitty 0.26 and Konsole 22.12).
    """

    pgrp: int
    session: int
    tty_nr: int
    tpgid: int

    @property
    def foreground(self) -> bool:
        """True when the process's group is the foreground group of its terminal."""
        return self.tpgid > 0 and self.pgrp == self.tpgid


def tty_facts(pid: int) -> TtyFacts | None:
    """Fields 5–8 of ``/proc/<pid>/stat``; None if there is no such (live) process."""
    rest = _stat_fields(pid)
    # rest[0] is field 3 (state), so fields 5..8 are rest[2..5].
    if rest is None or len(rest) < 6 or rest[0] in ("Z", "X"):
        return None
    try:
        return TtyFacts(int(rest[2]), int(rest[3]), int(rest[4]), int(rest[5]))
    except ValueError:
        return None


def tty_leader(tty_nr: int) -> int:
    """The session leader whose controlling terminal is the device ``tty_nr`` (the first
    process a terminal pane started on that pty), found by scanning ``/proc``; 0 if none."""
    if tty_nr <= 0:
        return 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if entry.isdigit():
            facts = tty_facts(int(entry))
            if facts is not None and facts.tty_nr == tty_nr and facts.session == int(entry):
                return int(entry)
    return 0


def name(pid: int) -> str:
    """The process's command name (``/proc/<pid>/comm``), ``""`` if it is gone."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def parent(pid: int) -> int:
    """The parent pid (field 4 of ``/proc/<pid>/stat``), 0 if unknown."""
    rest = _stat_fields(pid)
    try:
        return int(rest[1]) if rest is not None and len(rest) > 1 else 0
    except ValueError:
        return 0


def ancestors(pid: int) -> list[int]:
    """``pid`` followed by its parent, grandparent … up to init; ``[]`` if it is gone."""
    try:
        proc = psutil.Process(pid)
        return [pid, *(p.pid for p in proc.parents())]
    except psutil.Error:
        return []


def environ(pid: int) -> dict[str, str]:
    """The process environment (empty when unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return {}
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, val = item.partition(b"=")
        if sep:
            env[key.decode("utf-8", "replace")] = val.decode("utf-8", "replace")
    return env


@dataclass(frozen=True)
class AgentProcess:
    """A running agent process.

    Attributes:
        pid: process id.
        kind: ``"claude"``, ``"codex"``, or an adapter's :attr:`~deck_tray.core.agents.base.AgentAdapter.binary`
            (``"gemini"``, ``"qwen"``).
        cwd: its working directory, ``""`` if unreadable.
        open_rollouts: Codex rollout files it holds open.
        daemon: True for Codex's background ``app-server`` (not attached to a pane).
        started_at: its start, POSIX seconds (set for adapters' agents; 0 otherwise).
        env: for adapters' agents, the variables of its environment that place its files
            (``HOME`` and the adapter's :attr:`~deck_tray.core.agents.base.AgentAdapter.env_keys`).
    """

    pid: int
    kind: str
    cwd: str
    open_rollouts: tuple[str, ...] = ()
    daemon: bool = False
    started_at: float = 0.0
    env: tuple[tuple[str, str], ...] = ()


def _kind(name: str, cmdline: list[str]) -> str | None:
    base = name.lower()
    if base in ("claude",) or base.startswith("claude"):
        return "claude"
    if base.startswith("codex"):
        return "codex"
    if base in ("node", "bun") and len(cmdline) > 1:
        script = cmdline[1].rsplit("/", 1)[-1]
        if script in ("claude", "cli.js") and "claude" in cmdline[1]:
            return "claude"
        if script == "codex" or "codex" in cmdline[1].rsplit("/", 3)[-3:]:
            return "codex"
    return None


def agent_processes() -> list[AgentProcess]:
    """Every running process of an agent deck-tray watches, of this user (one pass over the
    table): Claude Code, Codex, and each adapter's (:data:`deck_tray.core.agents.ADAPTERS`).

    Launchers are folded into the agent they start: codex-cli 0.169.0 from npm runs
    ``node …/bin/codex`` (the pane's process), which starts the native ``codex`` that
    holds the rollout; only the native child is listed (Gemini CLI 0.61.0 relaunches its
    ``node`` the same way).
    """
    from deck_tray.core.agents import ADAPTERS  # the adapters' modules import this one's users

    out: list[AgentProcess] = []
    parents: dict[int, int] = {}
    for proc in psutil.process_iter(["pid", "name", "cmdline", "uids", "ppid"]):
        info = proc.info
        try:
            name, cmd = info.get("name") or "", info.get("cmdline") or []
            kind = _kind(name, cmd)
            adapter = None
            if kind is None:
                adapter = next((a for a in ADAPTERS if a.matches_process(name, cmd)), None)
                if adapter is None:
                    continue
                kind = adapter.binary
            if info.get("uids") and info["uids"].real != psutil.Process().uids().real:
                continue
            cwd = proc.cwd()
            if adapter is not None:
                env = environ(proc.pid)
                keep = ("HOME", *adapter.env_keys)
                out.append(AgentProcess(proc.pid, kind, cwd, started_at=proc.create_time(),
                                        env=tuple((k, env[k]) for k in keep if k in env)))
                parents[proc.pid] = int(info.get("ppid") or 0)
                continue
            daemon = kind == "codex" and "app-server" in cmd
            rollouts: tuple[str, ...] = ()
            if kind == "codex":
                rollouts = tuple(
                    f.path for f in proc.open_files() if "/rollout-" in f.path and f.path.endswith(".jsonl")
                )
            out.append(AgentProcess(proc.pid, kind, cwd, rollouts, daemon))
            parents[proc.pid] = int(info.get("ppid") or 0)
        except psutil.Error:
            continue
    kind_of = {a.pid: a.kind for a in out}
    # A Codex TUI in daemon mode that started the app-server daemon is its parent, but it is
    # not a launcher: it stays listed (it is the process in the pane).
    launchers = {parents[a.pid] for a in out if kind_of.get(parents[a.pid]) == a.kind and not a.daemon}
    return [a for a in out if a.pid not in launchers]
