"""Screenshots of the real app following two real opencode servers (one with a password).

    xvfb-run -a python scripts/screenshots_opencode.py [OUT_DIR] [--dark]

Needs opencode 1.18.33 (``./scripts/test.sh`` installs it into ``.agents``). Starts the
fake model and two ``opencode serve`` with the e2e harness, drives a sub-agent permission
and a question, and saves the window with those tabs open, plus the status bar asking for
the locked server's password.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deck_tray.app import DeckTrayApp  # noqa: E402
from deck_tray.core.model import SessionStatus  # noqa: E402
from deck_tray.core.scan import Scanner  # noqa: E402
from deck_tray.services.panes import Tmux  # noqa: E402
from deck_tray.services.secrets import Credentials  # noqa: E402
from scripts.screenshots import dark_palette  # noqa: E402
from tests.e2e.opencode_harness import FakeOpenAIModel, OpencodeServe  # noqa: E402


async def until(pred, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not (v := pred()):
        if loop.time() > end:
            raise TimeoutError("screenshot scenario timed out")
        await asyncio.sleep(0.1)
    return v


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    qapp = QApplication.instance() or QApplication(sys.argv)
    qapp.setStyle("Fusion")
    suffix = ""
    if "--dark" in sys.argv:
        qapp.setPalette(dark_palette())
        suffix = "-dark"
    work = Path(tempfile.mkdtemp(prefix="deck-tray-shots-"))
    with (
        FakeOpenAIModel(work / "model") as model,
        OpencodeServe(work / "open", model.base_url) as srv,
        OpencodeServe(work / "locked", model.base_url, password="pw") as locked,
    ):
        app = DeckTrayApp(scanner=Scanner(work / "no-claude", work / "no-codex"), mux=Tmux(),
                          settings=QSettings(str(work / "s.ini"), QSettings.Format.IniFormat),
                          notification_backends=[], opencode_urls=[srv.url, locked.url],
                          discover_opencode=False, credentials=Credentials({}))
        win = app.window
        win.resize(1100, 720)

        async def shot(name: str) -> None:
            await asyncio.sleep(0.3)  # let layouts settle (no processEvents inside a coroutine)
            win.grab().save(str(out / f"{name}{suffix}.png"))

        async def scenario() -> None:
            app.start()
            win.show()
            a = srv.create_session("Refactor the token refresh")
            srv.prompt_async(a, "[[task:[[bash:rm -rf build/ && make dist]]]]")
            b = srv.create_session("Pick a colour for the status badge")
            srv.prompt_async(b, "[[question]]")
            c = srv.create_session("Summarise the changelog")
            srv.prompt_async(c, "Say hello")
            await until(lambda: (s := app.registry.get(a)) and s.status is SessionStatus.WAITING_PERMISSION)
            await until(lambda: (s := app.registry.get(b)) and s.status is SessionStatus.WAITING_QUESTION)
            await until(lambda: (s := app.registry.get(c)) and s.status is SessionStatus.IDLE)
            for d in list(win._password_dialogs.values()):
                d.reject()
            win.open_session(c)
            win.open_session(b)
            await shot("window-opencode-question")
            win.open_session(a)
            await shot("window-opencode-subagent-permission")
            await app.stop()

        loop = qasync.QEventLoop(qapp)
        asyncio.set_event_loop(loop)
        with loop:
            loop.run_until_complete(scenario())
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
