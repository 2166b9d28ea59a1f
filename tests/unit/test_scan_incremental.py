"""Incremental scans: a file event rebuilds only the observations of the sessions its files
belong to, and what they build is what a full rescan would."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from deck_tray.core import procs
from deck_tray.core.claude import encode_cwd
from deck_tray.core.model import EvidenceSource, SessionStatus
from deck_tray.core.procs import AgentProcess
from deck_tray.core.scan import Observation, Scanner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CLAUDE = [json.loads(ln) for ln in (FIXTURES / "claude-code-2.1.197-interactive.jsonl").read_text().splitlines()]
CODEX = (FIXTURES / "codex-0.169.0-tui-no-daemon.jsonl").read_text().splitlines()
CLAUDE_SID = "6c891d37-ea8a-4230-a6e5-8df46b7b1a8a"
CODEX_TID = "01a200e4-f2b5-78c1-9c58-e75423501563"
NOW = 1_795_311_300.0  # 2026-11-22T01:35:00Z, just after the captures
ME = os.getpid()
START = procs.proc_start(ME) or ""


class Tree:
    """A ~/.claude and ~/.codex with ``n`` Claude sessions (live status files naming this
    process) and ``m`` Codex rollouts; each write returns the paths a watcher would report."""

    def __init__(self, root: Path, n: int, m: int = 0) -> None:
        self.claude, self.codex = root / ".claude", root / ".codex"
        self.sids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(n)]
        self.cwds = [f"/home/dev/p{i % 3}" for i in range(n)]
        self.tids = [f"01a200e4-f2b5-78c1-9c58-{i:012d}" for i in range(m)]
        self.pos = [0] * n
        self.cpos = [0] * m
        self.subs: dict[Path, int] = {}

    def transcript(self, i: int) -> Path:
        return self.claude / "projects" / encode_cwd(self.cwds[i]) / f"{self.sids[i]}.jsonl"

    def status_path(self, i: int) -> Path:
        return self.claude / "sessions" / f"{1000 + i}.json"

    def rollout(self, j: int) -> Path:
        return self.codex / "sessions" / "2026" / "11" / "22" / f"rollout-2026-11-22T01-35-34-{self.tids[j]}.jsonl"

    def status(self, i: int, status: str, *, alive: bool = True, sid: str | None = None,
               waiting_for: str = "permission prompt") -> list[str]:
        p = self.status_path(i)
        p.parent.mkdir(parents=True, exist_ok=True)
        ms = int(NOW * 1000) - 1000 * i
        content: dict[str, Any] = {"pid": ME, "sessionId": sid or self.sids[i], "cwd": self.cwds[i],
                                   "procStart": START if alive else "1", "status": status, "updatedAt": ms,
                                   "statusUpdatedAt": ms, "name": f"name {i}"}
        if status == "waiting":
            content["waitingFor"] = waiting_for
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(content))
        os.replace(tmp, p)
        return [str(tmp), str(p)]

    def append(self, i: int, k: int) -> list[str]:
        lines = []
        for _ in range(k):
            rec = json.dumps(CLAUDE[self.pos[i] % len(CLAUDE)])
            lines.append(rec.replace(CLAUDE_SID, self.sids[i]).replace("/home/dev/work/proj", self.cwds[i]))
            self.pos[i] += 1
        return self._write(self.transcript(i), lines)

    def sub_agent(self, i: int, name: str, new_layout: bool) -> list[str]:
        folder = self.transcript(i).parent
        p = (folder / self.sids[i] / "subagents" if new_layout else folder) / f"agent-{name}.jsonl"
        k = self.subs.get(p, 0)
        self.subs[p] = k + 1
        base = {"isSidechain": True, "agentId": name, "sessionId": self.sids[i], "uuid": f"{name}-{k}",
                "timestamp": "2026-11-22T01:30:00.000Z"}
        if k == 0:
            rec = {**base, "type": "user", "message": {"role": "user", "content": f"task for {name}"}}
        elif k % 2:
            call = {"type": "tool_use", "id": f"t{name}{k}", "name": "Bash", "input": {"command": f"ls {k}"}}
            rec = {**base, "type": "assistant",
                   "message": {"id": f"m{k}", "role": "assistant", "stop_reason": "tool_use", "content": [call]}}
        else:
            rec = {**base, "type": "user", "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": f"t{name}{k - 1}", "content": "ok"}]}}
        return self._write(p, [json.dumps(rec)])

    def codex_append(self, j: int, k: int) -> list[str]:
        lines = [ln.replace(CODEX_TID, self.tids[j]) for ln in CODEX[self.cpos[j]:self.cpos[j] + k]]
        self.cpos[j] += k
        return self._write(self.rollout(j), lines)

    @staticmethod
    def _write(p: Path, lines: list[str]) -> list[str]:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a") as fh:
            fh.writelines(ln + "\n" for ln in lines)
        os.utime(p, (NOW, NOW))
        return [str(p)]


def scanner(tree: Tree, agents: list[AgentProcess]) -> Scanner:
    # The process table is listed again on every scan (a negative time to live): both scanners
    # see the same processes.
    return Scanner(tree.claude, tree.codex, clock=lambda: NOW, process_lister=lambda: list(agents), process_ttl=-1.0)


def by_id(obs: list[Observation]) -> dict[tuple[str, str], tuple[Any, ...]]:
    def key(o: Observation) -> tuple[Any, ...]:
        # An observation with no activity time is marked ended "now": that time is the scan's.
        ev = tuple((e.source, e.status, e.detail, e.fresh_for, e.pending,
                    None if not o.updated_at and e.source is EvidenceSource.PROCESS else e.observed_at)
                   for e in o.evidence)
        return tuple(ev if f.name == "evidence" else getattr(o, f.name) for f in dataclasses.fields(o))

    return {(o.agent.value, o.id): key(o) for o in obs}


def test_a_status_change_rebuilds_that_session_only(tmp_path: Path) -> None:
    tree = Tree(tmp_path, 60)
    for i in range(60):
        tree.status(i, "busy")
        tree.append(i, 8)
    sc = scanner(tree, [])
    first = sc.scan_delta()
    assert first.complete and len(first.changed) == 60
    before = {o.id: o for o in sc.observations()}

    delta = sc.scan_delta(tree.status(17, "waiting"))
    assert [o.id for o in delta.changed] == [tree.sids[17]] and not delta.removed and not delta.complete
    after = {o.id: o for o in sc.observations()}
    assert all(after[sid] is before[sid] for sid in tree.sids if sid != tree.sids[17]), \
        "the other sessions' observations are the same objects"
    assert any(e.source is EvidenceSource.STATUS_FILE and e.status is SessionStatus.WAITING_PERMISSION
               for e in after[tree.sids[17]].evidence)

    delta = sc.scan_delta(tree.append(3, 2))
    assert [o.id for o in delta.changed] == [tree.sids[3]]
    # A file nobody reads (the status file's temporary name, a folder) changes nothing.
    assert sc.scan_delta([str(tree.status_path(5).with_suffix(".tmp"))]).changed == ()
    # The status file gone: the session is observed again (no longer live).
    tree.status_path(9).unlink()
    delta = sc.scan_delta([str(tree.status_path(9))])
    assert [o.id for o in delta.changed] == [tree.sids[9]]


def test_a_transcript_replaced_by_a_pipe_removes_its_session(tmp_path: Path) -> None:
    tree = Tree(tmp_path, 3)
    for i in range(3):
        tree.append(i, 5)
    sc = scanner(tree, [])
    sc.scan()
    path = tree.transcript(1)
    path.unlink()
    os.mkfifo(path)
    delta = sc.scan_delta([str(path)])
    assert delta.removed == {tree.sids[1]} and delta.changed == ()
    assert {o.id for o in sc.observations()} == {tree.sids[0], tree.sids[2]}


def test_incremental_scans_see_what_a_full_rescan_sees(tmp_path: Path) -> None:
    """Random file events (status files written, removed, of dead processes or naming another
    session; transcripts appended, truncated, removed; sub-agent files of both layouts; Codex
    rollouts; the process table changing) reported path by path to one scanner, while another
    rescans everything each time: the same observations, always, and every one that changed
    is named in the delta."""
    for seed in range(24):
        rng = random.Random(seed)
        root = tmp_path / f"s{seed}"
        tree = Tree(root, rng.randint(1, 6), rng.randint(0, 3))
        agents: list[AgentProcess] = []
        inc, full = scanner(tree, agents), scanner(tree, agents)
        inc.scan()
        for step in range(60):
            i = rng.randrange(len(tree.sids))
            op = rng.randrange(11)
            changed: list[str]
            if op in (0, 1):
                changed = tree.status(i, rng.choice(["busy", "waiting", "idle", ""]), alive=rng.random() > 0.15,
                                      sid=rng.choice(tree.sids) if rng.random() < 0.1 else None,
                                      waiting_for=rng.choice(["permission prompt", "input needed", "dialog open"]))
            elif op == 2:
                tree.status_path(i).unlink(missing_ok=True)
                changed = [str(tree.status_path(i))]
            elif op in (3, 4):
                changed = tree.append(i, rng.randint(1, 8))
            elif op == 5:
                p = tree.transcript(i)
                if p.exists():
                    p.unlink() if rng.random() < 0.5 else p.write_text("")
                tree.pos[i] = 0
                changed = [str(p)]
            elif op in (6, 7):
                changed = tree.sub_agent(i, f"a{rng.randint(0, 1)}{i}", new_layout=rng.random() < 0.6)
            elif op == 8 and tree.tids:
                changed = tree.codex_append(rng.randrange(len(tree.tids)), rng.randint(1, 6))
            elif op == 9:
                agents[:] = [AgentProcess(ME, "claude", cwd) for cwd in set(tree.cwds) if rng.random() < 0.4]
                for j in range(len(tree.tids)):
                    if rng.random() < 0.4:
                        agents.append(AgentProcess(4000 + j, "codex", "/home/dev/work/proj", (str(tree.rollout(j)),)))
                changed = []  # the tick: processes looked at again
            else:
                changed = [str(root / "unrelated.txt")]
            before = {(o.agent.value, o.id): o for o in inc.observations()}
            delta = inc.scan_delta(changed)
            got = by_id(inc.observations())
            want = by_id(full.scan())
            assert got == want, f"seed {seed}, step {step}, op {op}: {changed}"
            named = {(o.agent.value, o.id) for o in delta.changed}
            for o in inc.observations():
                k = (o.agent.value, o.id)
                assert k in named or before.get(k) is o, f"seed {seed}, step {step}: {k} changed, not named"
            assert {k[1] for k in before} - {k[1] for k in got} <= delta.removed
        shutil.rmtree(root)
