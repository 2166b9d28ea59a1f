"""core.shortcuts: the global shortcut's trigger in each desktop's notation (issue #14)."""

from __future__ import annotations

import pytest

from deck_tray.core.shortcuts import SUGGESTED, none_reason, parse, ways


@pytest.mark.parametrize("text", ["Ctrl+Alt+D", "Meta+Shift+Space", "Meta+Ctrl+Alt+Shift+D", "Alt+F9", "F12",
                                  "Ctrl+Alt+PgDown", "Meta+,"])
def test_qt_notation_and_key_codes_match_qt(text: str) -> None:
    from PySide6.QtGui import QKeySequence

    t = parse(text)
    seq = QKeySequence(text)
    assert t.text() == seq.toString(QKeySequence.SequenceFormat.PortableText)
    assert t.qt_code() == seq[0].toCombined()


def test_each_desktops_notation() -> None:
    t = parse("super+ctrl+d")  # aliases and case
    assert t.text() == "Meta+Ctrl+D"
    assert t.portal() == "LOGO+CTRL+d"  # XDG shortcuts notation: modifiers, then the xkb keysym name
    assert (t.keysym(), t.modifiers) == ("d", ("Mod4", "Control"))
    assert parse("Ctrl+Alt+Space").portal() == "CTRL+ALT+space"
    assert parse(SUGGESTED).text() == SUGGESTED


@pytest.mark.parametrize(("text", "says"), [
    ("D", "add Ctrl, Alt or Super"), ("Shift+D", "add Ctrl, Alt or Super"), ("Ctrl+", "not a shortcut"),
    ("Hyper+D", "not a modifier"), ("Ctrl+Ü", "not a key"), ("", "not a shortcut"), ("Ctrl+F25", "not a key"),
])
def test_unusable_shortcuts_say_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(text)


def test_ways_per_desktop() -> None:
    kde_wayland = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "w", "DISPLAY": ":0",
                   "XDG_CURRENT_DESKTOP": "KDE"}
    assert ways(kde_wayland, portal=True, kglobalaccel=True) == ["portal", "kglobalaccel"]
    # GNOME 43-47 on Wayland: no portal GlobalShortcuts, no kglobalaccel, and an X grab would not see keys.
    gnome = dict(kde_wayland, XDG_CURRENT_DESKTOP="GNOME")
    assert ways(gnome, portal=False, kglobalaccel=False) == []
    # KDE libraries on GNOME can start kglobalaccel5: its X11 grabs never see a key in a Wayland window.
    assert ways(gnome, portal=False, kglobalaccel=True) == []
    assert "deck-tray --toggle" in none_reason(gnome) and "GNOME" in none_reason(gnome)
    assert ways({"DISPLAY": ":0"}, portal=False, kglobalaccel=False) == ["x11"]
    assert ways({"DISPLAY": ":0"}, portal=False, kglobalaccel=True) == ["x11"]
    kde_x11 = {"DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "KDE"}
    assert ways(kde_x11, portal=False, kglobalaccel=True) == ["kglobalaccel", "x11"]
    assert ways({}, portal=True, kglobalaccel=True) == []
