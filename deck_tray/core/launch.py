"""Starting an agent session: the pure *decide* step of ``deck-tray new`` and the window's
"New session" (issue #15, DESIGN.md §7).

The service (:mod:`deck_tray.services.launcher`) queries tmux, hands the facts to
:func:`decide`, runs what it returns, verifies that the pane runs the agent, and only then
records it. Nothing here talks to tmux or touches files.

Where the new agent goes:

* a user's tmux client is attached somewhere: a **new window** in the session that client
  shows (the most recently active client wins; with several servers, all are compared);
* otherwise: a new window in the detached session :data:`SESSION_NAME` on the **default
  socket** (``$TMUX_TMPDIR/tmux-<uid>/default``), creating that session (and thereby the
  tmux server) when it does not exist.

The agent itself is started through ``deck-tray launch`` (:func:`launch_argv`), which reads
the asking process's environment from a ``0600`` file and ``exec``s the agent with it, so no
variable (API keys included) ever appears in tmux's or the agent's command line.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deck_tray.core.model import AgentKind
from deck_tray.core.placement import ClientSpot

#: The detached tmux session new agents go to when no tmux client is attached.
SESSION_NAME = "deck-tray"
#: tmux user option set on every pane deck-tray starts (value: what it is, e.g. ``new:claude-code``),
#: so a restarted app can find, adopt or clean them up (DESIGN.md §7).
PANE_TAG = "@deck-tray"
#: The executable of each agent ``deck-tray new`` can start (the names their npm packages install).
AGENT_BINARIES = {AgentKind.CLAUDE_CODE: "claude", AgentKind.CODEX: "codex", AgentKind.OPENCODE: "opencode"}
#: ``--agent`` values (the agents' own names) → kind.
AGENT_NAMES = {"claude-code": AgentKind.CLAUDE_CODE, "claude": AgentKind.CLAUDE_CODE,
               "codex": AgentKind.CODEX, "opencode": AgentKind.OPENCODE}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Where(enum.Enum):
    """Where the new agent's pane goes."""

    NEW_WINDOW = "new-window"
    """``new-window`` in an existing tmux session (the user's, or :data:`SESSION_NAME`)."""
    NEW_SESSION = "new-session"
    """``new-session -d -s deck-tray`` on the default socket (starts the server if none runs)."""


@dataclass(frozen=True)
class LaunchPlan:
    """The decision.

    Attributes:
        where: new window or new detached session.
        server: socket path of the tmux server to run it on.
        target: the tmux session for :attr:`Where.NEW_WINDOW` (a session id such as ``$2``),
            or the session name to create for :attr:`Where.NEW_SESSION`.
        reason: why, in words (for the log and the report): "you are attached to session work".
        attached: the user is looking at that tmux session (a client shows it).
    """

    where: Where
    server: str
    target: str
    reason: str
    attached: bool = False


@dataclass(frozen=True)
class TmuxSessionSpot:
    """One tmux session as the query step saw it.

    Attributes:
        server: socket path of its server.
        session_id: ``$1``.
        name: its name.
    """

    server: str
    session_id: str
    name: str


def default_socket(socket_dir: str) -> str:
    """The default server's socket in ``socket_dir`` (``$TMUX_TMPDIR/tmux-<uid>``)."""
    return os.path.join(socket_dir, "default")


def decide(clients: Iterable[ClientSpot], sessions: Iterable[TmuxSessionSpot], socket_dir: str) -> LaunchPlan:
    """Decide where a new agent pane goes, from what every tmux server reported.

    Args:
        clients: attached clients of every live server (none when no server runs).
        sessions: sessions of every live server.
        socket_dir: ``$TMUX_TMPDIR/tmux-<uid>`` (the default socket lives there).

    Returns:
        The plan; it never refuses (with no server at all, ``new-session`` starts one).
    """
    sessions = list(sessions)
    names = {(s.server, s.session_id): s.name for s in sessions}
    ordered = sorted(enumerate(clients), key=lambda ic: (-ic[1].activity, ic[0]))
    for _, c in ordered:
        name = names.get((c.server, c.session_id))
        if name is not None:
            return LaunchPlan(Where.NEW_WINDOW, c.server, c.session_id,
                              f"you are attached to tmux session {name}", attached=True)
    default = default_socket(socket_dir)
    ours = next((s for s in sessions if s.server == default and s.name == SESSION_NAME), None)
    if ours is not None:
        return LaunchPlan(Where.NEW_WINDOW, default, ours.session_id,
                          f"no tmux client is attached, so it goes to the detached session {SESSION_NAME}")
    return LaunchPlan(Where.NEW_SESSION, default, SESSION_NAME,
                      f"no tmux client is attached, so it goes to a new detached session {SESSION_NAME}")


def agent_from_name(name: str) -> AgentKind:
    """``claude-code``/``codex``/``opencode`` → kind.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    try:
        return AGENT_NAMES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}: use claude-code, codex or opencode") from None


def window_name(agent: AgentKind, folder: str, name: str = "") -> str:
    """The tmux window name: the user's ``name``, else ``<agent binary>: <folder's base name>``,
    without control characters, at most 60 characters."""
    text = name.strip() or f"{AGENT_BINARIES[agent]}: {os.path.basename(os.path.normpath(folder)) or folder}"
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= 60 else text[:59] + "…"


def agent_argv(agent: AgentKind, binary: str, args: Sequence[str] = ()) -> list[str]:
    """The agent's own command line: its executable and the user's arguments (after ``--``).

    The first prompt is not put on the command line: it is typed through the dispatcher once
    the agent shows its input prompt, so it is checked and verified like every answer.
    """
    return [binary, *args]


def launch_argv(self_argv: Sequence[str], env_file: str, cwd: str, argv: Sequence[str]) -> list[str]:
    """The pane's command: ``deck-tray launch --env-file FILE --cwd DIR -- AGENT ARGS…``.

    ``launch`` reads the environment from ``env_file`` (and deletes it), changes to ``cwd``
    and ``exec``s the agent, so the pane's process becomes the agent itself.
    """
    return [*self_argv, "launch", "--env-file", env_file, "--cwd", cwd, "--", *argv]


def folder_error(folder: str) -> str | None:
    """Why ``folder`` cannot host a new session, or None: it must be an existing directory."""
    if not folder:
        return "no folder was given"
    if not os.path.exists(folder):
        return f"the folder {folder} does not exist"
    if not os.path.isdir(folder):
        return f"{folder} is not a folder"
    if not os.access(folder, os.R_OK | os.X_OK):
        return f"the folder {folder} cannot be opened (permission denied)"
    return None
