"""End-to-end harness for GitHub Copilot CLI 1.0.102 (issue #19): a real ``copilot`` TUI in a
private tmux pane, offline, against the loopback fake ``tests/fakes/fake_llm_copilot.py``.

Plain Python (no pytest import), like :mod:`tests.e2e.harness`, whose :class:`TmuxServer` and
agent base class it reuses. What a run looks like, and the files it leaves, is written up in
``docs/agents/copilot-cli.md``; the fixtures come from ``tests/fixtures/capture_copilot.py``.

Example::

    with CopilotFakeModel(scratch / "fake") as model, TmuxServer() as tmux:
        with CopilotAgent(tmux, model, scratch / "copilot") as agent:
            agent.type_line("please FAKE_SHELL now")
            agent.wait_for(CopilotAgent.PERMISSION_RE)
            agent.send_keys("1")                     # "1. Yes" acts at once
            agent.wait_ready()
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.harness import FakeModel, TmuxServer, _Agent

__all__ = [
    "COPILOT_VERSION",
    "CopilotAgent",
    "CopilotFakeModel",
    "copilot_pkg_cache",
    "hook_config",
]

COPILOT_VERSION = "1.0.102"
"""The Copilot CLI release this harness and its fixtures were made with."""

PKG_CACHE_ENV = "DECK_TRAY_COPILOT_PKG_CACHE"
"""Env var naming the directory given to Copilot as ``COPILOT_PKG_CACHE_HOME``."""

HOOK_EVENTS: tuple[str, ...] = (
    "sessionStart", "sessionEnd", "userPromptSubmitted", "preToolUse", "postToolUse",
    "postToolUseFailure", "permissionRequest", "notification", "agentStop", "subagentStop",
    "errorOccurred", "preCompact",
)
"""Hook events Copilot CLI 1.0.102 knows (its changelog); all but the last five were seen firing."""


def copilot_pkg_cache() -> Path:
    """Where Copilot unpacks its embedded package (``COPILOT_PKG_CACHE_HOME``; it adds ``pkg/``).

    The native ``copilot`` binary extracts a 235 MB JavaScript package on first start (1.4 s; 0.2 s
    once there). It defaults to ``$HOME/.cache/copilot``: with the harness's scratch ``HOME`` every
    test would unpack it again, so it is pinned to ``$DECK_TRAY_COPILOT_PKG_CACHE``, else the real
    user's ``~/.cache/copilot`` (Copilot's own default, shared with a normal run of the same build).
    """
    return Path(os.environ.get(PKG_CACHE_ENV) or Path.home() / ".cache" / "copilot")


def hook_config(command_for: Mapping[str, str] | None = None, timeout_s: int = 30) -> dict[str, Any]:
    """A Copilot hooks file (``{"version": 1, "hooks": {event: [command hook]}}``).

    ``command_for`` maps an event name to its ``bash`` command line; events left out get no hook.
    Written to ``$COPILOT_HOME/hooks/<name>.json`` (the user-level hooks directory) it is loaded
    at start without any trust prompt.
    """
    return {
        "version": 1,
        "hooks": {
            event: [{"type": "command", "bash": cmd, "timeoutSec": timeout_s}]
            for event, cmd in (command_for or {}).items()
        },
    }


class CopilotFakeModel(FakeModel):
    """:class:`tests.e2e.harness.FakeModel` that can also run ``fake_llm_copilot.py`` (kind
    ``"copilot"``, the default): OpenAI chat completions with Copilot's ``bash`` / ``ask_user``
    tool shapes. ``env`` may set ``FAKE_CMD`` (the FAKE_SHELL command) and ``FAKE_SLOW_S``."""

    SCRIPTS: dict[str, str] = {**FakeModel.SCRIPTS, "copilot": "fake_llm_copilot.py"}

    def __init__(self, workdir: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                 kind: str = "copilot", start_timeout: float = 30.0) -> None:
        super().__init__(kind, workdir, env=env, start_timeout=start_timeout)  # type: ignore[arg-type]


class CopilotAgent(_Agent):
    """A real GitHub Copilot CLI (interactive TUI) in a tmux pane, offline, on a fake model.

    Layout under ``scratch``: ``home/`` (``$HOME``), ``copilot-home/`` (``$COPILOT_HOME``) and
    ``project/`` (the cwd). :meth:`prepare` writes ``config.json`` with the project in
    ``trustedFolders`` (so the "Confirm folder trust" dialog is skipped; it is the only first-run
    dialog: no login is asked for with ``COPILOT_OFFLINE`` + a provider) and ``settings.json``
    (no banner, no tips, no auto update; ``settings`` adds keys). ``hooks`` (a
    :func:`hook_config` mapping) is written as ``copilot-home/hooks/deck-tray.json``.
    ``trust_project=False`` leaves the trust dialog in place (:meth:`start` then returns at it).

    ``copilot`` on PATH is a node launcher (``npm-loader.js``) that spawns the native binary
    ``@github/copilot-linux-x64/copilot``: :attr:`pane_pid` is the ``node`` process, :attr:`pid` its
    child, whose ``psutil`` ``name()`` is ``MainThread`` (its ``cmdline()[0]`` is ``.../copilot``).
    That pid also names ``session-state/<id>/inuse.<pid>.lock``.
    """

    #: idle footer: "← open sidebar · Interactive · Manual Approval · / commands · ? help · tab next tab"
    READY_RE = r"/ commands · \? help"
    #: the folder trust dialog (first start in a folder not in ``trustedFolders``)
    TRUST_RE = r"Confirm folder trust[\s\S]*Do you trust the files in this folder\?"
    #: the shell permission dialog; options "1. Yes", "2. Yes, and don't ask again for `<cmd>` in
    #: this directory (<cwd>)", "3. No, and tell Copilot what to do differently (Esc to stop)"
    PERMISSION_RE = r"Do you want to run this command\?[\s\S]*↑/↓ to navigate · enter to select · esc to cancel"
    #: the ask_user form ("Copilot needs information." ... "enter accept · ctrl+d decline · esc cancel")
    QUESTION_RE = r"Copilot needs information\.[\s\S]*enter accept · ctrl\+d decline · esc cancel"
    #: busy footer, e.g. "◉ Working · 26 B esc esc interrupt" (the first glyph cycles ◉ ○ ● ◎)
    BUSY_RE = r"^ \S Working\b"
    EXIT_COMMAND = "/exit"
    PROCESS_NAMES = ("copilot",)
    BIN_NAME = "copilot"

    def __init__(
        self,
        tmux: TmuxServer,
        model: FakeModel,
        scratch: str | os.PathLike[str],
        *,
        hooks: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        trust_project: bool = True,
        extra_args: tuple[str, ...] | list[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(tmux, model, scratch, **kwargs)
        self.copilot_home: Path = self.scratch / "copilot-home"
        self.hooks: dict[str, Any] | None = dict(hooks) if hooks is not None else None
        self.settings_extra: dict[str, Any] = dict(settings or {})
        self.trust_project: bool = trust_project
        self.extra_args: list[str] = list(extra_args)

    # -- setup
    def prepare(self) -> None:
        """Write ``config.json``, ``settings.json`` (and ``hooks/deck-tray.json``)."""
        self.copilot_home.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "firstLaunchAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "appTipShown": True,
        }
        if self.trust_project:
            config["trustedFolders"] = [str(self.project)]
        (self.copilot_home / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        settings = {"banner": "never", "showTipsOnStartup": False, "autoUpdate": False}
        settings.update(self.settings_extra)
        (self.copilot_home / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        if self.hooks is not None:
            (self.copilot_home / "hooks").mkdir(exist_ok=True)
            (self.copilot_home / "hooks" / "deck-tray.json").write_text(json.dumps(self.hooks, indent=1))

    def argv(self) -> list[str]:
        """``[copilot, *extra_args]`` (the npm launcher, as a user starts it)."""
        return [self.binary, *self.extra_args]

    def env(self) -> dict[str, str]:
        """Common agent env plus the offline BYOK provider pointing at the fake."""
        env = super().env()
        env.update({
            "COPILOT_HOME": str(self.copilot_home),
            "COPILOT_OFFLINE": "true",
            "COPILOT_AUTO_UPDATE": "false",
            "COPILOT_PROVIDER_BASE_URL": f"{self.model.base_url}/v1",
            "COPILOT_PROVIDER_TYPE": "openai",
            "COPILOT_PROVIDER_API_KEY": "dummy",
            "COPILOT_MODEL": "fake-model",
            # without these the idle screen warns 'Model "fake-model" is not in the built-in catalog'
            "COPILOT_PROVIDER_MAX_PROMPT_TOKENS": "128000",
            "COPILOT_PROVIDER_MAX_OUTPUT_TOKENS": "8192",
            "COPILOT_PKG_CACHE_HOME": str(copilot_pkg_cache()),
        })
        env.update(self.extra_env)
        return env

    def wait_ready(self, timeout: float = 120.0) -> str:
        """Wait for the idle prompt, or (``trust_project=False``) for the trust dialog."""
        if not self.trust_project and self._pane is not None and self.startup_seconds is None:
            return self.tmux.wait_for(self.pane, self.TRUST_RE, timeout=timeout)
        return super().wait_ready(timeout)

    def is_ready(self, text: str) -> bool:
        """Idle: the idle footer is shown and no dialog / busy footer is."""
        if not super().is_ready(text):
            return False
        return not any(re.search(rx, text, re.MULTILINE)
                       for rx in (self.PERMISSION_RE, self.QUESTION_RE, self.TRUST_RE, self.BUSY_RE))

    # -- state
    def title(self) -> str:
        """The pane title (``#{pane_title}``): ``GitHub Copilot``, then ``<session name> - GitHub
        Copilot`` from the first prompt on; it does not change with idle / busy / asking."""
        return self.tmux.display(self.pane, "#{pane_title}")

    def session_dirs(self) -> list[Path]:
        """``$COPILOT_HOME/session-state/<session-uuid>/`` directories."""
        root = self.copilot_home / "session-state"
        return sorted(p for p in root.glob("*-*-*-*-*") if p.is_dir()) if root.is_dir() else []

    def session_dir(self, timeout: float = 30.0) -> Path:
        """The session directory of this process: the one holding ``inuse.<pid>.lock``."""
        deadline = time.monotonic() + timeout
        while True:
            for d in self.session_dirs():
                if (d / f"inuse.{self.pid}.lock").exists():
                    return d
            if time.monotonic() >= deadline:
                raise AssertionError(f"no session-state/*/inuse.{self.pid}.lock under {self.copilot_home}")
            time.sleep(0.2)

    def events_file(self) -> Path:
        """``session-state/<id>/events.jsonl`` (created at the first prompt, not at start)."""
        return self.session_dir() / "events.jsonl"

    def workspace_file(self) -> Path:
        """``session-state/<id>/workspace.yaml``."""
        return self.session_dir() / "workspace.yaml"

    def events(self) -> list[dict[str, Any]]:
        """Parsed records of :meth:`events_file` (``[]`` before the first prompt)."""
        path = self.events_file()
        if not path.is_file():
            return []
        out: list[dict[str, Any]] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return out

    def open_sessions(self) -> dict[str, Any]:
        """``$COPILOT_HOME/open-sessions-state.json``: ``{session id: {..., "working": bool}}`` of
        the sessions open in a live process (``{}`` once they have exited)."""
        try:
            data = json.loads((self.copilot_home / "open-sessions-state.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
