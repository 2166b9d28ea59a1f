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
=============================================================  ========================================

A request the remote cannot read is answered ``{"op": "result", "rid", "error": str}`` (``rid``
``null`` when even that is unreadable). ``S`` is :func:`session_to_wire`'s shape (ids as the
remote knows them; the local side prefixes them with the host's name, :func:`session_from_wire`),
``R`` is :func:`report_to_wire`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

