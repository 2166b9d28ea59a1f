"""Issue #16: the public corpus (``tests/fixtures/public/``, real Claude Code 1.0.98–2.1.152 and
Codex 0.135 session files from licensed public repositories, see its PROVENANCE.json) through the
product's classifier, the live scan and the history index, against the independent counter
(``tests/corpus_count.py``, which imports nothing from deck_tray)."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Any

import pytest

from deck_tray.core.history import SearchQuery
from deck_tray.core.model import MessageRole
from deck_tray.core.record_kinds import ClaudeQueue, CodexItems, claude_items
from deck_tray.core.scan import Scanner
from deck_tray.services.history_store import HistoryIndex, discover_files
from tests.corpus_count import count_file

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "public"
PROVENANCE: list[dict[str, Any]] = json.loads((ROOT / "PROVENANCE.json").read_text())
#: Kinds the user side of a record adds at most once per record in the counter's rules.
ONCE_PER_RECORD = {"user", "command", "harness"}
#: What a typed prompt never starts with: a harness tag, or the text of a compaction summary.
NOT_TYPED = re.compile(r"^\s*(<(task-notification|ide_opened_file|ide_selection|bash-input|bash-stdout|"
                       r"local-command-stdout|system-reminder|command-name|environment_context|user_instructions)>"
                       r"|This session is being continued from a previous conversation)")


def _records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def classified(entry: dict[str, Any]) -> collections.Counter[str]:
    """The product's count of one corpus file: its classifier's items per kind."""
    counts: collections.Counter[str] = collections.Counter()
    codex_items = CodexItems()
    queue = ClaudeQueue()
    for rec in _records(ROOT / entry["file"]):
        if entry["agent"] == "claude":
            items = queue.queued(rec) + [i for i in claude_items(rec) if not queue.already(i)]
        else:
            items = codex_items.feed(rec)
        per = collections.Counter(i.kind.value for i in items)
        if entry["agent"] == "claude":
            for kind in ONCE_PER_RECORD & set(per):
                per[kind] = 1
        counts += per
    return counts


@pytest.mark.parametrize("entry", PROVENANCE, ids=[e["file"].rsplit("/", 1)[-1][:24] for e in PROVENANCE])
def test_every_message_is_counted_by_kind_as_the_independent_counter_does(entry: dict[str, Any]) -> None:
    expected = count_file(ROOT / entry["file"])
    for extra in ("summary", "sidechain", "bad_line"):
        expected.pop(extra, None)
    assert classified(entry) == expected


def test_the_corpus_totals() -> None:
    """The figures the issue asks for (printed with -s); every kind the corpus has shows up."""
    totals: collections.Counter[str] = collections.Counter()
    for entry in PROVENANCE:
        totals += classified(entry)
    print("public corpus, items per kind:", dict(sorted(totals.items())))
    assert {"user", "command", "harness", "compaction", "assistant", "thinking", "tool", "tool_result",
            "image", "error"} <= set(totals)


def _scan(case: Path) -> list[Any]:
    scanner = Scanner(case, case / "no-codex", history_s=1e12, process_lister=lambda: [])
    return scanner.scan()


CLAUDE_CASES = sorted(p for p in (ROOT / "claude").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CLAUDE_CASES, ids=[c.name for c in CLAUDE_CASES])
def test_the_scan_lists_each_session_once_and_no_sub_agent_file_as_a_session(case: Path) -> None:
    obs = _scan(case)
    ids = [o.id for o in obs]
    assert len(ids) == len(set(ids))
    mains = {p.stem for p in case.glob("projects/*/*.jsonl") if not p.name.startswith("agent-")}
    assert set(ids) == mains
    for o in obs:
        typed = [m.text for m in o.messages if m.role is MessageRole.USER]
        assert not [t for t in typed if NOT_TYPED.match(t)], o.id
        assert not NOT_TYPED.match(o.title), o.title


def test_sub_agents_are_threads_of_their_parent_with_name_and_status() -> None:
    """1.0.x inline sidechains (ccviewer) and 2.1.x subagents/ files (spotter)."""
    inline = {o.id: o for o in _scan(ROOT / "claude" / "ccviewer")}["fe5e1c67-53e7-4862-81ae-d0e013e3270b"]
    threads = [m for m in inline.messages if m.role is MessageRole.SUBAGENT]
    assert [t.text.split(" · ")[0] for t in threads] == [
        "general-purpose: Build TODO components", "general-purpose: Setup Next.js project",
        "general-purpose: Create data models"]
    assert [t.state for t in threads][:2] == ["done", "done"]
    # The parent's own conversation is not mixed with the sub-agents' (1 prompt, not dozens).
    assert len([m for m in inline.messages if m.role in (MessageRole.USER, MessageRole.COMMAND)]) == 1
    # The file is cut mid-task: the open sub-agent's call is the request, and it names the sub-agent.
    assert inline.pending_hint is not None and inline.pending_hint.asker == "general-purpose: Create data models"

    files = {o.id: o for o in _scan(ROOT / "claude" / "spotter")}["ae4a77f8-aedd-4bc1-888f-c94edc91af04"]
    names = [m.text.split(" · ")[0] for m in files.messages if m.role is MessageRole.SUBAGENT]
    assert names == ["general-purpose: Check OTEL hex package versions", "compacting the conversation"]


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> HistoryIndex:
    index = HistoryIndex(tmp_path_factory.mktemp("idx") / "history.sqlite3")
    files = []
    for case in CLAUDE_CASES:
        files += discover_files(case, case / "no-codex")
    for case in sorted((ROOT / "codex").iterdir()):
        files += discover_files(case / "no-claude", case)
    index.sync_files(files)
    yield index
    index.close()


def test_the_index_takes_every_file_and_files_sub_agent_words_under_the_parent(corpus_index: HistoryIndex) -> None:
    stats = corpus_index.stats()
    assert stats["sessions"] >= len(PROVENANCE) - 2  # the two 2.0.x agent files share their parent's id
    # Words only a 2.1.x sub-agent wrote (subagents/agent-aac57f5.jsonl):
    hits = corpus_index.search(SearchQuery(text="opentelemetry_exporter hex"))
    sub = [h for h in hits if h.thread]
    assert sub and {h.session_id for h in sub} == {"ae4a77f8-aedd-4bc1-888f-c94edc91af04"}
    # Words only a 1.0.x inline sidechain wrote, under the parent's id and attributed:
    hits = corpus_index.search(SearchQuery(text="\"Setup Next.js project\""))
    assert any(h.session_id == "fe5e1c67-53e7-4862-81ae-d0e013e3270b" for h in hits)


def test_a_cjk_word_inside_a_run_is_found(corpus_index: HistoryIndex) -> None:
    """ccviewer's 1.0.x prompt "/orchestrator @CLAUDE.md を最新の状態にアップデートしてください"."""
    for word in ("最新", "アップデート", "状態"):
        hits = corpus_index.search(SearchQuery(text=word))
        assert any(h.session_id == "5c0375b4-57a5-4f26-b12d-d022ee4e51b7" for h in hits), word
