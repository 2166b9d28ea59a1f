"""deck-tray's hook entries in Claude Code's settings.json and Codex's hooks.json / config.toml:
merge, remove, detect and diff on realistic files (pure, no IO)."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deck_tray.core import hooks_config as hc
from deck_tray.core.model import AgentKind

CC, CX = AgentKind.CLAUDE_CODE, AgentKind.CODEX
EXE = ["/home/u/.local/bin/deck-tray"]
OLD_EXE = ["/home/u/old-venv/bin/deck-tray"]
SETTINGS = Path("/home/u/.claude/settings.json")
HOOKS = Path("/home/u/.codex/hooks.json")
CONFIG = Path("/home/u/.codex/config.toml")

# The shape Claude Code itself writes (JSON.stringify(..., null, 2)), with the user's own hooks.
USER_SETTINGS: dict[str, Any] = {
    "env": {"BASH_DEFAULT_TIMEOUT_MS": "300000"},
    "permissions": {"allow": ["Bash(npm run test:*)", "Read(~/notes/**)"], "deny": []},
    "model": "opus",
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard.sh"}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send 'Claude is done'", "timeout": 5}]}],
        "Notification": [{"matcher": "", "hooks": [{"type": "command", "command": "paplay ~/ding.ogg"}]}],
    },
    "statusLine": {"type": "command", "command": "~/.claude/statusline.sh", "padding": 0},
    "futureKey": {"nested": [1, 2.5, None, True, "ünïcødé ✓"]},
}
USER_TEXT = json.dumps(USER_SETTINGS, indent=2, ensure_ascii=False) + "\n"


def handlers(data: dict[str, Any], event: str) -> list[dict[str, Any]]:
    return [h for g in data["hooks"].get(event, []) for h in g["hooks"]]


def install(text: str | None, exe: list[str] = EXE, path: Path = SETTINGS, agent: AgentKind = CC,
            events: tuple[str, ...] = hc.CLAUDE_EVENTS) -> hc.FilePlan:
    return hc.plan_json(agent, path, text, events, exe, install=True)


# --------------------------------------------------------------------------- commands


def test_hook_command_is_shell_quoted_and_recognised() -> None:
    exe = ["/home/me/My Apps/deck-tray"]
    cmd = hc.hook_command(exe, CC)
    assert cmd == "'/home/me/My Apps/deck-tray' hook claude-code"
    assert hc.our_executable(cmd, CC) == exe
    assert hc.our_executable(cmd, CX) is None
    py = ["/usr/bin/python3", "-m", "deck_tray"]
    assert hc.hook_command(py, CX) == "/usr/bin/python3 -m deck_tray hook codex"
    assert hc.our_executable(hc.hook_command(py, CX), CX) == py


@pytest.mark.parametrize("command", [
    "/opt/deck-tray hook claude-code",
    "deck-tray hook claude-code",
    "/tmp/.mount_x/Deck-Tray-x86_64.AppImage hook claude-code",
    "/venv/bin/python -m deck_tray hook claude-code",
    "/opt/deck-tray hook claude-code --extra",
])
def test_ours(command: str) -> None:
    assert hc.our_executable(command, CC) is not None


@pytest.mark.parametrize("command", [
    "notify-send done",
    "/usr/bin/other-tool hook claude-code",      # not a deck-tray executable
    "/opt/deck-tray hook codex",                 # the other agent's
    "/opt/deck-tray hooks claude-code",
    "echo 'unbalanced",
    "",
])
def test_not_ours(command: str) -> None:
    assert hc.our_executable(command, CC) is None


def test_the_executable_in_use_is_ours_whatever_its_name() -> None:
    exe = ["python3", "/tmp/log.py", "/tmp/out.jsonl"]
    cmd = hc.hook_command(exe, CC)
    assert hc.our_executable(cmd, CC) is None
    assert hc.our_executable(cmd, CC, exe) == exe


# --------------------------------------------------------------------------- settings.json / hooks.json


def test_install_into_a_realistic_settings_file_keeps_everything_of_the_user() -> None:
    p = install(USER_TEXT)
    assert p.changed and p.new is not None
    new = json.loads(p.new)
    # other top-level keys unchanged, in order
    assert list(new) == list(USER_SETTINGS)
    for key in ("env", "permissions", "model", "statusLine", "futureKey"):
        assert new[key] == USER_SETTINGS[key]
    # the user's hooks first and untouched, ours appended as a group of its own
    assert new["hooks"]["PreToolUse"] == USER_SETTINGS["hooks"]["PreToolUse"]
    assert new["hooks"]["Stop"][0] == USER_SETTINGS["hooks"]["Stop"][0]
    assert new["hooks"]["Stop"][1] == {"hooks": [{"type": "command", "command": f"{EXE[0]} hook claude-code",
                                                  "timeout": hc.HOOK_TIMEOUT_S}]}
    assert new["hooks"]["Notification"][0] == USER_SETTINGS["hooks"]["Notification"][0]
    assert new["hooks"]["PermissionRequest"] == [{"matcher": "*", "hooks": [
        {"type": "command", "command": f"{EXE[0]} hook claude-code", "timeout": hc.DECISION_HOOK_TIMEOUT_S}]}]
    for event in hc.CLAUDE_EVENTS:
        ours = [h for h in handlers(new, event) if hc.our_executable(h["command"], CC)]
        assert len(ours) == 1, event
    for event in ("SessionStart", "SessionEnd", "UserPromptSubmit"):
        assert "matcher" not in new["hooks"][event][0]
    # the text outside "hooks" is byte-identical, the file keeps 2-space indentation
    assert p.new.startswith(USER_TEXT[:USER_TEXT.index('"hooks"')])
    assert p.new.endswith(USER_TEXT[USER_TEXT.index('  "statusLine"'):])
    assert '\n    "PreToolUse": [\n      {\n        "matcher": "Bash",' in p.new
    assert p.new == json.dumps(new, indent=2, ensure_ascii=False) + "\n"


def test_install_is_idempotent() -> None:
    first = install(USER_TEXT)
    second = install(first.new)
    assert not second.changed and second.new is None
    assert second.notes == (f"{SETTINGS}: already installed",)
    assert second.diff() == ""


def test_reinstall_after_the_path_changed_replaces_ours_in_place() -> None:
    old = install(USER_TEXT, exe=OLD_EXE).new
    p = install(old)
    assert p.changed and p.new is not None
    new = json.loads(p.new)
    for event in hc.CLAUDE_EVENTS:
        commands = [h["command"] for h in handlers(new, event)]
        assert f"{EXE[0]} hook claude-code" in commands
        assert not any(OLD_EXE[0] in c for c in commands)
    # in place: the user's Stop hook is still first, ours second
    assert [h["command"] for h in handlers(new, "Stop")] == ["notify-send 'Claude is done'",
                                                             f"{EXE[0]} hook claude-code"]
    assert any("now runs" in n and OLD_EXE[0] in n for n in p.notes)
    # only the command strings changed
    assert p.diff().count("\n-") == len(hc.CLAUDE_EVENTS)


def test_install_removes_duplicates_and_events_no_longer_used() -> None:
    data = json.loads(USER_TEXT)
    ours = {"type": "command", "command": "/x/deck-tray hook claude-code"}
    data["hooks"]["Stop"].append({"hooks": [dict(ours)]})
    data["hooks"]["Stop"].append({"hooks": [dict(ours), {"type": "command", "command": "mine"}]})
    data["hooks"]["PreToolUse"].append({"matcher": "*", "hooks": [dict(ours)]})
    p = install(json.dumps(data, indent=2))
    assert p.new is not None
    new = json.loads(p.new)
    assert [h["command"] for h in handlers(new, "Stop")] == ["notify-send 'Claude is done'",
                                                             f"{EXE[0]} hook claude-code", "mine"]
    assert new["hooks"]["PreToolUse"] == USER_SETTINGS["hooks"]["PreToolUse"]


def test_uninstall_restores_the_user_file_byte_for_byte() -> None:
    installed = install(USER_TEXT).new
    p = hc.plan_json(CC, SETTINGS, installed, hc.CLAUDE_EVENTS, EXE, install=False)
    assert p.new == USER_TEXT
    # also when the installed entry runs another executable
    old = install(USER_TEXT, exe=OLD_EXE).new
    assert hc.plan_json(CC, SETTINGS, old, hc.CLAUDE_EVENTS, EXE, install=False).new == USER_TEXT


def test_uninstall_keeps_a_user_handler_sharing_our_group() -> None:
    data = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "/x/deck-tray hook claude-code"},
                                          {"type": "command", "command": "mine", "async": True}]}]}}
    p = hc.plan_json(CC, SETTINGS, json.dumps(data), hc.CLAUDE_EVENTS, EXE, install=False)
    assert p.new is not None
    assert json.loads(p.new) == {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "mine",
                                                                "async": True}]}]}}


def test_uninstall_without_ours_changes_nothing() -> None:
    p = hc.plan_json(CC, SETTINGS, USER_TEXT, hc.CLAUDE_EVENTS, EXE, install=False)
    assert not p.changed
    assert "no deck-tray hooks to remove" in p.notes[0]
    assert not hc.plan_json(CC, SETTINGS, None, hc.CLAUDE_EVENTS, EXE, install=False).changed


def test_install_into_no_file_and_into_an_empty_one() -> None:
    for text in (None, "", "  \n"):
        p = install(text, path=HOOKS, agent=CX, events=hc.CODEX_EVENTS)
        assert p.new is not None
        data = json.loads(p.new)
        assert list(data["hooks"]) == list(hc.CODEX_EVENTS)
        assert data["hooks"]["Stop"] == [{"hooks": [{"type": "command", "command": f"{EXE[0]} hook codex",
                                                     "timeout": hc.HOOK_TIMEOUT_S}]}]
        assert p.new.startswith('{\n  "hooks": {\n    "PermissionRequest": [\n      {\n        "matcher": "*",')
    assert install(None).diff().startswith(f"--- /dev/null\n+++ {SETTINGS}\n")


def test_codex_hooks_keep_the_user_groups_positions() -> None:
    """Codex keys its trust by position (event:group:handler): ours go after the user's."""
    user = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}, "x": 1}
    p = install(json.dumps(user, indent=1), path=HOOKS, agent=CX, events=hc.CODEX_EVENTS)
    assert p.new is not None
    new = json.loads(p.new)
    assert new["hooks"]["Stop"][0] == user["hooks"]["Stop"][0]
    assert new["x"] == 1
    assert p.new.startswith('{\n "hooks": {\n  "Stop": [\n   {\n    "hooks": [')  # indent 1 kept


@pytest.mark.parametrize(("text", "line", "words"), [
    # A trailing comma on line 5: Python 3.13 names that line, 3.11 and 3.12 the next (where
    # the parser noticed); either points the user at it.
    ('{\n  "hooks": {\n    "Stop": []\n  },\n  "model": "opus",\n}\n', (5, 6), "not valid JSON"),
    ('{"hooks": {"Stop": [}', 1, "not valid JSON"),
    ("[1, 2]", None, "expected a JSON object"),
    ('{"hooks": []}', None, '"hooks" is a list'),
    ('{"hooks": {"Stop": {"hooks": []}}}', None, '"hooks.Stop" is a dict'),
    ('{"hooks": {"Stop": ["cmd"]}}', None, '"hooks.Stop[0]" is a str'),
    ('{"hooks": {"Stop": [{"hooks": "cmd"}]}}', None, '"hooks.Stop[0].hooks" is not a list'),
])
def test_malformed_files_are_refused_with_file_and_line(text: str, line: int | tuple[int, ...] | None,
                                                        words: str) -> None:
    with pytest.raises(hc.ConfigError) as err:
        install(text)
    assert err.value.path == SETTINGS
    lines = line if isinstance(line, tuple) else (line,)
    assert err.value.line in lines
    assert words in str(err.value)
    got = err.value.line
    assert str(err.value).startswith(str(SETTINGS) + (f", line {got}" if got else ""))


def test_a_compact_hand_written_file_changes_only_where_ours_go() -> None:
    text = ('{\n    "model": "opus",\n    "hooks": {\n        "Stop": [\n'
            '            {"hooks": [{"type": "command", "command": "notify-send done"}]}\n        ],\n'
            '        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard"}]}]\n'
            '    },\n    "permissions": {"allow": ["Bash(ls:*)"]}\n}\n')
    p = install(text)
    assert p.new is not None
    removed = [line for line in p.diff().splitlines() if line.startswith("-") and not line.startswith("---")]
    # only lines that gained a trailing comma
    assert removed == ['-            {"hooks": [{"type": "command", "command": "notify-send done"}]}',
                       '-        "PreToolUse": [{"matcher": "Bash", "hooks": '
                       '[{"type": "command", "command": "guard"}]}]']
    assert '    "permissions": {"allow": ["Bash(ls:*)"]}\n}\n' in p.new
    assert '\n                "hooks": [\n                    {\n                        "type": "command",' in p.new
    assert hc.plan_json(CC, SETTINGS, p.new, hc.CLAUDE_EVENTS, EXE, install=False).new == text


def test_an_empty_hooks_object_is_filled_in_its_indentation() -> None:
    text = '{\n  "hooks": {},\n  "model": "x"\n}\n'
    p = install(text, events=("Stop",))
    assert p.new == ('{\n  "hooks": {\n    "Stop": [\n      {\n        "hooks": [\n          {\n'
                     '            "type": "command",\n            "command": "/home/u/.local/bin/deck-tray hook '
                     'claude-code",\n            "timeout": 10\n          }\n        ]\n      }\n    ]\n  },\n'
                     '  "model": "x"\n}\n')


# --------------------------------------------------------------------------- state


def test_hooks_state() -> None:
    def state(text: str | None, exists: Any = None) -> tuple[hc.HookState, str]:
        return hc.hooks_state(hc.load_json(SETTINGS, text), hc.CLAUDE_EVENTS, CC, EXE, exists)

    assert state(None) == (hc.HookState.NOT_INSTALLED, "no deck-tray hooks")
    assert state(USER_TEXT)[0] is hc.HookState.NOT_INSTALLED
    full = install(USER_TEXT).new
    s, detail = state(full)
    assert s is hc.HookState.INSTALLED
    assert detail.startswith("all 6 events (PermissionRequest, Notification, Stop") and EXE[0] in detail
    s, detail = state(install(USER_TEXT, exe=OLD_EXE).new, exists=lambda p: False)
    assert s is hc.HookState.OUTDATED
    assert OLD_EXE[0] in detail and "no longer exists" in detail
    assert "no longer exists" not in state(install(USER_TEXT, exe=OLD_EXE).new, exists=lambda p: True)[1]
    part = install(USER_TEXT, events=("Stop", "PermissionRequest")).new
    s, detail = state(part)
    assert s is hc.HookState.PARTIAL
    assert detail == ("deck-tray hooks for 2 of 6 events; missing Notification, UserPromptSubmit, SessionStart, "
                      "SessionEnd")
    assert part is not None
    disabled = json.dumps(dict(json.loads(full or ""), disableAllHooks=True))
    assert "disableAllHooks" in state(disabled)[1]


def test_codex_trust_note() -> None:
    data = json.loads(install(None, path=HOOKS, agent=CX, events=("Stop", "PermissionRequest")).new or "")
    assert hc.trust_key(HOOKS, "PermissionRequest", 0, 0) == f"{HOOKS}:permission_request:0:0"
    assert "trust them once" in hc.codex_trust_note(None, HOOKS, data, EXE)
    one = f'[hooks.state."{HOOKS}:stop:0:0"]\ntrusted_hash = "sha256:ab"\n'
    assert "1 of 2" in hc.codex_trust_note(one, HOOKS, data, EXE)
    both = one + f'[hooks.state."{HOOKS}:permission_request:0:0"]\ntrusted_hash = "sha256:cd"\n'
    assert "all of them" in hc.codex_trust_note(both, HOOKS, data, EXE)
    assert hc.codex_trust_note(both, HOOKS, {}, EXE) == ""
    assert hc.codex_trust_note("not = [toml", HOOKS, data, EXE) == ""


# --------------------------------------------------------------------------- config.toml notify

CODEX_TOML = '''# Codex settings
model = "gpt-5"
approval_policy = "on-request"
sandbox_mode = "workspace-write"

# providers
[model_providers.fake]
name = "fake"
base_url = "http://127.0.0.1:1234/v1"

[projects."/home/u/work/proj"]
trust_level = "trusted"

[tui]
notifications = true
'''
OURS_LINE = 'notify = ["/home/u/.local/bin/deck-tray", "hook", "codex"]'


def notify(text: str | None, install: bool = True, exe: list[str] = EXE) -> hc.FilePlan:
    return hc.plan_notify(CONFIG, text, exe, install)


def test_notify_absent_goes_after_the_last_top_level_key() -> None:
    p = notify(CODEX_TOML)
    assert p.new == CODEX_TOML.replace('sandbox_mode = "workspace-write"\n',
                                       f'sandbox_mode = "workspace-write"\n{OURS_LINE}\n')
    data = tomllib.loads(p.new or "")
    assert data["notify"] == [*EXE, "hook", "codex"]
    assert notify(p.new).new is None  # idempotent
    assert "notify already installed" in notify(p.new).notes[0]
    assert notify(p.new, install=False).new == CODEX_TOML


@pytest.mark.parametrize(("text", "expected"), [
    (None, OURS_LINE + "\n"),
    ("", OURS_LINE + "\n"),
    ('model = "x"', f'model = "x"\n{OURS_LINE}\n'),
    ('model = "x"\n\n\n', f'model = "x"\n{OURS_LINE}\n\n\n'),
    ("[tui]\nnotifications = true\n", f"{OURS_LINE}\n\n[tui]\nnotifications = true\n"),
    ("# about tui\n[tui]\nx = 1\n", f"{OURS_LINE}\n\n# about tui\n[tui]\nx = 1\n"),
    ("# my codex\n\n[tui]\nx = 1\n", f"# my codex\n{OURS_LINE}\n\n[tui]\nx = 1\n"),
])
def test_notify_insert_places(text: str | None, expected: str) -> None:
    assert notify(text).new == expected


def test_notify_ours_with_another_path_is_rewritten_in_place() -> None:
    text = CODEX_TOML.replace("sandbox_mode", 'notify = [\n  "/old/deck-tray",\n  "hook",\n  "codex",\n]\nsandbox_mode')
    p = notify(text)
    assert p.new == CODEX_TOML.replace("sandbox_mode", OURS_LINE + "\nsandbox_mode")
    assert any("was /old/deck-tray hook codex" in n for n in p.notes)
    state, detail = hc.notify_state(CONFIG, text, EXE, lambda p: False)
    assert state is hc.HookState.OUTDATED and "/old/deck-tray, which no longer exists" in detail


def test_someone_elses_notify_is_left_alone_and_explained() -> None:
    text = CODEX_TOML.replace("sandbox_mode", 'notify = ["python3", "/home/u/bin/notify.py"]\nsandbox_mode')
    p = notify(text)
    assert not p.changed
    (note,) = p.notes
    assert "another program" in note and "/home/u/bin/notify.py" in note and OURS_LINE in note
    assert not notify(text, install=False).changed
    state, detail = hc.notify_state(CONFIG, text, EXE)
    assert state is hc.HookState.FOREIGN and "line 4" in detail


def test_ours_inside_a_table_by_mistake_is_moved_to_the_top_level() -> None:
    text = CODEX_TOML + 'notify = ["/old/deck-tray", "hook", "codex"]\n'
    state, detail = hc.notify_state(CONFIG, text, EXE)
    assert state is hc.HookState.NOT_INSTALLED and "inside [tui]" in detail
    p = notify(text)
    assert p.new is not None
    assert p.new == notify(CODEX_TOML).new
    assert any("removed deck-tray's notify line 16 from [tui]" in n for n in p.notes)
    assert notify(text, install=False).new == CODEX_TOML


def test_someone_elses_notify_inside_a_table_stays() -> None:
    text = CODEX_TOML + 'notify = ["my-notifier"]\n'
    p = notify(text)
    assert p.new is not None
    assert p.new.endswith('notifications = true\nnotify = ["my-notifier"]\n')
    assert tomllib.loads(p.new)["notify"] == [*EXE, "hook", "codex"]


def test_header_and_notify_lookalikes_inside_multiline_values_are_not_touched() -> None:
    text = ('instructions = """\n[not.a.table]\nnotify = ["x"]\n"""\nmodel = "x"\n'
            'list = [\n  [1, 2],\n]\n\n[tui]\nx = 1\n')
    p = notify(text)
    assert p.new == text.replace('list = [\n  [1, 2],\n]\n', f'list = [\n  [1, 2],\n]\n{OURS_LINE}\n')
    assert tomllib.loads(p.new or "")["instructions"] == '[not.a.table]\nnotify = ["x"]\n'


def test_notify_paths_with_quotes_and_unicode_stay_valid_toml() -> None:
    exe = ['/home/jürgen/My "Apps"/deck-tray\\x']
    p = notify(CODEX_TOML, exe=exe)
    assert tomllib.loads(p.new or "")["notify"] == [*exe, "hook", "codex"]
    assert hc.notify_state(CONFIG, p.new, exe)[0] is hc.HookState.INSTALLED


def test_malformed_toml_is_refused_with_the_line() -> None:
    text = 'model = "x"\n[tui]\nnotifications = tru\n'
    with pytest.raises(hc.ConfigError) as err:
        notify(text)
    assert err.value.line == 3 and str(err.value).startswith(f"{CONFIG}, line 3: not valid TOML")
    with pytest.raises(hc.ConfigError):
        hc.notify_state(CONFIG, text, EXE)


def test_a_long_user_config_gains_one_line_and_loses_none() -> None:
    """Everything of the user's stays byte for byte: comments, order, blank lines, their tables."""
    text = ('# Codex\nmodel = "gpt-5"   # the default\n\n'
            + "".join(f'# project {i}\n[projects."/home/u/p{i}"]\ntrust_level = "trusted"\n\n'
                      f'[mcp_servers.s{i}]\ncommand = "npx"\nargs = [\n  "-y",  # yes\n  "s{i}",\n]\n\n'
                      for i in range(150))
            + '[tui]\nnotify = ["my-notifier"]  # mine\n')
    p = notify(text)
    assert p.new is not None
    changed = [line for line in p.diff().splitlines()[2:] if line[:1] in "+-"]
    assert changed == [f"+{OURS_LINE}"]
    assert notify(p.new, install=False).new == text


def test_our_notify_keeps_its_comment_and_indentation_when_rewritten() -> None:
    text = 'model = "x"\n  notify = ["/old/deck-tray", "hook", "codex"]  # deck-tray\n[tui]\nx = 1'
    p = notify(text)
    assert p.new == f'model = "x"\n  {OURS_LINE}  # deck-tray\n[tui]\nx = 1'


def test_ours_in_an_array_of_tables_is_removed_and_the_rest_kept() -> None:
    text = '[[profiles]]\nname = "a"\nnotify = ["/old/deck-tray", "hook", "codex"] # oops\n[[profiles]]\nname = "b"'
    p = notify(text, install=False)
    assert p.new == '[[profiles]]\nname = "a"\n[[profiles]]\nname = "b"'
    assert p.notes == (f"{CONFIG}: removed deck-tray's notify line 3 from [[profiles]] "
                       "(Codex reads notify only at the top level)", f"{CONFIG}: no deck-tray notify to remove")


TOP_PIECES = ['model = "gpt-5"\n', "# a comment\n", "\n", 'instructions = """\n[x]\nnotify = 1\n"""\n',
              "list = [\n  1, # one\n  2,\n]\n", "  indented = true  # note\n"]
HEADERS = ["[tui]\n", '[projects."/home/u/p"]\n', "[[profiles]]\n", "[mcp_servers.x]\n"]
TABLE_PIECES = ["# about the next table\n", "\n", 'name = "x"\n', "  # indented comment\n",
                'notify = ["/old/deck-tray", "hook", "codex"]\n', 'notify = ["my-notifier"]  # mine\n']


@settings(max_examples=200, deadline=None)
@given(top=st.lists(st.sampled_from(TOP_PIECES), max_size=5),
       ours_on_top=st.sampled_from(["", 'notify = ["/old/deck-tray", "hook", "codex"]  # c\n']),
       tables=st.lists(st.tuples(st.sampled_from(HEADERS), st.lists(st.sampled_from(TABLE_PIECES), max_size=3)),
                       max_size=4, unique_by=lambda t: t[0]))
def test_notify_install_and_uninstall_change_only_notify_lines(top: list[str], ours_on_top: str,
                                                               tables: list[tuple[str, list[str]]]) -> None:
    text = "".join(top) + ours_on_top + "".join(h + "".join(body) for h, body in tables)
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # a key twice in one table
    new = notify(text).new or text
    after = tomllib.loads(new)
    assert after["notify"] == [*EXE, "hook", "codex"]

    def others(data: Any) -> Any:  # everything but deck-tray's notify lines
        if isinstance(data, dict):
            return {k: others(v) for k, v in data.items() if not (k == "notify" and "hook" in v)}
        return [others(v) for v in data] if isinstance(data, list) else data
    assert others(after) == others(before)

    def lines(t: str) -> list[str]:  # install may add one blank line after its own
        return [line for line in t.splitlines() if line.strip() and "deck-tray" not in line]
    assert lines(new) == lines(text)
    assert notify(new).new is None
    removed = notify(new, install=False).new
    assert removed is not None and "deck-tray" not in removed
    assert lines(removed) == lines(text)


def test_a_file_tomlkit_cannot_write_back_is_refused_with_what_to_do_by_hand() -> None:
    """tomlkit regroups an array of tables interrupted by another table: nothing is edited."""
    text = '[[profiles]]\nname = "a"\n\n[tui]\nx = 1\n\n[[profiles]]\nname = "b"\n'
    with pytest.raises(hc.ConfigError) as err:
        notify(text)
    assert f"nothing was changed. To finish by hand, add {OURS_LINE} at the top level" in str(err.value)
    assert hc.notify_state(CONFIG, text, EXE) == (hc.HookState.NOT_INSTALLED, "no notify program")
    assert not notify(text, install=False).changed
    foreign = 'notify = ["my-notifier"]\n' + text
    assert not notify(foreign).changed and "another program" in notify(foreign).notes[0]
    assert hc.notify_state(CONFIG, foreign, EXE)[0] is hc.HookState.FOREIGN
    ours = f"{OURS_LINE}\n" + text
    assert notify(ours).notes == (f"{CONFIG}: notify already installed",)
    assert hc.notify_state(CONFIG, ours, EXE) == (hc.HookState.INSTALLED, f"{OURS_LINE} (the top-level notify)")
    with pytest.raises(hc.ConfigError, match="To finish by hand, remove the top-level notify line"):
        notify(ours, install=False)


def test_notify_state_absent() -> None:
    assert hc.notify_state(CONFIG, None, EXE) == (hc.HookState.NOT_INSTALLED, "no notify program")
    assert hc.notify_state(CONFIG, CODEX_TOML, EXE)[0] is hc.HookState.NOT_INSTALLED
    assert hc.notify_state(CONFIG, notify(CODEX_TOML).new, EXE) == (hc.HookState.INSTALLED,
                                                                    f"{OURS_LINE} (line 5)")


# --------------------------------------------------------------------------- diffs, backups


def test_diff_and_backup_names() -> None:
    p = install(USER_TEXT)
    d = p.diff()
    assert d.startswith(f"--- {SETTINGS}\n+++ {SETTINGS}\n@@ ")
    assert "+      {\n" in d
    when = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)
    assert hc.backup_path(SETTINGS, when) == Path("/home/u/.claude/settings.json.deck-tray-backup-20261122T010203Z")
    assert hc.unified_diff(SETTINGS, "a", "b").endswith("+b\n\\ No newline at end of file\n")
