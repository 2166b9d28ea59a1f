"""Git worktrees for ``deck-tray new --worktree BRANCH``: query, decide, execute, verify.

State-first (DESIGN.md §7): git is the source of truth. :func:`add_worktree` asks git where the
repository is, which worktrees it has and whether the branch exists, lets
:func:`deck_tray.core.worktree.plan_add` decide, runs the plan, and then checks with git that
the folder really is a worktree on that branch. :func:`remove_worktree` refuses to lose work:
uncommitted changes (untracked files included), the main worktree and locked worktrees are
left alone, and git runs without ``--force``.

git runs through ``asyncio.create_subprocess_exec`` with argv lists (never a shell), stdin
closed, ``GIT_TERMINAL_PROMPT=0`` (a credential prompt fails instead of hanging),
``LC_ALL=C.UTF-8`` (untranslated messages) and a timeout; variables that would point git at
another repository (``GIT_DIR``, ``GIT_WORK_TREE``…) are dropped. Nothing here raises for a
git failure: every public function returns a result whose ``detail`` is a sentence for the
user. No Qt is needed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from deck_tray.core.worktree import (
    Refusal,
    WorktreeInfo,
    branch_problem,
    parse_worktree_list,
    plan_add,
    worktree_path,
)

log = logging.getLogger(__name__)

#: Seconds a quick git query (rev-parse, worktree list, status, show-ref) may take.
GIT_TIMEOUT = 30.0
#: Seconds ``git worktree add`` / ``remove`` may take (they write or delete a whole checkout).
CHECKOUT_TIMEOUT = 120.0

# Inherited variables that would make git use another repository than the one asked about.
_REPO_VARS = frozenset({
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX",
})

NO_GIT = "git is not installed (it was not found on PATH); install git and try again."


@dataclass(frozen=True)
class WorktreeResult:
    """What :func:`add_worktree` or :func:`remove_worktree` did.

    Attributes:
        ok: the worktree was made (or removed) and git confirmed it.
        path: the worktree folder (absolute) it was about; when no repository was found, the
            folder that was asked about.
        branch: the branch of that worktree (``""`` when unknown or detached).
        detail: one or two sentences for the user: what was done, or what happened and what
            to do.
    """

    ok: bool
    path: str
    branch: str
    detail: str


@dataclass(frozen=True)
class WorktreeState:
    """What git says about a folder (:func:`worktree_status`).

    Attributes:
        path: the folder asked about (absolute).
        in_repo: the folder is inside a git working tree; when False, only ``path`` and
            ``detail`` mean anything.
        top: the top folder of the worktree that holds ``path`` (``git rev-parse --show-toplevel``).
        linked: that worktree is a linked one (made by ``git worktree add``), not the main one.
        repo_root: the repository's main worktree folder (the first entry of
            ``git worktree list``; for a bare repository, the repository folder).
        branch: the branch checked out there (``""`` when detached).
        dirty: there are uncommitted changes, untracked files included (ignored files are not).
        changes: how many entries ``git status --porcelain`` lists.
        locked: the worktree is locked (``git worktree lock``).
        detail: a sentence describing the above, or why the folder is not in a repository.
    """

    path: str
    in_repo: bool
    top: str = ""
    linked: bool = False
    repo_root: str = ""
    branch: str = ""
    dirty: bool = False
    changes: int = 0
    locked: bool = False
    detail: str = ""


class _GitUnusable(Exception):
    """git could not be run to the end (missing, not executable, timed out); ``str()`` says so."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    # git's messages in English: they are matched here and quoted inside English sentences.
    env["LC_ALL"] = "C.UTF-8"
    env.pop("LANGUAGE", None)
    return env


async def _git(*args: str, timeout: float = GIT_TIMEOUT) -> tuple[int, str, str]:
    """Run ``git ARGS`` and wait for it.

    Returns:
        ``(returncode, stdout, stderr)``, the outputs decoded as UTF-8 (bad bytes replaced).

    Raises:
        _GitUnusable: git is not on PATH or cannot be started, or it ran longer than ``timeout``
            seconds (then it is killed).
    """
    argv = ("git", *args)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=_env(),
        )
    except FileNotFoundError:
        raise _GitUnusable(NO_GIT) from None
    except OSError as exc:
        raise _GitUnusable(f"git could not be started ({exc}); check your git installation and try again.") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        raise _GitUnusable(f"git {_subcommand(args)} took longer than {timeout:g} s and was stopped; "
                           f"try again, or run it in a terminal to see what it waits for.") from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: do not leave git running
            proc.kill()
            await proc.wait()
    rc = proc.returncode if proc.returncode is not None else -1
    log.debug("git %s -> %d", " ".join(args), rc)
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _subcommand(args: tuple[str, ...]) -> str:
    """The git subcommand in ``args`` (``worktree``), skipping ``-C DIR`` / ``-c NAME=VALUE``."""
    rest = list(args)
    while rest and rest[0] in ("-C", "-c"):
        rest = rest[2:]
    return rest[0] if rest else ""


def _git_text(err: str, out: str = "") -> str:
    """The message of git itself, on one line, without the ``fatal:``/``error:`` labels."""
    lines = [ln.strip() for ln in (err or out).splitlines() if ln.strip()]
    cleaned = [ln.split(":", 1)[1].strip() if ln.split(":", 1)[0] in ("fatal", "error") else ln for ln in lines]
    return " ".join(cleaned) or "git gave no reason"


def _other_failure(folder: str, git_err: str) -> str | None:
    """The reason git gave when it failed on ``folder`` for another reason than "not a git repository", else None."""
    if "not a git repository" in git_err.lower():
        return None
    return f"git could not read {folder}: {_git_text(git_err)}"


async def _toplevel(folder: str) -> tuple[str | None, str]:
    """``(top folder, "")``, or ``(None, git's error text)`` when ``folder`` is in no work tree.

    Raises:
        _GitUnusable: git could not be run.
    """
    rc, out, err = await _git("-C", folder, "rev-parse", "--show-toplevel")
    top = out.strip()
    if rc != 0 or not top:
        return None, err
    return top, ""


async def _worktrees(top: str) -> list[WorktreeInfo] | str:
    """The repository's worktrees, or git's error text.

    Raises:
        _GitUnusable: git could not be run.
    """
    rc, out, err = await _git("-C", top, "worktree", "list", "--porcelain")
    if rc != 0:
        return _git_text(err)
    return parse_worktree_list(out)


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _entry(worktrees: list[WorktreeInfo], path: str) -> WorktreeInfo | None:
    return next((wt for wt in worktrees if _same(wt.path, path)), None)


async def find_repo(folder: str) -> str | None:
    """The top folder of the git working tree that holds ``folder``.

    Runs ``git -C FOLDER rev-parse --show-toplevel``.

    Args:
        folder: any folder (absolute or relative to the current directory).

    Returns:
        The absolute top folder (for a folder in a linked worktree, that worktree's top), or None
        when ``folder`` is not inside a work tree, does not exist, or git is missing or failed.
    """
    try:
        top, _ = await _toplevel(folder)
    except _GitUnusable as exc:
        log.info("find_repo(%s): %s", folder, exc)
        return None
    return top


async def add_worktree(folder: str, branch: str, root_setting: str = "",
                       timeout: float = CHECKOUT_TIMEOUT) -> WorktreeResult:
    """Make a new worktree for ``branch`` of the repository that holds ``folder``.

    Query: the work tree holding ``folder`` (``rev-parse --show-toplevel``), the repository's
    worktrees (``worktree list --porcelain``), whether ``refs/heads/BRANCH`` exists
    (``show-ref --verify --quiet``), whether HEAD has a commit, and whether git accepts the name
    (``check-ref-format --branch``). Decide: :func:`deck_tray.core.worktree.plan_add`, the
    folder from :func:`deck_tray.core.worktree.worktree_path` (named after the main worktree,
    so worktrees made from inside a worktree do not nest). Execute: ``git worktree add`` (a new
    branch starts at the HEAD of the work tree ``folder`` is in). Verify: git lists the folder
    as a worktree on ``branch`` and it exists.

    Args:
        folder: a folder inside the repository (the agent's working directory).
        branch: the branch to check out; created from HEAD when it does not exist locally.
        root_setting: the worktree root setting (``""``: beside the repository; see
            :func:`deck_tray.core.worktree.worktree_path`).
        timeout: seconds ``git worktree add`` may take; quick queries get :data:`GIT_TIMEOUT`.

    Returns:
        ``ok`` with the new folder and branch, or a refusal whose ``detail`` says why and what to
        do (not a repository, git missing, invalid branch name, branch checked out elsewhere,
        folder exists, or git's own error text). Never raises for a git failure.
    """
    folder = os.path.abspath(os.path.expanduser(folder))

    def refuse(detail: str, path: str = folder) -> WorktreeResult:
        log.info("worktree for %s in %s refused: %s", branch, folder, detail)
        return WorktreeResult(ok=False, path=path, branch=branch, detail=detail)

    if not os.path.isdir(folder):
        return refuse(f"{folder} is not an existing folder, so no worktree can be made; "
                      f"pick a folder in a git repository.")
    problem = branch_problem(branch)
    if problem is not None:
        return refuse(problem)
    try:
        top, err = await _toplevel(folder)
        if top is None:
            return refuse(_other_failure(folder, err) or
                          f"{folder} is not inside a git repository, so no worktree can be made; "
                          f"drop --worktree or pick a folder in a repository.")
        rc, _, _ = await _git("-C", top, "check-ref-format", "--branch", branch)
        if rc != 0:
            return refuse(f"git does not accept {branch!r} as a branch name; pick a name like feat/login-page.")
        listed = await _worktrees(top)
        if isinstance(listed, str):
            return refuse(f"git could not list the worktrees of {top}: {listed}")
        repo_root = listed[0].path if listed else top
        rc, _, err = await _git("-C", top, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")
        if rc not in (0, 1):
            return refuse(f"git could not look up branch {branch} in {top}: {_git_text(err)}")
        branch_exists = rc == 0
        head_rc, _, _ = await _git("-C", top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        path = worktree_path(repo_root, branch, root_setting)
        plan = plan_add(top, branch, path, listed, branch_exists=branch_exists,
                        path_exists=os.path.lexists(path), head_exists=head_rc == 0)
        if isinstance(plan, Refusal):
            return refuse(plan.message, path)
        log.info("making worktree %s on %s branch %s", path, "new" if plan.new_branch else "existing", branch)
        rc, out, err = await _git(*plan.argv[1:], timeout=timeout)
        if rc != 0:
            return refuse(f"git could not make the worktree {path}: {_git_text(err, out)}", path)
        after = await _worktrees(top)
    except _GitUnusable as exc:
        return refuse(str(exc))
    made = _entry(after, path) if not isinstance(after, str) else None
    if made is None or made.branch != branch or not os.path.isdir(path):
        return refuse(f"git reported success, but {path} is not a worktree on branch {branch}; "
                      f"check it with `git -C {top} worktree list`.", path)
    if plan.new_branch:
        detail = f"Made the worktree {path} on the new branch {branch}, started from the current commit of {top}."
    else:
        detail = f"Made the worktree {path} on the existing branch {branch}."
    return WorktreeResult(ok=True, path=path, branch=branch, detail=detail)


async def worktree_status(path: str) -> WorktreeState:
    """Whether ``path`` is in a linked worktree, of which repository, on which branch, and dirty.

    Runs ``git rev-parse --show-toplevel``, ``git worktree list --porcelain`` and
    ``git status --porcelain --untracked-files=normal``.

    Args:
        path: a folder (normally a worktree's top folder).

    Returns:
        The :class:`WorktreeState`; ``in_repo`` is False (and ``detail`` says why) when the folder
        does not exist, is in no repository, or git is missing or failed. Never raises for a
        git failure.
    """
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        return WorktreeState(path=path, in_repo=False, detail=f"{path} is not an existing folder.")
    try:
        top, err = await _toplevel(path)
        if top is None:
            return WorktreeState(path=path, in_repo=False,
                                 detail=_other_failure(path, err) or f"{path} is not inside a git repository.")
        listed = await _worktrees(top)
        if isinstance(listed, str):
            return WorktreeState(path=path, in_repo=False,
                                 detail=f"git could not list the worktrees of {top}: {listed}")
        rc, out, err = await _git("-C", top, "status", "--porcelain", "--untracked-files=normal")
        if rc != 0:
            return WorktreeState(path=path, in_repo=False, detail=f"git could not read {top}: {_git_text(err)}")
    except _GitUnusable as exc:
        return WorktreeState(path=path, in_repo=False, detail=str(exc))
    repo_root = listed[0].path if listed else top
    this = _entry(listed, top)
    linked = not _same(top, repo_root)
    branch = this.branch if this is not None else ""
    changes = sum(1 for ln in out.splitlines() if ln.strip())
    kind = f"a linked worktree of {repo_root}" if linked else "the main worktree of its repository"
    on = f"on branch {branch}" if branch else "with a detached HEAD"
    dirt = f"{changes} uncommitted change{'s' if changes != 1 else ''}" if changes else "no uncommitted changes"
    return WorktreeState(
        path=path, in_repo=True, top=top, linked=linked, repo_root=repo_root, branch=branch,
        dirty=changes > 0, changes=changes, locked=this.locked if this is not None else False,
        detail=f"{top} is {kind}, {on}, with {dirt}.",
    )


async def remove_worktree(path: str, timeout: float = CHECKOUT_TIMEOUT) -> WorktreeResult:
    """Remove the linked worktree at ``path``; its branch is kept.

    Refuses (removing nothing) when ``path`` is not a worktree's top folder, is the main
    worktree, is locked, or has uncommitted changes (untracked files included). Otherwise runs
    ``git -C MAIN worktree remove PATH`` (no ``--force``, so git's own checks apply too) and
    verifies that the folder is gone and git no longer lists it.

    Args:
        path: the worktree's top folder.
        timeout: seconds ``git worktree remove`` may take; quick queries get :data:`GIT_TIMEOUT`.

    Returns:
        ``ok`` when git removed it and the folder is gone, else a refusal whose ``detail`` says
        why and what to do. Never raises for a git failure.
    """
    path = os.path.abspath(os.path.expanduser(path))
    state = await worktree_status(path)

    def refuse(detail: str) -> WorktreeResult:
        log.info("removing worktree %s refused: %s", path, detail)
        return WorktreeResult(ok=False, path=path, branch=state.branch, detail=detail)

    if not state.in_repo:
        return refuse(f"{state.detail} Nothing was removed.")
    if not _same(path, state.top):
        return refuse(f"{path} is inside the worktree {state.top}, not its top folder; "
                      f"pass {state.top} to remove that worktree — nothing was removed.")
    if not state.linked:
        return refuse(f"{path} is the main worktree of its repository (it holds the repository itself), "
                      f"and only linked worktrees can be removed — nothing was removed.")
    if state.locked:
        return refuse(f"{path} is locked; unlock it with `git -C {state.repo_root} worktree unlock {path}` "
                      f"first — nothing was removed.")
    if state.dirty:
        return refuse(f"{path} has uncommitted changes; commit or stash them first — nothing was removed.")
    try:
        rc, out, err = await _git("-C", state.repo_root, "worktree", "remove", state.top, timeout=timeout)
        if rc != 0:
            return refuse(f"git could not remove the worktree {path}: {_git_text(err, out)}")
        after = await _worktrees(state.repo_root)
    except _GitUnusable as exc:
        return refuse(str(exc))
    if os.path.lexists(path) or isinstance(after, str) or _entry(after, path) is not None:
        return refuse(f"git reported success, but {path} is still there or still listed; "
                      f"check it with `git -C {state.repo_root} worktree list`.")
    kept = f"; branch {state.branch} is kept" if state.branch else ""
    return WorktreeResult(ok=True, path=path, branch=state.branch, detail=f"Removed the worktree {path}{kept}.")
