r"""Where a key's statements sit in a TOML text, found with tomlkit, for edits that keep every other byte.

tomlkit (PyPI ``tomlkit``, MIT; Debian 12 ships 0.11.7, Debian 13 0.13.2) parses a TOML 1.0
text into a document that renders back to the very same text. :func:`find` asks it once
where the ``key = value`` statements of one key are — at the top level and directly under
each ``[table]`` / ``[[array of tables]]`` header — and where a new top-level statement
belongs, as character offsets into the text. Callers splice the text at those offsets
themselves: bytes elsewhere are never re-rendered, and the result does not depend on how a
tomlkit version lays out items it adds.

How the offsets are read: tomlkit renders a statement as ``indent`` + key + separator +
value + ``comment_ws`` + ``comment`` + ``trail`` (its ``Trivia``). Each item of interest
gets a marker ``"\0<n><kind>\0"`` (NUL cannot occur in valid TOML) added to its trivia,
the document is rendered once, the markers are read off, and the trivia is restored. The
rendering without the markers must equal the text, else :class:`LayoutError`.

Statements written with dotted keys (``tui.notify = …``) and keys inside inline tables are
not reported: they are not a ``key`` statement of any table header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import AoT, Comment, Item, Key, Table, Trivia, Whitespace

_MARK = re.compile("\x00([0-9]+)([set])\x00")


class LayoutError(ValueError):
    """tomlkit cannot read the text, or cannot show where its statements are.

    Attributes:
        line: 1-based line of the problem, or None when not known.
        reason: what went wrong, for people.
    """

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(reason if line is None else f"line {line}: {reason}")


@dataclass(frozen=True)
class Statement:
    """One ``key = value`` statement of the key :func:`find` looked for.

    Attributes:
        header: ``""`` at the top level, else the header of its table as written by
            tomlkit's key path, e.g. ``"[tui]"``, ``'[projects."/home/u/p"]'``, ``"[[profiles]]"``.
        value: its value as plain Python (``str``, ``int``, ``list``, ``dict``, ``datetime``…).
        start: offset of its first character: its line's start, indentation included.
        end: offset just past it, past its comment and newline (the text's end when it has
            no final newline); ``text[start:end]`` is whole lines.
        line: 1-based line of ``start``.
        indent: the whitespace before the key on its first line.
        tail: what follows the value on its last line: spaces, the comment, the newline.
    """

    header: str
    value: Any
    start: int
    end: int
    line: int
    indent: str
    tail: str


@dataclass(frozen=True)
class Layout:
    """The statements of one key in a TOML text, and where a new top-level one goes.

    Attributes:
        statements: in text order.
        insert_at: offset of the start of a line (or the text's end) after the last
            top-level statement and before the comments directly above the first table
            header and the blank lines before them.
        insert_gap: True when a comment or table header starts right at ``insert_at``, so
            a blank line should follow a statement inserted there.
    """

    statements: tuple[Statement, ...]
    insert_at: int
    insert_gap: bool


def _is_plain(key: Key | None) -> bool:
    return key is not None and not key.is_dotted()


def _opening(item: Item) -> Trivia | None:
    """The trivia rendered first for a table or array of tables (its first header's)."""
    if isinstance(item, AoT):
        return _opening(item.body[0]) if item.body else None
    if isinstance(item, Table):
        if not item.is_super_table():
            return item.trivia
        for key, child in item.value.body:  # a super table renders only its sub-tables
            if _is_plain(key) and isinstance(child, (Table, AoT)):
                return _opening(child)
            if not isinstance(child, Whitespace):
                return None
    return None


def _collect(key: Key | None, item: Item, path: tuple[str, ...], name: str,
             found: list[tuple[str, Item]]) -> None:
    """Add the ``name`` statements under the table(s) ``item`` (at ``path``) to ``found``."""
    if key is None or key.is_dotted():
        return
    here = (*path, key.as_string().strip())
    if isinstance(item, AoT):
        for table in item.body:
            _in_table(table, here, "[[" + ".".join(here) + "]]", name, found)
    elif isinstance(item, Table):
        _in_table(item, here, "[" + ".".join(here) + "]", name, found)


def _in_table(table: Table, path: tuple[str, ...], header: str, name: str, found: list[tuple[str, Item]]) -> None:
    for key, child in table.value.body:
        if _is_plain(key) and key is not None and key.key == name and not isinstance(child, (Table, AoT)):
            found.append((header, child))
        else:
            _collect(key, child, path, name, found)


def find(text: str, name: str) -> Layout:
    """Find the statements ``name = …`` in ``text`` and where a new top-level one goes.

    Args:
        text: a TOML document (valid TOML 1.0; ``""`` is an empty document).
        name: the bare key to look for, e.g. ``"notify"`` (quoted spellings match too).

    Returns:
        The layout: offsets into ``text``.

    Raises:
        LayoutError: tomlkit cannot parse ``text`` (with its line), or does not render it
            back byte for byte, or the markers cannot be read off.
    """
    try:
        doc = tomlkit.parse(text)
    except ParseError as e:
        raise LayoutError(f"tomlkit cannot read it: {e}", e.line) from None
    body = doc.body
    found: list[tuple[str, Item]] = [("", item) for key, item in body if _is_plain(key) and key is not None
                                     and key.key == name and not isinstance(item, (Table, AoT))]
    for key, item in body:
        _collect(key, item, (), name, found)
    first = next((i for i, (key, item) in enumerate(body) if _is_plain(key) and isinstance(item, (Table, AoT))),
                 None)
    opening = _opening(body[first][1]) if first is not None else None
    if first is not None and opening is None:
        raise LayoutError("tomlkit does not show where the first table starts")

    saved = [(item.trivia.indent, item.trivia.comment) for _, item in found]
    opening_indent = opening.indent if opening is not None else ""
    try:
        for n, (_, item) in enumerate(found):
            item.trivia.indent = f"\x00{n}s\x00" + item.trivia.indent
            item.trivia.comment = item.trivia.comment + f"\x00{n}e\x00"
        if opening is not None:
            opening.indent = f"\x00{len(found)}t\x00" + opening_indent
        rendered = doc.as_string()
    finally:
        for (indent, comment), (_, item) in zip(saved, found, strict=True):
            item.trivia.indent, item.trivia.comment = indent, comment
        if opening is not None:
            opening.indent = opening_indent

    at: dict[tuple[int, str], int] = {}
    shift = 0
    for m in _MARK.finditer(rendered):
        at[int(m.group(1)), m.group(2)] = m.start() - shift
        shift += len(m.group(0))
    expected = 2 * len(found) + (opening is not None)
    if len(at) != expected or _MARK.sub("", rendered) != text:
        raise LayoutError("tomlkit does not write this file back unchanged")

    statements = []
    for n, (header, item) in enumerate(found):
        trivia = item.trivia
        start, end = at[n, "s"], at[n, "e"] + len(trivia.trail)
        statements.append(Statement(header, item.unwrap(), start, end, text.count("\n", 0, start) + 1,
                                    trivia.indent, trivia.comment_ws + trivia.comment + trivia.trail))

    # A new top-level statement goes before the first header, the comments right above it
    # (they belong to it) and the blank lines before those.
    idx = len(body) if first is None else first
    offset = len(text) if first is None else at[len(found), "t"]
    if first is not None and "\n" not in opening_indent:
        while idx > 0 and isinstance(body[idx - 1][1], Comment):
            idx -= 1
            offset -= len(body[idx][1].as_string())
    while idx > 0 and isinstance(body[idx - 1][1], Whitespace):
        idx -= 1
        offset -= len(body[idx][1].as_string())
    gap = idx < len(body) and not isinstance(body[idx][1], Whitespace) and not (
        idx == first and "\n" in opening_indent)
    return Layout(tuple(sorted(statements, key=lambda s: s.start)), offset, gap)
