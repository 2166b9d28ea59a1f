"""``deck-tray search QUERY``: search every Claude Code, Codex, opencode, Gemini CLI, Qwen Code, …
conversation (every agent of :class:`deck_tray.core.model.AgentKind`; the agents watched through an
adapter, :mod:`deck_tray.core.agents`, from their session files under their homes).

Brings the history index (:mod:`deck_tray.services.history_store`) up to date first — the
first run reads every transcript, later runs only what was appended — then prints the
ranked hits: one block per hit (agent, project, title, date, session id, and the snippet
with the matches in bold on a terminal, ``[…]`` around them otherwise), or with ``--json``
an array of objects with every :class:`deck_tray.core.history.SearchHit` field.

The query is words and ``"quoted phrases"`` (all must occur; ``word*`` for a prefix, ``OR``
between two terms). Works without the app running. Exit codes: 0 hits printed, 1 no
matches ("no matches" on stderr), 2 bad usage (a date or query that cannot be read).

Remote hosts (#18): with the ``remote/search_history`` setting on, or ``--remote``, every
configured host is asked too (over the user's ssh, while this machine's index is brought up to
date; each host answers from its own index): its hits are merged by rank, each block says
``on HOST`` and its session as ``HOST:ID``, and ``--json`` gives every hit a ``"host"`` (``null``
for this machine's, as ``sessions --json`` does). A host that cannot be searched is named on
stderr with why; it never changes the exit code of this machine's results. ``--no-remote``
searches this machine only.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from deck_tray.core.record_kinds import Kind

EXIT_OK, EXIT_NONE, EXIT_USAGE = 0, 1, 2
#: Seconds each remote host may take to connect (its search then has up to
#: :data:`deck_tray.services.remote.SEARCH_TIMEOUT_S` more).
REMOTE_CONNECT_S = 20.0
#: Show indexing progress on a terminal once the update has taken this long (s).
PROGRESS_AFTER_S = 1.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``search QUERY [--json] [--agent A]... [--project TEXT] [--since D] [--until D]
    [--prompts|--answers|--role ROLE...] [--limit N] [--no-update] [--remote|--no-remote]``."""
    from deck_tray.core.model import AgentKind  # no third-party import: --version runs without deps

    agents = [k.value.split("-")[0] for k in AgentKind]  # as core.history.agent_of reads them
    p = sub.add_parser(
        "search", parents=parents, help="search the history of every agent's sessions (Claude Code, Codex, "
                                        "opencode, Gemini CLI, Qwen Code, …)",
        description="Search every conversation (words and \"quoted phrases\", word* for a prefix). "
                    "The index is brought up to date first. Exits 1 when nothing matches.")
    p.add_argument("query", nargs="+", help="what to look for")
    p.add_argument("--json", action="store_true", help="print a JSON array of hits")
    p.add_argument("--agent", action="append", choices=agents, default=[],
                   help="only this agent's sessions (repeatable)")
    p.add_argument("--project", default="", metavar="TEXT", help="only sessions whose folder contains TEXT")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only from this day on")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="only up to this day (included)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--prompts", action="store_true", help="only what you typed")
    g.add_argument("--answers", action="store_true", help="only the agents' answers")
    g.add_argument("--role", action="append", default=[], metavar="ROLE",
                   choices=[k.value for k in Kind],
                   help="only entries of this kind (repeatable): " + ", ".join(k.value for k in Kind))
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N hits (default 20)")
    p.add_argument("--no-update", action="store_true", help="search the index as it is, without updating it")
    p.add_argument("--remote", action=argparse.BooleanOptionalAction, default=None,
                   help="also search the history of the remote hosts (deck-tray remote add); default: the "
                        "'Search the hosts' history too' setting")
    p.set_defaults(func=run)


def _query(args: argparse.Namespace) -> Any:
    from deck_tray.core.history import HistoryRole, SearchQuery, agent_of, parse_date

    roles: frozenset[HistoryRole] = frozenset()
    if args.prompts:
        roles = frozenset({HistoryRole.USER})
    elif args.answers:
        roles = frozenset({HistoryRole.ASSISTANT})
    elif args.role:
        roles = frozenset(HistoryRole(r) for r in args.role)
    return SearchQuery(
        text=" ".join(args.query),
        agents=frozenset(agent_of(a) for a in args.agent),
        project=args.project,
        since=parse_date(args.since) if args.since else None,
        until=parse_date(args.until, end=True) if args.until else None,
        roles=roles,
        limit=max(1, args.limit),
    )


def _agent_dirs() -> tuple[Any, Any]:
    """The folders the app would index: the settings' overrides, else the agents' defaults."""
    from deck_tray.core import claude, codex
    from deck_tray.core import settings as cfg

    claude_dir, codex_dir = claude.config_dir(), codex.codex_home()
    try:
        from deck_tray.services.settings_store import SettingsStore, open_settings

        store = SettingsStore(open_settings())
        return (cfg.agent_dir(store.get(cfg.CLAUDE_DIR), claude_dir),
                cfg.agent_dir(store.get(cfg.CODEX_DIR), codex_dir))
    except Exception:  # no readable settings: the defaults
        return claude_dir, codex_dir


def update_index(index: Any, *, tty: bool) -> None:
    """Index what changed since the last run, with a progress line on stderr when it is
    a terminal and the update takes longer than :data:`PROGRESS_AFTER_S`: the Claude Code and
    Codex folders the app would index, and each adapter's agent's home as this environment names
    it (:func:`deck_tray.core.agents.default_homes`: ``GEMINI_CLI_HOME``, ``QWEN_HOME``, …)."""
    import time

    from deck_tray.core.agents import default_homes
    from deck_tray.services.history_store import discover_files

    claude_dir, codex_dir = _agent_dirs()
    t0 = time.monotonic()
    shown = [False]

    def progress(done: int, total: int) -> None:
        if tty and total and time.monotonic() - t0 > PROGRESS_AFTER_S:
            shown[0] = True
            sys.stderr.write(f"\rdeck-tray: indexing history… {done}/{total} files")
            sys.stderr.flush()

    index.sync_files(discover_files(claude_dir, codex_dir, default_homes()), full=True, progress=progress)
    if shown[0]:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _date(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def format_hit(hit: Any, *, tty: bool) -> str:
    """One hit as a block of text (bold matches on a terminal, ``[…]`` otherwise); a remote
    host's hit says ``on HOST`` on its first line and its session as ``HOST:ID``."""
    from deck_tray.core.wire import hit_host

    bold, plain = ("\033[1m", "\033[0m") if tty else ("[", "]")
    snippet = "".join(f"{bold}{s}{plain}" if m else s for s, m in hit.snippet)
    title = hit.title or "(untitled)"
    role = hit.role.value + (" (sub-agent)" if hit.thread else "")
    host = hit_host(hit)
    return (f"{hit.agent.value}  {hit.project or '-'}  {_date(hit.ts)}  {role}{f'  on {host}' if host else ''}\n"
            f"  {title}\n"
            f"  session {f'{host}:' if host else ''}{hit.session_id}\n"
            f"  {snippet}")


def hit_json(hit: Any) -> dict[str, Any]:
    """A hit for ``--json``: every :class:`~deck_tray.core.history.SearchHit` field and ``"host"``
    (the remote host's name, ``null`` for this machine's history)."""
    from deck_tray.core.wire import hit_host

    return {**hit.to_json(), "host": hit_host(hit) or None}


def remote_enabled(flag: bool | None) -> bool:
    """``--remote`` / ``--no-remote``, else the ``remote/search_history`` setting (off when the
    settings cannot be read)."""
    if flag is not None:
        return flag
    from deck_tray.core import settings as cfg

    try:
        from deck_tray.services.settings_store import SettingsStore, open_settings

        return bool(SettingsStore(open_settings()).get(cfg.REMOTE_SEARCH_HISTORY))
    except Exception:
        return False


async def _search_remote(query: Any) -> list[Any]:
    """Every configured host's :class:`~deck_tray.services.remote.HostSearch` (none configured: [])."""
    from deck_tray.services.remote import control_dir, load_hosts, search_hosts, ssh_command
    from deck_tray.services.settings_store import open_settings

    settings = open_settings()
    hosts = load_hosts(settings)
    if not hosts:
        return []
    ssh, why = ssh_command(settings)
    if why:
        print(f"deck-tray: {why}", file=sys.stderr)
    return await search_hosts(hosts, query, ssh, control_dir(), timeout=REMOTE_CONNECT_S)


async def _no_hosts() -> list[Any]:
    return []


def _search_local(args: argparse.Namespace, query: Any) -> list[Any]:
    """This machine's hits (the index updated first unless ``--no-update``).

    Raises:
        deck_tray.core.history.QueryError: the query cannot be searched for.
    """
    from deck_tray.services.history_store import HistoryIndex

    index = HistoryIndex()
    try:
        index.open()
        if index.rebuilt_because:
            print(f"deck-tray: rebuilding the history index: {index.rebuilt_because}", file=sys.stderr)
        if not args.no_update:
            update_index(index, tty=sys.stderr.isatty())
        hits: list[Any] = index.search(query)
        return hits
    finally:
        index.close()


def run(args: argparse.Namespace) -> int:
    """Update the index, search (the remote hosts too, at the same time, when on), print; the
    exit code."""
    import asyncio
    import json

    from deck_tray.core.history import QueryError

    try:
        query = _query(args)
    except QueryError as exc:
        print(f"deck-tray: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def both() -> tuple[list[Any] | QueryError, list[Any]]:
        local = asyncio.get_running_loop().run_in_executor(None, _search_local, args, query)
        remote = _search_remote(query) if remote_enabled(args.remote) else _no_hosts()
        results: list[Any] = await asyncio.gather(local, remote, return_exceptions=True)
        got, answers = results
        if isinstance(answers, BaseException):  # a bug on the remote side must not lose the local hits
            print(f"deck-tray: searching the remote hosts failed: {answers}", file=sys.stderr)
            answers = []
        if isinstance(got, BaseException) and not isinstance(got, QueryError):
            raise got
        return got, answers

    got, answers = asyncio.run(both())
    if isinstance(got, QueryError):
        print(f"deck-tray: {got}", file=sys.stderr)
        return EXIT_USAGE
    hits = list(got)
    for answer in answers:
        if answer.problem is not None:
            print(f"deck-tray: remote host {answer.host}: {answer.problem.value}: {answer.detail}", file=sys.stderr)
        elif answer.indexing is not None:
            done, total = answer.indexing
            print(f"deck-tray: remote host {answer.host} is still indexing its history ({done}/{total} files); "
                  f"its older conversations may be missing", file=sys.stderr)
        hits += answer.hits
    if answers:  # merged by rank (lower is better), at most --limit in all
        hits = sorted(hits, key=lambda h: h.rank)[:query.limit]
    if args.json:
        print(json.dumps([hit_json(h) for h in hits], ensure_ascii=False, indent=2))
    else:
        tty = sys.stdout.isatty()
        print("\n\n".join(format_hit(h, tty=tty) for h in hits))
    if not hits:
        print("no matches", file=sys.stderr)
        return EXIT_NONE
    return EXIT_OK
