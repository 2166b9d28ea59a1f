"""Open a session in a terminal: a new tmux pane next to the user's, running the agent's own
client for that session (opencode: ``opencode attach <url> --session <id>``).

The pane runs ``deck-tray opencode-attach`` rather than ``opencode attach`` directly, so
the server password never appears in an argv or in tmux's environment: the helper reads
it from the environment or the keyring itself and then becomes ``opencode attach``.
"""

from __future__ import annotations

import sys

from deck_tray.core.model import AgentKind, DeliveryReport, DeliveryState, Session
from deck_tray.services.panes import Multiplexer, MuxSet, Tmux
from deck_tray.services.terminal import open_in_pane


def self_argv() -> list[str]:
    """How to run deck-tray's own CLI again (the installed interpreter, or a frozen bundle)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "deck_tray"]


def attach_argv(session: Session, opencode_bin: str = "") -> list[str]:
    """The argv of the pane that attaches to an opencode session."""
    argv = [*self_argv(), "opencode-attach", session.server, session.id]
    if opencode_bin:
        argv += ["--opencode-bin", opencode_bin]
    return argv


def _tmux(mux: Multiplexer) -> Tmux | None:
    if isinstance(mux, Tmux):
        return mux
    if isinstance(mux, MuxSet):
        t = mux.muxes.get("tmux")
        return t if isinstance(t, Tmux) else None
    return None


async def open_session_in_terminal(mux: Multiplexer, session: Session, opencode_bin: str = "") -> DeliveryReport:
    """Open ``session`` in a new tmux pane (state-first: query, decide, act, verify).

    Returns:
        ``ACCEPTED`` with the pane's location, or ``REFUSED`` saying why (no tmux running,
        the command exited at once …) and the command line to run by hand.
    """
    if session.agent is not AgentKind.OPENCODE or not session.server:
        return DeliveryReport(DeliveryState.REFUSED, "only opencode sessions can be opened in a terminal so far")
    tmux = _tmux(mux)
    if tmux is None:
        return DeliveryReport(DeliveryState.REFUSED, "tmux support is not set up")
    report = await open_in_pane(tmux, attach_argv(session, opencode_bin), session.cwd,
                                title=f"opencode: {session.display_title}")
    return DeliveryReport(DeliveryState.ACCEPTED if report.ok else DeliveryState.REFUSED, report.detail)
