"""End-to-end harness for Gemini CLI (0.61.0) and Qwen Code (0.24.4) in a private tmux server
(issue #19), beside :mod:`tests.e2e.harness` (Claude Code, Codex) whose building blocks it reuses.

Plain Python (no pytest import). Both agents talk to the loopback fake of
``tests/fakes/fake_llm_gemini.py`` (``FakeModel("gemini")``): Gemini CLI through the Gemini API
(``GOOGLE_GEMINI_BASE_URL``), Qwen Code through OpenAI chat completions (``OPENAI_BASE_URL``).
Each runs with an isolated config home in its scratch dir (``GEMINI_CLI_HOME`` / ``QWEN_HOME``)
and a ``settings.json`` that skips every first-run dialog (trust, auth, update). Facts checked
against real runs: ``docs/agents/gemini-qwen-notes.md``.

Example::

    with FakeModel("gemini") as model, TmuxServer() as tmux:
        with GeminiAgent(tmux, model, scratch_dir) as gemini:
            gemini.type_line("please FAKE_SHELL now")
            gemini.wait_for(GeminiAgent.PERMISSION_RE)
            gemini.wait_title(r"^✋")
            gemini.send_keys("1")
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import psutil

from .harness import FakeModel, HarnessError, TmuxServer, _Agent, _descendants, _kill_tree, wait_until

__all__ = ["GeminiAgent", "QwenAgent", "deep_merge", "node_agent_pids"]


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, nested mappings merged key by key (a copy)."""
    out: dict[str, Any] = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def node_agent_pids(pane_pid: int, script_part: str) -> list[int]:
    """Pids of the node processes at or under ``pane_pid`` whose command line names a script
    containing ``script_part`` (e.g. ``"gemini"``), outermost first (each one's parent comes
    before it)."""
    found: dict[int, int] = {}
    for proc in _descendants(pane_pid):
        try:
            cmd = proc.cmdline()
            ppid = proc.ppid()
        except psutil.Error:
            continue
        if cmd and os.path.basename(cmd[0]).startswith("node") and any(script_part in a for a in cmd[1:]):
            found[proc.pid] = ppid

    def depth(pid: int) -> int:
        n = 0
        while found.get(pid) in found:
            pid, n = found[pid], n + 1
        return n

    return sorted(found, key=depth)


class _NodeAgent(_Agent):
    """Common part of the two node TUIs: settings file, title, hooks, typed-key helpers."""

    #: the composer's placeholder: the agent is idle and its input is empty
    READY_RE = r"Type your message or @path/to/file"
    EXIT_COMMAND = "/quit"
    #: part of the script path of the agent's node process (:func:`node_agent_pids`)
    SCRIPT_PART = ""

    def __init__(
        self,
        tmux: TmuxServer,
        model: FakeModel,
        scratch: str | os.PathLike[str],
        *,
        settings: Mapping[str, Any] | None = None,
        hooks: Mapping[str, Any] | None = None,
        extra_args: Sequence[str] = (),
        project_name: str = "project",
        via_shell: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(tmux, model, scratch, **kwargs)
        self.project = self.scratch / project_name
        self.via_shell: bool = via_shell
        """Start an interactive ``bash`` in the pane and type the command there (a user's pane:
        the shell prompt comes back after the agent exits), instead of exec'ing the agent."""
        self.extra_settings: dict[str, Any] = dict(settings or {})
        self.hooks: dict[str, Any] | None = dict(hooks) if hooks is not None else None
        self.extra_args: list[str] = list(extra_args)

    # -- config
    @property
    def config_dir(self) -> Path:
        """The agent's config folder (``~/.gemini`` / ``~/.qwen`` of the isolated home)."""
        raise NotImplementedError

    def base_settings(self) -> dict[str, Any]:
        """The ``settings.json`` that skips every dialog (before ``settings`` and ``hooks``)."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The ``settings.json`` written: :meth:`base_settings`, ``settings`` merged in, and
        ``{"hooks": hooks}`` when hooks are given."""
        data = deep_merge(self.base_settings(), self.extra_settings)
        if self.hooks is not None:
            data["hooks"] = self.hooks
        return data

    def prepare(self) -> None:
        """Write ``<config_dir>/settings.json``."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "settings.json").write_text(json.dumps(self.settings(), indent=1))

    SHELL_PROMPT = "agent-shell$ "
    """``PS1`` of the :attr:`via_shell` bash."""

    def argv(self) -> list[str]:
        """``[binary, *extra_args]``, or with :attr:`via_shell` a bare interactive ``bash``."""
        if self.via_shell:
            return ["bash", "--norc", "--noprofile", "-i"]
        return [self.binary, *self.extra_args]

    def start(self, timeout: float = 120.0) -> Self:
        """As :meth:`_Agent.start`; with :attr:`via_shell` the command is typed at the shell prompt."""
        if not self.via_shell:
            return super().start(timeout)
        self.home.mkdir(parents=True, exist_ok=True)
        self.project.mkdir(parents=True, exist_ok=True)
        self.prepare()
        env = dict(self.env(), PS1=self.SHELL_PROMPT, HISTFILE="/dev/null")
        t0 = time.monotonic()
        self._pane = self.tmux.new_session(self.session_name, self.argv(), self.project, env=env,
                                           width=self.width, height=self.height)
        try:
            self.tmux.wait_for(self.pane, re.escape(self.SHELL_PROMPT.strip()), timeout=30)
            self.tmux.type_line(self.pane, shlex.join([self.binary, *self.extra_args]))
            self.wait_ready(timeout)
            self.startup_seconds = time.monotonic() - t0
            self._pid = wait_until(self._find_pid, 30, f"{self.BIN_NAME} process in pane {self._pane}")
        except BaseException:
            self.stop()
            raise
        return self

    def env(self) -> dict[str, str]:
        """Environment of the pane: the isolated ``HOME`` and no Anthropic/OpenAI Responses keys."""
        env = super().env()
        for key in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "FAKE_OPENAI_KEY", "DISABLE_AUTOUPDATER",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"):
            env.pop(key, None)
        env["COLORTERM"] = "truecolor"
        env.update(self.extra_env)
        return env

    def quit(self, timeout: float = 30.0) -> None:
        """Type the exit command (``/quit``) and wait until every node process of the agent has
        exited; the pane stays (with :attr:`via_shell`: at the shell prompt) or closes."""
        procs = []
        for pid in self.node_pids():
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        self.tmux.type_line(self.pane, self.EXIT_COMMAND)
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        if alive:
            raise AssertionError(f"{self.BIN_NAME} still running {timeout:.0f} s after {self.EXIT_COMMAND}: "
                                 f"{[p.pid for p in alive]}")

    def stop(self, timeout: float = 20.0) -> None:
        """Exit the agent (``/quit`` when it is idle), then kill what is left in the pane."""
        if self._pane is None:
            return
        pane, self._pane = self._pane, None
        try:
            root = self.tmux.pane_pid(pane)
        except HarnessError:
            return  # pane (and process) already gone
        try:
            procs = [psutil.Process(pid) for pid in node_agent_pids(root, self.SCRIPT_PART)]
            if procs and self.is_ready(self.tmux.capture(pane)):
                self.tmux.type_line(pane, self.EXIT_COMMAND)
                psutil.wait_procs(procs, timeout=timeout)
        except (HarnessError, psutil.Error):
            pass
        _kill_tree(root)

    # -- process
    def _find_pid(self) -> int | None:
        pids = node_agent_pids(self.tmux.pane_pid(self.pane), self.SCRIPT_PART)
        return pids[-1] if pids else None

    def node_pids(self) -> list[int]:
        """Every node process of the agent (outermost first; the last is :attr:`pid`)."""
        return node_agent_pids(self.pane_pid, self.SCRIPT_PART)

    # -- screen and title
    def title(self) -> str:
        """The pane title (``#{pane_title}``), exactly as the agent set it (padding included)."""
        return self.tmux.display(self.pane, "#{pane_title}")

    def wait_title(self, regex: str | re.Pattern[str], timeout: float = 60) -> str:
        """Poll until the pane title matches ``regex``; return it (AssertionError on timeout)."""
        rx = re.compile(regex)
        last = [""]

        def check() -> str | None:
            last[0] = self.title()
            return last[0] if rx.search(last[0]) else None

        try:
            return str(wait_until(check, timeout, f"title /{rx.pattern}/"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last title {last[0]!r}; pane text:\n{self.capture()}") from None

    #: what the pane shows once a prompt was taken (besides the empty composer's placeholder)
    ACCEPTED_RE: str = ""

    def type_line(self, text: str, tries: int = 3, settle: float = 3.0) -> None:
        """Type ``text``, pause 0.3 s, press Enter, and make sure the prompt was taken.

        Both CLIs can drop an Enter that comes right after their composer first appears (the text
        stays in the composer; seen with Gemini CLI 0.61.0 when typing as soon as the placeholder
        was drawn): when neither the placeholder (:attr:`READY_RE`) nor :attr:`ACCEPTED_RE` shows
        within ``settle`` seconds, Enter is pressed again, up to ``tries`` times."""
        self.tmux.send_text(self.pane, text)
        first = text.splitlines()[0][:40] if text.strip() else ""
        if first:
            wait_until(lambda: first in self.capture(), 10, f"{first!r} in the composer")
        time.sleep(0.3)
        self.submit(tries, settle)

    def submit(self, tries: int = 3, settle: float = 3.0) -> None:
        """Press Enter on what the composer holds and make sure it was taken (see :meth:`type_line`)."""
        accepted = re.compile("|".join(r for r in (self.READY_RE, self.ACCEPTED_RE) if r), re.M)
        for _ in range(tries):
            self.send_keys("Enter")
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline:
                if accepted.search(self.capture()):
                    return
                time.sleep(0.1)
        raise AssertionError(f"prompt not taken after {tries} Enter; pane text:\n{self.capture()}")

    def paste(self, text: str) -> None:
        """Paste ``text`` as a bracketed paste (newlines stay in the composer, no submit)."""
        buf = f"dt-{os.getpid()}-{self.session_name}"
        self.tmux.run("set-buffer", "-b", buf, "--", text)
        self.tmux.run("paste-buffer", "-p", "-d", "-b", buf, "-t", self.pane)

    def session_id(self) -> str | None:
        """The session id, from the newest session file, or None."""
        raise NotImplementedError


class GeminiAgent(_NodeAgent):
    """A real Gemini CLI TUI in a tmux pane, talking to ``FakeModel("gemini")``.

    Layout under ``scratch``: ``home/`` (``$HOME`` and ``$GEMINI_CLI_HOME``, so the config is
    ``home/.gemini``) and ``<project_name>/`` (the cwd; the folder name is the project's slug and
    the name in the pane title). ``settings`` are merged into the dialog-free ``settings.json``;
    ``hooks`` (the value of its ``"hooks"`` key) adds hooks: ``{"BeforeTool": [{"matcher": ".*",
    "hooks": [{"type": "command", "command": ..., "name": ...}]}]}`` (no ``matcher`` on lifecycle
    events: it is compared as an exact string there).

    ``.bin/gemini`` is a node script; it relaunches itself as a child node process (with a larger
    heap and ``GEMINI_CLI_NO_RELAUNCH=true``): :attr:`pane_pid` is the outer node,
    :attr:`pid` the inner one, which does the work.
    """

    BIN_NAME = "gemini"
    SCRIPT_PART = "gemini"
    PROCESS_NAMES = ("node",)
    #: the shell-command confirmation box
    PERMISSION_RE = r"Allow execution of \[Shell\]\?"
    #: the write_file / replace confirmation box
    APPLY_RE = r"Apply this change\?"
    #: the ask_user dialog
    QUESTION_RE = r"Enter to select · ↑/↓ to navigate · Esc to cancel"
    #: spinner line while the model works
    BUSY_RE = r"\(esc to cancel, \d+s\)"
    ACCEPTED_RE = "|".join((BUSY_RE, PERMISSION_RE, APPLY_RE, QUESTION_RE))

    @property
    def config_dir(self) -> Path:
        """``<home>/.gemini`` (``$GEMINI_CLI_HOME/.gemini``)."""
        return self.home / ".gemini"

    def base_settings(self) -> dict[str, Any]:
        """No trust dialog, API-key auth chosen, no update check, no telemetry."""
        return {
            "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
            "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }

    def env(self) -> dict[str, str]:
        """Common env plus ``GEMINI_CLI_HOME``, ``GEMINI_API_KEY`` and ``GOOGLE_GEMINI_BASE_URL``."""
        env = super().env()
        env.update({"GEMINI_CLI_HOME": str(self.home), "GEMINI_API_KEY": "dummy",
                    "GOOGLE_GEMINI_BASE_URL": self.model.base_url})
        env.update(self.extra_env)
        return env

    def projects_json(self) -> dict[str, Any] | None:
        """``<config_dir>/projects.json`` (``{"projects": {abs path: slug}}``), or None."""
        try:
            data = json.loads((self.config_dir / "projects.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def slug(self) -> str | None:
        """This project's slug in ``projects.json`` (the folder name; ``-1`` etc. on a clash)."""
        data = self.projects_json() or {}
        return (data.get("projects") or {}).get(str(self.project))

    def chat_files(self) -> list[Path]:
        """Transcripts ``<config_dir>/tmp/<slug>/chats/session-<YYYY-MM-DDTHH-MM>-<id8>.jsonl``,
        oldest first."""
        return sorted(self.config_dir.glob("tmp/*/chats/session-*.jsonl"), key=lambda p: p.stat().st_mtime)

    def session_id(self) -> str | None:
        """``sessionId`` of the newest transcript's header line."""
        files = self.chat_files()
        if not files:
            return None
        try:
            first = files[-1].read_text(encoding="utf-8").splitlines()[0]
            sid = json.loads(first).get("sessionId")
            return sid if isinstance(sid, str) else None
        except (OSError, ValueError, IndexError):
            return None


class QwenAgent(_NodeAgent):
    """A real Qwen Code TUI in a tmux pane, talking to ``FakeModel("gemini")``'s chat completions.

    Layout under ``scratch``: ``home/`` (``$HOME``; ``$QWEN_HOME`` is ``home/.qwen``) and
    ``<project_name>/`` (the cwd). The settings choose OpenAI auth with model ``fake-model`` and
    ``tools.approvalMode: "default"`` (0.24.4's default, ``"auto"``, lets an LLM classifier
    approve tools: no prompt). ``hooks``: Claude Code shaped, ``{"PermissionRequest":
    [{"matcher": "*", "hooks": [{"type": "command", "command": ...}]}]}``.

    ``.bin/qwen`` (``cli-entry.js``) runs in the pane's node process.
    """

    BIN_NAME = "qwen"
    SCRIPT_PART = "qwen"
    PROCESS_NAMES = ("node",)
    #: the shell-command confirmation box (``Allow execution of: 'touch'?``)
    PERMISSION_RE = r"Allow execution of: '[^']*'\?"
    #: its spinner while the box is open
    WAITING_RE = r"Waiting for user confirmation"
    #: spinner line while the model works
    BUSY_RE = r"esc to cancel"
    ACCEPTED_RE = "|".join((BUSY_RE, PERMISSION_RE, WAITING_RE))

    @property
    def config_dir(self) -> Path:
        """``$QWEN_HOME`` = ``<home>/.qwen``."""
        return self.home / ".qwen"

    def base_settings(self) -> dict[str, Any]:
        """OpenAI auth against the fake, asking approval mode, no update check, no telemetry."""
        return {
            "security": {"auth": {"selectedType": "openai"}, "folderTrust": {"enabled": False}},
            "model": {"name": "fake-model"},
            "tools": {"approvalMode": "default"},
            "general": {"disableAutoUpdate": True, "disableUpdateNag": True, "enableAutoUpdate": False},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }

    def env(self) -> dict[str, str]:
        """Common env plus ``QWEN_HOME`` and the ``OPENAI_*`` variables of the fake."""
        env = super().env()
        env.update({"QWEN_HOME": str(self.config_dir), "OPENAI_BASE_URL": f"{self.model.base_url}/v1",
                    "OPENAI_API_KEY": "dummy", "OPENAI_MODEL": "fake-model"})
        env.update(self.extra_env)
        return env

    def stop(self, timeout: float = 20.0) -> None:
        """As :meth:`_NodeAgent.stop`, then remove the ``/tmp/qwen-socks-<hash>/`` folder of the
        IPC socket (``ipcPath`` of :meth:`pid_file`) when Qwen left it empty."""
        ipc = None
        if self._pid is not None:
            status = self.pid_status()
            ipc = status.get("ipcPath") if status else None
        super().stop(timeout)
        if isinstance(ipc, str) and ipc:
            try:
                Path(ipc).parent.rmdir()  # only succeeds when empty
            except OSError:
                pass

    def pid_file(self) -> Path:
        """``<config_dir>/sessions/<pid>.json`` (live per-process file, removed on exit)."""
        return self.config_dir / "sessions" / f"{self.pid}.json"

    def pid_status(self) -> dict[str, Any] | None:
        """Parsed :meth:`pid_file`, or None."""
        try:
            data = json.loads(self.pid_file().read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def project_dir(self) -> Path:
        """``<config_dir>/projects/<cwd with every non-alphanumeric char as "-">``."""
        return self.config_dir / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(self.project))

    def transcripts(self) -> list[Path]:
        """``<config_dir>/projects/*/chats/<sessionId>.jsonl``, oldest first."""
        return sorted(self.config_dir.glob("projects/*/chats/*.jsonl"), key=lambda p: p.stat().st_mtime)

    def runtime_files(self) -> list[Path]:
        """``<config_dir>/projects/*/chats/<sessionId>.runtime.json``."""
        return sorted(self.config_dir.glob("projects/*/chats/*.runtime.json"))

    def session_id(self) -> str | None:
        """``sessionId`` of the live pid file, else the newest transcript's name."""
        status = self.pid_status()
        if status and status.get("sessionId"):
            return str(status["sessionId"])
        files = self.transcripts()
        return files[-1].stem if files else None


def wait_file(path: Path, timeout: float = 30) -> Path:
    """Wait until ``path`` exists; return it."""
    wait_until(path.exists, timeout, f"{path} to exist")
    return path
