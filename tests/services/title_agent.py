"""A stand-in for an agent that tells its state in its pane title (Gemini CLI 0.61.0), in a
real tmux pane: it sets the title (``OSC 2``) and draws a captured screen, both chosen by
lines written to a control file, and records every byte it receives (raw mode).

    python title_agent.py LOG CTL

Control lines: ``ready``, ``working``, ``permission`` (the captured shell confirmation,
``tests/fixtures/screens/gemini-cli-0.61.0-permission-shell.txt``, under ``✋  Action
Required``). A ``1`` typed while the confirmation shows answers it: ``working``, then ``ready``.
"""

import os
import select
import sys
import termios
import time
import tty
from pathlib import Path

SCREENS = Path(__file__).resolve().parents[1] / "fixtures" / "screens"
TITLES = {"ready": "◇  Ready (proj)", "working": "✦  Working… (proj)", "permission": "✋  Action Required (proj)"}


def show(state: str) -> None:
    name = {"ready": "idle", "working": "busy", "permission": "permission-shell"}[state]
    text = (SCREENS / f"gemini-cli-0.61.0-{name}.txt").read_text().rstrip("\n").split("\n")[-40:]
    sys.stdout.write(f"\x1b]2;{TITLES[state]:<80}\x1b\\\x1b[2J\x1b[H" + "\r\n".join(text))
    sys.stdout.flush()


def main() -> None:
    log, ctl = sys.argv[1], Path(sys.argv[2])
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    tty.setraw(fd)
    state, seen = "ready", 0
    show(state)
    try:
        with open(log, "ab", buffering=0) as out:
            while True:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    data = os.read(fd, 65536)
                    if not data:
                        break
                    out.write(data)
                    if state == "permission" and data.startswith(b"1"):
                        state = "working"
                        show(state)
                        time.sleep(0.3)
                        state = "ready"
                        show(state)
                complete = ctl.read_text().split("\n")[:-1] if ctl.exists() else []
                for line in complete[seen:]:
                    if line in TITLES:
                        state = line
                        show(state)
                seen = len(complete)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


if __name__ == "__main__":
    main()
