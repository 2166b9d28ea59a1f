"""Subcommands of ``deck-tray`` beyond ``sessions`` and ``reply``, one module each.

Each module in :data:`MODULES` defines ``add_parser(sub, parents)``: it adds its parser(s)
to ``sub`` (an ``argparse`` subparsers object; ``parents`` carries the common options)
and sets ``func=<callable(args) -> exit code>`` with ``set_defaults``. Modules import
their heavy dependencies inside ``func``, so ``deck-tray hook`` stays fast (importing this
package must stay cheap too: ``deck_tray.cli.main`` imports ``commands.hook_forwarder`` before anything).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: ``hook`` starts fast
if TYPE_CHECKING:
    import argparse
    from types import ModuleType

MODULES = ("hooks_setup", "hook_forwarder", "doctor", "autostart", "search", "new", "launch", "serve", "remote")


def load() -> list[ModuleType]:
    """The subcommand modules, in :data:`MODULES` order."""
    return [importlib.import_module(f"{__name__}.{name}") for name in MODULES]


def add_all(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    """Let every module add its parsers."""
    for mod in load():
        mod.add_parser(sub, parents)
