"""Worktree paths, ``git worktree list --porcelain`` parsing and the add decision (pure)."""

from __future__ import annotations

import pytest

from deck_tray.core.worktree import (
    Refusal,
    WorktreeInfo,
    WorktreePlan,
    branch_problem,
    default_worktree_path,
    parse_worktree_list,
    plan_add,
    worktree_path,
)

# Captured from git 2.39.5: a repo on main with a worktree on feat/x, a detached one, a locked
# one ("git worktree lock --reason 'on usb'") and one whose folder was deleted (prunable).
PORCELAIN = """\
worktree /tmp/wtcap/repo
HEAD 5db7578da796d4448673e83227bf53779e4e1570
branch refs/heads/main

worktree /tmp/wtcap/det
HEAD 5db7578da796d4448673e83227bf53779e4e1570
detached

worktree /tmp/wtcap/gone
HEAD 5db7578da796d4448673e83227bf53779e4e1570
branch refs/heads/gn
prunable gitdir file points to non-existent location

worktree /tmp/wtcap/locked
HEAD 5db7578da796d4448673e83227bf53779e4e1570
branch refs/heads/lk
locked on usb

worktree /tmp/wtcap/repo.worktrees/feat-x
HEAD 5db7578da796d4448673e83227bf53779e4e1570
branch refs/heads/feat/x

"""

# Captured from git 2.39.5 in a bare repository (git init --bare).
BARE = "worktree /tmp/wtcap/b.git\nbare\n\n"

HEAD = "5db7578da796d4448673e83227bf53779e4e1570"


def test_default_path_is_beside_the_repository() -> None:
    assert default_worktree_path("/home/u/src/app", "feat/x") == "/home/u/src/app.worktrees/feat-x"
    assert default_worktree_path("/home/u/src/app/", "main") == "/home/u/src/app.worktrees/main"


def test_root_setting_puts_worktrees_under_repo_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    assert worktree_path("/home/u/src/app", "feat/x/y", "/srv/wt") == "/srv/wt/app/feat-x-y"
    assert worktree_path("/home/u/src/app", "feat/x", "~/worktrees") == "/home/u/worktrees/app/feat-x"
    assert worktree_path("/home/u/src/app", "feat/x", "wt") == "/home/u/src/wt/app/feat-x"
    assert worktree_path("/home/u/src/app", "feat/x", "  ") == "/home/u/src/app.worktrees/feat-x"


@pytest.mark.parametrize("bad", ["", "-x", "a b", "a\tb", "a\x01b", "a..b", "x.lock", ".x", "a//b", "x/",
                                 "x.", "HEAD", "@", "a@{1}", "a~1", "a:b", "a\\b", "../../etc"])
def test_bad_branch_names_are_refused(bad: str) -> None:
    assert branch_problem(bad) is not None
    with pytest.raises(ValueError):
        default_worktree_path("/r/app", bad)
    plan = plan_add("/r/app", bad, "/r/app.worktrees/x", [], branch_exists=False, path_exists=False)
    assert isinstance(plan, Refusal)


@pytest.mark.parametrize("good", ["main", "feat/x", "fix-12", "release/1.2", "é", "user@host"])
def test_good_branch_names_pass(good: str) -> None:
    assert branch_problem(good) is None


def test_parse_captured_porcelain() -> None:
    wts = parse_worktree_list(PORCELAIN)
    assert [w.path for w in wts] == ["/tmp/wtcap/repo", "/tmp/wtcap/det", "/tmp/wtcap/gone", "/tmp/wtcap/locked",
                                     "/tmp/wtcap/repo.worktrees/feat-x"]
    main, det, gone, locked, feat = wts
    assert main == WorktreeInfo(path="/tmp/wtcap/repo", head=HEAD, branch="main")
    assert det.detached and det.branch == "" and det.head == HEAD
    assert gone.prunable and gone.branch == "gn"
    assert gone.prunable_reason == "gitdir file points to non-existent location"
    assert locked.locked and locked.locked_reason == "on usb" and not locked.prunable
    assert feat.branch == "feat/x" and not (feat.detached or feat.locked or feat.prunable or feat.bare)


def test_parse_nul_separated_and_bare() -> None:
    z = PORCELAIN.replace("\n", "\0")
    assert parse_worktree_list(z) == parse_worktree_list(PORCELAIN)
    (bare,) = parse_worktree_list(BARE)
    assert bare.bare and bare.branch == "" and bare.head == ""
    assert parse_worktree_list("") == []


def test_path_with_spaces_survives() -> None:
    (wt,) = parse_worktree_list(f"worktree /tmp/my repo\nHEAD {HEAD}\nbranch refs/heads/a\n")
    assert wt.path == "/tmp/my repo"


def test_plan_new_branch_from_head() -> None:
    plan = plan_add("/r/app", "feat/new", "/r/app.worktrees/feat-new", parse_worktree_list(PORCELAIN),
                    branch_exists=False, path_exists=False)
    assert plan == WorktreePlan(
        argv=("git", "-C", "/r/app", "worktree", "add", "-b", "feat/new", "/r/app.worktrees/feat-new", "HEAD"),
        repo_root="/r/app", path="/r/app.worktrees/feat-new", branch="feat/new", new_branch=True)


def test_plan_existing_branch() -> None:
    plan = plan_add("/r/app", "old", "/r/app.worktrees/old", [], branch_exists=True, path_exists=False)
    assert isinstance(plan, WorktreePlan)
    assert plan.argv == ("git", "-C", "/r/app", "worktree", "add", "/r/app.worktrees/old", "old")
    assert not plan.new_branch


def test_refuses_branch_checked_out_elsewhere() -> None:
    plan = plan_add("/tmp/wtcap/repo", "feat/x", "/elsewhere/feat-x", parse_worktree_list(PORCELAIN),
                    branch_exists=True, path_exists=False)
    assert isinstance(plan, Refusal)
    assert "already checked out in /tmp/wtcap/repo.worktrees/feat-x" in plan.message
    main = plan_add("/tmp/wtcap/repo", "main", "/x/main", parse_worktree_list(PORCELAIN),
                    branch_exists=True, path_exists=False)
    assert isinstance(main, Refusal) and "already checked out in /tmp/wtcap/repo," in main.message


def test_refuses_branch_held_by_a_vanished_worktree_with_prune_advice() -> None:
    plan = plan_add("/tmp/wtcap/repo", "gn", "/x/gn", parse_worktree_list(PORCELAIN),
                    branch_exists=True, path_exists=False)
    assert isinstance(plan, Refusal)
    assert "/tmp/wtcap/gone" in plan.message and "worktree prune" in plan.message


def test_refuses_existing_path() -> None:
    plan = plan_add("/r/app", "b", "/r/app.worktrees/b", [], branch_exists=False, path_exists=True)
    assert plan == Refusal("/r/app.worktrees/b already exists, so no worktree was made there; "
                           "move or delete it, or pick another branch name.")


def test_refuses_path_registered_as_worktree_even_if_missing() -> None:
    plan = plan_add("/tmp/wtcap/repo", "other", "/tmp/wtcap/gone/", parse_worktree_list(PORCELAIN),
                    branch_exists=False, path_exists=False)
    assert isinstance(plan, Refusal) and "already registered as a worktree" in plan.message


def test_refuses_new_branch_without_any_commit() -> None:
    plan = plan_add("/r/app", "b", "/r/app.worktrees/b", [], branch_exists=False, path_exists=False,
                    head_exists=False)
    assert isinstance(plan, Refusal) and "has no commits yet" in plan.message
