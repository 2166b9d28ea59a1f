"""Scanner: session files on disk (~/.claude, ~/.codex layout) → observations → sessions."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from deck_tray.core import procs
from deck_tray.core.model import AgentKind, MessageRole, RequestKind, Session, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.scan import Observation, Scanner, build_session

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CLAUDE_FIXTURE = FIXTURES / "claude-code-2.1.197-interactive.jsonl"
STATUS_FIXTURE = FIXTURES / "claude-code-2.1.197-sessions-pid-json-changes.jsonl"
CODEX_FIXTURE = FIXTURES / "codex-0.169.0-tui-no-daemon.jsonl"

SID = "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"
TID = "01a200e4-f2b5-78c1-9c58-e75423501563"
CWD = "/home/dev/work/proj"
#: A fixed "now" shortly after the captures (2026-11-22T01:35:00Z).
NOW = 1_795_311_300.0

CLAUDE_LINES = CLAUDE_FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
CLAUDE_RECORDS = [json.loads(ln) for ln in CLAUDE_LINES]


def _line_index(pred: Any) -> int:
    for i, r in enumerate(CLAUDE_RECORDS):
        if pred(r):
            return i
    raise AssertionError("record not found")


def _tool_use(name: str, prefix: str = "") -> Any:
    def pred(r: dict[str, Any]) -> bool:
        content = (r.get("message") or {}).get("content")
        return (
            r.get("type") == "assistant"
            and isinstance(content, list)
            and any(
                isinstance(b, dict)
                and b.get("type") == "tool_use"
                and b.get("name") == name
                and str((b.get("input") or {}).get("command", "")).startswith(prefix)
                for b in content
            )
        )

    return pred


PROMPTED_BASH = _line_index(_tool_use("Bash", "touch fake-bash-ran.txt"))
ASK = _line_index(_tool_use("AskUserQuestion"))
TURN_END_AFTER_BASH = next(
    i
    for i in range(PROMPTED_BASH, len(CLAUDE_RECORDS))
    if CLAUDE_RECORDS[i].get("subtype") == "turn_duration"
)


class Home:
    """A tmp dir laid out like ~/.claude and ~/.codex, with a controllable clock."""

    def __init__(self, root: Path) -> None:
        self.claude = root / ".claude"
        self.codex = root / ".codex"
        self.now = NOW
        self.procs: list[AgentProcess] = []
        self.transcript = self.claude / "projects" / "-home-dev-work-proj" / f"{SID}.jsonl"
        self.rollout = (
            self.codex / "sessions" / "2026" / "11" / "22" / f"rollout-2026-11-22T01-35-34-{TID}.jsonl"
        )
        self.scanner = Scanner(
            self.claude, self.codex, clock=lambda: self.now, process_lister=lambda: list(self.procs)
        )

    def touch(self, p: Path) -> None:
        os.utime(p, (self.now, self.now))

    def write_transcript(self, upto: int | None = None) -> None:
        self.transcript.parent.mkdir(parents=True, exist_ok=True)
        lines = CLAUDE_LINES if upto is None else CLAUDE_LINES[: upto + 1]
        self.transcript.write_text("".join(lines), encoding="utf-8")
        self.touch(self.transcript)

    def append_transcript(self, first: int, last: int) -> None:
        with open(self.transcript, "a", encoding="utf-8") as fh:
            fh.write("".join(CLAUDE_LINES[first : last + 1]))
        self.touch(self.transcript)

    def write_rollout(self) -> None:
        self.rollout.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CODEX_FIXTURE, self.rollout)
        self.touch(self.rollout)

    def write_status(self, status: str, *, proc_start: str | None = None, age: float = 2.0) -> Path:
        base = json.loads(STATUS_FIXTURE.read_text(encoding="utf-8").splitlines()[0])["content"]
        pid = os.getpid()
        content = dict(base)
        content.update(
            pid=pid,
            sessionId=SID,
            cwd=CWD,
            procStart=proc_start if proc_start is not None else procs.proc_start(pid),
            status=status,
            updatedAt=int((self.now - age) * 1000),
            statusUpdatedAt=int((self.now - age) * 1000),
        )
        if status == "waiting":
            content["waitingFor"] = "permission prompt"
        else:
            content.pop("waitingFor", None)
        p = self.claude / "sessions" / f"{pid}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(content), encoding="utf-8")
        os.replace(tmp, p)
        return p

    def sessions(self) -> dict[tuple[AgentKind, str], Session]:
        obs = self.scanner.scan()
        out = {(o.agent, o.id): build_session(o, self.now) for o in obs}
        assert len(out) == len(obs), "one observation per session"
        return out

    def claude_session(self) -> Session:
        return self.sessions()[(AgentKind.CLAUDE_CODE, SID)]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


# -- no live process ----------------------------------------------------------------


def test_sessions_without_a_live_process_are_ended(home: Home) -> None:
    home.write_transcript()
    home.write_rollout()
    sessions = home.sessions()
    assert set(sessions) == {(AgentKind.CLAUDE_CODE, SID), (AgentKind.CODEX, TID)}

    c = sessions[(AgentKind.CLAUDE_CODE, SID)]
    assert c.status is SessionStatus.ENDED
    assert c.pid is None and c.pane is None
    assert c.title == "Fake session"
    assert c.cwd == CWD
    assert c.transcript == str(home.transcript)
    assert "no longer running" in c.reason
    assert [m.text for m in c.messages if m.role is MessageRole.USER][0] == "please FAKE_BASH now"

    x = sessions[(AgentKind.CODEX, TID)]
    assert x.status is SessionStatus.ENDED
    assert x.pid is None
    assert x.title == "hooks FAKE_SHELL"
    assert x.cwd == CWD
    assert x.transcript == str(home.rollout)


def test_empty_or_missing_folders_give_no_sessions(home: Home) -> None:
    assert home.scanner.scan() == []


def test_transcripts_older_than_the_history_window_are_not_listed(home: Home) -> None:
    home.write_transcript()
    home.write_rollout()
    old = home.now - 2 * 24 * 3600
    os.utime(home.transcript, (old, old))
    os.utime(home.rollout, (old, old))
    assert home.scanner.scan() == []


# -- Claude live status file --------------------------------------------------------


def test_waiting_status_file_with_an_open_bash_is_waiting_permission(home: Home) -> None:
    home.write_transcript(upto=PROMPTED_BASH)
    home.write_status("waiting")
    s = home.claude_session()
    assert s.status is SessionStatus.WAITING_PERMISSION
    assert s.pid == os.getpid()
    assert s.pending is not None
    assert s.pending.kind is RequestKind.PERMISSION
    assert s.pending.tool == "Bash"
    assert s.pending.summary == "touch fake-bash-ran.txt && echo hello-from-fake-bash"
    assert s.reason == (
        "permission prompt for Bash `touch fake-bash-ran.txt && echo hello-from-fake-bash`"
        " — live status file, 2 s ago"
    )


def test_waiting_status_file_with_an_open_question_is_waiting_question(home: Home) -> None:
    home.write_transcript(upto=ASK)
    home.write_status("waiting")
    s = home.claude_session()
    assert s.status is SessionStatus.WAITING_QUESTION
    assert s.pending is not None
    assert s.pending.kind is RequestKind.QUESTION
    assert s.pending.options == ("Red", "Blue")
    assert s.pending.summary == "Which colour should the fake widget be?"
    assert "live status file" in s.reason


def test_status_file_of_a_recycled_pid_is_ignored(home: Home) -> None:
    home.write_transcript(upto=PROMPTED_BASH)
    real = procs.proc_start(os.getpid())
    assert real is not None
    home.write_status("waiting", proc_start=str(int(real) + 12345))
    s = home.claude_session()
    assert s.status is SessionStatus.ENDED
    assert s.pid is None
    assert s.pending is None


def test_live_status_without_a_transcript_yet_is_a_new_idle_session(home: Home) -> None:
    # The transcript of an interactive session does not exist until the first prompt.
    home.write_status("idle")
    s = home.claude_session()
    assert s.status is SessionStatus.IDLE
    assert s.pid == os.getpid()
    assert s.cwd == CWD
    assert s.title == "proj-1a"  # the status file's derived name


def test_incremental_scan_follows_the_appended_turn_end(home: Home) -> None:
    home.write_transcript(upto=PROMPTED_BASH)
    home.write_status("waiting")
    first = home.claude_session()
    assert first.status is SessionStatus.WAITING_PERMISSION
    prompts_before = [m.text for m in first.messages if m.role is MessageRole.USER]

    home.now += 20
    home.append_transcript(PROMPTED_BASH + 1, TURN_END_AFTER_BASH)
    home.write_status("idle", age=1)
    second = home.claude_session()
    assert second.status is SessionStatus.IDLE
    assert second.pending is None
    assert second.pid == os.getpid()
    # The appended records were applied once, on top of the earlier state.
    assert [m.text for m in second.messages if m.role is MessageRole.USER] == prompts_before
    tool = [m for m in second.messages if m.role is MessageRole.TOOL][-1]
    assert tool.text == "Bash(touch fake-bash-ran.txt && echo hello-from-fake-bash)"
    assert tool.state == "done"
    assert second.messages[-1].text == "FAKE_DONE. The tool returned: hello-from-fake-bash"


def test_incremental_scan_without_status_file_uses_the_transcript(home: Home) -> None:
    # Claude versions without status files: live while a claude process runs in that cwd.
    home.procs = [AgentProcess(os.getpid(), "claude", CWD)]
    home.write_transcript(upto=PROMPTED_BASH)
    first = home.claude_session()
    assert first.status is SessionStatus.BUSY
    assert "transcript" in first.reason

    home.now += 5
    home.append_transcript(PROMPTED_BASH + 1, TURN_END_AFTER_BASH)
    second = home.claude_session()
    assert second.status is SessionStatus.IDLE
    assert len([m for m in second.messages if m.role is MessageRole.TOOL]) == 2


def test_truncated_transcript_is_read_again_from_scratch(home: Home) -> None:
    home.write_transcript()
    home.sessions()
    home.now += 5
    home.write_transcript(upto=PROMPTED_BASH)  # rewritten shorter (e.g. a restore)
    s = home.claude_session()
    prompts = [m.text for m in s.messages if m.role is MessageRole.USER]
    assert prompts == ["please FAKE_BASH now", "second: FAKE_BASH please"]


# -- Codex processes ----------------------------------------------------------------


def test_codex_session_held_open_by_a_codex_process_is_live(home: Home) -> None:
    home.write_rollout()
    home.procs = [AgentProcess(4242, "codex", CWD, open_rollouts=(str(home.rollout),))]
    s = home.sessions()[(AgentKind.CODEX, TID)]
    assert s.status is not SessionStatus.ENDED
    assert s.status is SessionStatus.IDLE  # the rollout ends with task_complete
    assert s.pid == 4242
    assert s.title == "hooks FAKE_SHELL"


def test_codex_rollout_held_by_the_daemon_goes_to_the_tui_in_that_cwd(home: Home) -> None:
    home.write_rollout()
    home.procs = [
        AgentProcess(5000, "codex", CWD, open_rollouts=(str(home.rollout),), daemon=True),
        AgentProcess(5001, "codex", CWD),
    ]
    s = home.sessions()[(AgentKind.CODEX, TID)]
    assert s.status is SessionStatus.IDLE
    assert s.pid == 5001


def test_codex_rollout_held_only_by_the_daemon_is_not_ended(home: Home) -> None:
    home.write_rollout()
    home.procs = [AgentProcess(5000, "codex", CWD, open_rollouts=(str(home.rollout),), daemon=True)]
    s = home.sessions()[(AgentKind.CODEX, TID)]
    assert s.status is SessionStatus.IDLE
    assert s.pid is None


def test_build_session_drops_pid_and_pane_of_an_ended_session() -> None:
    from deck_tray.core.model import Evidence, EvidenceSource, PaneRef

    ob = Observation("s1", AgentKind.CLAUDE_CODE, CWD, "t", pid=77)
    ob.evidence.append(Evidence(EvidenceSource.PROCESS, SessionStatus.ENDED, NOW - 3, "gone"))
    s = build_session(ob, NOW, pane=PaneRef("tmux", "%1", "/tmp/tmux-0/default"))
    assert s.status is SessionStatus.ENDED and s.pid is None and s.pane is None
    assert s.updated_at == NOW - 3


# -- files that are not transcripts (issue #16) ----------------------------------------

T = TypeVar("T")


def release(fifos: list[Path]) -> None:
    """Give a reader stuck in ``open()`` of these named pipes a writer that closes at once (it
    then reads end of file), so a regression fails the test instead of hanging the suite."""
    for f in fifos:
        try:
            os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # no reader waiting on this one


def within(seconds: float, fn: Callable[[], T], fifos: list[Path]) -> T:
    """``fn()`` on a thread; fails when it has not returned after ``seconds``."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    hung = t.is_alive()
    for _ in range(50):
        if not t.is_alive():
            break
        release(fifos)
        t.join(0.1)
    assert not hung, f"the scan did not return within {seconds} s (blocked opening a named pipe)"
    if "error" in out:
        raise out["error"]
    return out["value"]  # type: ignore[no-any-return]


class OddFiles:
    """Things named like session files that are not: a named pipe, a unix socket, a symbolic
    link loop, a link to /dev/null, and random bytes, in the Claude and Codex folders."""

    def __init__(self, home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
        proj = home.transcript.parent
        day = home.rollout.parent
        proj.mkdir(parents=True, exist_ok=True)
        day.mkdir(parents=True, exist_ok=True)
        (home.claude / "sessions").mkdir(parents=True, exist_ok=True)
        stamp = "rollout-2026-11-22T01-00-0"
        self.fifos = [proj / "11111111-1111-4111-8111-111111111111.jsonl",
                      day / f"{stamp}1-01a200e4-0000-7000-8000-000000000001.jsonl",
                      home.claude / "sessions" / "4242.json"]
        for f in self.fifos:
            os.mkfifo(f)
        self.sockets = [proj / "22222222-2222-4222-8222-222222222222.jsonl",
                        day / f"{stamp}2-01a200e4-0000-7000-8000-000000000002.jsonl"]
        for sock_path in self.sockets:
            # AF_UNIX paths are limited to 108 bytes: bind the name relative to its folder.
            monkeypatch.chdir(sock_path.parent)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.bind(sock_path.name)
        self.loop = proj / "33333333-3333-4333-8333-333333333333.jsonl"
        os.symlink(self.loop.name, self.loop)  # points at itself: ELOOP
        self.devnull = proj / "x.jsonl"
        os.symlink(os.devnull, self.devnull)
        rng = random.Random(16)
        self.garbage = [proj / "44444444-4444-4444-8444-444444444444.jsonl",
                        day / f"{stamp}3-01a200e4-0000-7000-8000-000000000003.jsonl"]
        for g in self.garbage:
            g.write_bytes(rng.randbytes(64 * 1024))
        # Inside the history window, or a scan would not look at them at all.
        for f in [*self.fifos, *self.sockets, *self.garbage]:
            os.utime(f, (home.now, home.now))
        self.skipped = {**{str(f): "a named pipe" for f in self.fifos},
                        **{str(f): "a socket" for f in self.sockets},
                        str(self.loop): "a symbolic link loop", str(self.devnull): "a character device"}

    def all(self) -> list[Path]:
        return [*self.fifos, *self.sockets, self.loop, self.devnull, *self.garbage]


def skip_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")]


def test_pipes_sockets_links_and_random_bytes_named_like_transcripts_are_skipped_and_logged_once(
        home: Home, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    home.write_transcript()
    home.write_rollout()
    odd = OddFiles(home, monkeypatch)
    caplog.set_level(logging.INFO)

    sessions = within(10, home.sessions, odd.fifos)
    assert set(sessions) == {(AgentKind.CLAUDE_CODE, SID), (AgentKind.CODEX, TID)}
    assert sessions[(AgentKind.CLAUDE_CODE, SID)].title == "Fake session"
    lines = skip_lines(caplog)
    assert len(lines) == len(odd.skipped), lines
    for path, kind in odd.skipped.items():
        line = next((ln for ln in lines if ln.startswith(f"skipped {path}: ")), None)
        assert line is not None, f"no log line for {path}: {lines}"
        assert kind in line
    assert f"skipped {odd.fifos[0]}: a named pipe, not a transcript" in lines
    assert f"skipped {odd.fifos[2]}: a named pipe, not a status file" in lines
    assert all(str(g) not in "\n".join(lines) for g in odd.garbage)  # regular files, just no records
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.getMessage() in lines)

    # Rescans, full and from file events naming each of them, neither block nor log again.
    caplog.clear()
    again = within(10, home.sessions, odd.fifos)
    assert set(again) == set(sessions)
    obs = within(10, lambda: home.scanner.scan(changed=[str(p) for p in odd.all()]), odd.fifos)
    assert {(o.agent, o.id) for o in obs} == set(sessions)
    assert skip_lines(caplog) == []


def test_a_pipe_swapped_in_after_the_scan_listed_a_transcript_is_not_read(
        home: Home, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    home.write_transcript()
    assert set(home.sessions()) == {(AgentKind.CLAUDE_CODE, SID)}
    # The transcript is replaced by a named pipe; the file event arrives before a full scan.
    home.transcript.unlink()
    os.mkfifo(home.transcript)
    obs = within(10, lambda: home.scanner.scan(changed=[str(home.transcript)]), [home.transcript])
    assert obs == []
    assert skip_lines(caplog) == [f"skipped {home.transcript}: a named pipe, not a transcript"]


def test_an_unreadable_transcript_is_skipped_and_logged_once(
        home: Home, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    home.write_transcript()
    home.write_rollout()
    real_open = os.open
    denied = str(home.rollout)

    def fake_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if os.fspath(path) == denied:  # tests run as root, which chmod cannot lock out
            raise PermissionError(13, "Permission denied", denied)
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    assert set(home.sessions()) == {(AgentKind.CLAUDE_CODE, SID)}
    assert skip_lines(caplog) == [f"skipped {denied}: not readable (permission denied)"]
    caplog.clear()
    home.sessions()
    home.scanner.scan(changed=[denied])
    assert skip_lines(caplog) == []
    monkeypatch.setattr(os, "open", real_open)
    assert set(home.sessions()) == {(AgentKind.CLAUDE_CODE, SID), (AgentKind.CODEX, TID)}
