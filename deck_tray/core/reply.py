"""What to type into a pane: text sanitising and key plans per agent (DESIGN.md §5).

A plan is a list of :class:`Step` the multiplexer adapter executes in order. Keys are
tmux key names (``Enter``, ``Escape``, ``1``). Answer keys were verified against
Claude Code 2.1.197 (a digit selects and confirms, Esc rejects) and codex-cli 0.169.0
(``y`` once, ``p`` always for the prefix, Esc rejects; a digit answers a question).
A free-text answer to a question selects the menu's free-text row, waits until it takes typing
(:data:`FREE_TEXT`), then types the text and Enter; the other agents' rows are reached as their
adapters say (:meth:`deck_tray.core.agents.base.AgentAdapter.free_text_keys`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from deck_tray.core.model import AgentKind, PendingRequest
from deck_tray.core.screens import MenuOption, Screen, ScreenKind

#: Pause between typing text and pressing Enter (seconds). Codex takes an Enter that
#: arrives in the same burst as the text for a pasted newline (seen with 0 ms; 50, 150 and
#: 300 ms all worked). 150 ms is the floor DESIGN.md sets.
ENTER_PAUSE_S = 0.15
#: Longer single lines are pasted rather than typed key by key.
LITERAL_MAX = 200

_ESC_SEQ = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[@-Z\\-_]?"  # other two-byte escapes, or a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|[\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c]*[\x07\x9c]?"  # 8-bit OSC, DCS, SOS, PM, APC
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sanitize(text: str) -> str:
    r"""Make user text safe to type into a terminal.

    CRLF and CR become LF; escape sequences (CSI, OSC, DCS …) and every C0/C1 control
    character other than ``\n`` and ``\t`` are removed; trailing newlines are dropped
    (Enter is sent separately).
    """
    t = text.replace("\r\n", "\n").replace("\r", "\n")
    t = _ESC_SEQ.sub("", t)
    t = _CONTROLS.sub("", t)
    return t.rstrip("\n")


#: WAIT_SCREEN value: the question's free-text row is selected and takes typing.
FREE_TEXT = "free_text"


def screen_matches(screen: Screen, want: str) -> bool:
    """True when ``screen`` shows what a WAIT_SCREEN step waits for."""
    if want == FREE_TEXT:
        return screen.free_text
    return screen.kind.value == want


class StepKind(enum.Enum):
    """One action of a plan."""

    LITERAL = "literal"  # type text as is (tmux send-keys -l)
    PASTE = "paste"  # bracketed paste of text (tmux load-buffer + paste-buffer -p)
    KEY = "key"  # a named key (tmux send-keys KEY)
    PAUSE = "pause"  # wait, seconds in ``value``
    WAIT_SCREEN = "wait_screen"  # wait until the screen shows ``value`` (ScreenKind value)


@dataclass(frozen=True)
class Step:
    """One step; ``value`` is text, a key name, seconds, or a screen kind."""

    kind: StepKind
    value: str

    @property
    def sends_text(self) -> bool:
        """True for steps after which the user's text may have reached the agent."""
        return self.kind in (StepKind.LITERAL, StepKind.PASTE, StepKind.KEY)


class ReplyKind(enum.Enum):
    """What the user asked to send."""

    PROMPT = "prompt"  # free text: a new prompt, or the free-text answer to a question
    ALLOW = "allow"
    ALLOW_ALWAYS = "allow_always"
    DENY = "deny"  # with an optional message typed as the next prompt
    OPTION = "option"  # pick a menu option by label
    STOP = "stop"  # interrupt the running turn (opencode: abort)


@dataclass(frozen=True)
class Reply:
    """One user answer.

    Attributes:
        kind: what to do.
        text: the prompt text, the deny message, or the option label.
    """

    kind: ReplyKind
    text: str = ""

    def describe(self) -> str:
        """Short human description for logs and the window (never the full text)."""
        if self.kind is ReplyKind.PROMPT:
            return f"prompt ({len(self.text)} characters)"
        if self.kind is ReplyKind.OPTION:
            return f"option {self.text!r}"
        return str(self.kind.value).replace("_", " ")


class PlanError(ValueError):
    """The reply cannot be expressed with the agent's keys; the message says why."""


def text_steps(text: str) -> list[Step]:
    """Type ``text`` (already sanitised) and submit it: text, pause, Enter."""
    if not text.strip():
        raise PlanError("the text is empty")
    # Typed key by key, a leading "!" or "#" or "?" switches Claude's input mode and a tab
    # completes; pasted, they stay text. Long and multi-line text is pasted too.
    literal = (
        "\n" not in text and "\t" not in text and len(text) <= LITERAL_MAX
        and not text.startswith(("!", "#", "?"))
    )
    typed = Step(StepKind.LITERAL if literal else StepKind.PASTE, text)
    return [typed, Step(StepKind.PAUSE, str(ENTER_PAUSE_S)), Step(StepKind.KEY, "Enter")]


def plan(agent: AgentKind, reply: Reply, screen: Screen, pending: PendingRequest | None) -> list[Step]:
    """The key plan for ``reply`` given what the pane shows now.

    Args:
        agent: the pane's agent (opencode is answered through its API, not a pane).
        reply: the user's answer.
        screen: the pane as parsed right before sending.
        pending: the request the session is known to wait on, if any.

    Raises:
        PlanError: the answer does not fit the screen (no menu shown, unknown option,
            a prompt while a permission menu is open, free text for a question that takes only
            its options...).
    """
    if agent is AgentKind.OPENCODE:
        raise PlanError("opencode sessions are answered through the opencode server, not a pane")
    if reply.kind is ReplyKind.STOP:
        raise PlanError("Stop is available for opencode sessions; press Esc in the agent's pane instead")
    menu = screen.kind in (ScreenKind.PERMISSION, ScreenKind.QUESTION)
    if reply.kind is ReplyKind.PROMPT:
        text = sanitize(reply.text)
        if screen.kind is ScreenKind.QUESTION:
            return _free_text_steps(agent, screen, text)
        if menu:
            raise PlanError(
                "the agent shows a permission prompt; answer it with Allow or Deny first "
                "(your text is kept)"
            )
        if screen.kind is ScreenKind.IDLE and screen.draft:
            raise PlanError(
                f"the agent's input line already holds text typed in the terminal "
                f"({screen.draft[:40]!r}); send it or clear it there first"
            )
        return text_steps(text)
    if not menu:
        raise PlanError("no permission prompt or question is on the agent's screen any more")
    if reply.kind is ReplyKind.OPTION:
        opt = screen.option(reply.text)
        if opt is None:
            labels = ", ".join(o.label for o in screen.options)
            raise PlanError(f"no option {reply.text!r} on screen (options: {labels})")
        if not opt.number:
            return _arrow_steps(screen, opt)
        return [Step(StepKind.KEY, _option_key(agent, screen, opt.number, opt.hotkey))]
    if screen.kind is ScreenKind.QUESTION and reply.kind is not ReplyKind.DENY:
        raise PlanError("the agent asks a question: pick an option or type an answer")
    if reply.kind is ReplyKind.ALLOW:
        return [Step(StepKind.KEY, _option_key(agent, screen, "1"))]
    if reply.kind is ReplyKind.ALLOW_ALWAYS:
        if len(screen.options) < 3:
            raise PlanError("this prompt has no 'always allow' option")
        return [Step(StepKind.KEY, _option_key(agent, screen, "2"))]
    # DENY: Esc rejects in both agents; a message follows as a new prompt once idle.
    steps = [Step(StepKind.KEY, "Escape")]
    message = sanitize(reply.text)
    if message.strip():
        steps += [Step(StepKind.WAIT_SCREEN, ScreenKind.IDLE.value), *text_steps(message)]
    return steps


#: Why a free-text answer is refused where the question's menu has no free-text row.
OPTIONS_ONLY = "this question takes one of its options; pick one (your text is kept)"


def takes_free_text(agent: AgentKind) -> bool:
    """True when ``agent``'s questions, answered in its pane, take a typed answer: Claude Code
    ("Type something.") and the adapters that name a free-text row
    (:attr:`deck_tray.core.agents.base.AgentAdapter.free_text_label`: Qwen Code 0.24.4, Copilot
    CLI 1.0.102, Gemini CLI 0.61.0). False for Codex and opencode (opencode's questions take text
    through its server, not its pane)."""
    if agent is AgentKind.CLAUDE_CODE:
        return True
    from deck_tray.core.agents import adapter_for  # the adapters build on this module

    adapter = adapter_for(agent)
    return adapter is not None and bool(adapter.free_text_label)


def _free_text_steps(agent: AgentKind, screen: Screen, text: str) -> list[Step]:
    """Answer the question on ``screen`` with ``text`` (sanitised): the keys that put the menu on
    its free-text row, a wait until that row takes typing (typing before it does would be lost:
    Claude Code 2.1.197), then :func:`text_steps`.

    Raises:
        PlanError: the agent's questions take only their options (Codex), its free-text row cannot
            be reached from this screen, the row already holds text typed in the terminal
            (``screen.draft``), or ``text`` is empty.
    """
    steps = text_steps(text)
    if agent is AgentKind.CLAUDE_CODE:
        # Claude: the digit selects "Type something." and turns that row into a text field.
        free = screen.option("Type something")
        if free is None:
            raise PlanError(OPTIONS_ONLY)
        keys = [free.number]
    else:
        from deck_tray.core.agents import adapter_for  # the adapters build on this module

        adapter = adapter_for(agent)
        if adapter is None:
            raise PlanError(OPTIONS_ONLY)
        keys = adapter.free_text_keys(screen)
    if screen.draft:
        raise PlanError(f"the question's text field already holds text typed in the terminal "
                        f"({screen.draft[:40]!r}); send it or clear it there first (your text is kept)")
    return [*(Step(StepKind.KEY, k) for k in keys), Step(StepKind.WAIT_SCREEN, FREE_TEXT), *steps]


def arrow_keys(screen: Screen, opt: MenuOption) -> list[str]:
    """The Up/Down keys that move the cursor of a menu without digits from its selected row to
    ``opt`` (``[]`` when it is there already).

    Raises:
        PlanError: no row is shown as selected, so the distance cannot be known.
    """
    rows = list(screen.options)
    cur = next((i for i, o in enumerate(rows) if o.selected), None)
    if cur is None:
        raise PlanError("the menu's selected row cannot be read on the agent's screen; answer it in the terminal")
    diff = rows.index(opt) - cur
    return ["Down" if diff > 0 else "Up"] * abs(diff)


def _arrow_steps(screen: Screen, opt: MenuOption) -> list[Step]:
    """Select ``opt`` in a menu without digits: :func:`arrow_keys`, then Enter.

    Raises:
        PlanError: no row is shown as selected, so the distance cannot be known.
    """
    return [*(Step(StepKind.KEY, k) for k in arrow_keys(screen, opt)), Step(StepKind.KEY, "Enter")]


def _option_key(agent: AgentKind, screen: Screen, number: str, hotkey: str = "") -> str:
    """Key for the option ``number``: Codex approvals use their hotkeys (y, p, esc).

    Raises:
        PlanError: a Codex approval whose option ``number`` is not on the screen as read (GNU
            screen 4.x's hardcopy garbles the selected row): no key is guessed.
    """
    if agent is AgentKind.CODEX and screen.kind is ScreenKind.PERMISSION:
        hot = hotkey or next((o.hotkey for o in screen.options if o.number == number), "")
        if hot:
            return "Escape" if hot == "esc" else hot
        if not any(o.number == number for o in screen.options):
            raise PlanError(f"option {number} of the approval cannot be read on the agent's screen; "
                            "answer it in the terminal")
    return number
