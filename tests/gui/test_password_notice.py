"""A password typed for a locked opencode server: where it went decides what the window says
(issue #17 item 3: the app reads the typed result, not the words of a sentence)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from deck_tray.core.scan import Scanner
from deck_tray.services.panes import Tmux
from deck_tray.services.secrets import Credentials, StoreResult

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qt_slate")]
URL = "http://127.0.0.1:9"  # discard port: nothing answers


class Stored(Credentials):
    def __init__(self, result: StoreResult) -> None:
        super().__init__()
        self.result = result
        self.stored: list[tuple[str, str]] = []

    def store(self, url: str, password: str) -> StoreResult:
        self.stored.append((url, password))
        return self.result


@pytest.mark.parametrize(("result", "notice"), [
    (StoreResult(False, "No keyring is available on this desktop, so the password is kept only until "
                        "deck-tray quits."), True),
    (StoreResult(True, "Password saved in the keyring."), False),
])
def test_a_password_kept_only_for_this_run_is_said_in_the_window(result: StoreResult, notice: bool, tmp_path: Path,
                                                                 qtbot: Any, qloop: asyncio.AbstractEventLoop) -> None:
    from deck_tray.app import DeckTrayApp

    creds = Stored(result)
    app = DeckTrayApp(scanner=Scanner(tmp_path / "claude", tmp_path / "codex", process_lister=lambda: []),
                      mux=Tmux(), settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                      notification_backends=[], discover_opencode=False, credentials=creds, ipc_path=None)
    qtbot.addWidget(app.window)

    async def scenario() -> None:
        try:
            app.window.password_entered.emit(URL, "s3cret")
            deadline = time.monotonic() + 10
            while not creds.stored or app.actions.busy():
                assert time.monotonic() < deadline, "the password was not stored"
                await asyncio.sleep(0.02)
        finally:
            await app.opencode.stop()

    qloop.run_until_complete(scenario())
    assert creds.stored == [(URL, "s3cret")]
    assert app.window.notice_bar.isVisibleTo(app.window) is notice
    if notice:
        assert app.window.notice.text() == result.detail
