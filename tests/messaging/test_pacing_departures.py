"""The account's schedule across processes, and sends that leave later than their slots (issue 21).

``python -m bench pacing`` counted 1-second windows over the account's limit at the provider: a
send that left late landed within a second of the send fifteen slots after it. The limiter now
counts each booking from when its worker says it left, so the slots booked afterwards keep a full
window from it. Real Redis; slots are read from the bookings (Redis's clock), so nothing here
depends on how fast this machine is.
"""

import asyncio
import itertools
import multiprocessing
import random
import time

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from messaging.ratelimit import Candidate, RateLimiter

ACCOUNT = "provider:test-departures"
NUMBERS = [f"+1415558{n:04d}" for n in range(4)]


@pytest.fixture
def clean_redis():
    r = redis.Redis.from_url(settings.REDIS_URL)
    keys = [f"smsportal:pace:{ACCOUNT}:slots"]
    keys += [f"smsportal:pace:number:{n}" for n in NUMBERS] + [f"smsportal:pace:backlog:number:{n}" for n in NUMBERS]
    r.delete(*keys)
    yield r
    r.delete(*keys)


def _candidate(number: str, *, number_mps: float = 0.0, account_mps: float = 15.0, cost: int = 1) -> Candidate:
    return Candidate(number=(f"number:{number}", number_mps), account=(ACCOUNT, account_mps), cost=cost, label=number)


def _start(booking: str) -> float:
    """A booking's slot on Redis's clock, in seconds."""
    return float(booking.split(":")[0]) / 1000


def _reserve_in_another_process(seed: int, count: int, out: multiprocessing.Queue) -> None:
    """Reserve ``count`` slots the way a paced batch does (lead 0.25 s), one or three segments each."""
    rng = random.Random(seed)
    limiter = RateLimiter()  # this process's own connection and clock

    async def run() -> list[tuple[str, int]]:
        taken: list[tuple[str, int]] = []
        while len(taken) < count:
            cost = rng.choice([1, 1, 3])
            pool = [_candidate(n, number_mps=5.0, account_mps=20.0, cost=cost) for n in NUMBERS]
            rng.shuffle(pool)
            pick, seconds, booking = await limiter.book(pool, horizon=0.25)
            if pick < 0:
                await asyncio.sleep(seconds)
            else:
                taken.append((booking, cost))
        return taken

    out.put(asyncio.run(run()))


@override_settings(SMS_PACE_ACCOUNT_MARGIN=0.0)
def test_two_processes_never_book_more_segments_in_a_second_than_the_account_allows(clean_redis):
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_reserve_in_another_process, args=(seed, 12, out)) for seed in (1, 2)]
    for p in procs:
        p.start()
    taken = [entry for _ in procs for entry in out.get(timeout=60)]
    for p in procs:
        p.join(10)
    slots = sorted((_start(b), cost) for b, cost in taken)
    assert len(slots) == 24
    # A 3-segment send costs three: the next slot comes 3/20 s after it, whichever process took it.
    for (a, cost), (b, _) in itertools.pairwise(slots):
        assert b - a >= cost / 20.0 - 0.001
    # No window of one second holds more than 20 segments.
    for i, (t, _) in enumerate(slots):
        assert sum(cost for u, cost in slots[i:] if u < t + 1.0) <= 20


@override_settings(SMS_PACE_ACCOUNT_MARGIN=0.0)
def test_a_send_that_left_late_keeps_the_slot_a_window_later_away_from_it(clean_redis):
    limiter = RateLimiter()

    async def run() -> tuple[list[str], str]:
        # 15/s: one second's worth, 1/15 s apart
        on_time = [(await limiter.next_booking(_candidate(NUMBERS[0])))[1] for _ in range(15)]
        await limiter.left(_candidate(NUMBERS[0]), on_time[0], 0.03)  # its request left 30 ms after its slot
        return on_time, (await limiter.next_booking(_candidate(NUMBERS[1])))[1]

    on_time, sixteenth = asyncio.run(run())
    first = _start(on_time[0])
    assert _start(on_time[-1]) - first == pytest.approx(14 / 15, abs=0.002)
    # On time, the sixteenth would come a second after the first slot, and the second from the
    # first send's departure would hold 16 sends; it keeps a whole second from that departure.
    assert _start(sixteenth) - first >= 1.03 - 0.002
    assert _start(sixteenth) - first < 1.1


@override_settings(SMS_PACE_ACCOUNT_MARGIN=0.0)
def test_a_slot_not_used_is_given_back(clean_redis):
    limiter = RateLimiter()

    async def run() -> tuple[str, str, str]:
        first = (await limiter.next_booking(_candidate(NUMBERS[0])))[1]
        given_back = (await limiter.next_booking(_candidate(NUMBERS[0])))[1]
        await limiter.left(_candidate(NUMBERS[0]), given_back, None)  # its checks refused it
        return first, given_back, (await limiter.next_booking(_candidate(NUMBERS[1])))[1]

    first, given_back, reused = asyncio.run(run())
    assert _start(given_back) - _start(first) == pytest.approx(1 / 15, abs=0.002)
    assert _start(reused) == pytest.approx(_start(given_back), abs=0.002)


def test_a_number_s_next_turn_comes_a_full_interval_after_its_late_send(clean_redis):
    limiter = RateLimiter()
    number = _candidate(NUMBERS[2], number_mps=1.0, account_mps=0.0)

    async def run() -> tuple[str, str]:
        first = (await limiter.next_booking(number))[1]
        await limiter.left(number, first, 0.3)
        return first, (await limiter.next_booking(number))[1]

    first, second = asyncio.run(run())
    assert _start(second) - _start(first) >= 1.3 - 0.002


def test_a_slow_answer_from_redis_does_not_move_the_slot_later(clean_redis):
    limiter = RateLimiter()
    number = _candidate(NUMBERS[3], number_mps=0.0, account_mps=15.0)

    async def run() -> tuple[float, str]:
        await limiter.next_booking(number)  # a quick round trip first: the clocks' offset
        task = asyncio.ensure_future(limiter.next_booking(number))
        await asyncio.sleep(0.01)  # the request is out
        time.sleep(0.15)  # the loop is busy when the answer comes in
        return await task

    slot, booking = asyncio.run(run())
    # the slot on this process's clock is the booked one on Redis's clock (same host, same clock)
    on_our_clock = _start(booking) - (time.time() - time.monotonic())
    assert slot == pytest.approx(on_our_clock, abs=0.03)  # 0.15 s later before the fix
