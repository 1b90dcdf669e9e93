"""A fake webhook receiver: a small threaded HTTP server on loopback that records what it gets."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.api.conftest import client_for  # noqa: F401  (the API clients' fixture)


class Receiver:
    """Answers each POST with the next status of ``statuses`` (the last one repeats); ``down()`` stops
    listening (connection refused) and ``up()`` listens again on the same port."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.statuses: list[int] = [200]
        self.lock = threading.Lock()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                    receiver.received.append({"headers": dict(self.headers.items()), "body": body, "status": status})
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def accepted(self) -> list[dict]:
        """The events answered 2xx, parsed, in arrival order."""
        return [json.loads(r["body"]) | {"_id": r["headers"]["webhook-id"]} for r in self.received if r["status"] < 300]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.down()


@pytest.fixture
def fast_retries(settings):
    """Retries after 10 ms each, three of them; the fourth failure in a row disables the endpoint."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0.01, 0.01, 0.01]
    settings.WEBHOOK_ENDPOINT_CACHE_SECONDS = 0
    return settings
