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
* The session files of the agents watched through an adapter (:mod:`deck_tray.core.agents`:
  Gemini CLI 0.61.0 ``GEMINI_HOME/tmp/<slug>/chats/session-*.jsonl``, Qwen Code 0.24.4
  ``QWEN_HOME/projects/<slug>/chats/<id>.jsonl``, …) — parsed whole by the adapter's own
  :class:`~deck_tray.core.agents.base.TranscriptState` (their files are not append-only: a
  Gemini record may replace an earlier message, ``$set`` the whole list), then
  :func:`adapter_entries` turns its messages into entries.

Every entry's text is capped (:data:`MAX_TEXT_CHARS`, tool output :data:`TOOL_TEXT_CHARS`):
a 30 KB tool output is rarely what one searches for and would dominate the index.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shlex
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from deck_tray.core import claude, codex
from deck_tray.core.model import AgentKind, Message, MessageRole
from deck_tray.core.record_kinds import ClaudeQueue, CodexItems, Item, Kind, claude_items, codex_prompt_of
from deck_tray.core.records import iso_timestamp
from deck_tray.core.titles import PROMPT, Titles

#: Characters kept of one prompt or answer.
MAX_TEXT_CHARS = 16_000
#: Characters kept of one tool call or tool output.
TOOL_TEXT_CHARS = 1_500
#: Characters of an entry's text a :class:`SearchHit` carries.
HIT_TEXT_CHARS = 4_000
#: Marks around matches in FTS5 ``highlight()``/``snippet()`` output (private-use characters).
MARK_OPEN = "\ue000"
MARK_CLOSE = "\ue001"


#: Who wrote an entry, and what it is: the record kinds of :mod:`deck_tray.core.record_kinds`
#: (``user``, ``command``, ``harness``, ``compaction``, ``assistant``, ``thinking``, ``tool``,
#: ``tool_result``, ``image``, ``error``); the value is the JSON / CLI / index spelling.
HistoryRole = Kind

#: How the search window and ``deck-tray search`` name each role.
ROLE_LABELS = {
    Kind.USER: "your prompt", Kind.COMMAND: "your command", Kind.HARNESS: "added by the agent's harness",
    Kind.COMPACTION: "compaction summary", Kind.ASSISTANT: "answer", Kind.THINKING: "thinking",
    Kind.TOOL: "tool", Kind.TOOL_RESULT: "tool output", Kind.IMAGE: "image", Kind.ERROR: "error",
}


@dataclass(frozen=True)
class HistoryEntry:
    """One searchable piece of a conversation.

    Attributes:
        ordinal: position in its session, 0-based, in the order the source lists them
            (file order for transcripts, message/part order for opencode).
        role: who wrote it.
        ts: when, POSIX seconds (0.0 when the source gave no time).
        text: the text (capped: :data:`MAX_TEXT_CHARS`, tool text :data:`TOOL_TEXT_CHARS`).
        offset: byte offset of the source record's line in the transcript file; -1 for opencode
            and for the adapters' session files (indexed whole: :func:`adapter_entries`).
        thread: the sub-agent that wrote it (its ``agentId``, ``"sidechain"`` when the record
            names none); ``""`` for the session itself.
    """

    ordinal: int
    role: HistoryRole
    ts: float
    text: str
    offset: int
    thread: str = ""


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
        session_id: Claude session id, Codex thread id, opencode ``ses_…`` id, or the id an
            adapter's parser read (else its file's name without ``.jsonl``).
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
        thread: the sub-agent that wrote the entry (:attr:`HistoryEntry.thread`); ``""`` for the
            session itself.
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
    thread: str = ""

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON values (enums by value, the snippet as ``[[text, is_match], …]``)."""
        return {
            "agent": self.agent.value, "session_id": self.session_id, "title": self.title,
            "project": self.project, "source_path": self.source_path, "server_url": self.server_url,
            "ordinal": self.ordinal, "role": self.role.value, "ts": self.ts, "text": self.text,
            "snippet": [[s, m] for s, m in self.snippet], "rank": self.rank, "thread": self.thread or None,
        }


# -- queries ------------------------------------------------------------------------------------

class QueryError(ValueError):
    """The search text cannot be turned into a query (e.g. it has nothing to search for)."""


_WORD_RE = re.compile(r"\w", re.UNICODE)

# -- scripts written without spaces (CJK, Thai, …) ---------------------------------------------
#
# ``unicode61`` makes a whole run of kana/kanji (or Hangul, Thai, …) between spaces or
# punctuation one token, so "設定" is not found in "このプロジェクトの設定ファイルを更新しました".
# The index therefore keeps, beside each entry's text, a *gram document* (:func:`gram_document`)
# in which every such run is written as overlapping two-character tokens ("bigrams") plus the
# run's last character alone, and :func:`fts_match` turns a query word in those scripts into
# the phrase of its bigrams. Every substring of a run — one character, two, or more — is then
# a phrase (or, for one character, a prefix) of indexed tokens: found by the index, ranked by
# bm25 with the other terms, never by scanning the text.

#: Blocks whose letters are all word characters (assigned or not): Han, Hangul syllables, Yi.
_SPACELESS_WHOLE = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xA48F), (0xAC00, 0xD7A3), (0xF900, 0xFAFF),
                    (0x20000, 0x323AF))
#: Blocks of scripts without spaces between words whose letters/digits (L*, N*) count and whose
#: combining marks (M*) are skipped: Thai, Lao, Myanmar, Hangul jamo, Khmer, CJK iteration
#: marks and numerals, kana, Bopomofo, halfwidth forms, kana supplements, variation selectors.
_SPACELESS_MIXED = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1100, 0x11FF), (0x1780, 0x17FF), (0x3005, 0x3007),
                    (0x3021, 0x302F), (0x3031, 0x3035), (0x303B, 0x303C), (0x3040, 0x30FF), (0x3100, 0x312F),
                    (0x3130, 0x318F), (0x31A0, 0x31BF), (0x31F0, 0x31FF), (0xA960, 0xA97F), (0xD7B0, 0xD7FF),
                    (0xFE00, 0xFE0F), (0xFF66, 0xFFDC), (0x1B000, 0x1B16F))


def _char_class(ranges: list[tuple[int, int]]) -> str:
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)


def _spaceless_classes() -> tuple[str, str, str]:
    """``(letters, astral, marks)``: regex character-class bodies of the space-less scripts'
    letters and digits below U+10000 (compiled to a bitmap: one lookup a character) and
    above, and of their combining marks."""
    letters: list[tuple[int, int]] = [r for r in _SPACELESS_WHOLE if r[1] < 0x10000]
    astral: list[tuple[int, int]] = [r for r in _SPACELESS_WHOLE if r[1] >= 0x10000]
    marks: list[tuple[int, int]] = []
    for lo, hi in _SPACELESS_MIXED:
        for cp in range(lo, hi + 1):
            cat = unicodedata.category(chr(cp))
            out = (letters if cp < 0x10000 else astral) if cat[0] in "LN" else marks if cat[0] == "M" else None
            if out is None:
                continue
            if out and out[-1][1] == cp - 1:
                out[-1] = (out[-1][0], cp)
            else:
                out.append((cp, cp))
    return _char_class(letters), _char_class(astral), _char_class(marks)


_S_BMP, _S_ASTRAL, _M = _spaceless_classes()
_S = _S_BMP + _S_ASTRAL
#: One letter or digit of a script written without spaces (two classes: a class with
#: characters above U+FFFF is matched range by range, 6× slower on every character).
_ONE_S = f"(?:[{_S_BMP}]|[{_S_ASTRAL}])"
_SPACELESS_RE = re.compile(_ONE_S)
_SPACELESS_BMP_RE = re.compile(f"[{_S_BMP}]")
#: Han above U+FFFF (one range: each range of a class beyond the bitmap costs a comparison
#: on every character); the rare kana supplements come with kana or Han of the bitmap.
_SPACELESS_ASTRAL_RE = re.compile("[\U00020000-\U000323af]")
#: A combining mark of those scripts (Thai vowel and tone marks, kana voicing marks, …).
_MARK_RE = re.compile(f"[{_M}]")
#: A run of word characters as the index sees one (letters, digits, those marks; not ``_``).
_RUN_RE = re.compile(f"(?:[^\\W_]|[{_M}])+")
#: The pieces of a run: a space-less segment (group 1) or any other (group 2).
_SEGMENT_RE = re.compile(f"({_ONE_S}(?:{_ONE_S}|[{_M}])*)|((?:(?!{_ONE_S}).)+)", re.DOTALL)
#: Words as :func:`query_words` counts them.
_QUERY_WORD_RE = re.compile(f"[\\w{_M}]+")
#: Word boundaries as the index sees them: a space-less letter next to a Latin word ends it
#: (``GitHubの`` holds the word ``GitHub``), any other word character does not.
_NO_WORD_BEFORE = f"(?<![^\\W{_S}])"
_NO_WORD_AFTER = f"(?![^\\W{_S}])"
_WORD_REST = f"[^\\W{_S}]*"
#: The token between two runs of a gram document (a private-use character: a token character
#: for ``unicode61``, never in a query): a phrase cannot run on from one run into the next.
GRAM_BOUNDARY = "\ue002"


def spaceless(text: str) -> bool:
    """True when ``text`` has a letter or digit of a script written without spaces between
    words (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar, Yi, Bopomofo)."""
    if text.isascii():
        return False
    return _SPACELESS_BMP_RE.search(text) is not None or _SPACELESS_ASTRAL_RE.search(text) is not None


def _run_tokens(run: str, *, final: bool) -> tuple[list[str], bool]:
    """Tokens of one run (see :func:`gram_document`) and whether the last one is a prefix.

    A space-less segment of n characters (marks dropped) gives its n-1 bigrams and, unless it
    ends a query term (``final``) with n ≥ 2, its last character alone; a one-character segment
    ending a query term is that character as a prefix (it starts the bigram that follows it in
    the text, or is that run's last character). Other segments are kept as they are: the
    tokenizer splits them as it splits the entry's text.
    """
    out: list[str] = []
    segs = list(_SEGMENT_RE.finditer(run))
    prefix = False
    for i, m in enumerate(segs):
        if m.group(1) is None:
            out.append(m.group(2))
            continue
        base = _MARK_RE.sub("", m.group(1))
        out += [base[j:j + 2] for j in range(len(base) - 1)]
        last = final and i == len(segs) - 1
        if not last or len(base) == 1:
            out.append(base[-1])
            prefix = last
    return out, prefix


def gram_document(text: str) -> str:
    """What the index's ``grams`` column holds for an entry's (or title's) text.

    ``""`` when the text has no letter of a space-less script (see :func:`spaceless`): Latin,
    Cyrillic, … entries cost nothing. Otherwise every run of word characters, separated by
    :data:`GRAM_BOUNDARY`, space separated: a run with space-less letters as its segments'
    tokens (``"GitHubの設定"`` → ``GitHub の 設定 定``: the bigrams of each space-less segment
    and its last character, marks dropped), any other run as it is. Built by the same rules as
    the query side (:func:`fts_match`), so a query word is a phrase of this document's tokens
    wherever it occurs inside a run.

    Args:
        text: the entry's text.

    Returns:
        The document (about three times the space-less part's characters), or ``""``.
    """
    if not spaceless(text):
        return ""
    out: list[str] = []
    for run in _RUN_RE.findall(text):
        if out:
            out.append(GRAM_BOUNDARY)
        if _SPACELESS_RE.search(run):
            out += _run_tokens(run, final=False)[0]
        else:
            out.append(run)
    return " ".join(out)


def _gram_phrase(raw: str, prefix: bool) -> str | None:
    """The FTS5 phrase finding ``raw`` (a word or phrase with space-less letters) in the
    gram documents; None when it has no word character."""
    runs = _RUN_RE.findall(raw)
    if not runs:
        return None
    tokens: list[str] = []
    last_prefix = False
    for i, run in enumerate(runs):
        if i:
            tokens.append(GRAM_BOUNDARY)
        got, last_prefix = _run_tokens(run, final=i == len(runs) - 1)
        tokens += got
    ends_other = list(_SEGMENT_RE.finditer(runs[-1]))[-1].group(2) is not None
    star = last_prefix or (prefix and ends_other)
    return '"' + " ".join(tokens).replace('"', '""') + '"' + ("*" if star else "")


def _term(raw: str, phrase: bool) -> str | None:
    """One FTS5 term for a typed word (``phrase`` False; ``word*`` is a prefix) or the inside
    of a ``"quoted phrase"``; None when there is nothing to search for in it. A term with
    letters of a space-less script is searched in the gram documents (:func:`_gram_phrase`)."""
    prefix = False
    if not phrase and raw.endswith("*"):
        raw, prefix = raw.rstrip("*"), True
    if not _WORD_RE.search(raw):
        return None  # only punctuation: the tokenizer keeps nothing of it
    if spaceless(raw):
        return _gram_phrase(raw, prefix)
    quoted = '"' + raw.replace('"', '""') + '"'
    return quoted + ("*" if prefix else "")


def fts_match(text: str) -> str:
    """An FTS5 ``MATCH`` expression for what a user typed; never an FTS5 syntax error.

    Every bare word becomes a quoted string (so ``foo-bar`` is the phrase ``foo bar``,
    ``C++`` the token ``c``, and ``AND``/``NEAR``/``:`` are not operators), a
    ``"quoted phrase"`` stays a phrase, a trailing ``*`` on a word asks for a prefix, and a
    bare ``OR`` between two terms is kept as the operator. Terms are ANDed.

    A word or phrase with letters of a script written without spaces (Chinese, Japanese,
    Korean, Thai, …; see :func:`spaceless`) matches as a *substring* of a run of such letters:
    it becomes the phrase of its bigrams as :func:`gram_document` writes them (``設定`` →
    ``"設定"``, ``ファイル`` → ``"ファ アイ イル"``, one character ``設`` → the prefix
    ``"設"*``); Latin words in it keep word semantics (``API設定`` → ``"API 設定"``).

    Args:
        text: the search text as typed (filters already taken out, see :func:`parse_query`).

    Returns:
        The expression, for ``MATCH`` on the index's FTS5 tables (columns ``text`` and ``grams``).

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
    """The lower-cased words of a search text (``OR`` and punctuation left out), as counted
    in an entry's lower-cased text for term-frequency ranking: a run of a space-less script
    is one word, with its combining marks (``"設定ファイル"`` → ``["設定ファイル"]``)."""
    return [w.lower() for w in _QUERY_WORD_RE.findall(text) if w != "OR"]


def _spaceless_regex(raw: str, prefix: bool) -> str | None:
    """Regex body finding a term with space-less letters inside longer runs (no word
    boundary next to a space-less letter; combining marks anywhere after a letter)."""
    runs = _RUN_RE.findall(raw)
    if not runs:
        return None
    parts: list[str] = []
    for run in runs:
        body = ""
        for m in _SEGMENT_RE.finditer(run):
            if m.group(1) is None:
                body += re.escape(m.group(2))
            else:
                body += "".join(re.escape(c) + f"[{_M}]*" for c in _MARK_RE.sub("", m.group(1)))
        parts.append(body)
    lead = "" if _SPACELESS_RE.match(runs[0]) else _NO_WORD_BEFORE
    if _SPACELESS_RE.match(runs[-1][-1]) or _MARK_RE.match(runs[-1][-1]):
        tail = ""
    else:
        tail = _WORD_REST if prefix else _NO_WORD_AFTER
    return lead + r"[\W_]+".join(parts) + tail


def match_regex(text: str) -> re.Pattern[str] | None:
    """A case-insensitive regex finding the terms of a search text in an entry's text, as
    :func:`fts_match` reads them (phrases as words separated by non-word characters,
    ``word*`` as a prefix, a word of a space-less script anywhere inside a run, combining
    marks ignored as the index ignores them); None when there is nothing to find."""
    alts: list[str] = []
    for m in re.finditer(r'"([^"]*)"?|(\S+)', text):
        phrase, word = m.group(1), m.group(2)
        if word == "OR":
            continue
        raw = phrase if phrase is not None else word
        prefix = phrase is None and raw.endswith("*")
        if spaceless(raw):
            body_s = _spaceless_regex(raw.rstrip("*") if prefix else raw, prefix)
            if body_s is not None:
                alts.append(body_s)
            continue
        words = re.findall(r"\w+", raw)
        if not words:
            continue
        body = r"\W+".join(re.escape(w) for w in words)
        alts.append(_NO_WORD_BEFORE + body + (_WORD_REST if prefix else _NO_WORD_AFTER))
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
        if m.start() < pos or m.end() == m.start():
            continue
        if m.start() >= end:
            break
        marked += [text[pos:m.start()], MARK_OPEN, m.group(0), MARK_CLOSE]
        pos = m.end()
    marked += [text[pos:end], "…" if end < len(text) else ""]
    return marked_segments("".join(marked))


#: Names :func:`agent_of` accepts: every agent's value (``gemini-cli``) and its first word
#: (``gemini``), so an agent added to :class:`AgentKind` is searchable by name at once.
_AGENT_NAMES = {**{k.value.split("-")[0]: k for k in AgentKind}, **{k.value: k for k in AgentKind}}
_ROLE_NAMES = {"user": HistoryRole.USER, "prompt": HistoryRole.USER, "prompts": HistoryRole.USER,
               "assistant": HistoryRole.ASSISTANT, "answer": HistoryRole.ASSISTANT,
               "answers": HistoryRole.ASSISTANT, "tool": HistoryRole.TOOL, "tools": HistoryRole.TOOL}


def agent_names() -> list[str]:
    """The short names :func:`agent_of` accepts, one per agent (``claude``, ``codex``, ``opencode``,
    ``gemini``, ``qwen``, …), in :class:`AgentKind` order."""
    return [k.value.split("-")[0] for k in AgentKind]


def agent_of(name: str) -> AgentKind:
    """``claude``/``claude-code``/``codex``/``opencode``/``gemini``/``gemini-cli``/… → :class:`AgentKind`
    (each agent's value, or its first word).

    Raises:
        QueryError: another name.
    """
    try:
        return _AGENT_NAMES[name.strip().lower()]
    except KeyError:
        raise QueryError(f"unknown agent {name!r} ({', '.join(agent_names())})") from None


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

    An ideographic space (U+3000, what Japanese and Chinese input methods type) separates
    like a space.

    Raises:
        QueryError: a filter value is not understood.
    """
    text = text.replace("\u3000", " ")
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
        title: the title :mod:`deck_tray.core.titles` chose so far.
        title_rank: its rank (0 none, 1 first prompt, 2 ai-title / own summary, 3 custom title).
        started: first record time (POSIX s, 0 unknown).
        updated: newest record time.
        next_ordinal: the ordinal the next entry gets.
        flags: agent-specific booleans (Codex: ``cwd_from_meta``, the folder came from
            ``session_meta`` / ``turn_context``, not from ``<environment_context>``).
        extra: agent-specific JSON state (Claude: summaries waiting for their leaf; Codex: the
            recent texts that recognise a prompt or answer written twice).
    """

    session_id: str = ""
    cwd: str = ""
    title: str = ""
    title_rank: int = 0
    started: float = 0.0
    updated: float = 0.0
    next_ordinal: int = 0
    flags: dict[str, bool] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The state as a JSON string (stored in the database)."""
        return json.dumps({"flags": self.flags, "title_rank": self.title_rank, "extra": self.extra})

    def load_json(self, raw: str) -> None:
        """Restore :attr:`flags`, :attr:`title_rank` and :attr:`extra` from :meth:`to_json`
        output (bad input ignored)."""
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
            if isinstance(obj.get("extra"), dict):
                self.extra = dict(obj["extra"])


#: Harness labels not indexed: fixed texts that would match every session.
_UNINDEXED_HARNESS = frozenset({"caveat", "interrupt"})


class Extractor:
    """Base of the transcript extractors: feed records in file order, collect entries.

    Args:
        state: what earlier batches learned (a fresh :class:`ExtractState` for a new file).
    """

    def __init__(self, state: ExtractState | None = None) -> None:
        self.state = state or ExtractState()
        self.titles = Titles()
        self.titles.load({"title": self.state.title, "rank": self.state.title_rank,
                          "pending": self.state.extra.get("pending_summaries", {})})

    def _title_changed(self) -> None:
        self.state.title, self.state.title_rank = self.titles.title, self.titles.rank
        if self.titles.pending:
            self.state.extra["pending_summaries"] = dict(self.titles.pending)
        else:
            self.state.extra.pop("pending_summaries", None)

    def _time(self, ts: float) -> None:
        if ts:
            st = self.state
            st.started = min(st.started, ts) if st.started else ts
            st.updated = max(st.updated, ts)

    def _entry(self, out: list[HistoryEntry], role: HistoryRole, ts: float, text: str, offset: int,
               thread: str = "") -> None:
        text = text.strip()
        if not text:
            return
        cap = TOOL_TEXT_CHARS if role in (HistoryRole.TOOL, HistoryRole.TOOL_RESULT) else MAX_TEXT_CHARS
        out.append(HistoryEntry(self.state.next_ordinal, role, ts, _cap(text, cap), offset, thread))
        self.state.next_ordinal += 1

    def _item(self, out: list[HistoryEntry], item: Item, ts: float, offset: int, thread: str = "",
              summary: Callable[[str, Any], str] | None = None) -> None:
        """The entry of one classified item (see :mod:`deck_tray.core.record_kinds`)."""
        kind = item.kind
        if kind is Kind.TOOL:
            text = f"{item.label}({summary(item.label, item.data) if summary else ''})"
        elif kind is Kind.IMAGE:
            text = f"[image: {item.label}]"
        elif kind is Kind.HARNESS:
            if item.label in _UNINDEXED_HARNESS:
                return
            text = item.text
        else:
            text = item.text
        self._entry(out, kind, ts, text, offset, thread)

    def feed(self, rec: dict[str, Any], offset: int) -> list[HistoryEntry]:
        """Entries of one record (``offset``: where its line starts in the file)."""
        raise NotImplementedError

    def flush(self) -> ExtractState:
        """Write what the extractor keeps between records into :attr:`state` (call it at the end
        of a batch, before the state is stored) and return the state."""
        return self.state


class ClaudeExtractor(Extractor):
    """Entries of a Claude Code transcript (``projects/<encoded cwd>/<id>.jsonl``, 1.0.x–2.1.332),
    and of its sub-agents' files (``agent-<id>.jsonl``, ``<id>/subagents/agent-<id>.jsonl``):
    every item :func:`deck_tray.core.record_kinds.claude_items` finds, its kind as the role; a
    sub-agent's (``isSidechain: true``) with ``thread`` set to its ``agentId`` (``"sidechain"``
    for 1.0.x records without one). The title follows :class:`deck_tray.core.titles.Titles`.
    """

    def __init__(self, state: ExtractState | None = None) -> None:
        super().__init__(state)
        self.queue = ClaudeQueue(self.state.extra.get("queued"))

    def flush(self) -> ExtractState:
        """Store the prompts still queued (see :class:`deck_tray.core.record_kinds.ClaudeQueue`)."""
        if self.queue.waiting:
            self.state.extra["queued"] = list(self.queue.waiting)
        else:
            self.state.extra.pop("queued", None)
        return self.state

    def feed(self, rec: dict[str, Any], offset: int) -> list[HistoryEntry]:
        """Entries of one transcript record; unknown record and block types give none."""
        out: list[HistoryEntry] = []
        st = self.state
        rtype = rec.get("type")
        if not st.session_id and isinstance(rec.get("sessionId"), str):
            st.session_id = rec["sessionId"]
        side = rec.get("isSidechain") is True
        cwd = rec.get("cwd")
        if isinstance(cwd, str) and cwd and not side:
            st.cwd = cwd
        ts = iso_timestamp(rec) if rtype in ("user", "assistant", "system") else 0.0
        self._time(ts)
        thread = (str(rec.get("agentId") or "") or "sidechain") if side else ""
        if not side:
            rank = self.titles.rank
            self.titles.feed(rec)
            if rank != self.titles.rank or self.titles.pending or "pending_summaries" in st.extra:
                self._title_changed()
        queue = self.queue
        items = queue.queued(rec) if not side else []
        if items:
            ts = ts or iso_timestamp(rec)
        items += [i for i in claude_items(rec) if side or not queue.already(i)]
        for item in items:
            self._item(out, item, ts, offset, thread, claude.tool_summary)
            titled = item.kind is Kind.USER or (item.kind is Kind.COMMAND and item.text != item.label)
            if titled and not side and self.titles.rank < PROMPT:
                self.titles.offer(item.text, PROMPT)
                self._title_changed()
        return out


class CodexExtractor(Extractor):
    """Entries of a Codex rollout (``sessions/YYYY/MM/DD/rollout-*.jsonl``, every shape from
    before 0.47 to 0.171.0): every item :class:`deck_tray.core.record_kinds.CodexItems` finds, its
    kind as the role. Records without a time (the oldest shape) take the last time seen (the
    header line's, else the file name's: :meth:`start_at`); their folder comes from the
    ``<environment_context>`` Codex wrote when no ``session_meta`` names it.
    """

    def __init__(self, state: ExtractState | None = None) -> None:
        super().__init__(state)
        self.items = CodexItems()
        self.items.load(self.state.extra.get("recent"))

    def start_at(self, ts: float) -> None:
        """The time of records that carry none until one does (a rollout's file-name time)."""
        if ts and not self.state.updated:
            self._time(ts)

    def feed(self, rec: dict[str, Any], offset: int) -> list[HistoryEntry]:
        """Entries of one rollout record; unknown types give none."""
        out: list[HistoryEntry] = []
        st = self.state
        ts = iso_timestamp(rec)
        self._time(ts)
        ts = ts or st.updated
        rtype = rec.get("type")
        payload = rec.get("payload")
        if isinstance(payload, dict):
            if rtype == "session_meta":
                st.session_id = st.session_id or str(payload.get("id") or payload.get("session_id") or "")
                if payload.get("cwd"):
                    st.cwd = str(payload["cwd"])
                    st.flags["cwd_from_meta"] = True
            elif rtype == "turn_context" and isinstance(payload.get("cwd"), str) and payload["cwd"]:
                st.cwd = payload["cwd"]
                st.flags["cwd_from_meta"] = True
        elif rtype is None and isinstance(rec.get("id"), str) and not st.session_id:
            st.session_id = rec["id"]
        for item in self.items.feed(rec):
            if item.kind is Kind.HARNESS and item.label == "environment" and not st.flags.get("cwd_from_meta"):
                st.cwd = codex.cwd_from_environment(item.text) or st.cwd
            self._item(out, item, ts, offset, "", codex.call_summary)
            if item.kind is Kind.USER and self.titles.rank < PROMPT:
                self.titles.offer(codex_prompt_of(item.text), PROMPT)
                self._title_changed()
        return out

    def flush(self) -> ExtractState:
        """Store the recent texts that recognise a prompt or answer written twice."""
        self.state.extra["recent"] = self.items.dump()
        return self.state


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


#: The entry role of each conversation item an adapter's parser gives; the others (notices such
#: as "Request cancelled.", sub-agent summary lines) are not indexed: fixed or derived texts.
_ADAPTER_ROLES = {MessageRole.USER: HistoryRole.USER, MessageRole.ASSISTANT: HistoryRole.ASSISTANT,
                  MessageRole.TOOL: HistoryRole.TOOL, MessageRole.COMMAND: HistoryRole.COMMAND,
                  MessageRole.HARNESS: HistoryRole.HARNESS, MessageRole.COMPACTION: HistoryRole.COMPACTION,
                  MessageRole.THINKING: HistoryRole.THINKING, MessageRole.IMAGE: HistoryRole.IMAGE,
                  MessageRole.ERROR: HistoryRole.ERROR}


def adapter_entries(messages: Sequence[Message]) -> list[HistoryEntry]:
    """Entries of one session of an agent watched through an adapter, from its parsed file.

    Args:
        messages: the conversation the adapter's parser rebuilt from the whole file
            (:attr:`deck_tray.core.agents.base.TranscriptState.messages` after ``settle()``),
            oldest first: prompts (``USER``), answers (``ASSISTANT``), tool calls (``TOOL``,
            ``Name(summary)``), errors, … with their times (POSIX seconds, 0 unknown). Shapes
            checked against Gemini CLI 0.61.0 and Qwen Code 0.24.4 (their parsers say which
            records make which message).

    Returns:
        Entries in that order, ordinals from 0, ``offset`` -1 (the file is indexed whole:
        a message does not belong to one line of it), texts capped like every entry's
        (:data:`MAX_TEXT_CHARS`, tool calls :data:`TOOL_TEXT_CHARS`); empty texts, notices and
        sub-agent summary lines left out.
    """
    ex = Extractor()
    out: list[HistoryEntry] = []
    for m in messages:
        role = _ADAPTER_ROLES.get(m.role)
        if role is not None:
            ex._entry(out, role, m.timestamp, m.text, -1)
    return out
