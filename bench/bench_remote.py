"""Remote hosts (#18): detection latency over a real loopback ssh, and the cost of many hosts.

    python bench/bench_remote.py [--quick] [--changes 40] [--hosts 10] [--sessions 50] [--idle-seconds 30]

Needs root and ``/usr/sbin/sshd`` (the test host of ``tests/e2e/ssh_host.py``: a private sshd on
127.0.0.1, a second local user with deck-tray). On that user's side a synthetic ``~/.claude``
(``bench_detection.make_tree``: live status files naming this process, ~40 KB transcripts) is
watched by ``deck-tray serve --stdio`` run over ssh; on this side :class:`RemoteHost` objects feed
a registry on a qasync loop, as in the app.

Rows:

* **remote status file → signal p95**: a status-file rewrite over there (busy → waiting) to the
  local ``session_changed`` of ``lab:ID``, with 200 sessions there. Beside it the method of the
  peer that polls each remote's session list every 30 s (computed: half the interval on average,
  0.95 × 30 s at p95, plus one ``ssh … sessions --json`` measured here).
* **10 hosts × 50 sessions**: idle CPU of this process, its RSS growth from before the
  connections, and the idle CPU of one remote ``serve`` (the mean over the hosts), over
  ``--idle-seconds`` with nothing changing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_detection  # noqa: E402
import psutil  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402

from deck_tray.core import procs  # noqa: E402
from deck_tray.core.model import remote_id  # noqa: E402
from deck_tray.services.registry import SessionRegistry  # noqa: E402
from deck_tray.services.remote import HostConfig, HostState, RemoteHost  # noqa: E402

#: The peer's poll interval (seconds): what a 30 s poll of each remote's session list gives.
POLL_S = 30.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def give(host: Any, root: Path) -> None:
    """Hand the synthetic tree to the remote account (it reads and watches it as its own)."""
    for dirpath, _dirs, files in os.walk(root):
        shutil.chown(dirpath, host.user, host.user)
        for f in files:
            shutil.chown(os.path.join(dirpath, f), host.user, host.user)


async def until(cond: Any, timeout: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        got = cond()
        if got:
            return got
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{what} not within {timeout:.0f} s")


async def latency(host: Any, tree: list[tuple[str, Path, Path]], changes: int) -> list[float]:
    """Seconds from a status-file rewrite over there to the local ``session_changed``."""
    registry = SessionRegistry(announce_hold=0)
    remote = RemoteHost(HostConfig("lab", host.dest), registry, host.ssh_command)
    remote.start()
    try:
        remote.status_changed.connect(lambda st: log(f"lab: {st.state.value}: {st.detail}"))
        await until(lambda: remote.status.state is HostState.CONNECTED, 60, "the host to connect")
        ids = {remote_id("lab", sid) for sid, _s, _t in tree}
        await until(lambda: ids <= {s.id for s in registry.sessions()}, 60, "every remote session listed")
        me, start = os.getpid(), procs.proc_start(os.getpid()) or ""
        loop = asyncio.get_running_loop()
        waiter: dict[str, asyncio.Future[float]] = {}

        def changed(s: Any) -> None:
            fut = waiter.get(s.id)
            if fut is not None and not fut.done() and s.status.is_waiting:
                fut.set_result(time.perf_counter())

        registry.session_changed.connect(changed)
        out = []
        for k in range(changes):
            sid, spath, _t = tree[k % len(tree)]
            fut = waiter[remote_id("lab", sid)] = loop.create_future()
            t0 = time.perf_counter()
            bench_detection.write_status(spath, me, start, sid, f"/home/dev/work/project-{k % len(tree)}", "waiting")
            out.append(await asyncio.wait_for(fut, 20) - t0)
            await asyncio.sleep(0.2)
            bench_detection.write_status(spath, me, start, sid, f"/home/dev/work/project-{k % len(tree)}", "busy")
            await asyncio.sleep(0.2)
        return out
    finally:
        await remote.stop()


def serve_cpu(host: Any) -> dict[int, float]:
    """CPU seconds so far of each ``deck-tray serve`` the remote account runs, by pid."""
    out = {}
    for p in psutil.process_iter(["uids", "cmdline"]):
        try:
            if p.info["uids"] and p.info["uids"].real == host.uid and "serve" in (p.info["cmdline"] or []) \
                    and "--stdio" in (p.info["cmdline"] or []):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


async def scale(host: Any, hosts: int, sessions: int, idle_s: float) -> dict[str, float]:
    """``hosts`` connections (each its own ssh, no shared connection) to a remote with ``sessions``."""
    registry = SessionRegistry(announce_hold=0)
    base_rss = rss_mb()
    remotes = [RemoteHost(HostConfig(f"h{i}", host.dest), registry, host.ssh_command) for i in range(hosts)]
    for r in remotes:
        r.start()
    try:
        await until(lambda: all(r.status.state is HostState.CONNECTED for r in remotes), 120, "every host connected")
        await until(lambda: len(registry.sessions()) >= hosts * sessions, 120, "every session listed")
        await asyncio.sleep(3.0)  # the first scans' echoes settle
        s0 = serve_cpu(host)
        rss_connected = rss_mb()
        idle = await bench_detection.idle_cpu(idle_s)
        s1 = serve_cpu(host)
        per_serve = [(s1[p] - s0[p]) / idle_s * 100 for p in s1 if p in s0]
        return {"idle": idle, "rss_growth": rss_connected - base_rss,
                "serve_idle": sum(per_serve) / len(per_serve) if per_serve else float("nan"),
                "serves": len(per_serve), "listed": len(registry.sessions())}
    finally:
        await asyncio.gather(*(r.stop() for r in remotes))


def naive_poll(host: Any) -> float:
    """One ``ssh HOST deck-tray sessions --json`` (what a poller pays each round), seconds."""
    t0 = time.perf_counter()
    subprocess.run([*host.ssh_command, host.dest, "deck-tray", "sessions", "--json"], capture_output=True,
                   timeout=120, check=False)
    return time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every row; returns the figures (seconds, %, MB)."""
    from tests.e2e.ssh_host import SshHost

    app = QCoreApplication.instance() or QCoreApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    out: dict[str, Any] = {}
    with SshHost() as host:
        claude = host.home / ".claude"
        log(f"200 sessions on the remote account; {args.changes} status changes")
        tree = bench_detection.make_tree(claude, 200)
        give(host, claude)
        with loop:
            out["latency"] = loop.run_until_complete(latency(host, tree, args.changes))
            out["poll_call"] = naive_poll(host)
            shutil.rmtree(claude)
            log(f"{args.hosts} hosts × {args.sessions} sessions; idle {args.idle_seconds:.0f} s")
            bench_detection.make_tree(claude, args.sessions)
            give(host, claude)
            out["scale"] = loop.run_until_complete(scale(host, args.hosts, args.sessions, args.idle_seconds))
    return out


def rows(r: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    """(metric, goal, deck-tray, naive) rows for the table."""
    pct = bench_detection.pct
    lat = r["latency"]
    sc = r["scale"]
    poll_p95 = (0.95 * POLL_S + r["poll_call"]) * 1000
    return [
        ("remote status file → signal p50 (ms)", "—", f"{pct(lat, 0.5) * 1000:.1f}",
         f"{(POLL_S / 2 + r['poll_call']) * 1000:.0f}"),
        ("remote status file → signal p95 (ms)", "≤ 100", f"{pct(lat, 0.95) * 1000:.1f}", f"{poll_p95:.0f}"),
        (f"{args.hosts} hosts × {args.sessions} sessions: idle CPU here (%)", "≤ 0.5", f"{sc['idle']:.2f}", "—"),
        (f"{args.hosts} hosts × {args.sessions} sessions: RSS growth here (MB)", "≤ 50",
         f"{sc['rss_growth']:.1f}", "—"),
        ("remote serve idle CPU (% , mean of the hosts)", "≤ 0.5", f"{sc['serve_idle']:.2f}", "—"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer changes and a shorter idle window (~1 min)")
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    args = ap.parse_args()
    if args.quick:
        args.changes, args.idle_seconds = 16, 10.0
    r = run(args)
    print(f"deck-tray remote bench — loopback ssh, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"{len(r['latency'])} changes, {r['scale']['serves']} serves, {r['scale']['listed']} sessions listed")
    print(f"{'metric':<52} {'goal':>7} {'deck-tray':>10} {'30 s poll':>10}")
    for name, goal, ours, naive in rows(r, args):
        print(f"{name:<52} {goal:>7} {ours:>10} {naive:>10}")


if __name__ == "__main__":
    main()
