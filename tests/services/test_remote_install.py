"""``deck-tray remote install`` (#18), deck_tray.services.remote_install, with real parts where they
run here: the wheel built by pip from this checkout and installed into a scratch venv; the wheel
rebuilt from a real non-editable install; the plan's scripts run by a real POSIX sh (dash) as the
"remote", with a private HOME, the real Debian python3, its venv module and pip; and install()
end to end through a stand-in for ssh (the edge: it runs the command with sh in that HOME).
Fakes only where this machine has no such thing: pipx, a Python that is too old, a Debian
without python3-venv, a host that refuses the login or never answers."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import os
import shutil
import site
import stat
import subprocess
import sys
import textwrap
import time
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deck_tray import __version__
from deck_tray.services import remote_install
from deck_tray.services.remote import HostConfig
from deck_tray.services.remote_install import (
    InstallError,
    InstallPlan,
    Timeouts,
    install,
    install_plan,
    this_wheel,
    version_command,
)

ROOT = Path(__file__).resolve().parents[2]
WHEEL_NAME = f"deck_tray-{__version__}-py3-none-any.whl"
#: The Python a Debian host has (3.11.2 with python3-venv here): the "remote" runs it.
SYSTEM_PYTHON = Path("/usr/bin/python3")
HOST = HostConfig("lab", "me@lab.example")

needs_system_python = pytest.mark.skipif(
    not SYSTEM_PYTHON.exists() or subprocess.run([str(SYSTEM_PYTHON), "-c", "import ensurepip, venv"],
                                                 capture_output=True).returncode != 0,
    reason="needs /usr/bin/python3 (>= 3.11, as the remote's) with its venv module (python3-venv)")


# -- helpers ----------------------------------------------------------------------------------------

def make_venv(where: Path, borrow_deps: bool = False) -> Path:
    """A venv without pip (``pip --python`` installs into it); its python. With ``borrow_deps``
    this interpreter's site-packages come after the venv's own (a .pth file: the .pth files there,
    this checkout's editable install among them, are not run)."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    if borrow_deps:
        (site_dir,) = where.glob("lib/python3*/site-packages")
        (site_dir / "deps_from_the_test.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return where / "bin" / "python"


def pip_install(py: Path, wheel: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                        "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def isolated_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, **extra}


def version_in(py: Path, cwd: Path) -> str:
    r = subprocess.run([str(py), "-I", "-c", "import deck_tray, sys; print(deck_tray.__version__, deck_tray.__file__)"],
                       cwd=cwd, env=isolated_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    version, where = r.stdout.split()
    assert Path(where).is_relative_to(py.parent.parent), where  # that venv's copy, not this checkout
    return version


def record_ok(wheel: Path) -> list[str]:
    """The wheel's names, after checking every RECORD row's sha256 and size (PEP 427)."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (record_name,) = [n for n in names if n.endswith(".dist-info/RECORD")]
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode())))
        assert sorted(r[0] for r in rows) == sorted(names)
        for path, digest, size in rows:
            if path == record_name:
                assert digest == size == ""
                continue
            data = zf.read(path)
            want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (want, len(data)), path
    return names


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(0o755)
    return path


def step(plan: InstallPlan, word: str) -> str:
    (found,) = [s.script for s in plan.steps if s.title.startswith(word)]
    return found


def sh(script: str, home: Path, path: str, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a plan script as ssh would on the "remote": ``sh -c SCRIPT`` with only HOME and PATH."""
    with open(stdin or os.devnull, "rb") as f:
        r = subprocess.run(["/bin/sh", "-c", script], stdin=f, env={"HOME": str(home), "PATH": path},
                           capture_output=True, timeout=300)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())


# -- the wheel ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkout_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, float, list[str]]]:
    """this_wheel() of this test process, which runs from this checkout (editable): ``(wheel,
    seconds, progress lines)``."""
    lines: list[str] = []
    started = time.monotonic()
    wheel = this_wheel(tmp_path_factory.mktemp("checkout-wheel"), out=lines.append)
    yield wheel, time.monotonic() - started, lines


def test_wheel_built_from_this_checkout_installs_and_is_this_version(
        checkout_wheel: tuple[Path, float, list[str]], tmp_path: Path) -> None:
    wheel, took, lines = checkout_wheel
    print(f"built in {took:.1f} s:", *lines, sep="\n  ")
    assert wheel.name == WHEEL_NAME and took < 120
    assert any(ln.startswith("$ ") and " -m pip wheel --no-deps " in ln for ln in lines)  # it says what it runs
    names = record_ok(wheel)
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "deck_tray").rglob("*.py")}
    assert modules <= set(names), modules - set(names)  # the working tree, as it is now
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "build/"))]
    assert not list(wheel.parent.glob("src-*")), "the copy of the checkout is removed"
    py = make_venv(tmp_path / "venv")
    pip_install(py, wheel)
    assert version_in(py, tmp_path) == __version__
    assert (tmp_path / "venv" / "bin" / "deck-tray").exists()


REBUILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from deck_tray.services.remote_install import this_wheel
    import deck_tray
    print("running", deck_tray.__file__, file=sys.stderr)
    for d in sys.argv[1:]:
        print(this_wheel(Path(d), out=lambda line: print(line, file=sys.stderr)))
""")


def test_wheel_rebuilt_from_a_non_editable_install(checkout_wheel: tuple[Path, float, list[str]],
                                                    tmp_path: Path) -> None:
    """A deck-tray installed from a wheel (not editable; its dependencies borrowed from this
    Python) makes its wheel from its RECORD: valid (every hash), the same files as the wheel it
    was installed from, the same bytes twice, and it installs and imports in a second venv."""
    original, _, _ = checkout_wheel
    installed = make_venv(tmp_path / "installed", borrow_deps=True)
    pip_install(installed, original)
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    out1.mkdir()
    out2.mkdir()
    started = time.monotonic()
    r = subprocess.run([str(installed), "-I", "-c", REBUILD, str(out1), str(out2)], cwd=tmp_path, env=isolated_env(),
                       capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"rebuilt twice in a fresh interpreter in {took:.2f} s:\n{r.stderr}")
    assert f"running {tmp_path / 'installed'}" in r.stderr  # the installed copy ran, not this checkout
    assert "Rebuilt " in r.stderr and "from the installed deck-tray" in r.stderr
    first, second = (Path(p) for p in r.stdout.split())
    assert first.name == second.name == WHEEL_NAME
    assert first.read_bytes() == second.read_bytes()  # reproducible
    names = record_ok(first)
    with zipfile.ZipFile(original) as a, zipfile.ZipFile(first) as b:
        assert sorted(names) == sorted(a.namelist())
        for n in a.namelist():
            if n.startswith("deck_tray/") or n.endswith(("METADATA", "entry_points.txt")):
                assert a.read(n) == b.read(n), n
        wheel_file = b.read(f"deck_tray-{__version__}.dist-info/WHEEL").decode()
        assert "Root-Is-Purelib: true" in wheel_file and "Tag: py3-none-any" in wheel_file
        assert "Wheel-Version: 1.0" in wheel_file
        assert not [n for n in b.namelist() if n.endswith(("INSTALLER", "REQUESTED", "direct_url.json"))]
    second_venv = make_venv(tmp_path / "second")
    pip_install(second_venv, first)
    assert version_in(second_venv, tmp_path) == __version__
    r = subprocess.run([str(tmp_path / "second" / "bin" / "deck-tray"), "--version"], cwd=tmp_path,
                       env=isolated_env(), capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == f"deck-tray {__version__}", r.stderr


def test_a_pyinstaller_bundle_says_it_cannot_install_itself(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(InstallError) as err:
        this_wheel(tmp_path)
    text = str(err.value)
    assert "PyInstaller bundle" in text and "cannot install itself" in text and "pipx install" in text
    assert not list(tmp_path.iterdir())


# -- the plan, run by a real sh as the remote -------------------------------------------------------

def test_the_plan_text_shows_every_command(checkout_wheel: tuple[Path, float, list[str]], tmp_path: Path) -> None:
    wheel, _, _ = checkout_wheel
    plan = install_plan(HOST, ["ssh"], tmp_path / "ctl", wheel)
    text = plan.text()
    assert [s.title.split()[0] for s in plan.steps] == ["check", "copy", "install", "check"]
    assert "ssh -T -o BatchMode=yes" in text and "-- me@lab.example COMMAND" in text
    assert plan.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest() and plan.sha256 in text
    for s in plan.steps:
        assert s.argv[:4] == ("ssh", "-T", "-o", "BatchMode=yes") and s.argv[-2:] == (HOST.dest, s.command)
        assert f"ControlPath={tmp_path / 'ctl'}/%C" in s.argv
        for line in s.script.splitlines():
            assert line in text
    assert plan.steps[1].stdin == wheel and [s.stdin for s in plan.steps].count(None) == 3
    assert plan.steps[-1].command == version_command() and "--version" in version_command()
    assert "PEP 668" in step(plan, "install") and "pipx install" not in step(plan, "install")  # "$@" install …
    assert "--no-deps" not in step(plan, "install").replace("--force-reinstall --no-deps", "")
    assert "--pip-args=--no-deps" in step(install_plan(HOST, ["ssh"], None, wheel, no_deps=True), "install")
    print(text)


@needs_system_python
def test_the_plan_installs_into_a_venv_without_pipx(checkout_wheel: tuple[Path, float, list[str]],
                                                    tmp_path: Path) -> None:
    """No pipx: the real python3 makes ~/.local/share/deck-tray/venv, its pip installs the wheel
    (--no-deps: nothing is downloaded here), ~/.local/bin/deck-tray links to it, and the app's
    command finds it. Installing again (the same version) works as well."""
    wheel, _, _ = checkout_wheel
    home, path = tmp_path / "home", "/usr/bin:/bin"
    home.mkdir()
    plan = install_plan(HOST, ["ssh"], None, wheel, no_deps=True)
    timings = {}
    for _ in range(2):
        for s in plan.steps[:3]:
            started = time.monotonic()
            r = sh(s.script, home, path, s.stdin)
            timings[s.title.split()[0]] = time.monotonic() - started
            assert r.returncode == 0, f"{s.title}:\n{r.stdout}\n{r.stderr}"
            if s is plan.steps[0]:
                assert f"Python: {SYSTEM_PYTHON} (3." in r.stdout and "pipx: none" in r.stdout
            if s is plan.steps[2]:
                assert f"+ {home}/.local/share/deck-tray/venv/bin/python -m pip install" in r.stdout
        print(timings)
    assert "+ /usr/bin/python3 -m venv" not in r.stdout  # the second time the venv is reused
    cached = home / ".cache" / "deck-tray" / WHEEL_NAME
    assert cached.read_bytes() == wheel.read_bytes() and not cached.with_suffix(".whl.part").exists()
    link = home / ".local" / "bin" / "deck-tray"
    assert link.is_symlink() and link.resolve() == (home / ".local/share/deck-tray/venv/bin/deck-tray").resolve()
    r = sh(plan.steps[3].script, home, path)
    assert (r.returncode, r.stdout.strip()) == (0, f"deck-tray {__version__}"), r.stderr


@needs_system_python
def test_the_plan_uses_pipx_when_there(checkout_wheel: tuple[Path, float, list[str]], tmp_path: Path) -> None:
    """pipx on the PATH (a stand-in recording its argv): ``pipx install --force --python PY
    --pip-args=--no-deps WHEEL``, and no venv of deck-tray's own."""
    wheel, _, _ = checkout_wheel
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    write_exe(bin_dir / "pipx", f"""
        #!/bin/sh
        printf '%s\\n' "$@" > {tmp_path}/pipx-argv
        mkdir -p "$HOME/.local/bin"
        printf '#!/bin/sh\\necho "deck-tray {__version__}"\\n' > "$HOME/.local/bin/deck-tray"
        chmod +x "$HOME/.local/bin/deck-tray"
    """)
    path = f"{bin_dir}:/usr/bin:/bin"
    plan = install_plan(HOST, ["ssh"], None, wheel, no_deps=True)
    r = sh(plan.steps[0].script, home, path)
    assert r.returncode == 0 and f"pipx: {bin_dir}/pipx" in r.stdout, r.stdout + r.stderr
    for s in plan.steps[1:3]:
        r = sh(s.script, home, path, s.stdin)
        assert r.returncode == 0, r.stdout + r.stderr
    cached = home / ".cache" / "deck-tray" / WHEEL_NAME
    assert (tmp_path / "pipx-argv").read_text().splitlines() == [
        "install", "--force", "--python", str(SYSTEM_PYTHON), "--pip-args=--no-deps", str(cached)]
    assert f"+ {bin_dir}/pipx install --force" in r.stdout
    assert not (home / ".local" / "share" / "deck-tray").exists()
    r = sh(plan.steps[3].script, home, "/usr/bin:/bin")  # the app's command finds ~/.local/bin/deck-tray
    assert r.stdout.strip() == f"deck-tray {__version__}"


@pytest.mark.parametrize("others", [[], ["python3.12"]], ids=["only-3.9", "with-3.12"])
def test_a_python_older_than_3_11_is_named(tmp_path: Path, others: list[str]) -> None:
    """python3 is 3.9 (RHEL 9): the check says so and stops; a python3.12 next to it is taken."""
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    home.mkdir()
    write_exe(bin_dir / "python3", '#!/bin/sh\necho "Python 3.9.18"\n')
    for name in others:
        write_exe(bin_dir / name, '#!/bin/sh\necho "Python 3.12.1"\n')
    fake_wheel = tmp_path / WHEEL_NAME
    fake_wheel.write_bytes(b"not used")
    plan = install_plan(HOST, ["ssh"], None, fake_wheel)
    for s in (plan.steps[0], plan.steps[2]):
        r = sh(s.script, home, str(bin_dir))  # nothing else on the PATH: /usr/bin has a python3.11
        if others:
            assert r.returncode == 0 and f"Python: {bin_dir}/python3.12 (3.12.1)" in r.stdout, r.stdout + r.stderr
            break
        assert r.returncode == 3 and not r.stdout.strip(), r.stdout
        assert r.stderr.strip() == (
            f"deck-tray: deck-tray needs Python 3.11 or newer, but {bin_dir}/python3 is 3.9.18. Install Python "
            "3.11 or newer there (Debian 12 and Ubuntu 24.04 have it as python3; RHEL 9: sudo dnf install "
            "python3.11), then run deck-tray remote install lab again.")


@needs_system_python
def test_a_debian_without_python3_venv_is_told_what_to_install(tmp_path: Path) -> None:
    """``python3 -m venv`` fails as on a Debian without python3-venv: the message names
    ``sudo apt install python3-venv`` (or pipx), and no half-made venv is left."""
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    write_exe(bin_dir / "python3", f"""
        #!/bin/sh
        if [ "$1" = -m ] && [ "$2" = venv ]; then
            mkdir -p "$3/bin"
            echo "The virtual environment was not created successfully because ensurepip is not"
            echo "available.  On Debian/Ubuntu systems, you need to install the python3-venv"
            exit 1
        fi
        exec {SYSTEM_PYTHON} "$@"
    """)
    wheel = home / ".cache" / "deck-tray" / WHEEL_NAME
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b"copied before")
    plan = install_plan(HOST, ["ssh"], None, wheel)
    r = sh(step(plan, "install"), home, f"{bin_dir}:/usr/bin:/bin")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "ensurepip is not" in r.stdout  # python's own words are shown too
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"deck-tray: {bin_dir}/python3 -m venv could not make a venv")
    assert "sudo apt install python3-venv" in last and "sudo apt install pipx" in last
    assert "deck-tray remote install lab again" in last
    assert not (home / ".local" / "share" / "deck-tray" / "venv").exists()


@needs_system_python
@pytest.mark.parametrize("login_shell", ["/bin/sh", "/bin/bash"])
def test_the_login_shell_hands_the_script_to_sh_unchanged(tmp_path: Path, login_shell: str) -> None:
    """ssh gives COMMAND (``sh -c 'SCRIPT'``) to the user's login shell: dash and bash both pass the
    script through as it is (its quotes, ``$`` and newlines)."""
    if not Path(login_shell).exists():
        pytest.skip(f"no {login_shell}")
    fake_wheel = tmp_path / WHEEL_NAME
    fake_wheel.write_bytes(b"x")
    check = install_plan(HOST, ["ssh"], None, fake_wheel).steps[0]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    direct = subprocess.run(["/bin/sh", "-c", check.script], env=env, capture_output=True, text=True, timeout=60)
    through = subprocess.run([login_shell, "-c", check.command], env=env, capture_output=True, text=True, timeout=60)
    assert direct.returncode == through.returncode == 0, through.stderr
    assert through.stdout == direct.stdout and f"Python: {SYSTEM_PYTHON}" in through.stdout


def test_a_damaged_copy_is_refused(checkout_wheel: tuple[Path, float, list[str]], tmp_path: Path) -> None:
    wheel, _, _ = checkout_wheel
    home = tmp_path / "home"
    home.mkdir()
    damaged = tmp_path / "cut-short"
    damaged.write_bytes(wheel.read_bytes()[:1000])
    r = sh(install_plan(HOST, ["ssh"], None, wheel).steps[1].script, home, "/usr/bin:/bin", damaged)
    assert r.returncode == 3
    assert f"has sha256 {hashlib.sha256(damaged.read_bytes()).hexdigest()}, not" in r.stderr
    assert "nothing was installed" in r.stderr
    assert not list((home / ".cache" / "deck-tray").iterdir())


# -- install() through a stand-in ssh --------------------------------------------------------------

FAKE_SSH = """
    #!/bin/sh
    # ssh's stand-in: records each call, skips the options deck-tray gives, and runs COMMAND with sh
    # as the remote login shell would, in the remote's HOME and PATH only.
    while [ $# -gt 0 ]; do
        case $1 in
            --) shift; break ;;
            -o) shift 2 ;;
            *) shift ;;
        esac
    done
    echo "$1" >> {log}
    {before}
    exec env -i HOME={home} PATH={path} /bin/sh -c "$2"
"""


def fake_ssh(tmp_path: Path, path: str, before: str = "") -> tuple[list[str], Path, Path]:
    home, log = tmp_path / "remote-home", tmp_path / "ssh.log"
    home.mkdir(exist_ok=True)
    exe = write_exe(tmp_path / "ssh", FAKE_SSH.format(log=log, home=home, path=path, before=before))
    return [str(exe)], home, log


@needs_system_python
def test_install_end_to_end(qloop: asyncio.AbstractEventLoop, checkout_wheel: tuple[Path, float, list[str]],
                            tmp_path: Path) -> None:
    wheel, _, _ = checkout_wheel
    ssh, home, log = fake_ssh(tmp_path, "/usr/bin:/bin")
    lines: list[str] = []
    control = tmp_path / "ctl"
    started = time.monotonic()
    result = qloop.run_until_complete(install(HOST, ssh, control, out=lines.append, wheel=wheel, no_deps=True))
    print(f"install() in {time.monotonic() - started:.1f} s")
    assert result.ok and result.version == __version__, "\n".join(lines) + f"\n{result}"
    assert result.detail == f"deck-tray {__version__} is installed on lab (me@lab.example) and answers there as " \
                            "deck-tray will start it."
    assert lines[0].startswith(f"Install deck-tray {__version__} on lab (me@lab.example)")
    assert [ln for ln in lines if ln.startswith("[")][-4:] == [
        "[1/4] check for Python 3.11 or newer and for pipx",
        f"[2/4] copy {WHEEL_NAME} over ssh's stdin and check its sha256 there",
        "[3/4] install it with pipx, else into a venv of its own",
        "[4/4] check that deck-tray --version answers there as the app will start it"]
    assert "  pipx: none (deck-tray goes into a venv of its own: ~/.local/share/deck-tray/venv)" in lines
    assert f"  + {SYSTEM_PYTHON} -m venv {home}/.local/share/deck-tray/venv" in lines
    assert lines[-1] == f"  deck-tray {__version__}"
    assert log.read_text().splitlines() == [HOST.dest] * 4
    assert stat.S_IMODE(control.stat().st_mode) == 0o700


@needs_system_python
def test_install_reports_an_old_deck_tray_first_on_the_path(qloop: asyncio.AbstractEventLoop, tmp_path: Path,
                                                            checkout_wheel: tuple[Path, float, list[str]]) -> None:
    wheel, _, _ = checkout_wheel
    old = tmp_path / "old-bin"
    write_exe(old / "deck-tray", '#!/bin/sh\necho "deck-tray 0.0.9"\n')
    write_exe(old / "pipx", "#!/bin/sh\nexit 0\n")
    ssh, _, _ = fake_ssh(tmp_path, f"{old}:/usr/bin:/bin")
    lines: list[str] = []
    result = qloop.run_until_complete(install(HOST, ssh, None, out=lines.append, wheel=wheel))
    assert not result.ok and result.version == "0.0.9"
    assert "still answers 0.0.9, not" in result.detail and "comes first on the PATH" in result.detail
    assert f"  deck-tray now: {old}/deck-tray" in lines


def test_install_says_what_to_do_when_ssh_cannot_log_in(qloop: asyncio.AbstractEventLoop, tmp_path: Path,
                                                        checkout_wheel: tuple[Path, float, list[str]]) -> None:
    wheel, _, _ = checkout_wheel
    ssh, _, log = fake_ssh(tmp_path, "/usr/bin:/bin",
                           before='echo "me@lab.example: Permission denied (publickey)." >&2; exit 255')
    result = qloop.run_until_complete(install(HOST, ssh, None, out=lambda _line: None, wheel=wheel))
    assert not result.ok and result.detail.startswith("step 1 (check for Python")
    assert "could not log in" in result.detail and f"run “{ssh[0]} me@lab.example” in a terminal" in result.detail
    assert "connects again by itself" not in result.detail
    assert result.detail.endswith("Then run “deck-tray remote install lab” again.")
    assert len(log.read_text().splitlines()) == 1  # nothing after the failed step


def test_install_without_ssh_says_so(qloop: asyncio.AbstractEventLoop, tmp_path: Path,
                                     checkout_wheel: tuple[Path, float, list[str]]) -> None:
    wheel, _, _ = checkout_wheel
    result = qloop.run_until_complete(install(HOST, [str(tmp_path / "no-ssh")], None, out=lambda _line: None,
                                              wheel=wheel))
    assert not result.ok and "could not start" in result.detail and "No such file" in result.detail
    assert "Install the OpenSSH client" in result.detail


def test_install_never_hangs(qloop: asyncio.AbstractEventLoop, tmp_path: Path,
                             checkout_wheel: tuple[Path, float, list[str]]) -> None:
    """A host that never answers: the step is stopped at its limit, with everything it started."""
    wheel, _, _ = checkout_wheel
    pids = tmp_path / "pids"
    ssh, _, _ = fake_ssh(tmp_path, "/usr/bin:/bin", before=f'sleep 300 & echo $! > {pids}; wait')
    started = time.monotonic()
    result = qloop.run_until_complete(install(HOST, ssh, None, out=lambda _line: None, wheel=wheel,
                                              timeouts=Timeouts(check=0.5)))
    took = time.monotonic() - started
    assert not result.ok and took < 5, (took, result)
    assert result.detail.startswith("step 1 (check for Python 3.11 or newer and for pipx) did not finish within 0.5 s")
    assert "deck-tray remote install lab" in result.detail
    sleeper = int(pids.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{sleeper}").exists() \
            and Path(f"/proc/{sleeper}/stat").read_text().split()[2] != "Z":
        time.sleep(0.05)
    assert not Path(f"/proc/{sleeper}").exists() or Path(f"/proc/{sleeper}/stat").read_text().split()[2] == "Z"


def test_dry_run_builds_and_shows_but_runs_nothing(qloop: asyncio.AbstractEventLoop, tmp_path: Path,
                                                  checkout_wheel: tuple[Path, float, list[str]]) -> None:
    wheel, _, _ = checkout_wheel
    ssh, _, log = fake_ssh(tmp_path, "/usr/bin:/bin")
    lines: list[str] = []
    result = qloop.run_until_complete(install(HOST, ssh, None, out=lines.append, wheel=wheel, dry_run=True))
    assert result.ok and result.detail == "dry run: nothing was run on lab (me@lab.example)"
    assert "\n".join(lines) == install_plan(HOST, ssh, None, wheel).text()
    assert not log.exists()


def test_a_failed_build_is_a_result_not_an_exception(qloop: asyncio.AbstractEventLoop, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    ssh, _, log = fake_ssh(tmp_path, "/usr/bin:/bin")
    result = qloop.run_until_complete(install(HOST, ssh, None, out=lambda _line: None, workdir=tmp_path))
    assert not result.ok and result.detail.startswith("nothing was installed on lab: this deck-tray")
    assert not log.exists()


def test_module_constants_match_the_remote_command() -> None:
    """The venv's link goes where REMOTE_COMMAND looks when PATH has no deck-tray."""
    assert f'"$HOME/{remote_install.REMOTE_BIN}/deck-tray"' in version_command()
    assert shutil.which("sh") is not None
