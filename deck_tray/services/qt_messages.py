"""Qt's own messages (``qDebug`` … ``qFatal``) in Python's logging.

Qt reports what it notices itself — a timer stopped from the wrong thread, a window the platform
cannot raise, an object deleted while it still has pending events — through its message handler,
which by default prints to stderr, outside the app's log. :func:`install` replaces that handler
(``qInstallMessageHandler``) with :func:`handle`, which logs each message on the ``deck_tray.qt``
logger (:data:`LOGGER_NAME`), as qutebrowser's ``log.qt_message_handler`` and NormCap's
``logger_config`` do. Levels:

==================  =============================================================
Qt message type     logging level
==================  =============================================================
``QtDebugMsg``      ``DEBUG``
``QtInfoMsg``       ``INFO``
``QtWarningMsg``    ``WARNING``
``QtCriticalMsg``   ``ERROR``
``QtFatalMsg``      ``CRITICAL`` (Qt aborts the process once the handler returns)
==================  =============================================================

A message in :data:`HARMLESS` is logged at ``DEBUG`` whatever its type, with the reason it is
harmless next to its pattern there.

The logged text is ``"<category>: <message>"`` (no prefix for Qt's ``default`` category), followed by
`` (file:line, function)`` when Qt knows where the message came from (a Qt built with message
context, or ``QT_MESSAGELOGCONTEXT`` set); the record's ``pathname``/``lineno``/``funcName`` are that
place too (``<qt>``/0 when unknown), and ``record.qt_category`` holds the category.

The test suite installs the same handler for its whole session and fails a test that makes Qt log
anything at ``WARNING`` or above (``tests/conftest.py``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

LOGGER_NAME = "deck_tray.qt"
"""The logger Qt's messages are logged on."""

LEVELS: dict[QtMsgType, int] = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}
"""Qt message type → logging level (a type missing here is logged at ``WARNING``)."""


@dataclass(frozen=True)
class Harmless:
    """A Qt message known to be harmless: logged at ``DEBUG`` instead of its own level.

    Attributes:
        pattern: a regular expression searched in the message text (not the category).
        reason: why the message needs no action (shown nowhere; it is the documentation).
    """

    pattern: re.Pattern[str]
    reason: str


HARMLESS: tuple[Harmless, ...] = (
    Harmless(re.compile(r"^This plugin does not support propagateSizeHints\(\)"),
             "the offscreen platform plugin (the tests, the bundle's start-up check) has no window "
             "manager to pass size hints to; real platforms do not say this"),
    Harmless(re.compile(r"^This plugin does not support raise\(\)"),
             "the offscreen platform plugin has no stacking order, so QWidget.raise_() has nothing "
             "to do there; real platforms raise the window"),
)
"""Qt messages that are logged at ``DEBUG`` whatever their type, each with its reason: keep this the
one list, and add a message only with the reason it needs no action."""

MessageHandler = Callable[[QtMsgType, QMessageLogContext, str], Any]
"""The shape of a Qt message handler: ``(type, context, message)``."""


def level_of(msg_type: QtMsgType, message: str) -> int:
    """The logging level a Qt message is logged at.

    Args:
        msg_type: Qt's message type.
        message: the message text (checked against :data:`HARMLESS`).

    Returns:
        A :mod:`logging` level: :data:`LEVELS` of ``msg_type``, or ``DEBUG`` for a harmless
        message (a fatal message keeps ``CRITICAL``: Qt ends the process after it).
    """
    level = LEVELS.get(msg_type, logging.WARNING)
    if level < logging.CRITICAL and any(h.pattern.search(message) for h in HARMLESS):
        return logging.DEBUG
    return level


def handle(msg_type: QtMsgType, context: QMessageLogContext | None, message: str) -> None:
    """The message handler :func:`install` installs: log one Qt message on :data:`LOGGER_NAME`.

    Called by Qt on whichever thread emitted the message. Never raises: if logging fails, the
    message goes to stderr as Qt's own handler would have printed it.

    Args:
        msg_type: Qt's message type (mapped by :func:`level_of`).
        context: where Qt says the message came from: ``category`` (``"default"`` for plain
            ``qWarning``), and ``file``/``line``/``function`` (None/0 unless Qt was built with
            message context).
        message: the text.
    """
    try:
        logger = logging.getLogger(LOGGER_NAME)
        level = level_of(msg_type, message)
        if not logger.isEnabledFor(level):
            return
        category = (context.category if context is not None else None) or "default"
        file = context.file if context is not None else None
        line = context.line if context is not None else 0
        function = context.function if context is not None else None
        text = message if category == "default" else f"{category}: {message}"
        if file:
            text += f" ({file}:{line}" + (f", {function})" if function else ")")
        record = logger.makeRecord(LOGGER_NAME, level, file or "<qt>", line or 0, text, (), None,
                                   func=function or None, extra={"qt_category": category})
        logger.handle(record)
    except Exception:  # a message handler must not raise into Qt
        sys.stderr.write(f"Qt ({msg_type}): {message}\n")


def install() -> MessageHandler | None:
    """Route Qt's messages from now on into Python's logging (:func:`handle`), for every thread.

    Call it once per process, early (before the ``QApplication`` is made, so the platform plugin's
    messages are logged too).

    Returns:
        The handler installed before (a Python callable), or None when it was Qt's default one;
        pass it to ``qInstallMessageHandler`` to put it back.
    """
    previous: MessageHandler | None = qInstallMessageHandler(handle)
    return previous
