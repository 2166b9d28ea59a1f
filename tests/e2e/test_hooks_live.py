"""End to end: hooks written by ``deck-tray hooks install`` fire in the real Claude Code 2.1.197
and codex-cli 0.169.0, next to the user's own hooks.

The hook command is a logger (``--command``) instead of deck-tray's forwarder, so the test
sees exactly what the agents pass: the payload on stdin (hooks) or as the last argument
(Codex ``notify``), after the ``hook <agent>`` words deck-tray writes.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .harness import ClaudeAgent, CodexAgent, FakeModel, TmuxServer, find_agent_bin, wait_shown, wait_until

pytestmark = pytest.mark.e2e

LOGGER = '''import json, sys
raw = sys.stdin.read() if len(sys.argv) < 5 else ""
with open(sys.argv[1], "a") as fh:
    fh.write(json.dumps({"argv": sys.argv[2:], "stdin": raw}) + "\\n")
'''


def install(env: dict[str, str], agent: str, exe: list[str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "CLAUDE_CONFIG_DIR", "CODEX_HOME"))}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "deck_tray", "hooks", "install", "--agent", agent, "--yes",
                           "--command", shlex.join(exe)], env=full, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def entries(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        e = json.loads(line)
        e["payload"] = json.loads(e["argv"][-1] if len(e["argv"]) > 2 else e["stdin"] or "null")
        out.append(e)
    return out


def events(log: Path) -> list[str]:
    return [e["payload"].get("hook_event_name") or e["payload"].get("type") for e in entries(log)]


def test_claude_code_runs_the_installed_hooks(tmp_path: Path) -> None:
    if find_agent_bin("claude") is None:
        pytest.skip("claude not found (npm install --prefix .agents, or set DECK_TRAY_AGENTS_DIR)")
    logger = tmp_path / "logger.py"
    logger.write_text(LOGGER)
    ours, theirs = tmp_path / "ours.jsonl", tmp_path / "theirs.jsonl"
    with FakeModel("anthropic", tmp_path / "fake") as model, TmuxServer() as tmux:
        agent = ClaudeAgent(tmux, model, tmp_path / "claude", config_dir=True)
        agent.config_dir.mkdir(parents=True)
        user_stop = {"type": "command", "command": shlex.join([sys.executable, str(logger), str(theirs)])}
        (agent.config_dir / "settings.json").write_text(json.dumps(
            {"hooks": {"Stop": [{"hooks": [user_stop]}]}, "theme": "dark"}, indent=2))
        res = install({"HOME": str(agent.home), "CLAUDE_CONFIG_DIR": str(agent.config_dir)}, "claude-code",
                      [sys.executable, str(logger), str(ours)])
        assert res.returncode == 0, res.stdout + res.stderr
        settings = json.loads((agent.config_dir / "settings.json").read_text())
        assert settings["hooks"]["Stop"][0] == {"hooks": [user_stop]} and settings["theme"] == "dark"
        with agent:
            agent.type_line("please FAKE_BASH now")
            agent.wait_for(r"Do you want to proceed\?")
            wait_until(lambda: "PermissionRequest" in events(ours), 30, "the PermissionRequest hook")
            (perm,) = [e for e in entries(ours) if e["payload"]["hook_event_name"] == "PermissionRequest"]
            assert perm["argv"] == ["hook", "claude-code"]
            assert perm["payload"]["tool_name"] == "Bash"
            assert "fake-bash-ran" in perm["payload"]["tool_input"]["command"]
            assert perm["payload"]["cwd"] == str(agent.project)
            # Read it first, as a person does: 2.1.332 drops a key sent right as the first permission
            # dialog of a session appears (harness.READ_DIALOG_S); the turn then never ended.
            wait_shown(agent.capture, r"Do you want to proceed\?")
            agent.send_keys("1")
            wait_until(lambda: "Stop" in events(ours), 60, "the Stop hook")
            wait_until(lambda: "Stop" in events(theirs), 30, "the user's own Stop hook")
        seen = events(ours)
        assert seen[:3] == ["SessionStart", "UserPromptSubmit", "PermissionRequest"], seen
        assert {e["payload"]["session_id"] for e in entries(ours)} == {perm["payload"]["session_id"]}


def test_codex_runs_the_installed_hooks_and_notify(tmp_path: Path) -> None:
    if find_agent_bin("codex") is None:
        pytest.skip("codex not found (npm install --prefix .agents, or set DECK_TRAY_AGENTS_DIR)")
    logger = tmp_path / "logger.py"
    logger.write_text(LOGGER)
    ours = tmp_path / "ours.jsonl"
    with FakeModel("openai", tmp_path / "fake") as model, TmuxServer() as tmux:
        agent = CodexAgent(tmux, model, tmp_path / "codex")
        agent.home.mkdir(parents=True)
        agent.project.mkdir(parents=True)
        agent.prepare()  # config.toml with tables, like a user's; git repo
        res = install({"HOME": str(agent.home), "CODEX_HOME": str(agent.codex_home)}, "codex",
                      [sys.executable, str(logger), str(ours)])
        assert res.returncode == 0, res.stdout + res.stderr
        assert "/hooks" in res.stdout
        # `codex exec` runs hooks and notify too; trust is bypassed here (the user trusts once via /hooks).
        run = subprocess.run([agent.binary, "exec", "--dangerously-bypass-hook-trust", "say hello"],
                             env=agent.env(), cwd=agent.project, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        wait_until(lambda: "agent-turn-complete" in events(ours), 30, "the notify program")
    got = entries(ours)
    seen = events(ours)
    for event in ("SessionStart", "UserPromptSubmit", "Stop"):
        assert event in seen, seen
    hook = next(e for e in got if e["payload"].get("hook_event_name") == "Stop")
    assert hook["argv"] == ["hook", "codex"]
    note = next(e for e in got if e["payload"].get("type") == "agent-turn-complete")
    assert note["argv"][:2] == ["hook", "codex"] and len(note["argv"]) == 3  # the JSON is the last argument
    assert note["payload"]["thread-id"] == hook["payload"]["session_id"]
