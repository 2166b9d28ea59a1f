"""One error funnel: uncaught errors from the GUI thread, other threads and the event loop
are logged with their traceback and shown once as a short message with "Copy details"."""

from __future__ import annotations

import logging
import traceback
import types

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

log = logging.getLogger("deck_tray")


class ErrorReporter(QObject):
    """Collects errors from anywhere and shows them on the GUI thread.

    Args:
        parent_widget: the window the message box belongs to (None: free-standing).

    Signals:
        reported(str, str): ``(summary, details)``; emitted from any thread, delivered to
            the GUI thread (queued), where the message box is shown.
    """

    reported = Signal(str, str)

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__()
        self.parent_widget = parent_widget
        self.box: QMessageBox | None = None
        self.count = 0
        self.reported.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def report(self, exc_type: type[BaseException], exc: BaseException, tb: types.TracebackType | None) -> None:
        """Log an exception and show it (thread-safe)."""
        log.error("unexpected error", exc_info=(exc_type, exc, tb))
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        self.reported.emit(f"{exc_type.__name__}: {exc}", details)

    def _show(self, summary: str, details: str) -> None:
        self.count += 1
        if self.box is not None and self.box.isVisible():
            self.box.setText(f"deck-tray hit {self.count} unexpected errors. The latest:\n{summary}")
            self.box.setDetailedText(details)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "deck-tray", f"Something went wrong: {summary}\n\n"
                          "deck-tray keeps running; the details are in the log.", parent=self.parent_widget)
        box.setDetailedText(details)
        copy = box.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Close)
        copy.clicked.disconnect()  # keep the box open after copying
        copy.clicked.connect(lambda: self._copy(box))
        box.setWindowModality(Qt.WindowModality.NonModal)
        self.box = box
        box.open()

    @staticmethod
    def _copy(box: QMessageBox) -> None:
        clipboard = QApplication.clipboard()
        clipboard.setText(box.detailedText())
