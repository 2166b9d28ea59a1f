"""End-to-end harness: a real ``opencode serve`` against a loopback fake chat-completions model.

Plain Python (no pytest import), like :mod:`tests.e2e.harness`.  Building blocks:

* :class:`FakeOpenAIModel` - ``tests/fakes/fake_llm_openai.py`` (OpenAI chat
  completions, the API opencode's ``@ai-sdk/openai-compatible`` provider speaks).
* :class:`OpencodeServe` - ``opencode serve`` on 127.0.0.1 in a scratch HOME
  with a git project whose ``opencode.json`` points at the fake model and sets
  ``"permission": {"bash": "ask"}``; can be SIGKILLed and restarted on the same
  port; small synchronous httpx helpers for the REST API.

Everything is a context manager and cleans up after itself (the server's
whole process tree is killed, also when the ``with`` body raises).  All waits
are deadline-based polls.

Example::

    with FakeOpenAIModel(tmp / "fake") as model, OpencodeServe(tmp / "oc", model.v1_url) as oc:
        sid = oc.create_session("demo")
        oc.prompt_async(sid, "[[bash:echo hi > out.txt]]")
        perm = wait_until(lambda: oc.get("/permission", directory=str(oc.project)), 30, "permission")[0]
        oc.post(f"/permission/{perm['id']}/reply", {"reply": "once"}, directory=str(oc.project))
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psutil

from .harness import FakeModel, HarnessError, find_agent_bin, wait_until

__all__ = [
    "OPENCODE_VERSION",
    "FakeOpenAIModel",
    "OpencodeServe",
    "find_opencode",
    "free_port",
    "opencode_config",
]

OPENCODE_VERSION = "1.18.33"
"""The opencode-ai version the e2e tests are pinned to (see ``scripts/test.sh``)."""

PROBE_TIMEOUT_S = 2.0
"""Per-request timeout of one health probe. opencode binds its port about a second before it
serves, and a request made then is never answered: a short timeout and another try (the
overall ``start_timeout`` stays generous); 2 s leaves a loaded machine room to answer."""

REQUEST_TIMEOUT_S = 15.0
"""Default per-request timeout of :meth:`OpencodeServe.get` / :meth:`OpencodeServe.post`."""

_POLL_S = 0.1


def find_opencode() -> str | None:
    """Path of the ``opencode`` executable (``$DECK_TRAY_AGENTS_DIR/node_modules/.bin``, then PATH), or None."""
    return find_agent_bin("opencode")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tree(pid: int) -> list[psutil.Process]:
    """``pid`` followed by all its descendants; empty if it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal_all(procs: list[psutil.Process], sig: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def opencode_config(model_url: str) -> dict[str, Any]:
    """The project ``opencode.json`` (as a dict) that points opencode at a fake model.

    ``model_url`` is the provider's base URL, e.g. ``http://127.0.0.1:PORT/v1``
    (``/v1`` is appended if missing).  Provider ``fake``, model ``fake/fake-model``
    (also the small/title model), ``"permission": {"bash": "ask"}`` (opencode
    1.18.33 allows bash without asking by default), no autoupdate, sharing,
    LSP or formatters.
    """
    base = model_url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return {
        "$schema": "https://opencode.ai/config.json",
        "model": "fake/fake-model",
        "small_model": "fake/fake-model",
        "enabled_providers": ["fake"],
        "autoupdate": False,
        "share": "disabled",
        "lsp": False,
        "formatter": False,
        "permission": {"bash": "ask"},
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake LLM",
                "options": {"baseURL": base, "apiKey": "sk-fake"},
                "models": {
                    "fake-model": {
                        "name": "Fake Model",
                        "tool_call": True,
                        "limit": {"context": 128000, "output": 4096},
                    }
                },
            }
        },
    }


# --------------------------------------------------------------------------- fake model


class FakeOpenAIModel(FakeModel):
    """``tests/fakes/fake_llm_openai.py`` (OpenAI chat completions) run as a subprocess.

    Same interface as :class:`tests.e2e.harness.FakeModel` (``start``/``stop``,
    context manager, :attr:`port`, :attr:`base_url`, :meth:`requests` reading the
    JSONL request log at :attr:`log_path`); adds :attr:`v1_url`.  ``workdir``
    (created if needed; a temp dir removed on stop when omitted) holds the port
    file, the request log and the server's output.  Prompt codes (``[[bash:CMD]]``,
    ``[[question]]``, ``[[todo]]``, ``[[slow]]``, ``[[http500]]``...) are listed in
    the script's docstring.  Raises :class:`HarnessError` if the server does not
    come up within ``start_timeout`` seconds.
    """

    SCRIPTS: dict[str, str] = {"chat": "fake_llm_openai.py"}

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        super().__init__("chat", workdir, env, start_timeout)  # type: ignore[arg-type]

    @property
    def v1_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the ``baseURL`` opencode's provider config wants."""
        return f"{self.base_url}/v1"


# --------------------------------------------------------------------------- opencode serve


class OpencodeServe:
    """A real ``opencode serve --hostname 127.0.0.1 --port N`` in a scratch HOME.

    Layout under ``workdir`` (created; left in place for the caller to remove):

    * ``home/`` - ``$HOME``; ``$XDG_CONFIG_HOME`` = ``home/.config``,
      ``$XDG_DATA_HOME`` = ``home/.local/share`` (the SQLite DB, so sessions survive
      :meth:`restart`), ``$XDG_CACHE_HOME`` = ``home/.cache``, ``$XDG_STATE_HOME`` =
      ``home/.local/state``.
    * ``project/`` - :attr:`project`, the server's cwd: a git repo with one commit
      holding ``opencode.json`` (:func:`opencode_config` for ``model_url``) and a README.
    * ``<name>/`` - further projects made by :meth:`add_project`.
    * ``opencode.log`` - :attr:`log_path`, the server's stdout+stderr (``--print-logs``),
      appended to across restarts.

    The environment is minimal (PATH, locale, the scratch HOME/XDG dirs) plus
    ``OPENCODE_DISABLE_AUTOUPDATE=1``, ``OPENCODE_DISABLE_MODELS_FETCH=1``,
    ``OPENCODE_DISABLE_LSP_DOWNLOAD=1`` and ``npm_config_registry=http://127.0.0.1:9/``
    so the server never waits on the network; ``password``/``username`` set
    ``OPENCODE_SERVER_PASSWORD``/``OPENCODE_SERVER_USERNAME`` (HTTP Basic auth on
    every route; username ``opencode`` by default).  ``extra_env`` is added last.
    ``port`` defaults to a free port, kept across :meth:`restart`.

    :meth:`start` (or ``with``) raises :class:`HarnessError` if the binary is
    missing, the process exits, or ``/global/health`` does not answer 200 within
    ``start_timeout`` seconds; :attr:`start_seconds` holds how long the last
    start took.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        model_url: str,
        *,
        password: str | None = None,
        username: str | None = None,
        port: int | None = None,
        binary: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
    ) -> None:
        self.workdir: Path = Path(workdir).resolve()
        self.model_url: str = model_url
        self.password: str | None = password
        self.username: str | None = username
        self.port: int = port or free_port()
        """TCP port on 127.0.0.1; the same for every (re)start."""
        self.binary: str | None = binary or find_opencode()
        self.start_timeout: float = start_timeout
        self.home: Path = self.workdir / "home"
        self.project: Path = self.workdir / "project"
        """The main project directory (server cwd, a git repo)."""
        self.log_path: Path = self.workdir / "opencode.log"
        self.env: dict[str, str] = self._make_env(extra_env or {})
        """The environment the server is started with."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None
        """Seconds from spawn until ``/global/health`` answered, for the last (re)start."""
        self._client: httpx.Client | None = None
        self._reaped = True  # no live process (group) of ours to signal

    # -- setup
    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str] | None:
        """``(username, password)`` for HTTP Basic auth, or None without a password."""
        if self.password is None:
            return None
        return (self.username or "opencode", self.password)

    @property
    def pid(self) -> int:
        """pid of the ``opencode`` process (the native binary; raises :class:`HarnessError` if not running)."""
        if self.proc is None or self.proc.poll() is not None:
            raise HarnessError("opencode serve is not running")
        return self.proc.pid

    def _make_env(self, extra: Mapping[str, str]) -> dict[str, str]:
        keep = ("PATH", "USER", "LOGNAME", "SHELL", "TZ")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(
            {
                "LANG": "C.UTF-8",
                "LC_ALL": "C.UTF-8",
                "HOME": str(self.home),
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "XDG_DATA_HOME": str(self.home / ".local" / "share"),
                "XDG_CACHE_HOME": str(self.home / ".cache"),
                "XDG_STATE_HOME": str(self.home / ".local" / "state"),
                "OPENCODE_DISABLE_AUTOUPDATE": "1",
                "OPENCODE_DISABLE_MODELS_FETCH": "1",
                "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
                "npm_config_registry": "http://127.0.0.1:9/",
                "npm_config_update_notifier": "false",
                "NO_UPDATE_NOTIFIER": "1",
            }
        )
        if self.password is not None:
            env["OPENCODE_SERVER_PASSWORD"] = self.password
        if self.username is not None:
            env["OPENCODE_SERVER_USERNAME"] = self.username
        env.update(extra)
        return env

    def _git(self, cwd: Path, *args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.email=test@example.invalid", "-c", "user.name=test", "-c", "commit.gpgsign=false"]
            + list(args),
            cwd=cwd,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def _make_project(self, path: Path) -> Path:
        if not (path / ".git").exists():
            path.mkdir(parents=True, exist_ok=True)
            (path / "opencode.json").write_text(json.dumps(opencode_config(self.model_url), indent=2) + "\n")
            # the README differs per project so each root commit (= opencode project id) is unique
            (path / "README.md").write_text(f"scratch project {path.name} ({path})\n")
            self._git(path, "init", "-q")
            self._git(path, "add", ".")
            self._git(path, "commit", "-qm", "init")
        return path

    def add_project(self, name: str) -> Path:
        """Create ``workdir/<name>`` as another project (git repo, same ``opencode.json``); return its path.

        Idempotent.  The server needs no restart: pass the path as ``directory=``.
        """
        if not name or "/" in name or name in {"home", "project"}:
            raise ValueError(f"bad project name {name!r}")
        return self._make_project(self.workdir / name)

    # -- lifecycle
    def start(self) -> Self:
        """Create HOME and the project (first time), spawn the server, wait until healthy."""
        if self.binary is None:
            raise HarnessError("opencode not found (set DECK_TRAY_AGENTS_DIR or PATH)")
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("opencode serve already running")
        for key in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            Path(self.env[key]).mkdir(parents=True, exist_ok=True)
        self._make_project(self.project)
        if _port_accepts(self.port):
            raise HarnessError(f"port {self.port} is already in use")
        argv = [self.binary, "serve", "--hostname", "127.0.0.1", "--port", str(self.port), "--print-logs"]
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== harness: starting {' '.join(argv)} ===\n".encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    argv,
                    cwd=self.project,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: killable as a whole
                )
            except OSError as exc:
                raise HarnessError(f"cannot start {self.binary}: {exc}") from exc
        self._reaped = False
        try:
            self.wait_healthy(self.start_timeout)
        except BaseException:
            self._kill_tree(signal.SIGKILL)
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def wait_healthy(self, timeout: float) -> dict[str, Any]:
        """Poll ``GET /global/health`` (``PROBE_TIMEOUT_S`` per try) until 200; return its JSON.

        Raises :class:`HarnessError` (with the log tail) if the process exits or
        ``timeout`` seconds pass.
        """
        deadline = time.monotonic() + timeout
        last: str = "no probe yet"
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise HarnessError(f"opencode serve exited ({code}) before healthy; log tail:\n{self.log_tail()}")
            try:
                resp = httpx.get(f"{self.url}/global/health", auth=self.auth, timeout=PROBE_TIMEOUT_S)
                if resp.status_code == 200:
                    body: dict[str, Any] = resp.json()
                    return body
                last = f"HTTP {resp.status_code}"
            except (httpx.HTTPError, ValueError) as exc:
                last = repr(exc)
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"opencode serve not healthy after {timeout:.0f} s (last probe: {last}); "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(_POLL_S)

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _kill_tree(self, sig: int, grace: float = 10.0) -> None:
        """Send ``sig`` to the server, its descendants and its process group; SIGKILL survivors after ``grace``."""
        self._close_client()
        if self.proc is None or self._reaped:
            return
        procs = _tree(self.proc.pid)
        _signal_all(procs, sig)
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        _, alive = psutil.wait_procs(procs, timeout=grace)
        if alive:
            _signal_all(alive, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=grace)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers that left the tree but not the group
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self._reaped = True
        wait_until(lambda: not _port_accepts(self.port), 15, f"port {self.port} to be free", interval=_POLL_S)

    def kill9(self) -> None:
        """SIGKILL the whole server process tree (a crash) and wait until the port is free."""
        self._kill_tree(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM the server tree (SIGKILL after 10 s) and wait until the port is free; idempotent."""
        self._kill_tree(signal.SIGTERM)
        self.proc = None

    def restart(self) -> Self:
        """Stop the server if it still runs, then :meth:`start` it again (same port, HOME, project)."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, chars: int = 4000) -> str:
        """The last ``chars`` characters of :attr:`log_path` ('' if absent)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- REST helpers
    @property
    def client(self) -> httpx.Client:
        """An ``httpx.Client`` on :attr:`url` with :attr:`auth` (recreated after a stop/kill)."""
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, auth=self.auth, timeout=REQUEST_TIMEOUT_S)
        return self._client

    @staticmethod
    def _parse(resp: httpx.Response) -> Any:
        resp.raise_for_status()
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        """``GET path?params`` -> parsed JSON.

        Raises ``httpx.HTTPStatusError`` on a non-2xx answer, ``httpx.TimeoutException``
        after ``REQUEST_TIMEOUT_S``.  Note: unknown GET paths answer 200 text/html
        (the web UI), which makes ``.json()`` raise ``ValueError``.
        """
        return self._parse(self.client.get(path, params=params))

    def post(self, path: str, json: Any = None, **params: Any) -> Any:
        """``POST path?params`` with a JSON body (``{}`` when None) -> parsed JSON, or None for 204/empty.

        Raises like :meth:`get`.
        """
        return self._parse(self.client.post(path, json={} if json is None else json, params=params))

    def create_session(self, title: str | None = None, directory: str | os.PathLike[str] | None = None) -> str:
        """``POST /session`` (in ``directory``, default the server cwd = :attr:`project`); return the ``ses_...`` id."""
        body = {} if title is None else {"title": title}
        params = {} if directory is None else {"directory": str(directory)}
        session = self.post("/session", body, **params)
        return str(session["id"])

    def prompt_async(self, session_id: str, text: str) -> None:
        """``POST /session/{id}/prompt_async`` with one text part (204; the turn runs in the background)."""
        self.post(f"/session/{session_id}/prompt_async", {"parts": [{"type": "text", "text": text}]})
