"""Finding programs and reading their versions: one home for the runtime and ``deck-tray doctor``.

* :func:`which` — a program on the ``PATH`` of a given environment (``shutil.which``).
* :func:`find_agent` — an agent's executable (``claude``, ``codex``, ``opencode``): on ``PATH``,
  else in ``$DECK_TRAY_AGENTS_DIR/node_modules/.bin`` (an ``npm install --prefix DIR`` of the
  agents, as ``scripts/test.sh`` makes one; users normally have them on ``PATH``).
* :func:`parse_version` / :func:`version_text` — the first ``X.Y[.Z]`` of a ``--version`` line.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def which(name: str, env: Mapping[str, str]) -> str | None:
    """``name`` on ``env["PATH"]`` (``os.defpath`` when unset); None when not found."""
    return shutil.which(name, path=env.get("PATH", os.defpath))


def find_agent(binary: str, env: Mapping[str, str]) -> str | None:
    """``binary`` on PATH, else in ``$DECK_TRAY_AGENTS_DIR/node_modules/.bin``; None when absent."""
    found = which(binary, env)
    if found:
        return found
    agents_dir = env.get("DECK_TRAY_AGENTS_DIR", "")
    if agents_dir:
        p = Path(agents_dir) / "node_modules" / ".bin" / binary
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def parse_version(text: str) -> tuple[int, ...] | None:
    """The first ``X.Y[.Z]`` in ``text``: ``"tmux 3.3a"`` → ``(3, 3)``, ``"zellij 0.44.1"`` →
    ``(0, 44, 1)``; None when there is none."""
    m = _VERSION_RE.search(text)
    if m is None:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def version_text(v: Sequence[int]) -> str:
    """``(2, 1, 197)`` → ``"2.1.197"``."""
    return ".".join(str(p) for p in v)
