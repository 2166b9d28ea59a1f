"""kitty specifics: with remote control off the agent is still placed in its kitty window, and the
refusal says how to turn remote control on; kitty's own error words become plain reasons.

The end-to-end typing tests for kitty are in ``test_terminal_adapters.py``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deck_tray.core import procs
from deck_tray.core.model import DeliveryState
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.panes import MuxSet, Tmux
from deck_tray.services.terminals import Screen
from deck_tray.services.terminals.kitty import REMOTE_CONTROL_OFF, Kitty, _error, windows
from tests.helpers import wait_until

from .terminal_rigs import KittyRig, Recording, need, start_kitty, stop_process, xvfb_display


@pytest.fixture
def display() -> Iterator[str]:
    need("kitty")
    with xvfb_display() as d:
        yield d


def test_remote_control_off_places_the_agent_and_says_how_to_turn_it_on(display: str, tmp_path: Path) -> None:
    rig = KittyRig(tmp_path, display, None)
    try:
        agent = rig.start_agent()
        env = procs.environ(agent.pid)
        assert "KITTY_WINDOW_ID" in env and "KITTY_LISTEN_ON" not in env
        ref = agent.ref
        assert (ref.multiplexer, ref.server, ref.pane_id) == ("kitty", "", env["KITTY_WINDOW_ID"])
        assert ref.location == f"kitty window {ref.pane_id}"
        assert agent.pane.pane_pid == procs.parent(agent.pid)
        # Found through the default set of adapters too, and nothing else claims it.
        found = asyncio.run(MuxSet([Tmux(), Kitty()]).pane_for_agent(agent.pid, env))
        assert found is not None and found.ref() == ref
        recording = Recording(rig.adapter)
        report = asyncio.run(Dispatcher(recording, accept_timeout=0).dispatch(agent.session(),
                                                                               Reply(ReplyKind.PROMPT, "hello")))
        assert report.state is DeliveryState.REFUSED and report.text == "hello"
        assert "allow_remote_control socket-only" in report.detail and "listen_on" in report.detail
        assert recording.sends == [] and agent.received() == b""
    finally:
        rig.stop()


def test_kitty_error_words_become_reasons() -> None:
    assert _error("Error: Remote control is disabled\n", 1) == REMOTE_CONTROL_OFF
    assert _error("Remote control is disabled. Add allow_remote_control to your kitty.conf\n", 1) == REMOTE_CONTROL_OFF
    assert "password" in _error("Password usage requested but KITTY_PUBLIC_KEY environment variable is not "
                                "available\n", 1)
    tb = "Traceback (most recent call last):\n  File x\nConnectionRefusedError: [Errno 111] Connection refused\n"
    assert _error(tb, 1) == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert _error("", 3) == "kitty @ failed (3)"


def test_a_gone_kitty_is_a_gone_pane(tmp_path: Path) -> None:
    need("kitty")
    from deck_tray.core.model import PaneRef

    ref = PaneRef("kitty", "1", f"unix:{tmp_path / 'nothing.sock'}", "window 1")
    assert asyncio.run(Kitty().pane(ref)) is None


def test_ls_trees_are_flattened_and_odd_entries_skipped() -> None:
    tree = [{"id": 1, "tabs": [{"id": 7, "windows": [{"id": 3, "pid": 10}, {"title": "no id"}]}, "junk"]}, 5]
    assert windows(tree) == [{"id": 3, "pid": 10, "tab_id": 7}]
    with pytest.raises(Exception, match="did not answer with a list"):
        windows({"id": 1})


class _ScreenInKitty(KittyRig):
    """Each window runs GNU screen (private SCREENDIR) with the program inside it."""

    def __init__(self, tmp: Path, display: str, kitty_dir: Path) -> None:
        super().__init__(tmp, display, kitty_dir)
        self.screendir = Path(tempfile.mkdtemp(prefix="dt-nest-"))
        self.screendir.chmod(0o700)

    def open(self, argv: list[str]) -> None:
        super().open(["env", f"SCREENDIR={self.screendir}", "LANG=C.UTF-8", "screen", "-S",
                      f"nest{os.getpid()}", *argv])

    def stop(self) -> None:
        subprocess.run(["screen", "-S", f"nest{os.getpid()}", "-X", "quit"], capture_output=True, timeout=20,
                       env=dict(os.environ, SCREENDIR=str(self.screendir)))
        super().stop()
        shutil.rmtree(self.screendir, ignore_errors=True)


def test_screen_inside_kitty_resolves_to_screen_the_innermost(display: str, tmp_path: Path) -> None:
    need("screen")
    kitty_dir = tmp_path / "kitty"
    kitty_dir.mkdir()
    kitty = start_kitty(kitty_dir, display, ["sleep", "600"])
    rig = _ScreenInKitty(tmp_path, display, kitty_dir)
    try:
        rig._adapter = MuxSet([Tmux(), Kitty(), Screen()])  # what the app uses
        agent = rig.start_agent()
        env = procs.environ(agent.pid)
        assert "STY" in env and "KITTY_WINDOW_ID" in env, "both terminals are named in the environment"
        assert agent.pane.multiplexer == "screen"
        # kitty alone finds its window, whose foreground is the screen client, not the agent.
        outer = asyncio.run(Kitty().pane_for_agent(agent.pid, env))
        assert outer is not None and outer.command == "screen"
        assert outer.foreground_pgid != procs.tty_facts(agent.pid).pgrp  # type: ignore[union-attr]
        report = asyncio.run(Dispatcher(rig.adapter, accept_timeout=0).dispatch(
            agent.session(), Reply(ReplyKind.PROMPT, "inner ✓")))
        assert report.state is not DeliveryState.REFUSED, report
        wait_until(lambda: agent.received() == "inner ✓\r".encode(), what="the text in screen")
    finally:
        rig.stop()
        stop_process(kitty)
