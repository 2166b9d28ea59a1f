"""Agents that tell their state in their tmux pane title (Gemini CLI 0.61.0, issue #19).

    python bench/bench_titles.py [--quick] [--json] [--panes 50] [--switch-panes 10] [--switches 40]
                                 [--idle-seconds 30] [--cold 6]

A private tmux server runs ``--panes`` stand-in Gemini panes (``bench/title_standin.py``: the
captured 0.61.0 screens under the ``◇  Ready`` / ``✦  Working…`` / ``✋  Action Required``
titles, padded to 80 characters, each drawn at once when a line arrives on its FIFO). The real
:class:`Monitor` + :class:`Scanner` watch them (``adapter_homes`` = a temporary Gemini home, a
``process_lister`` naming the panes' pids as ``gemini`` processes), as in
``tests/services/test_title_agents.py``.

Rows:

* **title → waiting p95**: ``--switch-panes`` of the panes work (``✦``, the others stay ready);
  one at a time, after a random pause, is switched to ``✋  Action Required`` with the shell
  confirmation on screen; latency = the FIFO write → the registry's ``session_changed`` with
  ``waiting_permission`` *and* the screen's three options; the pane then goes back to working.
  Beside it the naive method: ``capture-pane`` of every pane every 3 s (computed as for the
  other rows: 0.95 × 3 s + one sweep of ``capture-pane`` and parsing over all the panes, the sweep
  measured here). The monitor's own title pass is timed too (``Collector.refresh_titles``, its
  ``list-panes`` and ``capture-pane``), to say what the latency is made of.
* **idle CPU, 50 panes**: every pane ready; over ``--idle-seconds`` with the monitor running:
  this process (``RUSAGE_SELF``), the tmux clients it spawns (``RUSAGE_CHILDREN``) and the tmux
  server (``/proc/PID/stat``), in % of one core, measured twice; beside the naive (``list-panes``
  + ``capture-pane`` of every pane, parsed, every 3 s), also twice, interleaved.
* from idle (note only): a ready pane switched straight to ``✋`` with no file written, so only
  the slow tick (``SLOW_TICK_MS``) looks at the titles — the real CLI writes its transcript when a
  prompt is sent, and that file event makes the monitor look at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402

from deck_tray.core.agents.gemini import read_screen  # noqa: E402
from deck_tray.core.model import AgentKind, SessionStatus  # noqa: E402
from deck_tray.core.procs import AgentProcess  # noqa: E402
from deck_tray.core.scan import Scanner  # noqa: E402
from deck_tray.services import monitor as monitor_mod  # noqa: E402
from deck_tray.services.monitor import Monitor  # noqa: E402
from deck_tray.services.panes import Tmux  # noqa: E402
from deck_tray.services.registry import SessionRegistry  # noqa: E402

STANDIN = HERE / "title_standin.py"
OPTIONS = ("Allow once", "Allow for this session", "No, suggest changes")
#: The naive poll interval (seconds).
NAIVE_S = 3.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


@dataclass
class Pane:
    pane_id: str
    pid: int
    fifo: Path

    @property
    def sid(self) -> str:
        return f"gemini-{self.pid}"

    def send(self, state: str) -> None:
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, f"{state}\n".encode())
        finally:
            os.close(fd)


class World:
    """A private tmux server with ``n`` stand-in Gemini panes, and a Gemini home."""

    def __init__(self, tmp: Path, n: int) -> None:
        self.tmp = tmp
        self.tmux_dir = tmp / "tmux"
        sock_dir = self.tmux_dir / f"tmux-{os.getuid()}"
        sock_dir.mkdir(parents=True, mode=0o700)
        self.socket = str(sock_dir / "bench")
        self.home = tmp / ".gemini"
        self.home.mkdir()
        self.tmux("new-session", "-d", "-s", "keep", "-x", "160", "-y", "45", "sleep", "86400")
        self.server_pid = int(self.tmux("display-message", "-p", "#{pid}").strip())
        self.panes: list[Pane] = []
        started = time.time()
        for i in range(n):
            fifo = tmp / f"ctl-{i}"
            os.mkfifo(fifo)
            out = self.tmux("new-window", "-d", "-P", "-F", "#{pane_id} #{pane_pid}", sys.executable,
                            str(STANDIN), str(fifo))
            pane_id, pid = out.split()
            self.panes.append(Pane(pane_id, int(pid), fifo))
        self.procs = [AgentProcess(p.pid, "gemini", str(tmp), started_at=started, env=(("HOME", str(tmp)),))
                      for p in self.panes]

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args], check=True,
                              capture_output=True, text=True).stdout

    def mux(self) -> Tmux:
        return Tmux(env={"TMUX_TMPDIR": str(self.tmux_dir)})

    def monitor(self) -> Monitor:
        scanner = Scanner(self.tmp / ".claude", self.tmp / ".codex", process_lister=lambda: list(self.procs),
                          adapter_homes={AgentKind.GEMINI_CLI: self.home})
        return Monitor(scanner, self.mux(), SessionRegistry(announce_hold=0))

    def standin_cpu(self) -> float:
        total = 0.0
        for p in self.panes:
            try:
                t = psutil.Process(p.pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, check=False)


# -- CPU ---------------------------------------------------------------------------------------------------


def server_cpu(pid: int) -> float:
    """CPU seconds of the tmux server so far (``/proc/PID/stat`` utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_now(world: World) -> dict[str, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"self": me.ru_utime + me.ru_stime, "clients": kids.ru_utime + kids.ru_stime,
            "server": server_cpu(world.server_pid), "standins": world.standin_cpu(), "wall": time.perf_counter()}


def cpu_share(c0: dict[str, float], c1: dict[str, float]) -> dict[str, float]:
    """% of one core per part between two :func:`cpu_now` readings; ``total`` = self + clients + server."""
    wall = c1["wall"] - c0["wall"]
    out = {k: (c1[k] - c0[k]) / wall * 100 for k in ("self", "clients", "server", "standins")}
    out["total"] = out["self"] + out["clients"] + out["server"]
    out["seconds"] = wall
    return out


# -- the monitor ---------------------------------------------------------------------------------------------


async def until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{what} not within {timeout:.0f} s")


def status(monitor: Monitor, sid: str) -> SessionStatus | None:
    s = monitor.registry.get(sid)
    return s.status if s is not None and s.pane is not None else None


async def started(world: World, want: SessionStatus) -> Monitor:
    monitor = world.monitor()
    monitor.start()
    await until(lambda: all(status(monitor, p.sid) is want for p in world.panes), 60,
                f"all {len(world.panes)} panes listed {want.value}")
    return monitor


async def idle_ours(world: World, seconds: float) -> dict[str, float]:
    """CPU of the monitor with every pane ready, over ``seconds`` (after a settle)."""
    monitor = await started(world, SessionStatus.IDLE)
    try:
        await asyncio.sleep(6.0)  # past the first slow tick after the start
        c0 = cpu_now(world)
        await asyncio.sleep(seconds)
        return cpu_share(c0, cpu_now(world))
    finally:
        await monitor.stop()


def naive_sweep(world: World) -> int:
    """``list-panes`` once, then ``capture-pane -p`` of every pane, each parsed as Gemini's screen;
    returns how many panes wait."""
    panes = world.tmux("list-panes", "-a", "-F", "#{pane_id}").split()
    waiting = 0
    for pane in panes:
        screen = read_screen(world.tmux("capture-pane", "-p", "-t", pane))
        waiting += screen.options != ()
    return waiting


def idle_naive(world: World, seconds: float) -> dict[str, float]:
    """The naive poll (every 3 s) over ``seconds``; also the mean sweep time."""
    c0 = cpu_now(world)
    sweeps = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        naive_sweep(world)
        sweeps.append(time.perf_counter() - t)
        time.sleep(max(0.0, NAIVE_S - (time.perf_counter() - t)))
    out = cpu_share(c0, cpu_now(world))
    out["sweep"] = statistics.mean(sweeps)
    return out


class Timed:
    """Wraps the monitor's collector's ``refresh_titles`` and the multiplexer's ``all_panes`` /
    ``capture`` (on the instances, the code unchanged) to record when each ran and for how long."""

    def __init__(self, monitor: Monitor) -> None:
        self.passes: list[tuple[float, float, frozenset[str]]] = []  # (start, end, sessions rebuilt)
        self.listing: list[float] = []
        self.captures: list[float] = []
        collector = monitor._collector_now()
        mux = monitor.mux
        titles, all_panes, capture = collector.refresh_titles, mux.all_panes, mux.capture

        async def refresh_titles(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            delta = await titles(*a, **kw)
            self.passes.append((t0, time.perf_counter(), frozenset(s.id for s in delta.changed)))
            return delta

        async def timed_all_panes(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await all_panes(*a, **kw)
            finally:
                self.listing.append(time.perf_counter() - t0)

        async def timed_capture(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await capture(*a, **kw)
            finally:
                self.captures.append(time.perf_counter() - t0)

        collector.refresh_titles = refresh_titles  # type: ignore[method-assign]
        mux.all_panes = timed_all_panes  # type: ignore[method-assign]
        mux.capture = timed_capture  # type: ignore[method-assign]


async def switch_latency(world: World, n_panes: int, switches: int, cold: int) -> dict[str, Any]:
    """``switches`` working → permission switches over the first ``n_panes`` panes (the others
    ready); then ``cold`` ready → permission switches with nothing working."""
    monitor = await started(world, SessionStatus.IDLE)
    timed = Timed(monitor)
    loop = asyncio.get_running_loop()
    waiter: dict[str, asyncio.Future[float]] = {}
    first_waiting: dict[str, float] = {}

    def changed(s: Any) -> None:
        if s.status is not SessionStatus.WAITING_PERMISSION:
            return
        first_waiting.setdefault(s.id, time.perf_counter())
        fut = waiter.get(s.id)
        if fut is not None and not fut.done() and s.pending is not None and tuple(s.pending.options) == OPTIONS:
            fut.set_result(time.perf_counter())

    monitor.registry.session_changed.connect(changed)
    hot = world.panes[:n_panes]
    out: dict[str, Any] = {"latency": [], "title_seen": [], "phase": [], "pass": [], "after": [], "other": 0,
                           "cold": []}
    try:
        for p in hot:
            p.send("working")
        await until(lambda: all(status(monitor, p.sid) is SessionStatus.BUSY for p in hot), 30,
                    f"{len(hot)} panes busy")
        for k in range(switches):
            p = hot[k % len(hot)]
            await asyncio.sleep(random.uniform(0.3, 0.8))  # a random phase against the title tick
            fut = waiter[p.sid] = loop.create_future()
            first_waiting.pop(p.sid, None)
            t0 = time.perf_counter()
            p.send("permission")
            t1 = await asyncio.wait_for(fut, 30)
            out["latency"].append(t1 - t0)
            out["title_seen"].append(first_waiting.get(p.sid, t1) - t0)
            done = [(a, b) for a, b, ids in timed.passes if p.sid in ids and t0 <= b <= t1]
            if done:
                a, b = done[-1]
                out["phase"].append(max(0.0, a - t0))
                out["pass"].append(b - a)
                out["after"].append(t1 - b)
            else:
                out["other"] += 1
            p.send("working")
            await until(lambda p=p: status(monitor, p.sid) is SessionStatus.BUSY, 30, "busy again")
        for p in hot:
            p.send("ready")
        await until(lambda: all(status(monitor, p.sid) is SessionStatus.IDLE for p in hot), 30, "all ready")
        for k in range(cold):
            p = world.panes[k % len(world.panes)]
            await asyncio.sleep(random.uniform(0.5, monitor_mod.SLOW_TICK_MS / 1000))
            fut = waiter[p.sid] = loop.create_future()
            t0 = time.perf_counter()
            p.send("permission")
            out["cold"].append(await asyncio.wait_for(fut, 30) - t0)
            p.send("ready")
            await until(lambda p=p: status(monitor, p.sid) is SessionStatus.IDLE, 30, "ready again")
        out["listing"], out["captures"] = timed.listing, timed.captures
    finally:
        await monitor.stop()
    return out


# -- the run -------------------------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the rows need (seconds, % of a core)."""
    if shutil.which("tmux") is None:
        return {"missing": "tmux is not installed"}
    app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    res: dict[str, Any] = {"panes": args.panes, "switch_panes": args.switch_panes,
                           "title_tick_ms": monitor_mod.TITLE_TICK_MS, "slow_tick_ms": monitor_mod.SLOW_TICK_MS,
                           "idle_seconds": args.idle_seconds, "ours_idle": [], "naive_idle": []}
    tmp = Path(tempfile.mkdtemp(prefix="dt-titles-", dir="/tmp"))
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    world: World | None = None
    try:
        log(f"{args.panes} stand-in Gemini panes in a private tmux server")
        world = World(tmp, args.panes)
        for run in range(2):
            log(f"idle CPU, run {run + 1}: the monitor, {args.idle_seconds:.0f} s")
            res["ours_idle"].append(loop.run_until_complete(idle_ours(world, args.idle_seconds)))
            log(f"idle CPU, run {run + 1}: naive capture-pane of every pane every {NAIVE_S:.0f} s, "
                f"{args.idle_seconds:.0f} s")
            res["naive_idle"].append(idle_naive(world, args.idle_seconds))
        log(f"title → waiting: {args.switches} switches over {args.switch_panes} working panes, "
            f"{args.cold} from idle")
        res.update(loop.run_until_complete(switch_latency(world, args.switch_panes, args.switches, args.cold)))
        # The naive latency's sweep: capture every pane once (one waits, as when it catches one).
        world.panes[0].send("permission")
        time.sleep(0.3)
        sweeps = []
        for _ in range(5):
            t = time.perf_counter()
            assert naive_sweep(world) == 1
            sweeps.append(time.perf_counter() - t)
        res["naive_sweep"] = statistics.median(sweeps)
    finally:
        if world is not None:
            world.close()
        loop.close()
        asyncio.set_event_loop(None)
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def rows(res: dict[str, Any]) -> list[tuple[str, str, float | str | None, float | str | None, bool | None, str]]:
    """Table rows ``(metric, goal, deck-tray, naive, ok, fmt)``."""
    if "missing" in res:
        return [("Gemini title → waiting p95 (ms)", "≤ 500", res["missing"], None, None, "{:.0f}")]
    lat = [x * 1000 for x in res["latency"]]
    naive_p95 = (0.95 * NAIVE_S + res["naive_sweep"]) * 1000
    out: list[tuple[str, str, float | str | None, float | str | None, bool | None, str]] = [
        (f"Gemini title → waiting + options p95, {res['switch_panes']} working of {res['panes']} panes (ms)",
         "≤ 500", pct(lat, 0.95), naive_p95, pct(lat, 0.95) <= 500, "{:.0f}"),
    ]
    for i, (ours, naive) in enumerate(zip(res["ours_idle"], res["naive_idle"], strict=True)):
        out.append((f"idle CPU, {res['panes']} Gemini panes, run {i + 1} (% core, +tmux)", "≤ 0.5",
                    ours["total"], naive["total"], ours["total"] <= 0.5, "{:.2f}"))
    return out


def notes(res: dict[str, Any]) -> list[str]:
    if "missing" in res:
        return [f"titles: skipped ({res['missing']})"]
    ms = lambda xs, q: pct([x * 1000 for x in xs], q)  # noqa: E731
    lat = res["latency"]
    out = [
        f"titles: {len(lat)} switches ✦ Working → ✋ Action Required (FIFO write → session_changed with "
        f"waiting_permission and the 3 options), {res['switch_panes']} panes working of {res['panes']} in a "
        f"private tmux server, title tick {res['title_tick_ms']} ms: p50 {ms(lat, 0.5):.0f}, p95 "
        f"{ms(lat, 0.95):.0f}, max {ms(lat, 1.0):.0f} ms; waiting first seen (with or without options) p95 "
        f"{ms(res['title_seen'], 0.95):.0f} ms. Made of: the wait for the next title pass (tick phase) p50/p95 "
        f"{ms(res['phase'], 0.5):.0f}/{ms(res['phase'], 0.95):.0f} ms, the pass itself (list-panes, capture-pane, "
        f"build) {ms(res['pass'], 0.5):.0f}/{ms(res['pass'], 0.95):.0f} ms, pass end → signal "
        f"{ms(res['after'], 0.5):.1f}/{ms(res['after'], 0.95):.1f} ms ({res['other']} switches caught by another "
        f"path); list-panes over all panes p50/p95 {ms(res['listing'], 0.5):.0f}/{ms(res['listing'], 0.95):.0f} ms "
        f"({len(res['listing'])} calls), capture-pane {ms(res['captures'], 0.5):.0f}/"
        f"{ms(res['captures'], 0.95):.0f} ms ({len(res['captures'])}). naive = capture-pane of every pane every "
        f"{NAIVE_S:.0f} s: 0.95 × {NAIVE_S:.0f} s + one sweep of {res['panes']} panes "
        f"({res['naive_sweep'] * 1000:.0f} ms measured), p50 {(NAIVE_S / 2 + res['naive_sweep']) * 1000:.0f} ms.",
    ]
    if res["cold"]:
        out.append(f"titles from idle: {len(res['cold'])} ready panes switched straight to ✋ with no file written "
                   f"(nothing works, so no title tick: the {res['slow_tick_ms']} ms tick looks): p50 "
                   f"{ms(res['cold'], 0.5):.0f}, max {ms(res['cold'], 1.0):.0f} ms. The real Gemini CLI writes its "
                   "transcript when a prompt is sent; that file event lists the panes at once and starts the "
                   "title tick.")
    parts = []
    for name, runs in (("monitor", res["ours_idle"]), ("naive", res["naive_idle"])):
        parts.append(f"{name}: " + "; ".join(
            f"self {r['self']:.2f} + tmux clients {r['clients']:.2f} + server {r['server']:.2f} = {r['total']:.2f} "
            f"(stand-ins {r['standins']:.2f}, {r['seconds']:.0f} s)" for r in runs))
    out.append(f"titles idle CPU, {res['panes']} ready panes, % of one core, runs interleaved monitor/naive on a "
               f"shared machine — {' | '.join(parts)}. naive = list-panes + capture-pane of every pane, parsed, "
               f"every {NAIVE_S:.0f} s (sweep {statistics.mean(r['sweep'] for r in res['naive_idle']) * 1000:.0f} ms).")
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter idle windows, fewer switches")
    ap.add_argument("--json", action="store_true", help="print the measurements as one JSON line")
    ap.add_argument("--panes", type=int, default=50)
    ap.add_argument("--switch-panes", type=int, default=10, help="panes working during the latency run")
    ap.add_argument("--switches", type=int, default=40)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--cold", type=int, default=6, help="switches from idle (slow tick)")
    args = ap.parse_args(argv)
    if args.quick:
        args.switches, args.idle_seconds, args.cold = min(args.switches, 30), min(args.idle_seconds, 10.0), 3
    return args


def main() -> None:
    args = parse()
    res = measure(args)
    if args.json:
        print(json.dumps(res))
        return
    def show(v: float | str | None, fmt: str) -> str:
        return "—" if v is None else (v if isinstance(v, str) else fmt.format(v))

    for metric, goal, ours, naive, ok, fmt in rows(res):
        verdict = "—" if ok is None else ("ok" if ok else "MISS")
        print(f"{metric}  goal {goal}  deck-tray {show(ours, fmt)}  naive {show(naive, fmt)}  {verdict}")
    for n in notes(res):
        print(f"* {n}")


if __name__ == "__main__":
    main()
