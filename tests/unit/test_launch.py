"""The pure decide step of ``deck-tray new`` (core/launch.py) and the launch environment file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from deck_tray.core.launch import (
    SESSION_NAME,
    TmuxSessionSpot,
    Where,
    agent_from_name,
    decide,
    folder_error,
    launch_argv,
    window_name,
)
from deck_tray.core.model import AgentKind
from deck_tray.core.placement import ClientSpot

SOCKS = "/tmp/tmux-1000"
DEFAULT = f"{SOCKS}/default"


def test_no_server_at_all_starts_a_detached_session_on_the_default_socket() -> None:
    plan = decide([], [], SOCKS)
    assert (plan.where, plan.server, plan.target, plan.attached) == (Where.NEW_SESSION, DEFAULT, SESSION_NAME, False)


def test_the_most_recently_used_attached_client_wins_across_servers() -> None:
    sessions = [TmuxSessionSpot(DEFAULT, "$0", "main"), TmuxSessionSpot(f"{SOCKS}/work", "$3", "work")]
    clients = [ClientSpot(DEFAULT, "$0", 100), ClientSpot(f"{SOCKS}/work", "$3", 200)]
    plan = decide(clients, sessions, SOCKS)
    assert (plan.where, plan.server, plan.target, plan.attached) == (Where.NEW_WINDOW, f"{SOCKS}/work", "$3", True)
    assert "work" in plan.reason


def test_unattached_servers_reuse_our_detached_session_on_the_default_socket_only() -> None:
    ours = TmuxSessionSpot(DEFAULT, "$5", SESSION_NAME)
    other = TmuxSessionSpot(f"{SOCKS}/private", "$1", SESSION_NAME)
    assert decide([], [other, ours], SOCKS).target == "$5"
    assert decide([], [other, ours], SOCKS).where is Where.NEW_WINDOW
    plan = decide([], [other, TmuxSessionSpot(DEFAULT, "$0", "main")], SOCKS)
    assert plan.where is Where.NEW_SESSION and plan.server == DEFAULT


def test_a_client_of_a_session_that_vanished_is_ignored() -> None:
    plan = decide([ClientSpot(DEFAULT, "$9", 500)], [TmuxSessionSpot(DEFAULT, "$0", "main")], SOCKS)
    assert plan.where is Where.NEW_SESSION


def test_agent_names_and_window_names() -> None:
    assert agent_from_name("claude-code") is AgentKind.CLAUDE_CODE and agent_from_name("Codex") is AgentKind.CODEX
    with pytest.raises(ValueError, match="claude-code, codex or opencode"):
        agent_from_name("gemini")
    assert window_name(AgentKind.CLAUDE_CODE, "/home/u/my project/") == "claude: my project"
    assert window_name(AgentKind.CODEX, "/x", "fix\x1b[2J #7") == "fix [2J #7"
    assert len(window_name(AgentKind.CODEX, "/x", "n" * 200)) == 60


def test_folder_errors(tmp_path: Path) -> None:
    assert folder_error(str(tmp_path)) is None
    assert "does not exist" in (folder_error(str(tmp_path / "nope")) or "")
    (tmp_path / "f").write_text("x")
    assert "is not a folder" in (folder_error(str(tmp_path / "f")) or "")


def test_launch_argv_keeps_the_agent_args_after_a_separator() -> None:
    argv = launch_argv(["py", "-m", "deck_tray"], "/run/e.json", "/a b", ["/bin/claude", "--model", "x"])
    assert argv == ["py", "-m", "deck_tray", "launch", "--env-file", "/run/e.json", "--cwd", "/a b", "--",
                    "/bin/claude", "--model", "x"]


def test_env_file_is_private_read_once_and_refused_when_others_can_read_it(tmp_path: Path) -> None:
    from deck_tray.services.launcher import env_file_dir, read_env_file, write_env_file

    folder = env_file_dir({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    path = write_env_file({"API_KEY": "s3cret", "PATH": "/bin"}, folder)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_env_file(path) == {"API_KEY": "s3cret", "PATH": "/bin"}
    assert not os.path.exists(path), "read once"
    path = write_env_file({"A": "1"}, folder)
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError):
        read_env_file(path)
    Path(path).write_text(json.dumps({"env": {"A": 1}}))
    os.chmod(path, 0o600)
    with pytest.raises(ValueError):
        read_env_file(path)


def test_a_slow_pane_still_finds_its_env_file_and_an_unread_one_is_deleted(tmp_path: Path) -> None:
    """deck-tray waits for the new pane's ``deck-tray launch`` to read the file (a loaded machine
    took longer than the pane's 0.5 s start check: the file was gone before it was read, and the
    sub-agent's TUI ran without its password); a file nobody reads is deleted after the wait."""
    import asyncio
    import threading

    from deck_tray.services.launcher import env_file_dir, read_env_file, wait_env_file_read, write_env_file

    folder = env_file_dir({"XDG_RUNTIME_DIR": str(tmp_path)})
    path = write_env_file({"OPENCODE_SERVER_PASSWORD": "s3cret"}, folder)
    got: list[dict[str, str]] = []
    reader = threading.Timer(1.5, lambda: got.append(read_env_file(path)))  # a pane that starts late
    reader.start()
    assert asyncio.run(wait_env_file_read(path, timeout_s=10)) is True
    reader.join()
    assert got == [{"OPENCODE_SERVER_PASSWORD": "s3cret"}]

    unread = write_env_file({"OPENCODE_SERVER_PASSWORD": "s3cret"}, folder)
    assert asyncio.run(wait_env_file_read(unread, timeout_s=0.3)) is False
    assert not os.path.exists(unread), "a file no pane read is not left behind"
