"""Issue #20: a shortened soak of the real app (bench/soak.py), with the issue's goals."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .live_desktop import missing_tools

# alone: pings within 1 s and flat RSS/threads are measured with the machine to itself (scripts/test.sh).
pytestmark = [pytest.mark.e2e, pytest.mark.alone]

BENCH = Path(__file__).resolve().parents[2] / "bench"
SECONDS = float(os.environ.get("DECK_TRAY_SOAK_SECONDS", "30"))


def test_a_short_day_keeps_the_app_responsive_and_flat(capsys: pytest.CaptureFixture[str]) -> None:
    """Sessions appearing and ending, rotations, a tmux server killed, opencode restarted, hook
    bursts, notifications clicked, tabs closed: every ping answered within 1 s, RSS growth after
    the warm-up ≤ 20 MB, fds and threads flat, no error logged, the quit at the end clean."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: dbus, xvfb, trayer, dunst, tmux)")
    sys.path.insert(0, str(BENCH))
    try:
        import soak
    finally:
        sys.path.remove(str(BENCH))
    res = soak.day(SECONDS, sessions=int(SECONDS * 1.5), live_target=15, seed=7)
    with capsys.disabled():
        print("\n" + "\n".join(x for x in res.lines() if not x.startswith("tear-down")))
    assert res.sessions_started > 30 and res.sessions_ended > 10 and res.hooks_sent > 0
    assert res.tmux_kills >= 1 and res.rotations > 0
    assert not res.goals_met(), "; ".join(res.goals_met()) + "\n" + "\n".join(res.error_lines)
