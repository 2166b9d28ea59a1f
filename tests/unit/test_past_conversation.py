"""A whole conversation read from a transcript (older messages on demand, issue #16 item 7)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from deck_tray.core import past
from deck_tray.core.claude import ClaudeTranscript
from deck_tray.core.codex import CodexRollout
from deck_tray.core.model import AgentKind, Message, MessageRole
from deck_tray.core.records import MAX_MESSAGES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def write(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_800_000_000 + i))
            f.write(json.dumps({"type": "user", "uuid": f"u{i}", "sessionId": "s", "timestamp": ts,
                                "message": {"role": "user", "content": f"prompt {i}"}}) + "\n")


def test_the_whole_conversation_is_read_and_the_live_window_keeps_its_size(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write(path, 1000)
    full = past.conversation_from_transcript(AgentKind.CLAUDE_CODE, str(path))
    assert [m.text for m in full] == [f"prompt {i}" for i in range(1000)]
    live = ClaudeTranscript()
    for line in path.read_text().splitlines():
        live.feed(json.loads(line))
    assert len(live.messages) == MAX_MESSAGES == 400, "the live scan's window is unchanged"
    assert CodexRollout().messages.maxlen == MAX_MESSAGES
    older = past.older_than(full, tuple(live.messages))
    assert older == full[:600]


def test_a_codex_rollout_is_read_whole() -> None:
    path = FIXTURES / "codex-0.169.0-tui-no-daemon.jsonl"
    full = past.conversation_from_transcript(AgentKind.CODEX, str(path))
    assert full and any(m.role is MessageRole.USER for m in full)


def test_older_than_joins_by_key_then_by_time() -> None:
    full = tuple(Message(MessageRole.USER, f"p{i}", 100 + i, f"k{i}") for i in range(10))
    assert past.older_than(full, full[4:]) == full[:4]
    assert past.older_than(full, full) == ()
    # The first held item changed state since (a tool finished): the same item by key.
    moved = (Message(MessageRole.USER, "p4 (edited)", 104, "k4"), *full[5:])
    assert past.older_than(full, moved) == full[:4]
    # No common item: by time.
    other = (Message(MessageRole.USER, "new", 106.5, "zz"),)
    assert past.older_than(full, other) == full[:7]


def test_an_unreadable_transcript_says_why(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        past.conversation_from_transcript(AgentKind.CLAUDE_CODE, str(tmp_path / "gone.jsonl"))
    with pytest.raises(ValueError):
        past.conversation_from_transcript(AgentKind.OPENCODE, str(tmp_path / "x"))
