"""Open a command in a new tmux pane next to the user's current pane ("Open in terminal").

State-first (``reference/seeds.md`` §1): *query* every tmux server (panes with their size,
attached clients with their last activity), *decide* with the pure
:func:`deck_tray.core.placement.place`, *execute* one ``split-window``/``new-window``, then
*verify* that the new pane is still there and running the command a moment later. tmux is
the only source of truth; nothing is cached. Callers serialise their own calls if two
opens must never race (each call is complete on its own).

tmux behaviour this relies on (checked against tmux 3.3a):

* A command given as **several** arguments after ``--`` is run with ``execvp``, argument by
  argument, no shell, no format expansion (``#{…}``, ``$HOME``, ``*`` arrive verbatim). A
  **single** argument is run through ``default-shell -c`` — so a one-element argv is
  wrapped as ``env -- PROGRAM`` (:func:`deck_tray.core.placement.exec_argv`).
* ``-c DIR`` and ``-n``/``select-pane -T`` titles **are** format-expanded (``#{pane_id}``
  becomes ``%3``), so ``#`` is doubled there. A missing ``-c`` directory is silently
  replaced by another one, so it is checked first.
* ``-e NAME=VALUE`` values are not expanded, but they are part of the tmux client's
  command line, readable by every local user in ``/proc/<pid>/cmdline`` while it runs (and
  later in the pane's environment). **Never pass secrets in** ``env``: names that look
  secret are refused; pass a helper command that reads the keyring itself instead.
* The new pane gets the tmux server's environment (global + session, plus ``-e``), not
  deck-tray's; the program is looked up on the server's ``PATH``.
* ``split-window``/``new-window`` succeed even when the program cannot be executed; the
  pane then closes at once (or stays dead with ``remain-on-exit``). Hence the verify step.
* Without ``-d`` the new pane becomes the active one, so the user sees it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from deck_tray.core.model import PaneRef
from deck_tray.core.placement import (
    Action,
    ClientSpot,
    PaneSpot,
    Placement,
    check_env,
    command_line,
    exec_argv,
    no_server_message,
    place,
)
from deck_tray.services.panes import MuxError, PaneInfo, Tmux, is_shell, server_sockets

log = logging.getLogger(__name__)

_SEP = "\x1f"
_PANE_FIELDS = (
    "pane_id", "session_id", "window_index", "pane_index", "pane_width", "pane_height",
    "pane_active", "window_active", "window_zoomed_flag", "session_activity", "session_name",
)
_PANE_FORMAT = _SEP.join("#{" + f + "}" for f in _PANE_FIELDS)
_CLIENT_FORMAT = _SEP.join(("#{client_activity}", "#{session_id}"))

#: How long the verify step waits for the new pane to settle (seconds).
VERIFY_TIMEOUT_S = 3.0
#: How long the new pane must have been alive before it counts as started (seconds).
SETTLE_S = 0.5
_POLL_S = 0.05
_STATUS_WAIT_S = 0.5


@dataclass(frozen=True)
class TerminalReport:
    """What :func:`open_in_pane` did.

    Attributes:
        ok: the command runs in a new pane.
        pane: the new pane (also set when it failed but tmux kept it, so it can be shown).
        detail: one or two sentences for the user: what happened, and on failure what to do.
        command: the command as a line to paste into a shell (``cd DIR && CMD``).
    """

    ok: bool
    pane: PaneRef | None
    detail: str
    command: str = ""


def _tmux_literal(text: str) -> str:
    """``text`` for a tmux argument that is format-expanded (``#`` → ``##``)."""
    return text.replace("#", "##")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


async def _server_spots(mux: Tmux, socket: str) -> tuple[list[PaneSpot], list[ClientSpot]]:
    """Panes (with sizes) and attached clients of one server. Raises MuxError if it is gone."""
    # return_exceptions: when one call fails the other still finishes (no stray subprocess).
    pane_res, client_res = await asyncio.gather(
        mux.run(socket, "list-panes", "-a", "-F", _PANE_FORMAT),
        mux.run(socket, "list-clients", "-F", _CLIENT_FORMAT),
        return_exceptions=True,
    )
    if isinstance(pane_res, BaseException):
        raise pane_res
    if isinstance(client_res, BaseException):
        raise client_res
    pane_out, client_out = pane_res, client_res
    panes: list[PaneSpot] = []
    for line in pane_out.splitlines():
        parts = line.split(_SEP, len(_PANE_FIELDS) - 1)
        if len(parts) != len(_PANE_FIELDS):
            continue
        pid, sid, win, idx, w, h, pact, wact, zoom, sact, name = parts
        panes.append(PaneSpot(
            server=socket, pane_id=pid, session_id=sid, session=name, window=win, index=idx,
            width=_int(w), height=_int(h), focused=pact == "1" and wact == "1", zoomed=zoom == "1",
            session_activity=_int(sact),
        ))
    clients: list[ClientSpot] = []
    for line in client_out.splitlines():
        parts = line.split(_SEP)
        if len(parts) == 2 and parts[1]:
            clients.append(ClientSpot(server=socket, session_id=parts[1], activity=_int(parts[0])))
    return panes, clients


async def query(mux: Tmux) -> tuple[list[PaneSpot], list[ClientSpot]]:
    """Every pane and attached client of every live tmux server (stale sockets skipped)."""
    sockets = server_sockets(mux.env)
    results = await asyncio.gather(*(_server_spots(mux, s) for s in sockets), return_exceptions=True)
    panes: list[PaneSpot] = []
    clients: list[ClientSpot] = []
    for sock, res in zip(sockets, results, strict=True):
        if isinstance(res, BaseException):
            log.debug("tmux server %s did not answer: %s", sock, res)
            continue
        panes.extend(res[0])
        clients.extend(res[1])
    return panes, clients


def _spawn_args(plan: Placement, argv: list[str], cwd: str, title: str,
                env: Mapping[str, str]) -> list[str]:
    anchor = plan.anchor
    assert anchor is not None
    if plan.action is Action.NEW_WINDOW:
        args = ["new-window", "-t", f"{anchor.session_id}:"]
        if title:
            args += ["-n", _tmux_literal(title)]
    else:
        args = ["split-window", "-h" if plan.action is Action.SPLIT_H else "-v", "-t", anchor.pane_id]
    args += ["-P", "-F", "#{pane_id}"]
    if cwd:
        args += ["-c", _tmux_literal(cwd)]
    for name, value in env.items():
        args += ["-e", f"{name}={value}"]
    return [*args, "--", *exec_argv(argv)]


def _where(plan: Placement) -> str:
    anchor = plan.anchor
    assert anchor is not None
    if plan.action is Action.SPLIT_H:
        return f"to the right of your pane {anchor.label}"
    if plan.action is Action.SPLIT_V:
        return f"below your pane {anchor.label}"
    return f"in a new window of session {anchor.session}"


async def _dead_status(mux: Tmux, server: str, pane_id: str) -> str:
    try:
        return (await mux.run(server, "display-message", "-p", "-t", pane_id, "#{pane_dead_status}")).strip()
    except MuxError:
        return ""


async def open_in_pane(mux: Tmux, argv: list[str], cwd: str, *, title: str = "",
                       env: dict[str, str] | None = None, timeout_s: float = VERIFY_TIMEOUT_S,
                       settle_s: float = SETTLE_S) -> TerminalReport:
    """Run ``argv`` in a new tmux pane next to the user's current pane, and check it started.

    Args:
        mux: the tmux adapter (its ``env`` decides where servers are looked for).
        argv: the program and its arguments (run directly, never through a shell).
        cwd: working directory of the new pane (must exist; ``""``: tmux's default).
        title: pane title (and window name when a new window is opened).
        env: extra **non-secret** environment variables for the new pane; they are visible
            in the process list (see the module docstring). Secrets: let the command fetch
            them itself (a helper that reads the keyring).
        timeout_s: how long to wait for the pane to settle.
        settle_s: how long the pane must stay alive to count as started.

    Returns:
        A report; failures of tmux or of the command are reported, not raised.

    Raises:
        ValueError: empty ``argv``, a malformed or secret-looking ``env`` name.
    """
    env = dict(env or {})
    check_env(env)
    exec_argv(argv)  # validates argv
    cwd = os.path.abspath(cwd) if cwd else ""  # tmux would resolve it against its own directory
    cmd = command_line(argv, cwd)
    if mux.binary is None:
        return TerminalReport(False, None, f"tmux is not installed. Install tmux, or run: {cmd}", cmd)
    if cwd and not os.path.isdir(cwd):
        return TerminalReport(False, None, f"The folder {cwd} does not exist, so nothing was opened.", cmd)

    # Query + decide.
    panes, clients = await query(mux)
    plan = place(panes, clients)
    if plan.action is Action.REFUSE or plan.anchor is None:
        return TerminalReport(False, None, no_server_message(argv, cwd), cmd)
    server = plan.anchor.server
    log.info("open in terminal: %s (%s)", plan.action.value, plan.reason)

    # Execute.
    try:
        out = await mux.run(server, *_spawn_args(plan, argv, cwd, title, env))
    except MuxError as exc:
        return TerminalReport(False, None, f"tmux could not open a pane ({exc}). Run it yourself: {cmd}", cmd)
    pane_id = out.strip()
    if not pane_id.startswith("%"):
        return TerminalReport(False, None, f"tmux did not say which pane it opened ({out.strip()!r}). "
                                           f"Look for it in tmux, or run: {cmd}", cmd)
    if title:
        try:
            await mux.run(server, "select-pane", "-t", pane_id, "-T", _tmux_literal(title))
        except MuxError as exc:
            log.debug("could not title pane %s: %s", pane_id, exc)

    # Verify.
    return await verify_started(mux, server, pane_id, argv, _where(plan), cmd, timeout_s, settle_s, title)


async def verify_started(mux: Tmux, server: str, pane_id: str, argv: list[str], where: str, cmd: str,
                         timeout_s: float = VERIFY_TIMEOUT_S, settle_s: float = SETTLE_S,
                         title: str = "") -> TerminalReport:
    """The verify step: the new pane ``pane_id`` still exists ``settle_s`` seconds later and runs
    the command (not a shell it returned to, unless ``argv`` is a shell).

    Args:
        mux: the tmux client of ``server``.
        server: the tmux server's socket path.
        pane_id: the new pane (``%12``).
        argv: the command the pane was started with.
        where: where the pane was opened, for the report ("to the right of your pane work:0.0").
        cmd: the command line to paste by hand, for failure reports.
        timeout_s: seconds the pane may take to show the command.
        settle_s: seconds the command must keep running to count as started.
        title: the pane's title, to name the program in the report (``""``: its executable's name).

    Returns:
        ``ok`` with the pane, or why not (it exited at once, with its status when tmux kept
        the pane; it returned to a shell; tmux stopped answering).
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout_s
    wants_shell = is_shell(os.path.basename(argv[0]))
    program = f"“{title}”" if title else os.path.basename(argv[0])
    dead_since: float | None = None
    while True:
        try:
            panes = await mux.list_panes(server)
        except MuxError as exc:
            return TerminalReport(False, None, f"tmux stopped answering after opening the pane ({exc}). "
                                               f"Check tmux, or run: {cmd}", cmd)
        info: PaneInfo | None = next((p for p in panes if p.pane_id == pane_id), None)
        if info is None:
            return TerminalReport(False, None, "The command exited at once, so nothing was left open in tmux. "
                                               f"Run it in a terminal to see why: {cmd}", cmd)
        ref = info.ref()
        now = loop.time()
        if info.dead:
            status = await _dead_status(mux, server, pane_id)
            # The pty closes before tmux reaps the process; tmux 3.3a sometimes never reaps
            # it (a zombie, no status), so the status is waited for briefly only.
            dead_since = now if dead_since is None else dead_since
            if not status and now - dead_since < _STATUS_WAIT_S and now < deadline:
                await asyncio.sleep(_POLL_S)
                continue
            how = f" with status {status}" if status else ""
            return TerminalReport(False, ref, f"The command exited at once{how}; tmux kept its pane {ref.label} "
                                              f"so you can read why. Or run it in a terminal: {cmd}", cmd)
        returned = is_shell(info.command) and not wants_shell
        if not returned and (now - start >= settle_s or now >= deadline):
            log.info("opened %s in %s", program, ref.label)
            return TerminalReport(True, ref, f"Opened {program} in tmux pane {ref.label}, {where}.", cmd)
        if now >= deadline:
            return TerminalReport(False, ref, f"The command returned to a shell prompt in pane {ref.label} "
                                              f"instead of staying open; look there for its error, or run: {cmd}",
                                  cmd)
        await asyncio.sleep(_POLL_S)
