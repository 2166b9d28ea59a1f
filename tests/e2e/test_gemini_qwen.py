"""End to end (issue #19): the real Gemini CLI 0.61.0 and Qwen Code 0.24.4 in a private tmux
server, against the loopback fake model, seen and answered by deck-tray's CLI (a separate
process, as a user runs it).

Each agent: a shell confirmation is listed ``waiting_permission`` with the real option labels
and answered by ``reply --allow`` (the command runs); a question is answered by its option, and
again with free text (its free-text row); a multi-line unicode prompt reaches the model
byte-exact; once the agent has exited back to the shell, ``reply`` is refused and nothing is
typed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .gemini_harness import GeminiAgent, QwenAgent
from .harness import FakeModel, TmuxServer, find_agent_bin, wait_until

pytestmark = pytest.mark.e2e
_HOW = "npm install --prefix .agents @google/gemini-cli@0.61.0 @qwen-code/qwen-code@0.24.4"


@dataclass
class Run:
    name: str
    model: FakeModel
    tmux: TmuxServer
    agent: GeminiAgent | QwenAgent
    env: dict[str, str]


@pytest.fixture(params=["gemini-cli", "qwen-code"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    """A real agent at its idle prompt, in a bash of its own pane (so /quit gives the shell back)."""
    name = request.param
    cls = GeminiAgent if name == "gemini-cli" else QwenAgent
    if find_agent_bin(cls.BIN_NAME) is None:
        pytest.skip(f"{cls.BIN_NAME} not found ({_HOW})")
    with (
        FakeModel("gemini", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        cls(tmux, model, tmp_path / name, via_shell=True) as agent,
    ):
        keep = ("HOME", "GEMINI_CLI_HOME", "QWEN_HOME")
        env = {k: v for k, v in agent.env().items() if k in keep}
        env["TMUX_TMPDIR"] = str(tmux.tmpdir)
        env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "no-claude")
        env["CODEX_HOME"] = str(tmp_path / "no-codex")
        yield Run(name, model, tmux, agent, env)


def deck_tray(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("TMUX", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "QWEN_HOME"))}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "deck_tray", *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def mine(run: Run) -> list[dict[str, Any]]:
    res = deck_tray(run.env, "sessions", "--json")
    assert res.returncode == 0, res.stderr
    return [s for s in json.loads(res.stdout) if s["agent"] == run.name]


def wait_session(run: Run, pred: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def check() -> bool:
        found[:] = [s for s in mine(run) if pred(s)]
        return bool(found)

    wait_until(check, timeout, what)
    return found[0]


def user_texts(model: FakeModel) -> list[str]:
    """Every text the fake model received as the user's (Gemini generate requests and Qwen's
    OpenAI chat completions)."""
    out: list[str] = []
    for req in model.requests():
        body = req.get("body") or {}
        for c in body.get("contents") or []:
            if c.get("role", "user") == "user":
                out += [p["text"] for p in c.get("parts") or [] if isinstance(p.get("text"), str)]
        for m in body.get("messages") or []:
            if m.get("role") == "user":
                content = m.get("content")
                if isinstance(content, str):
                    out.append(content)
                elif isinstance(content, list):
                    out += [p.get("text", "") for p in content if isinstance(p, dict)]
    return out


def strings(obj: Any) -> Iterator[str]:
    """Every string in a parsed JSON value (a request body: the tool results are nested deep)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)


def test_seen_and_answered_from_the_cli(run: Run, figure: Any) -> None:
    """One agent through a whole run (one start: each costs 5–8 s): a shell confirmation listed with
    its real options and allowed; a question answered by its option, then with free text; a
    multi-line unicode prompt reaching the model byte-exact; after /quit, a reply refused with
    nothing typed."""
    agent = run.agent
    # 1. The shell confirmation.
    agent.type_line("please FAKE_SHELL now")
    agent.wait_for(agent.PERMISSION_RE, timeout=60)
    t0 = time.monotonic()
    s = wait_session(run, lambda x: x["status"] == "waiting_permission", "the confirmation to be listed", 30)
    figure(f"{run.name}: confirmation on screen → listed waiting_permission by a fresh `sessions` "
           f"in {time.monotonic() - t0:.2f} s")
    assert s["pid"] is not None and s["pane"] and s["pane"].endswith(agent.pane)
    assert s["pending"]["kind"] == "permission"
    assert "touch gemini-ran.txt" in s["pending"]["summary"]
    options = s["pending"]["options"]
    assert options[0] in ("Allow once", "Yes, allow once") and options[-1] == "No, suggest changes", options
    assert "pane title" in s["reason"] or "prompt" in s["reason"], s["reason"]
    res = deck_tray(run.env, "reply", s["id"], "--allow")
    assert res.returncode == 0, res.stderr
    wait_until((agent.project / "gemini-ran.txt").exists, 60, "the approved command to run")
    done = wait_session(run, lambda x: x["id"] == s["id"] and x["status"] == "idle", "the turn to finish")
    assert done["title"] == "please FAKE_SHELL now"
    sid = s["id"]

    # 2. A question, answered by its option.
    agent.type_line("please FAKE_ASK now")
    q = wait_session(run, lambda x: x["id"] == sid and x["status"] == "waiting_question", "the question", 60)
    assert "colour" in q["pending"]["summary"].lower()
    assert q["pending"]["options"][:2] == ["Red", "Blue"]
    res = deck_tray(run.env, "reply", sid, "--option", "Blue")
    assert res.returncode == 0, (res.stdout, res.stderr)
    wait_until(lambda: any("Blue" in json.dumps(r.get("body") or {}) for r in run.model.requests()[-3:]), 60,
               "the answer 'Blue' to reach the model")
    wait_session(run, lambda x: x["id"] == sid and x["status"] == "idle", "the question's turn to finish")

    # 2b. The same question answered in the user's own words: deck-tray opens the free-text row
    # (Qwen: its digit 4; Gemini: Up, wrapping to the row hidden under ▼), waits until it takes
    # typing, types the answer and Enter; the agent sends it to the model as the answer.
    agent.type_line("please FAKE_ASK now")
    wait_session(run, lambda x: x["id"] == sid and x["status"] == "waiting_question", "the second question", 60)
    res = deck_tray(run.env, "reply", sid, "my own colour 2")
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert res.stdout.strip() == "accepted", (res.stdout, res.stderr)
    answer = "**Colour**: my own colour 2" if run.name == "qwen-code" else '{"answers":{"0":"my own colour 2"}}'
    wait_until(lambda: any(answer in t for r in run.model.requests()[-3:] for t in strings(r.get("body"))), 60,
               "the typed answer to reach the model as the question's answer")
    wait_session(run, lambda x: x["id"] == sid and x["status"] == "idle", "the second question's turn to finish")

    # 3. A multi-line unicode prompt, byte-exact.
    text = "first line: ünïcødé — 日本語 🚀\nsecond line\nthird \"quoted\" $HOME `x` 'single' \\ back"
    res = deck_tray(run.env, "reply", sid, text)
    assert res.returncode == 0, (res.stdout, res.stderr)
    wait_until(lambda: text in user_texts(run.model), 60, "the prompt to reach the model byte-exact")
    wait_session(run, lambda x: x["id"] == sid and x["status"] == "idle", "the prompt's turn to finish")

    # 4. The agent exits; the shell is back in the pane: nothing may be typed there.
    agent.tmux.type_line(agent.pane, "/quit")
    wait_until(lambda: agent.tmux.display(agent.pane, "#{pane_current_command}") == "bash", 60,
               "the shell back in the pane")
    res = deck_tray(run.env, "reply", sid, "echo should-never-be-typed")
    assert res.returncode in (2, 3), (res.returncode, res.stdout, res.stderr)
    time.sleep(0.5)  # give a wrongly sent key time to show up before looking
    assert "should-never-be-typed" not in agent.tmux.capture(agent.pane)
