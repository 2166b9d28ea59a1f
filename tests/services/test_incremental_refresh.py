"""A file event is handled for the sessions it concerns only: one session's status file
changes, and only that session is decided again and announced; the others keep their
snapshot. A decision that changes with time alone (a claim whose freshness ran out) is made
again without any file event."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core import procs
from deck_tray.core.claude import encode_cwd
from deck_tray.core.model import Session, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.records import QUIET_S
from deck_tray.core.scan import Scanner
from deck_tray.services.collect import Collector
from deck_tray.services.monitor import Monitor
from deck_tray.services.panes import Tmux
from deck_tray.services.registry import SessionRegistry

pytestmark = pytest.mark.usefixtures("qt_slate")
ME = os.getpid()


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def write_status(path: Path, sid: str, cwd: str, status: str) -> None:
    ms = int(time.time() * 1000)
    content: dict[str, Any] = {"pid": ME, "sessionId": sid, "cwd": cwd, "procStart": procs.proc_start(ME) or "",
                               "status": status, "updatedAt": ms, "statusUpdatedAt": ms}
    if status == "waiting":
        content["waitingFor"] = "permission prompt"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content))
    os.replace(tmp, path)  # as Claude Code writes it


def prompt_and_answer(sid: str, cwd: str, at: float, stop: str | None = "end_turn") -> str:
    user = {"type": "user", "sessionId": sid, "cwd": cwd, "uuid": f"u-{sid}", "timestamp": iso(at),
            "message": {"role": "user", "content": "tidy the imports"}}
    agent = {"type": "assistant", "sessionId": sid, "cwd": cwd, "timestamp": iso(at + 1),
             "message": {"id": f"m-{sid}", "role": "assistant", "stop_reason": stop,
                         "content": [{"type": "text", "text": "Done: the imports are sorted."}]}}
    return json.dumps(user) + "\n" + json.dumps(agent) + "\n"


def run_until(loop: asyncio.AbstractEventLoop, cond: Callable[[], Any], what: str, timeout: float = 20.0) -> None:
    async def wait() -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            await asyncio.sleep(0.02)

    loop.run_until_complete(wait())


def test_one_status_file_changes_one_session_is_announced(qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    claude = tmp_path / ".claude"
    (claude / "sessions").mkdir(parents=True)
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(40)]
    for i, sid in enumerate(ids):
        cwd = f"/home/dev/p{i}"
        t = claude / "projects" / encode_cwd(cwd) / f"{sid}.jsonl"
        t.parent.mkdir(parents=True)
        t.write_text(prompt_and_answer(sid, cwd, time.time() - 60))
        write_status(claude / "sessions" / f"{100 + i}.json", sid, cwd, "busy")
    registry = SessionRegistry()
    monitor = Monitor(Scanner(claude, tmp_path / ".codex", process_lister=lambda: []),
                      Tmux(env={"TMUX_TMPDIR": str(tmp_path / "no-tmux")}), registry)
    changed: list[Session] = []
    try:
        monitor.start()
        run_until(qloop, lambda: len(registry.sessions()) == 40
                  and all(s.status is SessionStatus.BUSY for s in registry.sessions()), "the 40 sessions, busy")
        before = {s.id: s for s in registry.sessions()}
        registry.session_changed.connect(changed.append)
        write_status(claude / "sessions" / "107.json", ids[7], "/home/dev/p7", "waiting")
        run_until(qloop, lambda: (s := registry.get(ids[7])) is not None and s.status.is_waiting,
                  "session 7 waiting")
        assert [s.id for s in changed] == [ids[7]], "only the session whose file changed is announced"
        assert all(registry.get(sid) is before[sid] for sid in ids if sid != ids[7]), \
            "the other sessions were not decided again"
    finally:
        qloop.run_until_complete(monitor.stop())


def test_a_claim_that_runs_out_is_decided_again_without_a_file_event(qloop: asyncio.AbstractEventLoop,
                                                                     tmp_path: Path) -> None:
    """ADR 009: an answer with no end-of-turn mark reads as working for a quiet minute, then as
    finished; nothing is written in between."""
    claude = tmp_path / ".claude"
    now = [time.time()]
    cwd = "/home/dev/old-claude"
    sid, other = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    for s, stop in ((sid, None), (other, "end_turn")):
        t = claude / "projects" / encode_cwd(cwd) / f"{s}.jsonl"
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text(prompt_and_answer(s, cwd, now[0] - 10, stop))
    # Claude Code without status files: live while a claude process runs in its folder.
    scanner = Scanner(claude, tmp_path / ".codex", clock=lambda: now[0],
                      process_lister=lambda: [AgentProcess(ME, "claude", cwd)])
    collector = Collector(scanner, Tmux(env={"TMUX_TMPDIR": str(tmp_path / "no-tmux")}))
    first = qloop.run_until_complete(collector.refresh())
    assert first.complete
    assert collector.sessions[sid].status is SessionStatus.BUSY
    assert collector.sessions[other].status is SessionStatus.IDLE
    assert not collector.due(now[0])

    now[0] += QUIET_S + 2
    assert collector.due(now[0]), "the working claim ran out: the decision may change"
    tick = qloop.run_until_complete(collector.refresh([]))
    assert [s.id for s in tick.changed] == [sid] and not tick.complete
    assert collector.sessions[sid].status is SessionStatus.IDLE
    assert "no end-of-turn mark" in collector.sessions[sid].reason
    assert not collector.due(now[0])


def test_a_hook_decides_its_own_session_again_not_all_of_them(qloop: asyncio.AbstractEventLoop,
                                                              tmp_path: Path) -> None:
    """A PermissionRequest hook (Claude Code 2.1.197's payload, fixture claude-code-2.1.197-hooks.jsonl)
    for one of 40 sessions: that session waits, the 39 others keep their snapshot (a hook costs
    one session's decision)."""
    from deck_tray.core.hooks import HookEvent, HookStore
    from deck_tray.core.model import AgentKind

    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "claude-code-2.1.197-hooks.jsonl"
    base = next(r["payload"] for r in map(json.loads, fixture.read_text().splitlines())
                if r["event"] == "PermissionRequest")
    claude = tmp_path / ".claude"
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(40)]
    cwds = [f"/home/dev/p{i}" for i in range(40)]
    paths = []
    for sid, cwd in zip(ids, cwds, strict=True):
        t = claude / "projects" / encode_cwd(cwd) / f"{sid}.jsonl"
        t.parent.mkdir(parents=True)
        t.write_text(prompt_and_answer(sid, cwd, time.time() - 60))
        paths.append(t)
    # No status files (as before Claude Code 2.1.x wrote them): live while a claude runs in the folder.
    registry = SessionRegistry()
    hooks = HookStore()
    monitor = Monitor(Scanner(claude, tmp_path / ".codex", process_lister=lambda: [AgentProcess(ME, "claude", c)
                                                                                   for c in cwds]),
                      Tmux(env={"TMUX_TMPDIR": str(tmp_path / "no-tmux")}), registry, hooks=hooks)
    changed: list[Session] = []
    try:
        monitor.start()
        run_until(qloop, lambda: len(registry.sessions()) == 40
                  and all(s.status is SessionStatus.IDLE for s in registry.sessions()), "the 40 sessions, idle")
        before = {s.id: s for s in registry.sessions()}
        registry.session_changed.connect(changed.append)
        payload = dict(base, session_id=ids[7], cwd=cwds[7], transcript_path=str(paths[7]))
        monitor.hook_arrived(HookEvent(AgentKind.CLAUDE_CODE, "hook", payload, time.time()))
        run_until(qloop, lambda: (s := registry.get(ids[7])) is not None
                  and s.status is SessionStatus.WAITING_PERMISSION, "session 7 waiting on the hook's claim")
        assert [s.id for s in changed] == [ids[7]]
        assert all(registry.get(sid) is before[sid] for sid in ids if sid != ids[7]), \
            "the other sessions were not decided again"
    finally:
        qloop.run_until_complete(monitor.stop())
