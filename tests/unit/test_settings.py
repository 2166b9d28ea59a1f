"""The settings table and the pure rules for values read back from the INI file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core import settings as cfg
from deck_tray.core.settings import Kind, coerce, in_quiet_hours


def test_the_table_is_consistent() -> None:
    keys = [s.key for s in cfg.SETTINGS]
    assert len(keys) == len(set(keys)), "keys are unique"
    for s in cfg.SETTINGS:
        assert "/" in s.key and s.label and s.help, s.key
        assert cfg.validate(s, s.default) is None, f"the default of {s.key} is valid"
        if s.kind is Kind.INT:
            assert s.minimum <= s.default <= s.maximum
        if s.requires:
            assert cfg.BY_KEY[s.requires].kind is Kind.BOOL, f"{s.key} requires an on/off setting"
    assert {s.group for s in cfg.SETTINGS} == set(cfg.Group), "every page has settings"


def test_no_secret_is_a_setting() -> None:
    for s in cfg.SETTINGS:
        assert not any(w in s.key.lower() for w in ("password", "token", "secret", "key")), s.key


def test_the_brief_is_covered() -> None:
    """Paths, servers, notification rules, quiet hours, pinned, window, history, Codex hold (#13);
    worktrees, opencode servers deck-tray starts, sub-agent panes (#15); remote hosts, the ssh command and
    searching the hosts' history (#18); how long Qwen's and Copilot's permission hooks wait (#19)."""
    assert {"paths/claude_config_dir", "paths/codex_home", "opencode/urls", "opencode/discover",
            "opencode/auto_handoff", "opencode/auto_handoff_percent", "notifications/enabled",
            "notifications/permission", "notifications/question", "notifications/turn_finished",
            "notifications/renotify_minutes", "notifications/grace_ms", "notifications/quiet_hours",
            "notifications/quiet_start", "notifications/quiet_end", "window/pinned", "window/start_hidden",
            "window/close_to_tray", "window/global_shortcut", "sessions/history_hours", "sessions/history_index",
            "sessions/codex_hold_s", "sessions/worktree_root", "opencode/keep_started_servers",
            "opencode/subagent_panes", "opencode/subagent_close_grace_s", "opencode/main_pane_min_cols",
            "opencode/agent_pane_min_cols", "remote/hosts", "remote/ssh_command",
            "remote/search_history", "sessions/hook_wait_s"} == set(cfg.BY_KEY)


# -- coercion of INI values ---------------------------------------------------------------------

@pytest.mark.parametrize(("setting", "raw", "want"), [
    (cfg.NOTIFY_ENABLED, "true", True),
    (cfg.NOTIFY_ENABLED, "false", False),
    (cfg.NOTIFY_ENABLED, " Off ", False),
    (cfg.NOTIFY_ENABLED, "1", True),
    (cfg.NOTIFY_ENABLED, True, True),
    (cfg.GRACE_MS, "300", 300),
    (cfg.GRACE_MS, " 1500 ", 1500),
    (cfg.GRACE_MS, "250.0", 250),  # what a float written by another version reads as
    (cfg.GRACE_MS, 42, 42),
    (cfg.AUTO_HANDOFF_PERCENT, "80", 80),
    (cfg.HISTORY_HOURS, "720", 720),
    (cfg.CLAUDE_DIR, "", ""),
    (cfg.CLAUDE_DIR, "~/alt-claude", "~/alt-claude"),
    (cfg.CODEX_DIR, " /srv/codex ", "/srv/codex"),
    (cfg.QUIET_START, "23:15", dt.time(23, 15)),
    (cfg.QUIET_START, "7:05", dt.time(7, 5)),
    (cfg.QUIET_START, "07:05:59", dt.time(7, 5)),
    (cfg.QUIET_END, dt.time(6, 30, 12), dt.time(6, 30)),
    (cfg.OPENCODE_URLS, "", ()),
    (cfg.OPENCODE_URLS, "http://127.0.0.1:4096", ("http://127.0.0.1:4096",)),  # QSettings: a lone item
    (cfg.OPENCODE_URLS, ["localhost:4096/", "http://127.0.0.1:4096", "https://box.lan:8443"],
     ("http://127.0.0.1:4096", "https://box.lan:8443")),
    (cfg.REMOTE_HOSTS, "", ()),
    (cfg.REMOTE_HOSTS, "lab=me@lab-box", (("lab", "me@lab-box"),)),  # QSettings: a lone item
    (cfg.REMOTE_HOSTS, ["lab=me@lab-box", "gpu-01=ssh://me@gpu-01:2222", "", "x.y_z=a=b"],
     (("lab", "me@lab-box"), ("gpu-01", "ssh://me@gpu-01:2222"), ("x.y_z", "a=b"))),  # split at the first =
    (cfg.REMOTE_HOSTS, (("lab", "me@lab-box"),), (("lab", "me@lab-box"),)),  # a typed value written in this run
    (cfg.REMOTE_SSH_COMMAND, "", ""),
    (cfg.REMOTE_SSH_COMMAND, " ssh -F ~/.ssh/lab_config ", "ssh -F ~/.ssh/lab_config"),
    (cfg.REMOTE_SSH_COMMAND, "ssh -o 'ProxyJump=a b'", "ssh -o 'ProxyJump=a b'"),
    (cfg.REMOTE_SSH_COMMAND, ["ssh -o ProxyJump=a", "b"], "ssh -o ProxyJump=a,b"),  # QSettings split it at the comma
])
def test_good_ini_values(setting: cfg.Setting[Any], raw: object, want: object) -> None:
    assert coerce(setting, raw) == (want, None)


@pytest.mark.parametrize(("setting", "raw", "why"), [
    (cfg.NOTIFY_ENABLED, "maybe", "'maybe' is not true or false"),
    (cfg.NOTIFY_ENABLED, "2", "not true or false"),
    (cfg.NOTIFY_ENABLED, ["true", "false"], "not true or false"),
    (cfg.GRACE_MS, "fast", "'fast' is not a whole number"),
    (cfg.GRACE_MS, "12.5", "not a whole number"),
    (cfg.GRACE_MS, "true", "not a whole number"),
    (cfg.GRACE_MS, True, "not a whole number"),
    (cfg.GRACE_MS, "-3", "-3 is outside 0–10000"),
    (cfg.HISTORY_HOURS, "0", "0 is outside 1–720"),
    (cfg.AUTO_HANDOFF_PERCENT, "250", "250 is outside 10–100"),
    (cfg.RENOTIFY_MINUTES, "nan", "not a whole number"),
    (cfg.RENOTIFY_MINUTES, "1e400", "not a whole number"),
    (cfg.CLAUDE_DIR, "relative/dir", "not an absolute path"),
    (cfg.CLAUDE_DIR, ["a", "b"], "not a path"),
    (cfg.QUIET_START, "25:00", "not a time like 22:00"),
    (cfg.QUIET_START, "22h", "not a time like 22:00"),
    (cfg.QUIET_END, 7, "not a time like 22:00"),
    (cfg.REMOTE_SSH_COMMAND, "ssh -F 'my config", "cannot be split into words as a shell would"),
    (cfg.REMOTE_SSH_COMMAND, 7, "7 is not a command"),
])
def test_bad_ini_values_give_the_default_and_a_warning(setting: cfg.Setting[Any], raw: object, why: str) -> None:
    value, warning = coerce(setting, raw)
    assert value == setting.default
    assert warning is not None and warning.startswith(setting.key) and why in warning
    assert "using the default" in warning


def test_a_bad_url_drops_only_itself() -> None:
    value, warning = coerce(cfg.OPENCODE_URLS, ["http://127.0.0.1:4096", "not a url", "ftp://x:1", "h:99999"])
    assert value == ("http://127.0.0.1:4096",)
    assert warning is not None and "'not a url'" in warning and "'ftp://x:1'" in warning and "'h:99999'" in warning
    assert coerce(cfg.OPENCODE_URLS, {"a": 1}) == ((), "opencode/urls: {'a': 1} is not a list of URLs; using none")


def test_a_bad_host_drops_only_itself() -> None:
    value, warning = coerce(cfg.REMOTE_HOSTS, [
        "lab=me@lab-box", "my box=me@box", "lab=me@other", "gpu=-oProxyCommand=x", "no-equals", "pi=",
        "pi=me@pi extra", " lab2=me@x", 42])
    assert value == (("lab", "me@lab-box"),)
    assert warning is not None and warning.startswith("remote/hosts: ignoring ")
    for part in ("'my box=me@box': “my box” cannot name a host", "'lab=me@other': a second host named “lab”",
                 "'gpu=-oProxyCommand=x': the destination “-oProxyCommand=x” of “gpu” starts with “-”",
                 "'no-equals': not NAME=DEST", "'pi=': the host “pi” needs an ssh destination",
                 "'pi=me@pi extra': the destination “me@pi extra” of “pi” contains a space",
                 "' lab2=me@x': “ lab2” cannot name a host", "42: not NAME=DEST"):
        assert part in warning, part
    assert coerce(cfg.REMOTE_HOSTS, {"a": 1}) == ((), "remote/hosts: ignoring {'a': 1}: not NAME=DEST")


@pytest.mark.parametrize(("name", "dest", "error"), [
    ("lab", "me@lab-box", None),
    ("gpu-01.lan_2", "ssh://me@gpu:2222", None),
    ("x" * 40, "alias", None),
    ("", "me@box", "needs a name"),
    ("my box", "me@box", "“my box” cannot name a host"),
    ("-lab", "me@box", "cannot name a host"),
    ("x" * 41, "me@box", "cannot name a host"),
    ("lab:1", "me@box", "cannot name a host"),  # the name prefixes session ids as NAME:ID
    ("lab=2", "me@box", "cannot name a host"),
    ("läb", "me@box", "cannot name a host"),
    ("lab", "", "“lab” needs an ssh destination"),
    ("lab", "me@lab box", "contains a space"),
    ("lab", "me@lab\tbox", "contains a space"),
    ("lab", "-oProxyCommand=sh", "starts with “-”"),
])
def test_host_entry_errors(name: str, dest: str, error: str | None) -> None:
    got = cfg.host_entry_error(name, dest)
    assert (got is None) if error is None else (got is not None and error in got), got


def test_host_names_are_the_wire_rule() -> None:
    from deck_tray.core import wire

    for name in ("lab", "a.b", "-x", "", "x" * 41, "a b", "ü", "a/b"):
        assert (cfg.host_entry_error(name, "dest") is None) is wire.valid_host_name(name), name


def test_parse_host_entries_says_what_it_dropped() -> None:
    assert cfg.parse_host_entries(None) == ((), [])
    assert cfg.parse_host_entries(["  ", "lab=me@lab"]) == ((("lab", "me@lab"),), [])
    hosts, dropped = cfg.parse_host_entries(["lab=me@lab", "lab=me@lab", b"x=y"])
    assert hosts == (("lab", "me@lab"),)
    assert dropped == ["'lab=me@lab': a second host named “lab”", "b'x=y': not NAME=DEST"]


@pytest.mark.parametrize(("value", "error"), [
    ((), None),
    ((("lab", "me@lab"), ("gpu", "gpu")), None),
    ((("lab", "me@lab"), ("lab", "other")), "two hosts are named “lab”"),
    ((("my box", "me@box"),), "cannot name a host"),
    ((("lab", "-o"),), "starts with “-”"),
    (["lab=me@lab"], "not a list of (name, destination) pairs"),
    ((("lab", "me@lab", "x"),), "not a list of (name, destination) pairs"),
])
def test_validate_hosts(value: object, error: str | None) -> None:
    got = cfg.validate(cfg.REMOTE_HOSTS, value)
    assert (got is None) if error is None else (got is not None and error in got), got


@pytest.mark.parametrize(("text", "ok"), [
    ("", True), ("ssh", True), ("ssh -F ~/.ssh/lab_config", True), ("ssh -o 'ProxyCommand=nc %h %p'", True),
    ("ssh -F 'my config", False), ('ssh -o "x', False), ("ssh \\", False),
])
def test_command_errors(text: str, ok: bool) -> None:
    assert (cfg.command_error(text) is None) is ok
    assert (cfg.validate(cfg.REMOTE_SSH_COMMAND, text) is None) is ok
    assert cfg.validate(cfg.REMOTE_SSH_COMMAND, 3) is not None  # type: ignore[arg-type]


def test_the_remote_page() -> None:
    assert cfg.Group.REMOTE.value == "Remote hosts"
    text = cfg.Group.REMOTE.description
    assert "ssh" in text and "password" in text and "key" in text and "port" in text
    assert cfg.in_group(cfg.Group.REMOTE) == [cfg.REMOTE_HOSTS, cfg.REMOTE_SSH_COMMAND, cfg.REMOTE_SEARCH_HISTORY]
    assert cfg.REMOTE_SEARCH_HISTORY.default is False, "each host indexes its whole history: asked for, not assumed"
    assert not cfg.REMOTE_SEARCH_HISTORY.on_restart, "read at every search"
    assert "DECK_TRAY_SSH_COMMAND" in cfg.REMOTE_SSH_COMMAND.help and "GIT_SSH_COMMAND" in cfg.REMOTE_SSH_COMMAND.help
    assert "ssh -F ~/.ssh/lab_config" in cfg.REMOTE_SSH_COMMAND.help
    assert cfg.describe(cfg.REMOTE_SSH_COMMAND, "") == "ssh"
    assert cfg.describe(cfg.REMOTE_HOSTS, ()) == "none"
    assert cfg.describe(cfg.REMOTE_HOSTS, (("lab", "me@lab"), ("gpu", "gpu"))) == "lab (me@lab), gpu (gpu)"


def test_the_keys_are_the_remote_modules() -> None:
    from deck_tray.services import remote

    assert (cfg.REMOTE_HOSTS.key, cfg.REMOTE_SSH_COMMAND.key) == (remote.HOSTS_KEY, remote.SSH_COMMAND_KEY)


@pytest.mark.parametrize("hosts", [[], [("lab", "me@lab-box")],
                                   [("lab", "me@lab-box"), ("gpu-01", "ssh://me@gpu-01:2222"), ("c", "a,b=c")]])
def test_the_cli_and_the_settings_read_each_others_hosts(tmp_path: Path, hosts: list[tuple[str, str]]) -> None:
    """``deck-tray remote add`` (``save_hosts``) and the dialog (``to_ini`` through the store) write
    the same ``remote/hosts``, and each reads what the other wrote, from the file (a copy, so
    ``QSettings`` parses it anew rather than answering from this process's cache)."""
    from PySide6.QtCore import QSettings

    from deck_tray.services import remote
    from deck_tray.services.settings_store import SettingsStore

    def reread(path: Path) -> QSettings:
        copy = path.with_name(f"copy-{path.name}")
        copy.write_bytes(path.read_bytes())
        return QSettings(str(copy), QSettings.Format.IniFormat)

    typed = tuple(hosts)
    by_cli = tmp_path / "cli.ini"
    remote.save_hosts(QSettings(str(by_cli), QSettings.Format.IniFormat), [remote.HostConfig(*h) for h in hosts])
    assert coerce(cfg.REMOTE_HOSTS, reread(by_cli).value(cfg.REMOTE_HOSTS.key)) == (typed, None)
    assert SettingsStore(reread(by_cli)).get(cfg.REMOTE_HOSTS) == typed

    by_dialog = tmp_path / "dialog.ini"
    store = SettingsStore(QSettings(str(by_dialog), QSettings.Format.IniFormat))
    store.set(cfg.REMOTE_HOSTS, (("old", "x"),))
    store.set(cfg.REMOTE_HOSTS, typed)
    assert cfg.to_ini(cfg.REMOTE_HOSTS, typed) == [f"{n}={d}" for n, d in hosts]
    assert [(h.name, h.dest) for h in remote.load_hosts(reread(by_dialog))] == hosts
    assert by_cli.read_text().strip() == by_dialog.read_text().strip(), "the same bytes either way"


def test_what_the_cli_would_skip_is_not_shown_as_a_host(tmp_path: Path) -> None:
    """Entries ``load_hosts`` skips are dropped by ``coerce`` too (it is stricter: no space in the
    destination, one host per name), so the dialog never lists a host the app does not connect to."""
    from PySide6.QtCore import QSettings

    from deck_tray.services import remote

    raw = ["lab=me@lab", "my box=x", "gpu=-o", "noeq", "pi=", "ok=a b", "lab=again"]
    qs = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    qs.setValue(remote.HOSTS_KEY, raw)
    loaded = {(h.name, h.dest) for h in remote.load_hosts(qs)}
    shown, _warning = coerce(cfg.REMOTE_HOSTS, raw)
    assert set(shown) <= loaded and shown == (("lab", "me@lab"),)


@pytest.mark.parametrize("junk", [b"\x00\xff", object(), {"k": "v"}, 3.5, -1, ["x", 1], "", "  ", "\n", "é" * 500])
def test_nothing_read_from_a_file_crashes(junk: object) -> None:
    for s in cfg.SETTINGS:
        value, _warning = coerce(s, junk)
        assert cfg.validate(s, value) is None, s.key


def test_stored_shapes_round_trip() -> None:
    samples: dict[str, object] = {
        cfg.OPENCODE_URLS.key: ("http://127.0.0.1:4096", "https://box.lan:8443"),
        cfg.QUIET_START.key: dt.time(23, 45),
        cfg.GRACE_MS.key: 1200,
        cfg.CLAUDE_DIR.key: "~/c",
        cfg.PINNED.key: True,
        cfg.REMOTE_HOSTS.key: (("lab", "me@lab-box"), ("gpu-01", "ssh://me@gpu-01:2222")),
        cfg.REMOTE_SSH_COMMAND.key: "ssh -F ~/.ssh/lab_config",
    }
    for s in cfg.SETTINGS:
        value = samples.get(s.key, s.default)
        stored = cfg.to_ini(s, value)
        as_text: object = ", ".join(stored) if isinstance(stored, list) else str(stored).lower() \
            if isinstance(stored, bool) else str(stored)
        if s.kind is Kind.HOSTS:  # QSettings reads a list of NAME=DEST back as a list (one item: the item)
            assert isinstance(stored, list)
            as_text = stored[0] if len(stored) == 1 else stored or None
        assert coerce(s, stored) == (value, None), s.key
        assert coerce(s, as_text) == (value, None), f"{s.key} as read back from the file"


# -- user input -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "error"), [
    ("http://127.0.0.1:4096", None),
    ("127.0.0.1:4096", None),
    ("https://build-box.lan:4096/opencode", None),
    ("localhost:4096", None),
    ("", "empty"),
    ("http://127.0.0.1:40 96", "contains a space"),
    ("ftp://127.0.0.1:21", "not an http:// or https:// URL"),
    ("http://:4096", "names no host"),
    ("http://127.0.0.1:99999", "no valid port"),
    ("http://127.0.0.1:0", "no valid port"),
    ("http://127.0.0.1:4096/?x=1", "query or fragment"),
])
def test_server_url_errors(text: str, error: str | None) -> None:
    got = cfg.server_url_error(text)
    assert (got is None) if error is None else (got is not None and error in got), got


@pytest.mark.parametrize("text", ["localhost:4096", "http://localhost:4096/", " http://127.0.0.1:4096/ ",
                                  "https://box.lan:1/x/", "http://localhost/"])
def test_url_spelling_matches_the_opencode_source(text: str) -> None:
    from deck_tray.services.opencode_source import normalize_url

    assert cfg.normalize_server_url(text) == normalize_url(text)


def test_agent_dir_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    assert cfg.agent_dir("", Path("/home/u/.claude")) == Path("/home/u/.claude")
    assert cfg.agent_dir(" ~/alt ", Path("/x")) == Path("/home/u/alt")
    assert cfg.path_error("") is None and cfg.path_error("~/x") is None
    assert cfg.path_error("x/y") is not None


# -- quiet hours ----------------------------------------------------------------------------

T = dt.time


@pytest.mark.parametrize(("now", "start", "end", "quiet"), [
    # across midnight
    (T(23, 30), T(22, 0), T(7, 0), True),
    (T(22, 0), T(22, 0), T(7, 0), True),
    (T(0, 0), T(22, 0), T(7, 0), True),
    (T(6, 59, 59), T(22, 0), T(7, 0), True),
    (T(7, 0), T(22, 0), T(7, 0), False),
    (T(12, 0), T(22, 0), T(7, 0), False),
    (T(21, 59), T(22, 0), T(7, 0), False),
    # within a day
    (T(13, 0), T(12, 30), T(14, 0), True),
    (T(12, 29), T(12, 30), T(14, 0), False),
    (T(14, 0), T(12, 30), T(14, 0), False),
    # empty range
    (T(8, 0), T(8, 0), T(8, 0), False),
    # ends at midnight
    (T(23, 59), T(20, 0), T(0, 0), True),
    (T(0, 0), T(20, 0), T(0, 0), False),
])
def test_quiet_hours(now: dt.time, start: dt.time, end: dt.time, quiet: bool) -> None:
    assert in_quiet_hours(now, start, end) is quiet


def test_quiet_hours_ignore_time_zones() -> None:
    tz = dt.timezone(dt.timedelta(hours=5))
    assert in_quiet_hours(T(23, 0, tzinfo=tz), T(22, 0), T(7, 0))
