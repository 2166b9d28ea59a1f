"""A stand-in for an agent's TUI in a real tmux pane: shows a Claude-like screen and
records every byte it receives (raw mode) to a file, so tests see exactly what was typed.

    python standin_agent.py LOG {idle|permission|late-permission}

``late-permission`` shows the idle screen, then the permission menu 0.6 s later (Claude Code
2.1.332 reports its wait before it draws the dialog).
"""

import os
import sys
import termios
import time
import tty

SCREENS = {
    "idle": "\r\n" + "─" * 40 + "\r\n❯\u00a0\r\n" + "─" * 40 + "\r\n  ? for shortcuts · ← for agents\r\n",
    "permission": (
        "● Bash(rm -f x)\r\n" + "─" * 40 + "\r\n Bash command\r\n\r\n   rm -f x\r\n   Remove x\r\n\r\n"
        " Do you want to proceed?\r\n ❯ 1. Yes\r\n   2. Yes, and always allow access to proj/ from this project\r\n"
        "   3. No\r\n\r\n Esc to cancel · Tab to amend · ctrl+e to explain\r\n"
    ),
}


def main() -> None:
    log, mode = sys.argv[1], sys.argv[2]
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        sys.stdout.write("\x1b[?2004h" + SCREENS["idle" if mode == "late-permission" else mode])
        sys.stdout.flush()  # (2004h: asks for bracketed paste, like real TUIs)
        if mode == "late-permission":
            time.sleep(0.6)
            sys.stdout.write("\x1b[2J\x1b[H" + SCREENS["permission"])
            sys.stdout.flush()
        with open(log, "ab", buffering=0) as out:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                out.write(data)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


if __name__ == "__main__":
    main()
