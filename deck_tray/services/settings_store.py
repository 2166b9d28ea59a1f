"""The user's settings on disk: typed reads and writes of :mod:`deck_tray.core.settings`.

The file is ``deck-tray.ini`` in platformdirs' user config dir (``~/.config/deck-tray/``),
written through ``QSettings`` in INI format. The window keeps its own state (geometry,
drafts, closed tabs) in the same file under other keys; this store only reads and writes
the keys of the settings table, and refuses any other key, so nothing secret can end up
here by mistake (passwords live in the keyring: :mod:`deck_tray.services.secrets`).
"""

from __future__ import annotations

import logging
import os
from typing import Any, TypeVar

import platformdirs
from PySide6.QtCore import QObject, QSettings, Signal

from deck_tray.core.settings import BY_KEY, SETTINGS, Setting, coerce, describe, to_ini, validate

log = logging.getLogger(__name__)
T = TypeVar("T")


def default_path() -> str:
    """``<user config dir>/deck-tray.ini`` (the folder is not created here)."""
    return os.path.join(platformdirs.user_config_dir("deck-tray", appauthor=False), "deck-tray.ini")


def open_settings(path: str | None = None) -> QSettings:
    """The app's ``QSettings`` (INI format) at ``path`` or :func:`default_path`."""
    return QSettings(path or default_path(), QSettings.Format.IniFormat)


class SettingsStore(QObject):
    """Typed access to the settings table, backed by ``QSettings``.

    Args:
        settings: the ``QSettings`` to use (shared with the window); None opens
            :func:`open_settings`.
        parent: Qt parent.

    Attributes:
        problems: ``{key: sentence}`` for each stored value that could not be used (its
            default, or for a URL list its usable part, is used instead); each is logged once
            as a warning and forgotten when the setting is stored anew.

    Signals:
        changed(str, object): ``(key, new typed value)`` after :meth:`set` stored a value
            different from the one before. Not emitted for values that stay the same.
    """

    changed = Signal(str, object)

    def __init__(self, settings: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.qsettings = settings if settings is not None else open_settings()
        self.problems: dict[str, str] = {}
        # what ``changed`` last said (or the start-up value), for :meth:`refresh`
        self._seen: dict[str, Any] = {s.key: self.get(s) for s in SETTINGS}

    @property
    def path(self) -> str:
        """The INI file."""
        return self.qsettings.fileName()

    @staticmethod
    def _known(setting: Setting[Any]) -> None:
        if BY_KEY.get(setting.key) is not setting:
            raise KeyError(f"{setting.key!r} is not in the settings table (deck_tray.core.settings)")

    def get(self, setting: Setting[T]) -> T:
        """The current value of ``setting`` (its default when absent or unusable)."""
        self._known(setting)
        value, warning = coerce(setting, self.qsettings.value(setting.key))
        if warning is not None and self.problems.get(setting.key) != warning:
            self.problems[setting.key] = warning
            log.warning("settings file %s: %s", self.path, warning)
        return value

    def values(self) -> dict[str, Any]:
        """``{key: value}`` of every setting."""
        return {s.key: self.get(s) for s in SETTINGS}

    def set(self, setting: Setting[T], value: T) -> bool:
        """Store ``value``; emits :attr:`changed` when it differs from the current value.

        Returns:
            True when the value changed.

        Raises:
            KeyError: ``setting`` is not one of the table's.
            ValueError: ``value`` is not acceptable (the message says why).
        """
        self._known(setting)
        err = validate(setting, value)
        if err is not None:
            raise ValueError(err)
        raw = self.qsettings.value(setting.key)
        old, warning = coerce(setting, raw)
        if old == value and raw is not None and warning is None:
            return False
        self.qsettings.setValue(setting.key, to_ini(setting, value))
        self.qsettings.sync()
        self.problems.pop(setting.key, None)
        self._seen[setting.key] = value
        if old == value:
            return False  # written out (it was absent or unusable), but the value is the same
        log.info("setting %s = %s", setting.key, describe(setting, value))
        self.changed.emit(setting.key, value)
        return True

    def refresh(self, setting: Setting[T]) -> bool:
        """Re-read a value that other code wrote to the shared ``QSettings`` (the window
        stores ``window/pinned`` itself); emits :attr:`changed` when it differs from the last
        value reported. Returns True when it did."""
        value = self.get(setting)
        if self._seen.get(setting.key) == value:
            return False
        self._seen[setting.key] = value
        self.changed.emit(setting.key, value)
        return True

    def reset(self, setting: Setting[T]) -> bool:
        """Back to the default (stored explicitly); emits :attr:`changed` if it differed."""
        return self.set(setting, setting.default)
