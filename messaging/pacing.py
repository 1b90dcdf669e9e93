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
import time
from collections import deque
from typing import TYPE_CHECKING

from django.conf import settings

from messaging.ratelimit import Candidate, account_limit, get_limiter, number_limit
from providers import runtime

if TYPE_CHECKING:
    from messaging.engine import Row

# At most this many rows are marked sending at once (rows under no limit come in groups this big).
MAX_GROUP = 100


def paced(rows: list[Row], rates: dict[str, float]) -> bool:
    """Some row is under a limit: its number's or its provider account's."""
    return any(rates.get(r.sender, 0) > 0 or account_limit(r.provider)[1] > 0 for r in rows)


class Pacer:
    """A batch's rows, handed out in groups with the time each may start (``time.monotonic()``)."""

    def __init__(self, rows: list[Row], rates: dict[str, float]) -> None:
        self._queues: dict[str, deque[Row]] = {}
        for row in rows:
            self._queues.setdefault(row.sender, deque()).append(row)
        self._limits = {sender: number_limit(sender, rates.get(sender, 0)) for sender in self._queues}
        runtime.run(_add_backlog({self._limits[s][0]: len(q) for s, q in self._queues.items()}))

    def __bool__(self) -> bool:
        return bool(self._queues)

    def next_group(self) -> list[tuple[Row, float]]:
        """The rows whose slots come within the lead, with their slots; waits until there is one."""
        return runtime.run(self._reserve_group())

    async def _reserve_group(self) -> list[tuple[Row, float]]:
        limiter = get_limiter()
        lead = settings.SMS_PACE_LEAD_SECONDS
        group: list[tuple[Row, float]] = []
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
            pick, seconds = await limiter.reserve(candidates, horizon=lead)
            if pick < 0:
                if group:
                    break
                # At least half the lead: the next group holds several rows, and this thread's
                # database work per group (marking rows sending) is paid once for them.
                await asyncio.sleep(max(seconds, lead / 2))
                continue
            sender = senders[pick]
            group.append((self._queues[sender].popleft(), time.monotonic() + seconds))
            if not self._queues[sender]:
                del self._queues[sender]
        return group

    def rest(self) -> list[Row]:
        """The rows not handed out yet (the campaign stopped); the pacer is empty afterwards."""
        left = [row for queue in self._queues.values() for row in queue]
        self.close()
        return left

    def close(self) -> None:
        """Give back the backlog of rows never handed out."""
        left = {self._limits[s][0]: -len(q) for s, q in self._queues.items()}
        self._queues.clear()
        if left:
            runtime.run(_add_backlog(left))


async def _add_backlog(counts: dict[str, int]) -> None:
    await get_limiter().add_backlog(counts)  # the limiter of the sender loop this runs on
