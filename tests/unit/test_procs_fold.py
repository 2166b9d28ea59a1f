"""Launchers are folded into the agent they start, but a Codex TUI (daemon mode) that started
its app-server daemon stays listed: it is the process in the pane (seen with codex 0.169.0:
node launcher → native TUI → ``codex app-server --listen unix://`` + ``app-server daemon``)."""

from __future__ import annotations

import types
from typing import Any

import psutil
import pytest

from deck_tray.core import procs

BIN = "/x/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
DAEMON = "/h/.codex/packages/app-server-daemon/releases/0.169.0/bin/codex"


class FakeProc:
    def __init__(self, pid: int, ppid: int, name: str, cmdline: list[str]) -> None:
        me = psutil.Process()
        self.pid = pid
        self.info = {"pid": pid, "name": name, "cmdline": cmdline, "uids": me.uids(), "ppid": ppid}

    def cwd(self) -> str:
        return "/w/project"

    def open_files(self) -> list[Any]:
        if "--listen" in self.info["cmdline"]:
            return [types.SimpleNamespace(path="/h/.codex/sessions/2026/11/22/rollout-x-01a2.jsonl")]
        return []


@pytest.mark.parametrize("resumed", [False, True])
def test_a_daemon_mode_tui_is_listed(monkeypatch: pytest.MonkeyPatch, resumed: bool) -> None:
    tui_args = [BIN, "resume", "01a2"] if resumed else [BIN]
    table = [
        FakeProc(10, 1, "node", ["node", "/x/node_modules/.bin/codex"]),
        FakeProc(11, 10, "codex", tui_args),
        FakeProc(12, 11, "codex", [DAEMON, "app-server", "--listen", "unix://"]),
        FakeProc(13, 11, "codex", [DAEMON, "app-server", "daemon", "pid-update-loop"]),
    ]
    monkeypatch.setattr(procs.psutil, "process_iter", lambda _attrs=None: iter(table))
    got = {p.pid: p for p in procs.agent_processes()}
    assert set(got) == {11, 12, 13}, "the node launcher is folded, the TUI is not"
    assert not got[11].daemon and got[12].daemon and got[12].open_rollouts
