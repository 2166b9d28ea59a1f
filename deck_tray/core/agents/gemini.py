"""Gemini CLI (``@google/gemini-cli``, verified with 0.61.0): the adapter.

Files (``HOME`` = ``$GEMINI_CLI_HOME/.gemini``, default ``~/.gemini``):

* ``HOME/projects.json`` — ``{"projects": {"/abs/project": "slug"}}`` (``-1`` appended on a clash);
* ``HOME/tmp/<slug>/.project_root`` — the project's absolute path;
* ``HOME/tmp/<slug>/chats/session-<YYYY-MM-DDTHH-MM>-<first 8 of the session id>.jsonl`` — the
  transcript: a header ``{sessionId, projectHash, startTime, lastUpdated, kind}``, then message
  records ``{id, timestamp, type: user|gemini|info|warning, content, toolCalls?}`` where a record
  whose ``id`` was seen replaces that message, ``{"$set": {...}}`` records (``messages`` replaces
  the whole list, after a cancel) and ``{"$rewindTo": id}``. A tool call is written only once it
  has finished; nothing is written while a confirmation is open.

The state is in the **pane title** the CLI sets (``ui.dynamicWindowTitle``, on by default),
padded to 80 characters: ``◇  Ready (<folder>)``, ``✦  Working… (<folder>)``, ``✋  Action
Required (<folder>)`` (permission and ``ask_user`` alike; the screen tells them apart), emptied
on exit. Screens: ``Allow execution of [Shell]?`` / ``Apply this change?`` with ``● 1. Allow once
/ 2. Allow for this session / … / No, suggest changes (esc)``; ``Answer Questions`` with the
question and ``● 1.  Red`` … rows, then a free-text row (:data:`FREE_TEXT_LABEL`). A digit acts
at once, Esc cancels the whole turn; keys typed before the box is drawn are lost into the input
line, so the dispatcher reads the screen first.
Fixtures: ``tests/fixtures/screens/gemini-cli-0.61.0-*.txt`` (titles in ``…-titles.txt``),
``tests/fixtures/gemini-cli-0.61.0-*.jsonl``; the facts are in ``docs/agents/gemini-qwen-notes.md``.

Hooks (``HOME/settings.json``, key ``hooks``: ``{Event: [{"matcher"?, "hooks": [{"type":
"command", "name", "command", "timeout" (ms)}]}]}``; ``tests/fixtures/gemini-cli-0.61.0-hooks.jsonl``,
``/work/shared/reference/gemini-qwen-copilot.md`` §5). deck-tray installs :data:`HOOK_EVENTS`.
Every payload on stdin has ``{session_id (the chats file's sessionId), transcript_path (that
file), cwd, hook_event_name, timestamp}``, plus:

* ``Notification``: ``notification_type: "ToolPermission"``, ``message``, ``details: {type:
  "exec", title, command, rootCommand}`` (shell), ``{type: "edit", fileName, filePath, …}``
  (write/replace) or ``{type: "ask_user", title: "Ask User"}`` (the question text is not sent);
* ``BeforeAgent``: ``prompt``; ``AfterAgent``: ``prompt``, ``prompt_response``, ``stop_hook_active``;
* ``SessionStart``: ``source: "startup"|"resume"|"clear"``; ``SessionEnd``: ``reason: "exit"``
  (fired 2–3 times on one ``/quit``).

Rules that shape what is installed: the hooks are awaited *before* the prompt is drawn (a slow
hook delays the prompt: the forwarder never waits for Gemini); no hook output approves a
confirmation (answers stay keys); on lifecycle events (SessionStart, SessionEnd, PreCompress)
``matcher`` is compared by exact string with the source/reason, so ``".*"`` silently stops them
firing: deck-tray's groups have no ``matcher`` at all.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from typing_extensions import override

from deck_tray.core import hooks_config as hc
from deck_tray.core.agents.base import (
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
from deck_tray.core.records import iso_seconds
from deck_tray.core.reply import PlanError
from deck_tray.core.screens import Screen, ScreenKind
from deck_tray.core.titles import title_line

#: Title prefixes (the first character, then two spaces) and what they say, from
#: ``tests/fixtures/screens/gemini-cli-0.61.0-titles.txt``.
_TITLES = {
    "◇": (SessionStatus.IDLE, "ready for a prompt (pane title)"),
    "✦": (SessionStatus.BUSY, "working (pane title)"),
    "✋": (SessionStatus.WAITING_PERMISSION, "action required (pane title)"),
}
_PERMISSION_Q = re.compile(r"^(?:Allow execution of .*\?|Apply this change\?|Allow .*\?|Do you want to .*\?)$")
_TOOL_HEAD = re.compile(r"^\?\s+(\S+)\s+(.*\S)\s*$")
_BUSY = re.compile(r"\(esc to cancel(?:, [\dhms ]+)?\)")
_INPUT = re.compile(r"^>\s?(.*)$")
#: The input line's placeholder while it is empty.
PLACEHOLDER = "Type your message or @path/to/file"
#: The hook events deck-tray installs (all seen firing in 0.61.0).
HOOK_EVENTS = ("Notification", "BeforeAgent", "AfterAgent", "SessionStart", "SessionEnd")
#: Events whose ``matcher`` is compared by exact string (a regex there stops them firing).
LIFECYCLE_EVENTS = frozenset({"SessionStart", "SessionEnd", "PreCompress"})
#: A hook's ``timeout`` in milliseconds (the forwarder returns in ~50 ms).
HOOK_TIMEOUT_MS = 10_000
#: ``SessionEnd`` reasons that end the process (``clear`` starts over in the same process).
_END_REASONS = {"exit": "the user quit", "logout": "the user logged out"}
#: The folder-trust dialog of a first run in a folder.
_TRUST_Q = "Do you trust the files in this folder?"
#: A question's free-text row: the last row, which 0.61.0 adds after the options of a choice
#: question, showing the placeholder ``Enter a custom value`` (or one the model chose) or the text
#: typed there (``4.  abc ✓`` once the cursor left it, ``…-question-free-text-kept.txt``). The list
#: shows a few rows at a time, so it is often hidden under ``▼`` (``gemini-cli-0.61.0-question.txt``);
#: the cursor wraps around, so Up from row 1 reaches it. While the cursor is on it, it takes typing
#: (digits too) and the footer reads ``Enter to submit · Esc to cancel``
#: (``…-question-free-text.txt``, ``…-free-text-draft.txt``); Enter sends its text (a bracketed
#: paste keeps its newlines) as the answer, and does nothing while it is empty.
FREE_TEXT_LABEL = "Enter a custom value"
#: The question footer while the free-text row is selected (``Enter to select · ↑/↓ to navigate`` else).
_EDITING_FOOT = "Enter to submit"



def _text(content: Any) -> str:
    """The text of a message's ``content`` (a string, or a list of ``{text}`` parts), without the
    ``<session_context>`` part the CLI puts first (after a cancel, 0.61.0 rewrites the list with
    that part and the prompt in one user record: ``gemini-cli-0.61.0-cancelled.jsonl``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                       and not p["text"].lstrip().startswith("<session_context>"))
    return ""


def _is_tool_result(content: Any) -> bool:
    return isinstance(content, list) and any(isinstance(p, dict) and "functionResponse" in p for p in content)


def _call_summary(call: Mapping[str, Any]) -> str:
    desc = call.get("description")
    return tool_summary(call.get("args")) or (desc if isinstance(desc, str) else "")


class GeminiTranscript(TranscriptState):
    """A Gemini CLI ``chats/session-*.jsonl`` (0.61.0) fed record by record (see the module
    docstring for the record kinds); :meth:`settle` rebuilds :attr:`messages` after a batch."""

    def __init__(self, cwd: str = "") -> None:
        super().__init__()
        self.cwd = cwd
        self._records: dict[str, dict[str, Any]] = {}
        self._dirty = False

    @override
    def reset(self) -> None:
        cwd = self.cwd
        self.__init__(cwd)  # type: ignore[misc]

    @override
    def feed(self, rec: dict[str, Any]) -> None:
        if "$set" in rec and isinstance(rec["$set"], dict):
            upd = rec["$set"]
            if isinstance(upd.get("messages"), list):
                self._records = {}
                for m in upd["messages"]:
                    if isinstance(m, dict):
                        self._upsert(m)
            self.last_at = max(self.last_at, iso_seconds(upd.get("lastUpdated")))
            self._dirty = True
            return
        if "$rewindTo" in rec:
            target = rec["$rewindTo"]
            keys = list(self._records)
            if target in self._records:
                for k in keys[keys.index(target):]:
                    del self._records[k]
            self._dirty = True
            return
        if "sessionId" in rec and "type" not in rec:
            self.session_id = str(rec["sessionId"])
            self.started_at = iso_seconds(rec.get("startTime"))
            self.last_at = max(self.last_at, iso_seconds(rec.get("lastUpdated")), self.started_at)
            return
        if isinstance(rec.get("id"), str) and isinstance(rec.get("type"), str):
            self._upsert(rec)
            self._dirty = True

    def _upsert(self, rec: dict[str, Any]) -> None:
        rid = rec.get("id")
        if not isinstance(rid, str):
            return
        old = self._records.get(rid)
        self._records[rid] = {**old, **rec} if old is not None else rec
        self.last_at = max(self.last_at, iso_seconds(rec.get("timestamp")))

    def settle(self) -> None:
        """Rebuild :attr:`messages` and :attr:`title` after records were fed."""
        if not self._dirty:
            return
        self._dirty = False
        out: list[Message] = []
        title = ""
        for rid, rec in self._records.items():
            at = iso_seconds(rec.get("timestamp"))
            rtype = rec.get("type")
            content = rec.get("content")
            if rtype == "user":
                if _is_tool_result(content):
                    continue
                text = _text(content)
                if not text.strip():
                    continue
                title = title or title_line(text)
                out.append(Message(MessageRole.USER, text, at, rid))
            elif rtype == "gemini":
                for i, call in enumerate(rec.get("toolCalls") or []):
                    if not isinstance(call, dict):
                        continue
                    name = str(call.get("displayName") or call.get("name") or "tool")
                    status = call.get("status")
                    state = "done" if status == "success" else "error" if status in ("error", "cancelled") else \
                        "pending"
                    out.append(Message(MessageRole.TOOL, f"{name}({_call_summary(call)})", at,
                                       str(call.get("id") or f"{rid}:{i}"), state))
                text = _text(content)
                if text.strip():
                    out.append(Message(MessageRole.ASSISTANT, text, at, rid))
            elif rtype == "info":
                text = _text(content)
                if text.strip():
                    out.append(Message(MessageRole.NOTICE, text, at, rid))
            elif rtype in ("warning", "error"):
                text = _text(content)
                if text.strip():
                    out.append(Message(MessageRole.ERROR, text, at, rid))
        self.messages = out
        self.title = title

    @override
    def evidence(self) -> Evidence | None:
        self.settle()
        last = next(reversed(self._records.values()), None) if self._records else None
        if last is None:
            return None
        at = iso_seconds(last.get("timestamp")) or self.last_at
        rtype = last.get("type")
        content = last.get("content")
        if rtype == "user":
            if isinstance(content, list) and any(isinstance(p, dict) and str(p.get("text") or "").lstrip()
                                                 .startswith("<session_context>") for p in content):
                # The CLI's own context record: written at the start, and again with the last
                # prompt after a cancel (gemini-cli-0.61.0-cancelled.jsonl); no turn runs.
                return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, at, "ready (no turn running)")
            what = "a tool's result went back to the model" if _is_tool_result(content) else "prompt sent"
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, at, what)
        if rtype == "gemini":
            calls = [c for c in (last.get("toolCalls") or []) if isinstance(c, dict)]
            if not _text(content).strip() and not calls:
                # The reply is recorded before its tool call runs or is confirmed (0.61.0).
                return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, at, "the model asked for a tool")
            if calls and not _text(content).strip():
                return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.BUSY, at, "a tool ran")
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, at, "turn finished")
        if rtype == "info":
            return Evidence(EvidenceSource.TRANSCRIPT, SessionStatus.IDLE, at, _text(content).strip() or "notice")
        return None


def read_screen(text: str) -> Screen:
    """Parse a Gemini CLI 0.61.0 pane (fixtures ``gemini-cli-0.61.0-*.txt``)."""
    lines = boxed_lines(text)
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if _PERMISSION_Q.match(line) or line == _TRUST_Q:
            options = numbered_options(lines, i + 1)
            if not options:
                continue
            tool = subject = ""
            for above in reversed(lines[max(0, i - 12):i]):
                m = _TOOL_HEAD.match(above)
                if m:
                    tool, subject = m.group(1), m.group(2)
                    break
            if line == _TRUST_Q:
                tool, subject = "trust folder", line
            return Screen(ScreenKind.PERMISSION, line, options, "", tool, subject)
        if line == "Answer Questions":
            question = next((q for q in lines[i + 1:] if q and not q[0].isdigit() and not q.startswith("●")), "")
            options = numbered_options(lines, i + 1)
            if options:
                # The row's own text cannot be told from a placeholder the model chose, so
                # ``draft`` stays empty and ``free_text`` only says that the row takes typing.
                editing = any(ln.startswith(_EDITING_FOOT) for ln in lines[i + 1:])
                return Screen(ScreenKind.QUESTION, question, options, "", "ask_user", question,
                              free_text=editing and any(o.selected for o in options))
    bottom = lines[-12:]
    if any(_BUSY.search(line) for line in bottom):
        return Screen(ScreenKind.BUSY)
    for line in reversed(bottom):
        m = _INPUT.match(line)
        if m:
            draft = m.group(1).strip()
            return Screen(ScreenKind.IDLE, draft="" if draft == PLACEHOLDER else draft)
    return Screen(ScreenKind.UNKNOWN)


#: ``_project_slugs`` answers by ``HOME``: ``(the files' stat key, {path: slug})``.
_SLUG_CACHE: dict[Path, tuple[tuple[tuple[int, int] | None, ...], dict[str, str]]] = {}


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _project_slugs(home: Path) -> dict[str, str]:
    """``{absolute project path: slug}`` from ``projects.json``, else from ``tmp/*/.project_root``.

    Read again only when ``projects.json`` or the ``tmp`` folder changed (mtime, size): a scan
    asks every tick while a Gemini CLI runs. An answer is kept only when every folder of ``tmp``
    named its project (a folder Gemini just made may not hold ``.project_root`` yet).
    """
    key = (_stat_key(home / "projects.json"), _stat_key(home / "tmp"))
    hit = _SLUG_CACHE.get(home)
    if hit is not None and hit[0] == key:
        return hit[1]
    out: dict[str, str] = {}
    try:
        data = json.loads((home / "projects.json").read_text(encoding="utf-8"))
        projects = data.get("projects") if isinstance(data, dict) else None
        if isinstance(projects, dict):
            out.update({str(k): str(v) for k, v in projects.items()})
    except (OSError, ValueError):
        pass
    tmp = home / "tmp"
    try:
        slugs = os.listdir(tmp)
    except OSError:
        slugs = []
    known = set(out.values())
    complete = True
    for slug in slugs:
        if slug in known:
            continue
        try:
            root = (tmp / slug / ".project_root").read_text(encoding="utf-8").strip()
        except OSError:
            complete = complete and not (tmp / slug).is_dir()
            continue
        if root:
            out.setdefault(root, slug)
    if complete:
        if len(_SLUG_CACHE) >= 16:
            _SLUG_CACHE.clear()
        _SLUG_CACHE[home] = (key, out)
    else:
        _SLUG_CACHE.pop(home, None)
    return out


def _project_root(path: str) -> str:
    """The project folder of a ``tmp/<slug>/chats/…`` transcript, from ``.project_root``."""
    try:
        return (Path(path).parent.parent / ".project_root").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


class GeminiAdapter(AgentAdapter):
    """Gemini CLI 0.61.0 (see the module docstring)."""

    kind = AgentKind.GEMINI_CLI
    binary = "gemini"
    env_keys = ("GEMINI_CLI_HOME",)
    title_rules = True
    free_text_label = FREE_TEXT_LABEL

    @override
    def home(self, env: Mapping[str, str]) -> Path:
        base = env.get("GEMINI_CLI_HOME") or env.get("HOME") or os.path.expanduser("~")
        return Path(base) / ".gemini"

    @override
    def watch_roots(self, home: Path) -> list[Path]:
        return [home / "tmp"]

    @override
    def transcripts(self, home: Path) -> list[str]:
        return [str(p) for p in (home / "tmp").glob("*/chats/session-*.jsonl")]

    @override
    def owns(self, home: Path, path: str) -> bool:
        return path.startswith(str(home / "tmp") + os.sep) and "/chats/session-" in path and path.endswith(".jsonl")

    @override
    def new_transcript(self, path: str) -> TranscriptState:
        return GeminiTranscript(_project_root(path))

    @override
    def matches_process(self, name: str, cmdline: Sequence[str]) -> bool:
        return runs_node_script(name, cmdline, "gemini", "@google/gemini-cli")

    @override
    def link(self, home: Path, procs: Sequence[LiveProcess],
             states: Mapping[str, TranscriptState]) -> dict[int, str]:
        # Gemini writes no pid anywhere and does not hold its transcript open (0.61.0): a
        # process gets the file of its project folder that it started (the header's startTime
        # is at most a few seconds after the process's start), newest first; else the file of
        # that folder written last (a resumed session).
        if not procs:
            return {}
        slugs = _project_slugs(home)
        by_dir: dict[str, list[tuple[str, TranscriptState]]] = {}
        for path, st in states.items():
            by_dir.setdefault(str(Path(path).parent.parent), []).append((path, st))
        out: dict[int, str] = {}
        taken: set[str] = set()
        for proc in sorted(procs, key=lambda p: -p.started_at):
            slug = slugs.get(proc.cwd)
            cands = by_dir.get(str(home / "tmp" / slug), []) if slug else []
            cands = [(p, s) for p, s in cands if p not in taken]
            started = [(p, s) for p, s in cands if s.started_at >= proc.started_at - 2.0]
            pick = min(started, key=lambda ps: ps[1].started_at, default=None) or \
                max(cands, key=lambda ps: ps[1].last_at, default=None)
            if pick is not None:
                out[proc.pid] = pick[0]
                taken.add(pick[0])
        return out

    @override
    def title_status(self, title: str) -> tuple[SessionStatus, str] | None:
        head = title.lstrip()[:1]
        return _TITLES.get(head) if head and title.lstrip()[1:3] == "  " else None

    @override
    def read_screen(self, text: str) -> Screen:
        return read_screen(text)

    @override
    def free_text_keys(self, screen: Screen) -> list[str]:
        """Up as many times as the selected row's number: the cursor wraps from row 1 to the last
        row, the free-text row (:data:`FREE_TEXT_LABEL`), whether or not it is drawn; ``[]`` when
        it takes typing already (0.61.0, ``gemini-cli-0.61.0-question-free-text.txt``: one Up
        from ``● 1.  Red``). Its own digit is often not on the screen. A multi-select question
        ends with a ``Done`` row instead (0.61.0's source, not captured): the wait for the text
        field then fails and nothing is typed.

        Raises:
            PlanError: no selected row can be read, or the cursor is on the free-text row already
                and it shows something other than its default placeholder (text typed in the
                terminal, or a placeholder the model chose: the two look alike).
        """
        if screen.free_text:
            cur = next((o for o in screen.options if o.selected), None)
            if cur is not None and cur.label != FREE_TEXT_LABEL:
                raise PlanError(f"the question's text field may already hold text typed in the terminal "
                                f"({cur.label[:40]!r}); send it or clear it there first (your text is kept)")
            return []
        cur = next((o for o in screen.options if o.selected and o.number.isdigit()), None)
        if cur is None:
            raise PlanError("the menu's selected row cannot be read on the agent's screen; answer it in the terminal")
        return ["Up"] * int(cur.number)

    @override
    def exit_command(self) -> str:
        return "/quit"

    # -- hooks ---------------------------------------------------------------------------
    hook_events = HOOK_EVENTS

    @override
    def hook_file(self, home: Path) -> Path | None:
        return home / "settings.json"

    def hook_group(self, event: str, command: str) -> Json:
        """The group deck-tray appends for ``event``: no ``matcher`` (see the module docstring)."""
        return {"hooks": [{"type": "command", "name": "deck-tray", "command": command, "timeout": HOOK_TIMEOUT_MS}]}

    @override
    def merge_hooks(self, data: Json, exe: Sequence[str]) -> tuple[Json, list[str]]:
        return hc.merge_hooks(data, self.hook_events, self.kind, exe, group=self.hook_group)

    @override
    def hooks_state(self, data: Json, exe: Sequence[str],
                    exists: Callable[[str], bool] | None = None) -> tuple[hc.HookState, str]:
        state, detail = hc.hooks_state(data, self.hook_events, self.kind, exe, exists)
        found = data.get("hooks")
        hooks: Json = found if isinstance(found, dict) else {}
        muted = [event for event in self.hook_events if event in LIFECYCLE_EVENTS
                 for group in hooks.get(event, []) if isinstance(group, dict)
                 and group.get("matcher") not in (None, "", "*")
                 and any(hc.our_executable(h.get("command"), self.kind, exe) is not None
                         for h in group.get("hooks", []) if isinstance(h, dict))]
        if muted and state is hc.HookState.INSTALLED:
            return hc.HookState.PARTIAL, (f"{', '.join(muted)} never fire: their matcher is compared as an exact "
                                          "string there; run 'deck-tray hooks install' to remove it")
        return state, detail

    @override
    def hook_status(self, event: str, payload: Mapping[str, Any]) -> HookClaim | None:
        if event == "Notification":
            if payload.get("notification_type") != "ToolPermission":
                return None
            found = payload.get("details")
            details: Mapping[str, Any] = found if isinstance(found, dict) else {}
            kind = details.get("type")
            if kind == "ask_user":  # the question's text is not in the payload: the screen has it
                return HookClaim(SessionStatus.WAITING_QUESTION, "question")
            if kind == "exec":
                summary, tool = str(details.get("command") or ""), "run_shell_command"
            else:
                summary = str(details.get("filePath") or details.get("fileName") or details.get("title") or "")
                tool = "edit" if kind == "edit" else str(details.get("title") or "a tool")
            return HookClaim(SessionStatus.WAITING_PERMISSION, "permission prompt",
                             PendingRequest(RequestKind.PERMISSION, tool, summary))
        if event == "BeforeAgent":
            return HookClaim(SessionStatus.BUSY, "working on a prompt")
        if event == "AfterAgent":
            return HookClaim(SessionStatus.IDLE, "turn finished")
        if event == "SessionStart":
            return session_start_claim(payload)
        if event == "SessionEnd":
            reason = payload.get("reason")
            if reason == "clear":
                return None
            return HookClaim(SessionStatus.ENDED, _END_REASONS.get(str(reason), "session ended"))
        return None


ADAPTER = GeminiAdapter()
