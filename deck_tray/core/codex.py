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

import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import Any

from deck_tray.core import record_kinds
from deck_tray.core.model import Message, MessageRole, PendingRequest, RequestKind
from deck_tray.core.record_kinds import CodexItems, Kind
from deck_tray.core.records import MAX_MESSAGES, TurnLog, iso_timestamp, question_parts
from deck_tray.core.titles import title_line

#: The approval menu of codex-cli 0.169.0 when the screen cannot be read.
DEFAULT_APPROVAL_OPTIONS = ("Yes, proceed", "Yes, and don't ask again for this command", "No")
QUESTION_TOOL = "request_user_input"
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


#: ``<cwd>…</cwd>`` in the ``<environment_context>`` Codex writes at a session's start.
_ENV_CWD_RE = re.compile(r"<cwd>(.*?)</cwd>", re.S)
_NAME_TIME_RE = re.compile(r"rollout-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})-")


def time_from_path(path: str) -> float:
    """The local start time in a rollout's file name (``rollout-2025-05-07T17-24-21-<id>.jsonl``)
    as POSIX seconds; 0.0 when the name has none."""
    m = _NAME_TIME_RE.search(path)
    if not m:
        return 0.0
    try:
        y, mo, d, h, mi, sec = (int(g) for g in m.groups())
        return _dt.datetime(y, mo, d, h, mi, sec).timestamp()
    except ValueError:
        return 0.0


def cwd_from_environment(text: str) -> str:
    """The folder in an ``<environment_context>`` text (``<cwd>/path</cwd>``), or ``""``."""
    m = _ENV_CWD_RE.search(text)
    return m.group(1).strip() if m else ""


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
    """State of one Codex rollout, fed record by record (every record shape).

    Records are classified by :class:`deck_tray.core.record_kinds.CodexItems` (a prompt, an
    answer or reasoning written twice — ``response_item`` and ``event_msg`` — shows once).
    Rollouts of the oldest shape (no ``session_meta``: a header line ``{"id", "timestamp",
    "instructions"}`` then bare items without times) take their times from the header, else from
    the file name, and their folder from the ``<environment_context>`` Codex wrote.

    A sub-agent's rollout (``session_meta.source = {"subagent": {"thread_spawn":
    {"parent_thread_id", "agent_nickname", "agent_role"}}}``, Codex multi-agent threads) names its
    parent in :attr:`parent_thread`; the scan shows it as a thread of that session.

    Args:
        thread_id: the thread id when known (from the file name).
        path: the rollout's path (its name gives the start time of old rollouts); optional.
        max_messages: conversation items kept (the newest); None keeps all.
    """

    def __init__(self, thread_id: str = "", path: str = "", max_messages: int | None = MAX_MESSAGES) -> None:
        super().__init__(max_messages)
        self.thread_id = thread_id
        self.path = path
        self.cwd = ""
        self.title = ""
        self.cli_version = ""
        self.source = ""
        self.open_calls: dict[str, tuple[str, dict[str, Any], float]] = {}
        self.items = CodexItems()
        self.parent_thread = ""
        self.agent_name = ""
        self._cwd_from_meta = False
        self.last_at = time_from_path(path) if path else 0.0

    def reset(self) -> None:
        """Forget everything (the file was truncated or replaced)."""
        self.__init__(self.thread_id, self.path, self.messages.maxlen)  # type: ignore[misc]

    def feed(self, rec: dict[str, Any]) -> None:
        """Apply one rollout record."""
        ts = iso_timestamp(rec)
        if ts:
            self.last_at = max(self.last_at, ts)
        else:
            ts = self.last_at  # old shapes: items carry no time; they follow the last one seen
        rtype = rec.get("type")
        payload = rec.get("payload")
        if not isinstance(payload, dict):
            if rtype is None and isinstance(rec.get("id"), str):
                self.thread_id = self.thread_id or rec["id"]  # the oldest shape's header line
                return
        elif rtype == "session_meta":
            self.thread_id = self.thread_id or str(payload.get("id") or payload.get("session_id") or "")
            if payload.get("cwd"):
                self.cwd = str(payload["cwd"])
                self._cwd_from_meta = True
            self.cli_version = str(payload.get("cli_version") or "")
            source = payload.get("source")
            self.source = ("subagent" if isinstance(source, dict) and "subagent" in source
                           else str(source or ""))
            spawn = source.get("subagent") if isinstance(source, dict) else None
            spawn = spawn.get("thread_spawn") if isinstance(spawn, dict) else None
            if isinstance(spawn, dict) and isinstance(spawn.get("parent_thread_id"), str):
                # A sub-agent thread (Codex multi-agent, 0.1xx): a thread of its parent.
                self.parent_thread = spawn["parent_thread_id"]
                self.agent_name = str(spawn.get("agent_nickname") or spawn.get("agent_role") or "")
            return
        elif rtype == "turn_context":
            if isinstance(payload.get("cwd"), str):
                self.cwd = payload["cwd"]
                self._cwd_from_meta = True
            return
        elif rtype == "event_msg":
            self._event(payload, ts)
        for item in self.items.feed(rec):
            self._item(item, ts)

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

    def _item(self, item: record_kinds.Item, ts: float) -> None:
        kind = item.kind
        if kind is Kind.USER:
            self.add(Message(MessageRole.USER, item.text, ts))
            if not self.title:
                self.title = title_line(record_kinds.codex_prompt_of(item.text))
            self.set_phase("working", ts)
        elif kind is Kind.HARNESS:
            if item.label == "environment" and not self._cwd_from_meta:
                self.cwd = cwd_from_environment(item.text) or self.cwd
            if item.label in ("shell command", "task notification", "user action"):
                self.add(Message(MessageRole.HARNESS, item.text, ts, state=item.label))
        elif kind is Kind.ASSISTANT:
            self.add(Message(MessageRole.ASSISTANT, item.text, ts))
            if not self.open_calls:  # oldest rollouts write no task_complete after the answer
                self.set_phase("working", ts, unmarked=True)
        elif kind is Kind.THINKING:
            self.add(Message(MessageRole.THINKING, item.text, ts))
        elif kind is Kind.IMAGE:
            self.add(Message(MessageRole.IMAGE, item.label, ts))
        elif kind is Kind.COMPACTION:
            self.add(Message(MessageRole.COMPACTION, item.text, ts))
        elif kind is Kind.ERROR:
            self.add(Message(MessageRole.ERROR, item.text, ts))
        elif kind is Kind.TOOL:
            args = item.data if isinstance(item.data, dict) else {}
            self.open_calls[item.key] = (item.label, args, ts)
            self.add(Message(MessageRole.TOOL, f"{item.label}({call_summary(item.label, args)})", ts,
                             item.key, "pending"))
            if item.label == "web_search":
                self.open_calls.pop(item.key, None)  # runs on the server; nothing answers it here
                self.close_tool(item.key, "done")
            else:
                self.set_phase("tool", ts)
        elif kind is Kind.TOOL_RESULT:
            self.open_calls.pop(item.key, None)
            self.close_tool(item.key, "error" if item.error else "done")
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
