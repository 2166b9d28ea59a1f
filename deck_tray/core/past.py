"""A past session (one the registry no longer lists) rebuilt for a read-only tab.

Opened from a search hit: from the history index's entries of the session (complete, every
entry capped by :mod:`deck_tray.core.history`), else from its transcript file with the same
parsers as the live scan (which keep the newest :data:`deck_tray.core.records.MAX_MESSAGES`).

Plain, blocking Python: the UI calls these on a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from deck_tray.core import claude, codex
from deck_tray.core.history import HistoryEntry, HistoryRole, SearchHit
from deck_tray.core.jsonl import JsonlTailer
from deck_tray.core.model import AgentKind, Message, MessageRole, Session, SessionStatus

_ROLE = {HistoryRole.USER: MessageRole.USER, HistoryRole.ASSISTANT: MessageRole.ASSISTANT,
         HistoryRole.TOOL: MessageRole.TOOL}

#: The reason a past session's tab shows.
PAST_REASON = "past session — from the history"


def messages_from_entries(entries: Sequence[HistoryEntry]) -> tuple[Message, ...]:
    """Conversation items of a tab from index entries (in their order; tool entries done)."""
    return tuple(Message(_ROLE[e.role], e.text, e.ts, f"h{e.ordinal}",
                         "done" if e.role is HistoryRole.TOOL else "")
                 for e in entries)


def session_from_entries(hit: SearchHit, entries: Sequence[HistoryEntry]) -> Session:
    """A read-only :class:`Session` for the session of ``hit`` from its index entries."""
    last = max((e.ts for e in entries), default=hit.ts)
    return Session(id=hit.session_id, agent=hit.agent, cwd=hit.project, title=hit.title,
                   status=SessionStatus.ENDED, reason=PAST_REASON, updated_at=last,
                   transcript=hit.source_path, messages=messages_from_entries(entries),
                   server=hit.server_url if hit.agent is AgentKind.OPENCODE else "")


def session_from_transcript(hit: SearchHit) -> Session | None:
    """A read-only :class:`Session` parsed from the transcript of ``hit`` (Claude Code or
    Codex); None when the file is gone or the agent has none (opencode)."""
    path = hit.source_path
    if not path or hit.agent is AgentKind.OPENCODE or not os.path.isfile(path):
        return None
    tailer = JsonlTailer(path)
    state: claude.ClaudeTranscript | codex.CodexRollout = (
        claude.ClaudeTranscript() if hit.agent is AgentKind.CLAUDE_CODE else codex.CodexRollout())
    for rec in tailer.read_new().records:
        state.feed(rec)
    title = state.display_title if isinstance(state, claude.ClaudeTranscript) else state.title
    return Session(id=hit.session_id, agent=hit.agent, cwd=state.cwd or hit.project,
                   title=title or hit.title, status=SessionStatus.ENDED, reason=PAST_REASON,
                   updated_at=state.last_at or hit.ts, transcript=path, messages=tuple(state.messages))


def hit_term(hit: SearchHit) -> str:
    """The matched text to find in the tab: the first highlighted segment of the snippet."""
    for seg, is_match in hit.snippet:
        if is_match and seg.strip():
            return seg.strip()
    return ""


def hit_context(hit: SearchHit) -> str:
    """The snippet's text (the words around the match), to tell that match from others."""
    return "".join(seg for seg, _m in hit.snippet).replace("…", " ").strip()
