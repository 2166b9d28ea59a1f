"""A question in a session's tab: its options are buttons, the row that only opens the agent's
free-text field is not, and the answer box invites a typed answer only where one can be sent."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from PySide6.QtWidgets import QPushButton

from deck_tray.core.model import AgentKind, PaneRef, PendingRequest, RequestKind, Session, SessionStatus
from deck_tray.ui.session_tab import PROMPT_PLACEHOLDER, SessionTab

pytestmark = pytest.mark.gui
PANE = PaneRef("tmux", "%3", "/tmp/tmux-0/default", "work:2.0")
OWN_ANSWER = "Or type your own answer… (Ctrl+Enter sends)"


def asking(agent: AgentKind, options: tuple[str, ...]) -> Session:
    return Session(id=f"{agent.value}-1", agent=agent, cwd="/home/dev/paint", title="Pick a colour", pid=4242,
                   pane=PANE, status=SessionStatus.WAITING_QUESTION, reason="question — screen, just now",
                   pending=PendingRequest(RequestKind.QUESTION, "ask_user", "Which colour?", options, "",
                                          "Which colour should I use?"),
                   updated_at=time.time())


def shown(qtbot, session: Session) -> SessionTab:
    tab = SessionTab(session)
    qtbot.addWidget(tab)
    tab.resize(800, 600)
    tab.show()
    return tab


def buttons(tab: SessionTab) -> list[str]:
    return [b.text() for b in tab.request_box.findChildren(QPushButton) if b.isVisibleTo(tab)]


@pytest.mark.parametrize(("agent", "options", "answers"), [
    # Copilot CLI 1.0.102's form (screens/copilot-cli-1.0.102-question.txt)
    (AgentKind.COPILOT_CLI, ("Red", "Blue", "Other (type your answer)"), ["Red", "Blue"]),
    # Qwen Code 0.24.4 (screens/qwen-code-0.24.4-question.txt)
    (AgentKind.QWEN_CODE, ("Red", "Blue", "Green", "Type something..."), ["Red", "Blue", "Green"]),
    # Gemini CLI 0.61.0 with its free-text row in view (screens/gemini-cli-0.61.0-question-free-text.txt)
    (AgentKind.GEMINI_CLI, ("Blue", "Green", "Enter a custom value"), ["Blue", "Green"]),
])
def test_the_free_text_row_is_no_button_and_the_box_takes_an_own_answer(
        qtbot, agent: AgentKind, options: tuple[str, ...], answers: list[str]) -> None:
    tab = shown(qtbot, asking(agent, options))
    assert buttons(tab) == answers
    assert tab.answer.placeholderText() == OWN_ANSWER
    assert tab.send_button.isEnabled()


def test_codex_questions_take_one_of_their_options_and_the_box_says_so(qtbot) -> None:
    tab = shown(qtbot, asking(AgentKind.CODEX, ("Red", "Blue", "None of the above")))
    assert buttons(tab) == ["Red", "Blue"]
    assert tab.answer.placeholderText() == "Codex takes one of the options above as its answer"


def test_the_box_asks_for_a_prompt_again_once_the_question_is_answered(qtbot) -> None:
    s = asking(AgentKind.CODEX, ("Red", "Blue"))
    tab = shown(qtbot, s)
    assert tab.answer.placeholderText() != PROMPT_PLACEHOLDER
    tab.update_session(replace(s, status=SessionStatus.IDLE, pending=None, reason="turn finished — transcript"))
    assert tab.answer.placeholderText() == PROMPT_PLACEHOLDER == "Type a prompt for the agent… (Ctrl+Enter sends)"
    assert buttons(tab) == []
