"""Randomized wrong-target suite: between detection and send, the pane changes under us.

Each trial starts a stand-in agent (``cat`` writing what it receives to its own log) in a
real tmux pane, detects it the way the app does (``all_panes`` + ``pane_for_pid``), then
applies one random change before the dispatcher sends a unique line:

* ``none`` — nothing changes: the line must arrive.
* ``kill-pane`` — the pane is gone: refuse.
* ``respawn-shell`` — the agent exits and a shell takes its place in the same pane: refuse.
* ``respawn-other`` — another program takes the pane over (same pane id, new pid): refuse.
* ``agent-exits`` — the agent dies, the pane stays (remain-on-exit): refuse.
* ``move-pane`` — the pane moves to another window: still the agent, the line must arrive.
* ``swap-panes`` — the pane swaps places with a neighbour: the line must follow the agent.

A wrong-target send is the line showing up anywhere but the original agent's log. The
count is printed as ``wrong-target sends: 0/1000``. Trials run ten at a time.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.model import AgentKind, DeliveryState, Session, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.services.dispatcher import Dispatcher
from deck_tray.services.panes import Tmux, pane_for_pid

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

TRIALS = int(os.environ.get("DECK_TRAY_WRONG_TARGET_TRIALS", "1000"))
PARALLEL = 10
MUTATIONS = ("none", "kill-pane", "respawn-shell", "respawn-other", "agent-exits", "move-pane", "swap-panes")
MUST_ARRIVE = {"none", "move-pane", "swap-panes"}


class Server:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    async def tmux(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "tmux", "-S", self.socket, "-f", "/dev/null", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {err.decode().strip()}")
        return out.decode()


def agent_cmd(log: Path) -> str:
    # cooked mode: a line arrives in the log once Enter is pressed
    return f"exec cat > {log}"


async def wait_file(path: Path, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not path.exists():
        if loop.time() > end:
            raise AssertionError(f"{path} never appeared")
        await asyncio.sleep(0.02)


async def trial(srv: Server, tmp: Path, n: int, rng: random.Random, dispatcher: Dispatcher) -> tuple[str, bool, bool]:
    """Returns (mutation, wrong_target, refused_although_valid)."""
    mutation = rng.choice(MUTATIONS)
    logs = tmp / f"t{n}"
    logs.mkdir()
    mine = logs / "agent.log"
    out = await srv.tmux("new-window", "-d", "-P", "-F", "#{pane_id} #{pane_pid} #{window_id}",
                         "sh", "-c", agent_cmd(mine))
    pane_id, pid_s, window_id = out.split()
    await wait_file(mine)
    neighbour_log = logs / "neighbour.log"
    await srv.tmux("split-window", "-d", "-t", pane_id, "sh", "-c", agent_cmd(neighbour_log))
    await wait_file(neighbour_log)

    # Detection, as the app does it.
    panes = await dispatcher.mux.all_panes()
    found = pane_for_pid(int(pid_s), panes)
    assert found is not None and found.pane_id == pane_id, "detection failed"
    session = Session(id=f"s{n}", agent=AgentKind.CODEX, pid=int(pid_s), status=SessionStatus.IDLE, pane=found.ref())

    other_log = logs / "other.log"
    if mutation == "kill-pane":
        await srv.tmux("kill-pane", "-t", pane_id)
    elif mutation == "respawn-shell":
        await srv.tmux("respawn-pane", "-k", "-t", pane_id, "bash", "--norc", "--noprofile")
    elif mutation == "respawn-other":
        await srv.tmux("respawn-pane", "-k", "-t", pane_id, "sh", "-c", agent_cmd(other_log))
        await wait_file(other_log)
    elif mutation == "agent-exits":
        await srv.tmux("set-option", "-p", "-t", pane_id, "remain-on-exit", "on")
        os.kill(int(pid_s), 9)
        for _ in range(200):
            if (await srv.tmux("display", "-p", "-t", pane_id, "#{pane_dead}")).strip() == "1":
                break
            await asyncio.sleep(0.01)
    elif mutation == "move-pane":
        await srv.tmux("break-pane", "-d", "-s", pane_id)
    elif mutation == "swap-panes":
        await srv.tmux("swap-pane", "-d", "-s", pane_id, "-t", f"{window_id}.1")

    nonce = f"trial-{n}-{uuid.uuid4().hex[:8]}"
    report = await dispatcher.dispatch(session, Reply(ReplyKind.PROMPT, nonce))
    delivered = report.state in (DeliveryState.SUBMITTED, DeliveryState.ACCEPTED)
    if delivered and mutation in MUST_ARRIVE:
        for _ in range(200):  # the line arrives asynchronously
            if nonce in mine.read_text(errors="replace"):
                break
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)

    elsewhere = [p for p in (neighbour_log, other_log) if p.exists() and nonce in p.read_text(errors="replace")]
    if mutation != "kill-pane":
        try:
            screen = await srv.tmux("capture-pane", "-p", "-t", pane_id)
        except RuntimeError:
            screen = ""
        if mutation == "respawn-shell" and nonce in screen:
            elsewhere.append(Path("shell"))
    arrived = nonce in mine.read_text(errors="replace")
    wrong = bool(elsewhere) or (arrived and mutation not in MUST_ARRIVE)
    missed = mutation in MUST_ARRIVE and not arrived
    if mutation != "kill-pane":
        await srv.tmux("kill-window", "-t", window_id)
    return mutation, wrong, missed


def test_wrong_target_sends(tmp_path: Path, figure: Any) -> None:
    sock_dir = Path(os.environ["TMUX_TMPDIR"]) / f"tmux-{os.getuid()}"
    sock_dir.mkdir(mode=0o700, exist_ok=True)
    socket = str(sock_dir / "wrong-target")
    subprocess.run(["tmux", "-S", socket, "-f", "/dev/null", "new-session", "-d", "-s", "base", "sleep", "3600"],
                   check=True)
    srv = Server(socket)
    rng = random.Random(int(os.environ.get("DECK_TRAY_WRONG_TARGET_SEED", "20261122")))
    dispatcher = Dispatcher(Tmux(), accept_timeout=0.0)

    async def run_all() -> list[tuple[str, bool, bool]]:
        sem = asyncio.Semaphore(PARALLEL)

        async def one(n: int) -> tuple[str, bool, bool]:
            async with sem:
                return await trial(srv, tmp_path, n, rng, dispatcher)

        return await asyncio.gather(*(one(n) for n in range(TRIALS)))

    try:
        results = asyncio.run(run_all())
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)
    wrong = sum(1 for _m, w, _x in results if w)
    missed = [m for m, _w, x in results if x]
    by_kind = {m: sum(1 for r in results if r[0] == m) for m in MUTATIONS}
    figure(f"wrong-target sends: {wrong}/{len(results)}  (trials per change: {by_kind})")
    figure(f"valid targets refused or lost: {len(missed)}/{len(results)}")
    assert wrong == 0
    assert not missed, f"lines that should have arrived did not: {missed[:10]}"
