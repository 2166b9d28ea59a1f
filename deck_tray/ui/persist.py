"""What the window remembers across restarts and crashes: drafts, closed tabs, answers.

Stored in the app's QSettings (an INI file under the platformdirs config dir). Drafts are
written (and synced to disk) a moment after each keystroke, so a crash loses at most the
last 300 ms of typing. Nothing here is secret; reply text is never logged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from PySide6.QtCore import QSettings

#: How many closed tabs can be reopened.
CLOSED_MAX = 10
#: How many earlier answers Up can recall per session.
HISTORY_MAX = 30


@dataclass(frozen=True)
class ClosedTab:
    """A closed session tab that can be reopened.

    Attributes:
        session_id: the session it showed.
        title: its title when it was closed (for the reopen menu).
        agent: the agent's label.
    """

    session_id: str
    title: str
    agent: str = ""


class WindowMemory:
    """Drafts, the closed-tab stack and answer history, persisted in ``settings``."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    # -- drafts --------------------------------------------------------------------
    def draft(self, session_id: str) -> str:
        """The unsent text of a session's answer box ("" if none)."""
        value = self.settings.value(f"drafts/{session_id}", "")
        return value if isinstance(value, str) else ""

    def save_draft(self, session_id: str, text: str) -> None:
        """Remember (or, for empty text, forget) a draft and flush it to disk."""
        if text:
            self.settings.setValue(f"drafts/{session_id}", text)
        else:
            self.settings.remove(f"drafts/{session_id}")
        self.settings.sync()

    # -- closed tabs ---------------------------------------------------------------
    def closed_tabs(self) -> list[ClosedTab]:
        """Newest first, at most :data:`CLOSED_MAX`."""
        raw = self.settings.value("window/closed_tabs", "[]")
        try:
            items = json.loads(raw if isinstance(raw, str) else "[]")
        except ValueError:
            return []
        out = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("session_id"), str):
                out.append(ClosedTab(item["session_id"], str(item.get("title", "")), str(item.get("agent", ""))))
        return out[:CLOSED_MAX]

    def _store_closed(self, tabs: list[ClosedTab]) -> None:
        self.settings.setValue("window/closed_tabs", json.dumps([asdict(t) for t in tabs[:CLOSED_MAX]]))
        self.settings.sync()

    def push_closed(self, tab: ClosedTab) -> None:
        """Put a closed tab on top of the stack (an older entry for the same session goes)."""
        tabs = [t for t in self.closed_tabs() if t.session_id != tab.session_id]
        self._store_closed([tab, *tabs])

    def pop_closed(self, session_id: str | None = None) -> ClosedTab | None:
        """Take the newest closed tab (or the one of ``session_id``) off the stack."""
        tabs = self.closed_tabs()
        if not tabs:
            return None
        idx = 0 if session_id is None else next((i for i, t in enumerate(tabs) if t.session_id == session_id), -1)
        if idx < 0:
            return None
        tab = tabs.pop(idx)
        self._store_closed(tabs)
        return tab

    def forget_closed(self, session_id: str) -> None:
        """Drop a session from the stack (its tab was opened another way)."""
        tabs = self.closed_tabs()
        kept = [t for t in tabs if t.session_id != session_id]
        if len(kept) != len(tabs):
            self._store_closed(kept)

    # -- answer history ------------------------------------------------------------
    def history(self, session_id: str) -> list[str]:
        """Earlier answers sent to a session, newest last."""
        raw = self.settings.value(f"history/{session_id}", "[]")
        try:
            items = json.loads(raw if isinstance(raw, str) else "[]")
        except ValueError:
            return []
        return [x for x in items if isinstance(x, str)] if isinstance(items, list) else []

    def add_history(self, session_id: str, text: str) -> None:
        """Remember a sent answer for Up-recall."""
        items = [x for x in self.history(session_id) if x != text]
        items.append(text)
        self.settings.setValue(f"history/{session_id}", json.dumps(items[-HISTORY_MAX:]))
