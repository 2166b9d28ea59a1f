"""The settings dialog: one page per group of :mod:`deck_tray.core.settings`, applied live.

The dialog is non-modal (it is shown, never ``exec()``-ed, so the qasync loop and the window
keep running) and built from the settings table: a check box for on/off values, a spin box
for numbers, a time field for times, a text field with a folder picker for paths, an
editable list for opencode server URLs, a table of remote hosts (with how each one's connection
is, :meth:`SettingsDialog.set_remote_statuses`) and a text field for a command line; each help
text is shown under its widget and as its tooltip. Invalid input is marked where it was
typed, keeps the text, and blocks OK / Apply until it is fixed. Apply writes only what was
changed here to the :class:`~deck_tray.services.settings_store.SettingsStore`, whose
``changed`` signal makes the app apply it at once; Cancel drops what was not applied yet;
Restore Defaults puts every field back to its default (applied with OK / Apply).
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTime, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTabWidget,
    QTimeEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override

from deck_tray.core import claude, codex, shortcuts
from deck_tray.core.settings import (
    BY_KEY,
    CLAUDE_DIR,
    CODEX_DIR,
    GLOBAL_SHORTCUT,
    REMOTE_HOSTS,
    REMOTE_SSH_COMMAND,
    Group,
    Kind,
    Setting,
    command_error,
    host_entry_error,
    in_group,
    normalize_server_url,
    path_error,
    server_url_error,
)
from deck_tray.services.remote import HostState
from deck_tray.services.settings_store import SettingsStore

#: Where a path setting points when it is left empty.
PATH_DEFAULTS: dict[str, Callable[[], Path]] = {CLAUDE_DIR.key: claude.config_dir, CODEX_DIR.key: codex.codex_home}
#: Indent of a setting that only matters while the check box above it is on (px).
INDENT = 22
#: What a command setting runs when it is left empty, and the environment variable that overrides it.
COMMAND_DEFAULTS: dict[str, tuple[str, str]] = {REMOTE_SSH_COMMAND.key: ("ssh", "DECK_TRAY_SSH_COMMAND")}
#: The hint in the field of a new remote host's ssh destination.
DEST_PLACEHOLDER = "user@host or a ~/.ssh/config alias"


def _home_short(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home):] if home != "/" and path.startswith(home + "/") else path


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(round(a.red() * (1 - t) + b.red() * t), round(a.green() * (1 - t) + b.green() * t),
                  round(a.blue() * (1 - t) + b.blue() * t))


def _is_dark(pal: QPalette) -> bool:
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def dim_color(pal: QPalette) -> QColor:
    """Secondary text: the text colour 35 % of the way to the background."""
    return _mix(pal.color(QPalette.ColorRole.WindowText), pal.color(QPalette.ColorRole.Window), 0.35)


def faint_color(pal: QPalette) -> QColor:
    """Secondary text of a disabled setting: 60 % of the way to the background."""
    return _mix(pal.color(QPalette.ColorRole.WindowText), pal.color(QPalette.ColorRole.Window), 0.6)


def help_style(pal: QPalette) -> str:
    """Style sheet of help texts: dimmed, fainter while their setting does not apply."""
    return f"QLabel {{ color: {dim_color(pal).name()}; }} QLabel:disabled {{ color: {faint_color(pal).name()}; }}"


def error_color(pal: QPalette) -> QColor:
    """Readable red on the palette's background."""
    return QColor("#ff8a80") if _is_dark(pal) else QColor("#c5221f")


class _Editor(QWidget):
    """Edits one setting. ``value()`` never loses what was typed; it reports an error instead.

    Signals:
        edited(): the user changed something.
    """

    edited = Signal()

    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__()
        self.setting = setting
        self.lay = QHBoxLayout(self)
        self.lay.setContentsMargins(0, 0, 0, 0)

    def value(self) -> tuple[Any, str | None]:
        """``(typed value, None)`` or ``(None, why it is not acceptable)``."""
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        """Show ``value`` (what the user typed is replaced)."""
        raise NotImplementedError

    def hint(self) -> str:
        """A note that does not block applying (e.g. a folder that does not exist yet)."""
        return ""


class _BoolEditor(_Editor):
    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__(setting)
        self.box = QCheckBox(setting.label)
        self.box.toggled.connect(self.edited)
        self.lay.addWidget(self.box)

    def value(self) -> tuple[Any, str | None]:
        return self.box.isChecked(), None

    def set_value(self, value: Any) -> None:
        self.box.setChecked(bool(value))


class _IntEditor(_Editor):
    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__(setting)
        self.spin = QSpinBox()
        self.spin.setRange(setting.minimum, setting.maximum)
        self.spin.setSuffix(setting.suffix)
        if setting.special:
            self.spin.setSpecialValueText(setting.special)
        self.spin.setMinimumWidth(110)
        self.spin.valueChanged.connect(self.edited)
        self.lay.addWidget(self.spin)
        self.lay.addStretch(1)

    def value(self) -> tuple[Any, str | None]:
        return self.spin.value(), None

    def set_value(self, value: Any) -> None:
        self.spin.setValue(int(value))


class _TimeEditor(_Editor):
    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__(setting)
        self.edit = QTimeEdit()
        self.edit.setDisplayFormat("HH:mm")
        self.edit.setMinimumWidth(110)
        self.edit.timeChanged.connect(self.edited)
        self.lay.addWidget(self.edit)
        self.lay.addStretch(1)

    def value(self) -> tuple[Any, str | None]:
        t = self.edit.time()
        return _dt.time(t.hour(), t.minute()), None

    def set_value(self, value: Any) -> None:
        self.edit.setTime(QTime(value.hour, value.minute))


class _PathEditor(_Editor):
    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__(setting)
        self.line = QLineEdit()
        self.line.setClearButtonEnabled(True)
        default = PATH_DEFAULTS.get(setting.key)
        self.default = default() if default is not None else None
        if self.default is not None:
            self.line.setPlaceholderText(f"{self.default}  (default)")
        self.line.textChanged.connect(self.edited)
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        self.lay.addWidget(self.line, 1)
        self.lay.addWidget(self.browse)
        self.picker: QFileDialog | None = None

    def _browse(self) -> None:
        start = self.line.text().strip() or (str(self.default) if self.default else str(Path.home()))
        dlg = QFileDialog(self, f"Choose the {self.setting.label[0].lower()}{self.setting.label[1:]}",
                          str(Path(start).expanduser()))
        dlg.setFileMode(QFileDialog.FileMode.Directory)
        dlg.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dlg.fileSelected.connect(self.line.setText)
        dlg.finished.connect(lambda _r: setattr(self, "picker", None))
        self.picker = dlg
        dlg.open()

    def value(self) -> tuple[Any, str | None]:
        text = self.line.text().strip()
        err = path_error(text)
        return (None, err) if err else (text, None)

    def set_value(self, value: Any) -> None:
        self.line.setText(str(value))

    def hint(self) -> str:
        text = self.line.text().strip()
        if text and not path_error(text) and not Path(text).expanduser().is_dir():
            return "This folder does not exist (yet); deck-tray picks it up once it does."
        return ""


class _AddField(QLineEdit):
    """A field where Enter adds what was typed (``returnPressed``), and only that: QLineEdit passes
    the key on, and the dialog's default button (OK) would take it too and close the dialog."""

    @override
    def keyPressEvent(self, event: QKeyEvent) -> None:
        super().keyPressEvent(event)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()


class _Roomy(QStyledItemDelegate):
    """Cells ``extra`` px wider than their text, so columns sized to their contents do not touch.

    Args:
        extra: px added to each cell's width.
        parent: the view.
    """

    def __init__(self, extra: int, parent: QWidget) -> None:
        super().__init__(parent)
        self.extra = extra

    @override
    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width() + self.extra, size.height())


class _HostTable(QTreeWidget):
    """The hosts table; Delete asks for the selected rows to be removed.

    Signals:
        delete_pressed(): Delete was pressed (not while a cell is being edited).
    """

    delete_pressed = Signal()

    @override
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Delete and self.state() is not QAbstractItemView.State.EditingState:
            self.delete_pressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)


def _add_remove_row(fields: list[tuple[QWidget, int]], add: Callable[[], None],
                    remove: Callable[[], None]) -> tuple[QPushButton, QPushButton, QHBoxLayout]:
    """The entry fields (each with its stretch) of a list editor, then Add and Remove (disabled
    until something is selected): ``(add button, remove button, the row)``."""
    add_button = QPushButton("Add")
    add_button.clicked.connect(add)
    remove_button = QPushButton("Remove")
    remove_button.setEnabled(False)
    remove_button.clicked.connect(remove)
    row = QHBoxLayout()
    for widget, stretch in fields:
        row.addWidget(widget, stretch)
    row.addWidget(add_button)
    row.addWidget(remove_button)
    return add_button, remove_button, row


class _UrlsEditor(_Editor):
    """An editable list of server URLs, and a field to add one (Enter or Add)."""

    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__(setting)
        col = QVBoxLayout()
        col.setContentsMargins(0, 0, 0, 0)
        self.list = QListWidget()
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setMinimumHeight(84)
        self.list.setMaximumHeight(120)
        self.list.itemChanged.connect(self._changed)
        self.list.itemSelectionChanged.connect(self._selection)
        self.entry = _AddField()
        self.entry.setPlaceholderText("http://127.0.0.1:4096")
        self.entry.setClearButtonEnabled(True)
        self.entry.textChanged.connect(self.edited)
        self.entry.returnPressed.connect(self.add)
        self.add_button, self.remove_button, row = _add_remove_row([(self.entry, 1)], self.add, self.remove_selected)
        col.addWidget(self.list)
        col.addLayout(row)
        self.lay.addLayout(col, 1)
        self.entry_error: str | None = None

    def urls(self) -> list[str]:
        """The list's lines as typed."""
        return [self.list.item(i).text() for i in range(self.list.count())]

    def add(self) -> None:
        """Move the entry's URL into the list (it stays in the field when it is invalid)."""
        text = self.entry.text().strip()
        if not text:
            return
        err = server_url_error(text)
        if err:
            self.entry_error = err
            self.edited.emit()
            return
        url = normalize_server_url(text)
        if url not in [normalize_server_url(u) for u in self.urls() if not server_url_error(u)]:
            self.list.addItem(self._item(url))
        self.entry.clear()
        self.edited.emit()

    def remove_selected(self) -> None:
        """Drop the selected lines."""
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self.edited.emit()

    def _item(self, text: str) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        return item

    def _changed(self, _item: QListWidgetItem) -> None:
        self.edited.emit()

    def _selection(self) -> None:
        self.remove_button.setEnabled(bool(self.list.selectedItems()))

    def value(self) -> tuple[Any, str | None]:
        out: list[str] = []
        first: str | None = None
        bad = QColor(error_color(self.palette()))
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            item = self.list.item(i)
            err = server_url_error(item.text())
            item.setForeground(bad if err else self.palette().color(QPalette.ColorRole.Text))
            item.setToolTip(err or "")
            if err:
                first = first or err
            elif (u := normalize_server_url(item.text())) not in out:
                out.append(u)
        self.list.blockSignals(False)
        text = self.entry.text().strip()
        if text:  # typed but not added yet: it counts (OK must not drop it)
            err = server_url_error(text)
            if err:
                first = first or f"{err} (not added yet)"
            elif (u := normalize_server_url(text)) not in out:
                out.append(u)
        self.entry_error = None
        return (None, first) if first else (tuple(out), None)

    def set_value(self, value: Any) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for u in value:
            self.list.addItem(self._item(u))
        self.list.blockSignals(False)
        self.entry.clear()
        self._selection()


def _clock(since: float, now: float | None = None) -> str:
    """``14:02`` today, else ``3 Dec 14:02`` (local time)."""
    t, today = time.localtime(since), time.localtime(time.time() if now is None else now)
    hm = time.strftime("%H:%M", t)
    return hm if t[:3] == today[:3] else f"{t.tm_mday} {time.strftime('%b', t)} {hm}"


def host_status_text(status: Mapping[str, Any], now: float | None = None) -> tuple[str, str, str]:
    """How a remote host's connection reads in the hosts table.

    Args:
        status: ``{"name", "dest", "state", "detail", "since", "version", "sessions"}`` as
            :func:`deck_tray.services.remote.host_json` gives it (``state`` is a
            :class:`~deck_tray.services.remote.HostState` value, ``since`` POSIX seconds); a
            missing or odd field is shown as unknown, never raises.
        now: POSIX seconds of "today" for the date of ``since`` (default: now).

    Returns:
        ``(text, tone, tooltip)``: ``"connected · 3 sessions · deck-tray 0.1.0"``,
        ``"unreachable since 14:02"``, ``"login failed"``…; the tone is ``"normal"``, ``"dim"``
        (connecting, stopped) or ``"error"`` (every failure); the tooltip is what happened and
        what to do (the status's ``detail``).
    """
    state = str(status.get("state") or "")
    detail = str(status.get("detail") or "")
    dest = str(status.get("dest") or "")
    try:
        since = float(status.get("since") or 0.0)
    except (TypeError, ValueError):
        since = 0.0
    at = f" since {_clock(since, now)}" if since > 0 else ""
    if state == HostState.CONNECTED.value:
        try:
            n = int(status.get("sessions") or 0)
        except (TypeError, ValueError):
            n = 0
        version = str(status.get("version") or "")
        text = " · ".join(["connected", f"{n} session{'' if n == 1 else 's'}",
                           *([f"deck-tray {version}"] if version else [])])
        return text, "normal", f"Connected to {dest or 'the host'} over ssh{at}."
    if state == HostState.CONNECTING.value:
        return "connecting…", "dim", detail
    if state == HostState.STOPPED.value:
        return "stopped", "dim", detail
    if state == HostState.UNREACHABLE.value:
        return f"unreachable{at}", "error", detail
    return state or "unknown", "error", detail


def _tip(text: str) -> str:
    """A tooltip that wraps (Qt wraps rich text only), or ``""``."""
    return f"<p>{html.escape(text, quote=False)}</p>" if text else ""


class _HostsEditor(_Editor):
    """The remote hosts: a table (name, ssh destination, how the connection is), a field for the
    name and one for the destination of a host to add (Enter or Add), and Remove (or Delete).
    A name or destination in the table is edited in place with a double-click."""

    NAME, DEST, STATUS = range(3)

    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__(setting)
        col = QVBoxLayout()
        col.setContentsMargins(0, 0, 0, 0)
        self.tree = _HostTable()
        self.tree.setAccessibleName("Remote hosts")
        self.tree.setHeaderLabels(["Name", "Destination", "Status"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAllColumnsShowFocus(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # status is not editable
        self.tree.setMinimumHeight(110)
        self.tree.setMaximumHeight(150)
        # name and status as wide as their text; the destination takes the rest (shortened in the middle)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setItemDelegateForColumn(self.NAME, _Roomy(10, self.tree))
        self.tree.setItemDelegateForColumn(self.STATUS, _Roomy(6, self.tree))
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(self.NAME, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(self.DEST, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(self.STATUS, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemChanged.connect(self._changed)
        self.tree.itemSelectionChanged.connect(self._selection)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.tree.delete_pressed.connect(self.remove_selected)
        self.name = _AddField()
        self.name.setPlaceholderText("name, e.g. lab")
        self.name.setAccessibleName("Name of the host to add")
        self.dest = _AddField()
        self.dest.setPlaceholderText(DEST_PLACEHOLDER)
        self.dest.setAccessibleName("ssh destination of the host to add")
        for field in (self.name, self.dest):
            field.setClearButtonEnabled(True)
            field.textChanged.connect(self.edited)
            field.returnPressed.connect(self.add)
        self.add_button, self.remove_button, row = _add_remove_row([(self.name, 2), (self.dest, 5)], self.add,
                                                                   self.remove_selected)
        col.addWidget(self.tree)
        col.addLayout(row)
        self.lay.addLayout(col, 1)
        #: The running app's view of each host, by name (:meth:`set_statuses`).
        self.statuses: dict[str, Mapping[str, Any]] = {}
        #: Whether the app has said anything about the hosts yet.
        self.reported = False
        #: The hosts as stored (the last value shown): others are not connected yet.
        self.stored: set[tuple[str, str]] = set()

    def items(self) -> list[QTreeWidgetItem]:
        """The table's rows."""
        return [it for i in range(self.tree.topLevelItemCount()) if (it := self.tree.topLevelItem(i)) is not None]

    def hosts(self) -> list[tuple[str, str]]:
        """The table's ``(name, destination)`` rows as typed (trimmed)."""
        return [self._row(item) for item in self.items()]

    def _row(self, item: QTreeWidgetItem) -> tuple[str, str]:
        return item.text(self.NAME).strip(), item.text(self.DEST).strip()

    @staticmethod
    def _entry_error(name: str, dest: str, taken: Mapping[str, str]) -> str | None:
        """Why the typed host cannot join ``taken`` (``{name: dest}``); the same host again is fine."""
        err = host_entry_error(name, dest)
        if err is None and taken.get(name, dest) != dest:
            err = f"a host named “{name}” is listed already (double-click its destination to change it)"
        return err

    def add(self) -> None:
        """Move the typed host into the table (it stays in the fields when it is invalid, and the
        reason is shown under them)."""
        name, dest = self.name.text().strip(), self.dest.text().strip()
        if not name and not dest:
            return
        taken = dict(self.hosts())
        if self._entry_error(name, dest, taken) is None:
            if name not in taken:
                self.tree.addTopLevelItem(self._item(name, dest))
            refocus = self.dest.hasFocus()
            self.name.clear()
            self.dest.clear()
            if refocus:
                self.name.setFocus()
        self.edited.emit()

    def remove_selected(self) -> None:
        """Drop the selected hosts."""
        for item in self.tree.selectedItems():
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
        self.edited.emit()

    def set_statuses(self, statuses: Sequence[Mapping[str, Any]]) -> None:
        """Show each host's connection (shaped as :func:`deck_tray.services.remote.host_json`)."""
        self.statuses = {str(st.get("name")): st for st in statuses}
        self.reported = True
        self.tree.blockSignals(True)
        try:
            self._show_statuses()
        finally:
            self.tree.blockSignals(False)

    def _item(self, name: str, dest: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([name, dest, ""])
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        return item

    def _double_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        if column in (self.NAME, self.DEST):
            self.tree.editItem(item, column)

    def _changed(self, _item: QTreeWidgetItem, column: int) -> None:
        if column != self.STATUS:
            self.edited.emit()

    def _selection(self) -> None:
        self.remove_button.setEnabled(bool(self.tree.selectedItems()))

    def _show_statuses(self) -> None:
        """Fill the status column (call with the tree's signals blocked)."""
        pal = self.tree.palette()
        colors = {"normal": pal.color(QPalette.ColorRole.Text), "dim": dim_color(pal), "error": error_color(pal)}
        for item in self.items():
            name, dest = self._row(item)
            st = self.statuses.get(name)
            if (name, dest) not in self.stored:
                text, tone, tip = "not connected yet", "dim", "deck-tray connects to it once you press OK or Apply."
            elif st is not None and str(st.get("dest") or dest) == dest:
                text, tone, tip = host_status_text(st)
            elif self.reported:
                text, tone, tip = "not connected yet", "dim", "deck-tray has not connected to it yet."
            else:
                text, tone, tip = "", "normal", ""
            item.setText(self.STATUS, text)
            item.setForeground(self.STATUS, colors[tone])
            item.setToolTip(self.STATUS, _tip(tip))

    def value(self) -> tuple[Any, str | None]:
        out: dict[str, str] = {}
        first: str | None = None
        pal = self.tree.palette()
        self.tree.blockSignals(True)
        try:
            for item in self.items():
                name, dest = self._row(item)
                err = host_entry_error(name, dest)
                if err is None and name in out:
                    err = f"two hosts are named “{name}”"
                for column in (self.NAME, self.DEST):
                    item.setForeground(column, error_color(pal) if err else pal.color(QPalette.ColorRole.Text))
                item.setToolTip(self.NAME, _tip(err or ""))
                item.setToolTip(self.DEST, _tip(err or dest))  # the whole of a shortened one
                if err:
                    first = first or err
                else:
                    out[name] = dest
            self._show_statuses()
        finally:
            self.tree.blockSignals(False)
        name, dest = self.name.text().strip(), self.dest.text().strip()
        if name or dest:  # typed but not added yet: it counts (OK must not drop it)
            err = self._entry_error(name, dest, out)
            if err:
                first = first or f"{err} (not added yet)"
            else:
                out[name] = dest
        return (None, first) if first else (tuple(out.items()), None)

    def set_value(self, value: Any) -> None:
        self.tree.blockSignals(True)
        try:
            self.tree.clear()
            for name, dest in value:
                self.tree.addTopLevelItem(self._item(name, dest))
            self.stored = {(str(n), str(d)) for n, d in value}
            self._show_statuses()
        finally:
            self.tree.blockSignals(False)
        self.name.clear()
        self.dest.clear()
        self._selection()


class _CommandEditor(_Editor):
    """A command line (split as a shell would, never run through one)."""

    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__(setting)
        self.default, self.env = COMMAND_DEFAULTS.get(setting.key, ("", ""))
        self.line = QLineEdit()
        self.line.setPlaceholderText(self.default)
        self.line.setClearButtonEnabled(True)
        self.line.textChanged.connect(self.edited)
        self.lay.addWidget(self.line, 1)

    def value(self) -> tuple[Any, str | None]:
        text = self.line.text().strip()
        err = command_error(text)
        return (None, err) if err else (text, None)

    def set_value(self, value: Any) -> None:
        self.line.setText(str(value))

    def hint(self) -> str:
        override = os.environ.get(self.env, "").strip() if self.env else ""
        if override:
            return f"{self.env} is set in deck-tray's environment (“{override}”), so that is used instead."
        text = self.line.text().strip() or self.default
        words = shlex.split(text) if text and command_error(text) is None else []
        if words and not shutil.which(os.path.expanduser(words[0])):
            return f"“{words[0]}” is not found on deck-tray's PATH."
        return ""


class _ShortcutEditor(_Editor):
    """A key to press (Qt's key sequence editor, one key), a button that fills in the suggested
    one, and under it what the desktop made of it (:meth:`SettingsDialog.set_shortcut_status`)."""

    def __init__(self, setting: Setting[Any]) -> None:
        super().__init__(setting)
        self.edit = QKeySequenceEdit()
        self.edit.setMaximumSequenceLength(1)
        self.edit.setClearButtonEnabled(True)
        self.edit.setMinimumWidth(160)
        self.edit.keySequenceChanged.connect(lambda _seq: self.edited.emit())
        self.suggest = QPushButton(f"Use {shortcuts.SUGGESTED}")
        self.suggest.clicked.connect(lambda: self.edit.setKeySequence(QKeySequence(shortcuts.SUGGESTED)))
        self.lay.addWidget(self.edit)
        self.lay.addWidget(self.suggest)
        self.lay.addStretch(1)
        #: What the running app's shortcut service says (which way, what was granted).
        self.status = ""

    def value(self) -> tuple[Any, str | None]:
        text = self.edit.keySequence().toString(QKeySequence.SequenceFormat.PortableText)
        if not text:
            return "", None
        try:
            return shortcuts.parse(text).text(), None
        except ValueError as exc:
            return None, str(exc)

    def set_value(self, value: Any) -> None:
        self.edit.setKeySequence(QKeySequence(str(value)))

    def hint(self) -> str:
        return self.status


_EDITORS: dict[Kind, type[_Editor]] = {
    Kind.BOOL: _BoolEditor, Kind.INT: _IntEditor, Kind.TIME: _TimeEditor, Kind.PATH: _PathEditor,
    Kind.URLS: _UrlsEditor, Kind.SHORTCUT: _ShortcutEditor, Kind.HOSTS: _HostsEditor, Kind.COMMAND: _CommandEditor,
}


class _Row:
    """An editor with its label, help text and the line that shows what is wrong."""

    def __init__(self, setting: Setting[Any]) -> None:
        self.setting = setting
        self.editor = _EDITORS[setting.kind](setting)
        self.editor.setToolTip(setting.help)
        self.label = QLabel(f"{setting.label}:") if setting.kind is not Kind.BOOL else None
        if self.label is not None:
            self.label.setToolTip(setting.help)
            self.label.setBuddy(self.editor)
        text = setting.help + (" Applies the next time deck-tray starts." if setting.on_restart else "")
        self.help = QLabel(text)
        self.help.setWordWrap(True)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.hide()
        self.error: str | None = None

    def widgets(self) -> list[QWidget]:
        """Everything the row shows."""
        return [w for w in (self.label, self.editor, self.help, self.note) if w is not None]

    def check(self) -> tuple[Any, str | None]:
        """Read the editor and show its error (or non-blocking hint) under it."""
        value, err = self.editor.value()
        self.error = err
        hint = "" if err else self.editor.hint()
        pal = self.note.palette()
        self.note.setStyleSheet(f"color: {error_color(pal).name()}; font-weight: 600;" if err else "")
        self.note.setText(f"⚠ {err}" if err else f"ℹ {hint}")
        self.note.setVisible(bool(err or hint))
        return value, err

    def set_enabled(self, on: bool) -> None:
        for w in self.widgets():
            w.setEnabled(on)


class SettingsDialog(QDialog):
    """The settings, one tab per :class:`~deck_tray.core.settings.Group`.

    Args:
        store: where values are read from and applied to.
        parent: the window it belongs to (it stays above it), or None.

    Signals:
        applied(list[str]): the keys Apply / OK just changed in the store.
    """

    applied = Signal(object)

    def __init__(self, store: SettingsStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("deck-tray settings")
        self.setModal(False)
        self.rows: dict[str, _Row] = {}
        self.pages: dict[Group, int] = {}
        self._loaded: dict[str, Any] = {}
        self._loading = False

        outer = QVBoxLayout(self)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setTextFormat(Qt.TextFormat.PlainText)
        self.problems.setObjectName("problems")
        self.problems.hide()
        outer.addWidget(self.problems)
        self.tabs = QTabWidget()
        for group in Group:
            self.pages[group] = self.tabs.addTab(self._page(group), group.value)
        outer.addWidget(self.tabs, 1)
        where = QLabel(f"Saved in {_home_short(store.path)}. Passwords are kept in your keyring, not here.")
        where.setWordWrap(True)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where.setStyleSheet(help_style(self.palette()))
        outer.addWidget(where)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel | QDialogButtonBox.StandardButton.RestoreDefaults)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.defaults_button = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        self.buttons.clicked.connect(self._clicked)
        outer.addWidget(self.buttons)
        store.changed.connect(self._store_changed)
        self.resize(660, 540)
        self.load()

    # -- building ----------------------------------------------------------------------
    def _page(self, group: Group) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(14, 12, 14, 12)
        intro = QLabel(group.description)
        intro.setWordWrap(True)
        intro.setStyleSheet(f"color: {dim_color(self.palette()).name()}; padding-bottom: 6px;")
        v.addWidget(intro)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        r = 0
        for setting in in_group(group):
            row = self.rows[setting.key] = _Row(setting)
            row.editor.edited.connect(lambda key=setting.key: self._edited(key))
            row.help.setStyleSheet(help_style(self.palette()))
            indent = INDENT if setting.requires and BY_KEY[setting.requires].group is group else 0
            if r:
                grid.setRowMinimumHeight(r, 10)  # space between settings
                r += 1
            if row.label is None:  # a check box spans both columns; its text is the label
                grid.addWidget(row.editor, r, 0, 1, 2)
                row.editor.setContentsMargins(indent, 0, 0, 0)
                box_text = self._box_text_offset() + indent
                row.help.setContentsMargins(box_text, 0, 0, 0)
                row.note.setContentsMargins(box_text, 0, 0, 0)
                grid.addWidget(row.note, r + 1, 0, 1, 2)
                grid.addWidget(row.help, r + 2, 0, 1, 2)
            else:
                row.label.setContentsMargins(indent, 0, 0, 0)
                top = setting.kind in (Kind.URLS, Kind.HOSTS)  # a list: the label beside its first line
                grid.addWidget(row.label, r, 0, Qt.AlignmentFlag.AlignLeft | (
                    Qt.AlignmentFlag.AlignTop if top else Qt.AlignmentFlag.AlignVCenter))
                grid.addWidget(row.editor, r, 1)
                grid.addWidget(row.note, r + 1, 1)
                grid.addWidget(row.help, r + 2, 1)
            r += 3
        v.addLayout(grid)
        v.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(page)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return scroll

    def _box_text_offset(self) -> int:
        """Where a check box's text starts, so its help text lines up under it (px)."""
        style = self.style()
        return (style.pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth)
                + style.pixelMetric(QStyle.PixelMetric.PM_CheckBoxLabelSpacing))

    # -- showing -----------------------------------------------------------------------
    def present(self) -> None:
        """Show the dialog (non-modal) with the stored values, or raise it if it is open."""
        if not self.isVisible():
            self.load()
        self.show()
        self.raise_()
        self.activateWindow()

    def load(self) -> None:
        """Fill every field from the store (drops what was not applied)."""
        self._loaded = self.store.values()
        self._loading = True
        try:
            for key, row in self.rows.items():
                row.editor.set_value(self._loaded[key])
        finally:
            self._loading = False
        self._show_problems()
        self._refresh()

    def _show_problems(self) -> None:
        problems = list(self.store.problems.values())
        self.problems.setVisible(bool(problems))
        self.problems.setText("Some values in the settings file could not be used. The fields show what "
                              "deck-tray uses instead; Apply stores them.\n• " + "\n• ".join(problems))
        self.problems.setStyleSheet(
            f"#problems {{ color: {error_color(self.palette()).name()}; padding: 6px 8px; "
            f"border: 1px solid {error_color(self.palette()).name()}; border-radius: 3px; }}")

    # -- editing -----------------------------------------------------------------------
    def _edited(self, _key: str) -> None:
        if not self._loading:
            self._refresh()

    def _refresh(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Check every field; show errors; enable OK / Apply; grey out what does not apply."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for key, row in self.rows.items():
            value, err = row.check()
            if err:
                errors[key] = err
            else:
                values[key] = value
        for row in self.rows.values():
            need = row.setting.requires
            row.set_enabled(not need or bool(values.get(need, True)))
        style = self.style()
        for group, index in self.pages.items():
            bad = any(k in errors for k in (s.key for s in in_group(group)))
            self.tabs.setTabIcon(index, style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
                                 if bad else QIcon())
        dirty = any(values[k] != self._loaded[k] or k in self.store.problems for k in values)
        self.ok_button.setEnabled(not errors)
        self.apply_button.setEnabled(dirty and not errors)
        return values, errors

    def changes(self) -> dict[str, Any]:
        """``{key: value}`` of the valid fields that differ from what was loaded."""
        values, _errors = self._refresh()
        return {k: v for k, v in values.items() if v != self._loaded[k] or k in self.store.problems}

    def apply(self) -> bool:
        """Store what was changed here; False (nothing stored) while a field is invalid.

        Only the values edited in the dialog are written, so a setting changed elsewhere
        meanwhile (the window's pin button) is not undone.
        """
        values, errors = self._refresh()
        if errors:
            first = next(iter(errors))
            self.tabs.setCurrentIndex(self.pages[BY_KEY[first].group])
            return False
        changed = [k for k, v in values.items() if v != self._loaded[k] or k in self.store.problems]
        for key in changed:
            self.store.set(BY_KEY[key], values[key])  # also rewrites a value the file had unusable
        self._loaded.update({k: values[k] for k in changed})
        for key in changed:
            self._loading = True
            try:
                self.rows[key].editor.set_value(self._loaded[key])  # e.g. a typed URL joins the list
            finally:
                self._loading = False
        self._show_problems()
        self._refresh()
        if changed:
            self.applied.emit(changed)
        return True

    def restore_defaults(self) -> None:
        """Put every field back to its default (stored with OK / Apply)."""
        self._loading = True
        try:
            for key, row in self.rows.items():
                row.editor.set_value(BY_KEY[key].default)
        finally:
            self._loading = False
        self._refresh()

    def set_shortcut_status(self, text: str) -> None:
        """Show under the global shortcut what the desktop made of it: which way it is bound and
        the trigger the desktop granted, or why there is none and what to do instead."""
        row = self.rows.get(GLOBAL_SHORTCUT.key)
        if row is not None and isinstance(row.editor, _ShortcutEditor):
            row.editor.status = text
            row.check()

    def set_remote_statuses(self, statuses: Sequence[Mapping[str, Any]]) -> None:
        """Show how each remote host's connection is, in the hosts table's status column.

        Args:
            statuses: one ``{"name", "dest", "state", "detail", "since", "version", "sessions"}``
                per host, as :func:`deck_tray.services.remote.host_json` gives it (the running
                app's ``Remotes.statuses()``). The text is "connected · 3 sessions · deck-tray
                0.1.0", "unreachable since 14:02", "login failed"…, dimmed while connecting and
                in the error colour for a failure, with the detail (what to do) as its tooltip.
                A host added in the dialog (or whose destination was changed) and not applied
                yet reads "not connected yet".
        """
        row = self.rows.get(REMOTE_HOSTS.key)
        if row is not None and isinstance(row.editor, _HostsEditor):
            row.editor.set_statuses(statuses)

    def _store_changed(self, key: str, value: object) -> None:
        """A value changed elsewhere: show it unless the user is editing that field."""
        row = self.rows.get(key)
        if row is None:
            return
        current, err = row.editor.value()
        if err is None and current == self._loaded.get(key):
            self._loading = True
            try:
                row.editor.set_value(value)
            finally:
                self._loading = False
        self._loaded[key] = value
        self._refresh()

    def _clicked(self, button: QAbstractButton) -> None:
        role = self.buttons.buttonRole(button)
        if button is self.defaults_button:
            self.restore_defaults()
        elif button is self.apply_button:
            self.apply()
        elif role == QDialogButtonBox.ButtonRole.AcceptRole:
            if self.apply():
                self.accept()
        elif role == QDialogButtonBox.ButtonRole.RejectRole:
            self.reject()
