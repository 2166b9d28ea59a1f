"""Qwen Code's and Copilot CLI's permission hooks (issue #19): neither agent shows its prompt while
the hook runs, so the real forwarder (``python -m deck_tray hook qwen-code|copilot-cli …``) waits
for deck-tray at most the "Let Qwen and Copilot wait for deck-tray" seconds, then returns with no
decision; Gemini CLI's hooks never wait. Against the real IpcServer + DecisionBroker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.model import AgentKind, DeliveryState, Session, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.decisions import DecisionBroker
from deck_tray.services.ipc import IpcServer
from deck_tray.services.registry import SessionRegistry
from tests.helpers import until

from .test_hook_hold import REPO, env_for, serve

SID = "283f454d-c528-4c65-858a-eaa9cb5f76ae"
#: As captured from Qwen Code 0.24.4 (tests/fixtures/qwen-code-0.24.4-hooks.jsonl), trimmed.
QWEN = {"session_id": SID, "cwd": "/p", "hook_event_name": "PermissionRequest", "permission_mode": "default",
        "tool_name": "run_shell_command", "tool_input": {"command": "touch gemini-ran.txt"}}
#: As captured from Copilot CLI 1.0.102 (tests/fixtures/copilot-cli-1.0.102-hooks.jsonl).
COPILOT = {"hookName": "permissionRequest", "sessionId": SID, "timestamp": 1796604501747, "cwd": "/p",
           "toolName": "bash", "toolInput": {"command": "touch copilot-ran.txt"}, "permissionSuggestions": []}
#: Gemini CLI 0.61.0's permission notification (tests/fixtures/gemini-cli-0.61.0-hooks.jsonl).
GEMINI = {"session_id": SID, "cwd": "/p", "hook_event_name": "Notification", "notification_type": "ToolPermission",
          "message": "Tool Confirm Shell Command requires execution",
          "details": {"type": "exec", "title": "Confirm Shell Command", "command": "touch x", "rootCommand": "touch"}}
CASES = {"qwen-code": (["qwen-code"], QWEN, AgentKind.QWEN_CODE),
         "copilot-cli": (["copilot-cli", "permissionRequest"], COPILOT, AgentKind.COPILOT_CLI)}
ALLOW = {"qwen-code": {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": {"behavior": "allow"}}},
         "copilot-cli": {"behavior": "allow"}}


async def start_hook(runtime: Path, argv: list[str], payload: dict[str, Any]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deck_tray", "hook", *argv, env=env_for(runtime), cwd=REPO,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(payload).encode())
    proc.stdin.close()
    return proc


def waiting(agent: AgentKind) -> Session:
    return Session(id=SID, agent=agent, cwd="/p", title="t", pid=None, pane=None,
                   status=SessionStatus.WAITING_PERMISSION, reason="r", updated_at=time.time())


def serve_short(runtime: Path, wait_s: float) -> tuple[IpcServer, DecisionBroker, SessionRegistry]:
    """The real socket server and broker, holding Qwen/Copilot hooks at most ``wait_s`` seconds
    (the setting) and telling the forwarder so."""
    srv, broker, reg = serve(runtime)
    broker.short_wait_s = wait_s
    srv.hold_limit = broker.hold_limit
    return srv, broker, reg


def run_hook(runtime: Path, argv: list[str],
             payload: dict[str, Any]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "deck_tray", "hook", *argv], env=env_for(runtime), cwd=REPO,
                         input=json.dumps(payload).encode(), capture_output=True, timeout=60)
    return time.monotonic() - t0, res


@pytest.mark.parametrize("name", list(CASES))
def test_no_app_returns_at_once_with_no_decision(name: str, runtime: Path) -> None:
    argv, payload, _ = CASES[name]
    took, res = run_hook(runtime, argv, payload)
    assert res.returncode == 0 and res.stdout == b""
    print(f"\n{name}, no app: {took:.2f} s (Python start-up included)")
    assert took < 5.0


@pytest.mark.parametrize("name", list(CASES))
def test_an_allow_within_the_wait_is_printed_in_the_agents_format(name: str, runtime: Path, qloop: Any) -> None:
    argv, payload, agent = CASES[name]
    srv, broker, reg = serve_short(runtime, 5.0)

    async def run() -> None:
        srv.start()
        try:
            reg.apply([waiting(agent)])
            proc = await start_hook(runtime, argv, payload)
            await until(lambda: broker.held(SID))
            report = broker.decide(waiting(agent), Reply(ReplyKind.ALLOW))
            assert report is not None and report.state is DeliveryState.SUBMITTED, report
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            assert proc.returncode == 0
            assert json.loads(out) == ALLOW[name]
        finally:
            await srv.stop()

    qloop.run_until_complete(run())


@pytest.mark.parametrize("name", list(CASES))
def test_a_silent_app_lets_the_hook_go_after_the_setting(name: str, runtime: Path, qloop: Any) -> None:
    """Held for the setting's 1 s, nobody answers: the hook returns with nothing printed (the agent
    then shows its prompt) about 1 s later — not after the 600 s Claude Code's hook may wait."""
    argv, payload, agent = CASES[name]
    srv, broker, reg = serve_short(runtime, 1.0)

    async def run() -> None:
        srv.start()
        try:
            reg.apply([waiting(agent)])
            proc = await start_hook(runtime, argv, payload)
            await until(lambda: broker.held(SID))
            t0 = time.monotonic()
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            took = time.monotonic() - t0
            print(f"\n{name}: held, no answer: returned {took:.2f} s after it was held")
            assert proc.returncode == 0 and out == b""
            assert took < 3.0
        finally:
            await srv.stop()

    qloop.run_until_complete(run())


def test_a_forwarder_told_a_limit_never_waits_longer(runtime: Path) -> None:
    """A hung app that acknowledges with a 1 s limit and then says nothing: the hook gives up
    after about 1.5 s (the limit and its margin), with nothing printed."""
    import socket
    import threading

    sock = runtime / "deck-tray" / "ipc.sock"
    sock.parent.mkdir(mode=0o700)
    conns: list[socket.socket] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(str(sock))
        srv.listen(4)

        def accept() -> None:
            c, _ = srv.accept()
            conns.append(c)
            c.recv(65536)
            c.sendall(b'{"held":true,"wait_s":1.0}\n')

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        took, res = run_hook(runtime, ["copilot-cli", "permissionRequest"], COPILOT)
        t.join(5)
    for c in conns:
        c.close()
    assert res.returncode == 0 and res.stdout == b""
    print(f"\nacknowledged with a 1 s limit, then silent: {took:.2f} s")
    assert 1.0 <= took < 4.0


def test_gemini_hooks_never_wait(runtime: Path, qloop: Any) -> None:
    """Gemini CLI awaits its hooks before it draws the prompt: its permission notification is
    forwarded (the session becomes waiting) and the hook returns at once."""
    srv, broker, reg = serve_short(runtime, 5.0)
    got: list[Any] = []
    srv.hook_received.connect(got.append)

    async def run() -> None:
        srv.start()
        try:
            t0 = time.monotonic()
            proc = await start_hook(runtime, ["gemini-cli"], GEMINI)
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            took = time.monotonic() - t0
            assert proc.returncode == 0 and out == b""
            await until(lambda: got)
            assert got[0].agent is AgentKind.GEMINI_CLI and got[0].name == "Notification"
            assert got[0].session_id == SID and broker.held(SID) is None
            print(f"\ngemini-cli permission notification forwarded in {took:.2f} s (Python start-up included)")
        finally:
            await srv.stop()

    qloop.run_until_complete(run())


def test_a_held_qwen_hook_keeps_its_session_waiting_until_it_is_answered(qloop: Any) -> None:
    """The broker tells the hook store which hooks it holds, before anyone hears of it: while
    deck-tray holds Qwen Code's hook the agent's screen shows only a busy spinner, yet it waits, so
    the session stays waiting; once answered, the spinner (newer than the hook) says busy again."""
    from deck_tray.core.hooks import HookEvent, HookStore
    from deck_tray.core.model import Evidence, EvidenceSource
    from deck_tray.core.status import decide

    clock = [time.time()]
    hooks = HookStore(clock=lambda: clock[0])
    reg = SessionRegistry()
    broker = DecisionBroker(reg, hooks=hooks)
    broker.short_wait_s = 60.0
    event = HookEvent(AgentKind.QWEN_CODE, "hook", QWEN, clock[0])
    hooks.add(event)
    clock[0] += 2
    spinner = Evidence(EvidenceSource.SCREEN, SessionStatus.BUSY, clock[0], "spinner")

    def status() -> SessionStatus:
        return decide([*hooks.evidence(SID), spinner], clock[0] + 0.5)[0]

    heard: list[SessionStatus] = []
    broker.changed.connect(lambda sid: heard.append(status()))
    assert status() is SessionStatus.BUSY, "the spinner is newer than the hook's claim"

    async def run() -> None:
        reg.apply([waiting(AgentKind.QWEN_CODE)])
        held = asyncio.ensure_future(broker.hold(event))
        await until(lambda: broker.held(SID))
        assert heard == [SessionStatus.WAITING_PERMISSION], "held: waiting, already when 'changed' is heard"
        broker.decide(waiting(AgentKind.QWEN_CODE), Reply(ReplyKind.ALLOW))
        assert await asyncio.wait_for(held, 5) is not None
        assert heard[-1] is SessionStatus.BUSY and status() is SessionStatus.BUSY

    qloop.run_until_complete(run())
