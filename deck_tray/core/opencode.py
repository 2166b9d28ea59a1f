"""opencode server state: events and REST answers in, :class:`Session` snapshots out.

Pure bookkeeping for one opencode server (verified against opencode 1.18.33; see
``reference/opencode-server.md``). The service layer feeds it:

* frames of ``GET /global/event`` (``{"directory", "project", "payload": {"id", "type",
  "properties"}}``) through :meth:`OpencodeState.handle`;
* after every (re)connect, per directory, ``GET /session/status`` (``{ses_id: {"type":
  "busy"|"retry", …}}``, idle sessions are left out), ``GET /permission`` and
  ``GET /question`` (pending request lists) through :meth:`OpencodeState.resync`;
* session infos (``GET /experimental/session``) through :meth:`OpencodeState.set_sessions`
  and history (``GET /session/{id}/message`` → ``[{"info", "parts"}]``) through
  :meth:`OpencodeState.set_messages`.

Rules the server does not enforce for us (§0 of the reference):

* waiting for a permission or question does not change ``session.status``: waiting comes
  from the pending request lists only;
* abort leaves pending requests behind, so ``session.idle`` / ``session.error`` for a session
  drop its requests, and a resync drops requests of sessions that are not busy;
* a sub-agent (``task`` tool) runs in a child session whose ``parentID`` is the session the
  user sees; its requests make the root session wait and name the sub-agent;
* text arrives as ``message.part.delta`` and then once more whole in
  ``message.part.updated``: the whole text replaces what the deltas built, never appends;
* a part can arrive before anything says whose message it is: a stream that goes live
  between a prompt's ``message.updated`` (role ``user``) and its ``message.part.updated``
  misses the role (captured: ``tests/fixtures/opencode/sse-1.18.33-todo-turn.jsonl``). Only
  the assistant's text streams (``message.part.delta``) and only it calls tools, so such a
  message is the assistant's; any other text of a message whose role is not known yet is
  held back until its role arrives (``message.updated`` again at the turn's end, or the
  history load that follows every connect) rather than shown as the agent's words.

Times in opencode payloads are epoch milliseconds; everything here returns POSIX seconds.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from deck_tray.core.model import (
    AgentKind,
    Evidence,
    EvidenceSource,
    Message,
    MessageRole,
    PendingRequest,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.core.status import decide

#: Labels of the three permission answers, in the order the window shows them.
PERMISSION_OPTIONS = ("Allow once", "Always allow", "Reject")
#: opencode's reply values for :data:`PERMISSION_OPTIONS`.
PERMISSION_REPLIES = ("once", "always", "reject")
#: Conversation items kept per session.
MAX_MESSAGES = 400
#: ``session.status`` types that mean "working" (idle is stored as absence).
BUSY_TYPES = frozenset({"busy", "retry"})
#: Open todos listed in a hand-off prompt (the rest are counted).
HANDOFF_TODOS = 8
#: Event types that carry nothing for deck-tray (instance boot noise, keep-alives).
IGNORED_EVENTS = frozenset({
    "sync", "server.connected", "server.heartbeat", "plugin.added", "catalog.updated",
    "reference.updated", "integration.updated", "project.updated", "session.diff",
    "file.edited", "vcs.branch.updated", "lsp.updated", "installation.update-available",
})


#: Tags opencode plugins put into message text for their own bookkeeping, with what they
#: enclose (the dynamic-context-pruning plugin's ``<dcp-message-id>m12</dcp-message-id>``, as
#: the seed's warm backend strips them, reference/seeds.md §3): not for people to read.
_PLUGIN_TAG_RE = re.compile(r"<(dcp-[a-z-]+)>[^<]{0,200}</\1>\s?")


def strip_plugin_tags(text: str) -> str:
    """``text`` without opencode plugin bookkeeping tags (``<dcp-message-id>…</dcp-message-id>``
    and other ``<dcp-*>`` tags); the history keeps the raw text."""
    return _PLUGIN_TAG_RE.sub("", text) if "<dcp-" in text else text


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def ms(value: Any) -> float:
    """An opencode time (epoch milliseconds) → POSIX seconds (0.0 when absent or not a number)."""
    return float(value) / 1000.0 if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


class ServerPhase(enum.Enum):
    """Connection state of one opencode server, as the window names it."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    AUTH_REQUIRED = "needs a password"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ServerState:
    """What the user sees about one server.

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:4096``.
        phase: connection state.
        detail: human text: the version when connected, else what failed and what to do.
        sessions: number of root sessions followed.
    """

    url: str
    phase: ServerPhase
    detail: str = ""
    sessions: int = 0


@dataclass
class _Part:
    id: str
    type: str
    text: str = ""
    tool: str = ""
    call_id: str = ""
    tool_status: str = ""
    summary: str = ""
    error: str = ""
    files: tuple[str, ...] = ()
    hidden: bool = False


@dataclass
class _Msg:
    id: str
    role: str = ""
    created: float = 0.0
    completed: float = 0.0
    error: str = ""
    tokens: int = 0
    provider: str = ""
    model: str = ""
    parts: dict[str, _Part] = field(default_factory=dict)
    #: Text of it streamed (``message.part.delta``): only the assistant's does.
    streamed: bool = False

    def shown_role(self) -> MessageRole | None:
        """Whose words its text parts are, or None while that is not known (see the module's rules)."""
        if self.role == "user":
            return MessageRole.USER
        if self.role or self.streamed or any(p.type == "tool" for p in self.parts.values()):
            return MessageRole.ASSISTANT
        return None


@dataclass(frozen=True)
class ContextUse:
    """How full a session's context window is.

    Attributes:
        tokens: tokens of the last assistant message (input + output + reasoning + cache).
        limit: the model's context limit in tokens (0 when unknown).
        provider: provider id of that message's model.
        model: model id.
    """

    tokens: int
    limit: int
    provider: str
    model: str

    @property
    def fraction(self) -> float:
        """``tokens / limit`` (0.0 when the limit is unknown)."""
        return self.tokens / self.limit if self.limit > 0 else 0.0


def _tool_summary(tool: str, inp: Any) -> str:
    if not isinstance(inp, dict):
        return ""
    for key in ("command", "filePath", "path", "pattern", "url", "description", "query"):
        val = inp.get(key)
        if isinstance(val, str) and val:
            return val
    if tool == "question":
        qs = inp.get("questions")
        if isinstance(qs, list) and qs and isinstance(qs[0], dict):
            return str(qs[0].get("question") or "")
    return ""


def _error_text(err: Any) -> tuple[str, str]:
    """``(name, message)`` of an opencode error object ``{"name", "data": {"message"}}``."""
    if not isinstance(err, dict):
        return "", str(err or "")
    data = err.get("data")
    msg = data.get("message") if isinstance(data, dict) else None
    return str(err.get("name") or ""), str(msg or err.get("message") or err.get("name") or "error")


def _tokens(info: dict[str, Any]) -> int:
    tok = info.get("tokens")
    if not isinstance(tok, dict):
        return 0
    total = tok.get("total")
    if isinstance(total, int) and total > 0:
        return total
    cache = _d(tok.get("cache"))
    parts = [tok.get("input"), tok.get("output"), tok.get("reasoning"), cache.get("read"), cache.get("write")]
    return sum(p for p in parts if isinstance(p, int))


class OpencodeState:
    """Everything one opencode server has told deck-tray, and the sessions it implies.

    Args:
        url: the server's base URL (goes into :attr:`Session.server`).

    Mutating methods return the set of **root** session ids whose snapshot may have
    changed, so the caller rebuilds only those.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.infos: dict[str, dict[str, Any]] = {}
        self.status: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, tuple[str, str, float]] = {}
        self.permissions: dict[str, dict[str, Any]] = {}
        self.questions: dict[str, dict[str, Any]] = {}
        self.request_dirs: dict[str, str] = {}
        self.asked_at: dict[str, float] = {}
        self.messages: dict[str, dict[str, _Msg]] = {}
        self.seen_at: dict[str, float] = {}
        self.settled_at: dict[str, float] = {}
        self.history_loaded: set[str] = set()
        #: Why the server cannot be followed right now (``""`` while connected).
        self.offline = ""
        self.offline_since = 0.0

    # -- structure -------------------------------------------------------------------

    def root_of(self, sid: str) -> str:
        """The root session of ``sid`` (follows ``parentID``; itself when it has none)."""
        seen = {sid}
        cur = sid
        while True:
            parent = self.infos.get(cur, {}).get("parentID")
            if not isinstance(parent, str) or not parent or parent in seen:
                return cur
            seen.add(parent)
            cur = parent

    def directory_of(self, sid: str) -> str:
        """The session's directory (``""`` if unknown)."""
        d = self.infos.get(sid, {}).get("directory")
        return d if isinstance(d, str) else ""

    def directories(self) -> set[str]:
        """Every directory a known session or request lives in."""
        dirs = {self.directory_of(s) for s in self.infos} | set(self.request_dirs.values())
        return {d for d in dirs if d}

    def unknown_sessions(self) -> set[str]:
        """Session ids seen in statuses, requests or messages whose info is not loaded yet."""
        ids = set(self.status) | {str(r.get("sessionID")) for r in self._requests()} | set(self.messages)
        return {i for i in ids if i.startswith("ses") and i not in self.infos}

    def _requests(self) -> list[dict[str, Any]]:
        return [*self.permissions.values(), *self.questions.values()]

    # -- inputs ----------------------------------------------------------------------

    def go_offline(self, why: str, now: float) -> None:
        """The stream dropped: statuses and pending requests can no longer be trusted.

        opencode keeps pending requests in memory only, so they are forgotten here and
        come back (or not) with the next :meth:`resync`. Sessions show ``UNKNOWN`` with
        ``why`` as the reason until then.
        """
        if not self.offline:
            self.offline_since = now
        self.offline = why or "disconnected"
        for sid in list(self.status):
            self.settled_at[sid] = now
        self.status.clear()
        self.permissions.clear()
        self.questions.clear()
        self.request_dirs.clear()
        self.asked_at.clear()

    def set_sessions(self, infos: list[dict[str, Any]]) -> set[str]:
        """Add or update session infos (``Session`` objects of the API)."""
        changed: set[str] = set()
        for info in infos:
            sid = info.get("id") if isinstance(info, dict) else None
            if isinstance(sid, str) and sid:
                self.infos[sid] = info
                changed.add(self.root_of(sid))
        return changed

    def set_messages(self, sid: str, items: list[dict[str, Any]]) -> set[str]:
        """Take a session's history from ``GET /session/{id}/message`` items.

        Messages that events built and the history lacks are kept; for a message in both,
        each part keeps whichever state got further (see :func:`_merge`).
        """
        msgs: dict[str, _Msg] = {}
        for item in items:
            info = item.get("info") if isinstance(item, dict) else None
            if not isinstance(info, dict) or not isinstance(info.get("id"), str):
                continue
            m = self._message(msgs, info)
            for part in _l(item.get("parts")):
                if isinstance(part, dict):
                    self._part(m, part)
        # What events already built may be older than the history (a reconnect reloads it)
        # or newer (events that arrived while it loaded): keep whichever got further.
        for mid, m in self.messages.get(sid, {}).items():
            if mid in msgs:
                _merge(msgs[mid], m)
            else:
                msgs[mid] = m
        self.messages[sid] = msgs
        self.history_loaded.add(sid)
        return {self.root_of(sid)}

    def resync(self, directory: str, statuses: dict[str, Any], permissions: list[dict[str, Any]],
               questions: list[dict[str, Any]], now: float) -> set[str]:
        """Replace what is known about ``directory`` with fresh REST answers.

        Args:
            directory: the instance directory the lists were fetched for.
            statuses: ``GET /session/status`` (only busy / retrying sessions).
            permissions: ``GET /permission``.
            questions: ``GET /question``.
            now: POSIX seconds.

        Requests of sessions that are not busy are dropped: an abort leaves them behind.
        A resync ends :meth:`go_offline`'s ``UNKNOWN``.
        """
        changed: set[str] = set()
        busy = {sid: st for sid, st in statuses.items() if isinstance(st, dict) and st.get("type") in BUSY_TYPES}
        in_dir = {s for s in self.infos if self.directory_of(s) == directory}
        for sid in in_dir | set(self.status):
            if (sid in in_dir or self.directory_of(sid) == directory) and sid not in busy and sid in self.status:
                del self.status[sid]
                self.settled_at[sid] = now
                changed.add(self.root_of(sid))
        for sid, st in busy.items():
            if self.status.get(sid) != st:
                if sid not in self.status:
                    self.errors.pop(sid, None)  # a turn started since that error
                self.status[sid] = st
                changed.add(self.root_of(sid))
        for store, fresh in ((self.permissions, permissions), (self.questions, questions)):
            for rid in [r for r, d in self.request_dirs.items() if d == directory and r in store]:
                gone = store.pop(rid)
                self.request_dirs.pop(rid, None)
                changed.add(self.root_of(str(gone.get("sessionID") or "")))
            for req in fresh:
                req_id, owner = req.get("id"), req.get("sessionID")
                if not isinstance(req_id, str) or not isinstance(owner, str) or owner not in busy:
                    continue
                store[req_id] = req
                self.request_dirs[req_id] = directory
                self.asked_at.setdefault(req_id, now)
                changed.add(self.root_of(owner))
        if self.offline:
            self.offline = ""
            changed |= set(self.roots())
        return {c for c in changed if c}

    def _sid_of(self, rid: str) -> str:
        req = self.permissions.get(rid) or self.questions.get(rid) or {}
        return str(req.get("sessionID") or "")

    def handle(self, frame: Any, now: float) -> set[str]:
        """Apply one ``/global/event`` frame (``{"directory", "payload"}``) or a bare event.

        Anything that is not an event of a known shape changes nothing.
        """
        if not isinstance(frame, dict):
            return set()
        payload = frame.get("payload") if "payload" in frame else frame
        if not isinstance(payload, dict):
            return set()
        directory = frame.get("directory") if isinstance(frame.get("directory"), str) else ""
        return self.handle_event(payload, str(directory or ""), now)

    def handle_event(self, event: dict[str, Any], directory: str, now: float) -> set[str]:
        """Apply one event ``{"type", "properties"}`` of ``directory``; see the module doc."""
        etype = event.get("type")
        props = event.get("properties")
        if not isinstance(etype, str) or etype in IGNORED_EVENTS or not isinstance(props, dict):
            return set()
        sid = props.get("sessionID")
        sid = sid if isinstance(sid, str) else ""
        changed = self._apply(etype, props, sid, directory, now)
        if changed and sid and etype != "session.deleted":
            # Activity on the session (malformed and unknown events are not).
            self.seen_at[sid] = now
        return changed

    def _apply(self, etype: str, props: dict[str, Any], sid: str, directory: str, now: float) -> set[str]:
        if etype in ("session.created", "session.updated"):
            info = props.get("info")
            if isinstance(info, dict) and isinstance(info.get("id"), str) and info["id"]:
                return self.set_sessions([info])
            return set()
        if etype == "session.deleted":
            info = props.get("info")
            sid = sid or (str(info.get("id") or "") if isinstance(info, dict) else "")
            if not sid:
                return set()
            root = self.root_of(sid)
            for member in self._family(sid):
                self._forget(member)
            return {root}
        if etype in ("permission.replied", "question.replied", "question.rejected"):
            rid = props.get("requestID")
            if not isinstance(rid, str) or not rid:
                return set()
            sid = sid or self._sid_of(rid)
            self.permissions.pop(rid, None)
            self.questions.pop(rid, None)
            self.request_dirs.pop(rid, None)
            self.asked_at.pop(rid, None)
            return {self.root_of(sid)} if sid else set()
        if not sid:
            return set()
        if etype == "session.status":
            st = props.get("status")
            kind = st.get("type") if isinstance(st, dict) else None
            if kind == "idle":
                self._settle(sid, now)
            elif kind in BUSY_TYPES and isinstance(st, dict):
                if sid not in self.status:
                    self.errors.pop(sid, None)  # a new turn: the last one's error is history
                self.status[sid] = st
            else:
                return set()
            return {self.root_of(sid)}
        if etype == "session.idle":
            self._settle(sid, now)
            return {self.root_of(sid)}
        if etype == "session.error":
            name, msg = _error_text(props.get("error"))
            self.errors[sid] = (name, msg, now)
            for s in self._family(sid):
                self._drop_requests(s)
            return {self.root_of(sid)}
        if etype in ("permission.asked", "question.asked"):
            rid = props.get("id")
            if not isinstance(rid, str) or not rid:
                return set()
            store = self.permissions if etype == "permission.asked" else self.questions
            store[rid] = props
            self.request_dirs[rid] = directory or self.directory_of(sid)
            self.asked_at[rid] = now
            return {self.root_of(sid)}
        if etype == "message.updated":
            info = props.get("info")
            if not isinstance(info, dict) or not isinstance(info.get("id"), str) or not info["id"]:
                return set()
            self._message(self.messages.setdefault(sid, {}), info)
            return {self.root_of(sid)}
        if etype == "message.part.updated":
            part = props.get("part")
            if not isinstance(part, dict):
                return set()
            mid, pid = part.get("messageID"), part.get("id")
            if not isinstance(mid, str) or not mid or not isinstance(pid, str) or not pid:
                return set()
            owner = self.messages.setdefault(sid, {}).setdefault(mid, _Msg(mid))
            self._part(owner, part)
            return {self.root_of(sid)}
        if etype == "message.part.delta":
            mid, pid = props.get("messageID"), props.get("partID")
            delta = props.get("delta")
            if (props.get("field", "text") != "text" or not isinstance(delta, str) or not isinstance(mid, str)
                    or not mid or not isinstance(pid, str) or not pid):
                return set()
            owner = self.messages.setdefault(sid, {}).setdefault(mid, _Msg(mid))
            owner.parts.setdefault(pid, _Part(pid, "text")).text += delta
            owner.streamed = True
            return {self.root_of(sid)}
        if etype == "message.removed":
            if self.messages.get(sid, {}).pop(str(props.get("messageID") or ""), None) is None:
                return set()
            return {self.root_of(sid)}
        if etype == "message.part.removed":
            gone = self.messages.get(sid, {}).get(str(props.get("messageID") or ""))
            if gone is None or gone.parts.pop(str(props.get("partID") or ""), None) is None:
                return set()
            return {self.root_of(sid)}
        return set()

    def _settle(self, sid: str, now: float) -> None:
        # Nothing below a session that stopped can still run or wait (a sub-agent runs inside
        # its parent's ``task`` call); an abort sends no ``*.replied`` for what it left behind.
        for s in self._family(sid):
            if s == sid or s in self.status:
                self.status.pop(s, None)
                self.settled_at[s] = now
            self._drop_requests(s)

    def _family(self, sid: str) -> set[str]:
        """``sid`` and every session below it (children, grandchildren, …)."""
        known = set(self.infos) | set(self.status) | set(self.messages) | {
            str(r.get("sessionID") or "") for r in self._requests()}
        out = {sid}
        for s in known:
            cur, seen = s, {s}
            while True:
                parent = self.infos.get(cur, {}).get("parentID")
                if not isinstance(parent, str) or not parent or parent in seen:
                    break
                if parent == sid:
                    out.add(s)
                    break
                seen.add(parent)
                cur = parent
        return out

    def _drop_requests(self, sid: str) -> None:
        for store in (self.permissions, self.questions):
            for rid in [r for r, req in store.items() if req.get("sessionID") == sid]:
                del store[rid]
                self.request_dirs.pop(rid, None)
                self.asked_at.pop(rid, None)

    def _forget(self, sid: str) -> None:
        for d in (self.infos, self.status, self.errors, self.messages, self.seen_at, self.settled_at):
            d.pop(sid, None)
        self.history_loaded.discard(sid)
        self._drop_requests(sid)

    @staticmethod
    def _message(msgs: dict[str, _Msg], info: dict[str, Any]) -> _Msg:
        mid = str(info["id"])
        m = msgs.setdefault(mid, _Msg(mid))
        m.role = str(info.get("role") or m.role)
        t = _d(info.get("time"))
        m.created = ms(t.get("created")) or m.created
        m.completed = ms(t.get("completed")) or m.completed
        if info.get("error"):
            name, msg = _error_text(info.get("error"))
            m.error = "stopped" if name == "MessageAbortedError" else msg
        m.tokens = _tokens(info) or m.tokens
        m.provider = str(info.get("providerID") or m.provider)
        m.model = str(info.get("modelID") or m.model)
        return m

    @staticmethod
    def _part(msg: _Msg, part: dict[str, Any]) -> None:
        pid = part.get("id")
        if not isinstance(pid, str):
            return
        ptype = str(part.get("type") or "")
        p = msg.parts.setdefault(pid, _Part(pid, ptype))
        p.type = ptype
        p.hidden = bool(part.get("synthetic") or part.get("ignored"))
        if ptype in ("text", "reasoning"):
            # The whole text replaces what the deltas built (delta/updated dedup).
            p.text = str(part.get("text") or "")
        elif ptype == "tool":
            state = _d(part.get("state"))
            p.tool = str(part.get("tool") or "")
            p.call_id = str(part.get("callID") or "")
            p.tool_status = str(state.get("status") or "")
            p.summary = str(state.get("title") or "") or _tool_summary(p.tool, state.get("input"))
            p.error = str(state.get("error") or "")
            answers = _d(state.get("metadata")).get("answers")
            if p.tool == "question" and isinstance(answers, list) and answers:
                picked = ", ".join(str(a) for group in answers if isinstance(group, list) for a in group)
                p.summary = f"{_tool_summary(p.tool, state.get('input')) or p.summary} → {picked}"
            inp = state.get("input")
            if isinstance(inp, dict) and isinstance(inp.get("filePath"), str) and p.tool in ("edit", "write"):
                p.files = (inp["filePath"],)
        elif ptype == "patch":
            files = part.get("files")
            p.files = tuple(str(f) for f in files) if isinstance(files, list) else ()

    # -- outputs ---------------------------------------------------------------------

    def roots(self) -> list[str]:
        """Ids of the root sessions (no ``parentID``) with a known info."""
        return [s for s in self.infos if self.root_of(s) == s]

    def descendants(self, root: str) -> set[str]:
        """``root`` and every session below it."""
        return {s for s in set(self.infos) | set(self.status) | set(self.messages) if self.root_of(s) == root} | {root}

    def pending_of(self, root: str) -> list[tuple[str, dict[str, Any], RequestKind]]:
        """Pending requests of ``root`` and its sub-agents, oldest first: ``(id, request, kind)``."""
        fam = self.descendants(root)
        out = [(rid, r, RequestKind.PERMISSION) for rid, r in self.permissions.items() if r.get("sessionID") in fam]
        out += [(rid, r, RequestKind.QUESTION) for rid, r in self.questions.items() if r.get("sessionID") in fam]
        out.sort(key=lambda t: (self.asked_at.get(t[0], 0.0), t[0]))
        return out

    def pending_request(self, rid: str, root: str, kind: RequestKind, req: dict[str, Any]) -> PendingRequest:
        """The :class:`PendingRequest` shown for one opencode request."""
        sid = str(req.get("sessionID") or "")
        asker = ""
        if sid and sid != root:
            asker = str(self.infos.get(sid, {}).get("title") or "a sub-agent")
        if kind is RequestKind.QUESTION:
            qs = _l(req.get("questions"))
            q = qs[0] if qs and isinstance(qs[0], dict) else {}
            opts = tuple(str(o.get("label")) for o in _l(q.get("options")) if isinstance(o, dict) and o.get("label"))
            more = f" (+{len(qs) - 1} more)" if len(qs) > 1 else ""
            return PendingRequest(RequestKind.QUESTION, "question", str(q.get("header") or "") + more, opts, rid,
                                  str(q.get("question") or ""), asker=asker)
        meta = _d(req.get("metadata"))
        patterns = _l(req.get("patterns"))
        summary = str(meta.get("command") or meta.get("filepath") or meta.get("filePath") or
                      ", ".join(str(p) for p in patterns) or req.get("permission") or "")
        return PendingRequest(RequestKind.PERMISSION, str(req.get("permission") or "tool"), summary,
                              PERMISSION_OPTIONS, rid, asker=asker)

    def conversation(self, root: str) -> tuple[Message, ...]:
        """The root session's conversation, oldest first (sub-agent turns are not mixed in)."""
        out: list[Message] = []
        msgs = sorted(self.messages.get(root, {}).values(), key=lambda m: (m.created, m.id))
        for m in msgs:
            role = m.shown_role()
            for p in sorted(m.parts.values(), key=lambda p: p.id):
                if p.hidden:
                    continue
                shown = strip_plugin_tags(p.text) if p.type == "text" else ""
                if p.type == "text" and shown.strip() and role is not None:
                    out.append(Message(role, shown, m.created, p.id))
                elif p.type == "tool":
                    state = {"completed": "done", "error": "error"}.get(p.tool_status, "pending")
                    text = f"{p.tool}({p.summary})" if p.summary else p.tool
                    if p.error:
                        text += f" — {p.error}"
                    out.append(Message(MessageRole.TOOL, text, m.created, p.call_id or p.id, state))
            if m.error and m.role == "assistant":
                out.append(Message(MessageRole.NOTICE, "Stopped" if m.error == "stopped" else f"Error: {m.error}",
                                   m.completed or m.created, m.id + ":error"))
        return tuple(out[-MAX_MESSAGES:])

    def session(self, root: str, now: float) -> Session:
        """The snapshot of one root session."""
        info = self.infos.get(root, {})
        t = _d(info.get("time"))
        updated = max([ms(t.get("updated")), ms(t.get("created")), self.seen_at.get(root, 0.0)])
        fam = self.descendants(root)
        ev = self._evidence(root, fam, updated)
        status, reason, pending = decide([ev], now)
        return Session(
            id=root, agent=AgentKind.OPENCODE, cwd=self.directory_of(root), title=str(info.get("title") or ""),
            status=status, reason=reason, pending=pending, updated_at=max(updated, ev.observed_at),
            messages=self.conversation(root), server=self.url,
        )

    def _evidence(self, root: str, fam: set[str], updated: float) -> Evidence:
        src = EvidenceSource.SSE
        if self.offline:
            return Evidence(src, SessionStatus.UNKNOWN, self.offline_since,
                            f"opencode server {self.url} not reachable: {self.offline}")
        pend = self.pending_of(root)
        if pend:
            rid, req, kind = pend[0]
            pr = self.pending_request(rid, root, kind, req)
            status = (SessionStatus.WAITING_QUESTION if kind is RequestKind.QUESTION
                      else SessionStatus.WAITING_PERMISSION)
            detail = "permission request" if kind is RequestKind.PERMISSION else "question"
            if pr.asker:
                detail = f"sub-agent “{pr.asker}” asks: {detail}"
            return Evidence(src, status, self.asked_at.get(rid, updated), detail, pending=pr)
        st = self.status.get(root)
        busy_kids = [s for s in fam if s != root and s in self.status]
        if st is not None and st.get("type") == "retry":
            msg = str(st.get("message") or "provider error")
            return Evidence(src, SessionStatus.BUSY, self.seen_at.get(root, updated),
                            f"retrying (attempt {st.get('attempt', '?')}): {msg}")
        if st is not None or busy_kids:
            detail = "working" if not busy_kids else f"working (sub-agent “{self._title(busy_kids[0])}”)"
            return Evidence(src, SessionStatus.BUSY, self.seen_at.get(root, updated), detail)
        err = self.errors.get(root)
        settled = self.settled_at.get(root, updated)
        if err is not None:
            name, msg, at = err
            if name == "MessageAbortedError":
                return Evidence(src, SessionStatus.IDLE, at, "stopped by the user")
            return Evidence(src, SessionStatus.IDLE, at, f"turn failed: {msg}")
        detail = "turn finished" if self.messages.get(root) or root in self.settled_at else "ready"
        return Evidence(src, SessionStatus.IDLE, settled, detail)

    def _title(self, sid: str) -> str:
        return str(self.infos.get(sid, {}).get("title") or sid[:12])

    def sessions(self, now: float, ids: set[str] | None = None) -> list[Session]:
        """Snapshots of the root sessions (all, or only ``ids``)."""
        roots = self.roots() if ids is None else [r for r in ids if r in self.infos and self.root_of(r) == r]
        return [self.session(r, now) for r in roots]

    def context_use(self, root: str, limits: dict[tuple[str, str], int]) -> ContextUse | None:
        """Context use from the last assistant message with tokens.

        Args:
            root: session id.
            limits: ``{(providerID, modelID): context limit}`` from ``GET /config/providers``.
        """
        msgs = sorted(self.messages.get(root, {}).values(), key=lambda m: (m.created, m.id))
        for m in reversed(msgs):
            if m.role == "assistant" and m.tokens > 0:
                return ContextUse(m.tokens, limits.get((m.provider, m.model), 0), m.provider, m.model)
        return None

    def files_touched(self, root: str) -> list[str]:
        """Files edited in this session (patch parts, edit/write tool inputs), first seen first."""
        out: dict[str, None] = {}
        # Time order across the family (session ids sort newest first, so not by session).
        msgs = [m for sid in self.descendants(root) for m in self.messages.get(sid, {}).values()]
        for m in sorted(msgs, key=lambda m: (m.created, m.id)):
            for p in sorted(m.parts.values(), key=lambda p: p.id):
                for f in p.files:
                    out.setdefault(f, None)
        return list(out)


def context_limits(providers: dict[str, Any]) -> dict[tuple[str, str], int]:
    """``GET /config/providers`` (``{"providers": [{"id", "models": {id: {"limit": {"context"}}}}]}``)
    → ``{(providerID, modelID): context tokens}``."""
    out: dict[tuple[str, str], int] = {}
    for prov in providers.get("providers") or []:
        if not isinstance(prov, dict):
            continue
        models = _d(prov.get("models"))
        for mid, model in models.items():
            limit = model.get("limit") if isinstance(model, dict) else None
            ctx = limit.get("context") if isinstance(limit, dict) else None
            if isinstance(ctx, int) and ctx > 0:
                out[(str(prov.get("id")), str(mid))] = ctx
    return out


def handoff_prompt(*, title: str, session_id: str, goal: str, doing: str, todos: list[dict[str, Any]],
                   files: list[str], directory: str = "") -> str:
    """The short prompt that starts a hand-off session (~100–200 tokens).

    Args:
        title: the previous session's title.
        session_id: the previous session id (``ses_…``).
        goal: the user's goal (their text, or the session's first prompt).
        doing: what was being done (the last assistant text, clipped).
        todos: ``GET /session/{id}/todo`` items ``{"content", "status", "priority"}``.
        files: files touched, absolute paths.
        directory: the project directory, used to shorten file paths.
    """
    lines = [f"# Session handoff: {_clip(title, 120) or session_id}", ""]
    if doing:
        lines += [f"**Where we are:** {_clip(doing, 400)}", ""]
    if goal:
        lines += [f"**Goal:** {_clip(goal, 300)}", ""]
    if todos:
        done = sum(1 for t in todos if t.get("status") == "completed")
        lines.append(f"**Todos:** {done}/{len(todos)} done")
        open_ = [t for t in todos if t.get("status") in ("in_progress", "pending")]
        for t in open_[:HANDOFF_TODOS]:
            mark = "▶" if t.get("status") == "in_progress" else "-"
            lines.append(f"{mark} {_clip(str(t.get('content') or ''), 120)}")
        if len(open_) > HANDOFF_TODOS:
            lines.append(f"(+{len(open_) - HANDOFF_TODOS} more open)")
        lines.append("")
    if files:
        base = directory.rstrip("/") + "/" if directory else ""
        shown = [f[len(base):] if base and f.startswith(base) else f for f in files[:12]]
        more = f" (+{len(files) - 12} more)" if len(files) > 12 else ""
        lines += ["**Files:** " + ", ".join(shown) + more, ""]
    lines.append("**Next:** continue from here; ask me if the goal is unclear.")
    lines.append("")
    lines.append(f"_Previous session: {session_id}. Its full history is in opencode under that id._")
    return "\n".join(lines)


def _merge(hist: _Msg, live: _Msg) -> None:
    """Fold what events built (``live``) into the same message from the history (``hist``).

    Either may be newer: keep each part in the state that got further (tool status
    pending → running → completed/error; text that extends the other), and fill message
    fields the history lacks.
    """
    hist.role = hist.role or live.role
    hist.created = hist.created or live.created
    hist.completed = hist.completed or live.completed
    hist.error = hist.error or live.error
    hist.tokens = hist.tokens or live.tokens
    hist.provider = hist.provider or live.provider
    hist.model = hist.model or live.model
    hist.streamed = hist.streamed or live.streamed
    for pid, lp in live.parts.items():
        hp = hist.parts.get(pid)
        if hp is None:
            hist.parts[pid] = lp
        elif lp.type == "tool" and _TOOL_RANK.get(lp.tool_status, 0) > _TOOL_RANK.get(hp.tool_status, 0):
            hist.parts[pid] = lp
        elif lp.type != "tool" and len(lp.text) > len(hp.text) and lp.text.startswith(hp.text):
            hist.parts[pid] = lp


_TOOL_RANK = {"pending": 1, "running": 2, "completed": 3, "error": 3}


def _clip(text: str, n: int) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"
