"""The real app on a generated tree, in a process of its own: cold start, a 100 MB tab, RSS with tabs.

    python bench/app_run.py --claude DIR --codex DIR --expect N --big SESSION_ID [--tabs 50]

(Normally started by ``bench/table.py``; prints one JSON object on its last line.)

The child builds :class:`deck_tray.app.DeckTrayApp` as ``deck_tray.commands.run.run_app`` does
(heap settled, qasync loop, the window shown because the offscreen platform has no tray) over the given folders,
with no opencode discovery, no desktop notifications and a tmux that has no server. It
measures:

* **cold start**: from the parent's ``Popen`` (``--t0``, CLOCK_MONOTONIC) to the first paint
  of the session list holding all ``--expect`` sessions, split into interpreter + imports
  and app; the bytes the process read meanwhile (``/proc/self/io``: ``rchar`` through
  ``read``/``pread``, ``read_bytes`` from the disk) and the longest GUI-thread stall;
* **big tab**: ``MainWindow.open_session`` of ``--big`` (the click) to the first paint of
  its conversation, the longest lateness of a 5 ms timer from the click to 0.5 s after the
  paint, and the GUI thread's CPU time until the paint; ``--opens`` times (the first is the
  process's first tab; the tab is closed in between);
* **RSS** (``VmRSS``) with no tab open and after opening ``--tabs`` tabs (the big one and the
  most recent others, 20 ms apart) and looking at each once (so each built its conversation; the
  window keeps the content of the ``KEEP_BUILT`` tabs shown last, see ``deck_tray.ui.session_tab``);
* **naive big tab**: what opening it costs when the tab reads the whole transcript itself
  (read and parse every line on the GUI thread, then render the same conversation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

T_MAIN = time.perf_counter()
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def proc_io() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/io") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            out[k.strip()] = int(v)
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(args: argparse.Namespace) -> dict[str, object]:
    import asyncio
    import dataclasses
    import gc
    import tempfile

    t_imp = time.perf_counter()
    import qasync
    from bench_opencode import GcMeter, StallMeter
    from PySide6.QtCore import QEvent, QObject, QSettings
    from PySide6.QtWidgets import QApplication, QWidget

    from deck_tray.app import DeckTrayApp
    from deck_tray.commands.run import settle_heap
    from deck_tray.core.claude import ClaudeTranscript
    from deck_tray.core.jsonl import JsonlTailer
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux
    from deck_tray.services.secrets import Credentials
    from deck_tray.ui.session_tab import SessionTab
    t_imported = time.perf_counter()

    class PaintWatch(QObject):
        """Resolves a future at the first paint of ``widget`` (after ``ready()`` holds)."""

        def __init__(self, widget: QWidget, ready: Callable[[], bool] = lambda: True) -> None:
            super().__init__()
            self.ready = ready
            self.fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            self.cpu = 0.0  # the GUI thread's CPU time at that paint
            widget.installEventFilter(self)

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and not self.fut.done() and self.ready():
                self.cpu = time.thread_time()
                self.fut.set_result(time.perf_counter())
            return False

    qapp = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("deck-tray")
    qapp.setQuitOnLastWindowClosed(False)
    tmp = tempfile.TemporaryDirectory(prefix="deck-tray-apprun-")
    out: dict[str, object] = {}

    async def main() -> None:
        settings = QSettings(str(Path(tmp.name) / "deck-tray.ini"), QSettings.Format.IniFormat)
        scanner = Scanner(Path(args.claude), Path(args.codex))
        app = DeckTrayApp(scanner=scanner, mux=Tmux(env={"TMUX_TMPDIR": str(Path(tmp.name) / "no-tmux")}),
                          settings=settings, notification_backends=[], discover_opencode=False,
                          credentials=Credentials(env={}))
        win = app.window
        def full() -> bool:  # what the list shows (not listed(): that would flush a pending rebuild)
            lst = win.session_list
            n = sum(lst.topLevelItem(i).childCount() for i in range(lst.topLevelItemCount()))
            return n >= args.expect

        list_watch = PaintWatch(win.session_list.viewport(), full)
        io0 = proc_io()
        meter = StallMeter()
        meter.start()
        t_app = time.perf_counter()
        app.start()
        # The first full session list: all expected sessions in the registry and the list.
        while True:
            await asyncio.sleep(0.002)
            if len(app.registry.sessions()) >= args.expect and full():
                break
            if time.perf_counter() - t_app > 120:
                raise SystemExit(f"only {len(app.registry.sessions())} of {args.expect} sessions after 120 s")
        t_listed = time.perf_counter()
        t_paint = await asyncio.wait_for(list_watch.fut, 10)
        io1 = proc_io()
        meter.stop()
        out.update(
            spawn_to_main=T_MAIN - args.t0, imports=t_imported - t_imp, app_init=t_app - t_imported,
            start_to_listed=t_listed - t_app, list_paint=t_paint - args.t0,
            rchar=io1["rchar"] - io0["rchar"], read_bytes=io1["read_bytes"] - io0["read_bytes"],
            cold_stall=max(meter.late, default=0.0), sessions=len(app.registry.sessions()),
        )
        if args.start_only:
            await app.stop()
            return
        await asyncio.sleep(1.0)
        gc.collect()
        out["rss0"] = rss_mb()

        # Open the big transcript's tab (the first tab of the process), close it, open it again.
        big = app.registry.get(args.big)
        assert big is not None, "the big transcript is not listed"
        opens: list[dict[str, float]] = []
        for k in range(args.opens):
            if k:
                win.close_tab(win.tabs.indexOf(win.tabs_by_id[args.big]))
                await asyncio.sleep(0.3)
            meter = StallMeter()
            meter.start()
            t_click, c_click = time.perf_counter(), time.thread_time()
            tab = win.open_session(args.big)
            assert tab is not None
            t_built = time.perf_counter()
            watch = PaintWatch(tab.view.viewport())
            t_tab_paint = await asyncio.wait_for(watch.fut, 30)
            c_paint = watch.cpu
            await asyncio.sleep(0.5)
            meter.stop()
            opens.append({"paint": t_tab_paint - t_click, "build": t_built - t_click,
                          "stall": max(meter.late, default=0.0), "cpu": c_paint - c_click})
        out.update(opens=opens, tab_messages=len(big.messages))

        # Tabs until --tabs are open: the most recent sessions.
        others = sorted((s for s in app.registry.sessions() if s.id != args.big), key=lambda s: -s.updated_at)
        meter = StallMeter()
        meter.start()
        t_tabs = time.perf_counter()
        worst = (0.0, "")
        per_tab: list[int] = []
        gcm = GcMeter()
        gcm.start()
        for s in others[:args.tabs - 1]:
            n = len(meter.late)
            win.open_session(s.id)
            await asyncio.sleep(0.02)  # one click after another
            worst = max(worst, (max(meter.late[n:], default=0.0), s.id))
            per_tab.append(round(max(meter.late[n:], default=0.0) * 1000))
        t_tabs_done = time.perf_counter()
        await asyncio.sleep(1.0)
        meter.stop()
        gcm.stop()
        # Look at each tab once, so each has built its whole conversation (a hidden tab waits).
        for t in list(win.tabs_by_id.values()):
            win.tabs.setCurrentWidget(t)
            deadline = time.perf_counter() + 10
            while t._older and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        gc.collect()
        out.update(tabs=win.tabs.count(), rss_tabs=rss_mb(), tabs_seconds=t_tabs_done - t_tabs,
                   tabs_stall=max(meter.late, default=0.0), tabs_worst=worst, tabs_gc=gcm.longest, per_tab=per_tab,
                   rendered_messages=sum(min(200, len(t.session.messages)) for t in win.tabs_by_id.values()))

        # The naive tab: read and parse the whole transcript on the GUI thread, then render.
        if args.naive:
            meter = StallMeter()
            meter.start()
            t_click = time.perf_counter()
            state = ClaudeTranscript()
            tailer = JsonlTailer(big.transcript, tail_bytes=None)
            res = tailer.read_new()
            for rec in res.records:
                state.feed(rec)
            del res
            naive_tab = SessionTab(dataclasses.replace(big, messages=tuple(state.messages)))
            win.tabs.addTab(naive_tab, "naive")
            win.tabs.setCurrentWidget(naive_tab)
            watch = PaintWatch(naive_tab.view.viewport())
            t_naive_paint = await asyncio.wait_for(watch.fut, 120)
            await asyncio.sleep(0.5)
            meter.stop()
            out.update(naive_tab_paint=t_naive_paint - t_click, naive_tab_stall=max(meter.late, default=0.0),
                       naive_tab_bytes=tailer.offset)
        await app.stop()

    settle_heap()
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(main())
    tmp.cleanup()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claude", required=True)
    ap.add_argument("--codex", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--big", required=True)
    ap.add_argument("--tabs", type=int, default=50)
    ap.add_argument("--naive", action="store_true")
    ap.add_argument("--opens", type=int, default=3, help="times the big tab is opened (closed in between)")
    ap.add_argument("--start-only", action="store_true", help="stop once the list is painted")
    ap.add_argument("--t0", type=float, default=T_MAIN)
    args = ap.parse_args()
    out = run(args)
    print(json.dumps(out), flush=True)
    os._exit(0)  # skip interpreter teardown of Qt objects


if __name__ == "__main__":
    main()
