"""The HTTP plumbing the fake model servers share (``fake_llm_*.py`` beside this file).

Standard library only, as the fakes are. Each fake subclasses :class:`FakeHandler` for its routes
and replies, and hands it to :func:`serve` from its ``main()``:

* the command line every fake takes: ``--host``, ``--port`` (0: the OS picks one), ``--port-file``
  (the bound port, written atomically once the socket listens: the harness waits for it), ``--log``
  (every request appended as one JSON line: ``t``, ``method``, ``path``, ``headers`` without
  credentials, ``body``), ``--verbose`` (the access log on stderr);
* a :class:`ThreadingHTTPServer` with daemon threads, run until SIGTERM/SIGINT;
* :class:`FakeHandler`: HTTP/1.1, :meth:`~FakeHandler.read_body`, :meth:`~FakeHandler.send_json`,
  :meth:`~FakeHandler.start_sse` (an event stream that ends with the connection) and
  :meth:`~FakeHandler.log_request_body`.

A fake runs as a script (``python3 tests/fakes/fake_llm_openai.py ...``: this folder is then on
``sys.path``) or is loaded by a test (then this module is ``tests.fakes.fake_http``)::

    try:
        from fake_http import FakeHandler, serve
    except ImportError:
        from tests.fakes.fake_http import FakeHandler, serve
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "openai-api-key", "cookie"})
"""Request headers (lower case) never written to the request log."""

_LOG_LOCK = threading.Lock()


class FakeHandler(BaseHTTPRequestHandler):
    """Base request handler of the fakes; :func:`serve` sets the class attributes from the command line.

    Attributes:
        request_log: path of the JSON-lines request log, or None for no log.
        verbose: whether the access log goes to stderr.
        name: the fake's name, prefixed to its access-log lines.
    """

    protocol_version = "HTTP/1.1"
    request_log: str | None = None
    verbose: bool = False
    name: str = "fake"

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            sys.stderr.write(f"{self.name}: " + format % args + "\n")

    def read_body(self) -> bytes:
        """The request body (``Content-Length`` bytes; ``b""`` without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def log_request_body(self, body: Any) -> None:
        """Append this request (method, path, headers without :data:`SECRET_HEADERS`, ``body``) to
        the request log as one JSON line; nothing without ``--log``."""
        if not self.request_log:
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in SECRET_HEADERS}
        entry = {"t": time.time(), "method": self.command, "path": self.path, "headers": headers, "body": body}
        with _LOG_LOCK, open(self.request_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")

    def send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        """Answer with status ``code`` and ``obj`` as a JSON body (plus ``headers``)."""
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self, headers: dict[str, str] | None = None) -> None:
        """Start a 200 ``text/event-stream`` answer (plus ``headers``) that ends when the connection
        closes; write the events to ``self.wfile`` and flush each."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True


def serve(handler: type[FakeHandler], description: str, banner: str, default_port: int = 0) -> None:
    """Parse the fakes' command line, listen and serve until interrupted (a fake's ``main()``).

    Args:
        handler: the fake's handler class; its ``request_log`` and ``verbose`` are set from
            ``--log`` and ``--verbose``.
        description: the ``--help`` text.
        banner: printed (flushed) once listening; ``{host}`` and ``{port}`` are filled in.
        default_port: the port without ``--port`` (0: the OS picks a free one).
    """
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=default_port, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the bound port here (atomically, once listening)")
    ap.add_argument("--log", help="append every request as a JSON line here")
    ap.add_argument("--verbose", action="store_true", help="the access log on stderr")
    args = ap.parse_args()
    handler.request_log = args.log
    handler.verbose = args.verbose
    srv = ThreadingHTTPServer((args.host, args.port), handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as fh:
            fh.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(banner.format(host=args.host, port=port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
