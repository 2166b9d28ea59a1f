"""Passwords of opencode servers: environment → keyring → this run's memory (DESIGN.md §2).

Lookup order for a server URL:

1. a password the user typed into deck-tray during this run (it answered a 401, so it wins);
2. ``OPENCODE_SERVER_PASSWORD`` from the environment, if set (opencode's own variable);
3. the keyring: service ``deck-tray``, user name = the server's base URL.

The user name is ``OPENCODE_SERVER_USERNAME`` or ``opencode`` (opencode 1.18.33's default).
Keyring calls can block (D-Bus, an unlock prompt): call :meth:`Credentials.lookup`,
:meth:`Credentials.store` and :meth:`Credentials.forget` from an executor, never the GUI
thread. Nothing here logs a password.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import keyring
import keyring.errors

log = logging.getLogger(__name__)

#: Keyring service name; one entry per server URL.
SERVICE = "deck-tray"


@dataclass(frozen=True)
class StoreResult:
    """Where a password went.

    Attributes:
        persistent: True when it is in the keyring (survives a restart).
        detail: what happened, for the user (e.g. why the keyring could not be used).
    """

    persistent: bool
    detail: str


class Credentials:
    """Looks up, stores and forgets opencode server passwords.

    Args:
        env: environment to read ``OPENCODE_SERVER_PASSWORD`` / ``OPENCODE_SERVER_USERNAME`` from.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()

    def username(self) -> str:
        """The HTTP Basic user name opencode expects."""
        return self._env.get("OPENCODE_SERVER_USERNAME") or "opencode"

    def lookup(self, url: str) -> str | None:
        """The password for ``url``, or None. Blocking (keyring)."""
        with self._lock:
            if url in self._memory:
                return self._memory[url]
        env = self._env.get("OPENCODE_SERVER_PASSWORD")
        if env:
            return env
        try:
            return keyring.get_password(SERVICE, url)
        except (keyring.errors.KeyringError, RuntimeError, OSError) as exc:
            log.info("keyring lookup for %s failed: %s", url, type(exc).__name__)
            return None

    def store(self, url: str, password: str) -> StoreResult:
        """Remember ``password`` for ``url``: in the keyring if one works, else for this run. Blocking."""
        with self._lock:
            self._memory[url] = password
        try:
            keyring.set_password(SERVICE, url, password)
        except (keyring.errors.KeyringError, RuntimeError, OSError) as exc:
            log.warning("no usable keyring (%s); the password for %s is kept until deck-tray quits",
                        type(exc).__name__, url)
            return StoreResult(False, "No keyring is available on this desktop, so the password is kept "
                                      "only until deck-tray quits. Install and unlock a Secret Service "
                                      "keyring (GNOME Keyring, KWallet) to keep it.")
        return StoreResult(True, "Password saved in the keyring.")

    def forget(self, url: str) -> None:
        """Drop the stored password for ``url`` (memory and keyring). Blocking."""
        with self._lock:
            self._memory.pop(url, None)
        try:
            keyring.delete_password(SERVICE, url)
        except (keyring.errors.KeyringError, RuntimeError, OSError):
            pass
