"""A campaign's recent send outcomes per provider, the window auto-pause judges, shared through Redis.

Every worker process records the outcomes of its batches into the same window. One Lua script
decays the stored counts, adds a group's and stores them, so two processes recording at once
cannot overwrite each other's counts (a cache ``get`` then ``set`` lost one of them).

Two windows, kept side by side for each provider: the campaign's last ~30 s (exponential time
decay, failover's window) and its last ~2 x ``SMS_AUTO_PAUSE_MIN_SENDS`` sends (decay per send);
``campaigns.sending`` decides on them. While Redis is down or hung the window answers as an
empty one that keeps nothing (as the cache does, smsportal/cache.py): each group is judged on its
own, and never makes a send batch fail.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.conf import settings
from redis.commands.core import Script
from redis.exceptions import RedisError

from messaging import failover
from smsportal import redis_clients

logger = logging.getLogger(__name__)
TTL_SECONDS = 3600
_PREFIX = "p:"  # a provider's field; "at" is the window's own

# KEYS[1]: the campaign's window, a hash: "at" (when its counts were last decayed, s) and per
# provider "p:<name>" = "<ok> <bad> by time, <ok> <bad> by sends". ARGV: [1] now (s), [2] the time
# window's time constant (s), [3] the per-send factor, [4] TTL (s), then per provider of the
# group: name, ok, bad. Decays every provider's counts (by the time since "at" and by the
# group's sends), adds the group's and stores them; returns {field, counts, ...}.
# Numbers cross as "%.17g" strings: Lua numbers returned to Redis would be cut to integers.
_LUA = """
local now = tonumber(ARGV[1])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or ARGV[1])
local per_second = math.exp(-math.max(0, now - at) / tonumber(ARGV[2]))
local added, sends = {}, 0
for i = 5, #ARGV, 3 do
  local ok, bad = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  added['p:' .. ARGV[i]] = {ok, bad}
  sends = sends + ok + bad
end
local per_send = tonumber(ARGV[3]) ^ sends
local window = {}
local stored = redis.call('HGETALL', KEYS[1])
for i = 1, #stored, 2 do
  if stored[i] ~= 'at' then
    local c = {}
    for v in string.gmatch(stored[i + 1], '%S+') do c[#c + 1] = tonumber(v) end
    window[stored[i]] = c
  end
end
for field, _ in pairs(added) do
  if window[field] == nil then window[field] = {0, 0, 0, 0} end
end
-- a process whose clock is behind does not move the decay's origin back
local fields = {'at', string.format('%.17g', math.max(at, now))}
local out = {}
for field, c in pairs(window) do
  local a = added[field] or {0, 0}
  local counts = string.format('%.17g %.17g %.17g %.17g',
    c[1] * per_second + a[1], c[2] * per_second + a[2], c[3] * per_send + a[1], c[4] * per_send + a[2])
  fields[#fields + 1] = field
  fields[#fields + 1] = counts
  out[#out + 1] = field
  out[#out + 1] = counts
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return out
"""


def _script() -> Script:
    return redis_clients.script(_LUA)


def _key(campaign_id: int) -> str:
    return f"smsportal:campaign:{campaign_id}:recent"


def record(*, campaign_id: int, by_provider: Mapping[str, tuple[int, int]], now: float) -> dict[str, list[float]]:
    """Add a group's ``(ok, failed)`` per provider to the campaign's window, at ``now`` (wall clock, s).

    Returns the window after it, per provider of the campaign's recent sends:
    ``[ok, failed]`` over the last ~30 s, then ``[ok, failed]`` over the last ~2 x
    ``SMS_AUTO_PAUSE_MIN_SENDS`` sends.
    """
    alone = {provider: [float(ok), float(bad), float(ok), float(bad)] for provider, (ok, bad) in by_provider.items()}
    if not settings.REDIS_URL or not redis_clients.available():
        return alone
    args: list[str | float | int] = [
        now,
        failover.WINDOW_SECONDS,
        1 - 1 / (2 * settings.SMS_AUTO_PAUSE_MIN_SENDS),
        TTL_SECONDS,
    ]
    for provider, (ok, bad) in by_provider.items():
        args += [provider, ok, bad]
    try:
        answer = _script()(keys=[_key(campaign_id)], args=args)
    except (RedisError, OSError) as exc:
        # As the cache answers while Redis is down (an empty window, nothing kept): the group is
        # judged alone, and the batch that recorded it goes on.
        redis_clients.report_failure(exc)
        return alone
    window: dict[str, list[float]] = {}
    for field, counts in zip(answer[::2], answer[1::2], strict=True):
        name = field.decode() if isinstance(field, bytes) else str(field)
        window[name.removeprefix(_PREFIX)] = [float(v) for v in counts.split()]
    return window


def forget(*, campaign_id: int) -> None:
    """Start the campaign's window afresh (it was paused: its resume is judged on new sends)."""
    if not settings.REDIS_URL or not redis_clients.available():
        return
    try:
        redis_clients.client().delete(_key(campaign_id))
    except (RedisError, OSError) as exc:
        redis_clients.report_failure(exc)
