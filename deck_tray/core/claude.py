"""Claude Code formats: live status files and transcripts (captured from Claude Code 2.1.197).

Files (``CONFIG`` = ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``):

* ``CONFIG/sessions/<pid>.json`` — live status of one running ``claude`` process:
  ``{"pid", "sessionId", "cwd", "procStart", "status": "busy"|"waiting"|"idle",
  "waitingFor": "permission prompt", "updatedAt" (ms), "name", "version", ...}``.
  Rewritten on every change, deleted on exit, left behind after ``kill -9``.
* ``CONFIG/projects/<cwd with non-alphanumerics as "-">/<sessionId>.jsonl`` — the
  transcript, one JSON record per line (``user``, ``assistant`` per content block,
  ``system``/``turn_duration``, metadata records such as ``ai-title``).

See ``shared/reference/claude-code-and-codex.md`` §1 for the captured formats.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deck_tray.core.jsonl import SkippedFiles, read_regular
from deck_tray.core.model import (
    Evidence,
    EvidenceSource,
    Message,
    MessageRole,
    PendingRequest,
    RequestKind,
    SessionStatus,
)
from deck_tray.core.records import TurnLog, iso_timestamp, question_parts

#: Options of Claude's tool permission menu when the screen cannot be read (2.1.197).
DEFAULT_PERMISSION_OPTIONS = ("Yes", "Yes, and don't ask again", "No")
QUESTION_TOOL = "AskUserQuestion"


def config_dir(env: dict[str, str] | None = None) -> Path:
    """Claude's config dir: ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``."""
    e = os.environ if env is None else env
    custom = e.get("CLAUDE_CONFIG_DIR")
    if custom:
        return Path(custom).expanduser()
    return Path(e.get("HOME") or str(Path.home())) / ".claude"


def encode_cwd(cwd: str) -> str:
    """Project folder name of a cwd: every character outside ``[A-Za-z0-9]`` becomes ``-``."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


def transcript_path(cfg: Path, cwd: str, session_id: str) -> Path:
    """Where the transcript of ``session_id`` started in ``cwd`` lives."""
    return cfg / "projects" / encode_cwd(cwd) / f"{session_id}.jsonl"


@dataclass(frozen=True)
class LiveStatus:
    """Content of ``sessions/<pid>.json``.

    Attributes:
        pid: the claude process.
        session_id: the conversation it shows now (changes on ``/clear`` or resume).
        cwd: its working directory.
        status: ``"busy"``, ``"waiting"``, ``"idle"``, or ``""`` (``-p`` runs write none).
        waiting_for: e.g. ``"permission prompt"`` while waiting.
        proc_start: ``/proc/<pid>/stat`` field 22 at start, as a string, or ``""``.
        updated_at: last status change, POSIX seconds.
        name: the session's derived name.
        version: Claude Code version.
    """

    pid: int
    session_id: str
    cwd: str
    status: str
    waiting_for: str
    proc_start: str
    updated_at: float
    name: str
    version: str


def parse_live_status(obj: Any) -> LiveStatus | None:
    """Parse one ``sessions/<pid>.json`` object; None when it is not one."""
    if not isinstance(obj, dict):
        return None
    pid = obj.get("pid")
    sid = obj.get("sessionId")
    if not isinstance(pid, int) or not isinstance(sid, str) or not sid:
        return None
    upd = obj.get("statusUpdatedAt") or obj.get("updatedAt") or obj.get("startedAt") or 0
    return LiveStatus(
        pid=pid,
        session_id=sid,
        cwd=str(obj.get("cwd") or ""),
        status=str(obj.get("status") or ""),
        waiting_for=str(obj.get("waitingFor") or ""),
        proc_start=str(obj.get("procStart") or ""),
        updated_at=float(upd) / 1000.0 if isinstance(upd, (int, float)) else 0.0,
        name=str(obj.get("name") or ""),
        version=str(obj.get("version") or ""),
    )


def read_live_status(path: Path, skipped: SkippedFiles | None = None) -> LiveStatus | None:
    """Read and parse a status file (opened with :func:`deck_tray.core.jsonl.open_regular`,
    so a named pipe named ``<pid>.json`` never blocks).

    Args:
        path: ``CONFIG/sessions/<pid>.json``.
        skipped: where a file that exists but cannot be read (not a regular file, a symbolic
            link loop, no permission) is reported; not reported when None.

    Returns:
        The status; None if it vanished, is malformed (mid-write) or cannot be read.
    """
    try:
        return parse_live_status(json.loads(read_regular(str(path))))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if skipped is not None:
            skipped.report(str(path), exc, "status file")
        return None
    except ValueError:
        return None


def live_status_evidence(ls: LiveStatus) -> Evidence | None:
    """Evidence from a status file whose process is known to be alive.

    ``waiting`` maps to WAITING_PERMISSION (2.1.197 writes ``waitingFor: "permission
    prompt"`` for tool permissions *and* AskUserQuestion; the transcript tells which).
    """
    status = {
        "busy": SessionStatus.BUSY,
        "idle": SessionStatus.IDLE,
        "waiting": SessionStatus.WAITING_PERMISSION,
        "shell": SessionStatus.IDLE,
    }.get(ls.status)
    if status is None:
        return None
    detail = {
        SessionStatus.BUSY: "working",
        SessionStatus.IDLE: "ready for a prompt",
        SessionStatus.WAITING_PERMISSION: ls.waiting_for or "waiting for input",
    }[status]
    return Evidence(EvidenceSource.STATUS_FILE, status, ls.updated_at, detail)


#: Slash-command wrappers in a user record's string content: ``(tag, value)`` pairs.
COMMAND_TAG_RE = re.compile(r"<(command-name|local-command-stdout)>(.*?)</\1>", re.S)


def tool_summary(name: str, tool_input: Any) -> str:
    """One-line summary of a tool call's input (the command, the file, the question)."""
    if not isinstance(tool_input, dict):
        return ""
    for key in ("command", "file_path", "path", "url", "pattern", "prompt"):
        val = tool_input.get(key)
        if isinstance(val, str) and val:
            return val
    qs = tool_input.get("questions")
    if isinstance(qs, list) and qs and isinstance(qs[0], dict):
        return str(qs[0].get("question") or "")
    return json.dumps(tool_input, ensure_ascii=False)[:200]


class ClaudeTranscript(TurnLog):
    """State of one Claude Code transcript, fed record by record.

    Feed every record of ``projects/*/<id>.jsonl`` in file order to :meth:`feed`; read
    the conversation (:attr:`messages`), title, cwd and the transcript-level evidence
    (:meth:`evidence`). Unknown record and block types are skipped.
    """

    def __init__(self, session_id: str = "") -> None:
        super().__init__()
        self.session_id = session_id
        self.cwd = ""
        self.title = ""
        self.first_prompt = ""
        self.open_tools: dict[str, tuple[str, Any, float]] = {}
        self._custom_title = False

    def reset(self) -> None:
        """Forget everything (the file was truncated or replaced)."""
        self.__init__(self.session_id)  # type: ignore[misc]

    def feed(self, rec: dict[str, Any]) -> None:
        """Apply one transcript record."""
        rtype = rec.get("type")
        if isinstance(rec.get("sessionId"), str) and not self.session_id:
            self.session_id = rec["sessionId"]
        if isinstance(rec.get("cwd"), str) and rec["cwd"]:
            self.cwd = rec["cwd"]
        ts = iso_timestamp(rec)
        if ts:
            self.last_at = max(self.last_at, ts)
        if rtype == "ai-title" and isinstance(rec.get("aiTitle"), str):
            if not self._custom_title:
                self.title = rec["aiTitle"]
        elif rtype == "custom-title" and isinstance(rec.get("customTitle"), str):
            self.title = rec["customTitle"]
            self._custom_title = True
        elif rtype == "summary" and isinstance(rec.get("summary"), str) and not self.title:
            self.title = rec["summary"]
        elif rtype == "user":
            self._user(rec, ts)
        elif rtype == "assistant":
            self._assistant(rec, ts)
        elif rtype == "system" and rec.get("subtype") == "turn_duration":
            self.set_phase("done", ts)

    def _user(self, rec: dict[str, Any], ts: float) -> None:
        msg = rec.get("message")
        if not isinstance(msg, dict) or rec.get("isMeta"):
            return  # meta records (skill bodies, command expansions) are not prompts
        content = msg.get("content")
        if isinstance(content, str):
            tags = COMMAND_TAG_RE.findall(content)
            if tags:
                for tag, val in tags:
                    if tag == "command-name":
                        self.add(Message(MessageRole.NOTICE, val.strip(), ts))
                        if val.strip() in ("/exit", "/quit"):
                            self.set_phase("ended", ts)
                return
            if content.startswith("<local-command-caveat>"):
                return
            self.add(Message(MessageRole.USER, content, ts, str(rec.get("uuid") or "")))
            if not self.first_prompt:
                self.first_prompt = content.strip().splitlines()[0][:80] if content.strip() else ""
            self.set_phase("working", ts)
            return
        if not isinstance(content, list):
            return
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "tool_result":
                tid = str(block.get("tool_use_id") or "")
                self.open_tools.pop(tid, None)
                self.close_tool(tid, "error" if block.get("is_error") else "done")
                self.set_phase("working", ts)
            elif btype == "text":
                text = str(block.get("text") or "")
                if text.startswith("[Request interrupted"):
                    self.add(Message(MessageRole.NOTICE, "Interrupted by the user", ts))
                    self.open_tools.clear()
                    self.set_phase("interrupted", ts)
                elif text:
                    self.add(Message(MessageRole.USER, text, ts))
                    self.set_phase("working", ts)

    def _assistant(self, rec: dict[str, Any], ts: float) -> None:
        msg = rec.get("message")
        if not isinstance(msg, dict):
            return
        mid = str(msg.get("id") or "")
        content = msg.get("content")
        if not isinstance(content, list):
            return
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text":
                text = str(block.get("text") or "")
                if not text:
                    continue
                last = self.messages[-1] if self.messages else None
                if last is not None and last.role is MessageRole.ASSISTANT and mid and last.key == mid:
                    self.messages[-1] = Message(last.role, last.text + "\n\n" + text, last.timestamp, mid)
                else:
                    self.add(Message(MessageRole.ASSISTANT, text, ts, mid))
            elif btype == "tool_use":
                tid = str(block.get("id") or "")
                name = str(block.get("name") or "tool")
                inp = block.get("input")
                self.open_tools[tid] = (name, inp, ts)
                summary = tool_summary(name, inp)
                self.add(Message(MessageRole.TOOL, f"{name}({summary})", ts, tid, "pending"))
        stop = msg.get("stop_reason")
        if self.open_tools:
            self.set_phase("tool", ts)
        elif stop == "end_turn":
            self.set_phase("done", ts)
        else:
            self.set_phase("working", ts)

    def pending_request(self) -> PendingRequest | None:
        """The newest unanswered tool call as a request (it may also just be running)."""
        if not self.open_tools:
            return None
        tid, (name, inp, _ts0) = next(reversed(self.open_tools.items()))
        if name == QUESTION_TOOL:
            question, options = question_parts(inp)
            return PendingRequest(RequestKind.QUESTION, name, question, options, tid, question)
        return PendingRequest(
            RequestKind.PERMISSION, name, tool_summary(name, inp), DEFAULT_PERMISSION_OPTIONS, tid
        )

    @property
    def display_title(self) -> str:
        """Generated or custom title, else the first prompt."""
        return self.title or self.first_prompt
