"""``deck-tray hooks install|uninstall|status``: deck-tray's hooks in the agents' configs.

Usage::

    deck-tray hooks install   [--agent AGENT|all] [--yes] [--dry-run]
    deck-tray hooks uninstall [--agent AGENT|all] [--yes] [--dry-run]
    deck-tray hooks status    [--agent AGENT|all] [--json]

``AGENT``: ``claude-code``, ``codex``, ``gemini-cli`` (or ``gemini``), ``qwen-code`` (``qwen``),
``copilot-cli`` (``copilot``). Files (what is written there: :mod:`deck_tray.core.hooks_config`
and, for the last three, their adapters in :mod:`deck_tray.core.agents`):

* ``$CLAUDE_CONFIG_DIR/settings.json`` (default ``~/.claude/settings.json``)
* ``$CODEX_HOME/hooks.json`` and ``$CODEX_HOME/config.toml`` (default ``~/.codex``)
* ``$GEMINI_CLI_HOME/.gemini/settings.json`` (default ``~/.gemini/settings.json``)
* ``$QWEN_HOME/settings.json`` (default ``~/.qwen/settings.json``)
* ``$COPILOT_HOME/hooks/deck-tray.json`` (default ``~/.copilot/hooks``; deck-tray's own file,
  removed by ``uninstall``; the user's other files there are never touched)

Every hook runs ``<deck-tray> hook <agent>`` (Copilot: ``<deck-tray> hook copilot-cli <event>``;
the forwarder in :mod:`deck_tray.commands.hook_forwarder`), with ``<deck-tray>`` from
:func:`deck_tray_executable`.
Changes are shown as a unified diff per file and applied only after "Apply? [y/N]" on a
terminal, or with ``--yes``; each changed file is first copied to
``<file>.deck-tray-backup-<UTC timestamp>`` and then replaced atomically (same mode).
With ``--agent all`` (the default) install skips an agent whose config folder does not
exist; naming the agent creates it.

Exit codes: 0 done or nothing to do, 1 declined at the prompt, 2 usage error, 3 refused
(a malformed config file, no terminal and no ``--yes``, a file changed meanwhile, a write
failed, or the deck-tray executable found has no working ``hook`` command, see
:func:`forwarder_problem`) — the reason is on stderr.

Imports beyond ``argparse`` happen inside the functions (``deck-tray hook`` must start fast).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime
    from pathlib import Path
    from typing import Any

    from deck_tray.core import hooks_config
    from deck_tray.core.agents.base import AgentAdapter
    from deck_tray.core.hooks_config import FilePlan, HookStatus
    from deck_tray.core.model import AgentKind

EXIT_OK, EXIT_DECLINED, EXIT_REFUSED = 0, 1, 3
AGENT_CHOICES = ("claude-code", "codex", "gemini-cli", "qwen-code", "copilot-cli", "gemini", "qwen", "copilot",
                 "all")
#: Short names ``--agent`` takes too.
ALIASES = {"gemini": "gemini-cli", "qwen": "qwen-code", "copilot": "copilot-cli"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """Add ``hooks`` with its ``install``, ``uninstall`` and ``status`` subcommands."""
    p = sub.add_parser(
        "hooks", parents=parents, help="install, remove or check deck-tray's hooks in the agents",
        description="deck-tray's hooks tell it at once when Claude Code, Codex, Gemini CLI, Qwen Code or Copilot "
                    "CLI waits for you. They go into ~/.claude/settings.json ($CLAUDE_CONFIG_DIR), "
                    "~/.codex/hooks.json and ~/.codex/config.toml ($CODEX_HOME), ~/.gemini/settings.json "
                    "($GEMINI_CLI_HOME/.gemini), ~/.qwen/settings.json ($QWEN_HOME) and "
                    "~/.copilot/hooks/deck-tray.json ($COPILOT_HOME), next to your own hooks, which are kept.")
    actions = p.add_subparsers(dest="hooks_action", metavar="{install,uninstall,status}", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--agent", choices=AGENT_CHOICES, default="all",
                        help="which agent's config to handle (default: all)")
    # Tests: run "<COMMAND> hook <agent>" instead of deck-tray's own executable.
    common.add_argument("--command", dest="hook_exe", default=None, help=argparse.SUPPRESS)
    for name, func, what in (("install", _cmd_install, "add deck-tray's hooks (shows the changes, asks first)"),
                             ("uninstall", _cmd_uninstall, "remove deck-tray's hooks (shows the changes, asks first)")):
        a = actions.add_parser(name, parents=[*parents, common], help=what, description=what,
                               aliases=["remove"] if name == "uninstall" else [])
        a.add_argument("--yes", "-y", action="store_true", help="apply without asking")
        a.add_argument("--dry-run", action="store_true", help="only print what would change")
        a.set_defaults(func=func)
    s = actions.add_parser("status", parents=[*parents, common], help="show whether the hooks are installed")
    s.add_argument("--json", action="store_true", help="print a JSON array")
    s.set_defaults(func=_cmd_status)


# --------------------------------------------------------------------------- the executable


def _is_shim(path: str) -> bool:
    """A version manager's shim (pyenv, asdf, rbenv…): it picks the real program from the
    *current directory's* version file, so inside an agent's project it may find none."""
    import os

    return os.path.basename(os.path.dirname(path)) == "shims"


def _is_exe(path: str) -> bool:
    import os

    return os.path.isfile(path) and os.access(path, os.X_OK)


def deck_tray_executable(*, environ: Mapping[str, str] | None = None, frozen: bool | None = None,
                         argv0: str | None = None, executable: str | None = None,
                         which: Callable[[str], str | None] | None = None) -> list[str]:
    """The absolute command words that run this deck-tray, for the agents' hook configs.

    In order: an AppImage's ``$APPIMAGE`` (its mount point changes every run); a frozen
    bundle's ``sys.executable``; ``sys.argv[0]`` when it is an executable named deck-tray
    (what the user ran); the ``deck-tray`` console script next to ``sys.executable`` (this
    install, when run as ``python -m deck_tray``); ``deck-tray`` on ``PATH``; finally
    ``[sys.executable, "-m", "deck_tray"]``. Version-manager shims (``…/shims/deck-tray``)
    are skipped: they pick a Python by the agent's working directory. Paths are made
    absolute but symlinks are kept (a venv's ``bin/python`` must stay the venv's).

    Args:
        environ: the environment to read ``APPIMAGE`` and ``PATH`` from (default: ``os.environ``).
        frozen: whether this is a PyInstaller bundle (default: ``sys.frozen``).
        argv0: the command the user ran (default: ``sys.argv[0]``).
        executable: the Python interpreter (default: ``sys.executable``).
        which: finds a command on ``PATH`` (default: ``shutil.which``).

    Args:
        environ, frozen, argv0, executable, which: stand-ins for ``os.environ``,
            ``sys.frozen``, ``sys.argv[0]``, ``sys.executable`` and ``shutil.which`` (tests).

    Returns:
        E.g. ``["/home/u/.local/bin/deck-tray"]`` or ``["/usr/bin/python3", "-m", "deck_tray"]``.
    """
    import os
    import shutil
    import sys

    env = os.environ if environ is None else environ
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    argv0 = (sys.argv[0] if sys.argv else "") if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    which = shutil.which if which is None else which
    appimage = env.get("APPIMAGE")
    if appimage and _is_exe(appimage):
        return [os.path.abspath(appimage)]
    if frozen:
        return [os.path.abspath(executable)]
    if argv0 and os.path.basename(argv0) == "deck-tray" and _is_exe(argv0) and not _is_shim(os.path.abspath(argv0)):
        return [os.path.abspath(argv0)]
    beside = os.path.join(os.path.dirname(executable), "deck-tray")
    if executable and _is_exe(beside):
        return [os.path.abspath(beside)]
    found = which("deck-tray")
    if found and not _is_shim(found):
        return [os.path.abspath(found)]
    return [os.path.abspath(executable), "-m", "deck_tray"]


def _exe_of(args: argparse.Namespace) -> list[str]:
    import shlex

    return shlex.split(args.hook_exe) if getattr(args, "hook_exe", None) else deck_tray_executable()


def _path_exists(word: str) -> bool:
    import os
    import shutil

    return os.path.exists(word) if os.path.isabs(word) else shutil.which(word) is not None


# --------------------------------------------------------------------------- files


def _files(env: Mapping[str, str] | None = None) -> tuple[Path, Path, Path]:
    """``(claude settings.json, codex hooks.json, codex config.toml)``."""
    from deck_tray.core import claude, codex

    cdir = claude.config_dir(dict(env) if env is not None else None)
    xdir = codex.codex_home(dict(env) if env is not None else None)
    return cdir / "settings.json", xdir / "hooks.json", xdir / "config.toml"


def read_text(path: Path) -> str | None:
    """A config file's text, None when it does not exist.

    Raises:
        ConfigError: it cannot be read or is not UTF-8.
    """
    from deck_tray.core.hooks_config import ConfigError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        raise ConfigError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(path, f"cannot read it: {e.strerror or e}") from None


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: a temp file in the same directory, fsync,
    the old file's mode (new files: 0666 less the umask), then ``os.replace``.

    A symlinked file (dotfile managers) is written through: the link's target is replaced.

    Raises:
        OSError: the directory is not writable, the disk is full, …; the old file is intact.
    """
    import os
    import stat
    import tempfile

    target = path.resolve() if path.is_symlink() else path
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".deck-tray-tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def make_backup(path: Path, when: datetime) -> Path | None:
    """Copy ``path`` (if it exists) to ``<path>.deck-tray-backup-<UTC timestamp>``; return the copy.

    Raises:
        OSError: the copy failed.
    """
    import shutil

    from deck_tray.core.hooks_config import backup_path

    source = path.resolve() if path.is_symlink() else path
    if not source.exists():
        return None
    dest = backup_path(path, when)
    n = 1
    while dest.exists():
        dest = dest.with_name(backup_path(path, when).name + f"-{n}")
        n += 1
    shutil.copy2(source, dest)
    return dest


# --------------------------------------------------------------------------- plans and status


def _adapters() -> dict[AgentKind, AgentAdapter]:
    """The adapters' agents that have hooks, by kind."""
    from deck_tray.core.agents import ADAPTERS

    return {a.kind: a for a in ADAPTERS if a.hook_events}


def _agents(choice: str) -> list[AgentKind]:
    from deck_tray.core.model import AgentKind

    if choice == "all":
        return [AgentKind.CLAUDE_CODE, AgentKind.CODEX, *_adapters()]
    return [AgentKind(ALIASES.get(choice, choice))]


def _adapter_file(adapter: AgentAdapter, env: Mapping[str, str] | None) -> Path:
    import os

    path = adapter.hook_file(adapter.home(os.environ if env is None else env))
    assert path is not None
    return path


def plan(install: bool, agents: Sequence[AgentKind], exe: Sequence[str],
         env: Mapping[str, str] | None = None) -> tuple[list[FilePlan], list[str]]:
    """Plan installing (or removing) deck-tray's hooks for ``agents``; nothing is written.

    Args:
        install: True to install, False to uninstall.
        agents: :attr:`AgentKind.CLAUDE_CODE`, :attr:`AgentKind.CODEX` and the adapters' agents
            with hooks (Gemini CLI, Qwen Code, Copilot CLI).
        exe: deck-tray's executable words (see :func:`deck_tray_executable`).
        env: environment for ``CLAUDE_CONFIG_DIR``/``CODEX_HOME``/``GEMINI_CLI_HOME``/``QWEN_HOME``/
            ``COPILOT_HOME``/``HOME`` (default ``os.environ``).

    Returns:
        ``(plans, errors)``: one plan per file, and one message per file deck-tray refuses
        to edit (malformed, unreadable). Apply nothing when ``errors`` is not empty.
    """
    from deck_tray.core import hooks_config as hc
    from deck_tray.core.model import AgentKind

    settings, hooks_json, config_toml = _files(env)
    plans: list[FilePlan] = []
    errors: list[str] = []
    jobs: list[tuple[AgentKind, Path]] = []
    if AgentKind.CLAUDE_CODE in agents:
        jobs.append((AgentKind.CLAUDE_CODE, settings))
    if AgentKind.CODEX in agents:
        jobs += [(AgentKind.CODEX, hooks_json), (AgentKind.CODEX, config_toml)]
    for agent, path in jobs:
        try:
            text = read_text(path)
            if path.suffix == ".toml":
                plans.append(hc.plan_notify(path, text, exe, install))
            else:
                events = hc.CLAUDE_EVENTS if agent is AgentKind.CLAUDE_CODE else hc.CODEX_EVENTS
                plans.append(hc.plan_json(agent, path, text, events, exe, install))
        except hc.ConfigError as e:
            errors.append(f"{e}. Fix or move the file and run again; nothing was changed.")
    for kind, adapter in _adapters().items():
        if kind not in agents:
            continue
        path = _adapter_file(adapter, env)
        try:
            text = read_text(path)
            plans.append(hc.plan_edit(kind, path, text, _editor(adapter, exe, install), install,
                                      owned=adapter.hook_file_owned))
        except hc.ConfigError as e:
            errors.append(f"{e}. Fix or move the file and run again; nothing was changed.")
    return plans, errors


def _editor(adapter: AgentAdapter, exe: Sequence[str], install: bool) -> hooks_config.Merge:
    """The adapter's merge (install) or remove, over a parsed file."""
    def edit(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        return adapter.merge_hooks(data, exe) if install else adapter.remove_hooks(data, exe)

    return edit


def hooks_status(env: Mapping[str, str] | None = None, exe: Sequence[str] | None = None) -> list[HookStatus]:
    """deck-tray's hooks in every agent's config file (for ``doctor``).

    Args:
        env: environment for ``CLAUDE_CONFIG_DIR``/``CODEX_HOME``/``HOME`` (default ``os.environ``).
        exe: the deck-tray executable the hooks should run (default :func:`deck_tray_executable`).

    Returns:
        One :class:`~deck_tray.core.hooks_config.HookStatus` per file: Claude's settings.json,
        Codex's hooks.json, Codex's config.toml (``notify``), then Gemini CLI's and Qwen Code's
        settings.json and Copilot CLI's ``hooks/deck-tray.json``. A malformed or unreadable file gives
        state ``ERROR`` with the file and line in the detail; nothing raises.
    """
    from deck_tray.core import hooks_config as hc
    from deck_tray.core.model import AgentKind

    exe = list(exe) if exe is not None else deck_tray_executable()
    settings, hooks_json, config_toml = _files(env)
    out: list[HookStatus] = []

    def one(agent: AgentKind, path: Path, events: Sequence[str]) -> None:
        try:
            text = read_text(path)
            if text is None:
                where = "folder" if not path.parent.exists() else "file"
                missing = path.parent if where == "folder" else path
                out.append(hc.HookStatus(agent, path, hc.HookState.NOT_INSTALLED,
                                         f"no {missing} {where} (run 'deck-tray hooks install')"))
                return
            if path.suffix == ".toml":
                state, detail = hc.notify_state(path, text, exe, _path_exists)
            else:
                data = hc.load_json(path, text)
                state, detail = hc.hooks_state(data, events, agent, exe, _path_exists)
                if agent is AgentKind.CODEX and state is not hc.HookState.NOT_INSTALLED:
                    try:
                        trust = hc.codex_trust_note(read_text(config_toml), hooks_json, data, exe)
                    except hc.ConfigError:
                        trust = ""
                    detail += f"; {trust}" if trust else ""
            out.append(hc.HookStatus(agent, path, state, detail))
        except hc.ConfigError as e:
            out.append(hc.HookStatus(agent, path, hc.HookState.ERROR,
                                     f"line {e.line}: {e.reason}" if e.line else e.reason))

    one(AgentKind.CLAUDE_CODE, settings, hc.CLAUDE_EVENTS)
    one(AgentKind.CODEX, hooks_json, hc.CODEX_EVENTS)
    one(AgentKind.CODEX, config_toml, ())
    for kind, adapter in _adapters().items():
        path = _adapter_file(adapter, env)
        try:
            text = read_text(path)
            if text is None:
                out.append(hc.HookStatus(kind, path, hc.HookState.NOT_INSTALLED,
                                         f"no {path} file (run 'deck-tray hooks install --agent {kind.value}')"))
                continue
            data = hc.load_flat(path, text) if adapter.hook_file_owned else hc.load_json(path, text)
            state, detail = adapter.hooks_state(data, exe, _path_exists)
            out.append(hc.HookStatus(kind, path, state, detail))
        except hc.ConfigError as e:
            out.append(hc.HookStatus(kind, path, hc.HookState.ERROR,
                                     f"line {e.line}: {e.reason}" if e.line else e.reason))
    return out


# --------------------------------------------------------------------------- commands


def _err(msg: str) -> None:
    import sys

    print(f"deck-tray: {msg}", file=sys.stderr)


def forwarder_problem(exe: Sequence[str]) -> str | None:
    """Why ``<exe> hook <agent>`` would fail inside the agents (``"has no working …"``), or None.

    Runs ``<exe> hook --probe``: the forwarder exits 0 and prints nothing for an agent it
    does not know (it never fails an agent), while a deck-tray without it (an older
    install than the one running this) exits 2 with a usage error — which Claude Code
    would feed back to the model on every Stop.
    """
    import subprocess

    try:
        res = subprocess.run([*exe, "hook", "--probe"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot be run ({e})"
    if res.returncode != 0 or res.stdout.strip():
        last = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        return f"has no working 'hook' command ({last})"
    return None


def _cmd_status(args: argparse.Namespace) -> int:
    import json

    agents = _agents(args.agent)
    rows = [s for s in hooks_status(exe=_exe_of(args)) if s.agent in agents]
    if args.json:
        print(json.dumps([{"agent": s.agent.value, "path": str(s.path), "state": s.state.value, "detail": s.detail}
                          for s in rows], indent=2, ensure_ascii=False))
        return EXIT_OK
    for s in rows:
        print(f"{s.agent.label:<11}  {s.path}: {s.state.value}")
        print(f"{'':<11}  {s.detail}")
    return EXIT_OK


def _cmd_install(args: argparse.Namespace) -> int:
    return _run(args, install=True)


def _cmd_uninstall(args: argparse.Namespace) -> int:
    return _run(args, install=False)


def _run(args: argparse.Namespace, install: bool) -> int:
    import shlex
    import sys
    from datetime import UTC, datetime

    from deck_tray.core.model import AgentKind

    exe = _exe_of(args)
    problem = forwarder_problem(exe) if install and not args.hook_exe else None
    if problem:
        why = (f"the hooks would run {shlex.join(exe)}, which {problem}, so they would fail in every agent. "
               "It is probably an older deck-tray than this one: update or reinstall it (pipx install --force …, "
               "or pip install -e . in a checkout) and run again.")
        if not args.dry_run:
            _err(why + " Nothing was changed.")
            return EXIT_REFUSED
        _err("warning: " + why)
    agents = _agents(args.agent)
    if install and args.agent == "all":
        import os

        settings, hooks_json, _ = _files()
        homes = {AgentKind.CLAUDE_CODE: settings.parent, AgentKind.CODEX: hooks_json.parent,
                 **{kind: a.home(os.environ) for kind, a in _adapters().items()}}
        for agent in list(agents):
            if not homes[agent].is_dir():
                print(f"{agent.label}: skipped, {homes[agent]} does not exist (run {agent.label} once, "
                      f"or use --agent {agent.value})")
                agents.remove(agent)
        if not agents:
            _err("found no agent's config folder (Claude Code, Codex, Gemini CLI, Qwen Code, Copilot CLI); "
                 "nothing to do")
            return EXIT_REFUSED
    plans, errors = plan(install, agents, exe)
    if errors:
        for e in errors:
            _err(e)
        return EXIT_REFUSED
    changed = [p for p in plans if p.changed]
    for p in plans:
        if not p.changed:
            for note in p.notes:
                print(note)
    if not changed:
        return EXIT_OK
    for p in changed:
        print()
        print(p.diff(), end="")
        for note in p.notes:
            print(f"# {note}")
    print()
    if args.dry_run:
        print("Dry run: nothing was written.")
        return EXIT_OK
    if not args.yes:
        if not sys.stdin.isatty():
            _err("not asking without a terminal: run again with --yes to apply the changes above "
                 "(or --dry-run to only show them). Nothing was changed.")
            return EXIT_REFUSED
        try:
            answer = input("Apply? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing was changed.")
            return EXIT_DECLINED
    return _apply(changed, datetime.now(UTC), install)


def _apply(changed: Sequence[FilePlan], when: datetime, install: bool) -> int:
    """Write each planned file (backup first); stop at the first problem."""
    from deck_tray.core.hooks_config import ConfigError
    from deck_tray.core.model import AgentKind

    written: list[FilePlan] = []
    for p in changed:
        try:
            now = read_text(p.path)
        except ConfigError as e:
            now = f"\0unreadable: {e}"
        if now != p.old:
            _err(f"{p.path} changed while deck-tray was working on it; it was left as it is. Run again."
                 + _written_note(written))
            return EXIT_REFUSED
        try:
            backup = make_backup(p.path, when)
            if p.delete:
                p.path.unlink()
            else:
                assert p.new is not None
                write_atomic(p.path, p.new)
        except OSError as e:
            _err(f"could not write {p.path}: {e.strerror or e}; it was left as it is." + _written_note(written))
            return EXIT_REFUSED
        written.append(p)
        if p.delete:
            print(f"Removed {p.path} (backup: {backup})")
            continue
        print(f"Wrote {p.path}" + (f" (backup: {backup})" if backup else " (new file)"))
    agents = {p.agent for p in written}
    if install and AgentKind.CODEX in agents and any(p.path.name == "hooks.json" for p in written):
        print("Codex runs new or changed hooks only after you trust them once: start codex, type /hooks "
              "and trust deck-tray's hooks (Codex asks again whenever a hook's command changes).")
    if install and AgentKind.CLAUDE_CODE in agents:
        print("Claude Code sessions that are already running may need a restart to use the new hooks.")
    late = [a.label for a in agents if a in _adapters()]
    if install and late:
        print(f"{', '.join(sorted(late))} read their hooks at start: restart the sessions already running.")
    if install and {AgentKind.QWEN_CODE, AgentKind.COPILOT_CLI} & agents:
        print("Qwen Code and Copilot CLI show no permission prompt while deck-tray's hook runs: it waits for "
              "your answer in deck-tray at most a few seconds (setting \"Let Qwen and Copilot wait for "
              "deck-tray\"), then the agent asks in its terminal.")
    if install:
        print("The hooks forward events to the running deck-tray app; when it is not running they exit at once.")
    else:
        print("deck-tray's hooks are removed; your own hooks are as they were.")
    return EXIT_OK


def _written_note(written: Sequence[FilePlan]) -> str:
    if not written:
        return " Nothing was changed."
    return " Already written: " + ", ".join(str(p.path) for p in written) + "."
