"""Sub-agent panes against a real ``opencode serve`` 1.18.33, the loopback fake model and a
private tmux server.

The parent session is attached in a tmux pane through ``deck-tray opencode-attach`` (as "Open
in terminal" does it); the prompt ``[[task:[[bash:…]]]]`` makes the fake model call the real
``task`` tool, so opencode creates a real child session, which then waits on a ``bash``
permission (it stays busy) until the test answers it through the API.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from deck_tray.core.launch import PANE_TAG
from deck_tray.core.opencode import ServerPhase
from deck_tray.core.subagent_panes import Layout, attach_target
from deck_tray.services.opencode_source import OpencodeSource
from deck_tray.services.panes import Tmux
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.secrets import Credentials
from deck_tray.services.subagent_panes import SubagentPanes

from .harness import TmuxServer, until
from .opencode_harness import FakeOpenAIModel, OpencodeServe, find_opencode

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(find_opencode() is None, reason="opencode not found (run ./scripts/test.sh)"),
]

GRACE_S = 2.0
TASK = "[[task:[[bash:echo sub{n} > sub{n}.txt]]]]"


@pytest.fixture
def model(tmp_path: Path) -> Iterator[FakeOpenAIModel]:
    with FakeOpenAIModel(tmp_path / "model") as m:
        yield m


@pytest.fixture
def server(tmp_path: Path, model: FakeOpenAIModel) -> Iterator[OpencodeServe]:
    with OpencodeServe(tmp_path / "oc", model.base_url) as oc:
        yield oc


@pytest.fixture
def tmux(server: OpencodeServe) -> Iterator[TmuxServer]:
    with TmuxServer() as t:
        yield t


class World:
    """The server, the private tmux with the parent attached in pane ``work:0.0``, deck-tray's
    source and the sub-agent pane service."""

    def __init__(self, server: OpencodeServe, tmux: TmuxServer, width: int = 200, **kw: Any) -> None:
        self.server = server
        self.tmux = tmux
        self.bin = find_opencode() or ""
        # Panes deck-tray opens get the tmux server's global environment: keep them in the scratch HOME.
        env = {k: server.env[k] for k in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
                                          "XDG_STATE_HOME", "OPENCODE_DISABLE_AUTOUPDATE")}
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
        self.parent = server.create_session("parent")
        # The user's own pane knows the password (its environment); tmux's global environment
        # does not, so deck-tray's panes get it only from deck-tray.
        secret = {"OPENCODE_SERVER_PASSWORD": server.password} if server.password else {}
        attach = [sys.executable, "-m", "deck_tray", "opencode-attach", server.url, self.parent, "--opencode-bin",
                  self.bin]
        if secret:  # not through tmux (-e would put it in the session's environment, which panes inherit)
            from deck_tray.services.launcher import env_file_dir, write_env_file

            full = {**os.environ, **env, **secret}
            attach = [sys.executable, "-m", "deck_tray", "launch", "--env-file",
                      write_env_file(full, env_file_dir(full)), "--cwd", str(server.project), "--", *attach]
        self.main = tmux.new_session("work", attach, server.project, env=env, width=width, height=50)
        for k, v in env.items():
            tmux.run("set-environment", "-g", k, v)
        self.registry = SessionRegistry()
        self.source = OpencodeSource(self.registry, Credentials(secret), urls=[server.url], discover=False)
        self.adapter = Tmux(env={"TMUX_TMPDIR": str(tmux.tmpdir)})
        self.opened: list[tuple[str, str, float]] = []
        self.closed: list[str] = []
        self.deferred: list[tuple[str, str]] = []
        self.panes = self.make_panes(**kw)

    def make_panes(self, **kw: Any) -> SubagentPanes:
        p = SubagentPanes(self.source, self.adapter, opencode_bin=self.bin, close_grace_s=GRACE_S,
                          retry_every_s=0.5, **kw)
        p.pane_opened.connect(lambda sid, ref: self.opened.append((sid, ref.pane_id, time.time())))
        p.pane_closed.connect(self.closed.append)
        p.spawn_deferred.connect(lambda sid, why: self.deferred.append((sid, why)))
        return p

    async def start(self) -> None:
        self.source.start()
        await until(lambda: self.source.servers()[0].phase is ServerPhase.CONNECTED, 60, "the event stream")
        await until(lambda: self.attached(self.main), 60, "the parent's opencode attach")
        self.panes.start()

    async def stop(self) -> None:
        await self.panes.stop()
        await self.source.stop()

    def attached(self, pane: str) -> Any:
        """The session the pane's process tree attaches to (psutil), or None."""
        try:
            root = psutil.Process(self.tmux.pane_pid(pane))
            procs = [root, *root.children(recursive=True)]
        except (psutil.Error, Exception):
            return None
        for p in procs:
            try:
                t = attach_target(p.cmdline())
            except psutil.Error:
                continue
            if t is not None:
                return t
        return None

    def state(self) -> Any:
        return self.source.watchers[self.server.url].state

    def children(self) -> list[str]:
        st = self.state()
        return [s for s, i in st.infos.items() if i.get("parentID") == self.parent]

    async def new_child(self, n: int, known: set[str]) -> str:
        self.server.prompt_async(self.parent, TASK.format(n=n))
        kids = await until(lambda: [c for c in self.children() if c not in known], 90, "the sub-agent session")
        return str(kids[0])

    async def permission_of(self, child: str) -> dict[str, Any]:
        def find() -> Any:
            perms = self.server.get("/permission", directory=str(self.server.project))
            return next((p for p in perms if p["sessionID"] == child), None)
        return dict(await until(find, 90, "the sub-agent's permission request"))

    async def finish(self, child: str) -> None:
        perm = await self.permission_of(child)
        self.server.post(f"/permission/{perm['id']}/reply", {"reply": "once"}, directory=str(self.server.project))
        await until(lambda: child not in self.state().status, 90, "the sub-agent to go idle")

    def tagged(self) -> dict[str, str]:
        """``{pane id: @deck-tray}`` of the panes that carry the tag."""
        out = self.tmux.run("list-panes", "-a", "-F", "#{pane_id} #{" + PANE_TAG + "}")
        return {a: b for a, _, b in (line.partition(" ") for line in out.splitlines()) if b}

    def geometry(self, pane: str) -> tuple[int, int, int, str]:
        w, left, top, win = self.tmux.display(pane, "#{pane_width} #{pane_left} #{pane_top} #{window_id}").split()
        return int(w), int(left), int(top), win


def test_subagent_pane_opens_beside_the_parent_and_closes_after_idle(
        server: OpencodeServe, tmux: TmuxServer, qloop: asyncio.AbstractEventLoop, figure: Any) -> None:
    world = World(server, tmux)
    latencies: list[float] = []
    shown: list[float] = []

    async def scenario() -> None:
        await world.start()
        known: set[str] = set()
        try:
            for n in range(3):
                child = await world.new_child(n, known)
                known.add(child)
                sid, pane, at = await until(lambda c=child: next((o for o in world.opened if o[0] == c), None),
                                            60, "the sub-agent's pane")
                created = world.state().infos[child]["time"]["created"] / 1000.0
                latencies.append(at - created)
                # Beside the parent, tagged, attached to the child through deck-tray's helper.
                assert world.tagged()[pane] == f"subagent:{child}"
                target = await until(lambda p=pane: world.attached(p), 30, "the pane's opencode attach")
                assert (target.url, target.session_id) == (server.url, child)
                mw, ml, mt, mwin = world.geometry(world.main)
                w, left, top, win = world.geometry(pane)
                assert win == mwin and left > ml + mw - 1 and top == mt, "to the right of the parent's pane"
                assert mw >= 100 and w >= 60, (mw, w)
                # The real TUI shows the child's permission request.
                await until(lambda p=pane, i=n: f"echo sub{i}" in tmux.capture(p), 60, "the child's TUI")
                shown.append(time.time() - created)
                assert world.panes.panes()[child].pane_id == pane

                await world.finish(child)
                idle_at = time.monotonic()
                assert tmux.has_pane(pane), "kept open for the grace period"
                await until(lambda c=child: c in world.closed, 30, "the pane to close")
                assert time.monotonic() - idle_at >= GRACE_S - 0.5
                assert not tmux.has_pane(pane) and pane not in world.tagged()
                await until(lambda: world.registry.get(world.parent) is not None
                            and world.registry.get(world.parent).status.value == "idle", 60, "the parent's turn")
            assert tmux.has_pane(world.main), "the user's pane is never touched"
        finally:
            await world.stop()

    qloop.run_until_complete(scenario())
    figure(f"sub-agent created → pane attached (verified): "
           f"{', '.join(f'{x:.2f}' for x in latencies)} s; median {statistics.median(latencies):.2f} s; "
           f"→ the TUI shows the child: median {statistics.median(shown):.2f} s")


def test_too_small_window_defers_until_enlarged_and_stop_closes_all(
        server: OpencodeServe, tmux: TmuxServer, qloop: asyncio.AbstractEventLoop) -> None:
    world = World(server, tmux, width=150, layout=Layout(main_min_cols=100, agent_min_cols=60))

    async def scenario() -> None:
        await world.start()
        try:
            child = await world.new_child(0, set())
            await until(lambda: any(d[0] == child for d in world.deferred), 60, "the spawn to be deferred")
            assert "150 columns wide" in world.deferred[0][1] and "needs 161" in world.deferred[0][1]
            assert world.panes.deferred() == [child] and world.panes.retrying
            assert not world.tagged() and not world.opened
            tmux.run("resize-window", "-t", "work", "-x", "230", "-y", "50")
            _, pane, _ = await until(lambda: next((o for o in world.opened if o[0] == child), None), 30,
                                     "the pane once the window is wide enough")
            assert world.panes.deferred() == [] and world.tagged() == {pane: f"subagent:{child}"}
            assert world.geometry(world.main)[0] >= 100
            # A second sub-agent of the same turn is not possible with the fake model; a second
            # turn's child stacks below — but the first child still waits, so stop now: stop()
            # closes every pane it opened while the child is still busy.
            await world.panes.stop()
            assert not world.tagged() and not tmux.has_pane(pane) and tmux.has_pane(world.main)
            assert child in world.closed
        finally:
            await world.stop()

    qloop.run_until_complete(scenario())


async def killed(panes: SubagentPanes) -> None:
    """Stop ``panes`` as a killed app would: with everything it knew forgotten, so nothing is closed."""
    panes._cache.clear()
    panes._busy.clear()
    panes._pending.clear()
    await panes.stop()


def test_restart_adopts_a_busy_childs_pane_and_closes_it_when_done(
        server: OpencodeServe, tmux: TmuxServer, qloop: asyncio.AbstractEventLoop) -> None:
    world = World(server, tmux)

    async def scenario() -> None:
        await world.start()
        try:
            child = await world.new_child(0, set())
            _, pane, _ = await until(lambda: next((o for o in world.opened if o[0] == child), None), 60, "the pane")
            # deck-tray is killed: what it knew is lost and nothing is closed.
            await killed(world.panes)
            assert tmux.has_pane(pane)
            world.opened.clear()
            world.panes = world.make_panes()
            world.panes.start()
            await until(lambda: world.opened, 30, "the adoption")
            assert world.opened[0][:2] == (child, pane) and world.tagged() == {pane: f"subagent:{child}"}
            await world.finish(child)
            await until(lambda: child in world.closed and not tmux.has_pane(pane), 30, "the adopted pane to close")

            # A pane left for a child that is no longer busy is cleaned up at start.
            child2 = await world.new_child(1, {child})
            _, pane2, _ = await until(lambda: next((o for o in world.opened if o[0] == child2), None), 60, "pane 2")
            await killed(world.panes)
            await world.finish(child2)
            world.panes = world.make_panes()
            world.panes.start()
            await until(lambda: not tmux.has_pane(pane2), 30, "the stale pane to be closed")
            assert not world.tagged()
        finally:
            await world.stop()

    qloop.run_until_complete(scenario())


def test_a_password_server_s_subagent_pane_gets_the_password_from_deck_tray(
        tmp_path: Path, model: FakeOpenAIModel, qloop: asyncio.AbstractEventLoop) -> None:
    """A server with a password deck-tray holds only in memory (no keyring): the sub-agent's pane
    gets it through deck-tray's private environment file (never an argv), so the attached TUI
    shows the child instead of a 401."""
    with OpencodeServe(tmp_path / "locked", model.base_url, password="s3cret-sub") as locked, TmuxServer() as tm:
        world = World(locked, tm)

        async def scenario() -> None:
            await world.start()
            try:
                child = await world.new_child(0, set())
                _sid, pane, _at = await until(lambda: next((o for o in world.opened if o[0] == child), None), 60,
                                              "the sub-agent's pane")
                await until(lambda: "echo sub0" in tm.capture(pane), 60, "the child's TUI, past the password")
                root = psutil.Process(tm.pane_pid(pane))
                for proc in [root, *root.children(recursive=True)]:
                    assert "s3cret-sub" not in " ".join(proc.cmdline())
                    assert proc.environ().get("OPENCODE_SERVER_PASSWORD") in (None, "s3cret-sub")
                await world.finish(child)
            finally:
                await world.stop()

        qloop.run_until_complete(scenario())
