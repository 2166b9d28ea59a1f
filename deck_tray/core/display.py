"""Which Qt platform the window runs on, and whether "pinned" (stay on top) can work there.

A pure decision from the environment and the pinning setting, made once before the
``QApplication`` exists (Qt picks its platform plugin at construction) and reported again by
``deck-tray doctor``.

Why it matters (verified on mutter 43.8 and KWin 5.27.5, headless, each with Xwayland 22.1.9):

* Wayland has no client protocol for "keep above": a native Wayland window's
  ``Qt::WindowStaysOnTopHint`` is ignored by GNOME (mutter) and KDE (KWin) alike.
* The same window run through XWayland (Qt's ``xcb`` platform) sets ``_NET_WM_STATE_ABOVE``
  (EWMH §5.7), which both compositors' X11 window managers honour: it stays above a window
  that takes focus.

So a Wayland session with XWayland (``DISPLAY`` set beside ``WAYLAND_DISPLAY``) runs a pinned
window through XWayland; with pinning off, or without XWayland, it runs natively. A platform the
user chose (``QT_QPA_PLATFORM``) is always kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: The ``-platform`` value for a native Wayland window (xcb is Qt's fallback when the Wayland
#: plugin cannot start, e.g. a missing libwayland-cursor).
NATIVE_WAYLAND = "wayland;xcb"
#: The ``-platform`` value for a window through XWayland: Qt tries xcb, and falls back to native
#: Wayland when the X server refuses it (no Xauthority cookie) or libxcb-cursor0 is missing,
#: instead of aborting; the window then says pinning does not work.
THROUGH_XWAYLAND = "xcb;wayland"


def wayland_session(env: Mapping[str, str]) -> bool:
    """True for a Wayland session: ``XDG_SESSION_TYPE=wayland``, or ``WAYLAND_DISPLAY`` set when
    ``XDG_SESSION_TYPE`` does not say ``x11`` (a nested compositor's clients, a session without
    logind)."""
    kind = env.get("XDG_SESSION_TYPE", "").strip().lower()
    if kind == "wayland":
        return True
    return kind != "x11" and bool(env.get("WAYLAND_DISPLAY"))


def desktop_name(env: Mapping[str, str]) -> str:
    """The desktop as the session names it (``XDG_CURRENT_DESKTOP``, e.g. ``GNOME``, ``KDE``,
    ``ubuntu:GNOME``), or ``""``."""
    return env.get("XDG_CURRENT_DESKTOP", "").strip()


@dataclass(frozen=True)
class WindowPlatform:
    """Where the window runs and what pinning does there.

    Attributes:
        qpa: the value for Qt's ``-platform`` argument, or None to leave Qt's own choice (an X11
            session, or a platform the user set in ``QT_QPA_PLATFORM``).
        name: the platform the window will run on: ``xcb``, ``wayland``, ``offscreen``, … or
            ``none`` (no display at all).
        session: ``wayland``, ``x11`` or ``none``.
        pinning: True when "pinned" keeps the window above others on this platform.
        pinning_after_restart: True when pinning does not work now but would after a restart
            (a Wayland session with XWayland, started with pinning off).
        detail: one sentence for ``doctor`` and the log: where the window runs and why.
    """

    qpa: str | None
    name: str
    session: str
    pinning: bool
    pinning_after_restart: bool
    detail: str


def choose(env: Mapping[str, str], *, pinned: bool) -> WindowPlatform:
    """Decide the window's platform.

    Args:
        env: the process environment (``QT_QPA_PLATFORM``, ``WAYLAND_DISPLAY``, ``DISPLAY``,
            ``XDG_SESSION_TYPE``, ``XDG_CURRENT_DESKTOP``).
        pinned: the "pinned" setting (``window/pinned``) the window will start with.

    Returns:
        The :class:`WindowPlatform`; never raises.
    """
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    wayland = wayland_session(env)
    session = "wayland" if wayland else ("x11" if env.get("DISPLAY") else "none")
    x_display = env.get("DISPLAY", "")
    if chosen:
        name = chosen.split(";")[0].split(":")[0].strip() or chosen
        works = name == "xcb"
        how = ("pinning works there (the window manager keeps it above others)" if works
               else "pinning has no effect there" if name.startswith("wayland")
               else "there is no desktop to pin it on")
        return WindowPlatform(None, name, session, works, False,
                              f"{name}, as QT_QPA_PLATFORM={chosen} says; {how}.")
    if wayland:
        where = desktop_name(env) or "a Wayland desktop"
        if pinned and x_display:
            return WindowPlatform(THROUGH_XWAYLAND, "xcb", session, True, False,
                                  f"xcb through XWayland (DISPLAY={x_display}) on {where}, so the pinned window "
                                  "stays on top (Wayland itself has no way to keep a window above others).")
        if pinned:
            return WindowPlatform(NATIVE_WAYLAND, "wayland", session, False, False,
                                  f"native Wayland on {where}; XWayland is not running (DISPLAY is not set), "
                                  "so the pinned window cannot stay on top.")
        return WindowPlatform(NATIVE_WAYLAND, "wayland", session, False, bool(x_display),
                              f"native Wayland on {where} (pinning is off); "
                              + ("pin the window and restart deck-tray to run it through XWayland, where it "
                                 "stays on top." if x_display else
                                 "without XWayland a pinned window cannot stay on top."))
    if x_display:
        return WindowPlatform(None, "xcb", session, True, False,
                              f"xcb on the X11 display {x_display}; the window manager keeps a pinned window on top.")
    return WindowPlatform(None, "none", session, False, False,
                          "no display (neither WAYLAND_DISPLAY nor DISPLAY is set); the window cannot be shown.")


def pinning_works(platform_name: str) -> bool:
    """Whether keep-above works for a window on Qt platform ``platform_name`` (as
    ``QGuiApplication.platformName()`` says): not on native Wayland; ``offscreen`` and ``minimal``
    (tests) count as working, since nothing there could show otherwise."""
    return not platform_name.startswith("wayland")
