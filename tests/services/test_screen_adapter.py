"""GNU screen specifics: ``stuff`` escaping and chunking, hardcopy decoding, a long paste in many
``stuff`` calls, and a window that stops taking input (a partial send, never resent).

The end-to-end typing and refusal tests for screen are in ``test_terminal_adapters.py``.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deck_tray.core.model import PaneRef
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.panes import PartialSendError
from deck_tray.services.terminals import screen as screen_mod
from deck_tray.services.terminals.screen import (
    STUFF_MAX_BYTES,
    Screen,
    decode_hardcopy,
    escape_stuff,
    split_server,
    stuff_chunks,
)
from tests.helpers import wait_until

from .terminal_rigs import Recording, ScreenRig, need


def unstuff(arg: str) -> str:
    """What screen makes of one ``stuff`` argument (for the characters deck-tray escapes)."""
    return re.sub(r"\\([\\$^])", r"\1", arg)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3000))
def test_chunks_are_small_whole_and_unescape_to_the_text(text: str) -> None:
    chunks = stuff_chunks(text)
    assert all(len(c.encode("utf-8")) <= STUFF_MAX_BYTES for c in chunks)
    assert "".join(unstuff(c) for c in chunks) == text
    assert "".join(chunks) == escape_stuff(text)


def test_the_characters_screen_parses_are_escaped() -> None:
    assert escape_stuff("a$HOME ^M \\n") == "a\\$HOME \\^M \\\\n"
    assert stuff_chunks("") == []
    # Never cut between a backslash and what it escapes.
    chunks = stuff_chunks("x" * 699 + "$", limit=700)
    assert chunks == ["x" * 699, "\\$"]


def test_hardcopies_of_screen_4_and_5_decode() -> None:
    # screen 4.9 writes the low byte of each cell: "─" is NUL, "❯" is "o", "·" stays Latin-1.
    old = b"\x00\x00\x00\n o\xa01. Yes\n  ? for shortcuts \xb7 \x90 for agents\n"
    assert decode_hardcopy(old) == "   \n o\xa01. Yes\n  ? for shortcuts · \x90 for agents\n"
    assert decode_hardcopy("── ❯ 1. Yes".encode()) == "── ❯ 1. Yes"


def test_a_codex_approval_read_through_screen_4_gets_no_guessed_key() -> None:
    from deck_tray.core.model import AgentKind
    from deck_tray.core.reply import PlanError, plan
    from deck_tray.core.screens import read_codex

    real = (Path(__file__).resolve().parents[1] / "fixtures" / "screens" / "codex-0.169.0-approval.txt").read_text()
    # screen 4.x writes the low byte of "›" (U+203A): ":".
    lossy = decode_hardcopy(real.replace("›", ":").encode("latin-1", "replace"))
    screen = read_codex(lossy)
    assert "1" not in [o.number for o in screen.options]
    with pytest.raises(PlanError, match="cannot be read"):
        plan(AgentKind.CODEX, Reply(ReplyKind.ALLOW), screen, None)
    assert [s.value for s in plan(AgentKind.CODEX, Reply(ReplyKind.ALLOW), read_codex(real), None)] == ["y"]


def test_screendir_travels_in_the_server_field() -> None:
    assert split_server("/tmp/dt-scr-x/123.work") == ("123.work", "/tmp/dt-scr-x")
    assert split_server("123.work") == ("123.work", "")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[ScreenRig]:
    need("screen")
    r = ScreenRig(tmp_path)
    try:
        yield r
    finally:
        r.stop()


def test_a_long_paste_arrives_byte_exact_through_many_stuff_calls(rig: ScreenRig) -> None:
    from deck_tray.services.dispatcher import Dispatcher

    agent = rig.start_agent()
    text = "\n".join(f"{i:04d} $PATH ^X \\x ünï ✓ {'·' * 40}" for i in range(300))  # ≈ 29 KB
    recording = Recording(rig.adapter)
    asyncio.run(Dispatcher(recording, accept_timeout=0).dispatch(agent.session(), Reply(ReplyKind.PROMPT, text)))
    expected = b"\x1b[200~" + text.encode() + b"\x1b[201~\r"
    assert len(stuff_chunks("\x1b[200~" + text + "\x1b[201~")) > 40
    wait_until(lambda: len(agent.received()) >= len(expected), what="the whole paste")
    assert agent.received() == expected


def test_a_window_that_stops_reading_gets_no_more_and_screen_stays_responsive(rig: ScreenRig) -> None:
    agent = rig.start_agent()  # windows 0 (sleep) and 1 (the agent)
    # Window 2: a raw-mode program that never reads. Stuffing ~21 KB into such a window makes
    # screen 4.9 spin and stop answering for good; deck-tray must stop long before that.
    rig.open([sys.executable, "-c", "import sys, time, tty; tty.setraw(0); time.sleep(600)"])
    stuck = PaneRef("screen", "2", agent.ref.server, "")
    wait_until(lambda: asyncio.run(Screen().pane(stuck)), what="window 2")
    started = time.monotonic()
    with pytest.raises(PartialSendError, match=r"stopped reading after \d+ parts") as err:
        asyncio.run(Screen().paste(stuck, "y" * 100_000))
    # The tty's own buffer takes a few parts before the program's silence shows (1–2 here, 3 once
    # on a loaded machine); far below the ~21 KB (30 parts) that hangs screen.
    parts = int(re.search(r"after (\d+) parts", str(err.value)).group(1))  # type: ignore[union-attr]
    assert parts <= 8
    assert time.monotonic() - started < screen_mod.DRAIN_TIMEOUT_S + 3
    # The session still answers, and the agent's window still takes text.
    assert asyncio.run(Screen().pane(agent.ref)) is not None
    asyncio.run(Screen().send_literal(agent.ref, "still here"))
    wait_until(lambda: agent.received() == b"still here", what="text in the agent's window")
