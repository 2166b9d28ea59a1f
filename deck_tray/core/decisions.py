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

Codex 0.169.0 carries the same output contract (``PermissionRequestHookSpecificOutputWire``,
``PermissionRequestDecisionWire``) but, run here in a plain terminal, it shows its approval only
*after* the hook returns ("Working · Running hook" meanwhile): a held hook would lock the user at
the terminal out. So only agents in :data:`DIALOG_WHILE_HOOK_RUNS` are held; Codex permissions
are answered in their pane.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deck_tray.core.model import AgentKind, Session
from deck_tray.core.reply import Reply, ReplyKind

#: The hook event whose decision the agents take.
EVENT = "PermissionRequest"
#: Reply kinds a permission hook can carry.
DECIDABLE = frozenset({ReplyKind.ALLOW, ReplyKind.ALLOW_ALWAYS, ReplyKind.DENY})
#: Agents whose hook honours ``updatedPermissions`` ("always allow").
ALWAYS_SUPPORTED = frozenset({AgentKind.CLAUDE_CODE})
#: Agents that show their own permission dialog while the hook runs (so holding it locks no one
#: out): Claude Code 2.1.197 (issue #13). Not Codex 0.169.0 (see the module docstring).
DIALOG_WHILE_HOOK_RUNS = frozenset({AgentKind.CLAUDE_CODE})
#: Tools whose PermissionRequest is a question, not a permission (answered in the pane).
QUESTION_TOOLS = frozenset({"AskUserQuestion"})
#: The message a deny carries when the user gave none.
DEFAULT_DENY = "The user denied this from deck-tray."


def holds(agent: AgentKind, payload: Mapping[str, Any]) -> bool:
    """Whether a hook with ``payload`` should wait for the user's decision: a
    ``PermissionRequest`` of an agent in :data:`DIALOG_WHILE_HOOK_RUNS` for a tool that is not
    a question."""
    return (agent in DIALOG_WHILE_HOOK_RUNS
            and payload.get("hook_event_name") == EVENT
            and str(payload.get("tool_name") or "") not in QUESTION_TOOLS)


def decision_output(agent: AgentKind, reply: Reply, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object the hook prints for ``reply``.

    Args:
        agent: whose hook it is.
        reply: :attr:`ReplyKind.ALLOW`, :attr:`ReplyKind.ALLOW_ALWAYS` or :attr:`ReplyKind.DENY`
            (its text is the deny message).
        payload: the ``PermissionRequest`` payload (for ``permission_suggestions``).

    Raises:
        ValueError: ``reply`` is not a permission answer.
    """
    if reply.kind not in DECIDABLE:
        raise ValueError(f"a permission hook cannot carry a {reply.kind.value} reply")
    decision: dict[str, Any]
    if reply.kind is ReplyKind.DENY:
        decision = {"behavior": "deny", "message": reply.text.strip() or DEFAULT_DENY}
    else:
        decision = {"behavior": "allow"}
        suggestions = payload.get("permission_suggestions")
        if reply.kind is ReplyKind.ALLOW_ALWAYS and agent in ALWAYS_SUPPORTED and isinstance(suggestions, list) \
                and suggestions:
            decision["updatedPermissions"] = suggestions
    return {"hookSpecificOutput": {"hookEventName": EVENT, "decision": decision}}


def always_note(agent: AgentKind, reply: Reply, payload: Mapping[str, Any]) -> str:
    """What the user should know when "Always allow" could only allow once (``""`` otherwise)."""
    if reply.kind is not ReplyKind.ALLOW_ALWAYS:
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
