"""Domain types shared by every layer (DESIGN.md §3).

Everything here is an immutable value: sources produce :class:`Evidence`, the pure
status function (:mod:`deck_tray.core.status`) turns a session's evidence into a
:class:`SessionStatus` and a reason, and the registry publishes :class:`Session`
snapshots to the UI and the CLI.

Times are POSIX seconds (``float``) unless a name says otherwise.
"""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field


class AgentKind(enum.Enum):
    """The coding agents deck-tray understands; the value is the CLI/JSON spelling."""

    CLAUDE_CODE = "claude-code"
    CODEX = "codex"
    OPENCODE = "opencode"
    GEMINI_CLI = "gemini-cli"
    QWEN_CODE = "qwen-code"
    COPILOT_CLI = "copilot-cli"

    @property
    def label(self) -> str:
        """Human name shown in the window and notifications."""
        return {"claude-code": "Claude Code", "codex": "Codex", "opencode": "opencode", "gemini-cli": "Gemini CLI",
                "qwen-code": "Qwen Code", "copilot-cli": "Copilot CLI"}[self.value]


class SessionStatus(enum.Enum):
    """What a session is doing, as the user sees it; the value is the CLI/JSON spelling."""

    BUSY = "busy"
    WAITING_PERMISSION = "waiting_permission"
    WAITING_QUESTION = "waiting_question"
    IDLE = "idle"
    ENDED = "ended"
    UNKNOWN = "unknown"

    @property
    def is_waiting(self) -> bool:
        """True for the states that block the agent on the user (permission, question)."""
        return self in (SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION)

    @property
    def label(self) -> str:
        """Short human label ("Needs permission", "Working", ...)."""
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    SessionStatus.BUSY: "Working",
    SessionStatus.WAITING_PERMISSION: "Needs permission",
    SessionStatus.WAITING_QUESTION: "Asks a question",
    SessionStatus.IDLE: "Ready for a prompt",
    SessionStatus.ENDED: "Ended",
    SessionStatus.UNKNOWN: "Unknown",
}


class EvidenceSource(enum.Enum):
    """Where an observation came from. ``rank`` orders strength (higher wins while fresh)."""

    TRANSCRIPT = "transcript"
    SCREEN = "screen"
    HOOK = "hook"
    STATUS_FILE = "live status file"
    SSE = "opencode server"
    PROCESS = "process table"

    @property
    def rank(self) -> int:
        """Strength of this source: a fresh observation of a higher rank beats a lower one."""
        return _SOURCE_RANK[self]


_SOURCE_RANK = {
    EvidenceSource.TRANSCRIPT: 10,
    EvidenceSource.SCREEN: 20,
    EvidenceSource.HOOK: 30,
    EvidenceSource.STATUS_FILE: 40,
    EvidenceSource.SSE: 40,
    EvidenceSource.PROCESS: 100,
}


class RequestKind(enum.Enum):
    """Kind of a :class:`PendingRequest`."""

    PERMISSION = "permission"
    QUESTION = "question"


@dataclass(frozen=True)
class PendingRequest:
    """A permission or question the agent is blocked on.

    Attributes:
        kind: permission or question.
        tool: the tool that asks (``"Bash"``, ``"Write"``, ``"AskUserQuestion"``, ``"exec_command"``).
        summary: one line describing what is asked (the command, the file, the question).
        options: the answer labels in menu order, e.g. ``("Yes", "Yes, and don't ask again", "No")``.
        request_id: the agent's id for the request (tool_use id / call_id), ``""`` if unknown.
        question: for questions, the question text.
        asker: who asks when it is not the session itself (an opencode sub-agent's title).
    """

    kind: RequestKind
    tool: str
    summary: str
    options: tuple[str, ...] = ()
    request_id: str = ""
    question: str = ""
    asker: str = ""

    def to_json(self) -> dict[str, object]:
        """The CLI JSON shape: ``{kind, tool, summary, options: [labels]}``."""
        return {
            "kind": self.kind.value,
            "tool": self.tool,
            "summary": self.summary,
            "options": list(self.options),
            "asker": self.asker or None,
        }


@dataclass(frozen=True)
class Evidence:
    """One observation about a session.

    Attributes:
        source: where it was seen.
        status: the state it claims.
        observed_at: when the observed thing happened (POSIX seconds).
        detail: human text for the reason ("permission prompt", "turn finished").
        fresh_for: seconds the claim stays trustworthy after ``observed_at``; ``None`` = until
            a newer observation replaces it.
        pending: the request the session is blocked on, when the source knows it.
    """

    source: EvidenceSource
    status: SessionStatus
    observed_at: float
    detail: str
    fresh_for: float | None = None
    pending: PendingRequest | None = None

    def is_fresh(self, now: float) -> bool:
        """Whether the claim still holds at ``now``."""
        return self.fresh_for is None or now - self.observed_at <= self.fresh_for


@dataclass(frozen=True)
class PaneRef:
    """A terminal multiplexer pane or terminal window, by its stable id.

    Attributes:
        multiplexer: the adapter's name: ``"tmux"``, ``"zellij"``, ``"kitty"``, ``"screen"``,
            ``"wezterm"`` or ``"konsole"``.
        pane_id: tmux ``%17`` / zellij ``terminal_3`` / kitty window id ``3`` / screen window
            ``0`` / WezTerm pane id ``5`` / Konsole session ``/Sessions/2`` (never contains ``:``).
        server: tmux socket path, zellij session name, kitty ``KITTY_LISTEN_ON``, screen
            ``STY``, WezTerm ``WEZTERM_UNIX_SOCKET``, or Konsole ``"<bus name> <bus address>"``.
        label: the human location, e.g. ``"work:2.1"`` (session:window.pane), ``"window 3"``.
    """

    multiplexer: str
    pane_id: str
    server: str
    label: str = ""

    def __str__(self) -> str:
        return f"{self.multiplexer}:{self.server}:{self.pane_id}"

    @property
    def location(self) -> str:
        """Where to look, for people: ``"tmux work:2.1"``, ``"kitty window 3"``."""
        return f"{self.multiplexer} {self.label or self.pane_id}"


class MessageRole(enum.Enum):
    """What a conversation item in a tab is (see :class:`deck_tray.core.record_kinds.Kind`
    for the records each comes from)."""

    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    NOTICE = "notice"
    #: a slash command the user ran, ``/name args``
    COMMAND = "command"
    #: text the harness injected (a task notification, an IDE's open file, shell-mode output)
    HARNESS = "harness"
    #: the summary written when the conversation was compacted
    COMPACTION = "compaction"
    #: the model's thinking / reasoning summary
    THINKING = "thinking"
    #: an image the user attached (placeholder text: its media type)
    IMAGE = "image"
    #: an error the agent recorded (an API error)
    ERROR = "error"
    #: one sub-agent's thread, collapsed to one line (``state``: its status)
    SUBAGENT = "subagent"


@dataclass(frozen=True)
class Message:
    """One item of a conversation as shown in a session tab.

    Attributes:
        role: user prompt, assistant text, tool call, notice (interrupt), or one of the other
            kinds of :class:`MessageRole`.
        text: plain text (markdown for assistant text); tool calls as ``Name(summary)``;
            a sub-agent thread as ``name · n messages — last text``.
        timestamp: POSIX seconds, 0 if unknown.
        key: stable id (record uuid / call id) used to merge a tool call with its result.
        state: for tool calls: ``"pending"``, ``"done"``, ``"error"``; for a sub-agent thread
            ``"working"``, ``"waiting"``, ``"done"``; for harness text what injected it; else ``""``.
    """

    role: MessageRole
    text: str
    timestamp: float = 0.0
    key: str = ""
    state: str = ""


@dataclass(frozen=True)
class Session:
    """A snapshot of one agent conversation, as every view shows it.

    Attributes:
        id: the agent's session id (Claude session UUID, Codex thread id, opencode ``ses_…``).
        agent: which agent.
        cwd: working directory (absolute path) or ``""``.
        title: human title (generated title, or the first prompt).
        pid: the agent process id, or None when no live process is known.
        pane: the pane the agent runs in, or None.
        status: derived status.
        reason: human reason with provenance.
        pending: the pending request while waiting, else None.
        updated_at: POSIX seconds of the newest observation.
        transcript: path of the transcript / rollout file, ``""`` if none.
        messages: the recent conversation, oldest first.
        server: for opencode, the base URL of the server that runs the session; else ``""``.
        host: the configured remote host (``deck-tray remote add NAME``) the session runs on, or
            ``""`` for this machine. A remote session's ``id`` is ``"<host>:<its id there>"``
            (:func:`remote_id`), so ids stay unique across machines and ``reply HOST:ID`` works.
    """

    id: str
    agent: AgentKind
    cwd: str = ""
    title: str = ""
    pid: int | None = None
    pane: PaneRef | None = None
    status: SessionStatus = SessionStatus.UNKNOWN
    reason: str = ""
    pending: PendingRequest | None = None
    updated_at: float = 0.0
    transcript: str = ""
    messages: tuple[Message, ...] = field(default=(), compare=False)
    server: str = ""
    host: str = ""

    @property
    def local_id(self) -> str:
        """The id on the machine the session runs on (``id`` without the ``"<host>:"`` prefix)."""
        return self.id[len(self.host) + 1:] if self.host and self.id.startswith(self.host + ":") else self.id

    @property
    def display_title(self) -> str:
        """Title to show: the title, else the project folder name, else the short id."""
        if self.title:
            return self.title
        if self.cwd:
            return self.cwd.rstrip("/").rsplit("/", 1)[-1] or self.cwd
        return self.local_id[:8]

    def to_json(self) -> dict[str, object]:
        """The machine-readable shape printed by ``deck-tray sessions --json``."""
        return {
            "id": self.id,
            "agent": self.agent.value,
            "status": self.status.value,
            "reason": self.reason,
            "cwd": self.cwd,
            "title": self.title,
            "pid": self.pid,
            "pane": str(self.pane) if self.pane else None,
            "pending": self.pending.to_json() if self.pending else None,
            "updated_at": _iso(self.updated_at),
            "server": self.server or None,
            "host": self.host or None,
        }


def remote_id(host: str, session_id: str) -> str:
    """The id a session of remote ``host`` has here: ``"<host>:<session_id>"``."""
    return f"{host}:{session_id}"


@dataclass(frozen=True)
class Transition:
    """A session's status as the registry saw it change: the one stream of old → new.

    Attributes:
        session: the session as it is now (after the change).
        old: its status before, or None when the session was not known (it just appeared).
        new: its status now (``session.status``).
        reason: why it is ``new``: the decision's human reason with provenance
            (``session.reason``, e.g. "permission prompt for Bash `rm -f x` — hook, 1 s ago").
    """

    session: Session
    old: SessionStatus | None
    new: SessionStatus
    reason: str


def _iso(ts: float) -> str | None:
    if ts <= 0:
        return None
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat(timespec="milliseconds")


class DeliveryState(enum.Enum):
    """How far an answer got. Never auto-resent after ``SENT``."""

    SENT = "sent"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    SUPERSEDED = "superseded"  # answered elsewhere (the terminal) first; nothing was sent
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DeliveryReport:
    """Outcome of one dispatch.

    Attributes:
        state: the furthest state reached.
        detail: human explanation (for REFUSED: why, and what to do).
        text: the text the user asked to send, kept for a retry.
    """

    state: DeliveryState
    detail: str = ""
    text: str = ""

    @property
    def delivered(self) -> bool:
        """True when the answer reached the agent (submitted or accepted)."""
        return self.state in (DeliveryState.SUBMITTED, DeliveryState.ACCEPTED)


@dataclass(frozen=True)
class ActionReport:
    """Outcome of a session action that is not an answer (resume, open in a terminal, show the
    terminal, end, rename, dismiss, remove a worktree): shown in the session's tab, green or red.

    Attributes:
        ok: True when the action was done.
        detail: what happened, or why it was not done and what to do (one sentence, no final stop).
    """

    ok: bool
    detail: str
