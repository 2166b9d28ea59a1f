"""The bench's stand-in for Gemini CLI 0.61.0 in a tmux pane: ``tests/services/title_agent.py``
(the pane title set with ``OSC 2``, padded to 80 characters, and the captured screen drawn, in
one write), controlled through a FIFO instead of a polled file, so that it idles at 0 % CPU
and draws a state the moment it is told (no 50 ms poll in the measured latency).

    python title_standin.py FIFO

Each line read from ``FIFO`` (``ready``, ``working``, ``permission``) is drawn at once.
"""

import os
import select
import sys
from pathlib import Path

SCREENS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "screens"
TITLES = {"ready": "◇  Ready (proj)", "working": "✦  Working… (proj)", "permission": "✋  Action Required (proj)"}
NAMES = {"ready": "idle", "working": "busy", "permission": "permission-shell"}


def frames() -> dict[str, bytes]:
    out = {}
    for state, name in NAMES.items():
        text = (SCREENS / f"gemini-cli-0.61.0-{name}.txt").read_text().rstrip("\n").split("\n")[-40:]
        body = "\r\n".join(text)
        out[state] = f"\x1b]2;{TITLES[state]:<80}\x1b\\\x1b[2J\x1b[H{body}".encode()
    return out


def main() -> None:
    fifo = sys.argv[1]
    shown = frames()
    os.write(1, shown["ready"])
    # O_RDWR: the FIFO always has a writer (this process), so reads never see EOF.
    fd = os.open(fifo, os.O_RDWR)
    buf = b""
    while True:
        select.select([fd], [], [])
        buf += os.read(fd, 4096)
        *lines, buf = buf.split(b"\n")
        for line in lines:
            state = line.decode(errors="replace").strip()
            if state in shown:
                os.write(1, shown[state])


if __name__ == "__main__":
    main()
