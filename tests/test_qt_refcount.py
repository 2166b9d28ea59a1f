"""Guard against the PySide6 6.12.0 refcount bug that aborts the app on Python 3.11.

PySide6-Essentials 6.12.0 decrements the reference count of ``None`` on every call of a
void method (e.g. ``QTimer.setSingleShot``); on Python < 3.12 (no immortal objects) the
process dies after some thousands of calls with "none_dealloc: deallocating None".
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer


def test_void_qt_calls_keep_none_alive(qapp) -> None:
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(200):
        timer.setSingleShot(True)
        timer.setInterval(5)
    after = sys.getrefcount(None)
    assert after >= before - 5, f"refcount of None fell from {before} to {after}: broken PySide6 build"
