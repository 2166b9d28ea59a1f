"""Fixtures: a real agent in a private tmux server against a loopback fake model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .harness import ClaudeAgent, CodexAgent, FakeModel, TmuxServer, find_agent_bin
from .ssh_host import SshHost, SshHostUnavailable, ssh_host_fixture, unavailable_reason

#: Files whose tests share one account on this machine (``dt-remote``, :mod:`tests.e2e.ssh_host`: its
#: stale runs are reaped by the next run) go to one pytest-xdist worker together.
SHARED_GROUPS = {"test_remote.py": "dt-remote", "test_ssh_host.py": "dt-remote"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup`` (scripts/test.sh), keep each file's tests on one worker (its
    module-scoped servers serve all of them, as in a serial run) and the files of one shared
    account together (:data:`SHARED_GROUPS`)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            name = item.path.name
            item.add_marker(pytest.mark.xdist_group(SHARED_GROUPS.get(name, name)))


_HOW = "install with ./scripts/test.sh or `npm install --prefix .agents`, or set DECK_TRAY_AGENTS_DIR"


@dataclass
class World:
    """One running agent and what deck-tray needs to see it.

    Attributes:
        model: the fake model server.
        tmux: the private tmux server.
        agent: the running agent.
        env: environment for a deck-tray process that should see exactly this agent.
    """

    model: FakeModel
    tmux: TmuxServer
    agent: ClaudeAgent | CodexAgent
    env: dict[str, str]


@pytest.fixture
def claude_world(tmp_path: Path) -> Iterator[World]:
    """A real Claude Code at its idle prompt."""
    if find_agent_bin("claude") is None:
        pytest.skip(f"claude not found ({_HOW})")
    with (
        FakeModel("anthropic", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        ClaudeAgent(tmux, model, tmp_path / "claude") as agent,
    ):
        env = {"HOME": str(agent.home), "TMUX_TMPDIR": str(tmux.tmpdir), "CODEX_HOME": str(agent.home / "no-codex")}
        yield World(model, tmux, agent, env)


@pytest.fixture
def codex_world(tmp_path: Path) -> Iterator[World]:
    """A real Codex CLI (``--no-daemon``) at its idle prompt."""
    if find_agent_bin("codex") is None:
        pytest.skip(f"codex not found ({_HOW})")
    with (
        FakeModel("openai", tmp_path / "fake") as model,
        TmuxServer() as tmux,
        CodexAgent(tmux, model, tmp_path / "codex") as agent,
    ):
        env = {"HOME": str(agent.home), "TMUX_TMPDIR": str(tmux.tmpdir), "CODEX_HOME": str(agent.codex_home)}
        yield World(model, tmux, agent, env)


def _ssh_host(**kwargs: object) -> Iterator[SshHost]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        yield from ssh_host_fixture(**kwargs)
    except SshHostUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def ssh_host() -> Iterator[SshHost]:
    """A real sshd on loopback with a second local user and deck-tray there (#18,
    :mod:`tests.e2e.ssh_host`), one for the session; tests must leave it running with its
    trusted key."""
    yield from _ssh_host()


@pytest.fixture
def own_ssh_host() -> Iterator[SshHost]:
    """A test host of the test's own, for tests that stop it or change its key."""
    yield from _ssh_host()

