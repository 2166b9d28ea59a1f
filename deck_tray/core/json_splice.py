"""Edit a JSON text so that it holds a new value, keeping the bytes of every unchanged part.

Used for the user's own settings files (Claude Code's ``settings.json``, Codex's
``hooks.json``): a change writes only the members and items that differ, in the
indentation around them, so the user's formatting, key order and compact one-line
objects stay exactly as they were. The text follows RFC 8259 JSON; anything the splice
cannot reproduce exactly (e.g. duplicate keys) falls back to re-rendering the whole
value with the file's indentation — the result always parses to the new value.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


def detect_indent(text: str | None) -> int | str:
    r"""The indentation of a JSON text (spaces count, or ``"\t"``); 2 when not known."""
    for line in (text or "").splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and stripped != line:
            lead = line[: len(line) - len(stripped)]
            return "\t" if lead.startswith("\t") else len(lead)
    return 2


def dump_json(data: Json, indent: int | str = 2) -> str:
    """``data`` as JSON text with ``indent``, non-ASCII kept, and a final newline."""
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


@dataclass
class _Node:
    """A JSON value's place in its text: ``[start, end)``, and its members or items."""

    start: int
    end: int
    members: list[tuple[str, int, int, _Node]] | None = None  # (key, key start, key end, value)
    items: list[_Node] | None = None


_WS = " \t\r\n"


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _string_end(text: str, i: int) -> int:
    """End of the JSON string starting at ``text[i] == '"'``."""
    i += 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _scan(text: str, i: int) -> _Node:
    """Spans of the (valid) JSON value starting at ``i``."""
    c = text[i]
    if c == "{":
        node = _Node(i, i, members=[])
        j = _skip_ws(text, i + 1)
        while text[j] != "}":
            k_end = _string_end(text, j)
            key = json.loads(text[j:k_end])
            value = _scan(text, _skip_ws(text, _skip_ws(text, k_end) + 1))
            assert node.members is not None
            node.members.append((key, j, k_end, value))
            j = _skip_ws(text, value.end)
            if text[j] == ",":
                j = _skip_ws(text, j + 1)
        node.end = j + 1
        return node
    if c == "[":
        node = _Node(i, i, items=[])
        j = _skip_ws(text, i + 1)
        while text[j] != "]":
            item = _scan(text, j)
            assert node.items is not None
            node.items.append(item)
            j = _skip_ws(text, item.end)
            if text[j] == ",":
                j = _skip_ws(text, j + 1)
        node.end = j + 1
        return node
    if c == '"':
        return _Node(i, _string_end(text, i))
    j = i
    while j < len(text) and text[j] not in _WS + ",]}":
        j += 1
    return _Node(i, j)


def _render(value: Any, multiline: bool, indent: int | str, at: str) -> str:
    """``value`` as JSON for a place whose line starts with ``at``: indented, or compact."""
    if not multiline:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, indent=indent, ensure_ascii=False).replace("\n", "\n" + at)


def _splice(text: str, node: _Node, old: Any, new: Any, indent: int | str) -> str:
    """The text of ``new``, reusing ``text``'s bytes for every part equal to ``old``.

    Unchanged members and items keep their exact formatting; changed ones are rendered in
    the style around them (indented when their container spans lines, else compact).
    """
    raw = text[node.start:node.end]
    if old == new and type(old) is type(new):
        return raw
    if isinstance(old, dict) and isinstance(new, dict) and node.members:
        keys = [m[0] for m in node.members]
        if len(set(keys)) != len(keys):
            return _render(new, True, indent, "")  # duplicate keys: no safe splice
        first_v = node.members[0][3]
        prefix = text[node.start:node.members[0][1]]
        suffix = text[node.members[-1][3].end:node.end]
        colon = text[node.members[0][2]:first_v.start]
        at = prefix[prefix.rfind("\n") + 1:] if "\n" in prefix else ""
        by_key = {m[0]: m for m in node.members}
        # The separator the user wrote between two members that stay neighbours is kept.
        seps = {(a[0], b[0]): text[a[3].end:b[1]] for a, b in zip(node.members, node.members[1:], strict=False)}
        # Elsewhere the separator the user wrote most often (the first on a tie).
        sep = (Counter(seps.values()).most_common(1)[0][0] if seps
               else "," + (prefix[1:] if "\n" in prefix else " "))
        out = prefix
        previous: str | None = None
        for key, value in new.items():
            if previous is not None:
                out += seps.get((previous, key), sep)
            if key in by_key:
                _, k0, k1, vnode = by_key[key]
                out += text[k0:vnode.start] + _splice(text, vnode, old[key], value, indent)
            else:
                out += json.dumps(key, ensure_ascii=False) + colon + _render(value, "\n" in prefix, indent, at)
            previous = key
        if previous is None:
            return "{}"
        return out + suffix
    if isinstance(old, list) and isinstance(new, list) and node.items:
        prefix = text[node.start:node.items[0].start]
        suffix = text[node.items[-1].end:node.end]
        sep = (text[node.items[0].end:node.items[1].start] if len(node.items) > 1
               else "," + (prefix[1:] if "\n" in prefix else " "))
        at = prefix[prefix.rfind("\n") + 1:] if "\n" in prefix else ""
        canon = [json.dumps(v, sort_keys=True) for v in old], [json.dumps(v, sort_keys=True) for v in new]
        chunks = []
        for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, *canon, autojunk=False).get_opcodes():
            if op == "equal" or (op == "replace" and a1 - a0 == b1 - b0):
                chunks += [_splice(text, node.items[a0 + k], old[a0 + k], new[b0 + k], indent) for k in range(b1 - b0)]
            else:
                chunks += [_render(v, "\n" in prefix, indent, at) for v in new[b0:b1]]
        if not chunks:
            return "[]"
        return prefix + sep.join(chunks) + suffix
    # A scalar, a changed type, or an empty container: render it where it stands.
    line_start = text.rfind("\n", 0, node.start) + 1
    lead = text[line_start:node.start]
    at = lead[: len(lead) - len(lead.lstrip(" \t"))]
    return _render(new, True, indent, at)


def edit_json(text: str | None, old: Json, new: Json) -> str:
    """``new`` as the text of a file that held ``old`` as ``text``, changing as little as possible.

    Only the parts of ``new`` that differ from ``old`` are written anew (in the file's
    indentation, :func:`detect_indent`); everything else keeps its exact bytes.

    Args:
        text: the file's JSON text (None or blank: no file yet); it must parse to ``old``.
        old: ``text`` parsed.
        new: the value to write.

    Returns:
        JSON text that parses to ``new``, with a final newline when written whole.
    """
    indent = detect_indent(text)
    if text is None or not text.strip():
        return dump_json(new, indent)
    start = _skip_ws(text, 0)
    try:
        root = _scan(text, start)
        out = text[:start] + _splice(text, root, old, new, indent) + text[root.end:]
        if json.loads(out) == new:
            return out
    except (IndexError, ValueError, AssertionError):
        pass
    return dump_json(new, indent)
