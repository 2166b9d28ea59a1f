"""Qwen Code (``@qwen-code/qwen-code``, verified with 0.24.4): the adapter.

Files (``HOME`` = ``$QWEN_HOME``, default ``~/.qwen``):

* ``HOME/sessions/<pid>.json`` — one per running process, removed on exit:
  ``{pid, procStart, sessionId, cwd, name, startedAt, qwenVersion, kind, ipcPath, ipcToken}``
  (``ipcToken`` is a secret: never logged or shown);
* ``HOME/projects/<cwd with "/" and "_" as "-">/chats/<sessionId>.jsonl`` — the transcript:
  records ``{uuid, parentUuid, sessionId, timestamp, type: user|assistant|tool_result|system,
  cwd?, message: {role, parts: [...]}}`` with Gemini-style ``text`` / ``functionCall`` /
  ``functionResponse`` parts. The assistant record with the ``functionCall`` is written **before**
  the user answers the permission prompt, the ``tool_result`` after.

Pane title: ``Qwen - <folder>`` idle, ``◐︎ Qwen - <folder>`` responding, ``✳︎ Qwen - <folder>``
waiting for a confirmation (the ``︎`` is U+FE0E). Screen: ``Allow execution of: 'touch'?`` with
``› 1. Yes, allow once`` … ``4. No, suggest changes (esc)`` and ``Waiting for user
confirmation...``; ``1`` approves at once, Esc cancels. A question (``ask_user_question``) shows
``❯ 1. Red`` … ``4. Type something...``: a digit answers with its option, the last row's digit
opens it for a typed answer (:data:`FREE_TEXT_LABEL`). Its default approval mode is an automatic
classifier (``tools.approvalMode: "auto"``); prompts appear in the ``default`` mode.
Fixtures: ``tests/fixtures/screens/qwen-code-0.24.4-*.txt``, ``tests/fixtures/qwen-code-0.24.4-*``.

Hooks: Claude Code's shape in ``HOME/settings.json`` (``{"hooks": {Event: [{"matcher"?, "hooks":
[{"type": "command", "command", "timeout" (s)}]}]}}``; ``tests/fixtures/qwen-code-0.24.4-hooks.jsonl``,
``/work/shared/reference/gemini-qwen-copilot.md`` §7). deck-tray installs :data:`HOOK_EVENTS`.
Payloads: ``{session_id (the sessionId), transcript_path, cwd, hook_event_name, timestamp,
permission_mode, prompt_id?}`` plus ``tool_name``/``tool_input`` (PermissionRequest),
``notification_type: "permission_prompt"|"idle_prompt"``/``message``/``title`` (Notification),
``prompt`` (UserPromptSubmit; ``""`` for the continuation after a tool result),
``last_assistant_message`` (Stop), ``source`` (SessionStart), ``reason`` (SessionEnd,
``"prompt_input_exit"`` on ``/quit``). Seen order of one turn: SessionStart, UserPromptSubmit,
PermissionRequest, Notification(permission_prompt), UserPromptSubmit(""), Stop,
Notification(idle_prompt), SessionEnd.

A ``PermissionRequest`` hook decides when it prints ``{"hookSpecificOutput": {"hookEventName":
"PermissionRequest", "decision": {"behavior": "allow"}}}`` (no prompt is shown) or
``"deny"`` with ``message`` (shown, tool blocked) — but **no prompt is shown while it runs**, so
deck-tray holds it only for the short "Let Qwen and Copilot wait for deck-tray" setting
(:mod:`deck_tray.core.decisions`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
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
    session_start_claim,
    tool_summary,
)
from deck_tray.core.agents.screen_rules import boxed_lines, numbered_options
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
from deck_tray.core.records import iso_seconds, question_parts
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.screens import MenuOption, Screen, ScreenKind
from deck_tray.core.titles import title_line

_PERMISSION_Q = re.compile(r"^(?:Allow execution of.*\?|Apply this change\?|Allow .*\?|Do you want to .*\?)$")
_TOOL_HEAD = re.compile(r"^\?\s+(\S+)\s+(.*?)\s*(?:←)?\s*$")
_INPUT = re.compile(r"^>\s?(.*)$")
_BUSY = re.compile(r"\([^)]*esc to (?:cancel|interrupt)[^)]*\)|Waiting for user confirmation")
#: The footer of a question (``ask_user_question``; ``qwen-code-0.24.4-question.txt``).
_QUESTION_FOOT = re.compile(r"Enter: Select")
#: A question's free-text row: the last row, ``4. Type something...`` (its placeholder, in the
#: UI language; ``qwen-code-0.24.4-question.txt``). Its digit selects it without answering and
#: turns it into an input, ``❯ 4. > Type something...`` (``…-question-free-text.txt``), that takes
#: the typed text (``❯ 4. > abc``, ``…-question-free-text-draft.txt``; digits are typed, not
#: taken as options; a bracketed paste keeps its newlines) until Enter sends it as the answer.
#: Text left there stays when the cursor moves away (``4. abc``, ``…-question-free-text-kept.txt``).
FREE_TEXT_LABEL = "Type something..."
#: What the selected free-text row shows before its text while it takes typing.
_EDITING = "> "
PLACEHOLDER = "Type your message or @path/to/file"
#: The hook events deck-tray installs (all seen firing in 0.24.4).
HOOK_EVENTS = ("PermissionRequest", "Notification", "Stop", "UserPromptSubmit", "SessionStart", "SessionEnd")
#: Qwen's question tool (its PermissionRequest, if any, is not held: the hook cannot answer it).
QUESTION_TOOL = "ask_user_question"
#: Seconds a hook other than PermissionRequest may take (the forwarder returns in ~50 ms).
HOOK_TIMEOUT_S = 10
_END_REASONS = {"prompt_input_exit": "the user quit", "logout": "the user logged out"}
#: Allow-once and reject labels Qwen Code 0.24.4 shows for a shell command.
DEFAULT_OPTIONS = ("Yes, allow once", "No, suggest changes")



def _parts(rec: Mapping[str, Any]) -> list[dict[str, Any]]:
    msg = rec.get("message")
    parts = msg.get("parts") if isinstance(msg, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _question(args: Any) -> str:
    """The first question of an ``ask_user_question`` call (Claude's AskUserQuestion shape)."""
    return question_parts(args)[0]


def _summary(args: Any) -> str:
    return _question(args) or tool_summary(args)


class QwenTranscript(TranscriptState):
    """A Qwen Code ``projects/<slug>/chats/<id>.jsonl`` (0.24.4) fed record by record."""

    def __init__(self) -> None:
        super().__init__()
        self._open: dict[str, tuple[str, str]] = {}  # call id → (tool, summary), not answered yet
        self._last_type = ""
        self._last_at = 0.0

    @override
    def feed(self, rec: dict[str, Any]) -> None:
        rtype = rec.get("type")
        if not isinstance(rtype, str):
            return
        if isinstance(rec.get("sessionId"), str) and not self.session_id:
            self.session_id = rec["sessionId"]
        if isinstance(rec.get("cwd"), str) and rec["cwd"]:
            self.cwd = rec["cwd"]
        at = iso_seconds(rec.get("timestamp"))
        self.last_at = max(self.last_at, at)
        if not self.started_at and at:
            self.started_at = at
        key = str(rec.get("uuid") or len(self.messages))
        parts = _parts(rec)
        if rtype == "user":
            text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str))
            if text.strip():
                self.title = self.title or title_line(text)
                self.messages.append(Message(MessageRole.USER, text, at, key))
        elif rtype == "assistant":
            for i, p in enumerate(parts):
                call = p.get("functionCall")
                if isinstance(call, dict):
                    cid = str(call.get("id") or f"{key}:{i}")
                    name = str(call.get("name") or "tool")
                    summary = _summary(call.get("args"))
                    self._open[cid] = (name, summary)
                    self.messages.append(Message(MessageRole.TOOL, f"{name}({summary})", at, cid, "pending"))
                elif isinstance(p.get("text"), str) and p["text"].strip() and not p.get("thought"):
                    self.messages.append(Message(MessageRole.ASSISTANT, p["text"], at, key))
        elif rtype == "tool_result":
            for p in parts:
                resp = p.get("functionResponse")
                if isinstance(resp, dict):
                    cid = str(resp.get("id") or "")
                    self._open.pop(cid, None)
                    self.messages = [Message(m.role, m.text, m.timestamp, m.key, "done")
                                     if m.key == cid and m.role is MessageRole.TOOL else m for m in self.messages]
        else:
            return
        self._last_type, self._last_at = rtype, at

    @override
    def evidence(self) -> Evidence | None:
        at = self._last_at or self.last_at
        if self._open:
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, at,
                            "a tool call waits for its result (or for permission)", pending=self.pending_request())
        if self._last_type in ("user", "tool_result"):
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, at, "prompt sent")
        if self._last_type == "assistant":
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, at, "turn finished")
        return None

    @override
    def pending_request(self) -> PendingRequest | None:
        if not self._open:
            return None
        cid, (tool, summary) = next(reversed(self._open.items()))
        if tool.startswith("ask_user"):
            return PendingRequest(RequestKind.QUESTION, tool, summary, (), cid, summary)
        return PendingRequest(RequestKind.PERMISSION, tool, summary, DEFAULT_OPTIONS, cid)


def _free_text_row(options: tuple[MenuOption, ...]) -> tuple[tuple[MenuOption, ...], str, bool]:
    """A question's rows with the free-text row in edit mode (selected, ``> …``) labelled
    :data:`FREE_TEXT_LABEL`; the text it holds (``""`` while it shows its placeholder); and
    whether it takes typing while still empty (:attr:`Screen.free_text`)."""
    out: list[MenuOption] = []
    draft, free = "", False
    for opt in options:
        if opt.selected and opt.label.startswith(_EDITING):
            typed = opt.label[len(_EDITING):].strip()
            free = typed == FREE_TEXT_LABEL
            draft = "" if free else typed
            opt = MenuOption(opt.number, FREE_TEXT_LABEL, opt.hotkey, selected=True)
        out.append(opt)
    return tuple(out), draft, free


def read_screen(text: str) -> Screen:
    """Parse a Qwen Code 0.24.4 pane (fixtures ``qwen-code-0.24.4-*.txt``).

    Returns:
        PERMISSION with the box's numbered options; QUESTION with the question's rows, the
        free-text row (:data:`FREE_TEXT_LABEL`) with ``free_text`` while it takes typing and is
        empty, ``draft`` the text it already holds; BUSY; IDLE (``draft``: the input line's text);
        else UNKNOWN.
    """
    lines = boxed_lines(text)
    for i in range(len(lines) - 1, -1, -1):
        if _PERMISSION_Q.match(lines[i]):
            options = numbered_options(lines, i + 1)
            if not options:
                continue
            tool = subject = ""
            for above in reversed(lines[max(0, i - 12):i]):
                m = _TOOL_HEAD.match(above)
                if m:
                    tool, subject = m.group(1), m.group(2)
                    break
            return Screen(ScreenKind.PERMISSION, lines[i], options, "", tool, subject)
    foot = next((i for i in range(len(lines) - 1, -1, -1) if _QUESTION_FOOT.search(lines[i])), None)
    if foot is not None:
        first = next((i for i in range(foot - 1, -1, -1) if re.match(r"^(?:[❯›]\s*)?1\.\s", lines[i])), None)
        options = numbered_options(lines, first) if first is not None else ()
        if first is not None and options:
            question = next((q for q in reversed(lines[max(0, first - 6):first]) if q.endswith("?")), "")
            options, draft, free = _free_text_row(options)
            return Screen(ScreenKind.QUESTION, question, options, draft, "ask_user_question", question,
                          free_text=free)
    bottom = lines[-10:]
    if any(_BUSY.search(line) for line in bottom):
        return Screen(ScreenKind.BUSY)
    for line in reversed(bottom):
        m = _INPUT.match(line)
        if m:
            draft = m.group(1).strip()
            return Screen(ScreenKind.IDLE, draft="" if draft == PLACEHOLDER else draft)
    return Screen(ScreenKind.UNKNOWN)


def slug(cwd: str) -> str:
    """The ``projects/`` folder name of a working folder: ``/`` and ``_`` become ``-``."""
    return cwd.replace("/", "-").replace("_", "-")


class QwenAdapter(AgentAdapter):
    """Qwen Code 0.24.4 (see the module docstring)."""

    kind = AgentKind.QWEN_CODE
    binary = "qwen"
    env_keys = ("QWEN_HOME",)
    title_rules = True
    free_text_label = FREE_TEXT_LABEL

    @override
    def home(self, env: Mapping[str, str]) -> Path:
        custom = env.get("QWEN_HOME")
        if custom:
            return Path(custom)
        return Path(env.get("HOME") or os.path.expanduser("~")) / ".qwen"

    @override
    def watch_roots(self, home: Path) -> list[Path]:
        return [home / "projects", home / "sessions"]

    @override
    def transcripts(self, home: Path) -> list[str]:
        return [str(p) for p in (home / "projects").glob("*/chats/*.jsonl")]

    @override
    def owns(self, home: Path, path: str) -> bool:
        return (path.startswith(str(home / "projects") + os.sep) and "/chats/" in path
                and path.endswith(".jsonl")) or path.startswith(str(home / "sessions") + os.sep)

    @override
    def new_transcript(self, path: str) -> TranscriptState:
        return QwenTranscript()

    @override
    def matches_process(self, name: str, cmdline: Sequence[str]) -> bool:
        return runs_node_script(name, cmdline, "qwen", "@qwen-code/qwen-code")

    @override
    def link(self, home: Path, procs: Sequence[LiveProcess],
             states: Mapping[str, TranscriptState]) -> dict[int, str]:
        # Each process writes sessions/<pid>.json naming its session (0.24.4); its
        # transcript appears with the first prompt.
        out: dict[int, str] = {}
        for proc in procs:
            try:
                data = json.loads((home / "sessions" / f"{proc.pid}.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            sid = data.get("sessionId") if isinstance(data, dict) else None
            if not isinstance(sid, str) or not sid or "/" in sid:
                continue
            cwd = data.get("cwd") if isinstance(data.get("cwd"), str) else proc.cwd
            known = next((p for p in states if Path(p).stem == sid), None)
            out[proc.pid] = known or str(home / "projects" / slug(cwd) / "chats" / f"{sid}.jsonl")
        return out

    @override
    def title_status(self, title: str) -> tuple[SessionStatus, str] | None:
        t = title.strip()
        if "Qwen - " not in t:
            return None
        head = t.split("Qwen - ", 1)[0].strip().rstrip("\ufe0e\ufe0f").strip()
        if not head:
            return SessionStatus.IDLE, "ready for a prompt (pane title)"
        if head == "✳":
            return SessionStatus.WAITING_PERMISSION, "waiting for a confirmation (pane title)"
        return SessionStatus.BUSY, "responding (pane title)"

    @override
    def read_screen(self, text: str) -> Screen:
        return read_screen(text)

    @override
    def exit_command(self) -> str:
        return "/quit"

    # -- hooks ---------------------------------------------------------------------------
    hook_events = HOOK_EVENTS
    decision_event = "PermissionRequest"

    @override
    def hook_file(self, home: Path) -> Path | None:
        return home / "settings.json"

    def hook_group(self, event: str, command: str) -> Json:
        """The group deck-tray appends for ``event`` (a ``"*"`` matcher on PermissionRequest)."""
        timeout = hc.SHORT_DECISION_HOOK_TIMEOUT_S if event == self.decision_event else HOOK_TIMEOUT_S
        group: Json = {"matcher": "*"} if event == self.decision_event else {}
        group["hooks"] = [{"type": "command", "command": command, "timeout": timeout}]
        return group

    @override
    def merge_hooks(self, data: Json, exe: Sequence[str]) -> tuple[Json, list[str]]:
        return hc.merge_hooks(data, self.hook_events, self.kind, exe, group=self.hook_group)

    @override
    def hook_status(self, event: str, payload: Mapping[str, Any]) -> HookClaim | None:
        if event == "PermissionRequest":
            tool = str(payload.get("tool_name") or "")
            args = payload.get("tool_input")
            if tool == QUESTION_TOOL:
                q = _question(args)
                return HookClaim(SessionStatus.WAITING_QUESTION, "question",
                                 PendingRequest(RequestKind.QUESTION, tool, q, (), "", q))
            return HookClaim(SessionStatus.WAITING_PERMISSION, "permission prompt",
                             PendingRequest(RequestKind.PERMISSION, tool, _summary(args), DEFAULT_OPTIONS))
        if event == "Notification":
            ntype = payload.get("notification_type")
            if ntype == "permission_prompt":
                return HookClaim(SessionStatus.WAITING_PERMISSION, "permission prompt")
            if ntype == "idle_prompt":
                return HookClaim(SessionStatus.IDLE, "waiting for your input")
            return None
        if event == "Stop":
            return HookClaim(SessionStatus.IDLE, "turn finished")
        if event == "UserPromptSubmit":
            return HookClaim(SessionStatus.BUSY, "working on a prompt")
        if event == "SessionStart":
            return session_start_claim(payload)
        if event == "SessionEnd":
            reason = str(payload.get("reason") or "")
            return HookClaim(SessionStatus.ENDED, _END_REASONS.get(reason, "session ended"))
        return None

    @override
    def decision_output(self, reply: Reply, payload: Mapping[str, Any]) -> Json | None:
        if payload.get("tool_name") == QUESTION_TOOL:
            return None
        if reply.kind is ReplyKind.DENY:
            decision: Json = {"behavior": "deny", "message": reply.text.strip() or DEFAULT_DENY}
        elif reply.kind in (ReplyKind.ALLOW, ReplyKind.ALLOW_ALWAYS):
            decision = {"behavior": "allow"}
        else:
            raise ValueError(f"a permission request cannot take a {reply.describe()} reply")
        return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}}


ADAPTER = QwenAdapter()
