"""Open a session in a terminal: a new tmux pane next to the user's, running the agent's own
client for that session (opencode: ``opencode attach <url> --session <id>``), or resume a
past Claude Code / Codex session there (``claude --resume ID``, ``codex resume ID``).

Resuming keeps the session's identity (checked with Claude Code 2.1.197 and Codex 0.169.0):
the same session / thread id, the turns appended to the same transcript / rollout file. So
the registry lists the resumed session under its old id and its tab simply follows it.

The pane runs ``deck-tray opencode-attach`` rather than ``opencode attach`` directly, so
the server password never appears in an argv or in tmux's environment: the helper reads
it from the environment or the keyring itself and then becomes ``opencode attach``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from deck_tray.core.executables import find_agent
from deck_tray.core.launch import AGENT_BINARIES
from deck_tray.core.model import ActionReport, AgentKind, Session
from deck_tray.core.placement import command_line
from deck_tray.services.panes import Multiplexer, MuxSet, Tmux
from deck_tray.services.terminal import open_in_pane

#: The agents that resume a past session from a command line (opencode attaches instead).
RESUMABLE = (AgentKind.CLAUDE_CODE, AgentKind.CODEX)


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


def tmux_of(mux: Multiplexer) -> Tmux | None:
    """The tmux adapter in ``mux`` (itself, or a :class:`MuxSet` member), or None."""
    if isinstance(mux, Tmux):
        return mux
    if isinstance(mux, MuxSet):
        t = mux.muxes.get("tmux")
        return t if isinstance(t, Tmux) else None
    return None


async def open_session_in_terminal(mux: Multiplexer, session: Session, opencode_bin: str = "") -> ActionReport:
    """Open ``session`` in a new tmux pane (state-first: query, decide, act, verify).

    Returns:
        ``ACCEPTED`` with the pane's location, or ``REFUSED`` saying why (no tmux running,
        the command exited at once …) and the command line to run by hand.
    """
    if session.agent is not AgentKind.OPENCODE or not session.server:
        return ActionReport(False, "only opencode sessions can be opened in a terminal so far")
    tmux = tmux_of(mux)
    if tmux is None:
        return ActionReport(False, "tmux support is not set up")
    report = await open_in_pane(tmux, attach_argv(session, opencode_bin), session.cwd,
                                title=f"opencode: {session.display_title}")
    return ActionReport(report.ok, report.detail)


def resume_argv(session: Session, binary: str) -> list[str]:
    """The argv that resumes ``session`` with the agent executable ``binary``.

    Raises:
        ValueError: the agent cannot resume from a command line here (opencode: attach instead).
    """
    if session.agent is AgentKind.CLAUDE_CODE:
        return [binary, "--resume", session.id]
    if session.agent is AgentKind.CODEX:
        return [binary, "resume", session.id]
    raise ValueError(f"{session.agent.label} sessions are continued with Open in terminal")


def agent_binary(agent: AgentKind, env: Mapping[str, str] | None = None) -> str | None:
    """The executable of an agent that resumes sessions (:data:`RESUMABLE`): on ``PATH``, else in
    ``$DECK_TRAY_AGENTS_DIR/node_modules/.bin``; None for the others or when not found."""
    name = AGENT_BINARIES.get(agent) if agent in RESUMABLE else None
    return find_agent(name, os.environ if env is None else env) if name else None


async def resume_in_terminal(mux: Multiplexer, session: Session, binary: str | None = None) -> ActionReport:
    """Resume a past (or ended) session in a new tmux pane in its folder (state-first: query
    tmux, decide where, open, verify the agent stays running). opencode sessions are
    attached instead (:func:`open_session_in_terminal`).

    Args:
        mux: the multiplexers.
        session: the session to resume (its id, agent and cwd are used).
        binary: the agent executable (default: :func:`agent_binary`).

    Returns:
        ``ACCEPTED`` with the pane's location, or ``REFUSED`` saying why (no tmux running,
        the agent is not installed, the folder is gone, it exited at once …) and the command
        to run by hand.
    """
    if session.agent is AgentKind.OPENCODE:
        if not session.server:
            return ActionReport(False, "deck-tray does not know which opencode server ran this "
                                                         "session; start it and open the session from there")
        return await open_session_in_terminal(mux, session)
    name = AGENT_BINARIES[session.agent]
    found = binary or agent_binary(session.agent)
    if not found:
        cmd = command_line(resume_argv(session, name), session.cwd)
        return ActionReport(False, f"{name} was not found on PATH (nor in $DECK_TRAY_AGENTS_DIR). "
                                                     f"Install it, or run: {cmd}")
    tmux = tmux_of(mux)
    if tmux is None:
        return ActionReport(False, "tmux support is not set up. Run: "
                              + command_line(resume_argv(session, name), session.cwd))
    report = await open_in_pane(tmux, resume_argv(session, found), session.cwd,
                                title=f"{session.agent.label}: {session.display_title}")
    detail = report.detail
    if report.ok:
        detail = detail.replace("Opened", "Resumed", 1)
    return ActionReport(report.ok, detail)
