"""End to end: real Claude Code 2.1.197 and codex-cli 0.169.0 in a private tmux server.

deck-tray's CLI (a separate process, as a user runs it) must report each agent's real
permission prompt, answer it into the right pane so the approved command really runs,
type a multi-line unicode prompt that reaches the model byte-exact, and refuse to type
into a pane whose agent has gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from deck_tray.core.record_kinds import unwrap_pastes

from .conftest import World
from .harness import wait_until

pytestmark = pytest.mark.e2e



def deck_tray(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the deck-tray CLI as a user would, in the agents' world."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "CLAUDE_CONFIG_DIR", "CODEX_HOME"))}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "deck_tray", *args], env=full, capture_output=True, text=True, timeout=timeout
    )


def sessions(env: dict[str, str]) -> list[dict[str, Any]]:
    res = deck_tray(env, "sessions", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert isinstance(data, list)
    # opencode servers on the machine (other tests, the developer's own) are not this test's.
    return [x for x in data if x["agent"] != "opencode"]


def wait_session(env: dict[str, str], pred: Any, what: str, timeout: float = 60) -> dict[str, Any]:
    found: dict[str, Any] | None = None

    def check() -> bool:
        nonlocal found
        for s in sessions(env):
            if pred(s):
                found = s
                return True
        return False

    wait_until(check, timeout, what)
    assert found is not None
    return found


def test_claude_permission_is_reported_and_allowed(claude_world: World) -> None:
    tmux = claude_world.tmux
    claude = claude_world.agent
    env = claude_world.env
    claude.type_line("please FAKE_BASH now")
    claude.wait_for(r"Do you want to proceed\?")
    # One scan right after the prompt appeared reports it (its speed is measured in bench/).
    listed = sessions(env)
    [s] = [x for x in listed if x["status"] != "ended"]
    assert s["agent"] == "claude-code"
    assert s["status"] == "waiting_permission", s
    assert s["pid"] == claude.pid
    assert s["pane"] == f"tmux:{tmux.socket_path}:{claude.pane}"
    assert s["pending"]["tool"] == "Bash"
    assert "touch fake-bash-ran.txt" in s["pending"]["summary"]
    assert s["pending"]["options"][0] == "Yes" and s["pending"]["options"][-1] == "No"
    assert "live status file" in s["reason"]

    res = deck_tray(env, "reply", s["id"][:8], "--allow")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() in ("accepted", "submitted")
    wait_until((claude.project / "fake-bash-ran.txt").exists, 60, "the approved command to run")
    wait_session(env, lambda x: x["id"] == s["id"] and x["status"] == "idle", "the turn to finish")


def test_claude_question_is_answered_with_its_option(claude_world: World) -> None:
    model = claude_world.model
    claude = claude_world.agent
    env = claude_world.env
    claude.type_line("please FAKE_ASK now")
    claude.wait_for(r"Enter to select")
    s = wait_session(env, lambda x: x["status"] == "waiting_question", "the question to be reported", 30)
    assert s["pending"]["kind"] == "question"
    assert "colour" in s["pending"]["summary"]
    assert s["pending"]["options"][:2] == ["Red", "Blue"]
    res = deck_tray(env, "reply", s["id"], "--option", "Blue")
    assert res.returncode == 0, res.stderr
    wait_until(
        lambda: any("Blue" in json.dumps(r.get("body", {}).get("messages", [])[-1:]) for r in model.requests()),
        60, "the answer 'Blue' to reach the model",
    )
    res = deck_tray(env, "reply", s["id"], "--option", "Purple")
    assert res.returncode == 3, "no question is open any more: refused"


def test_claude_multiline_unicode_prompt_reaches_the_model_exactly(claude_world: World) -> None:
    # No tab: Claude Code's composer turns a pasted tab into four spaces (seen with 2.1.197).
    text = "first line: ünïcødé — 日本語 🚀\nsecond line\nthird \"quoted\" $HOME `x` 'single' \\ back"
    model = claude_world.model
    env = claude_world.env
    s = wait_session(env, lambda x: x["status"] == "idle" and x["pane"], "the new session to be listed idle")
    res = deck_tray(env, "reply", s["id"], text)
    assert res.returncode == 0, res.stderr

    def prompt_seen() -> bool:
        for req in model.requests():
            for msg in (req.get("body") or {}).get("messages", []):
                content = msg.get("content")
                blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
                if any(b.get("type") == "text" and b.get("text") == text for b in blocks):
                    return True
        return False

    wait_until(prompt_seen, 60, "the prompt to reach the model byte-exact")


def test_reply_is_refused_when_the_agent_is_gone(claude_world: World) -> None:
    tmux = claude_world.tmux
    claude = claude_world.agent
    env = claude_world.env
    s = wait_session(env, lambda x: x["status"] == "idle" and x["pane"], "the session to be listed")
    pane = claude.pane
    # The agent dies; a plain shell takes over the same pane.
    tmux.run("respawn-pane", "-k", "-t", pane, "bash", "--norc", "--noprofile")
    wait_until(lambda: tmux.display(pane, "#{pane_current_command}") == "bash", 30, "bash in the pane")
    res = deck_tray(env, "reply", s["id"], "rm -rf should-never-be-typed")
    assert res.returncode in (2, 3), (res.returncode, res.stdout, res.stderr)
    time.sleep(0.5)  # give a wrongly sent key time to show up before looking
    assert "should-never-be-typed" not in tmux.capture(pane)


def test_codex_approval_is_reported_and_allowed(codex_world: World) -> None:
    tmux = codex_world.tmux
    codex = codex_world.agent
    env = codex_world.env
    codex.type_line("please FAKE_SHELL now")
    codex.wait_for(r"Would you like to run the following command\?")
    s = wait_session(env, lambda x: x["status"] == "waiting_permission", "the approval to be reported", 30)
    assert s["agent"] == "codex"
    assert s["pid"] == codex.pid
    assert s["pane"] == f"tmux:{tmux.socket_path}:{codex.pane}"
    assert "touch fake-shell-ran.txt" in s["pending"]["summary"]
    assert s["pending"]["options"][0] == "Yes, proceed"
    assert "screen" in s["reason"]

    res = deck_tray(env, "reply", s["id"][:10], "--allow")
    assert res.returncode == 0, res.stderr
    wait_until((codex.project / "fake-shell-ran.txt").exists, 60, "the approved command to run")
    wait_session(env, lambda x: x["id"] == s["id"] and x["status"] == "idle", "the turn to finish")


def test_codex_deny_with_message(codex_world: World) -> None:
    model = codex_world.model
    codex = codex_world.agent
    env = codex_world.env
    codex.type_line("please FAKE_SHELL now")
    codex.wait_for(r"Would you like to run the following command\?")
    s = wait_session(env, lambda x: x["status"] == "waiting_permission", "the approval to be reported", 30)
    res = deck_tray(env, "reply", s["id"], "--deny", "use a dry run instead")
    assert res.returncode == 0, res.stderr
    wait_until(
        lambda: any("use a dry run instead" in json.dumps(r.get("body")) for r in model.requests()),
        60, "the follow-up message to reach the model",
    )
    assert not (codex.project / "fake-shell-ran.txt").exists()


def test_claude_question_is_answered_with_free_text(claude_world: World) -> None:
    model, claude, env = claude_world.model, claude_world.agent, claude_world.env
    claude.type_line("please FAKE_ASK now")
    claude.wait_for(r"Enter to select")
    s = wait_session(env, lambda x: x["status"] == "waiting_question", "the question to be reported", 30)
    res = deck_tray(env, "reply", s["id"], "Green, with stripes")
    assert res.returncode == 0, res.stderr
    wait_until(
        lambda: any("Green, with stripes" in json.dumps(r.get("body", {}).get("messages", [])[-1:])
                    for r in model.requests()),
        60, "the free-text answer to reach the model",
    )


def test_prompt_is_refused_while_the_user_has_a_draft_in_the_terminal(claude_world: World) -> None:
    tmux, claude, env = claude_world.tmux, claude_world.agent, claude_world.env
    tmux.send_text(claude.pane, "half-typed thought")
    claude.wait_for("half-typed thought")
    s = wait_session(env, lambda x: x["status"] == "idle" and x["pane"], "the session to be listed")
    res = deck_tray(env, "reply", s["id"], "a prompt from the tray")
    assert res.returncode == 3, (res.stdout, res.stderr)
    assert "half-typed thought" in res.stderr
    time.sleep(0.5)
    screen = claude.capture()
    assert "half-typed thought" in screen and "a prompt from the tray" not in screen


def _texts_sent(model: Any) -> list[str]:
    """Every text block of every message the agent sent to the fake model (both APIs), with
    Claude Code 2.1.332's ``<pasted_content>`` wrapper around a long paste taken off
    (:func:`deck_tray.core.record_kinds.unwrap_pastes`; 2.1.197 sends the pasted text bare)."""
    out: list[str] = []
    for req in model.requests():
        body = req.get("body") or {}
        for msg in [*(body.get("messages") or []), *(body.get("input") or [])]:
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out.extend(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return [unwrap_pastes(t) for t in out]


LONG_TEXT = "\n".join(f"{i:04d} ünïcødé — 日本語 🚀 \"quotes\" $HOME `ticks` 'single' \\ back" for i in range(150))


def test_claude_10kb_prompt_arrives_whole(claude_world: World) -> None:
    assert len(LONG_TEXT.encode()) > 10_000
    env = claude_world.env
    s = wait_session(env, lambda x: x["status"] == "idle" and x["pane"], "the session to be listed")
    res = deck_tray(env, "reply", s["id"], LONG_TEXT)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: LONG_TEXT in _texts_sent(claude_world.model), 60, "the 10 KB prompt to reach the model")


def test_codex_multiline_and_10kb_prompts_arrive_whole(codex_world: World) -> None:
    env = codex_world.env
    short = "first line: ünïcødé — 日本語 🚀\nsecond line\nthird \"quoted\" $HOME `x`"
    # Codex writes no rollout before the first prompt, so deck-tray sees the session after it.
    codex_world.agent.type_line("hello")
    s = wait_session(env, lambda x: x["pane"] and x["status"] == "idle", "the session to be listed idle")
    for text in (short, LONG_TEXT):
        res = deck_tray(env, "reply", s["id"], text)
        assert res.returncode == 0, res.stderr
        wait_until(lambda t=text: t in _texts_sent(codex_world.model), 60, "the prompt to reach the model")
        wait_session(env, lambda x: x["id"] == s["id"] and x["status"] == "idle", "the turn to finish")


def test_codex_always_allow(codex_world: World) -> None:
    codex, env = codex_world.agent, codex_world.env
    codex.type_line("please FAKE_SHELL now")
    codex.wait_for(r"Would you like to run the following command\?")
    s = wait_session(env, lambda x: x["status"] == "waiting_permission", "the approval to be reported", 30)
    assert len(s["pending"]["options"]) == 3
    res = deck_tray(env, "reply", s["id"], "--allow", "--always")
    assert res.returncode == 0, res.stderr
    wait_until((codex.project / "fake-shell-ran.txt").exists, 60, "the approved command to run")
    codex.wait_for("don't ask again|approved", timeout=30)


def test_codex_question_in_plan_mode_is_answered_with_its_option(codex_world: World) -> None:
    codex, env = codex_world.agent, codex_world.env
    codex.wait_for("gpt-fake")  # fully loaded: earlier keys are dropped
    codex.wait_for(r"OpenAI Codex \(v")  # the session is configured (its header is drawn)

    def plan_mode() -> bool:  # Shift+Tab cycles into Plan mode, the only mode with questions
        # The footer names the mode in effect ("Plan mode (shift+tab to cycle)"); the "Model changed
        # … for Plan mode" banner does not: a key taken while Codex still loads shows the banner,
        # then loading ends in Default mode (seen in full runs on a loaded machine).
        if "Plan mode (shift+tab" in codex.capture():
            return True
        codex.send_keys("BTab")
        try:
            codex.wait_for(r"Plan mode \(shift\+tab", timeout=20)
        except AssertionError:
            return False
        return "Plan mode (shift+tab" in codex.wait_stable(quiet=1.0)

    wait_until(plan_mode, 60, "Codex to switch to Plan mode")
    codex.type_line("please FAKE_ASK now")
    codex.wait_for(r"Question 1/1")
    s = wait_session(env, lambda x: x["status"] == "waiting_question", "the question to be reported", 30)
    assert "Blue" in s["pending"]["options"]
    res = deck_tray(env, "reply", s["id"], "--option", "Blue")
    assert res.returncode == 0, res.stderr
    def answered() -> bool:
        for r in codex_world.model.requests():
            tail = json.dumps(r.get("body", {}).get("input", [])[-3:])
            if "function_call_output" in tail and "answers" in tail and "Blue" in tail:
                return True
        return False

    wait_until(answered, 60, "the answer to reach the model")


def test_claude_deny_with_message(claude_world: World) -> None:
    model, claude, env = claude_world.model, claude_world.agent, claude_world.env
    claude.type_line("please FAKE_BASH now")
    claude.wait_for(r"Do you want to proceed\?")
    s = wait_session(env, lambda x: x["status"] == "waiting_permission", "the permission to be reported", 30)
    res = deck_tray(env, "reply", s["id"], "--deny", "use a dry run instead")
    assert res.returncode == 0, res.stderr
    wait_until(lambda: "use a dry run instead" in _texts_sent(model), 60, "the follow-up message to reach the model")
    assert not (claude.project / "fake-bash-ran.txt").exists()
