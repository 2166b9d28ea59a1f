"""Konsole specifics over D-Bus: what differs between Konsole versions, and that the fake Konsole
answers as the real one does.

CI runs the fake (``fake_konsole/konsole_service``) on a private session bus: installing Debian's
``konsole`` costs ~25 s, 201 packages and 254 MB here (and upgrades systemd). Where ``konsole`` is
installed, the real Konsole 22.12 is run next to the fake and their answers are compared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deck_tray.core import procs
from deck_tray.core.model import DeliveryReport, DeliveryState, PaneRef, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.terminals.konsole import Konsole, call, make_server, split_server
from tests.helpers import wait_until

from .terminal_rigs import Agent, KonsoleFakeRig, KonsoleRealRig, Recording, Rig, need


@pytest.fixture
def no_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    """deck-tray's own environment has no bus: the agent's must be used."""
    need("dbus-daemon")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)


@contextmanager
def fake(tmp: Path, version: str) -> Iterator[KonsoleFakeRig]:
    rig = KonsoleFakeRig(tmp, version)
    try:
        yield rig
    finally:
        rig.stop()


def dispatch(rig: Rig, agent: Agent, reply: Reply, status: SessionStatus) -> tuple[DeliveryReport,
                                                                                  list[tuple[str, str]]]:
    recording = Recording(rig.adapter)
    report = asyncio.run(Dispatcher(recording, accept_timeout=0.2).dispatch(agent.session(status), reply))
    return report, recording.sends


def test_konsole_24_05_shows_its_screen_so_menus_are_answered(tmp_path: Path, no_bus: None) -> None:
    with fake(tmp_path, "24.05.0") as rig:
        agent = rig.start_agent(mode="permission")
        wait_until(lambda: rig.screen_shows(agent, "Do you want to proceed?"), what="the menu")
        report, sends = dispatch(rig, agent, Reply(ReplyKind.PROMPT, "no"), SessionStatus.WAITING_PERMISSION)
        assert report.state is DeliveryState.REFUSED and sends == []
        report, sends = dispatch(rig, agent, Reply(ReplyKind.ALLOW), SessionStatus.WAITING_PERMISSION)
        assert sends == [("key", "1")]
        wait_until(lambda: agent.received() == b"1", what="the menu key")


def test_konsole_25_12_refusing_sendtext_is_explained_and_nothing_typed(tmp_path: Path, no_bus: None) -> None:
    with fake(tmp_path, "25.12.0") as rig:
        agent = rig.start_agent()
        report, sends = dispatch(rig, agent, Reply(ReplyKind.PROMPT, "hello"), SessionStatus.IDLE)
        assert report.state is DeliveryState.REFUSED and report.text == "hello"
        assert "EnableSecuritySensitiveDBusAPI=true" in report.detail
        assert sends == [("literal", "hello")] and agent.received() == b""


def test_konsole_22_12_types_prompts_without_its_screen_but_not_into_a_waiting_agent(
        tmp_path: Path, no_bus: None) -> None:
    with fake(tmp_path, "22.12.3") as rig:
        agent = rig.start_agent()
        report, sends = dispatch(rig, agent, Reply(ReplyKind.PROMPT, "go on"), SessionStatus.WAITING_QUESTION)
        assert report.state is DeliveryState.REFUSED and sends == []
        assert "cannot show its screen" in report.detail
        report, sends = dispatch(rig, agent, Reply(ReplyKind.PROMPT, "go on"), SessionStatus.IDLE)
        assert sends == [("literal", "go on"), ("key", "Enter")]
        wait_until(lambda: agent.received() == b"go on\r", what="the prompt")


def test_the_bus_comes_from_the_agent_and_the_server_field_round_trips(tmp_path: Path, no_bus: None) -> None:
    with fake(tmp_path, "22.12.3") as rig:
        agent = rig.start_agent()
        env = procs.environ(agent.pid)
        service, bus = split_server(agent.ref.server)
        assert (service, bus) == (env["KONSOLE_DBUS_SERVICE"], env["DBUS_SESSION_BUS_ADDRESS"])
        assert make_server(service, bus) == agent.ref.server and agent.ref.pane_id == env["KONSOLE_DBUS_SESSION"]
        # Without a bus address in the agent's environment (and none of ours) there is nothing to ask.
        no_address = {k: v for k, v in env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
        assert asyncio.run(Konsole().pane_for_agent(agent.pid, no_address)) is None
        # Another bus (a stale address): the session is not there.
        other = PaneRef("konsole", agent.ref.pane_id, make_server(service, f"unix:path={tmp_path / 'nope'}"))
        assert asyncio.run(Konsole().pane(other)) is None


def answers(rig: Rig, agent: Agent) -> dict[str, object]:
    """What a Konsole answers to the calls deck-tray makes, and to the ones it must survive."""
    out: dict[str, object] = {}
    for key, path, method, sig, args in [
        ("unknown object", "/Sessions/99", "processId", "", ()),
        ("unknown method", agent.ref.pane_id, "getAllDisplayedText", "b", (True,)),
    ]:
        try:
            call(agent.ref.server, path, [(method, sig, args)])
        except Exception as exc:
            out[key] = (getattr(exc, "name", ""), str(exc).replace(path, "PATH"))
    (root,), (fg,) = call(agent.ref.server, agent.ref.pane_id, [("processId", "", ()), ("foregroundProcessId", "", ())])
    facts = procs.tty_facts(agent.pid)
    out["processId is the tab's first process"] = root == procs.parent(agent.pid)
    out["foregroundProcessId is the foreground group"] = facts is not None and fg == facts.pgrp == facts.tpgid
    return out


def test_the_fake_answers_as_the_real_konsole_22_12(tmp_path: Path, no_bus: None) -> None:
    need("konsole")
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    real = KonsoleRealRig(tmp_path / "real")
    try:
        real_answers = answers(real, real.start_agent())
    finally:
        real.stop()
    with fake(tmp_path / "fake", "22.12.3") as rig:
        assert answers(rig, rig.start_agent()) == real_answers
    assert real_answers["processId is the tab's first process"] is True
    assert real_answers["foregroundProcessId is the foreground group"] is True
