"""Screen rules: what an agent's pane shows (``tmux capture-pane -p`` text).

Used to confirm a waiting state the files cannot prove (Codex approvals) and to read
the real menu options. Each rule names the captured screen it was written from
(``tests/fixtures/screens/``):

* Claude Code 2.1.197: ``claude-2.1.197-permission-bash.txt`` (``Do you want to
  proceed?`` + ``❯ 1. Yes`` …, footer ``Esc to cancel``), ``claude-2.1.197-question.txt``
  (footer ``Enter to select · ↑/↓ to navigate``), busy footer ``esc to interrupt``,
  idle footer ``? for shortcuts``.
* codex-cli 0.169.0: ``codex-0.169.0-approval.txt`` (``Would you like to run the
  following command?`` + ``› 1. Yes, proceed (y)`` …, footer ``Press enter to confirm or
  esc to cancel``), question ``Question 1/1`` + ``enter to submit answer``, busy
  ``esc to interrupt``.

Only the bottom of the screen is read (the live prompt area), so menus quoted in the
scroll-back above are not mistaken for a live prompt.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from deck_tray.core.model import (
    AgentKind,
    Evidence,
    EvidenceSource,
    PendingRequest,
    RequestKind,
    SessionStatus,
)

#: How long a screen observation is trusted (seconds): screens are re-read, not watched.
SCREEN_FRESH_S = 6.0
_BOTTOM_LINES = 40


class ScreenKind(enum.Enum):
    """What the bottom of an agent's pane shows."""

    PERMISSION = "permission"
    QUESTION = "question"
    BUSY = "busy"
    IDLE = "idle"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class MenuOption:
    """One entry of an on-screen menu.

    Attributes:
        number: its digit as shown (``"1"``).
        label: its text without the key hint (``"Yes, proceed"``).
        hotkey: the key hint shown in parentheses (Codex ``y``/``p``/``esc``), or ``""``.
        selected: the menu's cursor is on it (``❯``/``›``); only read for menus without digits.
    """

    number: str
    label: str
    hotkey: str = ""
    selected: bool = False


@dataclass(frozen=True)
class Screen:
    """A parsed pane.

    Attributes:
        kind: what the pane shows.
        title: the menu's question line (``"Do you want to proceed?"``) or ``""``.
        options: the menu entries in order.
        draft: text in the agent's input line while idle (the user typed there), or ``""``;
            for questions, the text the free-text row already holds (typed in the terminal), as
            far as the screen shows it.
        tool: for permission menus, the tool named above the menu (``"Bash"``), or ``""``.
        subject: for permission menus, what it wants to do (the command, the file), or ``""``.
        free_text: for questions, the free-text option is selected and takes typing, still
            empty as far as the screen tells (Claude shows ``❯ 3. Type something.`` as an input
            row and "ctrl+g to edit"; the other agents' rules are in their adapters).
    """

    kind: ScreenKind
    title: str = ""
    options: tuple[MenuOption, ...] = ()
    draft: str = ""
    tool: str = ""
    subject: str = ""
    free_text: bool = False

    def option(self, label: str) -> MenuOption | None:
        """The option whose label equals ``label`` (case-insensitive), or starts with it."""
        want = label.strip().casefold()
        for opt in self.options:
            if opt.label.casefold() == want:
                return opt
        for opt in self.options:
            if opt.label.casefold().startswith(want):
                return opt
        return None


_OPT_RE = re.compile(r"^\s*(?:[❯›>]\s*)?(\d{1,2})\.\s+(\S.*?)\s*$")
_HOTKEY_RE = re.compile(r"^(.*?)\s*\((y|p|a|n|esc|tab)\)\s*$", re.I)
_CLAUDE_PERMISSION_RE = re.compile(r"^\s*Do you want to (?:proceed|create|make this edit|overwrite|allow)\b.*\?\s*$")
_CLAUDE_QUESTION_FOOT = "Enter to select"
_CODEX_APPROVAL_RE = re.compile(r"Would you like to (?:run the following command|make the following edits|"
                                r"grant these permissions)|Press enter to confirm or esc to cancel")
_CODEX_QUESTION_RE = re.compile(r"^\s*Question \d+/\d+")
#: The folder-trust screen each agent shows the first time it runs in a folder (Claude Code
#: 2.1.197: "Quick safety check: Is this a project you created or one you trust?" with "1. Yes,
#: I trust this folder"; Codex 0.169.0: "Trust this folder?" with "1. Trust and continue").
#: Fixtures: ``tests/fixtures/screens/{claude-2.1.197,codex-0.169.0}-trust.txt``.
_CLAUDE_TRUST_RE = re.compile(r"Is this a project you created or one you trust\?"
                              r"|Do you trust the files in this folder\?")
_CODEX_TRUST_RE = re.compile(r"^\s*Trust this folder\?")
#: The ``tool`` of a folder-trust screen (a permission request deck-tray can answer).
TRUST_TOOL = "trust folder"


def _bottom(text: str) -> list[str]:
    lines = text.rstrip("\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines[-_BOTTOM_LINES:]


def _options(lines: list[str], start: int, *, split_descriptions: bool) -> tuple[MenuOption, ...]:
    out: list[MenuOption] = []
    seen: set[str] = set()
    for line in lines[start:]:
        m = _OPT_RE.match(line)
        if not m:
            continue
        num, label = m.group(1), m.group(2)
        if num in seen:
            break
        seen.add(num)
        if split_descriptions:
            # Codex question rows: "Red (Recommended)  A red widget" — two spaces split.
            label = re.split(r"\s{2,}", label, maxsplit=1)[0]
        hotkey = ""
        hm = _HOTKEY_RE.match(label)
        if hm:
            label, hotkey = hm.group(1), hm.group(2).lower()
        out.append(MenuOption(num, label.strip(), hotkey))
    return tuple(out)


def read_claude(text: str) -> Screen:
    """Parse a Claude Code (2.1.197) pane."""
    lines = _bottom(text)
    # A live menu has its footer at the bottom; a question quoted in an answer has not.
    footer = any("Esc to cancel" in ln for ln in lines[-4:])
    for i in range(len(lines) - 1, -1, -1):
        if footer and _CLAUDE_PERMISSION_RE.match(lines[i]):
            opts = _options(lines, i + 1, split_descriptions=False)
            if opts:
                tool, subject = _claude_request_head(lines[:i])
                return Screen(ScreenKind.PERMISSION, lines[i].strip(), opts, tool=tool, subject=subject)
    if any(_CLAUDE_QUESTION_FOOT in ln for ln in lines[-4:]):
        start = 0
        for i, ln in enumerate(lines):
            if "☐" in ln or "☒" in ln or "✔" in ln:
                start = i
        opts = _options(lines, start, split_descriptions=False)
        title = ""
        for ln in lines[start + 1:]:
            if ln.strip() and not _OPT_RE.match(ln) and "☐" not in ln:
                title = ln.strip()
                break
        if opts:
            selected = next((ln for ln in lines[start:] if ln.lstrip().startswith("❯")), "")
            m = _OPT_RE.match(selected)
            on_free = bool(m) and m.group(2).lower().startswith("type something")  # type: ignore[union-attr]
            editing = any("to edit in" in ln for ln in lines[-3:])
            return Screen(ScreenKind.QUESTION, title, opts, free_text=on_free and editing)
    trust = _trust_screen(lines, _CLAUDE_TRUST_RE, footer)
    if trust is not None:
        return trust
    tail = "\n".join(lines[-6:])
    if "esc to interrupt" in tail.lower():
        return Screen(ScreenKind.BUSY)
    if "? for shortcuts" in tail or "❯" in tail:
        return Screen(ScreenKind.IDLE, draft=_claude_draft(lines))
    return Screen(ScreenKind.UNKNOWN)


def _trust_screen(lines: list[str], head: re.Pattern[str], live: bool) -> Screen | None:
    """The agent's folder-trust menu as a permission request (``tool`` :data:`TRUST_TOOL`,
    ``subject`` the folder), or None. ``live``: the menu's footer is at the bottom."""
    if not live:
        return None
    for i in range(len(lines) - 1, -1, -1):
        if head.search(lines[i]):
            opts = _options(lines, i + 1, split_descriptions=False) or _plain_options(lines, i + 1)
            if not opts:
                return None
            folder = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip().startswith("/")), "")
            title = head.search(lines[i]).group(0).strip()  # type: ignore[union-attr]
            return Screen(ScreenKind.PERMISSION, title, opts, tool=TRUST_TOOL, subject=folder)
    return None


def trust_option(screen: Screen) -> MenuOption | None:
    """On a folder-trust screen, the option that trusts the folder ("Yes, I trust this folder",
    "Trust and continue"), else None."""
    if screen.tool != TRUST_TOOL:
        return None
    return next((o for o in screen.options if "trust" in o.label.casefold()
                 and not o.label.casefold().startswith(("no", "back", "don"))), None)


def _plain_options(lines: list[str], start: int) -> tuple[MenuOption, ...]:
    """A menu without digits (Claude Code 2.1.332's trust menu: ``❯ No, exit`` / ``  Yes, I trust
    this folder``): the block of lines around the cursor row, numbered ``""``; the cursor row is
    ``selected``. Fixture: ``tests/fixtures/screens/claude-2.1.332-trust.txt``."""
    cursor = next((j for j in range(start, len(lines)) if lines[j].lstrip().startswith(("❯", "›"))), None)
    if cursor is None:
        return ()
    first = cursor
    while first - 1 >= start and lines[first - 1].strip() and lines[first - 1].startswith("   "):
        first -= 1
    out: list[MenuOption] = []
    for j in range(first, len(lines)):
        text = lines[j].strip()
        if not text or (j > cursor and not lines[j].startswith("   ")):
            break
        selected = text.startswith(("❯", "›"))
        out.append(MenuOption("", text.lstrip("❯› ").strip(), selected=selected))
    return tuple(out)


def _claude_request_head(above: list[str]) -> tuple[str, str]:
    """Tool and subject from the box above Claude's menu (" Bash command" / the command)."""
    for j in range(len(above) - 1, -1, -1):
        if above[j].startswith("─"):
            box = [ln for ln in above[j + 1:] if ln.strip()]
            if not box:
                return "", ""
            head = box[0].strip()
            tool = head.removesuffix(" command").removesuffix(" file")
            tool = {"Create": "Write", "Edit": "Edit"}.get(tool, tool)
            rest = box[1:]
            # 2.1.332: " Tip: …" and the description come first, the command sits between two
            # dashed rules (╌); fixture ``screens/claude-2.1.332-permission-bash.txt``.
            rule = next((k for k, ln in enumerate(rest) if ln.strip().startswith("╌")), None)
            if rule is not None and rule + 1 < len(rest):
                return tool, rest[rule + 1].strip()
            rest = [ln for ln in rest if not ln.strip().startswith("Tip:")]
            return tool, rest[0].strip() if rest else ""
    return "", ""


def _claude_draft(lines: list[str]) -> str:
    for ln in reversed(lines):
        s = ln.strip()
        if s.startswith("❯"):
            return s[1:].strip()
    return ""


def read_codex(text: str) -> Screen:
    """Parse a codex-cli (0.169.0) pane."""
    lines = _bottom(text)
    for i, ln in enumerate(lines):
        if _CODEX_APPROVAL_RE.search(ln):
            opts = _options(lines, i, split_descriptions=False)
            if opts:
                cmd = next((x.strip()[2:] for x in lines[i:] if x.strip().startswith("$ ")), "")
                return Screen(ScreenKind.PERMISSION, ln.strip(), opts, tool="shell" if cmd else "", subject=cmd)
    trust = _trust_screen(lines, _CODEX_TRUST_RE, any("enter continue" in ln for ln in lines[-3:]))
    if trust is not None:
        return trust
    for i, ln in enumerate(lines):
        if _CODEX_QUESTION_RE.match(ln):
            title = lines[i + 1].strip() if i + 1 < len(lines) else ""
            opts = _options(lines, i + 1, split_descriptions=True)
            if opts:
                return Screen(ScreenKind.QUESTION, title, opts)
    tail = "\n".join(lines[-8:]).lower()
    if "esc to interrupt" in tail:
        return Screen(ScreenKind.BUSY)
    if "for shortcuts" in tail or "›" in tail:
        return Screen(ScreenKind.IDLE, draft=_codex_draft(lines))
    return Screen(ScreenKind.UNKNOWN)


def _codex_draft(lines: list[str]) -> str:
    for ln in reversed(lines):
        s = ln.strip()
        if s.startswith("›"):
            body = s[1:].strip()
            # The empty composer shows a dim placeholder such as "Ask Codex to do anything".
            return "" if body.startswith(("Ask Codex", "Find and fix", "Explain this", "Summarize",
                                          "Implement", "Improve", "Write tests", "Run /")) else body
    return ""


_SGR_RE = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER_ESC_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b\][^\x07]*\x07")


class _Style:
    """The SGR attributes that matter for telling typed text from placeholders."""

    def __init__(self) -> None:
        self.dim = self.grey = self.reverse = False

    def apply(self, params: list[int]) -> None:
        i = 0
        while i < len(params):
            p = params[i]
            if p == 0:
                self.dim = self.grey = self.reverse = False
            elif p == 2:
                self.dim = True
            elif p == 22:
                self.dim = False
            elif p == 7:
                self.reverse = True
            elif p == 27:
                self.reverse = False
            elif 30 <= p <= 37 or 91 <= p <= 97 or p == 39:
                self.grey = False
            elif p == 90:
                self.grey = True
            elif p == 38 and i + 2 < len(params) and params[i + 1] == 5:
                self.grey = 238 <= params[i + 2] <= 250
                i += 2
            elif p == 38 and i + 4 < len(params) and params[i + 1] == 2:
                r, g, b = params[i + 2:i + 5]
                self.grey = r == g == b and 80 <= r <= 180
                i += 4
            i += 1

    @property
    def faint(self) -> bool:
        return self.dim or self.grey


def input_line_is_dim(styled: str, prompts: str = "❯›") -> bool:
    """True when the text after the input prompt is drawn dim or grey (a placeholder or an
    autosuggestion the user did not type), from a capture with SGR sequences
    (``tmux capture-pane -e``, ``zellij action dump-screen --ansi``).

    The last line whose first visible character is a prompt is read; the reverse-video
    cursor cell is ignored. False when any visible character there is in a normal colour
    (the user typed it), or when there is no text at all.
    """
    for line in reversed(styled.rstrip("\n").split("\n")):
        line = _OTHER_ESC_RE.sub("", line)
        plain = _SGR_RE.sub("", line).strip()
        if not plain or plain[0] not in prompts:
            continue
        style = _Style()
        seen_prompt = seen_text = False
        pos = 0
        for m in [*_SGR_RE.finditer(line), None]:
            chunk = line[pos:m.start()] if m is not None else line[pos:]
            for ch in chunk:
                if not seen_prompt:
                    seen_prompt = ch in prompts
                    continue
                if ch.strip() and not style.reverse:
                    if not style.faint:
                        return False
                    seen_text = True
            if m is None:
                break
            style.apply([int(x) if x else 0 for x in m.group(1).split(";")] if m.group(1) else [0])
            pos = m.end()
        return seen_text
    return False


def read_screen(agent: AgentKind, text: str) -> Screen:
    """Parse a pane of ``agent`` (an adapter's agent by its own rules,
    :meth:`deck_tray.core.agents.base.AgentAdapter.read_screen`)."""
    if agent is AgentKind.CODEX:
        return read_codex(text)
    if agent is AgentKind.CLAUDE_CODE:
        return read_claude(text)
    from deck_tray.core.agents import adapter_for  # the adapters build on this module

    adapter = adapter_for(agent)
    return adapter.read_screen(text) if adapter is not None else Screen(ScreenKind.UNKNOWN)


def screen_evidence(
    agent: AgentKind, screen: Screen, at: float, hint: PendingRequest | None = None
) -> Evidence | None:
    """Evidence from a parsed screen (fresh for :data:`SCREEN_FRESH_S`).

    Args:
        agent: whose pane.
        screen: the parsed pane.
        at: when it was captured.
        hint: the request the transcript says is open; its tool and summary are kept and
            the on-screen labels replace its guessed options.
    """
    if screen.kind is ScreenKind.PERMISSION:
        kind = RequestKind.PERMISSION
        status = SessionStatus.WAITING_PERMISSION
        detail = "permission prompt" if agent is AgentKind.CLAUDE_CODE else "approval prompt"
    elif screen.kind is ScreenKind.QUESTION:
        kind = RequestKind.QUESTION
        status = SessionStatus.WAITING_QUESTION
        detail = "question"
    elif screen.kind is ScreenKind.BUSY:
        return Evidence(EvidenceSource.SCREEN, SessionStatus.BUSY, at, "working", SCREEN_FRESH_S)
    else:
        return None
    labels = tuple(o.label for o in screen.options)
    if hint is not None:
        pending = PendingRequest(kind, hint.tool, hint.summary or screen.subject or screen.title, labels,
                                 hint.request_id,
                                 hint.question or (screen.title if kind is RequestKind.QUESTION else ""))
    else:
        pending = PendingRequest(kind, screen.tool, screen.subject or screen.title, labels, "",
                                 screen.title if kind is RequestKind.QUESTION else "")
    return Evidence(EvidenceSource.SCREEN, status, at, detail, SCREEN_FRESH_S, pending)
