"""Screen helpers shared by the adapters' rules (:mod:`deck_tray.core.agents`).

Ink-based CLIs (Gemini CLI 0.61, Qwen Code 0.24, Copilot CLI 1.0) draw their prompts inside
rounded boxes (``╭─╮ │ … │ ╰─╯``), nested one or two deep; the rules read the text inside.
"""

from __future__ import annotations

import re

from deck_tray.core.screens import MenuOption

#: Lines read from the bottom of a pane (the live prompt area; older menus scrolled above
#: are not mistaken for a live prompt).
BOTTOM_LINES = 45
_BORDER = "│┃|"
_RULE = re.compile(r"^[╭╰─━┌└┐┘╮╯ ]+$")
#: ``● 1. Allow once`` / ``› 1. Yes`` / ``  2.  Blue``; the marker is the selected row.
_OPTION = re.compile(r"^([●›❯>]\s*)?(\d{1,2})\.\s+(\S.*?)\s*$")
_HOTKEY = re.compile(r"^(.*?)\s*\((esc|tab|y|n)\)\s*$", re.I)


def boxed_lines(text: str, bottom: int = BOTTOM_LINES) -> list[str]:
    """The last ``bottom`` non-empty lines of ``text``, each stripped of box borders
    (``│ … │``, nested) and of surrounding blanks; lines that are only a box's top or bottom
    rule are dropped."""
    out: list[str] = []
    for raw in text.rstrip("\n").split("\n"):
        line = raw.strip()
        while line[:1] in _BORDER and line:
            line = line[1:].strip()
        while line[-1:] in _BORDER and line:
            line = line[:-1].strip()
        if line and _RULE.match(line):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out[-bottom:]


def numbered_options(lines: list[str], start: int) -> tuple[MenuOption, ...]:
    """The numbered menu rows from ``lines[start]`` on: ``1.`` … until a number repeats or a
    non-option line follows the menu (indented description lines under a row are skipped).
    A trailing ``(esc)`` becomes the option's hotkey."""
    out: list[MenuOption] = []
    seen: set[str] = set()
    for line in lines[start:]:
        m = _OPTION.match(line)
        if not m:
            if out and not line:
                continue
            if out and line and not line[0].isdigit():
                # a description under the row above, or the footer
                if line.startswith(("Enter to select", "↑", "Esc")):
                    break
                continue
            continue
        num, label = m.group(2), m.group(3)
        if num in seen:
            break
        seen.add(num)
        hotkey = ""
        hm = _HOTKEY.match(label)
        if hm:
            label, hotkey = hm.group(1), hm.group(2).lower()
        out.append(MenuOption(num, label.strip(), hotkey, selected=bool(m.group(1))))
    return tuple(out)
