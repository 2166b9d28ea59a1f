"""Searchable history: what of a conversation goes into the index, and the search contract.

Pure Python. :mod:`deck_tray.services.history_index` stores what this module extracts in
SQLite/FTS5; the search window, the tab search and ``deck-tray search`` use the
dataclasses defined here.

Sources (shapes captured from Claude Code 2.1.197, Codex CLI 0.169.0, opencode 1.18.33;
see ``shared/reference``):

* Claude Code transcripts ``CONFIG/projects/<encoded cwd>/<session id>.jsonl`` — fed record
  by record to :class:`ClaudeExtractor`: typed prompts (``user`` records whose content is a
  string, not ``isMeta``, not a slash-command wrapper) and user ``text`` blocks, assistant
  ``text`` blocks, tool calls (``Name(summary)``) and tool results (capped).
* Codex rollouts ``CODEX_HOME/sessions/YYYY/MM/DD/rollout-<stamp>-<thread id>.jsonl`` (and
  ``archived_sessions/``) — :class:`CodexExtractor`, both record shapes (the 0.169
  ``{"timestamp", "type", "payload"}`` envelope and the older bare items /
  ``event_msg.user_message``), with the same prompt rules as :class:`deck_tray.core.codex.CodexRollout`.
* opencode messages (``GET /session/{id}/message`` → ``[{"info", "parts"}]``) —
  :func:`opencode_entries`: ``text`` parts by the message's role, ``tool`` parts as
  ``tool(summary)`` plus their output (capped); synthetic/ignored parts are skipped.

Every entry's text is capped (:data:`MAX_TEXT_CHARS`, tool output :data:`TOOL_TEXT_CHARS`):
a 30 KB tool output is rarely what one searches for and would dominate the index.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from deck_tray.core import claude, codex
from deck_tray.core.model import AgentKind
from deck_tray.core.records import iso_timestamp

#: Characters kept of one prompt or answer.
MAX_TEXT_CHARS = 16_000
#: Characters kept of one tool call or tool output.
TOOL_TEXT_CHARS = 1_500
#: Characters of an entry's text a :class:`SearchHit` carries.
HIT_TEXT_CHARS = 4_000
#: Marks around matches in FTS5 ``highlight()``/``snippet()`` output (private-use characters).
MARK_OPEN = "\ue000"
MARK_CLOSE = "\ue001"


class HistoryRole(enum.Enum):
    """Who wrote an entry; the value is the JSON/CLI spelling."""

    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True)
class HistoryEntry:
    """One searchable piece of a conversation.

    Attributes:
        ordinal: position in its session, 0-based, in the order the source lists them
            (file order for transcripts, message/part order for opencode).
        role: who wrote it.
        ts: when, POSIX seconds (0.0 when the source gave no time).
        text: the text (capped: :data:`MAX_TEXT_CHARS`, tool text :data:`TOOL_TEXT_CHARS`).
        offset: byte offset of the source record's line in the transcript file; -1 for opencode.
    """

    ordinal: int
    role: HistoryRole
    ts: float
    text: str
    offset: int


@dataclass(frozen=True)
class SearchQuery:
    """What to look for.

    Attributes:
        text: words and ``"quoted phrases"`` that must all occur (``word*`` = prefix,
            ``OR`` between two terms = either); see :func:`fts_match`.
        agents: only these agents (empty: all).
        project: only sessions whose cwd contains this text (case-insensitive; ``""``: all).
        since: only entries at or after this time (POSIX seconds).
        until: only entries before this time (POSIX seconds).
        roles: only entries of these roles (empty: all).
        limit: at most this many hits.
        session_id: only this session (``""``: all).
    """

    text: str
    agents: frozenset[AgentKind] = frozenset()
    project: str = ""
    since: float | None = None
    until: float | None = None
    roles: frozenset[HistoryRole] = frozenset()
    limit: int = 50
    session_id: str = ""


@dataclass(frozen=True)
class SearchHit:
    """One result of a search.

    Attributes:
        agent: the session's agent.
        session_id: Claude session id, Codex thread id or opencode ``ses_…`` id.
        title: the session's title (generated/custom, else its first prompt).
        project: the session's cwd.
        source_path: the transcript file; ``""`` for opencode.
        server_url: the opencode server; ``""`` for Claude and Codex.
        ordinal: the entry's :attr:`HistoryEntry.ordinal` (open the tab there).
        role: who wrote the entry.
        ts: the entry's time, POSIX seconds.
        text: the entry's text (at most :data:`HIT_TEXT_CHARS` characters).
        snippet: an excerpt around the matches as ``(segment, is_match)`` pairs.
        rank: lower is better (FTS5 bm25, weighted: prompts and title matches count more).
    """

    agent: AgentKind
    session_id: str
    title: str
    project: str
    source_path: str
    server_url: str
    ordinal: int
    role: HistoryRole
    ts: float
    text: str
    snippet: tuple[tuple[str, bool], ...]
    rank: float

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON values (enums by value, the snippet as ``[[text, is_match], …]``)."""
        return {
            "agent": self.agent.value, "session_id": self.session_id, "title": self.title,
            "project": self.project, "source_path": self.source_path, "server_url": self.server_url,
            "ordinal": self.ordinal, "role": self.role.value, "ts": self.ts, "text": self.text,
            "snippet": [[s, m] for s, m in self.snippet], "rank": self.rank,
        }


# -- queries ------------------------------------------------------------------------------------

class QueryError(ValueError):
    """The search text cannot be turned into a query (e.g. it has nothing to search for)."""


_WORD_RE = re.compile(r"\w", re.UNICODE)


def _term(raw: str, phrase: bool) -> str | None:
    prefix = False
    if not phrase and raw.endswith("*"):
        raw, prefix = raw.rstrip("*"), True
    if not _WORD_RE.search(raw):
        return None  # only punctuation: the tokenizer keeps nothing of it
    quoted = '"' + raw.replace('"', '""') + '"'
    return quoted + ("*" if prefix else "")


def fts_match(text: str) -> str:
    """An FTS5 ``MATCH`` expression for what a user typed; never an FTS5 syntax error.

    Every bare word becomes a quoted string (so ``foo-bar`` is the phrase ``foo bar``,
    ``C++`` the token ``c``, and ``AND``/``NEAR``/``:`` are not operators), a
    ``"quoted phrase"`` stays a phrase, a trailing ``*`` on a word asks for a prefix, and a
    bare ``OR`` between two terms is kept as the operator. Terms are ANDed.

    Raises:
        QueryError: nothing in ``text`` can be searched for (empty, or only punctuation).
    """
    terms: list[str] = []
    for m in re.finditer(r'"([^"]*)"?|(\S+)', text):
        phrase, word = m.group(1), m.group(2)
        if word == "OR":
            if terms and terms[-1] != "OR":
                terms.append("OR")
            continue
        t = _term(phrase if phrase is not None else word, phrase is not None)
        if t is not None:
            terms.append(t)
    while terms and terms[-1] == "OR":
        terms.pop()
    if not terms:
        raise QueryError(f"nothing to search for in {text!r}")
    return " ".join(terms)


def query_words(text: str) -> list[str]:
    """The lower-cased words of a search text (``OR`` and punctuation left out)."""
    return [w.lower() for w in re.findall(r"\w+", text) if w != "OR"]


def match_regex(text: str) -> re.Pattern[str] | None:
    """A case-insensitive regex finding the terms of a search text in an entry's text, as
    :func:`fts_match` reads them (phrases as words separated by non-word characters,
    ``word*`` as a prefix); None when there is nothing to find."""
    alts: list[str] = []
    for m in re.finditer(r'"([^"]*)"?|(\S+)', text):
        phrase, word = m.group(1), m.group(2)
        if word == "OR":
            continue
        raw = phrase if phrase is not None else word
        prefix = phrase is None and raw.endswith("*")
        words = re.findall(r"\w+", raw)
        if not words:
            continue
        body = r"\W+".join(re.escape(w) for w in words)
        alts.append(r"(?<!\w)" + body + (r"\w*" if prefix else r"(?!\w)"))
    if not alts:
        return None
    alts.sort(key=len, reverse=True)
    return re.compile("|".join(alts), re.IGNORECASE)


def snippet(text: str, query_text: str, width: int = 180) -> tuple[tuple[str, bool], ...]:
    """An excerpt of ``text`` of about ``width`` characters around the first match of
    ``query_text`` (see :func:`match_regex`), every match in it marked, as
    ``(segment, is_match)`` pairs; ``…`` where text was cut; newlines become spaces.

    Done here rather than with FTS5 ``snippet()``: that function evaluates the whole
    ``MATCH`` again for every row it is asked about, which for a common word over a large
    history costs more than the search itself.
    """
    rx = match_regex(query_text)
    found = list(rx.finditer(text)) if rx is not None else []
    if not found:
        cut = text[:width]
        return (((cut + ("…" if len(text) > width else "")).replace("\n", " "), False),) if cut else ()
    first = found[0]
    start = max(0, first.start() - width // 3)
    if start > 0:
        space = text.find(" ", start, first.start())
        start = space + 1 if space >= 0 else start
    end = min(len(text), max(start + width, first.end()))
    if end < len(text):
        space = text.rfind(" ", first.end(), end)
        end = space if space > 0 else end
    marked = ["…" if start > 0 else ""]
    pos = start
    for m in found:
        if m.start() < pos:
            continue
        if m.start() >= end:
            break
        marked += [text[pos:m.start()], MARK_OPEN, m.group(0), MARK_CLOSE]
        pos = m.end()
    marked += [text[pos:end], "…" if end < len(text) else ""]
    return marked_segments("".join(marked))


_AGENT_NAMES = {"claude": AgentKind.CLAUDE_CODE, "claude-code": AgentKind.CLAUDE_CODE,
                "codex": AgentKind.CODEX, "opencode": AgentKind.OPENCODE}
_ROLE_NAMES = {"user": HistoryRole.USER, "prompt": HistoryRole.USER, "prompts": HistoryRole.USER,
               "assistant": HistoryRole.ASSISTANT, "answer": HistoryRole.ASSISTANT,
               "answers": HistoryRole.ASSISTANT, "tool": HistoryRole.TOOL, "tools": HistoryRole.TOOL}


def agent_of(name: str) -> AgentKind:
    """``claude``/``claude-code``/``codex``/``opencode`` → :class:`AgentKind`.

    Raises:
        QueryError: another name.
    """
    try:
        return _AGENT_NAMES[name.strip().lower()]
    except KeyError:
        raise QueryError(f"unknown agent {name!r} (claude, codex or opencode)") from None


def parse_date(text: str, *, end: bool = False) -> float:
    """``YYYY-MM-DD`` (local midnight; with ``end`` the next midnight) or ``YYYY-MM-DDTHH:MM``
    as POSIX seconds.

    Raises:
        QueryError: not such a date.
    """
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = _dt.date.fromisoformat(raw)
            if end:
                day += _dt.timedelta(days=1)
            return _dt.datetime(day.year, day.month, day.day).timestamp()
        return _dt.datetime.fromisoformat(raw).timestamp()
    except ValueError:
        raise QueryError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def parse_query(text: str, *, limit: int = 50) -> SearchQuery:
    """A :class:`SearchQuery` from a filter string such as
    ``agent:codex project:deck since:2026-11-01 until:2026-11-22 role:user token refresh``.

    Filters: ``agent:`` (repeatable), ``project:``, ``since:``/``until:`` (``YYYY-MM-DD``,
    ``until`` includes that day), ``role:`` (``user``/``prompts``, ``assistant``/``answers``,
    ``tool``; repeatable), ``session:``. Everything else is the search text.

    Raises:
        QueryError: a filter value is not understood.
    """
    try:
        tokens = shlex.split(text)
    except ValueError:
        tokens = text.split()
    agents: set[AgentKind] = set()
    roles: set[HistoryRole] = set()
    project = session = ""
    since: float | None = None
    until: float | None = None
    rest: list[str] = []
    for tok in tokens:
        key, sep, val = tok.partition(":")
        key = key.lower()
        if sep and val and key in ("agent", "project", "since", "until", "role", "session"):
            if key == "agent":
                agents.add(agent_of(val))
            elif key == "project":
                project = val
            elif key == "since":
                since = parse_date(val)
            elif key == "until":
                until = parse_date(val, end=True)
            elif key == "role":
                if val.lower() not in _ROLE_NAMES:
                    raise QueryError(f"unknown role {val!r} (user, assistant or tool)")
                roles.add(_ROLE_NAMES[val.lower()])
            else:
                session = val
        else:
            rest.append(f'"{tok}"' if " " in tok else tok)
    return SearchQuery(" ".join(rest), frozenset(agents), project, since, until, frozenset(roles), limit, session)


def marked_segments(marked: str) -> tuple[tuple[str, bool], ...]:
    """Split text with :data:`MARK_OPEN`/:data:`MARK_CLOSE` around matches into
    ``(segment, is_match)`` pairs (adjacent pieces of the same kind merged, empty ones dropped)."""
    out: list[tuple[str, bool]] = []
    is_match = False
    for piece in re.split(f"([{MARK_OPEN}{MARK_CLOSE}])", marked):
        if piece == MARK_OPEN:
            is_match = True
        elif piece == MARK_CLOSE:
            is_match = False
        elif piece:
            piece = piece.replace("\n", " ")
            if out and out[-1][1] == is_match:
                out[-1] = (out[-1][0] + piece, is_match)
            else:
                out.append((piece, is_match))
    return tuple(out)


# -- extraction ---------------------------------------------------------------------------------

def _cap(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + "…"


@dataclass
class ExtractState:
    """What an extractor knows about its session between batches (stored with the offset).

    Attributes:
        session_id: the session id ("" until a record names it).
        cwd: the session's working directory.
        title: generated/custom title, else the first prompt.
        title_rank: 0 none, 1 first prompt, 2 summary/ai-title, 3 custom title.
        started: first record time (POSIX s, 0 unknown).
        updated: newest record time.
        next_ordinal: the ordinal the next entry gets.
        flags: agent-specific booleans (Codex: ``saw_response_user``).
    """

    session_id: str = ""
    cwd: str = ""
    title: str = ""
    title_rank: int = 0
    started: float = 0.0
    updated: float = 0.0
    next_ordinal: int = 0
    flags: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> str:
        """The state as a JSON string (stored in the database)."""
        return json.dumps({"flags": self.flags, "title_rank": self.title_rank})

    def load_json(self, raw: str) -> None:
        """Restore :attr:`flags` and :attr:`title_rank` from :meth:`to_json` output (bad input ignored)."""
        try:
            obj = json.loads(raw) if raw else {}
        except ValueError:
            return
        if isinstance(obj, dict):
            flags = obj.get("flags")
            if isinstance(flags, dict):
                self.flags = {str(k): bool(v) for k, v in flags.items()}
            if isinstance(obj.get("title_rank"), int):
                self.title_rank = obj["title_rank"]


class Extractor:
    """Base of the transcript extractors: feed records in file order, collect entries.

    Args:
        state: what earlier batches learned (a fresh :class:`ExtractState` for a new file).
    """

    def __init__(self, state: ExtractState | None = None) -> None:
        self.state = state or ExtractState()

    def _title(self, text: str, rank: int) -> None:
        text = text.strip()
        if text and rank >= self.state.title_rank and (rank > 1 or not self.state.title):
            self.state.title = text.splitlines()[0][:200]
            self.state.title_rank = rank

    def _time(self, ts: float) -> None:
        if ts:
            st = self.state
            st.started = min(st.started, ts) if st.started else ts
            st.updated = max(st.updated, ts)

    def _entry(self, out: list[HistoryEntry], role: HistoryRole, ts: float, text: str, offset: int) -> None:
        text = text.strip()
        if not text:
            return
        cap = TOOL_TEXT_CHARS if role is HistoryRole.TOOL else MAX_TEXT_CHARS
        out.append(HistoryEntry(self.state.next_ordinal, role, ts, _cap(text, cap), offset))
        self.state.next_ordinal += 1

    def feed(self, rec: dict[str, Any], offset: int) -> list[HistoryEntry]:
        """Entries of one record (``offset``: where its line starts in the file)."""
        raise NotImplementedError


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(c.get("text")) for c in content if isinstance(c, dict) and c.get("type") == "text")
    return ""


class ClaudeExtractor(Extractor):
    """Entries of a Claude Code transcript (``projects/<encoded cwd>/<id>.jsonl``, 2.1.197)."""

    def feed(self, rec: dict[str, Any], offset: int) -> list[HistoryEntry]:
        """Entries of one transcript record; unknown record and block types give none."""
        out: list[HistoryEntry] = []
        st = self.state
        rtype = rec.get("type")
        if not st.session_id and isinstance(rec.get("sessionId"), str):
            st.session_id = rec["sessionId"]
        cwd = rec.get("cwd")
        if isinstance(cwd, str) and cwd:
            st.cwd = cwd
        ts = iso_timestamp(rec) if rtype in ("user", "assistant") else 0.0
        self._time(ts)
        if rtype == "user":
            msg = rec.get("message")
            if not isinstance(msg, dict) or rec.get("isMeta"):
                return out
            content = msg.get("content")
            if isinstance(content, str):
                if content.startswith("<local-command-caveat>") or claude.COMMAND_TAG_RE.search(content):
                    return out
                self._entry(out, HistoryRole.USER, ts, content, offset)
                self._title(content, 1)
            elif isinstance(content, list):
                for block in content:
                    if not isinstance(block, dict):
                        continue
                    btype = block.get("type")
                    if btype == "tool_result":
                        self._entry(out, HistoryRole.TOOL, ts, _result_text(block.get("content")), offset)
                    elif btype == "text":
                        text = str(block.get("text") or "")
                        if not text.startswith("[Request interrupted"):
                            self._entry(out, HistoryRole.USER, ts, text, offset)
        elif rtype == "assistant":
            msg = rec.get("message")
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, list):
                for block in content:
                    if not isinstance(block, dict):
                        continue
                    btype = block.get("type")
                    if btype == "text":
                        self._entry(out, HistoryRole.ASSISTANT, ts, str(block.get("text") or ""), offset)
                    elif btype == "tool_use":
                        name = str(block.get("name") or "tool")
                        summary = claude.tool_summary(name, block.get("input"))
                        self._entry(out, HistoryRole.TOOL, ts, f"{name}({summary})", offset)
        elif rtype == "ai-title" and isinstance(rec.get("aiTitle"), str):
            self._title(rec["aiTitle"], 2)
        elif rtype == "custom-title" and isinstance(rec.get("customTitle"), str):
            self._title(rec["customTitle"], 3)
        elif rtype == "summary" and isinstance(rec.get("summary"), str):
            self._title(rec["summary"], 2)
        return out


class CodexExtractor(Extractor):
    """Entries of a Codex rollout (``sessions/YYYY/MM/DD/rollout-*.jsonl``, 0.169.0 and older shapes)."""

    def feed(self, rec: dict[str, Any], offset: int) -> list[HistoryEntry]:
        """Entries of one rollout record; unknown types give none."""
        out: list[HistoryEntry] = []
        st = self.state
        ts = iso_timestamp(rec)
        self._time(ts)
        rtype = rec.get("type")
        payload = rec.get("payload")
        if not isinstance(payload, dict):
            if rtype in ("message", "function_call", "function_call_output", "local_shell_call"):
                self._item(out, rec, ts, offset)
            elif rtype is None and isinstance(rec.get("id"), str) and not st.session_id:
                st.session_id = rec["id"]
            return out
        if rtype == "session_meta":
            st.session_id = st.session_id or str(payload.get("id") or payload.get("session_id") or "")
            st.cwd = str(payload.get("cwd") or st.cwd)
        elif rtype == "turn_context":
            if isinstance(payload.get("cwd"), str) and payload["cwd"]:
                st.cwd = payload["cwd"]
        elif rtype == "response_item":
            self._item(out, payload, ts, offset)
        elif rtype == "event_msg" and payload.get("type") == "user_message" and not st.flags.get("saw_response_user"):
            text = str(payload.get("message") or "")
            if text and not text.startswith(codex.HARNESS_PREFIXES):
                self._entry(out, HistoryRole.USER, ts, text, offset)
                self._title(text, 1)
        return out

    def _item(self, out: list[HistoryEntry], p: dict[str, Any], ts: float, offset: int) -> None:
        ptype = p.get("type")
        if ptype == "message":
            role = p.get("role")
            text = codex.content_text(p.get("content"))
            if role == "user":
                if text and not text.lstrip().startswith(codex.HARNESS_PREFIXES):
                    self.state.flags["saw_response_user"] = True
                    self._entry(out, HistoryRole.USER, ts, text, offset)
                    self._title(text, 1)
            elif role == "assistant":
                self._entry(out, HistoryRole.ASSISTANT, ts, text, offset)
        elif ptype in ("function_call", "custom_tool_call", "local_shell_call"):
            name = str(p.get("name") or ptype)
            args = codex.parse_arguments(p.get("arguments", p.get("input", p.get("action"))))
            self._entry(out, HistoryRole.TOOL, ts, f"{name}({codex.call_summary(name, args)})", offset)
        elif ptype in ("function_call_output", "custom_tool_call_output"):
            o = p.get("output")
            if isinstance(o, dict):
                o = o.get("content", o.get("output"))
            self._entry(out, HistoryRole.TOOL, ts, o if isinstance(o, str) else _result_text(o), offset)


def extractor_for(agent: AgentKind, state: ExtractState | None = None) -> Extractor:
    """The extractor of a transcript file's agent (Claude Code or Codex).

    Raises:
        ValueError: ``agent`` has no transcript files (opencode: use :func:`opencode_entries`).
    """
    if agent is AgentKind.CLAUDE_CODE:
        return ClaudeExtractor(state)
    if agent is AgentKind.CODEX:
        return CodexExtractor(state)
    raise ValueError(f"{agent.value} has no transcript files")


def _opencode_tool_text(part: dict[str, Any]) -> tuple[str, str]:
    state = part.get("state") if isinstance(part.get("state"), dict) else {}
    assert isinstance(state, dict)
    tool = str(part.get("tool") or "tool")
    inp = state.get("input")
    summary = str(state.get("title") or "")
    if not summary and isinstance(inp, dict):
        for key in ("command", "filePath", "path", "pattern", "url", "description", "query"):
            if isinstance(inp.get(key), str) and inp[key]:
                summary = inp[key]
                break
    output = state.get("output")
    return f"{tool}({summary})", (output if isinstance(output, str) else str(state.get("error") or ""))


def opencode_entries(items: list[dict[str, Any]]) -> list[HistoryEntry]:
    """Entries of one opencode session's messages.

    Args:
        items: ``GET /session/{id}/message`` answer (opencode 1.18.33):
            ``[{"info": {"id", "role", "time": {"created": ms}}, "parts": [{"id", "type", "text"?,
            "tool"?, "state"?: {"input", "output", "title", "error"}, "synthetic"?, "ignored"?}]}]``.

    Returns:
        Entries in message-creation then part-id order, ordinals from 0, ``offset`` -1.
    """
    msgs: list[tuple[float, str, dict[str, Any], list[Any]]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        info = item.get("info")
        parts = item.get("parts")
        if not isinstance(info, dict):
            continue
        t = info.get("time")
        created = t.get("created") if isinstance(t, dict) else None
        ts = float(created) / 1000.0 if isinstance(created, (int, float)) and not isinstance(created, bool) else 0.0
        msgs.append((ts, str(info.get("id") or ""), info, parts if isinstance(parts, list) else []))
    msgs.sort(key=lambda m: (m[0], m[1]))
    ex = Extractor()
    out: list[HistoryEntry] = []
    for ts, _mid, info, parts in msgs:
        role = HistoryRole.USER if info.get("role") == "user" else HistoryRole.ASSISTANT
        for part in sorted((p for p in parts if isinstance(p, dict)), key=lambda p: str(p.get("id") or "")):
            if part.get("synthetic") or part.get("ignored"):
                continue
            ptype = part.get("type")
            if ptype == "text":
                ex._entry(out, role, ts, str(part.get("text") or ""), -1)
            elif ptype == "tool":
                call, output = _opencode_tool_text(part)
                ex._entry(out, HistoryRole.TOOL, ts, call + ("\n" + output if output else ""), -1)
    return out
