"""Answer-to-pane latency: from "Send" to the last key arriving in the agent's pane.

    python bench/bench_answer.py [--runs 60]

A stand-in agent (``tests/services/standin_agent.py``, raw mode, records every byte with
its arrival time) runs in a private tmux server. For each run the dispatcher sends either a
one-line prompt (text, the 150 ms pause, Enter) or a permission answer (one key), with all
its state-first checks (list the pane, check the pid, read the screen). Beside it, the naive
method: ``tmux send-keys -l TEXT; sleep 0.3; tmux send-keys Enter`` with no checks, the
recipe most peer tools use. Goal (issue #4): p95 ≤ 200 ms for a prompt, the 150 ms pause
being the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deck_tray.core.model import AgentKind, PaneRef, Session, SessionStatus  # noqa: E402
from deck_tray.core.reply import Reply, ReplyKind  # noqa: E402
from deck_tray.services.dispatcher import Dispatcher  # noqa: E402
from deck_tray.services.panes import Tmux  # noqa: E402

STANDIN = ROOT / "tests" / "services" / "standin_agent.py"


def tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", *args], check=True,
                          capture_output=True, text=True).stdout


def start(sock: str, log: Path, mode: str) -> tuple[str, int]:
    out = tmux(sock, "new-window", "-d", "-P", "-F", "#{pane_id} #{pane_pid}", sys.executable, str(STANDIN),
               str(log), mode)
    pane, pid = out.split()
    marker = "? for shortcuts" if mode == "idle" else "Esc to cancel"
    while marker not in tmux(sock, "capture-pane", "-p", "-t", pane):
        time.sleep(0.02)
    return pane, int(pid)


def wait_bytes(log: Path, want: bytes, timeout: float = 5.0) -> float:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if log.exists() and log.read_bytes().endswith(want):
            return time.perf_counter()
        time.sleep(0.001)
    raise TimeoutError(f"{want!r} never arrived")


def pct(v: list[float], q: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] * 1000


def measure(runs: int) -> dict[str, list[float]]:
    """``runs`` prompts, Allow answers and naive send-keys prompts; seconds until the pane got them.

    Runs its own tmux server in a temporary folder; blocking (call it outside a running loop).
    """
    saved = os.environ.get("TMUX_TMPDIR")
    with tempfile.TemporaryDirectory(prefix="deck-tray-answer-") as tmp:
        os.environ["TMUX_TMPDIR"] = tmp
        sock_dir = Path(tmp) / f"tmux-{os.getuid()}"
        sock_dir.mkdir(mode=0o700)
        sock = str(sock_dir / "bench")
        tmux(sock, "new-session", "-d", "-s", "bench", "sleep", "3600")
        dispatcher = Dispatcher(Tmux(), accept_timeout=0.0)
        results: dict[str, list[float]] = {"prompt": [], "allow": [], "naive": []}
        try:
            for i in range(runs):
                log = Path(tmp) / f"p{i}.log"
                pane, pid = start(sock, log, "idle")
                s = Session(id=f"s{i}", agent=AgentKind.CLAUDE_CODE, pid=pid, status=SessionStatus.IDLE,
                            pane=PaneRef("tmux", pane, sock))
                t0 = time.perf_counter()
                asyncio.run(dispatcher.dispatch(s, Reply(ReplyKind.PROMPT, f"run the tests {i}")))
                results["prompt"].append(wait_bytes(log, b"\r") - t0)

                log2 = Path(tmp) / f"a{i}.log"
                pane2, pid2 = start(sock, log2, "permission")
                s2 = Session(id=f"a{i}", agent=AgentKind.CLAUDE_CODE, pid=pid2,
                             status=SessionStatus.WAITING_PERMISSION, pane=PaneRef("tmux", pane2, sock))
                t0 = time.perf_counter()
                asyncio.run(dispatcher.dispatch(s2, Reply(ReplyKind.ALLOW)))
                results["allow"].append(wait_bytes(log2, b"1") - t0)

                log3 = Path(tmp) / f"n{i}.log"
                pane3, _pid3 = start(sock, log3, "idle")
                t0 = time.perf_counter()
                tmux(sock, "send-keys", "-t", pane3, "-l", f"run the tests {i}")
                time.sleep(0.3)
                tmux(sock, "send-keys", "-t", pane3, "Enter")
                results["naive"].append(wait_bytes(log3, b"\r") - t0)
                for p in (pane, pane2, pane3):
                    tmux(sock, "kill-pane", "-t", p)
        finally:
            subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
            if saved is None:
                os.environ.pop("TMUX_TMPDIR", None)
            else:
                os.environ["TMUX_TMPDIR"] = saved
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    results = measure(args.runs)
    naive50, naive95 = pct(results["naive"], 0.5), pct(results["naive"], 0.95)
    print(f"deck-tray answer-to-pane bench — {args.runs} runs each, real tmux, {os.cpu_count()} cores")
    print(f"{'metric':<36} {'goal':>7} {'deck-tray':>10} {'naive':>8} {'ratio':>7}")
    rows = [
        ("prompt → Enter in pane p50 (ms)", "—", pct(results["prompt"], 0.5), naive50),
        ("prompt → Enter in pane p95 (ms)", "≤ 200", pct(results["prompt"], 0.95), naive95),
        ("Allow → key in pane p50 (ms)", "—", pct(results["allow"], 0.5), naive50),
        ("Allow → key in pane p95 (ms)", "≤ 200", pct(results["allow"], 0.95), naive95),
    ]
    for name, goal, val, base in rows:
        print(f"{name:<36} {goal:>7} {val:>10.1f} {base:>8.1f} {base / val:>6.1f}x")
    mean = statistics.mean(results["naive"]) * 1000
    print(f"(naive = send-keys -l, sleep 0.3, send-keys Enter, no checks; mean {mean:.0f} ms)")


if __name__ == "__main__":
    main()
