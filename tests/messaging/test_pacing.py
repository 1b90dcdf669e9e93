"""Slots reserved ahead on the shared schedule (messaging.pacing, messaging.ratelimit.reserve).

Issue 21's pacing run: rows bound to a number that was busy held the account's slots unused,
and the heaviest numbers of a pool finished last. Real Redis; the slots are read from the
limiter's own trace (Redis's clock), so nothing here depends on how fast this machine is.
"""

import asyncio
import itertools
import sys
import threading
import time

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from messaging import ratelimit
from messaging.engine import Row
from messaging.pacing import SWITCH_INTERVAL, Pacer, batch_size, pool_rate
from messaging.ratelimit import Candidate, RateLimiter, account_limit, number_limit
from tests.bench.test_ratelimit_outage import clock  # noqa: F401  (fixture: a fake clock inside messaging.ratelimit)

TRACE = "test:pacing:trace"
POOL = [f"+1415557{n:04d}" for n in range(4)]


@pytest.fixture
def clean_redis():
    r = redis.Redis.from_url(settings.REDIS_URL)
    keys = [TRACE, "smsportal:pace:provider:plivo:slots"]
    for number in POOL:
        keys += [f"smsportal:pace:number:{number}", f"smsportal:pace:backlog:number:{number}"]
    r.delete(*keys)
    yield r
    r.delete(*keys)


def _candidate(number: str, number_mps: float, account_mps: float = 0.0) -> Candidate:
    return Candidate(number=(f"number:{number}", number_mps), account=("provider:plivo", account_mps), label=number)


def _slots(r) -> list[tuple[float, str]]:
    """(slot on Redis's clock in seconds, number key) of every reservation, in order."""
    out = []
    for entry in r.lrange(TRACE, 0, -1):
        when, _label, key = entry.decode().split(" ")
        out.append((float(when) / 1000, key))
    return out


@override_settings(SMS_PACE_NUMBER_MARGIN=0.25, SMS_PACE_ACCOUNT_MARGIN=0.02, SMS_PROVIDER_MPS={"plivo": 15.0})
def test_the_margins_are_taken_off_the_limits_in_one_place():
    assert number_limit("+14155550100", 1.0) == ("number:+14155550100", 0.8)
    key, rate = account_limit("plivo")
    assert key == "provider:plivo" and rate == pytest.approx(15 / 1.02)
    assert number_limit("+14155550100", 0) == ("number:+14155550100", 0.0)  # no limit stays none
    assert account_limit("flowroute")[1] == 0.0


def test_a_busy_number_does_not_hold_the_account_slot(clean_redis):
    limiter = RateLimiter()
    busy, free = POOL[0], POOL[1]

    async def run():
        first = await limiter.reserve([_candidate(busy, 1.0, 10.0)], horizon=0.25)
        # busy's next turn is a second away; the account's is 0.1 s away, and free can take it
        second = await limiter.reserve([_candidate(busy, 1.0, 10.0), _candidate(free, 1.0, 10.0)], horizon=0.25)
        return first, second

    (pick1, _), (pick2, seconds) = asyncio.run(run())
    assert pick1 == 0
    assert pick2 == 1 and 0 <= seconds <= 0.1


def test_a_send_booked_far_ahead_leaves_the_account_slots_before_it_to_others(clean_redis):
    limiter = RateLimiter()
    late, other = POOL[0], POOL[1]

    async def run():
        await limiter.reserve([_candidate(late, 1.0, 10.0)], horizon=0.25)
        # late's next turn, a second away, booked at once (a send that missed its slot)
        far = await limiter.next_slot(_candidate(late, 1.0, 10.0))
        soon = await limiter.reserve([_candidate(other, 1.0, 10.0)], horizon=0.25)
        return far, soon

    far, (pick, seconds) = asyncio.run(run())
    assert pick == 0 and seconds <= 0.1  # the account's next slot, not one after the far booking
    assert far - time.monotonic() > 0.5


def test_nothing_is_taken_when_no_slot_comes_within_the_lead(clean_redis):
    limiter = RateLimiter()

    async def run():
        await limiter.reserve([_candidate(POOL[0], 1.0)], horizon=0.25)
        return await limiter.reserve([_candidate(POOL[0], 1.0)], horizon=0.25)

    pick, wait = asyncio.run(run())
    assert pick == -1 and 0 < wait <= 0.75
    assert clean_redis.llen(TRACE) == 0  # tracing is off unless SMS_PACE_TRACE_KEY names a list


@override_settings(SMS_PACE_TRACE_KEY=TRACE)
def test_two_workers_reserving_ahead_keep_every_number_and_the_account_spaced(clean_redis):
    number_mps, account_mps, per_worker = 5.0, 16.0, 20
    pool = [_candidate(n, number_mps, account_mps) for n in POOL]  # 4 numbers at 5/s: 20/s > 16/s

    def worker(offset: int) -> None:
        limiter = RateLimiter()  # its own connection and loop, as in another process

        async def run():
            taken = 0
            while taken < per_worker:
                order = pool[offset:] + pool[:offset]
                pick, seconds = await limiter.reserve(order, horizon=0.25)
                if pick < 0:
                    await asyncio.sleep(seconds)
                else:
                    taken += 1

        asyncio.run(run())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    slots = _slots(clean_redis)
    assert len(slots) == 2 * per_worker
    times = sorted(t for t, _ in slots)
    # Redis's clock to the microsecond, a millisecond of rounding at most
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / account_mps - 0.001
    for number in POOL:
        mine = sorted(t for t, key in slots if key.endswith(number))
        assert mine, number  # every free number took account slots
        assert all(b - a >= 1 / number_mps - 0.001 for a, b in itertools.pairwise(mine))


def test_among_numbers_free_at_once_the_one_with_most_rows_waiting_goes_first(clean_redis):
    limiter = RateLimiter()
    light, heavy = POOL[0], POOL[1]

    async def run():
        await limiter.add_backlog({f"number:{light}": 2, f"number:{heavy}": 5})
        return await limiter.reserve([_candidate(light, 1.0), _candidate(heavy, 1.0)], horizon=0.25)

    pick, _ = asyncio.run(run())
    assert pick == 1
    assert int(clean_redis.get(f"smsportal:pace:backlog:number:{heavy}")) == 4  # taken down by the slot
    assert int(clean_redis.get(f"smsportal:pace:backlog:number:{light}")) == 2


def _row(i: int, sender: str) -> Row:
    return Row(i, 1, i, f"+1415555{i:04d}", "campaign", 0, "hi", [], sender, "plivo", "opted_in", segments=1)


@override_settings(SMS_PROVIDER_MPS={"plivo": 0.0})
def test_a_pacer_hands_out_every_row_once_heaviest_number_first_and_gives_back_the_rest(clean_redis):
    counts = {POOL[0]: 6, POOL[1]: 2, POOL[2]: 2}
    senders = [s for s, n in counts.items() for _ in range(n)]
    rows = [_row(i, s) for i, s in enumerate(senders)]
    pacer = Pacer(rows, dict.fromkeys(counts, 20.0))
    assert int(clean_redis.get(f"smsportal:pace:backlog:number:{POOL[0]}")) == 6
    handed: list[Row] = []
    while len(handed) < 7:
        handed += [row for row, _ in pacer.next_group()]
    assert handed[0].sender == POOL[0]
    rest = pacer.rest()
    assert not pacer
    assert sorted(r.id for r in handed + rest) == list(range(10))  # every row once
    for number in counts:  # the rows never handed out were given back
        assert int(clean_redis.get(f"smsportal:pace:backlog:number:{number}") or 0) == 0


@override_settings(REDIS_URL="")
def test_without_redis_the_process_reserves_on_its_own_schedule():
    limiter = RateLimiter()

    async def run():
        a = await limiter.reserve([_candidate(POOL[0], 1.0), _candidate(POOL[1], 1.0)], horizon=0.25)
        b = await limiter.reserve([_candidate(POOL[0], 1.0), _candidate(POOL[1], 1.0)], horizon=0.25)
        c = await limiter.reserve([_candidate(POOL[0], 1.0), _candidate(POOL[1], 1.0)], horizon=0.25)
        return a, b, c

    (a, _), (b, _), (c, _) = asyncio.run(run())
    assert (a, b, c) == (0, 1, -1)


@override_settings(
    SMS_PACE_NUMBER_MARGIN=0.25,
    SMS_PACE_ACCOUNT_MARGIN=0.0,
    SMS_PROVIDER_MPS={"plivo": 15.0, "flowroute": 0.0},
    SMS_BATCH_SIZE=500,
    SMS_PACE_BATCH_SECONDS=100,
)
def test_a_paced_campaigns_batches_hold_enough_seconds_of_its_pools_sending():
    # 20 numbers at 1/s (0.8/s with the margin) under a 15/s account: the account binds
    assert pool_rate([(1.0, "plivo")] * 20) == pytest.approx(15.0)
    assert batch_size([(1.0, "plivo")] * 20) == 1500
    # 4 numbers at 1/s: 3.2/s, 320 rows of sending in 100 s; never fewer than SMS_BATCH_SIZE
    assert pool_rate([(1.0, "plivo")] * 4) == pytest.approx(3.2)
    assert batch_size([(1.0, "plivo")] * 4) == 500
    # a number without a limit at a provider without one: nothing paces the pool
    assert pool_rate([(1.0, "plivo"), (0.0, "flowroute")]) == 0.0
    assert batch_size([(0.0, "flowroute")]) is None
    # a number without a limit under a limited account: the account's rate
    assert pool_rate([(0.0, "plivo")]) == pytest.approx(15.0)
    with override_settings(SMS_PACE_BATCH_SECONDS=0):
        assert batch_size([(1.0, "plivo")] * 20) is None


def test_a_redis_outage_slows_reservations_down_but_never_raises(settings, monkeypatch, clock, caplog):  # noqa: F811
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setattr(ratelimit, "_REDIS_GRACE_SECONDS", 0.5)
    limiter = RateLimiter()

    async def three():
        return [await limiter.next_slot(_candidate(POOL[0], 1000.0)) for _ in range(3)]

    slots = asyncio.run(three())  # does not raise
    # it waited out the grace period in short steps, asking Redis again after each, then went on locally
    assert clock.slept and max(clock.slept) <= 0.25
    assert sum(clock.slept) == pytest.approx(0.5, abs=0.01)
    assert slots == sorted(slots) and slots[2] - slots[0] == pytest.approx(0.002)  # 1 ms apart at 1000/s
    assert "using this process's own buckets" in caplog.text


@override_settings(SMS_PROVIDER_MPS={"plivo": 0.0})
def test_the_finer_switch_interval_lasts_only_as_long_as_the_paced_batch(clean_redis):
    before = sys.getswitchinterval()
    pacer = Pacer([_row(i, POOL[0]) for i in range(3)], {POOL[0]: 20.0})
    try:
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)  # slots leave on time while pacing
    finally:
        pacer.close()
    assert sys.getswitchinterval() == pytest.approx(before)  # unpaced batches after it keep the default
