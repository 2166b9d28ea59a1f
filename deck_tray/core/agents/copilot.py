"""GitHub Copilot CLI (``@github/copilot``, verified with 1.0.102): the adapter.

Files (``HOME`` = ``$COPILOT_HOME``, default ``~/.copilot``), as a real offline run of 1.0.102
left them (``docs/agents/copilot-cli.md``):

* ``HOME/session-state/<session id>/events.jsonl`` — the transcript, created at the **first
  prompt** (not at start), appended and closed (not held open). Records ``{type, data, id,
  timestamp, parentId}`` with ``type`` ``session.start`` (``data.sessionId``, ``startTime``,
  ``context.cwd``), ``user.message`` (``content``), ``assistant.turn_start``,
  ``assistant.message`` (``content``, ``toolRequests[]``), ``tool.execution_start``
  (``toolCallId``, ``toolName``, ``arguments``), ``permission.requested`` (``requestId``,
  ``permissionRequest {kind, fullCommandText, intention, …}``, ``promptRequest``),
  ``permission.completed`` (``requestId``, ``result.kind``), ``human_response.recorded``,
  ``tool.execution_complete`` (``success``), ``assistant.turn_end``, ``abort`` (Esc),
  ``session.shutdown`` (``/exit``); ``hook.*``, ``session.usage_record``, ``system.message`` …
  in between. Records with ``agentId`` come from a sub-agent (schema, not run).
* ``HOME/session-state/<id>/workspace.yaml`` — ``id``, ``cwd``, ``name`` (the first prompt, or
  the user's name for the session when ``user_named: true``), plain ``key: value`` lines;
* ``HOME/session-state/<id>/inuse.<pid>.lock`` — the text ``<pid>``: the native process that
  has the session open (removed on a clean exit). That pid is the innermost one: ``copilot``
  on ``PATH`` is a ``node`` launcher (``npm-loader.js``) starting the native
  ``@github/copilot-linux-x64/copilot``, whose ``psutil`` ``name()`` is ``MainThread``;
* ``HOME/open-sessions-state.json`` — ``{id: {working: bool, …}}``, shared by every process
  of that home; not read (``events.jsonl`` tells more: permission, question, idle).

States from ``events.jsonl``: a ``permission.requested`` not followed by its
``permission.completed`` → waiting for permission (the dialog is up; it is the last line while
it is); a ``tool.execution_start`` of ``ask_user`` not yet completed → waiting for an answer;
an ``assistant.turn_end`` after an ``assistant.message`` without ``toolRequests``, or an
``abort`` → idle; anything else after a prompt → busy. The pane title does not change with the
state (``<name> - GitHub Copilot``): :attr:`CopilotAdapter.title_rules` is False.

Screens (``tests/fixtures/screens/copilot-cli-1.0.102-*.txt``): the permission dialog
``Do you want to run this command?`` with ``❯ 1. Yes`` / ``2. Yes, and don't ask again for
`touch` in this directory (<cwd>)`` / ``3. No, and tell Copilot what to do differently (Esc to
stop)`` and the footer ``↑/↓ to navigate · enter to select · esc to cancel`` (a digit acts at
once; Esc cancels the whole turn); the folder-trust dialog (``Do you trust the files in this
folder?``, same footer); the ``ask_user`` form ``Copilot needs information.`` with rows
without numbers (``❯ Red`` / ``Blue`` / ``Other (type your answer)``, answered with the arrow
keys and Enter; the arrows onto ``Other`` open a box for a typed answer, :data:`FREE_TEXT_LABEL`)
and ``↑/↓ select · enter accept · ctrl+d decline · esc cancel``; busy: the
footer ``◉ Working · 26 B esc esc interrupt``; idle: the input line ``❯`` between two rules.

Hooks (``docs/agents/copilot-cli.md``, ``tests/fixtures/copilot-cli-1.0.102-hooks.jsonl``): every
``HOME/hooks/*.json`` is loaded at start, no trust prompt: ``{"version": 1, "hooks": {event:
[{"type": "command", "bash": CMD, "timeoutSec": N}]}}``. deck-tray owns ``HOME/hooks/deck-tray.json``
(:data:`HOOK_FILE`; the user's own files there are never touched) with :data:`HOOK_EVENTS`.
Payloads (stdin) are camelCase and mostly do **not** name their event, so each event's command
names it: ``EXE hook copilot-cli <event>``. All have ``sessionId`` (= the session folder),
``timestamp`` (ms) and ``cwd``; plus ``source: "new"``, ``initialPrompt`` (``sessionStart``,
fired at the first prompt, not at launch), ``prompt`` (``userPromptSubmitted``), ``hookName:
"permissionRequest"``, ``toolName``, ``toolInput``, ``permissionSuggestions``
(``permissionRequest``), ``hook_event_name: "Notification"``, ``notification_type:
"permission_prompt"|"elicitation_dialog"``, ``title``, ``message`` (``notification``, fired
only when a dialog is really shown), ``transcriptPath`` (= ``events.jsonl``), ``stopReason``
(``agentStop``), ``reason: "user_exit"`` (``sessionEnd``).

A ``permissionRequest`` hook decides with stdout ``{"behavior": "allow"}`` or ``{"behavior":
"deny", "message"}`` (Claude's ``hookSpecificOutput`` shape is ignored) — but **the dialog is not
shown while it runs**, so deck-tray holds it only for the short "Let Qwen and Copilot wait for
deck-tray" setting (:mod:`deck_tray.core.decisions`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from typing_extensions import override

from deck_tray.core import hooks_config as hc
from deck_tray.core.agents.base import (
    DEFAULT_DENY,
    AgentAdapter,
    HookClaim,
    Json,
    LiveProcess,
    TranscriptState,
    runs_node_script,
    tool_summary,
)
from deck_tray.core.agents.screen_rules import BOTTOM_LINES, boxed_lines, numbered_options
from deck_tray.core.model import (
    AgentKind,
    Evidence,
    EvidenceSource,
    Message,
    MessageRole,
    PendingRequest,
    RequestKind,
    SessionStatus,
)
from deck_tray.core.records import iso_seconds
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.screens import TRUST_TOOL, MenuOption, Screen, ScreenKind
from deck_tray.core.titles import title_line

#: The session folders under the home folder.
SESSION_STATE = "session-state"
#: deck-tray's own hooks file, under ``HOME/hooks``.
HOOK_FILE = "deck-tray.json"
#: The hook events deck-tray installs (all seen firing in 1.0.102).
HOOK_EVENTS = ("permissionRequest", "notification", "sessionStart", "userPromptSubmitted", "agentStop",
               "sessionEnd")
#: Seconds a hook other than ``permissionRequest`` may take (``timeoutSec``).
HOOK_TIMEOUT_S = 10
#: The transcript's file name in a session folder.
EVENTS = "events.jsonl"
#: Allow-once and reject labels of the shell dialog (1.0.102, ``…-permission-shell.txt``); the
#: middle one names the command and folder when the request says which.
YES, ALWAYS, NO = "Yes", "Yes, and don't ask again", "No, and tell Copilot what to do differently"
#: The permission dialog's question lines (``Do you want to run this command?``; other tools'
#: wording was not captured, hence the general form).
_PERMISSION_Q = re.compile(r"^Do you want to .+\?$")
_TRUST_Q = "Do you trust the files in this folder?"
#: The footer of the permission and trust dialogs: a dialog is live only with it below.
_DIALOG_FOOT = "to navigate · enter to select"
#: The footer of the ``ask_user`` form.
_QUESTION_FOOT = re.compile(r"enter accept\b.*\besc cancel")
_QUESTION_HEAD = "Copilot needs information."
#: ``3. No, and tell Copilot what to do differently (Esc to stop)``: the hint is no label.
_ESC_HINT = re.compile(r"\s*\(Esc to stop\)$")
#: ``$ Shell Run the fake shell command`` (the tool line above the dialog).
_TOOL_LINE = re.compile(r"^\$\s+(\S+)")
_RULE = re.compile(r"^─{3,}$")
_SELECTED = "❯"
#: The ``ask_user`` form's free-text row (``copilot-cli-1.0.102-question.txt``). With the cursor on
#: it (arrow keys; the form has no digits) it reads ``Other (type your answer below)`` and an input
#: box opens under the form, between two rules: ``❯ Type your answer...`` (its placeholder,
#: ``…-question-free-text.txt``), then the text typed there (``❯ abc``, ``…-free-text-draft.txt``;
#: a bracketed paste keeps its newlines and the box grows, ``…-free-text-multiline.txt``); Enter
#: sends it as the answer. Enter on the empty box does not answer. The box keeps its text while
#: the cursor is on another row, hidden.
FREE_TEXT_LABEL = "Other (type your answer)"
_FREE_TEXT_OPEN = "Other (type your answer below)"
_ANSWER_PLACEHOLDER = "Type your answer..."





def _str(data: Mapping[str, Any], key: str) -> str:
    val = data.get(key)
    return val if isinstance(val, str) else ""


def _dict(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    val = data.get(key)
    return val if isinstance(val, dict) else {}


def read_workspace(path: Path) -> dict[str, str]:
    """The top-level ``key: value`` pairs of a ``workspace.yaml`` (1.0.102,
    ``tests/fixtures/copilot-cli-1.0.102-workspace.yaml``), as strings.

    A strict reader of the plain lines Copilot writes, not YAML: a plain value is taken as is
    (a `` #`` comment cut off), a ``'…'`` or ``"…"`` value unquoted (``''`` is a quote; a
    double-quoted value must be valid JSON); a key whose value is anything else (a block
    scalar, a nested map, a value continued on an indented line) is left out.

    Returns:
        ``{key: value}``; empty when the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    out: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[:1] in (" ", "\t", "-"):
            out.pop(last, None)  # a continuation or a nested value: not a plain scalar
            continue
        key, sep, raw = line.partition(":")
        last = key
        if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*", key) or (raw and not raw.startswith(" ")):
            continue
        value = raw.strip()
        if value.startswith("'"):
            if len(value) < 2 or not value.endswith("'"):
                continue
            value = value[1:-1].replace("''", "'")
        elif value.startswith('"'):
            try:
                parsed = json.loads(value)
            except ValueError:
                continue
            if not isinstance(parsed, str):
                continue
            value = parsed
        elif value[:1] in ("|", ">", "{", "[", "&", "*", "!"):
            continue
        else:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value
    return out


def _permission(data: Mapping[str, Any], tool: str, cwd: str) -> PendingRequest:
    """The request of a ``permission.requested`` record; the options are the labels 1.0.102
    shows for a shell command (the screen gives the real ones)."""
    req = _dict(data, "permissionRequest")
    prompt = _dict(data, "promptRequest")
    summary = next((v for v in (_str(req, "fullCommandText"), _str(req, "path"), _str(req, "fileName"),
                                _str(req, "url"), _str(req, "intention")) if v), "")
    options = [YES]
    if req.get("canOfferSessionApproval") or prompt.get("canOfferSessionApproval"):
        ids = [i for i in prompt.get("commandIdentifiers") or [] if isinstance(i, str)]
        segs = [s for s in req.get("commandSegments") or [] if isinstance(s, dict)]
        where = next((_str(s, "workingDirectory") for s in segs if _str(s, "workingDirectory")), cwd)
        options.append(f"{ALWAYS} for `{ids[0]}` in this directory ({where})" if len(ids) == 1 and where
                       else ALWAYS)
    options.append(NO)
    return PendingRequest(RequestKind.PERMISSION, tool or _str(req, "kind") or "tool", summary, tuple(options),
                          _str(data, "requestId"))


def _question(call_id: str, args: Any) -> PendingRequest:
    """The request of an ``ask_user`` call: its ``message``, and the ``enum`` of its first field
    (``requestedSchema.properties``) as the options."""
    message = _str(args, "message") if isinstance(args, dict) else ""
    options: tuple[str, ...] = ()
    schema = args.get("requestedSchema") if isinstance(args, dict) else None
    props = schema.get("properties") if isinstance(schema, dict) else None
    if isinstance(props, dict):
        for prop in props.values():
            choices = prop.get("enum") if isinstance(prop, dict) else None
            if isinstance(choices, list):
                options = tuple(str(c) for c in choices)
                break
    return PendingRequest(RequestKind.QUESTION, "ask_user", message, options, call_id, message)


class CopilotTranscript(TranscriptState):
    """A Copilot CLI ``session-state/<id>/events.jsonl`` (1.0.102) fed record by record (see
    the module docstring for the record kinds and the states they give).

    Args:
        workspace: the session's ``workspace.yaml`` (its ``cwd``, and ``name`` when the user
            named the session), re-read by :meth:`settle` when it changed; None: not read.
    """

    def __init__(self, workspace: Path | None = None) -> None:
        super().__init__()
        self._workspace = workspace
        self._ws_key: tuple[int, float] | None = None
        self._named = ""
        self._first_prompt = ""
        self._seen = False
        self._turn = False  # a prompt is being worked on
        self._final = False  # the newest assistant message asked for no tool
        self._ended = ""  # why the last turn ended ("turn finished", "cancelled", …)
        self._state_at = 0.0
        self._tools: dict[str, str] = {}  # call id → tool name
        self._perms: dict[str, PendingRequest] = {}  # request id → open permission dialog
        self._perm_at: dict[str, float] = {}
        self._perm_call: dict[str, str] = {}  # request id → its tool call id
        self._asks: dict[str, PendingRequest] = {}  # call id → open ask_user form
        self._ask_at: dict[str, float] = {}
        self._index: dict[str, int] = {}  # tool call id → its index in messages

    @override
    def reset(self) -> None:
        workspace = self._workspace
        self.__init__(workspace)  # type: ignore[misc]

    def _tool_message(self, call_id: str, name: str, args: Any, at: float) -> None:
        if not call_id or call_id in self._index:
            return
        self._tools[call_id] = name
        self._index[call_id] = len(self.messages)
        self.messages.append(Message(MessageRole.TOOL, f"{name}({tool_summary(args)})", at, call_id, "pending"))

    def _tool_state(self, call_id: str, state: str) -> None:
        i = self._index.get(call_id)
        if i is not None and self.messages[i].state == "pending":
            m = self.messages[i]
            self.messages[i] = Message(m.role, m.text, m.timestamp, m.key, state)

    def _close_all(self, state: str) -> None:
        self._perms.clear()
        self._asks.clear()
        for cid in list(self._index):
            self._tool_state(cid, state)

    @override
    def feed(self, rec: dict[str, Any]) -> None:
        rtype = rec.get("type")
        data = rec.get("data")
        if not isinstance(rtype, str) or not isinstance(data, dict):
            return
        self._seen = True
        at = iso_seconds(rec.get("timestamp"))
        self.last_at = max(self.last_at, at)
        key = _str(rec, "id") or str(len(self.messages))
        main = "agentId" not in rec  # a sub-agent's records do not start or end the user's turn
        if rtype in ("session.start", "session.resume"):
            self.session_id = _str(data, "sessionId") or self.session_id
            self.started_at = self.started_at or iso_seconds(data.get("startTime")) or at
            ctx = data.get("context")
            if isinstance(ctx, dict) and _str(ctx, "cwd"):
                self.cwd = _str(ctx, "cwd")
            return
        if rtype == "user.message" and main:
            text = _str(data, "content")
            if text.strip():
                self._first_prompt = self._first_prompt or title_line(text)
                self.title = self._named or self._first_prompt
                self.messages.append(Message(MessageRole.USER, text, at, _str(data, "messageId") or key))
            self._turn, self._final, self._state_at = True, False, at
        elif rtype == "assistant.turn_start" and main:
            self._turn, self._state_at = True, at
        elif rtype == "assistant.message":
            calls = [c for c in data.get("toolRequests") or [] if isinstance(c, dict)]
            text = _str(data, "content")
            if main and text.strip():
                self.messages.append(Message(MessageRole.ASSISTANT, text, at, _str(data, "messageId") or key))
            for c in calls:
                self._tool_message(_str(c, "toolCallId"), _str(c, "name") or "tool", c.get("arguments"), at)
            if main:
                self._final, self._state_at = not calls, at
        elif rtype == "tool.execution_start":
            cid, name = _str(data, "toolCallId"), _str(data, "toolName") or "tool"
            self._tool_message(cid, name, data.get("arguments"), at)
            self._tools[cid] = name
            if name == "ask_user" and cid:
                self._asks[cid] = _question(cid, data.get("arguments"))
                self._ask_at[cid] = at
            self._state_at = at
        elif rtype == "permission.requested":
            cid = _str(_dict(data, "permissionRequest"), "toolCallId")
            rid = _str(data, "requestId") or cid or key
            self._perms[rid] = _permission(data, self._tools.get(cid, ""), self.cwd)
            self._perm_call[rid] = cid
            self._perm_at[rid] = at
            self._state_at = at
        elif rtype == "permission.completed":
            self._perms.pop(_str(data, "requestId"), None)
            result = data.get("result")
            kind = _str(result, "kind") if isinstance(result, dict) else ""
            if kind.startswith(("denied", "cancelled")):
                self._tool_state(_str(data, "toolCallId"), "error")
            self._state_at = at
        elif rtype == "human_response.recorded":
            self._asks.pop(_str(data, "toolCallId"), None)
            self._state_at = at
        elif rtype == "tool.execution_complete":
            cid = _str(data, "toolCallId")
            self._asks.pop(cid, None)
            for rid in [r for r, c in self._perm_call.items() if c == cid]:
                self._perms.pop(rid, None)
            self._tool_state(cid, "done" if data.get("success") is not False else "error")
            self._state_at = at
        elif rtype == "assistant.turn_end" and main:
            if self._final:
                self._turn, self._ended = False, "turn finished"
            self._state_at = at
        elif rtype == "abort" and main:
            self._turn, self._ended, self._state_at = False, "cancelled", at
            self._close_all("error")
            self.messages.append(Message(MessageRole.NOTICE, "Operation cancelled by user", at, key))
        elif rtype == "session.shutdown":
            self._turn, self._ended, self._state_at = False, "the session was closed", at
            self._close_all("error")
        elif rtype == "session.error" and main:
            text = _str(data, "message")
            if text.strip():
                self.messages.append(Message(MessageRole.ERROR, text, at, key))

    @override
    def settle(self) -> None:
        """Read ``workspace.yaml`` again when it changed: its ``cwd`` (when no record named
        one) and its ``name`` as the title once the user named the session."""
        if self._workspace is None:
            return
        try:
            st = self._workspace.stat()
        except OSError:
            return
        if (st.st_size, st.st_mtime) == self._ws_key:
            return
        self._ws_key = (st.st_size, st.st_mtime)
        ws = read_workspace(self._workspace)
        self.cwd = self.cwd or ws.get("cwd", "")
        self.session_id = self.session_id or ws.get("id", "")
        self._named = title_line(ws.get("name", "")) if ws.get("user_named") == "true" else ""
        self.title = self._named or self._first_prompt

    @override
    def evidence(self) -> Evidence | None:
        if not self._seen:
            return None
        if self._perms:
            rid, pending = next(reversed(self._perms.items()))
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.WAITING_PERMISSION,
                            self._perm_at.get(rid, self.last_at), "permission.requested in events.jsonl",
                            pending=pending)
        if self._asks:
            cid, pending = next(reversed(self._asks.items()))
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.WAITING_QUESTION,
                            self._ask_at.get(cid, self.last_at), "ask_user in events.jsonl", pending=pending)
        at = self._state_at or self.last_at
        if self._turn:
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, at, "working on a prompt")
        return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, at, self._ended or "ready for a prompt")

    @override
    def pending_request(self) -> PendingRequest | None:
        if self._perms:
            return next(reversed(self._perms.values()))
        if self._asks:
            return next(reversed(self._asks.values()))
        return None


def _inner_box(raw: list[str]) -> str:
    """The text of the last box nested in a dialog (the command of the shell dialog), lines
    joined by a space; ``""`` when there is none. ``raw``: pane lines above the question."""
    end = None
    for j in range(len(raw) - 1, -1, -1):
        if raw[j].startswith("╭"):
            break  # the dialog's own top: no box nested in it
        inner = raw[j].strip().strip("│").strip()
        if end is None and inner.startswith("╰"):
            end = j
        elif end is not None and inner.startswith("╭"):
            rows = [raw[k].strip().strip("│").strip().strip("│").strip() for k in range(j + 1, end)]
            return " ".join(r for r in rows if r)
    return ""


def _dialog(lines: list[str], raw: list[str], i: int) -> Screen | None:
    """The permission or trust dialog whose question is ``lines[i]``, when its options and its
    footer follow."""
    foot = next((k for k in range(i + 1, len(lines)) if _DIALOG_FOOT in lines[k]), None)
    if foot is None:
        return None
    options: list[MenuOption] = []
    for o in numbered_options(lines[:foot], i + 1):
        label, hot = o.label, o.hotkey
        if _ESC_HINT.search(label):
            label, hot = _ESC_HINT.sub("", label), "esc"
        options.append(MenuOption(o.number, label, hot, o.selected))
    if not options:
        return None
    question = lines[i]
    qraw = next((k for k in range(len(raw) - 1, -1, -1) if question in raw[k]), len(raw))
    above = raw[:qraw]
    if question == _TRUST_Q:
        folder = next((ln for ln in reversed(lines[:i]) if ln.startswith("/")), "")
        return Screen(ScreenKind.PERMISSION, question, tuple(options), "", TRUST_TOOL, folder)
    tool = ""
    for ln in reversed(above):
        m = _TOOL_LINE.match(ln.strip())
        if m:
            tool = m.group(1)
            break
    return Screen(ScreenKind.PERMISSION, question, tuple(options), "", tool, _inner_box(above))


def _answer_box(raw: list[str]) -> tuple[int, str] | None:
    """The free-text input box under the ``ask_user`` form, when it is open: the index in ``raw``
    of its top rule, and its text (lines joined by newlines; the placeholder as shown). ``raw``:
    the pane's bottom lines. The box is the last thing on the pane: a rule, ``❯ `` and its text
    (continued on indented lines), a rule, right under the form's own bottom rule and footer
    (``copilot-cli-1.0.102-question-free-text*.txt``)."""
    end = len(raw) - 1
    while end >= 0 and not raw[end].strip():
        end -= 1
    if end < 4 or not _RULE.match(raw[end].strip()):
        return None
    top = next((k for k in range(end - 1, -1, -1) if _RULE.match(raw[k].strip())), None)
    if top is None or top < 2 or top == end - 1 or not raw[top + 1].startswith(_SELECTED):
        return None
    if not _RULE.match(raw[top - 1].strip()) or not _QUESTION_FOOT.search(raw[top - 2]):
        return None
    text = "\n".join([raw[top + 1].removeprefix(_SELECTED).strip(), *(ln.strip() for ln in raw[top + 2:end])])
    return top, text.strip()


def _form(lines: list[str], foot: int, box: str | None = None) -> Screen | None:
    """The ``ask_user`` form whose footer is ``lines[foot]``: the question under ``Copilot needs
    information.``, the rows of the field above the footer (no digits; the ``❯`` row is the
    selected one; the free-text row is labelled :data:`FREE_TEXT_LABEL` whether or not it is
    selected). ``box``: the text of the free-text input box under the form (:func:`_answer_box`),
    None when it is closed; with the free-text row selected, its placeholder gives
    ``free_text`` and other text ``draft``."""
    head = next((k for k in range(foot - 1, -1, -1) if lines[k] == _QUESTION_HEAD), None)
    if head is None:
        return None
    body = [ln for ln in lines[head + 1:foot] if ln]
    if not body:
        return None
    question = body[0]
    label = max((k for k, ln in enumerate(body) if k > 0 and ln.endswith(":")), default=0)
    rows = body[label + 1:] if label else body[1:]
    options = []
    for r in rows:
        text = r.removeprefix(_SELECTED).strip()
        options.append(MenuOption("", FREE_TEXT_LABEL if text == _FREE_TEXT_OPEN else text, "",
                                  r.startswith(_SELECTED)))
    if not options:
        return None
    on_free = any(o.selected and o.label == FREE_TEXT_LABEL for o in options)
    typed = box if on_free and box is not None else None
    free = typed == _ANSWER_PLACEHOLDER
    draft = typed if typed is not None and not free else ""
    return Screen(ScreenKind.QUESTION, question, tuple(options), draft, "ask_user", question, free_text=free)


def read_screen(text: str) -> Screen:
    """Parse a Copilot CLI 1.0.102 pane (``capture-pane -p`` text; fixtures
    ``tests/fixtures/screens/copilot-cli-1.0.102-*.txt``).

    Returns:
        PERMISSION for the shell (or another tool's) dialog and the folder-trust dialog, with
        their numbered options (the ``(Esc to stop)`` hint becomes the ``esc`` hotkey);
        QUESTION for the ``ask_user`` form (options without digits, the selected one marked;
        ``free_text`` while its free-text row is selected and its input box is empty, ``draft``
        the text in that box); BUSY for the ``Working … esc esc`` footer; IDLE for the input
        line (``draft``: its text); else UNKNOWN (the exit summary, a shell).
    """
    raw = text.rstrip("\n").split("\n")[-BOTTOM_LINES:]
    lines = boxed_lines(text)
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] == _TRUST_Q or _PERMISSION_Q.match(lines[i]):
            dialog = _dialog(lines, raw, i)
            if dialog is not None:
                return dialog
    tail = [ln for ln in lines[-4:] if ln]
    box = _answer_box(raw)
    # The form's footer is at the bottom, or right above the free-text box (which grows with
    # a pasted answer: the form is read from the lines above it).
    above = boxed_lines("\n".join(raw[:box[0]])) if box is not None else lines
    foot = next((k for k in range(len(above) - 1, max(-1, len(above) - 5), -1)
                 if _QUESTION_FOOT.search(above[k])), None)
    if foot is not None:
        form = _form(above, foot, box[1] if box is not None else None)
        if form is not None:
            return form
    if tail and "Working" in tail[-1] and "esc esc" in tail[-1]:
        return Screen(ScreenKind.BUSY)
    for j in range(len(raw) - 1, 0, -1):
        if raw[j].startswith(_SELECTED) and _RULE.match(raw[j - 1].rstrip()):
            return Screen(ScreenKind.IDLE, draft=raw[j][1:].strip())
    return Screen(ScreenKind.UNKNOWN)


class CopilotAdapter(AgentAdapter):
    """GitHub Copilot CLI 1.0.102 (see the module docstring)."""

    kind = AgentKind.COPILOT_CLI
    binary = "copilot"
    env_keys = ("COPILOT_HOME",)
    title_rules = False
    free_text_label = FREE_TEXT_LABEL

    def __init__(self) -> None:
        # (home, pid) → the session folder holding its inuse.<pid>.lock, found last time.
        self._dirs: dict[tuple[str, int], Path] = {}

    @override
    def home(self, env: Mapping[str, str]) -> Path:
        custom = env.get("COPILOT_HOME")
        if custom:
            return Path(custom)
        return Path(env.get("HOME") or os.path.expanduser("~")) / ".copilot"

    @override
    def watch_roots(self, home: Path) -> list[Path]:
        return [home / SESSION_STATE]

    @override
    def transcripts(self, home: Path) -> list[str]:
        return [str(p) for p in (home / SESSION_STATE).glob(f"*/{EVENTS}")]

    @override
    def owns(self, home: Path, path: str) -> bool:
        return path.startswith(str(home / SESSION_STATE) + os.sep) and path.endswith(os.sep + EVENTS)

    @override
    def session_id_for(self, path: str) -> str:
        # session-state/<uuid>/events.jsonl: the folder is the session.
        return Path(path).parent.name

    @override
    def new_transcript(self, path: str) -> TranscriptState:
        return CopilotTranscript(Path(path).parent / "workspace.yaml")

    @override
    def matches_process(self, name: str, cmdline: Sequence[str]) -> bool:
        # The native binary is named "MainThread" by the kernel (its main thread's name), so
        # its argv[0] is read: ".../@github/copilot-linux-x64/copilot" (1.0.102).
        return bool(cmdline) and cmdline[0].rsplit("/", 1)[-1] == "copilot" or \
            runs_node_script(name, cmdline, "copilot", "@github/copilot")

    def _session_dir(self, home: Path, proc: LiveProcess) -> Path | None:
        """The session folder whose ``inuse.<pid>.lock`` names ``proc`` (the newest one, and
        not one left behind by an earlier process with the same pid)."""
        lock = f"inuse.{proc.pid}.lock"
        known = self._dirs.get((str(home), proc.pid))
        candidates = [known] if known is not None and (known / lock).exists() else \
            [p.parent for p in (home / SESSION_STATE).glob(f"*/{lock}")]
        best: tuple[float, Path] | None = None
        for d in candidates:
            try:
                mtime = (d / lock).stat().st_mtime
            except OSError:
                continue
            if proc.started_at and mtime < proc.started_at - 2.0:
                continue  # a lock a crashed process left behind
            if best is None or mtime > best[0]:
                best = (mtime, d)
        if best is None:
            self._dirs.pop((str(home), proc.pid), None)
            return None
        self._dirs[(str(home), proc.pid)] = best[1]
        return best[1]

    @override
    def link(self, home: Path, procs: Sequence[LiveProcess],
             states: Mapping[str, TranscriptState]) -> dict[int, str]:
        # Each native process writes session-state/<id>/inuse.<pid>.lock at start; the
        # transcript appears with the first prompt (a process without one is listed on its own).
        out: dict[int, str] = {}
        for proc in procs:
            d = self._session_dir(home, proc)
            if d is None:
                continue
            path = str(d / EVENTS)
            if path in states or os.path.isfile(path):
                out[proc.pid] = path
        return out

    @override
    def read_screen(self, text: str) -> Screen:
        return read_screen(text)

    @override
    def exit_command(self) -> str:
        return "/exit"

    # -- hooks ---------------------------------------------------------------------------
    hook_events = HOOK_EVENTS
    decision_event = "permissionRequest"
    hook_file_owned = True

    @override
    def hook_file(self, home: Path) -> Path | None:
        return home / "hooks" / HOOK_FILE

    @override
    def hook_command(self, exe: Sequence[str], event: str) -> str:
        return shlex.join([*hc.hook_argv(exe, self.kind), event])

    def hook_handler(self, exe: Sequence[str], event: str) -> Json:
        """deck-tray's handler for ``event`` in :data:`HOOK_FILE`."""
        timeout = hc.SHORT_DECISION_HOOK_TIMEOUT_S if event == self.decision_event else HOOK_TIMEOUT_S
        return {"type": "command", "bash": self.hook_command(exe, event), "timeoutSec": timeout}

    @override
    def merge_hooks(self, data: Json, exe: Sequence[str]) -> tuple[Json, list[str]]:
        return hc.merge_flat(data, self.hook_events, self.kind, exe, lambda e: self.hook_handler(exe, e))

    @override
    def remove_hooks(self, data: Json, exe: Sequence[str]) -> tuple[Json, list[str]]:
        return hc.remove_flat(data, self.kind, exe)

    @override
    def hooks_state(self, data: Json, exe: Sequence[str],
                    exists: Callable[[str], bool] | None = None) -> tuple[hc.HookState, str]:
        return hc.flat_state(data, self.hook_events, self.kind, exe, lambda e: self.hook_handler(exe, e),
                             exists=exists)

    @override
    def hook_session_id(self, payload: Mapping[str, Any]) -> str:
        return _str(payload, "sessionId")

    @override
    def hook_event_name(self, payload: Mapping[str, Any]) -> str:
        # Only two payloads name their event (1.0.102); the installed commands name every one.
        if _str(payload, "hookName"):
            return _str(payload, "hookName")
        return "notification" if payload.get("hook_event_name") == "Notification" else ""

    @override
    def hook_status(self, event: str, payload: Mapping[str, Any]) -> HookClaim | None:
        if event == "permissionRequest":
            tool = _str(payload, "toolName")
            return HookClaim(SessionStatus.WAITING_PERMISSION, "permission prompt",
                             PendingRequest(RequestKind.PERMISSION, tool or "tool",
                                            tool_summary(payload.get("toolInput"))))
        if event == "notification":
            ntype = payload.get("notification_type")
            if ntype == "permission_prompt":
                return HookClaim(SessionStatus.WAITING_PERMISSION, "permission prompt")
            if ntype == "elicitation_dialog":
                return HookClaim(SessionStatus.WAITING_QUESTION, "question")
            return None
        if event in ("sessionStart", "userPromptSubmitted"):
            return HookClaim(SessionStatus.BUSY, "working on a prompt")
        if event == "agentStop":
            return HookClaim(SessionStatus.IDLE, "turn finished")
        if event == "sessionEnd":
            reason = payload.get("reason")
            return HookClaim(SessionStatus.ENDED, "the user quit" if reason == "user_exit" else "session ended")
        return None

    @override
    def decision_output(self, reply: Reply, payload: Mapping[str, Any]) -> Json | None:
        if reply.kind is ReplyKind.DENY:
            return {"behavior": "deny", "message": reply.text.strip() or DEFAULT_DENY}
        if reply.kind in (ReplyKind.ALLOW, ReplyKind.ALLOW_ALWAYS):
            return {"behavior": "allow"}
        raise ValueError(f"a permission request cannot take a {reply.describe()} reply")


ADAPTER = CopilotAdapter()
