"""Which of a batch's rows goes next, and when: slots reserved ahead on the shared schedule.

A batch's rows wait in one queue per sender number. The limiter (messaging.ratelimit) is asked
for the earliest slot among the numbers that still have rows, so a slot is never left unused
because one number is busy while another is free, and a row never holds the rows behind it. A
slot is reserved up to ``SMS_PACE_LEAD_SECONDS`` before it comes: the batch marks the row
``sending`` and runs its checks in that time, and its request leaves at the slot itself, not
after a varying delay (which would bunch sends at the provider). Among numbers free at the same
slot, the one with the most rows waiting across every worker goes first, so the heaviest numbers
of a pool do not finish last and leave the account idle at the end (the numbers are sticky per
recipient, so a pool never splits a campaign evenly).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings

from messaging.ratelimit import Candidate, account_limit, get_limiter, number_limit
from providers import runtime

if TYPE_CHECKING:
    from messaging.engine import Row

# At most this many rows are marked sending at once (rows under no limit come in groups this big).
MAX_GROUP = 100
# The sender loop's thread waits for the GIL while the batch's thread renders and writes rows:
# up to sys.getswitchinterval() (5 ms by default) late for a slot, a quarter of the account margin.
SWITCH_INTERVAL = 0.001


def pool_rate(senders: Iterable[tuple[float, str]]) -> float:
    """Messages per second a pool of ``(max_mps, provider)`` numbers can send; 0 when unlimited.

    Its numbers' paced rates, at most each provider account's (``*_ACCOUNT_MPS``).
    """
    by_provider: dict[str, float] = {}
    for max_mps, provider in senders:
        rate = number_limit("", max_mps)[1] or math.inf
        by_provider[provider] = by_provider.get(provider, 0.0) + rate
    total = sum(min(rate, account_limit(p)[1] or math.inf) for p, rate in by_provider.items())
    return 0.0 if math.isinf(total) else total


def batch_size(senders: Iterable[tuple[float, str]]) -> int | None:
    """Rows per batch for a campaign sending from ``senders`` (None: ``SMS_BATCH_SIZE``).

    A batch's numbers are fixed by its rows, and a batch ends only when its busiest number is
    done: the fewer rows a worker holds, the more its last seconds run on one or two numbers
    while the account could take more. A paced batch therefore holds at least
    ``SMS_PACE_BATCH_SECONDS`` of the pool's sending.
    """
    rate = pool_rate(senders)
    if rate <= 0 or settings.SMS_PACE_BATCH_SECONDS <= 0:
        return None
    return max(settings.SMS_BATCH_SIZE, math.ceil(rate * settings.SMS_PACE_BATCH_SECONDS))


def paced(rows: list[Row], rates: dict[str, float]) -> bool:
    """Some row is under a limit: its number's or its provider account's."""
    return any(rates.get(r.sender, 0) > 0 or account_limit(r.provider)[1] > 0 for r in rows)


class Slot(NamedTuple):
    """When a row's request may leave (``time.monotonic()``), and the account's booking of it."""

    at: float
    booking: str = ""


class Pacer:
    """A batch's rows, handed out in groups with the time each may start (``time.monotonic()``)."""

    def __init__(self, rows: list[Row], rates: dict[str, float]) -> None:
        self._queues: dict[str, deque[Row]] = {}
        for row in rows:
            self._queues.setdefault(row.sender, deque()).append(row)
        self._limits = {sender: number_limit(sender, rates.get(sender, 0)) for sender in self._queues}
        # For the paced batch only: a finer switch interval costs unpaced batches CPU.
        self._switch_interval = sys.getswitchinterval()
        if self._switch_interval > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        runtime.run(_add_backlog({self._limits[s][0]: len(q) for s, q in self._queues.items()}))

    def __bool__(self) -> bool:
        return bool(self._queues)

    def next_group(self) -> list[tuple[Row, Slot]]:
        """The rows whose slots come within the lead, with their slots; waits until there is one."""
        return runtime.run(self._reserve_group())

    async def _reserve_group(self) -> list[tuple[Row, Slot]]:
        limiter = get_limiter()
        lead = settings.SMS_PACE_LEAD_SECONDS
        group: list[tuple[Row, Slot]] = []
        while self._queues and len(group) < MAX_GROUP:
            # Our own heaviest numbers first; the limiter prefers the heaviest across all workers.
            senders = sorted(self._queues, key=lambda s: -len(self._queues[s]))
            candidates = [
                Candidate(
                    number=self._limits[s],
                    account=account_limit(self._queues[s][0].provider),
                    cost=self._queues[s][0].segments or 1,
                    label=str(self._queues[s][0].id),
                )
                for s in senders
            ]
            pick, seconds, booking = await limiter.book(candidates, horizon=lead)
            if pick < 0:
                if group:
                    break
                # At least half the lead: the next group holds several rows, and this thread's
                # database work per group (marking rows sending) is paid once for them.
                await asyncio.sleep(max(seconds, lead / 2))
                continue
            sender = senders[pick]
            group.append((self._queues[sender].popleft(), Slot(time.monotonic() + seconds, booking)))
            if not self._queues[sender]:
                del self._queues[sender]
        return group

    def waiting(self) -> list[Row]:
        """The rows not handed out yet."""
        return [row for queue in self._queues.values() for row in queue]

    def rest(self) -> list[Row]:
        """The rows not handed out yet (the campaign stopped); the pacer is empty afterwards."""
        left = self.waiting()
        self.close()
        return left

    def close(self) -> None:
        """Give back the backlog of rows never handed out, and the process's switch interval."""
        sys.setswitchinterval(self._switch_interval)
        left = {self._limits[s][0]: -len(q) for s, q in self._queues.items()}
        self._queues.clear()
        if left:
            runtime.run(_add_backlog(left))


async def _add_backlog(counts: dict[str, int]) -> None:
    await get_limiter().add_backlog(counts)  # the limiter of the sender loop this runs on


class Departures:
    """When a batch's paced sends left, told to the limiter as their answers come back.

    The provider counts a send when it arrives, which can be later than its slot: the guard
    may pass late (a busy loop), and the request may take longer than usual on its way. Both
    are measured here: the lateness at the guard, plus how much longer than the quickest recent
    round trip the request took (as much may have been spent on the way there). The limiter then
    spaces the sends after it from when it may have arrived (messaging.ratelimit.RateLimiter.left).
    Runs on the sender loop.
    """

    def __init__(self) -> None:
        self._sent: dict[str, tuple[Candidate, str, float, float]] = {}
        self._telling: set[asyncio.Task[None]] = set()

    def passed(self, ref: str, candidate: Candidate, booking: str, slot: float) -> None:
        """The send ``ref``, booked for ``slot``, passed its guard now: its request leaves."""
        if booking:
            self._sent[ref] = (candidate, booking, slot, time.monotonic())

    def answered(self, ref: str) -> None:
        """The request of ``ref`` came back (or failed)."""
        sent = self._sent.pop(ref, None)
        if sent is None:
            return
        candidate, booking, slot, passed = sent
        limiter = get_limiter()
        after = passed - slot + limiter.round_trip(time.monotonic() - passed)
        self._tell(limiter.left(candidate, booking, after))

    def never_left(self, candidate: Candidate, booking: str) -> None:
        """A booked send that did not go (its checks refused it, or it took a fresh turn)."""
        if booking:
            self._tell(get_limiter().left(candidate, booking, None))

    def _tell(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)  # not waited for: the next send does not wait on Redis
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)
