r"""The remote protocol: what a headless deck-tray on another machine (``deck-tray serve --stdio``)
and the local app say to each other over an SSH channel (issue #18).

Transport: one JSON object per line (UTF-8, ``\n``-terminated) each way, on the remote's stdin
and stdout, through the user's own ``ssh`` (``ssh -T -o BatchMode=yes DEST deck-tray serve
--stdio``). Nothing listens on a port on either machine. The remote's stderr is its log (the
local side keeps its last lines to explain a failure).

From the remote (``serve``):

=============================================  ====================================================
message                                        meaning
=============================================  ====================================================
``{"op": "hello", "app": "deck-tray",          first line: who answers (:data:`PROTOCOL` must match
"version", "protocol", "hostname", "pid"}``    the local one, else the remote is too old or new)
``{"op": "snapshot", "sessions": [S...],       every session there, complete (after ``hello``, and
"more": bool}``                                again whenever asked with ``resync``), in lines of
                                               about :data:`SNAPSHOT_LINE_BYTES`: ``more`` is true
                                               on all but the last
``{"op": "session", "session": S}``            one session appeared or changed (its ``messages``
                                               left out when they did not change since it was
                                               last sent: the receiver keeps the ones it has)
``{"op": "removed", "id": str}``               one session is gone
``{"op": "result", "rid": int, ...}``          the answer to request ``rid`` (below)
``{"op": "alive", "at": <POSIX s>}``           every :data:`ALIVE_S` seconds, so a silent link is
                                               noticed even when ssh's own keep-alive is off
=============================================  ====================================================

To the remote:

=============================================================  ========================================
request                                                        result
=============================================================  ========================================
``{"op": "reply", "rid", "answer_id": str, "session_id": str,  ``{"report": R}`` — the delivery report.
"reply": {"kind", "text"}}``                                   An ``answer_id`` seen before is never
                                                               delivered again: its first report is
                                                               returned (or awaited, while it runs)
``{"op": "resync", "rid"}``                                    ``{}``, after a fresh ``snapshot``
``{"op": "ping", "rid"}``                                      ``{"at": <POSIX s>}``
``{"op": "search", "rid", "query": str, "limit": int,          ``{"hits": [H...], "indexing": [done,
"agents": [str], "project": str, "since": <POSIX s>|null,      total] | null}`` — the remote's own
"until": <POSIX s>|null, "roles": [str]}``                     history index, brought up to date
                                                               first (for a while; ``indexing`` says
                                                               it was still reading files), best
                                                               first, at most :data:`MAX_SEARCH_HITS`
=============================================================  ========================================

A request the remote cannot read is answered ``{"op": "result", "rid", "error": str}`` (``rid``
``null`` when even that is unreadable). ``S`` is :func:`session_to_wire`'s shape (ids as the
remote knows them; the local side prefixes them with the host's name, :func:`session_from_wire`),
``R`` is :func:`report_to_wire`'s, ``H`` :func:`hit_to_wire`'s.

Requests added later in protocol 1 (``search``) are answered ``{"error": "unknown op 'search'"}``
by an older ``serve``: :func:`is_unknown_op` tells the caller, which asks the user to update
deck-tray there (``deck-tray remote install HOST``) instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deck_tray.core.history import HistoryRole, SearchHit, SearchQuery
from deck_tray.core.model import (
    AgentKind,
    DeliveryReport,
    DeliveryState,
    Message,
    MessageRole,
    PaneRef,
    PendingRequest,
    RequestKind,
    Session,
    SessionStatus,
    remote_id,
)
from deck_tray.core.reply import Reply, ReplyKind

#: The protocol's version; both sides must speak the same one.
PROTOCOL = 1
#: Seconds between the remote's ``alive`` lines.
ALIVE_S = 15.0
#: The newest conversation items a session carries over the wire (the tab's recent view).
MAX_MESSAGES = 40
#: Characters of one conversation item carried over the wire (longer ones are cut, marked "…").
MAX_MESSAGE_CHARS = 8_000
#: Bytes of sessions a ``snapshot`` line carries before the rest goes on the next line.
SNAPSHOT_LINE_BYTES = 1_000_000
#: Bytes of one line either side reads; a longer line is an error (not a reason to grow memory).
MAX_LINE_BYTES = 8 * 1024 * 1024
#: Hits a ``search`` answers at most (a larger ``limit`` is lowered to it).
MAX_SEARCH_HITS = 100
#: Characters of a hit's entry text carried over the wire (the snippet carries the matches).
MAX_HIT_TEXT_CHARS = 1_000
#: Characters of a hit's title, folder, and of its whole snippet, carried over the wire.
MAX_HIT_FIELD_CHARS = 500


class WireError(ValueError):
    """A line of the remote protocol is malformed; the message says what was wrong."""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 1] + "…"


def session_to_wire(s: Session, *, messages: bool = True) -> dict[str, Any]:
    """``s`` as a JSON object: :meth:`Session.to_json`'s fields plus the pane's label, the
    request's id and question, and (``messages``) the newest :data:`MAX_MESSAGES` conversation
    items (``[role, text, timestamp, key, state]`` each, text cut at :data:`MAX_MESSAGE_CHARS`);
    without ``messages`` the key is left out (the receiver keeps what it has)."""
    d: dict[str, Any] = dict(s.to_json())
    d["pane_label"] = s.pane.label if s.pane else ""
    d["updated"] = s.updated_at
    if s.pending is not None:
        d["pending"] = {**s.pending.to_json(), "request_id": s.pending.request_id, "question": s.pending.question}
    if messages:
        d["messages"] = [[m.role.value, _clip(m.text), m.timestamp, m.key, m.state]
                         for m in s.messages[-MAX_MESSAGES:]]
    return d


def messages_key(s: Session) -> tuple[int, object]:
    """What changes when the conversation a session carries over the wire changes."""
    last = s.messages[-1] if s.messages else None
    return len(s.messages), last


def session_from_wire(d: Mapping[str, Any], host: str, previous: Session | None = None) -> Session:
    """The inverse of :func:`session_to_wire`, for a session of remote ``host``: its id becomes
    ``"<host>:<id>"`` and ``host`` is set. Without ``messages`` in ``d`` the conversation is
    ``previous``'s (the one received before), else empty.

    Raises:
        WireError: a field is missing or malformed.
    """
    try:
        pane: PaneRef | None = None
        if isinstance(d.get("pane"), str):
            mux, rest = d["pane"].split(":", 1)
            server, pane_id = rest.rsplit(":", 1)
            pane = PaneRef(mux, pane_id, server, str(d.get("pane_label") or ""))
        pending: PendingRequest | None = None
        p = d.get("pending")
        if isinstance(p, Mapping):
            pending = PendingRequest(RequestKind(p["kind"]), str(p.get("tool") or ""), str(p.get("summary") or ""),
                                     tuple(str(o) for o in p.get("options") or ()), str(p.get("request_id") or ""),
                                     str(p.get("question") or ""), str(p.get("asker") or ""))
        if "messages" in d:
            messages = tuple(Message(MessageRole(m[0]), str(m[1]), float(m[2] or 0.0), str(m[3] or ""),
                                     str(m[4] or "")) for m in d.get("messages") or ())
        else:
            messages = previous.messages if previous is not None else ()
        pid = d.get("pid")
        sid = str(d["id"])
        if not sid or not isinstance(d["id"], str):
            raise WireError("a session without an id")
        updated = d.get("updated")
        return Session(
            id=remote_id(host, sid), agent=AgentKind(d["agent"]), cwd=str(d.get("cwd") or ""),
            title=str(d.get("title") or ""), pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            pane=pane, status=SessionStatus(d["status"]), reason=str(d.get("reason") or ""), pending=pending,
            updated_at=float(updated) if isinstance(updated, (int, float)) else 0.0,
            messages=messages, server=str(d.get("server") or ""), host=host)
    except WireError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise WireError(f"a malformed session ({exc!r})") from exc


def reply_to_wire(reply: Reply) -> dict[str, str]:
    """``{"kind": <ReplyKind value>, "text": str}``."""
    return {"kind": reply.kind.value, "text": reply.text}


def reply_from_wire(d: Any) -> Reply:
    """The inverse of :func:`reply_to_wire`.

    Raises:
        WireError: not that shape, or an unknown kind.
    """
    if not isinstance(d, Mapping) or not isinstance(d.get("text", ""), str):
        raise WireError("a reply must be {\"kind\", \"text\"}")
    try:
        return Reply(ReplyKind(d.get("kind")), d.get("text", ""))
    except ValueError as exc:
        raise WireError(f"unknown reply kind {d.get('kind')!r}") from exc


def report_to_wire(report: DeliveryReport) -> dict[str, str]:
    """``{"state": <DeliveryState value>, "detail": str, "text": str}``."""
    return {"state": report.state.value, "detail": report.detail, "text": report.text}


def report_from_wire(d: Any) -> DeliveryReport:
    """The inverse of :func:`report_to_wire`.

    Raises:
        WireError: not that shape, or an unknown state.
    """
    if not isinstance(d, Mapping):
        raise WireError("a report must be an object")
    try:
        return DeliveryReport(DeliveryState(d.get("state")), str(d.get("detail") or ""), str(d.get("text") or ""))
    except ValueError as exc:
        raise WireError(f"unknown delivery state {d.get('state')!r}") from exc


def valid_host_name(name: str) -> bool:
    """A remote host's name in deck-tray: 1–40 of ``A-Z a-z 0-9 . _ -``, not starting with ``-``
    (it prefixes session ids as ``NAME:ID`` and appears in ssh's ControlPath)."""
    return 0 < len(name) <= 40 and not name.startswith("-") and \
        all(c.isascii() and (c.isalnum() or c in "._-") for c in name)



# -- history search (``search``) -----------------------------------------------------------------

@dataclass(frozen=True)
class RemoteHit(SearchHit):
    """A :class:`~deck_tray.core.history.SearchHit` found in the history of remote ``host``.

    ``session_id`` is the id *there* (what ``claude --resume`` takes on that host); the session's
    id here, when the host lists it live, is :func:`remote_id` ``(host, session_id)``.
    ``source_path`` and ``server_url`` are ``""``: the remote's files and servers are not reachable
    from here.

    Attributes:
        host: the configured host's name (:func:`valid_host_name`).
    """

    host: str = ""

    def to_json(self) -> dict[str, Any]:
        """:meth:`SearchHit.to_json` plus ``"host"``."""
        return {**super().to_json(), "host": self.host}


def hit_host(hit: SearchHit) -> str:
    """The remote host a hit was found on, ``""`` for this machine's history."""
    return hit.host if isinstance(hit, RemoteHit) else ""


def search_to_wire(q: SearchQuery) -> dict[str, Any]:
    """The fields of a ``search`` request (without ``op`` and ``rid``): ``{"query": text,
    "limit": int, "agents": [AgentKind value...], "project": str, "since": POSIX s | None,
    "until": POSIX s | None, "roles": [HistoryRole value...]}``; the limit at most
    :data:`MAX_SEARCH_HITS`."""
    return {"query": q.text, "limit": max(1, min(q.limit, MAX_SEARCH_HITS)),
            "agents": sorted(a.value for a in q.agents), "project": q.project,
            "since": q.since, "until": q.until, "roles": sorted(r.value for r in q.roles)}


def search_from_wire(d: Mapping[str, Any]) -> SearchQuery:
    """The inverse of :func:`search_to_wire` (the limit lowered to :data:`MAX_SEARCH_HITS`).

    Raises:
        WireError: a field is missing or malformed, or names an agent or role this deck-tray
            does not know.
    """
    text = d.get("query")
    if not isinstance(text, str) or not text.strip():
        raise WireError("a search needs a query string")
    limit = d.get("limit", 50)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise WireError("a search's limit must be an integer")

    def when(key: str) -> float | None:
        v = d.get(key)
        if v is None:
            return None
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise WireError(f"a search's {key} must be POSIX seconds or null")
        return float(v)

    def names(key: str) -> list[str]:
        v = d.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise WireError(f"a search's {key} must be a list of strings")
        return v

    project = d.get("project") or ""
    if not isinstance(project, str):
        raise WireError("a search's project must be a string")
    try:
        agents = frozenset(AgentKind(a) for a in names("agents"))
        roles = frozenset(HistoryRole(r) for r in names("roles"))
    except ValueError as exc:
        raise WireError(f"a search names something unknown here ({exc})") from exc
    return SearchQuery(text=text, agents=agents, project=project, since=when("since"), until=when("until"),
                       roles=roles, limit=max(1, min(limit, MAX_SEARCH_HITS)))


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def hit_to_wire(hit: SearchHit) -> dict[str, Any]:
    """``{"agent", "session_id", "title", "project", "ordinal", "role", "ts", "text", "snippet":
    [[text, is_match]...], "rank", "thread"}``; the text cut at :data:`MAX_HIT_TEXT_CHARS`, title,
    project and the snippet's text at :data:`MAX_HIT_FIELD_CHARS` (so a whole answer stays under
    ~200 KB). The transcript's path and the opencode server are left out (not reachable from the
    other machine)."""
    snippet: list[list[Any]] = []
    left = MAX_HIT_FIELD_CHARS
    for seg, is_match in hit.snippet:
        if left <= 0:
            break
        snippet.append([_cut(seg, left), bool(is_match)])
        left -= len(seg)
    return {"agent": hit.agent.value, "session_id": hit.session_id, "title": _cut(hit.title, MAX_HIT_FIELD_CHARS),
            "project": _cut(hit.project, MAX_HIT_FIELD_CHARS), "ordinal": hit.ordinal, "role": hit.role.value,
            "ts": hit.ts, "text": _cut(hit.text, MAX_HIT_TEXT_CHARS), "snippet": snippet, "rank": hit.rank,
            "thread": hit.thread}


def hit_from_wire(d: Any, host: str) -> RemoteHit:
    """The inverse of :func:`hit_to_wire`, for a hit of remote ``host``.

    Raises:
        WireError: not that shape, or an agent or role this deck-tray does not know (a newer
            remote's).
    """
    if not isinstance(d, Mapping):
        raise WireError("a search hit must be an object")
    try:
        sid = d["session_id"]
        if not isinstance(sid, str) or not sid:
            raise WireError("a search hit without a session id")
        snippet = tuple((str(seg), bool(m)) for seg, m in d.get("snippet") or ())
        ordinal, ts, rank = d.get("ordinal") or 0, d.get("ts") or 0.0, d.get("rank") or 0.0
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (ordinal, ts, rank)):
            raise WireError("a search hit's ordinal, ts and rank must be numbers")
        return RemoteHit(agent=AgentKind(d["agent"]), session_id=sid, title=str(d.get("title") or ""),
                         project=str(d.get("project") or ""), source_path="", server_url="", ordinal=int(ordinal),
                         role=HistoryRole(d["role"]), ts=float(ts), text=str(d.get("text") or ""),
                         snippet=snippet, rank=float(rank), thread=str(d.get("thread") or ""), host=host)
    except WireError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"a malformed search hit ({exc!r})") from exc


def hits_from_wire(items: Any, host: str) -> tuple[list[RemoteHit], list[str]]:
    """Every hit of a ``search`` result that can be read (:func:`hit_from_wire`), and what was
    wrong with the others (one sentence each): a hit of an agent this version does not know
    is skipped, not the whole answer."""
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        return [], ["the hits are not a list"]
    hits: list[RemoteHit] = []
    bad: list[str] = []
    for d in items:
        try:
            hits.append(hit_from_wire(d, host))
        except WireError as exc:
            bad.append(str(exc))
    return hits, bad


def is_unknown_op(result: Mapping[str, Any]) -> bool:
    """Whether ``result`` is an older ``serve``'s answer to a request it does not know (it says
    ``unknown op 'NAME'``)."""
    error = result.get("error")
    return isinstance(error, str) and error.startswith("unknown op")
