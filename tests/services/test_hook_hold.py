"""The PermissionRequest hook held open by the app (issue #13): the real forwarder
(``python -m deck_tray hook``) against the real IpcServer + DecisionBroker."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deck_tray.core.model import AgentKind, DeliveryState, PaneRef, Session, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.decisions import DecisionBroker
from deck_tray.services.ipc import IpcServer
from deck_tray.services.registry import SessionRegistry
from tests.helpers import until

REPO = Path(__file__).resolve().parents[2]
SID = "5c0d6f3e-1111-4222-8333-444455556666"
PAYLOAD = {"hook_event_name": "PermissionRequest", "session_id": SID, "cwd": "/p", "tool_name": "Bash",
           "tool_input": {"command": "rm -f x"},
           "permission_suggestions": [{"type": "setMode", "mode": "acceptEdits", "destination": "session"}]}



def env_for(runtime: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(XDG_RUNTIME_DIR=str(runtime), PYTHONPATH=str(REPO))
    return env


async def forwarder(runtime: Path, payload: dict[str, Any] = PAYLOAD,
                    agent: str = "claude-code") -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deck_tray", "hook", agent, env=env_for(runtime), cwd=REPO,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(payload).encode())
    proc.stdin.close()
    return proc


def session(status: SessionStatus, agent: AgentKind = AgentKind.CLAUDE_CODE, pane: PaneRef | None = None) -> Session:
    return Session(id=SID, agent=agent, cwd="/p", title="t", pid=None, pane=pane, status=status,
                   reason="r", updated_at=time.time())


def serve(runtime: Path) -> tuple[IpcServer, DecisionBroker, SessionRegistry]:
    reg = SessionRegistry()
    broker = DecisionBroker(reg)
    srv = IpcServer(runtime / "deck-tray" / "ipc.sock", hold=broker.hold)
    srv.hold_abandoned = broker.went_away
    srv.hook_received.connect(broker.hook_arrived)
    return srv, broker, reg


def test_always_allow_in_deck_tray_is_printed_by_the_hook(runtime: Path, qloop: Any) -> None:
    srv, broker, reg = serve(runtime)

    async def run() -> None:
        srv.start()
        try:
            reg.apply([session(SessionStatus.WAITING_PERMISSION)])
            proc = await forwarder(runtime)
            await until(lambda: broker.held(SID))
            report = broker.decide(session(SessionStatus.WAITING_PERMISSION), Reply(ReplyKind.ALLOW_ALWAYS))
            assert report is not None and report.state is DeliveryState.SUBMITTED
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            assert proc.returncode == 0
            assert json.loads(out)["hookSpecificOutput"]["decision"] == {
                "behavior": "allow", "updatedPermissions": PAYLOAD["permission_suggestions"]}
            assert broker.held(SID) is None
        finally:
            await srv.stop()

    qloop.run_until_complete(run())


def test_answered_in_the_terminal_lets_the_hook_go_silently(runtime: Path, qloop: Any) -> None:
    """The session leaves the waiting state: the hook prints nothing and exits; a late answer
    is reported superseded by the dispatcher (``answered_elsewhere``)."""
    srv, broker, reg = serve(runtime)

    async def run() -> None:
        srv.start()
        try:
            reg.apply([session(SessionStatus.WAITING_PERMISSION)])
            proc = await forwarder(runtime)
            await until(lambda: broker.held(SID))
            reg.apply([session(SessionStatus.BUSY)])  # the user pressed 1 in the terminal
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            assert proc.returncode == 0 and out == b""
            assert broker.decide(session(SessionStatus.BUSY), Reply(ReplyKind.ALLOW)) is None
            assert broker.answered_elsewhere(SID) is not None
        finally:
            await srv.stop()

    qloop.run_until_complete(run())


def test_a_killed_hook_is_no_longer_held(runtime: Path, qloop: Any) -> None:
    srv, broker, reg = serve(runtime)

    async def run() -> None:
        srv.start()
        try:
            proc = await forwarder(runtime)
            await until(lambda: broker.held(SID))
            proc.kill()
            await proc.wait()
            await until(lambda: broker.held(SID) is None)
            assert broker.answered_elsewhere(SID) is None, "a hook that went away is not an answer"
        finally:
            await srv.stop()

    qloop.run_until_complete(run())


def test_no_app_or_an_app_that_never_acknowledges_costs_the_agent_little(runtime: Path) -> None:
    """No socket: the hook returns at once. A listener that never answers (an older deck-tray,
    or a hung one): the hook gives up after the 0.5 s acknowledgement wait. Nothing printed."""
    def run_hook() -> tuple[float, subprocess.CompletedProcess[bytes]]:
        t0 = time.monotonic()
        res = subprocess.run([sys.executable, "-m", "deck_tray", "hook", "claude-code"], env=env_for(runtime),
                             cwd=REPO, input=json.dumps(PAYLOAD).encode(), capture_output=True, timeout=30)
        return time.monotonic() - t0, res

    took_none, res = run_hook()
    assert res.returncode == 0 and res.stdout == b""
    sock = runtime / "deck-tray" / "ipc.sock"
    sock.parent.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(sock))
        mute.listen(4)
        took_mute, res = run_hook()
    assert res.returncode == 0 and res.stdout == b""
    print(f"\nno app: {took_none:.2f} s; a mute listener: {took_mute:.2f} s (Python start-up included)")
    assert took_mute - took_none < 2.0


QUESTION = {"hook_event_name": "PermissionRequest", "session_id": SID, "cwd": "/p", "tool_name": "AskUserQuestion",
            "tool_input": {"questions": [{"question": "Which colour?", "header": "Colour", "multiSelect": False,
                                          "options": [{"label": "Red", "description": "r"},
                                                      {"label": "Blue", "description": "b"}]}]}}


def test_a_question_is_answered_through_the_hook(runtime: Path, qloop: Any) -> None:
    """A held AskUserQuestion: an option that is not offered is refused and the hook stays held
    (the text is kept); "Blue" is printed as the question's answer."""
    srv, broker, reg = serve(runtime)

    async def run() -> None:
        srv.start()
        try:
            reg.apply([session(SessionStatus.WAITING_QUESTION)])
            proc = await forwarder(runtime, QUESTION)
            await until(lambda: broker.held(SID))
            wrong = broker.decide(session(SessionStatus.WAITING_QUESTION), Reply(ReplyKind.OPTION, "Green"))
            assert wrong is not None and wrong.state is DeliveryState.REFUSED and wrong.text == "Green"
            assert "options: Red, Blue" in wrong.detail and broker.held(SID)
            ok = broker.decide(session(SessionStatus.WAITING_QUESTION), Reply(ReplyKind.OPTION, "Blue"))
            assert ok is not None and ok.state is DeliveryState.SUBMITTED
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            decision = json.loads(out)["hookSpecificOutput"]["decision"]
            assert decision["behavior"] == "allow" and decision["updatedInput"]["answers"] == {"Which colour?": "Blue"}
        finally:
            await srv.stop()

    qloop.run_until_complete(run())


def test_a_question_answered_in_the_terminal_does_not_supersede_a_new_prompt(runtime: Path, qloop: Any) -> None:
    srv, broker, reg = serve(runtime)

    async def run() -> None:
        srv.start()
        try:
            reg.apply([session(SessionStatus.WAITING_QUESTION)])
            proc = await forwarder(runtime, QUESTION)
            await until(lambda: broker.held(SID))
            reg.apply([session(SessionStatus.IDLE)])
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            assert out == b""
            assert broker.answered_elsewhere(SID, ReplyKind.OPTION) is not None, "a late option: superseded"
            assert broker.answered_elsewhere(SID, ReplyKind.PROMPT) is None, "a new prompt is just a prompt"
            assert broker.answered_elsewhere(SID, ReplyKind.ALLOW) is None
        finally:
            await srv.stop()

    qloop.run_until_complete(run())


def test_codex_waits_for_deck_tray_only_when_asked_and_only_without_a_pane(runtime: Path, qloop: Any) -> None:
    """Codex 0.169/0.171 shows its approval only after the hook returns. Off (the default): the
    hook returns at once. On: a session with no pane is held for ``codex_hold_s`` and then let
    go with no decision; a session in a tmux pane is not held (deck-tray types there)."""
    srv, broker, reg = serve(runtime)
    codex = {**PAYLOAD, "permission_mode": "default", "model": "gpt-fake", "tool_input": {"command": "ls"}}

    async def run() -> None:
        srv.start()
        try:
            reg.apply([session(SessionStatus.WAITING_PERMISSION, AgentKind.CODEX)])
            t0 = time.monotonic()
            out, _ = await asyncio.wait_for((await forwarder(runtime, codex, "codex")).communicate(), 10)
            assert out == b"" and broker.held(SID) is None
            off_s = time.monotonic() - t0

            broker.codex_hold_s = 1.5
            t0 = time.monotonic()
            proc = await forwarder(runtime, codex, "codex")
            await until(lambda: broker.held(SID))
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            held_s = time.monotonic() - t0
            assert out == b"", "no decision: Codex asks in its terminal"
            assert held_s >= 1.5 * 0.95 and held_s > off_s, (held_s, off_s)

            proc = await forwarder(runtime, codex, "codex")
            await until(lambda: broker.held(SID))
            report = broker.decide(session(SessionStatus.WAITING_PERMISSION, AgentKind.CODEX),
                                   Reply(ReplyKind.DENY, "no"))
            assert report is not None and report.state is DeliveryState.SUBMITTED
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            assert json.loads(out)["hookSpecificOutput"]["decision"] == {"behavior": "deny", "message": "no"}

            pane = PaneRef("tmux", "%1", "/tmp/tmux-sock")
            reg.apply([session(SessionStatus.WAITING_PERMISSION, AgentKind.CODEX, pane)])
            out, _ = await asyncio.wait_for((await forwarder(runtime, codex, "codex")).communicate(), 10)
            assert out == b"" and broker.held(SID) is None, "in a pane deck-tray types the answer instead"
        finally:
            await srv.stop()

    qloop.run_until_complete(run())
