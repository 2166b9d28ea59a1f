"""core.display: which platform the window runs on, and whether pinning works there (issue #14)."""

from __future__ import annotations

from deck_tray.core.display import NATIVE_WAYLAND, THROUGH_XWAYLAND, choose, pinning_works, wayland_session

GNOME = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "GNOME"}


def test_pinned_on_wayland_runs_through_xwayland() -> None:
    p = choose(GNOME, pinned=True)
    assert (p.qpa, p.name, p.session, p.pinning) == (THROUGH_XWAYLAND, "xcb", "wayland", True)
    assert "XWayland (DISPLAY=:0) on GNOME" in p.detail


def test_unpinned_on_wayland_runs_natively_and_pinning_would_need_a_restart() -> None:
    p = choose(GNOME, pinned=False)
    assert (p.qpa, p.name, p.pinning, p.pinning_after_restart) == (NATIVE_WAYLAND, "wayland", False, True)
    assert "restart" in p.detail


def test_wayland_without_xwayland_cannot_pin() -> None:
    env = {k: v for k, v in GNOME.items() if k != "DISPLAY"}
    for pinned in (True, False):
        p = choose(env, pinned=pinned)
        assert (p.qpa, p.name, p.pinning, p.pinning_after_restart) == (NATIVE_WAYLAND, "wayland", False, False)
    assert "XWayland is not running" in choose(env, pinned=True).detail


def test_the_users_own_platform_is_kept() -> None:
    p = choose(dict(GNOME, QT_QPA_PLATFORM="wayland"), pinned=True)
    assert (p.qpa, p.name, p.pinning) == (None, "wayland", False)
    assert "QT_QPA_PLATFORM=wayland" in p.detail and "no effect" in p.detail
    assert choose(dict(GNOME, QT_QPA_PLATFORM="xcb"), pinned=False).pinning
    assert choose({"QT_QPA_PLATFORM": "offscreen"}, pinned=True).name == "offscreen"


def test_x11_and_no_display() -> None:
    x11 = choose({"DISPLAY": ":1", "XDG_SESSION_TYPE": "x11", "WAYLAND_DISPLAY": "stale"}, pinned=True)
    assert (x11.qpa, x11.name, x11.session, x11.pinning) == (None, "xcb", "x11", True)
    none = choose({}, pinned=True)
    assert (none.name, none.session, none.pinning) == ("none", "none", False)


def test_pinning_works_everywhere_but_native_wayland() -> None:
    assert not pinning_works("wayland") and not pinning_works("wayland-egl")
    assert pinning_works("xcb") and pinning_works("offscreen")
    assert wayland_session({"WAYLAND_DISPLAY": "w"}) and not wayland_session({"DISPLAY": ":0"})
