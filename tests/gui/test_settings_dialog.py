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
        ["Notifications", "Quiet hours", "opencode", "Window", "Sessions", "Remote hosts"]
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


# -- the "Remote hosts" page (#18) -------------------------------------------------------------

@pytest.fixture
def dialog(tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The dialog over a settings file of its own, on the Remote hosts page (no app: nothing connects)."""
    from deck_tray.services.settings_store import SettingsStore
    from deck_tray.ui.settings_dialog import SettingsDialog

    monkeypatch.delenv("DECK_TRAY_SSH_COMMAND", raising=False)
    dlg = SettingsDialog(SettingsStore(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(dlg)
    dlg.tabs.setCurrentIndex(dlg.pages[cfg.Group.REMOTE])
    dlg.show()
    yield dlg
    dlg.close()


def reread(path: Path) -> QSettings:
    """``path`` as another process reads it (a copy: QSettings caches the files it has open)."""
    copy = path.with_name("copy-" + path.name)
    copy.write_bytes(path.read_bytes())
    return QSettings(str(copy), QSettings.Format.IniFormat)


def type_host(qtbot, editor: Any, name: str, dest: str, enter_in: str | None = "dest") -> None:
    editor.name.clear()
    editor.dest.clear()
    qtbot.keyClicks(editor.name, name)
    qtbot.keyClicks(editor.dest, dest)
    if enter_in:
        qtbot.keyClick(getattr(editor, enter_in), Qt.Key.Key_Return)


def test_hosts_are_added_by_typing_and_enter_and_stored_as_the_cli_stores_them(
        dialog: Any, qtbot, tmp_path: Path) -> None:
    from deck_tray.services import remote

    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Remote hosts"
    row = dialog.rows[cfg.REMOTE_HOSTS.key]
    hosts = row.editor
    assert hosts.dest.placeholderText() == "user@host or a ~/.ssh/config alias"
    assert [hosts.tree.headerItem().text(c) for c in range(3)] == ["Name", "Destination", "Status"]
    type_host(qtbot, hosts, "lab", "me@lab-box")  # Enter in the destination field
    type_host(qtbot, hosts, "gpu-01", "ssh://me@gpu-01:2222", enter_in="name")  # … or in the name field
    assert hosts.hosts() == [("lab", "me@lab-box"), ("gpu-01", "ssh://me@gpu-01:2222")]
    assert hosts.name.text() == hosts.dest.text() == "" and not row.note.isVisible()
    assert dialog.isVisible() and dialog.store.get(cfg.REMOTE_HOSTS) == (), "Enter added; it did not press OK"
    assert [hosts.tree.topLevelItem(i).text(2) for i in range(2)] == ["not connected yet"] * 2
    assert "OK or Apply" in hosts.tree.topLevelItem(0).toolTip(2)
    assert dialog.apply_button.isEnabled()
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert not dialog.isVisible()
    assert dialog.store.qsettings.value("remote/hosts") == ["lab=me@lab-box", "gpu-01=ssh://me@gpu-01:2222"]
    assert remote.load_hosts(reread(tmp_path / "s.ini")) == [
        remote.HostConfig("lab", "me@lab-box"), remote.HostConfig("gpu-01", "ssh://me@gpu-01:2222")]


def test_an_invalid_host_stays_in_the_fields_with_its_reason(dialog: Any, qtbot) -> None:
    from deck_tray.ui.settings_dialog import error_color

    row = dialog.rows[cfg.REMOTE_HOSTS.key]
    hosts = row.editor
    type_host(qtbot, hosts, "my box", "me@box")
    assert (hosts.name.text(), hosts.dest.text()) == ("my box", "me@box"), "the text stays"
    assert hosts.hosts() == []
    assert row.note.isVisible() and "“my box” cannot name a host" in row.note.text()
    assert "not added yet" in row.note.text()
    assert not dialog.ok_button.isEnabled() and not dialog.apply_button.isEnabled()
    assert not dialog.tabs.tabIcon(dialog.pages[cfg.Group.REMOTE]).isNull(), "the page with the problem is marked"
    assert dialog.apply() is False and dialog.store.get(cfg.REMOTE_HOSTS) == ()

    type_host(qtbot, hosts, "box", "-oProxyCommand=sh")
    assert "starts with “-”" in row.note.text() and hosts.hosts() == []
    type_host(qtbot, hosts, "box", "")
    assert "needs an ssh destination" in row.note.text()
    type_host(qtbot, hosts, "box", "me@box")
    assert hosts.hosts() == [("box", "me@box")] and not row.note.isVisible() and dialog.ok_button.isEnabled()
    type_host(qtbot, hosts, "box", "me@other")
    assert "“box” is listed already" in row.note.text() and hosts.hosts() == [("box", "me@box")]
    type_host(qtbot, hosts, "box", "me@box")  # the same host again: nothing to do
    assert hosts.hosts() == [("box", "me@box")] and not row.note.isVisible()

    # a name changed in place (double-click) is checked as well, and marked in the table
    item = hosts.tree.topLevelItem(0)
    item.setText(0, "bad name")
    assert "“bad name” cannot name a host" in row.note.text() and not dialog.ok_button.isEnabled()
    assert "cannot name a host" in item.toolTip(0)
    assert item.foreground(0).color() == error_color(hosts.tree.palette()) == item.foreground(1).color()
    item.setText(0, "box2")
    assert dialog.ok_button.isEnabled() and item.toolTip(0) == ""
    click(dialog, QDialogButtonBox.StandardButton.Apply)
    assert dialog.store.get(cfg.REMOTE_HOSTS) == (("box2", "me@box"),)


def test_remove_and_what_the_cli_stored(tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    from deck_tray.services import remote
    from deck_tray.services.settings_store import SettingsStore
    from deck_tray.ui.settings_dialog import SettingsDialog

    path = tmp_path / "s.ini"
    remote.save_hosts(QSettings(str(path), QSettings.Format.IniFormat),  # deck-tray remote add, twice
                      [remote.HostConfig("lab", "me@lab-box"), remote.HostConfig("pi", "pi@raspberrypi.local"),
                       remote.HostConfig("gpu", "gpu")])
    dlg = SettingsDialog(SettingsStore(reread(path)))
    qtbot.addWidget(dlg)
    hosts = dlg.rows[cfg.REMOTE_HOSTS.key].editor
    assert hosts.hosts() == [("lab", "me@lab-box"), ("pi", "pi@raspberrypi.local"), ("gpu", "gpu")]
    assert not hosts.remove_button.isEnabled() and not dlg.apply_button.isEnabled()
    hosts.tree.topLevelItem(1).setSelected(True)
    assert hosts.remove_button.isEnabled()
    hosts.remove_button.click()
    assert hosts.hosts() == [("lab", "me@lab-box"), ("gpu", "gpu")]
    hosts.tree.setCurrentItem(hosts.tree.topLevelItem(1))
    qtbot.keyClick(hosts.tree, Qt.Key.Key_Delete)
    assert hosts.hosts() == [("lab", "me@lab-box")]
    click(dlg, QDialogButtonBox.StandardButton.Ok)
    assert remote.load_hosts(reread(path.with_name("copy-s.ini"))) == [remote.HostConfig("lab", "me@lab-box")]


def test_a_host_typed_but_not_added_counts_on_ok(dialog: Any, qtbot) -> None:
    hosts = dialog.rows[cfg.REMOTE_HOSTS.key].editor
    type_host(qtbot, hosts, "lab", "me@lab-box")
    type_host(qtbot, hosts, "pi", "pi@raspberrypi.local", enter_in=None)  # typed, no Enter, no Add
    assert hosts.hosts() == [("lab", "me@lab-box")] and dialog.ok_button.isEnabled()
    click(dialog, QDialogButtonBox.StandardButton.Apply)
    assert dialog.store.get(cfg.REMOTE_HOSTS) == (("lab", "me@lab-box"), ("pi", "pi@raspberrypi.local"))
    assert hosts.hosts() == [("lab", "me@lab-box"), ("pi", "pi@raspberrypi.local")], "it joined the table"
    assert hosts.name.text() == hosts.dest.text() == ""
    type_host(qtbot, hosts, "gpu", "", enter_in=None)  # half typed: OK does not drop it silently
    assert not dialog.ok_button.isEnabled()
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.isVisible() and hosts.name.text() == "gpu"


def test_connection_states_in_the_status_column(dialog: Any, qtbot) -> None:
    import time

    from deck_tray.services import remote
    from deck_tray.ui.settings_dialog import dim_color, error_color

    hosts = dialog.rows[cfg.REMOTE_HOSTS.key].editor
    for name, dest in (("lab", "me@lab-box"), ("gpu", "gpu-box"), ("pi", "pi@pi"), ("new", "n@n"), ("up", "up")):
        type_host(qtbot, hosts, name, dest)
    dialog.store.set(cfg.REMOTE_HOSTS, tuple(hosts.hosts()[:3] + hosts.hosts()[4:]))  # all but "new" applied
    dialog.load()
    type_host(qtbot, hosts, "new", "n@n")
    since = time.time() - 60
    unreachable = ("gpu-box cannot be reached: ssh: connect to host gpu-box port 22: No route to host. "
                   "deck-tray keeps trying.")
    login = "ssh could not log in to pi@pi (Permission denied (publickey)). Run “ssh pi@pi” in a terminal."
    dialog.set_remote_statuses([remote.host_json(st) for st in (
        remote.HostStatus("lab", "me@lab-box", remote.HostState.CONNECTED, "3 sessions", since, "0.1.0", 3),
        remote.HostStatus("gpu", "gpu-box", remote.HostState.UNREACHABLE, unreachable, since),
        remote.HostStatus("pi", "pi@pi", remote.HostState.LOGIN_FAILED, login, since),
        remote.HostStatus("up", "up", remote.HostState.CONNECTING, "connecting to up over ssh", since),
    )])
    items = {hosts.tree.topLevelItem(i).text(0): hosts.tree.topLevelItem(i) for i in range(5)}
    assert items["lab"].text(2) == "connected · 3 sessions · deck-tray 0.1.0"
    assert items["gpu"].text(2) == f"unreachable since {time.strftime('%H:%M', time.localtime(since))}"
    assert items["pi"].text(2) == "login failed"
    assert items["up"].text(2) == "connecting…"
    assert items["new"].text(2) == "not connected yet", "added here, not applied"
    assert "No route to host" in items["gpu"].toolTip(2) and "“ssh pi@pi” in a terminal" in items["pi"].toolTip(2)
    assert "me@lab-box" in items["lab"].toolTip(2)
    pal = hosts.tree.palette()
    assert items["gpu"].foreground(2).color() == error_color(pal) == items["pi"].foreground(2).color()
    assert items["up"].foreground(2).color() == dim_color(pal) == items["new"].foreground(2).color()
    assert items["lab"].foreground(2).color() not in (error_color(pal), dim_color(pal))
    # a destination changed here is not what the status is about
    items["lab"].setText(1, "me@lab-box2")
    assert items["lab"].text(2) == "not connected yet"
    items["lab"].setText(1, "me@lab-box")
    assert items["lab"].text(2).startswith("connected")
    # one session, no version yet
    dialog.set_remote_statuses([{"name": "lab", "dest": "me@lab-box", "state": "connected", "sessions": 1}])
    assert items["lab"].text(2) == "connected · 1 session"
    assert items["gpu"].text(2) == "not connected yet", "no longer reported"


def test_the_ssh_command(dialog: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    row = dialog.rows[cfg.REMOTE_SSH_COMMAND.key]
    line = row.editor.line
    assert line.placeholderText() == "ssh" and "Applies the next time deck-tray starts" in row.help.text()
    line.setText("ssh -F '~/.ssh/lab config")
    assert "cannot be split into words" in row.note.text() and not dialog.ok_button.isEnabled()
    line.setText("ssh -F ~/.ssh/lab_config")
    assert dialog.ok_button.isEnabled() and not row.note.isVisible()
    line.setText("no-such-ssh-here -v")
    assert dialog.ok_button.isEnabled() and "“no-such-ssh-here” is not found" in row.note.text(), "a hint only"
    monkeypatch.setenv("DECK_TRAY_SSH_COMMAND", "ssh -F /etc/lab")
    line.setText("ssh -F ~/.ssh/lab_config")
    assert "DECK_TRAY_SSH_COMMAND is set" in row.note.text()
    click(dialog, QDialogButtonBox.StandardButton.Apply)
    assert dialog.store.qsettings.value("remote/ssh_command") == "ssh -F ~/.ssh/lab_config"


def test_enter_in_the_url_field_adds_and_leaves_the_dialog_open(dialog: Any, qtbot) -> None:
    """QLineEdit passes Enter on after returnPressed; the dialog's default button (OK) must not take it."""
    urls = dialog.rows[cfg.OPENCODE_URLS.key].editor
    dialog.tabs.setCurrentIndex(dialog.pages[cfg.Group.OPENCODE])
    qtbot.keyClicks(urls.entry, "127.0.0.1:4096")
    qtbot.keyClick(urls.entry, Qt.Key.Key_Return)
    assert urls.urls() == ["http://127.0.0.1:4096"] and urls.entry.text() == ""
    assert dialog.isVisible() and dialog.store.get(cfg.OPENCODE_URLS) == ()


def test_hosts_applied_in_the_dialog_or_added_by_the_cli_reach_the_running_app(app: Any, qtbot) -> None:
    """OK on the Remote hosts page makes the app follow exactly those hosts; ``deck-tray remote
    add`` (another process writing the file, then poking the socket) does the same and shows in
    an open dialog; the dialog shows each host's connection state."""
    from deck_tray.services.remote import HostConfig, HostState, HostStatus, save_hosts

    dlg = app.open_settings()
    editor = dlg.rows[cfg.REMOTE_HOSTS.key].editor
    type_host(qtbot, editor, "lab", "me@lab.example")
    click(dlg, QDialogButtonBox.StandardButton.Ok)
    assert [h.config for h in app.remotes.hosts.values()] == [HostConfig("lab", "me@lab.example")]
    other = QSettings(app.settings.fileName(), QSettings.Format.IniFormat)  # as the CLI, elsewhere
    save_hosts(other, [HostConfig("lab", "me@lab.example"), HostConfig("gpu", "gpu-box")])
    app._remotes_changed()
    assert list(app.remotes.hosts) == ["lab", "gpu"]
    dlg = app.open_settings()
    assert [name for name, _dest in editor.hosts()] == ["lab", "gpu"], "an open dialog shows the CLI's change"
    host = app.remotes.hosts["gpu"]
    host.status = HostStatus("gpu", "gpu-box", HostState.LOGIN_FAILED, "ssh could not log in to gpu-box", 1.0)
    host.status_changed.emit(host.status)
    items = {editor.tree.topLevelItem(i).text(0): editor.tree.topLevelItem(i) for i in range(2)}
    assert items["gpu"].text(2) == "login failed" and "could not log in" in items["gpu"].toolTip(2)


def test_a_host_removed_before_the_app_connects_needs_no_event_loop(app: Any) -> None:
    from deck_tray.services.remote import save_hosts

    save_hosts(app.settings, [])
    app.store.set(cfg.REMOTE_HOSTS, (("lab", "me@lab"),))
    assert list(app.remotes.hosts) == ["lab"]
    app.store.set(cfg.REMOTE_HOSTS, ())
    assert app.remotes.hosts == {}


def test_remote_history_search_is_a_box_on_the_remote_page(dialog: Any, tmp_path: Path) -> None:
    """#18: "Search the hosts' history too", off until ticked; OK stores it where ``deck-tray
    search`` reads it."""
    from PySide6.QtWidgets import QCheckBox

    row = dialog.rows[cfg.REMOTE_SEARCH_HISTORY.key]
    page = dialog.tabs.widget(dialog.pages[cfg.Group.REMOTE])
    box = row.editor.box
    assert isinstance(box, QCheckBox) and page.isAncestorOf(box) and box.isVisible()
    assert box.text() == "Search the hosts' history too" and not box.isChecked()
    box.setChecked(True)
    assert dialog.apply() is not False
    assert dialog.store.get(cfg.REMOTE_SEARCH_HISTORY) is True
    assert reread(tmp_path / "s.ini").value("remote/search_history") in (True, "true")
