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
            rec = self._parse(line)
            if rec is not None:
                out.append(rec)

    def _parse(self, line: bytes) -> dict[str, Any] | None:
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
            self.stats.malformed += 1
            return None
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.non_utf8 += 1
            return None
        try:
            value = json.loads(text)
        except ValueError:
            self.stats.malformed += 1
            return None
        if not isinstance(value, dict):
            self.stats.malformed += 1
            return None
        return value
