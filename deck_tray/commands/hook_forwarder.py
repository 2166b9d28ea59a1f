"""``deck-tray hook <agent> [PAYLOAD | EVENT]``: forward one hook or notify call to the running app.

The command Claude Code, Codex, Gemini CLI, Qwen Code and Copilot CLI run for every hooked event
(``deck-tray hooks install`` writes it into their configs). The payload is the JSON object on
stdin (hooks) or, for Codex's ``notify``, the last argument (``deck-tray hook codex '<json>'``).
Copilot CLI's payloads mostly do not name their event, so its commands do:
``deck-tray hook copilot-cli agentStop`` (the line then carries ``"event":"agentStop"``).
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
* Qwen Code's ``PermissionRequest`` and Copilot CLI's ``permissionRequest`` hide the agent's
  prompt while the hook runs (issue #19): they wait for a decision at most the seconds the app
  gives in its ``held`` line (``{"held":true,"wait_s":3.0}``, the "Let Qwen and Copilot wait for
  deck-tray" setting) and never more than :data:`SHORT_WAIT_CAP_S`, then return with nothing
  printed (the agent shows its prompt). The decision is printed in the agent's own format (the
  app builds it). Gemini CLI awaits every hook before drawing its prompt and no hook output
  approves anything there: its hooks never wait.
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
AGENTS = ("claude-code", "codex", "gemini-cli", "qwen-code", "copilot-cli")
#: Agents whose second argument is the event (never a notify payload).
EVENT_ARG = frozenset({"gemini-cli", "qwen-code", "copilot-cli"})
#: agent → the event whose hook waits for a decision (the agent's spelling; the same as each
#: adapter's ``decision_event``, checked by a test). Gemini CLI has none.
DECISION_EVENTS = {"claude-code": b"PermissionRequest", "codex": b"PermissionRequest",
                   "qwen-code": b"PermissionRequest", "copilot-cli": b"permissionRequest"}
#: Agents that show no prompt while that hook runs: held only briefly (see the module docstring).
SHORT_WAIT = frozenset({"qwen-code", "copilot-cli"})
#: The most such a hook ever waits (seconds): the setting's maximum
#: (:data:`deck_tray.core.hooks_config.SHORT_WAIT_MAX_S`) and a margin.
SHORT_WAIT_CAP_S = 31.0
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
#: The start of a bounded hold's acknowledgement, ``{"held":true,"wait_s":3.0}``.
HELD_BOUNDED = b'{"held":true,"wait_s":'
#: Seconds waited beyond a bounded hold's limit for the app's (null) answer to arrive.
HELD_MARGIN_S = 0.5


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``hook AGENT [PAYLOAD]`` (``deck_tray.cli.main`` runs :func:`main` before parsing)."""
    p = sub.add_parser(
        "hook", help="forward an agent's hook or notify event to the running app (run by the agents)",
        description="Read a Claude Code / Codex / Gemini CLI / Qwen Code / Copilot CLI hook payload from stdin "
                    "(or a Codex notify payload from the last argument) and hand it to the running deck-tray. "
                    "Prints nothing but a decision made in deck-tray, and exits 0, always.")
    p.add_argument("agent", choices=AGENTS)
    p.add_argument("payload", nargs="?", help="the JSON payload (Codex notify), or the event (Copilot CLI); "
                                              "default: read stdin")
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
    agent = argv[0]
    event = b""
    if agent in EVENT_ARG:
        if len(argv) > 1:
            event = argv[1].encode("utf-8", "surrogateescape")
            if not event.isascii() or not event.replace(b"_", b"").isalnum() or len(event) > 64:
                event = b""
        raw, kind = read_stdin(), b"hook"
    elif len(argv) > 1:
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
    # A permission request waits for the user's decision (the app checks the event itself).
    decides = DECISION_EVENTS.get(agent, b"")
    wait = kind == b"hook" and bool(decides) and (event == decides if event else decides in raw)
    line = b'{"op":"hook","agent":"%s","kind":"%s","received":%s,%s%s"payload":%s}\n' % (
        agent.encode(), kind, repr(received).encode(), b'"event":"%s",' % event if event else b"",
        b'"wait":true,' if wait else b"", raw)
    if not wait:
        return send(path or socket_path(), line)
    short = agent in SHORT_WAIT
    decision = send_and_wait(path or socket_path(), line, cap=SHORT_WAIT_CAP_S if short else DECISION_WAIT_CAP_S)
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

    The app answers ``{"held": true}`` at once (``{"held":true,"wait_s":N}`` for a bounded hold:
    then at most ``N`` seconds and a small margin are waited, never more than ``cap``), then
    ``{"decision": {...} | null}`` when the user answered or the request went elsewhere; or
    ``{"decision": null}`` at once when it does not hold it. For Qwen Code and Copilot CLI
    ``cap`` is :data:`SHORT_WAIT_CAP_S` (they show no prompt meanwhile).

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
            first = first.strip()
            if first == HELD_LINE:
                wait = cap  # held: now the user's decision may take its time
                continue
            if first.startswith(HELD_BOUNDED) and first.endswith(b"}"):
                try:
                    limit = float(first[len(HELD_BOUNDED):-1].decode())
                except ValueError:
                    limit = cap
                # Bounded: the app lets the hook go at the limit; the margin covers the way back.
                wait = min(cap, max(0.0, limit) + HELD_MARGIN_S)
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
