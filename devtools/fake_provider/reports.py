"""Delivery reports: when each accepted message's reports go out, in which order, how often.

The provider module says which reports a message gets and what they look like; this module
adds the configured delay and jitter, duplicates, reordering, early reports (before the
send's answer) and retries, and keeps track of the pending ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .base import Event, ProviderAPI
from .records import Message

if TYPE_CHECKING:
    from .server import FakeProviderServer


class DeliveryReports:
    def __init__(self, server: FakeProviderServer):
        self.server = server
        self.tasks: set[asyncio.Task] = set()

    async def schedule(self, api: ProviderAPI, msgs: Iterable[Message]) -> None:
        """Plan the reports of just-accepted ``msgs``; early ones are sent before returning."""
        c = self.server.config
        if not c.callbacks:
            return
        rng = self.server.state.rng
        for msg in msgs:
            if not msg.url:
                continue
            events = self._events(api, msg)
            if c.early_callback and rng.random() < c.early_callback:
                if c.early_callback_mode == "all":
                    await self._send(api, msg, events)
                    continue
                await self._send(api, msg, events[:1])
                events = events[1:]
                if not events:
                    continue
            delay = c.callback_delay_s
            if c.callback_jitter_s:
                delay += rng.random() * c.callback_jitter_s
            task = asyncio.get_running_loop().create_task(self._send_later(api, msg, events, delay))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _events(self, api: ProviderAPI, msg: Message) -> list[Event]:
        c = self.server.config
        state = self.server.state
        events = api.delivery_events(msg)
        if c.out_of_order and state.rng.random() < c.out_of_order:
            events.reverse()
        if c.duplicate_callbacks:
            doubled = []
            for ev in events:
                doubled.append(ev)
                if state.rng.random() < c.duplicate_callbacks:
                    doubled.append(ev)
                    state.stats["callbacks_duplicated"] += 1
            events = doubled
        return events

    async def _send_later(self, api: ProviderAPI, msg: Message, events: list[Event], delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        await self._send(api, msg, events)

    async def _send(self, api: ProviderAPI, msg: Message, events: list[Event]) -> None:
        for ev in events:
            status, method, payload = api.delivery_report(msg, ev)
            await self._post(api, msg, method, payload, status)

    async def _post(self, api: ProviderAPI, msg: Message, method: str, payload: dict, status: str) -> None:
        c = self.server.config
        attempts = 1 + max(0, c.callback_retries)
        for attempt in range(attempts):
            if attempt:
                self.server.state.stats["callbacks_retried"] += 1
                await asyncio.sleep(c.callback_retry_delay_s)
            code, _ = await self.server.webhooks.send(api, msg.url, method, payload)
            if code is not None and 200 <= code < 300:
                self.server.state.stats["callbacks_sent"] += 1
                msg.last_status = status
                return
        self.server.state.stats["callbacks_failed"] += 1

    async def drain(self, timeout: float = 10.0) -> int:
        """Wait until no report is pending (or timeout); returns how many are left."""
        deadline = time.monotonic() + timeout
        while self.tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.wait(set(self.tasks), timeout=left)
        return len(self.tasks)

    async def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
