"""The conversation history index: SQLite + FTS5 under the platformdirs data dir — the store
and its search. Blocking; no Qt: :class:`deck_tray.services.history_indexer.HistoryIndexer`
keeps it up to date from a worker thread, ``deck-tray search`` uses it directly.

File: ``platformdirs.user_data_dir("deck-tray")/history.sqlite3`` (:func:`default_path`).
Nothing leaves the machine.

Tables (schema version :data:`SCHEMA_VERSION` in ``PRAGMA user_version``; another version,
older or newer, is dropped and rebuilt; a corrupt file is deleted and rebuilt):

* ``sessions`` — one row per transcript file or opencode session: ``key`` (the file path,
  or ``opencode <url> <session id>``), agent, session id, path, server URL, cwd, title, first
  and last record time, the byte ``offset`` indexed so far and the file's dev/inode/size/mtime
  then, opencode's ``time.updated`` (``source_updated``), the next ordinal and the
  extractor's state (:class:`deck_tray.core.history.ExtractState`).
* ``entries`` — one row per :class:`~deck_tray.core.history.HistoryEntry`, with its
  ``grams`` document (:func:`deck_tray.core.history.gram_document`; ``''`` unless the text
  has letters of a script written without spaces: Chinese, Japanese, Korean, Thai, …).
* ``entries_fts`` — FTS5 over ``entries.text`` and ``entries.grams`` (external content: rows
  are added to it in bulk, ``INSERT … SELECT`` once per batch, 3× faster than a trigger per
  row; a trigger removes deleted rows).
* ``titles_fts`` — FTS5 over session titles and their gram documents (a title match ranks a
  hit higher).

Tokenizer: ``unicode61 remove_diacritics 2``. It finds words and phrases in scripts written
with spaces, and matches "resume" for "résumé". It makes a whole run of kana/kanji, Hangul
or Thai between spaces or punctuation one token, so a word inside such a run is found through
the ``grams`` column instead: the run written as overlapping two-character tokens, which a
query word in those scripts is a phrase of (:func:`deck_tray.core.history.fts_match`), one- and
two-character words included (設定, 東京) — all through the index, ranked by the same bm25.
A ``trigram`` table over all text was the other way: it cannot find words shorter than three
characters (a scan of the text would), needs SQLite ≥ 3.34, and its index is about three
times as large for every entry, where the gram documents cost nothing for Latin-script text.

Crash safety: the database is in WAL mode; every batch (up to :data:`BATCH_BYTES` of JSONL
read, any number of files) is one transaction that writes the entries *and* the offsets
they came from, so a crash or kill mid-batch loses only that batch and the next run reads
it again from the stored offset. Appends are read from the offset; a file whose inode
changed or that shrank below the offset is dropped and read again; a file that is gone
drops out (on a full scan).

The session files of the agents watched through an adapter (:mod:`deck_tray.core.agents`: Gemini
CLI, Qwen Code, …) are not append-only (Gemini 0.61.0 replaces a message by writing a record
with its id again, and a ``$set`` record may replace the whole list): such a file is read whole,
by the adapter's own parser, whenever its dev/inode/size/mtime changed, and its old entries are
replaced in the same transaction. One larger than :data:`ADAPTER_FILE_MAX_BYTES` is skipped
(reported once, like a named pipe) and keeps what was indexed of it before.

Only regular files are read (:func:`deck_tray.core.jsonl.open_regular`): a named pipe,
socket or device named like a transcript, a symbolic link loop or an unreadable file is
skipped (logged once per path) and never blocks the indexer.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import functools
import logging
import os
import queue
import sqlite3
import stat
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import platformdirs

from deck_tray.core import claude, codex
from deck_tray.core.agents import adapter_for
from deck_tray.core.history import (
    HIT_TEXT_CHARS,
    CodexExtractor,
    ExtractState,
    HistoryEntry,
    HistoryRole,
    QueryError,
    SearchHit,
    SearchQuery,
    adapter_entries,
    extractor_for,
    fts_match,
    gram_document,
    opencode_entries,
    query_words,
    snippet,
)
from deck_tray.core.jsonl import NotRegularFile, SkippedFiles, TailStats, file_kind, read_complete_lines
from deck_tray.core.model import AgentKind

log = logging.getLogger(__name__)

#: ``PRAGMA user_version`` of the schema below; change it whenever the schema or what is
#: extracted changes (the index is then rebuilt: emptied at open, then filled again by the
#: indexer's first scan, which the search window shows as "Indexing… n of m files" and
#: ``deck-tray search`` as "rebuilding the history index: schema version 1 → 2").
#: 2: the ``grams`` columns (words inside runs of CJK, Thai, … found); entries classified by kind
#: (:mod:`deck_tray.core.record_kinds`) with their sub-agent ``thread``; sub-agents' files filed
#: under their parent session.
SCHEMA_VERSION = 2
#: JSONL bytes read per transaction.
BATCH_BYTES = 8 * 1024 * 1024
#: An adapter's session file (read whole at every change) larger than this is not indexed: 32 MiB.
ADAPTER_FILE_MAX_BYTES = 32 * 1024 * 1024
#: Matches ranked per search: the newest this many. When a query has more matches than
#: this in all, its terms are common and bm25 is replaced by term frequency over the newest
#: :data:`TF_WINDOW` (bm25 over every match of a word that occurs everywhere takes seconds).
RANK_WINDOW = 2000
#: Matches scored by term frequency when bm25 is not used, and the characters of each read.
TF_WINDOW = 500
TF_CHARS = 2_000
#: A hit whose entry is a prompt ranks this much better.
PROMPT_WEIGHT = 1.5
#: A hit in a session whose title matches the query ranks this much better.
TITLE_WEIGHT = 2.0
TOKENIZER = "unicode61 remove_diacritics 2"

_SCHEMA = f"""
CREATE TABLE sessions(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    agent TEXT NOT NULL,
    session_id TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '',
    server_url TEXT NOT NULL DEFAULT '',
    cwd TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    started REAL NOT NULL DEFAULT 0,
    updated REAL NOT NULL DEFAULT 0,
    offset INTEGER NOT NULL DEFAULT 0,
    dev INTEGER NOT NULL DEFAULT 0,
    ino INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    mtime REAL NOT NULL DEFAULT 0,
    source_updated REAL NOT NULL DEFAULT 0,
    next_ordinal INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_id ON sessions(agent, session_id);
CREATE TABLE entries(
    id INTEGER PRIMARY KEY,
    sess INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    role TEXT NOT NULL,
    ts REAL NOT NULL,
    offset INTEGER NOT NULL,
    text TEXT NOT NULL,
    grams TEXT NOT NULL DEFAULT '',
    thread TEXT NOT NULL DEFAULT ''
);
CREATE INDEX entries_by_session ON entries(sess, ordinal);
CREATE VIRTUAL TABLE entries_fts USING fts5(
    text, grams, content='entries', content_rowid='id', tokenize='{TOKENIZER}');
CREATE TRIGGER entries_ad AFTER DELETE ON entries BEGIN
    INSERT INTO entries_fts(entries_fts, rowid, text, grams) VALUES ('delete', old.id, old.text, old.grams);
END;
CREATE VIRTUAL TABLE titles_fts USING fts5(title, grams, tokenize='{TOKENIZER}');
"""


def default_path() -> Path:
    """``platformdirs.user_data_dir("deck-tray")/history.sqlite3``."""
    return Path(platformdirs.user_data_dir("deck-tray", appauthor=False)) / "history.sqlite3"


def discover_files(claude_dir: Path, codex_dir: Path,
                   adapter_homes: Mapping[AgentKind, Path] | None = None) -> list[tuple[AgentKind, str]]:
    """Every transcript on disk: ``claude_dir/projects/*/*.jsonl`` (with 2.0.x sub-agents'
    ``agent-<id>.jsonl``) and ``claude_dir/projects/*/<session id>/subagents/agent-*.jsonl`` (2.1.x),
    ``codex_dir/sessions/YYYY/MM/DD/rollout-*.jsonl`` and ``codex_dir/archived_sessions/rollout-*.jsonl``,
    and the session files of each agent watched through an adapter
    (:meth:`deck_tray.core.agents.base.AgentAdapter.transcripts` of its home).

    Args:
        claude_dir: Claude Code's config folder (``~/.claude``).
        codex_dir: Codex's home (``~/.codex``).
        adapter_homes: ``{agent: its data folder}`` of the adapters' agents
            (:func:`deck_tray.core.agents.default_homes`); None or an agent without an adapter:
            none of theirs.

    Returns:
        ``(agent, path)`` pairs, each path once; folders that are missing or unreadable give
        none. Every entry so named that is not a folder is listed, named pipes and sockets too:
        :meth:`HistoryIndex.sync_files` skips (and reports) what is not a regular file.
    """
    out: list[tuple[AgentKind, str]] = []

    def dirs(path: str) -> list[str]:
        try:
            with os.scandir(path) as it:
                return [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            return []

    def files(path: str, prefix: str = "") -> list[str]:
        try:
            with os.scandir(path) as it:
                return [e.path for e in it if e.name.endswith(".jsonl") and e.name.startswith(prefix)
                        and not e.is_dir()]
        except OSError:
            return []

    for proj in dirs(str(claude_dir / "projects")):
        out += [(AgentKind.CLAUDE_CODE, p) for p in files(proj)]
        for session_dir in dirs(proj):  # 2.1.x sub-agents: <session id>/subagents/agent-<id>.jsonl
            out += [(AgentKind.CLAUDE_CODE, p) for p in files(os.path.join(session_dir, "subagents"), "agent-")]
    for year in dirs(str(codex_dir / "sessions")):
        for month in dirs(year):
            for day in dirs(month):
                out += [(AgentKind.CODEX, p) for p in files(day, "rollout-")]
    out += [(AgentKind.CODEX, p) for p in files(str(codex_dir / "archived_sessions"), "rollout-")]
    seen = {p for _a, p in out}
    for kind, home in (adapter_homes or {}).items():
        adapter = adapter_for(kind)
        if adapter is None:
            continue
        try:
            found = adapter.transcripts(home)
        except OSError as exc:
            log.debug("cannot list the %s sessions under %s: %s", kind.value, home, exc)
            continue
        for p in found:
            if p not in seen:
                seen.add(p)
                out.append((kind, p))
    return out


def _session_id_of(agent: AgentKind, path: str) -> str:
    """The session a file belongs to by its name: a Codex thread id, a Claude session id; for a
    Claude sub-agent's file its parent's (2.1.x: the folder; 2.0.x: ``""``, the records say)."""
    if agent is AgentKind.CODEX:
        return codex.thread_id_from_path(path) or ""
    if claude.subagent_id(path):
        return claude.subagent_parent_id(path)
    name = os.path.basename(path)
    return name[:-6] if name.endswith(".jsonl") else name


@dataclass
class _Work:
    """One file's share of a batch."""

    agent: AgentKind
    path: str
    reset: bool
    state: ExtractState
    offset: int
    dev: int = 0
    ino: int = 0
    size: int = 0
    mtime: float = 0.0
    session_id: str = ""
    #: The entries' gram documents, in order (made on the parsing thread: the writer thread
    #: stays in SQLite, without the GIL, as the GUI thread needs it).
    grams: list[str] = dataclasses.field(default_factory=list)


class _Writer:
    """Commits batches of :meth:`HistoryIndex.sync_files` on its own thread, in order."""

    def __init__(self, index: HistoryIndex) -> None:
        self.index = index
        self.added = 0
        self.error: BaseException | None = None
        self._q: queue.Queue[tuple[list[tuple[_Work, list[HistoryEntry]]], Any, Any] | None] = queue.Queue(2)
        self._thread = threading.Thread(target=self._run, name="deck-tray-history-writer", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> bool:
        return self.error is not None

    def _run(self) -> None:
        # A new thread inherits its creator's nice value (the indexer's 19).
        try:
            while True:
                item = self._q.get()
                if item is None:
                    return
                if self.error is not None:
                    continue
                batch, prog, progress = item
                try:
                    self.added += self.index._commit(batch)
                    if prog is not None and progress is not None:
                        progress(*prog)
                except BaseException as exc:  # handed to the producer, which re-raises it
                    self.error = exc
        finally:
            # One writer thread per sync: its connection must not outlive it (the soak saw
            # 3 fds — database, WAL, shared memory — kept open for every sync, issue #20).
            self.index.release_thread_conn()

    def put(self, batch: list[tuple[_Work, list[HistoryEntry]]], prog: Any, progress: Any) -> None:
        self._q.put((batch, prog, progress))

    def finish(self, batch: list[tuple[_Work, list[HistoryEntry]]]) -> int:
        """Commit the last batch, wait for every commit; re-raises a commit's error."""
        if batch:
            self._q.put((batch, None, None))
        self.close()
        if self.error is not None:
            raise self.error
        return self.added

    def close(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()


#: Seconds :meth:`HistoryIndex.close` waits for calls running on other threads (a search query the
#: search window's worker still runs) before it closes their connections; the app's tear-down
#: has 5 s in all.
CLOSE_WAIT_S = 2.0

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _a_use(method: Callable[Concatenate[HistoryIndex, _P], _R]) -> Callable[Concatenate[HistoryIndex, _P], _R]:
    """Run ``method`` as one use of the index: :meth:`HistoryIndex.close` does not close a
    connection under it (closing an SQLite connection another thread is using crashed the
    process), and it does not start while ``close`` runs."""

    def use(self: HistoryIndex, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._in_use():
            return method(self, *args, **kwargs)

    functools.update_wrapper(use, method)
    return use


class HistoryIndex:
    """The index: update it from files and opencode answers, search it.

    Args:
        path: the database file (default :func:`default_path`); its folder is created.
        skipped: where transcript paths that are not readable regular files are reported
            (once per path); a new one when None (the app shares the scanner's).

    Thread-safe: each thread gets its own connection; writes are serialized by a lock (and
    across processes by SQLite's lock, waited for up to ``busy_timeout``). Reads run beside
    a write (WAL). Methods never raise for bad transcripts or vanished files. :meth:`close`
    never closes a connection under a running call.

    Attributes:
        batch_hook: tests only: called inside each write transaction after its rows were
            written (raise or exit there to simulate a crash mid-batch).
    """

    def __init__(self, path: Path | str | None = None, *, busy_timeout_s: float = 30.0,
                 skipped: SkippedFiles | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.skipped_files = skipped if skipped is not None else SkippedFiles()
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self.batch_hook: Callable[[], None] | None = None
        self.rebuilt_because = ""
        self.stats_skipped = TailStats()
        self._ready = False
        self._init_lock = threading.Lock()
        #: Calls running now, by thread ident (how deep), and who opened each connection.
        self._users: dict[int, int] = {}
        self._owner: dict[sqlite3.Connection, int] = {}
        self._use_cv = threading.Condition()
        self._closing = False

    # -- connections and schema -------------------------------------------------------

    def _new_conn(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        with self._conns_lock:
            self._conns.append(conn)
            self._owner[conn] = threading.get_ident()
        return conn

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._use_cv:
            # A call that starts while close() waits waits too (then opens a connection anew),
            # unless its thread is inside a call already (close() waits for that one).
            self._use_cv.wait_for(lambda: not self._closing or me in self._users)
            self._users[me] = self._users.get(me, 0) + 1
        try:
            yield
        finally:
            with self._use_cv:
                if self._users[me] == 1:
                    del self._users[me]
                else:
                    self._users[me] -= 1
                self._use_cv.notify_all()

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection; the first call opens (and if needed builds) the schema."""
        if not self._ready:
            with self._init_lock:
                if not self._ready:
                    self._open_schema()
                    self._ready = True
        return self._thread_conn()

    def _thread_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._new_conn()
            self._local.conn = conn
        return conn

    def release_thread_conn(self) -> None:
        """Close the calling thread's connection, if it has one (call it before the thread ends)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._conns_lock:
            if conn in self._conns:
                self._conns.remove(conn)
            self._owner.pop(conn, None)
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        """Close every connection (a later call opens the database again).

        Calls running on other threads are waited for, up to :data:`CLOSE_WAIT_S` (calls that
        start meanwhile wait for the close); the connection of one still running then is left
        open (the process's exit ends it) and logged. Idempotent.
        """
        me = threading.get_ident()
        with self._use_cv:
            self._closing = True
            try:
                if not self._use_cv.wait_for(lambda: not set(self._users) - {me}, CLOSE_WAIT_S):
                    log.warning("history index %s: a call on another thread still runs after %g s; its "
                                "connection is left open", self.path, CLOSE_WAIT_S)
                self._close_connections(keep=set(self._users) - {me})
            finally:
                self._closing = False
                self._use_cv.notify_all()

    def _close_connections(self, keep: Collection[int] = ()) -> None:
        """Close the connections of every thread but those in ``keep`` (thread idents)."""
        with self._conns_lock:
            conns = [c for c in self._conns if self._owner.get(c) not in keep]
            self._conns = [c for c in self._conns if c not in conns]
            for c in conns:
                self._owner.pop(c, None)
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()
        self._ready = False

    @_a_use
    def open(self) -> None:
        """Open the database now (it is otherwise opened by the first call that needs it):
        create it, rebuild it when its schema version differs or it is damaged."""
        self._conn()

    def _open_schema(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            log.warning("history index %s is damaged (%s); rebuilding it", self.path, exc)
            self.rebuilt_because = f"the database was damaged ({exc})"
            self._close_connections()
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    os.unlink(str(self.path) + suffix)
                except FileNotFoundError:
                    pass
            self._ensure_schema()

    def _ensure_schema(self) -> None:
        with self._write_lock:
            conn = self._thread_conn()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                conn.execute("SELECT count(*) FROM sessions").fetchone()
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    if version:
                        log.info("history index schema %s, this deck-tray uses %s: rebuilding", version,
                                 SCHEMA_VERSION)
                        self.rebuilt_because = f"schema version {version} → {SCHEMA_VERSION}"
                    for name, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                        conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
                    for name, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                              "AND sql LIKE 'CREATE VIRTUAL%'").fetchall():
                        conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                    for name, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                              "AND name NOT LIKE 'sqlite%'").fetchall():
                        conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                    for stmt in _split_sql(_SCHEMA):
                        conn.execute(stmt)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- writing ------------------------------------------------------------------------

    @_a_use
    def file_states(self) -> dict[str, tuple[int, int, int, int, float]]:
        """``{path: (offset, dev, ino, size, mtime)}`` of every indexed file."""
        rows = self._conn().execute("SELECT path, offset, dev, ino, size, mtime FROM sessions WHERE path != ''")
        return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}

    @_a_use
    def sync_files(self, files: Iterable[tuple[AgentKind, str]], *, full: bool = False,
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> int:
        """Bring the index up to date with these transcript files (blocking; call it off the GUI thread).

        Claude transcripts and Codex rollouts are read from where the last run stopped; the
        session file of an agent watched through an adapter is read whole (by its adapter's
        parser) whenever it changed, its old entries replaced in the same transaction, unless
        it is larger than :data:`ADAPTER_FILE_MAX_BYTES` (then it is reported to
        :attr:`skipped_files` and what was indexed of it stays).

        Args:
            files: ``(agent, path)`` of Claude transcripts, Codex rollouts and adapters'
                session files (:func:`discover_files`, :func:`classify`).
            full: ``files`` is everything there is: indexed files not in it that no longer
                exist are dropped.
            progress: called after each batch with ``(files done, files to do)``.
            cancelled: polled between batches; True stops (what was committed stays).

        Returns:
            The number of entries added.
        """
        files = list(files)
        states = self.file_states()
        todo: list[tuple[AgentKind, str, tuple[int, int, int, int, float] | None]] = []
        gone: list[str] = []
        for agent, path in files:
            old = states.get(path)
            try:
                st = os.stat(path)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    self.skipped_files.forget(path)
                else:
                    self.skipped_files.report(path, exc)
                if old is not None and not os.path.exists(path):
                    gone.append(path)
                continue
            if not stat.S_ISREG(st.st_mode):
                # A named pipe named like a transcript would block the read forever.
                self.skipped_files.report(path, NotRegularFile(path, file_kind(st.st_mode)))
                if old is not None:
                    gone.append(path)
                continue
            if old is not None and (old[1], old[2], old[3], old[4]) == (st.st_dev, st.st_ino, st.st_size,
                                                                         st.st_mtime):
                continue
            if st.st_size > ADAPTER_FILE_MAX_BYTES and adapter_for(agent) is not None:
                self.skipped_files.report(path, _too_large())
                continue
            todo.append((agent, path, old))
        if full:
            listed = {p for _a, p in files}
            gone += [p for p in states if p not in listed and not os.path.exists(p)]
        if gone:
            self._drop_keys(gone)
        total = len(todo)
        if progress is not None:
            progress(0, total)
        # Parsing (this thread) and writing (a writer thread; SQLite runs without the GIL)
        # overlap: batches are handed over in order through a short queue.
        writer = _Writer(self)
        try:
            done = 0
            batch: list[tuple[_Work, list[HistoryEntry]]] = []
            budget = BATCH_BYTES
            for agent, path, old in todo:
                if adapter_for(agent) is not None:
                    if (cancelled is not None and cancelled()) or writer.failed:
                        return writer.finish(batch)
                    work = self._read_adapter_file(agent, path, reset=old is not None)
                    if work is not None:
                        batch.append(work)
                        budget -= work[0].offset
                        if budget <= 0:
                            writer.put(batch, (done, total) if progress is not None else None, progress)
                            batch = []
                            budget = BATCH_BYTES
                    done += 1
                    continue
                offset = 0
                reset = False
                state = ExtractState()
                if old is not None:
                    offset, reset, state = self._resume(path)
                while True:
                    if (cancelled is not None and cancelled()) or writer.failed:
                        return writer.finish(batch)
                    got = read_complete_lines(path, offset, budget=max(budget, 256 * 1024),
                                              stats=self.stats_skipped, skipped=self.skipped_files)
                    if got is None:
                        break
                    ex = extractor_for(agent, state)
                    if isinstance(ex, CodexExtractor):
                        ex.start_at(codex.time_from_path(path))  # old rollouts: records without times
                    entries: list[HistoryEntry] = []
                    for off, rec in got.records:
                        try:
                            entries += ex.feed(rec, off)
                        except Exception:  # a record shape nobody foresaw must not stop the index
                            log.debug("skipped a record of %s at %d", path, off, exc_info=True)
                    sid = state.session_id if agent is AgentKind.CODEX and state.session_id else (
                        _session_id_of(agent, path) or state.session_id)
                    # The writer thread stores the snapshot while this thread reads on: nothing in
                    # it may be shared with the state the next batch changes.
                    ex.flush()
                    snap = dataclasses.replace(state, flags=dict(state.flags), extra=copy.deepcopy(state.extra))
                    batch.append((_Work(agent, path, reset, snap, got.end, got.dev, got.ino,
                                        got.size if not got.more else got.end,
                                        got.mtime if not got.more else 0.0, sid,
                                        [gram_document(e.text) for e in entries]), entries))
                    budget -= got.end - offset
                    reset = False  # the drop happens once, in the first batch
                    offset = got.end
                    if budget <= 0:
                        writer.put(batch, (done, total) if progress is not None else None, progress)
                        batch = []
                        budget = BATCH_BYTES
                    if not got.more:
                        break
                done += 1
            added = writer.finish(batch)
        finally:
            writer.close()
        if progress is not None:
            progress(total, total)
        return added

    def _read_adapter_file(self, agent: AgentKind, path: str, *,
                           reset: bool) -> tuple[_Work, list[HistoryEntry]] | None:
        """One adapter session file read whole and parsed by its adapter: the batch item that
        replaces its entries (``reset``: it was indexed before).

        The records (complete JSON lines, :func:`~deck_tray.core.jsonl.read_complete_lines`:
        a named pipe never blocks) are fed in file order to
        :meth:`~deck_tray.core.agents.base.AgentAdapter.new_transcript`'s state, then
        ``settle()``; its messages become the entries (:func:`~deck_tray.core.history.adapter_entries`),
        its ``session_id`` (else the file name without ``.jsonl``, as the live scan names it),
        ``cwd`` and ``title`` the session's.

        Returns:
            ``(work, entries)``, or None when the file cannot be read (reported to
            :attr:`skipped_files`) or grew past :data:`ADAPTER_FILE_MAX_BYTES` while read.
        """
        adapter = adapter_for(agent)
        if adapter is None:
            return None
        got = read_complete_lines(path, 0, budget=ADAPTER_FILE_MAX_BYTES, stats=self.stats_skipped,
                                  skipped=self.skipped_files)
        if got is None:
            return None
        if got.more:
            self.skipped_files.report(path, _too_large())
            return None
        tx = adapter.new_transcript(path)
        for off, rec in got.records:
            try:
                tx.feed(rec)
            except Exception:  # a record shape nobody foresaw must not stop the index
                log.debug("skipped a record of %s at %d", path, off, exc_info=True)
        try:
            tx.settle()
        except Exception:
            log.debug("could not settle the %s session %s", agent.value, path, exc_info=True)
        entries = adapter_entries(tx.messages)
        times = [e.ts for e in entries if e.ts]
        started = tx.started_at or min(times, default=0.0)
        updated = max(tx.last_at, max(times, default=0.0))
        name = os.path.basename(path)
        sid = tx.session_id or (name[:-6] if name.endswith(".jsonl") else name)
        state = ExtractState(session_id=sid, cwd=tx.cwd, title=tx.title, title_rank=1 if tx.title else 0,
                             started=started, updated=updated, next_ordinal=len(entries))
        work = _Work(agent, path, reset, state, got.end, got.dev, got.ino, got.size, got.mtime, sid,
                     [gram_document(e.text) for e in entries])
        return work, entries

    def _resume(self, path: str) -> tuple[int, bool, ExtractState]:
        """Where to continue reading an indexed file: ``(offset, reset, state)``."""
        row = self._conn().execute(
            "SELECT offset, ino, dev, session_id, cwd, title, started, updated, next_ordinal, state "
            "FROM sessions WHERE key = ?", (path,)).fetchone()
        if row is None:
            return 0, False, ExtractState()
        try:
            st = os.stat(path)
        except OSError:
            return 0, True, ExtractState()
        if (st.st_ino, st.st_dev) != (row[1], row[2]) or st.st_size < row[0]:
            return 0, True, ExtractState()
        state = ExtractState(row[3], row[4], row[5], 0, row[6], row[7], row[8])
        state.load_json(row[9])
        return int(row[0]), False, state

    def _commit(self, batch: list[tuple[_Work, list[HistoryEntry]]]) -> int:
        """Write one batch: entries and the offsets they came from, in one transaction."""
        added = 0
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Files read again from the start lose their rows first: the new entries then get ids
                # above every row left (rowids of deleted rows are given again), so ``id > first_new``
                # below is exactly this batch's entries.
                for w, _entries in batch:
                    if w.reset:
                        row = conn.execute("SELECT id FROM sessions WHERE key = ?", (w.path,)).fetchone()
                        if row:
                            self._drop_rows(conn, [int(row[0])])
                first_new = conn.execute("SELECT coalesce(max(id), 0) FROM entries").fetchone()[0]
                ids: dict[str, int] = {}
                for w, entries in batch:
                    st = w.state
                    sid = ids.get(w.path)
                    if sid is None:
                        row = conn.execute("SELECT id FROM sessions WHERE key = ?", (w.path,)).fetchone()
                        sid = row[0] if row else None
                    if w.reset and sid is not None:
                        self._drop_rows(conn, [sid])
                        sid = None
                    values = (w.agent.value, w.session_id, w.path, st.cwd, st.title, st.started, st.updated,
                              w.offset, w.dev, w.ino, w.size, w.mtime, st.next_ordinal, st.to_json())
                    if sid is None:
                        cur = conn.execute(
                            "INSERT INTO sessions(key, agent, session_id, path, cwd, title, started, updated, "
                            "offset, dev, ino, size, mtime, next_ordinal, state) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (w.path, *values))
                        sid = int(cur.lastrowid or 0)
                        conn.execute("INSERT INTO titles_fts(rowid, title, grams) VALUES (?, ?, ?)",
                                     (sid, st.title, gram_document(st.title)))
                    else:
                        old_title = conn.execute("SELECT title FROM sessions WHERE id = ?", (sid,)).fetchone()
                        conn.execute(
                            "UPDATE sessions SET agent=?, session_id=?, path=?, cwd=?, title=?, started=?, "
                            "updated=?, offset=?, dev=?, ino=?, size=?, mtime=?, next_ordinal=?, state=? "
                            "WHERE id=?", (*values, sid))
                        if old_title is None or old_title[0] != st.title:
                            conn.execute("DELETE FROM titles_fts WHERE rowid = ?", (sid,))
                            conn.execute("INSERT INTO titles_fts(rowid, title, grams) VALUES (?, ?, ?)",
                                         (sid, st.title, gram_document(st.title)))
                    ids[w.path] = sid
                    thread = claude.subagent_id(w.path) if w.agent is AgentKind.CLAUDE_CODE else ""
                    if entries:
                        _insert_entries(conn, sid, zip(entries, w.grams, strict=True), thread)
                        added += len(entries)
                conn.execute("INSERT INTO entries_fts(rowid, text, grams) SELECT id, text, grams FROM entries "
                             "WHERE id > ?",
                             (first_new,))
                if self.batch_hook is not None:
                    self.batch_hook()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return added

    @staticmethod
    def _drop_rows(conn: sqlite3.Connection, session_rows: list[int]) -> None:
        for sid in session_rows:
            conn.execute("DELETE FROM entries WHERE sess = ?", (sid,))
            conn.execute("DELETE FROM titles_fts WHERE rowid = ?", (sid,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))

    def _drop_keys(self, keys: list[str]) -> None:
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = []
                for k in keys:
                    r = conn.execute("SELECT id FROM sessions WHERE key = ?", (k,)).fetchone()
                    if r:
                        rows.append(int(r[0]))
                self._drop_rows(conn, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @_a_use
    def drop_file(self, path: str) -> None:
        """Forget one transcript file's session."""
        self._drop_keys([path])

    @staticmethod
    def opencode_key(server_url: str, session_id: str) -> str:
        """The ``sessions.key`` of an opencode session."""
        return f"opencode {server_url} {session_id}"

    @_a_use
    def opencode_updated(self, server_url: str) -> dict[str, float]:
        """``{session id: time.updated (POSIX s)}`` of the indexed sessions of one server."""
        rows = self._conn().execute("SELECT session_id, source_updated FROM sessions WHERE server_url = ?",
                                    (server_url,))
        return {r[0]: float(r[1]) for r in rows}

    @_a_use
    def sync_opencode_session(self, server_url: str, info: dict[str, Any], items: list[dict[str, Any]]) -> int:
        """Replace one opencode session's entries.

        Args:
            server_url: the server, e.g. ``http://127.0.0.1:4096``.
            info: the Session object (``id``, ``title``, ``directory``, ``time.created/updated`` in ms).
            items: ``GET /session/{id}/message`` answer.

        Returns:
            The number of entries written.
        """
        sid = str(info.get("id") or "")
        if not sid:
            return 0
        t = info.get("time") if isinstance(info.get("time"), dict) else {}
        assert isinstance(t, dict)

        def sec(v: Any) -> float:
            return float(v) / 1000.0 if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0

        entries = opencode_entries(items)
        rows = [(e, gram_document(e.text)) for e in entries]
        key = self.opencode_key(server_url, sid)
        title = str(info.get("title") or "") or (entries[0].text.splitlines()[0][:200] if entries else "")
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                r = conn.execute("SELECT id FROM sessions WHERE key = ?", (key,)).fetchone()
                if r:
                    self._drop_rows(conn, [int(r[0])])
                cur = conn.execute(
                    "INSERT INTO sessions(key, agent, session_id, server_url, cwd, title, started, updated, "
                    "source_updated, next_ordinal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, AgentKind.OPENCODE.value, sid, server_url, str(info.get("directory") or ""), title,
                     sec(t.get("created")), sec(t.get("updated")), sec(t.get("updated")), len(entries)))
                row_id = int(cur.lastrowid or 0)
                conn.execute("INSERT INTO titles_fts(rowid, title, grams) VALUES (?, ?, ?)",
                             (row_id, title, gram_document(title)))
                _insert_entries(conn, row_id, rows)
                conn.execute("INSERT INTO entries_fts(rowid, text, grams) SELECT id, text, grams FROM entries "
                             "WHERE sess = ?",
                             (row_id,))
                if self.batch_hook is not None:
                    self.batch_hook()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(entries)

    @_a_use
    def drop_opencode_session(self, server_url: str, session_id: str) -> None:
        """Forget one opencode session (it was deleted on its server)."""
        self._drop_keys([self.opencode_key(server_url, session_id)])

    # -- reading ---------------------------------------------------------------------------

    @_a_use
    def search(self, query: SearchQuery) -> list[SearchHit]:
        """Ranked hits for ``query``.

        The newest :data:`RANK_WINDOW` matching entries (after the filters) are ranked by
        FTS5 bm25, weighted: prompts ×:data:`PROMPT_WEIGHT`, sessions whose title matches
        ×:data:`TITLE_WEIGHT`; the best ``query.limit`` are returned, best first.

        Raises:
            deck_tray.core.history.QueryError: the text has nothing to search for.
        """
        match = fts_match(query.text)
        where = ["entries_fts MATCH ?"]
        params: list[Any] = [match]
        if query.agents:
            where.append(f"s.agent IN ({', '.join('?' * len(query.agents))})")
            params += [a.value for a in query.agents]
        if query.roles:
            where.append(f"e.role IN ({', '.join('?' * len(query.roles))})")
            params += [r.value for r in query.roles]
        if query.project:
            where.append("instr(lower(s.cwd), ?) > 0")
            params.append(query.project.lower())
        if query.since is not None:
            where.append("e.ts >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("e.ts < ?")
            params.append(query.until)
        if query.session_id:
            where.append("s.session_id = ?")
            params.append(query.session_id)
        join = " JOIN sessions s ON s.id = e.sess" if (query.agents or query.project or query.session_id) else ""
        conn = self._conn()
        try:
            rows = conn.execute(
                f"SELECT e.id, e.role, e.sess, e.ts FROM entries_fts JOIN entries e ON e.id = entries_fts.rowid{join} "
                f"WHERE {' AND '.join(where)} ORDER BY entries_fts.rowid DESC LIMIT ?",
                [*params, RANK_WINDOW]).fetchall()
            if not rows:
                return []
            titled = {r[0] for r in conn.execute("SELECT rowid FROM titles_fts WHERE titles_fts MATCH ?", (match,))}
            # Rare terms (fewer matches than the window in all): bm25, whose IDF part counts
            # every row matching each term, is cheap. Common ones: it would take seconds.
            if len(rows) >= RANK_WINDOW:
                rare = False
            elif not (join or query.roles or query.since is not None or query.until is not None):
                rare = True
            else:
                rare = conn.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM entries_fts WHERE entries_fts MATCH ? LIMIT ?)",
                    (match, RANK_WINDOW)).fetchone()[0] < RANK_WINDOW
            if rare:
                # Few matches in all: bm25 (whose IDF part counts every row matching each term) is cheap.
                rows = conn.execute(
                    f"SELECT e.id, e.role, e.sess, e.ts, bm25(entries_fts) FROM entries_fts "
                    f"JOIN entries e ON e.id = entries_fts.rowid{join} "
                    f"WHERE {' AND '.join(where)} ORDER BY entries_fts.rowid DESC LIMIT ?",
                    [*params, RANK_WINDOW]).fetchall()
                scores = {r[0]: float(r[4]) for r in rows}
            else:
                # Words that occur everywhere: bm25 would take seconds and its IDF part would
                # weigh every term alike anyway; score the newest matches by term frequency.
                rows = rows[:TF_WINDOW]
                words = query_words(query.text)
                marks = ", ".join("?" * len(rows))
                scores = {i: _tf_score(t, n, words) for i, t, n in conn.execute(
                    f"SELECT id, lower(substr(text, 1, ?)), length(text) FROM entries WHERE id IN ({marks})",
                    [TF_CHARS, *(r[0] for r in rows)])}
        except sqlite3.OperationalError as exc:
            raise QueryError(f"cannot search for {query.text!r}: {exc}") from exc

        def weight(r: Any) -> float:
            w = float(scores.get(r[0], 0.0))
            if r[1] == HistoryRole.USER.value:
                w *= PROMPT_WEIGHT
            if r[2] in titled:
                w *= TITLE_WEIGHT
            return w

        best = sorted(((weight(r), r[0], r[3]) for r in rows), key=lambda t: (t[0], -t[2]))[: max(query.limit, 0)]
        if not best:
            return []
        details = {r[0]: r for r in conn.execute(
            "SELECT e.id, s.agent, s.session_id, s.title, s.cwd, s.path, s.server_url, e.ordinal, e.role, e.ts, "
            "substr(e.text, 1, ?), e.thread FROM entries e JOIN sessions s ON s.id = e.sess "
            f"WHERE e.id IN ({', '.join('?' * len(best))})", [HIT_TEXT_CHARS, *(b[1] for b in best)])}
        hits: list[SearchHit] = []
        for rank, eid, _ts in best:
            r = details.get(eid)
            if r is None:
                continue
            hits.append(SearchHit(
                agent=AgentKind(r[1]), session_id=r[2], title=r[3], project=r[4], source_path=r[5],
                server_url=r[6], ordinal=r[7], role=HistoryRole(r[8]), ts=r[9], text=r[10],
                snippet=snippet(r[10], query.text), rank=rank, thread=r[11]))
        return hits

    @_a_use
    def session_entries(self, agent: AgentKind, session_id: str) -> list[HistoryEntry]:
        """Every indexed entry of one session, by ordinal (the most recently updated copy
        when two files or servers hold the same id); ``[]`` when it is not indexed."""
        conn = self._conn()
        # The session's own file before its sub-agents' files (agent-*.jsonl), which share its id.
        row = conn.execute("SELECT id FROM sessions WHERE agent = ? AND session_id = ? "
                           "ORDER BY (path LIKE '%/agent-%.jsonl'), updated DESC LIMIT 1",
                           (agent.value, session_id)).fetchone()
        if row is None:
            return []
        return [HistoryEntry(r[0], HistoryRole(r[1]), r[2], r[3], r[4], r[5]) for r in conn.execute(
            "SELECT ordinal, role, ts, text, offset, thread FROM entries WHERE sess = ? ORDER BY ordinal", (row[0],))]

    @_a_use
    def recent_folders(self, limit: int = 15) -> list[str]:
        """The working folders of the most recently updated sessions of every agent, newest first,
        each once, at most ``limit`` (for "New session"'s folder list; folders that no longer
        exist are left out). Fast: one indexed query plus ``limit`` ``stat`` calls."""
        conn = self._conn()
        out: list[str] = []
        for (cwd,) in conn.execute("SELECT cwd FROM sessions WHERE cwd != '' GROUP BY cwd "
                                   "ORDER BY max(updated) DESC LIMIT ?", (limit * 3,)):
            if os.path.isdir(cwd):
                out.append(cwd)
                if len(out) >= limit:
                    break
        return out

    @_a_use
    def stats(self) -> dict[str, Any]:
        """``{"path", "sessions", "entries", "bytes", "by_agent": {agent: sessions}, "indexed_bytes",
        "rebuilt_because"}`` (``bytes``: the database file plus its WAL)."""
        conn = self._conn()
        by_agent = {r[0]: r[1] for r in conn.execute("SELECT agent, count(*) FROM sessions GROUP BY agent")}
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(str(self.path) + suffix)
            except OSError:
                pass
        return {
            "path": str(self.path),
            "sessions": sum(by_agent.values()),
            "entries": conn.execute("SELECT count(*) FROM entries").fetchone()[0],
            "bytes": size,
            "indexed_bytes": conn.execute("SELECT coalesce(sum(offset), 0) FROM sessions").fetchone()[0],
            "by_agent": by_agent,
            "rebuilt_because": self.rebuilt_because,
        }

    @_a_use
    def check(self) -> bool:
        """True when SQLite's integrity check and FTS5's own check both pass."""
        conn = self._conn()
        try:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return False
            conn.execute("INSERT INTO entries_fts(entries_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError:
            return False
        return True


def _too_large() -> OSError:
    """Why an adapter's session file larger than :data:`ADAPTER_FILE_MAX_BYTES` is skipped (the
    same words every time: :class:`~deck_tray.core.jsonl.SkippedFiles` logs a path once per reason)."""
    n = ADAPTER_FILE_MAX_BYTES
    size = f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n:,} bytes"
    return OSError(errno.EFBIG, f"larger than the {size} the history reads of a session file")


def _insert_entries(conn: sqlite3.Connection, sess: int, rows: Iterable[tuple[HistoryEntry, str]],
                    thread: str = "") -> None:
    """Insert ``(entry, gram document)`` rows of session row ``sess`` into ``entries`` (the caller
    adds them to ``entries_fts``); ``thread``: the sub-agent of a whole file, when entries name none."""
    conn.executemany(
        "INSERT INTO entries(sess, ordinal, role, ts, offset, text, grams, thread) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(sess, e.ordinal, e.role.value, e.ts, e.offset, e.text, g, e.thread or thread) for e, g in rows])


def _tf_score(lowered: str, length: int, words: list[str]) -> float:
    """bm25 without the IDF part (all terms are common): ``-tf·(k1+1) / (tf + k1·(1-b+b·len/avg))``
    with tf the occurrences of the query's words in ``lowered`` (lower-cased text), k1 = 1.2,
    b = 0.75, ``length`` in characters, ``avg`` = 1000."""
    tf = sum(lowered.count(w) for w in words)
    if not tf:
        return 0.0
    k1, b = 1.2, 0.75
    return -tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / 1000.0))


def _split_sql(script: str) -> list[str]:
    """Statements of :data:`_SCHEMA` (triggers contain ``;`` inside ``BEGIN … END``)."""
    out: list[str] = []
    buf = ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


def classify(path: str, claude_dir: Path, codex_dir: Path,
             adapter_homes: Mapping[AgentKind, Path] | None = None) -> AgentKind | None:
    """The agent whose transcript ``path`` is (by where it lives), or None for any other file.

    Args:
        path: a changed file (a watcher's event).
        claude_dir: Claude Code's config folder.
        codex_dir: Codex's home.
        adapter_homes: ``{agent: its data folder}`` of the adapters' agents
            (:func:`deck_tray.core.agents.default_homes`): a ``.jsonl`` file its adapter
            :meth:`~deck_tray.core.agents.base.AgentAdapter.owns` is that agent's.
    """
    if not path.endswith(".jsonl"):
        return None
    p = os.path.abspath(path)
    projects = os.path.join(os.path.abspath(claude_dir), "projects") + os.sep
    if p.startswith(projects) and os.path.dirname(os.path.dirname(p)) + os.sep == projects:
        return AgentKind.CLAUDE_CODE
    if p.startswith(projects) and claude.subagent_parent_id(p) and (
            os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(p)))) + os.sep == projects):
        return AgentKind.CLAUDE_CODE
    home = os.path.abspath(codex_dir) + os.sep
    if p.startswith(home) and os.path.basename(p).startswith("rollout-"):
        return AgentKind.CODEX
    for kind, agent_home in (adapter_homes or {}).items():
        adapter = adapter_for(kind)
        if adapter is not None and adapter.owns(Path(os.path.abspath(agent_home)), p):
            return kind
    return None
