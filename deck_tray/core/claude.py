"""Claude Code formats: live status files and transcripts (captured from Claude Code 2.1.197).

Files (``CONFIG`` = ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``):

* ``CONFIG/sessions/<pid>.json`` — live status of one running ``claude`` process:
  ``{"pid", "sessionId", "cwd", "procStart", "status": "busy"|"waiting"|"idle",
  "waitingFor": "permission prompt", "updatedAt" (ms), "name", "version", ...}``.
  Rewritten on every change, deleted on exit, left behind after ``kill -9``.
* ``CONFIG/projects/<cwd with non-alphanumerics as "-">/<sessionId>.jsonl`` — the
  transcript, one JSON record per line (``user``, ``assistant`` per content block,
  ``system``/``turn_duration``, metadata records such as ``ai-title``).
* Sub-agents (the ``Task`` / ``Agent`` tool): Claude 1.0.x writes their records into the
  session's own file with ``isSidechain: true``; 2.0.x into ``agent-<agentId>.jsonl`` beside it
  (records carry the *parent's* ``sessionId``); 2.1.x into ``<sessionId>/subagents/agent-<agentId>.jsonl``.
  All three become threads of the parent (:class:`SubThread`), never a session of their own.

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
from deck_tray.core.record_kinds import ClaudeQueue, Item, Kind, claude_items
from deck_tray.core.records import MAX_MESSAGES, TurnLog, iso_timestamp, question_parts
from deck_tray.core.titles import PROMPT, Titles, title_line

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

    ``waiting`` maps by ``waitingFor``:

    * ``"permission prompt"`` → WAITING_PERMISSION. 2.1.197 writes it for tool permissions
      *and* AskUserQuestion (the transcript tells which; fixture
      ``claude-code-2.1.197-sessions-pid-json-changes.jsonl``).
    * ``"input needed"`` → WAITING_QUESTION: 2.1.332 writes it for AskUserQuestion (fixture
      ``claude-code-2.1.332-sessions-pid-json-changes.jsonl``, the ``FAKE_ASK`` turn).
    * ``"dialog open"`` → UNKNOWN: one of Claude's own dialogs is up (2.1.332's "Make auto mode
      your default permission mode?" offer at start-up; its menus like ``/config``), nothing a
      reply answers: not a permission request, never announced.
    * anything else (``"worker request"``, ``"sandbox request"``, ``""``) → WAITING_PERMISSION.
    """
    if ls.status == "waiting" and ls.waiting_for == "dialog open":
        return Evidence(EvidenceSource.STATUS_FILE, SessionStatus.UNKNOWN, ls.updated_at,
                        "a dialog of Claude Code's own is open in its terminal")
    status = {
        "busy": SessionStatus.BUSY,
        "idle": SessionStatus.IDLE,
        "waiting": SessionStatus.WAITING_QUESTION if ls.waiting_for == "input needed"
        else SessionStatus.WAITING_PERMISSION,
        "shell": SessionStatus.IDLE,
    }.get(ls.status)
    if status is None:
        return None
    detail = {
        SessionStatus.BUSY: "working",
        SessionStatus.IDLE: "ready for a prompt",
        SessionStatus.WAITING_PERMISSION: ls.waiting_for or "waiting for input",
        SessionStatus.WAITING_QUESTION: "question",
    }[status]
    return Evidence(EvidenceSource.STATUS_FILE, status, ls.updated_at, detail)


_AGENT_FILE_RE = re.compile(r"(?:^|/)agent-([^/]+)\.jsonl$")


def subagent_id(path: str) -> str:
    """The ``agentId`` of a sub-agent's transcript (``agent-<id>.jsonl``), ``""`` for any other file."""
    m = _AGENT_FILE_RE.search(path)
    return m.group(1) if m else ""


def subagent_parent_id(path: str) -> str:
    """The session id of a 2.1.x sub-agent file from its folder
    (``projects/<cwd>/<session id>/subagents/agent-<id>.jsonl``); ``""`` for a 2.0.x file, whose
    records carry the parent's ``sessionId`` instead."""
    p = Path(path)
    return p.parent.parent.name if p.parent.name == "subagents" and subagent_id(path) else ""


def tool_summary(name: str, tool_input: Any) -> str:
    """One-line summary of a tool call's input (the command, the file, the question)."""
    if not isinstance(tool_input, dict):
        return ""
    if name in ("Task", "Agent") and isinstance(tool_input.get("description"), str):
        kind = tool_input.get("subagent_type")
        return f"{kind}: {tool_input['description']}" if isinstance(kind, str) and kind else tool_input["description"]
    for key in ("command", "file_path", "path", "url", "pattern", "prompt"):
        val = tool_input.get(key)
        if isinstance(val, str) and val:
            return val
    qs = tool_input.get("questions")
    if isinstance(qs, list) and qs and isinstance(qs[0], dict):
        return str(qs[0].get("question") or "")
    return json.dumps(tool_input, ensure_ascii=False)[:200]


#: Tools that start a sub-agent (``Task`` until 2.1.x, ``Agent`` in newer releases).
SUBAGENT_TOOLS = frozenset({"Task", "Agent"})
#: Harness labels a tab does not show (still indexed): Claude's own UI hides them too.
HIDDEN_HARNESS = frozenset({"caveat", "expanded command", "reminder", "memory"})
#: The prompt Claude Code 2.0.x sends a sub-agent at start-up to warm its cache (not a task).
WARMUP_PROMPT = "Warmup"


class SubThread:
    """One sub-agent's conversation, kept beside its parent's (collapsed to one tab line).

    Attributes:
        key: the sub-agent's ``agentId`` (2.0.x / 2.1.x files), or the ``uuid`` of the first
            record of an inline sidechain (1.0.x).
        name: ``"<subagent_type>: <description>"`` of the parent's ``Task`` call that started
            it (matched by prompt), ``"compacting the conversation"`` for 2.1.x's compaction
            agent (``agent-acompact-*``), else ``"sub-agent <key>"``.
        task_id: the parent's ``Task`` call that started it (``""`` when not matched).
        finished: that call has its result (the sub-agent is done).
        prompt: the task it was given (its first prompt).
        count: its conversation items (prompts, answers, tool calls).
        last: its newest answer or tool call, one line.
        started: its first record's time (POSIX s).
        phase: ``"working"``, ``"tool"`` (a call without result: running or asking), ``"done"``.
        open_tools: its calls without a result, ``{id: (name, input, time)}``.
    """

    def __init__(self, key: str, started: float) -> None:
        self.key = key
        self.name = ""
        self.prompt = ""
        self.count = 0
        self.last = ""
        self.started = started
        self.phase = "working"
        self.open_tools: dict[str, tuple[str, Any, float]] = {}
        self.task_id = ""
        self.finished = False

    @property
    def state(self) -> str:
        """``"done"`` (the parent's ``Task`` call has its result, or the thread's last answer
        ended its turn), ``"waiting"`` (a call without result: running or asking) or ``"working"``."""
        if self.finished or (self.phase == "done" and not self.open_tools):
            return "done"
        return "waiting" if self.open_tools else "working"

    def line(self) -> str:
        """The collapsed line: ``name · n messages — newest text``."""
        n = f"{self.count} message{'s' if self.count != 1 else ''}"
        last = " ".join(self.last.split())
        return f"{self.name or 'sub-agent ' + self.key[:8]} · {n}" + (f" — {last[:160]}" if last else "")


class ClaudeTranscript(TurnLog):
    """State of one Claude Code transcript, fed record by record.

    Feed every record of ``projects/*/<id>.jsonl`` in file order to :meth:`feed` (and the
    records of its sub-agents' files with ``thread=<agentId>``); read the conversation
    (:attr:`messages`), title, cwd and the transcript-level evidence (:meth:`evidence`).
    Records are classified by :func:`deck_tray.core.record_kinds.claude_items`; unknown record
    and block types are skipped. Harness text (task notifications, shell mode, IDE context),
    commands and compaction summaries are shown as what they are and never move the turn.

    Args:
        session_id: the session id when known (else taken from the records).
        max_messages: conversation items kept (the newest); None keeps all.
    """

    def __init__(self, session_id: str = "", max_messages: int | None = MAX_MESSAGES) -> None:
        super().__init__(max_messages)
        self.session_id = session_id
        self.cwd = ""
        self.titles = Titles()
        self.open_tools: dict[str, tuple[str, Any, float]] = {}
        self.threads: dict[str, SubThread] = {}
        self._sidechain_root: dict[str, str] = {}
        self._tasks: dict[str, tuple[str, str]] = {}
        self._tasks_done: set[str] = set()
        self._compacted_at = 0.0
        self.queue = ClaudeQueue()
        self._first_prompt = ""

    def reset(self) -> None:
        """Forget everything (the file was truncated or replaced)."""
        self.__init__(self.session_id, self.messages.maxlen)  # type: ignore[misc]

    @property
    def title(self) -> str:
        """Custom title, else generated title (ai-title / own summary), else ``""``."""
        return self.titles.title if self.titles.rank > PROMPT else ""

    @property
    def first_prompt(self) -> str:
        """The first prompt the user typed, one line (``""`` before it)."""
        return self._first_prompt

    def feed(self, rec: dict[str, Any], thread: str = "") -> None:
        """Apply one transcript record.

        Args:
            rec: one JSON record.
            thread: the sub-agent's ``agentId`` when ``rec`` comes from its own file
                (``agent-<id>.jsonl``); ``""`` for the session's file.
        """
        rtype = rec.get("type")
        if isinstance(rec.get("sessionId"), str) and not self.session_id:
            self.session_id = rec["sessionId"]
        if isinstance(rec.get("cwd"), str) and rec["cwd"] and not thread:
            self.cwd = rec["cwd"]
        ts = iso_timestamp(rec)
        if ts:
            self.last_at = max(self.last_at, ts)
        if not thread and rec.get("isSidechain") is True:
            thread = self._inline_thread(rec)
        if thread:
            self._side(thread, rec, ts)
            return
        self.titles.feed(rec)
        for item in self.queue.queued(rec):
            self._typed(item, ts, str(rec.get("uuid") or ""))
        if rtype == "user":
            self._user(rec, ts)
        elif rtype == "assistant":
            self._assistant(rec, ts)
        elif rtype == "system":
            if rec.get("subtype") == "turn_duration":
                self.set_phase("done", ts)
            for item in claude_items(rec):
                self.add(Message(MessageRole.ERROR, item.text, ts))

    # -- the session's own records ---------------------------------------------------------
    def _user(self, rec: dict[str, Any], ts: float) -> None:
        for item in claude_items(rec):
            kind = item.kind
            if kind is Kind.TOOL_RESULT:
                self.open_tools.pop(item.key, None)
                self.close_tool(item.key, "error" if item.error else "done")
                self.set_phase("working", ts)
                self._task_finished(item.key)
            elif kind in (Kind.USER, Kind.COMMAND):
                if self.queue.already(item):
                    if kind is Kind.USER:
                        self.set_phase("working", ts)  # the queued prompt is sent now
                    continue
                self._typed(item, ts, str(rec.get("uuid") or ""))
            elif kind is Kind.HARNESS:
                if item.label == "interrupt":
                    self.add(Message(MessageRole.NOTICE, "Interrupted by the user", ts))
                    self.open_tools.clear()
                    self.set_phase("interrupted", ts)
                elif item.label not in HIDDEN_HARNESS:
                    self.add(Message(MessageRole.HARNESS, item.text, ts, state=item.label))
            elif kind is Kind.COMPACTION:
                self.add(Message(MessageRole.COMPACTION, item.text, ts))
                self._compacted_at = max(self._compacted_at, ts or self.last_at)
                for th in self.threads.values():  # 2.1.x's compaction agent is done once its summary is in
                    if th.key.startswith("acompact") and not th.finished:
                        self._name(th)
                        self._show_thread(th)
            elif kind is Kind.IMAGE:
                self.add(Message(MessageRole.IMAGE, item.label, ts))

    def _typed(self, item: Item, ts: float, uuid: str) -> None:
        """A prompt or command the user typed (or queued)."""
        if item.kind is Kind.USER:
            self.add(Message(MessageRole.USER, item.text, ts, uuid))
            self.titles.offer(item.text, PROMPT)
            self._first_prompt = self._first_prompt or title_line(item.text)[:80]
            self.set_phase("working", ts)
            return
        self.add(Message(MessageRole.COMMAND, item.text, ts))
        if item.text != item.label:  # a command with arguments says what the session is for
            self.titles.offer(item.text, PROMPT)
        if item.label in ("/exit", "/quit"):
            self.set_phase("ended", ts)

    def _assistant(self, rec: dict[str, Any], ts: float) -> None:
        msg = rec.get("message")
        if not isinstance(msg, dict):
            return
        for item in claude_items(rec):
            self._assistant_item(item, ts)
        stop = msg.get("stop_reason")
        if self.open_tools:
            self.set_phase("tool", ts)
        elif stop == "end_turn":
            self.set_phase("done", ts)
        else:
            # An answer with no stop_reason (1.0.x–2.1.4x) may be the turn's last block.
            content = msg.get("content")
            last = content[-1] if isinstance(content, list) and content else None
            answered = stop is None and isinstance(last, dict) and last.get("type") == "text"
            self.set_phase("working", ts, unmarked=answered)

    def _assistant_item(self, item: Item, ts: float) -> None:
        mid = item.key
        if item.kind is Kind.ASSISTANT:
            last = self.messages[-1] if self.messages else None
            if last is not None and last.role is MessageRole.ASSISTANT and mid and last.key == mid:
                self.messages[-1] = Message(last.role, last.text + "\n\n" + item.text, last.timestamp, mid)
            else:
                self.add(Message(MessageRole.ASSISTANT, item.text, ts, mid))
        elif item.kind is Kind.THINKING:
            self.add(Message(MessageRole.THINKING, item.text, ts, mid))
        elif item.kind is Kind.TOOL:
            self.open_tools[item.key] = (item.label, item.data, ts)
            if item.label in SUBAGENT_TOOLS and isinstance(item.data, dict):
                prompt = str(item.data.get("prompt") or "").strip()
                kind = str(item.data.get("subagent_type") or "sub-agent")
                desc = str(item.data.get("description") or "")
                if prompt:
                    self._tasks[prompt] = (f"{kind}: {desc}" if desc else kind, item.key)
            self.add(Message(MessageRole.TOOL, f"{item.label}({tool_summary(item.label, item.data)})", ts,
                             item.key, "pending"))

    # -- sub-agents ----------------------------------------------------------------------------
    def _inline_thread(self, rec: dict[str, Any]) -> str:
        """The thread of an inline sidechain record (1.0.x): its ``agentId`` when it has one,
        else the first record of its ``parentUuid`` chain."""
        if isinstance(rec.get("agentId"), str) and rec["agentId"]:
            return str(rec["agentId"])
        uuid = str(rec.get("uuid") or "")
        parent = rec.get("parentUuid")
        root = self._sidechain_root.get(parent) if isinstance(parent, str) else None
        root = root or uuid or "sidechain"
        if uuid:
            self._sidechain_root[uuid] = root
        return root

    def _side(self, key: str, rec: dict[str, Any], ts: float) -> None:
        th = self.threads.get(key)
        if th is None:
            th = self.threads[key] = SubThread(key, ts or self.last_at)
        changed = False
        for item in claude_items(rec):
            kind = item.kind
            if kind is Kind.USER and not th.prompt:
                th.prompt = item.text.strip()
                self._name(th)
                changed = True
            elif kind in (Kind.USER, Kind.ASSISTANT):
                th.count += 1
                th.last = item.text
                changed = True
            elif kind is Kind.TOOL:
                th.count += 1
                th.open_tools[item.key] = (item.label, item.data, ts)
                th.last = f"{item.label}({tool_summary(item.label, item.data)})"
                changed = True
            elif kind is Kind.TOOL_RESULT:
                th.open_tools.pop(item.key, None)
                changed = True
        if rec.get("type") == "assistant":
            msg = rec.get("message")
            stop = msg.get("stop_reason") if isinstance(msg, dict) else None
            th.phase = "tool" if th.open_tools else ("done" if stop == "end_turn" else "working")
            changed = True
        if changed and th.prompt != WARMUP_PROMPT and th.prompt:
            self._show_thread(th)

    def adopt(self, th: SubThread) -> None:
        """Show a sub-agent thread parsed from the sub-agent's own file (named here, where the
        ``Task`` call that started it was seen)."""
        if th.prompt == WARMUP_PROMPT or not th.prompt:
            return
        self._name(th)
        self.threads[th.key] = th
        self._show_thread(th)

    def _name(self, th: SubThread) -> None:
        """Name a thread after the ``Task`` call whose prompt it was given."""
        if not th.task_id:
            label, tid = self._tasks.get(th.prompt, ("", ""))
            th.name = th.name or label or ("compacting the conversation" if th.key.startswith("acompact") else "")
            th.task_id = tid
        th.finished = th.finished or (bool(th.task_id) and th.task_id in self._tasks_done) or (
            th.key.startswith("acompact") and self._compacted_at >= th.started > 0)

    def _task_finished(self, tool_id: str) -> None:
        if not any(tid == tool_id for _label, tid in self._tasks.values()):
            return
        self._tasks_done.add(tool_id)
        for th in self.threads.values():
            if th.task_id == tool_id and not th.finished:
                th.finished = True
                th.open_tools.clear()
                self._show_thread(th)

    def _show_thread(self, th: SubThread) -> None:
        key = f"sub:{th.key}"
        msg = Message(MessageRole.SUBAGENT, th.line(), th.started, key, th.state)
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].key == key:
                self.messages[i] = msg
                return
        self.add(msg)

    # -- requests ------------------------------------------------------------------------------
    def pending_request(self) -> PendingRequest | None:
        """The newest unanswered tool call as a request (it may also just be running).

        While a sub-agent tool (``Task``) is open, a sub-agent's own open call is the request,
        with ``asker`` naming the sub-agent.
        """
        if not self.open_tools:
            return None
        tid, (name, inp, _ts0) = next(reversed(self.open_tools.items()))
        if name in SUBAGENT_TOOLS:
            waiting = [th for th in self.threads.values() if th.open_tools and th.prompt != WARMUP_PROMPT]
            if waiting:
                th = max(waiting, key=lambda t: max(v[2] for v in t.open_tools.values()))
                stid, (sname, sinp, _t) = next(reversed(th.open_tools.items()))
                req = _request(stid, sname, sinp)
                return PendingRequest(req.kind, req.tool, req.summary, req.options, req.request_id, req.question,
                                      asker=th.name or f"sub-agent {th.key[:8]}")
        return _request(tid, name, inp)

    @property
    def display_title(self) -> str:
        """Generated or custom title, else the first prompt."""
        return self.titles.title


def _request(tid: str, name: str, inp: Any) -> PendingRequest:
    if name == QUESTION_TOOL:
        question, options = question_parts(inp)
        return PendingRequest(RequestKind.QUESTION, name, question, options, tid, question)
    return PendingRequest(RequestKind.PERMISSION, name, tool_summary(name, inp), DEFAULT_PERMISSION_OPTIONS, tid)
