"""The layer rules of DESIGN.md §2 that import-linter cannot express."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "deck_tray"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


@pytest.mark.parametrize("path", sorted((PKG / "services").glob("*.py")), ids=lambda p: p.name)
def test_services_use_qtcore_only(path: Path) -> None:
    qt = {m for m in imported_modules(path) if m.startswith("PySide6.Qt")}
    bad = {m for m in qt if not m.startswith("PySide6.QtCore")}
    assert not bad, f"{path.name} imports {sorted(bad)}; services may use PySide6.QtCore only"


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_no_shell_true(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "shell":
            assert not (isinstance(node.value, ast.Constant) and node.value.value), f"shell=True in {path}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "system":
            raise AssertionError(f"os.system in {path}")
