"""The settings store: typed round trips through a real INI file, the changed signal, no strays."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from deck_tray.core import settings as cfg
from deck_tray.services.settings_store import SettingsStore, default_path, open_settings


def fresh(path: Path) -> SettingsStore:
    return SettingsStore(QSettings(str(path), QSettings.Format.IniFormat))


def test_the_file_is_under_the_platform_config_dir() -> None:
    # tests/conftest.py points XDG_CONFIG_HOME at a temporary folder
    assert default_path() == os.path.join(os.environ["XDG_CONFIG_HOME"], "deck-tray", "deck-tray.ini")
    assert open_settings().fileName() == default_path()
    assert open_settings().format() is QSettings.Format.IniFormat


def test_defaults_without_a_file(tmp_path: Path) -> None:
    store = fresh(tmp_path / "none.ini")
    assert store.values() == cfg.defaults()
    assert store.problems == {}


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.ini"
    store = fresh(path)
    store.set(cfg.OPENCODE_URLS, ("http://127.0.0.1:4096", "https://box.lan:8443"))
    store.set(cfg.QUIET_START, dt.time(23, 45))
    store.set(cfg.GRACE_MS, 1200)
    store.set(cfg.NOTIFY_QUESTION, False)
    store.set(cfg.CLAUDE_DIR, "~/alt")
    text = path.read_text()
    assert "quiet_start=23:45" in text and "grace_ms=1200" in text
    assert "urls=http://127.0.0.1:4096, https://box.lan:8443" in text
    # a one-item list and an empty one come back as lists too
    store.set(cfg.AUTO_HANDOFF_PERCENT, 90)
    other = tmp_path / "copy.ini"
    other.write_text(text.replace(", https://box.lan:8443", ""))
    again = fresh(other)
    assert again.get(cfg.OPENCODE_URLS) == ("http://127.0.0.1:4096",)
    assert again.get(cfg.QUIET_START) == dt.time(23, 45)
    assert again.get(cfg.GRACE_MS) == 1200
    assert again.get(cfg.NOTIFY_QUESTION) is False
    assert again.get(cfg.CLAUDE_DIR) == "~/alt"
    again.set(cfg.OPENCODE_URLS, ())
    assert fresh(other).get(cfg.OPENCODE_URLS) == ()


def test_changed_is_emitted_once_per_real_change(qtbot, tmp_path: Path) -> None:
    store = fresh(tmp_path / "s.ini")
    seen: list[tuple[str, object]] = []
    store.changed.connect(lambda k, v: seen.append((k, v)))
    with qtbot.wait_signal(store.changed):
        assert store.set(cfg.RENOTIFY_MINUTES, 5) is True
    assert store.set(cfg.RENOTIFY_MINUTES, 5) is False
    assert store.set(cfg.PINNED, False) is False  # the default, now written out: no change
    assert store.reset(cfg.RENOTIFY_MINUTES) is True
    assert seen == [("notifications/renotify_minutes", 5), ("notifications/renotify_minutes", 0)]


def test_only_table_keys_and_valid_values(tmp_path: Path) -> None:
    path = tmp_path / "s.ini"
    store = fresh(path)
    stray = cfg.Setting("opencode/password", cfg.Kind.PATH, "", "Password", "never", cfg.Group.OPENCODE)
    with pytest.raises(KeyError, match="not in the settings table"):
        store.set(stray, "/hunter2")
    with pytest.raises(KeyError):
        store.get(stray)
    lookalike = cfg.Setting(cfg.GRACE_MS.key, cfg.Kind.INT, 0, "x", "y", cfg.Group.NOTIFICATIONS, maximum=10**9)
    with pytest.raises(KeyError):
        store.set(lookalike, 10**8)  # same key, but not the table's definition
    with pytest.raises(ValueError, match="outside 0–10000"):
        store.set(cfg.GRACE_MS, 20_000)
    with pytest.raises(ValueError, match="contains a space"):
        store.set(cfg.OPENCODE_URLS, ("http://a b:1",))
    assert not path.exists() or "password" not in path.read_text()
    assert store.get(cfg.GRACE_MS) == 300


def test_unusable_values_are_reported_and_fixed_by_storing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.ini"
    path.write_text("[notifications]\ngrace_ms=fast\nquiet_start=25:00\nenabled=maybe\n"
                    "[opencode]\nurls=http://127.0.0.1:4096, not a url\n[window]\ngeometry=@ByteArray(x)\n")
    caplog.set_level("WARNING", logger="deck_tray.services.settings_store")
    store = fresh(path)
    assert store.get(cfg.GRACE_MS) == 300 and store.get(cfg.NOTIFY_ENABLED) is True
    assert store.get(cfg.OPENCODE_URLS) == ("http://127.0.0.1:4096",)
    assert set(store.problems) == {"notifications/grace_ms", "notifications/quiet_start",
                                   "notifications/enabled", "opencode/urls"}
    assert caplog.text.count("grace_ms") == 1, "each problem is logged once"
    store.values()
    assert caplog.text.count("grace_ms") == 1
    assert store.set(cfg.GRACE_MS, 300) is False  # the same value as used, but now stored properly
    assert "notifications/grace_ms" not in store.problems
    assert "grace_ms=300" in path.read_text()
    assert "geometry=" in path.read_text(), "other keys of the file are left alone"


def test_refresh_reports_what_other_code_wrote(tmp_path: Path) -> None:
    qs = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store = SettingsStore(qs)
    seen: list[tuple[str, object]] = []
    store.changed.connect(lambda k, v: seen.append((k, v)))
    qs.setValue("window/pinned", True)  # what MainWindow.set_pinned does
    assert store.refresh(cfg.PINNED) is True
    assert store.refresh(cfg.PINNED) is False
    assert seen == [("window/pinned", True)]
