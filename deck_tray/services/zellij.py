"""zellij adapter (0.44+): pane listing, screen reads and targeted input by pane id.

Argv and JSON pinned from zellij's source for 0.44.0–0.45.0 (``shared/reference/zellij.md``):

* sessions: ``zellij list-sessions --no-formatting`` — one ``NAME [Created …] SUFFIX`` line per
  session; ``(EXITED`` marks dead ones.
* panes: ``zellij --session S action list-panes --json`` — an array of objects with ``id``,
  ``is_plugin``, ``exited``, ``is_held``, ``is_focused``, ``tab_name``, ``tab_position``,
  ``title``, and when known ``pane_command`` / ``pane_cwd``. No pid: the pane's root process
  is the child of the session's server process (``zellij --server …/S``) whose environment
  holds ``ZELLIJ_PANE_ID=N``.
* input: ``action write-chars --pane-id terminal_N -- TEXT``, ``action paste --pane-id
  terminal_N -- TEXT`` (bracketed), ``action send-keys --pane-id terminal_N KEY`` (``Enter``,
  ``Esc``, a character).
* screen: ``action dump-screen --pane-id terminal_N`` (stdout), ``--ansi`` keeps colours.

Traps handled: an unknown pane id is a silent success, and "session not found" can exit 0,
so every send is preceded by a ``list-panes`` check (the dispatcher's query step) and any
stderr starting with ``Session '`` fails. Calls run without the caller's ``ZELLIJ*``
variables, with stdin closed and a timeout. zellij before 0.44 cannot target a pane: the
adapter reports itself unavailable and says which version is needed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any

import psutil
from typing_extensions import override

from deck_tray.core import procs
from deck_tray.core.executables import parse_version
from deck_tray.core.model import PaneRef
from deck_tray.services.ipc import listener_credentials
from deck_tray.services.panes import Multiplexer, MuxError, PaneInfo, run_argv

log = logging.getLogger(__name__)

#: First zellij version whose CLI can address a pane by id.
MIN_VERSION = (0, 44, 0)
ZELLIJ_TIMEOUT_S = 5.0
#: Text travels as one argv element; Linux caps one argument at 128 KiB (MAX_ARG_STRLEN).
MAX_TEXT_BYTES = 120 * 1024
_KEYS = {"Escape": "Esc", "Enter": "Enter", "Tab": "Tab", "BSpace": "Backspace", "Space": "Space"}




def parse_sessions(text: str) -> list[str]:
    """Live session names from ``list-sessions --no-formatting`` output."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or "(EXITED" in line:
            continue
        out.append(line.split(" [Created ", 1)[0].strip())
    return out


def server_pid(socket_path: str) -> int | None:
    """Pid of the process listening on a zellij session socket (``SO_PEERCRED``), or None.

    ``zellij ls`` connects to the same sockets to tell live sessions from dead ones, so a
    bare connect-and-close is harmless.
    """
    creds = listener_credentials(socket_path)
    return creds[0] if creds is not None and creds[0] > 0 else None


def pane_roots(session: str) -> dict[int, int]:
    """``{terminal id: pid}`` of the pane root processes of one session, from ``/proc``.

    The session's server is the process listening on its socket (``<socket dir>/<session>``;
    found through the ``--server`` argument of running servers). Matching the session name in
    that argument would break after ``rename-session``, which moves the socket but not the
    argv. The root of pane N is a direct child of the server with ``ZELLIJ_PANE_ID=N``.
    """
    dirs: set[str] = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if "--server" in cmd:
            i = cmd.index("--server")
            if i + 1 < len(cmd):
                dirs.add(os.path.dirname(cmd[i + 1].rstrip("/")))
    for d in sorted(dirs, key=lambda d: os.path.basename(d) != "contract_version_1"):
        pid = server_pid(os.path.join(d, session))
        if pid is None:
            continue
        try:
            children = psutil.Process(pid).children()
        except psutil.Error:
            continue
        roots: dict[int, int] = {}
        for child in children:
            pid_s = procs.environ(child.pid).get("ZELLIJ_PANE_ID", "")
            if pid_s.isdigit():
                roots[int(pid_s)] = child.pid
        return roots
    return {}


def panes_from_json(session: str, data: Any, roots: dict[int, int]) -> list[PaneInfo]:
    """Terminal panes of a ``list-panes --json`` answer (plugins skipped)."""
    out: list[PaneInfo] = []
    if not isinstance(data, list):
        raise MuxError("zellij list-panes --json did not answer with a list")
    for entry in data:
        if not isinstance(entry, dict) or entry.get("is_plugin") or not isinstance(entry.get("id"), int):
            continue
        n = entry["id"]
        command = str(entry.get("pane_command") or "").split(" ", 1)[0].rsplit("/", 1)[-1]
        out.append(PaneInfo(
            server=session, pane_id=f"terminal_{n}", pane_pid=roots.get(n, 0), command=command,
            dead=bool(entry.get("exited") or entry.get("is_held")),
            session=str(entry.get("tab_name") or ""), window=str(entry.get("tab_position", "")),
            index=str(n), focused=bool(entry.get("is_focused")), multiplexer="zellij",
        ))
    return out


class Zellij(Multiplexer):
    """zellij ≥ 0.44 through its CLI.

    Args:
        binary: the zellij executable (default: found on PATH).
        version: the version if already known (default: asked once with ``--version``).
    """

    name = "zellij"

    def __init__(self, binary: str | None = None, version: tuple[int, ...] | None = None) -> None:
        self.binary = binary or shutil.which("zellij")
        self._version = version
        self._probed = version is not None

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("ZELLIJ", "ZELLIJ_SESSION_NAME", "ZELLIJ_PANE_ID")}

    @property
    def version(self) -> tuple[int, ...] | None:
        """The installed version once :meth:`probe` ran, else None."""
        return self._version

    async def probe(self) -> None:
        """Ask ``zellij --version`` once."""
        if self._probed or self.binary is None:
            return
        self._probed = True
        try:
            _rc, out, _err = await run_argv([self.binary, "--version"], timeout=ZELLIJ_TIMEOUT_S, env=self._env())
        except MuxError as exc:
            log.info("zellij --version failed: %s", exc)
            return
        self._version = parse_version(out)
        log.info("zellij %s found", out.strip())

    @property
    def available(self) -> bool:
        """Installed, and not known to be older than 0.44 (probed lazily)."""
        if self.binary is None:
            return False
        return not self._probed or (self._version is not None and self._version >= MIN_VERSION)

    @property
    @override
    def unavailable_reason(self) -> str:
        if self.binary is None:
            return "zellij is not installed"
        v = self.version
        if v is None:
            return "the installed zellij did not report its version"
        return (f"zellij {'.'.join(map(str, v))} cannot type into a chosen pane; deck-tray needs zellij "
                f"{'.'.join(map(str, MIN_VERSION))} or newer (answer in the terminal, or upgrade zellij)")

    async def _run(self, *args: str) -> str:
        await self.probe()
        if not self.available:
            raise MuxError(self.unavailable_reason)
        assert self.binary is not None
        rc, out, err = await run_argv([self.binary, *args], timeout=ZELLIJ_TIMEOUT_S, env=self._env())
        if rc != 0 or err.startswith("Session '") or "There is no active session" in err:
            raise MuxError(err.strip().splitlines()[0] if err.strip() else f"zellij {args[0]} failed ({rc})")
        return out

    async def action(self, session: str, *args: str) -> str:
        """``zellij --session S action ARGS``; stdout."""
        return await self._run("--session", session, "action", *args)

    async def sessions(self) -> list[str]:
        """Live session names (none when zellij says there are none)."""
        try:
            return parse_sessions(await self._run("list-sessions", "--no-formatting"))
        except MuxError as exc:
            if "No active zellij sessions" in str(exc):
                return []
            raise

    async def list_panes(self, session: str) -> list[PaneInfo]:
        """Terminal panes of one session, with their root pids."""
        raw = await self.action(session, "list-panes", "--json")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MuxError(f"zellij list-panes --json answered no JSON: {exc}") from exc
        return panes_from_json(session, data, pane_roots(session))

    @override
    async def all_panes(self) -> list[PaneInfo]:
        await self.probe()
        if not self.available:
            return []
        out: list[PaneInfo] = []
        for session in await self.sessions():
            try:
                out.extend(await self.list_panes(session))
            except MuxError as exc:
                log.debug("zellij session %s did not list its panes: %s", session, exc)
        return out

    @override
    async def pane(self, ref: PaneRef) -> PaneInfo | None:
        await self.probe()
        if not self.available:
            raise MuxError(self.unavailable_reason)
        try:
            if ref.server not in await self.sessions():
                return None
            panes = await self.list_panes(ref.server)
        except MuxError:
            return None
        return next((p for p in panes if p.pane_id == ref.pane_id), None)

    @override
    async def capture(self, ref: PaneRef, lines: int = 60) -> str:
        return await self.action(ref.server, "dump-screen", "--pane-id", ref.pane_id)

    @override
    async def capture_styled(self, ref: PaneRef) -> str:
        return await self.action(ref.server, "dump-screen", "--pane-id", ref.pane_id, "--ansi")

    @override
    async def ensure_ready(self) -> None:
        await self.probe()

    @staticmethod
    def _check_size(text: str) -> None:
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise MuxError(
                f"the text is {len(text.encode('utf-8')) // 1024} KiB; zellij takes at most "
                f"{MAX_TEXT_BYTES // 1024} KiB in one go (a Linux limit on one argument). Send it in parts"
            )

    @override
    async def send_literal(self, ref: PaneRef, text: str) -> None:
        self._check_size(text)
        await self.action(ref.server, "write-chars", "--pane-id", ref.pane_id, "--", text)

    @override
    async def paste(self, ref: PaneRef, text: str) -> None:
        self._check_size(text)
        await self.action(ref.server, "paste", "--pane-id", ref.pane_id, "--", text)

    @override
    async def send_key(self, ref: PaneRef, key: str) -> None:
        await self.action(ref.server, "send-keys", "--pane-id", ref.pane_id, _KEYS.get(key, key))
