"""The history of the agents watched through an adapter (issue #19): their session files are found
under each adapter's home, read whole by its parser whenever they change (a Gemini ``$set`` replaces
what was indexed, no duplicates), skipped when too large or not regular files, found by
``deck-tray search``, and a hit's conversation is rebuilt from its file for the search window.

Fixtures: ``gemini-cli-0.61.0-{shell-allow,ask-user,cancelled}.jsonl`` and
``qwen-code-0.24.4-transcript.jsonl``, placed where those CLIs keep them.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core import past
from deck_tray.core.agents import ADAPTERS, default_homes
from deck_tray.core.history import QueryError, SearchQuery, agent_of
from deck_tray.core.model import AgentKind, MessageRole
from deck_tray.services import history_store as hs
from deck_tray.services.history_indexer import HistoryIndexer
from deck_tray.services.history_store import HistoryIndex, classify, discover_files

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent.parent

GEMINI_SHELL_ID = "600a6902-a7c5-41aa-bf06-befb0646cb57"
GEMINI_ASK_ID = "feaf7721-5451-4a7b-accd-dc111821c790"
GEMINI_CANCEL_ID = "299dc833-5aa7-463c-b927-880042b7c0ee"
QWEN_ID = "9c0934bc-c2f9-4dd7-a039-37299c7e949d"
QWEN_CWD = "/tmp/deck-tray-gq/qwen-shell/project"


class Layout:
    """The captured files where Gemini CLI 0.61.0 and Qwen Code 0.24.4 keep them under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {"HOME": str(home), "GEMINI_CLI_HOME": str(home), "QWEN_HOME": str(home / ".qwen")}
        self.homes = default_homes(self.env)
        self.gemini_project = str(home / "work" / "gem-proj")
        tmp = self.homes[AgentKind.GEMINI_CLI] / "tmp" / "gem-proj"
        (tmp / "chats").mkdir(parents=True)
        (tmp / ".project_root").write_text(self.gemini_project)
        self.gemini_dir = tmp / "chats"
        self.gemini = {
            GEMINI_SHELL_ID: self._put("gemini-cli-0.61.0-shell-allow.jsonl",
                                       tmp / "chats" / "session-2026-12-07T00-47-600a6902.jsonl"),
            GEMINI_ASK_ID: self._put("gemini-cli-0.61.0-ask-user.jsonl",
                                     tmp / "chats" / "session-2026-12-07T00-47-feaf7721.jsonl"),
            GEMINI_CANCEL_ID: self._put("gemini-cli-0.61.0-cancelled.jsonl",
                                        tmp / "chats" / "session-2026-12-07T00-47-299dc833.jsonl"),
        }
        self.qwen_dir = self.homes[AgentKind.QWEN_CODE] / "projects" / QWEN_CWD.replace("/", "-").replace("_", "-") \
            / "chats"
        self.qwen = self._put("qwen-code-0.24.4-transcript.jsonl", self.qwen_dir / f"{QWEN_ID}.jsonl")
        # Qwen's per-process file beside its projects: not a transcript.
        (self.homes[AgentKind.QWEN_CODE] / "sessions").mkdir(parents=True)
        (self.homes[AgentKind.QWEN_CODE] / "sessions" / "4242.json").write_text('{"pid": 4242}')
        self.claude_dir, self.codex_dir = home / ".claude", home / ".codex"

    @staticmethod
    def _put(name: str, dst: Path) -> Path:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, dst)
        return dst

    def files(self) -> list[tuple[AgentKind, str]]:
        return discover_files(self.claude_dir, self.codex_dir, self.homes)


@pytest.fixture
def lay(tmp_path: Path) -> Layout:
    home = tmp_path / "home"
    home.mkdir()
    return Layout(home)


def entries_of(idx: HistoryIndex, path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(idx.path)
    try:
        return conn.execute("SELECT e.ordinal, e.role, e.text FROM entries e JOIN sessions s ON s.id = e.sess "
                            "WHERE s.key = ? ORDER BY e.ordinal", (str(path),)).fetchall()
    finally:
        conn.close()


def test_every_adapter_has_a_home_and_its_files_are_discovered(lay: Layout) -> None:
    assert set(lay.homes) == {a.kind for a in ADAPTERS}
    found = lay.files()
    assert len(found) == 4 and set(found) == {*((AgentKind.GEMINI_CLI, str(p)) for p in lay.gemini.values()),
                                              (AgentKind.QWEN_CODE, str(lay.qwen))}
    assert discover_files(lay.claude_dir, lay.codex_dir) == [], "without the homes: as before, none of theirs"
    # A watcher's paths: the adapters' session files by where they live.
    g = str(lay.gemini[GEMINI_SHELL_ID])
    assert classify(g, lay.claude_dir, lay.codex_dir, lay.homes) is AgentKind.GEMINI_CLI
    assert classify(str(lay.qwen), lay.claude_dir, lay.codex_dir, lay.homes) is AgentKind.QWEN_CODE
    assert classify(g, lay.claude_dir, lay.codex_dir) is None
    for other in (lay.homes[AgentKind.QWEN_CODE] / "sessions" / "4242.json", lay.gemini_dir.parent / "logs.jsonl",
                  lay.home / "elsewhere" / "x.jsonl"):
        assert classify(str(other), lay.claude_dir, lay.codex_dir, lay.homes) is None, other


def test_gemini_and_qwen_sessions_are_indexed_with_id_title_and_project(tmp_path: Path, lay: Layout) -> None:
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    assert idx.sync_files(lay.files(), full=True) > 0
    hits = idx.search(SearchQuery("FAKE_SHELL", limit=50))
    got = {(h.agent, h.session_id, h.title, h.project, h.role.value) for h in hits}
    assert (AgentKind.GEMINI_CLI, GEMINI_SHELL_ID, "please FAKE_SHELL now", lay.gemini_project, "user") in got
    assert (AgentKind.QWEN_CODE, QWEN_ID, "please FAKE_SHELL now", QWEN_CWD, "user") in got
    # What is indexed of a session: its prompts, tool calls and answers, in order, with their times.
    assert entries_of(idx, lay.gemini[GEMINI_SHELL_ID]) == [
        (0, "user", "please FAKE_SHELL now"), (1, "tool", "Shell(touch gemini-ran.txt)"), (2, "assistant", "FAKE_DONE")]
    assert entries_of(idx, lay.qwen) == [
        (0, "user", "please FAKE_SHELL now"), (1, "tool", "run_shell_command(touch gemini-ran.txt)"),
        (2, "assistant", "FAKE_DONE")]
    ask = idx.search(SearchQuery('"Which colour do you prefer"'))
    assert [(h.agent, h.session_id, h.role.value) for h in ask] == [(AgentKind.GEMINI_CLI, GEMINI_ASK_ID, "tool")]
    assert ask[0].ts == datetime.datetime(2026, 12, 7, 0, 47, 28, 394000, tzinfo=datetime.UTC).timestamp()
    # Filters by agent, by name as typed.
    only = idx.search(SearchQuery("FAKE_SHELL", agents=frozenset({agent_of("qwen")})))
    assert {h.agent for h in only} == {AgentKind.QWEN_CODE}
    assert idx.stats()["by_agent"] == {"gemini-cli": 3, "qwen-code": 1}
    # Unchanged files are not read again; nothing is added twice.
    assert idx.sync_files(lay.files(), full=True) == 0
    assert len(entries_of(idx, lay.qwen)) == 3
    idx.close()


def test_gemini_cancelled_session_indexed_by_its_id(tmp_path: Path, lay: Layout) -> None:
    """After a cancel Gemini 0.61.0 ``$set``s the list to one user record (its context and the
    prompt): the session is indexed under its id, and its prompt is found."""
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(lay.files(), full=True)
    conn = sqlite3.connect(idx.path)
    row = conn.execute("SELECT agent, session_id, cwd FROM sessions WHERE key = ?",
                       (str(lay.gemini[GEMINI_CANCEL_ID]),)).fetchone()
    conn.close()
    assert row == ("gemini-cli", GEMINI_CANCEL_ID, lay.gemini_project)
    # The cancelled tool call and "Request cancelled." are gone from Gemini's own list: not found.
    assert not [h for h in idx.search(SearchQuery('"Request cancelled"')) if h.session_id == GEMINI_CANCEL_ID]
    assert [h.title for h in idx.search(SearchQuery("FAKE_SHELL")) if h.session_id == GEMINI_CANCEL_ID] == [
        "please FAKE_SHELL now"]
    idx.close()


def test_a_rewritten_gemini_file_replaces_its_entries(tmp_path: Path, lay: Layout) -> None:
    """A ``$set`` of the messages (what Gemini writes after a cancel or a rewind) and a record
    replacing a known id change what is indexed; the old entries go in the same write."""
    path = lay.gemini[GEMINI_SHELL_ID]
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(lay.files(), full=True)
    assert len(entries_of(idx, path)) == 3
    # A record with a known id replaces that message (the answer is rewritten).
    with open(path, "a") as f:
        f.write(json.dumps({"id": "d62221da-c825-4de3-b121-9c8ba81a70ad", "timestamp": "2026-12-07T00:47:05.183Z",
                            "type": "gemini", "content": "FAKE_REWRITTEN answer"}) + "\n")
    idx.sync_files([(AgentKind.GEMINI_CLI, str(path))])
    assert entries_of(idx, path) == [(0, "user", "please FAKE_SHELL now"), (1, "tool", "Shell(touch gemini-ran.txt)"),
                                     (2, "assistant", "FAKE_REWRITTEN answer")]
    assert not idx.search(SearchQuery("FAKE_DONE", session_id=GEMINI_SHELL_ID))
    # $set replaces the whole list.
    with open(path, "a") as f:
        f.write(json.dumps({"$set": {"messages": [
            {"id": "n1", "timestamp": "2026-12-07T01:00:00.000Z", "type": "user",
             "content": [{"text": "only a QUOKKA question now"}]},
            {"id": "n2", "timestamp": "2026-12-07T01:00:02.000Z", "type": "gemini", "content": "QUOKKA answer"}],
            "lastUpdated": "2026-12-07T01:00:02.000Z"}}) + "\n")
    idx.sync_files(lay.files(), full=True)
    assert entries_of(idx, path) == [(0, "user", "only a QUOKKA question now"), (1, "assistant", "QUOKKA answer")]
    assert not [h for h in idx.search(SearchQuery("FAKE_SHELL")) if h.session_id == GEMINI_SHELL_ID]
    hits = idx.search(SearchQuery("QUOKKA"))
    assert {(h.session_id, h.title) for h in hits} == {(GEMINI_SHELL_ID, "only a QUOKKA question now")}
    conn = sqlite3.connect(idx.path)
    assert conn.execute("SELECT count(*) FROM sessions WHERE key = ?", (str(path),)).fetchone()[0] == 1
    # The old title went with its entries; Qwen's session and the cancelled Gemini one keep theirs.
    assert conn.execute("SELECT count(*) FROM titles_fts WHERE titles_fts MATCH 'FAKE_SHELL'").fetchone()[0] == 2
    conn.close()
    assert idx.check()
    # Replaced by a new file under the same name (another inode), then deleted.
    tmp = path.with_suffix(".new")
    shutil.copy(FIXTURES / "gemini-cli-0.61.0-shell-allow.jsonl", tmp)
    os.replace(tmp, path)
    idx.sync_files(lay.files(), full=True)
    assert [e[2] for e in entries_of(idx, path)][-1] == "FAKE_DONE"
    path.unlink()
    idx.sync_files(lay.files(), full=True)
    assert entries_of(idx, path) == [] and str(path) not in idx.file_states()
    idx.close()


def test_a_too_large_adapter_file_is_skipped_and_reported(tmp_path: Path, lay: Layout,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(lay.files(), full=True)
    monkeypatch.setattr(hs, "ADAPTER_FILE_MAX_BYTES", 4000)
    assert lay.qwen.stat().st_size > 4000 > lay.gemini[GEMINI_SHELL_ID].stat().st_size
    with open(lay.qwen, "a") as f:
        f.write(json.dumps({"uuid": "x1", "sessionId": QWEN_ID, "timestamp": "2026-12-07T00:51:00.000Z", "type": "user",
                            "message": {"role": "user", "parts": [{"text": "a WOMBAT prompt"}]}}) + "\n")
    for _ in range(2):
        idx.sync_files(lay.files(), full=True)
    assert not idx.search(SearchQuery("WOMBAT")), "not read again"
    assert {h.session_id for h in idx.search(SearchQuery("FAKE_SHELL"))} >= {QWEN_ID, GEMINI_SHELL_ID}, \
        "what was indexed of it before stays"
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")]
    assert skipped == [f"skipped {lay.qwen}: cannot be read (larger than the 4,000 bytes the history reads of a "
                       f"session file)"], "reported once"
    # A new file too large from the start is not indexed at all.
    big = lay.qwen_dir / "0bbbbbbb-0000-4000-8000-000000000000.jsonl"
    shutil.copy(lay.qwen, big)
    idx.sync_files(lay.files(), full=True)
    assert str(big) not in idx.file_states()
    idx.close()


def test_named_pipes_named_like_adapter_session_files_never_block_the_index(
        tmp_path: Path, lay: Layout, caplog: pytest.LogCaptureFixture) -> None:
    """A named pipe where Gemini or Qwen keep their sessions (found by a full scan, or named by a
    file event) is skipped with one log line; the sessions beside it are indexed."""
    pipes = [lay.gemini_dir / "session-2026-12-07T01-00-deadbeef.jsonl",
             lay.qwen_dir / "11111111-1111-4111-8111-111111111111.jsonl"]
    for p in pipes:
        os.mkfifo(p)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    changed = [(a, str(p)) for p in pipes if (a := classify(str(p), lay.claude_dir, lay.codex_dir, lay.homes))]
    assert [a for a, _p in changed] == [AgentKind.GEMINI_CLI, AgentKind.QWEN_CODE]

    def within(seconds: float, fn: Any) -> Any:
        out: list[Any] = []
        t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
        t.start()
        t.join(seconds)
        hung = t.is_alive()
        while t.is_alive():  # a regression: give the stuck reader a writer, so it reads EOF
            for p in pipes:
                try:
                    os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            t.join(0.1)
        assert not hung, f"indexing blocked for {seconds} s on a named pipe"
        return out[0] if out else None

    assert within(10, lambda: idx.sync_files(lay.files(), full=True)) > 5
    assert within(10, lambda: idx.sync_files(changed)) == 0
    assert {h.session_id for h in idx.search(SearchQuery("FAKE_SHELL"))} >= {GEMINI_SHELL_ID, QWEN_ID}
    assert not any(str(p) in idx.file_states() for p in pipes)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")] == [
        f"skipped {p}: a named pipe, not a transcript" for p in pipes]
    idx.close()


def test_a_hit_opens_as_the_conversation_of_its_file(tmp_path: Path, lay: Layout) -> None:
    """The search window rebuilds a past adapter session from the index, else from its file."""
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(lay.files(), full=True)
    hit = next(h for h in idx.search(SearchQuery("FAKE_SHELL")) if h.session_id == GEMINI_SHELL_ID)
    assert hit.source_path == str(lay.gemini[GEMINI_SHELL_ID])
    from_index = past.session_from_entries(hit, idx.session_entries(hit.agent, hit.session_id))
    from_file = past.session_from_transcript(hit)
    assert from_file is not None and past.has_reader(AgentKind.GEMINI_CLI) and past.has_reader(AgentKind.QWEN_CODE)
    assert [m.text for m in from_index.messages] == [m.text for m in from_file.messages] == [
        "please FAKE_SHELL now", "Shell(touch gemini-ran.txt)", "FAKE_DONE"]
    assert (from_file.id, from_file.agent, from_file.cwd, from_file.title) == (
        GEMINI_SHELL_ID, AgentKind.GEMINI_CLI, lay.gemini_project, "please FAKE_SHELL now")
    assert [m.role for m in from_file.messages] == [MessageRole.USER, MessageRole.TOOL, MessageRole.ASSISTANT]
    msgs = past.conversation_from_transcript(AgentKind.QWEN_CODE, str(lay.qwen))
    assert [m.text for m in msgs][-1] == "FAKE_DONE"
    # A file that is gone, or a named pipe in its place: None (the window says it cannot be read).
    os.unlink(hit.source_path)
    assert past.session_from_transcript(hit) is None
    os.mkfifo(hit.source_path)
    assert past.session_from_transcript(hit) is None
    idx.close()


def test_agent_names_cover_every_agent() -> None:
    assert agent_of("gemini") is AgentKind.GEMINI_CLI and agent_of("qwen-code") is AgentKind.QWEN_CODE
    assert agent_of("claude") is AgentKind.CLAUDE_CODE and agent_of("Codex") is AgentKind.CODEX
    for kind in AgentKind:
        assert agent_of(kind.value) is kind
    with pytest.raises(QueryError, match="gemini"):
        agent_of("nope")


def test_indexer_picks_up_adapter_files_and_their_changes(qloop: Any, tmp_path: Path, lay: Layout) -> None:
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    indexer = HistoryIndexer(idx, lambda: (lay.claude_dir, lay.codex_dir), adapter_homes=lambda: lay.homes)
    path = lay.gemini[GEMINI_SHELL_ID]

    async def run() -> None:
        import asyncio

        indexer.start()
        deadline = time.monotonic() + 30
        while not idx.search(SearchQuery("FAKE_SHELL", agents=frozenset({AgentKind.QWEN_CODE}))) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        with open(path, "a") as f:
            f.write(json.dumps({"id": "z1", "timestamp": "2026-12-07T00:48:00.000Z", "type": "user",
                                "content": [{"text": "and now the ZEBRA"}]}) + "\n")
        indexer.file_changed(str(path))
        while not idx.search(SearchQuery("ZEBRA")) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await indexer.stop()

    qloop.run_until_complete(run())
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    assert [(h.agent, h.session_id) for h in idx.search(SearchQuery("ZEBRA"))] == [
        (AgentKind.GEMINI_CLI, GEMINI_SHELL_ID)]
    assert len(entries_of(idx, path)) == 4, "the file read again whole: no duplicates"
    idx.close()


def _cli(lay: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "QWEN_HOME")}
    home = lay.home
    env.update(lay.env, XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_STATE_HOME=str(home / "state"), XDG_CACHE_HOME=str(home / "cache"))
    return subprocess.run([sys.executable, "-m", "deck_tray", "search", *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=str(ROOT))


def test_cli_search_finds_gemini_and_qwen_sessions(lay: Layout) -> None:
    proc = _cli(lay, "FAKE_SHELL", "--json", "--no-remote")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    got = {(h["agent"], h["session_id"], h["title"], h["project"]) for h in hits}
    assert ("gemini-cli", GEMINI_SHELL_ID, "please FAKE_SHELL now", lay.gemini_project) in got
    assert ("qwen-code", QWEN_ID, "please FAKE_SHELL now", QWEN_CWD) in got
    assert {h["source_path"] for h in hits} >= {str(lay.gemini[GEMINI_SHELL_ID]), str(lay.qwen)}
    proc = _cli(lay, "FAKE_ASK", "--agent", "gemini", "--prompts", "--json", "--no-remote")
    assert proc.returncode == 0, proc.stderr
    assert [(h["agent"], h["session_id"], h["role"]) for h in json.loads(proc.stdout)] == [
        ("gemini-cli", GEMINI_ASK_ID, "user")]
    proc = _cli(lay, "FAKE_ASK", "--agent", "qwen", "--no-remote")
    assert proc.returncode == 1 and "no matches" in proc.stderr
    proc = _cli(lay, "FAKE_SHELL", "--agent", "qwen", "--no-remote")
    assert proc.returncode == 0 and f"qwen-code  {QWEN_CWD}" in proc.stdout and f"session {QWEN_ID}" in proc.stdout


def test_a_file_read_again_from_the_start_is_searchable(tmp_path: Path) -> None:
    """Regression (found with the Gemini rewrites): a file whose rows were the newest, read again
    from byte 0 (truncated or replaced), got its new entries the ids of the rows it just lost, and
    the full-text table, filled with the ids above the batch's first, missed them."""
    path = tmp_path / ".claude" / "projects" / "-x" / "00000000-0000-4000-8000-000000000001.jsonl"
    path.parent.mkdir(parents=True)

    def rec(text: str) -> str:
        return json.dumps({"type": "user", "sessionId": "s", "cwd": "/x", "timestamp": "2026-10-01T00:00:00.000Z",
                           "message": {"role": "user", "content": text}}) + "\n"

    path.write_text(rec("alpha beta gamma delta epsilon") * 5)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files([(AgentKind.CLAUDE_CODE, str(path))])
    path.write_text(rec("zebra"))  # shorter than what was read: read again from the start
    idx.sync_files([(AgentKind.CLAUDE_CODE, str(path))])
    assert [h.text for h in idx.search(SearchQuery("zebra"))] == ["zebra"]
    assert not idx.search(SearchQuery("alpha")) and idx.check()
    idx.close()
