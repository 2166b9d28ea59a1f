"""Sessions of an adapter's agent from its files and processes (the generic part of issue #19).

:class:`AdapterSource` does for any :class:`~deck_tray.core.agents.base.AgentAdapter` what
:class:`deck_tray.core.scan.Scanner` does by hand for Claude Code and Codex: it tails each
session file incrementally (:class:`~deck_tray.core.jsonl.JsonlTailer`, only appended bytes are
read), pairs the live processes with their files (:meth:`AgentAdapter.link`) and builds one
:class:`~deck_tray.core.scan.Observation`-shaped record per session. Plain Python and blocking;
the scanner calls it on its executor thread.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deck_tray.core.agents.base import AgentAdapter, LiveProcess, TranscriptState
from deck_tray.core.jsonl import JsonlTailer, NotRegularFile, SkippedFiles, file_kind
from deck_tray.core.model import AgentKind, Evidence, EvidenceSource, Message, PendingRequest, SessionStatus

#: On first sight of a session file only its last bytes are read: 4 MiB.
TAIL_BYTES = 4 * 1024 * 1024


@dataclass
class AdapterObservation:
    """What an adapter's files and processes say about one session (the fields of
    :class:`deck_tray.core.scan.Observation`, which the scanner makes of it)."""

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


class _File:
    def __init__(self, path: str, state: TranscriptState, skipped: SkippedFiles) -> None:
        self.tailer = JsonlTailer(path, tail_bytes=TAIL_BYTES, skipped=skipped)
        self.state = state
        self.records = 0
        self.size_mtime: tuple[int, float] = (-1, -1.0)

    def update(self) -> bool:
        res = self.tailer.read_new()
        if res.reset:
            self.state.reset()
            self.records = 0
        for rec in res.records:
            self.state.feed(rec)
        self.records += len(res.records)
        self.state.settle()
        return not res.missing


class AdapterSource:
    """The sessions of one adapter's agent under one home folder.

    Args:
        adapter: the agent.
        home: its data folder (:meth:`AgentAdapter.home`).
        history_s: session files untouched for longer are not listed (seconds).
        skipped: where unreadable session files (named pipes, sockets …) are reported once.
    """

    def __init__(self, adapter: AgentAdapter, home: Path, *, history_s: float,
                 skipped: SkippedFiles) -> None:
        self.adapter = adapter
        self.home = home
        self.history_s = history_s
        self.skipped = skipped
        self._files: dict[str, _File] = {}
        self._obs: dict[str, AdapterObservation] = {}

    def watch_roots(self) -> list[Path]:
        """Folders to watch (they may not exist yet)."""
        return self.adapter.watch_roots(self.home)

    def owns(self, path: str) -> bool:
        """True when ``path`` (a watcher's report) is one of this agent's files."""
        return self.adapter.owns(self.home, path)

    def observations(self) -> list[AdapterObservation]:
        """Every session as of the last :meth:`scan`."""
        return list(self._obs.values())

    def _regular(self, path: str) -> os.stat_result | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.skipped.forget(path)
            return None
        except OSError as exc:
            self.skipped.report(path, exc, "transcript")
            return None
        if not stat.S_ISREG(st.st_mode):
            self.skipped.report(path, NotRegularFile(path, file_kind(st.st_mode)), "transcript")
            return None
        return st

    def _track(self, path: str, now: float, *, recent_only: bool) -> None:
        st = self._regular(path)
        if st is None or (recent_only and now - st.st_mtime > self.history_s and path not in self._files):
            self._files.pop(path, None)
            return
        f = self._files.get(path)
        if f is None:
            f = self._files[path] = _File(path, self.adapter.new_transcript(path), self.skipped)
        key = (st.st_size, st.st_mtime)
        if key != f.size_mtime:
            f.size_mtime = key
            if not f.update():
                self._files.pop(path, None)

    def scan(self, changed: Iterable[str] | None, processes: Sequence[LiveProcess],
             now: float) -> tuple[list[AdapterObservation], set[str]]:
        """Read what changed and rebuild this agent's sessions.

        Args:
            changed: paths a watcher reported (only this agent's are read); None: list every
                session file again.
            processes: this agent's live processes whose home is :attr:`home`.
            now: POSIX seconds.

        Returns:
            The observations that differ from the last scan's (all of them when ``changed``
            is None), and the ids of sessions gone.
        """
        if changed is None:
            wanted = set(self.adapter.transcripts(self.home))
            for gone in set(self._files) - wanted:
                del self._files[gone]
            for path in wanted:
                self._track(path, now, recent_only=True)
        else:
            for path in changed:
                if self.owns(path) and path.endswith(".jsonl"):
                    self._track(path, now, recent_only=False)
        states = {p: f.state for p, f in self._files.items() if f.records}
        links = self.adapter.link(self.home, processes, states)
        for path in links.values():
            if path not in self._files:
                self._track(path, now, recent_only=False)
        states = {p: f.state for p, f in self._files.items() if f.records}
        pid_of = {path: pid for pid, path in links.items()}
        fresh: dict[str, AdapterObservation] = {}
        label = self.adapter.kind.label
        for path, st in states.items():
            sid = st.session_id or self.adapter.session_id_for(path)
            pid = pid_of.get(path)
            ob = AdapterObservation(sid, self.adapter.kind, st.cwd, st.title, pid, path,
                                    messages=tuple(st.messages), pending_hint=st.pending_request(),
                                    updated_at=max(st.last_at, st.started_at))
            ev = st.evidence()
            if ev is not None:
                ob.evidence.append(ev)
            if pid is None:
                ob.evidence.append(Evidence(EvidenceSource.PROCESS, SessionStatus.ENDED, ob.updated_at or now,
                                            f"{label} is no longer running"))
            prev = fresh.get(sid)
            if prev is None or (prev.pid is None and pid is not None):
                fresh[sid] = ob
        by_pid = {p.pid: p for p in processes}
        for pid, proc in by_pid.items():
            linked = links.get(pid)
            if linked is not None and linked in states:
                continue
            sid = self.adapter.session_id_for(linked) if linked else f"{self.adapter.binary}-{pid}"
            fresh[sid] = AdapterObservation(
                sid, self.adapter.kind, proc.cwd, "", pid, "",
                [Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, proc.started_at,
                          "started; no conversation yet")],
                updated_at=proc.started_at)
        changed_obs = [ob for sid, ob in fresh.items() if changed is None or self._obs.get(sid) != ob]
        removed = set(self._obs) - set(fresh)
        self._obs = fresh
        return changed_obs, removed
