"""The guard in tests/conftest.py: a Qt warning fails the test it happens in.

Checked twice so the guard cannot silently do nothing: here, that a ``qWarning`` reaches the
collector the guard reads; and in a pytest of its own (``pytester``, a subprocess with this
conftest), that each kind of message fails or passes the right test phase.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QLoggingCategory, qCWarning, qWarning

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def test_a_qt_warning_reaches_the_guard(qapp: Any, qt_warnings: Any) -> None:
    category = QLoggingCategory("deck_tray.test")
    qWarning("the guard should see this")
    qCWarning(category, "and this one, with its category")
    got = [(r.levelno, r.name, r.getMessage(), r.qt_category) for r in qt_warnings.take()]
    assert got == [
        (logging.WARNING, "deck_tray.qt", "the guard should see this", "default"),
        (logging.WARNING, "deck_tray.qt", "deck_tray.test: and this one, with its category", "deck_tray.test"),
    ]


def test_each_phase_fails_on_a_qt_warning_unless_it_is_expected_or_harmless(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nqt_api = pyside6\naddopts = --strict-markers -p no:cacheprovider\n")
    pytester.makepyfile(test_guarded='''
        import threading

        import pytest
        from PySide6.QtCore import qCritical, qDebug, qInfo, qInstallMessageHandler, qWarning


        def test_warning_in_the_body(qapp):
            qWarning("a warning in the body")


        def test_critical_in_the_body(qapp):
            qCritical("a critical message")


        def test_warning_from_another_thread(qapp):
            t = threading.Thread(target=qWarning, args=("a warning from a worker thread",))
            t.start()
            t.join()


        @pytest.fixture
        def warns_at_setup(qapp):
            qWarning("a warning at set-up")


        def test_warning_at_setup(warns_at_setup):
            pass


        @pytest.fixture
        def warns_at_teardown(qapp):
            yield
            qWarning("a warning at tear-down")


        def test_warning_at_teardown(warns_at_teardown):
            pass


        @pytest.mark.qt_log_ignore(r"^expected: ")
        def test_expected_warning(qapp):
            qWarning("expected: the test provokes it")


        def test_harmless_warning(qapp):
            qWarning("This plugin does not support raise()")


        def test_debug_and_info(qapp):
            qDebug("chatter")
            qInfo("more chatter")


        def test_handler_replaced(qapp):
            qInstallMessageHandler(lambda *a: None)
    ''')
    # -s: pytest-qt's capture was off under -s; this guard is not.
    result = pytester.runpytest_subprocess("-s", "-rA")
    result.assert_outcomes(passed=5, failed=3, errors=3)
    result.stdout.fnmatch_lines_random([
        "*FAILED test_guarded.py::test_warning_in_the_body*",
        "*FAILED test_guarded.py::test_critical_in_the_body*",
        "*FAILED test_guarded.py::test_warning_from_another_thread*",
        "*ERROR test_guarded.py::test_warning_at_setup*",
        "*ERROR test_guarded.py::test_warning_at_teardown*",
        "*ERROR test_guarded.py::test_handler_replaced*",
        "the test replaced Qt's message handler and left it so*",
        "*PASSED test_guarded.py::test_expected_warning*",
        "*PASSED test_guarded.py::test_harmless_warning*",
        "*PASSED test_guarded.py::test_debug_and_info*",
        "WARNING deck_tray.qt: a warning in the body",
        "ERROR deck_tray.qt: a critical message",
        "WARNING deck_tray.qt: a warning from a worker thread",
        "WARNING deck_tray.qt: a warning at set-up",
        "WARNING deck_tray.qt: a warning at tear-down",
    ])
    assert "chatter" not in result.stdout.str()
