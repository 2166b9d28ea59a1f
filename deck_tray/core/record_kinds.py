r"""What each record of a Claude Code transcript or a Codex rollout *is*: one classification
that the tab parsers (:mod:`deck_tray.core.claude`, :mod:`deck_tray.core.codex`) and the history
extractors (:mod:`deck_tray.core.history`) share, so the conversation a tab shows and the entries
search finds never disagree (issue #16 item 2).

A record becomes zero or more :class:`Item`\ s, each of one :class:`Kind`:

=============  ==========================================================================
kind           Claude Code (``projects/*/<id>.jsonl``)      Codex (``rollout-*.jsonl``)
=============  ==========================================================================
user           ``user`` record, string or ``text`` block     ``response_item`` message role
               the user typed                                user / ``event_msg`` user_message
command        ``<command-name>/x</command-name>`` with      —
               ``<command-args>``
harness        ``<task-notification>``, ``<ide_opened_file>``,  ``<environment_context>``,
               ``<bash-input>``/``<bash-stdout>``,           ``<user_instructions>``, AGENTS.md,
               ``<local-command-stdout>``, ``isMeta``,       role ``developer`` …
               ``<system-reminder>``, interrupt markers
compaction     ``isCompactSummary: true``                   ``compacted`` record
assistant      ``text`` block of an ``assistant`` record     message role assistant /
                                                             ``event_msg`` agent_message
thinking       ``thinking`` / ``redacted_thinking`` block    ``reasoning`` item (summary or
                                                             content text), ``agent_reasoning``
tool           ``tool_use`` block                            ``function_call``,
                                                             ``custom_tool_call``,
                                                             ``local_shell_call``,
                                                             ``web_search_call``
tool_result    ``tool_result`` block                         ``function_call_output``,
                                                             ``custom_tool_call_output``
image          ``image`` block in a ``user`` record          ``input_image`` content
error          ``system`` record ``subtype: api_error``      ``event_msg`` error
=============  ==========================================================================

Shapes were captured from Claude Code 2.1.197 / 2.1.332 and Codex 0.169.0 / 0.171.0 (see
``tests/fixtures/``) and read in the public corpus of older versions (``tests/fixtures/public/``:
Claude Code 1.0.x–2.1.x, Codex before 0.47 to 0.128). Unknown record and block types give no item.
"""

from __future__ import annotations

import collections
import enum
import json
import re
from dataclasses import dataclass
from typing import Any


class Kind(enum.Enum):
    """What a conversation item is; the value is its JSON / CLI / index spelling."""

    USER = "user"
    COMMAND = "command"
    HARNESS = "harness"
    COMPACTION = "compaction"
    ASSISTANT = "assistant"
    THINKING = "thinking"
    TOOL = "tool"
    TOOL_RESULT = "tool_result"
    IMAGE = "image"
    ERROR = "error"


@dataclass(frozen=True)
class Item:
    """One classified piece of a record.

    Attributes:
        kind: what it is.
        text: its text: the prompt, the answer, ``/command args``, the harness text without
            its tags, the reasoning, the tool's result; ``""`` for a tool call (see ``tool`` and
            ``data``) and for an image (see ``label``).
        key: tool-call id (``tool_use.id`` / ``call_id``) for tools and their results; the API
            message id for Claude assistant text (blocks of one message share it); else ``""``.
        label: for a tool call its name; for harness text what injected it (``"task
            notification"``, ``"IDE"``, ``"shell command"``, ``"shell output"``, ``"command
            output"``, ``"reminder"``, ``"caveat"``, ``"expanded command"``, ``"interrupt"``,
            ``"environment"``, ``"instructions"``); for an image its media type.
        data: for a tool call its input (a dict); else None.
        error: a tool result that failed (``is_error``), or was rejected / aborted.
    """

    kind: Kind
    text: str = ""
    key: str = ""
    label: str = ""
    data: Any = None
    error: bool = False


# -- Claude Code -------------------------------------------------------------------------------

_TAG_RE = re.compile(r"<([a-z][a-z0-9_-]*)>(.*?)</\1>", re.S)
#: Harness tags that wrap a whole text in a ``user`` record, and what a tab calls them.
CLAUDE_HARNESS_TAGS = {
    "task-notification": "task notification",
    "ide_opened_file": "IDE",
    "ide_selection": "IDE",
    "ide_diagnostics": "IDE",
    "bash-input": "shell command",
    "bash-stdout": "shell output",
    "bash-stderr": "shell output",
    "local-command-stdout": "command output",
    "local-command-stderr": "command output",
    "local-command-caveat": "caveat",
    "system-reminder": "reminder",
    "user-memory-input": "memory",
}
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CAVEAT = "Caveat: The messages below were generated by the user while running local commands"


def _claude_texts(text: str) -> list[Item]:
    """Classify one text the user side of a Claude transcript holds (a string ``content`` or a
    ``text`` block): harness elements (:data:`CLAUDE_HARNESS_TAGS`) become harness items and what
    the user typed around them (an IDE's ``<ide_opened_file>`` before a prompt) a ``user`` item."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("[Request interrupted"):
        return [Item(Kind.HARNESS, stripped, label="interrupt")]
    if stripped.startswith(_CAVEAT):
        return [Item(Kind.HARNESS, stripped, label="caveat")]
    if "<command-name>" in stripped:
        tags = dict((t, v.strip()) for t, v in _TAG_RE.findall(stripped))
        name = tags.get("command-name", "")
        args = tags.get("command-args", "")
        if name and not name.startswith("/"):
            name = "/" + name
        return [Item(Kind.COMMAND, f"{name} {args}".strip(), label=name)]
    out: list[Item] = []
    if "<" in stripped:
        rest = stripped
        for m in _TAG_RE.finditer(stripped):
            label = CLAUDE_HARNESS_TAGS.get(m.group(1))
            if label is None:
                continue
            inner = _ANSI_RE.sub("", m.group(2)).strip()
            out.append(Item(Kind.HARNESS, inner, label=label))
            rest = rest.replace(m.group(0), "", 1)
        if out:
            if rest.strip():
                out.append(Item(Kind.USER, unwrap_pastes(rest.strip())))
            return out
        m2 = re.match(r"<([a-z][a-z0-9_-]*)>", stripped)
        if m2 and m2.group(1) in CLAUDE_HARNESS_TAGS:  # an open tag whose close was cut off
            return [Item(Kind.HARNESS, stripped[m2.end():].strip(), label=CLAUDE_HARNESS_TAGS[m2.group(1)])]
    return [Item(Kind.USER, unwrap_pastes(text))]


def _meta(item: Item) -> Item:
    """An item of an ``isMeta`` record: text Claude Code expanded (a command's or skill's body)."""
    return Item(Kind.HARNESS, item.text.strip(), label="expanded command") if item.kind is Kind.USER else item


#: Claude Code 2.1.332 sends a paste it showed as ``[Pasted text #1 +149 lines]`` (one over 800
#: characters or 2 lines) wrapped: ``\n\n<pasted_content id="3c66">\nTEXT\n</pasted_content
#: id="3c66">\n`` when the prompt holds nothing else (seen with a 10 KB prompt pasted through tmux;
#: its transcript's user message and the request to the model both carry it). 2.1.197 sends TEXT.
_PASTE_WRAP = re.compile(r'\n{0,2}<pasted_content id="([0-9a-f]{4})">\n(.*?)\n</pasted_content id="\1">\n?', re.S)


def unwrap_pastes(text: str) -> str:
    """``text`` with Claude Code's ``<pasted_content>`` wrappers (see :data:`_PASTE_WRAP`) replaced
    by the pasted text itself: what the user sent, to compare with what deck-tray typed."""
    return _PASTE_WRAP.sub(lambda m: m.group(2), text) if "<pasted_content id=" in text else text


def tool_result_text(content: Any) -> str:
    """Text of a Claude ``tool_result`` ``content``: a string, or its ``text`` blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(c.get("text")) for c in content if isinstance(c, dict) and c.get("type") == "text")
    return ""


def _api_error_text(rec: dict[str, Any]) -> str:
    err = rec.get("error")
    msg = ""
    if isinstance(err, dict):
        inner = err.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("error"), dict):
            inner = inner["error"]
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            msg = inner["message"]
        elif isinstance(err.get("message"), str):
            msg = err["message"]
        status = err.get("status")
        if status and msg:
            msg = f"{status} {msg}"
    elif isinstance(err, str):
        msg = err
    if not msg and isinstance(rec.get("content"), str):
        msg = rec["content"]
    attempt = rec.get("retryAttempt")
    tail = f" (retry {attempt})" if isinstance(attempt, int) and attempt else ""
    return f"API error: {msg or 'no details'}{tail}"


def claude_items(rec: dict[str, Any]) -> list[Item]:
    """The items of one Claude Code transcript record (see the module table).

    Args:
        rec: one JSON record of ``projects/<encoded cwd>/<session id>.jsonl`` (or of a
            sub-agent's ``agent-<id>.jsonl``).

    Returns:
        Items in block order; ``[]`` for metadata records (titles, snapshots, modes, …).
    """
    rtype = rec.get("type")
    if rtype == "user":
        msg = rec.get("message")
        if not isinstance(msg, dict):
            return []
        content = msg.get("content")
        if rec.get("isCompactSummary"):
            text = content if isinstance(content, str) else tool_result_text(content)
            return [Item(Kind.COMPACTION, text.strip())] if text.strip() else []
        meta = bool(rec.get("isMeta"))
        if isinstance(content, str):
            return [_meta(item) if meta else item for item in _claude_texts(content)]
        out: list[Item] = []
        if not isinstance(content, list):
            return out
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "tool_result":
                out.append(Item(Kind.TOOL_RESULT, tool_result_text(block.get("content")),
                                key=str(block.get("tool_use_id") or ""), error=bool(block.get("is_error"))))
            elif btype == "text":
                out += [_meta(item) if meta else item for item in _claude_texts(str(block.get("text") or ""))]
            elif btype == "image":
                src = block.get("source")
                media = str(src.get("media_type") or "") if isinstance(src, dict) else ""
                out.append(Item(Kind.IMAGE, label=media or "image"))
        return out
    if rtype == "assistant":
        msg = rec.get("message")
        content = msg.get("content") if isinstance(msg, dict) else None
        mid = str(msg.get("id") or "") if isinstance(msg, dict) else ""
        out = []
        if not isinstance(content, list):
            return out
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text":
                text = str(block.get("text") or "")
                if text.strip():
                    out.append(Item(Kind.ASSISTANT, text, key=mid))
            elif btype == "thinking":
                text = str(block.get("thinking") or "")
                if text.strip():
                    out.append(Item(Kind.THINKING, text, key=mid))
            elif btype == "redacted_thinking":
                out.append(Item(Kind.THINKING, "(redacted thinking)", key=mid))
            elif btype == "tool_use":
                inp = block.get("input")
                out.append(Item(Kind.TOOL, key=str(block.get("id") or ""), label=str(block.get("name") or "tool"),
                                data=inp if isinstance(inp, dict) else {}))
        return out
    if rtype == "system" and rec.get("subtype") == "local_command" and isinstance(rec.get("content"), str):
        # 2.1.x writes some local slash commands (and their output) as system records
        return [item for item in _claude_texts(rec["content"]) if item.kind in (Kind.COMMAND, Kind.HARNESS)]
    if rtype == "system" and (rec.get("subtype") == "api_error"
                              or (rec.get("level") == "error" and rec.get("subtype") in (None, "", "error"))):
        return [Item(Kind.ERROR, _api_error_text(rec))]
    return []


class ClaudeQueue:
    """Prompts typed while Claude Code was busy (``{"type": "queue-operation", "operation":
    "enqueue", "content": TEXT}``, 2.1.x; seen in the public corpus and in resumes). The prompt is
    the user's from the moment it is queued — the only record of it when the session ends before it
    is sent — so it counts there, and the ``user`` record Claude writes when it sends the prompt
    later is the same prompt, not a second one.

    Attributes:
        waiting: the normalised texts queued and not yet seen as a ``user``/``command`` item.
    """

    LIMIT = 32

    def __init__(self, waiting: list[str] | None = None) -> None:
        self.waiting: list[str] = list(waiting or [])

    def queued(self, rec: dict[str, Any]) -> list[Item]:
        """The items of a ``queue-operation`` ``enqueue`` record (``[]`` for any other record)."""
        if rec.get("type") != "queue-operation" or rec.get("operation") != "enqueue":
            return []
        content = rec.get("content")
        if not isinstance(content, str):
            return []
        if content.strip().startswith("/") and "<" not in content:  # a slash command typed while busy
            name = content.strip().split()[0]
            items = [Item(Kind.COMMAND, content.strip(), label=name)]
        else:
            items = [i for i in _claude_texts(content) if i.kind in (Kind.USER, Kind.COMMAND)]
        for item in items:
            self.waiting = [*self.waiting, _norm(item.text)][-self.LIMIT:]
        return items

    def already(self, item: Item) -> bool:
        """Whether ``item`` (from a ``user`` record) is a queued prompt now sent: counted already."""
        if item.kind not in (Kind.USER, Kind.COMMAND) or not self.waiting:
            return False
        norm = _norm(item.text)
        if norm in self.waiting:
            self.waiting.remove(norm)
            return True
        return False


# -- Codex -------------------------------------------------------------------------------------

#: Prefixes of user-role texts the Codex harness writes (context, not typed prompts), and what a
#: tab calls them (captured from codex-cli 0.169.0 / 0.171.0; older rollouts in the corpus).
CODEX_HARNESS_PREFIXES = {
    "<environment_context>": "environment",
    "<turn_aborted>": "interrupt",
    "<user_instructions>": "instructions",
    "<INSTRUCTIONS>": "instructions",
    "<permissions instructions>": "instructions",
    "# AGENTS.md instructions": "instructions",
    "<skills_instructions>": "instructions",
    "<collaboration_mode>": "instructions",
    "<user_shell_command>": "shell command",
    "<user_action>": "user action",
    "<subagent_notification>": "task notification",
}
#: How the Codex IDE extension wraps a prompt: the request follows this heading.
CODEX_IDE_REQUEST = "## My request for Codex:"
CODEX_IDE_WRAPPERS = ("# Context from my IDE setup:", "# Files mentioned by the user:")


def codex_prompt_of(text: str) -> str:
    """The part of a Codex user text the user typed: the text after the IDE extension's
    ``## My request for Codex:`` heading when the text is its wrapper, else the text."""
    stripped = text.lstrip()
    if stripped.startswith(CODEX_IDE_WRAPPERS):
        i = stripped.find(CODEX_IDE_REQUEST)
        return stripped[i + len(CODEX_IDE_REQUEST):].strip() if i >= 0 else ""
    return text


def _codex_user_text(text: str) -> Item | None:
    stripped = text.lstrip()
    if not stripped.strip():
        return None
    for prefix, label in CODEX_HARNESS_PREFIXES.items():
        if stripped.startswith(prefix):
            return Item(Kind.HARNESS, text.strip(), label=label)
    return Item(Kind.USER, text)


def codex_content_text(content: Any) -> str:
    """Text of a Codex message ``content``: a string, or the ``text`` of each item of a list
    (``input_text`` / ``output_text``), joined with newlines; ``""`` otherwise."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    if isinstance(content, list):
        for c in content:
            if isinstance(c, dict) and isinstance(c.get("text"), str):
                parts.append(c["text"])
    return "\n".join(parts)


def codex_arguments(raw: Any) -> dict[str, Any]:
    """A function_call's ``arguments`` (a JSON string, sometimes an object) as a dict."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            val = json.loads(raw)
        except ValueError:
            return {"raw": raw}
        return val if isinstance(val, dict) else {"raw": raw}
    return {}


def _reasoning_text(p: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("summary", "content"):
        val = p.get(key)
        if isinstance(val, list):
            parts += [str(c.get("text")) for c in val if isinstance(c, dict) and isinstance(c.get("text"), str)]
        elif isinstance(val, str):
            parts.append(val)
    return "\n\n".join(t for t in parts if t.strip())


def _norm(text: str) -> str:
    return " ".join(text.split())[:400]


class CodexItems:
    """Classifies the records of one Codex rollout in file order (stateful: Codex writes the
    same prompt, answer and reasoning twice — as a ``response_item`` and as an ``event_msg`` —
    and each must count once).

    Two copies are recognised by their text among the last few items of the same kind that
    came from the *other* record family, in either order (0.169 writes the response item
    first, some older versions the event first). The oldest rollouts (no ``session_meta``)
    hold bare items without the ``{"timestamp","type","payload"}`` envelope.

    Attributes:
        recent: the recent texts per ``"<kind>:<family>"`` (restorable with :meth:`load`).
    """

    WINDOW = 6

    def __init__(self) -> None:
        self.recent: dict[str, collections.deque[str]] = {}

    def dump(self) -> dict[str, list[str]]:
        """The dedup state as JSON-able lists (stored between index batches)."""
        return {k: list(v) for k, v in self.recent.items()}

    def load(self, raw: Any) -> None:
        """Restore :meth:`dump` output (bad input ignored)."""
        if isinstance(raw, dict):
            for k, v in raw.items():
                if isinstance(v, list):
                    self.recent[str(k)] = collections.deque((str(t) for t in v), maxlen=self.WINDOW)

    def _once(self, item: Item | None, family: str) -> list[Item]:
        """``[item]`` unless the other family just gave the same text (then ``[]``)."""
        if item is None:
            return []
        if item.kind not in (Kind.USER, Kind.ASSISTANT, Kind.THINKING, Kind.HARNESS):
            return [item]
        norm = _norm(item.text)
        other = self.recent.get(f"{item.kind.value}:{'event' if family == 'item' else 'item'}")
        if other is not None and norm in other:
            other.remove(norm)
            return []
        self.recent.setdefault(f"{item.kind.value}:{family}", collections.deque(maxlen=self.WINDOW)).append(norm)
        return [item]

    def feed(self, rec: dict[str, Any]) -> list[Item]:
        """The items of one rollout record (see the module table); ``[]`` for metadata."""
        rtype = rec.get("type")
        payload = rec.get("payload")
        if not isinstance(payload, dict):
            if isinstance(rtype, str) and rtype not in ("session_meta", "event_msg", "turn_context", "compacted"):
                return self.item(rec)  # the oldest shape: bare items
            return []
        if rtype == "response_item":
            return self.item(payload)
        if rtype == "event_msg":
            return self._event(payload)
        if rtype == "compacted":
            text = str(payload.get("message") or "")
            return [Item(Kind.COMPACTION, text.strip() or "(conversation compacted)")]
        return []

    def _event(self, p: dict[str, Any]) -> list[Item]:
        ptype = p.get("type")
        if ptype == "user_message":
            return self._once(_codex_user_text(str(p.get("message") or "")), "event")
        if ptype == "agent_message":
            text = str(p.get("message") or "")
            return self._once(Item(Kind.ASSISTANT, text) if text.strip() else None, "event")
        if ptype in ("agent_reasoning", "agent_reasoning_raw_content"):
            text = str(p.get("text") or "")
            return self._once(Item(Kind.THINKING, text) if text.strip() else None, "event")
        if ptype in ("error", "stream_error"):
            return [Item(Kind.ERROR, str(p.get("message") or "error"))]
        return []

    def item(self, p: dict[str, Any]) -> list[Item]:
        """The items of one ``response_item`` payload (or a bare item of the oldest shape)."""
        ptype = p.get("type")
        if ptype == "message":
            role = p.get("role")
            content = p.get("content")
            text = codex_content_text(content)
            out: list[Item] = []
            if role == "user":
                out += self._once(_codex_user_text(text), "item")
                if isinstance(content, list):
                    out += [Item(Kind.IMAGE, label="image") for c in content
                            if isinstance(c, dict) and c.get("type") == "input_image"]
            elif role in ("developer", "system"):
                if text.strip():
                    out.append(Item(Kind.HARNESS, text.strip(), label="instructions"))
            elif role == "assistant":
                out += self._once(Item(Kind.ASSISTANT, text) if text.strip() else None, "item")
            return out
        if ptype == "reasoning":
            text = _reasoning_text(p)
            return self._once(Item(Kind.THINKING, text) if text.strip() else None, "item")
        if ptype in ("function_call", "custom_tool_call", "local_shell_call"):
            call_id = str(p.get("call_id") or p.get("id") or "")
            name = str(p.get("name") or ptype)
            args = codex_arguments(p.get("arguments", p.get("input", p.get("action"))))
            return [Item(Kind.TOOL, key=call_id, label=name, data=args)]
        if ptype == "web_search_call":
            action = p.get("action")
            args = dict(action) if isinstance(action, dict) else {}
            return [Item(Kind.TOOL, key=str(p.get("id") or p.get("call_id") or ""), label="web_search", data=args)]
        if ptype in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            out_raw = p.get("output")
            if isinstance(out_raw, dict):
                out_raw = out_raw.get("content", out_raw.get("output"))
            text = out_raw if isinstance(out_raw, str) else tool_result_text(out_raw)
            if not isinstance(out_raw, (str, list)) and out_raw is not None:
                text = json.dumps(out_raw)[:500]
            return [Item(Kind.TOOL_RESULT, text, key=str(p.get("call_id") or ""),
                         error="aborted by user" in text)]
        return []
