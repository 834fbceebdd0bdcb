"""A local HTTP server in a thread that plays a remote model API for the rewarder tests.

`StubServer(answer, plan)`: every POST is recorded (path, headers, raw body); `plan` lists (status, delay_s) for
the first requests, then every request gets 200. A 200 carries `answer(request)` (bytes, JSON by default); an
error status carries a Google/OpenAI-style error JSON.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclasses.dataclass
class StubRequest:
    """One request the stub received."""

    path: str
    headers: dict
    body: bytes

    def json(self):
        """The body parsed as JSON."""
        return json.loads(self.body)


class StubServer:
    """An HTTP server on 127.0.0.1 (free port) answering POSTs from a plan; a context manager."""

    def __init__(self, answer: Callable[[StubRequest], bytes], plan=()):
        self.answer, self.plan, self.requests = answer, list(plan), []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 -- http.server naming
                request = StubRequest(self.path, dict(self.headers),
                                      self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(request)
                status, delay = stub.plan.pop(0) if stub.plan else (200, 0.0)
                time.sleep(delay)
                data = stub.answer(request) if status == 200 else json.dumps(
                    {"error": {"code": status, "message": "overloaded", "status": "UNAVAILABLE"}}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll interval: shutdown() waits for the next poll, 0.5 s by default, per test.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "StubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
