"""deck-tray's performance table: every target beside the naive method, measured in one run.

    python bench/table.py [--quick] [--keep] [--gb 2] [--files 5000] [--recent 100] [--big-mb 100]
    python bench/table.py --only hook [--quick]     # only the held-hook rows (about 1 min)
    python bench/table.py --only new [--quick]      # only the new-session and sub-agent pane rows (~1 min)
    python bench/table.py --only paging [--quick]   # only the older-messages rows (~40 s)
    python bench/table.py --only remote [--quick]   # only the remote-host rows (root, sshd; ~2 min)
    python bench/table.py --only titles [--quick]   # only the pane-title agent rows (~4 min; quick ~2 min)

Rows (goals are what a user would feel):

* detection latency, file → ``session_changed`` (status-file rewrite, transcript append) with
  200 live Claude sessions — ``bench_detection``; a Codex ``PermissionRequest`` hook run as Codex runs it → signal;
  opencode ``permission.asked`` over SSE → ``attention_needed`` — ``bench_opencode``;
* idle CPU of the whole app (monitor, registry, window, tray, notifier) with those 200
  sessions and 2 opencode event streams (fake servers sending heartbeats);
* cold start on a generated tree (``bench/corpus.py``: 5 000 Claude and Codex transcripts,
  2 GB, most files old, ``--recent`` touched in the last 20 h, one of 100 MB): a fresh
  process, from ``Popen`` to the first paint of the full session list, with the tree evicted
  from the page cache (cold) and again at once (warm), and the bytes it read;
* the 100 MB transcript's tab: click → first paint, longest GUI-thread stall (5 ms timer);
* RSS of the app with 50 tabs open (baseline: the same process with none);
* answer-to-pane latency in real tmux — ``bench_answer``;
* a permission answered through Claude Code's held ``PermissionRequest`` hook: what the waiting
  hook process adds after the decision, and decision → tool start with the real Claude Code beside
  the keystroke path into its tmux pane — ``bench_hook``;
* starting a session: ``deck-tray new`` with a real Claude Code → ready, → first prompt
  accepted, beside a fixed wait before typing — ``bench_new``; a real opencode sub-agent → its
  tmux pane attached — ``bench_subagent``;
* the history index on the same tree: full build (and the GUI thread meanwhile), incremental
  cost per appended KB, query p95 beside ``grep -r`` — ``bench_history``;
* older messages on demand: a tab on a 20 000-message transcript scrolled to its start, page by
  page (longest GUI stall, time), and a hit in its third message revealed, beside rendering the
  whole conversation at once — ``bench_paging``;
* remote hosts over a real loopback ssh: a status file rewritten there → the local signal with 200
  sessions there, beside a 30 s poll; 10 hosts × 50 sessions: idle CPU and RSS growth here, idle
  CPU of a remote ``serve`` — ``bench_remote`` (needs root and sshd; skipped otherwise);
* agents whose pane title tells their state (Gemini CLI 0.61.0 stand-ins in a private tmux): a
  working pane's title switched to ``✋  Action Required`` → ``waiting_permission`` with the screen's
  options, p95, beside ``capture-pane`` of every pane every 3 s; idle CPU with 50 ready panes (this
  process + the tmux clients it spawns + the tmux server), twice — ``bench_titles`` (run as a child
  process, so its CPU figures are its own).

Naive methods: a full re-read of every file every 3 s (detection, idle CPU), ``GET
/permission`` every 3 s (SSE), reading and parsing every transcript in full (cold start, the
tab), ``tmux send-keys`` text, sleep 0.3, Enter (answers), a hook polling a decision file every
0.5 s (held hooks; decision → tool start stands beside deck-tray's own keystroke path instead),
``list-panes`` + ``capture-pane`` of every pane every 3 s (pane-title agents).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_answer  # noqa: E402
import bench_detection  # noqa: E402
import bench_history  # noqa: E402
import bench_hook  # noqa: E402
import bench_new  # noqa: E402
import bench_opencode  # noqa: E402
import bench_paging  # noqa: E402
import bench_remote  # noqa: E402
import bench_subagent  # noqa: E402
import bench_titles  # noqa: E402
import corpus  # noqa: E402
import httpx  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from deck_tray.app import DeckTrayApp  # noqa: E402
from deck_tray.commands.run import settle_heap  # noqa: E402
from deck_tray.core.scan import TAIL_BYTES, Scanner  # noqa: E402
from deck_tray.services.panes import Tmux  # noqa: E402
from deck_tray.services.secrets import Credentials  # noqa: E402
from deck_tray.ui.session_tab import KEEP_BUILT  # noqa: E402

MB = 1e6


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    return bench_detection.pct(values, q)


# -- detection, SSE, idle CPU: the app in this process -------------------------------------------------


async def live_rows(root: Path, tree: list[tuple[str, Path, Path]], urls: list[str], args: argparse.Namespace,
                    settings: QSettings) -> dict[str, Any]:
    runtime = Path(tempfile.mkdtemp(prefix="dt-bench-rt-", dir="/tmp"))
    codex_tree = codex_hook_tree(root / "codex", args.hooks)
    scanner = Scanner(root, root / "codex", process_lister=lambda: codex_holders(codex_tree))
    app = DeckTrayApp(scanner=scanner, ipc_path=runtime / "deck-tray" / "ipc.sock",
                      mux=Tmux(env={"TMUX_TMPDIR": str(root / "no-tmux")}), settings=settings,
                      notification_backends=[], opencode_urls=urls, discover_opencode=False,
                      credentials=Credentials(env={"OPENCODE_SERVER_PASSWORD": "bench"}))
    out: dict[str, Any] = {}
    try:
        assert app.ipc is not None
        app.ipc.start()
        await bench_detection.start_monitor(root, tree, monitor=app.monitor)
        log(f"{len(app.registry.sessions())} sessions listed; file → signal latency")
        out["status"], out["transcript"] = await bench_detection.change_latency(app.registry, tree, args.changes)
        app.opencode.start()
        for url in urls:
            await bench_opencode.wait_connected(app.opencode.watchers[url], ["ses_bench_flood0", "ses_bench_flood1"])
        log("opencode streams connected; permission.asked → signal latency")
        async with httpx.AsyncClient(base_url=urls[0], timeout=30, trust_env=False) as control:
            out["sse"] = await bench_opencode.ask_latency(app.opencode, app.registry, control, args.asks)
        log(f"hook (python -m deck_tray hook codex) → signal latency, {len(codex_tree)} Codex sessions")
        out["hook"] = await hook_latency(app, codex_tree, runtime)
        await bench_detection.settle(tree)
        log(f"idle CPU over {args.idle_seconds:.0f} s ({len(app.registry.sessions())} sessions, "
            f"{len(urls)} streams)")
        out["idle"] = await bench_detection.idle_cpu(args.idle_seconds)
        out["sessions"] = len(app.registry.sessions())
    finally:
        await app.stop()
        shutil.rmtree(runtime, ignore_errors=True)
    return out


FIXTURES = HERE.parent / "tests" / "fixtures"
CODEX_THREAD = "01a200e4-f2b5-78c1-9c58-e75423501563"  # in codex-0.169.0-tui-no-daemon.jsonl


def codex_hook_tree(codex_dir: Path, n: int) -> list[tuple[str, Path, str]]:
    """``n`` Codex 0.169.0 rollouts stopped at an exec call (the captured TUI run's first 12
    records, ids and times renewed): (thread id, rollout, cwd). Codex writes no live status
    file, so for these sessions a hook is the strongest signal of a prompt."""
    head = (FIXTURES / "codex-0.169.0-tui-no-daemon.jsonl").read_text().splitlines()[:12]
    day = time.strftime("%Y/%m/%d")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    out = []
    for i in range(n):
        tid = f"01a200e4-f2b5-78c1-9c58-{i:012d}"
        cwd = f"/home/dev/work/codex-{i}"
        path = codex_dir / "sessions" / day / f"rollout-{time.strftime('%Y-%m-%dT%H-%M-%S')}-{tid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for ln in head:
            rec = json.loads(ln.replace(CODEX_THREAD, tid).replace("/home/dev/work/proj", cwd))
            rec["timestamp"] = stamp
            lines.append(json.dumps(rec))
        path.write_text("\n".join(lines) + "\n")
        out.append((tid, path, cwd))
    return out


def codex_holders(tree: list[tuple[str, Path, str]]) -> list[Any]:
    """The process table as if a Codex TUI (this process) held each rollout open."""
    from deck_tray.core.procs import AgentProcess

    return [AgentProcess(os.getpid(), "codex", cwd, (str(path),)) for _tid, path, cwd in tree]


async def hook_latency(app: DeckTrayApp, tree: list[tuple[str, Path, str]], runtime: Path
                       ) -> dict[str, list[float]]:
    """A Codex ``PermissionRequest`` hook, run as Codex runs it, to the session's waiting signal.

    Each sample starts ``python -m deck_tray hook codex`` (the command ``hooks install``
    writes, through the interpreter here) with the captured 0.169.0 payload on stdin for
    another of ``tree``'s sessions, and records, in seconds: ``spawn`` — process start →
    ``session_changed`` with ``waiting_permission``; ``socket`` — the payload's arrival on the
    socket → that signal; ``exit`` — process start → the forwarder's exit (what the agent
    waits for); ``floor`` — ``python -c pass`` on this machine, for comparison.
    """
    from deck_tray.core.model import SessionStatus

    base = next(r["payload"] for r in map(json.loads, (FIXTURES / "codex-0.169.0-hooks.jsonl").read_text().splitlines())
                if r["event"] == "PermissionRequest")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(HERE.parent)}
    assert app.ipc is not None
    arrived: dict[str, float] = {}
    waiting: dict[str, float] = {}
    app.ipc.hook_received.connect(lambda ev: arrived.setdefault(ev.session_id, time.perf_counter()))

    def changed(s: Any) -> None:
        if s.status is SessionStatus.WAITING_PERMISSION:
            waiting.setdefault(s.id, time.perf_counter())

    app.registry.session_changed.connect(changed)
    out: dict[str, list[float]] = {"spawn": [], "socket": [], "exit": [], "floor": []}
    def run(argv: list[str], data: bytes) -> tuple[float, float]:
        # In a worker thread: the child's exit is seen at once, not when the GUI thread is free.
        t0 = time.perf_counter()
        subprocess.run(argv, input=data, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return t0, time.perf_counter()

    loop = asyncio.get_running_loop()
    for tid, path, cwd in tree:
        payload = {**base, "session_id": tid, "transcript_path": str(path), "cwd": cwd}
        t0, t1 = await loop.run_in_executor(None, run, [sys.executable, "-m", "deck_tray", "hook", "codex"],
                                            json.dumps(payload).encode())
        out["exit"].append(t1 - t0)
        deadline = time.monotonic() + 10
        while tid not in waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        if tid in waiting and tid in arrived:
            out["spawn"].append(waiting[tid] - t0)
            out["socket"].append(waiting[tid] - arrived[tid])
        f0, f1 = await loop.run_in_executor(None, run, [sys.executable, "-c", "pass"], b"")
        out["floor"].append(f1 - f0)
        await asyncio.sleep(0.2)
    if len(out["spawn"]) < len(tree):
        log(f"hook: {len(tree) - len(out['spawn'])} of {len(tree)} hooks never made their session wait")
    return out


def naive_live(tree: list[tuple[str, Path, Path]], urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    def poll_servers() -> None:
        for url in urls:
            for path in ("/session/status", "/permission", "/question"):
                bench_opencode.http_json(f"{url}{path}?directory={bench_opencode.DIRECTORY}")

    log(f"naive: full re-read of the 200 sessions + polling {len(urls)} servers every 3 s, "
        f"{args.naive_idle_seconds:.0f} s")
    out = bench_detection.measure_naive(tree, args.naive_idle_seconds, extra=poll_servers)
    log(f"naive: GET /permission every 3 s, {args.poll_samples} asks")
    out["sse"] = bench_opencode.measure_poll(urls[0], args.poll_samples)
    return out


# -- cold start, big tab, RSS: the app in a fresh process over the generated tree ---------------------------


def app_child(tree: corpus.Tree, tabs: int = 0, naive: bool = False, start_only: bool = False) -> dict[str, Any]:
    assert tree.big is not None
    cmd = [sys.executable, str(HERE / "app_run.py"), "--claude", str(tree.claude_dir), "--codex",
           str(tree.codex_dir), "--expect", str(len(tree.recent())), "--big", tree.big.session_id,
           "--tabs", str(tabs)] + (["--naive"] if naive else []) + (["--start-only"] if start_only else [])
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, "--t0", repr(t0)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"app_run.py failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["load"] = load
    return result


def seq(runs: list[dict[str, Any]], key: str, scale: float, digits: int) -> str:
    """``runs[*][key]`` scaled, comma-separated."""
    return ", ".join(f"{r[key] * scale:.{digits}f}" for r in runs)


def naive_cold(tree: corpus.Tree) -> dict[str, float]:
    """Glob both layouts, read and parse every line of every transcript (what a full re-read costs)."""
    t0 = time.perf_counter()
    n = nbytes = 0
    paths = [*tree.claude_dir.glob("projects/*/*.jsonl"), *tree.codex_dir.glob("sessions/*/*/*/rollout-*.jsonl")]
    for p in paths:
        with p.open("rb") as fh:
            for line in fh:
                nbytes += len(line)
                try:
                    json.loads(line)
                except ValueError:
                    pass
                n += 1
    return {"seconds": time.perf_counter() - t0, "bytes": nbytes, "records": n, "files": len(paths)}


def naive_recent(tree: corpus.Tree) -> float:
    """Less naive: only files of the last 24 h, but each read in full."""
    t0 = time.perf_counter()
    now = time.time()
    for f in tree.files:
        if now - f.path.stat().st_mtime > 24 * 3600:
            continue
        with f.path.open("rb") as fh:
            for line in fh:
                json.loads(line)
    return time.perf_counter() - t0


# -- the table ---------------------------------------------------------------------------------------------


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str, str]] = []

    def add(self, metric: str, goal: str, ours: float | str | None, naive: float | str | None, *,
            ok: bool | None = None, fmt: str = "{:.1f}", ratio: str | None = None) -> None:
        def show(v: float | str | None) -> str:
            if v is None:
                return "—"
            return v if isinstance(v, str) else fmt.format(v)

        if ratio is None:
            if isinstance(ours, float | int) and isinstance(naive, float | int) and ours > 0:
                ratio = f"{naive / ours:.1f}x"
            else:
                ratio = "—"
        verdict = "—" if ok is None else ("ok" if ok else "MISS")
        self.rows.append((metric, goal, show(ours), show(naive), ratio, verdict))

    def print(self) -> None:
        head = ("metric", "goal", "deck-tray", "naive", "ratio", "")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(6)]
        line = "  ".join(f"{{:<{widths[0]}}}" if i == 0 else f"{{:>{widths[i]}}}" for i in range(6))
        print(line.format(*head))
        print("  ".join("-" * w for w in widths))
        for r in self.rows:
            print(line.format(*r))


def only_hook(args: argparse.Namespace) -> None:
    """``--only hook``: the held-hook rows alone."""
    t_start, load0 = time.perf_counter(), os.getloadavg()[0]
    held = bench_hook.measure(args.hook_rounds, args.claude_rounds)
    table = Table()
    for metric, goal, ours, naive_v, ok in bench_hook.rows(held):
        table.add(metric, goal, ours, naive_v, ok=ok, fmt="{:.0f}" if "tool start" in metric else "{:.1f}")
    print(f"deck-tray performance table (hook rows only) — {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average {load0:.1f} → {os.getloadavg()[0]:.1f}")
    table.print()
    for n in [*bench_hook.notes(held), f"total run time {time.perf_counter() - t_start:.0f} s."]:
        print(f"* {n}")


def only_new(args: argparse.Namespace) -> None:
    """``--only new``: the new-session rows alone."""
    t_start = time.perf_counter()
    got = bench_new.measure(args.new_rounds)
    subs = bench_subagent.measure(args.new_rounds)
    table = Table()
    for metric, goal, ours, naive_v, ok in [*bench_new.rows(got), *bench_subagent.rows(subs)]:
        table.add(metric, goal, ours, naive_v, ok=ok, fmt="{:.2f}")
    print(f"deck-tray performance table (new-session rows only) — {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}")
    table.print()
    for n in [*bench_new.notes(got), *bench_subagent.notes(subs),
              f"total run time {time.perf_counter() - t_start:.0f} s."]:
        print(f"* {n}")


def paging_rows(table: Table, paging: dict[str, Any]) -> list[str]:
    """The older-messages rows into ``table``; their notes."""
    for metric, goal, ours, naive_v, ok, fmt in bench_paging.rows(paging):
        table.add(metric, goal, ours, naive_v, ok=ok, fmt=fmt)
    return bench_paging.notes(paging)


def print_only(what: str, table: Table, notes: list[str], t_start: float) -> None:
    """Print a table of one group of rows (``--only``) with its notes and the run time."""
    print(f"deck-tray performance table ({what} rows only) — {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}")
    table.print()
    for n in [*notes, f"total run time {time.perf_counter() - t_start:.0f} s."]:
        print(f"* {n}")


def only_paging(args: argparse.Namespace) -> None:
    """``--only paging``: the older-messages rows alone."""
    t_start = time.perf_counter()
    paging = bench_paging.measure(5_000 if args.quick else 20_000)
    table = Table()
    print_only("older-messages", table, paging_rows(table, paging), t_start)


def remote_rows(table: Table, args: argparse.Namespace) -> list[str]:
    """The remote-host rows into ``table`` (skipped without root or sshd); their notes."""
    from tests.e2e.ssh_host import unavailable_reason

    why = unavailable_reason()
    if why:
        return [f"remote hosts: skipped ({why})"]
    r_args = argparse.Namespace(changes=16 if args.quick else 40, hosts=10, sessions=50,
                                idle_seconds=10.0 if args.quick else 30.0)
    got = bench_remote.run(r_args)
    for metric, goal, ours, naive_v in bench_remote.rows(got, r_args):
        limit = float(goal.split()[-1]) if goal.startswith("≤") else None
        table.add(metric, goal, ours, naive_v, ok=None if limit is None else float(ours) <= limit)
    sc = got["scale"]
    return [f"remote: {len(got['latency'])} changes over loopback ssh with 200 sessions there; the 30 s poll column "
            f"is computed (half / 95 % of the interval) plus one 'ssh … deck-tray sessions --json' measured "
            f"({got['poll_call']:.2f} s); {sc['serves']} serves, {sc['listed']} sessions listed here."]


def titles_rows(table: Table, args: argparse.Namespace) -> list[str]:
    """The pane-title agent rows into ``table`` (``bench_titles`` in a child process, so that
    its CPU readings hold only its monitor and its tmux); their notes."""
    cmd = [sys.executable, str(HERE / "bench_titles.py"), "--json"] + (["--quick"] if args.quick else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=1800,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        table.add("Gemini title → waiting p95 (ms)", "≤ 500", f"bench_titles.py failed ({proc.returncode})", None,
                  ok=False)
        return []
    got = json.loads(lines[-1])
    for metric, goal, ours, naive_v, ok, fmt in bench_titles.rows(got):
        table.add(metric, goal, ours, naive_v, ok=ok, fmt=fmt)
    return bench_titles.notes(got)


def only_titles(args: argparse.Namespace) -> None:
    """``--only titles``: the pane-title agent rows alone."""
    t_start = time.perf_counter()
    table = Table()
    log("pane-title agents: 50 stand-in Gemini panes in a private tmux server")
    print_only("pane-title agent", table, titles_rows(table, args), t_start)


def only_remote(args: argparse.Namespace) -> None:
    """``--only remote``: the remote-host rows alone."""
    t_start = time.perf_counter()
    table = Table()
    print_only("remote-host", table, remote_rows(table, args), t_start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a small tree and short windows: a sanity run (~80 s with the hook rows)")
    ap.add_argument("--keep", action="store_true", help="keep the generated tree")
    ap.add_argument("--gb", type=float, default=2.0, help="size of the generated tree (GB)")
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--recent", type=int, default=100, help="transcripts touched in the last 24 h")
    ap.add_argument("--big-mb", type=float, default=100.0, help="size of the big transcript (MB)")
    ap.add_argument("--tabs", type=int, default=50)
    ap.add_argument("--starts", type=int, default=3, help="cold starts and warm starts measured (median)")
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--asks", type=int, default=200)
    ap.add_argument("--hooks", type=int, default=30, help="hook commands run (one per sample)")
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--naive-idle-seconds", type=float, default=15.0)
    ap.add_argument("--poll-samples", type=int, default=6)
    ap.add_argument("--answer-runs", type=int, default=20)
    ap.add_argument("--hook-rounds", type=int, default=30, help="held hooks answered (hook wait overhead)")
    ap.add_argument("--claude-rounds", type=int, default=10,
                    help="permissions answered in one real Claude Code session, per path (0: skip)")
    ap.add_argument("--new-rounds", type=int, default=5, help="sessions started with 'deck-tray new'")
    ap.add_argument("--only", choices=["hook", "new", "paging", "remote", "titles"], help="run only these rows")
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--no-history", action="store_true",
                    help="skip the history index rows (about 1 min; the app children then build the index "
                         "while they start)")
    args = ap.parse_args()
    if args.quick:
        args.gb, args.files, args.recent, args.big_mb = min(args.gb, 0.2), min(args.files, 500), 20, 20.0
        args.changes, args.asks, args.idle_seconds, args.naive_idle_seconds = 10, 30, 5.0, 6.0
        args.poll_samples, args.answer_runs, args.hooks = 2, 3, 8
        args.hook_rounds, args.claude_rounds = min(args.hook_rounds, 10), min(args.claude_rounds, 3)
    if args.quick:
        args.new_rounds = min(args.new_rounds, 2)
    if args.only == "hook":
        only_hook(args)
        return
    if args.only == "new":
        only_new(args)
        return
    if args.only == "paging":
        only_paging(args)
        return
    if args.only == "remote":
        only_remote(args)
        return
    if args.only == "titles":
        only_titles(args)
        return
    need = args.gb * 1e9 * 1.1
    free = shutil.disk_usage(args.tmp).free
    if free < need + 1e9:
        raise SystemExit(f"{args.tmp} has {free / 1e9:.1f} GB free; the tree needs {need / 1e9:.1f} GB")
    t_start = time.perf_counter()
    load0 = os.getloadavg()[0]
    # Every app here (in this process and the children) keeps its history index in a private
    # data dir, never the user's.
    data_home = Path(tempfile.mkdtemp(prefix="deck-tray-data-", dir=args.tmp))
    atexit.register(shutil.rmtree, data_home, True)
    os.environ["XDG_DATA_HOME"] = str(data_home)
    table = Table()
    notes: list[str] = []

    # 1. answers (blocking, its own asyncio loops): before the Qt loop exists.
    log(f"answer-to-pane: {args.answer_runs} runs in a private tmux server")
    answer = bench_answer.measure(args.answer_runs)

    # 2. the app in this process: detection, SSE, idle CPU.
    qapp = QApplication.instance() or QApplication([sys.argv[0]])
    qapp.setQuitOnLastWindowClosed(False)
    # Held hooks (their own qasync loop and agents), before the app's loads.
    held = bench_hook.measure(args.hook_rounds, args.claude_rounds)
    started = bench_new.measure(args.new_rounds)
    subs = bench_subagent.measure(args.new_rounds)
    settle_heap()
    servers = [bench_opencode.spawn_server(2, 50) for _ in range(2)]
    urls = [url for _p, url in servers]
    try:
        with tempfile.TemporaryDirectory(prefix="deck-tray-table-", dir=args.tmp) as tmp:
            root = Path(tmp) / ".claude"
            log(f"{args.sessions} synthetic live sessions under {root}")
            tree200 = bench_detection.make_tree(root, args.sessions)
            settings = QSettings(str(Path(tmp) / "deck-tray.ini"), QSettings.Format.IniFormat)
            loop = qasync.QEventLoop(qapp)
            asyncio.set_event_loop(loop)
            with loop:
                live = loop.run_until_complete(live_rows(root, tree200, urls, args, settings))
            naive = naive_live(tree200, urls, args)
    finally:
        for proc, _url in servers:
            proc.terminate()
            proc.wait(5)

    # 3. the generated tree: cold start, the big tab, RSS.
    tree_dir = Path(tempfile.mkdtemp(prefix="deck-tray-tree-", dir=args.tmp))
    try:
        log(f"generating {args.files} transcripts, {args.gb:g} GB under {tree_dir}")
        tree = corpus.generate(tree_dir, files=args.files, total_bytes=int(args.gb * 1e9), recent=args.recent,
                               big_bytes=int(args.big_mb * 1e6))
        # The history index first: the app children then start, as usual, with it built
        # (the build itself, and the GUI thread meanwhile, are the history rows).
        hist: dict[str, Any] | None = None
        if not args.no_history:
            hist = bench_history.measure(tree, data_home / "deck-tray", appends=10 if args.quick else 50,
                                         repeat=5 if args.quick else 20)
        t_sync = time.perf_counter()
        evicted = corpus.evict(tree)
        cached = corpus.cached_fraction([f.path for f in tree.files])
        log(f"written in {tree.seconds:.1f} s, flushed and evicted in {time.perf_counter() - t_sync:.1f} s "
            f"({cached:.0%} still cached); the app, cold, with {args.tabs} tabs")
        cold = app_child(tree, args.tabs, naive=True)
        colds, warms = [cold], []
        for _ in range(args.starts - 1):
            corpus.evict(tree)
            log("start again, cold")
            colds.append(app_child(tree, start_only=True))
        for _ in range(args.starts):
            log("start again, warm")
            warms.append(app_child(tree, start_only=True))
        log("naive: read and parse every transcript, cold")
        corpus.evict(tree)
        naive_c = naive_cold(tree)
        log("naive: again, warm")
        naive_w = naive_cold(tree)
        naive_r = naive_recent(tree)
        n_recent, tail_expect, total = len(tree.recent()), tree.tail_bytes(TAIL_BYTES), tree.total_bytes
        big_mb = (tree.big.size if tree.big else 0) / MB
    finally:
        if args.keep:
            log(f"kept the tree at {tree_dir}")
        else:
            shutil.rmtree(tree_dir, ignore_errors=True)

    # -- rows
    ms = [x * 1000 for x in live["status"]]
    mt = [x * 1000 for x in live["transcript"]]
    sse = [x * 1000 for x in live["sse"]["latencies"]]
    poll = [x * 1000 for x in naive["sse"]]
    table.add(f"status file → signal p95, {args.sessions} sessions (ms)", "≤ 10", pct(ms, 0.95), naive["p95"],
              ok=pct(ms, 0.95) <= 10)
    table.add("transcript append → signal p95 (ms)", "≤ 50", pct(mt, 0.95), naive["p95"], ok=pct(mt, 0.95) <= 50)
    hk = {k: [x * 1000 for x in v] for k, v in live["hook"].items()}
    floor = statistics.median(hk["floor"])
    if hk["spawn"]:
        beyond = pct([x - floor for x in hk["spawn"]], 0.95)
        table.add("hook run by the agent → signal p95, beyond python start (ms)", "≤ 50", beyond, naive["p95"],
                  ok=beyond <= 50)
        table.add("hook payload on the socket → signal p95 (ms)", "≤ 50", pct(hk["socket"], 0.95), naive["p95"],
                  ok=pct(hk["socket"], 0.95) <= 50)
    else:
        table.add("hook → signal p95 (ms)", "≤ 50", "no hook made a session wait", naive["p95"], ok=False)
    own = pct([x - floor for x in hk["exit"]], 0.95)
    table.add("hook command until the agent goes on p95, beyond python start (ms)", "≤ 50", own, None, ok=own <= 50)
    notes.append(f"hook: {len(hk['exit'])} Codex PermissionRequest hooks through `python -m deck_tray hook codex` "
                 f"(Codex writes no status file, so there the hook is the strongest signal; Claude 2.1.197's "
                 f"status file says what its hook says and outranks it). Measured from the process start: p50/p95 "
                 f"→ signal {statistics.median(hk['spawn'] or [0]):.0f}/{pct(hk['spawn'] or [0], 0.95):.0f} ms, "
                 f"exit {statistics.median(hk['exit']):.0f}/{pct(hk['exit'], 0.95):.0f} ms, of which the "
                 f"interpreter's own start (`python -c pass`, median) is {floor:.0f} ms on this machine — "
                 f"the rows subtract it; socket → signal p50 {statistics.median(hk['socket'] or [0]):.1f} ms. "
                 f"naive = the 3 s re-read.")
    table.add("SSE permission.asked → signal p95 (ms)", "≤ 20", pct(sse, 0.95), pct(poll, 0.95),
              ok=pct(sse, 0.95) <= 20, fmt="{:.2f}")
    table.add(f"idle CPU, {args.sessions} sessions + 2 streams (% core)", "≤ 0.5", live["idle"],
              naive["idle_cpu"], ok=live["idle"] <= 0.5, fmt="{:.2f}")
    startup = statistics.median(r["spawn_to_main"] + r["imports"] + r["app_init"] for r in colds + warms)
    for name, runs, nv in (("cold", colds, naive_c), ("warm", warms, naive_w)):
        med = statistics.median(r["list_paint"] for r in runs)
        table.add(f"start → full list painted, {name} cache (s)", "≤ 2", med,
                  startup + nv["seconds"], ok=med <= 2.0, fmt="{:.2f}")
    table.add(f"start: MB read of {total / MB:.0f} MB ({args.files} files)", "tails", cold["rchar"] / MB,
              naive_c["bytes"] / MB, ok=cold["rchar"] <= tail_expect * 1.1 + 5 * MB, fmt="{:.0f}")
    opens = cold["opens"]
    tab_paint = statistics.median(o["paint"] for o in opens)
    tab_stall = statistics.median(o["stall"] for o in opens)
    table.add(f"{big_mb:.0f} MB transcript tab: click → paint (ms)", "≤ 500", tab_paint * 1000,
              cold["naive_tab_paint"] * 1000, ok=tab_paint <= 0.5, fmt="{:.0f}")
    table.add(f"{big_mb:.0f} MB tab: longest GUI stall (ms)", "≤ 50", tab_stall * 1000,
              cold["naive_tab_stall"] * 1000, ok=tab_stall <= 0.05, fmt="{:.0f}")
    table.add(f"RSS with {cold['tabs']} tabs (MB; naive col = 0 tabs)", "≤ 150", cold["rss_tabs"], cold["rss0"],
              ok=cold["rss_tabs"] <= 150, fmt="{:.0f}", ratio=f"+{cold['rss_tabs'] - cold['rss0']:.0f} MB")
    pr = [x * 1000 for x in answer["prompt"]]
    al = [x * 1000 for x in answer["allow"]]
    nv = [x * 1000 for x in answer["naive"]]
    table.add("answer: prompt → Enter in pane p95 (ms)", "≤ 200", pct(pr, 0.95), pct(nv, 0.95),
              ok=pct(pr, 0.95) <= 200, fmt="{:.0f}")
    table.add("answer: Allow → key in pane p95 (ms)", "≤ 200", pct(al, 0.95), pct(nv, 0.95),
              ok=pct(al, 0.95) <= 200, fmt="{:.0f}")

    for metric, goal, ours, naive_v, ok in [*bench_new.rows(started), *bench_subagent.rows(subs)]:
        table.add(metric, goal, ours, naive_v, ok=ok, fmt="{:.2f}")
    for metric, goal, ours, naive_v, ok in bench_hook.rows(held):
        table.add(metric, goal, ours, naive_v, ok=ok, fmt="{:.0f}" if "tool start" in metric else "{:.1f}")
    if hist is not None:
        for metric, goal, ours, naive_v, ok, fmt, said in bench_history.rows(hist):
            table.add(metric, goal, ours, naive_v, ok=ok, fmt=fmt, ratio=said)
    log("older messages: a tab paged to the start of a 20 000-message transcript")
    paging_notes = paging_rows(table, bench_paging.measure(5_000 if args.quick else 20_000))
    log("remote hosts over a loopback ssh")
    paging_notes += remote_rows(table, args)
    log("pane-title agents: 50 stand-in Gemini panes in a private tmux server")
    paging_notes += titles_rows(table, args)
    print(f"deck-tray performance table — {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM')}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {load0:.1f} → {os.getloadavg()[0]:.1f}")
    table.print()
    notes += [
        f"detection: {len(ms)}+{len(mt)} changes; p50 status {pct(ms, 0.5):.1f} ms, transcript {pct(mt, 0.5):.1f} ms; "
        f"the whole app (window, tray, notifier) was wired to the registry. naive = every file re-read every 3 s: "
        "latency = half / 95 % of the interval + one full read.",
        f"SSE: {len(sse)} asks (p50 {pct(sse, 0.5):.2f} ms, max {max(sse, default=float('nan')):.2f} ms, "
        f"{live['sse']['missed']} missed) with {live['sessions']} sessions in the registry; naive = GET /permission "
        f"every 3 s, {len(poll)} asks at random phases (analytically p95 2850 ms).",
        f"idle: {args.idle_seconds:.0f} s window; naive = {args.naive_idle_seconds:.0f} s of re-reading the "
        f"{args.sessions} transcripts + GET /session/status, /permission, /question of both servers every 3 s.",
        f"tree: {len(tree.files)} files, {total / 1e9:.2f} GB, {n_recent} touched in the last 24 h (they are listed); "
        f"written in {tree.seconds:.1f} s; page cache "
        f"{'evicted per file (posix_fadvise)' if evicted else 'NOT evicted'} ({cached:.0%} cached after); "
        "file metadata and the Python/Qt libraries stay cached.",
        f"start: medians of {len(colds)} cold and {len(warms)} warm starts: {seq(colds, 'list_paint', 1, 2)} / "
        f"{seq(warms, 'list_paint', 1, 2)} s (load average {seq(colds + warms, 'load', 1, 1)}); first cold start: "
        "Popen → main "
        f"{cold['spawn_to_main'] * 1000:.0f} ms, imports {cold['imports'] * 1000:.0f} ms, app init "
        f"{cold['app_init'] * 1000:.0f} ms, first scan → list {cold['start_to_listed'] * 1000:.0f} ms; read "
        f"{cold['rchar'] / MB:.0f} MB ({cold['read_bytes'] / MB:.0f} MB from disk) where the recent tails are "
        f"{tail_expect / MB:.0f} MB; longest GUI stall while starting {seq(colds + warms, 'cold_stall', 1000, 0)} ms.",
        f"start, naive = the same start-up ({startup:.2f} s) + reading and parsing all {naive_c['files']} files "
        f"({naive_c['records']} records): {naive_c['seconds']:.1f} s cold, {naive_w['seconds']:.1f} s warm; "
        f"reading only the last day's files in full would take {naive_r:.2f} s (warm).",
        f"tab: medians of {len(opens)} opens (the first is the process's first tab): paint "
        f"{seq(opens, 'paint', 1000, 0)} ms, stall {seq(opens, 'stall', 1000, 0)} ms, GUI-thread CPU until the paint "
        f"{seq(opens, 'cpu', 1000, 0)} ms; {cold['tab_messages']} messages kept, 200 rendered. naive = the tab "
        f"reads and parses the whole {big_mb:.0f} MB on the GUI thread, then renders.",
        f"tabs: {cold['tabs']} tabs ({cold['rendered_messages']} messages rendered) opened in "
        f"{cold['tabs_seconds']:.2f} s (20 ms apart), longest stall {cold['tabs_stall'] * 1000:.0f} ms; RSS measured "
        "after each tab was looked at once (a tab builds its conversation when shown; only the "
        f"{KEEP_BUILT} shown last keep theirs, the others keep their tab, draft and place).",
        f"answer: {args.answer_runs} runs; p50 prompt {pct(pr, 0.5):.0f} ms (the 150 ms pause is the floor), "
        f"Allow {pct(al, 0.5):.0f} ms; naive = send-keys -l, sleep 0.3, send-keys Enter (mean "
        f"{statistics.mean(nv):.0f} ms).",
        *bench_hook.notes(held),
        *bench_new.notes(started),
        *bench_subagent.notes(subs),
        *(bench_history.notes(hist) if hist is not None else ["history: skipped (--no-history)"]),
        *paging_notes,
        f"total run time {time.perf_counter() - t_start:.0f} s.",
    ]
    for n in notes:
        print(f"* {n}")


if __name__ == "__main__":
    main()
