"""The terminal adapters (kitty, GNU screen, WezTerm, Konsole) end to end through the dispatcher.

Every test runs against each terminal (``terminal_rigs.py``): real kitty under Xvfb, real GNU
screen, the fake WezTerm (its CLI read from WezTerm's source; WezTerm is not installable here), the
fake Konsole 22.12 on a private session bus (what CI runs) and real Konsole 22.12 on a private bus
where Debian's ``konsole`` is installed. A stand-in agent records every byte it receives, so what
reached the agent is compared byte for byte, and "nothing typed" means both logs stay empty.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from deck_tray.core import procs
from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, PaneRef, Session, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.scan import Scanner
from deck_tray.services.collect import collect
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.panes import Multiplexer, MuxSet, PaneInfo, PartialSendError, Tmux, pane_for_pid
from tests.helpers import wait_until

from .terminal_rigs import (
    Agent,
    KittyRig,
    KonsoleFakeRig,
    KonsoleRealRig,
    Recording,
    Rig,
    ScreenRig,
    WezTermRig,
    need,
    start_kitty,
    stop_process,
    xvfb_display,
)

RIGS = ["kitty", "screen", "wezterm", "konsole", "konsole-real"]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: Multi-line, non-ASCII, shell- and screen-special characters; long enough (≈2.6 KB) that
#: screen takes it in several ``stuff`` calls.
PROMPT = "\n".join(f"línea {i}: 日本語 ✓ «q» 'a' \"b\" $HOME `ls` ^A \\n 🚀" for i in range(40))


@pytest.fixture(scope="module")
def kitty_dir(xvfb: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real kitty for the module (remote control on); tests open windows in it."""
    need("kitty")
    d = tmp_path_factory.mktemp("kitty")
    proc = start_kitty(d, xvfb, ["sleep", "600"])
    try:
        yield d
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def xvfb() -> Iterator[str]:
    with xvfb_display() as display:
        yield display


def make_rig(name: str, tmp: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Rig:
    if name == "kitty":
        need("kitty", "Xvfb")
        return KittyRig(tmp, request.getfixturevalue("xvfb"), request.getfixturevalue("kitty_dir"))
    if name == "screen":
        need("screen")
        return ScreenRig(tmp)
    if name == "wezterm":
        rig = WezTermRig(tmp)
        # deck-tray's own wezterm calls use the fast python3 shim and log their argv.
        monkeypatch.setenv("PATH", rig.env["PATH"])
        monkeypatch.setenv("FAKE_WEZTERM_LOG", rig.env["FAKE_WEZTERM_LOG"])
        return rig
    need("dbus-daemon")
    # deck-tray must use the bus in the agent's environment, not its own.
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    if name == "konsole-real":
        need("konsole")
        return KonsoleRealRig(tmp)
    return KonsoleFakeRig(tmp)


@pytest.fixture(params=RIGS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    r = make_rig(request.param, tmp_path, request, monkeypatch)
    try:
        yield r
    finally:
        r.stop()


def send(rig: Rig, session: Session, reply: Reply) -> tuple[DeliveryReport, list[tuple[str, str]]]:
    """Dispatch ``reply``; the report and every typing call the adapter got."""
    recording = Recording(rig.adapter)
    report = asyncio.run(Dispatcher(recording, accept_timeout=0.2).dispatch(session, reply))
    return report, recording.sends


def assert_nothing_typed(agent: Agent, sent: tuple[DeliveryReport, list[tuple[str, str]]], text: str,
                         *phrases: str) -> None:
    report, calls = sent
    assert report.state is DeliveryState.REFUSED, report
    assert report.text == text, "the user's text is kept"
    for phrase in phrases:
        assert phrase in report.detail, report.detail
    assert calls == [], "refused before typing anything"
    assert agent.received() == b"" and agent.after_received() == b""


def pane_now(rig: Rig, agent: Agent) -> PaneInfo | None:
    return asyncio.run(rig.adapter.pane(agent.ref))


# -- finding the pane ----------------------------------------------------------------------------


def test_the_agent_window_is_found_from_its_environment(rig: Rig) -> None:
    agent = rig.start_agent()
    ref = agent.ref
    assert ref.multiplexer == rig.name == rig.adapter.name
    facts = procs.tty_facts(agent.pid)
    assert facts is not None and facts.foreground
    # The window's first process is the job-control shell, the agent's parent.
    assert agent.pane.pane_pid == procs.parent(agent.pid) == facts.session
    assert agent.pane.foreground_pgid == facts.pgrp
    assert pane_for_pid(agent.pid, [agent.pane]) == agent.pane
    assert ref.location.startswith(f"{rig.name} ") and ref.label
    # The same answer when the stored ref is checked again (the dispatcher's query step).
    again = pane_now(rig, agent)
    assert again is not None and again.pane_pid == agent.pane.pane_pid and again.foreground_pgid == facts.pgrp


def test_collect_places_the_session_in_its_window(rig: Rig, tmp_path: Path) -> None:
    agent = rig.start_agent()
    tid = "01a200e4-f2b5-78c1-9c58-e75423501563"
    lines = (FIXTURES / "codex-0.169.0-tui-no-daemon.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    rollout = tmp_path / "codex" / "sessions" / "2026" / "11" / "22" / f"rollout-2026-11-22T01-35-34-{tid}.jsonl"
    rollout.parent.mkdir(parents=True)
    rollout.write_text("".join(lines[:14]), encoding="utf-8")
    found = [AgentProcess(agent.pid, "codex", str(tmp_path), open_rollouts=(str(rollout),))]
    scanner = Scanner(tmp_path / "claude", tmp_path / "codex", process_lister=lambda: found)
    sessions = asyncio.run(collect(scanner, MuxSet([Tmux(), rig.adapter])))
    mine = [s for s in sessions if s.pid == agent.pid]
    assert len(mine) == 1 and mine[0].pane == agent.ref, sessions


# -- typing --------------------------------------------------------------------------------------


def test_a_multiline_unicode_prompt_arrives_byte_exact(rig: Rig) -> None:
    agent = rig.start_agent()
    report, calls = send(rig, agent.session(), Reply(ReplyKind.PROMPT, PROMPT))
    assert calls == [("paste", PROMPT), ("key", "Enter")]
    assert report.state in (DeliveryState.SUBMITTED, DeliveryState.ACCEPTED), report
    expected = b"\x1b[200~" + PROMPT.encode("utf-8") + b"\x1b[201~\r"
    wait_until(lambda: len(agent.received()) >= len(expected), what="the prompt to arrive")
    assert agent.received() == expected
    assert agent.after_received() == b""


def test_a_short_line_is_typed_then_enter_on_its_own(rig: Rig) -> None:
    agent = rig.start_agent()
    report, calls = send(rig, agent.session(), Reply(ReplyKind.PROMPT, "run the tests, $HOME ^C \\ ✓"))
    assert calls == [("literal", "run the tests, $HOME ^C \\ ✓"), ("key", "Enter")]
    assert report.state in (DeliveryState.SUBMITTED, DeliveryState.ACCEPTED), report
    wait_until(lambda: agent.received().endswith(b"\r"), what="Enter")
    assert agent.received() == "run the tests, $HOME ^C \\ ✓\r".encode()


# -- refusals ------------------------------------------------------------------------------------


def test_a_window_whose_agent_died_and_a_shell_took_over_is_refused(rig: Rig) -> None:
    agent = rig.start_agent(after="bash")
    old_pgrp = agent.pane.foreground_pgid
    os.kill(agent.pid, signal.SIGKILL)
    # What the adapter sees: the same window, now a shell in its foreground.
    now = wait_until(lambda: (p := pane_now(rig, agent)) is not None and p.command == "bash" and p,
                     what="the shell in the foreground")
    assert now.pane_pid == agent.pane.pane_pid and now.foreground_pgid not in (0, old_pgrp)
    sent = send(rig, agent.session(), Reply(ReplyKind.PROMPT, "rm -rf typed-into-a-shell"))
    assert_nothing_typed(agent, sent, "rm -rf typed-into-a-shell")


def test_a_stopped_agent_behind_another_program_is_refused(rig: Rig) -> None:
    agent = rig.start_agent(after="other-program")
    os.kill(agent.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: (p := pane_now(rig, agent)) is not None and p.foreground_pgid not in (0, -1,
                   agent.pane.foreground_pgid) and p.command == "other-program", what="the other program in front")
        sent = send(rig, agent.session(), Reply(ReplyKind.PROMPT, "meant for the agent"))
        assert_nothing_typed(agent, sent, "meant for the agent", "not the program in the foreground",
                             "other-program")
    finally:
        os.kill(agent.pid, signal.SIGCONT)


def test_a_closed_window_is_refused(rig: Rig) -> None:
    agent = rig.start_agent()
    rig.close(agent)
    # Gone, or (Konsole, after SIGHUP) kept open as a tab whose program has ended.
    wait_until(lambda: (p := pane_now(rig, agent)) is None or p.dead, what="the window to be gone")
    report, calls = send(rig, agent.session(), Reply(ReplyKind.PROMPT, "keep me"))
    assert report.state is DeliveryState.REFUSED and report.text == "keep me" and calls == []
    assert "no longer exists" in report.detail or "has exited" in report.detail, report.detail


# -- menus ---------------------------------------------------------------------------------------


def test_a_permission_menu_is_answered_with_its_key_or_refused_when_unreadable(rig: Rig) -> None:
    agent = rig.start_agent(mode="permission")
    waiting = agent.session(SessionStatus.WAITING_PERMISSION)
    if not rig.reads_screen:
        sent = send(rig, waiting, Reply(ReplyKind.ALLOW))
        assert_nothing_typed(agent, sent, "", "cannot show its screen", "answer it in the terminal")
        return
    wait_until(lambda: rig.screen_shows(agent, "Do you want to proceed?"), what="the menu on screen")
    refused = send(rig, waiting, Reply(ReplyKind.PROMPT, "not while a menu is open"))
    assert_nothing_typed(agent, refused, "not while a menu is open", "permission prompt")
    report, calls = send(rig, waiting, Reply(ReplyKind.ALLOW))
    assert report.state is not DeliveryState.REFUSED and calls == [("key", "1")], report
    wait_until(lambda: agent.received() == b"1", what="the menu key")


# -- without a terminal --------------------------------------------------------------------------


class _Broken(Multiplexer):
    """An adapter whose paste fails half-way (as screen's chunked stuff can)."""

    name = "kitty"
    available = True

    async def all_panes(self) -> list[PaneInfo]:
        return []

    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        return PaneInfo(ref.server, ref.pane_id, os.getppid(), "python3", False, "", "", "", False, "kitty")

    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        return "? for shortcuts"

    async def send_literal(self, ref: PaneRef, text: str) -> None:
        raise AssertionError("not used")

    async def paste(self, ref: PaneRef, text: str) -> None:
        raise PartialSendError("screen stopped taking the text after 2 parts")

    async def send_key(self, ref: PaneRef, key: str) -> None:
        raise AssertionError("Enter must not follow a failed paste")


def test_a_paste_that_failed_half_way_is_unknown_and_never_sent_again() -> None:
    session = Session(id="s1", agent=AgentKind.CLAUDE_CODE, pid=os.getpid(), status=SessionStatus.IDLE,
                      pane=PaneRef("kitty", "1", "unix:/nowhere", "window 1"))
    report = asyncio.run(Dispatcher(_Broken(), accept_timeout=0).dispatch(session, Reply(ReplyKind.PROMPT, "a\nb")))
    assert report.state is DeliveryState.UNKNOWN and report.text == "a\nb"
    assert "does not send it again" in report.detail


def test_the_default_adapters_have_stable_names() -> None:
    from deck_tray.cli import make_mux

    assert list(make_mux().muxes) == ["tmux", "zellij", "kitty", "screen", "wezterm", "konsole"]


def test_a_session_outside_any_pane_names_what_deck_tray_can_type_into() -> None:
    session = Session(id="s1", agent=AgentKind.CLAUDE_CODE, pid=os.getpid(), status=SessionStatus.IDLE)
    report = asyncio.run(Dispatcher(MuxSet([Tmux()])).dispatch(session, Reply(ReplyKind.PROMPT, "x")))
    assert report.state is DeliveryState.REFUSED
    for name in ("tmux", "zellij", "screen", "kitty", "WezTerm", "Konsole"):
        assert name in report.detail


@pytest.mark.parametrize("ref", [
    PaneRef("kitty", "3", "unix:@kitty-123", "window 3"),
    PaneRef("kitty", "3", "", "window 3"),
    PaneRef("screen", "0", "/tmp/dt-scr-1/4242.work", "work:0"),
    PaneRef("wezterm", "5", "/run/user/1000/wezterm/gui-sock-77", "pane 5"),
    PaneRef("konsole", "/Sessions/2", ":1.17 unix:path=/tmp/dbus-X,guid=ab12", "session 2"),
])
def test_terminal_refs_survive_the_app_to_cli_json(ref: PaneRef) -> None:
    from deck_tray.services import ipc

    session = Session(id="s1", agent=AgentKind.CODEX, pid=1, status=SessionStatus.IDLE, pane=ref)
    assert ipc.session_from_json(session.to_json(), ref.label).pane == ref
