"""The settings dialog in the running app: opened from the tray and the window, Apply changes
the live objects at once, Cancel keeps what was applied, invalid input stays where it was typed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt, QTime
from PySide6.QtWidgets import QDialogButtonBox

from deck_tray.core import settings as cfg
from deck_tray.core.model import SessionStatus

pytestmark = pytest.mark.gui


@pytest.fixture
def app(tmp_path: Path, qtbot) -> Iterator[Any]:
    from deck_tray.app import DeckTrayApp
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux

    a = DeckTrayApp(scanner=Scanner(tmp_path / "c", tmp_path / "x"), mux=Tmux(),
                    settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                    notification_backends=[], discover_opencode=False)
    qtbot.addWidget(a.window)
    yield a
    if a.settings_dialog is not None:
        a.settings_dialog.close()


def click(dlg: Any, which: QDialogButtonBox.StandardButton) -> None:
    dlg.buttons.button(which).click()


def test_tray_and_window_open_the_same_non_modal_dialog(app: Any, qtbot) -> None:
    assert any(a.text() == "Settings…" for a in app.tray.menu.actions())
    app.tray.settings_requested.emit()
    dlg = app.settings_dialog
    assert dlg is not None and dlg.isVisible() and not dlg.isModal()
    app.window.settings_action.trigger()
    assert app.settings_dialog is dlg
    assert [dlg.tabs.tabText(i) for i in range(dlg.tabs.count())] == \
        ["Notifications", "Quiet hours", "opencode", "Window", "Sessions"]
    assert not dlg.apply_button.isEnabled(), "nothing changed yet"


def test_apply_changes_the_running_app(app: Any, tmp_path: Path) -> None:
    assert app.notifier.renotify_after is None and app.notifier.grace == pytest.approx(0.3)
    dlg = app.open_settings()
    dlg.rows[cfg.RENOTIFY_MINUTES.key].editor.spin.setValue(5)
    dlg.rows[cfg.GRACE_MS.key].editor.spin.setValue(1000)
    dlg.rows[cfg.NOTIFY_QUESTION.key].editor.box.setChecked(False)
    dlg.rows[cfg.NOTIFY_TURN_FINISHED.key].editor.box.setChecked(True)
    urls = dlg.rows[cfg.OPENCODE_URLS.key].editor
    urls.entry.setText("localhost:4096")
    urls.add()
    urls.entry.setText("https://box.lan:8443/")  # typed, not added: Apply takes it too
    dlg.rows[cfg.AUTO_HANDOFF.key].editor.box.setChecked(True)
    dlg.rows[cfg.AUTO_HANDOFF_PERCENT.key].editor.spin.setValue(70)
    dlg.rows[cfg.CLAUDE_DIR.key].editor.line.setText(str(tmp_path / "alt-claude"))
    dlg.rows[cfg.HISTORY_HOURS.key].editor.spin.setValue(48)
    assert dlg.apply_button.isEnabled()
    click(dlg, QDialogButtonBox.StandardButton.Apply)

    assert app.store.get(cfg.RENOTIFY_MINUTES) == 5
    assert app.notifier.renotify_after == 300.0
    assert app.notifier.grace == 1.0
    assert app.notifier.announce == {SessionStatus.WAITING_PERMISSION, SessionStatus.IDLE}
    assert app.opencode.configured == ["http://127.0.0.1:4096", "https://box.lan:8443"]
    assert urls.urls() == ["http://127.0.0.1:4096", "https://box.lan:8443"] and urls.entry.text() == ""
    assert app.opencode.auto_handoff_percent == 70.0
    assert app.scanner.claude_dir == tmp_path / "alt-claude"
    assert app.scanner.history_s == 48 * 3600
    assert dlg.isVisible() and not dlg.apply_button.isEnabled()
    text = (tmp_path / "s.ini").read_text()
    assert "renotify_minutes=5" in text and "urls=http://127.0.0.1:4096, https://box.lan:8443" in text

    urls.list.item(0).setSelected(True)
    urls.remove_selected()
    click(dlg, QDialogButtonBox.StandardButton.Ok)
    assert not dlg.isVisible()
    assert app.opencode.configured == ["https://box.lan:8443"]


def test_window_settings_apply_live(app: Any, qtbot) -> None:
    dlg = app.open_settings()
    dlg.rows[cfg.PINNED.key].editor.box.setChecked(True)
    dlg.rows[cfg.CLOSE_TO_TRAY.key].editor.box.setChecked(False)
    click(dlg, QDialogButtonBox.StandardButton.Apply)
    assert app.window.is_pinned() and app.tray.pin_action.isChecked()
    assert app.window.close_to_tray is False
    # pinning elsewhere shows in the open dialog, and Apply does not undo it
    app.window.pin_action.setChecked(False)
    assert dlg.rows[cfg.PINNED.key].editor.box.isChecked() is False
    dlg.rows[cfg.GRACE_MS.key].editor.spin.setValue(500)
    click(dlg, QDialogButtonBox.StandardButton.Apply)
    assert not app.window.is_pinned()
    app.window.show()
    app.window.close()
    assert app.quit_event.is_set(), "closing quits when close-to-tray is off"


def test_quiet_hours_from_the_dialog(app: Any) -> None:
    assert app.quiet_now() is False
    dlg = app.open_settings()
    now = dt.datetime.now()
    start = (now - dt.timedelta(hours=1)).time()
    end = (now + dt.timedelta(hours=1)).time()
    assert not dlg.rows[cfg.QUIET_START.key].editor.isEnabled(), "greyed out while quiet hours are off"
    dlg.rows[cfg.QUIET_ENABLED.key].editor.box.setChecked(True)
    assert dlg.rows[cfg.QUIET_START.key].editor.isEnabled()
    dlg.rows[cfg.QUIET_START.key].editor.edit.setTime(QTime(start.hour, start.minute))
    dlg.rows[cfg.QUIET_END.key].editor.edit.setTime(QTime(end.hour, end.minute))
    click(dlg, QDialogButtonBox.StandardButton.Apply)
    assert app.store.get(cfg.QUIET_START) == dt.time(start.hour, start.minute)
    assert app.quiet_now() is True
    assert app.notifier.quiet is not None and app.notifier.quiet() is True
    dlg.rows[cfg.QUIET_ENABLED.key].editor.box.setChecked(False)
    click(dlg, QDialogButtonBox.StandardButton.Apply)
    assert app.quiet_now() is False


def test_restore_defaults_and_cancel(app: Any) -> None:
    dlg = app.open_settings()
    dlg.rows[cfg.RENOTIFY_MINUTES.key].editor.spin.setValue(15)
    dlg.rows[cfg.NOTIFY_ENABLED.key].editor.box.setChecked(False)
    click(dlg, QDialogButtonBox.StandardButton.Apply)
    assert app.notifier.announce == frozenset() and app.notifier.renotify_after == 900.0
    # Cancel drops only what was not applied
    dlg.rows[cfg.GRACE_MS.key].editor.spin.setValue(2000)
    click(dlg, QDialogButtonBox.StandardButton.Cancel)
    assert not dlg.isVisible()
    assert app.store.get(cfg.GRACE_MS) == 300 and app.notifier.grace == pytest.approx(0.3)
    assert app.store.get(cfg.RENOTIFY_MINUTES) == 15 and app.notifier.renotify_after == 900.0
    dlg = app.open_settings()
    assert dlg.rows[cfg.GRACE_MS.key].editor.spin.value() == 300
    assert dlg.rows[cfg.RENOTIFY_MINUTES.key].editor.spin.value() == 15
    assert dlg.rows[cfg.RENOTIFY_MINUTES.key].editor.spin.text() == "15 min"
    # Restore Defaults fills the fields; OK stores them
    click(dlg, QDialogButtonBox.StandardButton.RestoreDefaults)
    assert dlg.rows[cfg.RENOTIFY_MINUTES.key].editor.spin.text() == "Never"
    assert app.store.get(cfg.RENOTIFY_MINUTES) == 15, "not stored before OK / Apply"
    click(dlg, QDialogButtonBox.StandardButton.Ok)
    assert app.store.values() == cfg.defaults()
    assert app.notifier.renotify_after is None
    assert app.notifier.announce == {SessionStatus.WAITING_PERMISSION, SessionStatus.WAITING_QUESTION}


def test_invalid_input_is_shown_where_it_was_typed_and_kept(app: Any, qtbot) -> None:
    dlg = app.open_settings()
    dlg.tabs.setCurrentIndex(dlg.pages[cfg.Group.OPENCODE])
    urls = dlg.rows[cfg.OPENCODE_URLS.key]
    urls.editor.entry.setText("http://127.0.0.1:40 96")
    qtbot.keyClick(urls.editor.entry, Qt.Key.Key_Return)  # Enter = Add
    assert urls.editor.entry.text() == "http://127.0.0.1:40 96", "the text stays"
    assert urls.editor.urls() == []
    assert urls.note.isVisibleTo(dlg) and "contains a space" in urls.note.text()
    assert not dlg.ok_button.isEnabled() and not dlg.apply_button.isEnabled()
    assert not dlg.tabs.tabIcon(dlg.pages[cfg.Group.OPENCODE]).isNull(), "the page with the problem is marked"
    dlg.tabs.setCurrentIndex(dlg.pages[cfg.Group.WINDOW])
    assert dlg.apply() is False
    assert dlg.tabs.currentIndex() == dlg.pages[cfg.Group.OPENCODE], "Apply shows where the problem is"
    assert app.store.get(cfg.OPENCODE_URLS) == ()
    # an edited list line that breaks is marked too
    urls.editor.entry.setText("http://127.0.0.1:4096")
    urls.editor.add()
    assert dlg.ok_button.isEnabled() and not urls.note.isVisible()
    urls.editor.list.item(0).setText("http://127.0.0.1:port")
    assert "no valid port" in urls.note.text() and not dlg.ok_button.isEnabled()
    assert urls.editor.list.item(0).toolTip()
    urls.editor.list.item(0).setText("http://127.0.0.1:4097")
    click(dlg, QDialogButtonBox.StandardButton.Ok)
    assert app.opencode.configured == ["http://127.0.0.1:4097"]

    dlg = app.open_settings()
    path = dlg.rows[cfg.CODEX_DIR.key]
    path.editor.line.setText("relative/codex")
    assert "not an absolute path" in path.note.text() and not dlg.ok_button.isEnabled()
    path.editor.line.setText("~/no-such-codex-home")
    assert dlg.ok_button.isEnabled() and "does not exist" in path.note.text(), "a hint, not an error"


def test_unusable_values_in_the_file_are_shown_and_fixed_by_apply(tmp_path: Path, qtbot) -> None:
    from deck_tray.app import DeckTrayApp
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux

    ini = tmp_path / "s.ini"
    ini.write_text("[notifications]\ngrace_ms=fast\n")
    app = DeckTrayApp(scanner=Scanner(tmp_path / "c", tmp_path / "x"), mux=Tmux(),
                      settings=QSettings(str(ini), QSettings.Format.IniFormat),
                      notification_backends=[], discover_opencode=False)
    qtbot.addWidget(app.window)
    assert app.notifier.grace == pytest.approx(0.3)
    dlg = app.open_settings()
    try:
        assert dlg.problems.isVisibleTo(dlg) and "grace_ms: 'fast'" in dlg.problems.text()
        assert dlg.apply_button.isEnabled(), "Apply stores the values shown"
        click(dlg, QDialogButtonBox.StandardButton.Apply)
        assert not dlg.problems.isVisibleTo(dlg)
        assert "grace_ms=300" in ini.read_text()
    finally:
        dlg.close()


def test_start_shows_the_window_unless_start_hidden(tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    from deck_tray.app import DeckTrayApp
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux
    from deck_tray.ui.tray import Tray

    monkeypatch.setattr(Tray, "available", staticmethod(lambda: True))
    monkeypatch.setattr(Tray, "show", lambda self: None)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)

    def start() -> Any:
        app = DeckTrayApp(scanner=Scanner(tmp_path / "c", tmp_path / "x"), mux=Tmux(), settings=settings,
                          notification_backends=[], discover_opencode=False)
        qtbot.addWidget(app.window)
        app.monitor.start = lambda: None  # no scanning needed here
        app.opencode.start = lambda: None  # nor opencode servers
        app.subagents.start = lambda: None  # type: ignore[method-assign]  # nor sub-agent panes
        app.start()
        return app

    assert not start().window.isVisible(), "in the tray by default"
    settings.setValue(cfg.START_HIDDEN.key, False)
    assert start().window.isVisible()
