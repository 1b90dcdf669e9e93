"""One event loop and one pooled HTTP transport per worker process.

Celery's prefork workers are synchronous, but provider throughput comes from
keeping hundreds of requests in flight. Each process therefore runs a single
asyncio loop in a daemon thread that owns one pooled HTTP transport: httpx's
request and response types on aiohttp (:mod:`providers.transport`). Requests go
straight to the transport (:func:`send`): an ``httpx.AsyncClient`` around it
parsed the URL again, merged headers and ran a cookie jar on every request, which
cost more CPU than the request itself (bench/README.md, "Engine runs"). Sync code
hands coroutines to the loop with :func:`run`.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import collections
import concurrent.futures
import contextlib
import json
import os
import threading
from collections.abc import Coroutine, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, TypeVar

import httpx
from django.conf import settings

from providers.transport import AiohttpTransport

T = TypeVar("T")

_lock = threading.Lock()


class _State:
    """What this process started; a ``pid`` other than ours means we are a forked child."""

    pid: int | None = None
    loop: asyncio.AbstractEventLoop | None = None
    transports: dict[int, AiohttpTransport] = {}  # by SMS_MAX_IN_FLIGHT, as slots are
    slots: dict[int, Slots] = {}  # by SMS_MAX_IN_FLIGHT (one value outside tests)


_state = _State()


def _start_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sms-sender-loop", daemon=True)
    thread.start()
    return loop


def get_loop() -> asyncio.AbstractEventLoop:
    """The process's sender loop, created lazily and again after a fork."""
    with _lock:
        loop = _state.loop
        if loop is None or _state.pid != os.getpid():
            loop = _start_loop()
            _state.pid, _state.loop, _state.transports, _state.slots = os.getpid(), loop, {}, {}
        return loop


@atexit.register
def _close() -> None:
    """Close the shared transports at exit so their connections are not reported as leaked."""
    loop = _state.loop
    if loop is None or _state.pid != os.getpid() or not loop.is_running():
        return
    for transport in list(_state.transports.values()):
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(transport.aclose(), loop).result(timeout=5)


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the sender loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop()).result(timeout)


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the sender loop; returns a concurrent future."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


@lru_cache(maxsize=16)
def auth_headers(user: str, password: str, content_type: str = "application/json") -> tuple[tuple[bytes, bytes], ...]:
    """Request headers with Basic auth, built once per credentials."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return tuple(
        httpx.Headers(
            {
                "Authorization": f"Basic {token}",
                "Content-Type": content_type,
                "Accept": content_type,
                "User-Agent": "smsportal/0.1",
            }
        ).raw
    )


@lru_cache(maxsize=64)
def _host_header(endpoint: httpx.URL) -> tuple[bytes, bytes]:
    return (b"Host", endpoint.netloc)


def post_request(
    endpoint: str, headers: tuple[tuple[bytes, bytes], ...], body: bytes, extensions: Mapping[str, Any]
) -> httpx.Request:
    """``httpx.Request("POST", endpoint, headers=headers, content=body)``, built with the same headers
    in the same order (Host first, Content-Length last) and its body already read.

    httpx adds Host and Content-Length to a ``content=`` request through ``MutableMapping.setdefault``
    on its header list, a KeyError per lookup: a tenth of a send worker's CPU (issue 21). A
    ``stream=`` request skips that; the headers it would add are given here.
    """
    target = url(endpoint)
    if not body:  # httpx places an empty body's Content-Length elsewhere; nothing to save here
        return httpx.Request("POST", target, headers=list(headers), content=body, extensions=extensions)
    request = httpx.Request(
        "POST",
        target,
        headers=[_host_header(target), *headers, (b"Content-Length", str(len(body)).encode())],
        stream=httpx.ByteStream(body),
        extensions=extensions,
    )
    request.read()
    return request


@lru_cache(maxsize=16)
def request_timeout(seconds: float, connect: float | None = None) -> Mapping[str, Any]:
    """The request's timeout extension: ``seconds`` to read the answer (the request may have been
    accepted when it runs out); ``connect`` to open a connection (nothing was sent when it runs out)."""
    timeout = httpx.Timeout(seconds, connect=min(connect or 5.0, seconds)).as_dict()
    return MappingProxyType({"timeout": timeout})  # shared by every request: read-only


@lru_cache(maxsize=64)
def url(text: str) -> httpx.URL:
    """An endpoint parsed once (httpx parses and validates a URL string on every request)."""
    return httpx.URL(text)


def json_body(payload: object) -> bytes:
    """JSON as httpx's ``json=`` encodes it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class Slots:
    """A process's requests in flight: at most ``size``, handed over in the order they were asked for.

    asyncio.Semaphore (3.11) scans all its waiters on every acquire while slots are free; the
    send path's feeders wait here, so this one hands a released slot straight to the next waiter.
    """

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed a slot just as it was cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes to it directly
                return
        self.free += 1


def slots() -> Slots:
    """The process's limit of requests in flight (``SMS_MAX_IN_FLIGHT``). Call only on the sender loop."""
    size = settings.SMS_MAX_IN_FLIGHT
    if size not in _state.slots:
        _state.slots[size] = Slots(size)
    return _state.slots[size]


def get_transport() -> AiohttpTransport:
    """The shared transport. Call only from code running on the sender loop.

    Its connection limit is ``SMS_MAX_IN_FLIGHT``, like :func:`slots`, and follows the setting: a
    transport kept from a smaller value would hold requests waiting for a connection behind a hung
    one until they failed with a connect timeout, although their slots let them go.
    """
    size = settings.SMS_MAX_IN_FLIGHT
    transport = _state.transports.get(size)
    if transport is None:
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=30)
        transport = _state.transports[size] = AiohttpTransport(limits=limits)
    return transport


async def send(request: httpx.Request) -> httpx.Response:
    """Send ``request`` on the shared transport: no redirects, no cookies, the answer read whole.
    Call only from code running on the sender loop."""
    return await get_transport().handle_async_request(request)
