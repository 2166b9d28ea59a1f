"""SessionRegistry: the one source of truth for sessions, with Qt signals on transitions."""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Iterable
from dataclasses import replace

from PySide6.QtCore import QObject, QTimer, Signal

from deck_tray.core.model import Session, SessionStatus, Transition

log = logging.getLogger(__name__)

#: Seconds an announcement of a waiting session whose request is not known yet is held for
#: the request (then made without it). Claude Code 2.1.332 writes ``status: "waiting"`` to
#: ``sessions/<pid>.json`` ~64 ms before the tool call reaches the transcript on a session's
#: first turn (measured; fixture ``claude-code-2.1.332-sessions-pid-json-changes.jsonl``), so
#: an announcement made at once named no request. 2.1.197 and hooks carry the request at once:
#: those announcements are never delayed.
ANNOUNCE_HOLD_S = 1.0


#: Where a status sorts in :meth:`SessionRegistry.sessions`: waiting, then running, then ended.
_RANK = {st: 0 if st.is_waiting else 2 if st is SessionStatus.ENDED else 1 for st in SessionStatus}


def _visible_key(s: Session) -> tuple[object, ...]:
    """What a user would notice changing (the reason's age text excluded)."""
    last = s.messages[-1] if s.messages else None
    return (s.status, s.pending, s.title, s.cwd, s.pid, s.pane, s.reason.split(" — ")[0],
            len(s.messages), last)


def is_new_request(old: Session | None, new: Session) -> bool:
    """True when ``new`` starts waiting on a request ``old`` was not yet waiting on.

    A waiting episode is announced once: on the move into a waiting state, or when one
    identified request is followed by another without the session leaving the state.
    Details that arrive later for the same request (the transcript's tool call id after
    the screen's menu) do not count as a new request.
    """
    if not new.status.is_waiting:
        return False
    if old is None or not old.status.is_waiting:
        return True
    a = old.pending.request_id if old.pending else ""
    b = new.pending.request_id if new.pending else ""
    return bool(a and b and a != b)


class SessionRegistry(QObject):
    """Holds the current :class:`Session` of every known session.

    Signals:
        session_added(Session): a session appeared.
        session_changed(Session): something a user would notice changed (status, pending
            request, title, pane, conversation).
        session_removed(str): a session id disappeared (its transcript aged out or vanished).
        transition(Transition): a session's status changed, or a session appeared
            (``old`` None): exactly one per change, emitted after ``session_added`` /
            ``session_changed`` and before ``attention_needed`` for the same observation.
            The one place old → new is computed; the notifier and the opencode source
            subscribe to it rather than remembering statuses themselves.
        attention_needed(Session): a session moved into a waiting state for a request
            not announced before (once per request). When the request itself is not known
            yet, the announcement waits for it up to :data:`ANNOUNCE_HOLD_S` (and is made
            without it after that, if the session still waits).
        waiting_count_changed(int): the number of waiting sessions changed.
    """

    session_added = Signal(object)
    session_changed = Signal(object)
    session_removed = Signal(str)
    transition = Signal(object)
    attention_needed = Signal(object)
    waiting_count_changed = Signal(int)

    def __init__(self, parent: QObject | None = None, *, announce_hold: float = ANNOUNCE_HOLD_S) -> None:
        super().__init__(parent)
        self.announce_hold = announce_hold
        #: Announcements held for their request: session id → monotonic deadline.
        self._held: dict[str, float] = {}
        self._hold_timer = QTimer(self)
        self._hold_timer.setSingleShot(True)
        self._hold_timer.timeout.connect(self._release_held)
        self._sessions: dict[str, Session] = {}
        self._source: dict[str, str] = {}
        self._waiting = 0
        #: Every session's place in :meth:`sessions`' order, kept sorted as sessions change (so
        #: the order costs no sort per change): (rank, -updated_at, first-seen number, id).
        self._order: list[tuple[int, float, int, str]] = []
        self._place: dict[str, tuple[int, float, int, str]] = {}
        self._seen = 0
        self._counts: dict[SessionStatus, int] = dict.fromkeys(SessionStatus, 0)
        #: The user's own names for sessions, by id (shown instead of the agent's title).
        self.labels: dict[str, str] = {}
        #: Ended sessions the user dismissed from the list (they stay in the history); a
        #: dismissed session that runs again (resumed) is listed again.
        self.dismissed: set[str] = set()

    def sessions(self) -> list[Session]:
        """Every session, waiting first, then by newest activity (ended ones last; ties in the
        order they were first seen)."""
        return [self._sessions[k[3]] for k in self._order]

    def head(self, n: int) -> list[Session]:
        """The first ``n`` of :meth:`sessions` (without building the whole list)."""
        return [self._sessions[k[3]] for k in self._order[:n]]

    def count(self, *statuses: SessionStatus) -> int:
        """How many sessions have one of ``statuses`` (all sessions when none is given)."""
        if not statuses:
            return len(self._sessions)
        return sum(self._counts[st] for st in statuses)

    def _store(self, s: Session) -> Session | None:
        """Keep ``s`` (in its place in the order); returns the session it replaced."""
        old = self._sessions.get(s.id)
        if old is None:
            self._seen += 1
            seen = self._seen
        else:
            prev = self._place[s.id]
            seen = prev[2]
            self._counts[old.status] -= 1
        place = (_RANK[s.status], -s.updated_at, seen, s.id)
        if old is None or place != prev:
            if old is not None:
                del self._order[bisect.bisect_left(self._order, prev)]
            bisect.insort(self._order, place)
            self._place[s.id] = place
        self._counts[s.status] += 1
        self._sessions[s.id] = s
        return old

    def get(self, session_id: str) -> Session | None:
        """The session with this id, or None."""
        return self._sessions.get(session_id)

    def waiting(self) -> list[Session]:
        """Sessions blocked on the user, oldest wait first."""
        return sorted((s for s in self._sessions.values() if s.status.is_waiting), key=lambda s: s.updated_at)

    def apply(self, snapshot: Iterable[Session], *, complete: bool = True, source: str = "files") -> None:
        """Merge observed sessions; emits signals for what changed.

        Costs the number of sessions in ``snapshot`` (plus, when ``complete``, a pass over the
        known ones to find those gone).

        Args:
            snapshot: the sessions as just observed.
            complete: True when ``snapshot`` holds every session of ``source`` (absent
                ones of that source are removed).
            source: who observed them (``"files"`` for transcripts and panes,
                ``"opencode <url>"`` per opencode server); removal never crosses sources.
        """
        seen: set[str] = set()
        for s in snapshot:
            if s.id in self.dismissed:
                if s.status is SessionStatus.ENDED:
                    continue
                self.dismissed.discard(s.id)
            label = self.labels.get(s.id)
            if label:
                s = replace(s, title=label)
            seen.add(s.id)
            old = self._store(s)
            self._source[s.id] = source
            if old is None:
                self.session_added.emit(s)
            elif _visible_key(old) != _visible_key(s):
                self.session_changed.emit(s)
            if old is None or old.status is not s.status:
                self.transition.emit(Transition(s, old.status if old else None, s.status, s.reason))
            if is_new_request(old, s):
                # A session found already waiting at start-up is announced too: it waits.
                self._announce(s)
            elif s.id in self._held:
                if not s.status.is_waiting:
                    del self._held[s.id]  # it stopped waiting before its request was known
                elif s.pending is not None:
                    del self._held[s.id]
                    self.attention_needed.emit(s)
        if complete:
            gone = [k for k in self._sessions if k not in seen and self._source.get(k) == source]
            self._drop(gone)
        self._count_waiting()

    def _announce(self, s: Session) -> None:
        """Emit ``attention_needed`` now when the request is known, else hold it for the request."""
        if s.pending is not None or self.announce_hold <= 0:
            self._held.pop(s.id, None)
            self.attention_needed.emit(s)
            return
        if s.id not in self._held:
            self._held[s.id] = time.monotonic() + self.announce_hold
            self._schedule_release()

    def _schedule_release(self) -> None:
        if not self._held:
            self._hold_timer.stop()
            return
        wait = max(0.0, min(self._held.values()) - time.monotonic())
        self._hold_timer.start(int(wait * 1000) + 1)

    def _release_held(self) -> None:
        """Announce the held sessions whose wait for their request ran out (still waiting)."""
        now = time.monotonic()
        for sid, deadline in list(self._held.items()):
            if deadline > now:
                continue
            del self._held[sid]
            s = self._sessions.get(sid)
            if s is not None and s.status.is_waiting:
                log.debug("announcing %s without its request (none seen in %.1f s)", sid[:8], self.announce_hold)
                self.attention_needed.emit(s)
        self._schedule_release()

    def set_label(self, session_id: str, label: str) -> None:
        """Name a session (``""``: back to the agent's title, from the next observation on)."""
        label = " ".join(label.split())[:120]
        if label:
            self.labels[session_id] = label
        else:
            self.labels.pop(session_id, None)
        s = self._sessions.get(session_id)
        if s is not None and label and s.title != label:
            s = replace(s, title=label)
            self._store(s)
            self.session_changed.emit(s)

    def dismiss(self, session_id: str) -> bool:
        """Drop an ended session from the list until it runs again; False when it is not ended."""
        s = self._sessions.get(session_id)
        if s is None or s.status is not SessionStatus.ENDED:
            return False
        self.dismissed.add(session_id)
        self._drop([session_id])
        self._count_waiting()
        return True

    def remove(self, session_ids: Iterable[str]) -> None:
        """Forget these sessions (e.g. deleted on their opencode server)."""
        self._drop([k for k in session_ids if k in self._sessions])
        self._count_waiting()

    def _drop(self, ids: list[str]) -> None:
        for sid in ids:
            self._held.pop(sid, None)
            s = self._sessions.pop(sid)
            self._counts[s.status] -= 1
            del self._order[bisect.bisect_left(self._order, self._place.pop(sid))]
            self._source.pop(sid, None)
            self.session_removed.emit(sid)

    def _count_waiting(self) -> None:
        n = sum(k for st, k in self._counts.items() if st.is_waiting)
        if n != self._waiting:
            self._waiting = n
            self.waiting_count_changed.emit(n)
