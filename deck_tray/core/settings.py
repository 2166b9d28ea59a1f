"""The user's settings: one typed table of defaults, and pure rules for reading them back.

Every setting deck-tray has is a :class:`Setting` in :data:`SETTINGS` (key, type, default,
label, help text, group, limits). The settings file (an INI file written by ``QSettings``,
see :mod:`deck_tray.services.settings_store`) holds plain strings, so everything read
from it goes through :func:`coerce`: a value that cannot be understood becomes the
default plus a warning sentence, never an exception. Secrets (opencode passwords) are
not settings; they live in the keyring only (:mod:`deck_tray.services.secrets`).

Stored shapes (what :func:`to_ini` writes):

* ``BOOL``: ``true`` / ``false``
* ``INT``: a decimal integer
* ``PATH``: a folder path (``~`` allowed), or empty for "the agent's own default"
* ``URLS``: comma-separated server URLs (a list in ``QSettings``), or empty
* ``TIME``: ``HH:MM`` (24-hour, local time)
* ``SHORTCUT``: ``Ctrl+Alt+D`` (Qt's portable notation, :mod:`deck_tray.core.shortcuts`), or empty
* ``HOSTS``: a list of ``NAME=DEST`` strings in ``QSettings`` (exactly what
  :func:`deck_tray.services.remote.save_hosts` writes, so ``deck-tray remote add`` and the dialog
  edit the same list); ``QSettings`` reads a one-item list back as its item, an empty one as None
* ``COMMAND``: a command line as a POSIX shell would split it (``shlex``), or empty for the default
"""

from __future__ import annotations

import datetime as _dt
import enum
import os
import re
import shlex
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from deck_tray.core import shortcuts
from deck_tray.core.wire import valid_host_name

T = TypeVar("T")
#: The value of a ``HOSTS`` setting: ``(name, ssh destination)`` pairs in the order added.
Hosts = tuple[tuple[str, str], ...]


class Kind(enum.Enum):
    """The type of a setting's value (and the widget that edits it)."""

    BOOL = "bool"  #: ``bool``
    INT = "int"  #: ``int`` within ``minimum``..``maximum``
    PATH = "path"  #: ``str``: a folder, ``""`` = the agent's default
    URLS = "urls"  #: ``tuple[str, ...]``: normalized server URLs
    TIME = "time"  #: ``datetime.time`` (minutes precision)
    SHORTCUT = "shortcut"  #: ``str``: a key in Qt's portable notation (``Ctrl+Alt+D``), ``""`` = none
    HOSTS = "hosts"  #: :data:`Hosts`: ``(name, ssh destination)`` pairs, names unique
    COMMAND = "command"  #: ``str``: a command line split as a shell would (``shlex``), ``""`` = the default


class Group(enum.Enum):
    """Where a setting is shown; the value is the page title."""

    NOTIFICATIONS = "Notifications"
    QUIET = "Quiet hours"
    OPENCODE = "opencode"
    WINDOW = "Window"
    SESSIONS = "Sessions"
    REMOTE = "Remote hosts"

    @property
    def description(self) -> str:
        """One sentence at the top of the group's page."""
        return _GROUP_TEXT[self]


_GROUP_TEXT = {
    Group.NOTIFICATIONS: "When a session waits for you, deck-tray shows one desktop notification per request.",
    Group.QUIET: "During quiet hours notifications are held, not dropped: the tray icon still counts "
                 "waiting sessions, and requests still waiting when quiet hours end are shown then.",
    Group.OPENCODE: "opencode sessions are followed through each server's event stream. "
                    "Passwords are kept in your keyring, never in this file.",
    Group.WINDOW: "The session window with one tab per session.",
    Group.SESSIONS: "Where Claude Code and Codex keep their sessions, and how long finished ones stay listed.",
    Group.REMOTE: "Agents on other machines, reached over your own ssh (your config, keys and agent): "
                  "deck-tray never asks for a password or handles a key, and nothing listens on a port.",
}


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting: everything the store, the dialog and the app need to know about it.

    Attributes:
        key: ``section/name`` in the INI file.
        kind: the value's type.
        default: the value when the file has none (or an unusable one).
        label: short text shown next to the widget.
        help: a sentence or two shown under the widget and as its tooltip.
        group: the page it is shown on.
        minimum: ``INT`` only: smallest allowed value.
        maximum: ``INT`` only: largest allowed value.
        suffix: ``INT`` only: unit shown after the number (``" min"``).
        special: ``INT`` only: text shown instead of ``minimum`` (``"Never"``).
        requires: key of a ``BOOL`` setting that must be on for this one to matter.
        on_restart: takes effect the next time deck-tray starts (not live).
    """

    key: str
    kind: Kind
    default: T
    label: str
    help: str
    group: Group
    minimum: int = 0
    maximum: int = 0
    suffix: str = ""
    special: str = ""
    requires: str = ""
    on_restart: bool = False


# -- the table -------------------------------------------------------------------------------

NOTIFY_ENABLED: Setting[bool] = Setting(
    "notifications/enabled", Kind.BOOL, True, "Show desktop notifications",
    "Off: nothing pops up; the tray icon and the window still show which sessions wait.",
    Group.NOTIFICATIONS)
NOTIFY_PERMISSION: Setting[bool] = Setting(
    "notifications/permission", Kind.BOOL, True, "When an agent asks for permission",
    "A tool call waits for Allow or Deny. The notification has Allow and Deny buttons.",
    Group.NOTIFICATIONS, requires="notifications/enabled")
NOTIFY_QUESTION: Setting[bool] = Setting(
    "notifications/question", Kind.BOOL, True, "When an agent asks a question",
    "The agent offers options or wants a typed answer.",
    Group.NOTIFICATIONS, requires="notifications/enabled")
NOTIFY_TURN_FINISHED: Setting[bool] = Setting(
    "notifications/turn_finished", Kind.BOOL, False, "When a turn finishes",
    "A session that was working is done and waits for your next prompt.",
    Group.NOTIFICATIONS, requires="notifications/enabled")
RENOTIFY_MINUTES: Setting[int] = Setting(
    "notifications/renotify_minutes", Kind.INT, 0, "Remind me after",
    "Show a request again, in place, while it is still unanswered. "
    "A notification you dismissed is not repeated.",
    Group.NOTIFICATIONS, minimum=0, maximum=240, suffix=" min", special="Never",
    requires="notifications/enabled")
GRACE_MS: Setting[int] = Setting(
    "notifications/grace_ms", Kind.INT, 300, "Wait before notifying",
    "A request answered within this time (in the terminal, say) never shows a notification.",
    Group.NOTIFICATIONS, minimum=0, maximum=10_000, suffix=" ms", requires="notifications/enabled")

QUIET_ENABLED: Setting[bool] = Setting(
    "notifications/quiet_hours", Kind.BOOL, False, "Hold notifications during quiet hours",
    "Every day between the two times below (local time); the range may cross midnight.",
    Group.QUIET)
QUIET_START: Setting[_dt.time] = Setting(
    "notifications/quiet_start", Kind.TIME, _dt.time(22, 0), "From",
    "Quiet hours begin at this time.", Group.QUIET, requires="notifications/quiet_hours")
QUIET_END: Setting[_dt.time] = Setting(
    "notifications/quiet_end", Kind.TIME, _dt.time(7, 0), "Until",
    "Quiet hours end at this time; the same time as the start means no quiet hours.",
    Group.QUIET, requires="notifications/quiet_hours")

OPENCODE_URLS: Setting[tuple[str, ...]] = Setting(
    "opencode/urls", Kind.URLS, (), "Servers",
    "opencode servers to follow even when they run elsewhere or are down, e.g. http://127.0.0.1:4096.",
    Group.OPENCODE)
OPENCODE_DISCOVER: Setting[bool] = Setting(
    "opencode/discover", Kind.BOOL, True, "Find opencode servers running on this computer",
    "Looks every few seconds for your opencode processes listening on a loopback port.",
    Group.OPENCODE)
AUTO_HANDOFF: Setting[bool] = Setting(
    "opencode/auto_handoff", Kind.BOOL, False, "Hand off full sessions automatically",
    "When a turn ends with the context this full, start a new session that carries on from a summary.",
    Group.OPENCODE)
AUTO_HANDOFF_PERCENT: Setting[int] = Setting(
    "opencode/auto_handoff_percent", Kind.INT, 80, "Context limit for the hand-off",
    "Share of the model's context window; each session is handed off at most once.",
    Group.OPENCODE, minimum=10, maximum=100, suffix=" %", requires="opencode/auto_handoff")
KEEP_STARTED_SERVERS: Setting[bool] = Setting(
    "opencode/keep_started_servers", Kind.BOOL, False, "Keep the servers deck-tray started",
    "New opencode sessions run on a server deck-tray starts for their folder. When this is on, those "
    "servers keep running after deck-tray quits (their sessions go on); when off, they stop with it.",
    Group.OPENCODE)

PINNED: Setting[bool] = Setting(
    "window/pinned", Kind.BOOL, False, "Pin the window on top",
    "A compact window that stays above other windows (also in the tray menu and the toolbar).",
    Group.WINDOW)
START_HIDDEN: Setting[bool] = Setting(
    "window/start_hidden", Kind.BOOL, True, "Start in the tray",
    "Off: the window opens when deck-tray starts. Without a tray the window always opens.",
    Group.WINDOW, on_restart=True)
CLOSE_TO_TRAY: Setting[bool] = Setting(
    "window/close_to_tray", Kind.BOOL, True, "Closing the window keeps deck-tray running",
    "Off: closing the window quits deck-tray.",
    Group.WINDOW)
GLOBAL_SHORTCUT: Setting[str] = Setting(
    "window/global_shortcut", Kind.SHORTCUT, "", "Global shortcut",
    f"Anywhere on your desktop: shows this window at the oldest waiting request, or hides it. Empty: none "
    f"(suggested: {shortcuts.SUGGESTED}).",
    Group.WINDOW)

CLAUDE_DIR: Setting[str] = Setting(
    "paths/claude_config_dir", Kind.PATH, "", "Claude Code folder",
    "Empty: $CLAUDE_CONFIG_DIR, else ~/.claude.", Group.SESSIONS)
CODEX_DIR: Setting[str] = Setting(
    "paths/codex_home", Kind.PATH, "", "Codex folder",
    "Empty: $CODEX_HOME, else ~/.codex.", Group.SESSIONS)
HISTORY_HOURS: Setting[int] = Setting(
    "sessions/history_hours", Kind.INT, 24, "Keep finished sessions listed for",
    "Claude Code and Codex sessions whose transcript is older than this drop off the list.",
    Group.SESSIONS, minimum=1, maximum=24 * 30, suffix=" h")
CODEX_HOLD_S: Setting[int] = Setting(
    "sessions/codex_hold_s", Kind.INT, 0, "Let Codex wait for deck-tray",
    "Codex shows its own approval only after deck-tray's hook returns. For a Codex session "
    "deck-tray cannot type into (a plain terminal window), its permission waits this long for "
    "your answer in deck-tray, then Codex asks in its terminal. Needs deck-tray's Codex hooks.",
    Group.SESSIONS, minimum=0, maximum=600, suffix=" s", special="Off")
#: The maximum is :data:`deck_tray.core.hooks_config.SHORT_WAIT_MAX_S` (a test checks they agree;
#: not imported here, to keep this module light).
HOOK_WAIT_S: Setting[int] = Setting(
    "sessions/hook_wait_s", Kind.INT, 3, "Let Qwen and Copilot wait for deck-tray",
    "Qwen Code and Copilot CLI show no permission prompt while deck-tray's hook runs. With their hooks "
    "installed (deck-tray hooks install), a permission waits this long for your Allow or Deny in "
    "deck-tray, then the agent shows its own prompt and the answer is typed there. Off: the prompt "
    "shows at once.",
    Group.SESSIONS, minimum=0, maximum=30, suffix=" s", special="Off")
HISTORY_INDEX: Setting[bool] = Setting(
    "sessions/history_index", Kind.BOOL, True, "Keep a searchable history",
    "Index every Claude Code, Codex and opencode conversation on this machine for search "
    "(a local database; nothing leaves the machine).", Group.SESSIONS, on_restart=True)
WORKTREE_ROOT: Setting[str] = Setting(
    "sessions/worktree_root", Kind.PATH, "", "Folder for new worktrees",
    "Where 'New session' with a worktree makes it: FOLDER/<repository>/<branch>. Empty: beside the "
    "repository, in <repository>.worktrees/<branch>.", Group.SESSIONS)
SUBAGENT_PANES: Setting[bool] = Setting(
    "opencode/subagent_panes", Kind.BOOL, True, "Open a pane for each sub-agent",
    "When an opencode session you have open in a tmux pane (opencode attach) starts a sub-agent, "
    "deck-tray opens a pane beside yours that follows the sub-agent, and closes it when the sub-agent is done.",
    Group.OPENCODE)
SUBAGENT_CLOSE_GRACE_S: Setting[int] = Setting(
    "opencode/subagent_close_grace_s", Kind.INT, 10, "Close a sub-agent's pane after",
    "How long a finished (or deleted) sub-agent's pane stays open, so you can read its last lines.",
    Group.OPENCODE, minimum=0, maximum=3600, suffix=" s", requires="opencode/subagent_panes")
MAIN_PANE_MIN_COLS: Setting[int] = Setting(
    "opencode/main_pane_min_cols", Kind.INT, 100, "Your pane keeps at least",
    "Sub-agent panes never make your own pane narrower than this; without room they wait.",
    Group.OPENCODE, minimum=20, maximum=1000, suffix=" columns", requires="opencode/subagent_panes")
AGENT_PANE_MIN_COLS: Setting[int] = Setting(
    "opencode/agent_pane_min_cols", Kind.INT, 60, "A sub-agent pane gets at least",
    "Narrowest sub-agent pane deck-tray opens.",
    Group.OPENCODE, minimum=20, maximum=1000, suffix=" columns", requires="opencode/subagent_panes")

REMOTE_HOSTS: Setting[Hosts] = Setting(
    "remote/hosts", Kind.HOSTS, (), "Hosts",
    "A host's sessions are listed as NAME:ID. The destination is what ssh takes: user@host, a "
    "~/.ssh/config alias, ssh://host:port. The host needs deck-tray too (deck-tray remote install NAME "
    "puts it there); deck-tray remote add and remove edit this same list.",
    Group.REMOTE)
REMOTE_SSH_COMMAND: Setting[str] = Setting(
    "remote/ssh_command", Kind.COMMAND, "", "ssh command",
    "Empty: ssh. For example: ssh -F ~/.ssh/lab_config (split into words as a shell would, never run "
    "through one). DECK_TRAY_SSH_COMMAND in the environment overrides it, like git's GIT_SSH_COMMAND.",
    Group.REMOTE, on_restart=True)
#: Off by default: a search makes every host bring its own history index up to date first (the
#: first time it reads every transcript there: minutes of a core and a database in that user's
#: data folder) and carries the matching conversation text over ssh. A host added to answer
#: its prompts should not start doing that unasked; ``deck-tray search --remote`` asks once.
REMOTE_SEARCH_HISTORY: Setting[bool] = Setting(
    "remote/search_history", Kind.BOOL, False, "Search the hosts' history too",
    "History search (the search window, deck-tray search) also asks every connected host, which "
    "answers from its own history index (kept there, brought up to date before it answers). A slow "
    "or unreachable host never holds up this machine's results.",
    Group.REMOTE)

#: Every setting, in the order the dialog shows them.
SETTINGS: tuple[Setting[Any], ...] = (
    NOTIFY_ENABLED, NOTIFY_PERMISSION, NOTIFY_QUESTION, NOTIFY_TURN_FINISHED, RENOTIFY_MINUTES, GRACE_MS,
    QUIET_ENABLED, QUIET_START, QUIET_END,
    OPENCODE_URLS, OPENCODE_DISCOVER, AUTO_HANDOFF, AUTO_HANDOFF_PERCENT, KEEP_STARTED_SERVERS,
    PINNED, START_HIDDEN, CLOSE_TO_TRAY, GLOBAL_SHORTCUT,
    CLAUDE_DIR, CODEX_DIR, HISTORY_HOURS, CODEX_HOLD_S, HOOK_WAIT_S, HISTORY_INDEX, WORKTREE_ROOT,
    SUBAGENT_PANES, SUBAGENT_CLOSE_GRACE_S, MAIN_PANE_MIN_COLS, AGENT_PANE_MIN_COLS,
    REMOTE_HOSTS, REMOTE_SSH_COMMAND, REMOTE_SEARCH_HISTORY,
)
#: The same, by key.
BY_KEY: dict[str, Setting[Any]] = {s.key: s for s in SETTINGS}


def defaults() -> dict[str, Any]:
    """``{key: default}`` for every setting."""
    return {s.key: s.default for s in SETTINGS}


def in_group(group: Group) -> list[Setting[Any]]:
    """The settings shown on ``group``'s page, in table order."""
    return [s for s in SETTINGS if s.group is group]


# -- values from the user --------------------------------------------------------------------

def normalize_server_url(text: str) -> str:
    """One spelling per server: trimmed, no trailing slash, ``http://`` added when no scheme
    is given, ``localhost`` as ``127.0.0.1`` (as :func:`deck_tray.services.opencode_source.normalize_url`)."""
    u = text.strip().rstrip("/")
    if "://" not in u:
        u = "http://" + u
    return u.replace("://localhost:", "://127.0.0.1:").replace("://localhost/", "://127.0.0.1/")


def server_url_error(text: str) -> str | None:
    """Why ``text`` is not a usable opencode server URL, or None when it is.

    Accepts ``http(s)://host[:port][/path]``; the scheme may be left out.
    """
    raw = text.strip()
    if not raw:
        return "the URL is empty"
    if any(c.isspace() for c in raw):
        return f"“{raw}” contains a space"
    try:
        parts = urllib.parse.urlsplit(normalize_server_url(raw))
        port = parts.port
    except ValueError:
        return f"“{raw}” has no valid port (1–65535)"
    if parts.scheme not in ("http", "https"):
        return f"“{raw}” is not an http:// or https:// URL"
    if not parts.hostname:
        return f"“{raw}” names no host (e.g. http://127.0.0.1:4096)"
    if port == 0:
        return f"“{raw}” has no valid port (1–65535)"
    if parts.query or parts.fragment:
        return f"“{raw}” has a query or fragment; give the server's base URL"
    return None


def path_error(text: str) -> str | None:
    """Why ``text`` is not usable as a folder override, or None (``""`` is fine: the default)."""
    raw = text.strip()
    if not raw:
        return None
    if not os.path.isabs(os.path.expanduser(raw)):
        return f"“{raw}” is not an absolute path (start it with / or ~)"
    return None


def agent_dir(override: str, default: Path) -> Path:
    """The folder to use: the override (``~`` expanded) when set, else ``default``."""
    raw = override.strip()
    return Path(raw).expanduser() if raw else default


def host_entry_error(name: str, dest: str) -> str | None:
    """Why ``(name, dest)`` cannot be a remote host, or None when it can.

    Args:
        name: deck-tray's name for the host, as typed (not trimmed): 1–40 of ``A-Z a-z 0-9 . _ -``,
            not starting with ``-`` (:func:`deck_tray.core.wire.valid_host_name`).
        dest: what ``ssh`` takes (``user@host``, a ``~/.ssh/config`` alias, ``ssh://host:port``):
            not empty, no whitespace, not starting with ``-`` (ssh would read it as an option).

    Returns:
        A sentence naming the problem, or None. Whether the name is already taken is up to the
        caller (:func:`parse_host_entries`, :func:`validate`).
    """
    if not name:
        return "a host needs a name (letters, digits, “.”, “_” or “-”)"
    if not valid_host_name(name):
        return (f"“{name}” cannot name a host: use up to 40 letters, digits, “.”, “_” or “-”, "
                f"not starting with “-”")
    if not dest:
        return f"the host “{name}” needs an ssh destination (user@host or a ~/.ssh/config alias)"
    if any(c.isspace() for c in dest):
        return f"the destination “{dest}” of “{name}” contains a space"
    if dest.startswith("-"):
        return f"the destination “{dest}” of “{name}” starts with “-” (ssh would read it as an option)"
    return None


def parse_host_entries(raw: object) -> tuple[Hosts, list[str]]:
    """The remote hosts in what ``QSettings`` read for ``remote/hosts``.

    Args:
        raw: a list of ``NAME=DEST`` strings (split at the first ``=``), as
            :func:`deck_tray.services.remote.save_hosts` stores them; a lone string is one entry
            (``QSettings`` reads a one-item list back as its item), None or ``""`` none. An entry
            may also be a ``(name, dest)`` pair (a typed value written in this run).

    Returns:
        ``(hosts, dropped)``: the usable entries as ``(name, dest)`` pairs in stored order, and
        each unusable one as it was stored with why, e.g. ``'my box=h': “my box” cannot name a
        host: …``. A second entry with a name already taken is dropped; blank entries are
        skipped silently. Never raises.
    """
    if raw is None:
        return (), []
    items: list[object]
    if isinstance(raw, str):
        items = [raw]
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        items = [raw]
    hosts: list[tuple[str, str]] = []
    dropped: list[str] = []
    for item in items:
        if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(p, str) for p in item):
            name, dest = str(item[0]), str(item[1])
        elif isinstance(item, str):
            if not item.strip():
                continue
            name, sep, dest = item.partition("=")
            if not sep:
                dropped.append(f"{_repr(item)}: not NAME=DEST")
                continue
        else:
            dropped.append(f"{_repr(item)}: not NAME=DEST")
            continue
        err = host_entry_error(name, dest)
        if err is None and any(n == name for n, _d in hosts):
            err = f"a second host named “{name}”"
        if err is not None:
            dropped.append(f"{_repr(item)}: {err}")
        else:
            hosts.append((name, dest))
    return tuple(hosts), dropped


def command_error(text: str) -> str | None:
    """Why ``text`` cannot be split into command words as a POSIX shell would (``shlex``: an
    unclosed quote, a trailing backslash), or None when it can (``""`` can: the default)."""
    try:
        shlex.split(text)
    except ValueError as exc:
        return f"“{text.strip()}” cannot be split into words as a shell would ({exc})"
    return None


_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::\d{2})?\s*$")


def parse_time(text: str) -> _dt.time | None:
    """``"22:00"`` / ``"7:05"`` (seconds ignored) as a time, or None."""
    m = _TIME_RE.match(text)
    if m is None:
        return None
    h, mi = int(m.group(1)), int(m.group(2))
    if h > 23 or mi > 59:
        return None
    return _dt.time(h, mi)


def format_time(t: _dt.time) -> str:
    """``HH:MM``."""
    return f"{t.hour:02d}:{t.minute:02d}"


def in_quiet_hours(now: _dt.time, start: _dt.time, end: _dt.time) -> bool:
    """Whether ``now`` falls in the daily range ``[start, end)`` (local wall-clock times).

    The range crosses midnight when ``end`` is earlier than ``start`` (22:00–07:00 holds
    23:30 and 06:59, not 07:00). ``start == end`` is an empty range.
    """
    n = now.replace(tzinfo=None, microsecond=0)
    s, e = start.replace(tzinfo=None), end.replace(tzinfo=None)
    if s == e:
        return False
    if s < e:
        return s <= n < e
    return n >= s or n < e


def validate(setting: Setting[T], value: T) -> str | None:
    """Why ``value`` is not acceptable for ``setting`` (a sentence), or None."""
    k = setting.kind
    if k is Kind.BOOL:
        return None if isinstance(value, bool) else f"{setting.label}: not on/off"
    if k is Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{setting.label}: not a whole number"
        if not setting.minimum <= value <= setting.maximum:
            return f"{setting.label}: {value} is outside {setting.minimum}–{setting.maximum}"
        return None
    if k is Kind.PATH:
        return path_error(value) if isinstance(value, str) else f"{setting.label}: not a path"
    if k is Kind.URLS:
        if not isinstance(value, tuple) or not all(isinstance(u, str) for u in value):
            return f"{setting.label}: not a list of URLs"
        for u in value:
            err = server_url_error(u)
            if err:
                return err
        return None
    if k is Kind.HOSTS:
        if not isinstance(value, tuple) or not all(
                isinstance(h, tuple) and len(h) == 2 and all(isinstance(p, str) for p in h) for h in value):
            return f"{setting.label}: not a list of (name, destination) pairs"
        seen: set[str] = set()
        for name, dest in value:
            err = host_entry_error(name, dest)
            if err:
                return err
            if name in seen:
                return f"two hosts are named “{name}”"
            seen.add(name)
        return None
    if k is Kind.COMMAND:
        return command_error(value) if isinstance(value, str) else f"{setting.label}: not a command"
    if k is Kind.SHORTCUT:
        if not isinstance(value, str):
            return f"{setting.label}: not a shortcut"
        if not value:
            return None
        try:
            shortcuts.parse(value)
        except ValueError as exc:
            return f"{setting.label}: {exc}"
        return None
    return None if isinstance(value, _dt.time) else f"{setting.label}: not a time of day"


# -- values from the INI file ----------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def coerce(setting: Setting[T], raw: object) -> tuple[T, str | None]:
    """Turn what ``QSettings`` read for ``setting`` into its typed value.

    Args:
        setting: the setting.
        raw: the stored value: None when absent; ``str`` (or a ``list`` of ``str`` for a
            comma-separated value) from the file; a typed value when written in this run.

    Returns:
        ``(value, warning)``: the value, or the default with a warning sentence naming the
        key and what was wrong. Never raises. An absent value is the default, silently;
        unusable entries of a URL or host list are dropped (with a warning), the others kept.
    """
    if raw is None:
        return setting.default, None
    if setting.kind is Kind.HOSTS:
        hosts, dropped_hosts = parse_host_entries(raw)
        if dropped_hosts:
            return cast(T, hosts), f"{setting.key}: ignoring {'; '.join(dropped_hosts)}"
        return cast(T, hosts), None
    if setting.kind is Kind.URLS:
        urls, dropped = _coerce_urls(raw)
        if urls is None:
            return setting.default, f"{setting.key}: {_repr(raw)} is not a list of URLs; using none"
        if dropped:
            return cast(T, urls), f"{setting.key}: ignoring {', '.join(dropped)} (not a server URL)"
        return cast(T, urls), None
    value, why = _coerce(setting, raw)
    if why is not None:
        return setting.default, f"{setting.key}: {why}; using the default ({_show(setting, setting.default)})"
    return cast(T, value), None


def _coerce(setting: Setting[Any], raw: object) -> tuple[object, str | None]:
    k = setting.kind
    if k is Kind.BOOL:
        if isinstance(raw, bool):
            return raw, None
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw), None
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE, None
        return None, f"{_repr(raw)} is not true or false"
    if k is Kind.INT:
        n = _as_int(raw)
        if n is None:
            return None, f"{_repr(raw)} is not a whole number"
        if not setting.minimum <= n <= setting.maximum:
            return None, f"{n} is outside {setting.minimum}–{setting.maximum}"
        return n, None
    if k is Kind.SHORTCUT:
        text = ",".join(str(p) for p in raw) if isinstance(raw, list) else raw  # QSettings splits at commas
        if not isinstance(text, str):
            return None, f"{_repr(raw)} is not a shortcut"
        if not text.strip():
            return "", None
        try:
            return shortcuts.parse(text).text(), None
        except ValueError as exc:
            return None, str(exc)
    if k is Kind.COMMAND:
        text = ",".join(str(p) for p in raw) if isinstance(raw, list) else raw  # QSettings splits at commas
        if not isinstance(text, str):
            return None, f"{_repr(raw)} is not a command"
        err = command_error(text)
        return (None, err) if err else (text.strip(), None)
    if k is Kind.PATH:
        if not isinstance(raw, str):
            return None, f"{_repr(raw)} is not a path"
        err = path_error(raw)
        return (None, err) if err else (raw.strip(), None)
    if isinstance(raw, _dt.time):
        return raw.replace(second=0, microsecond=0, tzinfo=None), None
    t = parse_time(raw) if isinstance(raw, str) else None
    return (t, None) if t is not None else (None, f"{_repr(raw)} is not a time like 22:00")


def _as_int(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    if isinstance(raw, str):
        s = raw.strip()
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                return None
            return int(f) if f.is_integer() else None
    return None


def _coerce_urls(raw: object) -> tuple[tuple[str, ...] | None, list[str]]:
    """``(normalized unique URLs, what was dropped)``; None when ``raw`` is no list at all."""
    if isinstance(raw, str):
        items: list[object] = [p for p in re.split(r"[,\s]+", raw) if p]
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        return None, []
    good: list[str] = []
    dropped: list[str] = []
    for item in items:
        if not isinstance(item, str) or server_url_error(item):
            dropped.append(_repr(item))  # one typo must not unfollow every server
        elif (u := normalize_server_url(item)) not in good:
            good.append(u)
    return tuple(good), dropped


def _repr(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:59] + "…"


def _show(setting: Setting[Any], value: object) -> str:
    if setting.kind is Kind.URLS:
        return ", ".join(cast(tuple[str, ...], value)) or "none"
    if setting.kind is Kind.TIME:
        return format_time(cast(_dt.time, value))
    if setting.kind is Kind.BOOL:
        return "on" if value else "off"
    if setting.kind is Kind.PATH:
        return str(value) or "the agent's default"
    if setting.kind is Kind.SHORTCUT:
        return str(value) or "none"
    if setting.kind is Kind.HOSTS:
        return ", ".join(f"{n} ({d})" for n, d in cast(Hosts, value)) or "none"
    if setting.kind is Kind.COMMAND:
        return str(value) or "ssh"
    return f"{value}{setting.suffix}"


def describe(setting: Setting[T], value: T) -> str:
    """``value`` as a user reads it (``"on"``, ``"22:00"``, ``"80 %"``, ``"none"``)."""
    return _show(setting, value)


def to_ini(setting: Setting[T], value: T) -> object:
    """What to store for ``value`` (see the module docstring for the shapes)."""
    if setting.kind is Kind.URLS:
        urls = list(cast(tuple[str, ...], value))
        return urls if urls else ""
    if setting.kind is Kind.HOSTS:
        return [f"{n}={d}" for n, d in cast(Hosts, value)]  # as services/remote.save_hosts
    if setting.kind is Kind.TIME:
        return format_time(cast(_dt.time, value))
    return value
