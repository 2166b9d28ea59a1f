"""Command line: ``deck-tray`` (the app), ``deck-tray sessions``, ``deck-tray reply``.

opencode servers are found by themselves (local processes listening on loopback) and
can be named with ``--opencode-url URL`` (repeatable, also before the subcommand).
When the app runs (and watches the same folders), ``sessions`` and ``reply`` use it
through its socket (:mod:`deck_tray.services.ipc`): answers come from its live state.

Exit codes: 0 success / delivered, 2 usage error or unknown session, 3 refused (the
reason is on stderr, nothing was typed), 4 delivery unknown (something was typed but the
pane failed afterwards; check it, nothing is resent).
"""

from __future__ import annotations

import sys

from deck_tray import __version__

# Only ``sys`` at import time: ``deck-tray hook`` (run by the agents on every hooked event)
# must start in milliseconds, so everything else is imported where it is used.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from deck_tray.core.model import DeliveryReport, Session
    from deck_tray.core.reply import Reply
    from deck_tray.core.scan import Scanner
    from deck_tray.services.ipc import AppView
    from deck_tray.services.panes import MuxSet

EXIT_OK, EXIT_USAGE, EXIT_REFUSED, EXIT_UNKNOWN = 0, 2, 3, 4
#: Seconds the running app may take to answer ``sessions`` (it refreshes first).
APP_TIMEOUT_S = 10.0
#: Seconds the running app may take to deliver a reply (verification included).
REPLY_TIMEOUT_S = 120.0
#: Seconds the one-shot CLI waits for each remote host's sessions (without the app, #18).
REMOTE_TIMEOUT_S = 20.0


#: What ``sessions`` says when nothing runs.
NO_SESSIONS = ("No running agent sessions (Claude Code, Codex, opencode, Gemini CLI, Qwen Code, "
               "Copilot CLI) found.")

def _parser() -> argparse.ArgumentParser:
    import argparse

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--opencode-url", action="append", metavar="URL", default=argparse.SUPPRESS,
                        help="an opencode server to follow, e.g. http://127.0.0.1:4096 (repeatable)")
    p = argparse.ArgumentParser(
        prog="deck-tray", parents=[common],
        description="Watch Claude Code, Codex and opencode sessions, get notified when one waits, answer it.",
    )
    p.add_argument("--version", action="version", version=f"deck-tray {__version__}")
    p.add_argument("--replace", action="store_true",
                   help="end a deck-tray that is already running (also a hung one: SIGTERM, then SIGKILL) "
                        "and start this one")
    p.add_argument("--toggle", action="store_true",
                   help="show the window at the oldest waiting request, or hide it when it has focus (bind it "
                        "to a key in your desktop's keyboard settings); starts deck-tray when it is not running")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("sessions", parents=[common], help="scan once and print every known session")
    s.add_argument("--json", action="store_true", help="print a JSON array")
    s.add_argument("--all", action="store_true", help="include ended sessions in the table")
    bar = s.add_mutually_exclusive_group()
    bar.add_argument("--waybar", action="store_true",
                     help="print the JSON object a waybar custom module reads (text, tooltip, class)")
    bar.add_argument("--polybar", action="store_true", help="print one line for a polybar custom/script module")
    s.add_argument("--watch", action="store_true",
                   help="keep running and print again whenever the output changes (for status bars)")
    s.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="with --watch: how often to look, in seconds (default 2)")
    r = sub.add_parser("reply", parents=[common],
                       help="answer a session (types into its tmux/zellij/screen pane or kitty/WezTerm/Konsole "
                            "window, or through opencode's API)")
    r.add_argument("id", help="session id or a unique prefix of it")
    r.add_argument("text", nargs="?", help="text to send as a prompt (or as a free-text answer)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--allow", action="store_true", help="allow the pending permission once")
    g.add_argument("--deny", nargs="?", const="", metavar="MESSAGE",
                   help="deny the pending permission; MESSAGE is then sent as the next prompt")
    g.add_argument("--option", metavar="LABEL", help="pick the option with this label")
    g.add_argument("--stop", action="store_true", help="stop the running turn (opencode)")
    r.add_argument("--always", action="store_true", help="with --allow: allow and don't ask again")
    from deck_tray import commands

    commands.add_all(sub, [common])
    a = sub.add_parser("opencode-attach", help="attach to an opencode session (the password comes from the "
                                               "environment or the keyring, never the command line)")
    a.add_argument("url", help="the opencode server, e.g. http://127.0.0.1:4096")
    a.add_argument("session", help="the session id (ses_…)")
    a.add_argument("--opencode-bin", default="", help="the opencode binary (default: opencode on PATH)")
    return p


def cmd_opencode_attach(args: argparse.Namespace) -> int:
    """Become ``opencode attach URL --session ID`` with the server's password in its environment."""
    import os
    import shutil

    from deck_tray.services.secrets import Credentials

    binary = args.opencode_bin or shutil.which("opencode")
    if not binary or not os.access(binary, os.X_OK):
        print("deck-tray: opencode is not installed or not on PATH; install it (npm i -g opencode-ai) "
              "and try again.", file=sys.stderr)
        if sys.stdin.isatty():
            input("Press Enter to close this pane.")
        return EXIT_USAGE
    creds = Credentials()
    env = dict(os.environ)
    password = creds.lookup(args.url)
    if password:
        env["OPENCODE_SERVER_PASSWORD"] = password
        env["OPENCODE_SERVER_USERNAME"] = creds.username()
    os.execve(binary, [binary, "attach", args.url, "--session", args.session], env)
    return EXIT_OK  # not reached


def make_scanner() -> Scanner:
    """A scanner on the folders the app watches: the folder settings when set, else the
    agents' own (honouring CLAUDE_CONFIG_DIR and CODEX_HOME), with the app's history window."""
    from deck_tray.core import claude, codex
    from deck_tray.core import settings as cfg
    from deck_tray.core.agents import default_homes
    from deck_tray.core.scan import Scanner
    from deck_tray.services.settings_store import SettingsStore

    store = SettingsStore()
    return Scanner(cfg.agent_dir(store.get(cfg.CLAUDE_DIR), claude.config_dir()),
                   cfg.agent_dir(store.get(cfg.CODEX_DIR), codex.codex_home()),
                   history_s=store.get(cfg.HISTORY_HOURS) * 3600.0, adapter_homes=default_homes())


def _opencode_settings() -> tuple[list[str], bool]:
    """``(servers from the settings, whether to discover local servers)``, as the app reads them
    (``opencode/urls``, ``opencode/discover``; issue #16 item 10)."""
    from deck_tray.core import settings as cfg
    from deck_tray.services.settings_store import SettingsStore

    store = SettingsStore()
    return [*store.get(cfg.OPENCODE_URLS)], bool(store.get(cfg.OPENCODE_DISCOVER))


def make_mux() -> MuxSet:
    """tmux, zellij and the terminals with remote control, as found on PATH."""
    from deck_tray.services.panes import MuxSet, Tmux
    from deck_tray.services.terminals import terminal_adapters
    from deck_tray.services.zellij import Zellij

    return MuxSet([Tmux(), Zellij(), *terminal_adapters()])


def _app_view() -> AppView | None:
    """The running app's sessions, when an app runs and watches the folders this command
    would scan (another ``HOME``/``CLAUDE_CONFIG_DIR``/``CODEX_HOME`` means another world);
    else None and the command scans by itself."""
    import os

    from deck_tray.services import ipc

    try:
        view = ipc.parse_sessions_answer(ipc.request({"op": "sessions"}, timeout=APP_TIMEOUT_S))
    except ipc.NotRunning:
        return None
    except ipc.IpcError as exc:
        print(f"deck-tray: {exc}; scanning without it", file=sys.stderr)
        return None
    scanner = make_scanner()
    mine = (os.path.realpath(scanner.claude_dir), os.path.realpath(scanner.codex_dir))
    return view if (os.path.realpath(view.claude_dir), os.path.realpath(view.codex_dir)) == mine else None


async def _collect(args: argparse.Namespace) -> list[Session]:
    """Sessions from files and panes plus every reachable opencode server; problems with a
    server go to stderr (its sessions are then missing, not guessed)."""
    return (await _gather(args))[0]


def _json(sessions: list[Session], via: dict[str, str | None]) -> str:
    """``sessions --json``: each session's JSON plus ``answer_via`` (the app's, which knows held
    hooks; else from the session itself)."""
    import json

    from deck_tray.core.decisions import answer_via

    return json.dumps([{**s.to_json(), "answer_via": via[s.id] if s.id in via else answer_via(s)}
                       for s in sessions], ensure_ascii=False, indent=2)


async def _gather(args: argparse.Namespace, scanner: Scanner | None = None,
                  ask: bool = True) -> tuple[list[Session], set[str], dict[str, str | None]]:
    """:func:`_collect`, plus the ids of the sessions the running app answered for and the
    app's ``answer_via`` by id (empty without the app).

    With the app running, its live sessions are used (servers named with ``--opencode-url``
    that it does not follow are read here and added); without it, files, panes and opencode
    servers are scanned here (with ``scanner`` when given, so repeated calls read only what
    was appended). ``ask=False`` never prompts for an opencode password.
    """
    import asyncio

    from deck_tray.services.collect import collect
    from deck_tray.services.opencode_source import normalize_url, snapshot_all
    from deck_tray.services.secrets import Credentials

    urls = list(getattr(args, "opencode_url", None) or [])
    creds = Credentials()
    view = await asyncio.get_running_loop().run_in_executor(None, _app_view)
    if view is not None:
        followed = {st.url for st in view.servers}
        extra = [u for u in dict.fromkeys(normalize_url(u) for u in urls) if u not in followed]
        files = view.sessions
        oc, servers = await snapshot_all(extra, creds, discover=False) if extra else ([], [])
        servers = view.servers + servers
    else:
        # As the app does: the servers of the settings too, and discovery only when it is on;
        # the remote hosts are each asked once (#18), bounded, the unreachable ones named on stderr.
        saved, discover = _opencode_settings()
        (files, (oc, servers), remote) = await asyncio.gather(
            collect(scanner or make_scanner(), make_mux()), snapshot_all([*saved, *urls], creds, discover=discover),
            _remote_sessions(report=ask))
        files = files + remote
    locked = [st.url for st in servers if st.phase.value == "needs a password"]
    if locked and ask and sys.stdin.isatty():
        # Ask once per locked server; the password goes to the keyring (or this run only).
        import getpass

        for url in locked:
            password = getpass.getpass(f"Password for the opencode server at {url} (Enter to skip): ")
            if password:
                result = await asyncio.get_running_loop().run_in_executor(None, creds.store, url, password)
                print(f"deck-tray: {result.detail}", file=sys.stderr)
        retry, again = await snapshot_all(locked, creds, discover=False)
        oc += retry
        servers = [st for st in servers if st.url not in locked] + again
    for st in servers:
        if st.phase.value != "connected" and ask:
            print(f"deck-tray: opencode server {st.url} {st.phase.value}: {st.detail}", file=sys.stderr)
    out = files + oc
    out.sort(key=lambda s: (s.status.value == "ended", -s.updated_at))
    if view is None:
        return out, set(), {}
    return out, {s.id for s in view.sessions}, view.answer_via


async def _remote_sessions(report: bool = True) -> list[Session]:
    """The sessions of the configured remote hosts, each asked once over ssh (the app is not
    running); a host that cannot be reached is named on stderr with why (``report``)."""
    from deck_tray.services.remote import HostState, control_dir, load_hosts, snapshot_hosts, ssh_command
    from deck_tray.services.settings_store import open_settings

    settings = open_settings()
    hosts = load_hosts(settings)
    if not hosts:
        return []
    ssh, why = ssh_command(settings)
    if why and report:
        print(f"deck-tray: {why}", file=sys.stderr)
    sessions, statuses = await snapshot_hosts(hosts, ssh, control_dir(), timeout=REMOTE_TIMEOUT_S)
    for st in statuses:
        if st.state is not HostState.CONNECTED and report:
            print(f"deck-tray: remote host {st.name}: {st.detail}", file=sys.stderr)
    return sessions


def cmd_sessions(args: argparse.Namespace) -> int:
    """Print sessions as a table or JSON."""
    import asyncio
    import time

    from deck_tray.core.status import age_text

    if args.watch or args.waybar or args.polybar:
        return _status_bar(args)
    sessions, _served, via = asyncio.run(_gather(args))
    if args.json:
        print(_json(sessions, via))
        return EXIT_OK
    shown = [s for s in sessions if args.all or s.status.value != "ended"]
    if not shown:
        print(NO_SESSIONS)
        return EXIT_OK
    now = time.time()
    for s in shown:
        pane = s.pane.location if s.pane else "-"
        print(f"{_short_id(s)}  {s.agent.value:<11}  {s.status.value:<18}  {pane:<10}  "
              f"{s.display_title[:40]:<40}  {age_text(now - s.updated_at)}")
        print(f"          {s.reason}")
    return EXIT_OK


def _short_id(s: Session) -> str:
    """The id column: 8 characters of the id, after ``HOST:`` for a remote session."""
    return f"{s.host}:{s.local_id[:8]}" if s.host else s.id[:8]


def _render(args: argparse.Namespace, sessions: list[Session], via: dict[str, str | None] | None = None) -> str:
    """The text ``sessions`` prints for the output options in ``args`` (one line for bars)."""
    import json

    if args.waybar or args.polybar:
        from deck_tray.core.statusbar import summarize

        bar = summarize(sessions)
        return json.dumps(bar.waybar(), ensure_ascii=False) if args.waybar else bar.polybar()
    if args.json:
        return _json(sessions, via or {})
    shown = [s for s in sessions if args.all or s.status.value != "ended"]
    return "\n".join(f"{_short_id(s)}  {s.agent.value:<11}  {s.status.value:<18}  {s.display_title[:40]}"
                     for s in shown) or NO_SESSIONS


def _status_bar(args: argparse.Namespace) -> int:
    """``sessions --waybar|--polybar|--json [--watch]``: print, and with ``--watch`` print again
    each time the output changes (looking every ``--interval`` seconds) until stdout closes
    or Ctrl+C. A scan that fails is reported on stderr and the last output stays."""
    import asyncio

    async def run() -> int:
        scanner = make_scanner()
        last: str | None = None
        last_error = ""
        while True:
            try:
                got = await _gather(args, scanner, ask=not args.watch)
                text = _render(args, got[0], got[2])
                last_error = ""
            except Exception as exc:  # a bar must keep running; say why once per new error
                text = last if last is not None else ""
                if str(exc) != last_error:
                    print(f"deck-tray: looking at sessions failed: {exc}", file=sys.stderr)
                    last_error = str(exc)
            if text != last:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
                last = text
            if not args.watch:
                return EXIT_OK
            await asyncio.sleep(max(0.2, args.interval))

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # the bar went away
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _reply_of(args: argparse.Namespace) -> Reply | None:
    from deck_tray.core.reply import Reply, ReplyKind

    if args.always and not args.allow:
        return None
    if args.allow:
        return Reply(ReplyKind.ALLOW_ALWAYS if args.always else ReplyKind.ALLOW)
    if args.deny is not None:
        return Reply(ReplyKind.DENY, args.deny or "")
    if args.option is not None:
        return Reply(ReplyKind.OPTION, args.option)
    if args.stop:
        return Reply(ReplyKind.STOP)
    if args.text:
        return Reply(ReplyKind.PROMPT, args.text)
    return None


async def _reply(args: argparse.Namespace, reply: Reply) -> int:
    from deck_tray.core.model import DeliveryState, Session
    from deck_tray.services.collect import collect, find_session
    from deck_tray.services.dispatcher import Dispatcher
    scanner = make_scanner()
    mux = make_mux()
    sessions, served, _via = await _gather(args)
    found = find_session(sessions, args.id)
    if found is None:
        print(f"deck-tray: no session matches {args.id!r}; see 'deck-tray sessions'", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(found, list):
        ids = ", ".join(s.id[:12] for s in found[:5])
        print(f"deck-tray: {args.id!r} matches several sessions ({ids}); give more of the id",
              file=sys.stderr)
        return EXIT_USAGE

    async def probe(sid: str) -> Session | None:
        fresh = find_session(await collect(scanner, mux), sid)
        return fresh if isinstance(fresh, Session) else None

    report = _reply_via_app(found, reply) if found.id in served else None
    if report is None:
        if found.host:
            report = await _reply_remote(found, reply)
        elif found.server:
            report = await _reply_opencode(found, reply)
        else:
            report = await Dispatcher(mux, probe).dispatch(found, reply)
    if report.state in (DeliveryState.REFUSED, DeliveryState.SUPERSEDED):
        print(f"deck-tray: {report.state.value}: {report.detail}", file=sys.stderr)
        return EXIT_REFUSED
    print(report.state.value)
    if report.state is DeliveryState.UNKNOWN:
        print(f"deck-tray: {report.detail}", file=sys.stderr)
        return EXIT_UNKNOWN
    return EXIT_OK


def _reply_via_app(session: Session, reply: Reply) -> DeliveryReport | None:
    """Have the running app deliver ``reply`` (its dispatcher, its opencode connections).

    Returns None when the app is gone (nothing was sent: the caller delivers itself).
    """
    from deck_tray.core.model import DeliveryReport, DeliveryState
    from deck_tray.services import ipc

    msg = {"op": "reply", "id": session.id, "kind": reply.kind.value, "text": reply.text}
    try:
        answer = ipc.request(msg, timeout=REPLY_TIMEOUT_S)
    except ipc.NotRunning:
        return None
    except ipc.Refused as exc:
        return DeliveryReport(DeliveryState.REFUSED, str(exc), reply.text)
    except ipc.IpcError as exc:
        return DeliveryReport(DeliveryState.UNKNOWN, f"{exc}; check the session, nothing is resent", reply.text)
    try:
        state = DeliveryState(answer.get("state"))
    except ValueError:
        state = DeliveryState.UNKNOWN
    return DeliveryReport(state, str(answer.get("detail") or ""), reply.text)


async def _reply_remote(session: Session, reply: Reply) -> DeliveryReport:
    """Deliver ``reply`` to a remote session through its host's deck-tray (the app is not running)."""
    from deck_tray.core.model import DeliveryReport, DeliveryState
    from deck_tray.services.remote import answer_once, control_dir, load_hosts, ssh_command
    from deck_tray.services.settings_store import open_settings

    settings = open_settings()
    host = next((h for h in load_hosts(settings) if h.name == session.host), None)
    if host is None:
        return DeliveryReport(DeliveryState.REFUSED, f"the host {session.host} is not configured", reply.text)
    ssh, _why = ssh_command(settings)
    return await answer_once(host, session, reply, ssh, control_dir(), timeout=REPLY_TIMEOUT_S)


async def _reply_opencode(session: Session, reply: Reply) -> DeliveryReport:
    from deck_tray.core.model import DeliveryReport, DeliveryState
    from deck_tray.services.opencode_source import answer, snapshot_server
    from deck_tray.services.secrets import Credentials

    st, state, client = await snapshot_server(session.server, Credentials())
    if client is None:
        return DeliveryReport(DeliveryState.REFUSED, f"opencode server {st.url} {st.phase.value}: {st.detail}",
                              reply.text)
    try:
        return await answer(client, state, session, reply)
    finally:
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deck-tray`` console script."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["hook"] and args_list[1:2] not in (["-h"], ["--help"]):
        from deck_tray.commands import hook_forwarder as hook

        return hook.main(args_list[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if callable(func):
        return int(func(args))
    if args.command == "sessions":
        return cmd_sessions(args)
    if args.command == "opencode-attach":
        return cmd_opencode_attach(args)
    if args.command == "reply":
        reply = _reply_of(args)
        if reply is None:
            parser.error("reply needs TEXT, --allow [--always], --deny [MESSAGE], --option LABEL or --stop")
        import asyncio

        return asyncio.run(_reply(args, reply))
    from deck_tray.commands.run import run_app

    return run_app(getattr(args, "opencode_url", None) or [], replace=bool(getattr(args, "replace", False)),
                   toggle=bool(getattr(args, "toggle", False)))


if __name__ == "__main__":
    sys.exit(main())
