"""deck-tray's entries in Claude Code's and Codex's config files: merge, remove, detect, diff.

Pure functions over file *texts* (``None`` = the file does not exist); reading, writing,
backups and prompting live in :mod:`deck_tray.commands.hooks_setup`. Edits keep every byte of the
user's that they do not change: JSON through :mod:`deck_tray.core.json_splice`, config.toml by
splicing at the places :mod:`deck_tray.core.toml_places` (tomlkit) finds.

Files and the entries deck-tray owns in them (``EXE`` = the deck-tray executable words,
e.g. ``("/home/u/.local/bin/deck-tray",)`` or ``("/usr/bin/python3", "-m", "deck_tray")``):

* Claude Code — ``$CLAUDE_CONFIG_DIR/settings.json`` (default ``~/.claude/settings.json``),
  one group per event in :data:`CLAUDE_EVENTS`, appended after the user's own groups::

      {"hooks": {"PermissionRequest": [..., {"matcher": "*", "hooks": [
                     {"type": "command", "command": "EXE hook claude-code", "timeout": 10}]}],
                 "Stop": [..., {"hooks": [{"type": "command", "command": "EXE hook claude-code",
                                           "timeout": 10}]}], ...}}

  ``matcher`` only on tool events (:data:`TOOL_EVENTS`), as in the captured 2.1.197 setup
  (``shared/reference/claude-code-and-codex.md`` §1.6). ``command`` is run by a shell, so it
  is ``shlex.join`` of the words.
* Codex — ``$CODEX_HOME/hooks.json`` (default ``~/.codex/hooks.json``), the same shape with
  ``EXE hook codex`` for :data:`CODEX_EVENTS` (§2.6); Codex runs a new or changed hook only
  after the user trusted it once (``/hooks`` in its TUI, then ``t``). And
  ``$CODEX_HOME/config.toml``, top-level ``notify = ["EXE"..., "hook", "codex"]`` (an argv
  list; Codex appends the JSON payload as the last argument, §2.5). Codex runs one notify
  program: someone else's is never replaced.

An entry is deck-tray's when its command words contain ``hook <agent>`` right after a
deck-tray executable (a file named ``deck-tray…``, ``… -m deck_tray``, or the ``EXE`` in
use), so a reinstall after the executable moved replaces the old entry instead of adding one.
"""

from __future__ import annotations

import copy
import difflib
import enum
import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deck_tray.core import toml_places
from deck_tray.core.json_splice import edit_json
from deck_tray.core.model import AgentKind

#: Claude Code events deck-tray listens to (issue #6; all seen in 2.1.197).
CLAUDE_EVENTS: tuple[str, ...] = (
    "PermissionRequest", "Notification", "Stop", "UserPromptSubmit", "SessionStart", "SessionEnd",
)
#: Codex events deck-tray listens to (those seen firing in 0.169.0; each needs trusting once).
CODEX_EVENTS: tuple[str, ...] = ("PermissionRequest", "Stop", "UserPromptSubmit", "SessionStart", "SessionEnd")
#: Events whose groups take a tool ``matcher`` (``"*"``); others are written without one.
TOOL_EVENTS: frozenset[str] = frozenset(
    {"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest", "PermissionDenied"})
#: Seconds the agent waits for the hook before killing it (the forwarder returns in ~50 ms).
HOOK_TIMEOUT_S = 10
#: The ``PermissionRequest`` hook waits for the user's answer in deck-tray (600 s at most,
#: :data:`deck_tray.services.decisions.WAIT_S`): its own timeout leaves a margin (seconds).
DECISION_HOOK_TIMEOUT_S = 660
#: Longest a Qwen Code / Copilot CLI permission hook waits for deck-tray (seconds): the most the
#: "Let Qwen and Copilot wait for deck-tray" setting allows (those agents show no prompt while
#: the hook runs, see :mod:`deck_tray.core.decisions`).
SHORT_WAIT_MAX_S = 30
#: The installed ``timeout`` of such a hook (seconds): the longest wait and a margin.
SHORT_DECISION_HOOK_TIMEOUT_S = 45
#: Backups are ``<file><BACKUP_INFIX><UTC timestamp>``.
BACKUP_INFIX = ".deck-tray-backup-"

Json = dict[str, Any]


class HookState(enum.Enum):
    """How far deck-tray's entries in one config file are installed."""

    INSTALLED = "installed"
    NOT_INSTALLED = "not installed"
    OUTDATED = "outdated"
    """deck-tray's entries are there but run another deck-tray executable."""
    PARTIAL = "partially installed"
    """Some events (or the notify line) are there, others are missing."""
    FOREIGN = "another program"
    """Codex ``notify`` runs someone else's program; deck-tray leaves it alone."""
    ERROR = "unreadable"
    """The file is malformed or cannot be read; the detail says where."""


@dataclass(frozen=True)
class HookStatus:
    """deck-tray's hooks in one config file.

    Attributes:
        agent: the agent the file belongs to.
        path: the config file (it may not exist).
        state: how far deck-tray's entries are installed.
        detail: one sentence for people, e.g. ``"all 6 events run /x/deck-tray hook claude-code"``.
    """

    agent: AgentKind
    path: Path
    state: HookState
    detail: str


class ConfigError(ValueError):
    """A user's config file deck-tray refuses to edit (malformed, or an unexpected shape).

    Attributes:
        path: the file.
        line: 1-based line of the problem, or None when not known.
        reason: what is wrong.
    """

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}, line {line}" if line else str(path)
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class FilePlan:
    """What install/uninstall would do to one file.

    Attributes:
        agent: the agent the file belongs to.
        path: the file.
        old: its current text, None when it does not exist.
        new: the text to write, None to leave the file as it is.
        notes: sentences for the user: what changes, or why nothing does.
        delete: remove the file (one deck-tray owns, left with nothing in it); ``new`` is None.
    """

    agent: AgentKind
    path: Path
    old: str | None
    new: str | None
    notes: tuple[str, ...] = field(default=())
    delete: bool = False

    @property
    def changed(self) -> bool:
        """Whether applying the plan changes the file."""
        if self.delete:
            return self.old is not None
        return self.new is not None and self.new != self.old

    def diff(self) -> str:
        """Unified diff old → new ('' when unchanged)."""
        if not self.changed:
            return ""
        return unified_diff(self.path, self.old, "" if self.delete else self.new)


# --------------------------------------------------------------------------- commands


def hook_argv(exe: Sequence[str], agent: AgentKind) -> list[str]:
    """The forwarder's argv: ``[*exe, "hook", agent.value]``."""
    return [*exe, "hook", agent.value]


def hook_command(exe: Sequence[str], agent: AgentKind) -> str:
    """The forwarder as a shell command string (``shlex.join`` of :func:`hook_argv`)."""
    return shlex.join(hook_argv(exe, agent))


def _words(command: object) -> list[str] | None:
    """A command's words: a shell string is split with ``shlex``, an argv list taken as is."""
    if isinstance(command, str):
        try:
            return shlex.split(command)
        except ValueError:
            return None
    if isinstance(command, list) and all(isinstance(w, str) for w in command):
        return list(command)
    return None


def looks_like_deck_tray(prefix: Sequence[str]) -> bool:
    """Whether ``prefix`` (command words before ``hook``) runs some deck-tray.

    True for one word whose file name starts with ``deck-tray``/``deck_tray`` (console
    script, frozen bundle, AppImage) and for ``<python> -m deck_tray``.
    """
    if len(prefix) == 1:
        return re.match(r"deck[-_]tray", os.path.basename(prefix[0]), re.IGNORECASE) is not None
    return len(prefix) >= 3 and list(prefix[-2:]) == ["-m", "deck_tray"]


def our_executable(command: object, agent: AgentKind, exe: Sequence[str] = ()) -> list[str] | None:
    """The deck-tray executable words of ``command`` if it is deck-tray's hook for ``agent``.

    Args:
        command: a hook's ``command`` string or a ``notify`` argv list.
        agent: whose hook to look for.
        exe: the executable in use now (also recognised when not named deck-tray, e.g. in tests).

    Returns:
        The words before ``hook <agent>``, or None when the command is not deck-tray's.
    """
    words = _words(command)
    if not words:
        return None
    for i in range(1, len(words) - 1):
        if words[i] == "hook" and words[i + 1] == agent.value:
            prefix = words[:i]
            if (exe and prefix == list(exe)) or looks_like_deck_tray(prefix):
                return prefix
    return None


# --------------------------------------------------------------------------- JSON hook files


def load_json(path: Path, text: str | None) -> Json:
    """Parse a settings/hooks JSON file and check the shape of its ``hooks`` key.

    Args:
        path: the file (for messages).
        text: its content; None (no file) or blank gives ``{}``.

    Returns:
        The parsed object.

    Raises:
        ConfigError: not JSON (with the line), not an object, or ``hooks`` not shaped
            ``{Event: [{"hooks": [{...}, ...], ...}, ...]}``.
    """
    data = _json_object(path, text)
    hooks = data.get("hooks")
    if hooks is None:
        return data
    if not isinstance(hooks, dict):
        raise ConfigError(path, f'"hooks" is a {type(hooks).__name__}, expected an object of events')
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            raise ConfigError(path, f'"hooks.{event}" is a {type(groups).__name__}, expected a list')
        for gi, group in enumerate(groups):
            if not isinstance(group, dict):
                raise ConfigError(path, f'"hooks.{event}[{gi}]" is a {type(group).__name__}, expected an object')
            handlers = group.get("hooks", [])
            if not isinstance(handlers, list) or not all(isinstance(h, dict) for h in handlers):
                raise ConfigError(path, f'"hooks.{event}[{gi}].hooks" is not a list of objects')
    return data


def hook_timeout(event: str) -> int:
    """The ``timeout`` (seconds) deck-tray's handler of ``event`` gets."""
    return DECISION_HOOK_TIMEOUT_S if event == "PermissionRequest" else HOOK_TIMEOUT_S


def _handler(command: str, event: str) -> Json:
    return {"type": "command", "command": command, "timeout": hook_timeout(event)}


def _group(event: str, command: str) -> Json:
    group: Json = {"matcher": "*"} if event in TOOL_EVENTS else {}
    group["hooks"] = [_handler(command, event)]
    return group


def _ours_in(groups: list[Any], agent: AgentKind, exe: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(group index, handler index, command)`` of deck-tray's handlers in one event's groups."""
    found: list[tuple[int, int, str]] = []
    for gi, group in enumerate(groups):
        for hi, handler in enumerate(group.get("hooks", [])):
            command = handler.get("command")
            if isinstance(command, str) and our_executable(command, agent, exe) is not None:
                found.append((gi, hi, command))
    return found


def _drop(groups: list[Any], doomed: list[tuple[int, int]]) -> None:
    """Remove handlers ``(gi, hi)`` from ``groups`` in place; drop groups left with no handler."""
    emptied: set[int] = set()
    for gi, hi in sorted(doomed, reverse=True):
        del groups[gi]["hooks"][hi]
        if not groups[gi]["hooks"]:
            emptied.add(gi)
    for gi in sorted(emptied, reverse=True):
        del groups[gi]


def merge_hooks(data: Json, events: Sequence[str], agent: AgentKind, exe: Sequence[str],
                group: Callable[[str, str], Json] | None = None) -> tuple[Json, list[str]]:
    """Make deck-tray's handlers in ``data["hooks"]`` exactly one per event in ``events``.

    The user's groups and handlers, their order and unknown keys stay. A missing event gets
    a new group appended (so Codex's per-position trust of the user's hooks is kept); a
    deck-tray handler running another executable gets the new command in place; extra
    deck-tray handlers (duplicates, events no longer used) are removed.

    Args:
        data: a parsed settings/hooks file (from :func:`load_json`); not modified.
        events: the events to hook.
        agent: whose hook command to write.
        exe: the deck-tray executable words.
        group: makes the group appended for ``(event, command)`` (default: Claude Code's, a
            ``"*"`` matcher on tool events only); with it, every deck-tray handler's ``timeout``
            and other keys are kept as that group's handler has them, and a deck-tray handler
            alone in a group whose ``matcher`` differs gets that group's matcher (Gemini's
            lifecycle events never fire with a regex matcher).

    Returns:
        ``(new data, changes)``; ``changes`` is empty when nothing needed doing.
    """
    custom = group is not None
    make = group or _group
    out = copy.deepcopy(data)
    command = hook_command(exe, agent)
    changes: list[str] = []
    hooks = out.get("hooks")
    if hooks is None:
        hooks = out["hooks"] = {}
    for event in list(hooks):
        groups = hooks[event]
        ours = _ours_in(groups, agent, exe)
        if event not in events:
            if ours:
                _drop(groups, [(gi, hi) for gi, hi, _ in ours])
                if not groups:
                    del hooks[event]
                changes.append(f"{event}: removed deck-tray's hook (no longer used)")
            continue
        if not ours:
            groups.append(make(event, command))
            changes.append(f"{event}: added")
            continue
        gi, hi, old = ours[0]
        if old != command:
            groups[gi]["hooks"][hi]["command"] = command
            changes.append(f"{event}: now runs {command} (was {old})")
        handler = groups[gi]["hooks"][hi]
        if custom:
            _fix_custom(event, groups[gi], hi, make(event, command), changes)
        want = hook_timeout(event)
        if not custom and event == "PermissionRequest" and handler.get("timeout") != want:
            changes.append(f"{event}: timeout {want} s, so it can wait for your answer in deck-tray "
                           f"(was {handler.get('timeout', 'unset')})")
            handler["timeout"] = want
        if len(ours) > 1:
            _drop(groups, [(g, h) for g, h, _ in ours[1:]])
            changes.append(f"{event}: removed {len(ours) - 1} duplicate deck-tray hook(s)")
    for event in events:
        if event not in hooks:
            hooks[event] = [make(event, command)]
            changes.append(f"{event}: added")
    if not hooks and "hooks" not in data:
        del out["hooks"]
    return out, changes


def _fix_custom(event: str, group: Json, hi: int, want: Json, changes: list[str]) -> None:
    """Bring deck-tray's handler ``group["hooks"][hi]`` (and its group's matcher, when it is
    alone there) in line with the group deck-tray would write, ``want``."""
    handler = group["hooks"][hi]
    wanted = want["hooks"][0]
    for key, value in wanted.items():
        if key != "command" and handler.get(key) != value:
            changes.append(f"{event}: {key} {value} (was {handler.get(key, 'unset')})")
            handler[key] = value
    if len(group["hooks"]) == 1 and group.get("matcher") != want.get("matcher"):
        if "matcher" in want:
            group["matcher"] = want["matcher"]
            changes.append(f"{event}: matcher {want['matcher']!r}")
        else:
            changes.append(f"{event}: removed matcher {group.pop('matcher')!r} (this event fires only without one)")


def remove_hooks(data: Json, agent: AgentKind, exe: Sequence[str] = ()) -> tuple[Json, list[str]]:
    """Remove every deck-tray handler for ``agent`` from ``data["hooks"]``.

    Groups left with no handler go, and so do events left with no group (only those
    deck-tray emptied); everything else stays as it is.

    Returns:
        ``(new data, changes)``; ``changes`` is empty when there was nothing of deck-tray's.
    """
    out = copy.deepcopy(data)
    hooks = out.get("hooks")
    changes: list[str] = []
    if not isinstance(hooks, dict):
        return out, changes
    for event in list(hooks):
        groups = hooks[event]
        ours = _ours_in(groups, agent, exe)
        if ours:
            _drop(groups, [(gi, hi) for gi, hi, _ in ours])
            if not groups:
                del hooks[event]
            changes.append(f"{event}: removed deck-tray's hook")
    if changes and not hooks:
        del out["hooks"]
    return out, changes


def hooks_state(data: Json, events: Sequence[str], agent: AgentKind, exe: Sequence[str],
                exists: Callable[[str], bool] | None = None) -> tuple[HookState, str]:
    """How far deck-tray's handlers for ``events`` are in ``data["hooks"]``.

    Args:
        data: a parsed settings/hooks file.
        events: the events deck-tray wants.
        agent: whose hook command to look for.
        exe: the deck-tray executable in use now.
        exists: tells whether an executable path exists (to say so of an outdated one).

    Returns:
        ``(state, one-sentence detail)``.
    """
    found = data.get("hooks")
    hooks: Json = found if isinstance(found, dict) else {}
    command = hook_command(exe, agent)
    current: list[str] = []
    other: dict[str, str] = {}
    for event in events:
        ours = _ours_in(hooks.get(event, []), agent, exe)
        if any(c == command for _, _, c in ours):
            current.append(event)
        elif ours:
            other[event] = ours[0][2]
    missing = [e for e in events if e not in current and e not in other]
    disabled = " (but \"disableAllHooks\" is true in this file, so none run)" if data.get("disableAllHooks") else ""
    if not current and not other:
        return HookState.NOT_INSTALLED, "no deck-tray hooks"
    if missing:
        there = len(events) - len(missing)
        return HookState.PARTIAL, (f"deck-tray hooks for {there} of {len(events)} events; missing "
                                   f"{', '.join(missing)}{disabled}")
    if other:
        olds = sorted(set(other.values()))
        what = "; ".join(olds)
        gone = ""
        if exists is not None:
            paths = [w[0] for w in (our_executable(c, agent, exe) for c in olds) if w]
            if paths and not any(exists(p) for p in paths):
                gone = ", which no longer exists"
        return HookState.OUTDATED, (f"{len(other)} of {len(events)} events run {what}{gone}, not {command}"
                                    f"{disabled}")
    return HookState.INSTALLED, f"all {len(events)} events ({', '.join(events)}) run {command}{disabled}"


def plan_json(agent: AgentKind, path: Path, text: str | None, events: Sequence[str], exe: Sequence[str],
              install: bool) -> FilePlan:
    """Plan installing (or removing) deck-tray's hooks in one settings/hooks JSON file.

    Args:
        agent: whose file it is.
        path: the file.
        text: its current content, None when it does not exist.
        events: the events to hook (install).
        exe: the deck-tray executable words.
        install: True to install, False to uninstall.

    Returns:
        The plan; its notes say "already installed" / "nothing to remove" when unchanged.

    Raises:
        ConfigError: the file is malformed (see :func:`load_json`).
    """
    data = load_json(path, text)
    if install:
        new, changes = merge_hooks(data, events, agent, exe)
    else:
        new, changes = remove_hooks(data, agent, exe)
    if not changes:
        note = "already installed" if install else "no deck-tray hooks to remove"
        return FilePlan(agent, path, text, None, (f"{path}: {note}",))
    return FilePlan(agent, path, text, edit_json(text, data, new), tuple(f"{path}: {c}" for c in changes))


Merge = Callable[[Json], tuple[Json, list[str]]]


def plan_edit(agent: AgentKind, path: Path, text: str | None, edit: Merge, install: bool,
              owned: bool = False) -> FilePlan:
    """Plan one change of an agent's hooks file made by ``edit`` (an adapter's
    :meth:`~deck_tray.core.agents.base.AgentAdapter.merge_hooks` or ``remove_hooks``).

    Args:
        agent: whose file it is.
        path: the file.
        text: its current content, None when it does not exist.
        edit: parsed file → ``(new data, changes)``.
        install: whether ``edit`` installs (for the "nothing to do" note).
        owned: the file is deck-tray's own (Copilot's ``hooks/deck-tray.json``): it is
            written whole, and removed when no hook is left in it.

    Raises:
        ConfigError: the file is malformed.
    """
    data = load_flat(path, text) if owned else load_json(path, text)
    new, changes = edit(data)
    if not changes:
        note = "already installed" if install else "no deck-tray hooks to remove"
        return FilePlan(agent, path, text, None, (f"{path}: {note}",))
    notes = tuple(f"{path}: {c}" for c in changes)
    if owned:
        if not install and not new.get("hooks"):
            return FilePlan(agent, path, text, None, (*notes, f"{path}: removed (deck-tray's own file)"), delete=True)
        return FilePlan(agent, path, text, json.dumps(new, indent=2, ensure_ascii=False) + "\n", notes)
    return FilePlan(agent, path, text, edit_json(text, data, new), notes)


# --------------------------------------------------------------------------- flat hook files (Copilot)
#
# Copilot CLI 1.0.102 reads every ``$COPILOT_HOME/hooks/*.json``:
# ``{"version": 1, "hooks": {"<event>": [{"type": "command", "bash": CMD, "timeoutSec": N}]}}``
# (docs/agents/copilot-cli.md). Handlers sit directly in the event's list (no groups).


def _json_object(path: Path, text: str | None) -> Json:
    """``text`` parsed as a JSON object; ``{}`` when empty or absent.

    Raises:
        ConfigError: not JSON (with the line), or not an object.
    """
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(path, f"not valid JSON: {e.msg} (column {e.colno})", e.lineno) from None
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a JSON object at the top, found {type(data).__name__}")
    return data


def load_flat(path: Path, text: str | None) -> Json:
    """Parse a flat hooks file (``{"version": 1, "hooks": {event: [handler, ...]}}``).

    Raises:
        ConfigError: not JSON, or not that shape.
    """
    data = _json_object(path, text)
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict):
        raise ConfigError(path, '"hooks" is not an object of events')
    for event, handlers in hooks.items():
        if not isinstance(handlers, list) or not all(isinstance(h, dict) for h in handlers):
            raise ConfigError(path, f'"hooks.{event}" is not a list of objects')
    return data


def _flat_ours(handlers: list[Any], agent: AgentKind, exe: Sequence[str], key: str) -> list[int]:
    return [i for i, h in enumerate(handlers) if our_executable(h.get(key), agent, exe) is not None]


def merge_flat(data: Json, events: Sequence[str], agent: AgentKind, exe: Sequence[str],
               handler: Callable[[str], Json], key: str = "bash") -> tuple[Json, list[str]]:
    """Make deck-tray's handlers in a flat hooks file exactly ``handler(event)`` once per event.

    Other handlers (someone else's) stay; deck-tray's for events not in ``events`` go;
    ``version`` is set to 1.

    Args:
        data: the parsed file (:func:`load_flat`); not modified.
        events: the events to hook.
        agent: whose hook commands to look for.
        exe: the deck-tray executable words.
        handler: the handler object deck-tray writes for an event.
        key: the handler's command key (``"bash"``).
    """
    out = copy.deepcopy(data)
    changes: list[str] = []
    if out.get("version") != 1:
        out["version"] = 1
        if data:
            changes.append("version: 1")
    hooks = out.setdefault("hooks", {})
    for event in list(hooks):
        handlers = hooks[event]
        ours = _flat_ours(handlers, agent, exe, key)
        want = handler(event) if event in events else None
        if want is None or not ours:
            if ours:
                for i in reversed(ours):
                    del handlers[i]
                changes.append(f"{event}: removed deck-tray's hook (no longer used)")
                if not handlers:
                    del hooks[event]
            continue
        if handlers[ours[0]] != want:
            changes.append(f"{event}: now runs {want[key]}")
            handlers[ours[0]] = want
        for i in reversed(ours[1:]):
            del handlers[i]
            changes.append(f"{event}: removed a duplicate deck-tray hook")
    for event in events:
        handlers = hooks.setdefault(event, [])
        if not _flat_ours(handlers, agent, exe, key):
            handlers.append(handler(event))
            changes.append(f"{event}: added")
    return out, changes


def remove_flat(data: Json, agent: AgentKind, exe: Sequence[str] = (), key: str = "bash") -> tuple[Json, list[str]]:
    """A flat hooks file without deck-tray's handlers (events left empty go)."""
    out = copy.deepcopy(data)
    changes: list[str] = []
    hooks = out.get("hooks")
    if not isinstance(hooks, dict):
        return out, changes
    for event in list(hooks):
        ours = _flat_ours(hooks[event], agent, exe, key)
        for i in reversed(ours):
            del hooks[event][i]
        if ours:
            changes.append(f"{event}: removed deck-tray's hook")
            if not hooks[event]:
                del hooks[event]
    return out, changes


def flat_state(data: Json, events: Sequence[str], agent: AgentKind, exe: Sequence[str],
               handler: Callable[[str], Json], key: str = "bash",
               exists: Callable[[str], bool] | None = None) -> tuple[HookState, str]:
    """How far deck-tray's handlers are in a flat hooks file (as :func:`hooks_state`)."""
    found = data.get("hooks")
    hooks: Json = found if isinstance(found, dict) else {}
    current: list[str] = []
    other: dict[str, str] = {}
    for event in events:
        handlers = hooks.get(event, [])
        ours = [handlers[i] for i in _flat_ours(handlers, agent, exe, key)]
        if handler(event) in ours:
            current.append(event)
        elif ours:
            other[event] = str(ours[0].get(key))
    missing = [e for e in events if e not in current and e not in other]
    if not current and not other:
        return HookState.NOT_INSTALLED, "no deck-tray hooks"
    if missing:
        return HookState.PARTIAL, (f"deck-tray hooks for {len(events) - len(missing)} of {len(events)} events; "
                                   f"missing {', '.join(missing)}")
    if other:
        gone = ""
        if exists is not None:
            paths = [w[0] for w in (our_executable(c, agent, exe) for c in other.values()) if w]
            if paths and not any(exists(p) for p in paths):
                gone = ", which no longer exists"
        return HookState.OUTDATED, (f"{len(other)} of {len(events)} events run {sorted(set(other.values()))[0]}"
                                    f"{gone}, not {shlex.join(exe)}")
    if data.get("version") != 1:
        return HookState.PARTIAL, f"all {len(events)} events are there, but \"version\" is not 1"
    command = shlex.join(hook_argv(exe, agent))
    return HookState.INSTALLED, f"all {len(events)} events ({', '.join(events)}) run {command} <event>"


# --------------------------------------------------------------------------- Codex config.toml notify


def load_toml(path: Path, text: str | None) -> Json:
    """Parse a TOML file (None or blank gives ``{}``).

    Raises:
        ConfigError: not valid TOML, with the line tomllib reports.
    """
    if text is None or not text.strip():
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        if m:
            raise ConfigError(path, f"not valid TOML: {msg} (column {m.group(2)})", int(m.group(1))) from None
        raise ConfigError(path, f"not valid TOML: {msg}") from None


def _notify_layout(path: Path, text: str | None) -> tuple[Json, toml_places.Layout | str]:
    """config.toml parsed, and where its ``notify`` statements are (:func:`toml_places.find`).

    Returns:
        ``(data, layout)``; ``layout`` is instead the reason when tomlkit cannot place the
        statements (then nothing may be edited), e.g. an array of tables interrupted by
        another table, which tomlkit (0.11–0.15) writes back regrouped.

    Raises:
        ConfigError: not valid TOML (the line tomllib reports).
    """
    data = load_toml(path, text)
    try:
        return data, toml_places.find(text or "", "notify")
    except toml_places.LayoutError as e:
        return data, str(e)


def notify_line(argv: Sequence[str]) -> str:
    """``notify = ["w1", "w2", ...]`` as one TOML line (no newline)."""
    return "notify = [" + ", ".join(json.dumps(w, ensure_ascii=False) for w in argv) + "]"


def _shown(value: Any) -> str:
    """A notify value as its TOML line."""
    if isinstance(value, list) and all(isinstance(w, str) for w in value):
        return notify_line(value)
    return f"notify = {value!r}"


def _strip_notify(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip_notify(v) for k, v in data.items() if k != "notify"}
    if isinstance(data, list):
        return [_strip_notify(v) for v in data]
    return data


def _check_edit(path: Path, before: Json, after_text: str, top: list[str] | None) -> None:
    """Refuse an edit that changed anything but ``notify`` keys (a bug guard)."""
    try:
        after: Json | None = tomllib.loads(after_text)
    except tomllib.TOMLDecodeError:
        after = None
    ok = after is not None and _strip_notify(after) == _strip_notify(before) and after.get("notify") == top
    if not ok:
        raise ConfigError(path, "deck-tray could not edit the notify line safely; nothing was changed. "
                                "Edit it by hand (see 'deck-tray hooks status').")


def _statements(data: Json, layout: toml_places.Layout | str) -> tuple[toml_places.Statement, ...]:
    """The notify statements; when tomlkit cannot place them, the top-level one from ``data``
    with line 0 (where unknown) — enough to tell the state and to leave the file alone."""
    if isinstance(layout, toml_places.Layout):
        return layout.statements
    return () if "notify" not in data else (toml_places.Statement("", data["notify"], 0, 0, 0, "", ""),)


def _at(statement: toml_places.Statement) -> str:
    return f"line {statement.line}" if statement.line else "the top-level notify"


def notify_state(path: Path, text: str | None, exe: Sequence[str],
                 exists: Callable[[str], bool] | None = None) -> tuple[HookState, str]:
    """State of Codex's top-level ``notify`` in config.toml relative to deck-tray.

    Returns:
        ``(state, detail)``: INSTALLED (ours, this executable), OUTDATED (ours, another
        executable), FOREIGN (another program), NOT_INSTALLED (none, or ours only inside a
        table where Codex does not read it).

    Raises:
        ConfigError: config.toml is not valid TOML.
    """
    data, layout = _notify_layout(path, text)
    want = hook_argv(exe, AgentKind.CODEX)
    stmts = _statements(data, layout)
    top = next((s for s in stmts if not s.header), None)
    misplaced = [s for s in stmts if s.header and our_executable(s.value, AgentKind.CODEX, exe) is not None]
    aside = "".join(f"; deck-tray's notify line {s.line} sits inside {s.header}, where Codex does not read it"
                    for s in misplaced)
    if top is None:
        return HookState.NOT_INSTALLED, "no notify program" + aside
    shown = _shown(top.value)
    ours = our_executable(top.value, AgentKind.CODEX, exe)
    if ours is None:
        return HookState.FOREIGN, (f"{_at(top)} runs another program ({shown}); "
                                   "deck-tray leaves it (its Stop hook reports finished turns anyway)")
    if top.value == want:
        return HookState.INSTALLED, f"{shown} ({_at(top)})" + aside
    gone = ", which no longer exists" if exists is not None and ours and not exists(ours[0]) else ""
    return HookState.OUTDATED, f"{_at(top)} runs {shlex.join(ours)}{gone}, not {shlex.join(exe)}" + aside


def plan_notify(path: Path, text: str | None, exe: Sequence[str], install: bool) -> FilePlan:
    """Plan setting (or removing) deck-tray's top-level ``notify`` in Codex's config.toml.

    Only ``notify`` statements change, and every other byte stays: a missing one is
    inserted after the last top-level statement (before the first table and the comments
    attached to it, :func:`toml_places.find`); deck-tray's own is rewritten in place (its
    indentation and trailing comment kept); deck-tray's own inside a table (where Codex
    ignores it) is removed. Another program's top-level notify is never touched: the note
    says what to do.

    Args:
        path: config.toml.
        text: its content, None when it does not exist.
        exe: the deck-tray executable words.
        install: True to install, False to uninstall.

    Returns:
        The plan.

    Raises:
        ConfigError: config.toml is not valid TOML (with the line); or tomlkit cannot place
            its statements and a change is needed (the message says what to write by hand);
            or the edit would have changed anything else. The file is never left half-edited:
            the plan is only text.
    """
    agent = AgentKind.CODEX
    before, layout = _notify_layout(path, text)
    stmts = _statements(before, layout)
    old = text or ""
    top = next((s for s in stmts if not s.header), None)
    top_ours = top is not None and our_executable(top.value, agent, exe) is not None
    misplaced = [s for s in stmts if s.header and our_executable(s.value, agent, exe) is not None]
    want = hook_argv(exe, agent)
    notes: list[str] = []
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in the old text
    todo = ""  # what to do by hand when the layout is unknown
    for s in misplaced:
        edits.append((s.start, s.end, ""))
        notes.append(f"{path}: removed deck-tray's notify line {s.line} from {s.header} "
                     "(Codex reads notify only at the top level)")
    result_top: Any = top.value if top is not None else None
    if install:
        if top is not None and not top_ours:
            notes.append(
                f"{path}: notify already runs another program ({_shown(top.value)}, {_at(top)}); "
                "deck-tray left it. Codex runs one notify program; deck-tray's Stop hook reports finished turns "
                f"anyway. To use deck-tray's instead, replace that line with {notify_line(want)}, or make your "
                f"program also run {shlex.join(want)} with the JSON as its last argument.")
        elif top is not None and top.value == want:
            notes.append(f"{path}: notify already installed")
        elif top is not None:
            edits.append((top.start, top.end, top.indent + notify_line(want) + top.tail))
            notes.append(f"{path}: notify now runs {shlex.join(want)} (was {shlex.join(top.value)})")
            todo = f"replace the top-level notify with {notify_line(want)}"
            result_top = want
        else:
            pos = layout.insert_at if isinstance(layout, toml_places.Layout) else 0
            lead = "\n" if pos > 0 and old[pos - 1] != "\n" else ""
            gap = isinstance(layout, toml_places.Layout) and layout.insert_gap
            edits.append((pos, pos, lead + notify_line(want) + "\n" + ("\n" if gap else "")))
            line = old.count("\n", 0, pos) + 1 + len(lead)
            notes.append(f"{path}: notify = {shlex.join(want)} added (top level, line {line})")
            todo = f"add {notify_line(want)} at the top level, before the first [table]"
            result_top = want
    elif top is not None and top_ours:
        edits.append((top.start, top.end, ""))
        notes.append(f"{path}: removed deck-tray's notify line {top.line}")
        todo = "remove the top-level notify line"
        result_top = None
    elif top is not None:
        notes.append(f"{path}: notify runs another program; left as it is")
    else:
        notes.append(f"{path}: no deck-tray notify to remove")
    if isinstance(layout, str) and todo:
        raise ConfigError(path, f"deck-tray cannot edit this file without changing more than notify ({layout}); "
                                f"nothing was changed. To finish by hand, {todo}.")
    new = old
    for start, end, replacement in sorted(edits, reverse=True):
        new = new[:start] + replacement + new[end:]
    if new == old:
        return FilePlan(agent, path, text, None, tuple(notes))
    _check_edit(path, before, new, result_top)
    return FilePlan(agent, path, text, new, tuple(notes))


def trust_key(hooks_path: Path, event: str, group: int, handler: int) -> str:
    """Codex's key for the trust of one hook: ``"<hooks.json>:<snake_event>:<group>:<handler>"``.

    Seen in 0.169.0: ``[hooks.state."/home/u/.codex/hooks.json:permission_request:0:0"]
    trusted_hash = "sha256:…"`` in config.toml, written when the user trusts hooks under ``/hooks``.
    """
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower()
    return f"{hooks_path}:{snake}:{group}:{handler}"


def codex_trust_note(config_text: str | None, hooks_path: Path, hooks_data: Json, exe: Sequence[str] = ()) -> str:
    """Whether config.toml records the user's trust for deck-tray's hooks in ``hooks_path``.

    Codex keys trust by position (:func:`trust_key`) with a hash of the hook that cannot be
    checked here, so a hook whose command changed shows as trusted but is asked again.

    Args:
        config_text: config.toml's text (None: no file).
        hooks_path: the hooks.json path as Codex names it (absolute).
        hooks_data: hooks.json, parsed.
        exe: the deck-tray executable in use now.

    Returns:
        A short sentence ('' when there are no deck-tray hooks or config.toml is not valid TOML).
    """
    try:
        data = tomllib.loads(config_text or "")
    except tomllib.TOMLDecodeError:
        return ""
    hooks_table = data.get("hooks")
    state = hooks_table.get("state") if isinstance(hooks_table, dict) else None
    trusted = set(state) if isinstance(state, dict) else set()
    hooks = hooks_data.get("hooks")
    keys = [trust_key(hooks_path, event, gi, hi)
            for event, groups in (hooks.items() if isinstance(hooks, dict) else [])
            for gi, hi, _ in _ours_in(groups, AgentKind.CODEX, exe)]
    if not keys:
        return ""
    n = sum(1 for k in keys if k in trusted)
    if n == 0:
        return "Codex skips them until you trust them once: run codex, type /hooks and trust them"
    if n < len(keys):
        return (f"Codex has trust recorded for {n} of {len(keys)}; trust the rest once under /hooks in codex, "
                "or Codex skips them")
    return "Codex has trust recorded for all of them (a hook whose command changed is asked again)"


# --------------------------------------------------------------------------- diffs and backups


def unified_diff(path: Path, old: str | None, new: str | None) -> str:
    """A unified diff of one file's change (``/dev/null`` for a file that does not exist yet)."""
    a = (old or "").splitlines(keepends=True)
    b = (new or "").splitlines(keepends=True)
    for side in (a, b):
        if side and not side[-1].endswith("\n"):
            side[-1] += "\n\\ No newline at end of file\n"
    return "".join(difflib.unified_diff(a, b, "/dev/null" if old is None else str(path), str(path)))


def backup_path(path: Path, when: datetime) -> Path:
    """``<path>.deck-tray-backup-YYYYMMDDTHHMMSSZ`` for a change made at ``when`` (UTC)."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return path.with_name(path.name + BACKUP_INFIX + stamp)
