"""What a desktop status bar shows: one short line, a tooltip and a CSS class.

Shapes follow the bars' custom-module protocols:

* **waybar** ``custom/<name>`` with ``"return-type": "json"``: one JSON object per line,
  ``{"text", "alt", "tooltip", "class", "percentage"}`` (waybar 0.9+; ``tooltip`` is Pango
  markup, so ``& < >`` are escaped; an empty ``text`` hides the module).
* **polybar** ``custom/script`` (``tail = true`` with ``--watch``): one plain line per update.

The summary counts only sessions that are not ended: waiting ones first (they are the
reason the bar exists), then busy ones.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

from deck_tray.core.model import Session, SessionStatus

#: The ``class`` / ``alt`` values, most urgent first.
CLASS_WAITING = "waiting"
CLASS_BUSY = "busy"
CLASS_IDLE = "idle"
CLASS_NONE = "none"

#: Tooltip lines at most (one per session); the rest are summed up in one line.
TOOLTIP_LINES = 12


@dataclass(frozen=True)
class BarStatus:
    """The bar's view of every session.

    Attributes:
        text: the short line, e.g. ``"2 waiting · 1 busy"``; ``""`` when no session runs.
        tooltip: one line per session (most urgent first), plain text.
        css_class: ``waiting`` / ``busy`` / ``idle`` / ``none``.
        waiting, busy, idle: counts of live sessions in those states.
    """

    text: str
    tooltip: str
    css_class: str
    waiting: int
    busy: int
    idle: int

    def waybar(self) -> dict[str, object]:
        """The waybar JSON object (``tooltip`` escaped for Pango markup)."""
        total = self.waiting + self.busy + self.idle
        return {
            "text": self.text,
            "alt": self.css_class,
            "tooltip": html.escape(self.tooltip, quote=False),
            "class": self.css_class,
            "percentage": round(100 * self.waiting / total) if total else 0,
        }

    def polybar(self) -> str:
        """The polybar line: the text, or ``"no agents"`` so the module keeps its place."""
        return self.text or "no agents"


def _rank(s: Session) -> tuple[int, float]:
    order = {SessionStatus.WAITING_PERMISSION: 0, SessionStatus.WAITING_QUESTION: 0,
             SessionStatus.BUSY: 1, SessionStatus.IDLE: 2, SessionStatus.UNKNOWN: 3}
    return order.get(s.status, 4), -s.updated_at


def summarize(sessions: Iterable[Session]) -> BarStatus:
    """Summarize sessions (any order; ended ones are left out) for a status bar."""
    live = sorted((s for s in sessions if s.status is not SessionStatus.ENDED), key=_rank)
    waiting = sum(1 for s in live if s.status.is_waiting)
    busy = sum(1 for s in live if s.status is SessionStatus.BUSY)
    idle = len(live) - waiting - busy
    parts = []
    if waiting:
        parts.append(f"{waiting} waiting")
    if busy:
        parts.append(f"{busy} busy")
    if not parts and idle:
        parts.append(f"{idle} idle")
    css = CLASS_WAITING if waiting else CLASS_BUSY if busy else CLASS_IDLE if idle else CLASS_NONE
    lines = []
    for s in live[:TOOLTIP_LINES]:
        what = s.status.label
        if s.pending is not None:
            what += f": {s.pending.question or s.pending.summary or s.pending.tool}"
        lines.append(f"{s.agent.label} · {_clip(s.display_title, 40)} — {_clip(what, 70)}")
    if len(live) > TOOLTIP_LINES:
        lines.append(f"… and {len(live) - TOOLTIP_LINES} more")
    tooltip = "\n".join(lines) if lines else ("No running agent sessions (Claude Code, Codex, opencode, Gemini CLI, "
                                              "Qwen Code, Copilot CLI)")
    return BarStatus(" · ".join(parts), tooltip, css, waiting, busy, idle)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
