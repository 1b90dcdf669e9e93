"""Per-number and per-provider send rates, shared by every worker through Redis.

A smooth schedule, not a bucket that starts full: each key holds the earliest time its next
send may start (GCRA's "theoretical arrival time"). A send of ``cost`` segments at a rate of
``r``/s moves it ``cost / r`` seconds on, so sends are evenly spaced from the very first one:
no burst at start-up or at a second boundary, and no 1-second window over the rate, however
many workers share the key. One Lua call checks every key of a send at once (its number and
its provider's account) and takes them all or none, so waiting for one never bunches the
other. Without Redis (the embedded default) each process keeps its own schedule, which is
exact for the single worker the embedded mode runs.

The send path reserves instead (:meth:`RateLimiter.reserve`, used by messaging.pacing): the
earliest slot among several candidate numbers, up to a lead ahead, so a send can leave exactly
at its slot. An account's schedule is then a set of booked slots rather than one "next free"
time, so a send booked far ahead (its number busy for a second) leaves the slots before it to
others. Each send's worker tells when it actually left (:meth:`RateLimiter.left`, from
messaging.pacing.Departures): the account then keeps every window of a second from that moment
within its limit, and the number's next turn a full interval after it, so a late send pushes
the sends after it instead of bunching with them at the provider. The margins that cover what is
not measured are applied in one place, :func:`number_limit` and :func:`account_limit`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from smsportal import redis_clients

logger = logging.getLogger(__name__)
# How long a send waits for Redis to come back before falling back to per-process schedules.
_REDIS_GRACE_SECONDS = 5.0
# Until this many round trips are known, a request's whole round trip counts as lateness.
_KNOWN_TRIPS = 20
# A horizon no schedule reaches: reserve the next slot whenever it is.
_ANY_TIME = 86400.0

# KEYS: one per limit; ARGV[1] trace list ("" = off), ARGV[2] cost, ARGV[2+i] rate/s of KEYS[i],
# ARGV[3+#KEYS] the send's label for the trace.
# Returns "0" when every key was free (and moves each on), else the ms to wait (nothing taken).
# The clock is Redis's own, so every worker's sends are spaced on one clock.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local cost = tonumber(ARGV[2])
local start = now
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key))
  if tat and tat > start then start = tat end
end
if start > now then
  return tostring(start - now)
end
for i, key in ipairs(KEYS) do
  local interval = cost * 1000 / tonumber(ARGV[2 + i])
  redis.call('SET', key, tostring(now + interval), 'PX', math.ceil(interval) + 60000)
end
if ARGV[1] ~= '' then
  redis.call('RPUSH', ARGV[1], string.format('%.3f', now) .. ' ' .. ARGV[3 + #KEYS] .. ' ' .. table.concat(KEYS, ' '))
end
return "0"
"""


# Reserve the earliest slot among candidate senders. KEYS, per candidate: its number's schedule
# (the time its next send may start), its account's bookings and its number's backlog. ARGV:
# [1] trace list ("" = off), [2] how far ahead a slot may be reserved (ms), then per candidate:
# number rate/s, account rate/s (0 = no limit), cost, label, account limit/s (the provider's own).
# An account booking is "start:end" (ms; end = start + cost / limit: no two slots closer than the
# provider's own limit allows), then ":left" once its worker
# said when the send actually left (:func:`_CONFIRM_LUA`); scored by the end: bookings never
# overlap, so that is their order by start too.
# A candidate's slot is the first moment from its number's next turn at which (1) the account has
# room between bookings (a send booked far ahead leaves the slots before it to others) and (2) no
# window of 1 s stretched by the margin (limit / rate) holds more than the limit, each booking counted
# when it left (a late send moves the slots after it, instead of bunching with them); one still
# unanswered counts as leaving now, at most a second after its slot (then it was given up).
# The earliest slot wins, and among slots within a millisecond of it the number with the most
# rows waiting across workers.
# Returns {index, ms from now to the slot, now, booking} (number and account booked, backlog down
# by one; the booking names the slot for _CONFIRM_LUA) or {0, ms to wait, now, ""} when no slot is within reach (nothing taken); now is
# Redis's clock (ms).
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = #KEYS / 3
local booked = {}
local function bookings(key)
  if booked[key] == nil then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 60000)
    local list = {}
    -- the ones to come, and those that left within the last window or two
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, now - 2500, '+inf')) do
      local a, b, c = string.match(m, '^([^:]+):([^:]+):?(.*)$')
      local start = tonumber(a)
      local left = tonumber(c)
      if left == nil then left = math.max(start, math.min(now, start + 1000)) end
      list[#list + 1] = {start, tonumber(b), left}
    end
    booked[key] = list
  end
  return booked[key]
end
local function room_from(key, from, need)
  local s = from
  for _, b in ipairs(bookings(key)) do
    if b[2] > s then
      if b[1] >= s + need then break end
      s = b[2]
    end
  end
  return s
end
-- bookings by departure, with running sums of their cost (segments), per account key
local departed = {}
local function departures(key, cap)
  if departed[key] == nil then
    local list = {}
    for _, b in ipairs(bookings(key)) do list[#list + 1] = {b[3], (b[2] - b[1]) * cap / 1000} end
    table.sort(list, function(x, y) return x[1] < y[1] end)
    local times, sums, total = {}, {[0] = 0}, 0
    for i, e in ipairs(list) do
      times[i] = e[1]
      total = total + e[2]
      sums[i] = total
    end
    departed[key] = {times, sums}
  end
  return departed[key][1], departed[key][2]
end
-- how many of the sorted times are below t
local function below(times, t)
  local lo, hi = 0, #times
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if times[mid] < t then lo = mid else hi = mid - 1 end
  end
  return lo
end
-- the earliest moment from s at which every window of w ms holding s holds at most cap: the
-- windows opening at s and at each departure in (s - w, s) are the ones that can be fullest
local function window_from(key, s, cost, cap, w)
  local times, sums = departures(key, cap)
  for _ = 1, 64 do
    local moved = false
    local first = below(times, s - w) + 1
    local at_s = below(times, s) + 1
    for i = first, at_s do
      -- i = at_s: the window opening at s itself
      local u = s
      if i < at_s then u = times[i] end
      if u > s - w then
        local from = below(times, u)
        if sums[below(times, u + w)] - sums[from] + cost > cap + 0.001 then
          if u < s then s = u + w elseif times[at_s] ~= nil then s = times[at_s] + 0.001 end
          moved = true
          break
        end
      end
    end
    if not moved then return s end
  end
  return s
end
local function account_slot(key, from, cost, rate, cap)
  local need = cost * 1000 / cap
  local w = cap * 1000 / rate
  local s = from
  for _ = 1, 32 do
    local s1 = room_from(key, s, need)
    local s2 = window_from(key, s1, cost, cap, w)
    if s2 == s1 then return s1 end
    s = s2
  end
  return s
end
local slots = {}
local earliest = nil
for i = 1, n do
  local a = 2 + (i - 1) * 5
  local slot = now
  if tonumber(ARGV[a + 1]) > 0 then
    local tat = tonumber(redis.call('GET', KEYS[(i - 1) * 3 + 1]))
    if tat and tat > slot then slot = tat end
  end
  if tonumber(ARGV[a + 2]) > 0 then
    slot = account_slot(KEYS[(i - 1) * 3 + 2], slot, tonumber(ARGV[a + 3]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 5]))
  end
  slots[i] = slot
  if earliest == nil or slot < earliest then earliest = slot end
end
if earliest > now + tonumber(ARGV[2]) then
  return {0, tostring(earliest - now - tonumber(ARGV[2])), tostring(now), ''}
end
local pick, most = nil, -1
for i = 1, n do
  if slots[i] <= earliest + 1 then
    local waiting = tonumber(redis.call('GET', KEYS[i * 3]) or '0')
    if waiting > most then pick, most = i, waiting end
  end
end
local slot = slots[pick]
local a = 2 + (pick - 1) * 5
local cost = tonumber(ARGV[a + 3])
local number_rate, account_rate = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
if number_rate > 0 then
  local interval = cost * 1000 / number_rate
  redis.call('SET', KEYS[(pick - 1) * 3 + 1], tostring(slot + interval), 'PX', math.ceil(slot - now + interval) + 60000)
end
local booking = string.format('%.3f:%.3f', slot, slot)
if account_rate > 0 then
  local key = KEYS[(pick - 1) * 3 + 2]
  local ends = slot + cost * 1000 / tonumber(ARGV[a + 5])
  booking = string.format('%.3f:%.3f', slot, ends)
  redis.call('ZADD', key, ends, booking)
  redis.call('PEXPIRE', key, math.ceil(ends - now) + 60000)
end
if most > 0 then redis.call('DECR', KEYS[pick * 3]) end
if ARGV[1] ~= '' then
  redis.call('RPUSH', ARGV[1], string.format('%.3f', slot) .. ' ' .. ARGV[a + 4] .. ' ' .. KEYS[(pick - 1) * 3 + 1])
end
return {pick, tostring(slot - now), tostring(now), booking}
"""

# When a booked send left, as its worker measured it. KEYS: [1] the account's bookings, [2] the
# number's schedule. ARGV: [1] the booking ("start:end"; start = end when the account has no
# limit), [2] ms after its slot that the send left, or "" when it never did (the booking is
# dropped), [3] the number's interval for it (ms; 0 = no limit).
# The number's next turn comes no sooner than that interval after the send left.
_CONFIRM_LUA = """
local m = ARGV[1]
local held = redis.call('ZREM', KEYS[1], m) == 1
if ARGV[2] == '' then return 0 end
local a, b = string.match(m, '^([^:]+):([^:]+)$')
local left = tonumber(a) + tonumber(ARGV[2])
if held then redis.call('ZADD', KEYS[1], tonumber(b), string.format('%s:%.3f', m, left)) end
local interval = tonumber(ARGV[3])
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tat < left + interval then
    redis.call('SET', KEYS[2], tostring(left + interval), 'PX', math.ceil(interval) + 60000)
  end
end
return 1
"""


def number_limit(number: str, max_mps: float) -> tuple[str, float]:
    """The schedule's key and rate for a sender number: ``max_mps`` less ``SMS_PACE_NUMBER_MARGIN``.

    A send reaches the provider a little after its turn, and not always equally late: spaced
    exactly ``1 / max_mps`` apart at the turn, two sends can land closer at the provider. The
    margin spaces them wider so that lateness stays inside the limit. The one place a number's
    pace is derived (the account's is :func:`account_limit`); 0 means no limit.
    """
    return f"number:{number}", _with_margin(max_mps, settings.SMS_PACE_NUMBER_MARGIN)


def account_limit(provider: str) -> tuple[str, float]:
    """The schedule's key and rate for a provider account: ``<NAME>_ACCOUNT_MPS`` less ``SMS_PACE_ACCOUNT_MARGIN``."""
    return f"provider:{provider}", _with_margin(
        settings.SMS_PROVIDER_MPS.get(provider, 0.0), settings.SMS_PACE_ACCOUNT_MARGIN
    )


def _with_margin(rate: float, margin: float) -> float:
    return rate / (1 + margin) if rate > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A send that could take the next slot: its number's and its account's limits (rate 0 = none)."""

    number: tuple[str, float]
    account: tuple[str, float]
    cost: int = 1
    label: str = ""  # for the trace (SMS_PACE_TRACE_KEY)

    @property
    def limited(self) -> bool:
        """Under some limit: its number's or its account's."""
        return self.number[1] > 0 or self.account[1] > 0

    @property
    def bookings_key(self) -> str:
        return f"smsportal:pace:{self.account[0]}:slots"

    @property
    def backlog_key(self) -> str:
        return f"smsportal:pace:backlog:{self.number[0]}"


class _LocalBuckets:
    """The same schedule in this process only (Redis unreachable, or not configured)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, float] = {}

    def take(self, limits: list[tuple[str, float]], cost: float) -> float:
        now = time.monotonic()
        with self._lock:
            start = max([now, *(self._state.get(key, 0.0) for key, _ in limits)])
            if start > now:
                return start - now
            for key, rate in limits:
                self._state[key] = now + cost / rate
            return 0.0

    def reserve(self, candidates: Sequence[Candidate], horizon: float) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            slots = [
                max([now, *(self._state.get(key, 0.0) for key, rate in (c.number, c.account) if rate > 0)])
                for c in candidates
            ]
            earliest = min(slots)
            if earliest > now + horizon:
                return -1, earliest - now - horizon
            pick = slots.index(earliest)
            for key, rate in (candidates[pick].number, candidates[pick].account):
                if rate > 0:
                    self._state[key] = earliest + candidates[pick].cost / rate
            return pick, earliest - now


class _RedisClock:
    """Redis's clock on this process's ``time.monotonic()``, from the quickest recent round trips.

    A slot is a time on Redis's clock. Turned into ours as "now + its distance from Redis's now",
    it would move later by however long the answer took to reach us, and that varies (a busy
    loop, the GIL, the CPU): two sends booked 1/15 s apart would leave closer or wider. The round
    trip with the least delay pins the offset between the clocks best (Redis read its clock in
    the middle of it), as in NTP.
    """

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=32)  # (round trip, offset) in seconds

    def observe(self, redis_ms: float, sent: float, answered: float) -> None:
        self._samples.append((answered - sent, redis_ms / 1000 - (sent + answered) / 2))

    def local(self, redis_ms: float) -> float:
        """``redis_ms`` on ``time.monotonic()`` (call :meth:`observe` first)."""
        return redis_ms / 1000 - min(self._samples)[1]


class RateLimiter:
    """Waits until a send of ``cost`` segments may start under every limit named. Use on the sender loop."""

    def __init__(self) -> None:
        self._redis: aioredis.Redis | None = None
        self._script: AsyncScript | None = None
        self._reserve: AsyncScript | None = None
        self._local = _LocalBuckets()
        self._down_since: float | None = None
        self._clock = _RedisClock()
        self._confirm: AsyncScript | None = None
        self._trips: deque[float] = deque(maxlen=200)  # recent requests' round trips (seconds)

    def _redis_script(self) -> AsyncScript | None:
        if self._script is None and settings.REDIS_URL:
            self._redis = aioredis.from_url(settings.REDIS_URL, **redis_clients.client_options())
            self._script = self._redis.register_script(_LUA)
        return self._script

    async def _take(self, key: str, rate: float, cost: float) -> float:
        return await self._take_all([(key, rate)], cost)

    async def _take_all(self, limits: list[tuple[str, float]], cost: float, label: str = "") -> float:
        """0 when the send may start now (every key moved on), else seconds to wait (nothing taken)."""
        script = self._redis_script()
        if script is None:
            return self._local.take(limits, cost)
        try:
            wait_ms = await script(
                keys=[f"smsportal:pace:{key}" for key, _ in limits],
                args=[settings.SMS_PACE_TRACE_KEY, cost, *(rate for _, rate in limits), label],
            )
        except RedisError as exc:
            # Redis is down or restarting. Raising here would abort the whole chunk after its rows
            # became ``sending`` (outcome unknown for days); wait a little, then limit this process
            # on its own until Redis answers again.
            if time.monotonic() - self._redis_down_since(reset=False) < _REDIS_GRACE_SECONDS:
                return 0.25  # acquire() sleeps, then asks again
            logger.warning("rate limiter: Redis unavailable (%s); using this process's own buckets", exc)
            return self._local.take(limits, cost)
        self._redis_down_since(reset=True)
        return float(wait_ms) / 1000

    async def reserve(self, candidates: Sequence[Candidate], *, horizon: float) -> tuple[int, float]:
        """Reserve the earliest slot, at most ``horizon`` seconds ahead, among ``candidates``.

        Returns ``(index, seconds until the slot)``, or ``(-1, seconds to wait)`` when every
        candidate's slot is further ahead (nothing taken). The caller sends at its slot: the
        turn is taken in advance, so the work before a request (marking it sending, checks)
        happens before its slot instead of delaying the request by a varying amount.
        """
        pick, seconds, _ = await self.book(candidates, horizon=horizon)
        return pick, seconds

    async def book(self, candidates: Sequence[Candidate], *, horizon: float) -> tuple[int, float, str]:
        """:meth:`reserve`, and the account's booking of the slot ("" when none) for :meth:`left`."""
        script = self._reserve_script()
        if script is None:
            return (*self._local.reserve(candidates, horizon), "")
        trace = settings.SMS_PACE_TRACE_KEY
        keys: list[str] = []
        args: list[str | float] = [trace, horizon * 1000]
        for c in candidates:
            keys += [f"smsportal:pace:{c.number[0]}", c.bookings_key, c.backlog_key]
            args += [c.number[1], c.account[1], c.cost, f"{c.label}@{os.getpid()}" if trace else ""]
            args.append(c.account[1] * (1 + settings.SMS_PACE_ACCOUNT_MARGIN))  # the provider's own limit
        sent = time.monotonic()
        try:
            pick, ms, redis_now, booking = await script(keys=keys, args=args)
        except RedisError as exc:
            if time.monotonic() - self._redis_down_since(reset=False) < _REDIS_GRACE_SECONDS:
                return -1, 0.25, ""
            logger.warning("rate limiter: Redis unavailable (%s); using this process's own buckets", exc)
            return (*self._local.reserve(candidates, horizon), "")
        answered = time.monotonic()
        self._redis_down_since(reset=True)
        self._clock.observe(float(redis_now), sent, answered)
        if int(pick) == 0:
            return -1, float(ms) / 1000, ""
        # the slot on our clock, whenever this answer reached us
        slot = self._clock.local(float(redis_now) + float(ms))
        return int(pick) - 1, slot - time.monotonic(), booking.decode() if isinstance(booking, bytes) else booking

    async def next_slot(self, candidate: Candidate) -> float:
        """Reserve ``candidate``'s next slot however far ahead; returns it on ``time.monotonic()``.

        Unlike :meth:`acquire` it cannot be overtaken: batches reserving ahead keep the schedule
        booked, so a send waiting for a free moment could wait until the campaign ends.
        """
        return (await self.next_booking(candidate))[0]

    async def next_booking(self, candidate: Candidate) -> tuple[float, str]:
        """:meth:`next_slot`, and its booking for :meth:`left`."""
        if candidate.number[1] <= 0 and candidate.account[1] <= 0:
            return time.monotonic(), ""
        while True:
            pick, seconds, booking = await self.book([candidate], horizon=_ANY_TIME)
            if pick == 0:
                return time.monotonic() + seconds, booking
            await asyncio.sleep(seconds)  # Redis is down and within its grace period

    def round_trip(self, seconds: float) -> float:
        """How much longer than the quickest recent one a request's round trip took (seconds).

        The quickest took the least on the way there and back; whatever more this one took, it
        may have spent on the way there, so the send may have reached the provider that much later.
        """
        self._trips.append(seconds)
        if len(self._trips) < _KNOWN_TRIPS:
            return seconds  # no quickest trip known yet (the first requests also open connections)
        return seconds - min(self._trips)

    async def left(self, candidate: Candidate, booking: str, after: float | None) -> None:
        """The send booked as ``booking`` left ``after`` seconds after its slot (None: it never left).

        The account counts it from then in its windows, and its number's next turn comes a full
        interval after it: a late send pushes the sends after it instead of bunching with them.
        Best effort: when Redis is down the slot stays as booked.
        """
        if not booking or self._redis is None:
            return
        if self._confirm is None:
            self._confirm = self._redis.register_script(_CONFIRM_LUA)
        rate = candidate.number[1]
        try:
            await self._confirm(
                keys=[candidate.bookings_key, f"smsportal:pace:{candidate.number[0]}"],
                args=[
                    booking,
                    "" if after is None else max(0.0, after) * 1000,
                    candidate.cost * 1000 / rate if rate > 0 else 0,
                ],
            )
        except RedisError:
            logger.info("rate limiter: a send's departure not recorded (Redis unavailable)")

    async def add_backlog(self, counts: Mapping[str, int]) -> None:
        """Rows waiting per number across every worker (``+`` when a batch starts, ``-`` for what it gave back).

        Slots go first to the numbers with the most rows waiting, so the busiest numbers do not
        finish last and leave the account idle at the end of a campaign. Only an order: when Redis
        is down it is skipped.
        """
        if not counts or self._reserve_script() is None or self._redis is None:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for number_key, count in counts.items():
                    key = Candidate(number=(number_key, 0), account=("", 0)).backlog_key
                    pipe.incrby(key, count)
                    pipe.expire(key, settings.SMS_LEASE_SECONDS)  # a crashed batch's count does not linger
                await pipe.execute()
        except RedisError:
            logger.info("rate limiter: backlog not updated (Redis unavailable)")

    def trace_sent(self, label: str) -> None:
        """With ``SMS_PACE_TRACE_KEY`` set, note when a send passed its guard (``<key>:sent``), for the bench."""
        trace = settings.SMS_PACE_TRACE_KEY
        if trace and self._redis is not None:
            entry = f"{time.time() * 1000:.3f} {label}@{os.getpid()}"
            task = asyncio.ensure_future(self._redis.rpush(f"{trace}:sent", entry))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # best effort: only a trace

    def _reserve_script(self) -> AsyncScript | None:
        if self._redis_script() is None or self._redis is None:
            return None
        if self._reserve is None:
            self._reserve = self._redis.register_script(_RESERVE_LUA)
        return self._reserve

    def _redis_down_since(self, *, reset: bool) -> float:
        if reset:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = time.monotonic()
        return self._down_since or time.monotonic()

    async def acquire(self, limits: list[tuple[str, float]], cost: int, label: str = "") -> None:
        """``limits`` is ``[(key, rate_per_second), ...]``; a rate of 0 means no limit."""
        active = [(key, rate) for key, rate in limits if rate > 0]
        if not active:
            return
        while (wait := await self._take_all(active, cost, label)) > 0:
            await asyncio.sleep(wait)


_limiters: dict[int, RateLimiter] = {}


def get_limiter() -> RateLimiter:
    """One limiter per event loop (redis.asyncio connections belong to a loop)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(id(loop))
    if limiter is None:
        limiter = _limiters[id(loop)] = RateLimiter()
    return limiter
