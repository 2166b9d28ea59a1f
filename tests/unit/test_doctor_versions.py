"""The verified agent versions (``deck_tray.core.agent_versions``) and how a found version is judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deck_tray.core.agent_versions import VERIFIED_AGENTS, VERIFIED_ON, Verdict, judge
from deck_tray.core.executables import parse_version

ROOT = Path(__file__).resolve().parents[2]


def test_the_table_names_the_pinned_and_newest_releases() -> None:
    assert VERIFIED_ON == "2026-12-06"
    assert {b: (a.pinned, a.newest) for b, a in VERIFIED_AGENTS.items()} == {
        "claude": ((2, 1, 197), (2, 1, 332)),
        "codex": ((0, 169, 0), (0, 171, 0)),
        "opencode": ((1, 18, 33), (1, 18, 33)),
        "gemini": ((0, 61, 0), (0, 61, 0)),
        "qwen": ((0, 24, 4), (0, 24, 4)),
        "copilot": ((1, 0, 102), (1, 0, 102)),
    }
    for a in VERIFIED_AGENTS.values():
        assert a.pinned <= a.newest


@pytest.mark.parametrize(("binary", "printed", "verdict"), [
    ("claude", "2.1.197 (Claude Code)", Verdict.VERIFIED),
    ("claude", "2.1.332 (Claude Code)", Verdict.VERIFIED),
    ("claude", "2.1.250", Verdict.VERIFIED),
    ("claude", "2.1.333 (Claude Code)", Verdict.NEWER),
    ("claude", "2.2.0", Verdict.NEWER),
    ("claude", "3.0", Verdict.NEWER),
    ("claude", "2.1.196", Verdict.OLDER),
    ("claude", "1.0.128", Verdict.OLDER),
    ("claude", "2.1", Verdict.OLDER),  # 2.1.0
    ("codex", "codex-cli 0.169.0", Verdict.VERIFIED),
    ("codex", "codex-cli 0.170.2", Verdict.VERIFIED),
    ("codex", "codex-cli 0.171.0", Verdict.VERIFIED),
    ("codex", "codex-cli 0.171.1", Verdict.NEWER),
    ("codex", "codex-cli 0.168.9", Verdict.OLDER),
    ("opencode", "1.18.33", Verdict.VERIFIED),
    ("opencode", "1.18.34", Verdict.NEWER),
    ("opencode", "1.18.4", Verdict.OLDER),  # numbers, not text: 4 < 33
])
def test_judge(binary: str, printed: str, verdict: Verdict) -> None:
    v = parse_version(printed)
    assert v is not None
    assert judge(VERIFIED_AGENTS[binary], v) is verdict


def test_the_shell_form_read_by_scripts_test_sh() -> None:
    out = subprocess.run([sys.executable, "-m", "deck_tray.core.agent_versions"], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert out.splitlines() == [
        "claude @anthropic-ai/claude-code 2.1.197 2.1.332",
        "codex @openai/codex 0.169.0 0.171.0",
        "opencode opencode-ai 1.18.33 1.18.33",
        "gemini @google/gemini-cli 0.61.0 0.61.0",
        "qwen @qwen-code/qwen-code 0.24.4 0.24.4",
        "copilot @github/copilot 1.0.102 1.0.102",
    ]
    assert "deck_tray.core.agent_versions" in (ROOT / "scripts" / "test.sh").read_text()
