"""Answers to a permission given through the agent's own ``PermissionRequest`` hook (pure).

Claude Code shows its permission dialog *while* a ``PermissionRequest`` command hook runs; when
the hook prints a decision and exits 0, the dialog closes and the decision applies ("Allowed by
PermissionRequest hook"); when the user answers in the terminal first, the turn goes on and the
hook's later output is ignored (issue #13, tried with Claude Code 2.1.197). The hook's stdout::

    {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                            "decision": {"behavior": "allow"}}}
    {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                            "decision": {"behavior": "allow", "updatedPermissions": [...]}}}
    {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                            "decision": {"behavior": "deny", "message": "..."}}}

``updatedPermissions`` takes the entries of the payload's ``permission_suggestions`` (what the
dialog's "Yes, and don't ask again …" option would add).

Claude Code's ``AskUserQuestion`` comes through the same hook (``tool_name``
``"AskUserQuestion"``, ``tool_input`` ``{"questions": [{"question", "header", "options":
[{"label", "description"}], "multiSelect"}]}``) and is answered by allowing it with the answers
filled in, ``{"behavior": "allow", "updatedInput": {...tool_input, "answers": {question text:
label or free text}}}``: Claude shows "User answered Claude's questions: · <question> → <answer>"
and the model gets the answer as the tool result (tried with 2.1.197 and 2.1.332, an option
label and free text both). Only single-question requests are held: deck-tray's window answers
one question at a time, and a hook's answer has to cover them all.

Codex 0.169.0 and 0.171.0 take the same output (an ``allow`` ran the command; a ``deny``'s
message reached the model as ``Rejected("…")``), but, run here in a plain terminal, Codex shows
its approval only *after* the hook returns ("Working · Running hook" meanwhile): a held hook
keeps the user at the terminal waiting. So Codex is held only when the user asked for it
(``codex_hold``: the "Let Codex wait for deck-tray" setting) and, even then, only where deck-tray
cannot type the answer into a pane (the broker decides that).

Qwen Code 0.24.4 and Copilot CLI 1.0.102 (issue #19) take a decision from their own permission
hook too — Qwen the Claude shape above from ``PermissionRequest``, Copilot ``{"behavior":
"allow"}`` / ``{"behavior": "deny", "message": "..."}`` from ``permissionRequest`` (the adapters'
:meth:`~deck_tray.core.agents.base.AgentAdapter.decision_output`) — but **neither shows its prompt
while the hook runs**: the terminal shows a spinner until the hook returns. The rule, so that
deck-tray can never lock the user out of their own terminal: such a hook waits for deck-tray at
most ``short_wait_s`` seconds (the "Let Qwen and Copilot wait for deck-tray" setting,
:data:`deck_tray.core.settings.HOOK_WAIT_S`: 3 s by default, at most
:data:`deck_tray.core.hooks_config.SHORT_WAIT_MAX_S`, 0 = never), then returns with no decision;
the agent then shows its prompt and the answer is typed there as usual (keys). The forwarder
holds to the same limit, which the app sends with its ``held`` line, and returns at once when
the app is not running. Gemini CLI 0.61.0's hooks cannot approve anything (and delay its prompt
while they run): they are never held. Questions (Qwen's ``ask_user_question``) are not held.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deck_tray.core.agents import adapter_for
from deck_tray.core.model import AgentKind, RequestKind, Session
from deck_tray.core.reply import Reply, ReplyKind

#: The hook event whose decision the agents take.
EVENT = "PermissionRequest"
#: Reply kinds a permission hook can carry.
DECIDABLE = frozenset({ReplyKind.ALLOW, ReplyKind.ALLOW_ALWAYS, ReplyKind.DENY})
#: Agents whose hook honours ``updatedPermissions`` ("always allow").
ALWAYS_SUPPORTED = frozenset({AgentKind.CLAUDE_CODE})
#: Agents that show their own permission dialog while the hook runs (so holding it locks no one
#: out): Claude Code 2.1.197 and 2.1.332 (issue #13). Not Codex 0.169.0 / 0.171.0 (see the module
#: docstring): it is held only on request.
DIALOG_WHILE_HOOK_RUNS = frozenset({AgentKind.CLAUDE_CODE})
#: Tools whose PermissionRequest is a question, not a permission.
QUESTION_TOOLS = frozenset({"AskUserQuestion"})
#: Agents whose question tool can be answered through the hook (``updatedInput.answers``).
QUESTIONS_SUPPORTED = frozenset({AgentKind.CLAUDE_CODE})
#: Reply kinds a held question takes: an option label, free text, or Deny (no answer).
QUESTION_DECIDABLE = frozenset({ReplyKind.OPTION, ReplyKind.PROMPT, ReplyKind.DENY})
#: The message a deny carries when the user gave none.
DEFAULT_DENY = "The user denied this from deck-tray."
#: The message a question's deny carries when the user gave none.
DEFAULT_DECLINE = "The user declined to answer this question from deck-tray."


def questions_of(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``tool_input.questions`` of a question request (``[]`` when there are none)."""
    inp = payload.get("tool_input")
    qs = inp.get("questions") if isinstance(inp, Mapping) else None
    return [q for q in qs if isinstance(q, dict)] if isinstance(qs, list) else []


def is_question(payload: Mapping[str, Any]) -> bool:
    """Whether a ``PermissionRequest`` payload is a question (``AskUserQuestion``)."""
    return str(payload.get("tool_name") or "") in QUESTION_TOOLS


def short_wait(agent: AgentKind) -> bool:
    """Whether ``agent``'s permission hook can decide but hides the agent's prompt while it runs
    (Qwen Code, Copilot CLI): held only for the short setting (see the module docstring)."""
    adapter = adapter_for(agent)
    return adapter is not None and bool(adapter.decision_event)


def holds(agent: AgentKind, payload: Mapping[str, Any], *, codex_hold: bool = False, event: str = "",
          short_wait_s: float = 0.0) -> bool:
    """Whether a hook with ``payload`` should wait for the user's decision.

    True for a ``PermissionRequest`` of an agent in :data:`DIALOG_WHILE_HOOK_RUNS` — a tool
    permission, or a question with exactly one question (:data:`QUESTIONS_SUPPORTED`) — and
    for a Codex tool permission when ``codex_hold`` (the user let Codex wait for deck-tray); for
    an adapter's agent whose hook can decide (:func:`short_wait`), its decision event (``event``,
    as :attr:`deck_tray.core.hooks.HookEvent.name` reads it) when ``short_wait_s`` > 0 and it is
    not a question.
    """
    adapter = adapter_for(agent)
    if adapter is not None:
        return (bool(adapter.decision_event) and event == adapter.decision_event and short_wait_s > 0
                and not is_question(payload) and payload.get("tool_name") != "ask_user_question")
    if payload.get("hook_event_name") != EVENT:
        return False
    if is_question(payload):
        return agent in QUESTIONS_SUPPORTED and len(questions_of(payload)) == 1
    return agent in DIALOG_WHILE_HOOK_RUNS or (agent is AgentKind.CODEX and codex_hold)


def decidable(payload: Mapping[str, Any]) -> frozenset[ReplyKind]:
    """The reply kinds a held hook with ``payload`` can carry."""
    return QUESTION_DECIDABLE if is_question(payload) else DECIDABLE


def decidable_for(kind: RequestKind) -> frozenset[ReplyKind]:
    """The reply kinds a held hook can carry for a request of ``kind`` (for the window)."""
    return QUESTION_DECIDABLE if kind is RequestKind.QUESTION else DECIDABLE


def decision_output(agent: AgentKind, reply: Reply, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object the hook prints for ``reply``.

    Args:
        agent: whose hook it is.
        reply: for a permission :attr:`ReplyKind.ALLOW`, :attr:`ReplyKind.ALLOW_ALWAYS` or
            :attr:`ReplyKind.DENY` (its text is the deny message); for a question
            :attr:`ReplyKind.OPTION` (an option label), :attr:`ReplyKind.PROMPT` (free text) or
            :attr:`ReplyKind.DENY` (no answer).
        payload: the ``PermissionRequest`` payload (``permission_suggestions``, ``tool_input``).

    Raises:
        ValueError: ``reply`` does not answer this request (a question's option label that is
            not offered, empty free text, a permission answer to a question or the reverse);
            the message says why.
    """
    if reply.kind not in decidable(payload):
        what = "question" if is_question(payload) else "permission request"
        raise ValueError(f"a {what} cannot take a {reply.describe()} reply")
    adapter = adapter_for(agent)
    if adapter is not None:
        out = adapter.decision_output(reply, payload)
        if out is None:
            raise ValueError(f"{agent.label}'s hook cannot carry this answer; answer in its terminal")
        return out
    decision: dict[str, Any]
    if reply.kind is ReplyKind.DENY:
        default = DEFAULT_DECLINE if is_question(payload) else DEFAULT_DENY
        decision = {"behavior": "deny", "message": reply.text.strip() or default}
    elif is_question(payload):
        decision = {"behavior": "allow", "updatedInput": _answered_input(payload, reply)}
    else:
        decision = {"behavior": "allow"}
        suggestions = payload.get("permission_suggestions")
        if reply.kind is ReplyKind.ALLOW_ALWAYS and agent in ALWAYS_SUPPORTED and isinstance(suggestions, list) \
                and suggestions:
            decision["updatedPermissions"] = suggestions
    return {"hookSpecificOutput": {"hookEventName": EVENT, "decision": decision}}


def _answered_input(payload: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    """``tool_input`` with ``answers`` ``{question text: answer}`` for the one question."""
    qs = questions_of(payload)
    if len(qs) != 1:
        raise ValueError(f"the agent asks {len(qs)} questions at once; answer them in its terminal")
    q = qs[0]
    labels = [str(o.get("label")) for o in q.get("options") or [] if isinstance(o, dict) and o.get("label")]
    if reply.kind is ReplyKind.OPTION:
        answer = next((lab for lab in labels if lab.casefold() == reply.text.strip().casefold()), None)
        if answer is None:
            raise ValueError(f"no option {reply.text!r} in this question (options: {', '.join(labels)})")
    else:
        answer = reply.text.strip()
        if not answer:
            raise ValueError("the answer is empty")
    inp = payload.get("tool_input")
    return {**(dict(inp) if isinstance(inp, Mapping) else {}), "answers": {str(q.get("question") or ""): answer}}


def always_note(agent: AgentKind, reply: Reply, payload: Mapping[str, Any]) -> str:
    """What the user should know when "Always allow" could only allow once (``""`` otherwise)."""
    if reply.kind is not ReplyKind.ALLOW_ALWAYS or is_question(payload):
        return ""
    if agent not in ALWAYS_SUPPORTED:
        return f"; {agent.label} takes no rule from its hook, so this allowed it once"
    if not payload.get("permission_suggestions"):
        return "; the agent offered no rule to remember, so this allowed it once"
    return ""


def answer_via(session: Session, hook_held: bool = False) -> str | None:
    """How a permission answer to ``session`` would be delivered now (``sessions --json``'s
    ``answer_via``): ``"hook"`` (a held PermissionRequest hook), ``"api"`` (opencode's server),
    the pane's multiplexer or terminal (``"tmux"``, ``"zellij"``, …), or None (no way known)."""
    if hook_held:
        return "hook"
    if session.agent is AgentKind.OPENCODE:
        return "api"
    return session.pane.multiplexer if session.pane is not None else None
