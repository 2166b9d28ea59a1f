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
import logging
import time
from collections.abc import Iterable

from deck_tray.core import procs
from deck_tray.core.hooks import HookStore
from deck_tray.core.model import AgentKind, Evidence, PaneRef, Session, SessionStatus
from deck_tray.core.scan import Observation, Scanner, build_session
from deck_tray.core.screens import read_screen, screen_evidence
from deck_tray.services.panes import Multiplexer, MuxError, PaneInfo, pane_for_pid

log = logging.getLogger(__name__)
_NO_PANE = PaneInfo("", "", 0, "", True, "", "", "", False)


def _needs_screen(ob: Observation, hooks: HookStore | None = None, now: float = 0.0) -> bool:
    """Only panes whose files (or hooks) say "something may be asked" are captured."""
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


async def collect(
    scanner: Scanner,
    mux: Multiplexer,
    *,
    changed: Iterable[str] | None = None,
    cache: PaneCache | None = None,
    hooks: HookStore | None = None,
) -> list[Session]:
    """Scan files, map live agents to their panes, read screens where needed.

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
    loop = asyncio.get_running_loop()
    paths = None if changed is None else list(changed)
    obs = await loop.run_in_executor(None, scanner.scan, paths)
    pane_map: dict[str, PaneInfo]
    if cache is not None and not cache.stale(obs):
        pane_map = {ob.id: cache.mapping[(ob.id, ob.pid)] for ob in obs
                    if ob.pid is not None and (ob.id, ob.pid) in cache.mapping}
    else:
        panes, own = (await asyncio.gather(mux.all_panes(), _own_panes(mux, obs))) if mux.available else ([], {})
        pane_map = await loop.run_in_executor(None, _map_panes, obs, panes, own) if panes or own else {}
        if cache is not None:
            cache.panes, cache.listed_at = panes, time.monotonic()
            cache.mapping = {(ob.id, ob.pid): pane_map[ob.id] for ob in obs if ob.pid is not None and ob.id in pane_map}
            # Agents outside any known pane stay unmapped; remember that too until the ttl passes.
            for ob in obs:
                if ob.pid is not None and ob.id not in pane_map:
                    cache.mapping.setdefault((ob.id, ob.pid), _NO_PANE)
    pane_map = {k: v for k, v in pane_map.items() if v is not _NO_PANE}
    now = scanner.clock()

    async def one(ob: Observation) -> Session:
        pane = pane_map.get(ob.id)
        ref: PaneRef | None = pane.ref() if pane else None
        extra: list[Evidence] = []
        if ref is not None and _needs_screen(ob, hooks, now) and ob.agent in (AgentKind.CLAUDE_CODE, AgentKind.CODEX):
            try:
                text = await mux.capture(ref)
            except MuxError as exc:
                log.debug("capture of %s failed: %s", ref, exc)
            else:
                ev = screen_evidence(ob.agent, read_screen(ob.agent, text), scanner.clock(), ob.pending_hint)
                if ev is not None:
                    extra.append(ev)
        return build_session(ob, now, pane=ref, extra=_with_hooks(hooks, ob, extra))

    needs = [ob for ob in obs if ob.id in pane_map and _needs_screen(ob, hooks, now)]
    sessions = list(await asyncio.gather(*(one(ob) for ob in needs)))
    need_ids = {ob.id for ob in needs}
    sessions += [build_session(ob, now, pane=_ref(pane_map.get(ob.id)), extra=_with_hooks(hooks, ob, []))
                 for ob in obs if ob.id not in need_ids]
    sessions.sort(key=lambda s: (s.status is SessionStatus.ENDED, -s.updated_at))
    return sessions


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
