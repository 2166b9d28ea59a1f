"""Soak (issue #20): the real app through a compressed long day, then tear-down-at-once rounds.

    python bench/soak.py [--seconds 600] [--sessions 400] [--live 40] [--teardown-rounds 20] [--json]

The app runs as a process (``python -m deck_tray``, xcb) in a private desktop
(:mod:`tests.e2e.live_desktop`: dbus-daemon, Xvfb, trayer, dunst). While it runs:

* Claude Code sessions made of files (live status file + transcript, the shapes of Claude Code
  2.1.197) appear in panes of two private tmux servers, work (records appended, the status
  going busy → waiting → idle), and end (the pane's process killed, then the status file removed
  and the transcript archived out of the watched folder); ``--sessions`` in all, about ``--live``
  at a time;
* transcripts are rotated (replaced by a shorter file through a rename) now and then;
* one tmux server is killed with everything in it, every quarter of the run;
* a real ``opencode serve`` the app follows (``--opencode-url``) is restarted every third of the
  run (skipped when opencode is not installed);
* hooks arrive in bursts of 50 over the app's socket (PermissionRequest, then Stop);
* notifications are shown by the waiting sessions, clicked (``dunstctl action``: the app opens
  the tab) and closed (``dunstctl close-all``), and tabs are closed with Ctrl+W (xdotool);
* a probe pings the app's socket every second.

Printed (goals from the issue): pings answered within 1 s (all), RSS after the warm-up (the
first 15 %) and at the end (growth ≤ 20 MB), open fds and threads then and at the end (flat),
errors in the app's log (0), then ``--teardown-rounds`` tear-downs at once (all exit within 5 s).
``tests/e2e/test_soak.py`` runs a shortened day with the same goals.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.e2e.live_desktop import (  # noqa: E402
    AppProcess,
    LiveDesktop,
    fake_claude,
    teardown_round,
    write_status,
)

GOAL_RSS_GROWTH_MB = 20.0
GOAL_EXIT_S = 5.0
# The name Qt gives the threads of a QThreadPool (the global one: started when the window is
# shown, at most QThread.idealThreadCount(), ended after 30 s idle). Seen in CI, 2026-12-07: the
# 30 s soak's warm-up sample fell in a 30 s without a shown window, the end's did not (20 → 22).
QT_POOL_THREAD = "Thread (pooled)"


@dataclass
class Live:
    """One simulated Claude session."""

    sid: str
    server: str
    pid: int
    status_path: Path
    transcript: Path
    cwd: str
    status: str = "busy"
    records: int = 2


@dataclass
class SoakResult:
    """What a soak run measured (see the module docstring for the goals)."""

    seconds: float = 0.0
    pings: int = 0
    pings_late: int = 0
    ping_p95_ms: float = 0.0
    ping_max_ms: float = 0.0
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    fds_warm: int = 0
    fds_end: int = 0
    threads_warm: int = 0
    threads_end: int = 0
    errors_in_log: int = 0
    error_lines: list[str] = field(default_factory=list)
    sessions_started: int = 0
    sessions_ended: int = 0
    rotations: int = 0
    tmux_kills: int = 0
    opencode_restarts: int = 0
    hooks_sent: int = 0
    notifications_clicked: int = 0
    tabs_closed: int = 0
    quit_s: float = 0.0
    quit_code: int | None = None
    teardown_rounds: int = 0
    teardown_ok: int = 0
    teardown_max_s: float = 0.0
    teardown_problems: list[str] = field(default_factory=list)
    rss_series_mb: list[float] = field(default_factory=list)
    fd_kinds_warm: dict[str, int] = field(default_factory=dict)
    fd_kinds_end: dict[str, int] = field(default_factory=dict)
    thread_names_warm: dict[str, int] = field(default_factory=dict)
    thread_names_end: dict[str, int] = field(default_factory=dict)

    @property
    def rss_growth_mb(self) -> float:
        """RSS at the end minus RSS after the warm-up."""
        return self.rss_end_mb - self.rss_warm_mb

    def goals_met(self) -> list[str]:
        """The goals missed, as sentences (empty: all met)."""
        missed = []
        if self.pings_late:
            missed.append(f"{self.pings_late} of {self.pings} pings not answered within 1 s")
        if self.rss_growth_mb > GOAL_RSS_GROWTH_MB:
            missed.append(f"RSS grew {self.rss_growth_mb:.1f} MB after the warm-up (goal ≤ {GOAL_RSS_GROWTH_MB:g})")
        if self.fds_end > self.fds_warm + 3:
            missed.append(f"open fds {self.fds_warm} → {self.fds_end}")
        pooled = self.thread_names_end.get(QT_POOL_THREAD, 0)
        if pooled > (os.cpu_count() or 1):
            missed.append(f"{pooled} threads in Qt's pool, more than the {os.cpu_count()} cores")
        if self.threads_end > self.threads_warm + 1:
            missed.append(f"threads {self.threads_warm} → {self.threads_end} "
                          f"(by name: {self.thread_names_warm} → {self.thread_names_end})")
        if self.errors_in_log:
            missed.append(f"{self.errors_in_log} errors in the log")
        if self.quit_code != 0 or self.quit_s > GOAL_EXIT_S:
            missed.append(f"the quit at the end: exit {self.quit_code} after {self.quit_s:.1f} s")
        if self.teardown_ok < self.teardown_rounds:
            missed.append(f"tear-down at once: {self.teardown_ok}/{self.teardown_rounds}")
        return missed

    def lines(self) -> list[str]:
        """The human summary."""
        return [
            f"soak: {self.seconds:.0f} s; {self.sessions_started} sessions started, {self.sessions_ended} ended, "
            f"{self.rotations} transcripts rotated, {self.tmux_kills} tmux servers killed, "
            f"{self.opencode_restarts} opencode restarts, {self.hooks_sent} hooks, "
            f"{self.notifications_clicked} notifications clicked, {self.tabs_closed} tabs closed",
            f"pings answered within 1 s: {self.pings - self.pings_late}/{self.pings} "
            f"(p95 {self.ping_p95_ms:.1f} ms, max {self.ping_max_ms:.1f} ms)",
            f"RSS after warm-up / end: {self.rss_warm_mb:.1f} / {self.rss_end_mb:.1f} MB "
            f"(growth {self.rss_growth_mb:+.1f} MB, goal ≤ {GOAL_RSS_GROWTH_MB:g})",
            f"RSS over the day (MB): {' '.join(f'{x:.0f}' for x in self.rss_series_mb)}",
            f"open fds after warm-up / end: {self.fds_warm} / {self.fds_end}; "
            f"threads (besides Qt's pool): {self.threads_warm} / {self.threads_end}",
            f"threads by name after warm-up / end: {self.thread_names_warm} / {self.thread_names_end}",
            f"errors in the app's log: {self.errors_in_log}",
            f"quit at the end (SIGTERM): exit {self.quit_code} in {self.quit_s:.2f} s",
            f"tear-down at once: {self.teardown_ok}/{self.teardown_rounds} exited within {GOAL_EXIT_S:g} s "
            f"(max {self.teardown_max_s:.2f} s)",
        ]


class Prober(threading.Thread):
    """Pings the app's socket every second; keeps each answer's latency (None: not within 1 s)."""

    def __init__(self, app: AppProcess) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.latencies: list[float | None] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(1.0):
            self.latencies.append(self.app.ping(timeout=1.0))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def send_hooks(app: AppProcess, live: list[Live], n: int, rng: random.Random) -> int:
    """A burst of ``n`` hook events over one connection, as many forwarders would send them."""
    if not live:
        return 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        try:
            s.connect(str(app.socket))
        except OSError:
            return 0
        buf = []
        for i in range(n):
            sess = rng.choice(live)
            name = "PermissionRequest" if i % 2 == 0 else "Stop"
            payload: dict[str, Any] = {"hook_event_name": name, "session_id": sess.sid,
                                       "transcript_path": str(sess.transcript), "cwd": sess.cwd}
            if name == "PermissionRequest":
                payload.update(tool_name="Bash", tool_input={"command": f"ls {i}"})
            buf.append(json.dumps({"op": "hook", "agent": "claude-code", "kind": "hook", "received": time.time(),
                                   "payload": payload}))
        s.sendall(("\n".join(buf) + "\n").encode())
    return n


def record(sess: Live, kind: str) -> str:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    sess.records += 1
    if kind == "user":
        rec = {"type": "user", "sessionId": sess.sid, "cwd": sess.cwd, "uuid": f"u{sess.records}", "timestamp": ts,
               "message": {"role": "user", "content": f"step {sess.records}: keep going " + "x" * 200}}
    else:
        rec = {"type": "assistant", "sessionId": sess.sid, "cwd": sess.cwd, "uuid": f"a{sess.records}",
               "timestamp": ts, "message": {"id": f"m{sess.records}", "role": "assistant", "stop_reason": "end_turn",
                                            "content": [{"type": "text", "text": "done " + "y" * 300}]}}
    return json.dumps(rec) + "\n"


def xdotool(desk: LiveDesktop, *args: str) -> str:
    import subprocess

    if shutil.which("xdotool") is None:
        return ""
    out = subprocess.run(["xdotool", *args], env=desk.env, capture_output=True, text=True, timeout=10, check=False)
    return out.stdout.strip()


def close_a_tab(desk: LiveDesktop, app: AppProcess) -> bool:
    """Ctrl+W in the app's window (focused first; there is no window manager)."""
    wids = xdotool(desk, "search", "--pid", str(app.pid), "--onlyvisible", "--name", "deck-tray").split()
    if not wids:
        return False
    xdotool(desk, "windowfocus", "--sync", wids[0])
    xdotool(desk, "key", "--clearmodifiers", "ctrl+w")
    return True


def settled(app: AppProcess, samples: int = 6, every: float = 0.5) -> tuple[float, int, int]:
    """RSS (MB), open fds and threads with nothing in flight: the lowest of a few samples, so a
    history sync or a reconnect that happens to run at that moment does not count as growth.

    Qt's global thread pool (threads named ``Thread (pooled)``) is left out of the thread count:
    showing the window starts up to ``QThread.idealThreadCount()`` of them and they end after 30 s
    idle, so whether they exist depends on when the window was last shown, not on a leak;
    :meth:`SoakResult.goals_met` bounds them separately."""
    rss, fds, threads = [], [], []
    for _ in range(samples):
        time.sleep(every)
        rss.append(app.status("VmRSS") / 1024)
        fds.append(app.fds())
        threads.append(sum(n for name, n in thread_names(app.pid).items() if name != QT_POOL_THREAD))
    return min(rss), min(fds), min(threads)


def fd_kinds(pid: int) -> dict[str, int]:
    """Open fds of ``pid`` by kind (``socket``, ``pipe``, ``anon_inode:[eventfd]``, a file's folder)."""
    kinds: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                kind = target.split(":[")[0] if ":[" in target else os.path.dirname(target)
                kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def thread_names(pid: int) -> dict[str, int]:
    """Threads of ``pid`` by name (``/proc/PID/task/*/comm``: Qt names its threads, Python's
    own carry the process name)."""
    names: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                names[name] = names.get(name, 0) + 1
    return names


def log_errors(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if " ERROR " in ln or " CRITICAL " in ln or ln.startswith("Traceback")]


def day(seconds: float, sessions: int, live_target: int, seed: int, say: Any = print,
        without: frozenset[str] = frozenset(), app_env: dict[str, str] | None = None) -> SoakResult:
    """The compressed day; returns what was measured (the tear-down rounds are :func:`teardowns`).

    ``without`` leaves parts out, to find what a growth comes from: ``tabs`` (no clicks, no
    Ctrl+W), ``hooks``, ``history`` (the setting ``sessions/history_index`` off), ``opencode``.
    """
    rng = random.Random(seed)
    res = SoakResult()
    with contextlib.ExitStack() as stack:
        desk = stack.enter_context(LiveDesktop())
        archive = desk.root / "archive"
        archive.mkdir()
        if "history" in without:
            ini = desk.root / "config" / "deck-tray" / "deck-tray.ini"
            ini.parent.mkdir(parents=True, exist_ok=True)
            ini.write_text("[sessions]\nhistory_index=false\n")
        opencode = None
        try:
            from tests.e2e.opencode_harness import OpencodeServe, find_opencode

            if find_opencode() and "opencode" not in without:
                opencode = OpencodeServe(Path(tempfile.mkdtemp(prefix="dt-soak-oc-")), "http://127.0.0.1:9/v1")
                opencode.start()
                stack.callback(opencode.stop)
        except Exception as exc:  # the soak goes on without it, and says so
            say(f"soak: no opencode server ({exc})")
            opencode = None
        args = ["--opencode-url", opencode.url] if opencode is not None else []
        app = AppProcess(desk, args, env=app_env)
        stack.callback(app.close)
        app.wait_ready(60)
        prober = Prober(app)
        prober.start()
        live: list[Live] = []
        ending: list[tuple[float, Live]] = []
        t_start = time.monotonic()
        warm_at = t_start + seconds * 0.15
        warm_done = False
        next_tmux_kill = t_start + seconds / 4
        next_opencode = t_start + seconds / 3
        next_hooks = t_start + 5
        next_click = t_start + 3
        next_tab_close = t_start + 4
        next_sample = t_start

        def start_session() -> None:
            server = rng.choice(["a", "b"])
            pid = desk.pane_process(server=server)
            cwd = f"/home/dev/work/p{res.sessions_started % 37}"
            sid, spath, tr = fake_claude(desk, pid, status="busy", cwd=cwd)
            live.append(Live(sid, server, pid, spath, tr, cwd))
            res.sessions_started += 1

        def end(sess: Live, now: float) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sess.pid, signal.SIGTERM)
            if sess in live:
                live.remove(sess)
            ending.append((now + rng.uniform(2, 6), sess))

        while time.monotonic() - t_start < seconds:
            now = time.monotonic()
            if not warm_done and now >= warm_at:
                res.rss_warm_mb, res.fds_warm, res.threads_warm = settled(app)
                res.fd_kinds_warm = fd_kinds(app.pid)
                res.thread_names_warm = thread_names(app.pid)
                warm_done = True
            while len(live) < live_target and res.sessions_started < sessions:
                start_session()
            for when, sess in list(ending):  # the agent is gone: its files go too
                if when <= now:
                    ending.remove((when, sess))
                    sess.status_path.unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        os.replace(sess.transcript, archive / sess.transcript.name)
                    res.sessions_ended += 1
            for sess in rng.sample(live, min(len(live), 6)):
                with open(sess.transcript, "a") as fh:
                    fh.write(record(sess, rng.choice(["user", "assistant"])))
                roll = rng.random()
                if roll < 0.15:
                    sess.status = {"busy": "waiting", "waiting": "idle", "idle": "busy"}[sess.status]
                    with contextlib.suppress(OSError):
                        write_status(sess.status_path, sess.pid, sess.sid, sess.cwd, sess.status)
                elif roll < 0.17:
                    lines = sess.transcript.read_text().splitlines(keepends=True)
                    tmp = sess.transcript.with_suffix(".rot")
                    tmp.write_text("".join(lines[:2] + lines[-2:]))
                    os.replace(tmp, sess.transcript)
                    res.rotations += 1
                elif roll < 0.19 and res.sessions_started < sessions:
                    end(sess, now)
            if now >= next_tmux_kill:
                next_tmux_kill += seconds / 4
                doomed = [s for s in live if s.server == "b"]
                desk.tmux("kill-server", server="b")
                res.tmux_kills += 1
                for sess in doomed:
                    end(sess, now)
            if opencode is not None and now >= next_opencode:
                next_opencode += seconds / 3
                opencode.restart()
                res.opencode_restarts += 1
            if now >= next_hooks and "hooks" not in without:
                next_hooks += rng.uniform(5, 15)
                res.hooks_sent += send_hooks(app, live, 50, rng)
            if now >= next_click and "tabs" not in without:
                next_click += rng.uniform(2, 6)
                if desk.displayed():
                    desk.dunstctl("action", "0")
                    res.notifications_clicked += 1
                    if rng.random() < 0.3:
                        desk.dunstctl("close-all")
            if now >= next_sample:
                next_sample += max(1.0, seconds / 30)
                res.rss_series_mb.append(round(app.status("VmRSS") / 1024, 1))
            if now >= next_tab_close and "tabs" not in without:
                next_tab_close += rng.uniform(3, 8)
                if close_a_tab(desk, app):
                    res.tabs_closed += 1
            time.sleep(0.05)
        res.seconds = time.monotonic() - t_start
        prober.stop()
        res.rss_end_mb, res.fds_end, res.threads_end = settled(app)
        res.fd_kinds_end = fd_kinds(app.pid)
        res.thread_names_end = thread_names(app.pid)
        pings = [x for x in prober.latencies if x is not None]
        res.pings = len(prober.latencies)
        res.pings_late = res.pings - len(pings)
        if pings:
            s = sorted(pings)
            res.ping_p95_ms = s[min(len(s) - 1, int(0.95 * (len(s) - 1) + 0.5))] * 1000
            res.ping_max_ms = s[-1] * 1000
        t0 = time.monotonic()
        app.proc.send_signal(signal.SIGTERM)
        res.quit_code = app.wait_exit(30)
        res.quit_s = time.monotonic() - t0
        errors = log_errors(app.log())
        res.errors_in_log = len(errors)
        res.error_lines = errors[:20]
    return res


def teardowns(res: SoakResult, rounds: int) -> None:
    """``rounds`` tear-downs at once (a fresh desktop each); fills the tear-down fields of ``res``."""
    res.teardown_rounds = rounds
    for i in range(rounds):
        with LiveDesktop() as desk:
            rc, took, app = teardown_round(desk, GOAL_EXIT_S)
            try:
                if rc is None:
                    res.teardown_problems.append(f"round {i}: still running after {GOAL_EXIT_S:g} s")
                elif rc < 0 or "Timeout (" in app.log():
                    res.teardown_problems.append(f"round {i}: exit {rc}, hard exit {'Timeout (' in app.log()}")
                else:
                    res.teardown_ok += 1
                    res.teardown_max_s = max(res.teardown_max_s, took)
            finally:
                app.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=600.0, help="length of the compressed day")
    p.add_argument("--sessions", type=int, default=400, help="sessions started in all")
    p.add_argument("--live", type=int, default=40, help="sessions alive at a time")
    p.add_argument("--teardown-rounds", type=int, default=20)
    p.add_argument("--seed", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE",
                   help="an environment variable for the app (e.g. MALLOC_ARENA_MAX=2), repeatable")
    p.add_argument("--without", action="append", default=[], choices=["tabs", "hooks", "history", "opencode"],
                   help="leave a part out (repeatable), to find what a growth comes from")
    args = p.parse_args()
    app_env = dict(x.split("=", 1) for x in args.app_env)
    res = day(args.seconds, args.sessions, args.live, args.seed, without=frozenset(args.without), app_env=app_env)
    teardowns(res, args.teardown_rounds)
    for line in res.lines():
        print(line)
    if res.fds_end != res.fds_warm:
        print(f"  fds by kind after warm-up: {res.fd_kinds_warm}")
        print(f"  fds by kind at the end:    {res.fd_kinds_end}")
    for line in res.error_lines:
        print("  log:", line)
    for line in res.teardown_problems:
        print("  tear-down:", line)
    missed = res.goals_met()
    print("goals: all met" if not missed else "goals missed: " + "; ".join(missed))
    if args.json:
        print(json.dumps({**asdict(res), "rss_growth_mb": res.rss_growth_mb}))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
