"""``deck-tray new --agent claude-code|codex|opencode --dir DIR [--worktree BRANCH] [--prompt TEXT]
[--name NAME] [--trust] [--json] [-- AGENT-ARGS...]``: start an agent session in tmux (issue #15).

The agent starts in a new window of the tmux session you are attached to, or else in the
detached session ``deck-tray`` on the default tmux socket (the server is started when none
runs); see :mod:`deck_tray.services.launcher`. It runs with this command's environment and
the arguments after ``--``. ``--prompt`` is typed once the agent shows its input prompt.
``--worktree BRANCH`` first makes a git worktree for BRANCH (new from HEAD, or the existing
branch) and starts the agent there.

``--json`` prints the session as one ``sessions --json`` row once deck-tray sees it (within
:data:`SEEN_TIMEOUT_S`). Codex writes nothing before its first prompt, so a Codex session
started without ``--prompt`` is listed only after you type one.

Exit codes: 0 started, 2 usage, 3 refused or not seen (the reason is on stderr: the folder
is missing, the agent or tmux is not installed, the agent exited at once …).
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from deck_tray.core.model import PaneRef, Session

EXIT_OK, EXIT_USAGE, EXIT_REFUSED = 0, 2, 3
#: Seconds ``--json`` waits for deck-tray to list the new session.
SEEN_TIMEOUT_S = 30.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``new --agent A --dir DIR [...] [-- AGENT-ARGS...]``."""
    p = sub.add_parser(
        "new", parents=parents, help="start Claude Code, Codex or opencode in a new tmux window",
        description="Start an agent in tmux: a new window in the tmux session you are attached to, else in "
                    "the detached session 'deck-tray'. Arguments after -- go to the agent.")
    p.add_argument("--agent", required=True, choices=("claude-code", "codex", "opencode"), help="which agent")
    p.add_argument("--dir", default=".", metavar="DIR", help="the folder to start in (default: this one)")
    p.add_argument("--worktree", default="", metavar="BRANCH",
                   help="make a git worktree for BRANCH (new from HEAD, or the existing branch) and start there")
    p.add_argument("--prompt", default="", metavar="TEXT", help="the first prompt, typed once the agent is ready")
    p.add_argument("--name", default="", help="the tmux window's name (default: '<agent>: <folder>')")
    p.add_argument("--trust", action="store_true",
                   help="if the agent asks whether you trust the folder, answer yes")
    p.add_argument("--json", action="store_true", help="print the session as a 'sessions --json' row once seen")
    p.add_argument("agent_args", nargs=argparse.REMAINDER, help="-- arguments for the agent")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the session; print where (and the row with ``--json``)."""
    import asyncio

    agent_args = list(args.agent_args)
    if agent_args[:1] == ["--"]:
        agent_args = agent_args[1:]
    elif agent_args:
        print(f"deck-tray new: put the agent's arguments after --: {' '.join(agent_args)}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_run(args, agent_args))


async def _run(args: argparse.Namespace, agent_args: list[str]) -> int:
    import os

    from deck_tray.cli import make_mux, make_scanner
    from deck_tray.core.launch import agent_from_name
    from deck_tray.core.model import AgentKind, Session
    from deck_tray.services.collect import collect, find_session
    from deck_tray.services.dispatcher import Dispatcher
    from deck_tray.services.launcher import Launcher, NewSession
    from deck_tray.services.panes import Tmux

    agent = agent_from_name(args.agent)
    folder = os.path.abspath(os.path.expanduser(args.dir))
    if agent is AgentKind.OPENCODE:
        return await _through_app(args, folder, agent_args)
    if args.worktree:
        from deck_tray.core import settings as cfg
        from deck_tray.services.settings_store import SettingsStore
        from deck_tray.services.worktree import add_worktree

        root = SettingsStore().get(cfg.WORKTREE_ROOT)
        made = await add_worktree(folder, args.worktree, root)
        if not made.ok:
            print(f"deck-tray new: {made.detail}", file=sys.stderr)
            return EXIT_REFUSED
        print(f"deck-tray: {made.detail}", file=sys.stderr)
        folder = made.path
    scanner = make_scanner()
    mux = make_mux()

    async def probe(sid: str) -> Session | None:
        fresh = find_session(await collect(scanner, mux), sid)
        return fresh if isinstance(fresh, Session) else None

    async def find_in_pane(pane: PaneRef) -> Session | None:
        return _in_pane(await collect(scanner, mux), pane)

    launcher = Launcher(Tmux(), Dispatcher(mux, probe), find_in_pane=find_in_pane)
    report = await launcher.start(NewSession(agent, folder, args.prompt, args.name, tuple(agent_args), args.trust))
    if not report.ok or report.pane is None:
        print(f"deck-tray new: {report.detail}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"deck-tray: {report.detail}", file=sys.stderr)
    if args.prompt and (report.prompt is None or not report.prompt.delivered):
        print(f"deck-tray new: the first prompt was not sent; send it with: deck-tray reply <id> "
              f"{_quote(args.prompt)}", file=sys.stderr)
    if not args.json:
        return EXIT_OK
    return await _print_row(args, report.pane, agent)


async def _through_app(args: argparse.Namespace, folder: str, agent_args: list[str]) -> int:
    """opencode: the running app starts it (it owns the opencode server it starts for the folder,
    and stops it when it quits unless told to keep it), with this command's environment."""
    import asyncio
    import os

    from deck_tray.services import ipc

    msg = {"op": "new", "agent": args.agent, "folder": folder, "worktree": args.worktree, "prompt": args.prompt,
           "name": args.name, "args": agent_args, "trust": args.trust, "env": dict(os.environ)}
    try:
        answer = await asyncio.get_running_loop().run_in_executor(None, lambda: ipc.request(msg, timeout=180.0))
    except ipc.NotRunning:
        print("deck-tray new: opencode sessions are started by the deck-tray app (it runs their opencode server "
              "and stops it when it quits); start deck-tray, then run this again — or run 'opencode' in the folder "
              "yourself (deck-tray finds it)", file=sys.stderr)
        return EXIT_REFUSED
    except ipc.IpcError as exc:
        print(f"deck-tray new: the app did not start it: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    detail = str(answer.get("detail") or "")
    if not answer.get("ok"):
        print(f"deck-tray new: {detail}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"deck-tray: {detail}", file=sys.stderr)
    if not args.json:
        return EXIT_OK
    return await _print_row(args, None, None, session_id=str(answer.get("session_id") or ""))


async def _print_row(args: argparse.Namespace, pane: PaneRef | None, agent: object, session_id: str = "") -> int:
    """Wait until the session in ``pane`` is listed, then print its ``sessions --json`` row."""
    import asyncio
    import json

    from deck_tray.cli import _gather, make_scanner
    from deck_tray.core.decisions import answer_via
    from deck_tray.core.model import AgentKind

    loop = asyncio.get_running_loop()
    deadline = loop.time() + SEEN_TIMEOUT_S
    scanner = make_scanner()
    while True:
        if session_id:  # started by the app: its own list has it (whatever folders this command would scan)
            sessions, via = await _app_sessions()
        else:
            sessions, _served, via = await _gather(args, scanner, ask=False)
        hit = next((s for s in sessions if s.id == session_id), None) if session_id else \
            _in_pane(sessions, pane) if pane is not None else None
        if hit is not None:
            print(json.dumps({**hit.to_json(), "answer_via": via.get(hit.id, answer_via(hit))},
                             ensure_ascii=False, indent=2))
            return EXIT_OK
        if loop.time() >= deadline:
            why = (" Codex writes nothing before its first prompt; type one and it is listed."
                   if agent is AgentKind.CODEX and not args.prompt else "")
            where = f"tmux pane {pane.label or pane.pane_id}" if pane is not None else f"session {session_id}"
            print(f"deck-tray new: the agent runs ({where}), but deck-tray did not list its session within "
                  f"{SEEN_TIMEOUT_S:.0f} s.{why}", file=sys.stderr)
            return EXIT_REFUSED
        await asyncio.sleep(0.5)


async def _app_sessions() -> tuple[list[Session], dict[str, str | None]]:
    """The running app's sessions and their ``answer_via`` (empty when it does not answer)."""
    import asyncio

    from deck_tray.services import ipc

    try:
        answer = await asyncio.get_running_loop().run_in_executor(
            None, lambda: ipc.request({"op": "sessions"}, timeout=10.0))
        view = ipc.parse_sessions_answer(answer)
    except ipc.IpcError:
        return [], {}
    return view.sessions, view.answer_via


def _in_pane(sessions: list[Session], pane: PaneRef) -> Session | None:
    import os

    for s in sessions:
        if s.pane is not None and s.pane.pane_id == pane.pane_id and \
                os.path.realpath(s.pane.server) == os.path.realpath(pane.server):
            return s
    return None


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
