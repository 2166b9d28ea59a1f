"""Open a session in a terminal pane (filled in once the tmux placement service lands)."""

from __future__ import annotations

from deck_tray.core.model import DeliveryReport, DeliveryState, Session
from deck_tray.services.panes import Multiplexer


async def open_session_in_terminal(mux: Multiplexer, session: Session, opencode: object) -> DeliveryReport:
    """Not available yet."""
    return DeliveryReport(DeliveryState.REFUSED, "opening a terminal is not available yet")
