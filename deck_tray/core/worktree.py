"""Git worktrees for ``deck-tray new --worktree BRANCH``: the pure *decide* step.

The service (:mod:`deck_tray.services.worktree`) queries git (the source of truth), hands the
facts to :func:`plan_add`, runs the argv it returns, then verifies the result (state-first,
DESIGN.md §7). Nothing here runs git or touches the file system.

Where a new worktree goes:

* Default: beside the repository, ``<parent of repo>/<repo name>.worktrees/<branch>`` with each
  ``/`` of the branch replaced by ``-`` (repo ``/home/u/src/app``, branch ``feat/x`` →
  ``/home/u/src/app.worktrees/feat-x``).
* With a worktree root setting (a folder; ``~`` allowed): ``<root>/<repo name>/<branch>``, the
  branch sanitized the same way. A relative root is taken relative to the repository's parent
  folder (never to the process's working directory, which a tray app does not choose).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Ref prefix git puts before local branch names in ``git worktree list --porcelain``.
HEADS = "refs/heads/"

# Characters git never allows in a ref name (git-check-ref-format(1), rules 4 and 5).
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


@dataclass(frozen=True)
class WorktreeInfo:
    """One worktree as ``git worktree list --porcelain`` reports it.

    Attributes:
        path: absolute folder of the worktree, as git stored it (not resolved through symlinks).
        head: commit id (40 or 64 hex digits) checked out there; ``""`` for a bare repository.
        branch: local branch checked out there, ``refs/heads/`` stripped (``feat/x``); ``""`` when
            detached or bare.
        bare: the entry is a bare repository (then it has no files checked out).
        detached: HEAD is detached (no branch).
        locked: ``git worktree lock`` was used on it; ``locked_reason`` is the reason given, if any.
        prunable: git would prune it (usually: its folder is gone); ``prunable_reason`` is git's
            explanation.
    """

    path: str
    head: str = ""
    branch: str = ""
    bare: bool = False
    detached: bool = False
    locked: bool = False
    prunable: bool = False
    locked_reason: str = ""
    prunable_reason: str = ""


@dataclass(frozen=True)
class WorktreePlan:
    """The decision to make a worktree.

    Attributes:
        argv: the git command to run, ``("git", "-C", repo_root, "worktree", "add", ...)``.
        repo_root: the repository the worktree belongs to (its main worktree folder).
        path: the folder the new worktree will be.
        branch: the branch it will have checked out.
        new_branch: True when the branch is created from the repository's current HEAD
            (``worktree add -b BRANCH PATH HEAD``); False when an existing branch is checked out.
    """

    argv: tuple[str, ...]
    repo_root: str
    path: str
    branch: str
    new_branch: bool


@dataclass(frozen=True)
class Refusal:
    """Why nothing was done, as one or two plain sentences for the user.

    Attributes:
        message: what happened and what to do about it.
    """

    message: str


def branch_problem(branch: str) -> str | None:
    r"""Why ``branch`` is not a usable branch name, or None when it is.

    Follows git-check-ref-format(1) for ``--branch`` names: non-empty; no leading ``-``; no
    whitespace, control characters or any of ``~ ^ : ? * [ \``; no ``..`` or ``@{``; not ``@``
    or ``HEAD``; no component that starts with ``.`` or ends with ``.lock``; no empty component
    (``//``, leading or trailing ``/``); no trailing ``.``. The service also asks git itself
    (``git check-ref-format --branch``), which has the final word.

    Args:
        branch: the name the user typed, e.g. ``feat/x``.

    Returns:
        A sentence naming the problem and what to do, or None.
    """
    shown = repr(branch)
    fix = "pick a name like feat/login-page"
    if not branch:
        return f"No branch name was given; {fix}."
    if branch.startswith("-"):
        return f"The branch name {shown} starts with '-', which git would read as an option; {fix}."
    if _BAD_REF_CHARS.search(branch):
        return (f"The branch name {shown} contains a space, a control character or one of ~ ^ : ? * [ \\, "
                f"which git does not allow; {fix}.")
    if ".." in branch:
        return f"The branch name {shown} contains '..', which git does not allow; {fix}."
    if "@{" in branch or branch in ("@", "HEAD"):
        return f"{shown} is not a branch name git allows; {fix}."
    if branch.endswith("."):
        return f"The branch name {shown} ends with '.', which git does not allow; {fix}."
    for part in branch.split("/"):
        if not part:
            return f"The branch name {shown} has an empty part between slashes; {fix}."
        if part.startswith(".") or part.endswith(".lock"):
            return (f"The branch name {shown} has a part that starts with '.' or ends with '.lock', "
                    f"which git does not allow; {fix}.")
    return None


def sanitized_branch(branch: str) -> str:
    """The folder name for a branch's worktree: each ``/`` replaced by ``-`` (``feat/x`` → ``feat-x``).

    Raises:
        ValueError: ``branch`` is not a valid branch name (see :func:`branch_problem`); a bad name
            could otherwise name a folder outside the worktree root (``..``).
    """
    problem = branch_problem(branch)
    if problem is not None:
        raise ValueError(problem)
    return branch.replace("/", "-")


def _repo_name(repo_root: str) -> str:
    return os.path.basename(os.path.normpath(repo_root))


def default_worktree_path(repo_root: str, branch: str) -> str:
    """The default folder for ``branch``'s worktree: ``<parent>/<repo name>.worktrees/<branch>``.

    Args:
        repo_root: absolute folder of the repository's main worktree (``/home/u/src/app``).
        branch: a valid branch name (``feat/x``).

    Returns:
        An absolute, normalized path (``/home/u/src/app.worktrees/feat-x``).

    Raises:
        ValueError: ``branch`` is not a valid branch name.
    """
    root = os.path.normpath(repo_root)
    parent = os.path.dirname(root)
    return os.path.join(parent, f"{_repo_name(root)}.worktrees", sanitized_branch(branch))


def worktree_path(repo_root: str, branch: str, root_setting: str) -> str:
    """The folder for ``branch``'s worktree, honouring the user's worktree root setting.

    Args:
        repo_root: absolute folder of the repository's main worktree.
        branch: a valid branch name.
        root_setting: a folder where all worktrees go (``~`` expanded against ``$HOME``; a relative
            one is taken relative to the repository's parent folder), or ``""``/blank for the
            default of :func:`default_worktree_path`.

    Returns:
        ``<root_setting>/<repo name>/<sanitized branch>`` (absolute, normalized), or the default.

    Raises:
        ValueError: ``branch`` is not a valid branch name.
    """
    setting = root_setting.strip()
    if not setting:
        return default_worktree_path(repo_root, branch)
    root = os.path.normpath(repo_root)
    base = os.path.join(os.path.dirname(root), os.path.expanduser(setting))
    return os.path.normpath(os.path.join(base, _repo_name(root), sanitized_branch(branch)))


def parse_worktree_list(porcelain: str) -> list[WorktreeInfo]:
    """Parse the output of ``git worktree list --porcelain`` (optionally with ``-z``).

    Format (git-worktree(1), "Porcelain Format"): one record per worktree, records separated by
    an empty line; each line is an attribute, ``label value`` or a bare ``label``::

        worktree /path/to/repo
        HEAD 5db7578da796d4448673e83227bf53779e4e1570
        branch refs/heads/main

        worktree /path/to/other
        HEAD 5db7578da796d4448673e83227bf53779e4e1570
        detached
        locked reason text
        prunable gitdir file points to non-existent location

    A bare repository's record has ``bare`` instead of ``HEAD``/``branch``. With ``-z`` lines end
    in NUL instead of a newline (and records in two NULs); both forms are accepted. The main
    worktree is always the first record. Unknown labels are ignored (newer git may add some);
    lines before the first ``worktree`` line are ignored.

    Args:
        porcelain: the command's stdout, decoded.

    Returns:
        One :class:`WorktreeInfo` per record, in git's order.
    """
    sep = "\0" if "\0" in porcelain else "\n"
    out: list[WorktreeInfo] = []
    fields: dict[str, str] | None = None

    def flush() -> None:
        if fields is None:
            return
        branch = fields.get("branch", "")
        out.append(WorktreeInfo(
            path=fields["worktree"],
            head=fields.get("HEAD", ""),
            branch=branch[len(HEADS):] if branch.startswith(HEADS) else branch,
            bare="bare" in fields,
            detached="detached" in fields,
            locked="locked" in fields,
            prunable="prunable" in fields,
            locked_reason=fields.get("locked", ""),
            prunable_reason=fields.get("prunable", ""),
        ))

    for line in porcelain.split(sep):
        line = line.removesuffix("\r")
        if not line:
            continue
        label, _, value = line.partition(" ")
        if label == "worktree":
            flush()
            fields = {"worktree": value}
        elif fields is not None:
            fields[label] = value
    flush()
    return out


def _same_path(a: str, b: str) -> bool:
    return os.path.normpath(a) == os.path.normpath(b)


def plan_add(repo_root: str, branch: str, path: str, worktrees: Sequence[WorktreeInfo],
             branch_exists: bool, path_exists: bool, head_exists: bool = True) -> WorktreePlan | Refusal:
    """Decide how to make a worktree for ``branch`` at ``path``, or refuse.

    Refuses, in this order: an invalid branch name; the branch already checked out in any
    worktree of the repository, the main one included (git allows a branch in one worktree only;
    the message names that folder, and says to prune when that folder is gone); ``path`` already
    registered as a worktree; ``path`` already existing on disk; a new branch asked for in a
    repository without any commit (nothing to branch from). Otherwise the plan is
    ``git -C REPO worktree add PATH BRANCH`` for an existing local branch, or
    ``git -C REPO worktree add -b BRANCH PATH HEAD`` for a new one (from the repository's HEAD).

    Args:
        repo_root: absolute folder of the repository's main worktree.
        branch: the branch the user asked for (``feat/x``).
        path: absolute folder for the new worktree (see :func:`worktree_path`).
        worktrees: the repository's worktrees (:func:`parse_worktree_list`).
        branch_exists: ``refs/heads/BRANCH`` exists (``git show-ref --verify --quiet``).
        path_exists: something (file, folder or symlink) is at ``path`` already.
        head_exists: the repository's HEAD names a commit (``git rev-parse --verify HEAD``); False
            in a fresh repository before its first commit.

    Returns:
        The :class:`WorktreePlan` to run, or a :class:`Refusal` saying why not and what to do.
    """
    problem = branch_problem(branch)
    if problem is not None:
        return Refusal(problem)
    for wt in worktrees:
        if wt.branch == branch and not wt.bare:
            if wt.prunable:
                return Refusal(
                    f"Branch {branch} is still registered to the worktree {wt.path}, whose folder is gone; "
                    f"run `git -C {repo_root} worktree prune` and try again.")
            return Refusal(
                f"Branch {branch} is already checked out in {wt.path}, and git allows a branch in one "
                f"worktree only; open that folder instead, or pick another branch name.")
    for wt in worktrees:
        if _same_path(wt.path, path):
            return Refusal(
                f"{path} is already registered as a worktree of {repo_root}; remove it with "
                f"`git -C {repo_root} worktree remove {path}` (or `worktree prune` if its folder is gone), "
                f"or pick another branch name.")
    if path_exists:
        return Refusal(
            f"{path} already exists, so no worktree was made there; move or delete it, "
            f"or pick another branch name.")
    if not branch_exists and not head_exists:
        return Refusal(
            f"{repo_root} has no commits yet, so there is nothing to start branch {branch} from; "
            f"make a first commit there and try again.")
    argv: tuple[str, ...]
    if branch_exists:
        argv = ("git", "-C", repo_root, "worktree", "add", path, branch)
    else:
        argv = ("git", "-C", repo_root, "worktree", "add", "-b", branch, path, "HEAD")
    return WorktreePlan(argv=argv, repo_root=repo_root, path=path, branch=branch, new_branch=not branch_exists)


@dataclass(frozen=True)
class LinkedWorktree:
    """A folder inside a linked git worktree, as its ``.git`` file tells.

    Attributes:
        top: the worktree's top folder (where the ``.git`` file is).
        repo_root: the main worktree (the repository's own folder).
        name: the worktree's name in git (``<repo>/.git/worktrees/<name>``).
    """

    top: str
    repo_root: str
    name: str


def linked_worktree(folder: str, *, max_up: int = 12) -> LinkedWorktree | None:
    """The linked worktree ``folder`` is in, from the ``.git`` *file* of its top folder
    (``gitdir: <repo>/.git/worktrees/<name>``, as git 2.39 writes it), or None (a main worktree
    has a ``.git`` folder; no repository at all). Reads at most ``max_up`` small files; no git
    process, so the window can call it (cached) while it draws."""
    cur = os.path.abspath(folder) if folder else ""
    for _ in range(max_up):
        if not cur:
            return None
        dot = os.path.join(cur, ".git")
        if os.path.isdir(dot):
            return None
        if os.path.isfile(dot):
            try:
                with open(dot, encoding="utf-8", errors="replace") as fh:
                    head = fh.read(4096)
            except OSError:
                return None
            if not head.startswith("gitdir:"):
                return None
            gitdir = head[len("gitdir:"):].strip().splitlines()[0] if head[7:].strip() else ""
            gitdir = os.path.normpath(os.path.join(cur, gitdir))
            parts = gitdir.split(os.sep)
            if len(parts) >= 3 and parts[-2] == "worktrees" and parts[-3] == ".git":
                return LinkedWorktree(cur, os.sep.join(parts[:-3]) or os.sep, parts[-1])
            return None
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent
    return None
