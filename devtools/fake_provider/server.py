"""The fake provider's shared core: the aiohttp server, its state, and the send pipeline.

Used by tests, the local run and benchmarks. It never imports Django; from the project it
uses only the pure-Python :mod:`messaging.encoding`. Besides the standard library it needs
aiohttp (+ uvloop when installed).

Three ways to run it:

* in-process, from sync test code: ``FakeProvider(**config).start()`` (:mod:`.threaded`)
  runs the server in a background thread with its own event loop on 127.0.0.1 and an
  ephemeral port;
* in an asyncio program: ``await FakeProviderServer(**config).start()``;
* as a separate process: ``python -m devtools.fake_provider`` or
  :func:`devtools.fake_provider.client.run_in_subprocess`.

What is specific to one provider (routes, validation, bodies, signatures, callback formats)
lives in its module (:mod:`.plivo`, :mod:`.flowroute`), listed in :mod:`.registry`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web

from . import control
from .base import ProviderAPI
from .faults import Faults
from .httputil import HTTPError, digits, json_response
from .inbound import send_inbound
from .records import State
from .registry import APIS, FakeConfig
from .reports import DeliveryReports
from .webhooks import WebhookClient


class FakeProviderServer:
    """The asyncio server. Use from a running loop: ``await start()`` / ``await stop()``."""

    def __init__(self, config: FakeConfig | None = None, **kw: Any):
        self.config = dataclasses.replace(config) if config else FakeConfig()
        if kw:
            self.config.update(**kw)
        self.config.validate()
        self._initial_config = dataclasses.replace(self.config)
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.ServerRunner | None = None
        self.apis: dict[str, ProviderAPI] = {cls.name: cls(self) for cls in APIS}
        self.faults = Faults(self)
        self.reports = DeliveryReports(self)
        self.webhooks = WebhookClient(self)
        self._reset_state()
        self._apply_config()

    # -- state and configuration -----------------------------------------------------

    def _reset_state(self) -> None:
        self.state = State(self.config.seed, tuple(self.apis))

    def _apply_config(self) -> None:
        c = self.config
        self._fault_total = c.fault_total()
        self._fail_numbers = c.fail_number_specs()
        self._accept_then_fail = c.accept_then_fail_specs()
        self.webhooks.configure()
        for api in self.apis.values():
            api.configure()

    def configure(self, **kw: Any) -> dict[str, Any]:
        self.config.update(**kw)
        if "seed" in kw:
            self.state.reseed(self.config.seed)
        self._apply_config()
        return self.config.to_dict()

    def reset(self, config: bool = False) -> None:
        """Clear recorded messages and stats (and the config too when ``config``)."""
        if config:
            self.config = dataclasses.replace(self._initial_config)
            self._apply_config()
        self._reset_state()

    def stats(self) -> dict[str, Any]:
        return self.state.snapshot(callbacks_pending=len(self.reports.tasks))

    def list_messages(
        self,
        fields: tuple[str, ...] | None = None,
        provider: str | None = None,
        dst: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        return self.state.list_messages(fields, provider, dst, offset, limit)

    def duplicates(self) -> list[dict[str, Any]]:
        return self.state.duplicates()

    async def drain(self, timeout: float = 10.0) -> int:
        """Wait until no callback is pending (or timeout); returns how many are left."""
        return await self.reports.drain(timeout)

    async def send_inbound(
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
        """Post an inbound SMS/MMS to the app's webhook; returns its answer (see :mod:`.inbound`)."""
        return await send_inbound(
            self, provider, from_, to, text, media_urls, url, message_intent, tamper_signature, extra
        )

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.host = host
        server = web.Server(self._dispatch, access_log=None)
        self._runner = web.ServerRunner(server, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=2048, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.webhooks.open()
        return self.url

    async def stop(self) -> None:
        self.faults.cancel_holds()
        await self.reports.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.webhooks.close()

    # -- the send pipeline -----------------------------------------------------------

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        try:
            for api in self.apis.values():
                lookup = getattr(api, "message_record", None)  # GET of one message's record (Flowroute)
                if lookup is not None and (found := lookup(request, path)) is not None:
                    return found
                if api.owns(path):
                    return await self._send(api, request, path)
            if path.startswith(control.PREFIX):
                return await control.handle(self, request, path)
        except HTTPError as e:
            return json_response({"error": e.detail}, status=e.status)
        return json_response({"error": f"not found: {path}"}, status=404)

    async def _send(self, api: ProviderAPI, request: web.BaseRequest, path: str) -> web.StreamResponse:
        arrived = time.time()  # received_at comes after the added latency: this is the request's own arrival
        self.state.stats["requests"] += 1
        try:
            api.authorize(request, path)
        except HTTPError as e:
            return self._reject(api, e.status, e.detail)
        deferred = None
        if self._fault_total:
            resp, deferred = await self.faults.draw(request, api)
            if resp is not None:
                return resp
        await self.faults.latency()
        try:
            msgs = await api.parse_send(request)
        except HTTPError as e:
            return self._reject(api, e.status, e.detail)
        for msg in msgs:
            msg.arrived_at = arrived
            spec = self._fail_numbers.get(digits(msg.dst))
            if spec is not None:
                return self._reject(api, *spec)
        self.state.count(202)
        resp = api.accepted(request, msgs)
        for msg in msgs:
            self.state.record(msg, self.config, self._accept_then_fail)
        await self.reports.schedule(api, msgs)
        return await self.faults.finish(request, api, resp, deferred)

    def _reject(self, api: ProviderAPI, status: int, detail: str) -> web.Response:
        self.state.count(status)
        return api.error(status, detail)
