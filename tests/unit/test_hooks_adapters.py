"""Hooks of the adapters' agents (issue #19): Gemini CLI 0.61.0, Qwen Code 0.24.4, Copilot CLI 1.0.102.

The captured payloads (``tests/fixtures/*-hooks.jsonl``) become evidence for the session their
transcript names; install / merge / remove on sample files keep the user's own hooks; Gemini's
lifecycle events get no ``matcher``; only Qwen's and Copilot's permission hooks are held, briefly,
and answered in each agent's own output format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deck_tray.commands import hook_forwarder
from deck_tray.core import decisions
from deck_tray.core import hooks_config as hc
from deck_tray.core import settings as cfg
from deck_tray.core.agents import ADAPTERS, copilot, gemini, qwen
from deck_tray.core.hooks import HookStore, hook_evidence, parse_message
from deck_tray.core.model import AgentKind, EvidenceSource, RequestKind, SessionStatus
from deck_tray.core.reply import Reply, ReplyKind
from deck_tray.core.status import decide

FIX = Path(__file__).resolve().parents[1] / "fixtures"
EXE = ["/opt/bin/deck-tray"]
S = SessionStatus


def captured(name: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, stdin payload)`` per line of a captured hooks file."""
    out = []
    for line in (FIX / name).read_text().splitlines():
        rec = json.loads(line)
        out.append((rec["event"], rec.get("stdin") or rec.get("payload")))
    return out


def message(agent: str, event: str, payload: dict[str, Any], t: float, with_event: bool) -> dict[str, Any]:
    msg: dict[str, Any] = {"op": "hook", "agent": agent, "kind": "hook", "payload": payload, "received": t}
    if with_event:
        msg["event"] = event  # Copilot's installed commands name their event
    return msg


# --------------------------------------------------------------------------- payload → evidence

GEMINI_SID = "3f9b20a7-ae3c-4ffc-aa0f-76e2ba7c09bc"
QWEN_SID = "331430f0-c5b0-47da-9dbf-99fee7338890"
COPILOT_SID = "283f454d-c528-4c65-858a-eaa9cb5f76ae"


@pytest.mark.parametrize(("fixture", "agent", "sid", "with_event", "expected"), [
    ("gemini-cli-0.61.0-hooks.jsonl", "gemini-cli", GEMINI_SID, False,
     [S.IDLE, None, S.WAITING_PERMISSION, S.IDLE, S.ENDED, S.ENDED, S.ENDED]),
    ("qwen-code-0.24.4-hooks.jsonl", "qwen-code", QWEN_SID, False,
     [S.IDLE, S.BUSY, S.WAITING_PERMISSION, S.WAITING_PERMISSION, S.BUSY, S.IDLE, S.IDLE, S.ENDED]),
    ("copilot-cli-1.0.102-hooks.jsonl", "copilot-cli", COPILOT_SID, True,
     [S.BUSY, S.BUSY, None, S.WAITING_PERMISSION, S.WAITING_PERMISSION, None, S.IDLE, S.BUSY, None,
      S.WAITING_QUESTION, None, S.IDLE, S.BUSY, S.IDLE, S.ENDED]),
])
def test_captured_payloads_become_evidence_for_their_session(fixture: str, agent: str, sid: str, with_event: bool,
                                                            expected: list[SessionStatus | None]) -> None:
    got = []
    for i, (event, payload) in enumerate(captured(fixture)):
        ev = parse_message(message(agent, event, payload, 1000.0 + i, with_event), now=1000.0 + i)
        assert ev is not None and ev.agent.value == agent
        assert ev.session_id == sid, (event, ev.session_id)
        assert ev.name == event
        e = hook_evidence(ev)
        got.append(e.status if e else None)
        assert e is None or e.source is EvidenceSource.HOOK
    assert got == expected


def test_copilot_payloads_that_name_their_event_need_no_argument() -> None:
    """Only ``permissionRequest`` (``hookName``) and ``notification`` (``hook_event_name``) say
    which event they are: the adapter reads those; the rest need the installed command's event."""
    names = []
    for event, payload in captured("copilot-cli-1.0.102-hooks.jsonl"):
        ev = parse_message(message("copilot-cli", event, payload, 1000.0, False), now=1000.0)
        assert ev is not None
        names.append((event, ev.name))
    assert ("permissionRequest", "permissionRequest") in names and ("notification", "notification") in names
    assert ("agentStop", "") in names


def test_the_permission_hook_says_what_is_asked_and_the_reason_names_the_hook() -> None:
    store = HookStore(clock=lambda: 2000.0)
    for i, (event, payload) in enumerate(captured("qwen-code-0.24.4-hooks.jsonl")[:4]):
        store.add(parse_message(message("qwen-code", event, payload, 1990.0 + i, False), now=2000.0))  # type: ignore[arg-type]
    status, reason, pending = decide(list(store.evidence(QWEN_SID)), 1995.0)
    assert status is S.WAITING_PERMISSION
    assert pending is not None and pending.kind is RequestKind.PERMISSION
    assert pending.tool == "run_shell_command" and pending.summary == "touch gemini-ran.txt"
    assert pending.options == qwen.DEFAULT_OPTIONS
    assert reason.startswith("permission prompt for run_shell_command `touch gemini-ran.txt` — hook")


def test_gemini_permission_and_question_notifications() -> None:
    g = gemini.ADAPTER
    (_, note) = next(x for x in captured("gemini-cli-0.61.0-hooks.jsonl") if x[0] == "Notification")
    claim = g.hook_status("Notification", note)
    assert claim is not None and claim.status is S.WAITING_PERMISSION and claim.pending is not None
    assert (claim.pending.tool, claim.pending.summary) == ("run_shell_command", "touch gemini-ran.txt")
    ask = {**note, "message": "Tool requires confirmation", "details": {"type": "ask_user", "title": "Ask User"}}
    claim = g.hook_status("Notification", ask)
    assert claim is not None and claim.status is S.WAITING_QUESTION and claim.pending is None
    assert g.hook_status("BeforeAgent", {"prompt": "x"}).status is S.BUSY  # type: ignore[union-attr]
    assert g.hook_status("SessionEnd", {"reason": "clear"}) is None, "/clear goes on in the same process"


def test_gemini_sessionend_repeated_on_quit_leaves_the_session_ended() -> None:
    """SessionEnd fires 2–3 times on one /quit (0.61.0): each one only repeats the end."""
    store = HookStore(clock=lambda: 2000.0)
    changed = []
    for i, (event, payload) in enumerate(captured("gemini-cli-0.61.0-hooks.jsonl")):
        ev = parse_message(message("gemini-cli", event, payload, 1990.0 + i, False), now=2000.0)
        assert ev is not None
        changed.append((event, store.add(ev)))
    assert [e for e, sid in changed if sid] == ["SessionStart", "Notification", "AfterAgent", *["SessionEnd"] * 3]
    assert decide(list(store.evidence(GEMINI_SID)), 2001.0)[:2] == (S.ENDED, "the user quit — hook, 5 s ago")


def test_an_unknown_agent_or_event_is_dropped() -> None:
    assert parse_message({"op": "hook", "agent": "cursor", "kind": "hook", "payload": {}}) is None
    ev = parse_message({"op": "hook", "agent": "copilot-cli", "kind": "hook", "event": "preCompact",
                        "payload": {"sessionId": COPILOT_SID}}, now=1.0)
    assert ev is not None and hook_evidence(ev) is None


# --------------------------------------------------------------------------- install / merge / remove

def plan(adapter: Any, text: str | None, install: bool = True, exe: list[str] = EXE) -> hc.FilePlan:
    path = Path("/h/file.json")
    edit = (lambda d: adapter.merge_hooks(d, exe)) if install else (lambda d: adapter.remove_hooks(d, exe))
    return hc.plan_edit(adapter.kind, path, text, edit, install, owned=adapter.hook_file_owned)


USER_GEMINI = """{
  // a comment Gemini allows
  "ui": {"theme": "Dracula"},
  "hooks": {
    "SessionStart": [{"hooks": [{"type": "command", "name": "mine", "command": "notify-send hi"}]}],
    "BeforeTool": [{"matcher": "run_shell_command", "hooks": [{"type": "command", "command": "audit"}]}]
  }
}
"""


@pytest.mark.parametrize("adapter", [gemini.ADAPTER, qwen.ADAPTER], ids=["gemini", "qwen"])
def test_settings_file_install_keeps_the_users_hooks_and_remove_gives_them_back(adapter: Any) -> None:
    user = USER_GEMINI.replace("  // a comment Gemini allows\n", "")
    p = plan(adapter, user)
    assert p.changed and p.new is not None
    data = json.loads(p.new)
    assert data["ui"] == {"theme": "Dracula"}
    assert data["hooks"]["SessionStart"][0] == {"hooks": [{"type": "command", "name": "mine",
                                                           "command": "notify-send hi"}]}
    assert data["hooks"]["BeforeTool"] == json.loads(user)["hooks"]["BeforeTool"]
    for event in adapter.hook_events:
        ours = [h for g in data["hooks"][event] for h in g["hooks"]
                if hc.our_executable(h["command"], adapter.kind, EXE)]
        assert len(ours) == 1 and ours[0]["command"] == f"/opt/bin/deck-tray hook {adapter.kind.value}"
    assert adapter.hooks_state(data, EXE)[0] is hc.HookState.INSTALLED
    again = plan(adapter, p.new)
    assert not again.changed, again.notes
    removed = plan(adapter, p.new, install=False)
    assert removed.new is not None and json.loads(removed.new) == json.loads(user)
    assert adapter.hooks_state(json.loads(removed.new), EXE)[0] is hc.HookState.NOT_INSTALLED


def test_a_moved_executable_is_replaced_not_added() -> None:
    first = plan(qwen.ADAPTER, None, exe=["/old/deck-tray"]).new
    assert first is not None
    data = json.loads(first)
    state, detail = qwen.ADAPTER.hooks_state(data, EXE)
    assert state is hc.HookState.OUTDATED and "/old/deck-tray" in detail
    p = plan(qwen.ADAPTER, first)
    assert p.new is not None and "/old/deck-tray" not in p.new
    assert sum(len(g["hooks"]) for groups in json.loads(p.new)["hooks"].values() for g in groups) == 6


def test_qwen_permission_hook_has_a_matcher_and_a_timeout_beyond_the_longest_wait() -> None:
    data = json.loads(plan(qwen.ADAPTER, None).new or "")
    (group,) = data["hooks"]["PermissionRequest"]
    assert group["matcher"] == "*"
    assert group["hooks"][0]["timeout"] == hc.SHORT_DECISION_HOOK_TIMEOUT_S > hc.SHORT_WAIT_MAX_S
    assert all("matcher" not in g for e in ("Stop", "Notification", "SessionStart") for g in data["hooks"][e])


def test_gemini_lifecycle_events_are_installed_without_a_matcher() -> None:
    """A ``matcher`` on SessionStart/SessionEnd is compared by exact string with the source/reason
    (0.61.0): ``".*"`` silently stops them firing. deck-tray writes none, removes one it finds on
    its own handler, and ``status`` says such a hook never fires."""
    data = json.loads(plan(gemini.ADAPTER, None).new or "")
    for event in gemini.HOOK_EVENTS:
        (group,) = data["hooks"][event]
        assert "matcher" not in group, event
        assert group["hooks"][0]["timeout"] == gemini.HOOK_TIMEOUT_MS
    muted = json.loads(json.dumps(data))
    muted["hooks"]["SessionEnd"][0]["matcher"] = ".*"
    state, detail = gemini.ADAPTER.hooks_state(muted, EXE)
    assert state is hc.HookState.PARTIAL and "SessionEnd" in detail and "exact" in detail
    fixed = plan(gemini.ADAPTER, json.dumps(muted))
    assert any("removed matcher '.*'" in n for n in fixed.notes)
    assert "matcher" not in json.loads(fixed.new or "")["hooks"]["SessionEnd"][0]
    shared = json.loads(json.dumps(data))  # the user's hook in the same group: left alone
    shared["hooks"]["SessionStart"][0] = {"matcher": "startup", "hooks": [
        {"type": "command", "command": "mine"}, shared["hooks"]["SessionStart"][0]["hooks"][0]]}
    assert json.loads(plan(gemini.ADAPTER, json.dumps(shared)).new or json.dumps(shared))["hooks"]["SessionStart"][0][
        "matcher"] == "startup"


def test_a_malformed_settings_file_is_refused() -> None:
    with pytest.raises(hc.ConfigError):
        plan(gemini.ADAPTER, '{"hooks": {"AfterAgent": {}}}')
    with pytest.raises(hc.ConfigError):
        plan(copilot.ADAPTER, '{"version": 1, "hooks": []}')


def test_copilot_owns_its_file_and_remove_deletes_it() -> None:
    c = copilot.ADAPTER
    assert c.hook_file(Path("/h/.copilot")) == Path("/h/.copilot/hooks/deck-tray.json")
    p = plan(c, None)
    data = json.loads(p.new or "")
    assert data["version"] == 1
    assert data["hooks"]["agentStop"] == [{"type": "command", "bash": "/opt/bin/deck-tray hook copilot-cli agentStop",
                                           "timeoutSec": copilot.HOOK_TIMEOUT_S}]
    assert data["hooks"]["permissionRequest"][0]["timeoutSec"] == hc.SHORT_DECISION_HOOK_TIMEOUT_S
    assert set(data["hooks"]) == set(copilot.HOOK_EVENTS)
    assert c.hooks_state(data, EXE)[0] is hc.HookState.INSTALLED
    assert not plan(c, p.new).changed
    gone = plan(c, p.new, install=False)
    assert gone.delete and gone.changed and gone.new is None and gone.diff().count("\n-") > 10
    # Someone added a hook of their own to deck-tray's file: it stays, only deck-tray's go.
    data["hooks"]["agentStop"].append({"type": "command", "bash": "say done", "timeoutSec": 5})
    kept = plan(c, json.dumps(data), install=False)
    assert not kept.delete and json.loads(kept.new or "")["hooks"] == {
        "agentStop": [{"type": "command", "bash": "say done", "timeoutSec": 5}]}


def test_hooks_setup_plans_and_status_cover_the_three_agents(tmp_path: Path) -> None:
    from deck_tray.commands import hooks_setup

    env = {"HOME": str(tmp_path), "GEMINI_CLI_HOME": str(tmp_path / "g"), "QWEN_HOME": str(tmp_path / "q"),
           "COPILOT_HOME": str(tmp_path / "c"), "CLAUDE_CONFIG_DIR": str(tmp_path / "cl"),
           "CODEX_HOME": str(tmp_path / "cx")}
    kinds = [AgentKind.GEMINI_CLI, AgentKind.QWEN_CODE, AgentKind.COPILOT_CLI]
    plans, errors = hooks_setup.plan(True, kinds, EXE, env)
    assert not errors
    assert [p.path for p in plans] == [tmp_path / "g/.gemini/settings.json", tmp_path / "q/settings.json",
                                       tmp_path / "c/hooks/deck-tray.json"]
    for p in plans:
        assert p.new is not None
        hooks_setup.write_atomic(p.path, p.new)
    rows = {s.agent: s for s in hooks_setup.hooks_status(env, EXE)}
    assert all(rows[k].state is hc.HookState.INSTALLED for k in kinds), rows
    assert hooks_setup._agents("all")[2:] == kinds
    assert hooks_setup._agents("qwen") == [AgentKind.QWEN_CODE]


# --------------------------------------------------------------------------- decisions


def test_only_qwen_and_copilot_permission_hooks_are_held_and_only_briefly() -> None:
    (_, q) = next(x for x in captured("qwen-code-0.24.4-hooks.jsonl") if x[0] == "PermissionRequest")
    (_, c) = next(x for x in captured("copilot-cli-1.0.102-hooks.jsonl") if x[0] == "permissionRequest")
    (_, g) = next(x for x in captured("gemini-cli-0.61.0-hooks.jsonl") if x[0] == "Notification")
    assert decisions.holds(AgentKind.QWEN_CODE, q, event="PermissionRequest", short_wait_s=3)
    assert decisions.holds(AgentKind.COPILOT_CLI, c, event="permissionRequest", short_wait_s=3)
    assert not decisions.holds(AgentKind.QWEN_CODE, q, event="PermissionRequest", short_wait_s=0), "setting off"
    assert not decisions.holds(AgentKind.COPILOT_CLI, c, event="notification", short_wait_s=3)
    assert not decisions.holds(AgentKind.GEMINI_CLI, g, event="Notification", short_wait_s=3)
    question = {**q, "tool_name": "ask_user_question", "tool_input": {"questions": [{"question": "Colour?"}]}}
    assert not decisions.holds(AgentKind.QWEN_CODE, question, event="PermissionRequest", short_wait_s=3)
    assert decisions.short_wait(AgentKind.QWEN_CODE) and decisions.short_wait(AgentKind.COPILOT_CLI)
    assert not decisions.short_wait(AgentKind.GEMINI_CLI) and not decisions.short_wait(AgentKind.CLAUDE_CODE)


def test_decisions_in_each_agents_format() -> None:
    out = decisions.decision_output(AgentKind.QWEN_CODE, Reply(ReplyKind.DENY, "not now"), {})
    assert out == {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                                          "decision": {"behavior": "deny", "message": "not now"}}}
    assert decisions.decision_output(AgentKind.COPILOT_CLI, Reply(ReplyKind.ALLOW_ALWAYS), {}) == {"behavior": "allow"}
    assert decisions.decision_output(AgentKind.COPILOT_CLI, Reply(ReplyKind.DENY), {}) == {
        "behavior": "deny", "message": "The user denied this from deck-tray."}
    assert "allowed it once" in decisions.always_note(AgentKind.COPILOT_CLI, Reply(ReplyKind.ALLOW_ALWAYS), {})


def test_the_forwarder_and_the_settings_agree_with_the_adapters() -> None:
    for a in ADAPTERS:
        assert a.kind.value in hook_forwarder.AGENTS and a.kind.value in hook_forwarder.EVENT_ARG
        assert hook_forwarder.DECISION_EVENTS.get(a.kind.value, b"").decode() == a.decision_event
        assert (a.kind.value in hook_forwarder.SHORT_WAIT) == bool(a.decision_event)
    assert cfg.HOOK_WAIT_S.maximum == hc.SHORT_WAIT_MAX_S < hook_forwarder.SHORT_WAIT_CAP_S
    assert 2 <= cfg.HOOK_WAIT_S.default <= 5


def test_a_held_hook_keeps_its_session_waiting_against_the_busy_spinner() -> None:
    """Qwen / Copilot show a spinner (busy screen and title) while deck-tray holds their permission
    hook: while held, the hook's claim is observed anew, so the later busy screen does not end it;
    once let go, it does."""
    from deck_tray.core.model import Evidence

    clock = [1000.0]
    store = HookStore(clock=lambda: clock[0])
    (_, payload) = next(x for x in captured("copilot-cli-1.0.102-hooks.jsonl") if x[0] == "permissionRequest")
    store.add(parse_message(message("copilot-cli", "permissionRequest", payload, 1000.0, True), now=1000.0))  # type: ignore[arg-type]
    spinner = Evidence(EvidenceSource.SCREEN, S.BUSY, 1001.0, "working (screen)", 30.0)
    clock[0] = 1002.0
    store.set_held(COPILOT_SID, True)
    assert decide([spinner, *store.evidence(COPILOT_SID)], 1002.0)[0] is S.WAITING_PERMISSION
    store.set_held(COPILOT_SID, False)
    assert decide([spinner, *store.evidence(COPILOT_SID)], 1002.0)[0] is S.BUSY
