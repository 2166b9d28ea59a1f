"""Test setup: offscreen Qt, isolated settings and tmux dirs, a qasync loop fixture."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@functools.cache
def _test_loop_class() -> type[asyncio.AbstractEventLoop]:
    import qasync

    class RunForeverLoop(qasync.QEventLoop):  # type: ignore[misc]
        """qasync's loop, driven from a test the way the app drives it: only inside
        ``run_forever()``.

        qasync's own ``run_until_complete()`` drains Qt's event queue once more after
        ``run_forever()`` has returned, when no loop is running: a task step that lands there
        (a timer or a D-Bus reply due just then) fails in ``asyncio.sleep``, ``asyncio.wait_for``,
        ``asyncio.Lock`` or ``asyncio.current_task`` with "no running event loop". The app never
        does that (``commands/run.py`` runs the loop with ``run_forever()`` only), so tests must
        not either: here what is due then simply runs at the next ``run_until_complete()``.
        """

        def run_until_complete(self, future: Any) -> Any:
            fut = asyncio.ensure_future(future, loop=self)

            def stop(_f: object) -> None:
                self.stop()

            fut.add_done_callback(stop)
            try:
                self.run_forever()
            finally:
                fut.remove_done_callback(stop)
            if not fut.done():
                raise RuntimeError("Event loop stopped before Future completed.")
            return fut.result()

    return RunForeverLoop


@pytest.fixture
def qloop(qapp: object) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the test's QApplication (see :func:`_test_loop_class`); fails if
    a task is left pending."""
    import gc

    # Closing a test's last window must not quit the shared QApplication (the next test's
    # loop would stop early), and Qt objects a test left behind are freed here, on the GUI
    # thread, rather than by a later collection on a worker thread.
    qapp.setQuitOnLastWindowClosed(False)  # type: ignore[attr-defined]
    gc.collect()
    loop = _test_loop_class()(qapp)
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


@pytest.fixture
def qt_slate(qapp: object) -> Iterator[None]:
    """Tests must not end or crash each other's loops: closing the last window does not quit Qt
    (as in ``run_app``), and dead Qt objects are collected before and after, on the GUI thread
    (collected later by a worker thread that happens to trigger a GC, a QTimer outlives its
    object). Use with ``pytestmark = pytest.mark.usefixtures("qt_slate")``."""
    import gc

    qapp.setQuitOnLastWindowClosed(False)  # type: ignore[attr-defined]
    gc.collect()
    yield
    gc.collect()


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A private ``XDG_RUNTIME_DIR`` short enough for the app's socket path (under /tmp)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="dt-rt-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)
