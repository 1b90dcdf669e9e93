"""The fake provider in a background thread with its own event loop, for sync code (tests)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from .registry import FakeConfig
from .server import FakeProviderServer


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed, else the default one."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


class FakeProvider:
    """The fake provider in a background thread, for sync code (tests).

    >>> fp = FakeProvider(latency_ms=5, seed=1).start()
    >>> fp.url  # 'http://127.0.0.1:PORT'
    >>> fp.stop()
    """

    def __init__(self, config: FakeConfig | None = None, *, host="127.0.0.1", port=0, **kw):
        self._kw = kw
        self._config = config
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.server: FakeProviderServer | None = None

    # lifecycle
    def start(self) -> FakeProvider:
        if self._thread is not None:
            return self
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self.server = FakeProviderServer(self._config, **self._kw)
                loop.run_until_complete(self.server.start(self._host, self._port))
            except BaseException as e:
                error.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait(30)
        if error:
            self._thread = None
            raise error[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self.server is not None, "not started"
        return self.server.url

    @property
    def config(self) -> FakeConfig:
        assert self.server is not None, "not started"
        return self.server.config

    @property
    def plivo_send_url(self) -> str:
        return f"{self.url}/v1/Account/{self.config.plivo_auth_id}/Message/"

    @property
    def flowroute_send_url(self) -> str:
        return f"{self.url}/v2.1/messages"

    # thread-safe calls into the loop
    def _call(self, fn, *args, **kw):
        assert self._loop is not None and self.server is not None, "not started"

        async def wrapper():
            result = fn(*args, **kw)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result()

    def messages(self, fields=None, provider=None, dst=None, offset=0, limit=None) -> list[dict]:
        if isinstance(fields, str):
            fields = tuple(f for f in fields.split(",") if f)
        return self._call(
            self.server.list_messages,
            tuple(fields) if fields else None,
            provider,
            dst,
            offset,
            limit,
        )

    def stats(self) -> dict[str, Any]:
        return self._call(self.server.stats)

    def duplicates(self) -> list[dict[str, Any]]:
        return self._call(self.server.duplicates)

    def configure(self, **kw: Any) -> dict[str, Any]:
        return self._call(self.server.configure, **kw)

    def reset(self, config: bool = False) -> None:
        self._call(self.server.reset, config)

    def drain(self, timeout: float = 10.0) -> int:
        return self._call(self.server.drain, timeout)

    def send_inbound(
        self,
        provider: str,
        from_: str,
        to: str,
        text: str = "",
        media_urls: list[Any] | None = None,
        url: str | None = None,
        message_intent: str | None = None,
        tamper_signature: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._call(
            self.server.send_inbound,
            provider,
            from_,
            to,
            text,
            media_urls,
            url,
            message_intent,
            tamper_signature,
            extra,
        )
