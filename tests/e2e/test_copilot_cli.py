"""End to end (issue #19): the real GitHub Copilot CLI 1.0.102 in a private tmux server, offline
against the loopback fake ``tests/fakes/fake_llm_copilot.py``, seen and answered by deck-tray's
CLI (a separate process, as a user runs it) through :mod:`deck_tray.core.agents.copilot`.

One Copilot, started from a shell in its pane, goes through: idle → a multi-line unicode prompt
sent with ``reply ID "text"`` reaches the model byte-exact → the shell permission dialog is
listed ``waiting_permission`` with its real options → ``reply ID --allow`` runs the command and
the session goes idle → the ``ask_user`` form is answered by ``reply ID --option Blue`` (arrow
keys from the selected row), then again with free text by ``reply ID "my own colour 2"`` (its
"Other" row) → ``/exit`` gives the shell back, and ``reply`` is refused (exit code 3) with nothing
typed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import psutil
import pytest
from typing_extensions import override

from deck_tray.core.agents.copilot import read_screen

from .copilot_harness import COPILOT_VERSION, CopilotAgent, CopilotFakeModel
from .harness import FakeModel, TmuxServer, find_agent_bin, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        find_agent_bin("copilot") is None,
        reason="copilot not found (install with "
        f"`npm install --prefix .agents @github/copilot@{COPILOT_VERSION}`, or set DECK_TRAY_AGENTS_DIR)",
    ),
]

SHELL_PROMPT = "agent-shell$ "
TEXT = "first line: ünïcødé — 日本語 🚀\nsecond line\nthird \"quoted\" $HOME `x` 'single' \\ back"


class ShellCopilot(CopilotAgent):
    """:class:`CopilotAgent` typed at an interactive ``bash`` in its pane (a user's pane: the
    shell prompt comes back after ``/exit``)."""

    @override
    def argv(self) -> list[str]:
        return ["bash", "--norc", "--noprofile", "-i"]

    @override
    def start(self, timeout: float = 120.0) -> Self:
        self.home.mkdir(parents=True, exist_ok=True)
        self.project.mkdir(parents=True, exist_ok=True)
        self.prepare()
        env = dict(self.env(), PS1=SHELL_PROMPT, HISTFILE="/dev/null")
        self._pane = self.tmux.new_session(self.session_name, self.argv(), self.project, env=env,
                                           width=self.width, height=self.height)
        try:
            self.tmux.wait_for(self.pane, re.escape(SHELL_PROMPT.strip()), timeout=30)
            self.tmux.type_line(self.pane, shlex.join([self.binary, *self.extra_args]))
            self.wait_ready(timeout)
            self._pid = wait_until(self._find_pid, 30, f"copilot process in pane {self._pane}")
        except BaseException:
            self.stop()
            raise
        return self


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[ShellCopilot, dict[str, str]]]:
    """A real Copilot at its idle prompt, and the environment of a deck-tray that sees it."""
    with (
        CopilotFakeModel(tmp_path / "fake") as model,
        TmuxServer() as tmux,
        ShellCopilot(tmux, model, tmp_path / "copilot") as agent,
    ):
        env = {
            "HOME": str(agent.home),
            "COPILOT_HOME": str(agent.copilot_home),
            "TMUX_TMPDIR": str(tmux.tmpdir),
            "CLAUDE_CONFIG_DIR": str(tmp_path / "no-claude"),
            "CODEX_HOME": str(tmp_path / "no-codex"),
        }
        yield agent, env


def deck_tray(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the deck-tray CLI as a user would, in the agent's world."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("TMUX", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "COPILOT_HOME", "GEMINI_CLI_HOME",
                                 "QWEN_HOME"))}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "deck_tray", *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def mine(env: dict[str, str]) -> list[dict[str, Any]]:
    res = deck_tray(env, "sessions", "--json")
    assert res.returncode == 0, res.stderr
    return [s for s in json.loads(res.stdout) if s["agent"] == "copilot-cli"]


def wait_session(env: dict[str, str], pred: Callable[[dict[str, Any]], bool], what: str,
                 timeout: float = 30) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def check() -> bool:
        found[:] = [s for s in mine(env) if pred(s)]
        return bool(found)

    wait_until(check, timeout, what)
    return found[0]


def user_texts(model: FakeModel) -> list[str]:
    """The user messages' texts the fake model received (chat completions)."""
    out: list[str] = []
    for req in model.requests():
        for m in (req.get("body") or {}).get("messages") or []:
            content = m.get("content") if m.get("role") == "user" else None
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out += [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return out


def test_copilot_is_listed_answered_and_left_alone_once_gone(world: tuple[ShellCopilot, dict[str, str]],
                                                             figure: Any) -> None:
    agent, env = world
    s = wait_session(env, lambda x: x["status"] == "idle" and x["pane"], "the new session to be listed idle")
    assert (s["id"], s["pid"]) == (f"copilot-{agent.pid}", agent.pid)
    assert s["pane"].endswith(agent.pane)

    # A multi-line unicode prompt, pasted: the model gets it byte-exact (Copilot puts
    # "<current_datetime>…</current_datetime>\n\n" before it), and events.jsonl records it as is.
    res = deck_tray(env, "reply", s["id"], TEXT)
    assert res.returncode == 0, (res.stdout, res.stderr)
    wait_until(lambda: any(t == TEXT or t.endswith("\n\n" + TEXT) for t in user_texts(agent.model)), 30,
               "the prompt to reach the model byte-exact")
    wait_until(lambda: any(e["type"] == "user.message" and e["data"]["content"] == TEXT for e in agent.events()),
               10, "the prompt in events.jsonl")
    sid = agent.session_dir().name
    s = wait_session(env, lambda x: x["id"] == sid and x["status"] == "idle", "the first turn to finish")
    assert s["title"] == "first line: ünïcødé — 日本語 🚀"

    # The shell dialog: listed waiting_permission with the labels on screen.
    agent.type_line("please FAKE_SHELL now")
    agent.wait_for(CopilotAgent.PERMISSION_RE, timeout=30)
    t0 = time.monotonic()
    s = wait_session(env, lambda x: x["id"] == sid and x["status"] == "waiting_permission",
                     "the dialog to be listed", 20)
    figure(f"copilot-cli: dialog on screen → waiting_permission in `sessions --json` in "
           f"{time.monotonic() - t0:.2f} s")
    assert s["pid"] == agent.pid and s["pane"].endswith(agent.pane)
    assert s["pending"]["kind"] == "permission" and s["pending"]["tool"] == "bash"
    assert s["pending"]["summary"] == "touch copilot-ran.txt && echo hello-from-copilot"
    # The labels as drawn (a long folder is shortened with "…" in the second one).
    assert s["pending"]["options"] == [o.label for o in read_screen(agent.capture()).options]
    yes, always, no = s["pending"]["options"]
    assert (yes, no) == ("Yes", "No, and tell Copilot what to do differently")
    assert always.startswith("Yes, and don't ask again for `touch` in this directory (")
    assert not (agent.project / "copilot-ran.txt").exists()

    res = deck_tray(env, "reply", s["id"], "--allow")
    assert res.returncode == 0, (res.stdout, res.stderr)
    wait_until((agent.project / "copilot-ran.txt").exists, 30, "the allowed command to run")
    wait_session(env, lambda x: x["id"] == sid and x["status"] == "idle", "the turn to finish")
    completed = [e["data"] for e in agent.events() if e["type"] == "permission.completed"]
    assert completed[-1]["result"] == {"kind": "approved"}

    # The ask_user form has no digits: "Blue" is one Down from the selected "Red", then Enter.
    agent.type_line("please FAKE_ASK now")
    agent.wait_for(CopilotAgent.QUESTION_RE, timeout=30)
    s = wait_session(env, lambda x: x["id"] == sid and x["status"] == "waiting_question", "the question", 20)
    assert (s["pending"]["summary"], s["pending"]["options"]) == (
        "Which colour should I use?", ["Red", "Blue", "Other (type your answer)"])
    res = deck_tray(env, "reply", s["id"], "--option", "Blue")
    assert res.returncode == 0, (res.stdout, res.stderr)
    wait_until(lambda: any(e["type"] == "human_response.recorded" for e in agent.events()), 20, "the answer")
    answer = [e["data"] for e in agent.events() if e["type"] == "human_response.recorded"][-1]
    assert answer["response"]["content"] == {"colour": "Blue"}
    wait_session(env, lambda x: x["id"] == sid and x["status"] == "idle", "the turn to finish")

    # The same form answered in the user's own words: Down, Down onto "Other (type your answer)"
    # opens its input box (no Enter), deck-tray waits for it, types the answer and Enter.
    agent.type_line("please FAKE_ASK now")
    agent.wait_for(CopilotAgent.QUESTION_RE, timeout=30)
    wait_session(env, lambda x: x["id"] == sid and x["status"] == "waiting_question", "the second question", 20)
    res = deck_tray(env, "reply", sid, "my own colour 2")
    assert res.returncode == 0 and res.stdout.strip() == "accepted", (res.stdout, res.stderr)
    wait_until(lambda: sum(e["type"] == "human_response.recorded" for e in agent.events()) == 2, 20,
               "the typed answer")
    answer = [e["data"] for e in agent.events() if e["type"] == "human_response.recorded"][-1]
    assert answer["response"]["content"] == {"colour": "my own colour 2"}
    wait_until(lambda: any(m.get("role") == "tool" and m.get("content") == "User responded: my own colour 2"
                           for r in agent.model.requests() for m in (r.get("body") or {}).get("messages") or []),
               20, "the typed answer to reach the model")
    wait_session(env, lambda x: x["id"] == sid and x["status"] == "idle", "the turn to finish")

    # /exit: the shell is back in the pane; a reply is refused and nothing is typed.
    native = psutil.Process(agent.pid)
    agent.type_line("/exit")
    native.wait(30)
    wait_until(lambda: agent.tmux.display(agent.pane, "#{pane_current_command}") == "bash", 30,
               "the shell back in the pane")
    res = deck_tray(env, "reply", sid, "echo should-never-be-typed")
    assert res.returncode == 3, (res.returncode, res.stdout, res.stderr)
    time.sleep(0.5)  # give a wrongly sent key time to show up before looking
    assert "should-never-be-typed" not in agent.tmux.capture(agent.pane)
