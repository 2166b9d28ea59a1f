"""``deck-tray launch --env-file FILE --cwd DIR -- PROGRAM ARGS…``: the first process of a pane
``deck-tray new`` opened (:mod:`deck_tray.services.launcher`).

It reads the environment of the process that asked for the session from ``FILE`` (a ``0600``
JSON file of this user, deleted once read), changes to ``DIR`` and ``exec``s ``PROGRAM`` with
that environment, so the pane's process becomes the agent and no variable ever appears on a
command line. Not meant to be typed by hand. Exit codes (only when the exec fails): 2 usage,
3 the file or the program could not be used (the reason is printed in the pane).
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_USAGE, EXIT_REFUSED = 2, 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``launch --env-file FILE --cwd DIR -- PROGRAM [ARGS…]``."""
    p = sub.add_parser("launch", help="(used by 'deck-tray new' inside the pane it opens) start an agent with "
                                      "the environment of the process that asked")
    p.add_argument("--env-file", required=True, metavar="FILE", help="the private environment file to read")
    p.add_argument("--cwd", required=True, metavar="DIR", help="the folder to run in")
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS…")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Become the program (``os.execve``); returns only on failure."""
    from deck_tray.services.launcher import read_env_file

    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("deck-tray launch: no program given", file=sys.stderr)
        return EXIT_USAGE
    try:
        env = read_env_file(args.env_file)
    except (OSError, ValueError) as exc:
        print(f"deck-tray launch: cannot read the environment for {argv[0]}: {exc}. "
              "Start the session again from deck-tray.", file=sys.stderr)
        return EXIT_REFUSED
    try:
        os.chdir(args.cwd)
        os.execve(argv[0], argv, env)
    except OSError as exc:
        print(f"deck-tray launch: cannot start {argv[0]} in {args.cwd}: {exc}", file=sys.stderr)
    return EXIT_REFUSED
