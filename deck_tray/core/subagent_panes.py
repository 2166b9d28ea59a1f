"""Panes for opencode sub-agents: the pure *decide* step, the deferred queue, and which tmux
pane shows which opencode session.

When an opencode session that the user has open in a tmux pane starts a sub-agent (a child
session: ``session.created`` whose info has ``parentID``), deck-tray opens a pane beside the
parent's pane that attaches to the child, and closes it when the child goes idle or is
deleted (``reference/seeds.md`` §1). The service (:mod:`deck_tray.services.subagent_panes`)
queries tmux, hands the facts to :func:`decide`, runs what it returns, verifies it and only
then updates its cache. Nothing here talks to tmux, reads ``/proc`` or looks at a clock
it was not given.

Layout (one column of agent panes beside the main pane)::

    ┌──────────────── main ───────────────┬─ agent 1 ─┐
    │ opencode attach … --session PARENT  │  child A  │
    │                                     ├─ agent 2 ─┤
    │  keeps >= main_min_cols columns     │  child B  │
    └─────────────────────────────────────┴───────────┘

* The first sub-agent splits the main pane side by side (``split-window -h``); the main pane
  keeps at least :attr:`Layout.main_min_cols` columns and the new column gets at least
  :attr:`Layout.agent_min_cols` (as close to half the pane as those two allow).
* Later sub-agents stack in that column: the last (bottom) agent pane is split top/bottom
  (``split-window -v``) when both halves keep :attr:`Layout.agent_min_rows` rows, else the
  tallest agent pane that has room.
* No room, or the window is zoomed: **defer** (retried on a timer; see :class:`DeferredQueue`).

Which pane shows a session (:func:`attach_target`): a pane whose process tree runs
``opencode attach URL --session ID`` (``-s ID``, ``--session=ID``), or deck-tray's own
``deck-tray opencode-attach URL ID`` helper (which execs the former). A plain ``opencode`` TUI
is **not** tied to a session: it picks sessions interactively and serves from its own
in-process server, so its command line names neither reliably.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from deck_tray.core.settings import normalize_server_url

#: tmux user-option value prefix of a sub-agent pane: ``@deck-tray subagent:<child session id>``.
TAG_PREFIX = "subagent:"
#: Deferred entries kept at most (the oldest is dropped first) — the seed's number.
DEFER_MAX_ENTRIES = 20
#: Seconds a deferred entry is retried before it expires — the seed's number (5 minutes).
DEFER_TTL_S = 300.0
#: Consecutive failures to read the window state after which the retry loop stops — the seed's number.
DEFER_MAX_READ_FAILURES = 3
#: Rows each half of a stacked agent pane must keep.
AGENT_MIN_ROWS = 8
#: Executable names of opencode (the native binary, the npm package's launcher).
OPENCODE_NAMES = frozenset({"opencode", ".opencode", "opencode.exe"})

K = TypeVar("K", bound=Hashable)


def tag_value(session_id: str) -> str:
    """The ``@deck-tray`` value of the pane that shows sub-agent ``session_id``."""
    return TAG_PREFIX + session_id


def tagged_session(tag: str) -> str | None:
    """The child session id a ``@deck-tray`` value names (``subagent:ses_…``), else None."""
    if tag.startswith(TAG_PREFIX) and len(tag) > len(TAG_PREFIX):
        return tag[len(TAG_PREFIX):]
    return None


# -- which pane shows which session -------------------------------------------------------------


@dataclass(frozen=True)
class AttachTarget:
    """An opencode session a process shows.

    Attributes:
        url: the server's base URL, normalized (``http://127.0.0.1:4096``).
        session_id: ``ses_…``.
    """

    url: str
    session_id: str


def _base(arg: str) -> str:
    return arg.rsplit("/", 1)[-1]


def _opencode_attach(argv: Sequence[str]) -> AttachTarget | None:
    for i, arg in enumerate(argv[:-1]):
        if _base(arg) not in OPENCODE_NAMES or argv[i + 1] != "attach":
            continue
        rest = list(argv[i + 2:])
        url = ""
        sid = ""
        j = 0
        while j < len(rest):
            a = rest[j]
            if a in ("--session", "-s") and j + 1 < len(rest):
                sid = rest[j + 1]
                j += 2
                continue
            if a.startswith("--session="):
                sid = a.split("=", 1)[1]
            elif not a.startswith("-") and not url:
                url = a
            j += 1
        if url and sid.startswith("ses"):
            return AttachTarget(normalize_server_url(url), sid)
    return None


def _helper_attach(argv: Sequence[str]) -> AttachTarget | None:
    if "opencode-attach" not in argv:
        return None
    i = argv.index("opencode-attach")
    head = argv[:i]
    if not any(_base(a) == "deck-tray" or a in ("deck_tray", "deck_tray.cli") for a in head):
        return None
    pos: list[str] = []
    rest = list(argv[i + 1:])
    j = 0
    while j < len(rest):
        a = rest[j]
        if a == "--opencode-bin":
            j += 2
            continue
        if not a.startswith("-"):
            pos.append(a)
        j += 1
    if len(pos) >= 2 and pos[1].startswith("ses"):
        return AttachTarget(normalize_server_url(pos[0]), pos[1])
    return None


def attach_target(argv: Sequence[str]) -> AttachTarget | None:
    """The opencode session a process's command line attaches to, or None.

    Recognised (``argv`` as in ``/proc/<pid>/cmdline``; a node launcher in front is fine):

    * ``opencode attach URL --session ID`` (also ``-s ID`` and ``--session=ID``, options in
      any order, the program given by path);
    * ``deck-tray opencode-attach URL ID [--opencode-bin BIN]`` (also ``python -m deck_tray …``).

    A plain ``opencode`` TUI returns None (see the module docstring).
    """
    return _opencode_attach(argv) or _helper_attach(argv)


@dataclass(frozen=True)
class PaneProcs:
    """One tmux pane and the command lines of the processes running in it.

    Attributes:
        server: tmux socket path.
        pane_id: ``%3``.
        tag: its ``@deck-tray`` user option (``""`` when unset).
        cmdlines: argv of the pane's first process and of every descendant.
        focused: the active pane of its window.
    """

    server: str
    pane_id: str
    tag: str
    cmdlines: tuple[tuple[str, ...], ...]
    focused: bool = False


def attached_panes(panes: Iterable[PaneProcs]) -> dict[AttachTarget, list[PaneProcs]]:
    """Which panes show which opencode session (see :func:`attach_target`).

    A pane counts once per session even when several of its processes name it (the node
    launcher and the native binary; the helper before it ``exec``'d). Per session the
    user's own panes come first (untagged, focused first), sub-agent panes deck-tray opened last.
    """
    out: dict[AttachTarget, list[PaneProcs]] = {}
    for p in panes:
        seen: set[AttachTarget] = set()
        for argv in p.cmdlines:
            t = attach_target(argv)
            if t is not None and t not in seen:
                seen.add(t)
                out.setdefault(t, []).append(p)
    for lst in out.values():
        lst.sort(key=lambda p: (tagged_session(p.tag) is not None, not p.focused, p.server, p.pane_id))
    return out


def anchor_session(session_id: str, parents: Mapping[str, str], attached: Iterable[str]) -> str | None:
    """The nearest ancestor of ``session_id`` the user has open in a pane, or None.

    Args:
        session_id: the sub-agent.
        parents: ``{session id: parentID}`` (sessions without a parent left out).
        attached: ids of sessions shown in one of the user's panes.
    """
    shown = set(attached)
    seen = {session_id}
    cur = parents.get(session_id)
    while cur and cur not in seen:
        if cur in shown:
            return cur
        seen.add(cur)
        cur = parents.get(cur)
    return None


# -- the decision ----------------------------------------------------------------------------------


class Verb(enum.Enum):
    """What to do for one sub-agent."""

    SPAWN = "spawn"
    """Split :attr:`Decision.target` (see :class:`Split`) and attach the new pane to the sub-agent."""
    CLOSE = "close"
    """Kill the sub-agent's pane :attr:`Decision.target`."""
    DEFER = "defer"
    """No room now (or the window is zoomed): try again later."""
    NONE = "none"
    """Nothing to do (already open, or nothing to close)."""


class Split(enum.Enum):
    """How a :attr:`Verb.SPAWN` splits its target."""

    BESIDE_MAIN = "-h"
    """``split-window -h -l COLS`` of the main pane: the first agent pane, to its right."""
    BELOW_AGENT = "-v"
    """``split-window -v`` of an agent pane: the next pane in the column, below it."""


@dataclass(frozen=True)
class Layout:
    """Capacity limits (the ``opencode/main_pane_min_cols`` and ``opencode/agent_pane_min_cols`` settings).

    Attributes:
        main_min_cols: columns the main (parent's) pane keeps at least.
        agent_min_cols: columns an agent pane gets at least.
        agent_min_rows: rows each agent pane keeps when the column is split.
    """

    main_min_cols: int = 100
    agent_min_cols: int = 60
    agent_min_rows: int = AGENT_MIN_ROWS


@dataclass(frozen=True)
class PaneBox:
    """A pane's size and position in its window, in cells.

    Attributes:
        pane_id: ``%3``.
        width, height: size.
        top, left: position of its top-left cell in the window.
        session_id: for agent panes, the sub-agent it shows (its tag); ``""`` for the main pane.
    """

    pane_id: str
    width: int
    height: int
    top: int = 0
    left: int = 0
    session_id: str = ""


@dataclass(frozen=True)
class WindowFacts:
    """The window of the parent's pane, as tmux reported it just now.

    Attributes:
        window_id: ``@2``.
        width, height: the window's size in cells.
        main: the parent's (the user's) pane.
        agents: the sub-agent panes deck-tray opened for this main pane (by their tag).
        zoomed: a pane of the window is zoomed (a split would unzoom it).
    """

    window_id: str
    width: int
    height: int
    main: PaneBox
    agents: tuple[PaneBox, ...] = ()
    zoomed: bool = False


@dataclass(frozen=True)
class Decision:
    """One action.

    Attributes:
        verb: what to do.
        session_id: the sub-agent it is for.
        target: the pane to split (:attr:`Verb.SPAWN`) or kill (:attr:`Verb.CLOSE`); ``""`` otherwise.
        split: how to split (:attr:`Verb.SPAWN` only).
        size: columns of the new pane for :attr:`Split.BESIDE_MAIN` (``split-window -l``), else 0.
        reason: why, in words (logs, and the deferred queue).
    """

    verb: Verb
    session_id: str
    target: str = ""
    split: Split | None = None
    size: int = 0
    reason: str = ""


def _spawn(sid: str, win: WindowFacts, layout: Layout) -> Decision:
    if win.zoomed:
        return Decision(Verb.DEFER, sid, reason=f"window {win.window_id} is zoomed")
    if not win.agents:
        main = win.main
        room = main.width - 1 - layout.main_min_cols
        if room < layout.agent_min_cols:
            need = layout.main_min_cols + 1 + layout.agent_min_cols
            return Decision(Verb.DEFER, sid, reason=f"pane {main.pane_id} is {main.width} columns wide; a sub-agent "
                                                    f"pane beside it needs {need}")
        if main.height < layout.agent_min_rows:
            return Decision(Verb.DEFER, sid, reason=f"pane {main.pane_id} is only {main.height} rows high")
        size = min(room, max(layout.agent_min_cols, (main.width - 1) // 2))
        return Decision(Verb.SPAWN, sid, main.pane_id, Split.BESIDE_MAIN, size,
                        f"split {main.pane_id} ({main.width}×{main.height}): {size} columns for the sub-agent")
    ordered = sorted(win.agents, key=lambda a: (a.left, a.top))
    last = ordered[-1]

    def fits(a: PaneBox) -> bool:
        return (a.height - 1) // 2 >= layout.agent_min_rows

    if fits(last):
        target = last
    else:
        roomy = [a for a in ordered if fits(a)]
        if not roomy:
            full = f"{len(win.agents)} panes; each keeps {layout.agent_min_rows} rows"
            return Decision(Verb.DEFER, sid, reason=f"the sub-agent column of {win.main.pane_id} is full ({full})")
        target = max(roomy, key=lambda a: (a.height, a.top))
    return Decision(Verb.SPAWN, sid, target.pane_id, Split.BELOW_AGENT, 0,
                    f"stack below {target.pane_id} ({target.width}×{target.height})")


def _after_spawn(win: WindowFacts, d: Decision, new_id: str) -> WindowFacts:
    """The window as it will be after ``d`` (tmux's arithmetic: the border takes one cell)."""
    if d.split is Split.BESIDE_MAIN:
        main = replace(win.main, width=win.main.width - 1 - d.size)
        box = PaneBox(new_id, d.size, win.main.height, win.main.top, win.main.left + main.width + 1, d.session_id)
        return replace(win, main=main, agents=(*win.agents, box))
    agents = list(win.agents)
    i = next(k for k, a in enumerate(agents) if a.pane_id == d.target)
    old = agents[i]
    new_h = (old.height - 1) // 2
    kept = old.height - 1 - new_h
    agents[i] = replace(old, height=kept)
    agents.append(PaneBox(new_id, old.width, new_h, old.top + kept + 1, old.left, d.session_id))
    return replace(win, agents=tuple(agents))


def _after_close(win: WindowFacts, pane_id: str) -> WindowFacts:
    """The window after ``pane_id`` is killed: tmux gives its cells to the neighbour above
    (else below) in the column, or back to the main pane when it was the last agent pane."""
    gone = next(a for a in win.agents if a.pane_id == pane_id)
    rest = [a for a in win.agents if a.pane_id != pane_id]
    if not rest:
        return replace(win, main=replace(win.main, width=win.main.width + 1 + gone.width), agents=())
    above = next((i for i, a in enumerate(rest) if a.left == gone.left and a.top + a.height + 1 == gone.top), None)
    if above is not None:
        rest[above] = replace(rest[above], height=rest[above].height + 1 + gone.height)
    else:
        below = next((i for i, a in enumerate(rest) if a.left == gone.left and a.top == gone.top + gone.height + 1),
                     None)
        if below is not None:
            b = rest[below]
            rest[below] = replace(b, top=gone.top, height=b.height + 1 + gone.height)
    return replace(win, agents=tuple(rest))


def decide(window: WindowFacts | None, layout: Layout, cache: Mapping[str, str], *,
           spawn: Sequence[str] = (), close: Sequence[str] = ()) -> list[Decision]:
    """What to do for sub-agents of one main pane.

    Args:
        window: the window of the parent's pane as tmux reports it now (None: the parent's
            pane could not be found, so nothing can be spawned; closes still work).
        layout: the capacity limits.
        cache: what the service believes: ``{child session id: pane id}``. **tmux wins**: a
            cached pane that ``window.agents`` does not list is stale and ignored; an agent
            pane tmux lists is used even when the cache lacks it.
        spawn: sub-agents that want a pane, in order.
        close: sub-agents whose pane should go.

    Returns:
        One decision per id of ``close`` then ``spawn``: closes first (they make room), then
        spawns, each taking the room the previous ones left (simulated with tmux's arithmetic),
        so a batch can be run in order.
    """
    out: list[Decision] = []
    win = window
    shown = {a.session_id: a.pane_id for a in win.agents} if win is not None else {}
    for sid in close:
        pane = shown.get(sid)
        if pane is None:
            stale = f" (the cached {cache[sid]} is gone)" if sid in cache else ""
            out.append(Decision(Verb.NONE, sid, reason=f"no pane shows {sid}{stale}"))
            continue
        out.append(Decision(Verb.CLOSE, sid, pane, reason=f"{sid} is done"))
        if win is not None:
            win = _after_close(win, pane)
    for n, sid in enumerate(spawn):
        if win is None:
            out.append(Decision(Verb.NONE, sid, reason="the parent session is not open in a tmux pane"))
            continue
        have = next((a.pane_id for a in win.agents if a.session_id == sid), None)
        if have is not None:
            out.append(Decision(Verb.NONE, sid, have, reason=f"{have} already shows {sid}"))
            continue
        d = _spawn(sid, win, layout)
        out.append(d)
        if d.verb is Verb.SPAWN:
            win = _after_spawn(win, d, f"(new {n})")
    return out


# -- the deferred queue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deferred(Generic[K]):
    """One deferred spawn.

    Attributes:
        key: what to spawn (the service uses ``(server url, child session id)``).
        since: clock time it was first deferred (its expiry counts from here).
        reason: why it was deferred last.
    """

    key: K
    since: float
    reason: str


class DeferredQueue(Generic[K]):
    """Spawns waiting for room, with the seed's limits.

    * at most :data:`DEFER_MAX_ENTRIES` entries; adding one more drops the oldest;
    * an entry expires :data:`DEFER_TTL_S` seconds after it was first deferred (deferring
      the same key again keeps its age);
    * after :data:`DEFER_MAX_READ_FAILURES` consecutive failures to read the window state
      (:meth:`read_failed`) the retry loop stops (:attr:`stopped`); a successful read resets
      the count, and :meth:`resume` (new work) starts it again.

    Args:
        clock: seconds (monotonic); injected so tests control time.
        max_entries, ttl_s, max_failures: the limits (defaults: the seed's).
    """

    def __init__(self, clock: Callable[[], float], *, max_entries: int = DEFER_MAX_ENTRIES,
                 ttl_s: float = DEFER_TTL_S, max_failures: int = DEFER_MAX_READ_FAILURES) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.max_failures = max_failures
        self._items: OrderedDict[K, Deferred[K]] = OrderedDict()
        self.failures = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> list[K]:
        """Keys, oldest first."""
        return list(self._items)

    @property
    def stopped(self) -> bool:
        """True once :data:`DEFER_MAX_READ_FAILURES` reads failed in a row."""
        return self.failures >= self.max_failures

    def add(self, key: K, reason: str) -> list[K]:
        """Defer ``key`` (or update the reason of an entry already waiting).

        Returns:
            Keys dropped to stay within the limit (oldest first).
        """
        old = self._items.get(key)
        self._items[key] = Deferred(key, old.since if old is not None else self.clock(), reason)
        dropped: list[K] = []
        while len(self._items) > self.max_entries:
            k, _ = self._items.popitem(last=False)
            dropped.append(k)
        return dropped

    def remove(self, key: K) -> bool:
        """Forget ``key``; True when it was waiting."""
        return self._items.pop(key, None) is not None

    def clear(self) -> None:
        """Forget every entry (the failure count stays)."""
        self._items.clear()

    def expire(self) -> list[K]:
        """Drop entries older than the time limit; return their keys."""
        now = self.clock()
        gone = [k for k, d in self._items.items() if now - d.since >= self.ttl_s]
        for k in gone:
            del self._items[k]
        return gone

    def due(self) -> list[Deferred[K]]:
        """Entries to retry now, oldest first (expired ones are dropped first)."""
        self.expire()
        return list(self._items.values())

    def read_failed(self) -> bool:
        """Count a failure to read the window state; True when the loop must stop now."""
        self.failures += 1
        return self.stopped

    def read_ok(self) -> None:
        """The window state was read: the failure count starts over."""
        self.failures = 0

    def resume(self) -> None:
        """New work arrived: the retry loop may run again."""
        self.failures = 0
