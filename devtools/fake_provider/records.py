"""What the fake provider saw: the accepted messages, duplicate (dst, text) pairs and counters."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from .httputil import digits

MESSAGE_FIELDS = (
    "provider",
    "id",
    "src",
    "dst",
    "text",
    "media_urls",
    "type",
    "url",
    "method",
    "received_at",
    "arrived_at",
    "outcome",
    "error_code",
    "last_status",
)


class Message:
    """One accepted message (one per destination). Slots keep it small."""

    __slots__ = MESSAGE_FIELDS

    def __init__(self, provider, id, src, dst, text, media_urls, type, url, method, received_at):
        self.provider = provider
        self.id = id
        self.src = src
        self.dst = dst
        self.text = text
        self.media_urls = media_urls
        self.type = type
        self.url = url
        self.method = method
        self.received_at = received_at
        self.arrived_at = received_at  # the server sets when the request came in, before the added latency
        self.outcome = "delivered"
        self.error_code = None
        self.last_status = None

    def to_dict(self, fields: tuple[str, ...] = MESSAGE_FIELDS) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in fields}
        if "media_urls" in d and d["media_urls"] is not None:
            d["media_urls"] = list(d["media_urls"])
        return d


def new_stats(providers: tuple[str, ...]) -> dict[str, Any]:
    return {
        "requests": 0,
        "accepted": 0,
        **{f"accepted_{name}": 0 for name in providers},
        "status_codes": Counter(),
        "fault_5xx": 0,
        "fault_429": 0,
        "fault_timeout": 0,
        "fault_drop": 0,
        "fault_accept_timeout": 0,
        "fault_accept_drop": 0,
        "outcomes": Counter(),
        "callbacks_sent": 0,
        "callbacks_failed": 0,
        "callbacks_retried": 0,
        "callbacks_duplicated": 0,
        "callback_status_codes": Counter(),
        "inbound_sent": 0,
        "inbound_failed": 0,
    }


class State:
    """Everything :meth:`FakeProviderServer.reset` clears, and the seeded random generator."""

    def __init__(self, seed: int | None, providers: tuple[str, ...]):
        self.messages: list[Message] = []
        self.pair_counts: dict[tuple[str, str], int] = {}
        self.duplicate_pairs = 0
        self.duplicate_sends = 0
        self.stats = new_stats(providers)
        self.rng = random.Random(seed)

    def reseed(self, seed: int | None) -> None:
        self.rng = random.Random(seed)

    def count(self, status: int) -> None:
        self.stats["status_codes"][status] += 1

    def record(self, msg: Message, config, forced_outcomes: dict[str, tuple[str, int]]) -> None:
        """Count an accepted message, decide its delivery outcome and keep it (if configured)."""
        s = self.stats
        s["accepted"] += 1
        s["accepted_" + msg.provider] += 1
        c = config
        number = digits(msg.dst)
        forced = forced_outcomes.get(number)
        if forced is not None:
            msg.outcome, msg.error_code = forced
        elif c.rate_undelivered or c.rate_failed:
            r = self.rng.random()
            if r < c.rate_undelivered:
                msg.outcome = "undelivered"
                msg.error_code = self.rng.choice(c.error_codes["undelivered"])
            elif r < c.rate_undelivered + c.rate_failed:
                msg.outcome = "failed"
                msg.error_code = self.rng.choice(c.error_codes["failed"])
        s["outcomes"][msg.outcome] += 1
        if c.record_messages:
            self.messages.append(msg)
        key = ("+" + number, msg.text)
        n = self.pair_counts.get(key, 0) + 1
        self.pair_counts[key] = n
        if n == 2:
            self.duplicate_pairs += 1
        if n >= 2:
            self.duplicate_sends += 1

    def snapshot(self, callbacks_pending: int) -> dict[str, Any]:
        s = dict(self.stats)
        for key in ("status_codes", "callback_status_codes"):
            s[key] = {str(k): v for k, v in sorted(s[key].items(), key=lambda kv: str(kv[0]))}
        s["outcomes"] = dict(s["outcomes"])
        s["recorded"] = len(self.messages)
        s["unique_pairs"] = len(self.pair_counts)
        s["duplicates"] = self.duplicate_pairs
        s["duplicate_sends"] = self.duplicate_sends
        s["callbacks_pending"] = callbacks_pending
        return s

    def list_messages(
        self,
        fields: tuple[str, ...] | None = None,
        provider: str | None = None,
        dst: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        fields = fields or MESSAGE_FIELDS
        bad = set(fields) - set(MESSAGE_FIELDS)
        if bad:
            raise ValueError(f"unknown field(s): {', '.join(sorted(bad))}")
        msgs = self.messages
        if provider or dst:
            want = digits(dst) if dst else None
            msgs = [
                m for m in msgs if (not provider or m.provider == provider) and (want is None or digits(m.dst) == want)
            ]
        end = None if limit is None else offset + limit
        return [m.to_dict(fields) for m in msgs[offset:end]]

    def duplicates(self) -> list[dict[str, Any]]:
        return [{"dst": dst, "text": text, "count": n} for (dst, text), n in self.pair_counts.items() if n > 1]
