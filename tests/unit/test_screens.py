"""Screen rules on captured panes (tests/fixtures/screens/) and the evidence they give."""

from __future__ import annotations

from pathlib import Path

from deck_tray.core.model import AgentKind, PendingRequest, RequestKind, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind, StepKind, plan
from deck_tray.core.screens import (
    SCREEN_FRESH_S,
    MenuOption,
    ScreenKind,
    input_line_is_dim,
    read_claude,
    read_codex,
    read_screen,
    screen_evidence,
)

SCREENS = Path(__file__).resolve().parent.parent / "fixtures" / "screens"


def text(name: str) -> str:
    return (SCREENS / name).read_text(encoding="utf-8")


# -- Claude Code 2.1.197 ------------------------------------------------------------


def test_claude_permission_capture() -> None:
    s = read_claude(text("claude-2.1.197-permission-bash.txt"))
    assert s.kind is ScreenKind.PERMISSION
    assert s.title == "Do you want to proceed?"
    assert s.options == (
        MenuOption("1", "Yes"),
        MenuOption("2", "Yes, and always allow access to project/ from this project"),
        MenuOption("3", "No"),
    )


def test_claude_question_capture() -> None:
    s = read_claude(text("claude-2.1.197-question.txt"))
    assert s.kind is ScreenKind.QUESTION
    assert s.title == "Which colour should the fake widget be?"
    assert [(o.number, o.label) for o in s.options] == [
        ("1", "Red"),
        ("2", "Blue"),
        ("3", "Type something."),
        ("4", "Chat about this"),
    ]
    assert s.option("type something") == MenuOption("3", "Type something.")


def test_claude_idle_capture_has_an_empty_input_line() -> None:
    s = read_claude(text("claude-2.1.197-idle.txt"))
    assert s.kind is ScreenKind.IDLE
    assert s.draft == ""  # "❯" followed by a no-break space


def test_claude_busy_capture() -> None:
    s = read_claude(text("claude-2.1.197-busy.txt"))
    assert s.kind is ScreenKind.BUSY


def test_claude_idle_with_typed_draft() -> None:
    raw = text("claude-2.1.197-idle.txt").replace("❯\u00a0", "❯\u00a0fix the login bug", 1)
    s = read_claude(raw)
    assert s.kind is ScreenKind.IDLE
    assert s.draft == "fix the login bug"


def test_permission_menu_scrolled_far_above_is_not_live() -> None:
    lines = text("claude-2.1.197-permission-bash.txt").rstrip("\n").split("\n")
    later = [f"  output line {n}" for n in range(60)]
    idle_tail = text("claude-2.1.197-idle.txt").rstrip("\n").split("\n")[-8:]
    s = read_claude("\n".join(lines + later + idle_tail))
    assert s.kind is ScreenKind.IDLE


def test_prose_question_in_the_answer_above_an_idle_prompt_is_not_a_menu() -> None:
    lines = text("claude-2.1.197-idle.txt").split("\n")
    box = next(n for n, ln in enumerate(lines) if ln.startswith("─"))
    answer = [
        "❯ clean up old branches",
        "",
        "● I found 3 stale branches: old-a, old-b, old-c.",
        "",
        "  Do you want to proceed?",
        "  1. Yes",
        "  2. No",
        "",
    ]
    s = read_claude("\n".join(lines[:box] + answer + lines[box:]))
    assert s.kind is ScreenKind.IDLE
    steps = plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.PROMPT, "yes, delete them"), s, None)
    assert [st.kind for st in steps] == [StepKind.LITERAL, StepKind.PAUSE, StepKind.KEY]


# -- codex-cli 0.169.0 --------------------------------------------------------------


def test_codex_approval_capture() -> None:
    s = read_codex(text("codex-0.169.0-approval.txt"))
    assert s.kind is ScreenKind.PERMISSION
    assert s.title == "Would you like to run the following command?"
    assert [(o.number, o.hotkey) for o in s.options] == [("1", "y"), ("2", "p"), ("3", "esc")]
    assert s.options[0].label == "Yes, proceed"
    assert s.options[2].label == "No, and tell Codex what to do differently"


def test_codex_idle_capture_placeholder_is_not_a_draft() -> None:
    s = read_codex(text("codex-0.169.0-idle.txt"))
    assert s.kind is ScreenKind.IDLE
    assert s.draft == ""


def test_codex_streaming_answer_capture_claims_nothing() -> None:
    # While the answer streams codex 0.169 hides its "esc to interrupt" status row, so the pane
    # looks like an idle one; the screen must then give no evidence (the rollout says busy).
    s = read_codex(text("codex-0.169.0-busy.txt"))
    assert s.kind not in (ScreenKind.PERMISSION, ScreenKind.QUESTION)
    ev = screen_evidence(AgentKind.CODEX, s, 100.0)
    assert ev is None or ev.status is SessionStatus.BUSY


def test_codex_working_status_row_is_busy() -> None:
    raw = text("codex-0.169.0-idle.txt").replace(
        "› Ask Codex to do anything", "• Working (4s • esc to interrupt)\n\n› Ask Codex to do anything", 1
    )
    assert read_codex(raw).kind is ScreenKind.BUSY


def test_codex_typed_draft_is_seen() -> None:
    raw = text("codex-0.169.0-idle.txt").replace("› Ask Codex to do anything", "› also update the docs", 1)
    assert read_codex(raw).draft == "also update the docs"


def test_read_screen_dispatches_on_agent() -> None:
    assert read_screen(AgentKind.CODEX, text("codex-0.169.0-approval.txt")).options[0].hotkey == "y"
    assert (
        read_screen(AgentKind.CLAUDE_CODE, text("claude-2.1.197-permission-bash.txt")).options[0].label
        == "Yes"
    )


def test_unrecognised_pane_is_unknown() -> None:
    assert read_claude("$ ls\nfoo bar\n$ ").kind is ScreenKind.UNKNOWN
    assert read_codex("").kind is ScreenKind.UNKNOWN


# -- evidence ------------------------------------------------------------------------


def test_permission_screen_evidence_keeps_the_transcript_request_and_the_real_labels() -> None:
    hint = PendingRequest(
        RequestKind.PERMISSION,
        "Bash",
        "touch fake-bash-ran.txt && echo hello-from-fake-bash",
        ("Yes", "Yes, and don't ask again", "No"),
        "toolu_1",
    )
    s = read_claude(text("claude-2.1.197-permission-bash.txt"))
    ev = screen_evidence(AgentKind.CLAUDE_CODE, s, 500.0, hint)
    assert ev is not None
    assert ev.status is SessionStatus.WAITING_PERMISSION
    assert ev.detail == "permission prompt"
    assert ev.fresh_for == SCREEN_FRESH_S
    assert ev.is_fresh(500.0 + SCREEN_FRESH_S) and not ev.is_fresh(500.0 + SCREEN_FRESH_S + 1)
    assert ev.pending is not None
    assert ev.pending.tool == "Bash"
    assert ev.pending.summary == hint.summary
    assert ev.pending.request_id == "toolu_1"
    assert ev.pending.options == ("Yes", "Yes, and always allow access to project/ from this project", "No")


def test_question_screen_evidence_without_hint_uses_the_screen_title() -> None:
    s = read_claude(text("claude-2.1.197-question.txt"))
    ev = screen_evidence(AgentKind.CLAUDE_CODE, s, 1.0)
    assert ev is not None
    assert ev.status is SessionStatus.WAITING_QUESTION
    assert ev.pending is not None
    assert ev.pending.kind is RequestKind.QUESTION
    assert ev.pending.question == "Which colour should the fake widget be?"
    assert ev.pending.options == ("Red", "Blue", "Type something.", "Chat about this")


def test_codex_approval_evidence() -> None:
    ev = screen_evidence(AgentKind.CODEX, read_codex(text("codex-0.169.0-approval.txt")), 1.0)
    assert ev is not None
    assert ev.status is SessionStatus.WAITING_PERMISSION
    assert ev.detail == "approval prompt"


def test_idle_screen_gives_no_evidence_and_busy_screen_says_busy() -> None:
    assert screen_evidence(AgentKind.CLAUDE_CODE, read_claude(text("claude-2.1.197-idle.txt")), 1.0) is None
    ev = screen_evidence(AgentKind.CLAUDE_CODE, read_claude(text("claude-2.1.197-busy.txt")), 1.0)
    assert ev is not None and ev.status is SessionStatus.BUSY and ev.fresh_for == SCREEN_FRESH_S


# -- typed text vs. placeholders and suggestions (captured with `capture-pane -e`) -------------

def _ansi(name: str) -> str:
    return (SCREENS / name).read_text(encoding="utf-8")


def test_text_the_user_typed_is_a_draft() -> None:
    assert not input_line_is_dim(_ansi("claude-2.1.197-idle-draft.ansi"))
    assert not input_line_is_dim(_ansi("codex-0.169.0-idle-draft.ansi"))


def test_codex_placeholder_is_dim_not_a_draft() -> None:
    styled = _ansi("codex-0.169.0-idle.ansi")
    assert "Ask Codex to do anything" in styled
    assert input_line_is_dim(styled)


def test_empty_claude_input_line_is_not_dim_text() -> None:
    assert not input_line_is_dim(_ansi("claude-2.1.197-idle.ansi"))


def test_a_dim_suggestion_after_the_cursor_is_not_a_draft() -> None:
    # Synthetic: Claude draws prompt suggestions in dim text behind the cursor cell
    # (not reproducible with the fake model, which produces no suggestions).
    assert input_line_is_dim("\x1b[39m❯\xa0\x1b[7mr\x1b[0m\x1b[2mun the tests again\x1b[22m\n")
    assert input_line_is_dim("❯ \x1b[38;5;244msuggested text\x1b[39m\n")
    assert not input_line_is_dim("❯ typed\x1b[2m and a suggestion\x1b[0m\n")


def test_free_text_row_selected_in_a_claude_question() -> None:
    screen = read_claude((SCREENS / "claude-2.1.197-question-free-text.txt").read_text(encoding="utf-8"))
    assert screen.kind is ScreenKind.QUESTION and screen.free_text
    assert not read_claude((SCREENS / "claude-2.1.197-question.txt").read_text(encoding="utf-8")).free_text


# -- folder trust (Claude Code 2.1.197 / 2.1.332, Codex 0.169.0 / 0.171.0) -----------------


def test_trust_menus_are_permission_requests_with_the_folder() -> None:
    from deck_tray.core.screens import TRUST_TOOL, trust_option

    cases = [("claude-2.1.197-trust.txt", AgentKind.CLAUDE_CODE, "Yes, I trust this folder", [StepKind.KEY], ["1"]),
             ("claude-2.1.332-trust.txt", AgentKind.CLAUDE_CODE, "Yes, I trust this folder",
              [StepKind.KEY, StepKind.KEY], ["Down", "Enter"]),
             ("codex-0.169.0-trust.txt", AgentKind.CODEX, "Trust and continue", [StepKind.KEY], ["1"]),
             ("codex-0.171.0-trust.txt", AgentKind.CODEX, "Trust and continue", [StepKind.KEY], ["1"])]
    for name, agent, yes, kinds, keys in cases:
        screen = read_screen(agent, text(name))
        assert screen.kind is ScreenKind.PERMISSION and screen.tool == TRUST_TOOL, name
        assert screen.subject.endswith("/project"), name
        opt = trust_option(screen)
        assert opt is not None and opt.label == yes, name
        steps = plan(agent, Reply(ReplyKind.OPTION, yes), screen, None)
        assert [s.kind for s in steps] == kinds and [s.value for s in steps] == keys, name
        ev = screen_evidence(agent, screen, 100.0)
        assert ev is not None and ev.status is SessionStatus.WAITING_PERMISSION


def test_claude_2_1_332_trust_menu_has_no_digits_and_no_first_yes() -> None:
    screen = read_claude(text("claude-2.1.332-trust.txt"))
    assert [(o.number, o.label, o.selected) for o in screen.options] == [
        ("", "No, exit", True), ("", "Yes, I trust this folder", False)]
    # "Allow" would mean option 1 elsewhere; here it would press a digit the menu ignores.
    up = plan(AgentKind.CLAUDE_CODE, Reply(ReplyKind.OPTION, "No, exit"), screen, None)
    assert [s.value for s in up] == ["Enter"]


def test_a_quoted_trust_question_above_an_idle_prompt_is_not_a_menu() -> None:
    idle = text("claude-2.1.197-idle.txt")
    quoted = "Is this a project you created or one you trust?\n 1. Yes, I trust this folder\n" + idle
    assert read_claude(quoted).kind is ScreenKind.IDLE
