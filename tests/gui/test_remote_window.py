"""Remote sessions in the window (#18): listed and tabbed with their host's name, greyed with why
while the host cannot be reached, and the hosts' connections in the status bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt

from deck_tray.core.model import AgentKind, Session, SessionStatus
from deck_tray.services.registry import SessionRegistry
from deck_tray.ui.window import MainWindow


def remote(status: SessionStatus, reason: str = "turn finished — transcript, 2 s ago") -> Session:
    return Session(id="lab:6c891d37-aaaa", agent=AgentKind.CLAUDE_CODE, cwd="/home/me/proj", title="Fix the build",
                   status=status, reason=reason, updated_at=time.time(), host="lab")


def item_of(win: MainWindow, sid: str) -> Any:
    win._rebuild_list()
    for i in range(win.session_list.topLevelItemCount()):
        head = win.session_list.topLevelItem(i)
        for j in range(head.childCount()):
            if head.child(j).data(0, Qt.ItemDataRole.UserRole) == sid:
                return head.child(j)
    raise AssertionError(f"{sid} not listed")


def test_a_remote_session_shows_its_host_and_greys_while_unreachable(tmp_path: Path, qtbot: Any) -> None:
    registry = SessionRegistry(announce_hold=0)
    win = MainWindow(registry, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    registry.apply([remote(SessionStatus.IDLE)], source="remote lab")
    item = item_of(win, "lab:6c891d37-aaaa")
    assert "lab: proj" in item.text(0) and "on lab" in item.toolTip(0)
    normal = item.foreground(0).color()
    tab = win.open_session("lab:6c891d37-aaaa")
    assert tab is not None and win.tabs.tabText(win.tabs.indexOf(tab)).startswith("lab: Fix the build")
    why = "lab unreachable since 14:02: lab cannot be reached: Connection refused. (last seen: Ready)"
    registry.apply([remote(SessionStatus.UNKNOWN, why)], complete=False, source="remote lab")
    item = item_of(win, "lab:6c891d37-aaaa")
    assert item.foreground(0).color() == win.palette().placeholderText().color() != normal
    assert "Connection refused" in item.toolTip(0)
    win._label_tab(tab, registry.get("lab:6c891d37-aaaa"))  # type: ignore[arg-type]
    assert "Connection refused" in win.tabs.tabToolTip(win.tabs.indexOf(tab))


def test_the_status_bar_says_how_the_hosts_are(tmp_path: Path, qtbot: Any) -> None:
    win = MainWindow(SessionRegistry(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    assert not win.remotes_label.isVisible(), "nothing said while no host is configured"
    win.show_remotes([
        {"name": "lab", "dest": "me@lab", "state": "connected", "detail": "3 sessions"},
        {"name": "gpu", "dest": "gpu-box", "state": "login failed", "detail": "ssh could not log in to gpu-box"},
    ])
    assert win.remotes_label.isVisible()
    assert win.remotes_label.text() == "remote: 1 of 2 hosts connected — gpu login failed"
    assert "ssh could not log in" in win.remotes_label.toolTip()
    win.show_remotes([])
    assert not win.remotes_label.isVisible()
