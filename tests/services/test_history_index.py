"""The history index (services/history_store.py, services/history_indexer.py): captured samples and a generated corpus,
incremental updates, crashes mid-batch, schema changes, ranking and filters, the Qt indexer
off the GUI thread, and ``deck-tray search`` end to end."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.history import HistoryRole, QueryError, SearchQuery
from deck_tray.core.model import AgentKind
from deck_tray.services import history_store as hi
from deck_tray.services.history_indexer import HistoryIndexer
from deck_tray.services.history_store import HistoryIndex, discover_files

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent.parent
CLAUDE_SAMPLE = FIXTURES / "claude-code-2.1.197-interactive.jsonl"
CLAUDE_ID = "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"
CODEX_SAMPLE = FIXTURES / "codex-0.169.0-tui-daemon.jsonl"
CODEX_ID = "01a200e3-41ea-7420-b0df-79244f839570"
CODEX_NAME = f"rollout-2026-11-22T01-33-43-{CODEX_ID}.jsonl"


def lay_out(home: Path) -> tuple[Path, Path, Path, Path]:
    """The captured samples where the agents keep them: ``(claude_dir, codex_dir, claude file, codex file)``."""
    claude_dir, codex_dir = home / ".claude", home / ".codex"
    cfile = claude_dir / "projects" / "-home-dev-work-proj" / f"{CLAUDE_ID}.jsonl"
    xfile = codex_dir / "sessions" / "2026" / "11" / "22" / CODEX_NAME
    for src, dst in ((CLAUDE_SAMPLE, cfile), (CODEX_SAMPLE, xfile)):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    return claude_dir, codex_dir, cfile, xfile


_WORDS = ("parser", "config", "module", "handler", "cache", "retry", "schema", "index", "request", "value",
          "error", "timeout", "update", "query", "runner", "async", "file", "path", "check", "first")


def claude_record(kind: str, text: str, sid: str, cwd: str, minute: int) -> dict[str, Any]:
    ts = f"2026-10-{1 + minute // 1440:02d}T{(minute // 60) % 24:02d}:{minute % 60:02d}:00.000Z"
    if kind == "user":
        return {"type": "user", "sessionId": sid, "cwd": cwd, "timestamp": ts,
                "message": {"role": "user", "content": text}}
    return {"type": "assistant", "sessionId": sid, "cwd": cwd, "timestamp": ts,
            "message": {"id": f"m{minute}", "role": "assistant", "content": [{"type": "text", "text": text}]}}


def generate(claude_dir: Path, n: int, *, seed: int = 1, turns: int = 6) -> list[Path]:
    """``n`` Claude transcripts of random words over 12 projects."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sid = f"00000000-0000-4000-8000-{i:012d}"
        cwd = f"/home/dev/proj-{i % 12}"
        path = claude_dir / "projects" / cwd.replace("/", "-") / f"{sid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for t in range(turns):
            for kind in ("user", "assistant"):
                words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 60)))
                lines.append(json.dumps(claude_record(kind, words, sid, cwd, i * 10 + t)))
        path.write_text("\n".join(lines) + "\n")
        out.append(path)
    return out


def dump(idx: HistoryIndex) -> list[tuple[Any, ...]]:
    """Everything indexed, in a comparable form."""
    conn = sqlite3.connect(idx.path)
    try:
        rows = conn.execute(
            "SELECT s.key, s.session_id, s.title, s.cwd, s.offset, e.ordinal, e.role, e.ts, e.offset, e.text "
            "FROM entries e JOIN sessions s ON s.id = e.sess ORDER BY s.key, e.ordinal").fetchall()
    finally:
        conn.close()
    return rows


def fresh(tmp_path: Path, claude_dir: Path, codex_dir: Path, name: str = "clean.sqlite3") -> list[tuple[Any, ...]]:
    idx = HistoryIndex(tmp_path / name)
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    out = dump(idx)
    idx.close()
    return out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_samples_found_in_one_query(tmp_path: Path, home: Path) -> None:
    claude_dir, codex_dir, cfile, xfile = lay_out(home)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    files = discover_files(claude_dir, codex_dir)
    assert set(files) == {(AgentKind.CLAUDE_CODE, str(cfile)), (AgentKind.CODEX, str(xfile))}
    assert idx.sync_files(files, full=True) > 20
    hits = idx.search(SearchQuery('"run a shell command"'))
    assert {(h.agent, h.session_id) for h in hits} == {(AgentKind.CLAUDE_CODE, CLAUDE_ID), (AgentKind.CODEX, CODEX_ID)}
    h = next(h for h in hits if h.agent is AgentKind.CODEX)
    assert h.project == "/home/dev/work/proj" and h.source_path == str(xfile) and h.server_url == ""
    assert h.title == "please FAKE_SHELL now" and h.role is HistoryRole.ASSISTANT
    assert ("run a shell command", True) in h.snippet
    entries = idx.session_entries(AgentKind.CODEX, CODEX_ID)
    assert entries[h.ordinal].text == h.text
    assert idx.stats()["sessions"] == 2 and idx.check()
    assert idx.sync_files(files, full=True) == 0, "nothing changed: nothing re-read"


def test_append_reads_only_what_was_added(tmp_path: Path, home: Path) -> None:
    claude_dir, codex_dir, cfile, xfile = lay_out(home)
    full = cfile.read_bytes()
    cut = full.index(b"\n", len(full) // 2) + 1
    cfile.write_bytes(full[:cut] + full[cut:cut + 40])  # half, then a partial line
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    assert idx.file_states()[str(cfile)][0] == cut, "the partial line is not consumed"
    before = len(idx.session_entries(AgentKind.CLAUDE_CODE, CLAUDE_ID))
    with open(cfile, "ab") as f:
        f.write(full[cut + 40:])
    added = idx.sync_files([(AgentKind.CLAUDE_CODE, str(cfile))])
    assert added == len(idx.session_entries(AgentKind.CLAUDE_CODE, CLAUDE_ID)) - before > 0
    assert dump(idx) == fresh(tmp_path, claude_dir, codex_dir)


def test_truncate_replace_and_delete(tmp_path: Path, home: Path) -> None:
    claude_dir, codex_dir, cfile, xfile = lay_out(home)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    # Truncated (shorter than the offset): read again from the start.
    short = [json.dumps(claude_record("user", "brand new beginning", CLAUDE_ID, "/home/dev/work/proj", 1))]
    cfile.write_text("\n".join(short) + "\n")
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    assert [e.text for e in idx.session_entries(AgentKind.CLAUDE_CODE, CLAUDE_ID)] == ["brand new beginning"]
    assert not idx.search(SearchQuery("FAKE_BASH", agents=frozenset({AgentKind.CLAUDE_CODE})))
    # Replaced (another inode, even a longer file): read again.
    tmp = xfile.with_suffix(".tmp")
    shutil.copy(CLAUDE_SAMPLE.parent / "codex-0.169.0-tui-no-daemon.jsonl", tmp)
    os.replace(tmp, xfile)
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    codex_entries = idx.session_entries(AgentKind.CODEX, "01a200e4-f2b5-78c1-9c58-e75423501563")
    assert [e.text for e in codex_entries if e.role is HistoryRole.USER][0] == "hooks FAKE_SHELL"
    assert dump(idx) == fresh(tmp_path, claude_dir, codex_dir)
    # Deleted: drops out, on a full scan and when named as changed.
    xfile.unlink()
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    assert idx.stats()["by_agent"].get("codex", 0) == 0
    cfile.unlink()
    idx.sync_files([(AgentKind.CLAUDE_CODE, str(cfile))])
    assert idx.stats()["sessions"] == 0 and idx.stats()["entries"] == 0
    assert idx.check()


def test_error_inside_a_batch_rolls_back_and_the_next_run_continues(
        tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claude_dir = home / ".claude"
    generate(claude_dir, 30)
    monkeypatch.setattr(hi, "BATCH_BYTES", 8_000)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    commits = []

    def hook() -> None:
        commits.append(1)
        if len(commits) == 4:
            raise RuntimeError("disk on fire")

    idx.batch_hook = hook
    with pytest.raises(RuntimeError, match="disk on fire"):
        idx.sync_files(discover_files(claude_dir, home / ".codex"), full=True)
    assert idx.check()
    partial = dump(idx)
    assert partial, "the batches before the failing one are committed"
    states = idx.file_states()
    for key, *_rest in partial:  # every stored offset covers exactly the rows stored for it
        assert states[key][0] > 0
    idx.batch_hook = None
    idx.sync_files(discover_files(claude_dir, home / ".codex"), full=True)
    assert dump(idx) == fresh(tmp_path, claude_dir, home / ".codex")


def test_killed_in_the_middle_of_a_batch(tmp_path: Path, home: Path) -> None:
    """A process that dies inside a write transaction leaves a consistent index; the
    next run continues from the stored offsets and ends with what a clean build has."""
    claude_dir = home / ".claude"
    generate(claude_dir, 40)
    db = tmp_path / "h.sqlite3"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from deck_tray.services import history_store as hi
        hi.BATCH_BYTES = 6000
        idx = hi.HistoryIndex({str(db)!r})
        n = [0]
        def hook():
            n[0] += 1
            if n[0] == 5:
                os.kill(os.getpid(), 9)  # mid-transaction: rows written, not committed
        idx.batch_hook = hook
        idx.sync_files(hi.discover_files(Path({str(claude_dir)!r}), Path("/nonexistent")), full=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    idx = HistoryIndex(db)
    assert idx.check()
    partial = dump(idx)
    full = fresh(tmp_path, claude_dir, Path("/nonexistent"))
    assert 0 < len(partial) < len(full)
    assert set(partial) <= set(full), "what survived is exactly what a clean build has"
    idx.sync_files(discover_files(claude_dir, Path("/nonexistent")), full=True)
    assert dump(idx) == full


def test_schema_version_change_rebuilds(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claude_dir, codex_dir, _c, _x = lay_out(home)
    db = tmp_path / "h.sqlite3"
    idx = HistoryIndex(db)
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    idx.close()
    monkeypatch.setattr(hi, "SCHEMA_VERSION", hi.SCHEMA_VERSION + 1)
    idx = HistoryIndex(db)
    assert idx.stats()["sessions"] == 0
    assert "schema version" in idx.rebuilt_because
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == hi.SCHEMA_VERSION
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    assert idx.search(SearchQuery("FAKE_SHELL"))


def test_corrupt_database_is_rebuilt(tmp_path: Path, home: Path) -> None:
    claude_dir, codex_dir, _c, _x = lay_out(home)
    db = tmp_path / "h.sqlite3"
    db.write_bytes(b"this is not a database" * 1000)
    idx = HistoryIndex(db)
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    assert "damaged" in idx.rebuilt_because
    assert idx.search(SearchQuery("FAKE_SHELL")) and idx.check()


def test_ranking_title_and_prompt_above_passing_mentions(tmp_path: Path, home: Path) -> None:
    claude_dir = home / ".claude"
    generate(claude_dir, 20)
    cwd = "/home/dev/auth"
    talk = claude_dir / "projects" / "-home-dev-auth"
    talk.mkdir(parents=True)
    sid = "11111111-1111-4111-8111-111111111111"
    recs = [claude_record("user", "the login page needs a new colour", sid, cwd, 5),
            claude_record("assistant", "Done. " + "The parser handler is fine. " * 10 +
                          "By the way the token refresh happens elsewhere.", sid, cwd, 6)]
    (talk / f"{sid}.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    sid2 = "22222222-2222-4222-8222-222222222222"
    recs2 = [{"type": "custom-title", "customTitle": "Fix the token refresh", "sessionId": sid2},
             claude_record("user", "the token refresh fails after an hour", sid2, cwd, 1),
             claude_record("assistant", "I changed how tokens are renewed.", sid2, cwd, 2)]
    (talk / f"{sid2}.jsonl").write_text("\n".join(json.dumps(r) for r in recs2) + "\n")
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(discover_files(claude_dir, home / ".codex"), full=True)
    hits = idx.search(SearchQuery('"token refresh"'))
    assert [(h.session_id, h.role) for h in hits] == [(sid2, HistoryRole.USER), (sid, HistoryRole.ASSISTANT)]
    assert hits[0].title == "Fix the token refresh" and hits[0].rank < hits[1].rank
    # Common words (more matches than the rank window): term frequency, still weighted.
    hits = idx.search(SearchQuery("parser", limit=5))
    assert len(hits) == 5 and all("parser" in h.text.lower() for h in hits)


def test_filters(tmp_path: Path, home: Path) -> None:
    claude_dir, codex_dir, cfile, xfile = lay_out(home)
    generate(claude_dir, 12)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)

    def ids(**kw: Any) -> set[str]:
        return {h.session_id for h in idx.search(SearchQuery(**kw))}

    q = '"run a shell command"'
    assert ids(text=q, agents=frozenset({AgentKind.CODEX})) == {CODEX_ID}
    assert ids(text=q, agents=frozenset({AgentKind.CLAUDE_CODE, AgentKind.OPENCODE})) == {CLAUDE_ID}
    assert ids(text="parser", project="PROJ-3") == {"00000000-0000-4000-8000-000000000003"}
    assert ids(text=q, project="nowhere") == set()
    assert ids(text="FAKE_SHELL", roles=frozenset({HistoryRole.USER})) == {CODEX_ID}
    assert {h.role for h in idx.search(SearchQuery("FAKE_DONE", roles=frozenset({HistoryRole.ASSISTANT})))} == {
        HistoryRole.ASSISTANT}
    oct1, oct2 = 1790812800.0, 1790899200.0  # 2026-10-01, 2026-10-02 (UTC)
    in_day = idx.search(SearchQuery("parser", since=oct1, until=oct2, limit=500))
    assert in_day and all(oct1 <= h.ts < oct2 for h in in_day)
    assert ids(text=q, since=time.time()) == set()
    assert ids(text=q, session_id=CLAUDE_ID) == {CLAUDE_ID}
    assert len(idx.search(SearchQuery("parser", limit=3))) == 3
    for text in ("foo-bar", "C++", '"token refresh', "AND", "NEAR(", "x:y"):
        idx.search(SearchQuery(text))  # never an FTS5 syntax error
    with pytest.raises(QueryError):
        idx.search(SearchQuery("+++"))


def test_opencode_sessions(tmp_path: Path) -> None:
    rest = json.loads((FIXTURES / "opencode" / "rest-1.18.33.json").read_text())
    info = rest["sessions"][0]
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    url = "http://127.0.0.1:4096"
    assert idx.sync_opencode_session(url, info, rest["messages"]) == 2
    (hit,) = idx.search(SearchQuery("hello fake"))
    assert (hit.agent, hit.session_id, hit.server_url, hit.source_path) == (AgentKind.OPENCODE, info["id"], url, "")
    assert hit.title == "Write the greeting file" and hit.project == "/home/dev/ocproj"
    assert idx.opencode_updated(url) == {info["id"]: info["time"]["updated"] / 1000}
    more = [*rest["messages"], {"info": {"id": "msg_z", "role": "user", "time": {"created": 1795311009000}},
                                "parts": [{"id": "prt_z", "type": "text", "text": "now the refresh token"}]}]
    idx.sync_opencode_session(url, info, more)  # re-fetched: replaced, not doubled
    assert len(idx.session_entries(AgentKind.OPENCODE, info["id"])) == 3
    idx.drop_opencode_session(url, info["id"])
    assert idx.search(SearchQuery("hello")) == [] and idx.check()


def test_concurrent_reads_while_writing(tmp_path: Path, home: Path) -> None:
    claude_dir = home / ".claude"
    generate(claude_dir, 150)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                idx.search(SearchQuery("parser"))
                idx.stats()
        except BaseException as exc:
            errors.append(exc)
        finally:
            idx.release_thread_conn()  # this thread's own connection (SQLite's are per thread)

    t = threading.Thread(target=reader)
    t.start()
    try:
        idx.sync_files(discover_files(claude_dir, home / ".codex"), full=True)
    finally:
        done.set()
        t.join()
    assert not errors
    assert idx.stats()["sessions"] == 150


def test_indexer_works_off_the_gui_thread(qloop: Any, tmp_path: Path, home: Path) -> None:
    """Hundreds of files are indexed by the worker thread while a GUI-thread timer keeps ticking."""
    from PySide6.QtCore import QTimer

    claude_dir = home / ".claude"
    generate(claude_dir, 400, turns=4)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    indexer = HistoryIndexer(idx, lambda: (claude_dir, home / ".codex"))
    gui = threading.get_ident()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    progress: list[tuple[int, int]] = []
    indexer.progress.connect(lambda a, b: progress.append((a, b)))
    got_update = []
    indexer.updated.connect(lambda: got_update.append(threading.get_ident()))

    async def run() -> None:
        import asyncio

        timer.start()
        indexer.start()
        deadline = time.monotonic() + 60
        while not got_update and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # A changed file is picked up through file_changed (coalesced).
        victim = next((claude_dir / "projects").glob("*/*.jsonl"))
        with open(victim, "a") as f:
            f.write(json.dumps(claude_record("user", "zebra crossing", "x", "/z", 3)) + "\n")
        indexer.file_changed(str(victim))
        while not idx.search(SearchQuery("zebra")) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        timer.stop()
        await indexer.stop()

    qloop.run_until_complete(run())
    assert got_update and got_update[0] == gui, "signals arrive on the GUI thread"
    assert indexer.worker_thread_id is not None and indexer.worker_thread_id != gui
    assert idx.stats()["sessions"] == 400
    assert idx.search(SearchQuery("zebra")), "the appended prompt was indexed"
    assert progress and progress[-1][0] == progress[-1][1]
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) > 20 and max(gaps) < 0.5, f"GUI thread stalled {max(gaps) * 1000:.0f} ms"
    assert not indexer.running


def test_named_pipes_named_like_transcripts_never_block_the_index(
        tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A named pipe in the Claude or Codex folder (found by a full scan, or named by a file event)
    is skipped with one log line; the transcripts beside it are indexed."""
    claude_dir, codex_dir, cfile, xfile = lay_out(home)
    pipes = [cfile.parent / "11111111-1111-4111-8111-111111111111.jsonl",
             xfile.parent / "rollout-2026-11-22T01-00-01-01a200e4-0000-7000-8000-000000000001.jsonl"]
    for p in pipes:
        os.mkfifo(p)
    (cfile.parent / "22222222-2222-4222-8222-222222222222.jsonl").write_bytes(random.Random(16).randbytes(65536))
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    changed = [(AgentKind.CLAUDE_CODE, str(pipes[0])), (AgentKind.CODEX, str(pipes[1]))]

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

    t0 = time.perf_counter()
    assert within(10, lambda: idx.sync_files(discover_files(claude_dir, codex_dir), full=True)) > 20
    assert within(10, lambda: idx.sync_files(changed)) == 0  # what file events name
    print(f"index with 2 named pipes: {time.perf_counter() - t0:.2f} s")
    hits = idx.search(SearchQuery('"run a shell command"'))
    assert {(h.agent, h.session_id) for h in hits} == {(AgentKind.CLAUDE_CODE, CLAUDE_ID), (AgentKind.CODEX, CODEX_ID)}
    assert str(pipes[0]) not in idx.file_states() and str(pipes[1]) not in idx.file_states()
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")] == [
        f"skipped {p}: a named pipe, not a transcript" for p in pipes]
    idx.close()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_STATE_HOME=str(home / "state"), XDG_CACHE_HOME=str(home / "cache"))
    return subprocess.run([sys.executable, "-m", "deck_tray", "search", *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=str(ROOT))


def test_cli_search_finds_codex_and_claude_in_one_query(home: Path) -> None:
    lay_out(home)
    proc = _cli(home, "run a shell command", "--json")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert {(h["agent"], h["session_id"]) for h in hits} == {("claude-code", CLAUDE_ID), ("codex", CODEX_ID)}
    assert set(hits[0]) == {"agent", "session_id", "title", "project", "source_path", "server_url", "ordinal",
                            "role", "ts", "text", "snippet", "rank", "thread", "host"}
    assert all(h["host"] is None for h in hits), "this machine's hits: host null, as sessions --json"
    assert (home / "data" / "deck-tray" / "history.sqlite3").exists()
    proc = _cli(home, '"run a shell command"', "--agent", "codex", "--prompts")
    assert proc.returncode == 1 and "no matches" in proc.stderr
    proc = _cli(home, "FAKE_SHELL", "--agent", "codex", "--since", "2026-11-01", "--until", "2026-11-30")
    assert proc.returncode == 0, proc.stderr
    assert "codex  /home/dev/work/proj" in proc.stdout and f"session {CODEX_ID}" in proc.stdout
    assert "[FAKE_SHELL]" in proc.stdout, "matches are marked when stdout is not a terminal"
    for odd in ("C++", "foo-bar", '"unbalanced'):
        proc = _cli(home, odd)
        assert proc.returncode == 1 and "no matches" in proc.stderr, proc.stderr
    # --role: the kinds of core.record_kinds (a tool call vs its output; an unknown kind is usage)
    proc = _cli(home, "FAKE_SHELL", "--agent", "codex", "--role", "tool", "--role", "tool_result", "--json")
    assert proc.returncode == 0, proc.stderr
    assert {h["role"] for h in json.loads(proc.stdout)} <= {"tool", "tool_result"}
    proc = _cli(home, "FAKE_SHELL", "--role", "prompt")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = _cli(home, "+++")
    assert proc.returncode == 2 and "nothing to search for" in proc.stderr
    proc = _cli(home, "x", "--since", "last week")
    assert proc.returncode == 2 and "not a date" in proc.stderr


def test_repeated_syncs_keep_no_connection_open(tmp_path: Path, home: Path) -> None:
    """Every sync's writer thread closes its connection as it ends: 50 syncs leave the open
    files of the process as they were (the soak saw 3 more fds per sync, issue #20)."""
    claude_dir, codex_dir, cfile, _x = lay_out(home)
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)

    def db_fds() -> int:
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                n += os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path / "h.sqlite3"))
            except OSError:
                pass
        return n

    before = db_fds()
    for i in range(50):
        with open(cfile, "a") as f:
            f.write(json.dumps(claude_record("user", f"more words {i}", CLAUDE_ID, "/z", 100 + i)) + "\n")
        idx.sync_files([(AgentKind.CLAUDE_CODE, str(cfile))])
    assert db_fds() == before
    idx.close()


# -- scripts written without spaces (#16 item 5) ---------------------------------------------------

RUN_JA = "このプロジェクトの設定ファイルを更新しました"
CJK_A = "aaaaaaaa-0000-4000-8000-000000000001"
CJK_B = "bbbbbbbb-0000-4000-8000-000000000002"
OC_ID = "ses_cjk1"
OC_URL = "http://127.0.0.1:4096"


def cjk_history(home: Path, idx: HistoryIndex) -> None:
    """The captured samples (Latin), two Claude sessions and one opencode session written in
    Japanese, Korean and Thai (minutes 1–7 are 2026-10-01 00:01–00:07 UTC; opencode 2026-11-02)."""
    claude_dir, codex_dir, _c, _x = lay_out(home)
    generate(claude_dir, 4)
    talk = claude_dir / "projects" / "-home-dev-jp"
    talk.mkdir(parents=True)
    a = [{"type": "ai-title", "aiTitle": "プロジェクトの更新", "sessionId": CJK_A},
         claude_record("user", RUN_JA, CJK_A, "/home/dev/jp", 1),
         claude_record("assistant", "了解です。refresh token の設定も確認しました。", CJK_A, "/home/dev/jp", 2),
         claude_record("user", "설정파일을 열었습니다", CJK_A, "/home/dev/jp", 3),
         claude_record("assistant", "ฉันกินข้าวแล้ว", CJK_A, "/home/dev/jp", 4),
         claude_record("user", "GitHubのAPI設定を見直す", CJK_A, "/home/dev/jp", 5)]
    (talk / f"{CJK_A}.jsonl").write_text("\n".join(json.dumps(r) for r in a) + "\n")
    b = [{"type": "custom-title", "customTitle": "設定の見直し", "sessionId": CJK_B},
         claude_record("user", "設定をもう一度確認して", CJK_B, "/home/dev/jp", 6),
         claude_record("assistant", "東京駅の近くです", CJK_B, "/home/dev/jp", 7)]
    (talk / f"{CJK_B}.jsonl").write_text("\n".join(json.dumps(r) for r in b) + "\n")
    idx.sync_files(discover_files(claude_dir, codex_dir), full=True)
    nov2 = 1793577600000  # 2026-11-02 UTC, ms
    info = {"id": OC_ID, "title": "検索", "directory": "/home/dev/oc", "time": {"created": nov2, "updated": nov2}}
    items = [{"info": {"id": "msg_1", "role": "user", "time": {"created": nov2}},
              "parts": [{"id": "prt_1", "type": "text", "text": "検索の設定を変えたい"}]}]
    idx.sync_opencode_session(OC_URL, info, items)


def marked(hit: Any) -> list[str]:
    return [s for s, m in hit.snippet if m]


def test_words_inside_cjk_korean_and_thai_runs_are_found_and_marked(tmp_path: Path, home: Path) -> None:
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    cjk_history(home, idx)

    def texts(typed: str, **kw: Any) -> dict[str, list[str]]:
        return {h.text: marked(h) for h in idx.search(SearchQuery(typed, **kw))}

    # A two-character kanji word inside a longer run: every entry with it, the match marked.
    hits = idx.search(SearchQuery("設定"))
    answer = "了解です。refresh token の設定も確認しました。"
    assert {h.text for h in hits} == {RUN_JA, answer, "GitHubのAPI設定を見直す", "設定をもう一度確認して",
                                      "検索の設定を変えたい"}
    assert all(marked(h) == ["設定"] for h in hits)
    assert hits[0].session_id == CJK_B, "the session titled 設定… ranks its prompt first"
    assert [h.rank for h in hits] == sorted(h.rank for h in hits)
    assert texts("ファイル") == {RUN_JA: ["ファイル"]}              # a katakana word inside the run
    assert texts("プロジェクト") == {RUN_JA: ["プロジェクト"]}
    assert texts("파일") == {"설정파일을 열었습니다": ["파일"]}      # Korean, inside an eojeol
    assert texts("กิน") == {"ฉันกินข้าวแล้ว": ["กิน"]}              # Thai
    assert texts("東京") == {"東京駅の近くです": ["東京"]}
    assert texts("API設定") == {"GitHubのAPI設定を見直す": ["API設定"]}  # mixed Latin + CJK
    assert texts("github") == {"GitHubのAPI設定を見直す": ["GitHub"]}
    assert texts("token 設定") == {"了解です。refresh token の設定も確認しました。": ["token", "設定"]}
    assert texts("設置") == {} and texts("東大") == {}
    # Filters still apply.
    assert texts("設定", agents=frozenset({AgentKind.OPENCODE})) == {"検索の設定を変えたい": ["設定"]}
    assert set(texts("設定", roles=frozenset({HistoryRole.ASSISTANT}))) == {
        "了解です。refresh token の設定も確認しました。"}
    nov1 = 1793491200.0  # 2026-11-01 UTC
    assert set(texts("設定", since=nov1)) == {"検索の設定を変えたい"}
    assert set(texts("設定", until=nov1, project="jp", session_id=CJK_A)) == {
        RUN_JA, "了解です。refresh token の設定も確認しました。", "GitHubのAPI設定を見直す"}
    # Latin search is what it was.
    assert {h.session_id for h in idx.search(SearchQuery('"run a shell command"'))} == {CLAUDE_ID, CODEX_ID}
    assert idx.check()
    idx.close()


def test_common_cjk_words_rank_by_term_frequency(tmp_path: Path, home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """More matches than the rank window: term frequency over the newest, CJK words counted too."""
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    cjk_history(home, idx)
    monkeypatch.setattr(hi, "RANK_WINDOW", 3)
    hits = idx.search(SearchQuery("設定", limit=10))
    assert len(hits) == 3 and all("設定" in h.text and h.rank < 0 for h in hits)
    idx.close()


def test_deleting_and_replacing_cjk_entries_keeps_the_index_whole(tmp_path: Path, home: Path) -> None:
    idx = HistoryIndex(tmp_path / "h.sqlite3")
    cjk_history(home, idx)
    idx.sync_opencode_session(OC_URL, {"id": OC_ID, "title": "別件", "time": {"updated": 1793577700000}},
                              [{"info": {"id": "m", "role": "user", "time": {"created": 1793577700000}},
                                "parts": [{"id": "p", "type": "text", "text": "東京タワー"}]}])
    assert {h.text for h in idx.search(SearchQuery("東京"))} == {"東京駅の近くです", "東京タワー"}
    assert idx.search(SearchQuery("設定", agents=frozenset({AgentKind.OPENCODE}))) == []
    idx.drop_file(str(home / ".claude" / "projects" / "-home-dev-jp" / f"{CJK_B}.jsonl"))
    assert {h.text for h in idx.search(SearchQuery("東京"))} == {"東京タワー"}
    assert idx.check()
    idx.close()


def test_an_index_of_schema_1_is_rebuilt_with_grams(tmp_path: Path, home: Path) -> None:
    """An index written before #16 item 5 (no gram columns) is rebuilt: emptied at open, then
    filled by the next sync, after which CJK words are found."""
    db = tmp_path / "h.sqlite3"
    old = sqlite3.connect(db)
    old.executescript("CREATE TABLE sessions(id INTEGER PRIMARY KEY, key TEXT); "
                      "CREATE TABLE entries(id INTEGER PRIMARY KEY, text TEXT); "
                      "CREATE VIRTUAL TABLE entries_fts USING fts5(text, content='entries', content_rowid='id');"
                      "INSERT INTO entries VALUES (1, 'stale'); PRAGMA user_version=1;")
    old.close()
    idx = HistoryIndex(db)
    assert idx.stats()["entries"] == 0 and idx.rebuilt_because == f"schema version 1 → {hi.SCHEMA_VERSION}"
    cjk_history(home, idx)
    assert [h.text for h in idx.search(SearchQuery("ファイル"))] == [RUN_JA]
    idx.close()


def test_cli_search_finds_a_cjk_word_inside_a_run(home: Path) -> None:
    idx = HistoryIndex(home / "data" / "deck-tray" / "history.sqlite3")
    idx.open()
    idx.close()
    conn = sqlite3.connect(home / "data" / "deck-tray" / "history.sqlite3")
    conn.execute("PRAGMA user_version=1")  # as an older deck-tray left it
    conn.commit()
    conn.close()
    cjk_history(home, HistoryIndex(home / "unused.sqlite3"))  # lays the transcripts out
    proc = _cli(home, "設定", "--prompts")
    assert proc.returncode == 0, proc.stderr
    assert "rebuilding the history index: schema version 1 → 2" in proc.stderr
    assert "このプロジェクトの[設定]ファイルを更新しました" in proc.stdout
    assert "東京" not in proc.stdout
    proc = _cli(home, "東京", "--json")
    assert proc.returncode == 0, proc.stderr
    (hit,) = json.loads(proc.stdout)
    assert hit["session_id"] == CJK_B and ["東京", True] in hit["snippet"]


def test_close_waits_for_a_query_running_on_another_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The search window's worker may still run a query when the app closes the index at quit:
    closing an SQLite connection under a running query crashed the process (a pytest worker died
    in test_search_window). ``close`` waits for it; the query ends normally; a later call opens the
    database again. A query still running after the wait keeps its connection (nothing crashes)."""
    from deck_tray.services import history_store

    class Slow(HistoryIndex):
        @history_store._a_use
        def slow(self, started: threading.Event, release: threading.Event) -> int:
            conn = self._conn()
            started.set()
            release.wait(10)
            return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])

    def case(wait_s: float, closes_first: bool) -> None:
        monkeypatch.setattr(history_store, "CLOSE_WAIT_S", wait_s)
        idx = Slow(tmp_path / f"h{wait_s}.sqlite3")
        idx.open()
        started, release, closed = threading.Event(), threading.Event(), threading.Event()
        got: list[object] = []

        def query() -> None:
            try:
                got.append(idx.slow(started, release))
            except BaseException as exc:
                got.append(exc)
            finally:
                idx.release_thread_conn()

        def close() -> None:
            idx.close()
            closed.set()

        t = threading.Thread(target=query)
        t.start()
        assert started.wait(10)
        c = threading.Thread(target=close)
        c.start()
        assert closed.wait(5 if closes_first else 0.5) is closes_first, "close waits for the running query"
        release.set()
        t.join(10)
        c.join(10)
        assert got == [0], "the query ended normally"
        assert idx.search(SearchQuery("parser")) == [] and idx.stats()["sessions"] == 0
        idx.close()

    case(10.0, closes_first=False)
    case(0.3, closes_first=True)
