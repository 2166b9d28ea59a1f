"""``deck-tray doctor``: is this desktop ready for deck-tray, and what to do where it is not.

Prints one line per check, ``OK`` / ``WARN`` / ``FAIL`` with what was found, and under each
WARN / FAIL an indented ``→`` line with what to do (``--json``: an array of
``{name, level, detail, hint}``). Exits 0 when nothing FAILed, 1 otherwise. Every probe is
cut off after 2 s and none can crash the report; the checks themselves live in
:mod:`deck_tray.commands.doctor.checks`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

#: Where ``hooks_status()`` may live (the ``deck-tray hooks`` implementation), first found wins.
HOOKS_STATUS_MODULES = ("deck_tray.core.hooks_config", "deck_tray.commands.hooks_setup")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``doctor [--json]``."""
    p = sub.add_parser("doctor", parents=parents,
                       help="check the tray, notifications, keyring, tmux/zellij, agents, hooks and opencode servers",
                       description="Check what deck-tray relies on. Each line is OK, WARN or FAIL with what to do; "
                                   "exits 0 when nothing FAILs.")
    p.add_argument("--json", action="store_true", help="print a JSON array of {name, level, detail, hint}")
    p.set_defaults(func=run)


def find_hooks_status() -> Callable[[], Any] | None:
    """``hooks_status`` from the hooks implementation, or None when there is none (yet)."""
    for name in HOOKS_STATUS_MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:  # not written yet, or broken: the hooks line says "status unavailable"
            continue
        func = getattr(mod, "hooks_status", None)
        if callable(func):
            return func  # type: ignore[no-any-return]
    return None


def run(args: argparse.Namespace) -> int:
    """Run every check and print the report; the exit code (0: no FAIL)."""
    import asyncio
    import json

    from deck_tray.commands.doctor.checks import exit_code, format_report, run_checks
    from deck_tray.services.settings_store import open_settings

    settings = open_settings()
    pinned = bool(settings.value("window/pinned", False, type=bool))
    shortcut = str(settings.value("window/global_shortcut", "") or "")
    checks = asyncio.run(run_checks(hooks_status=find_hooks_status(), pinned=pinned, shortcut=shortcut))
    if args.json:
        print(json.dumps([c.to_json() for c in checks], ensure_ascii=False, indent=2))
    else:
        print(format_report(checks))
    return exit_code(checks)
