"""Where "Open in terminal" puts the new pane: the pure decide step."""

from __future__ import annotations

import shlex

import pytest

from deck_tray.core.placement import (
    MIN_COLS,
    MIN_ROWS,
    Action,
    ClientSpot,
    PaneSpot,
    check_env,
    choose,
    command_line,
    current_pane,
    exec_argv,
    looks_secret,
    no_server_message,
    place,
)


def spot(pane_id: str, *, server: str = "/s/a", session_id: str = "$0", session: str = "work",
         width: int = 200, height: int = 50, focused: bool = True, zoomed: bool = False,
         activity: int = 0) -> PaneSpot:
    return PaneSpot(server=server, pane_id=pane_id, session_id=session_id, session=session, window="1",
                    index=pane_id.lstrip("%"), width=width, height=height, focused=focused, zoomed=zoomed,
                    session_activity=activity)


# -- the user's current pane

def test_most_recent_client_wins_over_session_activity() -> None:
    a = spot("%1", session_id="$0", activity=500)
    b = spot("%2", session_id="$1", activity=100)
    clients = [ClientSpot("/s/a", "$0", 10), ClientSpot("/s/a", "$1", 20)]
    assert current_pane([a, b], clients) == b


def test_focused_pane_of_the_client_session_not_other_panes() -> None:
    other = spot("%1", focused=False)
    mine = spot("%2")
    assert current_pane([other, mine], [ClientSpot("/s/a", "$0", 5)]) == mine


def test_clients_on_several_servers() -> None:
    a = spot("%1", server="/s/a")
    b = spot("%1", server="/s/b")
    clients = [ClientSpot("/s/a", "$0", 10), ClientSpot("/s/b", "$0", 30)]
    assert current_pane([a, b], clients) == b


def test_without_clients_the_most_recent_session() -> None:
    old = spot("%1", session_id="$0", activity=100)
    new = spot("%2", session_id="$1", activity=200)
    assert current_pane([old, new], []) == new


def test_client_of_a_session_without_panes_falls_back() -> None:
    p = spot("%1", session_id="$0", activity=1)
    assert current_pane([p], [ClientSpot("/s/a", "$9", 99)]) == p


def test_no_panes_no_anchor() -> None:
    assert current_pane([], [ClientSpot("/s/a", "$0", 1)]) is None


def test_ties_keep_the_listed_order() -> None:
    a = spot("%1", session_id="$0")
    b = spot("%2", session_id="$1")
    assert current_pane([a, b], [ClientSpot("/s/a", "$1", 7), ClientSpot("/s/a", "$0", 7)]) == b


# -- how to place it

@pytest.mark.parametrize(("width", "height", "action"), [
    (2 * MIN_COLS + 1, 10, Action.SPLIT_H),   # exactly two 80-column halves plus the border
    (2 * MIN_COLS, 50, Action.SPLIT_V),       # one column short: stacked instead
    (300, 5, Action.SPLIT_H),
    (100, 2 * MIN_ROWS + 1, Action.SPLIT_V),
    (100, 2 * MIN_ROWS, Action.NEW_WINDOW),
    (MIN_COLS - 1, 80, Action.NEW_WINDOW),    # too narrow for the command even stacked
    (40, 10, Action.NEW_WINDOW),
])
def test_choose_by_size(width: int, height: int, action: Action) -> None:
    assert choose(spot("%1", width=width, height=height)) is action


def test_zoomed_window_gets_a_new_window() -> None:
    assert choose(spot("%1", width=300, height=80, zoomed=True)) is Action.NEW_WINDOW


def test_custom_minimums() -> None:
    assert choose(spot("%1", width=81, height=10), min_cols=40) is Action.SPLIT_H


def test_place_explains_and_anchors() -> None:
    p = spot("%3", width=100, height=40, session="dev")
    plan = place([p], [ClientSpot("/s/a", "$0", 1)])
    assert plan.action is Action.SPLIT_V
    assert plan.anchor == p
    assert "dev:1.3" in plan.reason and "100×40" in plan.reason


def test_no_server_refuses() -> None:
    plan = place([], [])
    assert plan.action is Action.REFUSE and plan.anchor is None


def test_no_server_message_has_a_pasteable_command() -> None:
    argv = ["opencode", "attach", "http://127.0.0.1:4096", "--session", "ses 1; rm -rf ~"]
    msg = no_server_message(argv)
    assert msg.startswith("No tmux server is running. Start tmux, then try again — or run: ")
    assert msg.endswith(shlex.join(argv))
    assert shlex.split(msg.split("or run: ", 1)[1]) == argv


def test_command_line_with_cwd() -> None:
    line = command_line(["claude", "--resume", "abc"], "/home/me/my project")
    assert line == "cd '/home/me/my project' && claude --resume abc"


# -- arguments

def test_exec_argv_never_hands_tmux_a_single_argument() -> None:
    assert exec_argv(["opencode", "attach"]) == ["opencode", "attach"]
    assert exec_argv(["/opt/my tool"]) == ["env", "--", "/opt/my tool"]
    with pytest.raises(ValueError):
        exec_argv([])
    with pytest.raises(ValueError):
        exec_argv(["a=b"])


@pytest.mark.parametrize("name", ["OPENCODE_SERVER_PASSWORD", "OPENAI_API_KEY", "GITHUB_TOKEN",
                                  "client_secret", "MY_PASSPHRASE"])
def test_secret_names_refused(name: str) -> None:
    assert looks_secret(name)
    with pytest.raises(ValueError, match="keyring"):
        check_env({name: "x"})


@pytest.mark.parametrize("name", ["OPENCODE_SERVER_USERNAME", "TERM", "KEYBOARD_LAYOUT", "SSH_AUTH_SOCK"])
def test_ordinary_names_allowed(name: str) -> None:
    assert not looks_secret(name)
    check_env({name: "value with = and spaces"})


@pytest.mark.parametrize("env", [{"": "x"}, {"A=B": "x"}, {"1X": "x"}, {"X": "a\0b"}])
def test_malformed_env_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        check_env(env)
