"""``deck-tray search QUERY``: search every Claude Code, Codex and opencode conversation.

Brings the history index (:mod:`deck_tray.services.history_store`) up to date first — the
first run reads every transcript, later runs only what was appended — then prints the
ranked hits: one block per hit (agent, project, title, date, session id, and the snippet
with the matches in bold on a terminal, ``[…]`` around them otherwise), or with ``--json``
an array of objects with every :class:`deck_tray.core.history.SearchHit` field.

The query is words and ``"quoted phrases"`` (all must occur; ``word*`` for a prefix, ``OR``
between two terms). Works without the app running. Exit codes: 0 hits printed, 1 no
matches ("no matches" on stderr), 2 bad usage (a date or query that cannot be read).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from deck_tray.core.record_kinds import Kind

EXIT_OK, EXIT_NONE, EXIT_USAGE = 0, 1, 2
#: Show indexing progress on a terminal once the update has taken this long (s).
PROGRESS_AFTER_S = 1.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``search QUERY [--json] [--agent A]... [--project TEXT] [--since D] [--until D]
    [--prompts|--answers|--role ROLE...] [--limit N]``."""
    p = sub.add_parser(
        "search", parents=parents, help="search the history of every Claude Code, Codex and opencode session",
        description="Search every conversation (words and \"quoted phrases\", word* for a prefix). "
                    "The index is brought up to date first. Exits 1 when nothing matches.")
    p.add_argument("query", nargs="+", help="what to look for")
    p.add_argument("--json", action="store_true", help="print a JSON array of hits")
    p.add_argument("--agent", action="append", choices=("claude", "codex", "opencode"), default=[],
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
    a terminal and the update takes longer than :data:`PROGRESS_AFTER_S`."""
    import time

    from deck_tray.services.history_store import discover_files

    claude_dir, codex_dir = _agent_dirs()
    t0 = time.monotonic()
    shown = [False]

    def progress(done: int, total: int) -> None:
        if tty and total and time.monotonic() - t0 > PROGRESS_AFTER_S:
            shown[0] = True
            sys.stderr.write(f"\rdeck-tray: indexing history… {done}/{total} files")
            sys.stderr.flush()

    index.sync_files(discover_files(claude_dir, codex_dir), full=True, progress=progress)
    if shown[0]:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _date(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def format_hit(hit: Any, *, tty: bool) -> str:
    """One hit as a block of text (bold matches on a terminal, ``[…]`` otherwise)."""
    bold, plain = ("\033[1m", "\033[0m") if tty else ("[", "]")
    snippet = "".join(f"{bold}{s}{plain}" if m else s for s, m in hit.snippet)
    title = hit.title or "(untitled)"
    role = hit.role.value + (" (sub-agent)" if hit.thread else "")
    return (f"{hit.agent.value}  {hit.project or '-'}  {_date(hit.ts)}  {role}\n"
            f"  {title}\n"
            f"  session {hit.session_id}\n"
            f"  {snippet}")


def run(args: argparse.Namespace) -> int:
    """Update the index, search, print; the exit code."""
    import json

    from deck_tray.core.history import QueryError
    from deck_tray.services.history_store import HistoryIndex

    try:
        query = _query(args)
    except QueryError as exc:
        print(f"deck-tray: {exc}", file=sys.stderr)
        return EXIT_USAGE
    index = HistoryIndex()
    try:
        index.open()
        if index.rebuilt_because:
            print(f"deck-tray: rebuilding the history index: {index.rebuilt_because}", file=sys.stderr)
        if not args.no_update:
            update_index(index, tty=sys.stderr.isatty())
        try:
            hits = index.search(query)
        except QueryError as exc:
            print(f"deck-tray: {exc}", file=sys.stderr)
            return EXIT_USAGE
    finally:
        index.close()
    if args.json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=2))
    else:
        tty = sys.stdout.isatty()
        print("\n\n".join(format_hit(h, tty=tty) for h in hits))
    if not hits:
        print("no matches", file=sys.stderr)
        return EXIT_NONE
    return EXIT_OK
