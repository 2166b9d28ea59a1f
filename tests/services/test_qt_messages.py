"""deck_tray.services.qt_messages: Qt's own messages in Python's logging."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtCore import QtMsgType, qCritical, qDebug, qInfo, qInstallMessageHandler, qWarning

from deck_tray.services import qt_messages


@pytest.fixture
def qt_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every level of the Qt logger in ``caplog``."""
    caplog.set_level(logging.DEBUG, logger=qt_messages.LOGGER_NAME)
    return caplog


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == qt_messages.LOGGER_NAME]


# The warnings these tests make are their point: tests/conftest.py would fail them otherwise.
@pytest.mark.qt_log_ignore("^a warning$", "^a critical one$")
def test_each_message_type_is_logged_at_its_level(qapp: Any, qt_log: pytest.LogCaptureFixture) -> None:
    qDebug("a debug line")
    qInfo("an info line")
    qWarning("a warning")
    qCritical("a critical one")
    assert logged(qt_log) == [(logging.DEBUG, "a debug line"), (logging.INFO, "an info line"),
                              (logging.WARNING, "a warning"), (logging.ERROR, "a critical one")]


@pytest.mark.qt_log_ignore("could not connect to display")
def test_a_fatal_message_is_critical_and_the_context_names_the_place(qt_log: pytest.LogCaptureFixture) -> None:
    # qFatal would abort the process: the handler is called as Qt would call it.
    where = SimpleNamespace(category="qt.qpa.xcb", file="qxcbconnection.cpp", line=123, function="connect")
    qt_messages.handle(QtMsgType.QtFatalMsg, where, "could not connect to display")  # type: ignore[arg-type]
    [record] = [r for r in qt_log.records if r.name == qt_messages.LOGGER_NAME]
    assert record.levelno == logging.CRITICAL
    assert record.getMessage() == "qt.qpa.xcb: could not connect to display (qxcbconnection.cpp:123, connect)"
    assert (record.pathname, record.lineno, record.funcName) == ("qxcbconnection.cpp", 123, "connect")
    assert record.qt_category == "qt.qpa.xcb"  # type: ignore[attr-defined]


def test_a_harmless_message_is_logged_at_debug(qapp: Any, qt_log: pytest.LogCaptureFixture) -> None:
    qWarning("This plugin does not support raise()")
    assert logged(qt_log) == [(logging.DEBUG, "This plugin does not support raise()")]
    assert all(h.reason for h in qt_messages.HARMLESS)
    assert qt_messages.level_of(QtMsgType.QtFatalMsg, "This plugin does not support raise()") == logging.CRITICAL


def test_levels_below_the_loggers_are_not_even_formatted(qapp: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=qt_messages.LOGGER_NAME)
    qDebug("not wanted")
    assert logged(caplog) == []


def test_install_returns_the_handler_it_replaced(qapp: Any) -> None:
    seen: list[str] = []

    def other(_t: QtMsgType, _c: Any, message: str) -> None:
        seen.append(message)

    before = qInstallMessageHandler(other)  # the conftest installed qt_messages.handle for the session
    try:
        assert qt_messages.install() is other
        qDebug("to the log, not to the other handler")
        assert seen == []
    finally:
        qInstallMessageHandler(before)
