"""What the hook end-to-end tests share (issue #13): Claude Code's hook settings as ``deck-tray hooks
install`` writes them, a condition wait, the real ``deck-tray`` CLI run as a user runs it, and the
app started around a test's steps."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from deck_tray.app import DeckTrayApp
from deck_tray.core.hooks_config import hook_timeout

from .harness import REPO_ROOT, ClaudeAgent, CodexAgent

#: The Claude Code hook events deck-tray installs.
EVENTS = ("PermissionRequest", "Notification", "Stop", "UserPromptSubmit", "SessionStart", "SessionEnd")
#: Claude Code's permission dialog (2.1.197, 2.1.332).
PROCEED = r"Do you want to proceed\?"


def claude_hook_settings() -> dict[str, Any]:
    """Claude's ``settings.json`` hooks as ``deck-tray hooks install`` writes them (through this
    interpreter), in manual permission mode ("default"; 2.1.332 calls it "manual")."""
    command = f"{shlex.quote(sys.executable)} -m deck_tray hook claude-code"
    return {"permissions": {"defaultMode": "default"},
            "hooks": {ev: [{**({"matcher": "*"} if ev == "PermissionRequest" else {}),
                            "hooks": [{"type": "command", "command": command, "timeout": hook_timeout(ev)}]}]
                      for ev in EVENTS}}


async def cli(runtime: Path, agent: ClaudeAgent | CodexAgent, *args: str) -> tuple[int, str, str]:
    """``deck-tray ARGS`` as a user runs it: it talks to the running app, whose folders it shares
    (``HOME``, and ``CODEX_HOME`` for Codex). Returns ``(exit code, stdout, stderr)``."""
    env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME")}
    env.update(XDG_RUNTIME_DIR=str(runtime), HOME=str(agent.home), PYTHONPATH=str(REPO_ROOT))
    if isinstance(agent, CodexAgent):
        env["CODEX_HOME"] = str(agent.codex_home)  # the folder the app watches, or the CLI scans alone
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "deck_tray", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def run_with_app(qloop: asyncio.AbstractEventLoop, app: DeckTrayApp,
                 steps: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start ``app``, run ``steps()`` on the loop, and stop the app whatever happens."""
    async def scenario() -> None:
        app.start()
        try:
            await steps()
        finally:
            await app.stop()

    qloop.run_until_complete(scenario())
