"""The history indexer against a real ``opencode serve`` with a password (and the loopback fake
model): a finished turn is fetched with blocking requests from the worker thread and found by
search; with the wrong password the server's 401 is logged and nothing is indexed."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from deck_tray.core.history import SearchQuery
from deck_tray.core.model import AgentKind
from deck_tray.services.history_indexer import HistoryIndexer
from deck_tray.services.history_store import HistoryIndex
from deck_tray.services.secrets import Credentials

from .opencode_harness import FakeOpenAIModel, OpencodeServe, find_opencode

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(find_opencode() is None, reason="opencode not found (run ./scripts/test.sh)"),
]


def index_once(qloop: asyncio.AbstractEventLoop, idx: HistoryIndex, url: str, password: str,
               tmp_path: Path) -> None:
    indexer = HistoryIndexer(idx, lambda: (tmp_path / "none", tmp_path / "none"), lambda: [url],
                             Credentials(env={"OPENCODE_SERVER_PASSWORD": password}))

    async def run() -> None:
        indexer.start()
        try:
            assert await asyncio.get_running_loop().run_in_executor(None, indexer.wait_idle, 90.0)
        finally:
            await indexer.stop()

    qloop.run_until_complete(run())


def test_a_finished_turn_is_indexed_and_a_wrong_password_is_logged(
        tmp_path: Path, qloop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAIModel(tmp_path / "model") as model, \
            OpencodeServe(tmp_path / "oc", model.base_url, password="s3cret-pw") as server:
        sid = server.create_session("quokka history")
        server.prompt_async(sid, "Say hello to the quokka")
        deadline = time.monotonic() + 90
        while not any(m["info"].get("role") == "assistant" and m["info"].get("time", {}).get("completed")
                      for m in server.get(f"/session/{sid}/message")):
            assert time.monotonic() < deadline, "the turn did not finish"
            time.sleep(0.2)

        caplog.set_level(logging.INFO, logger="deck_tray.services.history_indexer")
        wrong = HistoryIndex(tmp_path / "wrong.sqlite3")
        index_once(qloop, wrong, server.url, "not-it", tmp_path)
        assert wrong.opencode_updated(server.url) == {}
        assert [r.getMessage() for r in caplog.records if "not indexed now" in r.getMessage()] == [
            f"history: opencode server {server.url} not indexed now: {server.url} needs a password (HTTP 401)"]

        idx = HistoryIndex(tmp_path / "h.sqlite3")
        index_once(qloop, idx, server.url, "s3cret-pw", tmp_path)
        hits = idx.search(SearchQuery("quokka"))
        assert {(h.agent, h.session_id, h.server_url) for h in hits} == {(AgentKind.OPENCODE, sid, server.url)}
        texts = [e.text for e in idx.session_entries(AgentKind.OPENCODE, sid)]
        assert "Say hello to the quokka" in texts and "Hello from the fake LLM." in texts, texts
        wrong.close()
        idx.close()
