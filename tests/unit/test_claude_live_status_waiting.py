"""``live_status_evidence`` per ``waitingFor`` (Claude Code 2.1.197 and 2.1.332 status files)."""

from __future__ import annotations

import json
from pathlib import Path

from deck_tray.core import claude
from deck_tray.core.model import SessionStatus
from deck_tray.core.record_kinds import unwrap_pastes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _waiting(version: str) -> list[str]:
    path = FIXTURES / f"claude-code-{version}-sessions-pid-json-changes.jsonl"
    out = []
    for line in path.read_text().splitlines():
        content = json.loads(line).get("content") or {}
        if content.get("status") == "waiting":
            out.append(content["waitingFor"])
    return out


def _evidence(waiting_for: str) -> SessionStatus | None:
    ls = claude.parse_live_status({"pid": 1, "sessionId": "s", "status": "waiting", "waitingFor": waiting_for,
                                   "updatedAt": 1796581512852})
    assert ls is not None
    ev = claude.live_status_evidence(ls)
    return ev.status if ev else None


def test_the_fixtures_hold_the_waiting_kinds_mapped_here() -> None:
    assert set(_waiting("2.1.197")) == {"permission prompt"}
    assert set(_waiting("2.1.332")) == {"permission prompt", "input needed"}


def test_waiting_for_maps_to_the_status() -> None:
    assert _evidence("permission prompt") is SessionStatus.WAITING_PERMISSION
    assert _evidence("input needed") is SessionStatus.WAITING_QUESTION  # 2.1.332's AskUserQuestion
    assert _evidence("dialog open") is SessionStatus.UNKNOWN  # Claude's own dialog: not a request
    assert _evidence("") is SessionStatus.WAITING_PERMISSION


def test_claude_2_1_332_paste_wrapper_is_taken_off() -> None:
    text = "0000 ünïcødé\n0001 `ticks`"
    sent = f'\n\n<pasted_content id="3c66">\n{text}\n</pasted_content id="3c66">\n'  # as 2.1.332 sent it
    assert unwrap_pastes(sent) == text
    assert unwrap_pastes(text) == text
    assert unwrap_pastes('<pasted_content id="zzzz">\nx\n</pasted_content id="zzzz">\n') != "x"  # not its ids
