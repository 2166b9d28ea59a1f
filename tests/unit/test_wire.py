"""The remote protocol's shapes (deck_tray.core.wire, issue #18): what crosses the SSH channel
comes back as the same session, reply and report; anything malformed is a WireError."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deck_tray.core import wire
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
)
from deck_tray.core.reply import Reply, ReplyKind


def waiting(**kw: object) -> Session:
    base = dict(id="6c891d37-aaaa-bbbb", agent=AgentKind.CLAUDE_CODE, cwd="/home/dev/proj", title="Fix the build",
                pid=4242, pane=PaneRef("tmux", "%3", "/tmp/tmux-1000/default", "work:1.0"),
                status=SessionStatus.WAITING_PERMISSION, reason="permission prompt — live status file, 1 s ago",
                pending=PendingRequest(RequestKind.PERMISSION, "Bash", "rm -rf build", ("Yes", "No"), "toolu_1",
                                       "", ""),
                updated_at=1796000000.25,
                messages=(Message(MessageRole.USER, "fix it ✓\nplease", 1796000000.0, "u1"),
                          Message(MessageRole.TOOL, "Bash(rm -rf build)", 1796000000.2, "toolu_1", "pending")))
    base.update(kw)
    return Session(**base)  # type: ignore[arg-type]


def through(s: Session, host: str = "lab") -> Session:
    """As the local side gets it: to JSON bytes and back."""
    return wire.session_from_wire(orjson.loads(orjson.dumps(wire.session_to_wire(s))), host)


def test_a_waiting_session_crosses_whole_and_gets_the_hosts_name() -> None:
    s = waiting()
    got = through(s)
    assert got.id == "lab:6c891d37-aaaa-bbbb" and got.host == "lab" and got.local_id == s.id
    assert got.pending == s.pending and got.pane == s.pane and got.status is s.status
    assert got.messages == s.messages and got.updated_at == s.updated_at
    assert got.display_title == "Fix the build"
    assert got.to_json()["host"] == "lab" and s.to_json()["host"] is None


def test_only_the_newest_messages_cross_and_long_ones_are_cut() -> None:
    many = tuple(Message(MessageRole.ASSISTANT, f"m{i}") for i in range(wire.MAX_MESSAGES + 40))
    got = through(waiting(messages=many + (Message(MessageRole.ASSISTANT, "x" * (wire.MAX_MESSAGE_CHARS + 5)),)))
    assert len(got.messages) == wire.MAX_MESSAGES
    assert got.messages[-1].text.endswith("…") and len(got.messages[-1].text) == wire.MAX_MESSAGE_CHARS
    assert got.messages[0].text == f"m{40 + 1}"


@pytest.mark.parametrize("bad", [
    {}, {"id": "x"}, {"id": "x", "agent": "nope", "status": "idle"}, {"id": 3, "agent": "codex", "status": "idle"},
    {"id": "", "agent": "codex", "status": "idle"}, {"id": "x", "agent": "codex", "status": "idle", "pane": "tmux"},
    {"id": "x", "agent": "codex", "status": "idle", "messages": [["user"]]},
    {"id": "x", "agent": "codex", "status": "idle", "pending": {"kind": "maybe"}},
])
def test_a_malformed_session_is_a_wire_error(bad: dict[str, object]) -> None:
    with pytest.raises(wire.WireError):
        wire.session_from_wire(bad, "lab")


@given(st.sampled_from(list(ReplyKind)), st.text())
def test_replies_cross_byte_exact(kind: ReplyKind, text: str) -> None:
    r = Reply(kind, text)
    assert wire.reply_from_wire(orjson.loads(orjson.dumps(wire.reply_to_wire(r)))) == r


def test_reports_cross_and_bad_ones_are_errors() -> None:
    r = DeliveryReport(DeliveryState.ACCEPTED, "the agent took it", "two\nlines")
    assert wire.report_from_wire(orjson.loads(orjson.dumps(wire.report_to_wire(r)))) == r
    for bad in (None, [], {"state": "teleported"}):
        with pytest.raises(wire.WireError):
            wire.report_from_wire(bad)
    for bad in (None, {"kind": "sing", "text": ""}, {"kind": "prompt", "text": 5}):
        with pytest.raises(wire.WireError):
            wire.reply_from_wire(bad)


@pytest.mark.parametrize(("name", "ok"), [("lab", True), ("gpu-box.2", True), ("a_b", True), ("", False),
                                          ("-x", False), ("a:b", False), ("a b", False), ("é", False),
                                          ("x" * 41, False)])
def test_host_names(name: str, ok: bool) -> None:
    assert wire.valid_host_name(name) is ok


def test_a_session_without_an_update_time_keeps_zero() -> None:
    got = through(waiting(updated_at=0.0, pending=None, pane=None, messages=(), pid=None,
                          status=SessionStatus.IDLE))
    assert got.updated_at == 0.0 and got.pane is None and got.pid is None and time.time() > 0


# -- history search (``search``) -------------------------------------------------------------------

def _hit(**kw: object) -> SearchHit:
    base = dict(agent=AgentKind.CODEX, session_id="019a-thread", title="Fix the login ✓", project="/home/dev/api",
                source_path="/home/dev/.codex/sessions/r.jsonl", server_url="", ordinal=12,
                role=HistoryRole.ASSISTANT, ts=1796000000.5, text="the token refresh compares local time with UTC",
                snippet=(("the token ", False), ("refresh", True), (" compares", False)), rank=-3.25, thread="")
    base.update(kw)
    return SearchHit(**base)  # type: ignore[arg-type]


def test_a_search_crosses_with_its_filters_and_a_bounded_limit() -> None:
    q = SearchQuery("token refresh", agents=frozenset({AgentKind.CODEX, AgentKind.CLAUDE_CODE}), project="api",
                    since=1795000000.0, until=None, roles=frozenset({HistoryRole.USER}), limit=5000)
    d = orjson.loads(orjson.dumps({"op": "search", "rid": 7, **wire.search_to_wire(q)}))
    assert d["query"] == "token refresh" and d["limit"] == wire.MAX_SEARCH_HITS
    back = wire.search_from_wire(d)
    assert back == SearchQuery("token refresh", q.agents, "api", 1795000000.0, None, q.roles, wire.MAX_SEARCH_HITS)


@pytest.mark.parametrize("bad", [
    {}, {"query": ""}, {"query": 3}, {"query": "x", "limit": "9"}, {"query": "x", "since": "yesterday"},
    {"query": "x", "agents": ["cursor"]}, {"query": "x", "roles": ["prompt"]}, {"query": "x", "agents": "codex"},
])
def test_a_malformed_search_is_a_wire_error(bad: dict[str, object]) -> None:
    with pytest.raises(wire.WireError):
        wire.search_from_wire(bad)


def test_a_hit_crosses_with_the_host_and_without_the_remote_paths() -> None:
    hit = _hit(thread="agent-1")
    got = wire.hit_from_wire(orjson.loads(orjson.dumps(wire.hit_to_wire(hit))), "lab")
    assert isinstance(got, SearchHit) and wire.hit_host(got) == "lab" and wire.hit_host(hit) == ""
    assert (got.agent, got.session_id, got.title, got.project, got.ordinal, got.role, got.ts, got.text,
            got.snippet, got.rank, got.thread) == (hit.agent, hit.session_id, hit.title, hit.project, hit.ordinal,
                                                   hit.role, hit.ts, hit.text, hit.snippet, hit.rank, hit.thread)
    assert got.source_path == "" and got.server_url == "", "the other machine's files are not reachable here"
    assert got.to_json()["host"] == "lab"


def test_a_hit_is_bounded_on_the_wire() -> None:
    big = _hit(text="x" * 50_000, title="t" * 5_000, snippet=tuple(("w" * 400, i % 2 == 1) for i in range(50)))
    d = wire.hit_to_wire(big)
    assert len(d["text"]) == wire.MAX_HIT_TEXT_CHARS and d["text"].endswith("…")
    assert len(d["title"]) == wire.MAX_HIT_FIELD_CHARS
    assert sum(len(s) for s, _m in d["snippet"]) <= wire.MAX_HIT_FIELD_CHARS + 1
    assert len(orjson.dumps([d] * wire.MAX_SEARCH_HITS)) < 300_000, "a whole answer stays small"


def test_a_hit_this_version_cannot_read_is_skipped_not_the_answer() -> None:
    good = wire.hit_to_wire(_hit())
    newer = {**good, "agent": "cursor"}
    hits, bad = wire.hits_from_wire([good, newer, "junk", {**good, "session_id": ""}], "lab")
    assert [h.session_id for h in hits] == ["019a-thread"] and len(bad) == 3
    assert wire.hits_from_wire(None, "lab") == ([], ["the hits are not a list"])


def test_an_older_serve_says_unknown_op() -> None:
    assert wire.is_unknown_op({"op": "result", "rid": 3, "error": "unknown op 'search'"})
    assert not wire.is_unknown_op({"op": "result", "rid": 3, "error": "database is locked"})
    assert not wire.is_unknown_op({"op": "result", "rid": 3, "hits": []})
