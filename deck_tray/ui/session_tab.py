"""One tab per opened session: conversation, status and reason, quick answers, answer box."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from deck_tray.core.model import (
    DeliveryReport,
    DeliveryState,
    Message,
    MessageRole,
    RequestKind,
    Session,
    SessionStatus,
)
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.status import age_text

_BANNER_COLORS = {
    SessionStatus.WAITING_PERMISSION: ("#fff4e5", "#8a4b00", "#f0a030"),
    SessionStatus.WAITING_QUESTION: ("#fff4e5", "#8a4b00", "#f0a030"),
    SessionStatus.BUSY: ("#e8f0fe", "#1a4fa3", "#6b9bef"),
    SessionStatus.IDLE: ("#e9f7ef", "#1e6b3a", "#6cc08b"),
    SessionStatus.ENDED: ("#f0f0f0", "#555555", "#bbbbbb"),
    SessionStatus.UNKNOWN: ("#f0f0f0", "#555555", "#bbbbbb"),
}
_BANNER_COLORS_DARK = {
    SessionStatus.WAITING_PERMISSION: ("#3d2a0f", "#ffc46b", "#b8741a"),
    SessionStatus.WAITING_QUESTION: ("#3d2a0f", "#ffc46b", "#b8741a"),
    SessionStatus.BUSY: ("#172a4d", "#9cc3ff", "#3d6fd6"),
    SessionStatus.IDLE: ("#15331f", "#8fdcab", "#2f8a52"),
    SessionStatus.ENDED: ("#2f3136", "#b0b3b8", "#55585e"),
    SessionStatus.UNKNOWN: ("#2f3136", "#b0b3b8", "#55585e"),
}
_DELIVERY_TEXT = {
    DeliveryState.SENT: "Typed into the pane…",
    DeliveryState.SUBMITTED: "Submitted — waiting for the agent to take it",
    DeliveryState.ACCEPTED: "Delivered — the agent took it",
    DeliveryState.REFUSED: "Not sent",
    DeliveryState.UNKNOWN: "Delivery unknown",
}
MAX_RENDERED = 200


def render_conversation(messages: tuple[Message, ...], dark: bool = False) -> str:
    """HTML of the newest :data:`MAX_RENDERED` messages (oldest first)."""
    tool_color, user_color, notice_color = ("#a0a4ab", "#7fb0ff", "#ffc46b") if dark else ("#555", "#2d6cdf", "#8a4b00")
    parts: list[str] = []
    shown = messages[-MAX_RENDERED:]
    if len(messages) > len(shown):
        parts.append(f"<p style='color:gray'>… {len(messages) - len(shown)} earlier messages</p>")
    for m in shown:
        text = html.escape(m.text if len(m.text) < 4000 else m.text[:4000] + " …")
        text = text.replace("\n", "<br>")
        if m.role is MessageRole.USER:
            parts.append(f"<p><b style='color:{user_color}'>You</b><br>{text}</p>")
        elif m.role is MessageRole.ASSISTANT:
            parts.append(f"<p><b>Agent</b><br>{text}</p>")
        elif m.role is MessageRole.TOOL:
            mark = {"pending": "○", "done": "✓", "error": "✗"}.get(m.state, "•")
            parts.append(f"<p style='font-family:monospace;color:{tool_color}'>{mark} {text}</p>")
        else:
            parts.append(f"<p style='color:{notice_color}'><i>{text}</i></p>")
    if not shown:
        parts.append("<p style='color:gray'>No conversation yet — it appears after the first prompt.</p>")
    return "".join(parts)


class SessionTab(QWidget):
    """The view of one session.

    Signals:
        reply_requested(str, Reply): the user asked to send ``Reply`` to session id ``str``.
    """

    reply_requested = Signal(str, object)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._rendered_key: tuple[int, object] | None = None
        self._busy_sending = False

        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.where = QLabel()
        self.where.setTextFormat(Qt.TextFormat.PlainText)
        self.where.setStyleSheet("color: palette(mid);")
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)

        self.request_box = QFrame()
        self.request_box.setObjectName("request")
        rb = QVBoxLayout(self.request_box)
        rb.setContentsMargins(10, 8, 10, 8)
        self.request_text = QLabel()
        self.request_text.setWordWrap(True)
        self.request_text.setTextFormat(Qt.TextFormat.RichText)
        self.request_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rb.addWidget(self.request_text)
        self.buttons_row = QHBoxLayout()
        rb.addLayout(self.buttons_row)
        self.request_box.setStyleSheet(
            "#request { border: 1px solid #f0a030; border-radius: 6px; background: rgba(240,160,48,0.08); }"
        )

        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)

        self.answer = QPlainTextEdit()
        self.answer.setPlaceholderText("Type a prompt for the agent… (Ctrl+Enter sends)")
        self.answer.setMaximumHeight(90)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._send_text)
        QShortcut(QKeySequence("Ctrl+Return"), self.answer, self._send_text)
        QShortcut(QKeySequence("Ctrl+Enter"), self.answer, self._send_text)
        self.delivery = QLabel()
        self.delivery.setWordWrap(True)
        self.delivery.setTextFormat(Qt.TextFormat.PlainText)

        answer_row = QHBoxLayout()
        answer_row.addWidget(self.answer, 1)
        answer_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.where)
        layout.addWidget(self.banner)
        layout.addWidget(self.request_box)
        layout.addWidget(self.view, 1)
        layout.addLayout(answer_row)
        layout.addWidget(self.delivery)
        self.update_session(session)

    # -- updates -------------------------------------------------------------------
    def update_session(self, session: Session) -> None:
        """Show a newer snapshot of the session."""
        self.session = session
        self.title.setText(session.display_title)
        where = [session.agent.label]
        if session.cwd:
            where.append(session.cwd)
        where.append(f"tmux {session.pane.label or session.pane.pane_id}" if session.pane else "not in tmux")
        self.where.setText("  ·  ".join(where))
        self.where.setToolTip(f"session {session.id}")
        bg, fg, border = (_BANNER_COLORS_DARK if self._dark() else _BANNER_COLORS)[session.status]
        self.banner.setStyleSheet(
            f"#banner {{ background: {bg}; color: {fg}; border: 1px solid {border}; "
            "border-radius: 6px; padding: 6px 10px; }"
        )
        self.banner.setText(
            f"<b>{html.escape(session.status.label)}</b> — {html.escape(session.reason.split(' — ')[0])}"
            f"<br><span style='font-size:small'>{html.escape(self._provenance(session))}</span>"
        )
        self._update_request(session)
        key = (len(session.messages), session.messages[-1] if session.messages else None)
        if key != self._rendered_key:
            self._rendered_key = key
            self.view.setHtml(render_conversation(session.messages, self._dark()))
            bar = self.view.verticalScrollBar()
            bar.setValue(bar.maximum())
        can_type = session.status is not SessionStatus.ENDED and session.pane is not None
        self.answer.setReadOnly(False)
        self.send_button.setEnabled(can_type and not self._busy_sending)
        if session.status is SessionStatus.ENDED:
            self.send_button.setToolTip("The agent is no longer running")
        elif session.pane is None:
            self.send_button.setToolTip("No tmux pane is known for this session")
        else:
            self.send_button.setToolTip("Type this into the agent's pane (Ctrl+Enter)")

    def _dark(self) -> bool:
        return self.palette().color(QPalette.ColorRole.Base).lightness() < 128

    @staticmethod
    def _provenance(session: Session) -> str:
        parts = session.reason.split(" — ", 1)
        src = parts[1] if len(parts) > 1 else ""
        if session.updated_at:
            src = f"{src} · last activity {age_text(time.time() - session.updated_at)}".strip(" ·")
        return src

    def _update_request(self, session: Session) -> None:
        while self.buttons_row.count():
            item = self.buttons_row.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        p = session.pending
        if p is None or not session.status.is_waiting:
            self.request_box.hide()
            return
        self.request_box.show()
        if p.kind is RequestKind.QUESTION:
            self.request_text.setText(f"<b>Question</b><br>{html.escape(p.question or p.summary)}")
            for label in p.options:
                if label.lower().startswith(("type something", "chat about", "none of the above")):
                    continue
                self._add_button(label, Reply(ReplyKind.OPTION, label), primary=False)
            self.answer.setPlaceholderText("Or type your own answer… (Ctrl+Enter sends)")
        else:
            tool = html.escape(p.tool or "The agent")
            self.request_text.setText(
                f"<b>{tool}</b> wants to run:<br><code>{html.escape(p.summary)}</code>"
            )
            self._add_button("Allow", Reply(ReplyKind.ALLOW), primary=True,
                             tip=p.options[0] if p.options else "")
            if len(p.options) >= 3:
                self._add_button("Always allow", Reply(ReplyKind.ALLOW_ALWAYS), primary=False,
                                 tip=p.options[1])
            self._add_button("Deny", Reply(ReplyKind.DENY, ""), primary=False,
                             tip="Reject (Esc). Text in the answer box is sent as the next prompt.")
        self.buttons_row.addStretch(1)

    def _add_button(self, text: str, reply: Reply, *, primary: bool, tip: str = "") -> None:
        b = QPushButton(text)
        if tip:
            b.setToolTip(tip)
        if primary:
            b.setStyleSheet("font-weight: bold;")
        b.setEnabled(not self._busy_sending and self.session.pane is not None)

        def clicked() -> None:
            r = reply
            if r.kind is ReplyKind.DENY:
                r = Reply(ReplyKind.DENY, self.answer.toPlainText())
            self._emit(r)

        b.clicked.connect(clicked)
        self.buttons_row.addWidget(b)

    # -- sending -------------------------------------------------------------------
    def _send_text(self) -> None:
        text = self.answer.toPlainText()
        if not text.strip() or not self.send_button.isEnabled():
            return
        self._emit(Reply(ReplyKind.PROMPT, text))

    def _emit(self, reply: Reply) -> None:
        self._busy_sending = True
        self.send_button.setEnabled(False)
        for i in range(self.buttons_row.count()):
            item = self.buttons_row.itemAt(i)
            w = item.widget() if item is not None else None
            if w is not None:
                w.setEnabled(False)
        self.delivery.setText(f"Sending {reply.describe()}…")
        self.reply_requested.emit(self.session.id, reply)

    def show_delivery(self, report: DeliveryReport) -> None:
        """Show how the last answer went; on success the answer box is cleared."""
        self._busy_sending = False
        text = _DELIVERY_TEXT[report.state]
        if report.state is DeliveryState.REFUSED:
            text = f"Not sent: {report.detail}. Your text is kept."
            self.delivery.setStyleSheet("color: #b42318;")
        elif report.state is DeliveryState.UNKNOWN:
            text = f"Delivery unknown: {report.detail}"
            self.delivery.setStyleSheet("color: #b54708;")
        else:
            self.delivery.setStyleSheet("color: #1e6b3a;")
            if report.text and report.text == self.answer.toPlainText():
                self.answer.clear()
        self.delivery.setText(text)
        self.update_session(self.session)

