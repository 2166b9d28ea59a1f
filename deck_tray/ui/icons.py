"""Icons drawn from the packaged SVGs (the top-level ``resources/``, installed as the package
``deck_tray.resources``), with a count badge."""

from __future__ import annotations

from functools import cache
from importlib import resources

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from deck_tray import APP_ID
from deck_tray.core.model import SessionStatus


@cache
def _svg(name: str) -> bytes:
    return resources.files("deck_tray.resources").joinpath(f"{name}.svg").read_bytes()


@cache
def _plain(name: str, size: int) -> QPixmap:
    """``resources/<name>.svg`` rendered at ``size`` px (each look is drawn from the SVG once)."""
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pm)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(QByteArray(_svg(name))).render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pm


def render(name: str, size: int = 64, badge: int = 0) -> QPixmap:
    """Render ``resources/<name>.svg`` at ``size`` px, with a red count badge if ``badge`` > 0."""
    pm = QPixmap(_plain(name, size))  # a copy: the badge is drawn on it
    if badge > 0:
        painter = QPainter(pm)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        d = size * 0.52
        rect = QRectF(size - d, 0, d, d)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#d92d20"))
        painter.drawEllipse(rect)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(d * 0.62))
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(badge) if badge < 10 else "9+")
        painter.end()
    return pm


def panel_is_dark() -> bool:
    """Best guess whether the tray sits on a dark panel: the desktop's colour scheme."""
    hints = QGuiApplication.styleHints()
    if hints.colorScheme() == Qt.ColorScheme.Dark:
        return True
    if hints.colorScheme() == Qt.ColorScheme.Light:
        return False
    return QGuiApplication.palette().window().color().lightness() < 128


def tray_icon(waiting: int, busy: bool, dark: bool | None = None) -> QIcon:
    """The tray icon: waiting (orange, with the count) > busy (blue) > idle (grey, a light
    variant on dark panels). Rendered once per look and cached: the tray refreshes on every
    session change."""
    dark = panel_is_dark() if dark is None else dark
    name = "state-waiting" if waiting else "state-busy" if busy else ("state-idle-dark" if dark else "state-idle")
    return _tray_icon(name, min(waiting, 10))


@cache
def _tray_icon(name: str, waiting: int) -> QIcon:
    icon = QIcon()
    for size in (16, 22, 24, 32, 48, 64):
        icon.addPixmap(render(name, size, waiting))
    return icon


@cache
def status_icon(status: SessionStatus, size: int = 16) -> QIcon:
    """Small icon for a session's status (lists, tabs, menus); cached per status and size."""
    name = {
        SessionStatus.WAITING_PERMISSION: "state-waiting",
        SessionStatus.WAITING_QUESTION: "state-waiting",
        SessionStatus.BUSY: "state-busy",
    }.get(status, "state-idle")
    return QIcon(render(name, size * 2))


def app_icon() -> QIcon:
    """The application icon (``resources/<APP_ID>.svg``, the one the desktop entry names)."""
    icon = QIcon()
    for size in (16, 32, 48, 64, 128):
        icon.addPixmap(render(APP_ID, size))
    return icon
