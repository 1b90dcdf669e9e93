"""A lean httpx transport over one aiohttp session: httpx's API, aiohttp's speed.

``httpx_aiohttp.AiohttpTransport`` streams every answer through an async generator and hands
aiohttp the httpx header object, which re-decodes its headers for each request. Provider
answers are small JSON documents, so this transport reads them whole and gives aiohttp plain
strings; per request that is about a third less CPU (bench/README.md, "Engine runs").

aiohttp's errors become httpx's (``from`` the original, which
:func:`providers.http_errors.transport_failure` reads to say what happened).
"""

from __future__ import annotations

from functools import lru_cache

import aiohttp
import httpx


@lru_cache(maxsize=32)
def _client_timeout(read: float | None, connect: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(sock_read=read, sock_connect=connect, connect=pool)


def _httpx_error(exc: BaseException) -> httpx.TransportError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc))
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(str(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc))
    return httpx.NetworkError(str(exc))


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends each request on one pooled ``aiohttp.ClientSession`` (created on first use, on the running loop)."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.limits.max_connections or 0,
                keepalive_timeout=self.limits.keepalive_expiry or 15,
            )
            # No cookie jar: provider APIs authenticate every request and set no session.
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
        try:
            async with self._get_session().request(
                request.method,
                str(request.url),
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=_client_timeout(timeout.get("read"), timeout.get("connect"), timeout.get("pool")),
            ) as response:
                content = await response.read()
                raw_headers = list(response.raw_headers)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _httpx_error(exc) from exc
        # The body was read whole (aiohttp decoded no Content-Encoding: httpx does, from the headers).
        return httpx.Response(status, headers=raw_headers, content=content, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
