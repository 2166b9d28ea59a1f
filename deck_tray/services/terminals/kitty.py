"""kitty through its remote control (``kitty @``), run with kitty 0.26.5 (Debian 12).

Facts this relies on (``shared/reference/terminals.md`` §1):

* Each window's programs get ``KITTY_WINDOW_ID=N`` and ``KITTY_PID``; ``KITTY_LISTEN_ON``
  (``unix:/path``, ``unix:@abstract``, ``tcp:host:port``) only when remote control is allowed
  **and** kitty listens on a socket (``allow_remote_control socket-only`` + ``listen_on`` in
  kitty.conf). Without it kitty cannot be reached from outside: the pane is still placed, and
  the dispatcher says how to turn remote control on.
* ``kitty @ --to ADDR ls``: JSON ``[{os window: tabs: [{windows: [{id, pid, is_focused,
  foreground_processes: [{pid, cmdline, cwd}], …}]}]}]``. ``pid`` is the window's first process;
  ``foreground_processes`` are the processes of the foreground group of its tty.
* ``send-text --match id:N --stdin`` writes stdin's bytes verbatim (a positional TEXT would be
  unescaped Python-style, so it is never used). It adds **no** bracketed-paste markers in
  0.26.5, and for a window id that does not exist it succeeds silently, hence the ``ls`` check
  before every send (the dispatcher's query step).
* ``get-text --match id:N [--ansi]``: the window's screen.
* Each ``kitty @`` call takes 0.3–0.7 s here (the 0.26 client is Python).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from typing_extensions import override

from deck_tray.core import procs
from deck_tray.core.model import PaneRef
from deck_tray.services.panes import MuxError, PaneInfo
from deck_tray.services.terminals.common import (
    CommandTerminal,
    child_env,
    pane_root,
    sending,
    unless_gone,
)

log = logging.getLogger(__name__)

#: Seconds one ``kitty @`` call may take (the 0.26 client alone needs 0.3–0.7 s).
KITTY_TIMEOUT_S = 10.0
REMOTE_CONTROL_OFF = (
    "kitty's remote control is off for this window, so deck-tray cannot type into it. Add "
    "`allow_remote_control socket-only` and `listen_on unix:@kitty-{kitty_pid}` to kitty.conf, "
    "restart kitty and start the agent again (or answer in the terminal)"
)
_GONE = ("No listen on socket found", "Connection refused", "No such file or directory", "No matching windows")


def _error(stderr: str, rc: int) -> str:
    """The last line of kitty's stderr (its tracebacks end with the exception), in words."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else f"kitty @ failed ({rc})"
    if "Remote control is disabled" in last:
        return REMOTE_CONTROL_OFF
    if "Password usage requested" in last:
        return ("kitty asks for a remote-control password, which deck-tray does not have; use "
                "`allow_remote_control socket-only` instead")
    return last


def windows(tree: Any) -> list[dict[str, Any]]:
    """Every window of a ``kitty @ ls`` tree, each with ``tab_id`` added.

    Raises:
        MuxError: the answer is not the documented shape.
    """
    if not isinstance(tree, list):
        raise MuxError("kitty @ ls did not answer with a list")
    out: list[dict[str, Any]] = []
    for os_window in tree:
        for tab in (os_window.get("tabs") or []) if isinstance(os_window, dict) else []:
            for win in (tab.get("windows") or []) if isinstance(tab, dict) else []:
                if isinstance(win, dict) and isinstance(win.get("id"), int):
                    out.append({**win, "tab_id": tab.get("id", "")})
    return out


def _foreground(win: dict[str, Any]) -> tuple[int, str]:
    """``(pgid, command name)`` of the window's foreground group from ``foreground_processes``."""
    fg = [p for p in win.get("foreground_processes") or [] if isinstance(p, dict) and isinstance(p.get("pid"), int)]
    for p in fg:
        facts = procs.tty_facts(p["pid"])
        if facts is None:
            continue
        leader = next((q for q in fg if q["pid"] == facts.pgrp), p)
        cmd = leader.get("cmdline") or []
        return facts.pgrp, str(cmd[0]).rsplit("/", 1)[-1] if cmd else procs.name(leader["pid"])
    return -1, ""


class Kitty(CommandTerminal):
    """kitty windows, reached with ``kitty @ --to <KITTY_LISTEN_ON> … --match id:<KITTY_WINDOW_ID>``.

    A :class:`PaneRef` of this adapter is ``PaneRef("kitty", "<window id>", "<KITTY_LISTEN_ON>",
    "window N")``; ``server`` is ``""`` when remote control is off (nothing can be typed then).

    Args:
        binary: the kitty executable (default: found on PATH).
    """

    name = program = "kitty"
    no_server_reason = REMOTE_CONTROL_OFF
    pane_var, server_var, pane_word = "KITTY_WINDOW_ID", "KITTY_LISTEN_ON", "window"

    @property
    @override
    def unavailable_reason(self) -> str:
        return "the kitty command is not installed where deck-tray runs"

    async def run(self, server: str, *args: str, input_bytes: bytes | None = None) -> str:
        """``kitty @ --to SERVER ARGS``; stdout.

        Raises:
            MuxError: kitty is missing, timed out, or failed (its own words, or how to turn
                remote control on).
        """
        return await self.call(["@", "--to", self.reachable(server), *args], timeout=KITTY_TIMEOUT_S,
                               env=child_env(("KITTY_",)), error=lambda _out, err, rc: _error(err, rc),
                               input_bytes=input_bytes)

    async def list_windows(self, server: str) -> list[dict[str, Any]]:
        """Every window of the kitty listening at ``server`` (see :func:`windows`)."""
        raw = await self.run(server, "ls")
        try:
            return windows(json.loads(raw))
        except ValueError as exc:
            raise MuxError(f"kitty @ ls answered no JSON: {exc}") from exc

    def _info(self, server: str, win: dict[str, Any]) -> PaneInfo:
        fg, command = _foreground(win)
        wid = str(win["id"])
        pid = win.get("pid")
        return PaneInfo(
            server=server, pane_id=wid, pane_pid=pid if isinstance(pid, int) else 0, command=command,
            dead=False, session="", window=str(win.get("tab_id", "")), index=wid,
            focused=bool(win.get("is_focused")), multiplexer=self.name, foreground_pgid=fg, label=self.label_of(wid),
        )

    def unreachable_root(self, pid: int, env: Mapping[str, str]) -> int:
        """With remote control off: the agent's ancestor whose parent is ``KITTY_PID``."""
        kitty_pid = env.get("KITTY_PID", "")
        return pane_root(procs.ancestors(pid), int(kitty_pid)) if kitty_pid.isdigit() else 0

    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        """The window as ``kitty @ ls`` shows it now; None if it or kitty is gone.

        Raises:
            MuxError: kitty answers but refuses (remote control off, a password asked).
        """
        wins = await unless_gone(self.list_windows(ref.server), _GONE)
        win = next((w for w in wins or [] if str(w["id"]) == ref.pane_id), None)
        return self._info(ref.server, win) if win is not None else None

    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        """The window's screen (``get-text``)."""
        return await self.run(ref.server, "get-text", "--match", f"id:{ref.pane_id}")

    async def capture_styled(self, ref: PaneRef) -> str:
        """The window's screen with SGR sequences (``get-text --ansi``)."""
        return await self.run(ref.server, "get-text", "--match", f"id:{ref.pane_id}", "--ansi")

    async def write(self, ref: PaneRef, text: str) -> None:
        """``send-text --match id:N --stdin``: the UTF-8 bytes of ``text``, verbatim."""
        with sending():
            await self.run(ref.server, "send-text", "--match", f"id:{ref.pane_id}", "--stdin",
                           input_bytes=text.encode("utf-8"))
