"""Detection latency and idle CPU with many sessions, beside a naive polling baseline.

    python bench/bench_detection.py [--sessions 200] [--changes 40] [--idle-seconds 30]

Builds a synthetic ``~/.claude`` with N transcripts (about 40 KB each) and N live status
files (all naming this process, so they count as live), runs the real Monitor →
SessionRegistry pipeline on a qasync loop, and measures:

* latency from a status-file rewrite (busy → waiting) to ``session_changed``;
* latency from a transcript append (a new prompt) to ``session_changed``;
* CPU used while nothing changes, in % of one core.

The naive baseline re-reads and parses every file every 3 s (what a simple poller does),
measured in the same run. Prints one table; goals from issue #2: p95 ≤ 50 ms, idle ≤ 0.2 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import qasync
from PySide6.QtCore import QCoreApplication

from deck_tray.core import procs
from deck_tray.core.claude import encode_cwd
from deck_tray.core.scan import Scanner
from deck_tray.services.monitor import Monitor
from deck_tray.services.panes import Tmux
from deck_tray.services.registry import SessionRegistry


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_tree(root: Path, n: int) -> list[tuple[str, Path, Path]]:
    """N sessions: (session id, status file, transcript)."""
    me, start = os.getpid(), procs.proc_start(os.getpid()) or ""
    out = []
    filler = "lorem ipsum dolor sit amet " * 40
    for i in range(n):
        sid = f"00000000-0000-4000-8000-{i:012d}"
        cwd = f"/home/dev/work/project-{i}"
        tdir = root / "projects" / encode_cwd(cwd)
        tdir.mkdir(parents=True, exist_ok=True)
        tpath = tdir / f"{sid}.jsonl"
        with tpath.open("w") as fh:
            for j in range(30):
                fh.write(json.dumps({"type": "user", "sessionId": sid, "cwd": cwd, "uuid": f"u{j}",
                                     "timestamp": "2026-11-22T01:00:00.000Z",
                                     "message": {"role": "user", "content": f"prompt {j} {filler}"}}) + "\n")
                fh.write(json.dumps({"type": "assistant", "sessionId": sid, "cwd": cwd,
                                     "timestamp": "2026-11-22T01:00:01.000Z",
                                     "message": {"id": f"m{j}", "role": "assistant", "stop_reason": "end_turn",
                                                 "content": [{"type": "text", "text": filler}]}}) + "\n")
        spath = root / "sessions" / f"{100000 + i}.json"
        spath.parent.mkdir(parents=True, exist_ok=True)
        write_status(spath, me, start, sid, cwd, "busy")
        out.append((sid, spath, tpath))
    return out


def write_status(path: Path, pid: int, start: str, sid: str, cwd: str, status: str) -> None:
    tmp = path.with_suffix(".tmp")
    now_ms = int(time.time() * 1000)
    tmp.write_text(json.dumps({"pid": pid, "sessionId": sid, "cwd": cwd, "procStart": start, "status": status,
                               "updatedAt": now_ms, "statusUpdatedAt": now_ms,
                               **({"waitingFor": "permission prompt"} if status == "waiting" else {})}))
    os.replace(tmp, path)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def start_monitor(root: Path, tree: list[tuple[str, Path, Path]],
                        monitor: Monitor | None = None) -> tuple[Monitor, SessionRegistry]:
    """A started Monitor over ``root`` (or ``monitor``) whose registry lists every session of ``tree``."""
    if monitor is None:
        scanner = Scanner(root, root / "no-codex")
        monitor = Monitor(scanner, Tmux(env={"TMUX_TMPDIR": str(root / "no-tmux")}), SessionRegistry())
    registry = monitor.registry
    monitor.start()
    await monitor.refresh_now()
    ids = {sid for sid, _s, _t in tree}
    while not ids <= {s.id for s in registry.sessions()}:
        await asyncio.sleep(0.05)
    return monitor, registry


async def change_latency(registry: SessionRegistry, tree: list[tuple[str, Path, Path]],
                         changes: int) -> tuple[list[float], list[float]]:
    """Seconds from a status-file rewrite / a transcript append to ``session_changed``."""
    me, start = os.getpid(), procs.proc_start(os.getpid()) or ""
    waiter: dict[str, asyncio.Future[float]] = {}

    def on_changed(s: object) -> None:
        fut = waiter.get(getattr(s, "id", ""))
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    registry.session_changed.connect(on_changed)
    loop = asyncio.get_running_loop()
    status_lat: list[float] = []
    transcript_lat: list[float] = []
    try:
        for k in range(changes):
            sid, spath, tpath = tree[k % len(tree)]
            cwd = f"/home/dev/work/project-{k % len(tree)}"
            fut = waiter[sid] = loop.create_future()
            t0 = time.perf_counter()
            if k % 2 == 0:
                write_status(spath, me, start, sid, cwd, "waiting")
                status_lat.append(await asyncio.wait_for(fut, 10) - t0)
            else:
                with tpath.open("a") as fh:
                    fh.write(json.dumps({"type": "user", "sessionId": sid, "cwd": cwd, "uuid": f"new{k}",
                                         "timestamp": "2026-11-22T02:00:00.000Z",
                                         "message": {"role": "user", "content": f"new prompt {k}"}}) + "\n")
                transcript_lat.append(await asyncio.wait_for(fut, 10) - t0)
            await asyncio.sleep(0.15)
    finally:
        registry.session_changed.disconnect(on_changed)
    return status_lat, transcript_lat


async def settle(tree: list[tuple[str, Path, Path]]) -> None:
    """Reset the status files to a steady state and let the monitor take it in."""
    me, start = os.getpid(), procs.proc_start(os.getpid()) or ""
    for sid, spath, _t in tree:
        if spath.exists():
            write_status(spath, me, start, sid, "/x", "idle")
    await asyncio.sleep(2.0)


async def idle_cpu(seconds: float) -> float:
    """CPU this process uses while the loop idles for ``seconds``, in % of one core."""
    c0, w0 = cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (cpu_seconds() - c0) / (time.perf_counter() - w0) * 100


async def measure_monitor(root: Path, tree: list[tuple[str, Path, Path]], changes: int,
                          idle_s: float) -> dict[str, float]:
    monitor, registry = await start_monitor(root, tree)
    status_lat, transcript_lat = await change_latency(registry, tree, changes)
    # Reset status files to a steady state, then measure idle CPU.
    await settle(tree)
    idle = await idle_cpu(idle_s)
    await monitor.stop()
    return {
        "status_p50": pct(status_lat, 0.5) * 1000, "status_p95": pct(status_lat, 0.95) * 1000,
        "transcript_p50": pct(transcript_lat, 0.5) * 1000, "transcript_p95": pct(transcript_lat, 0.95) * 1000,
        "idle_cpu": idle,
    }


def measure_naive(tree: list[tuple[str, Path, Path]], idle_s: float,
                  extra: Callable[[], None] | None = None) -> dict[str, float]:
    """Full re-read of every file every 3 s: latency ≈ half the interval + one full read.

    ``extra`` runs in every cycle too (more naive polling, e.g. of opencode servers).
    """
    def full_read() -> None:
        for _sid, spath, tpath in tree:
            try:
                json.loads(spath.read_text())
            except (OSError, ValueError):
                pass
            with tpath.open() as fh:
                for line in fh:
                    json.loads(line)
        if extra is not None:
            extra()

    c0, w0 = cpu_seconds(), time.perf_counter()
    t_read = []
    end = time.perf_counter() + idle_s
    while time.perf_counter() < end:
        t = time.perf_counter()
        full_read()
        t_read.append(time.perf_counter() - t)
        time.sleep(max(0.0, 3.0 - (time.perf_counter() - t)))
    idle = (cpu_seconds() - c0) / (time.perf_counter() - w0) * 100
    read = statistics.mean(t_read)
    return {"p50": (1.5 + read) * 1000, "p95": (0.95 * 3.0 + read) * 1000, "idle_cpu": idle}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="deck-tray-bench-") as tmp:
        root = Path(tmp) / ".claude"
        tree = make_tree(root, args.sessions)
        app = QCoreApplication.instance() or QCoreApplication([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            ours = loop.run_until_complete(measure_monitor(root, tree, args.changes, args.idle_seconds))
        naive = measure_naive(tree, args.idle_seconds)
    rows = [
        ("status file → signal p50 (ms)", "—", ours["status_p50"], naive["p50"]),
        ("status file → signal p95 (ms)", "≤ 50", ours["status_p95"], naive["p95"]),
        ("transcript → signal p50 (ms)", "—", ours["transcript_p50"], naive["p50"]),
        ("transcript → signal p95 (ms)", "≤ 50", ours["transcript_p95"], naive["p95"]),
        ("idle CPU (% of one core)", "≤ 0.2", ours["idle_cpu"], naive["idle_cpu"]),
    ]
    print(f"deck-tray detection bench — {args.sessions} sessions, {args.changes} changes, "
          f"{args.idle_seconds:.0f} s idle window, {os.cpu_count()} cores")
    print(f"{'metric':<34} {'goal':>7} {'deck-tray':>11} {'naive 3 s poll':>15} {'ratio':>8}")
    for name, goal, val, base in rows:
        ratio = base / val if val > 0 else float("inf")
        print(f"{name:<34} {goal:>7} {val:>11.2f} {base:>15.2f} {ratio:>7.1f}x")


if __name__ == "__main__":
    main()
