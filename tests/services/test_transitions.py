"""The registry's one stream of status transitions, and the notifier announcing from it.

The registry alone compares a session's old and new status (``SessionRegistry.transition``);
the notifier and the opencode source subscribe instead of keeping their own status maps.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from deck_tray.core.model import SessionStatus, Transition
from deck_tray.services.notifier import Notifier
from deck_tray.services.notify_dbus import URGENCY_NORMAL
from deck_tray.services.registry import SessionRegistry
from tests.helpers import waiting_session, went_busy, went_idle

from .test_notifier_settings import GRACE, MemoryBackend, run_for

pytestmark = pytest.mark.usefixtures("qt_slate")

BUSY, WAIT, IDLE, ENDED = SessionStatus.BUSY, SessionStatus.WAITING_PERMISSION, SessionStatus.IDLE, SessionStatus.ENDED


def test_one_transition_per_status_change_with_old_new_and_why() -> None:
    reg = SessionRegistry(announce_hold=0)
    seen: list[Transition] = []
    order: list[str] = []
    reg.transition.connect(seen.append)
    reg.session_added.connect(lambda s: order.append("added"))
    reg.session_changed.connect(lambda s: order.append("changed"))
    reg.transition.connect(lambda t: order.append("transition"))
    reg.attention_needed.connect(lambda s: order.append("attention"))
    s = waiting_session()

    reg.apply([went_busy(s)])
    reg.apply([went_busy(s)])  # nothing changed
    reg.apply([replace(went_busy(s), title="Renamed by the agent")])  # a change, but not of status
    reg.set_label(s.id, "mine")  # neither
    order.clear()
    reg.apply([s])  # busy → waiting
    assert order == ["changed", "transition", "attention"]
    reg.apply([replace(s, reason="permission prompt for Bash `rm -f x` — live status file, 3 s ago")])
    reg.apply([went_idle(s)])
    reg.apply([replace(went_idle(s), status=ENDED, reason="ended — process gone")])

    assert [(t.session.id, t.old, t.new) for t in seen] == [
        (s.id, None, BUSY), (s.id, BUSY, WAIT), (s.id, WAIT, IDLE), (s.id, IDLE, ENDED)], "exactly one per change"
    assert all(t.new is t.session.status and t.reason == t.session.reason for t in seen)
    assert seen[1].reason == s.reason and seen[1].session.pending == s.pending
    assert seen[1].session.title == "mine", "the session as the registry holds it"

    reg.remove([s.id])
    reg.apply([went_busy(s)])
    assert (seen[-1].old, seen[-1].new) == (None, BUSY), "a session seen again after removal is new"
    assert len(seen) == 5


def test_the_notifier_announces_a_finished_turn_from_the_transition(qloop: asyncio.AbstractEventLoop) -> None:
    reg = SessionRegistry()
    backend = MemoryBackend()
    n = Notifier(reg, [backend], grace=GRACE)
    n.announce = n.announce | {IDLE}
    qloop.run_until_complete(n.start())
    try:
        s = waiting_session()
        reg.apply([went_idle(s)])  # found idle: a transition from None, not a turn seen finishing
        run_for(qloop, GRACE * 4)
        assert backend.log == []

        # The notifier keeps no statuses of its own: the transition alone says a turn finished.
        cur = reg.get(s.id)
        assert cur is not None
        reg.transition.emit(Transition(cur, BUSY, IDLE, cur.reason))
        run_for(qloop, GRACE * 4)
        assert [(x.title, x.urgency) for x in backend.log] == [
            ("Claude Code finished — Fix the login bug", URGENCY_NORMAL)]

        reg.apply([went_busy(s)])  # idle → busy: the transition closes it
        run_for(qloop, GRACE * 2)
        assert backend.shown == {}

        reg.apply([s])  # busy → waiting: announced once (attention_needed)
        run_for(qloop, GRACE * 4)
        assert [x.body for x in backend.log[1:]] == ["Permission for Bash: rm -f x"]
        reg.apply([went_idle(s)])  # waiting → idle (answered elsewhere): closed, no "finished" for it
        run_for(qloop, GRACE * 4)
        assert backend.shown == {} and len(backend.log) == 2
    finally:
        qloop.run_until_complete(n.stop())
