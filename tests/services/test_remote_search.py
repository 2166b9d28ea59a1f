"""History search on remote hosts (#18), the local side: deck_tray.services.remote asks each host's
``serve`` (here a small stand-in run as the "ssh" command, speaking the wire protocol on its
stdio) and turns every way it can go into words: hits with the host's name, an older deck-tray
there ("too old … run deck-tray remote install"), a host that never answers, one that is down."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deck_tray.core import wire
from deck_tray.core.history import HistoryRole, SearchHit, SearchQuery
from deck_tray.core.model import AgentKind
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.remote import HostConfig, Remotes, SearchProblem, search_hosts

HIT = wire.hit_to_wire(SearchHit(AgentKind.CLAUDE_CODE, "a149cb9e", "Deploy the quokka", "/home/lab/proj", "", "", 3,
                                 HistoryRole.USER, 1796000000.0, "deploy the quokka service",
                                 (("deploy the ", False), ("quokka", True)), -4.0))

#: A remote ``deck-tray serve --stdio`` as far as these tests need one: hello, an empty snapshot,
#: then per request, by the mode it is started with (the "ssh" command's first argument):
#: ``new`` answers a search with HIT, ``old`` is a deck-tray from before ``search`` ("unknown
#: op"), ``mute`` never answers a search.
SERVE = textwrap.dedent('''
    import json, sys
    mode = sys.argv[1]
    def send(m):
        sys.stdout.write(json.dumps(m) + "\\n"); sys.stdout.flush()
    send({"op": "hello", "app": "deck-tray", "version": VERSION, "protocol": 1, "hostname": "lab", "pid": 1})
    send({"op": "snapshot", "sessions": [], "more": False})
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "search" and mode == "new":
            send({"op": "result", "rid": req["rid"], "hits": [HIT], "indexing": None, "asked": req})
        elif req["op"] == "search" and mode == "mute":
            continue
        else:
            send({"op": "result", "rid": req["rid"], "error": "unknown op %r" % req["op"]})
''')


@pytest.fixture
def serve(tmp_path: Path) -> list[str]:
    from deck_tray import __version__

    script = tmp_path / "fake_serve.py"
    script.write_text(f"VERSION = {__version__!r}\nHIT = {HIT!r}\n" + SERVE)
    return [sys.executable, str(script)]


def test_each_host_answers_in_its_own_words(qloop: asyncio.AbstractEventLoop, serve: list[str]) -> None:
    query = SearchQuery("quokka", agents=frozenset({AgentKind.CLAUDE_CODE}), limit=20)

    async def run() -> list[object]:
        # One Remotes per mode: the mode is the "ssh" command's first argument.
        hosts = {"lab": "new", "attic": "old", "slow": "mute"}
        each = {name: Remotes(SessionRegistry(announce_hold=0), [HostConfig(name, "me@" + name)],
                              ssh=[*serve, mode]) for name, mode in hosts.items()}
        refused = "import sys; sys.stderr.write('Connection refused\\n'); sys.exit(255)"
        down = Remotes(SessionRegistry(announce_hold=0), [HostConfig("gone", "me@gone")],
                       ssh=[sys.executable, "-c", refused], backoff=(30.0,))
        for r in (*each.values(), down):
            r.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline and not (
                all(r.hosts[n].status.state.value == "connected" for n, r in each.items())
                and down.hosts["gone"].attempts):
            await asyncio.sleep(0.02)
        seen: list[str] = []
        t0 = time.monotonic()
        answers = []
        for r in (*each.values(), down):
            answers += await r.search_history(query, timeout=1.0, each=lambda a: seen.append(a.host))
        took = time.monotonic() - t0
        for r in (*each.values(), down):
            await r.stop()
        return [answers, seen, took]

    answers, seen, took = qloop.run_until_complete(run())
    by = {a.host: a for a in answers}  # type: ignore[attr-defined]
    lab = by["lab"]
    assert lab.problem is None and lab.label == "lab: 1 result"
    assert [(wire.hit_host(h), h.session_id, h.title) for h in lab.hits] == [("lab", "a149cb9e", "Deploy the quokka")]
    assert by["attic"].problem is SearchProblem.TOO_OLD and by["attic"].label == "attic: too old"
    assert by["attic"].detail == ("attic's deck-tray is too old for history search; run deck-tray remote "
                                  "install attic")
    assert by["slow"].problem is SearchProblem.NO_ANSWER and "within 1 s" in by["slow"].detail
    assert by["gone"].problem is SearchProblem.NOT_REACHABLE and by["gone"].label == "gone: not reachable"
    assert "Connection refused" in by["gone"].detail
    assert seen == ["lab", "attic", "slow", "gone"]
    assert took < 5.0, "a host that never answers costs its timeout, no more"


def test_the_one_shot_cli_search_connects_asks_and_closes(qloop: asyncio.AbstractEventLoop,
                                                          serve: list[str]) -> None:
    async def run() -> list[object]:
        return list(await search_hosts([HostConfig("lab", "me@lab")], SearchQuery("quokka"), [*serve, "new"], None,
                                       timeout=10))

    (answer,) = qloop.run_until_complete(run())
    assert answer.problem is None and [h.title for h in answer.hits] == ["Deploy the quokka"]  # type: ignore[attr-defined]
