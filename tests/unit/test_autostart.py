"""``deck-tray autostart``: the XDG autostart entry, written atomically and idempotently."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deck_tray import APP_ID
from deck_tray.cli import main
from deck_tray.commands import autostart as au

EXE = ["/opt/deck tray/bin/deck-tray"]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg-system"))
    return home


def keys(path: Path) -> dict[str, str]:
    p = configparser.ConfigParser(interpolation=None)
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read_string(path.read_text())
    return dict(p["Desktop Entry"])


def test_enable_writes_the_entry(config: Path) -> None:
    msg = au.enable(EXE)
    path = config / "autostart" / f"{APP_ID}.desktop"
    assert msg == f'Autostart enabled: {path} starts "/opt/deck tray/bin/deck-tray" when you log in.'
    k = keys(path)
    assert k["Exec"] == '"/opt/deck tray/bin/deck-tray"'
    assert k["TryExec"] == "/opt/deck tray/bin/deck-tray"
    assert k["X-GNOME-Autostart-enabled"] == "true"
    assert k["Type"] == "Application" and k["Icon"] == APP_ID and k["Name"] == "deck-tray"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(path)], check=True)


def test_enable_is_idempotent(config: Path) -> None:
    au.enable(EXE)
    path = au.entry_path()
    before = path.stat()
    assert au.enable(EXE).startswith("Autostart is already enabled")
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_status_enabled_disabled_outdated(config: Path) -> None:
    assert au.status(EXE).state is au.State.DISABLED
    au.enable(EXE)
    st = au.status(EXE)
    assert st.state is au.State.ENABLED and st.path == au.entry_path()
    moved = au.status(["/home/u/.local/bin/deck-tray"])
    assert moved.state is au.State.OUTDATED
    assert '"/opt/deck tray/bin/deck-tray"' in moved.detail and "/home/u/.local/bin/deck-tray" in moved.detail
    assert "deck-tray autostart enable" in moved.detail
    au.enable(["/home/u/.local/bin/deck-tray"])  # the fix: enable again rewrites Exec
    assert au.status(["/home/u/.local/bin/deck-tray"]).state is au.State.ENABLED


def test_an_entry_turned_off_in_the_desktop_settings_is_disabled(config: Path) -> None:
    au.enable(EXE)
    path = au.entry_path()
    path.write_text(path.read_text().replace("X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"))
    assert au.status(EXE).state is au.State.DISABLED
    au.enable(EXE)
    assert au.status(EXE).state is au.State.ENABLED


def test_disable_removes_it(config: Path) -> None:
    au.enable(EXE)
    assert au.disable() == f"Autostart disabled: removed {au.entry_path()}."
    assert not au.entry_path().exists()
    assert au.disable().startswith("Autostart is already disabled")
    assert au.status(EXE).state is au.State.DISABLED


def test_a_system_wide_entry_is_hidden_not_deleted(config: Path, tmp_path: Path) -> None:
    system = tmp_path / "xdg-system" / "autostart" / f"{APP_ID}.desktop"
    system.parent.mkdir(parents=True)
    system.write_text(au.render(EXE))
    st = au.status(EXE)
    assert st.state is au.State.ENABLED and st.path == system and "(system-wide)" in st.detail
    assert au.disable().startswith("Autostart disabled:")
    assert system.exists()
    assert keys(au.entry_path())["Hidden"] == "true"
    assert au.status(EXE).state is au.State.DISABLED
    assert au.disable().startswith("Autostart is already disabled")
    au.enable(EXE)  # the user's entry wins over the system one again
    assert au.status(EXE).state is au.State.ENABLED
    assert "Hidden" not in keys(au.entry_path())


def test_config_home_defaults_to_dot_config(tmp_path: Path) -> None:
    assert au.config_home({"HOME": str(tmp_path)}) == tmp_path / ".config"
    assert au.config_home({"HOME": str(tmp_path), "XDG_CONFIG_HOME": "relative/ignored"}) == tmp_path / ".config"


@pytest.mark.parametrize(("arg", "quoted"), [
    ("/usr/bin/deck-tray", "/usr/bin/deck-tray"),
    ("/home/a b/deck-tray", '"/home/a b/deck-tray"'),
    ("50%", "50%%"),
    ('say "$x"', '"say \\\\"\\\\$x\\\\""'),
])
def test_exec_quoting(arg: str, quoted: str) -> None:
    assert au.exec_quote(arg) == quoted


def test_python_m_command() -> None:
    assert au.exec_line(["/usr/bin/python3", "-m", "deck_tray"]) == "/usr/bin/python3 -m deck_tray"


def test_the_command_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["autostart", "status"]) == au.EXIT_DISABLED
    assert main(["autostart", "enable"]) == 0
    assert main(["autostart", "status"]) == au.EXIT_ENABLED
    out = capsys.readouterr().out
    assert "Autostart enabled:" in out and "enabled: " in out
    exec_value = keys(au.entry_path())["Exec"]
    assert exec_value.split()[0].startswith("/")  # an absolute program path
    assert main(["autostart", "disable"]) == 0
    assert main(["autostart", "status"]) == au.EXIT_DISABLED
