"""``deck-tray autostart enable|disable|status``: start deck-tray when the desktop session starts.

Writes the XDG autostart entry ``$XDG_CONFIG_HOME/autostart/<APP_ID>.desktop`` (default
``~/.config/autostart``): the packaged ``<APP_ID>.desktop`` with ``Exec`` / ``TryExec`` set to
the absolute path of this deck-tray and ``X-GNOME-Autostart-enabled=true``. Writes are atomic
(a temporary file in the same folder, fsync, rename) and idempotent (an identical entry is
left alone). ``disable`` removes the entry; when a system-wide entry exists in
``$XDG_CONFIG_DIRS/autostart`` (a distribution package), it writes a ``Hidden=true`` entry
instead, which is how the spec turns that one off for this user.

``status`` prints ``enabled``, ``disabled`` or ``outdated`` (the entry starts another
deck-tray than this one, e.g. after a reinstall elsewhere) with the path and what to do, and
exits 0 when enabled, 1 when disabled, 3 when outdated.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import enum
import importlib.resources
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deck_tray import APP_ID

EXIT_ENABLED, EXIT_DISABLED, EXIT_OUTDATED = 0, 1, 3
HEADER = "# Written by `deck-tray autostart enable`; `deck-tray autostart disable` removes it.\n"
#: Characters that make an Exec argument need quoting (Desktop Entry spec, "The Exec key").
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class State(enum.Enum):
    """What ``status`` reports."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    OUTDATED = "outdated"


@dataclass(frozen=True)
class Status:
    """The autostart state, where it comes from, and a sentence for people."""

    state: State
    path: Path
    detail: str


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """``autostart {enable,disable,status}``."""
    p = sub.add_parser("autostart", parents=parents, help="start deck-tray with the desktop session (XDG autostart)",
                       description="Write or remove the XDG autostart entry "
                                   f"($XDG_CONFIG_HOME/autostart/{APP_ID}.desktop). 'status' exits 0 when enabled, "
                                   "1 when disabled, 3 when the entry starts another deck-tray than this one.")
    p.add_argument("action", choices=["enable", "disable", "status"])
    p.set_defaults(func=run)


# -- paths and content ------------------------------------------------------------------------

def config_home(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME`` when set and absolute, else ``~/.config``."""
    e = os.environ if env is None else env
    value = e.get("XDG_CONFIG_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path(e.get("HOME") or os.path.expanduser("~")) / ".config"


def entry_path(env: Mapping[str, str] | None = None) -> Path:
    """The user's autostart entry: ``$XDG_CONFIG_HOME/autostart/<APP_ID>.desktop``."""
    return config_home(env) / "autostart" / f"{APP_ID}.desktop"


def system_entries(env: Mapping[str, str] | None = None) -> list[Path]:
    """System-wide autostart entries for deck-tray in ``$XDG_CONFIG_DIRS`` (default ``/etc/xdg``)."""
    e = os.environ if env is None else env
    dirs = [d for d in (e.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if d and os.path.isabs(d)]
    return [p for d in dirs if (p := Path(d) / "autostart" / f"{APP_ID}.desktop").is_file()]


def command() -> list[str]:
    """The absolute command that runs this deck-tray (the same one the agent hooks use)."""
    try:
        from deck_tray.commands.hooks_setup import deck_tray_executable
    except ImportError:  # pragma: no cover - an older hooks module
        found = shutil.which("deck-tray")
        return [os.path.abspath(found)] if found else [sys.executable, "-m", "deck_tray"]
    return list(deck_tray_executable())


def exec_quote(arg: str) -> str:
    """One Exec argument, quoted and escaped as the Desktop Entry spec wants (``%`` doubled too)."""
    if arg and not (_RESERVED & set(arg)):
        out = arg
    else:
        out = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    # The value is then a "string": its own escapes apply on top (a backslash is written \\).
    return out.replace("\\", "\\\\").replace("%", "%%")


def exec_line(cmd: Sequence[str]) -> str:
    """The ``Exec`` value for ``cmd``."""
    return " ".join(exec_quote(a) for a in cmd)


def packaged_entry() -> str:
    """The application's ``.desktop`` file as shipped in the package."""
    return (importlib.resources.files("deck_tray.resources") / f"{APP_ID}.desktop").read_text(encoding="utf-8")


def render(cmd: Sequence[str], base: str | None = None) -> str:
    """The autostart entry: ``base`` (the packaged entry) with this deck-tray's absolute
    ``Exec`` / ``TryExec`` and ``X-GNOME-Autostart-enabled=true``."""
    base = packaged_entry() if base is None else base
    wanted = {"Exec": exec_line(cmd), "TryExec": cmd[0].replace("\\", "\\\\")}
    out = [HEADER.rstrip("\n")]
    section = ""

    def close_main() -> None:
        out.extend(f"{k}={v}" for k, v in wanted.items())  # keys the base did not have
        wanted.clear()
        out.append("X-GNOME-Autostart-enabled=true")

    for line in base.rstrip("\n").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            if section == "[Desktop Entry]":
                close_main()
            section = stripped
        elif section == "[Desktop Entry]" and "=" in stripped and not stripped.startswith("#"):
            key = stripped.split("=", 1)[0].strip()
            if key in ("Hidden", "X-GNOME-Autostart-enabled"):
                continue
            if key in ("Exec", "TryExec"):
                line = f"{key}={wanted.pop(key)}"
        out.append(line)
    if section == "[Desktop Entry]":
        close_main()
    return "\n".join(out) + "\n"


def read_entry(path: Path) -> dict[str, str] | None:
    """The ``[Desktop Entry]`` keys of ``path`` (case kept), or None when it cannot be read."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",),
                                       comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    if not parser.has_section("Desktop Entry"):
        return None
    return dict(parser["Desktop Entry"])


def _turned_off(keys: Mapping[str, str]) -> bool:
    return keys.get("Hidden", "").lower() == "true" or keys.get("X-GNOME-Autostart-enabled", "").lower() == "false"


# -- actions ----------------------------------------------------------------------------------

def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (mode 0644); the folder is created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def enable(cmd: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> str:
    """Write the entry (or leave an identical one alone); the sentence to print."""
    cmd = command() if cmd is None else list(cmd)
    path = entry_path(env)
    text = render(cmd)
    try:
        same = path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        same = False
    if same:
        return f"Autostart is already enabled: {path} starts {exec_line(cmd)}"
    atomic_write(path, text)
    return f"Autostart enabled: {path} starts {exec_line(cmd)} when you log in."


def disable(env: Mapping[str, str] | None = None) -> str:
    """Remove the entry (or write ``Hidden=true`` over a system-wide one); the sentence to print."""
    path = entry_path(env)
    system = system_entries(env)
    if system:
        keys = read_entry(path) if path.exists() else None
        if keys is not None and keys.get("Hidden", "").lower() == "true":
            return f"Autostart is already disabled ({path} hides {system[0]})."
        atomic_write(path, f"{HEADER}[Desktop Entry]\nType=Application\nName=deck-tray\nHidden=true\n")
        return f"Autostart disabled: {path} hides the system-wide {system[0]}."
    try:
        path.unlink()
    except FileNotFoundError:
        return f"Autostart is already disabled ({path} does not exist)."
    return f"Autostart disabled: removed {path}."


def status(cmd: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Status:
    """Whether the desktop will start deck-tray at login, and whether it starts this one."""
    cmd = command() if cmd is None else list(cmd)
    path = entry_path(env)
    system = system_entries(env)
    source = path if path.exists() else (system[0] if system else None)
    if source is None:
        return Status(State.DISABLED, path, f"disabled: {path} does not exist; `deck-tray autostart enable` "
                                            f"turns it on")
    keys = read_entry(source)
    if keys is None:
        return Status(State.OUTDATED, source, f"outdated: {source} cannot be read; `deck-tray autostart enable` "
                                              f"rewrites it")
    if _turned_off(keys):
        return Status(State.DISABLED, source, f"disabled: turned off in {source}; `deck-tray autostart enable` "
                                              f"turns it on")
    want = exec_line(cmd)
    have = keys.get("Exec", "")
    if have != want:
        return Status(State.OUTDATED, source, f"outdated: {source} starts {have or 'nothing'}, but this deck-tray is "
                                              f"{want}; `deck-tray autostart enable` updates it")
    where = "" if source == path else " (system-wide)"
    return Status(State.ENABLED, source, f"enabled{where}: {source} starts {have} when you log in")


def run(args: argparse.Namespace) -> int:
    """``autostart enable|disable|status``."""
    if args.action == "enable":
        print(enable())
        return 0
    if args.action == "disable":
        print(disable())
        return 0
    st = status()
    print(st.detail)
    return {State.ENABLED: EXIT_ENABLED, State.DISABLED: EXIT_DISABLED, State.OUTDATED: EXIT_OUTDATED}[st.state]
