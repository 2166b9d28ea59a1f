"""Smoke tests of the opencode e2e harness: a real ``opencode serve`` against the fake chat model.

Run: ``DECK_TRAY_AGENTS_DIR=/path/to/prefix python3 -m pytest tests/e2e/test_opencode_harness.py``
(``opencode`` is looked up in ``$DECK_TRAY_AGENTS_DIR/node_modules/.bin``, default
``<repo>/.agents``, then ``PATH``).  Each server start takes ~6 s on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from .harness import wait_until
from .opencode_harness import OPENCODE_VERSION, FakeOpenAIModel, OpencodeServe, find_opencode

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        find_opencode() is None,
        reason="opencode not found (install with ./scripts/test.sh or "
        f"`npm install --prefix .agents opencode-ai@{OPENCODE_VERSION}`, or set DECK_TRAY_AGENTS_DIR)",
    ),
]


@pytest.fixture
def model(tmp_path: Path) -> Iterator[FakeOpenAIModel]:
    """The fake chat-completions model, logging to ``tmp_path/fake``."""
    with FakeOpenAIModel(tmp_path / "fake") as fake:
        yield fake


def test_bash_permission_asked_then_approved(tmp_path: Path, model: FakeOpenAIModel) -> None:
    """``[[bash:...]]`` -> a pending permission; replying ``once`` runs the command and the session goes idle."""
    with OpencodeServe(tmp_path / "oc", model.v1_url) as oc:
        assert oc.get("/global/health") == {"healthy": True, "version": OPENCODE_VERSION}
        directory = str(oc.project)
        pid = oc.pid
        sid = oc.create_session("permission test")
        oc.prompt_async(sid, "[[bash:echo hi > out.txt]]")

        pending = wait_until(lambda: oc.get("/permission", directory=directory), 60, "a pending permission")
        assert len(pending) == 1
        perm = pending[0]
        assert (perm["sessionID"], perm["permission"]) == (sid, "bash")
        assert perm["metadata"]["command"] == "echo hi > out.txt"
        assert oc.get("/session/status", directory=directory) == {sid: {"type": "busy"}}  # busy while asking
        assert not (oc.project / "out.txt").exists()

        assert oc.post(f"/permission/{perm['id']}/reply", {"reply": "once"}, directory=directory) is True
        wait_until(
            lambda: (oc.project / "out.txt").is_file() and oc.get("/session/status", directory=directory) == {},
            60,
            "out.txt and an idle session",
        )
        assert (oc.project / "out.txt").read_text() == "hi\n"
        assert oc.get("/permission", directory=directory) == []
    assert not psutil.pid_exists(pid), "opencode serve survived stop()"


def test_password_server_needs_basic_auth(tmp_path: Path, model: FakeOpenAIModel) -> None:
    """With a password every route is Basic-auth protected (401 without, 200 with ``oc.auth``)."""
    with OpencodeServe(tmp_path / "oc", model.v1_url, password="s3cret", username="alice") as oc:
        assert oc.auth == ("alice", "s3cret")
        assert oc.env["OPENCODE_SERVER_PASSWORD"] == "s3cret"
        assert httpx.get(f"{oc.url}/global/health", timeout=10).status_code == 401
        assert httpx.get(f"{oc.url}/global/health", auth=("opencode", "s3cret"), timeout=10).status_code == 401
        assert httpx.get(f"{oc.url}/global/health", auth=oc.auth, timeout=10).status_code == 200
        assert oc.get("/global/health")["healthy"] is True  # the helpers send the credentials


def test_kill9_then_restart_keeps_sessions_and_todos(tmp_path: Path, model: FakeOpenAIModel) -> None:
    """After SIGKILL + restart on the same port the session and its todo list (``[[todo]]``) are still there."""
    with OpencodeServe(tmp_path / "oc", model.v1_url) as oc:
        port, old_pid = oc.port, oc.pid
        sid = oc.create_session("survives a crash")
        oc.prompt_async(sid, "[[todo]]")
        todos = wait_until(
            lambda: oc.get("/session/status") == {} and oc.get(f"/session/{sid}/todo"), 60, "the todo list"
        )
        assert [t["status"] for t in todos] == ["completed", "in_progress", "pending"]

        oc.kill9()
        assert not psutil.pid_exists(old_pid)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{oc.url}/global/health", timeout=2)

        oc.restart()
        assert (oc.port, oc.url) == (port, f"http://127.0.0.1:{port}")
        assert oc.pid != old_pid
        assert oc.get("/global/health")["healthy"] is True
        session = oc.get(f"/session/{sid}")
        assert (session["id"], session["title"]) == (sid, "survives a crash")
        assert oc.get(f"/session/{sid}/todo") == todos
