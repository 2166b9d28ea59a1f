"""What a failed ssh means, in the user's words, with the command that fixes it (issue #18; the
stderr lines are OpenSSH 9.2's, from the real sshd of tests/e2e/ssh_host.py)."""

from __future__ import annotations

from deck_tray.services.remote import HostState, explain

SSH = ["ssh", "-F", "/home/me/.ssh/lab_config"]


def test_deck_tray_missing_there_names_the_install_command_for_this_host() -> None:
    state, text = explain(127, ["bash: line 1: deck-tray: command not found"], SSH, "me@lab", "lab")
    assert state is HostState.NOT_INSTALLED
    assert "deck-tray is not installed on me@lab" in text and "“deck-tray remote install lab”" in text


def test_an_unknown_host_key_says_which_ssh_command_to_run_by_hand() -> None:
    state, text = explain(255, ["Host key verification failed."], SSH, "me@lab", "lab")
    assert state is HostState.HOST_KEY
    assert "“ssh -F /home/me/.ssh/lab_config me@lab”" in text and "nothing was sent" in text


def test_a_refused_login_never_asks_for_a_password() -> None:
    state, text = explain(255, ["me@127.0.0.1: Permission denied (publickey)."], SSH, "me@lab", "lab")
    assert state is HostState.LOGIN_FAILED and "never asks for a password" in text
