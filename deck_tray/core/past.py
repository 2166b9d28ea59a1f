"""A past session (one the registry no longer lists) rebuilt for a read-only tab.

Opened from a search hit: from the history index's entries of the session (complete, every
entry capped by :mod:`deck_tray.core.history`), else from its whole transcript file with the
same parsers as the live scan (which keep only the newest
:data:`deck_tray.core.records.MAX_MESSAGES`); an agent watched through an adapter
(:mod:`deck_tray.core.agents`: Gemini CLI, Qwen Code, …) by its adapter's parser
(``new_transcript``, every record fed, ``settle()``). A session tab also reads a whole transcript here
when the user scrolls above the messages it holds (:func:`conversation_from_transcript`,
:func:`older_than`).

Plain, blocking Python: the UI calls these on a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from deck_tray.core import claude, codex
from deck_tray.core.agents import adapter_for
from deck_tray.core.agents.base import TranscriptState
from deck_tray.core.history import HistoryEntry, HistoryRole, SearchHit
from deck_tray.core.jsonl import JsonlTailer, open_regular
from deck_tray.core.model import AgentKind, Message, MessageRole, Session, SessionStatus

#: The tab item of each index role (a tool's result shows as a tool line with its output).
_ROLE = {HistoryRole.USER: MessageRole.USER, HistoryRole.ASSISTANT: MessageRole.ASSISTANT,
         HistoryRole.TOOL: MessageRole.TOOL, HistoryRole.TOOL_RESULT: MessageRole.TOOL,
         HistoryRole.COMMAND: MessageRole.COMMAND, HistoryRole.HARNESS: MessageRole.HARNESS,
         HistoryRole.COMPACTION: MessageRole.COMPACTION, HistoryRole.THINKING: MessageRole.THINKING,
         HistoryRole.IMAGE: MessageRole.IMAGE, HistoryRole.ERROR: MessageRole.ERROR}

#: The reason a past session's tab shows.
PAST_REASON = "past session — from the history"


def messages_from_entries(entries: Sequence[HistoryEntry]) -> tuple[Message, ...]:
    """Conversation items of a tab from index entries (in their order; tool entries done)."""
    return tuple(Message(_ROLE[e.role], e.text, e.ts, f"h{e.ordinal}",
                         "done" if e.role in (HistoryRole.TOOL, HistoryRole.TOOL_RESULT) else "")
                 for e in entries)


def session_from_entries(hit: SearchHit, entries: Sequence[HistoryEntry]) -> Session:
    """A read-only :class:`Session` for the session of ``hit`` from its index entries."""
    last = max((e.ts for e in entries), default=hit.ts)
    return Session(id=hit.session_id, agent=hit.agent, cwd=hit.project, title=hit.title,
                   status=SessionStatus.ENDED, reason=PAST_REASON, updated_at=last,
                   transcript=hit.source_path, messages=messages_from_entries(entries),
                   server=hit.server_url if hit.agent is AgentKind.OPENCODE else "")


_Parsed = claude.ClaudeTranscript | codex.CodexRollout | TranscriptState


def _parse_transcript(agent: AgentKind, path: str) -> _Parsed:
    """Every record of the transcript ``path`` fed to its agent's parser (no message limit):
    Claude Code's, Codex's, or the :class:`~deck_tray.core.agents.base.TranscriptState` of the
    agent's adapter (settled after the last record).

    Raises:
        OSError: the file cannot be opened (gone, not a regular file, no permission).
        ValueError: ``agent`` has no transcript file (opencode).
    """
    adapter = adapter_for(agent)
    state: _Parsed
    if agent is AgentKind.CLAUDE_CODE:
        state = claude.ClaudeTranscript(max_messages=None)
    elif agent is AgentKind.CODEX:
        state = codex.CodexRollout(codex.thread_id_from_path(path) or "", path, max_messages=None)
    elif adapter is not None:
        state = adapter.new_transcript(path)
    else:
        raise ValueError(f"{agent.label} sessions have no transcript file")
    os.close(open_regular(path))  # the reason it cannot be read, as the system says it
    tailer = JsonlTailer(path)
    res = tailer.read_new()
    if res.missing:  # vanished between the check and the read
        raise FileNotFoundError(2, "No such file or directory", path)
    for rec in res.records:
        state.feed(rec)
    if isinstance(state, TranscriptState):
        state.settle()
    return state


def conversation_from_transcript(agent: AgentKind, path: str) -> tuple[Message, ...]:
    """The whole conversation of a Claude Code transcript, Codex rollout or adapter's session
    file (Gemini CLI, Qwen Code, …), oldest first.

    The same parsers as the live scan, with no window: every message of the file (the live
    scan keeps the newest :data:`deck_tray.core.records.MAX_MESSAGES` of its last
    :data:`deck_tray.core.scan.TAIL_BYTES`). Blocking: reads and parses the whole file
    (about 1 s per 100 MB); call it on a worker thread.

    Args:
        agent: ``CLAUDE_CODE``, ``CODEX`` or an agent of :data:`deck_tray.core.agents.ADAPTERS`.
        path: the session's transcript (``Session.transcript``).

    Raises:
        OSError: the file cannot be read (its ``strerror`` says why).
        ValueError: ``agent`` has no transcript file (opencode).
    """
    return tuple(_parse_transcript(agent, path).messages)


def same_message(a: Message, b: Message) -> bool:
    """The same conversation item as read twice (a tool's state or a sub-agent's summary
    may have moved on in between): by key, else by text and time."""
    if a.role is not b.role:
        return False
    if a.key and b.key:
        return a.key == b.key
    return a.timestamp == b.timestamp and a.text == b.text


def older_than(full: Sequence[Message], held: Sequence[Message]) -> tuple[Message, ...]:
    """The part of ``full`` (a whole conversation) before the messages a tab holds.

    ``held`` is a newer window of the same conversation, oldest first (what the live scan
    kept). Its first item is looked for in ``full`` (from the end: the window is usually the
    newest part); when the first few are not there (read before the file was rewritten),
    the next ones are tried; failing all that, the items of ``full`` older than the oldest
    held one (by time) are taken.

    Returns:
        The older items, oldest first; ``()`` when ``held`` already starts the conversation.
    """
    if not held:
        return tuple(full)
    for j, first in enumerate(held[:20]):
        for i in range(len(full) - 1, -1, -1):
            if same_message(full[i], first):
                return tuple(full[:max(0, i - j)])
    oldest = min((m.timestamp for m in held if m.timestamp), default=0.0)
    if not oldest:
        return ()
    return tuple(m for m in full if m.timestamp and m.timestamp < oldest)


def has_reader(agent: AgentKind) -> bool:
    """True when :func:`session_from_transcript` can read ``agent``'s session files (Claude Code,
    Codex, and every agent of :data:`deck_tray.core.agents.ADAPTERS`); opencode keeps its
    sessions on its server."""
    return agent in (AgentKind.CLAUDE_CODE, AgentKind.CODEX) or adapter_for(agent) is not None


def session_from_transcript(hit: SearchHit) -> Session | None:
    """A read-only :class:`Session` parsed from the whole transcript of ``hit`` (Claude Code,
    Codex, or an agent watched through an adapter); None when the file is gone or cannot be
    read, or the agent has none (opencode, an agent without an adapter)."""
    path = hit.source_path
    if not path or hit.agent is AgentKind.OPENCODE or not os.path.isfile(path):
        return None
    try:
        state = _parse_transcript(hit.agent, path)
    except (OSError, ValueError):
        return None
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
