"""Screenshots of the history search: results, no matches, indexing, a past session's tab
opened at a hit with its find bar, and remote hosts (#18): a host's hits merged in ("on lab"),
hosts that are unreachable or too old in the status line, and the note a remote past session
opens.

    xvfb-run -a python scripts/screenshots_search.py [OUT_DIR] [--dark]

Builds a real :class:`~deck_tray.services.history_store.HistoryIndex` over generated Claude
Code transcripts and Codex rollouts (the record shapes of Claude Code 2.1.197 and Codex
0.169.0) in a temporary folder, then drives the real windows.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deck_tray.core.history import HistoryRole, SearchQuery  # noqa: E402
from deck_tray.core.model import AgentKind  # noqa: E402
from deck_tray.core.wire import RemoteHit  # noqa: E402
from deck_tray.services.history_store import HistoryIndex  # noqa: E402
from deck_tray.services.registry import SessionRegistry  # noqa: E402
from deck_tray.services.remote import HostSearch, RemoteHistory, Remotes, SearchProblem  # noqa: E402
from deck_tray.ui.search_window import SearchWindow, link  # noqa: E402
from deck_tray.ui.window import MainWindow  # noqa: E402
from scripts.screenshots import dark_palette  # noqa: E402

DAY = 86_400.0
NOW = time.time()

CLAUDE = [
    ("api", "Fix the OAuth token refresh race in the API client when two requests expire at once", 3, [
        ("The token refresh fails after midnight for users in UTC+2, can you look at auth/refresh.py?",
         "The **token refresh** compares the expiry in local time with `datetime.utcnow()`. "
         "I changed `is_expired()` to use aware datetimes and added a test for the midnight case."),
        ("Now two requests that expire at once both refresh the token; make it refresh once",
         "Added an `asyncio.Lock` around the refresh so the second request waits for the first "
         "refreshed token instead of refreshing it again."),
    ]),
    ("billing", "Migrate the billing service to Postgres 16", 9, [
        ("Plan the migration of billing to Postgres 16 without downtime",
         "1. Replicate with logical replication\n2. Switch reads\n3. Switch writes during a short freeze"),
        ("The invoice job now times out on the token table",
         "The `tokens` table lost its index on `(account_id, expires_at)` in the dump; recreated it."),
    ]),
    ("web", "Dark mode for the settings page", 40, [
        ("Add dark mode to the settings page", "Done: the page follows `prefers-color-scheme`."),
    ]),
]
CODEX = [
    ("mobile", "refresh token is not saved after login on Android", 1, [
        ("refresh token is not saved after login on Android",
         "The refresh token was written to SharedPreferences with apply() after the process was "
         "killed; it is now stored with the encrypted store before navigating."),
    ]),
    ("infra", "rotate the deploy key and update CI", 15, [
        ("rotate the deploy key and update CI", "Rotated the key; the CI secret DEPLOY_KEY needs the new value."),
    ]),
]


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def write_corpus(root: Path) -> list[tuple[AgentKind, str]]:
    files: list[tuple[AgentKind, str]] = []
    for n, (proj, title, age, turns) in enumerate(CLAUDE):
        sid = f"5b0f3c7e-0000-4000-8000-{n:012d}"
        cwd = f"/home/dev/src/{proj}"
        path = root / "claude" / "projects" / cwd.replace("/", "-") / f"{sid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = NOW - age * DAY
        lines: list[dict[str, object]] = [{"type": "ai-title", "aiTitle": title, "sessionId": sid}]
        for i, (prompt, answer) in enumerate(turns):
            lines.append({"type": "user", "message": {"role": "user", "content": prompt}, "uuid": f"u{i}",
                          "timestamp": _iso(t0 + 300 * i), "cwd": cwd, "sessionId": sid, "promptSource": "typed"})
            lines.append({"type": "assistant", "message": {"role": "assistant", "model": "m", "id": f"m{i}",
                                                            "content": [{"type": "text", "text": answer}]},
                          "uuid": f"a{i}", "timestamp": _iso(t0 + 300 * i + 40), "cwd": cwd, "sessionId": sid})
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        files.append((AgentKind.CLAUDE_CODE, str(path)))
    for n, (proj, _title, age, turns) in enumerate(CODEX):
        tid = f"01a20000-0000-7000-8000-{n:012d}"
        cwd = f"/home/dev/src/{proj}"
        t0 = NOW - age * DAY
        path = root / "codex" / "sessions" / time.strftime("%Y/%m/%d", time.gmtime(t0)) / \
            f"rollout-{time.strftime('%Y-%m-%dT%H-%M-%S', time.gmtime(t0))}-{tid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [{"timestamp": _iso(t0), "type": "session_meta",
                  "payload": {"id": tid, "session_id": tid, "timestamp": _iso(t0), "cwd": cwd}}]
        for i, (prompt, answer) in enumerate(turns):
            ts = _iso(t0 + 200 * i)
            lines.append({"timestamp": ts, "type": "response_item", "payload": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}})
            lines.append({"timestamp": ts, "type": "event_msg", "payload": {"type": "user_message", "message": prompt}})
            lines.append({"timestamp": _iso(t0 + 200 * i + 30), "type": "response_item", "payload": {
                "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}})
            lines.append({"timestamp": _iso(t0 + 200 * i + 31), "type": "event_msg",
                          "payload": {"type": "task_complete", "last_agent_message": answer}})
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        files.append((AgentKind.CODEX, str(path)))
    return files


class ShotRemote(RemoteHistory):
    """Three configured hosts, answered by the script: ``lab`` with two hits, ``gpu`` not
    reachable, ``attic`` with a deck-tray from before history search."""

    def __init__(self) -> None:
        super().__init__(Remotes(SessionRegistry()), lambda: True)
        self.gen = 0

    def search(self, gen: int, query: SearchQuery) -> list[str]:
        self.gen = gen
        return ["lab", "gpu", "attic"]

    def cancel(self) -> None:
        pass

    def answer_all(self) -> None:
        hits = (
            RemoteHit(AgentKind.CLAUDE_CODE, "9c1d2e3f-0000-4000-8000-000000000001",
                      "Token refresh for the lab's job scheduler", "/home/me/lab/scheduler", "", "", 2,
                      HistoryRole.USER, NOW - 2 * 3600,
                      "The scheduler's token refresh races with the nightly job; refresh it once per run",
                      (("The scheduler's ", False), ("token refresh", True), (" races with the nightly job; "
                                                                              "refresh it once per run", False)),
                      -1000.0, host="lab"),
            RemoteHit(AgentKind.CODEX, "01a20000-0000-7000-8000-0000000000aa",
                      "retry the token refresh on 503", "/home/me/lab/gateway", "", "", 5,
                      HistoryRole.ASSISTANT, NOW - 6 * DAY,
                      "Retry the token refresh with backoff when the identity service answers 503",
                      (("Retry the ", False), ("token refresh", True), (" with backoff when the identity "
                                                                        "service answers 503", False)),
                      -5.0, host="lab"))
        self.answered.emit(self.gen, HostSearch("lab", hits))
        self.answered.emit(self.gen, HostSearch(
            "gpu", problem=SearchProblem.NOT_REACHABLE,
            detail="gpu (me@gpu-01) is not connected: me@gpu-01 cannot be reached: Connection timed out."))
        self.answered.emit(self.gen, HostSearch(
            "attic", problem=SearchProblem.TOO_OLD,
            detail="attic's deck-tray is too old for history search; run deck-tray remote install attic"))


def settle(qapp: QApplication, ms: int = 600) -> None:
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        qapp.processEvents()
        time.sleep(0.01)


def wait(qapp: QApplication, pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("screenshot scenario timed out")
        qapp.processEvents()
        time.sleep(0.01)


def save(w: QWidget, path: Path) -> None:
    w.grab().save(str(path))
    print(path)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    qapp = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(qapp, QApplication)
    qapp.setStyle("Fusion")
    suffix = ""
    if "--dark" in sys.argv:
        qapp.setPalette(dark_palette())
        suffix = "-dark"
    work = Path(tempfile.mkdtemp(prefix="deck-tray-search-shots-"))
    index = HistoryIndex(work / "history.db")
    index.sync_files(write_corpus(work))
    win = MainWindow(SessionRegistry(), QSettings(str(work / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1040, 680)
    search = SearchWindow(index)
    search.resize(760, 560)
    link(search, win)
    search.present("token refresh")
    wait(qapp, lambda: search.state == "results")
    settle(qapp)
    save(search, out / f"search-results{suffix}.png")

    search.project.setText("billing")
    search.query.setText("kubernetes operator")
    search.run_now()
    wait(qapp, lambda: search.state == "no_matches")
    settle(qapp)
    save(search, out / f"search-no-matches{suffix}.png")

    search.clear_filters()
    search.query.setText("")
    search.run_now()
    search.set_progress(1240, 5000)
    settle(qapp)
    save(search, out / f"search-indexing{suffix}.png")
    search.set_progress(5000, 5000)

    search.query.setText("token refresh")
    search.run_now()
    wait(qapp, lambda: search.state == "results")
    hit = search.hits()[0]
    search.open_requested.emit(hit)
    wait(qapp, lambda: hit.session_id in win.tabs_by_id and win.tabs_by_id[hit.session_id]._reveal is None)
    settle(qapp)
    save(win, out / f"search-find-bar{suffix}.png")
    search.shutdown()

    remote = ShotRemote()
    rsearch = SearchWindow(index, remote=remote)
    rsearch.resize(760, 560)
    link(rsearch, win)
    rsearch.present("token refresh")
    wait(qapp, lambda: rsearch.state == "results")
    remote.answer_all()
    settle(qapp)
    save(rsearch, out / f"search-remote{suffix}.png")
    box = rsearch.show_remote_hit(rsearch.hits()[0])
    settle(qapp)
    save(box, out / f"search-remote-note{suffix}.png")
    box.close()
    rsearch.shutdown()
    index.close()


if __name__ == "__main__":
    main()
