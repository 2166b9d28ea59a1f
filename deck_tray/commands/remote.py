"""``deck-tray remote add|list|remove``: the other machines whose agents deck-tray watches (#18).

Usage::

    deck-tray remote add NAME DEST [--no-check]   # DEST as ssh takes it: user@host, an alias, …
    deck-tray remote list [--json]
    deck-tray remote remove NAME
    deck-tray remote install NAME [--yes] [--dry-run] [--no-deps]

The hosts are kept in the settings file (``remote/hosts``, :mod:`deck_tray.services.remote`);
a running app picks a change up at once (it is told over its socket). ``add`` connects once to
check (unless ``--no-check``) and says what it found: the remote deck-tray's version and its
sessions, or what went wrong and the ``ssh`` command to run by hand. The ssh command is
``DECK_TRAY_SSH_COMMAND``, else the ``remote/ssh_command`` setting, else ``ssh``.

``install`` puts this very version on the host (:mod:`deck_tray.services.remote_install`): it
shows every command it will run there first and runs them after "Run them? [y/N]" on a terminal,
or with ``--yes``.

Exit codes: 0 done; 2 usage (a bad name, an unknown host, ``install`` not confirmed); 3 ``add``
stored the host but could not reach it (it is kept: deck-tray keeps trying), or ``install``
failed (the reason is on stderr).
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from PySide6.QtCore import QSettings

    from deck_tray.services.remote import HostConfig

EXIT_OK, EXIT_USAGE, EXIT_UNREACHABLE = 0, 2, 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``remote add|list|remove``."""
    p = sub.add_parser("remote", help="watch and answer agents on other machines over your own ssh")
    rs = p.add_subparsers(dest="remote_command", required=True)
    a = rs.add_parser("add", help="add a host (its sessions are listed and answered like local ones)")
    a.add_argument("name", help="deck-tray's name for it (letters, digits, . _ -); sessions are NAME:ID")
    a.add_argument("dest", help="what ssh takes: user@host, a ~/.ssh/config alias, ssh://host:port")
    a.add_argument("--no-check", action="store_true", help="store it without connecting once")
    ls = rs.add_parser("list", help="the hosts, and how their connections are (with the app running)")
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    r = rs.add_parser("remove", help="stop watching a host")
    r.add_argument("name")
    i = rs.add_parser("install", help="install this version of deck-tray on a host (shows what it runs first)")
    i.add_argument("name")
    i.add_argument("--yes", action="store_true", help="run the commands without asking")
    i.add_argument("--dry-run", action="store_true", help="show the commands, run nothing")
    i.add_argument("--no-deps", action="store_true",
                   help="do not install deck-tray's dependencies there (they are there already, or it is offline)")
    p.set_defaults(func=run)


def _tell_app() -> None:
    """Have a running app reload the hosts (nothing happens when none runs)."""
    from deck_tray.services import ipc

    try:
        ipc.request({"op": "remotes_changed"}, timeout=3.0)
    except ipc.IpcError:
        pass


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; returns the exit code."""
    from deck_tray.services.remote import load_hosts, save_hosts
    from deck_tray.services.settings_store import open_settings

    settings = open_settings()
    hosts = load_hosts(settings)
    if args.remote_command == "list":
        return _list(hosts, args.json)
    if args.remote_command == "install":
        return _install(settings, hosts, args)
    if args.remote_command == "remove":
        kept = [h for h in hosts if h.name != args.name]
        if len(kept) == len(hosts):
            print(f"deck-tray: no remote host is named {args.name!r} (see 'deck-tray remote list')", file=sys.stderr)
            return EXIT_USAGE
        save_hosts(settings, kept)
        _tell_app()
        print(f"Removed {args.name}; its sessions are no longer listed.")
        return EXIT_OK
    return _add(settings, hosts, args)


def _add(settings: QSettings, hosts: list[HostConfig], args: argparse.Namespace) -> int:
    import asyncio

    from deck_tray.core.wire import valid_host_name
    from deck_tray.services.remote import HostConfig, HostState, control_dir, save_hosts, snapshot_hosts, ssh_command

    if not valid_host_name(args.name):
        print(f"deck-tray: {args.name!r} cannot name a host: use 1–40 letters, digits, '.', '_' or '-' "
              "(not starting with '-')", file=sys.stderr)
        return EXIT_USAGE
    if not args.dest or args.dest.startswith("-"):
        print(f"deck-tray: {args.dest!r} is not an ssh destination", file=sys.stderr)
        return EXIT_USAGE
    new = HostConfig(args.name, args.dest)
    old = next((h for h in hosts if h.name == args.name), None)
    save_hosts(settings, [h for h in hosts if h.name != args.name] + [new])
    _tell_app()
    if old is None:
        print(f"Added {args.name} ({args.dest}).")
    elif old.dest != args.dest:
        print(f"Changed {args.name}: {old.dest} → {args.dest}.")
    else:
        print(f"{args.name} ({args.dest}) was added before; checking it again.")
    if args.no_check:
        return EXIT_OK
    ssh, why = ssh_command(settings)
    if why:
        print(f"deck-tray: {why}", file=sys.stderr)
    sessions, statuses = asyncio.run(snapshot_hosts([new], ssh, control_dir()))
    st = statuses[0]
    if st.state is HostState.CONNECTED:
        print(f"Connected: deck-tray {st.version} there lists {len(sessions)} sessions.")
        return EXIT_OK
    print(f"deck-tray: {args.name} is stored, but: {st.detail}", file=sys.stderr)
    return EXIT_UNREACHABLE


def _list(hosts: list[HostConfig], as_json: bool) -> int:
    import json

    from deck_tray.services import ipc

    live: dict[str, dict[str, object]] = {}
    try:
        view = ipc.parse_sessions_answer(ipc.request({"op": "sessions"}, timeout=10.0))
        live = {str(r.get("name")): r for r in view.remotes}
    except ipc.IpcError:
        pass
    rows = [{"name": h.name, "dest": h.dest, "state": live.get(h.name, {}).get("state"),
             "detail": live.get(h.name, {}).get("detail")} for h in hosts]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not rows:
        print("No remote hosts. Add one with: deck-tray remote add NAME user@host")
        return EXIT_OK
    for r in rows:
        state = r["state"] or "(deck-tray is not running)"
        print(f"{r['name']:<16} {r['dest']:<32} {state}")
        if r["detail"] and r["state"] != "connected":
            print(f"{'':<16} {r['detail']}")
    return EXIT_OK


def _install(settings: QSettings, hosts: list[HostConfig], args: argparse.Namespace) -> int:
    import asyncio
    import tempfile
    from pathlib import Path

    from deck_tray.services.remote import control_dir, ssh_command
    from deck_tray.services.remote_install import install

    host = next((h for h in hosts if h.name == args.name), None)
    if host is None:
        print(f"deck-tray: no remote host is named {args.name!r}; add it first: deck-tray remote add "
              f"{args.name} user@host", file=sys.stderr)
        return EXIT_USAGE
    ssh, why = ssh_command(settings)
    if why:
        print(f"deck-tray: {why}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="deck-tray-wheel-") as tmp:
        work = Path(tmp)
        shown = asyncio.run(install(host, ssh, control_dir(), out=print, workdir=work, no_deps=args.no_deps,
                                    dry_run=True))
        wheels = sorted(work.glob("deck_tray-*.whl"))
        if not wheels:
            print(f"deck-tray: {shown.detail}", file=sys.stderr)
            return EXIT_UNREACHABLE
        if args.dry_run:
            return EXIT_OK
        if not args.yes:
            if not sys.stdin.isatty():
                print("deck-tray: not a terminal, so not asking: run again with --yes to run these commands",
                      file=sys.stderr)
                return EXIT_USAGE
            if input(f"Run them on {host.name}? [y/N] ").strip().lower() not in ("y", "yes"):
                print("Nothing was run.")
                return EXIT_USAGE
        steps_started = False

        def out(line: str) -> None:
            nonlocal steps_started
            steps_started = steps_started or line.startswith("[1/")
            if steps_started:  # the plan was shown above already
                print(line, flush=True)

        result = asyncio.run(install(host, ssh, control_dir(), out=out, wheel=wheels[0], no_deps=args.no_deps))
    if result.ok:
        print(result.detail)
        return EXIT_OK
    print(f"deck-tray: {result.detail}", file=sys.stderr)
    return EXIT_UNREACHABLE

