"""Terminals with a remote-control interface, as adapters beside tmux and zellij.

Each is a :class:`deck_tray.services.panes.Multiplexer` whose :attr:`~Multiplexer.name` is the
``PaneRef.multiplexer`` of the panes it serves: :class:`Kitty` (``"kitty"``), :class:`Screen`
(``"screen"``), :class:`WezTerm` (``"wezterm"``) and :class:`Konsole` (``"konsole"``). They find
an agent's pane from its environment (:meth:`Multiplexer.pane_for_agent`), not by listing.
"""

from __future__ import annotations

from deck_tray.services.panes import Multiplexer
from deck_tray.services.terminals.kitty import Kitty
from deck_tray.services.terminals.konsole import Konsole
from deck_tray.services.terminals.screen import Screen
from deck_tray.services.terminals.wezterm import WezTerm

__all__ = ["Kitty", "Konsole", "Screen", "WezTerm", "terminal_adapters"]


def terminal_adapters() -> list[Multiplexer]:
    """One adapter per supported terminal, each finding its program on PATH when used."""
    return [Kitty(), Screen(), WezTerm(), Konsole()]
