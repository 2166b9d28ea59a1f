"""What the notification settings change in the Notifier: quiet hours hold (not drop),
the kinds announced, finished turns, reminders. Uses an in-memory backend (the D-Bus path
is covered by test_notifier.py against dunst and a strict fake daemon)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from deck_tray.core.model import SessionStatus
from deck_tray.services import notifier as notifier_mod
from deck_tray.services.notifier import Notifier
from deck_tray.services.notify_dbus import URGENCY_CRITICAL, URGENCY_NORMAL, NotificationBackend
from deck_tray.services.registry import SessionRegistry
from tests.helpers import asking_session, waiting_session, went_busy, went_idle

GRACE = 0.05


@dataclass
class Shown:
    nid: int
    title: str
    body: str
    actions: list[tuple[str, str]]
    urgency: int


@dataclass
class MemoryBackend(NotificationBackend):
    """Keeps what would be on screen."""

    shown: dict[int, Shown] = field(default_factory=dict)
    log: list[Shown] = field(default_factory=list)
    _next: int = 0

    def __post_init__(self) -> None:
        NotificationBackend.__init__(self)

    name = "memory"

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.shown.clear()

    async def notify(self, key: str, title: str, body: str, actions: list[tuple[str, str]],
                     replaces_id: int = 0, *, urgency: int = URGENCY_CRITICAL) -> int:
        if replaces_id in self.shown:
            nid = replaces_id
        else:
            self._next += 1
            nid = self._next
        self.shown[nid] = s = Shown(nid, title, body, actions, urgency)
        self.log.append(s)
        return nid

    async def close(self, notification_id: int) -> None:
        self.shown.pop(notification_id, None)


def run_for(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


@dataclass
class Rig:
    registry: SessionRegistry
    notifier: Notifier
    backend: MemoryBackend
    quiet: list[bool]


@pytest.fixture
def rig(qloop: asyncio.AbstractEventLoop) -> Iterator[Callable[..., Rig]]:
    made: list[Notifier] = []

    def make(**kw: Any) -> Rig:
        reg = SessionRegistry()
        backend = MemoryBackend()
        quiet = [False]
        n = Notifier(reg, [backend], grace=GRACE, quiet=lambda: quiet[0], **kw)
        qloop.run_until_complete(n.start())
        made.append(n)
        return Rig(reg, n, backend, quiet)

    yield make
    for n in made:
        qloop.run_until_complete(n.stop())


def test_quiet_hours_hold_and_show_when_they_end(rig: Callable[..., Rig], qloop) -> None:
    r = rig()
    r.quiet[0] = True
    r.registry.apply([waiting_session(), asking_session()])
    run_for(qloop, GRACE * 4)
    assert r.backend.log == [], "nothing pops up during quiet hours"
    assert len(r.registry.waiting()) == 2, "the tray still counts them"
    r.registry.apply([asking_session()])  # the permission was answered in the terminal meanwhile
    r.quiet[0] = False
    r.notifier.release_held()
    run_for(qloop, GRACE * 2)
    assert [s.title for s in r.backend.log] == ["Codex needs you — Add pagination"], \
        "only what still waits is shown"


def test_held_requests_are_looked_at_again_by_themselves(rig: Callable[..., Rig], qloop,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifier_mod, "QUIET_RECHECK_S", 0.1)
    r = rig()
    r.quiet[0] = True
    r.registry.apply([waiting_session()])
    run_for(qloop, 0.3)
    assert r.backend.log == []
    r.quiet[0] = False  # the clock passed the end of quiet hours
    run_for(qloop, 0.3)
    assert len(r.backend.log) == 1 and r.backend.log[0].urgency == URGENCY_CRITICAL


def test_announced_kinds(rig: Callable[..., Rig], qloop) -> None:
    r = rig()
    r.notifier.announce = frozenset({SessionStatus.WAITING_PERMISSION})
    r.registry.apply([waiting_session(), asking_session()])
    run_for(qloop, GRACE * 4)
    assert [s.body for s in r.backend.log] == ["Permission for Bash: rm -f x"]
    r.notifier.announce = frozenset()  # notifications off
    r.registry.apply([waiting_session(request="toolu_2"), asking_session()])
    run_for(qloop, GRACE * 4)
    assert len(r.backend.log) == 1


def test_finished_turn_is_announced_only_when_asked_and_seen_finishing(rig: Callable[..., Rig], qloop) -> None:
    r = rig()
    s = waiting_session()
    r.registry.apply([went_busy(s)])
    r.registry.apply([went_idle(s)])
    run_for(qloop, GRACE * 4)
    assert r.backend.log == [], "off by default"
    r.notifier.announce = r.notifier.announce | {SessionStatus.IDLE}
    other = went_idle(asking_session())
    r.registry.apply([went_busy(s), other])  # found idle: not a turn seen finishing
    run_for(qloop, GRACE * 4)
    assert r.backend.log == []
    r.registry.apply([went_idle(s), other])
    run_for(qloop, GRACE * 4)
    assert len(r.backend.log) == 1
    shown = r.backend.log[0]
    assert shown.title == "Claude Code finished — Fix the login bug"
    assert shown.body == "Turn finished: All tests pass now."
    assert shown.actions == [("default", "Open")] and shown.urgency == URGENCY_NORMAL
    r.registry.apply([went_busy(s), other])  # the user typed the next prompt
    run_for(qloop, GRACE * 2)
    assert r.backend.shown == {}, "closed when the session works again"


def test_reminders_follow_renotify_after(rig: Callable[..., Rig], qloop) -> None:
    r = rig()
    r.notifier.renotify_after = 0.1
    r.notifier.announce = r.notifier.announce | {SessionStatus.IDLE}
    s = waiting_session()
    r.registry.apply([s])
    run_for(qloop, 0.45)
    assert len(r.backend.log) >= 3 and len(r.backend.shown) == 1, "repeated in place"
    r.registry.apply([went_busy(s)])
    r.registry.apply([went_idle(s)])
    run_for(qloop, 0.1)
    n = len(r.backend.log)
    run_for(qloop, 0.35)
    assert len(r.backend.log) == n, "a finished turn is not repeated"
    r.notifier.renotify_after = None
    r.registry.apply([waiting_session(request="toolu_2")])
    run_for(qloop, 0.45)
    assert len(r.backend.log) == n + 1
