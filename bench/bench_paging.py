"""Older messages on demand (#16 item 7): a tab on a long transcript paged to its start.

    python bench/bench_paging.py [--messages 20000] [--json]

A Claude Code transcript of ``--messages`` messages is generated (prompts of a line or two,
answers of 0.5–2 KB of markdown: paragraphs, a list, a code block). A session tab opens on what
the live scan keeps of it (the newest 400 messages) in a shown window; then the view is scrolled
to the top again and again, as a user holding the scroll bar up would, until the line at the top
says "Start of the conversation": 200 held messages a page, then the whole transcript read on the
worker thread, then its pages. Measured on the GUI thread with a 5 ms heartbeat timer (a stall =
how late a tick fired): the longest stall, and the time from the first scroll to the start. Then
a search hit in message 3 is revealed in a fresh tab (the same read, the hit's page built).

naive = rendering the whole conversation at once: ``setMarkdown`` of all messages and its layout,
on the GUI thread (what "render everything" costs without pages).

``measure()`` runs this in a child process (its own QApplication) for ``bench/table.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

WORDS = ("parser token refresh module returns value the a of to in request handler cache index "
         "session window layout stream buffer").split()


def _prose(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_transcript(path: Path, n: int, seed: int = 7) -> None:
    """``n`` messages of a Claude Code transcript, prompts and answers in turn."""
    rng = random.Random(seed)
    t0 = 1_800_000_000
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t0 + i))
            base = {"sessionId": "bench-paging", "cwd": "/work/project", "timestamp": ts}
            if i % 2 == 0:
                rec = {**base, "type": "user", "uuid": f"u{i}", "message": {
                    "role": "user", "content": f"prompt {i}: {_prose(rng, rng.randint(8, 40))}"}}
            else:
                body = "\n\n".join([
                    f"Answer {i}: {_prose(rng, rng.randint(30, 120))}",
                    "\n".join(f"- {_prose(rng, rng.randint(4, 12))}" for _ in range(rng.randint(1, 4))),
                    f"```python\ndef f_{i}(x):\n    return x + {i}\n```" if rng.random() < 0.4 else "",
                    _prose(rng, rng.randint(10, 60)),
                ]).strip()
                rec = {**base, "type": "assistant", "uuid": f"a{i}", "message": {
                    "role": "assistant", "id": f"m{i}", "stop_reason": "end_turn",
                    "content": [{"type": "text", "text": body}]}}
            f.write(json.dumps(rec) + "\n")


def run(n: int) -> dict[str, Any]:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QTextBrowser

    from deck_tray.commands.run import settle_heap
    from deck_tray.core.claude import ClaudeTranscript
    from deck_tray.core.model import AgentKind, Session, SessionStatus
    from deck_tray.ui.session_tab import MAX_RENDERED, SessionTab, _message_md, render_conversation

    app = QApplication.instance() or QApplication([sys.argv[0]])
    late: list[float] = []
    last = [0.0]
    beat = QTimer()
    beat.setTimerType(Qt.TimerType.PreciseTimer)
    beat.setInterval(5)

    at: list[float] = []

    def tick() -> None:
        now = time.perf_counter()
        late.append(max(0.0, now - last[0] - 0.005))
        at.append(now)
        last[0] = now

    beat.timeout.connect(tick)

    def meter_start() -> None:
        late.clear()
        at.clear()
        last[0] = time.perf_counter()
        beat.start()

    def spin(until: Any, timeout: float) -> None:
        end = time.perf_counter() + timeout
        while not until():
            if time.perf_counter() > end:
                raise TimeoutError("bench_paging: gave up waiting")
            app.processEvents()
            time.sleep(0.0005)

    out: dict[str, Any] = {"messages": n}
    with tempfile.TemporaryDirectory(prefix="dt-paging-") as tmp:
        path = Path(tmp) / "bench-paging.jsonl"
        write_transcript(path, n)
        out["mb"] = path.stat().st_size / 1e6
        live = ClaudeTranscript()
        for line in path.read_bytes().splitlines():
            live.feed(json.loads(line))
        session = Session(id="bench-paging", agent=AgentKind.CLAUDE_CODE, cwd="/work/project", title="paging",
                          status=SessionStatus.IDLE, updated_at=time.time(), transcript=str(path),
                          messages=tuple(live.messages))
        settle_heap()

        def note(tab: SessionTab) -> str:
            return tab.view.document().begin().text()

        # Paging to the start.
        tab = SessionTab(session)
        tab.resize(1000, 800)
        tab.show()
        spin(lambda: tab._ready and not tab._older, 30)
        meter_start()
        t0 = time.perf_counter()
        pages = 0
        first_transcript = None
        read_from = read_to = 0.0
        bar = tab.view.verticalScrollBar()
        while note(tab) != "Start of the conversation":
            if time.perf_counter() - t0 > 300:
                raise TimeoutError(f"bench_paging: still at {note(tab)!r}")
            if not tab._building() and bar.value() > bar.minimum():
                bar.setValue(bar.minimum())  # the user drags the bar to the top again
                pages += 1
            if tab._transcript == "loading" and not read_from:
                read_from = time.perf_counter()
            if tab._transcript == "loaded" and first_transcript is None:
                first_transcript = time.perf_counter() - t0
                read_to = time.perf_counter()
            app.processEvents()
            time.sleep(0.0005)
        t_start = time.perf_counter() - t0
        beat.stop()
        reading = [x for x, t in zip(late, at, strict=True) if read_from <= t <= read_to + 0.05]
        rest = sorted(x for x, t in zip(late, at, strict=True) if not read_from <= t <= read_to + 0.05)
        out.update(page_seconds=t_start, page_stall=max(late, default=0.0), pages=pages,
                   stall_reading=max(reading, default=0.0), stall_paging=max(rest, default=0.0),
                   stall_p99=rest[int(len(rest) * 0.99)] if rest else 0.0,
                   stalls_over_50=sum(1 for x in late if x > 0.050), load=os.getloadavg()[0],
                   transcript_seconds=first_transcript or 0.0, ticks=len(late),
                   window_chars=len(tab.view.document().toRawText()))
        tab.close()
        tab.deleteLater()

        # A search hit in message 3 (a fresh tab; the transcript read again).
        tab = SessionTab(session)
        tab.resize(1000, 800)
        tab.show()
        spin(lambda: tab._ready and not tab._older, 30)
        got: list[bool] = []
        tab.revealed.connect(got.append)
        meter_start()
        t0 = time.perf_counter()
        tab.reveal("prompt", "prompt 2:")
        spin(lambda: bool(got), 120)
        out.update(reveal_seconds=time.perf_counter() - t0, reveal_stall=max(late, default=0.0),
                   reveal_found=got[0], reveal_block=tab.view.textCursor().block().text()[:40])
        beat.stop()
        tab.close()
        tab.deleteLater()

        # naive: all of it at once, on the GUI thread.
        full = ClaudeTranscript(max_messages=None)
        for line in path.read_bytes().splitlines():
            full.feed(json.loads(line))
        msgs = tuple(full.messages)
        view = QTextBrowser()
        view.resize(1000, 800)
        view.show()
        spin(lambda: True, 1)
        meter_start()
        t0 = time.perf_counter()
        view.setMarkdown(render_conversation(msgs[-len(msgs):]) if len(msgs) <= MAX_RENDERED
                         else "\n\n".join(_message_md(m) for m in msgs))
        view.document().documentLayout().documentSize()
        bar = view.verticalScrollBar()
        bar.setValue(bar.maximum())
        app.processEvents()
        out.update(naive_seconds=time.perf_counter() - t0)
        spin(lambda: True, 0.2)
        beat.stop()
        out.update(naive_stall=max(late, default=0.0), naive_chars=view.document().characterCount())
        view.close()
    return out


def measure(n: int = 20_000) -> dict[str, Any]:
    """Run :func:`run` in a child process (its own QApplication); its figures as a dict."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--messages", str(n), "--json"],
                          capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        return {"missing": f"bench_paging failed ({proc.returncode}): {proc.stderr[-2000:]}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def rows(res: dict[str, Any]) -> list[tuple[str, str, float | str | None, float | str | None, bool | None, str]]:
    """Table rows ``(metric, goal, deck-tray, naive, ok, fmt)``."""
    if "missing" in res:
        return [("older messages: paging stall max (ms)", "≤ 50", res["missing"][:60], None, None, "{:.0f}")]
    n = res["messages"]
    return [
        (f"older messages: longest GUI stall paging {n:,} to the top (ms)", "≤ 50", res["page_stall"] * 1000,
         res["naive_stall"] * 1000, res["page_stall"] <= 0.050, "{:.0f}"),
        (f"older messages: scroll-to-top → start of {n:,} (s)", "—", res["page_seconds"], res["naive_seconds"],
         None, "{:.1f}"),
        (f"older messages: reveal a hit in message 3 of {n:,} (s)", "—", res["reveal_seconds"], res["naive_seconds"],
         None, "{:.2f}"),
    ]


def notes(res: dict[str, Any]) -> list[str]:
    if "missing" in res:
        return [f"older messages: {res['missing']}"]
    return [f"older messages: a {res['mb']:.0f} MB Claude Code transcript of {res['messages']:,} messages; the tab "
            f"held the newest 400; {res['pages']} scrolls to the top reached its start in {res['page_seconds']:.1f} s "
            f"(the whole transcript read on the worker after {res['transcript_seconds']:.2f} s), longest stall "
            f"{res['page_stall'] * 1000:.0f} ms ({res['stall_reading'] * 1000:.0f} ms while the worker read the "
            f"transcript, {res['stall_paging'] * 1000:.0f} ms while pages were built, "
            f"p99 {res['stall_p99'] * 1000:.0f} "
            f"ms, {res['stalls_over_50']} ticks over 50 ms; load average {res['load']:.1f} on {os.cpu_count()} cores), "
            f"the view holding {res['window_chars'] / 1e6:.2f} M characters at the "
            f"end (newest pieces dropped beyond the window); a hit in message 3 revealed in "
            f"{res['reveal_seconds']:.2f} s (stall {res['reveal_stall'] * 1000:.0f} ms, found: {res['reveal_found']}). "
            f"naive = setMarkdown of all {res['messages']:,} messages and their layout at once: "
            f"{res['naive_seconds']:.1f} s, one stall of {res['naive_stall'] * 1000:.0f} ms."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = ap.parse_args()
    out = run(args.messages)
    if args.json:
        print(json.dumps(out), flush=True)
    else:
        for metric, goal, ours, naive, ok, fmt in rows(out):
            show = [fmt.format(v) if isinstance(v, float | int) else str(v) for v in (ours, naive)]
            print(f"{metric:<62} goal {goal:>5}  deck-tray {show[0]:>8}  naive {show[1]:>8}  "
                  f"{'—' if ok is None else 'ok' if ok else 'MISS'}")
        for line in notes(out):
            print(f"* {line}")
    os._exit(0)  # skip interpreter teardown of Qt objects


if __name__ == "__main__":
    main()
