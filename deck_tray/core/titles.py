"""A session's title, decided in one place for the session list and the history index
(issue #16 item 3: the two disagreed).

Claude Code (records of ``projects/*/<id>.jsonl``, 1.0.x–2.1.332), best first:

1. ``custom-title`` (``/rename``), the newest;
2. ``ai-title`` (2.1.x) or a ``summary`` record whose ``leafUuid`` names a record **of this
   file** — a ``summary`` whose leaf is not in the file describes another session (Claude 1.0.x
   and 2.0.x copy the summaries of earlier sessions into a resumed one) and is ignored;
3. the first prompt the user typed (harness text, commands and compaction summaries are not
   prompts: :mod:`deck_tray.core.record_kinds`).

Codex has no title records: the first typed prompt, with the IDE extension's wrapper removed
(:func:`deck_tray.core.record_kinds.codex_prompt_of`).
"""

from __future__ import annotations

from typing import Any

#: Longest title kept, in characters.
TITLE_CHARS = 200
#: Title ranks: none yet, first prompt, generated (ai-title / summary), chosen by the user.
NONE, PROMPT, GENERATED, CUSTOM = 0, 1, 2, 3


def title_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped, at most :data:`TITLE_CHARS` characters."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:TITLE_CHARS]
    return ""


class Titles:
    """Follows the title records of one transcript fed in file order.

    Attributes:
        title: the best title so far (``""`` when none).
        rank: its rank (:data:`NONE` … :data:`CUSTOM`).
        pending: ``summary`` texts by ``leafUuid`` whose leaf has not been seen yet.
    """

    def __init__(self) -> None:
        self.title = ""
        self.rank = NONE
        self.pending: dict[str, str] = {}
        self._seen: set[str] = set()

    def offer(self, text: str, rank: int) -> None:
        """Take ``text`` as the title when ``rank`` beats (or, for generated and custom titles,
        equals — the newer wins) the current one; a prompt only when there is no title."""
        line = title_line(text)
        if line and (rank > self.rank or (rank == self.rank and rank > PROMPT)):
            self.title, self.rank = line, rank

    def feed(self, rec: dict[str, Any]) -> None:
        """Apply one Claude record's title information (title records and record uuids)."""
        rtype = rec.get("type")
        uuid = rec.get("uuid")
        if isinstance(uuid, str) and uuid:
            self._seen.add(uuid)
            summary = self.pending.pop(uuid, None)
            if summary is not None:
                self.offer(summary, GENERATED)
        if rtype == "custom-title" and isinstance(rec.get("customTitle"), str):
            self.offer(rec["customTitle"], CUSTOM)
        elif rtype == "ai-title" and isinstance(rec.get("aiTitle"), str):
            self.offer(rec["aiTitle"], GENERATED)
        elif rtype == "summary" and isinstance(rec.get("summary"), str):
            leaf = rec.get("leafUuid")
            if isinstance(leaf, str) and leaf in self._seen:
                self.offer(rec["summary"], GENERATED)
            elif isinstance(leaf, str) and leaf and len(self.pending) < 64:
                self.pending[leaf] = rec["summary"]

    def dump(self) -> dict[str, Any]:
        """What survives between index batches (the seen uuids do not: a summary whose leaf
        was in an earlier batch is not taken, which real files — summaries first — never need)."""
        return {"title": self.title, "rank": self.rank, "pending": dict(self.pending)}

    def load(self, raw: Any) -> None:
        """Restore :meth:`dump` output (bad input ignored)."""
        if not isinstance(raw, dict):
            return
        if isinstance(raw.get("title"), str) and isinstance(raw.get("rank"), int):
            self.title, self.rank = raw["title"], raw["rank"]
        if isinstance(raw.get("pending"), dict):
            self.pending = {str(k): str(v) for k, v in raw["pending"].items()}
