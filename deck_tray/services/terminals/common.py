r"""What the terminal adapters (kitty, GNU screen, WezTerm, Konsole) share.

A terminal window (or tab, or split) is a "pane" to deck-tray. Unlike tmux and zellij, a
terminal cannot list the panes of every window, so each adapter finds an agent's pane from
the agent's own environment (``/proc/<pid>/environ``: ``KITTY_WINDOW_ID``, ``STY``/``WINDOW``,
``WEZTERM_PANE``, ``KONSOLE_DBUS_SESSION`` …), asks the terminal to confirm it, and reports the
pane's first process (its *root*, which the dispatcher checks is an ancestor of the agent) and
the process group in the foreground of the pane's terminal.

None of the terminals run here wraps sent text in bracketed-paste markers on its own (kitty
0.26.5, screen 4.9.0, Konsole 22.12.3, ``shared/reference/terminals.md`` §0), so
:func:`bracketed` adds them; Enter is a lone ``\r`` written as its own send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TypeVar

from deck_tray.core import procs
from deck_tray.core.model import PaneRef
from deck_tray.services.panes import Multiplexer, MuxError, MuxTimeoutError, PaneInfo, PartialSendError, run_argv

log = logging.getLogger(__name__)
T = TypeVar("T")

PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"

#: Bytes of the keys the reply plans use (tmux key names), as a terminal sends them in its
#: default (non-application) keypad mode.
KEYS = {"Enter": "\r", "Escape": "\x1b", "Tab": "\t", "BSpace": "\x7f", "Space": " "}


def key_text(key: str) -> str:
    r"""The characters one named key sends: ``"Enter"`` → ``"\r"``, ``"1"`` → ``"1"``.

    Raises:
        MuxError: the name is neither a known key nor a single printable character.
    """
    if key in KEYS:
        return KEYS[key]
    if len(key) == 1 and key.isprintable():
        return key
    raise MuxError(f"deck-tray cannot press the key {key!r} in a terminal window")


def bracketed(text: str) -> str:
    """``text`` inside bracketed-paste markers (``ESC[200~`` … ``ESC[201~``)."""
    return PASTE_START + text + PASTE_END


def pane_root(chain: list[int], parent_pid: int) -> int:
    """The process in ``chain`` (the agent and its ancestors) whose parent is ``parent_pid``
    (the terminal, or screen's server): the first process of the agent's window; 0 if none."""
    return next((p for p in chain if procs.parent(p) == parent_pid), 0) if parent_pid > 0 else 0


def foreground_of(root: int) -> tuple[int, str]:
    """``(foreground process group, its leader's command name)`` of the terminal ``root``
    (a pane's first process) is attached to, from ``/proc/<root>/stat`` field 8 (tpgid).

    ``(-1, "")`` when ``root`` is gone or has no terminal.
    """
    facts = procs.tty_facts(root)
    if facts is None or facts.tpgid <= 0:
        return -1, ""
    return facts.tpgid, procs.name(facts.tpgid)


async def unless_gone(call: Awaitable[T], gone: tuple[str, ...]) -> T | None:
    """``call``'s result, or None when it failed saying one of the ``gone`` phrases (the pane or
    its terminal no longer exists).

    Raises:
        MuxError: it failed for another reason.
    """
    try:
        return await call
    except MuxError as exc:
        if any(g in str(exc) for g in gone):
            return None
        raise


async def off_loop(fn: Callable[[], T]) -> T:
    """Run a blocking ``/proc`` scan or D-Bus call on the default executor."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


@contextlib.contextmanager
def sending() -> Iterator[None]:
    """Around one write: a call that timed out (and was killed) may have delivered part of the
    text, so it becomes :class:`PartialSendError` (reported as unknown, never re-sent)."""
    try:
        yield
    except MuxTimeoutError as exc:
        raise PartialSendError(f"{exc}; part of the text may have reached the window") from exc


def child_env(drop_prefixes: tuple[str, ...], **extra: str) -> dict[str, str]:
    """deck-tray's environment without the variables a terminal client would take as "the
    window I run in" (deck-tray itself may run inside one), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}
    env.update(extra)
    return env


class TerminalAdapter(Multiplexer):
    """A terminal with a remote-control interface, as a :class:`Multiplexer`.

    Subclasses find panes from the agent's environment (:meth:`pane_for_agent`), re-read one
    pane (:meth:`pane`), read its screen (:meth:`capture`) and write characters into it
    (:meth:`write`). Typing, pasting and keys are all writes: a paste is the text inside
    bracketed-paste markers, a key its bytes (:func:`key_text`).
    """

    async def all_panes(self) -> list[PaneInfo]:
        """Always ``[]``: a terminal's panes are found from each agent's environment."""
        return []

    @abstractmethod
    async def pane_for_agent(self, pid: int, env: Mapping[str, str]) -> PaneInfo | None:
        """See :meth:`Multiplexer.pane_for_agent`."""

    @abstractmethod
    async def write(self, ref: PaneRef, text: str) -> None:
        """Write ``text`` into the pane exactly as given (no Enter added).

        Raises:
            MuxError: nothing was written. PartialSendError: part of it may have been.
        """

    async def send_literal(self, ref: PaneRef, text: str) -> None:
        """Type ``text`` as is."""
        await self.write(ref, text)

    async def paste(self, ref: PaneRef, text: str) -> None:
        """Paste ``text`` as one bracketed paste (the markers added here)."""
        await self.write(ref, bracketed(text))

    async def send_key(self, ref: PaneRef, key: str) -> None:
        """Press one key (tmux names: ``Enter``, ``Escape``, ``1``)."""
        await self.write(ref, key_text(key))


class CommandTerminal(TerminalAdapter):
    """A terminal reached through its own command-line client (``kitty``, ``screen``, ``wezterm``).

    Args:
        binary: the client executable (default: :attr:`program` found on PATH).
    """

    #: The client's command name.
    program = ""
    #: Why a pane found with no way to reach it (``PaneRef.server == ""``) cannot be typed into.
    no_server_reason = ""
    #: The variables of the agent's environment that name its pane (a number) and the address of
    #: its terminal, and what a pane is called in the label (``"window 3"``).
    pane_var = ""
    server_var = ""
    pane_word = "pane"

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or shutil.which(self.program)

    @property
    def available(self) -> bool:
        """True when the client command is installed."""
        return self.binary is not None

    def reason_for(self, ref: PaneRef) -> str | None:
        """Why ``ref`` cannot be typed into: the client is missing, or the pane is unreachable."""
        if not self.available:
            return self.unavailable_reason
        return self.no_server_reason if not ref.server and self.no_server_reason else None

    def label_of(self, pane_id: str) -> str:
        """The pane's human location without the adapter's name: ``"window 3"``."""
        return f"{self.pane_word} {pane_id}"

    async def pane_for_agent(self, pid: int, env: Mapping[str, str]) -> PaneInfo | None:
        """The pane :attr:`pane_var` names, as the terminal at :attr:`server_var` confirms it; with
        no address, the pane whose first process is :meth:`unreachable_root` (shown, never typed into)."""
        pane_id = env.get(self.pane_var, "") if self.pane_var else ""
        if not pane_id.isdigit():
            return None
        server = env.get(self.server_var, "")
        if server:
            return await self.pane(PaneRef(self.name, pane_id, server))
        root = await off_loop(lambda: self.unreachable_root(pid, env))
        if not root:
            return None
        fg, command = foreground_of(root)
        return PaneInfo(server="", pane_id=pane_id, pane_pid=root, command=command, dead=False, session="",
                        window="", index=pane_id, focused=False, multiplexer=self.name, foreground_pgid=fg,
                        label=self.label_of(pane_id))

    def unreachable_root(self, pid: int, env: Mapping[str, str]) -> int:
        """The first process of the agent's pane when its environment has no address (0: unknown)."""
        return 0

    def reachable(self, server: str) -> str:
        """``server``, checked.

        Raises:
            MuxError: it is ``""`` (:attr:`no_server_reason`).
        """
        if not server:
            raise MuxError(self.no_server_reason or f"no {self.name} to reach")
        return server

    async def call(self, args: list[str], *, timeout: float, env: dict[str, str],
                   error: Callable[[str, str, int], str], input_bytes: bytes | None = None) -> str:
        """Run the client with ``args`` (never a shell); its stdout.

        Args:
            args: the arguments after the program.
            timeout: seconds before it is killed.
            env: its whole environment.
            error: ``(stdout, stderr, exit code)`` → the failure in words.
            input_bytes: its stdin (closed when None).

        Raises:
            MuxError: the client is missing or exited non-zero (``error``'s words).
            MuxTimeoutError: it took longer than ``timeout``.
        """
        if self.binary is None:
            raise MuxError(self.unavailable_reason)
        rc, out, err = await run_argv([self.binary, *args], timeout=timeout, input_bytes=input_bytes, env=env)
        if rc != 0:
            raise MuxError(error(out, err, rc))
        return out
