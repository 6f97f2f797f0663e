"""A loopback HTTP server whose answers tests script per path, one action per request.

The ``server`` fixture of tests/conftest.py starts one for a test; tests/test_downloads.py
and tests/test_downloads_faults.py script it with actions (``status``, ``serve``, ...).
"""

from __future__ import annotations

import http.server
from collections.abc import Callable

Action = Callable[["Handler"], None]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def do_GET(self) -> None:
        self.server.log.append((self.path, dict(self.headers)))
        script = self.server.routes.get(self.path)
        if script is None:
            script = self.server.routes.get(self.path.split("?")[0], [status(404)])
        action = script.pop(0) if len(script) > 1 else script[0]
        action(self)

    def log_message(self, *args: object) -> None:
        pass


class LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, list[Action]] = {}
        self.log: list[tuple[str, dict[str, str]]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def requests_for(self, path: str) -> list[dict[str, str]]:
        return [headers for logged, headers in self.log if logged == path]


def status(code: int, headers: dict[str, str] | None = None) -> Action:
    def action(h: Handler) -> None:
        payload = f"status {code}".encode()
        h.send_response(code)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    return action
