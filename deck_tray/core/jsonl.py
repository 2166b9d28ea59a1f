"""Incremental reader of append-only JSONL files (Claude transcripts, Codex rollouts).

A :class:`JsonlTailer` keeps a byte offset and reads only what was appended since the
last call. It buffers a partial last line until its newline arrives, notices when the
file was truncated or replaced (size below the offset, or another inode), and skips —
counting, never raising — lines that are not JSON objects, not UTF-8, or longer than
:data:`MAX_LINE_BYTES`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger(__name__)

#: Lines longer than this (bytes) are skipped: 8 MiB.
MAX_LINE_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024


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
        missing: True when the file does not exist (any more).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    reset: bool = False
    missing: bool = False


class JsonlTailer:
    """Reads appended JSON lines of one file.

    Args:
        path: the file.
        tail_bytes: on the first read (and after a reset) start this many bytes before
            the end instead of at byte 0, discarding the first partial line; None reads all.
        max_line_bytes: longer lines are skipped and counted as ``oversized``.

    The object is not thread-safe; use it from one thread at a time.
    """

    def __init__(
        self, path: str, *, tail_bytes: int | None = None, max_line_bytes: int = MAX_LINE_BYTES
    ) -> None:
        self.path = path
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
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            result.missing = True
            if self._ident is not None:
                self._restart()
                result.reset = True
            return result
        except OSError as exc:
            log.warning("cannot open %s: %s", self.path, exc)
            result.missing = True
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
                        max_line_bytes: int = MAX_LINE_BYTES, stats: TailStats | None = None) -> LinesRead | None:
    """Read the complete JSON lines of ``path`` from byte ``offset`` (stateless, unlike
    :class:`JsonlTailer`): the caller stores :attr:`LinesRead.end` and passes it next time.

    Args:
        path: a JSONL file.
        offset: where to start; must be the start of a line (0 or a previous ``end``).
        budget: stop after the line that crosses this many bytes read (``more`` is then True).
        max_line_bytes: longer lines are skipped (counted as ``oversized``).
        stats: counters of skipped lines (a fresh one when None).

    Returns:
        What was read, or None when the file cannot be opened (vanished, no permission).
    """
    stats = stats if stats is not None else TailStats()
    try:
        f = open(path, "rb")
    except OSError:
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
