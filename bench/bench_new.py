"""Starting a session (issue #15): ``deck-tray new`` with the real Claude Code 2.1.197 in tmux.

    python bench/bench_new.py [--rounds 5]

Measured, per round, in a private tmux (``TMUX_TMPDIR``, no server running at first) against the
loopback fake model, through :class:`deck_tray.services.launcher.Launcher` as ``deck-tray new``
uses it:

* **new session → ready**: from the call to the agent showing its input prompt (the agent's own
  ready signal, read from its screen);
* **new session → first prompt accepted**: the prompt typed through the dispatcher and seen taken.

Naive: what a script without a ready signal does — open the window and wait a fixed time before
typing. The fixed wait has to cover the slowest start seen, so it is the maximum of the measured
ready times plus 1 s (and a start slower than that loses the prompt).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _round(claude: str, base: Path, model_url: str) -> tuple[float, float]:
    from deck_tray.core.model import AgentKind
    from deck_tray.services.dispatcher import Dispatcher
    from deck_tray.services.launcher import Launcher, NewSession
    from deck_tray.services.panes import Tmux

    project = base / "project"
    project.mkdir(parents=True)
    home = base / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
        "projects": {str(project): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}}}))
    (base / "tmx").mkdir()
    env = dict(os.environ, HOME=str(home), TMUX_TMPDIR=str(base / "tmx"), ANTHROPIC_BASE_URL=model_url,
               ANTHROPIC_API_KEY="dummy", DISABLE_AUTOUPDATER="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
               LANG="C.UTF-8", XDG_RUNTIME_DIR=str(base))
    tmux = Tmux(env=env)

    from deck_tray.core.scan import Scanner
    from deck_tray.services.collect import collect

    scanner = Scanner(home / ".claude", base / "no-codex")

    async def find_in_pane(pane: Any) -> Any:
        return next((s for s in await collect(scanner, tmux) if s.pane and s.pane.pane_id == pane.pane_id), None)

    async def go() -> tuple[float, float]:
        launcher = Launcher(tmux, Dispatcher(tmux), find_in_pane=find_in_pane)
        t0 = time.time()
        report = await launcher.start(NewSession(AgentKind.CLAUDE_CODE, str(project), "hello bench"), env)
        assert report.ok and report.ready_s is not None, report.detail
        assert report.prompt is not None and report.prompt.delivered, report.prompt
        return report.ready_s, time.time() - t0

    old = os.environ.get("TMUX_TMPDIR")
    os.environ["TMUX_TMPDIR"] = env["TMUX_TMPDIR"]  # the launcher's own socket discovery
    try:
        return asyncio.run(go())
    finally:
        subprocess.run(["tmux", "-S", str(base / "tmx" / f"tmux-{os.getuid()}" / "default"), "kill-server"],
                       capture_output=True, timeout=30)
        if old is None:
            os.environ.pop("TMUX_TMPDIR", None)
        else:
            os.environ["TMUX_TMPDIR"] = old


def measure(rounds: int) -> dict[str, Any]:
    """``{"ready": [s], "prompt": [s]}``, or ``{"missing": why}`` when Claude Code is not installed."""
    from tests.e2e.harness import FakeModel, find_agent_bin

    claude = find_agent_bin("claude")
    if claude is None:
        return {"missing": "claude not found"}
    os.environ["PATH"] = f"{Path(claude).parent}:{os.environ.get('PATH', '')}"
    ready: list[float] = []
    prompt: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dt-new-", ignore_cleanup_errors=True) as tmp, \
            FakeModel("anthropic", Path(tmp) / "fake") as model:
        for i in range(rounds):
            r, p = _round(claude, Path(tmp) / f"r{i}", model.base_url)
            ready.append(r)
            prompt.append(p)
    return {"ready": ready, "prompt": prompt}


def rows(res: dict[str, Any]) -> list[tuple[str, str, float | str | None, float | str | None, bool | None]]:
    """Table rows ``(metric, goal, deck-tray, naive, ok)`` in seconds (medians)."""
    if "missing" in res:
        return [("new session → ready (s)", "≤ 10", res["missing"], None, None)]
    naive = max(res["ready"]) + 1.0
    ready, prompt = statistics.median(res["ready"]), statistics.median(res["prompt"])
    return [("new Claude session → ready, median (s)", "≤ 10", ready, naive, ready <= 10),
            ("new Claude session → first prompt accepted, median (s)", "≤ 15", prompt, naive, prompt <= 15)]


def notes(res: dict[str, Any]) -> list[str]:
    if "missing" in res:
        return []
    return [f"new session: {len(res['ready'])} rounds of a real Claude Code 2.1.197 started in a private tmux with no "
            f"server running; ready {', '.join(f'{x:.1f}' for x in res['ready'])} s; first prompt accepted "
            f"{', '.join(f'{x:.1f}' for x in res['prompt'])} s. naive = a fixed wait long enough for the slowest "
            "start seen (max + 1 s) before typing."]


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    got = measure(ap.parse_args().rounds)
    for row in rows(got):
        print(row)
    for n in notes(got):
        print(n)
