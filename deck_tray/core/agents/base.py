"""What an agent is to deck-tray: one :class:`AgentAdapter` (issue #19).

An adapter says, for one coding-agent CLI:

* **where its sessions live and how to find its processes** — :meth:`AgentAdapter.home`,
  :meth:`~AgentAdapter.watch_roots`, :meth:`~AgentAdapter.transcripts`,
  :meth:`~AgentAdapter.matches_process`, :meth:`~AgentAdapter.link`;
* **its record parser** — :meth:`~AgentAdapter.new_transcript` returns a
  :class:`TranscriptState` fed one JSON record at a time;
* **its screen and title rules** — :meth:`~AgentAdapter.title_status` (the pane title the
  agent sets) and :meth:`~AgentAdapter.read_screen` (``tmux capture-pane -p`` text), each
  citing the captured fixture it was written from;
* **its answer channels**, in order of preference — :attr:`~AgentAdapter.channels`
  (``"keys"``: typed into the pane by :mod:`deck_tray.services.dispatcher` with the plan of
  :func:`deck_tray.core.reply.plan`, which reads the options from :meth:`read_screen`), and
  how a question's free-text row is reached (:attr:`~AgentAdapter.free_text_label`,
  :meth:`~AgentAdapter.free_text_keys`);
* **its hooks** — which events deck-tray installs (:attr:`~AgentAdapter.hook_events`), in which
  file (:meth:`~AgentAdapter.hook_file`) and how its entries are merged, removed and checked
  there (:meth:`~AgentAdapter.merge_hooks`, :meth:`~AgentAdapter.remove_hooks`,
  :meth:`~AgentAdapter.hooks_state`, over the generic rules of :mod:`deck_tray.core.hooks_config`);
  what one payload claims (:meth:`~AgentAdapter.hook_status`, a :class:`HookClaim`) and which
  session it names (:meth:`~AgentAdapter.hook_session_id`); and, for an agent whose hook can
  take a permission decision (:attr:`~AgentAdapter.decision_event`), the decision's output
  (:meth:`~AgentAdapter.decision_output`). The forwarder (``deck-tray hook <agent>``), the hook
  store and ``deck-tray hooks`` use only these, with no per-agent branches.

The generic machinery — tailing transcripts incrementally, pairing live processes with their
sessions, turning titles and screens into :class:`~deck_tray.core.model.Evidence` — lives in
:mod:`deck_tray.core.agents.source` and the collector; adding an agent means writing its adapter
module, capturing its fixtures and adding one line to :data:`deck_tray.core.agents.ADAPTERS`.
Claude Code, Codex and opencode predate this interface and keep their own modules
(:mod:`deck_tray.core.claude`, :mod:`deck_tray.core.codex`, :mod:`deck_tray.core.opencode`).
"""

from __future__ import annotations

import copy
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from deck_tray.core import hooks_config as hc
from deck_tray.core.model import AgentKind, Evidence, Message, PendingRequest, SessionStatus
from deck_tray.core.reply import OPTIONS_ONLY, PlanError, Reply, arrow_keys
from deck_tray.core.screens import Screen

Json = dict[str, Any]
#: The message a deny carries when the user gave none.
DEFAULT_DENY = "The user denied this from deck-tray."


@dataclass(frozen=True)
class HookClaim:
    """What one hook payload says about its session (:meth:`AgentAdapter.hook_status`).

    Attributes:
        status: the state it claims (``ENDED`` for the end of the session).
        reason: words for the reason (``"permission prompt"``).
        pending: the request it announces, when it says what is asked.
    """

    status: SessionStatus
    reason: str
    pending: PendingRequest | None = None


def session_start_claim(payload: Mapping[str, Any]) -> HookClaim | None:
    """What a ``SessionStart`` hook says, by its ``source`` (Claude Code's event, which Gemini CLI
    0.61.0 and Qwen Code 0.24.4 copy): ``startup`` / ``clear`` a new session, ``resume`` a resumed
    one, both idle; any other source (``compact``) nothing."""
    source = payload.get("source")
    if source in ("startup", "resume", "clear"):
        return HookClaim(SessionStatus.IDLE, "resumed" if source == "resume" else "new session")
    return None


#: Argument names whose value says what a tool call does, best first (the shell command, the
#: file, the pattern …; Gemini CLI 0.61.0, Qwen Code 0.24.4 and Copilot CLI 1.0.102 tool calls).
SUMMARY_KEYS = ("command", "file_path", "path", "pattern", "url", "query", "message", "description")


def tool_summary(args: Any) -> str:
    """One line for a tool call's arguments: the first of :data:`SUMMARY_KEYS` holding text; ``""``."""
    if isinstance(args, dict):
        for key in SUMMARY_KEYS:
            val = args.get(key)
            if isinstance(val, str) and val:
                return val
    return ""


def runs_node_script(name: str, cmdline: Sequence[str], binary: str, package: str) -> bool:
    """True when a process is ``binary`` itself, or node/bun running it: the first argument that
    is no option is ``…/binary`` (the npm ``.bin`` link) or lies in the package's folder
    (``package`` as in ``node_modules``: ``@google/gemini-cli``)."""
    if name == binary:
        return True
    if name not in ("node", "bun") or len(cmdline) < 2:
        return False
    script = next((a for a in cmdline[1:] if not a.startswith("-")), "")
    return script.rsplit("/", 1)[-1] == binary or f"/{package}/" in script

@dataclass(frozen=True)
class LiveProcess:
    """A running process of an adapter's agent (from the process table).

    Attributes:
        pid: the process (the innermost of a launcher chain: the one that does the work).
        cwd: its working directory, ``""`` if unreadable.
        started_at: its start, POSIX seconds (psutil ``create_time``).
        env: the variables of its environment the adapter asked for
            (:attr:`AgentAdapter.env_keys`), to find its home folder.
    """

    pid: int
    cwd: str
    started_at: float
    env: Mapping[str, str]


class TranscriptState(ABC):
    """The parsed state of one session file, fed record by record in file order.

    Attributes:
        session_id: the agent's id for the session (``""`` until a record names it).
        cwd: its working folder (``""`` if the file does not say).
        title: the first prompt the user typed (or a title the agent recorded).
        messages: the conversation, oldest first.
        last_at: the newest record's time, POSIX seconds (0 if none has one).
        started_at: when the agent started the session, POSIX seconds (0 if unknown).
    """

    def __init__(self) -> None:
        self.session_id = ""
        self.cwd = ""
        self.title = ""
        self.messages: list[Message] = []
        self.last_at = 0.0
        self.started_at = 0.0

    @abstractmethod
    def feed(self, rec: dict[str, Any]) -> None:
        """Apply one JSON record (a line of the file)."""

    def reset(self) -> None:
        """Forget everything (the file was truncated or replaced and is read again)."""
        self.__init__()  # type: ignore[misc]

    def settle(self) -> None:  # noqa: B027 (optional: most parsers keep their fields current)
        """Bring derived fields (:attr:`messages`, :attr:`title`) up to date after a batch of
        :meth:`feed` calls (a parser that keeps them current as it goes does nothing)."""

    @abstractmethod
    def evidence(self) -> Evidence | None:
        """What the file alone says the session does (rank :attr:`EvidenceSource.TRANSCRIPT`),
        or None when it says nothing."""

    def pending_request(self) -> PendingRequest | None:
        """The tool call the file shows as open (it may be waiting for permission), or None."""
        return None


class AgentAdapter(ABC):
    """One coding-agent CLI, as deck-tray watches and answers it (see the module docstring).

    Class attributes:
        kind: the agent (its value is the ``sessions --json`` spelling).
        binary: its executable's name (``gemini``), as ``deck-tray doctor`` looks it up.
        env_keys: environment variables of its process that move its home folder
            (``GEMINI_CLI_HOME``); read from ``/proc/<pid>/environ``.
        channels: its answer channels, best first: ``"hook"`` (its own hook takes the
            decision), ``"keys"`` (typed into its pane).
        title_rules: whether its pane title says its state (then :meth:`title_status` is read
            for every pane in the one ``list-panes`` per tmux server).
    """

    kind: ClassVar[AgentKind]
    binary: ClassVar[str]
    env_keys: ClassVar[tuple[str, ...]] = ()
    channels: ClassVar[tuple[str, ...]] = ("keys",)
    title_rules: ClassVar[bool] = False

    # -- where its sessions live -------------------------------------------------------
    @abstractmethod
    def home(self, env: Mapping[str, str]) -> Path:
        """Its data folder for a process with environment ``env`` (``os.environ`` for this
        user's default)."""

    def default_home(self) -> Path:
        """:meth:`home` for deck-tray's own environment."""
        return self.home(os.environ)

    @abstractmethod
    def watch_roots(self, home: Path) -> list[Path]:
        """Folders whose changes matter (file watchers); they may not exist yet."""

    @abstractmethod
    def transcripts(self, home: Path) -> list[str]:
        """Every session file under ``home`` (paths; their age is checked by the caller)."""

    def owns(self, home: Path, path: str) -> bool:
        """True when a changed ``path`` is one of this agent's session files under ``home``."""
        return path.startswith(str(home) + os.sep) and path.endswith(".jsonl")

    def session_id_for(self, path: str) -> str:
        """The session id a session file names before any record says it (the file may not
        exist yet): its name without ``.jsonl`` by default."""
        return Path(path).stem

    @abstractmethod
    def new_transcript(self, path: str) -> TranscriptState:
        """A fresh parser state for the session file ``path``."""

    # -- its processes ----------------------------------------------------------------
    @abstractmethod
    def matches_process(self, name: str, cmdline: Sequence[str]) -> bool:
        """True when a process (``psutil`` ``name()`` and ``cmdline()``) is this agent (or its
        launcher: a launcher's child of the same agent is kept, the launcher dropped)."""

    @abstractmethod
    def link(self, home: Path, procs: Sequence[LiveProcess],
             states: Mapping[str, TranscriptState]) -> dict[int, str]:
        """Which session file each live process writes: ``{pid: path}`` (a process absent
        from the answer has no file yet). ``states`` are the parsed files by path."""

    # -- its screen and title ------------------------------------------------------------
    def title_status(self, title: str) -> tuple[SessionStatus, str] | None:
        """The state the pane title ``title`` says (status, words for the reason), or None
        when the title is not this agent's."""
        return None

    @abstractmethod
    def read_screen(self, text: str) -> Screen:
        """Parse the bottom of its pane (``capture-pane -p`` text)."""

    #: The label :meth:`read_screen` gives the free-text row of its question menus (the row where
    #: the user types an answer of their own), ``""`` when its questions take only their options.
    #: Its parser sets :attr:`Screen.free_text` while that row is selected and takes typing, and
    #: ``Screen.draft`` to what the row already holds.
    free_text_label: ClassVar[str] = ""

    def free_text_keys(self, screen: Screen) -> list[str]:
        """The keys (tmux names) that move the question menu on ``screen`` onto its free-text row,
        where typing goes into the answer: ``[]`` when the row is selected already, its digit
        when it has one, else Up/Down from the selected row (a menu without digits). The caller
        then waits for :attr:`Screen.free_text` before typing.

        Raises:
            PlanError: the agent's questions take only their options, or the free-text row is not
                on the screen (it may hold text typed in the terminal).
        """
        if not self.free_text_label:
            raise PlanError(OPTIONS_ONLY)
        row = screen.option(self.free_text_label)
        if row is None:
            raise PlanError(f"the question's free-text row ({self.free_text_label!r}) is not on the agent's "
                            "screen (it may hold text typed in the terminal); answer there (your text is kept)")
        if row.selected:
            return []
        return [row.number] if row.number else arrow_keys(screen, row)

    def exit_command(self) -> str:
        """What typed at its prompt ends it (``/quit``), ``""`` when none is known."""
        return ""

    # -- its hooks ---------------------------------------------------------------------
    #: The events deck-tray installs a hook for (the agent's own spelling); ``()``: no hooks.
    hook_events: ClassVar[tuple[str, ...]] = ()
    #: The event whose hook can carry a permission decision (its stdout), ``""`` when the
    #: agent's hooks cannot approve anything. While that hook runs the agent shows no prompt
    #: (Qwen Code 0.24.4, Copilot CLI 1.0.102), so it is held only for the short
    #: "Let hooks wait for deck-tray" setting (:mod:`deck_tray.core.decisions`).
    decision_event: ClassVar[str] = ""
    #: :meth:`hook_file` is deck-tray's own (written whole, removed with the hooks), in the
    #: flat ``{"version": 1, "hooks": {event: [handler]}}`` shape; else it is the user's
    #: settings file with Claude-style groups, edited in place.
    hook_file_owned: ClassVar[bool] = False

    def hook_file(self, home: Path) -> Path | None:
        """The file deck-tray's hooks go into, for the agent's data folder ``home`` (None: the
        agent has no hooks)."""
        return None

    def hook_command(self, exe: Sequence[str], event: str) -> str:
        """The shell command of deck-tray's hook for ``event``: ``EXE hook <agent>``."""
        return hc.hook_command(exe, self.kind)

    def merge_hooks(self, data: Json, exe: Sequence[str]) -> tuple[Json, list[str]]:
        """``data`` (the parsed :meth:`hook_file`) with deck-tray's hooks for :attr:`hook_events`,
        the user's own entries kept; and the changes made (``[]``: nothing to do)."""
        return copy.deepcopy(data), []

    def remove_hooks(self, data: Json, exe: Sequence[str]) -> tuple[Json, list[str]]:
        """``data`` without deck-tray's hooks; and the changes made."""
        return hc.remove_hooks(data, self.kind, exe)

    def hooks_state(self, data: Json, exe: Sequence[str],
                    exists: Callable[[str], bool] | None = None) -> tuple[hc.HookState, str]:
        """How far deck-tray's hooks are installed in ``data`` (state, one sentence)."""
        return hc.hooks_state(data, self.hook_events, self.kind, exe, exists)

    def hook_session_id(self, payload: Mapping[str, Any]) -> str:
        """The session a payload belongs to (``session_id``), ``""`` if it names none."""
        sid = payload.get("session_id")
        return sid if isinstance(sid, str) else ""

    def hook_event_name(self, payload: Mapping[str, Any]) -> str:
        """The event of a payload (``hook_event_name``), ``""`` if it does not say."""
        name = payload.get("hook_event_name")
        return name if isinstance(name, str) else ""

    def hook_status(self, event: str, payload: Mapping[str, Any]) -> HookClaim | None:
        """What the payload of a hook for ``event`` claims, or None when it says nothing about
        the state."""
        return None

    def decision_output(self, reply: Reply, payload: Mapping[str, Any]) -> Json | None:
        """What the :attr:`decision_event` hook prints for ``reply`` (an allow or deny), or None
        when the agent's hook cannot carry it (then the answer is typed).

        Raises:
            ValueError: ``reply`` does not answer this request (the message says why).
        """
        return None
