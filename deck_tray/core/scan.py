"""Turns the agents' files on disk into per-session observations (incrementally).

:class:`Scanner` owns one :class:`~deck_tray.core.jsonl.JsonlTailer` and one parser
state per transcript, so repeated scans read only appended bytes. It is plain Python
and blocking (file I/O, ``/proc``); the services call it on an executor thread, the CLI
calls it directly.

Discovery:

* Claude Code: ``CONFIG/sessions/<pid>.json`` (live, stale when the pid is gone or its
  ``procStart`` differs) and ``CONFIG/projects/*/*.jsonl`` modified within the history
  window; sub-agents' files (``agent-<id>.jsonl`` beside a session's, 2.0.x, or
  ``<id>/subagents/agent-<id>.jsonl``, 2.1.x) become threads of their session.
* Codex: ``CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`` modified within the history
  window; a session is live while a codex process holds its rollout open, or runs in its
  cwd (daemon mode, where the TUI does not hold the file).

Only regular files are read (:func:`deck_tray.core.jsonl.open_regular`): a named pipe,
socket or device named like a session file, a symbolic link loop or an unreadable file is
skipped and logged once (:class:`~deck_tray.core.jsonl.SkippedFiles`). A transcript with
no JSON record (random bytes) is not listed.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deck_tray.core import claude, codex, procs
from deck_tray.core.agents import adapter_for
from deck_tray.core.agents.base import LiveProcess
from deck_tray.core.agents.source import AdapterObservation, AdapterSource
from deck_tray.core.jsonl import JsonlTailer, NotRegularFile, SkippedFiles, file_kind
from deck_tray.core.model import (
    AgentKind,
    Evidence,
    EvidenceSource,
    Message,
    MessageRole,
    PaneRef,
    PendingRequest,
    Session,
    SessionStatus,
)
from deck_tray.core.status import counted, decide

log = logging.getLogger(__name__)

#: Transcripts untouched for longer than this are not listed (seconds): 24 h.
HISTORY_S = 24 * 3600.0
#: On first sight of a transcript only its last bytes are read: 4 MiB.
TAIL_BYTES = 4 * 1024 * 1024


@dataclass
class Observation:
    """Everything the files say about one session (before panes and screens).

    Attributes:
        id: session / thread id.
        agent: which agent.
        cwd: working directory.
        title: human title.
        pid: the live agent process, or None.
        transcript: transcript / rollout path.
        evidence: observations from files and the process table.
        messages: recent conversation.
        pending_hint: the open tool call that may be a pending request.
        updated_at: newest activity, POSIX seconds.
    """

    id: str
    agent: AgentKind
    cwd: str = ""
    title: str = ""
    pid: int | None = None
    transcript: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    messages: tuple[Message, ...] = ()
    pending_hint: PendingRequest | None = None
    updated_at: float = 0.0


def _observe(
    st: claude.ClaudeTranscript | codex.CodexRollout, sid: str, agent: AgentKind, title: str, path: str
) -> Observation:
    """An observation from a transcript's parsed state."""
    ob = Observation(sid, agent, st.cwd, title, None, path)
    ob.messages = tuple(st.messages)
    ob.pending_hint = st.pending_request()
    ob.updated_at = st.last_at
    ob.evidence += st.evidence_list()
    return ob


class _Tracked:
    """One transcript file: its tailer and parser state.

    Attributes:
        records: JSON records fed since the start (or the last reset); a file with none
            (random bytes, or nothing complete yet) is not a session.
        seq: order of creation among the scanner's tracked files (a later file wins when two
            name the same session).
        version: bumped by every :meth:`update` (what a memo of the state is keyed on).
    """

    def __init__(self, path: str, agent: AgentKind, skipped: SkippedFiles, seq: int = 0) -> None:
        self.tailer = JsonlTailer(path, tail_bytes=TAIL_BYTES, skipped=skipped)
        self.thread = claude.subagent_id(path) if agent is AgentKind.CLAUDE_CODE else ""
        self.state: claude.ClaudeTranscript | codex.CodexRollout = (
            claude.ClaudeTranscript() if agent is AgentKind.CLAUDE_CODE
            else codex.CodexRollout(codex.thread_id_from_path(path) or "", path)
        )
        self.agent = agent
        self.size_mtime: tuple[int, float] = (-1, -1.0)
        self.records = 0
        self.seq = seq
        self.version = 0
        self._memo: tuple[int, str, str, str, Observation] | None = None

    def update(self) -> bool:
        self.version += 1
        res = self.tailer.read_new()
        if res.reset:
            self.state.reset()
            self.records = 0
        for rec in res.records:
            if self.thread and isinstance(self.state, claude.ClaudeTranscript):
                self.state.feed(rec, thread=self.thread)
            else:
                self.state.feed(rec)
        self.records += len(res.records)
        return not res.missing

    def parent_id(self) -> str:
        """For a sub-agent's file, the id of the session it belongs to (``""`` otherwise)."""
        if not self.thread or not isinstance(self.state, claude.ClaudeTranscript):
            return ""
        return claude.subagent_parent_id(self.tailer.path) or self.state.session_id

    def claude_key(self) -> str:
        """The Claude session this file speaks for: its own (a session's transcript) or its
        parent's (a sub-agent's file)."""
        if self.thread:
            return self.parent_id()
        st = self.state
        sid = st.session_id if isinstance(st, claude.ClaudeTranscript) else ""
        return sid or Path(self.tailer.path).stem

    def observe(self, sid: str, title: str, path: str) -> Observation:
        """:func:`_observe` of this file's state, remembered until the next :meth:`update`
        (a fresh copy each time: callers extend it)."""
        memo = self._memo
        if memo is None or memo[:4] != (self.version, sid, title, path):
            ob = _observe(self.state, sid, self.agent, title, path)
            self._memo = memo = (self.version, sid, title, path, ob)
        ob = memo[4]
        return Observation(ob.id, ob.agent, ob.cwd, ob.title, ob.pid, ob.transcript, list(ob.evidence),
                           ob.messages, ob.pending_hint, ob.updated_at)


@dataclass(frozen=True)
class ScanDelta:
    """What one :meth:`Scanner.scan_delta` found different from the scan before.

    Attributes:
        changed: the observations built anew because something they come from changed (the
            session's transcript, a sub-agent's file, its live status file, its process); every
            observation when ``complete``. Observations that came out equal to the last ones
            are left out.
        removed: ids of sessions no longer observed.
        complete: True for a full scan: ``changed`` is every session.
    """

    changed: tuple[Observation, ...]
    removed: frozenset[str]
    complete: bool


class Scanner:
    """Incremental scanner of Claude Code and Codex session files.

    Args:
        claude_dir: Claude's config dir (``$CLAUDE_CONFIG_DIR`` or ``~/.claude``).
        codex_dir: ``$CODEX_HOME`` or ``~/.codex``.
        history_s: how far back (by file mtime) transcripts are listed.
        clock: time source (POSIX seconds), replaceable in tests.
        process_lister: returns the running agent processes (psutil by default).
        process_ttl: seconds a process-table snapshot is reused by incremental scans.
        skipped: where files that are not readable session files (named pipes, sockets,
            devices, symbolic link loops, unreadable files) are reported, once per path; a
            new one when None (the app shares one with the history index).
        adapter_homes: the agents watched through an adapter (:mod:`deck_tray.core.agents`:
            Gemini CLI, Qwen Code) and the data folder of each
            (:func:`deck_tray.core.agents.default_homes`); None watches none of them.

    A full :meth:`scan` globs the folders; ``scan(changed=paths)`` re-reads only the
    named files and rebuilds only the observations of the sessions they belong to (a file
    event costs the same however many sessions exist); ``scan(changed=[])`` checks every
    live process again. :meth:`scan_delta` says which observations changed.

    Cost of an incremental scan, in the number of sessions: a status-file or Claude
    transcript change rebuilds that session's observation only. A change of the process
    table (listed again after ``process_ttl``, or when a new file appeared) rebuilds every
    observation, and so does a Codex rollout's change for the Codex sessions (which process
    holds which session is decided across them; their parsed state is reused).
    """

    def __init__(
        self,
        claude_dir: Path,
        codex_dir: Path,
        *,
        history_s: float = HISTORY_S,
        clock: Callable[[], float] = time.time,
        process_lister: Callable[[], list[procs.AgentProcess]] = procs.agent_processes,
        process_ttl: float = 15.0,
        skipped: SkippedFiles | None = None,
        adapter_homes: Mapping[AgentKind, Path] | None = None,
    ) -> None:
        self.claude_dir = claude_dir
        self.codex_dir = codex_dir
        self.history_s = history_s
        self.clock = clock
        self.process_lister = process_lister
        self.process_ttl = process_ttl
        self.skipped = skipped if skipped is not None else SkippedFiles()
        self._tracked: dict[str, _Tracked] = {}
        self._seq = 0
        #: status file → ((size, mtime), its content or None, order of first sight)
        self._status: dict[str, tuple[tuple[int, float], claude.LiveStatus | None, int]] = {}
        self._status_of: dict[str, set[str]] = {}  # session id → its status files
        self._procs: list[procs.AgentProcess] = []
        self._procs_at = float("-inf")
        self._alive: dict[tuple[int, str], bool] = {}
        self._live_paths: dict[str, str] = {}
        # What the last scan saw, kept up to date change by change:
        self._live: dict[str, claude.LiveStatus] = {}
        self._live_cwds: dict[str, int] = {}  # cwd → live sessions in it
        self._unread_live: set[str] = set()  # live sessions whose transcript is not tracked (yet)
        self._claude_key: dict[str, str] = {}  # tracked Claude file → the session it speaks for
        self._claude_files: dict[str, set[str]] = {}  # session id → its tracked Claude files
        self._claude_obs: dict[str, Observation] = {}
        self._claude_by_cwd: dict[str, set[str]] = {}
        self._codex_obs: dict[str, Observation] = {}
        self._agents_seen: list[procs.AgentProcess] | None = None
        # Collected during one scan:
        self._dirty: set[str] = set()  # Claude sessions to observe again
        self._status_dirty: set[str] = set()  # session ids whose status files changed
        self._flipped_cwds: set[str] = set()  # cwds that gained their first or lost their last live session
        self._codex_dirty = False
        self._sources: list[AdapterSource] = []
        for kind, home in (adapter_homes or {}).items():
            adapter = adapter_for(kind)
            if adapter is not None:
                self._sources.append(AdapterSource(adapter, home, history_s=history_s, skipped=self.skipped))
        self._adapter_obs: dict[str, Observation] = {}

    # -- discovery -----------------------------------------------------------------
    def watch_roots(self) -> list[Path]:
        """Folders whose changes matter (for file watchers); they may not exist yet."""
        return [self.claude_dir / "sessions", self.claude_dir / "projects", self.codex_dir / "sessions",
                *(root for src in self._sources for root in src.watch_roots())]

    def _stat_regular(self, path: str, what: str = "transcript") -> os.stat_result | None:
        """``os.stat(path)`` when it is a regular file; else None, and the path is reported
        (once) unless it simply does not exist. Nothing is opened."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.skipped.forget(path)
            return None
        except OSError as exc:
            self.skipped.report(path, exc, what)
            return None
        if not stat.S_ISREG(st.st_mode):
            self.skipped.report(path, NotRegularFile(path, file_kind(st.st_mode)), what)
            return None
        return st

    def _recent(self, pattern_root: Path, glob: str, now: float) -> list[str]:
        out: list[str] = []
        if not pattern_root.is_dir():
            return out
        for p in pattern_root.glob(glob):
            path = str(p)
            st = self._stat_regular(path)
            if st is not None and now - st.st_mtime <= self.history_s:
                out.append(path)
        return out

    def _read_status(self, path: str) -> None:
        st = self._stat_regular(path, "status file")
        if st is None:
            self._drop_status(path)
            return
        key = (st.st_size, st.st_mtime)
        old = self._status.get(path)
        if old is not None and old[0] == key:
            return
        ls = claude.read_live_status(Path(path), self.skipped)
        if ls is None and old is not None and old[1] is not None:
            return  # caught mid-rewrite: keep the last good content until the next event
        if old is None:
            self._seq += 1
        self._status[path] = (key, ls, old[2] if old is not None else self._seq)
        before = old[1] if old is not None else None
        if before is not None and (ls is None or ls.session_id != before.session_id):
            self._status_of[before.session_id].discard(path)
            self._status_dirty.add(before.session_id)
        if ls is not None:
            self._status_of.setdefault(ls.session_id, set()).add(path)
            self._status_dirty.add(ls.session_id)

    def _drop_status(self, path: str) -> None:
        old = self._status.pop(path, None)
        if old is not None and old[1] is not None:
            self._status_of[old[1].session_id].discard(path)
            self._status_dirty.add(old[1].session_id)

    def live_claude(self, recheck: bool = True) -> dict[str, claude.LiveStatus]:
        """Live status files whose process still runs, by session id.

        Args:
            recheck: look at ``/proc`` again; False reuses the last answer per process
                (file events need no liveness check, the periodic tick does one).
        """
        live: dict[str, claude.LiveStatus] = {}
        if recheck:
            self._alive.clear()
        for _key, ls, _seq in self._status.values():
            if ls is None or not self._is_alive(ls):
                continue
            prev = live.get(ls.session_id)
            if prev is None or ls.updated_at >= prev.updated_at:
                live[ls.session_id] = ls
        return live

    def _is_alive(self, ls: claude.LiveStatus) -> bool:
        ident = (ls.pid, ls.proc_start)
        alive = self._alive.get(ident)
        if alive is None:
            alive = self._alive[ident] = procs.is_alive(ls.pid, ls.proc_start)
        return alive

    def _live_one(self, sid: str) -> claude.LiveStatus | None:
        """:meth:`live_claude` (``recheck=False``) for one session: its newest live status
        (on a tie, the status file seen last)."""
        best: tuple[float, int] | None = None
        out: claude.LiveStatus | None = None
        for path in self._status_of.get(sid, ()):
            _key, ls, seq = self._status[path]
            if ls is None or not self._is_alive(ls):
                continue
            if best is None or (ls.updated_at, seq) >= best:
                best, out = (ls.updated_at, seq), ls
        return out

    def _set_live(self, sid: str, ls: claude.LiveStatus | None) -> None:
        """Record ``sid``'s live status (None: not live); the session is observed again when it differs."""
        old = self._live.get(sid)
        if old is ls:
            return
        self._dirty.add(sid)
        if old is not None:
            del self._live[sid]
            n = self._live_cwds[old.cwd] - 1
            if n:
                self._live_cwds[old.cwd] = n
            else:
                del self._live_cwds[old.cwd]
                self._flipped_cwds.add(old.cwd)
        if ls is not None:
            self._live[sid] = ls
            n = self._live_cwds.get(ls.cwd, 0)
            if not n:
                self._flipped_cwds.add(ls.cwd)
            self._live_cwds[ls.cwd] = n + 1

    def liveness_changed(self) -> bool:
        """Cheap check for the periodic tick: did a known agent process start or exit?

        Re-reads ``/proc/<pid>/stat`` of every process behind a status file or a Codex
        session; True when an answer differs from the last scan's (a scan is needed).
        """
        for ident, was in list(self._alive.items()):
            if procs.is_alive(*ident) != was:
                return True
        return any(not procs.is_alive(ap.pid) for ap in self._procs)

    def _processes(self, now: float, force: bool) -> list[procs.AgentProcess]:
        if force or now - self._procs_at > self.process_ttl:
            self._procs = self.process_lister()
            self._procs_at = now
        return self._procs

    def _track(self, path: str, agent: AgentKind) -> None:
        st = self._stat_regular(path)
        if st is None:
            self._untrack(path)
            return
        key = (st.st_size, st.st_mtime)
        tr = self._tracked.get(path)
        if tr is None:
            self._seq += 1
            tr = self._tracked[path] = _Tracked(path, agent, self.skipped, self._seq)
        if key != tr.size_mtime:
            tr.size_mtime = key
            if not tr.update():
                self._untrack(path)
                return
            if tr.agent is AgentKind.CODEX:
                self._codex_dirty = True
                return
            new = tr.claude_key()
            old = self._claude_key.get(path)
            if old != new:
                if old is not None:
                    self._claude_files[old].discard(path)
                self._claude_files.setdefault(new, set()).add(path)
                self._claude_key[path] = new
            self._dirty.update((new, old) if old is not None else (new,))

    def _untrack(self, path: str) -> None:
        tr = self._tracked.pop(path, None)
        if tr is None:
            return
        if tr.agent is AgentKind.CODEX:
            self._codex_dirty = True
            return
        key = self._claude_key.pop(path, None)
        if key is not None:
            self._claude_files[key].discard(path)
            self._dirty.add(key)

    def _track_live_transcript(self, ls: claude.LiveStatus) -> None:
        # A live session's transcript is read even when no watcher reported it (it is
        # created at the first prompt, possibly in a folder nobody watches yet).
        if not ls.cwd:
            return
        tpath = self._live_paths.get(ls.session_id)
        if tpath is None:
            tpath = self._live_paths[ls.session_id] = str(
                claude.transcript_path(self.claude_dir, ls.cwd, ls.session_id)
            )
        self._track(tpath, AgentKind.CLAUDE_CODE)
        if tpath in self._tracked:
            self._unread_live.discard(ls.session_id)
        else:
            self._unread_live.add(ls.session_id)

    # -- scanning ------------------------------------------------------------------
    def scan(self, changed: Iterable[str] | None = None) -> list[Observation]:
        """Read what changed on disk and return an observation per known session.

        Args:
            changed: paths reported changed by a file watcher; None for a full scan
                (glob every folder, refresh the process table); empty: check every live
                process again (the periodic tick).

        Returns:
            Every session's observation (Claude's first); those :meth:`scan_delta` would not
            name as changed are the very objects the scan before returned.

        Never raises for bad or vanishing files; they are skipped and logged.
        """
        self.scan_delta(changed)
        return self.observations()

    def observations(self) -> list[Observation]:
        """Every session's observation as of the last scan (Claude's first)."""
        return [*self._claude_obs.values(), *self._codex_obs.values(), *self._adapter_obs.values()]

    def scan_delta(self, changed: Iterable[str] | None = None) -> ScanDelta:
        """:meth:`scan`, returning only what changed since the scan before.

        Args:
            changed: as for :meth:`scan`.

        Returns:
            The observations rebuilt (all of them for a full scan) and the sessions gone. Cost:
            see the class's docstring.
        """
        now = self.clock()
        full = changed is None
        paths = None if changed is None else list(changed)
        tick = paths is not None and not paths
        self._dirty, self._status_dirty, self._flipped_cwds, self._codex_dirty = set(), set(), set(), False
        sessions_dir = str(self.claude_dir / "sessions")
        projects_dir = str(self.claude_dir / "projects")
        codex_dir = str(self.codex_dir / "sessions")
        new_files = False
        if paths is None:
            sdir = self.claude_dir / "sessions"
            found = {str(p) for p in sdir.glob("*.json")} if sdir.is_dir() else set()
            for gone in set(self._status) - found:
                self._drop_status(gone)
            for p in found:
                self._read_status(p)
            wanted = {p: AgentKind.CLAUDE_CODE for p in self._recent(self.claude_dir / "projects", "*/*.jsonl", now)}
            wanted.update({p: AgentKind.CLAUDE_CODE
                           for p in self._recent(self.claude_dir / "projects", "*/*/subagents/agent-*.jsonl", now)})
            wanted.update(
                {p: AgentKind.CODEX for p in self._recent(self.codex_dir / "sessions", "*/*/*/rollout-*.jsonl", now)}
            )
            for gone in set(self._tracked) - set(wanted):
                self._untrack(gone)
            for path, agent in wanted.items():
                self._track(path, agent)
        else:
            for path in paths:
                if path.startswith(sessions_dir) and path.endswith(".json"):
                    self._read_status(path)
                elif path.endswith(".jsonl") and path.startswith(projects_dir):
                    new_files |= path not in self._tracked
                    self._track(path, AgentKind.CLAUDE_CODE)
                elif path.endswith(".jsonl") and path.startswith(codex_dir) and "/rollout-" in path:
                    new_files |= path not in self._tracked
                    self._track(path, AgentKind.CODEX)
        if full or tick:
            live = self.live_claude(recheck=True)
            for sid in [*(s for s in self._live if s not in live), *live]:
                self._set_live(sid, live.get(sid))
            self._unread_live.clear()
            for ls in live.values():
                self._track_live_transcript(ls)
        else:
            for sid in self._status_dirty:
                self._set_live(sid, self._live_one(sid))
            for sid in {*(s for s in self._status_dirty if s in self._live), *self._unread_live}:
                now_live = self._live.get(sid)
                if now_live is None:
                    self._unread_live.discard(sid)
                else:
                    self._track_live_transcript(now_live)
        agents = self._processes(now, force=full or new_files)
        for ap in agents:
            for p in ap.open_rollouts:
                if p.startswith(str(self.codex_dir)) and p not in self._tracked:
                    self._track(p, AgentKind.CODEX)
        agents_changed = self._agents_seen is None or (agents is not self._agents_seen and agents != self._agents_seen)
        self._agents_seen = agents
        out: list[Observation] = []
        removed: set[str] = set()
        if full or agents_changed:
            fresh = self._claude_observations(self._claude_tracked(None), self._live, agents, now)
            self._claude_store(fresh, set(self._claude_obs) | set(fresh), out, removed, compare=not full)
        else:
            keys = self._dirty
            claude_cwds = {a.cwd for a in agents if a.kind == "claude"}
            for cwd in self._flipped_cwds & claude_cwds:
                # Whether a session without a status file counts as live depends on the
                # live sessions in its cwd.
                keys |= self._claude_by_cwd.get(cwd, set())
            keys.discard("")
            if keys:
                live = {k: self._live[k] for k in keys if k in self._live}
                fresh = self._claude_observations(self._claude_tracked(keys), live, agents, now)
                self._claude_store(fresh, keys, out, removed, compare=True)
        if full or agents_changed or self._codex_dirty:
            present = [t for t in self._tracked.values() if t.agent is AgentKind.CODEX]
            fresh_codex = {ob.id: ob for ob in self._codex_observations(present, agents, now)}
            for tid in [t for t in self._codex_obs if t not in fresh_codex]:
                del self._codex_obs[tid]
                removed.add(tid)
            for tid, ob in fresh_codex.items():
                old = self._codex_obs.get(tid)
                if full or old is None or old != ob:
                    self._codex_obs[tid] = ob
                    out.append(ob)
        if self._sources and (full or tick or agents_changed or any(src.owns(p) for src in self._sources
                                                                     for p in paths or ())):
            self._scan_adapters(paths, agents, now, out, removed)
        return ScanDelta(tuple(out), frozenset(removed - {ob.id for ob in out}), full)

    def _scan_adapters(self, paths: list[str] | None, agents: list[procs.AgentProcess], now: float,
                       out: list[Observation], removed: set[str]) -> None:
        """Scan the adapters' agents (:class:`AdapterSource`); their changes join ``out`` / ``removed``."""
        for src in self._sources:
            live = [LiveProcess(a.pid, a.cwd, a.started_at, dict(a.env)) for a in agents
                    if a.kind == src.adapter.binary]
            live = [p for p in live if src.adapter.home({**p.env}) == src.home or not p.env]
            changed, gone = src.scan(paths, live, now)
            for aob in changed:
                ob = _from_adapter(aob)
                self._adapter_obs[ob.id] = ob
                out.append(ob)
            for sid in gone:
                if self._adapter_obs.pop(sid, None) is not None:
                    removed.add(sid)

    def _claude_tracked(self, keys: set[str] | None) -> list[_Tracked]:
        """The tracked Claude files (of the sessions ``keys``; all when None), in creation order."""
        if keys is None:
            return [t for t in self._tracked.values() if t.agent is AgentKind.CLAUDE_CODE]
        files = [self._tracked[p] for k in keys for p in self._claude_files.get(k, ())]
        files.sort(key=lambda t: t.seq)
        return files

    def _claude_store(self, fresh: dict[str, Observation], keys: Iterable[str], out: list[Observation],
                      removed: set[str], *, compare: bool) -> None:
        """Keep the observations of the Claude sessions ``keys`` from ``fresh`` (absent there:
        gone); those that differ from the last ones (or all, unless ``compare``) go to ``out``."""
        for sid in keys:
            ob = fresh.get(sid)
            old = self._claude_obs.get(sid)
            if old is not None and (ob is None or ob.cwd != old.cwd):
                by_cwd = self._claude_by_cwd.get(old.cwd)
                if by_cwd is not None:
                    by_cwd.discard(sid)
                    if not by_cwd:
                        del self._claude_by_cwd[old.cwd]
            if ob is None:
                if old is not None:
                    del self._claude_obs[sid]
                    removed.add(sid)
                continue
            self._claude_by_cwd.setdefault(ob.cwd, set()).add(sid)
            if compare and old is not None and old == ob:
                continue
            self._claude_obs[sid] = ob
            out.append(ob)

    def _claude_observations(
        self,
        tracked: Iterable[_Tracked],
        live: dict[str, claude.LiveStatus],
        agents: list[procs.AgentProcess],
        now: float,
    ) -> dict[str, Observation]:
        """The Claude observations from ``tracked`` files and ``live`` statuses (all of them, or
        those of some sessions: each session's files and status together), by session id."""
        out: dict[str, Observation] = {}
        claude_cwds = {a.cwd for a in agents if a.kind == "claude"}
        live_cwds = self._live_cwds
        mains: dict[str, tuple[claude.ClaudeTranscript, str]] = {}
        subs: list[_Tracked] = []
        for tr in tracked:
            st = tr.state
            if not isinstance(st, claude.ClaudeTranscript) or not tr.records:
                continue
            if tr.thread:
                subs.append(tr)
            else:
                mains[st.session_id or Path(tr.tailer.path).stem] = (st, tr.tailer.path)
        for tr in subs:
            # A sub-agent's own file (2.0.x beside the session's, 2.1.x under <id>/subagents/)
            # is a thread of its parent, never a session of its own.
            parent = mains.get(tr.parent_id())
            thread = tr.state.threads.get(tr.thread) if isinstance(tr.state, claude.ClaudeTranscript) else None
            if parent is not None and thread is not None:
                parent[0].adopt(thread)
        for sid, (st, path) in mains.items():
            out[sid] = _observe(st, sid, AgentKind.CLAUDE_CODE, st.display_title, path)
        for sid, ls in live.items():
            known = out.get(sid)
            if known is None:
                known = out[sid] = Observation(sid, AgentKind.CLAUDE_CODE, ls.cwd)
                known.evidence.append(
                    Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, ls.updated_at, "new session")
                )
            known.pid = ls.pid
            known.cwd = ls.cwd or known.cwd
            known.title = known.title or ls.name
            known.updated_at = max(known.updated_at, ls.updated_at)
            lev = claude.live_status_evidence(ls)
            if lev is not None:
                known.evidence.append(lev)
        for sid, ob in out.items():
            if sid in live:
                continue
            # No live status file. Claude versions that write none are live only while a
            # claude process runs in that cwd that has no status file of its own.
            if ob.cwd and ob.cwd in claude_cwds and ob.cwd not in live_cwds and now - ob.updated_at < 3600:
                continue
            if any(e.status is SessionStatus.ENDED for e in ob.evidence):
                continue
            ob.evidence.append(
                Evidence(EvidenceSource.PROCESS, SessionStatus.ENDED, ob.updated_at or now,
                         "Claude Code is no longer running")
            )
        return out

    def _codex_observations(
        self, tracked: Iterable[_Tracked], agents: list[procs.AgentProcess], now: float
    ) -> list[Observation]:
        by_file: dict[str, procs.AgentProcess] = {}
        tuis_by_cwd: dict[str, list[procs.AgentProcess]] = {}
        for ap in agents:
            if ap.kind != "codex":
                continue
            for p in ap.open_rollouts:
                by_file.setdefault(p, ap)
            if not ap.daemon:
                tuis_by_cwd.setdefault(ap.cwd, []).append(ap)
        out: list[Observation] = []
        children: list[_Tracked] = []
        for tr in tracked:
            st = tr.state
            if not isinstance(st, codex.CodexRollout) or not tr.records:
                continue
            if st.parent_thread:
                children.append(tr)
                continue
            tid = st.thread_id or codex.thread_id_from_path(tr.tailer.path) or Path(tr.tailer.path).stem
            out.append(tr.observe(tid, st.title, tr.tailer.path))
        by_id = {ob.id: ob for ob in out}
        for tr in children:
            child = tr.state
            assert isinstance(child, codex.CodexRollout)
            parent = by_id.get(child.parent_thread)
            if parent is None:
                # Its parent is not listed (older than the history window): show it on its own.
                tid = child.thread_id or "subagent"
                out.append(tr.observe(tid, child.title, ""))
                continue
            _adopt_codex_thread(parent, child)
        # Attach processes: the holder of the file first; else a TUI in the same cwd,
        # newest session first (daemon mode, where the TUI holds no rollout).
        used: set[int] = set()
        for ob in sorted(out, key=lambda o: -o.updated_at):
            holder = by_file.get(ob.transcript)
            if holder is not None and not holder.daemon:
                ob.pid = holder.pid
                used.add(holder.pid)
        for ob in sorted(out, key=lambda o: -o.updated_at):
            if ob.pid is not None:
                continue
            holder = by_file.get(ob.transcript)
            cands = [a for a in tuis_by_cwd.get(ob.cwd, []) if a.pid not in used and not a.open_rollouts]
            if cands:
                ob.pid = cands[0].pid
                used.add(cands[0].pid)
            elif holder is not None:
                continue  # a daemon holds it: alive, but in no pane
            else:
                ob.evidence.append(
                    Evidence(EvidenceSource.PROCESS, SessionStatus.ENDED, ob.updated_at or now,
                             "no Codex process has this session open")
                )
        return out


def _from_adapter(a: AdapterObservation) -> Observation:
    return Observation(a.id, a.agent, a.cwd, a.title, a.pid, a.transcript, list(a.evidence), a.messages,
                       a.pending_hint, a.updated_at)


def _adopt_codex_thread(parent: Observation, child: codex.CodexRollout) -> None:
    """Show a Codex sub-agent thread inside its parent's observation: one collapsed line, and its
    request (with ``asker``) when the parent has none of its own."""
    name = child.agent_name or f"sub-agent {child.thread_id[:8]}"
    count = sum(1 for m in child.messages if m.role in (MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL))
    last = next((m.text for m in reversed(child.messages) if m.role in (MessageRole.ASSISTANT, MessageRole.TOOL)), "")
    ev = child.evidence()
    pend = child.pending_request()
    state = ("waiting" if pend is not None else
             "done" if ev is not None and ev.status is SessionStatus.IDLE else "working")
    line = f"{name} · {count} message{'s' if count != 1 else ''}" + (
        f" — {' '.join(last.split())[:160]}" if last else "")
    started = child.messages[0].timestamp if child.messages else child.last_at
    msgs = [m for m in parent.messages if m.key != f"sub:{child.thread_id}"]
    msgs.append(Message(MessageRole.SUBAGENT, line, started, f"sub:{child.thread_id}", state))
    msgs.sort(key=lambda m: m.timestamp)
    parent.messages = tuple(msgs)
    if pend is not None and parent.pending_hint is None:
        parent.pending_hint = PendingRequest(pend.kind, pend.tool, pend.summary, pend.options, pend.request_id,
                                             pend.question, asker=name)
        parent.evidence.append(Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, child.last_at,
                                        f"sub-agent “{name}” runs a tool or waits for an answer",
                                        pending=parent.pending_hint))
    parent.updated_at = max(parent.updated_at, child.last_at)


def build_session(
    ob: Observation,
    now: float,
    *,
    pane: PaneRef | None = None,
    extra: Iterable[Evidence] = (),
) -> Session:
    """Combine an observation, its pane and extra evidence (screen, hooks) into a Session.

    ``updated_at`` is the newest of the observation's activity and the evidence that counts
    (:func:`~deck_tray.core.status.counted`: a hook observation only while it holds).
    """
    evidence = [*ob.evidence, *extra]
    status, reason, pending = decide(evidence, now)
    if status is SessionStatus.ENDED:
        pane = None
    return Session(
        id=ob.id,
        agent=ob.agent,
        cwd=ob.cwd,
        title=ob.title,
        pid=ob.pid if status is not SessionStatus.ENDED else None,
        pane=pane,
        status=status,
        reason=reason,
        pending=pending,
        updated_at=max([ob.updated_at, *(e.observed_at for e in counted(evidence, now))]),
        transcript=ob.transcript,
        messages=ob.messages,
    )
