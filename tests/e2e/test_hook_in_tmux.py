"""Issue #13 in tmux: a real Claude Code in a real tmux pane, with deck-tray's hooks installed,
is answered through its held ``PermissionRequest`` hook even though deck-tray knows its pane and
could type into it — no ``send-keys`` and no paste is issued for the permission.

The agent runs in a private tmux server (:class:`tests.e2e.harness.TmuxServer`) with the hooks
``deck-tray hooks install`` writes (``python -m deck_tray hook claude-code``); the app runs in
this process. Its :class:`~deck_tray.services.panes.Tmux` finds ``tmux`` on ``PATH``, where a
wrapper comes first: it appends every argv it is run with to a log and execs the real tmux. The
harness drives the pane with the real tmux (its own ``PATH``, taken before the wrapper was put
first), so every line of the log is deck-tray's: the app's, and the ``deck-tray reply`` CLI's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from deck_tray.app import DeckTrayApp
from deck_tray.core.model import SessionStatus
from deck_tray.core.scan import Scanner
from deck_tray.services.panes import Tmux

from .harness import REPO_ROOT, ClaudeAgent, FakeModel, TmuxServer, find_agent_bin, until
from .hook_helpers import PROCEED, claude_hook_settings, cli, run_with_app

pytestmark = [pytest.mark.e2e, pytest.mark.gui, pytest.mark.usefixtures("qt_slate"),
              pytest.mark.skipif(find_agent_bin("claude") is None, reason="claude not found (run ./scripts/test.sh)"),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not found (run ./scripts/test.sh)")]

#: tmux commands that put keys or text into a pane.
TYPING = {"send-keys", "send", "paste-buffer", "pasteb", "load-buffer", "loadb", "set-buffer", "setb"}



def tmux_wrapper(folder: Path, log: Path) -> Path:
    """``folder/tmux``: appends its argv (tab-separated, one line per call) to ``log``, then execs
    the real tmux. One ``printf`` per call, so concurrent calls do not interleave."""
    real = shutil.which("tmux")
    assert real is not None
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "tmux"
    wrapper.write_text("#!/bin/sh\n"
                       "IFS='\t'\n"
                       f"printf '%s\\n' \"$*\" >> {shlex.quote(str(log))}\n"
                       f"exec {shlex.quote(real)} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def tmux_calls(log: Path) -> list[list[str]]:
    """Every call the wrapper logged, as argv lists (without the binary)."""
    if not log.exists():
        return []
    return [line.split("\t") for line in log.read_text(errors="replace").splitlines() if line]


def typing_calls(log: Path) -> list[list[str]]:
    """The logged calls that type or paste into a pane."""
    return [argv for argv in tmux_calls(log) if TYPING & set(argv)]




def test_allow_in_tmux_goes_through_the_hook_not_the_keys(tmp_path: Path, runtime: Path, qtbot: Any,
                                                          qloop: asyncio.AbstractEventLoop,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The app knows Claude's tmux pane; ``deck-tray reply --allow`` still answers through the
    held hook: the command runs, the reply reports ``accepted``, and tmux was asked to list and
    read panes but never to type or paste."""
    log = tmp_path / "tmux-calls.log"
    with (
        FakeModel("anthropic", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        ClaudeAgent(tmux, model, tmp_path / "claude", settings=claude_hook_settings(),
                    extra_env={"XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(REPO_ROOT)}) as claude,
    ):
        # Only now, so the harness (and the agent in its pane) keep the real tmux.
        wrapper = tmux_wrapper(tmp_path / "bin", log)
        monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("TMUX_TMPDIR", str(tmux.tmpdir))
        mux = Tmux()  # as the CLI and the app build it: the tmux on PATH
        assert mux.binary == str(wrapper)
        app = DeckTrayApp(scanner=Scanner(claude.config_dir, claude.home / ".codex"), mux=mux,
                          settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                          notification_backends=[], discover_opencode=False,
                          ipc_path=runtime / "deck-tray" / "ipc.sock")
        qtbot.addWidget(app.window)
        done = claude.project / "allowed-in-tmux.txt"

        async def steps() -> None:
            sid = (await until(lambda: app.registry.sessions(), 30, "the session"))[0].id
            pane = await until(lambda: (s := app.registry.get(sid)) and s.pane, 30, "the session's tmux pane")
            assert (pane.multiplexer, pane.pane_id) == ("tmux", claude.pane), pane
            assert tmux_calls(log), "the app found the pane through the wrapper"
            claude.type_line(f"please FAKE_BASH:touch {done.name}")
            await until(lambda: app.decisions.held(sid), 60, "the PermissionRequest hook to be held")
            await until(lambda: re.search(PROCEED, claude.capture()), 30, "Claude's own dialog in the pane")
            rc, out, err = await cli(runtime, claude, "sessions", "--json")
            assert rc == 0, err
            listed = next(x for x in json.loads(out) if x["id"] == sid)
            assert listed["answer_via"] == "hook" and listed["pane"] == f"tmux:{tmux.socket_path}:{claude.pane}", listed
            calls_before = len(tmux_calls(log))
            rc, out, err = await cli(runtime, claude, "reply", sid[:8], "--allow")
            assert rc == 0 and out.strip() == "accepted", (rc, out, err)
            await until(done.exists, 30, "the allowed command to run")
            await until(lambda: (s := app.registry.get(sid)) and s.status is SessionStatus.IDLE, 30, "idle")
            calls = tmux_calls(log)
            assert len(calls) >= calls_before > 0, "the wrapper logged the app's tmux calls"
            assert any("list-panes" in argv for argv in calls), calls[:5]
            assert typing_calls(log) == [], "no key typed or text pasted for the permission"

        run_with_app(qloop, app, steps)
