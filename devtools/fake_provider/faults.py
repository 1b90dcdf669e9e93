"""Fault injection on the send endpoints, and the added latency.

One draw per authenticated send. Transport and HTTP faults (dropped connection, held past the
client's timeout, 5xx, 429) refuse the message. The ambiguous ones (``rate_accept_timeout``,
``rate_accept_drop``) accept and record it, then hold or drop the answer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from .base import ProviderAPI

if TYPE_CHECKING:
    from .server import FakeProviderServer

ACCEPT_TIMEOUT = "accept_timeout"
ACCEPT_DROP = "accept_drop"


class Faults:
    def __init__(self, server: FakeProviderServer):
        self.server = server
        self.holds: set[asyncio.Task] = set()

    async def draw(self, request: web.BaseRequest, api: ProviderAPI) -> tuple[web.StreamResponse | None, str | None]:
        """Returns ``(answer, None)`` for a refusing fault, ``(None, deferred)`` for an ambiguous
        one (applied by :meth:`finish` once the message is recorded), else ``(None, None)``."""
        state = self.server.state
        r = state.rng.random()
        c = self.server.config
        s = state.stats
        edge = c.rate_drop
        if r < edge:
            s["fault_drop"] += 1
            return self.drop(request), None
        edge += c.rate_timeout
        if r < edge:
            s["fault_timeout"] += 1
            return await self.hold(api), None
        edge += c.rate_5xx
        if r < edge:
            s["fault_5xx"] += 1
            status = state.rng.choice(c.codes_5xx)
            state.count(status)
            return api.error(status, "internal server error (injected)"), None
        edge += c.rate_429
        if r < edge:
            s["fault_429"] += 1
            state.count(429)
            resp = api.error(429, "too many requests (injected)")
            resp.headers["Retry-After"] = str(c.retry_after)
            return resp, None
        edge += c.rate_accept_timeout
        if r < edge:
            return None, ACCEPT_TIMEOUT
        edge += c.rate_accept_drop
        if r < edge:
            return None, ACCEPT_DROP
        return None, None

    async def finish(
        self, request: web.BaseRequest, api: ProviderAPI, resp: web.Response, deferred: str | None
    ) -> web.StreamResponse:
        """The answer to an accepted send, after any ambiguous fault."""
        if deferred == ACCEPT_TIMEOUT:
            self.server.state.stats["fault_accept_timeout"] += 1
            return await self.hold(api, resp)
        if deferred == ACCEPT_DROP:
            self.server.state.stats["fault_accept_drop"] += 1
            return self.drop(request)
        return resp

    def drop(self, request: web.BaseRequest) -> web.Response:
        transport = request.transport
        if transport is not None:
            transport.close()
        # never written: the transport is closing, aiohttp drops it silently
        return web.Response(status=500)

    async def hold(self, api: ProviderAPI, response: web.Response | None = None) -> web.Response:
        """Answer after ``timeout_hold_s``: ``response``, or a 504."""
        task = asyncio.current_task()
        if task is not None:
            self.holds.add(task)
        try:
            await asyncio.sleep(self.server.config.timeout_hold_s)
        finally:
            self.holds.discard(task)
        if response is not None:
            return response
        self.server.state.count(504)
        return api.error(504, "gateway timeout (injected)")

    async def latency(self) -> None:
        c = self.server.config
        if c.latency_ms or c.latency_jitter_ms:
            delay = c.latency_ms + (self.server.state.rng.random() * c.latency_jitter_ms)
            await asyncio.sleep(delay / 1000.0)

    def cancel_holds(self) -> None:
        for task in list(self.holds):
            task.cancel()
