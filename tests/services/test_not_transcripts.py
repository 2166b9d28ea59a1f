"""Files that are not transcripts (issue #16): a named pipe, a unix socket, a symbolic link loop, a link
to /dev/null and random bytes, named like Claude Code transcripts, Codex rollouts and Claude status files,
stop neither ``deck-tray sessions --json`` nor the app's scan; the real sessions beside them are listed,
and each of them is named once on the log (stderr for the command line)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deck_tray.core.scan import Scanner
from deck_tray.services.monitor import Monitor
from deck_tray.services.panes import Tmux
from deck_tray.services.registry import SessionRegistry
from tests.helpers import until

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CLAUDE_ID = "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"  # claude-code-2.1.197-interactive.jsonl
CODEX_ID = "01a200e2-3b74-7260-8ec7-4dd0b34227be"  # codex-0.169.0-exec.jsonl
STAMP = "rollout-2026-11-22T01-32-3"


class Tree:
    """``claude/`` (as ``$CLAUDE_CONFIG_DIR``) and ``codex/`` (as ``$CODEX_HOME``) with one captured
    session each, and beside them things named like session files that are not."""

    def __init__(self, root: Path) -> None:
        self.claude, self.codex = root / "claude", root / "codex"
        self.project = self.claude / "projects" / "-home-dev-work-proj"
        self.day = self.codex / "sessions" / "2026" / "11" / "22"
        status_dir = self.claude / "sessions"
        for d in (self.project, self.day, status_dir):
            d.mkdir(parents=True)
        self.transcript = self.project / f"{CLAUDE_ID}.jsonl"
        self.rollout = self.day / f"{STAMP}6-{CODEX_ID}.jsonl"
        shutil.copy(FIXTURES / "claude-code-2.1.197-interactive.jsonl", self.transcript)
        shutil.copy(FIXTURES / "codex-0.169.0-exec.jsonl", self.rollout)
        self.fifos = [self.project / "11111111-1111-4111-8111-111111111111.jsonl",
                      self.day / f"{STAMP}1-01a200e4-0000-7000-8000-000000000001.jsonl",
                      status_dir / "4242.json"]
        for f in self.fifos:
            os.mkfifo(f)
        self.sockets = [self.project / "22222222-2222-4222-8222-222222222222.jsonl",
                        self.day / f"{STAMP}2-01a200e4-0000-7000-8000-000000000002.jsonl"]
        cwd = os.getcwd()
        try:
            for s in self.sockets:
                os.chdir(s.parent)  # AF_UNIX paths are limited to 108 bytes: bind the name in its folder
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.bind(s.name)
        finally:
            os.chdir(cwd)
        self.loop = self.project / "33333333-3333-4333-8333-333333333333.jsonl"
        os.symlink(self.loop.name, self.loop)
        self.devnull = self.project / "x.jsonl"
        os.symlink(os.devnull, self.devnull)
        rng = random.Random(16)
        for g in (self.project / "44444444-4444-4444-8444-444444444444.jsonl",
                  self.day / f"{STAMP}3-01a200e4-0000-7000-8000-000000000003.jsonl"):
            g.write_bytes(rng.randbytes(64 * 1024))
        self.skipped = [*self.fifos, *self.sockets, self.loop, self.devnull]

    def release(self) -> None:
        """Give a reader stuck in ``open()`` of a named pipe a writer that closes at once (it reads
        end of file): a regression then fails the test instead of hanging the suite."""
        for f in self.fifos:
            try:
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


def test_cli_sessions_json_returns_and_lists_only_the_real_sessions(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "PYTHON", "XDG_"))}
    env.update(HOME=str(home), CLAUDE_CONFIG_DIR=str(tree.claude), CODEX_HOME=str(tree.codex),
               PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1", TMUX_TMPDIR=str(tmp_path / "tmux"))
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
        env[var] = str(tmp_path / var.lower())  # no settings, no running app: the command scans itself
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "deck_tray", "sessions", "--json"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("deck-tray sessions --json still ran after 60 s (blocked opening a named pipe)")
    print(f"sessions --json beside {len(tree.skipped)} odd files: {time.perf_counter() - t0:.2f} s")
    assert proc.returncode == 0, err
    listed = [(s["agent"], s["id"]) for s in json.loads(out) if s["agent"] != "opencode"]
    assert sorted(listed) == [("claude-code", CLAUDE_ID), ("codex", CODEX_ID)]
    for path in tree.skipped:
        assert err.count(f"skipped {path}: ") == 1, err
    assert f"skipped {tree.fifos[0]}: a named pipe, not a transcript" in err


def test_the_apps_scan_lists_the_sessions_beside_named_pipes_and_a_pipe_event_blocks_nothing(
        qloop: asyncio.AbstractEventLoop, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tree = Tree(tmp_path)
    registry = SessionRegistry()
    monitor = Monitor(Scanner(tree.claude, tree.codex, process_lister=lambda: []), Tmux(), registry)
    refreshes: list[float] = []
    monitor.refreshed.connect(refreshes.append)
    caplog.set_level(logging.INFO)
    blocked = " (a scan blocked on a named pipe?)"

    def ids() -> set[str]:
        return {s.id for s in registry.sessions()}

    async def go() -> None:
        monitor.start()
        passed = False
        try:
            await until(lambda: ids() == {CLAUDE_ID, CODEX_ID}, 10, "the first scan" + blocked)
            # The watcher reports a named pipe created now; the refresh it starts must not open it,
            # and later events are still handled (a title record appended to the transcript).
            done = len(refreshes)
            late = tree.project / "55555555-5555-4555-8555-555555555555.jsonl"
            os.mkfifo(late)
            tree.fifos.append(late)
            await until(lambda: len(refreshes) > done, 10, "the refresh after the pipe's event" + blocked)
            with open(tree.transcript, "a", encoding="utf-8") as f:
                f.write(json.dumps({"type": "custom-title", "customTitle": "after the pipe",
                                    "sessionId": CLAUDE_ID}) + "\n")
            await until(lambda: (s := registry.get(CLAUDE_ID)) is not None and s.title == "after the pipe",
                        10, "the transcript's next change" + blocked)
            assert ids() == {CLAUDE_ID, CODEX_ID}
            passed = True
        finally:
            for _ in range(0 if passed else 40):  # unblock the executor thread of a regression
                tree.release()
                await asyncio.sleep(0.05)
            await monitor.stop()

    qloop.run_until_complete(go())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")]
    for path in [*tree.skipped, tree.fifos[-1]]:
        assert sum(ln.startswith(f"skipped {path}: ") for ln in lines) == 1, lines
