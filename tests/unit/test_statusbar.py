"""What a status bar shows for a set of sessions (waybar JSON, polybar line)."""

from __future__ import annotations

from deck_tray.core.model import AgentKind, PendingRequest, RequestKind, Session, SessionStatus
from deck_tray.core.statusbar import TOOLTIP_LINES, summarize


def _s(sid: str, status: SessionStatus, title: str = "", updated: float = 0.0,
       pending: PendingRequest | None = None, agent: AgentKind = AgentKind.CLAUDE_CODE) -> Session:
    return Session(sid, agent, "/home/dev/proj", title, status=status, pending=pending, updated_at=updated)


def test_waiting_sessions_lead_the_text_the_class_and_the_tooltip() -> None:
    ask = PendingRequest(RequestKind.QUESTION, "question", "Which DB?", ("sqlite", "postgres"), question="Which DB?")
    bar = summarize([
        _s("a", SessionStatus.BUSY, "Refactor <parser> & lexer", updated=5),
        _s("b", SessionStatus.WAITING_QUESTION, "Pick a database", updated=1, pending=ask, agent=AgentKind.OPENCODE),
        _s("c", SessionStatus.IDLE, "Docs"),
        _s("d", SessionStatus.ENDED, "Old one"),
    ])
    assert (bar.text, bar.css_class) == ("1 waiting · 1 busy", "waiting")
    lines = bar.tooltip.splitlines()
    assert lines[0] == "opencode · Pick a database — Asks a question: Which DB?"
    assert lines[1].startswith("Claude Code · Refactor <parser> & lexer — Working")
    assert not any("Old one" in ln for ln in lines)  # ended sessions are left out
    out = bar.waybar()
    assert out["class"] == out["alt"] == "waiting"
    assert "Refactor &lt;parser&gt; &amp; lexer" in str(out["tooltip"])  # Pango markup escaped
    assert out["percentage"] == 33
    assert bar.polybar() == "1 waiting · 1 busy"


def test_idle_only_and_nothing_running() -> None:
    idle = summarize([_s("c", SessionStatus.IDLE), _s("e", SessionStatus.IDLE)])
    assert (idle.text, idle.css_class) == ("2 idle", "idle")
    none = summarize([_s("d", SessionStatus.ENDED)])
    assert (none.text, none.css_class) == ("", "none")  # empty text: waybar hides the module
    assert none.tooltip.startswith("No running agent sessions (Claude Code, Codex, opencode, Gemini CLI")
    assert none.polybar() == "no agents"


def test_the_tooltip_stays_short_with_many_sessions() -> None:
    bar = summarize([_s(str(i), SessionStatus.BUSY, "x" * 200) for i in range(30)])
    lines = bar.tooltip.splitlines()
    assert len(lines) == TOOLTIP_LINES + 1 and lines[-1] == f"… and {30 - TOOLTIP_LINES} more"
    assert all(len(ln) < 140 for ln in lines)
