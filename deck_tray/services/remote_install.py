"""``deck-tray remote install NAME`` (issue #18): put this very version of deck-tray on a remote
host, over the user's own ssh, and show everything that runs there before it runs.

Three parts:

* :func:`this_wheel` makes a wheel of exactly the running version: built with ``pip wheel``
  from the source checkout it runs from (a plain checkout or an editable install), else rebuilt
  from the files the installed distribution's ``RECORD`` lists (an install from a wheel, e.g.
  by pipx). A PyInstaller bundle has no wheel in it and says so.
* :func:`install_plan` is what runs on the host: four steps, each one ``ssh`` command with the
  options of :func:`deck_tray.services.remote.ssh_options` (``BatchMode=yes``: nothing ever waits
  on a prompt) — check for Python >= 3.11 and pipx; copy the wheel on ssh's stdin (no scp or
  sftp subsystem needed) and check its sha256 there; install it with ``pipx install --force``,
  else into a venv of deck-tray's own (``~/.local/share/deck-tray/venv``, its command linked
  into ``~/.local/bin``); and ask ``deck-tray --version`` the way the app will start it
  (:data:`deck_tray.services.remote.REMOTE_COMMAND`'s ``PATH`` logic). The scripts are POSIX
  ``sh``, run as ``sh -c SCRIPT`` by whatever login shell the user has there.
  :meth:`InstallPlan.text` is the text a user is shown before anything runs.
* :func:`install` does both, streaming what the host prints, each step bounded in time
  (:class:`Timeouts`), and ends with an :class:`InstallResult` whose ``detail`` says what
  happened and, on a failure, what to do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from deck_tray import __version__
from deck_tray.core import wire
from deck_tray.services.remote import REMOTE_COMMAND, HostConfig, explain, ssh_argv

log = logging.getLogger(__name__)

#: The distribution's name (PEP 503 normalised) and its wheel file name prefix.
DIST_NAME, WHEEL_PREFIX = "deck-tray", "deck_tray"
#: Where the wheel is copied on the host (``$HOME`` relative; its sha256 is checked there).
REMOTE_CACHE = ".cache/deck-tray"
#: deck-tray's own venv on a host without pipx (``$HOME`` relative), and where its command is
#: linked (``$HOME/.local/bin`` is also where pipx puts commands, and where
#: :data:`~deck_tray.services.remote.REMOTE_COMMAND` looks when ``PATH`` has no deck-tray).
REMOTE_VENV, REMOTE_BIN = ".local/share/deck-tray/venv", ".local/bin"
#: The oldest Python deck-tray runs on (``requires-python`` in pyproject.toml).
MIN_PYTHON = (3, 11)

_WHEEL_NAME = re.compile(r"^deck_tray-(?P<version>[A-Za-z0-9_.+!]+)-py3-none-any\.whl$")
#: Files of an installed ``*.dist-info`` that the installer wrote; not part of a wheel.
_INSTALLER_FILES = frozenset({"INSTALLER", "REQUESTED", "direct_url.json", "RECORD", "RECORD.jws", "RECORD.p7s"})
#: Top-level folders of a checkout that are not copied for a build (build output, caches, venvs).
_NOT_SOURCE_TOP = frozenset({"build", "dist", "node_modules", "venv", "env", "htmlcov"})
#: Timestamp of every file in a rebuilt wheel (the zip epoch): the same files give the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class InstallError(Exception):
    """Making the wheel failed; the message says what happened and what to do."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds each part of :func:`install` may take before it is stopped.

    Attributes:
        build: making the wheel here (:func:`this_wheel`, both pip attempts together).
        check: step 1, the check for Python and pipx (a login included).
        copy: step 2, copying the wheel and checking its sha256.
        install: step 3, the install (pip downloads PySide6 and the rest there).
        verify: step 4, ``deck-tray --version`` there.
    """

    build: float = 120.0
    check: float = 60.0
    copy: float = 120.0
    install: float = 900.0
    verify: float = 60.0


@dataclass(frozen=True)
class PlanStep:
    """One ssh command of an :class:`InstallPlan`.

    Attributes:
        title: what it does, for people ("copy the wheel …").
        command: the command ssh runs there (``sh -c 'SCRIPT'``, or the version command).
        script: the POSIX sh script inside ``command`` (for the version step: ``command`` itself).
        argv: the whole local argv (``ssh`` words, options, ``--``, DEST, ``command``).
        timeout: seconds it may take (:class:`Timeouts`).
        stdin: a local file sent on ssh's stdin (the wheel), else None (stdin is ``/dev/null``).
    """

    title: str
    command: str
    script: str
    argv: tuple[str, ...]
    timeout: float
    stdin: Path | None = None


@dataclass(frozen=True)
class InstallPlan:
    """What :func:`install` runs on a host, in order (see :func:`install_plan`).

    Attributes:
        host: the host.
        wheel: the local wheel file.
        version: deck-tray's version in it.
        sha256: its sha256 (hex).
        size: its size in bytes.
        steps: check, copy, install, verify.
    """

    host: HostConfig
    wheel: Path
    version: str
    sha256: str
    size: int
    steps: tuple[PlanStep, ...] = ()

    def text(self) -> str:
        """The plan as a user reads it before anything runs: the ssh command, then each step
        with its time limit and the exact script it runs there (several lines, no trailing
        newline)."""
        h = self.host
        ssh_words = list(self.steps[0].argv[:-1]) if self.steps else []
        lines = [f"Install deck-tray {self.version} on {h.name} ({h.dest}): {len(self.steps)} steps, each one "
                 f"ssh command:",
                 f"  {shlex.join(ssh_words)} COMMAND",
                 "COMMAND runs in your login shell there; the scripts below run as sh -c SCRIPT.",
                 f"The wheel: {self.wheel} ({self.size / 1000:.0f} kB, sha256 {self.sha256})."]
        for i, step in enumerate(self.steps, 1):
            lines.append("")
            limit = f"{step.timeout / 60:.0f} min" if step.timeout >= 120 else f"{step.timeout:.0f} s"
            lines.append(f"[{i}/{len(self.steps)}] {step.title} (at most {limit})")
            if step.stdin is not None:
                lines.append(f"    stdin: {step.stdin}")
            if step.command == step.script:
                lines.append(f"    COMMAND: {step.command}")
            else:
                lines.append("    SCRIPT:")
                lines.extend(f"    | {ln}" if ln else "    |" for ln in step.script.splitlines())
        return "\n".join(lines)


@dataclass(frozen=True)
class InstallResult:
    """How :func:`install` ended.

    Attributes:
        ok: deck-tray of this version now answers there the way the app starts it.
        detail: one or two sentences: what happened; on a failure, what to do.
        version: what ``deck-tray --version`` said there at the end (``""`` if it did not run).
    """

    ok: bool
    detail: str
    version: str = ""


# -- the wheel ------------------------------------------------------------------------------------

Out = Callable[[str], None]


def _say(out: Out | None, line: str) -> None:
    log.info("%s", line)
    if out is not None:
        out(line)


def this_wheel(workdir: Path, *, out: Out | None = None, timeout: float = 120.0) -> Path:
    """A wheel of exactly the running deck-tray, written into ``workdir``.

    * Running from a source checkout (plain, or an editable install: the package's folder sits
      next to a ``pyproject.toml`` naming deck-tray, or the distribution's ``direct_url.json``
      says editable): the checkout's files (without ``.git``, caches, ``build``/``dist``) are
      copied to a folder in ``workdir`` and built with ``python -m pip wheel --no-deps
      --no-build-isolation -w DIR COPY`` (argv, no shell; this Python); when that fails (this
      Python lacks the build backend: setuptools >= 68, or an older one without ``wheel``),
      again with pip's isolated build environment (which downloads it). The copy keeps the checkout free of ``build/``
      and keeps stale files in an old ``build/lib`` out of the wheel.
    * Installed from a wheel (pip, pipx; not editable): rebuilt from the files its ``RECORD``
      lists (no ``__pycache__``/``.pyc``, no ``../../bin`` scripts, no installer files), with
      ``WHEEL`` and a ``RECORD`` of sha256 hashes written anew (PEP 427); the bytes are the same
      for the same files.

    The wheel is ``deck_tray-<version>-py3-none-any.whl``, and ``<version>`` is
    ``deck_tray.__version__``. ``out`` gets one line per thing done, with what ran and how long
    it took (also logged at INFO).

    Args:
        workdir: an existing folder to write into.
        out: progress lines (called on this thread).
        timeout: seconds the build may take (both pip attempts together).

    Raises:
        InstallError: no wheel can be made (a PyInstaller bundle; pip failed or timed out; the
            checkout holds another version than the one running; a broken install), with what
            to do.
    """
    if getattr(sys, "frozen", False) or hasattr(sys, "_MEIPASS"):
        raise InstallError(
            f"this deck-tray {__version__} is a PyInstaller bundle, which cannot install itself on another "
            f"machine (it holds no wheel, and its files are built for this one). Install deck-tray {__version__} "
            f"there yourself (e.g. copy a wheel built from its source with “python3 -m pip wheel --no-deps .” and "
            f"run “pipx install ./deck_tray-{__version__}-py3-none-any.whl” there), or run “deck-tray remote "
            f"install” from a deck-tray installed with pipx or pip, or from a source checkout.")
    pkg = _package_dir()
    root = _checkout_root(pkg)
    if root is not None:
        return _build(root, workdir, out, timeout)
    dist = _installed_dist(pkg)
    if dist is None:
        raise InstallError(
            f"this deck-tray ({pkg}) was not installed by pip or pipx and is not a source checkout, so there is "
            f"no wheel to copy: install deck-tray {__version__} with pipx (or pip) here, or run “deck-tray remote "
            f"install” from a source checkout.")
    return _rebuild(dist, workdir, out)


def _package_dir() -> Path:
    import deck_tray

    return Path(deck_tray.__file__).resolve().parent


def _names_deck_tray(pyproject: Path) -> bool:
    try:
        with pyproject.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return False
    name = data.get("project", {}).get("name", "")
    return isinstance(name, str) and re.sub(r"[-_.]+", "-", name).lower() == DIST_NAME


def _checkout_root(pkg: Path) -> Path | None:
    """The source checkout this deck-tray runs from, or None (an installed copy)."""
    if _names_deck_tray(pkg.parent / "pyproject.toml"):
        return pkg.parent
    for dist in importlib.metadata.distributions(name=DIST_NAME):
        raw = dist.read_text("direct_url.json")
        if not raw:
            continue
        try:
            info = json.loads(raw)
        except ValueError:
            continue
        url = urlparse(str(info.get("url", "")))
        if not (isinstance(info.get("dir_info"), dict) and info["dir_info"].get("editable")) or url.scheme != "file":
            continue
        root = Path(unquote(url.path)).resolve()
        if _names_deck_tray(root / "pyproject.toml") and pkg.is_relative_to(root):
            return root
    return None


def _installed_dist(pkg: Path) -> importlib.metadata.Distribution | None:
    """The installed distribution whose files are the running package (its ``*.dist-info`` sits
    next to the package folder)."""
    for dist in importlib.metadata.distributions(name=DIST_NAME, path=[str(pkg.parent)]):
        files = dist.files or []
        if any(f.as_posix() == "deck_tray/__init__.py" for f in files):
            return dist
    return None


def _ignore_for_build(root: Path, workdir: Path) -> Callable[[str, list[str]], set[str]]:
    """The ``ignore`` of copytree: dot files and folders, caches, and at the top build output and venvs
    (and ``workdir``, should it lie inside the checkout)."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == root
        return {n for n in names if n.startswith(".") or n == "__pycache__" or n.endswith((".pyc", ".pyo"))
                or top and (n in _NOT_SOURCE_TOP or n.endswith(".egg-info")) or Path(folder, n) == workdir}
    return ignore


def _build(root: Path, workdir: Path, out: Out | None, timeout: float) -> Path:
    started = time.monotonic()
    deadline = started + timeout
    src = Path(tempfile.mkdtemp(prefix="src-", dir=workdir))
    dist_dir = Path(tempfile.mkdtemp(prefix="dist-", dir=workdir))
    try:
        shutil.copytree(root, src, ignore=_ignore_for_build(root, workdir.resolve()), symlinks=True, dirs_exist_ok=True)
        copied = time.monotonic() - started
        _say(out, f"Building the wheel of deck-tray {__version__} from the checkout {root} "
                  f"(copied to {src} in {copied:.1f} s)")
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-input",
                "--disable-pip-version-check", "-q", "-w", str(dist_dir), str(src)]
        _say(out, f"$ {shlex.join(argv)}")
        rc, tail, took = _pip(argv, deadline)
        if rc != 0:
            _say(out, f"That failed in {took:.1f} s ({_last(tail)}); again with pip's isolated build environment "
                      f"(pip downloads the build backend, setuptools)")
            argv.remove("--no-build-isolation")
            _say(out, f"$ {shlex.join(argv)}")
            rc, tail, took = _pip(argv, deadline)
        if rc != 0:
            raise InstallError(
                f"pip could not build a wheel of the checkout {root} ({_last(tail)}). Run “{shlex.join(argv)}” "
                f"to see all of it; a missing build backend is fixed with “{sys.executable} -m pip install "
                f"'setuptools>=70.1'”.")
        wheels = sorted(dist_dir.glob("*.whl"))
        wanted = f"{WHEEL_PREFIX}-{__version__}-py3-none-any.whl"
        if [w.name for w in wheels] != [wanted]:
            raise InstallError(
                f"building the checkout {root} gave {[w.name for w in wheels] or 'no wheel'}, not {wanted}: the "
                f"checkout holds another version than the deck-tray {__version__} that runs (restart deck-tray "
                f"after changing its version).")
        final = workdir / wanted
        os.replace(wheels[0], final)
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(dist_dir, ignore_errors=True)
    _say(out, f"Built {final.name} ({final.stat().st_size / 1000:.0f} kB) in {time.monotonic() - started:.1f} s")
    return final


def _pip(argv: list[str], deadline: float) -> tuple[int, list[str], float]:
    """Run pip until ``deadline`` (monotonic): ``(exit code, last output lines, seconds)``."""
    started = time.monotonic()
    left = deadline - started
    if left <= 0:
        raise InstallError("building the wheel took too long (no time was left for a second attempt)")
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                           timeout=left)
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"building the wheel did not finish within {left:.0f} s and was stopped: run "
                           f"“{shlex.join(argv)}” to see why it is slow") from exc
    lines = [ln.strip() for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    return r.returncode, lines[-30:], time.monotonic() - started


def _last(lines: Sequence[str]) -> str:
    """The most telling of pip's last lines: a line naming the error, else the last one."""
    for ln in reversed(lines):
        low = ln.lstrip("│╰─> ").strip()
        if re.fullmatch(r"error: [a-z-]+", low):  # pip's own summary (metadata-generation-failed …)
            continue
        if low.lower().startswith("error:") or "no module named" in low.lower():
            return low
    return lines[-1] if lines else "no output"


def _record_hash(data: bytes) -> str:
    """``sha256=<urlsafe base64, unpadded>`` (a RECORD's hash column, PEP 376/427)."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _rebuild(dist: importlib.metadata.Distribution, workdir: Path, out: Out | None) -> Path:
    started = time.monotonic()
    version = dist.version
    if version != __version__:
        raise InstallError(f"the installed deck-tray is {version} but the one running is {__version__}: restart "
                           f"deck-tray, then run this again")
    info_dir = f"{WHEEL_PREFIX}-{version}.dist-info"
    members: list[tuple[str, bytes, int]] = []
    changed: list[str] = []
    has: set[str] = set()
    for f in dist.files or []:
        parts = f.parts
        rel = f.as_posix()
        if not parts or parts[0] in ("..", "/") or Path(rel).is_absolute() or "__pycache__" in parts \
                or rel.endswith((".pyc", ".pyo")):
            continue
        if parts[0].endswith(".dist-info"):
            if len(parts) == 2 and parts[1] in _INSTALLER_FILES | {"WHEEL"}:
                continue
            arc = "/".join((info_dir, *parts[1:]))
            has.add(parts[1])
        else:
            arc = rel
        if rel.endswith((".so", ".pyd", ".dylib")):
            raise InstallError(f"the installed deck-tray holds a compiled file ({rel}); a py3-none-any wheel cannot "
                               f"carry it: run “deck-tray remote install” from a source checkout")
        path = Path(str(dist.locate_file(f)))
        try:
            data = path.read_bytes()
            mode = path.stat().st_mode
        except OSError as exc:
            raise InstallError(f"the installed deck-tray is incomplete ({path}: {exc.strerror}): reinstall it "
                               f"(pipx reinstall deck-tray, or pip install --force-reinstall), then run this "
                               f"again") from exc
        if f.hash is not None and f.hash.mode == "sha256" and _record_hash(data) != f"sha256={f.hash.value}":
            changed.append(rel)
        members.append((arc, data, mode))
    missing = {"METADATA", "entry_points.txt"} - has
    if missing or not any(a == "deck_tray/__init__.py" for a, _, _ in members):
        raise InstallError(f"the installed deck-tray's RECORD does not list {sorted(missing) or 'its package'}: "
                           f"reinstall it (pipx reinstall deck-tray), then run this again")
    if changed:
        _say(out, f"Note: {len(changed)} installed files differ from what the installer recorded (edited since?); "
                  f"the wheel carries them as they are now: {', '.join(changed[:5])}")
    wheel_text = ("Wheel-Version: 1.0\nGenerator: deck-tray remote install (rebuilt from the installed files)\n"
                  "Root-Is-Purelib: true\nTag: py3-none-any\n")
    members.append((f"{info_dir}/WHEEL", wheel_text.encode(), 0o100644))
    # The package first, the .dist-info last, RECORD at the very end (as wheel builders write it).
    members.sort(key=lambda m: (m[0].startswith(info_dir), m[0]))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arc, data, _ in members:
        writer.writerow([arc, _record_hash(data), len(data)])
    writer.writerow([f"{info_dir}/RECORD", "", ""])
    target = workdir / f"{WHEEL_PREFIX}-{version}-py3-none-any.whl"
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, data, mode in [*members, (f"{info_dir}/RECORD", record.getvalue().encode(), 0o100644)]:
            zi = zipfile.ZipInfo(arc, _ZIP_DATE)
            zi.external_attr = (stat.S_IFREG | (0o755 if mode & 0o111 else 0o644)) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    os.replace(tmp, target)
    site = Path(str(dist.locate_file("")))
    _say(out, f"Rebuilt {target.name} ({target.stat().st_size / 1000:.0f} kB, {len(members) + 1} files) from the "
              f"installed deck-tray {version} in {site} in {time.monotonic() - started:.2f} s")
    return target


# -- the plan ---------------------------------------------------------------------------------------

#: Chooses ``$py``: Python >= 3.11 (``python3``, else a versioned one), or says what was found and
#: exits 3. POSIX sh; no single quotes anywhere in the scripts (they travel in one).
_FIND_PYTHON = """\
# Python 3.11 or newer: python3, else python3.13, python3.12 or python3.11 (RHEL 9's python3 is 3.9).
py=
found=
for cand in python3 python3.13 python3.12 python3.11; do
    path=$(command -v "$cand" 2>/dev/null) || continue
    v=$("$path" --version 2>&1)
    v=${v#Python }
    v=${v%%[!0-9.]*}
    found="$found${found:+, }$path is ${v:-not a Python}"
    major=${v%%.*}
    rest=${v#*.}
    minor=${rest%%.*}
    case "$major:$minor" in
        *[!0-9:]* | :* | *:) continue ;;
    esac
    if [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 11 ]; }; then
        py=$path
        break
    fi
done
if [ -z "$py" ]; then
    echo "deck-tray: deck-tray needs Python 3.11 or newer, but ${found:-there is no python3 on the PATH}. \
Install Python 3.11 or newer there (Debian 12 and Ubuntu 24.04 have it as python3; RHEL 9: sudo dnf install \
python3.11), then run deck-tray remote install @NAME@ again." >&2
    exit 3
fi
"""

#: Sets the positional parameters to the pipx command (``pipx``, ``~/.local/bin/pipx`` or
#: ``$py -m pipx``), or to nothing.
_FIND_PIPX = """\
# pipx: on the PATH, else in ~/.local/bin (pip install --user pipx), else as a module of $py.
if pipx=$(command -v pipx 2>/dev/null); then
    set -- "$pipx"
elif [ -x "$HOME/.local/bin/pipx" ]; then
    set -- "$HOME/.local/bin/pipx"
elif "$py" -m pipx --version >/dev/null 2>&1; then
    set -- "$py" -m pipx
else
    set --
fi
"""

_CHECK = _FIND_PYTHON + _FIND_PIPX + """\
echo "Python: $py ($v)"
if [ $# -gt 0 ]; then
    echo "pipx: $*"
else
    echo "pipx: none (deck-tray goes into a venv of its own: ~/@VENV@)"
fi
echo "deck-tray now: $(command -v deck-tray 2>/dev/null || echo none on the PATH)"
"""

_COPY = """\
[ -n "$HOME" ] || { echo "deck-tray: HOME is not set there" >&2; exit 3; }
dir="$HOME/@CACHE@"
mkdir -p "$dir" || { echo "deck-tray: cannot make $dir there" >&2; exit 3; }
# The wheel arrives on stdin.
cat > "$dir/@WHEEL@.part" || { rm -f "$dir/@WHEEL@.part"; \
echo "deck-tray: could not write $dir/@WHEEL@.part there (is the disk full?)" >&2; exit 3; }
if command -v sha256sum >/dev/null 2>&1; then
    got=$(sha256sum < "$dir/@WHEEL@.part")
elif command -v shasum >/dev/null 2>&1; then
    got=$(shasum -a 256 < "$dir/@WHEEL@.part")
else
    got=$(python3 -c "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())" \
< "$dir/@WHEEL@.part")
fi
got=${got%% *}
if [ "$got" != "@SHA256@" ]; then
    rm -f "$dir/@WHEEL@.part"
    echo "deck-tray: the copy of @WHEEL@ there has sha256 ${got:-unknown}, not @SHA256@ (it was cut short or \
damaged on the way); nothing was installed: run deck-tray remote install @NAME@ again." >&2
    exit 3
fi
mv -f "$dir/@WHEEL@.part" "$dir/@WHEEL@" || exit 3
echo "sha256 $got: the copy in $dir/@WHEEL@ is intact"
"""

_INSTALL = _FIND_PYTHON + _FIND_PIPX + """\
run() { echo "+ $*"; "$@"; }
fail() { echo "deck-tray: $*" >&2; exit 3; }
[ -n "$HOME" ] || fail "HOME is not set there"
whl="$HOME/@CACHE@/@WHEEL@"
[ -f "$whl" ] || fail "$whl is not there (the copy step did not finish): run deck-tray remote install @NAME@ again."
if [ $# -gt 0 ]; then
    # pipx gives deck-tray a venv of its own and links its command into ~/.local/bin.
    run "$@" install --force --python "$py"@PIPX_NO_DEPS@ "$whl" || fail "pipx could not install $whl \
(its output is above). Fix what it says, then run deck-tray remote install @NAME@ again."
else
    # No pipx: a venv of deck-tray's own, its command linked into ~/.local/bin. Not pip install --user:
    # Debian 12 and Ubuntu 24.04 mark their system Python as externally managed (PEP 668) and pip refuses
    # to install into it.
    venv="$HOME/@VENV@"
    if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$venv"
        mkdir -p "${venv%/*}" || fail "cannot make ${venv%/*} there"
        if ! run "$py" -m venv "$venv"; then
            rm -rf "$venv"
            fail "$py -m venv could not make a venv (see above). On Debian and Ubuntu the venv module is a \
package of its own: run sudo apt install python3-venv there (or install pipx: sudo apt install pipx), then run \
deck-tray remote install @NAME@ again."
        fi
    fi
@DEPS@    run "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --force-reinstall --no-deps \
"$whl" || fail "pip could not install $whl into $venv (its output is above); run deck-tray remote install @NAME@ \
again once that is fixed."
    mkdir -p "$HOME/@BIN@" || fail "cannot make $HOME/@BIN@ there"
    run ln -sf "$venv/bin/deck-tray" "$HOME/@BIN@/deck-tray" || fail "cannot link $HOME/@BIN@/deck-tray there"
fi
echo "installed: $whl"
"""

#: The dependencies step of the venv path (left out with ``no_deps``): deck-tray's dependencies
#: first, so a failed download leaves a working older install alone.
_DEPS = """\
    # The dependencies (PySide6 and the rest) come from PyPI: this can take minutes.
    run "$venv/bin/python" -m pip install --disable-pip-version-check --no-input "$whl" || fail "pip could not \
install $whl with its dependencies into $venv (its output is above): check that the host reaches PyPI, then run \
deck-tray remote install @NAME@ again."
"""

_NO_DEPS_NOTE = """\
    # --no-deps asked for (tests, offline hosts): the dependencies must already be there.
"""


def version_command() -> str:
    """The command that prints ``deck-tray X.Y.Z`` on a host, found exactly as the app's
    connection finds deck-tray there (:data:`~deck_tray.services.remote.REMOTE_COMMAND` with
    ``serve --stdio`` replaced by ``--version``; exit 127 when it is missing)."""
    if "serve --stdio" in REMOTE_COMMAND:
        return REMOTE_COMMAND.replace("serve --stdio", "--version")
    return ('command -v deck-tray >/dev/null 2>&1 && exec deck-tray --version; '
            '[ -x "$HOME/.local/bin/deck-tray" ] && exec "$HOME/.local/bin/deck-tray" --version; '
            'echo "deck-tray: command not found" >&2; exit 127')


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z0-9_]+@", template)
    assert not left, f"unfilled {left}"
    return template


def file_sha256(path: Path) -> str:
    """The sha256 of a file, in hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def install_plan(host: HostConfig, ssh: Sequence[str], control: Path | None, wheel: Path, *,
                 sha256: str | None = None, no_deps: bool = False, timeouts: Timeouts = Timeouts()) -> InstallPlan:
    """What :func:`install` runs to put ``wheel`` on ``host`` (nothing runs here).

    Four ssh commands (``ssh`` + :func:`~deck_tray.services.remote.ssh_options` + ``-- DEST
    COMMAND``); the scripts are POSIX sh run as ``sh -c SCRIPT`` by the login shell there, and
    print ``deck-tray: <what happened and what to do>`` on stderr and exit 3 when they fail:

    1. check: Python >= 3.11 (``python3``, else ``python3.13``/``.12``/``.11``; else it names
       the versions found), pipx, and where deck-tray is now;
    2. copy: the wheel arrives on stdin into ``~/.cache/deck-tray/``, and is kept only when its
       sha256 (``sha256sum``, else ``shasum -a 256``, else Python) is ``sha256``;
    3. install: ``pipx install --force --python $py WHEEL`` when pipx is there; else a venv
       ``~/.local/share/deck-tray/venv`` (``$py -m venv``; missing python3-venv on Debian says
       ``sudo apt install python3-venv``), ``pip install WHEEL`` (with its dependencies), ``pip
       install --force-reinstall --no-deps WHEEL`` (the same version again still replaces the
       files), and a link ``~/.local/bin/deck-tray``. Each command is echoed (``+ …``) first;
    4. verify: :func:`version_command`, run directly by the login shell as the app does.

    Args:
        host: the host (its name is in the messages, which say to run ``deck-tray remote install
            NAME`` again).
        ssh: the ssh command words (:func:`~deck_tray.services.remote.ssh_base`).
        control: the shared-connection folder, or None.
        wheel: the local wheel (``deck_tray-<version>-py3-none-any.whl``).
        sha256: its hash in hex (computed when not given).
        no_deps: install without dependencies (``--no-deps``; ``--pip-args=--no-deps`` for pipx):
            for tests and for hosts without PyPI whose dependencies are already there.
        timeouts: each step's time limit.

    Raises:
        ValueError: the host's name or destination is not usable, or the file is not named as a
            deck-tray wheel.
        OSError: the wheel cannot be read.
    """
    m = _WHEEL_NAME.match(wheel.name)
    if m is None:
        raise ValueError(f"{wheel.name} is not named as a deck-tray wheel (deck_tray-VERSION-py3-none-any.whl)")
    if not wire.valid_host_name(host.name):
        raise ValueError(f"“{host.name}” cannot name a host")
    digest = sha256 or file_sha256(wheel)
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"{digest!r} is not a sha256 in hex")
    values = {"NAME": host.name, "WHEEL": wheel.name, "SHA256": digest, "CACHE": REMOTE_CACHE, "VENV": REMOTE_VENV,
              "BIN": REMOTE_BIN}
    deps = _NO_DEPS_NOTE if no_deps else _fill(_DEPS, NAME=host.name)
    scripts = [
        ("check for Python 3.11 or newer and for pipx", _fill(_CHECK, **values), timeouts.check, None),
        (f"copy {wheel.name} over ssh's stdin and check its sha256 there", _fill(_COPY, **values),
         timeouts.copy, wheel),
        ("install it with pipx, else into a venv of its own", _fill(_INSTALL.replace("@DEPS@", deps),
                                                                    PIPX_NO_DEPS=" --pip-args=--no-deps" if no_deps
                                                                    else "", **values),
         timeouts.install, None),
    ]
    steps = [PlanStep(title, f"sh -c {shlex.quote(script)}", script,
                      tuple(ssh_argv(ssh, host.dest, f"sh -c {shlex.quote(script)}", control)), limit, stdin)
             for title, script, limit, stdin in scripts]
    verify = version_command()
    steps.append(PlanStep("check that deck-tray --version answers there as the app will start it", verify, verify,
                          tuple(ssh_argv(ssh, host.dest, verify, control)), timeouts.verify))
    return InstallPlan(host, wheel, m["version"], digest, wheel.stat().st_size, tuple(steps))


# -- running it ----------------------------------------------------------------------------------


@dataclass
class _Ran:
    rc: int | None
    stdout: list[str]
    tail: list[str]
    timed_out: bool = False
    #: Why ssh could not be started at all (``""``: it ran).
    spawn_error: str = ""


async def _pump(stream: asyncio.StreamReader | None, keep: list[str], tail: list[str], out: Out) -> None:
    """Hand each line (ended by LF, CR or CRLF) to ``out`` as it arrives."""
    if stream is None:
        return
    buf = b""
    while chunk := await stream.read(65536):
        buf += chunk
        *lines, buf = re.split(rb"\r\n|\r|\n", buf)
        for raw in lines:
            _line(raw, keep, tail, out)
    if buf:
        _line(buf, keep, tail, out)


def _line(raw: bytes, keep: list[str], tail: list[str], out: Out) -> None:
    text = raw.decode("utf-8", "replace").rstrip()
    if not text.strip():
        return
    keep.append(text)
    tail.append(text)
    del tail[:-40]
    out(f"  {text}")


def _signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def _run_step(step: PlanStep, out: Out) -> _Ran:
    """Run one step's ssh, streaming its lines to ``out``; kill its process group after
    ``step.timeout`` seconds."""
    stdout: list[str] = []
    stderr: list[str] = []
    tail: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            stdin = stack.enter_context(step.stdin.open("rb")) if step.stdin is not None \
                else asyncio.subprocess.DEVNULL
            proc = await asyncio.create_subprocess_exec(*step.argv, stdin=stdin, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        return _Ran(None, [], [], spawn_error=f"{exc.filename or step.argv[0]}: {exc.strerror or exc}")
    readers = [asyncio.ensure_future(_pump(proc.stdout, stdout, tail, out)),
               asyncio.ensure_future(_pump(proc.stderr, stderr, tail, out))]
    timed_out = False
    try:
        rc: int | None = await asyncio.wait_for(proc.wait(), step.timeout)
    except TimeoutError:
        timed_out = True
        _signal_group(proc, signal.SIGTERM)
        try:
            rc = await asyncio.wait_for(proc.wait(), 3.0)
        except TimeoutError:
            _signal_group(proc, signal.SIGKILL)
            rc = await proc.wait()
    except asyncio.CancelledError:
        _signal_group(proc, signal.SIGKILL)
        raise
    finally:
        # A process that keeps the pipes open (none should) does not hold the step up.
        _done, pending = await asyncio.wait(readers, timeout=2.0)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return _Ran(rc, stdout, tail, timed_out)


def _complaint(tail: Sequence[str]) -> str:
    """The scripts' own ``deck-tray: …`` sentence (the last one), or ``""``."""
    for ln in reversed(tail):
        if ln.startswith("deck-tray: ") and ln != "deck-tray: command not found":
            return ln.removeprefix("deck-tray: ")
    return ""


def _ssh_failure(rc: int | None, tail: Sequence[str], ssh: Sequence[str], host: HostConfig) -> str:
    """explain()'s sentence for an ssh that failed, without its "keeps trying" (nothing retries here)."""
    _state, text = explain(rc, list(tail), ssh, host.dest, host.name)
    text = re.sub(r"[;.] deck-tray (connects again by itself|keeps trying)\.?$", ".", text)
    return f"{text} Then run “deck-tray remote install {host.name}” again."


async def install(host: HostConfig, ssh: Sequence[str], control: Path | None, *, out: Out,
                  workdir: Path | None = None, wheel: Path | None = None, no_deps: bool = False,
                  dry_run: bool = False, timeouts: Timeouts = Timeouts()) -> InstallResult:
    """Install this deck-tray's version on ``host``: :func:`this_wheel` (in an executor), then the
    steps of :func:`install_plan`, one ssh each, then compare ``deck-tray --version`` there.

    ``out`` gets, on the loop's thread, in order: the build's lines, the plan
    (:meth:`InstallPlan.text`, line by line), then per step a ``[i/n] title`` line followed by
    everything the host prints (stdout and stderr, each line indented by two spaces) as it
    arrives. Nothing waits for input: ssh runs with ``BatchMode=yes`` and stdin from
    ``/dev/null`` (the wheel, for the copy), and each step is killed (its process group) after
    its :class:`Timeouts` limit. Never raises for failures of the build, ssh or the host: they
    end in ``InstallResult(ok=False, detail=…)``.

    Args:
        host: where to install.
        ssh: the ssh command words (:func:`~deck_tray.services.remote.ssh_base`).
        control: the shared-connection folder (:func:`~deck_tray.services.remote.control_dir`),
            or None; made (0700) when missing.
        out: progress lines for the user.
        workdir: where the wheel is made (default: a temporary folder, removed at the end).
        wheel: install this wheel instead of making one (it must be a deck-tray wheel).
        no_deps: see :func:`install_plan` (tests, offline hosts).
        dry_run: make the wheel and show the plan, but run nothing there.
        timeouts: the limits of the build and of each step.

    Returns:
        ``ok`` when ``deck-tray --version`` there, found as the app will find it, is this
        wheel's version; ``detail`` says what happened and what to do; ``version`` is what it
        answered.
    """
    loop = asyncio.get_running_loop()

    def from_thread(line: str) -> None:
        loop.call_soon_threadsafe(out, line)

    tmp = tempfile.TemporaryDirectory(prefix="deck-tray-wheel-") if wheel is None and workdir is None else None
    try:
        if wheel is None:
            where = workdir if workdir is not None or tmp is None else Path(tmp.name)
            assert where is not None
            try:
                wheel = await loop.run_in_executor(
                    None, functools.partial(this_wheel, where, out=from_thread, timeout=timeouts.build))
            except InstallError as exc:
                return InstallResult(False, f"nothing was installed on {host.name}: {exc}")
        try:
            plan = install_plan(host, ssh, control, wheel, no_deps=no_deps, timeouts=timeouts)
        except (ValueError, OSError) as exc:
            return InstallResult(False, f"nothing was installed on {host.name}: {exc}")
        for line in plan.text().splitlines():
            out(line)
        if dry_run:
            return InstallResult(True, f"dry run: nothing was run on {host.name} ({host.dest})")
        if control is not None:
            control.mkdir(parents=True, exist_ok=True, mode=0o700)
        return await _run_plan(plan, ssh, out)
    finally:
        if tmp is not None:
            tmp.cleanup()


async def _run_plan(plan: InstallPlan, ssh: Sequence[str], out: Out) -> InstallResult:
    host = plan.host
    n = len(plan.steps)
    ran = _Ran(None, [], [])
    for i, step in enumerate(plan.steps, 1):
        out(f"[{i}/{n}] {step.title}")
        started = time.monotonic()
        ran = await _run_step(step, out)
        took = time.monotonic() - started
        log.info("remote install %s: step %d (%s) ended with %s in %.1f s", host.name, i, step.title, ran.rc, took)
        if ran.spawn_error:
            return InstallResult(False, f"step {i} ({step.title}) could not start ({ran.spawn_error}): nothing was "
                                        f"run on {host.name}. Install the OpenSSH client, or name the ssh command in "
                                        f"DECK_TRAY_SSH_COMMAND or the remote/ssh_command setting.")
        if ran.timed_out:
            return InstallResult(False, f"step {i} ({step.title}) did not finish within {step.timeout:g} s and was "
                                        f"stopped here (it may still be running on {host.dest}). Check the host's "
                                        f"network and load, then run “deck-tray remote install {host.name}” again.")
        if i == n:
            break
        if ran.rc == 0:
            continue
        if ran.rc == 255:
            return InstallResult(False, f"step {i} ({step.title}): {_ssh_failure(ran.rc, ran.tail, ssh, host)}")
        why = _complaint(ran.tail) or (f"it ended with exit code {ran.rc}; its last output: "
                                       f"{ran.tail[-1] if ran.tail else 'none'}. Run “deck-tray remote install "
                                       f"{host.name}” again once that is fixed.")
        return InstallResult(False, f"step {i} ({step.title}) failed on {host.name} ({host.dest}): {why}")
    answer = ran.stdout[-1].strip() if ran.stdout else ""
    version = answer.split()[-1] if answer.startswith("deck-tray ") else ""
    if ran.rc == 0 and version == plan.version:
        return InstallResult(True, f"deck-tray {version} is installed on {host.name} ({host.dest}) and answers "
                                   f"there as deck-tray will start it.", version)
    if ran.rc == 255:
        return InstallResult(False, f"the install finished, but the last check could not run: "
                                    f"{_ssh_failure(ran.rc, ran.tail, ssh, host)}")
    if ran.rc == 127 or not version:
        return InstallResult(False, f"the install on {host.name} finished, but deck-tray is not found there the "
                                    f"way the app starts it (its PATH, then ~/{REMOTE_BIN}/deck-tray): "
                                    f"{ran.tail[-1] if ran.tail else f'exit code {ran.rc}'}. Run “{version_command()}” "
                                    f"there to see why.", version)
    return InstallResult(False, f"the install on {host.name} finished, but deck-tray there still answers {version}, "
                                f"not {plan.version}: an older deck-tray comes first on the PATH of ssh commands "
                                f"there (see “deck-tray now:” in step 1). Remove it (pipx uninstall deck-tray, or "
                                f"pip uninstall deck-tray), then run “deck-tray remote install {host.name}” again.",
                         version)
