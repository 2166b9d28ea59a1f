"""Incremental reader of append-only JSONL files (Claude transcripts, Codex rollouts).

A :class:`JsonlTailer` keeps a byte offset and reads only what was appended since the
last call. It buffers a partial last line until its newline arrives, notices when the
file was truncated or replaced (size below the offset, or another inode), and skips —
counting, never raising — lines that are not JSON objects, not UTF-8, or longer than
:data:`MAX_LINE_BYTES`.

Every agent file is opened through :func:`open_regular`: only a regular file is opened,
and never in a way that can block. A named pipe, socket or device named like a transcript
(``<id>.jsonl``, ``rollout-*.jsonl``, ``<pid>.json``), a symbolic link loop or an unreadable
file is skipped, and :class:`SkippedFiles` logs that once per path.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger(__name__)

#: Lines longer than this (bytes) are skipped: 8 MiB.
MAX_LINE_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024


class NotRegularFile(OSError):
    """A path names something other than a regular file (a named pipe, a socket, a device,
    a folder): it is not a transcript or status file, and opening it could block.

    Attributes:
        filename: the path.
        kind: what it is instead, in words (``"a named pipe"``), from :func:`file_kind`.
    """

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.filename = path
        self.kind = kind


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words: ``"a regular file"``, ``"a named pipe"``, ``"a socket"``,
    ``"a character device"``, ``"a block device"``, ``"a folder"``, ``"a symbolic link"``, or
    ``"not a regular file"``."""
    for test, words in ((stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a named pipe"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"),
                        (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return words
    return "not a regular file"


def open_regular(path: str) -> int:
    """Open ``path`` for reading only if it is a regular file, without ever blocking.

    ``stat`` first (symbolic links are followed), then ``open`` with ``O_NONBLOCK`` (a named
    pipe swapped in after the ``stat`` would otherwise wait for a writer forever), then
    ``fstat`` of what was opened; the descriptor is switched back to blocking mode, which
    changes nothing for a regular file.

    Args:
        path: the file.

    Returns:
        A read-only, close-on-exec file descriptor; the caller closes it.

    Raises:
        NotRegularFile: ``path`` is a named pipe, socket, device or folder (checked before
            and after opening).
        OSError: as ``os.stat`` / ``os.open`` raise it: ``FileNotFoundError`` when it does
            not exist, ``PermissionError`` when it is not readable, ``ELOOP`` for a symbolic
            link loop.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(path, file_kind(st.st_mode))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, file_kind(st.st_mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str) -> bytes:
    """The whole content of a small regular file (a status file), read with :func:`open_regular`.

    Raises:
        NotRegularFile: ``path`` is not a regular file.
        OSError: it cannot be opened or read (``FileNotFoundError`` when it is gone).
    """
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def skip_reason(exc: OSError) -> str:
    """Why a file that raised ``exc`` when opened is skipped, in words (``"a named pipe"``,
    ``"a symbolic link loop"``, ``"not readable (permission denied)"``, …)."""
    if isinstance(exc, NotRegularFile):
        return exc.kind
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "not readable (permission denied)"
    if exc.errno == errno.ENXIO:
        return "a socket or a device without a reader"
    return f"cannot be read ({exc.strerror or exc})"


class SkippedFiles:
    """Logs each agent file that is skipped (not a regular file, a link loop, unreadable) once.

    A path is logged again only when the reason changes, or after it vanished
    (:meth:`forget`) and came back. Thread-safe: the scanner and the history indexer, on
    their own threads, may share one so the log names each path once.
    """

    def __init__(self) -> None:
        self._reported: dict[str, str] = {}
        self._lock = threading.Lock()

    def report(self, path: str, exc: OSError, what: str = "transcript") -> bool:
        """Note that ``path`` was skipped because of ``exc``; log a warning the first time.

        Args:
            path: the skipped file.
            exc: what opening it raised (:class:`NotRegularFile` or another ``OSError``).
            what: what the file was expected to be, for the message (``"transcript"``,
                ``"status file"``).

        Returns:
            True when a line was logged now, False when it was reported before.
        """
        reason = skip_reason(exc)
        with self._lock:
            if self._reported.get(path) == reason:
                return False
            self._reported[path] = reason
        if isinstance(exc, NotRegularFile) or exc.errno == errno.ELOOP:
            log.warning("skipped %s: %s, not a %s", path, reason, what)
        else:
            log.warning("skipped %s: %s", path, reason)
        return True

    def forget(self, path: str) -> None:
        """``path`` is gone: log it again if it comes back and is still skipped."""
        if self._reported:
            with self._lock:
                self._reported.pop(path, None)


@dataclass
class TailStats:
    """Counters of what a tailer skipped; they only grow."""

    malformed: int = 0
    oversized: int = 0
    non_utf8: int = 0
    resets: int = 0


@dataclass
class ReadResult:
    """What one :meth:`JsonlTailer.read_new` call produced.

    Attributes:
        records: the complete JSON objects appended, in file order.
        reset: True when the file was truncated or replaced since the last read, so the
            records start again from the beginning (or from the tail window) and any state
            built from earlier records must be rebuilt.
        missing: True when the file does not exist (any more) or cannot be read as one
            (see ``skipped``).
        skipped: True when it exists but was not read: not a regular file (a named pipe, a
            socket, a device), a symbolic link loop, or not readable; reported through the
            tailer's :class:`SkippedFiles`.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    reset: bool = False
    missing: bool = False
    skipped: bool = False


class JsonlTailer:
    """Reads appended JSON lines of one file.

    Args:
        path: the file.
        tail_bytes: on the first read (and after a reset) start this many bytes before
            the end instead of at byte 0, discarding the first partial line; None reads all.
        max_line_bytes: longer lines are skipped and counted as ``oversized``.
        skipped: where a file that cannot be read as a transcript is reported (logged once
            per path); a new one of its own when None.

    The file is opened with :func:`open_regular`, so a named pipe never blocks a read.
    The object is not thread-safe; use it from one thread at a time.
    """

    def __init__(
        self, path: str, *, tail_bytes: int | None = None, max_line_bytes: int = MAX_LINE_BYTES,
        skipped: SkippedFiles | None = None,
    ) -> None:
        self.path = path
        self.skipped = skipped if skipped is not None else SkippedFiles()
        self.tail_bytes = tail_bytes
        self.max_line_bytes = max_line_bytes
        self.stats = TailStats()
        self.offset = 0
        self._ident: tuple[int, int] | None = None
        self._partial = bytearray()
        self._skipping = False  # inside an oversized line, dropping until its newline
        self._started = False

    def read_new(self) -> ReadResult:
        """Read what was appended since the last call.

        Returns:
            The parsed records; never raises for bad content or a vanished file.
        """
        result = ReadResult()
        try:
            fd = open_regular(self.path)
        except FileNotFoundError:
            self.skipped.forget(self.path)
            result.missing = True
            if self._ident is not None:
                self._restart()
                result.reset = True
            return result
        except OSError as exc:
            self.skipped.report(self.path, exc)
            result.missing = result.skipped = True
            return result
        try:
            st = os.fstat(fd)
            ident = (st.st_dev, st.st_ino)
            if self._ident is not None and (ident != self._ident or st.st_size < self.offset):
                log.info("%s was %s; reading it again", self.path,
                         "replaced" if ident != self._ident else "truncated")
                self._restart()
                self.stats.resets += 1
                result.reset = True
            self._ident = ident
            if not self._started:
                self._started = True
                if self.tail_bytes is not None and st.st_size > self.tail_bytes:
                    self.offset = st.st_size - self.tail_bytes
                    # The window's first line is partial unless the window starts a line.
                    self._skipping = os.pread(fd, 1, self.offset - 1) != b"\n"
            while True:
                chunk = os.pread(fd, _CHUNK, self.offset)
                if not chunk:
                    break
                self.offset += len(chunk)
                self._feed(chunk, result.records)
                if len(chunk) < _CHUNK:
                    break
        finally:
            os.close(fd)
        return result

    def _restart(self) -> None:
        self.offset = 0
        self._ident = None
        self._partial.clear()
        self._skipping = False
        self._started = False

    def _feed(self, chunk: bytes, out: list[dict[str, Any]]) -> None:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                rest = chunk[start:]
                if self._skipping:
                    return
                if len(self._partial) + len(rest) > self.max_line_bytes:
                    self.stats.oversized += 1
                    self._partial.clear()
                    self._skipping = True
                    return
                self._partial += rest
                return
            piece = chunk[start:nl]
            start = nl + 1
            if self._skipping:
                self._skipping = False
                self._partial.clear()
                continue
            if self._partial:
                self._partial += piece
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = piece
            if len(line) > self.max_line_bytes:
                self.stats.oversized += 1
                continue
            rec = parse_line(line, self.stats)
            if rec is not None:
                out.append(rec)


def parse_line(line: bytes, stats: TailStats) -> dict[str, Any] | None:
    """One JSONL line as a JSON object; None (counted in ``stats``) when it is blank, not
    UTF-8, not JSON or not an object."""
    line = line.strip()
    if not line:
        return None
    try:
        # orjson parses a transcript line ~3x faster; it is stricter than json, so a
        # line it refuses takes the path below, which decides and counts as before.
        fast = orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(fast, dict):
            return fast
        stats.malformed += 1
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        stats.non_utf8 += 1
        return None
    try:
        value = json.loads(text)
    except ValueError:
        stats.malformed += 1
        return None
    if not isinstance(value, dict):
        stats.malformed += 1
        return None
    return value


@dataclass
class LinesRead:
    """What :func:`read_complete_lines` read.

    Attributes:
        records: ``(offset of the line's first byte, object)`` for each complete JSON line.
        end: offset just after the last complete line consumed (a partial last line is not
            consumed: read again from ``end`` once its newline arrived).
        dev: the file's device number.
        ino: the file's inode number.
        size: the file's size when it was opened.
        mtime: its modification time (POSIX s).
        more: True when the byte budget stopped the read before the end of the file.
    """

    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    end: int = 0
    dev: int = 0
    ino: int = 0
    size: int = 0
    mtime: float = 0.0
    more: bool = False


def read_complete_lines(path: str, offset: int, *, budget: int = 8 * 1024 * 1024,
                        max_line_bytes: int = MAX_LINE_BYTES, stats: TailStats | None = None,
                        skipped: SkippedFiles | None = None) -> LinesRead | None:
    """Read the complete JSON lines of ``path`` from byte ``offset`` (stateless, unlike
    :class:`JsonlTailer`): the caller stores :attr:`LinesRead.end` and passes it next time.

    Args:
        path: a JSONL file.
        offset: where to start; must be the start of a line (0 or a previous ``end``).
        budget: stop after the line that crosses this many bytes read (``more`` is then True).
        max_line_bytes: longer lines are skipped (counted as ``oversized``).
        stats: counters of skipped lines (a fresh one when None).
        skipped: where a file that exists but cannot be read as a transcript (not a regular
            file, a symbolic link loop, no permission) is reported; not reported when None.

    Returns:
        What was read, or None when the file cannot be opened (vanished, not a regular
        file, no permission). It is opened with :func:`open_regular`: a named pipe never
        blocks.
    """
    stats = stats if stats is not None else TailStats()
    try:
        f = os.fdopen(open_regular(path), "rb")
    except FileNotFoundError:
        if skipped is not None:
            skipped.forget(path)
        return None
    except OSError as exc:
        if skipped is not None:
            skipped.report(path, exc)
        return None
    with f:
        try:
            st = os.fstat(f.fileno())
        except OSError:
            return None
        out = LinesRead(end=offset, dev=st.st_dev, ino=st.st_ino, size=st.st_size, mtime=st.st_mtime)
        try:
            if offset >= st.st_size:
                return out
            f.seek(offset)
            pos = offset
            limit = offset + budget
            records = out.records
            readline = f.readline
            while pos < limit:
                line = readline(max_line_bytes + 1)
                if not line:
                    break
                if not line.endswith(b"\n"):
                    if len(line) <= max_line_bytes:
                        break  # partial last line: wait for its newline
                    # Oversized: skip to the end of the line (or of what is written of it).
                    n = len(line)
                    while True:
                        rest = readline(1024 * 1024)
                        n += len(rest)
                        if not rest or rest.endswith(b"\n"):
                            break
                    if not rest:
                        break
                    stats.oversized += 1
                    pos += n
                    continue
                rec = parse_line(line, stats)
                if rec is not None:
                    records.append((pos, rec))
                pos += len(line)
            out.end = pos
            out.more = pos < st.st_size and pos >= limit
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
        return out
