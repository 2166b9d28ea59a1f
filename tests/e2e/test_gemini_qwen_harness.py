"""The Gemini CLI / Qwen Code harness (issue #19) drives the real agents to their permission boxes.

Run: ``DECK_TRAY_AGENTS_DIR=$PWD/.agents python3 -m pytest -m e2e tests/e2e/test_gemini_qwen_harness.py``
(``npm install --prefix .agents @google/gemini-cli@0.61.0 @qwen-code/qwen-code@0.24.4``).
Facts behind the waits: ``docs/agents/gemini-qwen-notes.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .gemini_harness import GeminiAgent, QwenAgent
from .harness import FakeModel, TmuxServer, find_agent_bin, wait_until

pytestmark = pytest.mark.e2e

_HOW = ("install with `npm install --prefix .agents @google/gemini-cli@0.61.0 @qwen-code/qwen-code@0.24.4` "
        "or set DECK_TRAY_AGENTS_DIR")
needs_gemini = pytest.mark.skipif(find_agent_bin("gemini") is None, reason=f"gemini binary not found ({_HOW})")
needs_qwen = pytest.mark.skipif(find_agent_bin("qwen") is None, reason=f"qwen binary not found ({_HOW})")


def _user_texts_gemini(model: FakeModel) -> list[str]:
    """The last text part of the last user turn of every Gemini generate request (the first turn
    also carries the CLI's ``<session_context>`` part before the prompt)."""
    out = []
    for req in model.requests():
        body = req.get("body") or {}
        users = [c for c in body.get("contents") or [] if c.get("role", "user") == "user"]
        if users and "enerateContent" in req["path"] and req.get("fake_reply") != "json":
            texts = [p["text"] for p in users[-1].get("parts") or [] if isinstance(p.get("text"), str)]
            out.extend(texts[-1:])
    return out


@needs_gemini
def test_gemini_shell_permission_then_allow(tmp_path: Path) -> None:
    """``FAKE_SHELL`` -> ``Allow execution of [Shell]?`` with the ``✋`` title; ``1`` runs it."""
    with (
        FakeModel("gemini", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        GeminiAgent(tmux, model, tmp_path / "gemini") as gemini,
    ):
        assert gemini.title().startswith("◇  Ready (project)")
        gemini.type_line("please FAKE_SHELL now")
        gemini.wait_for(GeminiAgent.PERMISSION_RE, timeout=30)
        assert gemini.wait_title(r"^✋", timeout=10).startswith("✋  Action Required (project)")
        gemini.send_keys("1")
        ran = gemini.project / "gemini-ran.txt"
        wait_until(ran.exists, 20, f"{ran} to appear")
        gemini.wait_for(r"✦ FAKE_DONE", timeout=20)
        assert [r["fake_reply"] for r in model.requests() if r["fake_reply"] in ("shell", "done")] == ["shell", "done"]
        assert gemini.session_id() and gemini.chat_files()


@needs_gemini
def test_gemini_multiline_unicode_prompt_arrives_exact(tmp_path: Path) -> None:
    """A pasted multi-line prompt with non-ASCII text reaches the model character for character."""
    prompt = "Zeile eins: grüße, 日本語, emoji 🦊\n  second line «quoted» — dash\nthird ✓ line"
    with (
        FakeModel("gemini", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        GeminiAgent(tmux, model, tmp_path / "gemini") as gemini,
    ):
        gemini.wait_stable(quiet=0.5)
        gemini.paste(prompt)
        gemini.wait_for(r"third ✓ line", timeout=10)
        gemini.submit()
        gemini.wait_for(r"✦ FAKE_REPLY", timeout=30)
        texts = _user_texts_gemini(model)
        assert prompt in texts, texts


@needs_qwen
def test_qwen_shell_permission_then_allow(tmp_path: Path) -> None:
    """``FAKE_SHELL`` -> ``Allow execution of: 'touch'?`` with the ``✳`` title; ``1`` runs it."""
    with (
        FakeModel("gemini", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        QwenAgent(tmux, model, tmp_path / "qwen") as qwen,
    ):
        assert qwen.title() == "Qwen - project"
        status = wait_until(qwen.pid_status, 20, "sessions/<pid>.json")
        assert status["pid"] == qwen.pid
        qwen.type_line("please FAKE_SHELL now")
        qwen.wait_for(QwenAgent.PERMISSION_RE, timeout=30)
        assert qwen.wait_title(r"^✳", timeout=10).endswith("Qwen - project")
        qwen.send_keys("1")
        ran = qwen.project / "gemini-ran.txt"
        wait_until(ran.exists, 20, f"{ran} to appear")
        qwen.wait_for(r"FAKE_DONE", timeout=20)
        assert qwen.transcripts() and qwen.transcripts()[-1].stem == status["sessionId"]
