"""A native Wayland window of its own process that can hand out xdg-activation tokens.

It plays the part of the program the user was in when they asked for deck-tray: the terminal
they typed ``deck-tray`` in (which puts a token in ``XDG_ACTIVATION_TOKEN``), or a notification
server's popup they clicked (which sends the token in the ``ActivationToken`` signal). The token
is a real one: the compositor issues it to this window while it is the active one
(``xdg_activation_v1.get_activation_token``, staging protocol xdg-activation-v1; KWin 5.27 grants
a token to an unprivileged client only while its surface is the active window).

Run as ``python tests/e2e/wl_client.py TITLE`` in the compositor's environment. It prints
``mapped`` once its window is shown and ``active yes|no`` whenever its activation changes; each
line ``token APP_ID`` on stdin is answered with ``token <token>``. It ends when stdin closes.
"""

from __future__ import annotations

import mmap
import os
import select
import sys

from pywayland.client import Display
from pywayland.protocol.wayland import WlCompositor, WlSeat, WlShm
from pywayland.protocol.xdg_activation_v1 import XdgActivationV1
from pywayland.protocol.xdg_shell import XdgWmBase

WIDTH, HEIGHT = 640, 400
ACTIVATED = 4  # xdg_toplevel.state "activated"


def main() -> int:
    title = sys.argv[1] if len(sys.argv) > 1 else "Launcher"
    display = Display()
    display.connect()
    globals_: dict[str, object] = {}

    def on_global(registry: object, name: int, interface: str, version: int) -> None:
        kinds = {"wl_compositor": (WlCompositor, 4), "wl_shm": (WlShm, 1), "xdg_wm_base": (XdgWmBase, 1),
                 "xdg_activation_v1": (XdgActivationV1, 1), "wl_seat": (WlSeat, 1)}
        if interface in kinds and interface not in globals_:
            kind, want = kinds[interface]
            globals_[interface] = registry.bind(name, kind, min(want, version))  # type: ignore[attr-defined]

    registry = display.get_registry()
    registry.dispatcher["global"] = on_global
    display.roundtrip()
    missing = {"wl_compositor", "wl_shm", "xdg_wm_base", "xdg_activation_v1"} - set(globals_)
    if missing:
        print(f"missing {' '.join(sorted(missing))}", flush=True)
        return 2
    wm = globals_["xdg_wm_base"]
    wm.dispatcher["ping"] = lambda base, serial: base.pong(serial)  # type: ignore[attr-defined]

    surface = globals_["wl_compositor"].create_surface()  # type: ignore[attr-defined]
    xdg_surface = wm.get_xdg_surface(surface)  # type: ignore[attr-defined]
    toplevel = xdg_surface.get_toplevel()
    toplevel.set_title(title)
    toplevel.set_app_id("deck-tray-test-launcher")
    state = {"configured": False, "active": None, "mapped": False}

    stride = WIDTH * 4
    size = stride * HEIGHT
    fd = os.memfd_create("wl-client-buffer")
    os.ftruncate(fd, size)
    data = mmap.mmap(fd, size)
    data.write(bytes((0x40, 0x80, 0x20, 0xFF)) * (WIDTH * HEIGHT))  # BGRA: a green window
    pool = globals_["wl_shm"].create_pool(fd, size)  # type: ignore[attr-defined]
    buffer = pool.create_buffer(0, WIDTH, HEIGHT, stride, WlShm.format.argb8888.value)

    def on_surface_configure(xs: object, serial: int) -> None:
        xs.ack_configure(serial)  # type: ignore[attr-defined]
        if not state["configured"]:
            state["configured"] = True
            surface.attach(buffer, 0, 0)
            surface.damage(0, 0, WIDTH, HEIGHT)
        surface.commit()

    def on_toplevel_configure(tl: object, width: int, height: int, states: object) -> None:
        raw = bytes(states) if not isinstance(states, list) else b"".join(int(s).to_bytes(4, "little") for s in states)
        values = [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]
        active = ACTIVATED in values
        if active != state["active"]:
            state["active"] = active
            print(f"active {'yes' if active else 'no'}", flush=True)

    xdg_surface.dispatcher["configure"] = on_surface_configure
    toplevel.dispatcher["configure"] = on_toplevel_configure
    toplevel.dispatcher["close"] = lambda tl: None
    surface.commit()
    display.roundtrip()
    display.roundtrip()
    print("mapped", flush=True)

    activation = globals_["xdg_activation_v1"]
    tokens: list[str] = []

    def on_done(tok: object, token: str) -> None:
        tokens.append(token)
        print(f"token {token}", flush=True)

    while True:
        display.flush()
        ready, _, _ = select.select([sys.stdin, display.get_fd()], [], [], 0.2)
        if sys.stdin in ready:
            line = sys.stdin.readline()
            if not line:
                break
            parts = line.split()
            if parts and parts[0] == "token":
                token = activation.get_activation_token()  # type: ignore[attr-defined]
                token.dispatcher["done"] = on_done
                token.set_surface(surface)
                if len(parts) > 1:
                    token.set_app_id(parts[1])
                token.commit()
        display.roundtrip()
    display.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
