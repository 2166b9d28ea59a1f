"""The agents deck-tray watches through an :class:`~deck_tray.core.agents.base.AgentAdapter`
(issue #19): one module per agent, one line each in :data:`ADAPTERS`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deck_tray.core.agents import copilot, gemini, qwen
from deck_tray.core.agents.base import AgentAdapter
from deck_tray.core.model import AgentKind

#: Every adapter, in the order ``deck-tray doctor`` and the settings list them.
ADAPTERS: tuple[AgentAdapter, ...] = (
    gemini.ADAPTER,
    qwen.ADAPTER,
    copilot.ADAPTER,
)


def adapter_for(kind: AgentKind) -> AgentAdapter | None:
    """The adapter of ``kind``; None for the agents with modules of their own (Claude Code,
    Codex, opencode)."""
    return next((a for a in ADAPTERS if a.kind is kind), None)


def default_homes(env: Mapping[str, str] | None = None) -> dict[AgentKind, Path]:
    """``{agent: its data folder}`` for this user (``env``: the environment to read, default
    deck-tray's own): what the scanner watches."""
    import os

    e = os.environ if env is None else env
    return {a.kind: a.home(e) for a in ADAPTERS}
