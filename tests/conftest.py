"""Test setup: offscreen Qt, isolated settings and tmux dirs, a qasync loop fixture, and Qt
warnings that fail the test they happen in."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

pytest_plugins = ("pytester",)  # tests/test_qt_warnings.py runs the guard below in a pytest of its own


# -- Qt messages: a warning fails the test ------------------------------------------------------
#
# As in qutebrowser's pytest set-up (DESIGN.md §6.6): deck_tray.services.qt_messages, the handler the
# app installs, is installed for the whole session, so Qt's messages arrive on the "deck_tray.qt"
# logger; whatever arrives there at WARNING or above during a test's set-up, call or tear-down fails
# that phase, with the messages in the report. Known-harmless messages are logged at DEBUG by the
# handler itself (its HARMLESS list, with the reasons); a test expecting a particular message says
# so with @pytest.mark.qt_log_ignore(regex, ...).
#
# pytest-qt's own capture (qt_log_level_fail) is switched off: it installs its handler at every
# test's set-up (replacing this one), checks only the test's call phase (not fixture tear-downs,
# where qloop closes the loop and collects Qt objects), and is off altogether under ``-s``.


class QtMessages(logging.Handler):
    """Collects the records logged at WARNING or above on the Qt logger (from any thread)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)  # logging.Handler.handle holds the handler's lock here

    def take(self) -> list[logging.LogRecord]:
        """The records collected since the last call, oldest first; forgets them."""
        self.acquire()
        try:
            records, self._records = self._records, []
        finally:
            self.release()
        return records


_QT_MESSAGES = QtMessages()
_PREVIOUS_HANDLER = pytest.StashKey[Any]()
_OUTSIDE_TESTS = pytest.StashKey[list[logging.LogRecord]]()


@pytest.hookimpl(trylast=True)  # after pytest-qt's, which registers the capture switched off here
def pytest_configure(config: pytest.Config) -> None:
    from deck_tray.services import qt_messages

    config.addinivalue_line(
        "markers", "qt_log_ignore(*regexes): Qt messages matching one of the regexes (re.search on the "
        "logged text) do not fail this test (tests/conftest.py)")
    pytest_qt_capture = config.pluginmanager.get_plugin("_qt_logging")
    if pytest_qt_capture is not None:
        config.pluginmanager.unregister(pytest_qt_capture)
    logger = logging.getLogger(qt_messages.LOGGER_NAME)
    logger.setLevel(logging.WARNING)  # a test's caplog.set_level() on the root logger cannot hide them
    logger.addHandler(_QT_MESSAGES)
    config.stash[_PREVIOUS_HANDLER] = qt_messages.install()
    config.stash[_OUTSIDE_TESTS] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    from PySide6.QtCore import qInstallMessageHandler

    from deck_tray.services import qt_messages

    logging.getLogger(qt_messages.LOGGER_NAME).removeHandler(_QT_MESSAGES)
    if _PREVIOUS_HANDLER in config.stash:
        qInstallMessageHandler(config.stash[_PREVIOUS_HANDLER])


def pytest_collection_finish(session: pytest.Session) -> None:
    """Messages from collection (imports) belong to no test."""
    session.config.stash[_OUTSIDE_TESTS].extend(_QT_MESSAGES.take())


def _handler_still_installed() -> bool:
    """Whether Qt's message handler is still the one installed above (it is put back if not)."""
    from PySide6.QtCore import qInstallMessageHandler

    from deck_tray.services import qt_messages

    return qInstallMessageHandler(qt_messages.handle) is qt_messages.handle


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Fail the phase (set-up, call or tear-down) in which Qt logged a warning or worse."""
    report = yield
    records = _QT_MESSAGES.take()
    if call.when == "teardown" and not _handler_still_installed() and report.passed:
        report.outcome = "failed"
        report.longrepr = ("the test replaced Qt's message handler and left it so: its Qt warnings went "
                           "unchecked (put back what qInstallMessageHandler returned)")
    if not records:
        return report
    expected = [re.compile(rx) for mark in item.iter_markers("qt_log_ignore") for rx in mark.args]
    lines, unexpected = [], 0
    for record in records:
        text = record.getMessage()
        allowed = any(rx.search(text) for rx in expected)
        unexpected += not allowed
        lines.append(f"{record.levelname} {record.name}: {text}" + ("  (expected: qt_log_ignore)" if allowed else ""))
    listing = "\n".join(lines)
    if unexpected and report.passed:
        report.outcome = "failed"
        report.longrepr = (f"Qt logged {unexpected} unexpected message(s) at WARNING or above during the "
                           f"{call.when}:\n{listing}\n(fix the cause; a message the test expects goes in "
                           "@pytest.mark.qt_log_ignore(regex), a harmless one in deck_tray/services/"
                           "qt_messages.py HARMLESS, with the reason)")
    else:
        report.sections.append((f"Captured Qt messages {call.when}", listing))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Messages logged outside any test (collection, after the last tear-down) are shown here,
    and the figures tests report (:func:`figure`), also from pytest-xdist workers."""
    records = config.stash.get(_OUTSIDE_TESTS, []) + _QT_MESSAGES.take()
    if records:
        terminalreporter.section("Qt messages outside any test", sep="-", yellow=True)
        for record in records:
            terminalreporter.line(f"{record.levelname} {record.name}: {record.getMessage()}")
    seen: set[tuple[str, str]] = set()
    lines: list[str] = []
    for outcome in ("passed", "failed"):
        for rep in terminalreporter.stats.get(outcome, []):
            for key, value in getattr(rep, "user_properties", ()):
                if key == "figure" and (rep.nodeid, str(value)) not in seen:
                    seen.add((rep.nodeid, str(value)))
                    lines.append(f"{str(value)}  ({rep.nodeid.split('::')[-1]}, {outcome})")
    if lines:
        terminalreporter.section("figures", sep="-")
        for line in lines:
            terminalreporter.line(line)


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Any:
    """``figure(text)``: a measured figure this test reports; pytest prints every one in a
    "figures" section at the end of the run (from pytest-xdist workers too, where a print is lost)."""
    def say(text: str) -> None:
        request.node.user_properties.append(("figure", text))
    return say


@pytest.fixture
def qt_warnings() -> QtMessages:
    """The collector the guard above checks after each phase (to see what it holds, or take it)."""
    return _QT_MESSAGES


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
def qloop(qapp: object, qt_slate: None) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the test's QApplication (see :func:`_test_loop_class`); fails if
    a task is left pending.

    On a :func:`qt_slate`: closing a test's last window must not quit the shared QApplication (the
    next test's loop would stop early), and Qt objects a test left behind are freed on the GUI
    thread, before the loop is made and after it is closed, rather than by a later collection on a
    worker thread.
    """
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
    """A private ``XDG_RUNTIME_DIR`` (mode 0700) short enough for the app's socket path (under /tmp)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="dt-rt-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)
