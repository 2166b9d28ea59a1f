"""``deck-tray hooks install|uninstall|status`` end to end: ``python -m deck_tray`` in a temp
HOME with ``CLAUDE_CONFIG_DIR`` / ``CODEX_HOME``, plus the file helpers and the executable lookup."""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import shlex
import stat
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deck_tray.commands import hooks_setup as cmd
from deck_tray.core import hooks_config as hc
from deck_tray.core.model import AgentKind

EXE = "/opt/deck tray/deck-tray"  # a space: the command strings must quote it
CLAUDE_CMD = "'/opt/deck tray/deck-tray' hook claude-code"
USER_SETTINGS = {
    "model": "opus",
    "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
              "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard"}]}]},
    "permissions": {"allow": ["Bash(ls:*)"]},
}
USER_TOML = 'model = "gpt-5"\napproval_policy = "on-request"\n\n[tui]\nnotifications = true\n'


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    claude, codex = tmp_path / "claude", tmp_path / "codex"
    for d in (home, claude, codex):
        d.mkdir()
    (claude / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=2) + "\n")
    (claude / "settings.json").chmod(0o600)
    (codex / "config.toml").write_text(USER_TOML)
    return {"home": home, "claude": claude, "codex": codex}


def env_of(world: dict[str, Path]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_CONFIG_DIR", "CODEX_HOME", "TMUX"))}
    env.update(HOME=str(world["home"]), CLAUDE_CONFIG_DIR=str(world["claude"]), CODEX_HOME=str(world["codex"]))
    return env


def hooks(world: dict[str, Path], *args: str, exe: str | None = EXE,
          stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    extra = ["--command", shlex.quote(exe)] if exe else []  # the option takes shell words
    return subprocess.run([sys.executable, "-m", "deck_tray", "hooks", *args, *extra], env=env_of(world),
                          stdin=stdin, capture_output=True, text=True, timeout=60)


def snapshot(world: dict[str, Path]) -> dict[str, bytes]:
    return {str(p.relative_to(p.parents[1])): p.read_bytes()
            for d in ("claude", "codex") for p in sorted(world[d].iterdir())}


def test_status_install_status_uninstall(world: dict[str, Path]) -> None:
    before = snapshot(world)
    res = hooks(world, "status")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("not installed") == 6  # and Gemini CLI, Qwen Code, Copilot CLI (no folders here)

    res = hooks(world, "install", "--yes")
    assert res.returncode == 0, res.stderr
    settings = json.loads((world["claude"] / "settings.json").read_text())
    assert settings["hooks"]["Stop"] == [USER_SETTINGS["hooks"]["Stop"][0],  # type: ignore[index]
                                         {"hooks": [{"type": "command", "command": CLAUDE_CMD, "timeout": 10}]}]
    assert settings["hooks"]["PermissionRequest"] == [  # it waits for the answer in deck-tray
        {"matcher": "*", "hooks": [{"type": "command", "command": CLAUDE_CMD, "timeout": 660}]}]
    assert set(settings["hooks"]) == {"Stop", "PreToolUse", *hc.CLAUDE_EVENTS}
    assert settings["permissions"] == USER_SETTINGS["permissions"]
    codex_hooks = json.loads((world["codex"] / "hooks.json").read_text())
    assert list(codex_hooks["hooks"]) == list(hc.CODEX_EVENTS)
    assert codex_hooks["hooks"]["Stop"][0]["hooks"][0]["command"] == "'/opt/deck tray/deck-tray' hook codex"
    config = (world["codex"] / "config.toml").read_text()
    assert config == USER_TOML.replace('"on-request"\n', '"on-request"\nnotify = ["/opt/deck tray/deck-tray", '
                                                         '"hook", "codex"]\n')
    assert "Wrote " in res.stdout and "/hooks" in res.stdout  # Codex trust reminder
    # backups of the files that existed, none for the new hooks.json; mode kept
    backups = [p for d in ("claude", "codex") for p in world[d].glob("*.deck-tray-backup-*")]
    assert [b.name.split(".deck-tray-backup-")[0] for b in backups] == ["settings.json", "config.toml"]
    assert backups[0].read_bytes() == before["claude/settings.json"]
    assert stat.S_IMODE((world["claude"] / "settings.json").stat().st_mode) == 0o600

    res = hooks(world, "status")
    assert res.stdout.count(": installed") == 3, res.stdout
    res = hooks(world, "status", "--json")
    rows = json.loads(res.stdout)
    assert [(r["agent"], Path(r["path"]).name, r["state"]) for r in rows][:3] == [
        ("claude-code", "settings.json", "installed"), ("codex", "hooks.json", "installed"),
        ("codex", "config.toml", "installed")]
    assert "trust" in rows[1]["detail"]

    installed = snapshot(world)
    res = hooks(world, "install", "--yes")
    assert res.returncode == 0
    assert res.stdout.count("already installed") == 3, res.stdout
    assert snapshot(world) == installed  # no write, no new backup

    res = hooks(world, "uninstall", "--yes")
    assert res.returncode == 0, res.stderr
    assert (world["claude"] / "settings.json").read_bytes() == before["claude/settings.json"]
    assert (world["codex"] / "config.toml").read_bytes() == before["codex/config.toml"]
    assert json.loads((world["codex"] / "hooks.json").read_text()) == {}
    assert hooks(world, "status").stdout.count("not installed") == 6


def test_dry_run_prints_the_diff_and_writes_nothing(world: dict[str, Path]) -> None:
    before = snapshot(world)
    res = hooks(world, "install", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"--- {world['claude'] / 'settings.json'}\n+++ {world['claude'] / 'settings.json'}\n" in res.stdout
    assert f"--- /dev/null\n+++ {world['codex'] / 'hooks.json'}\n" in res.stdout
    assert '+notify = ["/opt/deck tray/deck-tray", "hook", "codex"]' in res.stdout
    assert f'+            "command": "{CLAUDE_CMD}",' in res.stdout
    assert "Dry run: nothing was written." in res.stdout
    assert snapshot(world) == before


def test_no_terminal_and_no_yes_refuses(world: dict[str, Path]) -> None:
    before = snapshot(world)
    res = hooks(world, "install")
    assert res.returncode == 3
    assert "--yes" in res.stderr and "Nothing was changed" in res.stderr
    assert "+notify" in res.stdout  # the diff was shown
    assert snapshot(world) == before


def _with_terminal(world: dict[str, Path], answer: bytes, *args: str) -> tuple[int, str]:
    """Run ``hooks ARGS`` with a pty as stdin and type ``answer`` at the prompt."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "deck_tray", "hooks", *args, "--command", shlex.quote(EXE)],
                                env=env_of(world), stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                os.write(master, answer)
            except OSError:
                break
            answer = b""
        out, err = proc.communicate(timeout=30)
        return proc.returncode, out.decode() + err.decode()
    finally:
        os.close(master)


def test_prompt_on_a_terminal(world: dict[str, Path]) -> None:
    before = snapshot(world)
    rc, out = _with_terminal(world, b"n\n", "install", "--agent", "codex")
    assert rc == 1 and "Apply? [y/N]" in out and "Nothing was changed." in out
    assert snapshot(world) == before
    rc, out = _with_terminal(world, b"y\n", "install", "--agent", "codex")
    assert rc == 0, out
    assert (world["codex"] / "hooks.json").exists()
    assert (world["claude"] / "settings.json").read_bytes() == before["claude/settings.json"]


def test_malformed_settings_refuses_and_changes_nothing(world: dict[str, Path]) -> None:
    (world["claude"] / "settings.json").write_text('{\n  "model": "opus"\n  "hooks": {}\n}\n')
    before = snapshot(world)
    res = hooks(world, "install", "--yes")
    assert res.returncode == 3
    assert f"{world['claude'] / 'settings.json'}, line 3: not valid JSON" in res.stderr
    assert "nothing was changed" in res.stderr
    assert snapshot(world) == before  # the Codex files were not touched either
    res = hooks(world, "status")
    assert res.returncode == 0 and "unreadable" in res.stdout and "line 3: not valid JSON" in res.stdout


def test_malformed_config_toml_refuses(world: dict[str, Path]) -> None:
    (world["codex"] / "config.toml").write_text('model = "x"\n[tui\n')
    before = snapshot(world)
    res = hooks(world, "install", "--yes")
    assert res.returncode == 3 and "config.toml, line 2: not valid TOML" in res.stderr
    assert snapshot(world) == before


def test_someone_elses_notify_is_reported_and_kept(world: dict[str, Path]) -> None:
    text = 'notify = ["python3", "/home/u/notify.py"]\n' + USER_TOML
    (world["codex"] / "config.toml").write_text(text)
    res = hooks(world, "install", "--yes", "--agent", "codex")
    assert res.returncode == 0, res.stderr
    assert "notify already runs another program" in res.stdout and "/home/u/notify.py" in res.stdout
    assert (world["codex"] / "config.toml").read_text() == text
    assert "another program" in hooks(world, "status", "--agent", "codex").stdout


def test_reinstall_after_the_executable_moved(world: dict[str, Path]) -> None:
    assert hooks(world, "install", "--yes", exe="/old/bin/deck-tray").returncode == 0
    res = hooks(world, "status")
    assert res.stdout.count(": outdated") == 3 and "/old/bin/deck-tray, which no longer exists" in res.stdout
    res = hooks(world, "install", "--yes")
    assert res.returncode == 0, res.stderr
    text = (world["claude"] / "settings.json").read_text()
    assert "/old/bin" not in text and text.count(CLAUDE_CMD) == len(hc.CLAUDE_EVENTS)
    assert "/old/bin" not in (world["codex"] / "config.toml").read_text()
    assert hooks(world, "status").stdout.count(": installed") == 3


def test_all_skips_an_agent_without_a_config_folder(world: dict[str, Path], tmp_path: Path) -> None:
    env_codex = tmp_path / "no-codex"
    world = dict(world, codex=env_codex)
    res = hooks(world, "install", "--yes")
    assert res.returncode == 0, res.stderr
    assert f"Codex: skipped, {env_codex} does not exist" in res.stdout
    assert not env_codex.exists()
    res = hooks(world, "install", "--yes", "--agent", "codex")
    assert res.returncode == 0, res.stderr
    assert (env_codex / "hooks.json").exists() and (env_codex / "config.toml").exists()
    assert stat.S_IMODE(env_codex.stat().st_mode) == 0o700


def test_usage() -> None:
    res = subprocess.run([sys.executable, "-m", "deck_tray", "hooks"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "install,uninstall,status" in res.stderr
    res = subprocess.run([sys.executable, "-m", "deck_tray", "hooks", "install", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "--dry-run" in res.stdout and "--command" not in res.stdout


# --------------------------------------------------------------------------- in-process


def test_install_refuses_when_the_executable_has_no_working_hook_command(
        world: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    from deck_tray.cli import main

    for k, v in env_of(world).items():
        monkeypatch.setenv(k, v)
    # an older deck-tray: no "hook" command, argparse's usage error (exit 2)
    stale = tmp_path / "bin" / "deck-tray"
    stale.parent.mkdir()
    stale.write_text("#!/bin/sh\necho \"deck-tray: error: argument command: invalid choice: 'hook'\" >&2\nexit 2\n")
    stale.chmod(0o755)
    monkeypatch.setattr(cmd, "deck_tray_executable", lambda: [str(stale)])
    before = snapshot(world)
    assert main(["hooks", "install", "--yes"]) == 3
    err = capsys.readouterr().err
    assert f"would run {stale}, which has no working 'hook' command (deck-tray: error: argument command" in err
    assert "Nothing was changed" in err
    assert snapshot(world) == before
    assert main(["hooks", "install", "--dry-run"]) == 0
    assert "warning:" in capsys.readouterr().err
    # a working forwarder: this checkout's, run as python -m deck_tray from anywhere
    if importlib.util.find_spec("deck_tray.commands.hook_forwarder") is None:
        pytest.skip("this checkout has no deck_tray.commands.hook_forwarder yet")
    checkout = str(Path(__file__).resolve().parents[2])
    good = tmp_path / "bin2" / "deck-tray"
    good.parent.mkdir()
    good.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(checkout)} exec {shlex.quote(sys.executable)} "
                    "-m deck_tray \"$@\"\n")
    good.chmod(0o755)
    monkeypatch.setattr(cmd, "deck_tray_executable", lambda: [str(good)])
    assert main(["hooks", "install", "--yes"]) == 0
    assert f"{good} hook claude-code" in (world["claude"] / "settings.json").read_text()


def test_hooks_status_api(world: dict[str, Path]) -> None:
    env = env_of(world)
    rows = cmd.hooks_status(env=env, exe=[EXE])
    assert [(r.agent, r.path.name, r.state) for r in rows] == [
        (AgentKind.CLAUDE_CODE, "settings.json", hc.HookState.NOT_INSTALLED),
        (AgentKind.CODEX, "hooks.json", hc.HookState.NOT_INSTALLED),
        (AgentKind.CODEX, "config.toml", hc.HookState.NOT_INSTALLED),
        (AgentKind.GEMINI_CLI, "settings.json", hc.HookState.NOT_INSTALLED),
        (AgentKind.QWEN_CODE, "settings.json", hc.HookState.NOT_INSTALLED),
        (AgentKind.COPILOT_CLI, "deck-tray.json", hc.HookState.NOT_INSTALLED)]
    assert all(isinstance(r, hc.HookStatus) and r.detail for r in rows)
    plans, errors = cmd.plan(True, [AgentKind.CLAUDE_CODE], [EXE], env)
    assert not errors
    cmd.write_atomic(plans[0].path, plans[0].new or "")
    assert cmd.hooks_status(env=env, exe=[EXE])[0].state is hc.HookState.INSTALLED
    (world["codex"] / "hooks.json").write_text("{oops")
    row = cmd.hooks_status(env=env, exe=[EXE])[1]
    assert row.state is hc.HookState.ERROR and row.detail.startswith("line 1: not valid JSON")
    gone = dict(env, CLAUDE_CONFIG_DIR=str(world["home"] / "nothing"))
    row = cmd.hooks_status(env=gone, exe=[EXE])[0]
    assert row.state is hc.HookState.NOT_INSTALLED and "folder" in row.detail


def test_write_atomic_keeps_the_mode_and_writes_through_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "settings.json"
    real.parent.mkdir()
    real.write_text("{}\n")
    real.chmod(0o640)
    link = tmp_path / "settings.json"
    link.symlink_to(real)
    cmd.write_atomic(link, '{"a": 1}\n')
    assert link.is_symlink() and real.read_text() == '{"a": 1}\n'
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["settings.json"]  # no temp file left
    new = tmp_path / "sub" / "new.json"
    cmd.write_atomic(new, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert new.read_text() == "x" and stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


def test_write_atomic_failure_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "hooks.json"
    target.write_text("old")

    def boom(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        cmd.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["hooks.json"]


def test_make_backup(tmp_path: Path) -> None:
    when = datetime(2026, 11, 22, 5, 0, 0, tzinfo=UTC)
    f = tmp_path / "config.toml"
    assert cmd.make_backup(f, when) is None
    f.write_text("a")
    f.chmod(0o600)
    b1, b2 = cmd.make_backup(f, when), cmd.make_backup(f, when)
    assert b1 is not None and b2 is not None
    assert b1.name == "config.toml.deck-tray-backup-20261122T050000Z"
    assert b2.name == "config.toml.deck-tray-backup-20261122T050000Z-1"
    assert b1.read_text() == "a" and stat.S_IMODE(b1.stat().st_mode) == 0o600


def test_file_changed_after_the_plan_is_not_overwritten(world: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    plans, _ = cmd.plan(True, [AgentKind.CLAUDE_CODE], [EXE], env_of(world))
    (world["claude"] / "settings.json").write_text('{"model": "sonnet"}\n')
    assert cmd._apply([p for p in plans if p.changed], datetime.now(UTC), True) == 3
    assert "changed while deck-tray was working" in capsys.readouterr().err
    assert (world["claude"] / "settings.json").read_text() == '{"model": "sonnet"}\n'


# --------------------------------------------------------------------------- the executable


def _exe(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_executable_lookup(tmp_path: Path) -> None:
    venv_py = str(tmp_path / "venv" / "bin" / "python")
    beside = _exe(tmp_path / "venv" / "bin" / "deck-tray")
    pipx = _exe(tmp_path / "local" / "bin" / "deck-tray")
    shim = _exe(tmp_path / "pyenv" / "shims" / "deck-tray")
    appimage = _exe(tmp_path / "Deck-Tray-x86_64.AppImage")

    def look(**kw: Any) -> list[str]:
        args: dict[str, Any] = dict(environ={}, frozen=False, argv0="", executable=venv_py, which=lambda _: None)
        args.update(kw)
        return cmd.deck_tray_executable(**args)

    assert look(argv0=pipx) == [pipx]                      # what the user ran
    assert look(argv0="/x/deck_tray/__main__.py") == [beside]  # python -m deck_tray: this install's script
    assert look(argv0=shim) == [beside]                    # never a version-manager shim
    assert look(argv0="", executable="/nowhere/python", which=lambda _: pipx) == [pipx]
    assert look(executable="/nowhere/python", which=lambda _: shim) == ["/nowhere/python", "-m", "deck_tray"]
    assert look(frozen=True, executable="/opt/deck-tray/deck-tray") == ["/opt/deck-tray/deck-tray"]
    assert look(environ={"APPIMAGE": appimage}, frozen=True) == [appimage]
    assert look(argv0=str(tmp_path / "missing" / "deck-tray"), executable="/nowhere/python") == [
        "/nowhere/python", "-m", "deck_tray"]
    real = cmd.deck_tray_executable()
    assert os.path.isabs(real[0])
    assert hc.our_executable(hc.hook_command(real, AgentKind.CODEX), AgentKind.CODEX) == real


def test_notify_written_by_install_is_what_codex_reads(world: dict[str, Path]) -> None:
    assert hooks(world, "install", "--yes", "--agent", "codex").returncode == 0
    data = tomllib.loads((world["codex"] / "config.toml").read_text())
    assert data["notify"] == [EXE, "hook", "codex"]
    assert data["tui"] == {"notifications": True}


def test_gemini_qwen_copilot_install_status_remove(world: dict[str, Path]) -> None:
    """Issue #19: ``--agent all`` includes the three agents whose folders exist; the user's
    settings and their own Copilot hook file are kept; ``remove`` deletes deck-tray's Copilot file."""
    home = world["home"]
    (home / ".gemini").mkdir()
    gemini_user = {"ui": {"theme": "Dracula"}, "hooks": {"AfterAgent": [{"hooks": [
        {"type": "command", "name": "mine", "command": "notify-send done"}]}]}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(gemini_user, indent=2) + "\n")
    (home / ".qwen").mkdir()
    (home / ".copilot" / "hooks").mkdir(parents=True)
    mine = '{"version": 1, "hooks": {"agentStop": [{"type": "command", "bash": "say done"}]}}\n'
    (home / ".copilot" / "hooks" / "mine.json").write_text(mine)
    res = hooks(world, "install", "--yes")
    assert res.returncode == 0, res.stderr
    gemini = json.loads((home / ".gemini" / "settings.json").read_text())
    assert gemini["ui"] == gemini_user["ui"]
    assert gemini["hooks"]["AfterAgent"][0] == gemini_user["hooks"]["AfterAgent"][0]  # type: ignore[index]
    assert gemini["hooks"]["SessionEnd"] == [{"hooks": [
        {"type": "command", "name": "deck-tray", "command": "'/opt/deck tray/deck-tray' hook gemini-cli",
         "timeout": 10000}]}]
    assert "PermissionRequest" in json.loads((home / ".qwen" / "settings.json").read_text())["hooks"]
    ours = json.loads((home / ".copilot" / "hooks" / "deck-tray.json").read_text())
    assert ours["hooks"]["permissionRequest"][0]["bash"] == \
        "'/opt/deck tray/deck-tray' hook copilot-cli permissionRequest"
    res = hooks(world, "status", "--json")
    states = {r["agent"]: r["state"] for r in json.loads(res.stdout)}
    assert states["gemini-cli"] == states["qwen-code"] == states["copilot-cli"] == "installed", res.stdout
    res = hooks(world, "remove", "--agent", "copilot", "--yes")
    assert res.returncode == 0, res.stderr
    assert not (home / ".copilot" / "hooks" / "deck-tray.json").exists()
    assert (home / ".copilot" / "hooks" / "mine.json").read_text() == mine
    assert [p.name for p in (home / ".copilot" / "hooks").glob("*.json")] == ["mine.json"]
    res = hooks(world, "uninstall", "--agent", "gemini", "--yes")
    assert res.returncode == 0, res.stderr
    assert json.loads((home / ".gemini" / "settings.json").read_text()) == gemini_user
