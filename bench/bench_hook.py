"""Permissions answered through Claude Code's held ``PermissionRequest`` hook (issue #13).

    python bench/bench_hook.py [--quick] [--rounds 30] [--claude-rounds 10]

Two measurements, each beside what it replaces:

* **hook wait overhead** — what the waiting ``python -m deck_tray hook claude-code`` process
  adds once the user decided: the real forwarder is held by the real
  :class:`~deck_tray.services.ipc.IpcServer` + :class:`~deck_tray.services.decisions.DecisionBroker`
  on a qasync loop (no window); from ``DecisionBroker.decide()`` to the decision printed on the
  hook's stdout, and to the process's exit (what the agent waits for). Naive: a hook that, with no
  connection to hold, looks for the decision in a file the app writes, every 0.5 s — the
  simplest way a separate hook process can wait for an answer given elsewhere (its latency is
  about half the interval on average, the whole interval at worst).
* **decision → tool start** — a real Claude Code 2.1.197 on a plain pty
  (:mod:`tests.e2e.pty_terminal`) with deck-tray's hooks, against the fake model
  (``please FAKE_BASH:touch F``): from ``Dispatcher.dispatch(Allow)`` (which answers through the
  held hook) to ``F`` existing, several rounds in one session. Beside it, the keystroke path: the
  same Claude Code in a tmux pane without hooks, the same ``Dispatcher.dispatch(Allow)`` (its
  state-first checks — list the pane, check the pid, read the screen — then the option's digit
  with ``send-keys``), to the file.

Each round waits a random 0–0.5 s after the request is held (or the dialog is drawn) before
deciding, as a user would at some random moment. Goals (table rows in ``bench/table.py``): hook
overhead p95 ≤ 100 ms; decision → tool start p95 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qasync  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402

from deck_tray.core.hooks_config import hook_timeout  # noqa: E402
from deck_tray.core.model import AgentKind, DeliveryState, PaneRef, Session, SessionStatus  # noqa: E402
from deck_tray.core.reply import Reply, ReplyKind  # noqa: E402
from deck_tray.services.decisions import DecisionBroker  # noqa: E402
from deck_tray.services.dispatcher import Dispatcher  # noqa: E402
from deck_tray.services.ipc import IpcServer  # noqa: E402
from deck_tray.services.panes import Tmux  # noqa: E402
from deck_tray.services.registry import SessionRegistry  # noqa: E402

EVENTS = ("PermissionRequest", "Notification", "Stop", "UserPromptSubmit", "SessionStart", "SessionEnd")
PROCEED = r"Do you want to proceed\?[\s\S]*Esc to cancel"
#: The naive hook: no connection to hold, so it looks for the decision in a file every 0.5 s.
NAIVE_HOOK = """import os, sys, time
path = sys.argv[1]
os.write(1, b"ready\\n")
while not os.path.exists(path):
    time.sleep(0.5)
with open(path, "rb") as f:
    os.write(1, f.read())
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank), NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def hook_env(runtime: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(XDG_RUNTIME_DIR=str(runtime), PYTHONPATH=str(ROOT))
    return env


def payload(sid: str) -> dict[str, Any]:
    """A Claude Code 2.1.197 ``PermissionRequest`` for Bash (the shape of the captured ones)."""
    return {"session_id": sid, "transcript_path": f"/tmp/{sid}.jsonl", "cwd": "/home/dev/proj",
            "permission_mode": "default", "hook_event_name": "PermissionRequest", "tool_name": "Bash",
            "tool_input": {"command": "touch x.txt", "description": "Create x.txt"},
            "permission_suggestions": [{"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "touch:*"}],
                                        "behavior": "allow", "destination": "localSettings"}]}


class Hook:
    """A hook process; a thread feeds its stdin and times its output and exit (``perf_counter``).

    Args:
        argv: the command.
        env: its environment.
        stdin: what it reads.
        ready_line: it prints one line once it waits (the naive hook); otherwise it is ready at once.
    """

    def __init__(self, argv: list[str], env: dict[str, str], stdin: bytes, ready_line: bool) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.ready = threading.Event()
        self.printed = self.exited = 0.0
        self.out = b""
        self._thread = threading.Thread(target=self._run, args=(stdin, ready_line), daemon=True)
        self._thread.start()

    def _run(self, stdin: bytes, ready_line: bool) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(stdin)
        self.proc.stdin.close()
        if ready_line:
            self.proc.stdout.readline()
        self.ready.set()
        first = self.proc.stdout.readline()
        self.printed = time.perf_counter()
        self.out = first + self.proc.stdout.read()
        self.proc.wait()
        self.exited = time.perf_counter()

    async def finished(self, timeout: float = 30.0) -> None:
        """Wait (in a worker thread, the loop stays idle) until the hook exited."""
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, timeout)
        if self._thread.is_alive():
            self.proc.kill()
            raise TimeoutError("the hook did not exit")


async def until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := pred()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.005)
    return value


def serve(path: Path) -> tuple[IpcServer, DecisionBroker, SessionRegistry]:
    """The app's hook side, wired as ``DeckTrayApp`` wires it."""
    reg = SessionRegistry()
    broker = DecisionBroker(reg)
    srv = IpcServer(path, hold=broker.hold)
    srv.hold_abandoned = broker.went_away
    srv.hook_received.connect(broker.hook_arrived)
    return srv, broker, reg


def claude_session(sid: str, pid: int | None = None, pane: PaneRef | None = None) -> Session:
    return Session(id=sid, agent=AgentKind.CLAUDE_CODE, pid=pid, pane=pane,
                   status=SessionStatus.WAITING_PERMISSION, updated_at=time.time())


# -- hook wait overhead --------------------------------------------------------------------------------------


async def overhead(rounds: int) -> dict[str, list[float]]:
    """``rounds`` held hooks answered with Allow, and as many naive polling hooks; seconds from the
    decision to ``printed`` / ``exited``: keys ``printed``, ``exited``, ``naive_printed``, ``naive_exited``."""
    runtime = Path(tempfile.mkdtemp(prefix="dt-bh-", dir="/tmp"))
    srv, broker, _reg = serve(runtime / "deck-tray" / "ipc.sock")
    env = hook_env(runtime)
    out: dict[str, list[float]] = {"printed": [], "exited": [], "naive_printed": [], "naive_exited": []}
    srv.start()
    try:
        for i in range(rounds):
            sid = f"5c0d6f3e-1111-4222-8333-{i:012d}"
            hook = Hook([sys.executable, "-m", "deck_tray", "hook", "claude-code"], env,
                        json.dumps(payload(sid)).encode(), ready_line=False)
            await until(lambda sid=sid: broker.held(sid), 30, "the hook to be held")
            await asyncio.sleep(random.uniform(0, 0.5))
            t0 = time.perf_counter()
            report = broker.decide(claude_session(sid), Reply(ReplyKind.ALLOW))
            await hook.finished()
            assert report is not None and report.state is DeliveryState.SUBMITTED, report
            assert b'"behavior":"allow"' in hook.out.replace(b" ", b""), hook.out
            out["printed"].append(hook.printed - t0)
            out["exited"].append(hook.exited - t0)

            decision = runtime / f"decision-{i}.json"
            naive = Hook([sys.executable, "-c", NAIVE_HOOK, str(decision)], env, b"", ready_line=True)
            await until(naive.ready.is_set, 30, "the naive hook to wait")
            await asyncio.sleep(random.uniform(0, 0.5))
            t0 = time.perf_counter()
            tmp = decision.with_suffix(".tmp")
            tmp.write_bytes(hook.out)
            os.replace(tmp, decision)
            await naive.finished()
            assert naive.out == hook.out, naive.out
            out["naive_printed"].append(naive.printed - t0)
            out["naive_exited"].append(naive.exited - t0)
    finally:
        await srv.stop()
        shutil.rmtree(runtime, ignore_errors=True)
    return out


# -- decision → tool start -----------------------------------------------------------------------------------


def hook_settings() -> dict[str, Any]:
    """Claude's hooks as ``deck-tray hooks install`` writes them (through this interpreter)."""
    command = f"{shlex.quote(sys.executable)} -m deck_tray hook claude-code"
    return {"hooks": {ev: [{**({"matcher": "*"} if ev == "PermissionRequest" else {}),
                            "hooks": [{"type": "command", "command": command, "timeout": hook_timeout(ev)}]}]
                      for ev in EVENTS}}


def wait_file(path: Path, timeout: float = 60.0) -> float:
    """``perf_counter`` when ``path`` exists (polled every millisecond, in a worker thread)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} never appeared")
        time.sleep(0.001)
    return time.perf_counter()


def status_of(status_file: Path) -> str:
    """Claude's live ``status`` (``sessions/<pid>.json``), ``""`` while unreadable."""
    try:
        return str(json.loads(status_file.read_text()).get("status") or "")
    except (OSError, ValueError, AttributeError):
        return ""


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking wait off the loop (the loop keeps serving the hooks meanwhile)."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def through_the_hook(rounds: int, scratch: Path) -> list[float]:
    """Claude Code on a pty, answered through its held hook: seconds from dispatch to the file."""
    from tests.e2e.harness import REPO_ROOT, ClaudeAgent, FakeModel
    from tests.e2e.pty_terminal import PtyTerminal

    runtime = Path(tempfile.mkdtemp(prefix="dt-bh-", dir="/tmp"))
    srv, broker, _reg = serve(runtime / "deck-tray" / "ipc.sock")
    held: list[str] = []
    broker.changed.connect(held.append)
    dispatcher = Dispatcher(Tmux(), hooks=broker, accept_timeout=0.0)
    out: list[float] = []
    srv.start()
    try:
        with FakeModel("anthropic", scratch / "fake") as model:
            agent = ClaudeAgent(None, model, scratch / "claude", settings=hook_settings(),  # type: ignore[arg-type]
                                extra_env={"XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(REPO_ROOT)})
            agent.home.mkdir(parents=True, exist_ok=True)
            agent.project.mkdir(parents=True, exist_ok=True)
            agent.prepare()
            env = {k: v for k, v in agent.env().items() if not k.startswith("TMUX")}
            with PtyTerminal(agent.argv(), env, agent.project) as term:
                await in_thread(term.wait_for, r"\? for shortcuts", 120)
                status = agent.config_dir / "sessions" / f"{term.pid}.json"
                for i in range(rounds):
                    target = agent.project / f"hook-{i}.txt"
                    mark = term.mark()
                    await in_thread(term.type_line, f"please FAKE_BASH:touch {target.name}")
                    sid = await until(lambda: next((s for s in reversed(held) if broker.held(s)), None), 60,
                                      "the PermissionRequest hook to be held")
                    await in_thread(term.wait_for, PROCEED, 30, mark)
                    await until(lambda: status_of(status) == "waiting", 30, "Claude's status to say waiting")
                    await asyncio.sleep(random.uniform(0, 0.5))
                    appeared = asyncio.ensure_future(in_thread(wait_file, target))
                    t0 = time.perf_counter()
                    report = await dispatcher.dispatch(claude_session(sid), Reply(ReplyKind.ALLOW))
                    assert report.state is DeliveryState.SUBMITTED, report
                    out.append(await appeared - t0)
                    await until(lambda: status_of(status) == "idle", 60, "Claude to be idle")
    finally:
        await srv.stop()
        shutil.rmtree(runtime, ignore_errors=True)
    return out


async def through_the_pane(rounds: int, scratch: Path) -> list[float]:
    """Claude Code in a tmux pane without hooks, answered with a key: seconds from dispatch to the file."""
    from tests.e2e.harness import ClaudeAgent, FakeModel, TmuxServer

    out: list[float] = []
    with FakeModel("anthropic", scratch / "fake-tmux") as model, TmuxServer() as tmux, \
            ClaudeAgent(tmux, model, scratch / "claude-tmux") as agent:
        dispatcher = Dispatcher(Tmux(env={"TMUX_TMPDIR": str(tmux.tmpdir)}), accept_timeout=0.0)
        pane = PaneRef("tmux", agent.pane, str(tmux.socket_path))
        for i in range(rounds):
            target = agent.project / f"keys-{i}.txt"
            await in_thread(agent.type_line, f"please FAKE_BASH:touch {target.name}")
            await in_thread(agent.wait_for, PROCEED, 60)
            await until(lambda: status_of(agent.session_file()) == "waiting", 30, "Claude's status to say waiting")
            await asyncio.sleep(random.uniform(0, 0.5))
            appeared = asyncio.ensure_future(in_thread(wait_file, target))
            t0 = time.perf_counter()
            report = await dispatcher.dispatch(claude_session(f"keys-{i}", agent.pid, pane), Reply(ReplyKind.ALLOW))
            assert report.state in (DeliveryState.SUBMITTED, DeliveryState.ACCEPTED), report
            out.append(await appeared - t0)
            await until(lambda: status_of(agent.session_file()) == "idle", 60, "Claude to be idle")
    return out


# -- all together --------------------------------------------------------------------------------------------


def measure(rounds: int, claude_rounds: int) -> dict[str, Any]:
    """Both measurements, on a qasync loop of its own (the running ``QCoreApplication``/``QApplication``,
    or a new ``QCoreApplication``); blocking. ``claude`` / ``keys`` are None when Claude Code is not
    installed (``tests/e2e/harness.find_agent_bin``).

    Returns:
        ``{"overhead": {...}, "claude": [s] | None, "keys": [s] | None, "claude_rounds": n}``.
    """
    from tests.e2e.harness import find_agent_bin

    app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    result: dict[str, Any] = {"claude": None, "keys": None, "claude_rounds": claude_rounds}
    try:
        with loop:
            log(f"hook wait overhead: {rounds} held hooks and {rounds} naive polling hooks")
            result["overhead"] = loop.run_until_complete(overhead(rounds))
            if claude_rounds and find_agent_bin("claude") is not None:
                with tempfile.TemporaryDirectory(prefix="deck-tray-hook-") as tmp:
                    log(f"decision → tool start: {claude_rounds} rounds through the hook (Claude Code on a pty)")
                    result["claude"] = loop.run_until_complete(through_the_hook(claude_rounds, Path(tmp)))
                    log(f"decision → tool start: {claude_rounds} rounds through keys (Claude Code in tmux)")
                    result["keys"] = loop.run_until_complete(through_the_pane(claude_rounds, Path(tmp)))
            elif claude_rounds:
                log("decision → tool start skipped: claude not found (./scripts/test.sh installs it)")
    finally:
        asyncio.set_event_loop(None)
    return result


def rows(res: dict[str, Any]) -> list[tuple[str, str, float | str | None, float | str | None, bool | None]]:
    """Table rows ``(metric, goal, deck-tray, naive, ok)`` in milliseconds."""
    oh = {k: [x * 1000 for x in v] for k, v in res["overhead"].items()}
    out: list[tuple[str, str, float | str | None, float | str | None, bool | None]] = [
        ("hook wait overhead: decide → hook printed p95 (ms)", "≤ 100", pct(oh["printed"], 0.95),
         pct(oh["naive_printed"], 0.95), pct(oh["printed"], 0.95) <= 100),
        ("hook wait overhead: decide → hook exited p95 (ms)", "≤ 100", pct(oh["exited"], 0.95),
         pct(oh["naive_exited"], 0.95), pct(oh["exited"], 0.95) <= 100),
    ]
    if res["claude"] is None:
        out.append(("decision → tool start p95 (ms)", "≤ 1000", "claude not found", None, None))
    else:
        hook = [x * 1000 for x in res["claude"]]
        keys = [x * 1000 for x in res["keys"] or []]
        out.append(("decision → tool start, hook vs keys in tmux p95 (ms)", "≤ 1000", pct(hook, 0.95),
                    pct(keys, 0.95), pct(hook, 0.95) <= 1000))
    return out


def notes(res: dict[str, Any]) -> list[str]:
    oh = {k: [x * 1000 for x in v] for k, v in res["overhead"].items()}
    said = [
        f"hook wait overhead: {len(oh['exited'])} rounds of the real `python -m deck_tray hook claude-code` held by "
        f"IpcServer + DecisionBroker (qasync loop, no window); decide() → decision printed p50/p95 "
        f"{pct(oh['printed'], 0.5):.1f}/{pct(oh['printed'], 0.95):.1f} ms, → process exited "
        f"{pct(oh['exited'], 0.5):.1f}/{pct(oh['exited'], 0.95):.1f} ms (max {max(oh['exited']):.1f}). naive = a "
        f"hook polling a decision file every 0.5 s: printed {pct(oh['naive_printed'], 0.5):.0f}/"
        f"{pct(oh['naive_printed'], 0.95):.0f} ms, exited {pct(oh['naive_exited'], 0.5):.0f}/"
        f"{pct(oh['naive_exited'], 0.95):.0f} ms.",
    ]
    if res["claude"] is not None:
        hook = [x * 1000 for x in res["claude"]]
        keys = [x * 1000 for x in res["keys"] or []]
        said.append(
            f"decision → tool start: real Claude Code, {len(hook)} rounds in one session each; through the held "
            f"hook (plain pty) p50/p95 {pct(hook, 0.5):.0f}/{pct(hook, 0.95):.0f} ms (mean "
            f"{statistics.mean(hook):.0f}); beside it deck-tray's keystroke path into a tmux pane (state-first "
            f"checks, then the digit) {pct(keys, 0.5):.0f}/{pct(keys, 0.95):.0f} ms — the 'naive' column. From "
            f"Dispatcher.dispatch(Allow) to the approved command's file. A session's first round: hook "
            f"{hook[0]:.0f} ms, keys {keys[0]:.0f} ms (the hook path's first round was its slowest in every run here).")
    else:
        said.append("decision → tool start: skipped, claude not found.")
    return said


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 overhead rounds, 3 Claude rounds")
    ap.add_argument("--rounds", type=int, default=30, help="held hooks (and naive hooks) measured")
    ap.add_argument("--claude-rounds", type=int, default=10, help="permissions per Claude session (0: skip)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.claude_rounds = min(args.rounds, 10), min(args.claude_rounds, 3)
    res = measure(args.rounds, args.claude_rounds)
    print(f"deck-tray hook bench — {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"{'metric':<54} {'goal':>7} {'deck-tray':>10} {'naive':>8}")
    for name, goal, ours, naive, ok in rows(res):
        show = [f"{v:.1f}" if isinstance(v, float) else (v or "—") for v in (ours, naive)]
        print(f"{name:<54} {goal:>7} {show[0]:>10} {show[1]:>8}  {'' if ok is None else 'ok' if ok else 'MISS'}")
    for n in notes(res):
        print(f"* {n}")


if __name__ == "__main__":
    main()
