"""``deck-tray hook <agent> [PAYLOAD]``: forward one hook or notify call to the running app.

The command Claude Code and Codex run for every hooked event (``deck-tray hooks install``
writes it into their configs). The payload is the JSON object on stdin (Claude and Codex
hooks) or, for Codex's ``notify``, the last argument (``deck-tray hook codex '<json>'``).
It is sent as one line to the app's socket (protocol: :mod:`deck_tray.services.ipc`)::

    {"op":"hook","agent":"claude-code","kind":"hook","received":1795311001.12,"payload":{...}}

Rules, because the agent waits for this process:

* Always exit 0. Print nothing, except the decision of a ``PermissionRequest`` the user made
  in deck-tray: for that event the line carries ``"wait":true`` and the process keeps the
  connection until the app answers ``{"decision": {...}}`` (printed, so the agent applies it
  and closes its dialog) or ``{"decision": null}`` (the request went elsewhere, or no answer
  in time: nothing printed, the agent's own dialog decides). The agent shows its dialog while
  the hook runs, so the user at the terminal is never held up (issue #13). On stdout the
  agent reads a hook's answer, and a non-zero exit is shown to the user or, with 2, fed back
  to the model: so nothing else is ever printed, even when the app is not running (then the
  hook returns at once) or anything fails.
* Start fast: only ``os``, ``sys``, ``time``, ``select`` and ``_socket`` are imported, the
  payload is not parsed (newlines, which JSON allows only between tokens, become spaces;
  the app validates it), and the connect/send timeout is :data:`SEND_TIMEOUT_S`.
  ``deck_tray.cli.main`` comes here before importing anything else.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse

#: Agents whose hooks are understood (the ``agent`` argument).
AGENTS = ("claude-code", "codex")
#: Seconds the connect and the send may take together before the event is dropped.
SEND_TIMEOUT_S = 0.05
#: Seconds to wait for the agent to finish writing the payload to stdin.
STDIN_TIMEOUT_S = 1.0
#: Once what was read ends like a JSON object, input quiet for this long ends it (seconds).
STDIN_QUIET_S = 0.02
#: Payloads larger than this (bytes) have their long strings clipped before sending.
CLIP_OVER = 256 * 1024
#: Strings longer than this (characters) are clipped in large payloads.
CLIP_TO = 4096
#: Longest a PermissionRequest hook waits for the app's answer (seconds); the app answers
#: within its own limit first, and the agent ends the hook at the installed ``timeout``.
DECISION_WAIT_CAP_S = 3600.0
#: The app says ``{"held": true}`` at once when it holds the request; without that line within
#: this many seconds (an older deck-tray, or one that hangs) the hook returns (seconds).
HELD_ACK_S = 0.5
#: The app's acknowledgement line (exactly as :mod:`deck_tray.services.ipc` writes it).
HELD_LINE = b'{"held":true}'


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``hook AGENT [PAYLOAD]`` (``deck_tray.cli.main`` runs :func:`main` before parsing)."""
    p = sub.add_parser(
        "hook", help="forward an agent's hook or notify event to the running app (run by the agents)",
        description="Read a Claude Code / Codex hook payload from stdin (or a Codex notify payload from the "
                    "last argument) and hand it to the running deck-tray. Prints nothing and exits 0, always.")
    p.add_argument("agent", choices=AGENTS)
    p.add_argument("payload", nargs="?", help="the JSON payload (Codex notify); default: read stdin")
    p.set_defaults(func=lambda args: main([args.agent, *([args.payload] if args.payload else [])]))


def main(argv: list[str]) -> int:
    """Forward one event; returns 0 whatever happens (see the module docstring).

    Args:
        argv: ``[agent]`` (payload on stdin) or ``[agent, ..., payload]`` (Codex notify).
    """
    try:
        forward(argv)
    except BaseException:  # nothing may reach the agent, not even ^C or a bug
        pass
    return 0


def forward(argv: list[str], path: str | None = None) -> bool:
    """Read the payload and send it; True when it was handed to a listening app.

    Args:
        argv: as for :func:`main`.
        path: the socket (default :func:`socket_path`).
    """
    received = time.time()
    if not argv or argv[0] not in AGENTS:
        return False
    if len(argv) > 1:
        raw, kind = argv[-1].encode("utf-8", "surrogateescape"), b"notify"
    else:
        raw, kind = read_stdin(), b"hook"
    raw = raw.strip()
    if not (raw.startswith(b"{") and raw.endswith(b"}")):
        return False
    if len(raw) > CLIP_OVER:
        raw = _clipped(raw)
        if not raw:
            return False
    raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
    # A PermissionRequest waits for the user's decision (the app checks the event itself).
    wait = kind == b"hook" and b"PermissionRequest" in raw
    line = b'{"op":"hook","agent":"%s","kind":"%s","received":%s,%s"payload":%s}\n' % (
        argv[0].encode(), kind, repr(received).encode(), b'"wait":true,' if wait else b"", raw)
    if not wait:
        return send(path or socket_path(), line)
    decision = send_and_wait(path or socket_path(), line)
    if decision:
        os.write(1, decision + b"\n")
    return True


def read_stdin(fd: int = 0) -> bytes:
    """The payload on ``fd``: read to EOF, or until it ends like a JSON object and stays quiet.

    Returns ``b""`` for a terminal, a closed descriptor or nothing within :data:`STDIN_TIMEOUT_S`.
    """
    import select

    try:
        if os.isatty(fd):
            return b""
    except OSError:
        return b""
    buf = bytearray()
    deadline = time.monotonic() + STDIN_TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        complete = buf.rstrip().endswith(b"}")
        ready, _, _ = select.select([fd], [], [], min(left, STDIN_QUIET_S) if complete else left)
        if not ready:
            if complete:
                break
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def send(path: str, line: bytes, timeout: float = SEND_TIMEOUT_S) -> bool:
    """Write ``line`` to the socket at ``path`` if an app of this user listens there.

    Returns:
        True when the line was written; False when nothing listens, the listener belongs
        to another uid (checked with ``SO_PEERCRED``), or the timeout passed.
    """
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        cred = s.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # struct ucred {pid, uid, gid}
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return False
        s.sendall(line)
        return True
    except OSError:
        return False
    finally:
        s.close()


def send_and_wait(path: str, line: bytes, timeout: float = SEND_TIMEOUT_S, ack: float = HELD_ACK_S,
                  cap: float = DECISION_WAIT_CAP_S) -> bytes:
    """Send ``line`` (a hook with ``"wait":true``) and wait for the app's decision.

    The app answers ``{"held": true}`` at once, then ``{"decision": {...} | null}`` when the
    user answered or the request went elsewhere; or ``{"decision": null}`` at once when it does
    not hold it.

    Returns:
        The decision object's JSON text to print, or ``b""``: nothing listens, no ``held`` line
        within ``ack`` seconds, the decision is null, the app closed the connection, or ``cap``
        seconds passed.
    """
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        cred = s.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return b""
        s.sendall(line)
        buf = b""
        wait = ack
        while True:
            s.settimeout(wait)
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return b""
                buf += chunk
            first, buf = buf.split(b"\n", 1)
            if first.strip() == HELD_LINE:
                wait = cap  # held: now the user's decision may take its time
                continue
            return decision_of(first)
    except OSError:
        return b""
    finally:
        s.close()


def decision_of(line: bytes) -> bytes:
    """The object in the app's ``{"decision":{...}}`` line, as bytes (``b""`` for null or
    anything else). Not parsed: the app writes it compactly (orjson), and this command must
    not import json (start-up time)."""
    head = b'{"decision":'
    line = line.strip()
    if not (line.startswith(head) and line.endswith(b"}")):
        return b""
    inner = line[len(head):-1].strip()
    return inner if inner.startswith(b"{") and inner.endswith(b"}") else b""


def socket_path() -> str:
    """The app's socket; the same answer as :func:`deck_tray.services.ipc.socket_path`
    (repeated here so this command imports neither Qt nor asyncio)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime:
        return os.path.join(runtime, "deck-tray", "ipc.sock")
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return os.path.join(platformdirs.user_runtime_dir("deck-tray", appauthor=False), "ipc.sock")


def _clipped(raw: bytes) -> bytes:
    """A large payload with every string longer than :data:`CLIP_TO` cut (``b""`` if not JSON)."""
    import json

    def clip(v: object, depth: int = 0) -> object:
        if isinstance(v, str):
            return v if len(v) <= CLIP_TO else v[:CLIP_TO] + "…[clipped by deck-tray]"
        if depth > 20:
            return None
        if isinstance(v, dict):
            return {k: clip(x, depth + 1) for k, x in v.items()}
        if isinstance(v, list):
            return [clip(x, depth + 1) for x in v]
        return v

    try:
        return json.dumps(clip(json.loads(raw)), ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        return b""
