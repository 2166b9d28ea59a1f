"""Changing the opencode settings while the source runs: named servers come and go,
discovery turns on and off, without restarting anything."""

from __future__ import annotations

import asyncio

import pytest

from deck_tray.services import opencode_source
from deck_tray.services.opencode_source import OpencodeSource
from deck_tray.services.registry import SessionRegistry
from deck_tray.services.secrets import Credentials

# Nothing listens on these ports (discard / a reserved one): the watchers keep retrying.
A = "http://127.0.0.1:9"
B = "http://127.0.0.1:1"
LOCAL = "http://127.0.0.1:7"


def source(**kw: object) -> OpencodeSource:
    return OpencodeSource(SessionRegistry(), Credentials({"OPENCODE_SERVER_PASSWORD": "x"}), **kw)  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.02)


def test_named_servers_follow_the_settings(qloop: asyncio.AbstractEventLoop) -> None:
    src = source(urls=[A], discover=False)
    seen: list[list[str]] = []
    src.servers_changed.connect(lambda states: seen.append([s.url for s in states]))

    async def scenario() -> None:
        src.start()
        try:
            assert set(src.watchers) == {A}
            src.set_urls(["localhost:1/"])  # B, spelled differently
            await settle()
            assert src.configured == [B] and set(src.watchers) == {B}
            assert seen[-1] == [B]
            src.remove_url(B)
            await settle()
            assert src.configured == [] and src.watchers == {}
        finally:
            await src.stop()

    qloop.run_until_complete(scenario())


def test_urls_set_before_start_are_followed_at_start(qloop: asyncio.AbstractEventLoop) -> None:
    src = source(urls=[A], discover=False)
    src.set_urls([B, A])
    assert src.configured == [B, A] and src.watchers == {}

    async def scenario() -> None:
        src.start()
        try:
            assert set(src.watchers) == {A, B}
        finally:
            await src.stop()

    qloop.run_until_complete(scenario())


def test_discovery_on_and_off(qloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opencode_source, "discover_server_binaries",
                        lambda: {LOCAL: "/opt/opencode/bin/opencode", A: ""})
    src = source(urls=[A], discover=False, discover_every=0.05)

    async def scenario() -> None:
        src.start()
        try:
            await settle()
            assert set(src.watchers) == {A}, "discovery is off"
            src.set_discover(True)
            await settle()
            assert set(src.watchers) == {A, LOCAL}
            # "Open in terminal" runs the same opencode that serves the session.
            assert (src.binary_for(LOCAL), src.binary_for(A)) == ("/opt/opencode/bin/opencode", "")
            src.remove_url(A)  # no longer named, but it runs here: still followed
            await settle()
            assert set(src.watchers) == {A, LOCAL} and src.configured == []
            src.set_urls([A])
            src.set_discover(False)  # only what is named stays
            await settle()
            assert set(src.watchers) == {A}
            await asyncio.sleep(0.15)
            assert set(src.watchers) == {A}, "no discovery pass runs any more"
        finally:
            await src.stop()

    qloop.run_until_complete(scenario())
