"""``deck-tray new`` with the real agents (issue #15): Claude Code 2.1.197 and Codex 0.169.0
against the loopback fake models, started by the CLI in real tmux.

* No tmux server runs (a private ``TMUX_TMPDIR``): ``new`` starts one on the default socket
  with a detached session ``deck-tray``, the agent runs in a folder whose name has a space,
  the first prompt reaches the model byte-exact, and ``--json`` prints the session's row.
* A user's tmux client is attached to session ``work``: the agent gets a new window there,
  and the user's view is not switched.
* The agent runs with the CLI's environment, which is never on a command line.
* A folder the agent has not trusted yet: its trust menu is reported, or answered with
  ``--trust``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from .harness import CodexAgent, FakeModel, TmuxServer, agent_builds, find_agent_bin, until, wait_until

pytestmark = pytest.mark.e2e

SECRET = "not-on-any-command-line-7f3a"
PROMPT = "Say hello — «exact» 'quotes' $HOME #{pane_id} ✓"


def _cli_env(tmp_path: Path, home: Path, model: FakeModel, agent_bin: str, **extra: str) -> dict[str, str]:
    tmux_dir = tmp_path / "tmx"
    tmux_dir.mkdir(exist_ok=True)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {
        "HOME": str(home), "PATH": f"{Path(agent_bin).parent}:{os.environ.get('PATH', os.defpath)}",
        "TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "TMUX_TMPDIR": str(tmux_dir), "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "ANTHROPIC_BASE_URL": model.base_url, "ANTHROPIC_API_KEY": "dummy", "FAKE_OPENAI_KEY": "dummy",
        "DECK_TRAY_TEST_SECRET": SECRET, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "QT_QPA_PLATFORM": "offscreen",
    }
    env.update(extra)
    return env


def _new(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deck_tray", "new", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _tmux(env: dict[str, str], *args: str) -> str:
    sock = Path(env["TMUX_TMPDIR"]) / f"tmux-{os.getuid()}" / "default"
    return subprocess.run(["tmux", "-S", str(sock), *args], env=env, capture_output=True, text=True,
                          timeout=30).stdout


def _kill_default_server(env: dict[str, str]) -> None:
    _tmux(env, "kill-server")


def _no_cmdline_has(secret: str) -> None:
    for proc in psutil.process_iter(["cmdline"]):
        assert secret not in " ".join(proc.info["cmdline"] or []), f"{secret} on the command line of {proc.pid}"


def _prompt_reached(model: FakeModel, text: str) -> bool:
    return any(text in json.dumps(r.get("body", {}), ensure_ascii=False) for r in model.requests())


@pytest.fixture
def claude_bin() -> str:
    found = find_agent_bin("claude")
    if found is None:
        pytest.skip("claude not found (./scripts/test.sh installs it)")
    return found


@pytest.fixture
def codex_bin() -> str:
    found = find_agent_bin("codex")
    if found is None:
        pytest.skip("codex not found (./scripts/test.sh installs it)")
    return found


def _claude_home(tmp_path: Path, project: Path, trusted: bool = True) -> Path:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    projects = {str(project): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}} \
        if trusted else {}
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark",
        "customApiKeyResponses": {"approved": ["dummy"], "rejected": []}, "projects": projects}))
    return home


def test_new_claude_session_with_no_tmux_server(tmp_path: Path, claude_bin: str) -> None:
    project = tmp_path / "my project"
    project.mkdir()
    with FakeModel("anthropic", tmp_path / "fake") as model:
        env = _cli_env(tmp_path, _claude_home(tmp_path, project), model, claude_bin)
        try:
            t0 = time.monotonic()
            res = _new(env, "--agent", "claude-code", "--dir", str(project), "--prompt", PROMPT, "--json")
            took = time.monotonic() - t0
            assert res.returncode == 0, res.stderr
            row = json.loads(res.stdout)
            assert row["agent"] == "claude-code" and row["cwd"] == str(project)
            assert row["pane"].startswith("tmux:") and row["status"] in ("busy", "idle")
            assert _prompt_reached(model, PROMPT), "the first prompt reached the model byte-exact"
            assert "detached tmux session deck-tray" in res.stderr
            # The server runs on the default socket with the session "deck-tray" and the tagged pane.
            assert _tmux(env, "list-sessions", "-F", "#{session_name}").split() == ["deck-tray"]
            pane = row["pane"].rsplit(":", 1)[1]
            assert _tmux(env, "show-options", "-p", "-v", "-t", pane, "@deck-tray").strip() == "new:claude-code"
            # The agent has the CLI's environment; it was never on a command line.
            pid = int(_tmux(env, "display-message", "-p", "-t", pane, "#{pane_pid}"))
            assert psutil.Process(pid).environ().get("DECK_TRAY_TEST_SECRET") == SECRET
            _no_cmdline_has(SECRET)
            assert not list((tmp_path / "run" / "deck-tray").glob("launch-*")), "the environment file is gone"
            print(f"deck-tray new (claude, first prompt, --json): {took:.1f} s")
        finally:
            _kill_default_server(env)


def test_new_codex_window_in_the_attached_session(tmp_path: Path, codex_bin: str) -> None:
    with FakeModel("openai", tmp_path / "fake") as model, \
            TmuxServer(tmpdir=tmp_path / "tmx") as user, TmuxServer() as outer:
        project = tmp_path / "codex project"
        project.mkdir()
        home = tmp_path / "home"
        home.mkdir()
        codex_home = tmp_path / "codex-home"
        codex_home.mkdir()
        agent = CodexAgent(user, model, tmp_path / "unused")
        agent.project = project
        (codex_home / "config.toml").write_text(agent.config_toml())
        subprocess.run(["git", "init", "-q", str(project)], check=True, capture_output=True, timeout=60)
        user.new_session("work", ["sleep", "600"], tmp_path, width=200, height=50)
        # The user's client: a tmux client attached to "work", running in another (outer) tmux.
        outer.new_session("term", ["tmux", "-S", str(user.socket_path), "attach", "-t", "work"], tmp_path,
                          width=200, height=50)
        wait_until(lambda: user.run("list-clients", "-F", "#{session_name}").strip() == "work", 30,
                   "the user's client")
        env = _cli_env(tmp_path, home, model, codex_bin, CODEX_HOME=str(codex_home))
        res = _new(env, "--agent", "codex", "--dir", str(project), "--name", "fix #7", "--prompt", PROMPT, "--json",
                   "--", "--no-daemon")
        assert res.returncode == 0, res.stderr
        row = json.loads(res.stdout)
        assert row["agent"] == "codex" and row["cwd"] == str(project)
        assert _prompt_reached(model, PROMPT)
        windows = user.run("list-windows", "-t", "work", "-F", "#{window_name}|#{window_active}").split("\n")
        assert [w for w in windows if w] == ["sleep|1", "fix #7|0"], "a new window in the user's session, " \
                                                                      "the user's view not switched"
        assert "your tmux session" in res.stderr
        _no_cmdline_has(SECRET)


@pytest.mark.parametrize("claude", [pytest.param(b, id=label) for label, b in agent_builds("claude")])
def test_new_in_an_untrusted_folder_reports_or_answers_the_trust_menu(tmp_path: Path, claude: str) -> None:
    """2.1.197 numbers its trust menu (the digit answers); 2.1.332 does not and puts "No, exit"
    first (the cursor is moved to "Yes, I trust this folder")."""
    claude_bin = claude
    project = tmp_path / "fresh"
    project.mkdir()
    with FakeModel("anthropic", tmp_path / "fake") as model:
        env = _cli_env(tmp_path, _claude_home(tmp_path, project, trusted=False), model, claude_bin)
        try:
            res = _new(env, "--agent", "claude-code", "--dir", str(project), "--prompt", "first words")
            assert res.returncode == 0, res.stderr
            assert "asks whether you trust this folder" in res.stderr
            assert "first prompt was not sent (it is kept)" in res.stderr
            assert not _prompt_reached(model, "first words")

            res = _new(env, "--agent", "claude-code", "--dir", str(project), "--trust", "--prompt", "trusted words")
            assert res.returncode == 0, res.stderr
            assert "The first prompt was sent" in res.stderr
            assert _prompt_reached(model, "trusted words")
            home = Path(env["HOME"])
            state: dict[str, Any] = json.loads((home / ".claude.json").read_text())
            assert state["projects"][str(project)]["hasTrustDialogAccepted"] is True
        finally:
            _kill_default_server(env)


def test_new_refuses_plainly(tmp_path: Path, claude_bin: str) -> None:
    with FakeModel("anthropic", tmp_path / "fake") as model:
        env = _cli_env(tmp_path, _claude_home(tmp_path, tmp_path), model, claude_bin)
        res = _new(env, "--agent", "claude-code", "--dir", str(tmp_path / "missing"))
        assert res.returncode == 3 and "does not exist" in res.stderr
        res = _new(dict(env, PATH="/usr/bin:/bin"), "--agent", "codex", "--dir", str(tmp_path))
        assert res.returncode == 3 and "codex) was not found on PATH" in res.stderr
        res = _new(env, "--agent", "claude-code", "--dir", str(tmp_path), "stray")
        assert res.returncode == 2 and "after --" in res.stderr
        empty = tmp_path / "empty-path"
        empty.mkdir()
        os.symlink(claude_bin, empty / "claude")
        os.symlink(sys.executable, empty / "python3")
        res = _new(dict(env, PATH=str(empty)), "--agent", "claude-code", "--dir", str(tmp_path))
        assert res.returncode == 3 and "tmux is not installed" in res.stderr


def test_new_with_a_worktree_starts_the_agent_in_it(tmp_path: Path, claude_bin: str) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    with FakeModel("anthropic", tmp_path / "fake") as model:
        env = _cli_env(tmp_path, _claude_home(tmp_path, repo), model, claude_bin)
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q"], check=True, env=env, timeout=60)
        (repo / "README").write_text("hi\n")
        subprocess.run([*git, "add", "README"], check=True, env=env, timeout=60)
        subprocess.run([*git, "commit", "-qm", "first"], check=True, env=env, timeout=60)
        try:
            res = _new(env, "--agent", "claude-code", "--dir", str(repo), "--worktree", "feat/login", "--trust",
                       "--prompt", "in the worktree", "--json")
            assert res.returncode == 0, res.stderr
            wt = tmp_path / "app.worktrees" / "feat-login"
            assert json.loads(res.stdout)["cwd"] == str(wt)
            assert (wt / "README").read_text() == "hi\n"
            branch = subprocess.run(["git", "-C", str(wt), "branch", "--show-current"], capture_output=True,
                                    text=True, env=env, timeout=60).stdout.strip()
            assert branch == "feat/login"
            assert _prompt_reached(model, "in the worktree")
            # The same branch again: its folder exists now, so nothing is started.
            res = _new(env, "--agent", "claude-code", "--dir", str(repo), "--worktree", "feat/login")
            assert res.returncode == 3 and "already" in res.stderr
            res = _new(env, "--agent", "claude-code", "--dir", str(tmp_path / "fake"), "--worktree", "x")
            assert res.returncode == 3 and "not inside a git repository" in res.stderr
        finally:
            _kill_default_server(env)


@pytest.mark.gui
def test_new_session_from_the_window_opens_its_tab(tmp_path: Path, claude_bin: str, qtbot: Any,
                                                   qloop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+N → the dialog → Start: with tmux running but no client attached, the agent starts in
    the detached session "deck-tray"; the first prompt reaches the model, and the new session's
    tab opens and follows it."""

    from PySide6.QtCore import QSettings

    from deck_tray.app import DeckTrayApp
    from deck_tray.core.model import AgentKind, SessionStatus
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux

    project = tmp_path / "window project"
    project.mkdir()
    with FakeModel("anthropic", tmp_path / "fake") as model, TmuxServer(tmpdir=tmp_path / "tmx") as user:
        home = _claude_home(tmp_path, project)
        for name, value in _cli_env(tmp_path, home, model, claude_bin).items():
            if not name.startswith("XDG_"):
                monkeypatch.setenv(name, value)
        user.new_session("work", ["sleep", "600"], tmp_path, width=200, height=50)
        app = DeckTrayApp(scanner=Scanner(home / ".claude", tmp_path / "no-codex"), mux=Tmux(),
                          settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                          discover_opencode=False)
        qtbot.addWidget(app.window)

        async def scenario() -> None:
            app.start()
            try:
                app.window.show()
                app.window.new_action.trigger()
                dialog = app.new_session_dialog
                assert dialog is not None and dialog.isVisible()
                dialog.folder.setEditText(str(project))
                dialog.agent.setCurrentIndex(dialog.agent.findData(AgentKind.CLAUDE_CODE))
                dialog.prompt.setPlainText("from the dialog ✓")
                dialog.start_button.click()
                tab = await until(lambda: app.window.tabs.count() and app.window.tabs.currentWidget(), 120,
                                  "the new session's tab")
                assert not dialog.isVisible(), dialog.status.text()
                sid = next(k for k, v in app.window.tabs_by_id.items() if v is tab)
                s = app.registry.get(sid)
                assert s is not None and s.agent is AgentKind.CLAUDE_CODE and s.cwd == str(project)
                assert s.pane is not None and s.pane.label.startswith("deck-tray:"), s.pane
                await until(lambda: _prompt_reached(model, "from the dialog ✓"), 60, "the first prompt")
                await until(lambda: (x := app.registry.get(sid)) and x.status is SessionStatus.IDLE
                            and any("Hello from the fake" in m.text for m in x.messages), 60, "the answer in the tab")
            finally:
                await app.stop()
                _kill_default_server(dict(os.environ))

        qloop.run_until_complete(scenario())


@pytest.mark.gui
def test_new_opencode_session_through_the_app_runs_on_a_server_it_owns(
        tmp_path: Path, qtbot: Any, qloop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``deck-tray new --agent opencode`` asks the running app: it starts ``opencode serve`` for
    the folder (password generated, not on any command line), creates the session through the
    API, attaches the real TUI in tmux, sends the first prompt through the API, and lists the
    session; the CLI prints its row. Quitting the app stops the server it started."""
    import asyncio

    from PySide6.QtCore import QSettings

    from deck_tray.app import DeckTrayApp
    from deck_tray.core.scan import Scanner
    from deck_tray.services import ipc
    from deck_tray.services.panes import Tmux

    from .opencode_harness import FakeOpenAIModel, find_opencode, opencode_config

    binary = find_opencode()
    if binary is None:
        pytest.skip("opencode not found (./scripts/test.sh installs it)")
    home = tmp_path / "home"
    project = tmp_path / "oc project"
    project.mkdir()
    with FakeOpenAIModel(tmp_path / "fake") as model:
        (project / "opencode.json").write_text(json.dumps(opencode_config(model.v1_url)))
        subprocess.run(["git", "init", "-q", str(project)], check=True, capture_output=True, timeout=60)
        env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
               "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CACHE_HOME": str(home / ".cache"),
               "XDG_STATE_HOME": str(home / ".local/state"), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
               "TMUX_TMPDIR": str(tmp_path / "tmx"), "OPENCODE_DISABLE_AUTOUPDATE": "1",
               "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
               "npm_config_registry": "http://127.0.0.1:9/", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "PATH": f"{Path(binary).parent}:{os.environ.get('PATH', os.defpath)}",
               "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "DECK_TRAY_TEST_SECRET": SECRET}
        for d in ("run", "tmx"):
            (tmp_path / d).mkdir(mode=0o700)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        sock = ipc.socket_path(env)
        app = DeckTrayApp(scanner=Scanner(tmp_path / "no-claude", tmp_path / "no-codex"), mux=Tmux(),
                          settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                          discover_opencode=False, ipc_path=sock)
        qtbot.addWidget(app.window)
        cli_env = dict(env, QT_QPA_PLATFORM="offscreen")

        async def scenario() -> None:
            app.start()
            url = ""
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "deck_tray", "new", "--agent", "opencode", "--dir", str(project),
                    "--prompt", "Say hello from opencode", "--json", env=cli_env,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, err = await asyncio.wait_for(proc.communicate(), 240)
                assert proc.returncode == 0, err.decode()
                row = json.loads(out)
                assert row["agent"] == "opencode" and row["cwd"] == str(project) and row["server"]
                url = row["server"]
                assert url in app.warm.started_urls()
                assert "was started by deck-tray" in err.decode()
                await until(lambda: any("Say hello from opencode" in json.dumps(r) for r in model.requests()), 60,
                            "the first prompt to reach the model")
                # The real TUI attached to that session runs in the detached tmux session.
                tmux_env = dict(env)
                panes = _tmux(tmux_env, "list-panes", "-a", "-F", "#{pane_id} #{@deck-tray}").split("\n")
                assert any(p.endswith("new:opencode") for p in panes), panes
                _no_cmdline_has(SECRET)
                server = next(s for s in app.warm.servers() if s.url == url)
                assert server.pid is not None
                pw_args = " ".join(psutil.Process(server.pid).cmdline())
                assert "PASSWORD" not in pw_args.upper()
            finally:
                await app.stop()
                _kill_default_server(dict(env))
            assert not app.warm.started_urls(), "quitting stops the server deck-tray started"

        qloop.run_until_complete(scenario())


@pytest.mark.gui
def test_end_rename_dismiss_and_remove_the_worktree(tmp_path: Path, claude_bin: str, qtbot: Any, qloop: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A Claude Code started in a new worktree: renamed (kept across a restart of the app),
    ended from the list's menu (it exits with /exit and the pane deck-tray opened closes),
    then the worktree is offered for removal and removed; the ended session is dismissed."""

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from deck_tray.app import DeckTrayApp
    from deck_tray.core.model import AgentKind, SessionStatus
    from deck_tray.core.scan import Scanner
    from deck_tray.services.launcher import NewSession
    from deck_tray.services.panes import Tmux

    repo = tmp_path / "shop"
    repo.mkdir()
    with FakeModel("anthropic", tmp_path / "fake") as model:
        home = _claude_home(tmp_path, repo)
        env = _cli_env(tmp_path, home, model, claude_bin)
        for name, value in env.items():
            if not name.startswith("XDG_"):
                monkeypatch.setenv(name, value)
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q"], check=True, env=env, timeout=60)
        (repo / "README").write_text("hi\n")
        subprocess.run([*git, "add", "README"], check=True, env=env, timeout=60)
        subprocess.run([*git, "commit", "-qm", "first"], check=True, env=env, timeout=60)
        ini = str(tmp_path / "settings.ini")

        def make_app() -> DeckTrayApp:
            app = DeckTrayApp(scanner=Scanner(home / ".claude", tmp_path / "no-codex"), mux=Tmux(),
                              settings=QSettings(ini, QSettings.Format.IniFormat), discover_opencode=False)
            qtbot.addWidget(app.window)
            return app

        app = make_app()
        wt = tmp_path / "shop.worktrees" / "feat-end"

        async def first() -> str:
            app.start()
            try:
                report = await app.actions.new_session(NewSession(AgentKind.CLAUDE_CODE, str(repo), "hello",
                                                                  trust=True), "feat/end")
                assert report.ok, report.detail
                assert "Made the worktree" in report.detail
                s = await app.actions.session_in_pane(report.pane)  # type: ignore[arg-type]
                assert s is not None and s.cwd == str(wt)
                app.window.action_requested.emit(s.id, "rename", "Checkout fix")
                await until(lambda: (x := app.registry.get(s.id)) and x.display_title == "Checkout fix", 10, "rename")
                return s.id
            finally:
                await app.stop()

        sid = qloop.run_until_complete(first())
        app2 = make_app()

        async def second() -> None:
            app2.start()
            try:
                s = await until(lambda: (x := app2.registry.get(sid)) and x.pane and x.status is SessionStatus.IDLE
                                and x, 60, "the session listed again, idle")
                assert s.display_title == "Checkout fix", "the name survives a restart"
                pid = s.pid
                tab = app2.window.open_session(sid)
                menu = app2.window.session_menu(sid)
                assert menu is not None and "End session…" in [a.text() for a in menu.actions()]
                box = app2.window.ask_end(sid)
                assert isinstance(box, QMessageBox) and "/exit" in box.text()
                next(b for b in box.buttons() if b.text() == "End session").click()
                await until(lambda: tab is not None and "exited (/exit)" in tab.delivery.text(), 60,
                            "the end report in the tab")
                assert "its pane closed with it" in tab.delivery.text()  # type: ignore[union-attr]
                assert pid is not None and not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
                await until(lambda: any("worktree" in n for n in app2.window.notices()), 30, "the worktree offer")
                while "worktree" not in app2.window.notices()[0]:
                    app2.window._notice_done()
                assert app2.window.notice_button.text() == "Remove worktree"
                app2.window.notice_button.click()
                await until(lambda: not wt.exists(), 30, "the worktree to be removed")
                await until(lambda: (x := app2.registry.get(sid)) and x.status is SessionStatus.ENDED, 30, "ended")
                menu = app2.window.session_menu(sid)
                assert menu is not None and "Remove from list" in [a.text() for a in menu.actions()]
                app2.window.action_requested.emit(sid, "dismiss", "")
                await until(lambda: app2.registry.get(sid) is None, 10, "dismissed")
                assert sid not in sum(app2.window.listed().values(), [])
            finally:
                await app2.stop()
                _kill_default_server(env)

        qloop.run_until_complete(second())


@pytest.mark.gui
def test_the_window_answers_the_trust_question_of_a_new_session(tmp_path: Path, claude_bin: str, qtbot: Any,
                                                                qloop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Started from the dialog in a folder Claude Code has not trusted yet (trust not ticked): the
    window says the agent asks, with "Trust and continue"; pressing it answers the agent's own
    menu, the first prompt follows, and the session's tab opens."""

    from PySide6.QtCore import QSettings

    from deck_tray.app import DeckTrayApp
    from deck_tray.core.model import AgentKind
    from deck_tray.core.scan import Scanner
    from deck_tray.services.panes import Tmux

    project = tmp_path / "untrusted"
    project.mkdir()
    with FakeModel("anthropic", tmp_path / "fake") as model:
        home = _claude_home(tmp_path, project, trusted=False)
        env = _cli_env(tmp_path, home, model, claude_bin)
        for name, value in env.items():
            if not name.startswith("XDG_"):
                monkeypatch.setenv(name, value)
        app = DeckTrayApp(scanner=Scanner(home / ".claude", tmp_path / "no-codex"), mux=Tmux(),
                          settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                          discover_opencode=False)
        qtbot.addWidget(app.window)

        async def scenario() -> None:
            app.start()
            try:
                dialog = app.open_new_session()
                dialog.folder.setEditText(str(project))
                dialog.agent.setCurrentIndex(dialog.agent.findData(AgentKind.CLAUDE_CODE))
                dialog.prompt.setPlainText("after the trust question")
                assert not dialog.trust.isChecked()
                dialog.start_button.click()
                await until(lambda: any("trust this folder" in n for n in app.window.notices()), 120,
                            "the trust question in the window")
                while "trust this folder" not in app.window.notices()[0]:
                    app.window._notice_done()
                assert app.window.notice_button.text() == "Trust and continue"
                assert not _prompt_reached(model, "after the trust question")
                app.window.notice_button.click()
                tab = await until(lambda: app.window.tabs.count() and app.window.tabs.currentWidget(), 120,
                                  "the new session's tab")
                assert tab is not None
                await until(lambda: _prompt_reached(model, "after the trust question"), 60, "the first prompt")
            finally:
                await app.stop()
                _kill_default_server(env)

        qloop.run_until_complete(scenario())
