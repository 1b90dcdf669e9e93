"""One event loop and one pooled HTTP client per worker process.

Celery's prefork workers are synchronous, but provider throughput comes from
keeping hundreds of requests in flight. Each process therefore runs a single
asyncio loop in a daemon thread that owns an httpx client on the aiohttp
transport (README "Benchmarks" and bench/README.md "Hot spots found" measure
this client against bare aiohttp). Sync code hands coroutines to it with
:func:`run`.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Coroutine
from functools import lru_cache
from typing import Any, TypeVar

import httpx
from django.conf import settings

T = TypeVar("T")

_lock = threading.Lock()


class _State:
    """What this process started; a ``pid`` other than ours means we are a forked child."""

    pid: int | None = None
    loop: asyncio.AbstractEventLoop | None = None
    client: httpx.AsyncClient | None = None
    slots: dict[int, asyncio.Semaphore] = {}  # by SMS_MAX_IN_FLIGHT (one value outside tests)


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
            _state.pid, _state.loop, _state.client, _state.slots = os.getpid(), loop, None, {}
        return loop


@atexit.register
def _close() -> None:
    """Close the shared client at exit so its connections are not reported as leaked."""
    loop, client = _state.loop, _state.client
    if loop is None or client is None or _state.pid != os.getpid() or not loop.is_running():
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=5)


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the sender loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop()).result(timeout)


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the sender loop; returns a concurrent future."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


@lru_cache(maxsize=16)
def auth_headers(user: str, password: str, content_type: str = "application/json") -> dict[str, str]:
    """Request headers with Basic auth, built once per credentials (httpx's auth flow costs per request)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": content_type, "Accept": content_type}


@lru_cache(maxsize=16)
def request_timeout(seconds: float, connect: float | None = None) -> httpx.Timeout:
    """``seconds`` to read the answer (the request may have been accepted when it runs out);
    ``connect`` to open a connection (nothing was sent when it runs out)."""
    return httpx.Timeout(seconds, connect=min(connect or 5.0, seconds))


def slots() -> asyncio.Semaphore:
    """The process's limit of requests in flight (``SMS_MAX_IN_FLIGHT``). Call only on the sender loop."""
    size = settings.SMS_MAX_IN_FLIGHT
    if size not in _state.slots:
        _state.slots[size] = asyncio.Semaphore(size)
    return _state.slots[size]


def get_client() -> httpx.AsyncClient:
    """The shared client. Call only from code running on the sender loop."""
    client = _state.client
    if client is None:
        from httpx_aiohttp import AiohttpTransport

        limits = httpx.Limits(
            max_connections=settings.SMS_MAX_IN_FLIGHT,
            max_keepalive_connections=settings.SMS_MAX_IN_FLIGHT,
            keepalive_expiry=30,
        )
        client = httpx.AsyncClient(
            transport=AiohttpTransport(limits=limits),
            timeout=request_timeout(settings.SMS_HTTP_TIMEOUT, settings.SMS_HTTP_CONNECT_TIMEOUT),
            headers={"User-Agent": "smsportal/0.1"},
        )
        _state.client = client
    return client
