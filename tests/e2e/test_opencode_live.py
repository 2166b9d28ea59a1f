"""deck-tray against a real ``opencode serve`` 1.18.33 and the loopback fake model.

Each test drives real turns through the server and checks what a user of deck-tray sees
(session state, reason, buttons) and that answers really reach opencode (the approved
command ran, the question got its option, the rejection carried its feedback).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QPushButton

from deck_tray.app import DeckTrayApp
from deck_tray.core.model import MessageRole, Session, SessionStatus
from deck_tray.core.opencode import ServerPhase
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.scan import Scanner
from deck_tray.services.opencode_source import BACKOFF_S, OpencodeSource
from deck_tray.services.panes import Tmux
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.secrets import Credentials

from .harness import until
from .opencode_harness import FakeOpenAIModel, OpencodeServe, find_opencode

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(find_opencode() is None, reason="opencode not found (run ./scripts/test.sh)"),
]


@pytest.fixture
def model(tmp_path: Path) -> Iterator[FakeOpenAIModel]:
    with FakeOpenAIModel(tmp_path / "model") as m:
        yield m


@pytest.fixture
def server(tmp_path: Path, model: FakeOpenAIModel) -> Iterator[OpencodeServe]:
    with OpencodeServe(tmp_path / "oc", model.base_url) as oc:
        yield oc


def _status(registry: SessionRegistry, sid: str) -> SessionStatus | None:
    s = registry.get(sid)
    return s.status if s else None


class Live:
    """A registry fed by an :class:`OpencodeSource` following one or more servers."""

    def __init__(self, urls: list[str], env: dict[str, str] | None = None, heartbeat: float = 30.0,
                 backoff: tuple[float, float] = BACKOFF_S) -> None:
        self.registry = SessionRegistry()
        self.source = OpencodeSource(self.registry, Credentials(env or {}), urls=urls, discover=False,
                                     heartbeat_timeout=heartbeat, backoff=backoff)
        self.asked: list[Session] = []
        self.registry.attention_needed.connect(self.asked.append)

    def get(self, sid: str) -> Session | None:
        return self.registry.get(sid)

    def state(self, sid: str) -> SessionStatus | None:
        return _status(self.registry, sid)

    async def wait_state(self, sid: str, status: SessionStatus, timeout: float = 60) -> Session:
        s: Session = await until(lambda: (x := self.get(sid)) is not None and x.status is status and x,
                                 timeout, f"{sid} to be {status.value} (is {self.state(sid)})")
        return s


def test_plain_turn_ends_idle_and_text_is_shown_once(server: OpencodeServe, qloop: asyncio.AbstractEventLoop) -> None:
    live = Live([server.url])

    async def scenario() -> None:
        live.source.start()
        try:
            await until(lambda: live.source.servers()[0].phase is ServerPhase.CONNECTED, 30, "the stream")
            sid = server.create_session("plain")
            server.prompt_async(sid, "Say hello")
            await live.wait_state(sid, SessionStatus.BUSY, 60)
            s = await live.wait_state(sid, SessionStatus.IDLE, 60)
            assert s.reason.startswith("turn finished — opencode server")
            texts = [m.text for m in s.messages if m.role is MessageRole.ASSISTANT]
            assert texts == ["Hello from the fake LLM."], texts  # deltas + updated shown once
            assert [m.text for m in s.messages if m.role is MessageRole.USER] == ["Say hello"]
            assert not live.asked, "a finished turn is not a request"
        finally:
            await live.source.stop()

    qloop.run_until_complete(scenario())


def test_permission_wait_allow_and_reject_with_feedback(server: OpencodeServe,
                                                        qloop: asyncio.AbstractEventLoop) -> None:
    live = Live([server.url])

    async def scenario() -> None:
        live.source.start()
        try:
            sid = server.create_session("perm")
            server.prompt_async(sid, "[[bash:echo allowed > allowed.txt]]")
            s = await live.wait_state(sid, SessionStatus.WAITING_PERMISSION)
            assert s.pending is not None and s.pending.tool == "bash"
            assert s.pending.summary == "echo allowed > allowed.txt"
            assert "permission request for bash `echo allowed > allowed.txt`" in s.reason
            assert [x.id for x in live.asked] == [sid]
            report = await live.source.answer(s, Reply(ReplyKind.ALLOW))
            assert report.delivered, report
            await live.wait_state(sid, SessionStatus.IDLE)
            assert (server.project / "allowed.txt").read_text().strip() == "allowed"

            server.prompt_async(sid, "[[bash:echo nope > rejected.txt]]")
            s = await live.wait_state(sid, SessionStatus.WAITING_PERMISSION)
            report = await live.source.answer(s, Reply(ReplyKind.DENY, "Do not write files, just say ok"))
            assert report.delivered, report
            s = await live.wait_state(sid, SessionStatus.IDLE)
            assert not (server.project / "rejected.txt").exists()
            tool = [m for m in s.messages if m.role is MessageRole.TOOL][-1]
            assert tool.state == "error" and "Do not write files, just say ok" in tool.text
            # With feedback the turn goes on: the model answered the rejection.
            assert "Tool result received" in [m for m in s.messages if m.role is MessageRole.ASSISTANT][-1].text
            assert len(live.asked) == 2, "one announcement per request"
        finally:
            await live.source.stop()

    qloop.run_until_complete(scenario())


def test_question_and_subagent_permission(server: OpencodeServe, qloop: asyncio.AbstractEventLoop) -> None:
    live = Live([server.url])

    async def scenario() -> None:
        live.source.start()
        try:
            sid = server.create_session("question")
            server.prompt_async(sid, "[[question]]")
            s = await live.wait_state(sid, SessionStatus.WAITING_QUESTION)
            assert s.pending is not None and s.pending.options == ("Red", "Blue")
            assert s.pending.question == "Which colour should I use?"
            refused = await live.source.answer(s, Reply(ReplyKind.OPTION, "Green"))
            assert not refused.delivered and "no option 'Green'" in refused.detail
            report = await live.source.answer(s, Reply(ReplyKind.OPTION, "Blue"))
            assert report.delivered, report
            s = await live.wait_state(sid, SessionStatus.IDLE)
            assert any("Blue" in m.text for m in s.messages if m.role is MessageRole.TOOL)

            parent = server.create_session("with a sub-agent")
            server.prompt_async(parent, "[[task:[[bash:echo sub > sub.txt]]]]")
            s = await live.wait_state(parent, SessionStatus.WAITING_PERMISSION, 90)
            assert s.pending is not None and s.pending.asker, "the tab must say which sub-agent asks"
            assert "sub-agent" in s.reason and "subagent" in s.pending.asker
            children = [x for x in live.registry.sessions() if x.id not in (sid, parent)]
            assert not children, "sub-agent sessions are shown in their parent's tab, not listed"
            report = await live.source.answer(s, Reply(ReplyKind.ALLOW))
            assert report.delivered, report
            await live.wait_state(parent, SessionStatus.IDLE, 90)
            assert (server.project / "sub.txt").exists()
        finally:
            await live.source.stop()

    qloop.run_until_complete(scenario())


def test_handoff_by_hand_and_automatic(server: OpencodeServe, qloop: asyncio.AbstractEventLoop) -> None:
    live = Live([server.url])
    handed: list[tuple[str, str, bool]] = []
    live.source.handed_off.connect(lambda a, b, auto: handed.append((a, b, auto)))

    async def scenario() -> None:
        live.source.start()
        try:
            sid = server.create_session("Ship the release")
            server.prompt_async(sid, "[[todo]]")
            # The new session is idle before the prompt's first event arrives: wait for the turn's end.
            s = await until(lambda: (x := live.get(sid)) and x.status is SessionStatus.IDLE and any(
                m.role is MessageRole.ASSISTANT for m in x.messages) and x, 90, "the first turn to end")
            await until(lambda: server.get(f"/session/{sid}/todo"), 30, "the todo list")
            new_id = await live.source.handoff(s, "Tag v2.0 and publish it")
            info = server.get(f"/session/{new_id}")
            assert info["title"] == f"Handoff: {s.display_title}"
            await until(lambda: live.get(new_id), 30, "the new session to be listed")
            msgs = await until(lambda: server.get(f"/session/{new_id}/message"), 30, "the hand-off prompt")
            prompt = next(p["text"] for m in msgs if m["info"]["role"] == "user" for p in m["parts"]
                          if p["type"] == "text")
            assert "Tag v2.0 and publish it" in prompt and sid in prompt
            assert "1/3 done" in prompt, prompt
            assert len(prompt) < 1500, "the hand-off prompt is meant to be short"

            # Automatic: any context use is over a 0.001 % threshold; once per session, and only
            # for a turn that ends while deck-tray watches (idle sessions found over it stay).
            await until(lambda: (x := live.get(new_id)) and x.status is SessionStatus.IDLE and any(
                m.role is MessageRole.ASSISTANT for m in x.messages), 60, "the hand-off session's first turn")
            live.source.auto_handoff_percent = 0.001
            other = server.create_session("Long session")
            server.prompt_async(other, "Say hello")
            await until(lambda: any(h[0] == other for h in handed), 60, "the automatic hand-off")
            assert [h for h in handed if h[0] == other][0][2] is True
            auto_new = [h for h in handed if h[0] == other][0][1]
            assert server.get(f"/session/{auto_new}")["title"] == "Handoff: " + live.get(other).display_title
            live.source.auto_handoff_percent = None
            assert not [h for h in handed if h[0] in (sid, new_id)], "idle sessions must not be handed off"
        finally:
            await live.source.stop()

    qloop.run_until_complete(scenario())


def test_password_server_asks_once_and_connects(tmp_path: Path, model: FakeOpenAIModel,
                                               qloop: asyncio.AbstractEventLoop) -> None:
    with OpencodeServe(tmp_path / "locked", model.base_url, password="s3cret-pw") as locked:
        live = Live([locked.url])
        asked: list[str] = []
        live.source.password_needed.connect(asked.append)

        async def scenario() -> None:
            live.source.start()
            try:
                await until(lambda: asked, 30, "the password request")
                assert live.source.servers()[0].phase is ServerPhase.AUTH_REQUIRED
                assert "password" in live.source.servers()[0].detail
                detail = (await live.source.set_password(locked.url, "s3cret-pw")).detail
                assert "keyring" in detail.lower()  # where it went (this machine has no keyring backend)
                await until(lambda: live.source.servers()[0].phase is ServerPhase.CONNECTED, 30, "connected")
                sid = locked.create_session("locked")
                locked.prompt_async(sid, "[[bash:echo locked > locked.txt]]")
                s = await live.wait_state(sid, SessionStatus.WAITING_PERMISSION)
                assert (await live.source.answer(s, Reply(ReplyKind.ALLOW))).delivered
                await until((locked.project / "locked.txt").exists, 60, "the command to run")
                assert asked == [locked.url], "asked once"
            finally:
                await live.source.stop()

        qloop.run_until_complete(scenario())
        log = Path(locked.log_path).read_text(errors="replace")
        assert "s3cret-pw" not in log


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deck_tray", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_cli_two_servers_one_with_password(tmp_path: Path, model: FakeOpenAIModel) -> None:
    with (
        OpencodeServe(tmp_path / "open", model.base_url) as open_srv,
        OpencodeServe(tmp_path / "locked", model.base_url, password="pw-2") as locked,
    ):
        a = open_srv.create_session("needs permission")
        open_srv.prompt_async(a, "[[bash:echo from-cli > cli.txt]]")
        b = locked.create_session("asks a question")
        locked.prompt_async(b, "[[question]]")
        env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
               "XDG_DATA_HOME": str(tmp_path / "data"), "CLAUDE_CONFIG_DIR": str(tmp_path / "no-claude"),
               "CODEX_HOME": str(tmp_path / "no-codex"), "TMUX_TMPDIR": str(tmp_path / "no-tmux"),
               "OPENCODE_SERVER_PASSWORD": "pw-2", "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
        urls = ["--opencode-url", open_srv.url, "--opencode-url", locked.url]
        deadline = time.monotonic() + 90
        while True:
            out = _cli("sessions", "--json", *urls, env=env)
            assert out.returncode == 0, out.stderr
            rows = {r["id"]: r for r in json.loads(out.stdout)}
            if rows.get(a, {}).get("status") == "waiting_permission" and \
                    rows.get(b, {}).get("status") == "waiting_question":
                break
            assert time.monotonic() < deadline, f"states never showed: {rows}"
            time.sleep(0.5)
        assert rows[a]["server"] == open_srv.url and rows[b]["server"] == locked.url
        assert rows[a]["pending"]["summary"] == "echo from-cli > cli.txt"
        assert rows[b]["pending"]["options"] == ["Red", "Blue"]

        r = _cli("reply", a[:16], "--allow", *urls, env=env)
        assert r.returncode == 0 and r.stdout.strip() == "accepted", r.stderr
        r = _cli("reply", b, "--option", "Blue", *urls, env=env)
        assert r.returncode == 0 and r.stdout.strip() == "accepted", r.stderr
        deadline = time.monotonic() + 60
        while not (open_srv.project / "cli.txt").exists():
            assert time.monotonic() < deadline, "the allowed command never ran"
            time.sleep(0.2)
        r = _cli("reply", b, "--option", "Red", *urls, env=env)
        assert r.returncode == 3 and "nothing is pending" in r.stderr, (r.returncode, r.stderr)

        no_pw = {**env, "OPENCODE_SERVER_PASSWORD": ""}
        out = _cli("sessions", "--json", *urls, env=no_pw)
        assert out.returncode == 0
        assert f"opencode server {locked.url} needs a password" in out.stderr
        assert {r["id"] for r in json.loads(out.stdout)} >= {a}


@pytest.mark.gui
def test_window_answers_permission_and_question(tmp_path: Path, server: OpencodeServe, qtbot: Any,
                                                qloop: asyncio.AbstractEventLoop) -> None:
    app = DeckTrayApp(
        scanner=Scanner(tmp_path / "no-claude", tmp_path / "no-codex"), mux=Tmux(),
        settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
        notification_backends=[], opencode_urls=[server.url], discover_opencode=False,
        credentials=Credentials({}),
    )
    qtbot.addWidget(app.window)

    def button(tab: Any, text: str) -> QPushButton:
        return next(b for b in tab.request_box.findChildren(QPushButton) if b.text() == text and b.isEnabled())

    async def scenario() -> None:
        app.start()
        try:
            sid = server.create_session("from the window")
            server.prompt_async(sid, "[[bash:echo window > window.txt]]")
            await until(lambda: _status(app.registry, sid) is SessionStatus.WAITING_PERMISSION, 60, "waiting")
            tab = app.window.open_session(sid)
            assert tab is not None and tab.actions_row.isVisibleTo(app.window)
            assert "server " + server.url in tab.where.text()
            await until(lambda: button(tab, "Allow"), 5, "an enabled Allow button")
            button(tab, "Allow").click()
            await until((server.project / "window.txt").exists, 60, "the command to run")
            await until(lambda: "Delivered" in tab.delivery.text(), 30, "the delivery state")
            await until(lambda: _status(app.registry, sid) is SessionStatus.IDLE, 60, "idle")

            server.prompt_async(sid, "[[question]]")
            await until(lambda: _status(app.registry, sid) is SessionStatus.WAITING_QUESTION, 60, "question")
            await until(lambda: button(tab, "Red") and button(tab, "Dismiss"), 5, "option buttons")
            button(tab, "Red").click()
            await until(lambda: _status(app.registry, sid) is SessionStatus.IDLE, 60, "idle after the answer")
            s = app.registry.get(sid)
            assert s is not None and any("Red" in m.text for m in s.messages if m.role is MessageRole.TOOL)
        finally:
            await app.stop()

    qloop.run_until_complete(scenario())


def test_open_in_terminal_attaches_next_to_the_users_pane(tmp_path: Path, server: OpencodeServe,
                                                          qloop: asyncio.AbstractEventLoop,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from deck_tray.services.terminal_actions import open_session_in_terminal

    from .harness import TmuxServer

    sid = server.create_session("Attach me")
    server.prompt_async(sid, "Say hello")
    live = Live([server.url])
    binary = find_opencode() or ""

    async def scenario() -> None:
        live.source.start()
        try:
            s = await live.wait_state(sid, SessionStatus.IDLE, 60)
            monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path / "no-tmux"))
            report = await open_session_in_terminal(Tmux(), s, binary)
            assert not report.ok and "No tmux server is running" in report.detail
            assert "opencode-attach" in report.detail, "the user gets a command to run by hand"

            with TmuxServer() as tmux:
                monkeypatch.setenv("TMUX_TMPDIR", str(tmux.tmpdir))
                first = tmux.new_session("work", ["sleep", "300"], tmp_path, width=200, height=50)
                report = await open_session_in_terminal(Tmux(), s, binary)
                assert report.ok, report.detail
                assert "to the right of your pane work:0.0" in report.detail
                panes = tmux.run("list-panes", "-a", "-F", "#{pane_id}").split()
                new = next(p for p in panes if p != first)
                # The real opencode TUI shows the session's conversation.
                await until(lambda: "Hello from the fake LLM" in tmux.capture(new), 60, "the attached TUI")
                assert tmux.display(new, "#{pane_current_path}") == str(server.project)
        finally:
            await live.source.stop()

    qloop.run_until_complete(scenario())


#: Rounds of the kill-and-restart test: 6 in the suite (each ~5 s, most of it opencode starting
#: again; 20 were 100 s of CI's 20-minute budget), DECK_TRAY_FAULT_ROUNDS=20 for the full figure.
FAULT_ROUNDS = int(os.environ.get("DECK_TRAY_FAULT_ROUNDS", "6"))


def test_kill_and_restart_leaves_no_stale_waiting(server: OpencodeServe, qloop: asyncio.AbstractEventLoop,
                                                   figure: Any) -> None:
    """``kill -9`` of the server mid-turn, then a restart: deck-tray reconnects, resyncs and
    shows no waiting state the server no longer holds. Repeated :data:`FAULT_ROUNDS` times.

    The reconnect delay is capped at 1 s instead of 5 s (what is tested is the reconnect and the
    resync, not the backoff schedule; the unit tests pin that): 20 rounds took 85-101 s here, not 146-172 s."""
    live = Live([server.url], backoff=(0.2, 1.0))
    prompts = ["[[bash:echo r{n} > r{n}.txt]]", "[[question]]", "[[slow]]"]
    passed = 0

    async def scenario() -> None:
        nonlocal passed
        live.source.start()
        try:
            for n in range(FAULT_ROUNDS):
                await until(lambda: live.source.servers()[0].phase is ServerPhase.CONNECTED, 60, "connected")
                connects = live.source.watchers[server.url].connects
                sid = server.create_session(f"round {n}")
                server.prompt_async(sid, prompts[n % 3].format(n=n))
                want = (SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION, SessionStatus.BUSY)[n % 3]
                await live.wait_state(sid, want, 60)
                server.kill9()
                s = await until(lambda i=sid: (x := live.get(i)) and x.status is SessionStatus.UNKNOWN and x, 40,
                                "the session to show the server as unreachable")
                assert "not reachable" in s.reason and s.pending is None
                assert live.registry.waiting() == []
                # Restart off the loop, so deck-tray keeps trying to reconnect meanwhile.
                await asyncio.get_running_loop().run_in_executor(None, server.restart)
                await until(lambda c=connects: live.source.watchers[server.url].connects > c, 60, "the reconnect")
                s = await live.wait_state(sid, SessionStatus.IDLE, 30)
                assert s.pending is None and live.registry.waiting() == [], "stale waiting state after restart"
                passed += 1
        finally:
            await live.source.stop()

    qloop.run_until_complete(scenario())
    figure(f"opencode kill -9 + restart: {passed}/{FAULT_ROUNDS} rounds reconnected with no stale waiting state")
    assert passed == FAULT_ROUNDS


def test_cli_follows_the_opencode_settings_as_the_app_does(tmp_path: Path, server: OpencodeServe) -> None:
    """``deck-tray sessions`` without the app reads ``opencode/discover`` and ``opencode/urls``
    (issue #16 item 10): discovery off hides a running server that is not configured; a server in
    the settings is listed with discovery off."""
    from PySide6.QtCore import QSettings

    from deck_tray.core import settings as cfg
    from deck_tray.services.settings_store import SettingsStore

    sid = server.create_session("listed or not")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "CLAUDE_CONFIG_DIR": str(tmp_path / "no-claude"),
           "CODEX_HOME": str(tmp_path / "no-codex"), "TMUX_TMPDIR": str(tmp_path / "no-tmux"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run"), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    ini = tmp_path / "cfg" / "deck-tray" / "deck-tray.ini"
    ini.parent.mkdir(parents=True)

    def listed() -> set[str]:
        out = _cli("sessions", "--json", env=env)
        assert out.returncode == 0, out.stderr
        return {r["id"] for r in json.loads(out.stdout)}

    assert sid in listed(), "discovered by default"
    qs = QSettings(str(ini), QSettings.Format.IniFormat)
    store = SettingsStore(qs)
    store.set(cfg.OPENCODE_DISCOVER, False)
    qs.sync()
    assert sid not in listed(), "discovery is off in the settings"
    store.set(cfg.OPENCODE_URLS, (server.url,))
    qs.sync()
    assert sid in listed(), "a server from the settings"
