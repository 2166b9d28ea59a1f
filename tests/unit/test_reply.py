"""What deck-tray types into a pane: sanitising user text and key plans per agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deck_tray.core.model import AgentKind, PendingRequest, RequestKind
from deck_tray.core.reply import (
    ENTER_PAUSE_S,
    FREE_TEXT,
    LITERAL_MAX,
    PlanError,
    Reply,
    ReplyKind,
    Step,
    StepKind,
    plan,
    sanitize,
    takes_free_text,
)
from deck_tray.core.screens import Screen, ScreenKind, read_claude, read_codex

SCREENS = Path(__file__).resolve().parent.parent / "fixtures" / "screens"


def claude_screen(name: str) -> Screen:
    return read_claude((SCREENS / f"claude-2.1.197-{name}.txt").read_text(encoding="utf-8"))


def codex_text(name: str) -> str:
    return (SCREENS / f"codex-0.169.0-{name}.txt").read_text(encoding="utf-8")


CODEX_APPROVAL = codex_text("approval")
CODEX_IDLE = codex_text("idle")
CODEX_IDLE_DRAFT = CODEX_IDLE.replace("› Ask Codex to do anything", "› rename the module to", 1)
CODEX_BUSY = codex_text("busy")  # an answer streaming (codex hides its status row meanwhile)

# No capture of a codex question box: the pane quoted in
# shared/reference/claude-code-and-codex.md §2.7 (Plan mode, request_user_input).
CODEX_QUESTION = """\
• I need one detail first.

  Question 1/1 (1 unanswered)
  Which colour should the fake widget be?

  › 1. Red (Recommended)  A red widget
    2. Blue               A blue widget
    3. None of the above  Optionally, add details in notes (tab)

  tab to add notes | enter to submit answer | esc to interrupt
"""

BASH = PendingRequest(
    RequestKind.PERMISSION,
    "Bash",
    "touch fake-bash-ran.txt && echo hello-from-fake-bash",
    ("Yes", "Yes, and don't ask again", "No"),
    "toolu_1",
)


def keys(steps: list[Step]) -> list[tuple[StepKind, str]]:
    return [(s.kind, s.value) for s in steps]


# -- sanitize -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("one\r\ntwo\rthree", "one\ntwo\nthree"),
        ("\x1b[1;31mred\x1b[0m text", "red text"),
        ("\x1b[38;5;196mcolour\x1b[m", "colour"),
        ("\x1b]0;evil title\x07after", "after"),
        ("\x1b]0;evil title\x1b\\after", "after"),
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("tail\x1b", "tail"),
        ("a\x1b b", "a b"),
        ("a\x00b\x07c\x7fd\x08e", "abcde"),
        ("a\x85b\x9cc\x80d\x8de", "abcde"),  # lone C1 controls (NEL, ST, PAD, RI)
        ("\x9dtitle\x07text", "text"),  # 8-bit OSC string
        ("keep\ttabs\nand lines", "keep\ttabs\nand lines"),
        ("emoji 🎉👩‍💻 CJK 日本語 combining é", "emoji 🎉👩‍💻 CJK 日本語 combining é"),
        ("trailing newlines\n\n\r\n", "trailing newlines"),
        ("", ""),
    ],
)
def test_sanitize(raw: str, clean: str) -> None:
    assert sanitize(raw) == clean


def test_sanitize_8bit_csi_removes_only_the_sequence() -> None:
    assert sanitize("price \x9b1m 10 EUR\nsecond line") == "price  10 EUR\nsecond line"


_FORBIDDEN = (
    {chr(c) for c in range(0x20) if c not in (0x09, 0x0A)} | {"\x7f"} | {chr(c) for c in range(0x80, 0xA0)}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(
        alphabet=st.one_of(
            st.characters(),
            st.sampled_from(
                ["\x1b", "[", "]", "\x07", "\\", "\x9b", "\x9c", "\x9d", "\r", "\n", "m", "P", ";"]
            ),
        ),
        max_size=60,
    )
)
def test_property_sanitized_text_has_no_control_characters(text: str) -> None:
    out = sanitize(text)
    assert not (set(out) & _FORBIDDEN), repr(out)
    assert "\r" not in out and "\x1b" not in out
    assert sanitize(out) == out  # idempotent
    assert not out.endswith("\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(
        alphabet=st.one_of(st.characters(blacklist_categories=("Cc", "Cs")), st.sampled_from("\n\t")),
        max_size=60,
    )
)
def test_property_plain_text_is_left_alone(text: str) -> None:
    assert sanitize(text) == text.rstrip("\n")


# -- screens used by the plans -------------------------------------------------------


def test_screens_parse_as_expected() -> None:
    assert claude_screen("permission-bash").kind is ScreenKind.PERMISSION
    assert claude_screen("question").kind is ScreenKind.QUESTION
    idle = claude_screen("idle")
    assert idle.kind is ScreenKind.IDLE and idle.draft == ""
    assert read_codex(CODEX_APPROVAL).kind is ScreenKind.PERMISSION
    assert read_codex(CODEX_QUESTION).kind is ScreenKind.QUESTION
    assert read_codex(CODEX_IDLE) == Screen(ScreenKind.IDLE)
    assert read_codex(CODEX_IDLE_DRAFT).draft == "rename the module to"
    assert read_codex(CODEX_BUSY).kind not in (ScreenKind.PERMISSION, ScreenKind.QUESTION)


# -- Claude Code plans --------------------------------------------------------------


def test_claude_permission_allow_presses_1() -> None:
    steps = plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.ALLOW), claude_screen("permission-bash"), BASH)
    assert keys(steps) == [(StepKind.KEY, "1")]


def test_claude_permission_allow_always_presses_2() -> None:
    steps = plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.ALLOW_ALWAYS), claude_screen("permission-bash"), BASH)
    assert keys(steps) == [(StepKind.KEY, "2")]


def test_claude_permission_deny_presses_escape() -> None:
    steps = plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.DENY), claude_screen("permission-bash"), BASH)
    assert keys(steps) == [(StepKind.KEY, "Escape")]


def test_claude_permission_deny_with_message_types_it_once_idle() -> None:
    steps = plan(
        AgentKind.CLAUDE_CODE,
        Reply(ReplyKind.DENY, "use trash-cli instead\r\n"),
        claude_screen("permission-bash"),
        BASH,
    )
    assert [s.kind for s in steps] == [
        StepKind.KEY,
        StepKind.WAIT_SCREEN,
        StepKind.LITERAL,
        StepKind.PAUSE,
        StepKind.KEY,
    ]
    assert steps[0].value == "Escape"
    assert steps[1].value == ScreenKind.IDLE.value
    assert steps[2].value == "use trash-cli instead"
    assert float(steps[3].value) >= 0.15
    assert steps[4].value == "Enter"


def test_claude_permission_option_by_label() -> None:
    screen = claude_screen("permission-bash")
    assert keys(plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.OPTION, "No"), screen, BASH)) == [
        (StepKind.KEY, "3")
    ]
    assert keys(plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.OPTION, "yes, and always"), screen, BASH)) == [
        (StepKind.KEY, "2")
    ]
    with pytest.raises(PlanError, match="no option"):
        plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.OPTION, "Maybe"), screen, BASH)


def test_prompt_while_a_permission_menu_shows_is_refused() -> None:
    with pytest.raises(PlanError, match="permission prompt"):
        plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, "hello"), claude_screen("permission-bash"), BASH)
    with pytest.raises(PlanError, match="permission prompt"):
        plan(AgentKind.CODEX, Reply(ReplyKind.PROMPT, "hello"), read_codex(CODEX_APPROVAL), None)


def test_claude_prompt_on_idle_is_typed_then_enter_after_a_pause() -> None:
    steps = plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, "run the tests"), claude_screen("idle"), None)
    assert [s.kind for s in steps] == [StepKind.LITERAL, StepKind.PAUSE, StepKind.KEY]
    assert steps[0].value == "run the tests"
    assert float(steps[1].value) >= 0.15
    assert steps[2].value == "Enter"
    assert float(steps[1].value) == ENTER_PAUSE_S


@pytest.mark.parametrize("text", ["line one\nline two", "x" * (LITERAL_MAX + 1)])
def test_multiline_or_long_prompt_is_pasted(text: str) -> None:
    steps = plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, text), claude_screen("idle"), None)
    assert [s.kind for s in steps] == [StepKind.PASTE, StepKind.PAUSE, StepKind.KEY]
    assert steps[0].value == text
    assert steps[2].value == "Enter"


def test_prompt_of_exactly_literal_max_is_typed() -> None:
    steps = plan(
        AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, "y" * LITERAL_MAX), claude_screen("idle"), None
    )
    assert steps[0].kind is StepKind.LITERAL


def test_prompt_text_is_sanitised_before_typing() -> None:
    steps = plan(
        AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, "\x1b[31mhi\x1b[0m\x07"), claude_screen("idle"), None
    )
    assert steps[0] == Step(StepKind.LITERAL, "hi")


def test_empty_prompt_is_refused() -> None:
    with pytest.raises(PlanError):
        plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, " \x1b[0m\n"), claude_screen("idle"), None)


def test_prompt_on_idle_with_a_draft_in_the_input_line_is_refused() -> None:
    text = (SCREENS / "claude-2.1.197-idle.txt").read_text(encoding="utf-8")
    lines = text.split("\n")
    i = next(n for n, ln in enumerate(lines) if ln.strip() == "❯")
    lines[i] = "❯ half-typed thought"
    screen = read_claude("\n".join(lines))
    assert screen.kind is ScreenKind.IDLE and screen.draft == "half-typed thought"
    with pytest.raises(PlanError, match="half-typed thought"):
        plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, "new prompt"), screen, None)
    with pytest.raises(PlanError, match="already holds text"):
        plan(AgentKind.CODEX, Reply(ReplyKind.PROMPT, "new prompt"), read_codex(CODEX_IDLE_DRAFT), None)


def test_claude_question_prompt_selects_type_something_first() -> None:
    screen = claude_screen("question")
    steps = plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, "Green, please"), screen, None)
    assert steps[0] == Step(StepKind.KEY, "3")  # "3. Type something."
    assert steps[1] == Step(StepKind.WAIT_SCREEN, FREE_TEXT)  # the row turns into a text field
    assert keys(steps[2:]) == [
        (StepKind.LITERAL, "Green, please"),
        (StepKind.PAUSE, str(ENTER_PAUSE_S)),
        (StepKind.KEY, "Enter"),
    ]


def test_claude_question_option_by_label_and_allow_is_refused() -> None:
    screen = claude_screen("question")
    assert keys(plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.OPTION, "Blue"), screen, None)) == [
        (StepKind.KEY, "2")
    ]
    with pytest.raises(PlanError, match="question"):
        plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.ALLOW), screen, None)
    assert keys(plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.DENY), screen, None)) == [
        (StepKind.KEY, "Escape")
    ]


@pytest.mark.parametrize("kind", [ReplyKind.ALLOW, ReplyKind.ALLOW_ALWAYS, ReplyKind.DENY, ReplyKind.OPTION])
@pytest.mark.parametrize("screen_name", ["idle", "busy"])
def test_answer_with_no_menu_on_screen_is_refused(kind: ReplyKind, screen_name: str) -> None:
    screen = claude_screen(screen_name)
    with pytest.raises(PlanError, match="no permission prompt or question"):
        plan(AgentKind.CLAUDE_CODE, Reply(kind, "Yes"), screen, BASH)


def test_allow_always_refused_when_the_menu_has_no_such_option() -> None:
    screen = read_claude(" Do you want to proceed?\n ❯ 1. Yes\n   2. No\n\n Esc to cancel\n")
    assert screen.kind is ScreenKind.PERMISSION
    with pytest.raises(PlanError, match="always"):
        plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.ALLOW_ALWAYS), screen, BASH)


def test_opencode_is_not_answered_through_a_pane() -> None:
    with pytest.raises(PlanError):
        plan(AgentKind.OPENCODE, Reply(ReplyKind.ALLOW), claude_screen("permission-bash"), BASH)


# -- Codex plans --------------------------------------------------------------------


def test_codex_approval_allow_presses_y_and_always_presses_p() -> None:
    screen = read_codex(CODEX_APPROVAL)
    assert keys(plan(AgentKind.CODEX, Reply(ReplyKind.ALLOW), screen, None)) == [(StepKind.KEY, "y")]
    assert keys(plan(AgentKind.CODEX, Reply(ReplyKind.ALLOW_ALWAYS), screen, None)) == [(StepKind.KEY, "p")]
    assert keys(plan(AgentKind.CODEX, Reply(ReplyKind.DENY), screen, None)) == [(StepKind.KEY, "Escape")]


def test_codex_approval_option_by_label_uses_its_hotkey() -> None:
    screen = read_codex(CODEX_APPROVAL)
    assert keys(plan(AgentKind.CODEX, Reply(ReplyKind.OPTION, "Yes, proceed"), screen, None)) == [
        (StepKind.KEY, "y")
    ]
    assert keys(plan(AgentKind.CODEX, Reply(ReplyKind.OPTION, "No"), screen, None)) == [
        (StepKind.KEY, "Escape")
    ]


def test_codex_deny_with_message() -> None:
    steps = plan(
        AgentKind.CODEX, Reply(ReplyKind.DENY, "don't touch files"), read_codex(CODEX_APPROVAL), None
    )
    assert keys(steps) == [
        (StepKind.KEY, "Escape"),
        (StepKind.WAIT_SCREEN, "idle"),
        (StepKind.LITERAL, "don't touch files"),
        (StepKind.PAUSE, str(ENTER_PAUSE_S)),
        (StepKind.KEY, "Enter"),
    ]
    assert ENTER_PAUSE_S >= 0.15


def test_codex_question_option_is_a_digit_and_free_text_is_refused() -> None:
    screen = read_codex(CODEX_QUESTION)
    assert keys(plan(AgentKind.CODEX, Reply(ReplyKind.OPTION, "Blue"), screen, None)) == [(StepKind.KEY, "2")]
    assert keys(plan(AgentKind.CODEX, Reply(ReplyKind.OPTION, "Red"), screen, None)) == [(StepKind.KEY, "1")]
    # codex-cli 0.169's "None of the above" takes notes through Tab, not a text field: a
    # digit would submit it at once, so free text is refused rather than half-sent.
    with pytest.raises(PlanError, match="takes one of its options"):
        plan(AgentKind.CODEX, Reply(ReplyKind.PROMPT, "green"), screen, None)


@pytest.mark.parametrize(("agent", "typed"), [
    (AgentKind.CLAUDE_CODE, True), (AgentKind.QWEN_CODE, True), (AgentKind.COPILOT_CLI, True),
    (AgentKind.GEMINI_CLI, True), (AgentKind.CODEX, False), (AgentKind.OPENCODE, False),
])
def test_which_agents_questions_take_a_typed_answer_in_their_pane(agent: AgentKind, typed: bool) -> None:
    assert takes_free_text(agent) is typed


def test_codex_prompt_on_idle() -> None:
    steps = plan(AgentKind.CODEX, Reply(ReplyKind.PROMPT, "add a test"), read_codex(CODEX_IDLE), None)
    assert keys(steps) == [
        (StepKind.LITERAL, "add a test"),
        (StepKind.PAUSE, str(ENTER_PAUSE_S)),
        (StepKind.KEY, "Enter"),
    ]


def test_codex_answer_with_no_menu_is_refused() -> None:
    for text in (CODEX_IDLE, CODEX_BUSY):
        with pytest.raises(PlanError):
            plan(AgentKind.CODEX, Reply(ReplyKind.ALLOW), read_codex(text), None)


def test_reply_describe_never_contains_the_text() -> None:
    r = Reply(ReplyKind.PROMPT, "my secret plan")
    assert "secret" not in r.describe()
    assert r.describe() == "prompt (14 characters)"
    assert Reply(ReplyKind.ALLOW_ALWAYS).describe() == "allow always"
