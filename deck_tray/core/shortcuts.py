"""The global shortcut: its trigger (a key with modifiers) in the notations each desktop takes,
and which way of binding it a desktop offers.

The user types a shortcut in Qt's portable notation (``QKeySequence.PortableText``:
``"Ctrl+Alt+D"``, ``"Meta+F9"``); :func:`parse` reads it into a :class:`Trigger`, which says it:

* to the XDG desktop portal (``org.freedesktop.portal.GlobalShortcuts``, ``preferred_trigger``
  in the "shortcuts" notation of the XDG spec: ``CTRL``, ``ALT``, ``SHIFT``, ``LOGO`` joined with
  ``+`` to an xkb keysym name, e.g. ``"CTRL+ALT+d"``): :meth:`Trigger.portal`;
* to KDE's ``kglobalaccel`` (``org.kde.KGlobalAccel.setShortcut``: Qt key codes, ``int`` =
  ``Qt::Key | Qt::KeyboardModifier``): :meth:`Trigger.qt_code`;
* to an X11 key grab (``XGrabKey``: a keysym name for ``XStringToKeysym`` and X modifier
  names): :meth:`Trigger.keysym` / :attr:`Trigger.modifiers`.

:func:`ways` decides, from the session and what the bus offers, in which order the service
tries them (:mod:`deck_tray.services.global_shortcut`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from deck_tray.core.display import wayland_session

#: What the settings dialog suggests (unset by default).
SUGGESTED = "Ctrl+Alt+D"
#: The shortcut's id at the portal and kglobalaccel.
SHORTCUT_ID = "toggle"
#: What the desktop's shortcut settings show for it.
DESCRIPTION = "Show or hide deck-tray (at the oldest waiting request)"

#: Modifier names in the order Qt writes them (``Meta+Ctrl+Alt+Shift+D``), with their Qt flag,
#: portal and X11 names.
_MODIFIERS: tuple[tuple[str, int, str, str], ...] = (
    ("Meta", 0x10000000, "LOGO", "Mod4"),
    ("Ctrl", 0x04000000, "CTRL", "Control"),
    ("Alt", 0x08000000, "ALT", "Mod1"),
    ("Shift", 0x02000000, "SHIFT", "Shift"),
)
_MOD_ALIASES = {"ctrl": "Ctrl", "control": "Ctrl", "alt": "Alt", "shift": "Shift", "meta": "Meta",
                "super": "Meta", "logo": "Meta", "win": "Meta"}
#: Keys other than letters, digits and F-keys: Qt name → (Qt key code, keysym name).
_NAMED: dict[str, tuple[int, str]] = {
    "Space": (0x20, "space"), "Esc": (0x01000000, "Escape"), "Tab": (0x01000001, "Tab"),
    "Backspace": (0x01000003, "BackSpace"), "Return": (0x01000004, "Return"), "Ins": (0x01000006, "Insert"),
    "Del": (0x01000007, "Delete"), "Pause": (0x01000008, "Pause"), "Print": (0x01000009, "Print"),
    "Home": (0x01000010, "Home"), "End": (0x01000011, "End"), "Left": (0x01000012, "Left"),
    "Up": (0x01000013, "Up"), "Right": (0x01000014, "Right"), "Down": (0x01000015, "Down"),
    "PgUp": (0x01000016, "Prior"), "PgDown": (0x01000017, "Next"),
    ",": (0x2C, "comma"), ".": (0x2E, "period"), "/": (0x2F, "slash"), ";": (0x3B, "semicolon"),
    "'": (0x27, "apostrophe"), "[": (0x5B, "bracketleft"), "]": (0x5D, "bracketright"),
    "-": (0x2D, "minus"), "=": (0x3D, "equal"), "`": (0x60, "grave"), "\\": (0x5C, "backslash"),
}
_NAMED_ALIASES = {"escape": "Esc", "insert": "Ins", "delete": "Del", "pageup": "PgUp", "pagedown": "PgDown",
                  "enter": "Return", "comma": ",", "period": ".", "slash": "/", "minus": "-", "equal": "="}


@dataclass(frozen=True)
class Trigger:
    """A key with modifiers.

    Attributes:
        mods: modifier names among ``Ctrl``, ``Alt``, ``Shift``, ``Meta`` (Super / the logo key).
        key: ``"A"``–``"Z"``, ``"0"``–``"9"``, ``"F1"``–``"F24"`` or a name of :data:`_NAMED`.
    """

    mods: frozenset[str]
    key: str

    def text(self) -> str:
        """Qt's portable notation: ``"Ctrl+Alt+D"``."""
        return "+".join([m for m, *_ in _MODIFIERS if m in self.mods] + [self.key])

    def portal(self) -> str:
        """The XDG shortcuts notation for ``preferred_trigger``: ``"CTRL+ALT+d"``."""
        return "+".join([p for m, _q, p, _x in _MODIFIERS if m in self.mods] + [self.keysym()])

    def keysym(self) -> str:
        """The key's X keysym name (``XStringToKeysym``): ``"d"``, ``"5"``, ``"F9"``, ``"space"``."""
        if len(self.key) == 1 and self.key.isalnum():
            return self.key.lower()
        if self.key in _NAMED:
            return _NAMED[self.key][1]
        return self.key  # F-keys: "F9"

    @property
    def modifiers(self) -> tuple[str, ...]:
        """X11 modifier names (``Control``, ``Mod1``, ``Shift``, ``Mod4``)."""
        return tuple(x for m, _q, _p, x in _MODIFIERS if m in self.mods)

    def qt_code(self) -> int:
        """The Qt key code with modifier flags (``QKeyCombination.toCombined()``)."""
        if len(self.key) == 1 and self.key.isalnum():
            code = ord(self.key.upper())
        elif self.key in _NAMED:
            code = _NAMED[self.key][0]
        else:
            code = 0x01000030 + int(self.key[1:]) - 1  # Qt::Key_F1 + n - 1
        for m, q, _p, _x in _MODIFIERS:
            if m in self.mods:
                code |= q
        return code


def parse(text: str) -> Trigger:
    """Read ``"Ctrl+Alt+D"`` (Qt's portable notation; case and ``Super`` / ``Control`` aliases are
    accepted) into a :class:`Trigger`.

    Raises:
        ValueError: what is wrong, as a sentence for the settings dialog (an unknown key or
            modifier, more than one key, or a key without Ctrl, Alt or Super: a global shortcut
            on a plain key would take it from every app).
    """
    parts = [p.strip() for p in text.strip().replace(" ", "").split("+")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"“{text}” is not a shortcut like {SUGGESTED}")
    *mod_names, key_name = parts
    mods: set[str] = set()
    for name in mod_names:
        mod = _MOD_ALIASES.get(name.lower())
        if mod is None:
            raise ValueError(f"“{name}” is not a modifier (use Ctrl, Alt, Shift or Super)")
        mods.add(mod)
    key = _key(key_name)
    if key is None:
        raise ValueError(f"“{key_name}” is not a key deck-tray can bind (use a letter, a digit or F1–F24)")
    if not mods & {"Ctrl", "Alt", "Meta"} and not (key.startswith("F") and key[1:].isdigit()):
        raise ValueError(f"{Trigger(frozenset(mods), key).text()} would take the key from every app: "
                         "add Ctrl, Alt or Super")
    return Trigger(frozenset(mods), key)


def _key(name: str) -> str | None:
    if len(name) == 1 and name.isascii() and name.isalnum():
        return name.upper()
    if name[:1] in "Ff" and name[1:].isdigit() and 1 <= int(name[1:]) <= 24:
        return f"F{int(name[1:])}"
    for known in _NAMED:
        if known.lower() == name.lower():
            return known
    return _NAMED_ALIASES.get(name.lower())


def ways(env: Mapping[str, str], *, portal: bool, kglobalaccel: bool) -> list[str]:
    """The ways to bind a global shortcut on this desktop, in the order to try them.

    Args:
        env: the environment (``XDG_SESSION_TYPE``, ``WAYLAND_DISPLAY``, ``DISPLAY``).
        portal: the session bus has ``org.freedesktop.portal.GlobalShortcuts`` (xdg-desktop-portal
            >= 1.16 with a backend that implements it: KDE Plasma 5.27+, GNOME 48+).
        kglobalaccel: the session bus has ``org.kde.kglobalaccel`` (KDE Plasma: in KWin on
            Wayland, its own daemon on X11). Used on KDE only (``XDG_CURRENT_DESKTOP``): other
            desktops with KDE libraries installed can start ``kglobalaccel5``, which grabs keys
            through X11 and so never sees a key pressed in a Wayland window.

    Returns:
        Names among ``"portal"``, ``"kglobalaccel"``, ``"x11"``; empty when the desktop offers no
        way (GNOME on Wayland before 48: :func:`none_reason` says what to do instead).
    """
    kglobalaccel = kglobalaccel and "KDE" in env.get("XDG_CURRENT_DESKTOP", "").upper().split(":")
    if wayland_session(env):
        # An X11 key grab through XWayland only sees keys while an X11 window has focus.
        return [w for w, ok in (("portal", portal), ("kglobalaccel", kglobalaccel)) if ok]
    if env.get("DISPLAY"):
        # On KDE's X11 session kglobalaccel grabs the keys itself; a second grab would fail.
        return [w for w, ok in (("portal", portal), ("kglobalaccel", kglobalaccel), ("x11", True)) if ok]
    return []


def none_reason(env: Mapping[str, str]) -> str:
    """Why no way is left and what to do instead, for the settings dialog and ``doctor``."""
    desktop = env.get("XDG_CURRENT_DESKTOP", "") or "this desktop"
    if wayland_session(env):
        return (f"{desktop} offers apps no global shortcuts on Wayland (the desktop portal's GlobalShortcuts "
                "came with GNOME 48): add a custom shortcut in your keyboard settings that runs "
                "deck-tray --toggle.")
    return "There is no display to take a shortcut from; deck-tray --toggle does the same from a script."
