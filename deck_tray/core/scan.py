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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from deck_tray.core import claude, codex, procs
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
    """

    def __init__(self, path: str, agent: AgentKind, skipped: SkippedFiles) -> None:
        self.tailer = JsonlTailer(path, tail_bytes=TAIL_BYTES, skipped=skipped)
        self.thread = claude.subagent_id(path) if agent is AgentKind.CLAUDE_CODE else ""
        self.state: claude.ClaudeTranscript | codex.CodexRollout = (
            claude.ClaudeTranscript() if agent is AgentKind.CLAUDE_CODE
            else codex.CodexRollout(codex.thread_id_from_path(path) or "", path)
        )
        self.agent = agent
        self.size_mtime: tuple[int, float] = (-1, -1.0)
        self.records = 0

    def update(self) -> bool:
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

    A full :meth:`scan` globs the folders; ``scan(changed=paths)`` re-reads only the
    named files and reuses everything else, which keeps a file event cheap however many
    sessions exist.
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
    ) -> None:
        self.claude_dir = claude_dir
        self.codex_dir = codex_dir
        self.history_s = history_s
        self.clock = clock
        self.process_lister = process_lister
        self.process_ttl = process_ttl
        self.skipped = skipped if skipped is not None else SkippedFiles()
        self._tracked: dict[str, _Tracked] = {}
        self._status: dict[str, tuple[tuple[int, float], claude.LiveStatus | None]] = {}
        self._procs: list[procs.AgentProcess] = []
        self._procs_at = float("-inf")
        self._alive: dict[tuple[int, str], bool] = {}
        self._live_paths: dict[str, str] = {}

    # -- discovery -----------------------------------------------------------------
    def watch_roots(self) -> list[Path]:
        """Folders whose changes matter (for file watchers); they may not exist yet."""
        return [self.claude_dir / "sessions", self.claude_dir / "projects", self.codex_dir / "sessions"]

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
            self._status.pop(path, None)
            return
        key = (st.st_size, st.st_mtime)
        old = self._status.get(path)
        if old is not None and old[0] == key:
            return
        ls = claude.read_live_status(Path(path), self.skipped)
        if ls is None and old is not None and old[1] is not None:
            return  # caught mid-rewrite: keep the last good content until the next event
        self._status[path] = (key, ls)

    def live_claude(self, recheck: bool = True) -> dict[str, claude.LiveStatus]:
        """Live status files whose process still runs, by session id.

        Args:
            recheck: look at ``/proc`` again; False reuses the last answer per process
                (file events need no liveness check, the periodic tick does one).
        """
        live: dict[str, claude.LiveStatus] = {}
        if recheck:
            self._alive.clear()
        for _key, ls in self._status.values():
            if ls is None:
                continue
            ident = (ls.pid, ls.proc_start)
            alive = self._alive.get(ident)
            if alive is None:
                alive = self._alive[ident] = procs.is_alive(ls.pid, ls.proc_start)
            if not alive:
                continue
            prev = live.get(ls.session_id)
            if prev is None or ls.updated_at >= prev.updated_at:
                live[ls.session_id] = ls
        return live

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
            self._tracked.pop(path, None)
            return
        key = (st.st_size, st.st_mtime)
        tr = self._tracked.get(path)
        if tr is None:
            tr = self._tracked[path] = _Tracked(path, agent, self.skipped)
        if key != tr.size_mtime:
            tr.size_mtime = key
            if not tr.update():
                del self._tracked[path]

    # -- scanning ------------------------------------------------------------------
    def scan(self, changed: Iterable[str] | None = None) -> list[Observation]:
        """Read what changed on disk and return an observation per known session.

        Args:
            changed: paths reported changed by a file watcher; None for a full scan
                (glob every folder, refresh the process table).

        Never raises for bad or vanishing files; they are skipped and logged.
        """
        now = self.clock()
        sessions_dir = str(self.claude_dir / "sessions")
        projects_dir = str(self.claude_dir / "projects")
        codex_dir = str(self.codex_dir / "sessions")
        new_files = False
        if changed is None:
            sdir = self.claude_dir / "sessions"
            found = {str(p) for p in sdir.glob("*.json")} if sdir.is_dir() else set()
            for gone in set(self._status) - found:
                del self._status[gone]
            for p in found:
                self._read_status(p)
            wanted = {p: AgentKind.CLAUDE_CODE for p in self._recent(self.claude_dir / "projects", "*/*.jsonl", now)}
            wanted.update({p: AgentKind.CLAUDE_CODE
                           for p in self._recent(self.claude_dir / "projects", "*/*/subagents/agent-*.jsonl", now)})
            wanted.update(
                {p: AgentKind.CODEX for p in self._recent(self.codex_dir / "sessions", "*/*/*/rollout-*.jsonl", now)}
            )
            for gone in set(self._tracked) - set(wanted):
                del self._tracked[gone]
            for path, agent in wanted.items():
                self._track(path, agent)
        else:
            for path in changed:
                if path.startswith(sessions_dir) and path.endswith(".json"):
                    self._read_status(path)
                elif path.endswith(".jsonl") and path.startswith(projects_dir):
                    new_files |= path not in self._tracked
                    self._track(path, AgentKind.CLAUDE_CODE)
                elif path.endswith(".jsonl") and path.startswith(codex_dir) and "/rollout-" in path:
                    new_files |= path not in self._tracked
                    self._track(path, AgentKind.CODEX)
        live = self.live_claude(recheck=changed is None or not changed)
        for ls in live.values():
            # A live session's transcript is read even when no watcher reported it (it is
            # created at the first prompt, possibly in a folder nobody watches yet).
            if ls.cwd:
                tpath = self._live_paths.get(ls.session_id)
                if tpath is None:
                    tpath = self._live_paths[ls.session_id] = str(
                        claude.transcript_path(self.claude_dir, ls.cwd, ls.session_id)
                    )
                self._track(tpath, AgentKind.CLAUDE_CODE)
        agents = self._processes(now, force=changed is None or new_files)
        for ap in agents:
            for p in ap.open_rollouts:
                if p.startswith(str(self.codex_dir)) and p not in self._tracked:
                    self._track(p, AgentKind.CODEX)
        present = list(self._tracked.values())
        obs = self._claude_observations(present, live, agents, now)
        obs += self._codex_observations(present, agents, now)
        return obs

    def _claude_observations(
        self,
        tracked: Iterable[_Tracked],
        live: dict[str, claude.LiveStatus],
        agents: list[procs.AgentProcess],
        now: float,
    ) -> list[Observation]:
        out: dict[str, Observation] = {}
        claude_cwds = {a.cwd for a in agents if a.kind == "claude"}
        live_cwds = {ls.cwd for ls in live.values()}
        mains: dict[str, claude.ClaudeTranscript] = {}
        subs: list[_Tracked] = []
        for tr in tracked:
            st = tr.state
            if not isinstance(st, claude.ClaudeTranscript) or not tr.records:
                continue
            if tr.thread:
                subs.append(tr)
            else:
                mains[st.session_id or Path(tr.tailer.path).stem] = st
        for tr in subs:
            # A sub-agent's own file (2.0.x beside the session's, 2.1.x under <id>/subagents/)
            # is a thread of its parent, never a session of its own.
            parent = mains.get(tr.parent_id())
            thread = tr.state.threads.get(tr.thread) if isinstance(tr.state, claude.ClaudeTranscript) else None
            if parent is not None and thread is not None:
                parent.adopt(thread)
        for sid, st in mains.items():
            path = next(t.tailer.path for t in tracked if t.state is st)
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
        return list(out.values())

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
        children: list[codex.CodexRollout] = []
        for tr in tracked:
            st = tr.state
            if not isinstance(st, codex.CodexRollout) or not tr.records:
                continue
            if st.parent_thread:
                children.append(st)
                continue
            tid = st.thread_id or codex.thread_id_from_path(tr.tailer.path) or Path(tr.tailer.path).stem
            out.append(_observe(st, tid, AgentKind.CODEX, st.title, tr.tailer.path))
        by_id = {ob.id: ob for ob in out}
        for child in children:
            parent = by_id.get(child.parent_thread)
            if parent is None:
                # Its parent is not listed (older than the history window): show it on its own.
                tid = child.thread_id or "subagent"
                out.append(_observe(child, tid, AgentKind.CODEX, child.title, ""))
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
