"""Raise and focus a window, with the activation token the request came with.

Wayland lets a window take focus only with a token the compositor issued to the program the
user acted in (xdg-activation-v1): a notification server sends it in ``ActivationToken``
(Desktop Notifications spec 1.2), a launcher puts it in ``XDG_ACTIVATION_TOKEN`` for the program
it starts. Qt's Wayland platform (qtwayland 6.x, ``QWaylandXdgSurface::requestActivate``) uses
``XDG_ACTIVATION_TOKEN`` from the environment when a window asks to be activated and unsets it;
without a token KWin and mutter only mark the window as demanding attention.

On X11 (and through XWayland) Qt's ``_NET_ACTIVE_WINDOW`` request is enough: verified on mutter
43.8 and KWin 5.27.5, both of which activated the window without a token.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)


def activate(window: QWidget, token: str = "") -> None:
    """Show ``window``, raise it and ask for focus, using ``token`` on native Wayland.

    Args:
        window: a top-level widget.
        token: an xdg-activation token (or ``""``). On other platforms it is not used (an X11
            startup id is only meaningful to the program it was made for).
    """
    wayland = QGuiApplication.platformName().startswith("wayland")
    if token and wayland:
        os.environ["XDG_ACTIVATION_TOKEN"] = token
    window.show()
    window.raise_()
    window.activateWindow()
    if token and wayland:
        # Qt unset it in C (qunsetenv) if it used it; the Python copy must go too, or programs
        # started later would inherit a spent token.
        os.environ.pop("XDG_ACTIVATION_TOKEN", None)
    log.debug("activate %s (%s, %s)", window.objectName() or type(window).__name__,
              QGuiApplication.platformName(), "with a token" if token else "no token")
