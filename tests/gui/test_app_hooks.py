"""The app with its socket: a hook from the real forwarder reaches the registry at once, ``show`` raises
the window, and ``sessions`` answers from the live registry."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from deck_tray.core.model import Session, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.scan import Scanner
from deck_tray.services import ipc
from deck_tray.services.panes import Tmux
from tests.helpers import until

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qt_slate")]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
TID = "01a200e4-f2b5-78c1-9c58-e75423501563"
CWD = "/home/dev/work/proj"




def test_a_permission_hook_reaches_the_registry_at_once(tmp_path: Path, runtime: Path, qtbot: Any,
                                                        qloop: asyncio.AbstractEventLoop) -> None:
    from deck_tray.app import DeckTrayApp

    # A Codex session whose rollout ends with an escalated call: running or waiting, the files can't tell.
    lines = (FIXTURES / "codex-0.169.0-tui-no-daemon.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    rollout = tmp_path / "codex" / "sessions" / "2026" / "11" / "22" / f"rollout-2026-11-22T01-35-34-{TID}.jsonl"
    rollout.parent.mkdir(parents=True)
    rollout.write_text("".join(lines[:14]), encoding="utf-8")
    procs = [AgentProcess(os.getpid(), "codex", CWD, open_rollouts=(str(rollout),))]
    sock = runtime / "deck-tray" / "ipc.sock"
    app = DeckTrayApp(scanner=Scanner(tmp_path / "claude", tmp_path / "codex", process_lister=lambda: procs),
                      mux=Tmux(), settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                      notification_backends=[], discover_opencode=False, ipc_path=sock)
    qtbot.addWidget(app.window)
    announced: list[tuple[float, Session]] = []
    app.registry.attention_needed.connect(lambda s: announced.append((time.perf_counter(), s)))
    payload = dict(json.loads((FIXTURES / "codex-0.169.0-hooks.jsonl").read_text().splitlines()[3])["payload"],
                   session_id=TID, transcript_path=str(rollout))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_RUNTIME_DIR", "PYTHON"))}
    env.update(XDG_RUNTIME_DIR=str(runtime), PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")

    async def scenario() -> None:
        app.start()
        try:
            await until(lambda: (s := app.registry.get(TID)) and s.status is SessionStatus.BUSY)
            assert not announced
            t0 = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "deck_tray", "hook", "codex", env=env, cwd=REPO,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate(json.dumps(payload).encode())
            exited = time.perf_counter()
            # Codex 0.169 shows its approval only after the hook returns: its hook is not held
            # (issue #13), it returns at once and decides nothing.
            assert proc.returncode == 0 and out == b""
            at, s = await until(lambda: announced and announced[-1])
            assert at - exited < 0.5, f"hook → attention took {at - exited:.3f} s"
            print(f"forwarder ran {exited - t0:.3f} s; its exit → attention_needed {at - exited:.3f} s")
            assert app.decisions.held(TID) is None
            assert s.status is SessionStatus.WAITING_PERMISSION
            assert s.reason.startswith("approval prompt for Bash `touch fake-shell-ran.txt")
            assert s.pending is not None and s.pending.request_id == "call_fake_1c4c316eabc7472d"

            loop = asyncio.get_running_loop()
            app.window.hide()
            assert await loop.run_in_executor(None, lambda: ipc.request({"op": "show"}, path=sock)) == {"ok": True}
            assert app.window.isVisible()
            answer = await loop.run_in_executor(None, lambda: ipc.request({"op": "sessions"}, path=sock))
            view = ipc.parse_sessions_answer(answer)
            assert [x.to_json() for x in view.sessions] == [x.to_json() for x in app.registry.sessions()]
            assert view.codex_dir == str(tmp_path / "codex")
            assert view.sessions[0].status is SessionStatus.WAITING_PERMISSION
        finally:
            await app.stop()
        assert not sock.exists()

    qloop.run_until_complete(scenario())
