"""One full observation pass: files → panes → screens → :class:`Session` snapshots.

Shared by the app's monitor (every tick) and the CLI (once). Blocking work (file reads,
the process table, ancestry look-ups) runs on the default executor so the GUI thread
never waits on it; tmux, zellij and the terminals are driven asynchronously. tmux and zellij
panes are listed; a terminal window (kitty, screen, WezTerm, Konsole) is found from the
agent's own environment (:meth:`Multiplexer.pane_for_agent`); then the innermost pane that
is the agent or one of its ancestors wins (:func:`pane_for_pid`).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from deck_tray.core import procs
from deck_tray.core.agents import adapter_for
from deck_tray.core.hooks import HookStore
from deck_tray.core.model import AgentKind, Evidence, EvidenceSource, PaneRef, Session, SessionStatus
from deck_tray.core.scan import Observation, Scanner, build_session
from deck_tray.core.screens import read_screen, screen_evidence
from deck_tray.services.panes import Multiplexer, MuxError, PaneInfo, pane_for_pid

log = logging.getLogger(__name__)
_NO_PANE = PaneInfo("", "", 0, "", True, "", "", "", False)
#: How long a pane title read is trusted (seconds). Titles are read again at every tick (5 s at
#: most) and every :data:`deck_tray.services.monitor.TITLE_TICK_MS` while such an agent works, and a
#: changed title rebuilds its session at once; the expiry only matters when titles can no longer be
#: read (each expiry decides the session again: at 12 s that was a third of the idle CPU with 50 panes).
TITLE_FRESH_S = 60.0


def _title_evidence(ob: Observation, pane: PaneInfo | None, at: float) -> Evidence | None:
    """What the pane title says, for the agents whose title tells their state (Gemini CLI,
    Qwen Code: :meth:`~deck_tray.core.agents.base.AgentAdapter.title_status`)."""
    adapter = adapter_for(ob.agent)
    if adapter is None or not adapter.title_rules or pane is None or not pane.title:
        return None
    said = adapter.title_status(pane.title)
    if said is None:
        return None
    return Evidence(EvidenceSource.SCREEN, said[0], at, said[1], TITLE_FRESH_S)


def _reads_title(ob: Observation) -> bool:
    adapter = adapter_for(ob.agent)
    return adapter is not None and adapter.title_rules


def _needs_screen(ob: Observation, hooks: HookStore | None = None, now: float = 0.0,
                  title: Evidence | None = None) -> bool:
    """Only panes whose files (or hooks, or pane title) say "something may be asked" are captured."""
    if title is not None:
        return title.status.is_waiting
    if ob.pending_hint is not None or (hooks is not None and hooks.is_waiting(ob.id, now)):
        return True
    return any(e.status.is_waiting for e in ob.evidence)


def _with_hooks(hooks: HookStore | None, ob: Observation, extra: list[Evidence]) -> list[Evidence]:
    """``extra`` plus the session's recent hook observations (:meth:`HookStore.evidence`), as
    they are: :func:`deck_tray.core.status.decide` decides which hook claim, if any, holds."""
    if hooks is None:
        return extra
    return [*extra, *hooks.evidence(ob.id)]


def _ref(pane: PaneInfo | None) -> PaneRef | None:
    return pane.ref() if pane is not None else None


def _map_panes(obs: list[Observation], panes: list[PaneInfo],
               own: dict[int, PaneInfo] | None = None) -> dict[str, PaneInfo]:
    """``{session id: pane}``; ``own`` holds the terminal pane each agent pid's environment named."""
    out: dict[str, PaneInfo] = {}
    for ob in obs:
        if ob.pid is None:
            continue
        extra = [own[ob.pid]] if own and ob.pid in own else []
        pane = pane_for_pid(ob.pid, panes + extra)
        if pane is not None:
            out[ob.id] = pane
    return out


async def _own_panes(mux: Multiplexer, obs: list[Observation]) -> dict[int, PaneInfo]:
    """``{agent pid: pane}`` for the agents whose environment names a terminal pane."""
    pids = sorted({ob.pid for ob in obs if ob.pid is not None})
    if not pids:
        return {}
    envs = await asyncio.get_running_loop().run_in_executor(None, lambda: {p: procs.environ(p) for p in pids})
    live = [p for p in pids if envs[p]]
    found = await asyncio.gather(*(mux.pane_for_agent(p, envs[p]) for p in live), return_exceptions=True)
    out: dict[int, PaneInfo] = {}
    for pid, res in zip(live, found, strict=True):
        if isinstance(res, BaseException):
            log.debug("no terminal pane for pid %d: %s", pid, res)
        elif res is not None:
            out[pid] = res
    return out


class PaneCache:
    """Remembers the pid → pane mapping between refreshes.

    Panes are listed again when ``ttl`` seconds passed or a live agent has no known pane
    yet. The dispatcher never trusts this cache: it re-queries the pane before every send.
    """

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self.panes: list[PaneInfo] = []
        self.listed_at = float("-inf")
        self.mapping: dict[tuple[str, int], PaneInfo] = {}

    def stale(self, obs: list[Observation]) -> bool:
        """True when the panes should be listed again."""
        if time.monotonic() - self.listed_at > self.ttl:
            return True
        return any(ob.pid is not None and (ob.id, ob.pid) not in self.mapping for ob in obs)


@dataclass(frozen=True)
class Delta:
    """What one :meth:`Collector.refresh` changed.

    Attributes:
        changed: the sessions built anew (new ones, and those whose files, pane, screen,
            hooks or evidence freshness changed), newest activity first; every session when
            ``complete``. A session built anew may still equal the one before.
        removed: ids of sessions no longer observed.
        complete: True when ``changed`` holds every known session.
    """

    changed: list[Session]
    removed: frozenset[str]
    complete: bool


def _order(s: Session) -> tuple[bool, float]:
    return (s.status is SessionStatus.ENDED, -s.updated_at)


def expires_at(evidence: Iterable[Evidence], now: float) -> float:
    """When a decision made at ``now`` from ``evidence`` may first change by time alone: the
    soonest end of a freshness window still open at ``now`` (POSIX seconds; ``inf`` when none)."""
    ends = [e.observed_at + e.fresh_for for e in evidence if e.fresh_for is not None]
    return min((t for t in ends if t >= now), default=math.inf)


class Collector:
    """Keeps every session built from the scanner's observations, and rebuilds on each
    :meth:`refresh` only those that can have changed.

    A file event costs the work for the sessions its files belong to, not for every
    session: the scanner (:meth:`Scanner.scan_delta`) names the observations that changed;
    a session is also rebuilt when its pane changed (panes are listed again every
    :attr:`PaneCache.ttl` seconds), and when a freshness window of its evidence closed
    (:func:`expires_at`: a claim that expired may change the decision). A refresh with
    ``changed=[]`` (the monitor's tick) reads the screens of all sessions that may be asking
    something; ``force`` or a full scan rebuilds every session.

    Args:
        scanner: the file scanner.
        mux: the multiplexer(s).
        cache: pane mapping reused between refreshes; None lists the panes every time.

    Attributes:
        sessions: every known session by id (read-only for callers).
    """

    def __init__(self, scanner: Scanner, mux: Multiplexer, *, cache: PaneCache | None = None) -> None:
        self.scanner = scanner
        self.mux = mux
        self.cache = cache
        self.sessions: dict[str, Session] = {}
        self._obs: dict[str, Observation] = {}
        self._panes: dict[str, PaneInfo] = {}
        self._primed = False
        #: (time, session id): when a session's decision may change by time alone; stale
        #: entries (superseded in ``_expiry``) are skipped and compacted away.
        self._heap: list[tuple[float, str]] = []
        self._expiry: dict[str, float] = {}
        #: Panes whose title was read after the cached mapping was made, by (server, pane id).
        self._titled: dict[tuple[str, str], PaneInfo] = {}

    def due(self, now: float) -> bool:
        """True when some session's decision may have changed by time alone (see :func:`expires_at`)."""
        while self._heap and self._expiry.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return bool(self._heap) and self._heap[0][0] < now

    def _expired(self, now: float) -> set[str]:
        out: set[str] = set()
        while self._heap and self._heap[0][0] < now:
            t, sid = heapq.heappop(self._heap)
            if self._expiry.get(sid) == t:
                del self._expiry[sid]
                out.add(sid)
        return out

    def _expire_at(self, sid: str, t: float) -> None:
        if t == math.inf:
            self._expiry.pop(sid, None)
            return
        self._expiry[sid] = t
        heapq.heappush(self._heap, (t, sid))
        if len(self._heap) > 4 * len(self._expiry) + 64:
            self._heap = [(t, s) for s, t in self._expiry.items()]
            heapq.heapify(self._heap)

    def invalidate(self) -> None:
        """Forget what was built: the next :meth:`refresh` rebuilds every session (after a
        refresh failed half-way)."""
        self._primed = False

    async def refresh(self, changed: Iterable[str] | None = None, *, force: bool = False,
                      hooks: HookStore | None = None, sessions: Iterable[str] = ()) -> Delta:
        """Scan, map live agents to their panes, read screens where needed, and rebuild the
        sessions that can have changed.

        Args:
            changed: paths a watcher reported (incremental scan); empty: the periodic tick
                (liveness and screens); None for a full scan.
            force: decide every session again even when nothing changed (current reasons).
            hooks: the hook events received so far, given to the status function as
                evidence; None without hooks.
            sessions: ids to decide again even when none of their files changed (a hook
                arrived for them).

        Returns:
            What changed; :attr:`sessions` holds the result.

        Raises:
            Whatever the scan or the multiplexer raises (the caller should then
            :meth:`invalidate`).
        """
        loop = asyncio.get_running_loop()
        paths = None if changed is None else list(changed)
        scanner = self.scanner
        delta = await loop.run_in_executor(None, scanner.scan_delta, paths)
        complete = delta.complete or force or not self._primed
        removed: set[str] = set()
        if delta.complete or not self._primed:
            obs = scanner.observations() if not delta.complete else list(delta.changed)
            removed = set(self.sessions) - {ob.id for ob in obs}
            self._obs = {ob.id: ob for ob in obs}
        else:
            for ob in delta.changed:
                self._obs[ob.id] = ob
            for sid in delta.removed:
                if self._obs.pop(sid, None) is not None:
                    removed.add(sid)
        for sid in removed:
            self.sessions.pop(sid, None)
            self._panes.pop(sid, None)
            self._expiry.pop(sid, None)
        # A title agent's file changed (a prompt was sent, a reply came), or the tick: its pane
        # title may say something new, so the titles are read again (one list-panes per server;
        # the pane mapping is kept: mapping every pane again cost ~70 ms with 50 panes).
        titles = any(_reads_title(ob) for ob in delta.changed) or (
            paths is not None and not paths and self.reads_titles())
        now = scanner.clock()
        rebuild = set(self._obs) if complete else \
            {ob.id for ob in delta.changed} | self._expired(now) | (set(sessions) & self._obs.keys())
        listed = await self._map_panes(rebuild, complete)
        if titles and not listed:
            rebuild |= {ob.id for ob in await self._read_titles()}
        if paths is not None and not paths and not complete:
            # The tick: read again the screens of every session that may be asking something.
            rebuild |= {sid for sid, ob in self._obs.items() if sid in self._panes and _needs_screen(ob, hooks, now)}
        built = await self._build([self._obs[sid] for sid in rebuild if sid in self._obs], hooks, now)
        self._primed = True
        if complete:
            built = list(self.sessions.values())
        built.sort(key=_order)
        return Delta(built, frozenset(removed), complete)

    async def _map_panes(self, rebuild: set[str], complete: bool) -> bool:
        """Bring :attr:`_panes` up to date; sessions whose pane changed join ``rebuild``.

        Returns:
            True when the panes were listed again (False: the cached mapping was used).
        """
        cache, mux, loop = self.cache, self.mux, asyncio.get_running_loop()
        check = list(self._obs.values()) if complete else [self._obs[s] for s in rebuild if s in self._obs]
        if cache is not None and not cache.stale(check):
            for ob in check:
                pane = cache.mapping.get((ob.id, ob.pid)) if ob.pid is not None else None
                if pane is None or pane is _NO_PANE:
                    self._panes.pop(ob.id, None)
                else:
                    self._panes[ob.id] = self._titled.get((pane.server, pane.pane_id), pane)
            return False
        obs = list(self._obs.values())
        panes, own = (await asyncio.gather(mux.all_panes(), _own_panes(mux, obs))) if mux.available else ([], {})
        pane_map = await loop.run_in_executor(None, _map_panes, obs, panes, own) if panes or own else {}
        if cache is not None:
            cache.panes, cache.listed_at = panes, time.monotonic()
            cache.mapping = {(ob.id, ob.pid): pane_map[ob.id] for ob in obs if ob.pid is not None and ob.id in pane_map}
            # Agents outside any known pane stay unmapped; remember that too until the ttl passes.
            for ob in obs:
                if ob.pid is not None and ob.id not in pane_map:
                    cache.mapping.setdefault((ob.id, ob.pid), _NO_PANE)
        for sid in set(self._panes) | set(pane_map):
            old, new = self._panes.get(sid), pane_map.get(sid)
            if _ref(old) != _ref(new) or (old is not None and new is not None and old.title != new.title
                                          and sid in self._obs and _reads_title(self._obs[sid])):
                rebuild.add(sid)
        self._panes = pane_map
        self._titled = {}
        return True

    async def _read_titles(self) -> list[Observation]:
        """List the panes (one ``list-panes`` per tmux server) and take the new titles of the
        title agents' panes, keeping the mapping; returns the observations whose title changed."""
        panes = await self.mux.all_panes() if self.mux.available else []
        by_id = {(p.server, p.pane_id): p for p in panes}
        changed: list[Observation] = []
        for sid, pane in list(self._panes.items()):
            ob = self._obs.get(sid)
            if ob is None or not _reads_title(ob):
                continue
            new = by_id.get((pane.server, pane.pane_id))
            if new is not None and new.title != pane.title:
                self._panes[sid] = new
                self._titled[(new.server, new.pane_id)] = new
                changed.append(ob)
        if self.cache is not None and panes:
            self.cache.panes = panes
        return changed

    def reads_titles(self) -> bool:
        """True when some session with a pane is of an agent whose pane title tells its state."""
        return any(sid in self._obs and _reads_title(self._obs[sid]) for sid in self._panes)

    async def refresh_titles(self, hooks: HookStore | None = None) -> Delta:
        """List the panes again (one ``list-panes`` per tmux server) and rebuild the sessions
        whose pane title changed, reading the screen of those that now wait (Gemini CLI's
        ``✋  Action Required``): the quick path of :data:`deck_tray.services.monitor.TITLE_TICK_MS`.

        Returns:
            The sessions rebuilt (``complete=False``, nothing removed).
        """
        changed = await self._read_titles()
        now = self.scanner.clock()
        built = await self._build(changed, hooks, now) if changed else []
        built.sort(key=_order)
        return Delta(built, frozenset(), False)

    async def _build(self, obs: list[Observation], hooks: HookStore | None, now: float) -> list[Session]:
        mux, scanner = self.mux, self.scanner

        titles = {ob.id: ev for ob in obs if (ev := _title_evidence(ob, self._panes.get(ob.id), now)) is not None}

        async def one(ob: Observation) -> Session:
            pane = self._panes.get(ob.id)
            ref: PaneRef | None = pane.ref() if pane else None
            extra: list[Evidence] = [titles[ob.id]] if ob.id in titles else []
            if ref is not None and _needs_screen(ob, hooks, now, titles.get(ob.id)) and \
                    (ob.agent in (AgentKind.CLAUDE_CODE, AgentKind.CODEX) or adapter_for(ob.agent) is not None):
                try:
                    text = await mux.capture(ref)
                except MuxError as exc:
                    log.debug("capture of %s failed: %s", ref, exc)
                else:
                    ev = screen_evidence(ob.agent, read_screen(ob.agent, text), scanner.clock(), ob.pending_hint)
                    if ev is not None:
                        extra.append(ev)
            return self._keep(ob, now, ref, _with_hooks(hooks, ob, extra))

        needs = [ob for ob in obs if ob.id in self._panes and _needs_screen(ob, hooks, now, titles.get(ob.id))]
        out = list(await asyncio.gather(*(one(ob) for ob in needs)))
        need_ids = {ob.id for ob in needs}
        out += [self._keep(ob, now, _ref(self._panes.get(ob.id)),
                           _with_hooks(hooks, ob, [titles[ob.id]] if ob.id in titles else []))
                for ob in obs if ob.id not in need_ids]
        return out

    def _keep(self, ob: Observation, now: float, pane: PaneRef | None, extra: list[Evidence]) -> Session:
        s = build_session(ob, now, pane=pane, extra=extra)
        self.sessions[ob.id] = s
        self._expire_at(ob.id, expires_at([*ob.evidence, *extra], now))
        return s


async def collect(
    scanner: Scanner,
    mux: Multiplexer,
    *,
    changed: Iterable[str] | None = None,
    cache: PaneCache | None = None,
    hooks: HookStore | None = None,
) -> list[Session]:
    """Scan files, map live agents to their panes, read screens where needed (once; the
    app's monitor keeps a :class:`Collector` instead).

    Args:
        scanner: the file scanner.
        mux: the multiplexer(s).
        changed: paths a watcher reported (incremental scan); None for a full scan.
        cache: pane mapping reused between calls; None lists the panes every time.
        hooks: the hook events received so far (the app's socket), given to the status
            function as evidence; None without hooks.

    Returns:
        One :class:`Session` per known session, newest activity first.
    """
    collector = Collector(scanner, mux, cache=cache)
    await collector.refresh(changed, hooks=hooks)
    return sorted(collector.sessions.values(), key=_order)


def find_session(sessions: list[Session], key: str) -> Session | list[Session] | None:
    """The session whose id is ``key`` or starts with it. A remote session's id is
    ``HOST:ID``; its plain ``ID`` (or a prefix) matches too, when no other session matches.

    Returns:
        The session; a list of candidates when the prefix is ambiguous; None if no match.
    """
    exact = [s for s in sessions if s.id == key] or [s for s in sessions if s.host and s.local_id == key]
    if len(exact) == 1 or (exact and not exact[0].host):
        return exact[0]
    cands = [s for s in sessions if key and (s.id.startswith(key) or (s.host and s.local_id.startswith(key)))]
    if len(cands) == 1:
        return cands[0]
    return cands or None
