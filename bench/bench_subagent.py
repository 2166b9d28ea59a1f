"""opencode sub-agent panes (issue #15): sub-agent created → its pane attached, with the real
``opencode serve`` 1.18.33, the fake model and a private tmux.

    python bench/bench_subagent.py [--rounds 3]

The parent session is attached in a tmux pane (``deck-tray opencode-attach``); each round's
prompt starts a real ``task`` sub-agent. Measured: from the child's ``time.created`` (the
server's clock) to deck-tray's ``pane_opened`` (the pane split, tagged and seen running for
0.5 s), and to the attached TUI showing the child's permission request. Naive: nothing opens
a pane (the user finds the child in opencode by hand), so no ratio; the goal is ≤ 2 s.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qasync  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402


async def _rounds(world: Any, rounds: int) -> tuple[list[float], list[float]]:
    from tests.e2e.harness import until

    attached: list[float] = []
    shown: list[float] = []
    await world.start()
    known: set[str] = set()
    try:
        for n in range(rounds):
            child = await world.new_child(n, known)
            known.add(child)
            _sid, pane, at = await until(lambda c=child: next((o for o in world.opened if o[0] == c), None), 60,
                                         "the sub-agent's pane")
            created = world.state().infos[child]["time"]["created"] / 1000.0
            attached.append(at - created)
            await until(lambda p=pane, i=n: f"echo sub{i}" in world.tmux.capture(p), 60, "the child's TUI")
            shown.append(time.time() - created)
            await world.finish(child)
            await until(lambda c=child: c in world.closed, 60, "the pane to close")
    finally:
        await world.stop()
    return attached, shown


def measure(rounds: int) -> dict[str, Any]:
    """``{"attached": [s], "shown": [s]}``, or ``{"missing": why}`` without opencode."""
    from tests.e2e.harness import TmuxServer
    from tests.e2e.opencode_harness import FakeOpenAIModel, OpencodeServe, find_opencode
    from tests.e2e.test_subagent_panes import World

    if find_opencode() is None:
        return {"missing": "opencode not found"}
    app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        with tempfile.TemporaryDirectory(prefix="dt-sub-", ignore_cleanup_errors=True) as tmp, \
                FakeOpenAIModel(Path(tmp) / "model") as model, \
                OpencodeServe(Path(tmp) / "oc", model.base_url) as server, TmuxServer() as tmux, loop:
            attached, shown = loop.run_until_complete(_rounds(World(server, tmux), rounds))
    finally:
        asyncio.set_event_loop(None)
    return {"attached": attached, "shown": shown}


def rows(res: dict[str, Any]) -> list[tuple[str, str, float | str | None, float | str | None, bool | None]]:
    """Table rows ``(metric, goal, deck-tray, naive, ok)`` in seconds (medians)."""
    if "missing" in res:
        return [("opencode sub-agent created → pane attached (s)", "≤ 2", res["missing"], None, None)]
    med = statistics.median(res["attached"])
    return [("opencode sub-agent created → pane attached, median (s)", "≤ 2", med, "no pane", med <= 2.0)]


def notes(res: dict[str, Any]) -> list[str]:
    if "missing" in res:
        return []
    return [f"sub-agent panes: {len(res['attached'])} real opencode task sub-agents; created → pane attached "
            f"{', '.join(f'{x:.2f}' for x in res['attached'])} s (0.5 s of it is the check that the pane stays up); "
            f"→ the attached TUI shows the child {', '.join(f'{x:.1f}' for x in res['shown'])} s (opencode's own "
            "start)."]


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    got = measure(ap.parse_args().rounds)
    for row in rows(got):
        print(row)
    for n in notes(got):
        print(n)
