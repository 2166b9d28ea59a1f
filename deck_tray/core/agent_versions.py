"""The agent versions deck-tray is verified with: the one table (``deck-tray doctor``, ``scripts/test.sh``).

Per agent two releases are verified, each by the whole end-to-end suite driving the real agent
(``./scripts/test.sh``; ``DECK_TRAY_AGENTS=latest ./scripts/test.sh`` for the newest):

* **pinned** — what ``scripts/test.sh`` installs into ``./.agents`` and the suite runs by default,
  the release the captured fixtures (``tests/fixtures/claude-code-2.1.197-*``,
  ``codex-0.169.0-*``, ``opencode/*-1.18.33*``) come from;
* **newest** — the newest release on :data:`VERIFIED_ON`, installed into ``./.agents-newest``
  (fixtures ``claude-code-2.1.332-*``, ``codex-0.171.0-*``). Where it equals the pinned
  release (opencode) nothing more is installed.

Every version in between counts as verified too (:func:`judge`): the record shapes are read for
both ends. Older ones are read on a best-effort basis, newer ones may have changed a shape.

``python3 -m deck_tray.core.agent_versions`` prints the table for shell scripts, one agent a line:
``<binary> <npm package> <pinned> <newest>`` (e.g. ``claude @anthropic-ai/claude-code 2.1.197 2.1.332``).
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from deck_tray.core.executables import version_text

#: The day the newest releases below were the newest ones (ISO date).
VERIFIED_ON = "2026-12-06"


@dataclass(frozen=True)
class VerifiedAgent:
    """One agent and the releases it is verified with.

    Attributes:
        binary: its executable's name (``claude``, ``codex``, ``opencode``).
        label: its name for people (``Claude Code``).
        package: its npm package (``@anthropic-ai/claude-code``).
        pinned: the release the suite runs by default, ``(major, minor, patch)``.
        newest: the newest verified release (``>= pinned``).
    """

    binary: str
    label: str
    package: str
    pinned: tuple[int, int, int]
    newest: tuple[int, int, int]


#: ``{binary: VerifiedAgent}``, in the order ``deck-tray doctor`` reports them.
VERIFIED_AGENTS: dict[str, VerifiedAgent] = {
    a.binary: a
    for a in (
        VerifiedAgent("claude", "Claude Code", "@anthropic-ai/claude-code", (2, 1, 197), (2, 1, 332)),
        VerifiedAgent("codex", "Codex CLI", "@openai/codex", (0, 169, 0), (0, 171, 0)),
        VerifiedAgent("opencode", "opencode", "opencode-ai", (1, 18, 33), (1, 18, 33)),
        # Issue #19 (fixtures tests/fixtures/{,screens/}gemini-cli-0.61.0-*, qwen-code-0.24.4-*):
        VerifiedAgent("gemini", "Gemini CLI", "@google/gemini-cli", (0, 61, 0), (0, 61, 0)),
        VerifiedAgent("qwen", "Qwen Code", "@qwen-code/qwen-code", (0, 24, 4), (0, 24, 4)),
        # Issue #19 (fixtures tests/fixtures/{,screens/}copilot-cli-1.0.102-*):
        VerifiedAgent("copilot", "Copilot CLI", "@github/copilot", (1, 0, 102), (1, 0, 102)),
    )
}


class Verdict(enum.Enum):
    """Where a found version stands against the verified ones."""

    OLDER = "older"
    """Older than the pinned release."""
    VERIFIED = "verified"
    """From the pinned release to the newest verified one (both included)."""
    NEWER = "newer"
    """Newer than the newest verified release."""


def judge(agent: VerifiedAgent, version: Sequence[int]) -> Verdict:
    """Compare ``version`` (``parse_version`` output, ``(2, 1, 300)``; a missing part counts as
    0, so ``(2, 1)`` is ``2.1.0``) with ``agent``'s pinned and newest releases."""
    v = tuple(version) + (0,) * (3 - len(version))
    if v < agent.pinned:
        return Verdict.OLDER
    if v > agent.newest:
        return Verdict.NEWER
    return Verdict.VERIFIED


def main(argv: Sequence[str] | None = None) -> int:
    """Print ``<binary> <package> <pinned> <newest>`` per agent (for ``scripts/test.sh``)."""
    del argv
    for a in VERIFIED_AGENTS.values():
        sys.stdout.write(f"{a.binary} {a.package} {version_text(a.pinned)} {version_text(a.newest)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
