"""The history index (#7): full build, incremental updates, query latency — beside ``grep -r``.

    python bench/bench_history.py [--tree DIR] [--files 5000] [--gb 2] [--keep]

Without ``--tree`` a tree is generated with ``bench/corpus.py`` (5 000 Claude Code and Codex
transcripts, 2 GB). Measured, in this process, with a QApplication whose GUI thread only runs
a 5 ms heartbeat timer (so a GUI-thread stall is what a window would feel), after
``settle_heap()`` as deck-tray's ``main()`` does (without it every full garbage collection the
worker's allocations trigger also walks the Qt bindings' objects: 55–70 ms gaps instead of ~30):

* **build**: :class:`deck_tray.services.history_indexer.HistoryIndexer` from an empty database
  until its first full scan is done — wall time, the longest heartbeat gap beyond its 5 ms, the
  database size; the page cache is evicted first (a first start after boot);
* **incremental**: ``--appends`` files get ``--append-kb`` KB of their own records appended,
  then one ``sync_files`` call brings them in — ms per appended KB; naive = the same files
  dropped and indexed again in full (what an index without stored byte offsets does), per KB;
* **queries**: words, a phrase, a prefix, filters and a rare phrase (from the appends), each
  ``--repeat`` times — p50/p95; naive = ``grep -r -l -i -F`` of the same text over the tree
  (warm page cache, once per query).

``measure()`` is what ``bench/table.py`` calls on its own generated tree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402
from bench_detection import pct  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from deck_tray.commands.run import settle_heap  # noqa: E402
from deck_tray.core.history import parse_query  # noqa: E402
from deck_tray.core.model import AgentKind  # noqa: E402
from deck_tray.services.history_indexer import HistoryIndexer  # noqa: E402
from deck_tray.services.history_store import HistoryIndex  # noqa: E402

#: A phrase that occurs only in the appended records (the rare query).
RARE = "quokka token refresh"
#: (label, query as typed in the search window, text grep looks for)
QUERIES = [
    ("two common words", "parser returns", "parser returns"),
    ("phrase", '"raise ValueError"', "raise ValueError"),
    ("prefix", "migrat* timeout", "migrat"),
    ("words + agent filter", "agent:codex cache invalid", "cache invalid"),
    ("words + role filter", "role:user schema update", "schema update"),
    ("rare phrase", f'"{RARE}"', RARE),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build(tree: corpus.Tree, db: Path) -> dict[str, Any]:
    """Index ``tree`` into a new database at ``db`` with the app's background indexer.

    Returns ``{"seconds", "stall_ms", "ticks", "stats"}``; the GUI thread's longest gap
    between 5 ms heartbeats (beyond the 5 ms) is ``stall_ms``.
    """
    _app = QApplication.instance() or QApplication([sys.argv[0]])  # kept alive while the loop runs
    settle_heap()  # as deck-tray's main() does once the libraries are loaded
    index = HistoryIndex(db)
    indexer = HistoryIndexer(index, lambda: (tree.claude_dir, tree.codex_dir), interval_s=3600)
    gaps: list[float] = []
    clock = QElapsedTimer()
    beat = QTimer()
    beat.setInterval(5)
    last = [0]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6)
        last[0] = now

    beat.timeout.connect(tick)
    loop = QEventLoop()
    done = QTimer()
    done.setInterval(50)

    def check() -> None:
        if indexer.scans >= 1 and indexer.idle:
            loop.quit()

    done.timeout.connect(check)
    clock.start()
    beat.start()
    done.start()
    t0 = time.perf_counter()
    indexer.start()
    loop.exec()
    seconds = time.perf_counter() - t0
    beat.stop()
    done.stop()
    asyncio.run(indexer.stop())
    stats = index.stats()
    index.close()
    return {"seconds": seconds, "stall_ms": max(gaps, default=0.0) - 5.0, "ticks": len(gaps), "stats": stats,
            "over_20": sum(g > 25 for g in gaps), "top": sorted(gaps)[-5:]}


def _mark(rec: Any, marker: str) -> bool:
    """Put ``marker`` in front of the first string of prose (five spaces or more) in ``rec``."""
    items = rec.items() if isinstance(rec, dict) else enumerate(rec) if isinstance(rec, list) else []
    for key, value in items:
        if isinstance(value, str) and value.count(" ") >= 5:
            rec[key] = f"{marker} {value}"
            return True
        if isinstance(value, (dict, list)) and _mark(value, marker):
            return True
    return False


def _append(path: Path, kb: int, marker: str) -> int:
    """Append about ``kb`` KB of the file's own records (after its first line) to it, the
    first prose in them starting with ``marker``; returns the bytes appended."""
    with path.open("rb") as f:
        f.readline()
        lines = f.read(kb * 1024 * 4).splitlines(keepends=True)
    out: list[bytes] = []
    size = 0
    marked = False
    for line in lines:
        if not line.endswith(b"\n"):
            break
        if not marked:
            rec = json.loads(line)
            if _mark(rec, marker):
                line = json.dumps(rec).encode() + b"\n"
                marked = True
        out.append(line)
        size += len(line)
        if size >= kb * 1024:
            break
    with path.open("ab") as f:
        f.write(b"".join(out))
    return size


def incremental(tree: corpus.Tree, db: Path, files: int, kb: int) -> dict[str, Any]:
    """Append to ``files`` transcripts, index the appends, then the naive full re-index.

    Returns ``{"ms_per_kb", "naive_ms_per_kb", "appended_kb", "files", "seconds", "naive_seconds"}``.
    """
    index = HistoryIndex(db)
    picked = [f for f in tree.files if f is not tree.big][:: max(1, len(tree.files) // files)][:files]
    times = {f.path: os.stat(f.path) for f in picked}
    appended = sum(_append(f.path, kb, RARE) for f in picked)
    work = [(AgentKind.CLAUDE_CODE if f.agent == "claude" else AgentKind.CODEX, str(f.path)) for f in picked]
    t0 = time.perf_counter()
    index.sync_files(work)
    seconds = time.perf_counter() - t0
    for _a, p in work:
        index.drop_file(p)
    t0 = time.perf_counter()
    index.sync_files(work)
    naive = time.perf_counter() - t0
    index.close()
    # Give the files their old times back: they stay as old as the tree says (the app's
    # start-up rows count the files touched in the last day).
    for path, st in times.items():
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    kbs = appended / 1024
    return {"ms_per_kb": seconds * 1000 / kbs, "naive_ms_per_kb": naive * 1000 / kbs, "appended_kb": kbs,
            "files": len(picked), "seconds": seconds, "naive_seconds": naive,
            "file_kb": sum(f.path.stat().st_size for f in picked) / 1024}


def queries(tree: corpus.Tree, db: Path, repeat: int) -> dict[str, Any]:
    """Run :data:`QUERIES` ``repeat`` times each and ``grep -r -l`` once each.

    Returns ``{"ms": [...], "per": {label: (p50 ms, hits, grep ms, grep files)}, "grep_ms": [...]}``.
    """
    index = HistoryIndex(db)
    index.open()
    all_ms: list[float] = []
    grep_ms: list[float] = []
    per: dict[str, tuple[float, int, float, int]] = {}
    for label, typed, literal in QUERIES:
        q = parse_query(typed)
        times = []
        hits = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            hits = len(index.search(q))
            times.append((time.perf_counter() - t0) * 1000)
        all_ms += times
        t0 = time.perf_counter()
        out = subprocess.run(["grep", "-r", "-l", "-i", "-F", "--", literal, str(tree.root)],
                             capture_output=True, check=False)
        g = (time.perf_counter() - t0) * 1000
        grep_ms.append(g)
        per[label] = (statistics.median(times), hits, g, len(out.stdout.splitlines()))
    index.close()
    return {"ms": all_ms, "per": per, "grep_ms": grep_ms}


def measure(tree: corpus.Tree, work: Path, *, appends: int = 50, append_kb: int = 16, repeat: int = 20,
            evict: bool = True) -> dict[str, Any]:
    """Build, incremental and query figures for ``tree``; the database lives under ``work``."""
    db = work / "history.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    if evict:
        corpus.evict(tree)
    log(f"history: full index build of {len(tree.files)} files, {tree.total_bytes / 1e9:.2f} GB")
    b = build(tree, db)
    log(f"history: built in {b['seconds']:.1f} s; {appends} appends of {append_kb} KB")
    inc = incremental(tree, db, appends, append_kb)
    log(f"history: {len(QUERIES)} queries × {repeat}, and grep -r of each")
    qs = queries(tree, db, repeat)
    return {"build": b, "inc": inc, "query": qs}


def rows(r: dict[str, Any]) -> list[tuple[str, str, float, float | None, bool | None, str, str | None]]:
    """``(metric, goal, ours, naive, ok, fmt, ratio)`` rows for ``bench/table.py``'s table
    (``ratio``: what the ratio column says instead of naive/ours, or None)."""
    b, inc, qs = r["build"], r["inc"], r["query"]
    q95, g95 = pct(qs["ms"], 0.95), pct(qs["grep_ms"], 0.95)
    grep_s = statistics.median(qs["grep_ms"]) / 1000
    return [
        (f"history: full index build, {b['stats']['sessions']} files (s; naive = one grep -r)", "≤ 60",
         b["seconds"], grep_s, b["seconds"] <= 60, "{:.1f}", f"= {b['seconds'] / grep_s:.0f} greps"),
        ("history: longest GUI stall during the build (ms)", "≤ 50", b["stall_ms"], None, b["stall_ms"] <= 50,
         "{:.0f}", None),
        ("history: incremental update per appended KB (ms; naive = re-index the files)", "—",
         inc["ms_per_kb"], inc["naive_ms_per_kb"], None, "{:.3f}", None),
        ("history: query p95 (ms; naive = grep -r -l)", "≤ 50", q95, g95, q95 <= 50, "{:.1f}", None),
    ]


def notes(r: dict[str, Any]) -> list[str]:
    """The figures behind the rows, one line each."""
    b, inc, qs = r["build"], r["inc"], r["query"]
    st = b["stats"]
    per = "; ".join(f"{k} {v[0]:.1f} ms ({v[1]} hits) vs grep {v[2]:.0f} ms ({v[3]} files)"
                    for k, v in qs["per"].items())
    return [
        f"history build: {st['sessions']} sessions, {st['entries']} entries, "
        f"{st['indexed_bytes'] / 1e9:.2f} GB of JSONL read, database {st['bytes'] / 1e6:.0f} MB; worker thread "
        f"at nice 19, GUI heartbeat {b['ticks']} ticks, longest gap {b['stall_ms'] + 5:.0f} ms (5 ms timer).",
        f"history incremental: {inc['files']} files ({inc['file_kb'] / 1024:.0f} MB) got {inc['appended_kb']:.0f} KB "
        f"appended: {inc['seconds'] * 1000:.0f} ms to index (from the stored offsets) vs "
        f"{inc['naive_seconds'] * 1000:.0f} ms re-indexing them in full.",
        f"history queries (p50 of each, {len(qs['ms']) // max(1, len(qs['per']))} runs; p95 over all "
        f"{pct(qs['ms'], 0.95):.1f} ms): {per}.",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", type=Path, help="an existing bench/corpus.py tree (generated otherwise)")
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--appends", type=int, default=50)
    ap.add_argument("--append-kb", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the generated tree and the database")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deck-tray-history-", dir="/tmp"))
    try:
        if args.tree:
            tree = corpus.Tree(args.tree, args.tree / "claude", args.tree / "codex")
            for agent, d in (("claude", tree.claude_dir), ("codex", tree.codex_dir)):
                for p in d.rglob("*.jsonl"):
                    st = p.stat()
                    tree.files.append(corpus.TreeFile(p, agent, p.stem[-36:], st.st_size, st.st_mtime))
        else:
            log(f"generating {args.files} transcripts, {args.gb:g} GB under {work / 'tree'}")
            tree = corpus.generate(work / "tree", files=args.files, total_bytes=int(args.gb * 1e9), recent=100,
                                   big_bytes=int(100e6))
        r = measure(tree, work, appends=args.appends, append_kb=args.append_kb, repeat=args.repeat)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"deck-tray history index — {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}")
    for metric, goal, ours, naive, ok, fmt, said in rows(r):
        nv = "—" if naive is None else fmt.format(naive)
        ratio = said or (f"{naive / ours:.0f}×" if naive and ours else "—")
        verdict = "—" if ok is None else "ok" if ok else "MISS"
        print(f"{metric:<80} {goal:>6} {fmt.format(ours):>9} {nv:>9} {ratio:>7} {verdict}")
    for n in notes(r):
        print(f"* {n}")


if __name__ == "__main__":
    main()
