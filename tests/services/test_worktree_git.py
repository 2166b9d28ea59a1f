"""``deck-tray new --worktree``: worktrees made, refused and removed by REAL git in temp repos."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deck_tray.services.worktree import (
    NO_GIT,
    add_worktree,
    find_repo,
    remove_worktree,
    worktree_status,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def commit(cwd: Path, name: str, text: str) -> str:
    (cwd / name).write_text(text)
    git(cwd, "add", name)
    git(cwd, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", f"add {name}")
    return git(cwd, "rev-parse", "HEAD")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME (no user git config) and a ceiling so git never finds a repo above it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def repo(home: Path) -> Path:
    """``<tmp>/src/app``: a repository on ``main`` with one commit (README)."""
    app = home / "src" / "app"
    app.mkdir(parents=True)
    git(app, "init", "-q", "-b", "main")
    commit(app, "README", "hello\n")
    return app


def test_new_branch_starts_from_head_beside_the_repo(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    res = run(add_worktree(str(repo), "feat/x"))
    wt = repo.parent / "app.worktrees" / "feat-x"
    assert res.ok, res.detail
    assert res.path == str(wt) and res.branch == "feat/x"
    assert res.detail == f"Made the worktree {wt} on the new branch feat/x, started from the current commit of {repo}."
    assert (wt / "README").read_text() == "hello\n"
    assert git(wt, "branch", "--show-current") == "feat/x"
    assert git(wt, "rev-parse", "HEAD") == head
    assert git(repo, "branch", "--show-current") == "main"  # the main checkout is untouched


def test_existing_branch_is_checked_out(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "old")
    commit(repo, "OLD", "old work\n")
    git(repo, "switch", "-q", "main")
    res = run(add_worktree(str(repo), "old"))
    wt = repo.parent / "app.worktrees" / "old"
    assert res.ok, res.detail
    assert res.detail == f"Made the worktree {wt} on the existing branch old."
    assert (wt / "OLD").read_text() == "old work\n"
    assert git(wt, "branch", "--show-current") == "old"


def test_root_setting_and_adding_from_inside_a_worktree(repo: Path, home: Path) -> None:
    first = run(add_worktree(str(repo), "feat/a", root_setting="~/wt"))
    assert first.ok, first.detail
    assert first.path == str(home / "wt" / "app" / "feat-a")
    tip = commit(Path(first.path), "A", "a\n")
    # From inside the linked worktree: named after the main repo (no nesting), branched from here.
    second = run(add_worktree(first.path, "feat/b"))
    assert second.ok, second.detail
    assert second.path == str(repo.parent / "app.worktrees" / "feat-b")
    assert git(Path(second.path), "rev-parse", "HEAD") == tip


def test_refused_outside_a_repository(home: Path) -> None:
    plain = home / "plain"
    plain.mkdir()
    res = run(add_worktree(str(plain), "feat/x"))
    assert not res.ok
    assert res.detail == (f"{plain} is not inside a git repository, so no worktree can be made; "
                          f"drop --worktree or pick a folder in a repository.")
    assert run(find_repo(str(plain))) is None
    assert not (home / "plain.worktrees").exists()


def test_refused_when_branch_is_checked_out_elsewhere(repo: Path) -> None:
    first = run(add_worktree(str(repo), "feat/x"))
    assert first.ok, first.detail
    again = run(add_worktree(str(repo), "feat/x", root_setting=str(repo.parent / "other")))
    assert not again.ok
    assert again.detail == (f"Branch feat/x is already checked out in {first.path}, and git allows a branch in one "
                            f"worktree only; open that folder instead, or pick another branch name.")
    assert not (repo.parent / "other").exists()
    main = run(add_worktree(str(repo), "main"))
    assert not main.ok and f"already checked out in {repo}," in main.detail


def test_refused_when_path_exists(repo: Path) -> None:
    target = repo.parent / "app.worktrees" / "feat-y"
    target.mkdir(parents=True)
    (target / "mine.txt").write_text("keep me")
    res = run(add_worktree(str(repo), "feat/y"))
    assert not res.ok
    assert res.detail == (f"{target} already exists, so no worktree was made there; "
                          f"move or delete it, or pick another branch name.")
    assert os.listdir(target) == ["mine.txt"]
    assert git(repo, "branch", "--list", "feat/y") == ""  # no branch was created either


def test_refused_bad_branch_name_and_missing_git(repo: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = run(add_worktree(str(repo), "feat x"))
    assert not bad.ok and "'feat x'" in bad.detail
    empty = home / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    res = run(add_worktree(str(repo), "feat/z"))
    assert not res.ok and res.detail == NO_GIT
    assert not run(worktree_status(str(repo))).in_repo
    assert run(find_repo(str(repo))) is None


def test_status_main_versus_linked(repo: Path) -> None:
    made = run(add_worktree(str(repo), "feat/s"))
    assert made.ok, made.detail
    main = run(worktree_status(str(repo)))
    assert main.in_repo and not main.linked and main.branch == "main" and not main.dirty
    assert main.repo_root == str(repo)
    linked = run(worktree_status(made.path))
    assert linked.in_repo and linked.linked and linked.branch == "feat/s"
    assert linked.repo_root == str(repo) and linked.top == made.path
    assert linked.detail == (f"{made.path} is a linked worktree of {repo}, on branch feat/s, "
                             f"with no uncommitted changes.")
    (Path(made.path) / "new.txt").write_text("x")
    dirty = run(worktree_status(made.path))
    assert dirty.dirty and dirty.changes == 1
    assert run(find_repo(made.path)) == made.path


def test_remove_refuses_dirty_then_removes_clean(repo: Path) -> None:
    made = run(add_worktree(str(repo), "feat/r"))
    assert made.ok, made.detail
    wt = Path(made.path)
    (wt / "untracked.txt").write_text("unsaved idea")
    refused = run(remove_worktree(made.path))
    assert not refused.ok
    assert refused.detail == f"{wt} has uncommitted changes; commit or stash them first — nothing was removed."
    assert (wt / "untracked.txt").read_text() == "unsaved idea"
    (wt / "untracked.txt").unlink()
    (wt / "README").write_text("edited\n")  # a tracked change counts too
    assert not run(remove_worktree(made.path)).ok
    git(wt, "checkout", "--", "README")
    done = run(remove_worktree(made.path))
    assert done.ok, done.detail
    assert done.detail == f"Removed the worktree {wt}; branch feat/r is kept."
    assert not wt.exists()
    assert str(wt) not in git(repo, "worktree", "list")
    assert git(repo, "branch", "--list", "feat/r").strip() == "feat/r"


def test_remove_refuses_the_main_worktree(repo: Path) -> None:
    res = run(remove_worktree(str(repo)))
    assert not res.ok
    assert "is the main worktree" in res.detail and "nothing was removed" in res.detail
    assert (repo / "README").exists()
