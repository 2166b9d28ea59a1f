"""Where to open a new terminal pane: the pure *decide* step of "Open in terminal".

The service (:mod:`deck_tray.services.terminal`) queries tmux, hands the facts to
:func:`place`, runs what it returns, then verifies the result (state-first, as in
``reference/seeds.md`` §1). Nothing here talks to tmux.

Rules:

* The anchor is the user's current pane: the focused pane (active pane of the active
  window) of the attached client that was active most recently; with no client attached
  anywhere, the active pane of the active window of the most recently active session.
* Split it side by side (``split-window -h``) when both halves keep at least
  :data:`MIN_COLS` columns; else stacked (``split-window -v``) when the pane is at least
  :data:`MIN_COLS` wide and both halves keep :data:`MIN_ROWS` rows; else open a new window
  in that session (a whole window is never smaller than one of its panes). A zoomed
  window also gets a new window: a split would unzoom what the user chose to zoom.
* No tmux server at all: refuse, with the command line to paste into a terminal.
"""

from __future__ import annotations

import enum
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

#: Columns each half of a side-by-side split must keep (a usual terminal program width).
MIN_COLS = 80
#: Rows each half of a stacked split must keep.
MIN_ROWS = 15

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SECRET_WORDS = frozenset({
    "PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "KEY", "APIKEY", "CREDENTIAL",
    "CREDENTIALS", "COOKIE",
})


class Action(enum.Enum):
    """What to do with the anchor pane."""

    SPLIT_H = "split-h"
    """``split-window -h``: the new pane to the right of the anchor."""
    SPLIT_V = "split-v"
    """``split-window -v``: the new pane below the anchor."""
    NEW_WINDOW = "new-window"
    """``new-window`` in the anchor's session."""
    REFUSE = "refuse"
    """Nothing to open in (no tmux server)."""


@dataclass(frozen=True)
class PaneSpot:
    """One tmux pane as the query step saw it.

    Attributes:
        server: socket path of its tmux server.
        pane_id: ``%3``.
        session_id: ``$1`` (stable, unlike the name).
        session: session name; ``window``/``index``: window and pane index.
        width, height: pane size in cells.
        focused: active pane of its session's active window.
        zoomed: its window is zoomed.
        session_activity: the session's last activity (Unix seconds).
    """

    server: str
    pane_id: str
    session_id: str
    session: str
    window: str
    index: str
    width: int
    height: int
    focused: bool
    zoomed: bool = False
    session_activity: int = 0

    @property
    def label(self) -> str:
        """``session:window.pane``, as tmux users write it."""
        return f"{self.session}:{self.window}.{self.index}"


@dataclass(frozen=True)
class ClientSpot:
    """One attached tmux client: which session it shows and when the user last used it.

    Attributes:
        server: socket path of its tmux server.
        session_id: the session the client shows.
        activity: ``#{client_activity}`` (Unix seconds).
    """

    server: str
    session_id: str
    activity: int


@dataclass(frozen=True)
class Placement:
    """The decision.

    Attributes:
        action: what to do.
        anchor: the user's current pane (None only with :attr:`Action.REFUSE`).
        reason: why, in words (for logs and the report).
    """

    action: Action
    anchor: PaneSpot | None
    reason: str


def current_pane(panes: Iterable[PaneSpot], clients: Iterable[ClientSpot]) -> PaneSpot | None:
    """The user's current pane, or None when there is no pane at all.

    The most recently active attached client's session decides (ties: the first in
    ``clients``); its focused pane is the answer. Without clients (or when no client's
    session has a focused pane) the focused pane of the most recently active session.
    """
    panes = list(panes)
    focused: dict[tuple[str, str], PaneSpot] = {}
    for p in panes:
        if p.focused:
            focused.setdefault((p.server, p.session_id), p)
    ordered = sorted(enumerate(clients), key=lambda ic: (-ic[1].activity, ic[0]))
    for _, c in ordered:
        hit = focused.get((c.server, c.session_id))
        if hit is not None:
            return hit
    if focused:
        by_activity = sorted(enumerate(focused.values()), key=lambda ip: (-ip[1].session_activity, ip[0]))
        return by_activity[0][1]
    return panes[0] if panes else None


def choose(anchor: PaneSpot, *, min_cols: int = MIN_COLS, min_rows: int = MIN_ROWS) -> Action:
    """Split side by side, stacked, or a new window, for the size of ``anchor``.

    A split uses one cell for the border, so a side-by-side split needs
    ``2 * min_cols + 1`` columns and a stacked one ``2 * min_rows + 1`` rows.
    """
    if anchor.zoomed:
        return Action.NEW_WINDOW
    if (anchor.width - 1) // 2 >= min_cols:
        return Action.SPLIT_H
    if anchor.width >= min_cols and (anchor.height - 1) // 2 >= min_rows:
        return Action.SPLIT_V
    return Action.NEW_WINDOW


def place(panes: Iterable[PaneSpot], clients: Iterable[ClientSpot], *,
          min_cols: int = MIN_COLS, min_rows: int = MIN_ROWS) -> Placement:
    """Decide where a new pane goes, from what tmux reported (every server together)."""
    anchor = current_pane(panes, clients)
    if anchor is None:
        return Placement(Action.REFUSE, None, "no tmux server is running")
    action = choose(anchor, min_cols=min_cols, min_rows=min_rows)
    size = f"{anchor.width}×{anchor.height}"
    reason = {
        Action.SPLIT_H: f"your pane {anchor.label} ({size}) is wide enough to split side by side",
        Action.SPLIT_V: f"your pane {anchor.label} ({size}) is too narrow to split side by side "
                        "but tall enough to split top and bottom",
        Action.NEW_WINDOW: (f"the window of your pane {anchor.label} is zoomed" if anchor.zoomed else
                            f"your pane {anchor.label} ({size}) is too small to split"),
    }[action]
    return Placement(action, anchor, reason)


def command_line(argv: Sequence[str], cwd: str = "") -> str:
    """The command as one line to paste into a POSIX shell (``cd DIR && CMD`` with a cwd)."""
    cmd = shlex.join(argv)
    return f"cd {shlex.quote(cwd)} && {cmd}" if cwd else cmd


def no_server_message(argv: Sequence[str], cwd: str = "") -> str:
    """The refusal when no tmux server runs: what to do, and the command to paste."""
    return ("No tmux server is running. Start tmux, then try again — or run: "
            f"{command_line(argv, cwd)}")


def looks_secret(name: str) -> bool:
    """True for environment variable names that usually hold a secret
    (``OPENCODE_SERVER_PASSWORD``, ``OPENAI_API_KEY``, ``GITHUB_TOKEN``)."""
    return any(part in _SECRET_WORDS for part in name.upper().split("_"))


def check_env(env: Mapping[str, str]) -> None:
    """Refuse an environment for a new pane that is malformed or looks secret.

    The values end up in tmux's command line (``-e NAME=VALUE``), which every local user
    can read in ``/proc/<pid>/cmdline``; secrets must reach the program another way (a
    helper command that reads the keyring itself).

    Raises:
        ValueError: a bad name, a NUL in a value, or a name that looks like a secret.
    """
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"not an environment variable name: {name!r}")
        if "\0" in value:
            raise ValueError(f"NUL byte in the value of {name}")
        if looks_secret(name):
            raise ValueError(
                f"{name} looks like a secret; values passed to a new pane are visible in the "
                "process list, so let the command read it from the keyring itself")


def exec_argv(argv: Sequence[str]) -> list[str]:
    """The argv to give tmux so that it runs the program directly, never through a shell.

    tmux (3.0+, checked with 3.3a) runs a command given as several arguments with
    ``execvp`` but a single argument through ``default-shell -c``. A one-element argv is
    therefore wrapped in ``env --`` (which execs it unchanged).

    Raises:
        ValueError: ``argv`` is empty, or is a single program name containing ``=``
            (``env`` would take it for an assignment).
    """
    if not argv or not argv[0]:
        raise ValueError("no command to run")
    if len(argv) > 1:
        return list(argv)
    if "=" in argv[0]:
        raise ValueError(f"cannot run a program whose name contains '=': {argv[0]!r}")
    return ["env", "--", argv[0]]
