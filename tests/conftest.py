"""Test setup: offscreen Qt, isolated settings and tmux dirs, a qasync loop fixture."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the developer's real config, logs or tmux servers."""
    base = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        d = base / var.lower()
        d.mkdir()
        monkeypatch.setenv(var, str(d))
    tmux_dir = base / "tmux"
    tmux_dir.mkdir()
    monkeypatch.setenv("TMUX_TMPDIR", str(tmux_dir))
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)


@pytest.fixture
def qloop(qapp: object) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the test's QApplication; fails if a task is left pending."""
    import gc

    import qasync

    # Closing a test's last window must not quit the shared QApplication (the next test's
    # loop would stop early), and Qt objects a test left behind are freed here, on the GUI
    # thread, rather than by a later collection on a worker thread.
    qapp.setQuitOnLastWindowClosed(False)  # type: ignore[attr-defined]
    gc.collect()
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        assert not pending, f"tasks left running: {pending}"
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        gc.collect()


@pytest.fixture
def fixtures_dir() -> Path:
    """The captured sample files."""
    return Path(__file__).parent / "fixtures"
