"""``deck-tray serve --stdio``: this machine's agent sessions for another machine's deck-tray.

Run by the other machine over the user's own ssh (``ssh -T -o BatchMode=yes HOST deck-tray serve
--stdio``, issue #18), never by hand. It needs no display: a ``QCoreApplication`` runs the same
watching and answering services as the app (scanner, panes, registry, monitor, opencode servers,
dispatcher) and :class:`~deck_tray.services.remote_serve.RemoteServer` speaks
:mod:`deck_tray.core.wire` on stdin/stdout. Its log goes to stderr (the other side keeps the last
lines to explain a failure). It ends when stdin ends (the other side or its ssh went away), each
service's stop bounded, the process ended at most :data:`deck_tray.services.lifecycle.GRACE_S`
seconds later.

It also answers history searches from this machine's own history index (the one the app and
``deck-tray search`` here use), brought up to date first on a worker thread
(:class:`~deck_tray.services.remote_serve.ServeHistory`).

Hooks on this machine keep going to a deck-tray app running here, if one does; ``serve`` does not
take its socket (a desktop session here may start the app at any time).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

log = logging.getLogger("deck_tray.serve")

#: Seconds each service may take to stop.
STOP_STEP_S = 1.5
#: Seconds between looks for opencode servers started on this machine.
DISCOVER_EVERY_S = 15.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``serve --stdio``."""
    p = sub.add_parser("serve", help="(run over ssh by another machine's deck-tray) watch and answer this "
                                     "machine's agent sessions, speaking JSON lines on stdin/stdout")
    p.add_argument("--stdio", action="store_true", required=True,
                   help="speak the remote protocol on stdin and stdout (the only transport)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until stdin ends; returns the exit code (0)."""
    import qasync
    from PySide6.QtCore import QCoreApplication

    from deck_tray.services import lifecycle, qt_messages

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    qt_messages.install()  # Qt's own warnings into the log (stderr), as in the app
    app = QCoreApplication.instance() or QCoreApplication(["deck-tray-serve"])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        code: int = loop.run_until_complete(serve())
    lifecycle.finish(code)
    return code


async def serve() -> int:
    """Build the headless services, serve the protocol on stdin/stdout, stop; returns 0."""
    from deck_tray.core import settings as cfg
    from deck_tray.core.agents import default_homes
    from deck_tray.core.hooks import HookStore
    from deck_tray.core.model import DeliveryReport, DeliveryState
    from deck_tray.core.reply import Reply
    from deck_tray.core.scan import Scanner
    from deck_tray.services.dispatcher import Dispatcher
    from deck_tray.services.history_store import discover_files
    from deck_tray.services.live_settings import agent_dirs
    from deck_tray.services.monitor import Monitor
    from deck_tray.services.opencode_source import OpencodeSource
    from deck_tray.services.panes import MuxSet, Tmux
    from deck_tray.services.registry import SessionRegistry
    from deck_tray.services.remote_serve import RemoteServer, ServeHistory
    from deck_tray.services.secrets import Credentials
    from deck_tray.services.settings_store import SettingsStore, open_settings
    from deck_tray.services.terminals import terminal_adapters
    from deck_tray.services.zellij import Zellij

    store = SettingsStore(open_settings())
    scanner = Scanner(*agent_dirs(store), history_s=store.get(cfg.HISTORY_HOURS) * 3600.0,
                      adapter_homes=default_homes())
    mux = MuxSet([Tmux(), Zellij(), *terminal_adapters()])
    registry = SessionRegistry(announce_hold=0)
    monitor = Monitor(scanner, mux, registry, hooks=HookStore())
    # Servers started there are found within DISCOVER_EVERY_S (their sessions are then live over
    # SSE); looking every 5 s as the app does cost a headless serve ~0.2 % of a core idle.
    opencode = OpencodeSource(registry, Credentials(), urls=[*store.get(cfg.OPENCODE_URLS)],
                              discover=store.get(cfg.OPENCODE_DISCOVER), discover_every=DISCOVER_EVERY_S)

    dispatcher = Dispatcher(mux, monitor.fresh, api=opencode)

    async def deliver(session_id: str, reply: Reply) -> DeliveryReport:
        session = registry.get(session_id)
        if session is None:
            await monitor.refresh_now(force=True)
            session = registry.get(session_id)
        if session is None:
            return DeliveryReport(DeliveryState.REFUSED, "the session is no longer known on this host", reply.text)
        return await dispatcher.dispatch(session, reply)

    async def first_scan() -> None:
        await monitor.refresh_now(incremental=False, force=True)

    history = ServeHistory(lambda: discover_files(scanner.claude_dir, scanner.codex_dir, default_homes()))
    server = RemoteServer(registry, deliver, first_scan, history=history)
    monitor.start()
    opencode.start()
    why = await server.serve()
    log.info("serve ends: %s", why)
    history.close()
    for name, step in (("file watcher", monitor.stop()), ("opencode", opencode.stop())):
        try:
            await asyncio.wait_for(step, STOP_STEP_S)
        except TimeoutError:
            log.warning("stopping the %s took over %g s; going on without it", name, STOP_STEP_S)
    return 0
