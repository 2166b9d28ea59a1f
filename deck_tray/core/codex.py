"""Codex CLI rollouts (captured from codex-cli 0.169.0; older record shapes accepted).

Files: ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<YYYY-MM-DDTHH-MM-SS>-<thread id>.jsonl``
(``CODEX_HOME`` defaults to ``~/.codex``). Each line is
``{"timestamp": ISO, "ordinal": n, "type": ..., "payload": {...}}`` in 0.169; older
versions lack ``ordinal`` and carry ``event_msg`` payloads ``user_message`` /
``agent_message``, and the oldest files have bare items without the envelope.

Turn state from the rollout alone: ``task_complete`` / ``turn_aborted`` ⇒ idle; a
``function_call`` with no ``function_call_output`` ⇒ an approval or question is pending
*or* the command runs (``sandbox_permissions: "require_escalated"`` and
``request_user_input`` almost always mean the user is asked). See
``shared/reference/claude-code-and-codex.md`` §2.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from deck_tray.core.model import Message, MessageRole, PendingRequest, RequestKind
from deck_tray.core.records import TurnLog, iso_timestamp, question_parts

#: The approval menu of codex-cli 0.169.0 when the screen cannot be read.
DEFAULT_APPROVAL_OPTIONS = ("Yes, proceed", "Yes, and don't ask again for this command", "No")
QUESTION_TOOL = "request_user_input"
#: Prefixes of user-role messages the harness writes (context, not typed prompts).
HARNESS_PREFIXES = (
    "<environment_context>",
    "<turn_aborted>",
    "<user_instructions>",
    "<INSTRUCTIONS>",
    "<permissions instructions>",
    "# AGENTS.md instructions",
    "<skills_instructions>",
    "<collaboration_mode>",
    "<user_shell_command>",
)
ROLLOUT_RE = re.compile(
    r"rollout-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-(?P<id>[0-9a-fA-F-]{36})\.jsonl$"
)


def codex_home(env: dict[str, str] | None = None) -> Path:
    """``$CODEX_HOME`` or ``~/.codex``."""
    e = os.environ if env is None else env
    custom = e.get("CODEX_HOME")
    if custom:
        return Path(custom).expanduser()
    return Path(e.get("HOME") or str(Path.home())) / ".codex"


def thread_id_from_path(path: str) -> str | None:
    """The thread id in a rollout file name, or None if the name is not a rollout's."""
    m = ROLLOUT_RE.search(path)
    return m.group("id") if m else None


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or the ``text`` of each item of a list
    (``input_text`` / ``output_text`` items), joined with newlines; ``""`` otherwise."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    if isinstance(content, list):
        for c in content:
            if isinstance(c, dict) and isinstance(c.get("text"), str):
                parts.append(c["text"])
    return "\n".join(parts)


def parse_arguments(raw: Any) -> dict[str, Any]:
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


def call_summary(name: str, args: dict[str, Any]) -> str:
    """One line for a tool call: the command for shell tools, the question for questions."""
    cmd = args.get("cmd", args.get("command"))
    if isinstance(cmd, list):
        cmd = " ".join(str(c) for c in cmd)
        cmd = re.sub(r"^(/bin/)?(ba)?sh -lc ", "", cmd)
    if isinstance(cmd, str) and cmd:
        return cmd
    if name == QUESTION_TOOL:
        q, _ = question_parts(args)
        return q
    if isinstance(args.get("raw"), str):
        return str(args["raw"])[:200]
    return json.dumps(args, ensure_ascii=False)[:200]


class CodexRollout(TurnLog):
    """State of one Codex rollout, fed record by record (both record shapes)."""

    def __init__(self, thread_id: str = "") -> None:
        super().__init__()
        self.thread_id = thread_id
        self.cwd = ""
        self.title = ""
        self.cli_version = ""
        self.source = ""
        self.open_calls: dict[str, tuple[str, dict[str, Any], float]] = {}
        self._saw_response_user = False

    def reset(self) -> None:
        """Forget everything (the file was truncated or replaced)."""
        self.__init__(self.thread_id)  # type: ignore[misc]

    def feed(self, rec: dict[str, Any]) -> None:
        """Apply one rollout record."""
        ts = iso_timestamp(rec)
        if ts:
            self.last_at = max(self.last_at, ts)
        rtype = rec.get("type")
        payload = rec.get("payload")
        if not isinstance(payload, dict):
            # Oldest shape: a bare item, or a first line with id/timestamp/instructions.
            if rtype in ("message", "function_call", "function_call_output", "local_shell_call"):
                self._item(rec, ts)
            elif rtype is None and isinstance(rec.get("id"), str):
                self.thread_id = self.thread_id or rec["id"]
            return
        if rtype == "session_meta":
            self.thread_id = self.thread_id or str(payload.get("id") or payload.get("session_id") or "")
            self.cwd = str(payload.get("cwd") or self.cwd)
            self.cli_version = str(payload.get("cli_version") or "")
            self.source = str(payload.get("source") or "")
        elif rtype == "turn_context":
            if isinstance(payload.get("cwd"), str):
                self.cwd = payload["cwd"]
        elif rtype == "response_item":
            self._item(payload, ts)
        elif rtype == "event_msg":
            self._event(payload, ts)

    def _event(self, p: dict[str, Any], ts: float) -> None:
        ptype = p.get("type")
        if ptype == "task_started":
            self.set_phase("working", ts)
        elif ptype == "task_complete":
            self.open_calls.clear()
            self.set_phase("done", ts)
        elif ptype == "turn_aborted":
            self.open_calls.clear()
            self.add(Message(MessageRole.NOTICE, "Interrupted by the user", ts))
            self.set_phase("interrupted", ts)
        elif ptype == "user_message" and not self._saw_response_user:
            # Older shape: the typed prompt only appears here (0.169 also has a response_item).
            text = str(p.get("message") or "")
            if text and not text.startswith(HARNESS_PREFIXES):
                self._user_prompt(text, ts)
        elif ptype == "error":
            self.add(Message(MessageRole.NOTICE, str(p.get("message") or "error"), ts))

    def _user_prompt(self, text: str, ts: float) -> None:
        self.add(Message(MessageRole.USER, text, ts))
        if not self.title:
            self.title = text.strip().splitlines()[0][:80] if text.strip() else ""
        self.set_phase("working", ts)

    def _item(self, p: dict[str, Any], ts: float) -> None:
        ptype = p.get("type")
        if ptype == "message":
            role = p.get("role")
            text = content_text(p.get("content"))
            if role == "user":
                if text and not text.lstrip().startswith(HARNESS_PREFIXES):
                    self._saw_response_user = True
                    self._user_prompt(text, ts)
            elif role == "assistant" and text:
                self.add(Message(MessageRole.ASSISTANT, text, ts, str(p.get("id") or "")))
        elif ptype in ("function_call", "custom_tool_call", "local_shell_call"):
            call_id = str(p.get("call_id") or p.get("id") or "")
            name = str(p.get("name") or ptype)
            args = parse_arguments(p.get("arguments", p.get("input", p.get("action"))))
            self.open_calls[call_id] = (name, args, ts)
            summary = call_summary(name, args)
            self.add(Message(MessageRole.TOOL, f"{name}({summary})", ts, call_id, "pending"))
            self.set_phase("tool", ts)
        elif ptype in ("function_call_output", "custom_tool_call_output"):
            call_id = str(p.get("call_id") or "")
            self.open_calls.pop(call_id, None)
            out = p.get("output")
            out_text = out if isinstance(out, str) else json.dumps(out)[:500]
            state = "error" if "aborted by user" in out_text else "done"
            self.close_tool(call_id, state)
            self.set_phase("tool" if self.open_calls else "working", ts)

    def pending_request(self) -> PendingRequest | None:
        """The newest unanswered call that asks the user (escalated command or question)."""
        for call_id, (name, args, _t) in reversed(self.open_calls.items()):
            if name == QUESTION_TOOL:
                q, opts = question_parts(args)
                return PendingRequest(RequestKind.QUESTION, name, q, opts, call_id, q)
            if args.get("sandbox_permissions") == "require_escalated":
                return PendingRequest(
                    RequestKind.PERMISSION, name, call_summary(name, args), DEFAULT_APPROVAL_OPTIONS, call_id
                )
        return None
