"""``deck-tray doctor``: each probe against the real thing where it runs here, fakes only at the edge.

Real: a session bus (``dbus-run-session``), dunst on Xvfb, an XEmbed tray selection owner, tmux,
Qt's xcb plugin. Fakes: version-printing stand-in executables for the agents (on a private PATH),
a StatusNotifierWatcher on the private bus, a loopback HTTP server answering like opencode.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail

from deck_tray.commands.doctor import checks as dc
from deck_tray.commands.doctor.checks import Check, Level

ROOT = Path(__file__).resolve().parents[2]
SESSION = Path(__file__).with_name("desktop_session.py")


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: dbus, xvfb, dunst)")


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def doctor_in_session(*flags: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, dict[str, str]], str]:
    """``deck-tray doctor --json`` inside ``dbus-run-session`` with the desktop ``flags`` give."""
    base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM",
                                                             "DBUS_SESSION_BUS_ADDRESS")}
    base["PYTHONPATH"] = str(ROOT)
    base.update(env or {})
    proc = subprocess.run(["dbus-run-session", "--", sys.executable, str(SESSION), *flags, "--",
                           sys.executable, "-m", "deck_tray", "doctor", "--json"],
                          env=base, capture_output=True, text=True, timeout=60, cwd=ROOT)
    try:
        rows = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"doctor printed no JSON (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}")
    return proc.returncode, {r["name"]: r for r in rows}, proc.stderr


# -- against a real desktop stack ---------------------------------------------------------------

def test_doctor_reports_dunst_with_its_capabilities() -> None:
    _need("dbus-run-session", "Xvfb", "dunst")
    code, rows, err = doctor_in_session("--xvfb", "--dunst", env={"PATH": os.environ["PATH"]})
    n = rows["notification server"]
    assert n["level"] == "OK", n
    assert n["detail"].startswith("dunst "), n
    assert "actions: yes" in n["detail"] and "body-markup: yes" in n["detail"], n
    assert "capabilities: actions, body," in n["detail"], n
    assert rows["D-Bus session bus"]["level"] == "OK"
    assert rows["Qt platform"]["level"] == "OK" and rows["Qt platform"]["detail"].startswith("X11 (DISPLAY=:")
    assert rows["Qt xcb plugin"]["level"] == "OK"
    # Xvfb alone has no tray: a WARN that says what was looked for and what to do.
    tray = rows["tray host"]
    assert tray["level"] == "WARN" and "no org.kde.StatusNotifierWatcher" in tray["detail"], tray
    assert "no XEmbed tray on :" in tray["detail"] and "AppIndicator" in tray["hint"], tray
    assert code == (1 if any(r["level"] == "FAIL" for r in rows.values()) else 0)


def test_doctor_finds_an_xembed_tray() -> None:
    _need("dbus-run-session", "Xvfb")
    _code, rows, _err = doctor_in_session("--xvfb", "--xembed-tray")
    tray = rows["tray host"]
    assert tray["level"] == "OK", tray
    assert tray["detail"].startswith("XEmbed system tray on :") and "_NET_SYSTEM_TRAY_S0 is owned" in tray["detail"]
    assert rows["notification server"]["level"] == "WARN"


@pytest.mark.parametrize("host", ["yes", "no"])
def test_doctor_asks_the_status_notifier_watcher_for_a_host(host: str) -> None:
    _need("dbus-run-session")
    _code, rows, _err = doctor_in_session("--sni", host)
    tray = rows["tray host"]
    if host == "yes":
        assert tray["level"] == "OK", tray
        assert tray["detail"].startswith("StatusNotifierItem: org.kde.StatusNotifierWatcher owned by python"), tray
        assert tray["detail"].endswith(", host registered"), tray
    else:
        assert tray["level"] == "WARN", tray
        assert "no host is registered" in tray["detail"], tray


def test_without_a_session_bus() -> None:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    checks = by_name(run(dc.run_checks(env)))
    bus = checks["D-Bus session bus"]
    assert bus.level is Level.FAIL and "DBUS_SESSION_BUS_ADDRESS is not set" in bus.detail
    assert "dbus-run-session" in bus.hint
    assert checks["notification server"].level is Level.WARN
    assert checks["notification server"].detail.startswith("not checked: no session bus")
    assert checks["tray host"].level is Level.WARN
    assert checks["Qt platform"].level is Level.WARN and checks["Qt platform"].detail.startswith("no display")
    assert dc.exit_code(checks.values()) == 1


def test_a_bus_address_that_does_not_answer(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/nobody-here"}
    checks = by_name(run(dc.run_checks(env)))
    bus = checks["D-Bus session bus"]
    assert bus.level is Level.FAIL and "cannot connect" in bus.detail, bus
    assert checks["notification server"].level is Level.WARN


def test_a_display_that_does_not_answer() -> None:
    facts = dc.x11_probe(":97")  # nothing listens there
    assert facts.error == "cannot open the X display :97"
    line = dc.qt_platform_check("xcb", "DISPLAY=:97", facts)
    assert line.level is Level.FAIL


# -- keyring ----------------------------------------------------------------------------------

@pytest.fixture
def fail_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(before)


def test_the_fail_keyring_is_a_warning(fail_keyring: None) -> None:
    checks = by_name(run(dc.run_checks({"PATH": os.environ["PATH"]})))
    k = checks["keyring"]
    assert k.level is Level.WARN
    assert k.detail.startswith("keyring.backends.fail.Keyring: no usable keyring")
    assert "gnome-keyring" in k.hint


def test_a_working_keyring_is_ok() -> None:
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1

        def get_password(self, service: str, username: str) -> str | None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            pass

        def delete_password(self, service: str, username: str) -> None:
            pass

    before = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        label, usable = dc.keyring_probe()
    finally:
        keyring.set_keyring(before)
    assert usable and label.endswith("Memory")
    assert dc.keyring_check(label, usable).level is Level.OK


# -- programs on PATH (version-printing stand-ins) ------------------------------------------------

def stub(directory: Path, name: str, output: str, *, sleep: float = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / name
    body = f"sleep {sleep}\n" if sleep else ""
    p.write_text(f"#!/bin/sh\n{body}echo '{output}'\n")
    p.chmod(0o755)
    return p


def test_agents_against_the_tested_versions(tmp_path: Path) -> None:
    bin_dir, agents = tmp_path / "bin", tmp_path / "agents"
    stub(bin_dir, "claude", "2.1.197 (Claude Code)")
    stub(bin_dir, "codex", "codex-cli 0.172.0")
    stub(agents / "node_modules" / ".bin", "opencode", "1.18.30")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DECK_TRAY_AGENTS_DIR": str(agents)}
    checks = by_name(run(dc.run_checks(env)))
    claude, codex, opencode = checks["Claude Code"], checks["Codex CLI"], checks["opencode"]
    assert claude.level is Level.OK and claude.detail == f"2.1.197 at {bin_dir}/claude (the tested version)"
    assert codex == Check("Codex CLI", Level.WARN,
                          f"0.172.0 at {bin_dir}/codex: newer than the newest verified (0.171.0); "
                          "deck-tray may misread it — report problems",
                          "if states look wrong, npm install -g @openai/codex@0.171.0")
    assert opencode.level is Level.WARN and "older than the tested 1.18.33" in opencode.detail
    assert str(agents / "node_modules" / ".bin" / "opencode") in opencode.detail
    assert opencode.hint == "update: npm install -g opencode-ai@1.18.33"


@pytest.mark.parametrize(("printed", "level", "said"), [
    ("2.1.332 (Claude Code)", Level.OK, "2.1.332 at {bin}/claude (the newest verified version)"),
    ("2.1.250 (Claude Code)", Level.OK, "2.1.250 at {bin}/claude (within the verified 2.1.197 to 2.1.332)"),
    ("2.1.333 (Claude Code)", Level.WARN,
     "2.1.333 at {bin}/claude: newer than the newest verified (2.1.332); deck-tray may misread it — report problems"),
    ("2.1.196 (Claude Code)", Level.WARN, "2.1.196 at {bin}/claude: older than the tested 2.1.197"),
])
def test_the_doctor_line_for_each_side_of_the_verified_range(tmp_path: Path, printed: str, level: Level,
                                                              said: str) -> None:
    stub(tmp_path, "claude", printed)
    (line,) = run(dc.agent_check("claude", {"PATH": f"{tmp_path}:/usr/bin:/bin"}))
    assert (line.name, line.level, line.detail) == ("Claude Code", level, said.format(bin=tmp_path))


def test_npm_installed_agents_are_read_from_their_package(tmp_path: Path) -> None:
    """opencode's --version takes 1.5 s; an npm install is read from its package.json instead."""
    modules = tmp_path / "node_modules"
    pkg = modules / "opencode-ai"
    stub(pkg / "bin", "opencode.exe", "9.9.9", sleep=30)  # never run
    (pkg / "package.json").write_text(json.dumps({"name": "opencode-ai", "version": "1.18.33"}))
    (modules / ".bin").mkdir()
    (modules / ".bin" / "opencode").symlink_to("../opencode-ai/bin/opencode.exe")
    started = time.monotonic()
    (line,) = run(dc.agent_check("opencode", {"PATH": "/usr/bin:/bin", "DECK_TRAY_AGENTS_DIR": str(tmp_path)}))
    assert time.monotonic() - started < 1
    assert line.level is Level.OK and line.detail.startswith("1.18.33 at "), line
    # Someone else's package.json next to the binary: ask the binary itself.
    other = tmp_path / "other"
    stub(other / "bin", "claude", "2.1.197 (Claude Code)")
    (other / "package.json").write_text(json.dumps({"name": "something-else", "version": "0.0.1"}))
    assert dc.npm_package_version(str(other / "bin" / "claude"), "@anthropic-ai/claude-code") is None
    (line,) = run(dc.agent_check("claude", {"PATH": str(other / "bin")}))
    assert line.level is Level.OK, line


def test_a_missing_agent_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    checks = by_name(run(dc.run_checks({"PATH": str(tmp_path)})))
    for name in ("Claude Code", "Codex CLI", "opencode"):
        assert checks[name].level is Level.WARN and checks[name].detail.startswith("not installed"), checks[name]
    assert "@anthropic-ai/claude-code@2.1.197" in checks["Claude Code"].hint


def test_a_hanging_program_is_cut_off(tmp_path: Path) -> None:
    stub(tmp_path, "claude", "2.1.197", sleep=30)
    started = time.monotonic()
    lines = run(dc.guarded(["Claude Code"], dc.agent_check("claude", {"PATH": f"{tmp_path}:/usr/bin:/bin"}), 0.5))
    assert time.monotonic() - started < 3
    assert lines[0].level is Level.WARN and "no answer within 0.5 s" in lines[0].detail


def test_real_tmux_is_ok() -> None:
    _need("tmux")
    checks = by_name(run(dc.multiplexer_checks({"PATH": os.environ["PATH"]})))
    tmux = checks["tmux"]
    assert tmux.level is Level.OK and tmux.detail.startswith("tmux 3."), tmux


def test_multiplexer_versions(tmp_path: Path) -> None:
    stub(tmp_path / "old", "tmux", "tmux 3.1c")
    stub(tmp_path / "old", "zellij", "zellij 0.43.1")
    old = by_name(run(dc.multiplexer_checks({"PATH": str(tmp_path / "old")})))
    assert old["tmux"].level is Level.WARN and "older than 3.2" in old["tmux"].detail
    assert old["zellij"].level is Level.WARN and "needs 0.44.0" in old["zellij"].detail
    stub(tmp_path / "new", "zellij", "zellij 0.44.0")
    only_zellij = by_name(run(dc.multiplexer_checks({"PATH": str(tmp_path / "new")})))
    assert only_zellij["zellij"].level is Level.OK
    assert only_zellij["tmux"].level is Level.WARN and only_zellij["tmux"].detail.startswith("not installed")
    neither = by_name(run(dc.multiplexer_checks({"PATH": str(tmp_path / "empty")})))
    assert neither["tmux"].level is Level.WARN and neither["zellij"].level is Level.WARN
    assert "through its hooks" in neither["tmux"].detail
    assert "apt install tmux" in neither["tmux"].hint


# -- Qt -----------------------------------------------------------------------------------------

def test_qt_xcb_plugin_loads_here() -> None:
    lines = run(dc.xcb_libraries_check(dict(os.environ), on_x11=True))
    assert lines[0].level is Level.OK, lines


def test_missing_xcb_libraries_name_the_packages() -> None:
    ldd = ("\tlinux-vdso.so.1 (0x00007ffd)\n"
           "\tlibxcb-cursor.so.0 => not found\n"
           "\tlibxkbcommon-x11.so.0 => not found\n"
           "\tlibfoo.so.3 => not found\n"
           "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n")
    missing = dc.missing_libraries(ldd)
    assert missing == ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0", "libfoo.so.3"]
    assert dc.install_hint(missing) == ("Debian/Ubuntu: sudo apt install libxcb-cursor0 libxkbcommon-x11-0; "
                                        "install the packages that provide libfoo.so.3")


@pytest.mark.parametrize(("env", "platform"), [
    ({"DISPLAY": ":0"}, "xcb"),
    ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, "wayland"),
    ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_SESSION_TYPE": "x11"}, "xcb"),
    ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, "offscreen"),
    ({}, "none"),
])
def test_platform_of(env: dict[str, str], platform: str) -> None:
    assert dc.platform_of(env)[0] == platform


def test_platform_of_a_pinned_window_on_wayland_is_xwayland() -> None:
    env = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}
    assert dc.platform_of(env, pinned=True) == ("xcb", "DISPLAY=:0: XWayland in a Wayland session, for the pinned "
                                                        "window")
    assert dc.platform_of({k: v for k, v in env.items() if k != "DISPLAY"}, pinned=True)[0] == "wayland"


def test_window_lines() -> None:
    from deck_tray.core.display import choose

    gnome = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland",
             "XDG_CURRENT_DESKTOP": "GNOME"}
    mutter = dc.X11Facts(":0", wm="GNOME Shell", keeps_above=True)
    # The running app's own report wins over the prediction.
    line = dc.window_check(choose(gnome, pinned=True), mutter,
                           {"platform": "xcb", "pinned": True, "pinning_works": True})
    assert line.level is Level.OK
    assert line.detail == ("the running deck-tray's window runs on xcb through XWayland, pinned; pinning keeps it on "
                           "top (GNOME Shell honours _NET_WM_STATE_ABOVE)")
    native = dc.window_check(choose(gnome, pinned=False), None,
                             {"platform": "wayland", "pinned": True, "pinning_works": False})
    assert native.level is Level.WARN and "restart deck-tray and it runs the pinned window" in native.detail
    no_xwayland = {k: v for k, v in gnome.items() if k != "DISPLAY"}
    predicted = dc.window_check(choose(no_xwayland, pinned=True), None, None, pinned=True)
    assert predicted.level is Level.WARN and "XWayland is not running" in predicted.detail
    assert "XWayland" in predicted.hint
    unpinned = dc.window_check(choose(gnome, pinned=False), None, None)
    assert unpinned.level is Level.OK and "restart deck-tray to run it through XWayland" in unpinned.detail
    bare = dc.window_check(choose({"DISPLAY": ":5"}, pinned=True), dc.X11Facts(":5", wm="", keeps_above=False), None)
    assert bare.level is Level.WARN and "does not list _NET_WM_STATE_ABOVE" in bare.detail


def test_shortcut_lines() -> None:
    gnome = {"WAYLAND_DISPLAY": "w", "XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": "GNOME"}
    line = dc.shortcut_check(gnome, dc.BusFacts("a", portal=True, kglobalaccel=True), None, "Ctrl+Alt+D")
    assert line.level is Level.OK and line.detail == ("Ctrl+Alt+D is set; deck-tray will try the desktop portal "
                                                      "(GlobalShortcuts) (the running app says which one bound it)")
    none = dc.shortcut_check(gnome, dc.BusFacts("a", portal=False, kglobalaccel=False), None, "Ctrl+Alt+D")
    assert none.level is Level.WARN and "deck-tray --toggle" in none.detail
    bound = dc.shortcut_check(gnome, None, {"shortcut": "Ctrl+Alt+D — bound through an X11 key grab.",
                                            "shortcut_way": "x11"}, "Ctrl+Alt+D")
    assert (bound.level, bound.detail) == (Level.OK, "Ctrl+Alt+D — bound through an X11 key grab.")
    failed = dc.shortcut_check(gnome, None, {"shortcut": "Not bound. …", "shortcut_way": ""}, "Ctrl+Alt+D")
    assert failed.level is Level.WARN and failed.hint


def test_offscreen_is_a_warning() -> None:
    line = dc.qt_platform_check(*dc.platform_of({"QT_QPA_PLATFORM": "offscreen"}), None)
    assert line.level is Level.WARN and "unset QT_QPA_PLATFORM" in line.hint


# -- hooks ------------------------------------------------------------------------------------

@dataclass
class FakeHookStatus:
    agent: str
    path: str
    state: str
    detail: str


def test_hook_states() -> None:
    lines = dc.hooks_checks([
        FakeHookStatus("claude-code", "/h/.claude/settings.json", "installed", "all 6 events"),
        FakeHookStatus("codex", "/h/.codex/hooks.json", "not installed", "no /h/.codex/hooks.json file"),
        FakeHookStatus("codex", "/h/.codex/config.toml", "another program", "notify runs x"),
    ])
    assert [(c.name, c.level) for c in lines] == [("hooks (claude-code)", Level.OK), ("hooks (codex)", Level.WARN),
                                                  ("hooks (codex)", Level.WARN)]
    assert lines[0].detail == "installed in /h/.claude/settings.json: all 6 events"
    assert lines[1].detail == "not installed: no /h/.codex/hooks.json file"
    assert "deck-tray hooks install" in lines[1].hint


def test_hooks_status_unavailable_or_broken() -> None:
    assert run(dc.hooks_check(None)) == [Check("hooks", Level.WARN,
                                               "status unavailable (this deck-tray cannot read hook state)")]

    def broken() -> list[Any]:
        raise RuntimeError("boom")

    lines = run(dc.guarded(["hooks"], dc.hooks_check(broken)))
    assert lines[0].level is Level.WARN and "boom" in lines[0].detail


def test_doctor_finds_the_hooks_implementation() -> None:
    from deck_tray.commands.doctor import find_hooks_status

    func = find_hooks_status()
    if func is None:
        pytest.skip("deck-tray hooks is not there yet")
    assert callable(func)


# -- opencode servers ----------------------------------------------------------------------------

class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # http.server calls it by this name
        body = json.dumps({"healthy": True, "version": "1.18.33"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_opencode_servers(health_server: tuple[str, type[_Health]], monkeypatch: pytest.MonkeyPatch,
                          fail_keyring: None) -> None:
    from deck_tray.services import opencode_source

    url, handler = health_server
    monkeypatch.setattr(opencode_source, "discover_servers", lambda: [url, "http://127.0.0.1:9"])
    lines = by_name(run(dc.opencode_checks({})))
    assert lines[f"opencode server {url}"] == Check(f"opencode server {url}", Level.OK, "opencode 1.18.33, healthy")
    assert lines["opencode server http://127.0.0.1:9"].level is Level.WARN
    assert "not reachable" in lines["opencode server http://127.0.0.1:9"].detail
    handler.status = 401
    locked = run(dc.opencode_checks({}))
    assert locked[0].level is Level.WARN and locked[0].detail.startswith("needs a password (HTTP 401)"), locked


def test_no_opencode_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from deck_tray.services import opencode_source

    monkeypatch.setattr(opencode_source, "discover_servers", lambda: [])
    assert run(dc.opencode_checks({}))[0].level is Level.OK


# -- the command ----------------------------------------------------------------------------

def test_the_report_format() -> None:
    text = dc.format_report([Check("tmux", Level.OK, "tmux 3.3a at /usr/bin/tmux"),
                             Check("zellij", Level.WARN, "not installed", "install it"),
                             Check("D-Bus session bus", Level.FAIL, "not set", "start one")])
    assert text.splitlines() == ["OK    tmux: tmux 3.3a at /usr/bin/tmux",
                                 "WARN  zellij: not installed",
                                 "      → install it",
                                 "FAIL  D-Bus session bus: not set",
                                 "      → start one"]


def test_doctor_command_never_crashes_and_is_quick(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from deck_tray.cli import main

    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    started = time.monotonic()
    code = main(["doctor"])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 1  # no session bus here
    assert elapsed < 5, elapsed
    names = [line.split(":", 1)[0][6:] for line in out.splitlines() if not line.startswith(" ")]
    assert names[:9] == ["Python", "PySide6", "Qt platform", "pinned window", "global shortcut", "Qt xcb plugin",
                         "D-Bus session bus", "tray host", "notification server"]
    for line in out.splitlines():
        assert line.startswith(("OK    ", "WARN  ", "FAIL  ", "      → ")), line
