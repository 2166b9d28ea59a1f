"""WezTerm through ``wezterm cli``. **Not run here**: argv, output and errors were read from
WezTerm's source (wez/wezterm at ee0c04e, Feb 2025; ``shared/reference/terminals.md`` §4) and
are pinned by the contract tests against ``tests/services/fake_wezterm/wezterm``.

* Every pane's programs get ``WEZTERM_PANE=<id>`` and ``WEZTERM_UNIX_SOCKET=<gui socket>``
  (not under Flatpak). The client uses ``$WEZTERM_UNIX_SOCKET`` when set; without
  ``--no-auto-start`` a failed connect would *start a mux server*, so it is always passed.
* ``cli list --format json``: ``[{window_id, tab_id, pane_id, workspace, size, title, cwd,
  cursor_x, cursor_y, …, is_active, is_zoomed, tty_name}]``. No pids: the pane's first process
  is the session leader of ``tty_name`` (since 20230408; older versions cannot be checked), and
  its ``tpgid`` is the pane's foreground group.
* ``cli send-text --pane-id N --no-paste`` (text on stdin) writes the bytes as they are (since
  20220624); without ``--no-paste`` it is a paste: wrapped in bracketed-paste markers when the
  program turned that mode on (else newlines become CR).
* ``cli get-text --pane-id N [--escapes]`` prints the visible screen (since 20230320).
* Errors go to stderr as ``HH:MM:SS.mmm  ERROR  wezterm > MESSAGE; terminating`` with exit 1:
  ``no such pane N`` for a pane that does not exist (send-text and get-text alike),
  ``failed to connect to Socket("…"): …`` when the GUI is gone.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from deck_tray.core import procs
from deck_tray.core.model import PaneRef
from deck_tray.services.panes import MuxError, PaneInfo
from deck_tray.services.terminals.common import (
    CommandTerminal,
    child_env,
    foreground_of,
    off_loop,
    sending,
    unless_gone,
)

log = logging.getLogger(__name__)

WEZTERM_TIMEOUT_S = 5.0
NO_SOCKET = ("WezTerm gave this pane no WEZTERM_UNIX_SOCKET (as under Flatpak), so deck-tray cannot reach "
             "it; answer in the terminal")
_LOG_LINE = re.compile(r"^\S+\s+ERROR\s+\S+\s+>\s+(.*?)(?:; terminating)?$")
_GONE = ("no such pane", "failed to connect")


def _error(stderr: str, rc: int) -> str:
    """The message of wezterm's last ``ERROR`` log line."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return f"wezterm cli failed ({rc})"
    m = _LOG_LINE.match(lines[-1])
    return m.group(1) if m else lines[-1]


def tty_device(path: str) -> int:
    """The device number of a tty path (``/dev/pts/3``), 0 if it cannot be read."""
    try:
        return os.stat(path).st_rdev
    except OSError:
        return 0


class WezTerm(CommandTerminal):
    """WezTerm panes. A :class:`PaneRef` is ``PaneRef("wezterm", "<WEZTERM_PANE>",
    "<WEZTERM_UNIX_SOCKET>", "pane N")``; ``server`` is ``""`` when the pane had no socket.

    Args:
        binary: the wezterm executable (default: found on PATH).
    """

    name = program = "wezterm"
    no_server_reason = NO_SOCKET
    pane_var, server_var = "WEZTERM_PANE", "WEZTERM_UNIX_SOCKET"

    async def run(self, server: str, *args: str, input_bytes: bytes | None = None) -> str:
        """``wezterm cli --no-auto-start ARGS`` against the GUI socket ``server``; stdout.

        Raises:
            MuxError: wezterm is missing, timed out or failed (the message of its error line).
        """
        return await self.call(["cli", "--no-auto-start", *args], timeout=WEZTERM_TIMEOUT_S,
                               env=child_env(("WEZTERM_",), WEZTERM_UNIX_SOCKET=self.reachable(server)),
                               error=lambda _out, err, rc: _error(err, rc), input_bytes=input_bytes)

    async def list_panes(self, server: str) -> list[dict[str, Any]]:
        """``cli list --format json``: one dict per pane."""
        raw = await self.run(server, "list", "--format", "json")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MuxError(f"wezterm cli list answered no JSON: {exc}") from exc
        if not isinstance(data, list):
            raise MuxError("wezterm cli list did not answer with a list")
        return [p for p in data if isinstance(p, dict) and isinstance(p.get("pane_id"), int)]

    def unreachable_root(self, pid: int, env: Mapping[str, str]) -> int:
        """Without a socket: the session leader of the agent's terminal."""
        facts = procs.tty_facts(pid)
        return facts.session if facts is not None else 0

    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        """The pane now; None if it or the GUI is gone.

        Raises:
            MuxError: WezTerm answers but does not report the pane's tty (before 20230408).
        """
        panes = await unless_gone(self.list_panes(ref.server), _GONE)
        entry = next((p for p in panes or [] if str(p["pane_id"]) == ref.pane_id), None)
        if entry is None:
            return None
        tty = entry.get("tty_name")
        if not isinstance(tty, str) or not tty:
            raise MuxError("this WezTerm does not report which tty a pane has (20230408 or newer does), so "
                           "deck-tray cannot check what runs in it")
        root = await off_loop(lambda: procs.tty_leader(tty_device(tty)))
        fg, command = foreground_of(root) if root else (-1, "")
        return PaneInfo(
            server=ref.server, pane_id=ref.pane_id, pane_pid=root, command=command, dead=False,
            session=str(entry.get("workspace", "")), window=str(entry.get("tab_id", "")), index=ref.pane_id,
            focused=bool(entry.get("is_active")), multiplexer=self.name, foreground_pgid=fg,
            label=self.label_of(ref.pane_id),
        )

    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        """The pane's screen (``get-text``)."""
        return await self.run(ref.server, "get-text", "--pane-id", ref.pane_id)

    async def capture_styled(self, ref: PaneRef) -> str:
        """The pane's screen with SGR sequences (``get-text --escapes``)."""
        return await self.run(ref.server, "get-text", "--pane-id", ref.pane_id, "--escapes")

    async def write(self, ref: PaneRef, text: str) -> None:
        """``send-text --pane-id N --no-paste``: the bytes of ``text`` as they are."""
        with sending():
            await self.run(ref.server, "send-text", "--pane-id", ref.pane_id, "--no-paste",
                           input_bytes=text.encode("utf-8"))

    async def paste(self, ref: PaneRef, text: str) -> None:
        """``send-text --pane-id N``: WezTerm's own paste (bracketed when the program asked)."""
        with sending():
            await self.run(ref.server, "send-text", "--pane-id", ref.pane_id, input_bytes=text.encode("utf-8"))
