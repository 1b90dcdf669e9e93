"""The send path: claim rows, send them concurrently, record outcomes in bulk.

A batch goes through four short transactions and never holds one open during
HTTP calls:

1. claim: ``pending`` rows of the batch (``FOR UPDATE SKIP LOCKED``) become
   ``claimed`` with a lease. A redelivered task finds nothing left to claim.
2. prepare: consent checked (the rule is the recipients app's); for campaign rows the
   campaign renders bodies, checks validity and the send window, and picks a sender
   (messaging.hooks: this module never imports the apps above it).
3. per chunk: rows become ``sending`` just before their requests start, so a
   worker that dies leaves ``claimed`` rows (safe to send again) apart from
   ``sending`` ones (outcome unknown: settled by the provider's callback). The
   next chunk starts as soon as this one's requests have all started. Rows under a
   rate limit go in small groups instead, each with a slot reserved a moment ahead
   (messaging.pacing); such a batch renews the lease of the rows it still holds.
4. outcomes are recorded as they complete, in small groups (up to 500, or 0.25 s);
   transient errors come back as ``pending`` with a backoff ``due_at``, permanent
   ones fail at once. A request still out a second after the batch's last one
   started (hung until its read timeout) is recorded later by the process's
   background recorder: it holds neither its batch nor the next one, and its row
   stays ``sending`` until then, never released or sent again blindly.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import AuthorizedSender
from messaging import failover, hooks, pacing
from messaging.bulk import bulk_set
from messaging.encoding import analyze
from messaging.hooks import CampaignOutcomes
from messaging.lookups import among
from messaging.models import Message, MessageStatus
from messaging.optouts import RecentOptOuts
from messaging.ratelimit import Candidate, account_limit, get_limiter, number_limit
from messaging.signals import recipients_refused
from messaging.transitions import move, set_and_move
from providers.backends import OutboundSMS, SendOutcome, get_backend
from providers.backends.base import BaseBackend, Guard
from providers.errors import AuthenticationFailed, ConfigurationError, OutcomeUnknown, RecipientOptedOut

logger = logging.getLogger(__name__)
S = MessageStatus


@dataclass
class Row:
    id: int
    campaign_id: int | None
    recipient_id: int | None
    to: str
    kind: str
    attempts: int
    body: str
    media_urls: list[str]
    sender: str
    provider: str
    consent: str | None
    recipient: dict = field(default_factory=dict)  # first_name, last_name, attributes: for templates
    segments: int = 0


@dataclass
class BatchResult:
    claimed: int = 0
    accepted: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    released: int = 0
    deferred: int = 0
    campaigns: set[int] = field(default_factory=set)


def send_batch(*, message_ids: Sequence[int], probe: bool = False) -> BatchResult:
    """Send the still-pending messages among ``message_ids``. Idempotent.

    ``probe``: the rows are sent although their campaign is paused (one row of an auto-paused
    campaign, to learn whether its provider works again: campaigns.tasks.probe_auto_paused).
    """
    result = BatchResult()
    rows, left_ready = _claim(message_ids, probe=probe)
    result.claimed = len(rows)
    # Campaigns whose rows were left ready are dispatched again after this batch (a no-op while
    # paused): a resume that committed while the claim ran may have found those rows still queued.
    result.campaigns = {r.campaign_id for r in rows if r.campaign_id} | left_ready
    if not rows:
        return result
    ready, verdict = _prepare(rows, result)
    rates = _number_rates(ready, verdict.number_rates)  # once per batch: the pools do not change in a second
    stream = _Stream(result)
    try:
        if pacing.paced(ready, rates):
            _send_paced(ready, rates, verdict.valid_until, result, stream, probe=probe)
        else:
            _send_unpaced(ready, rates, verdict.valid_until, result, stream, probe=probe)
        # A probe's outcome decides a campaign: wait for it. Otherwise a straggler (a request hung
        # until its read timeout) is left to the process's background recorder, so it holds
        # neither the other rows of this batch nor the next batch.
        if probe:
            stream.record_until(stream.all_done, timeout=settings.SMS_HTTP_TIMEOUT + 5)
        else:
            stream.record_until(stream.all_done, timeout=STRAGGLER_SECONDS, quiet=STRAGGLER_QUIET_SECONDS)
    finally:
        stream.hand_over()
    return result


def _send_unpaced(
    ready: list[Row],
    rates: dict[str, float],
    valid_until: dict[int, datetime],
    result: BatchResult,
    stream: _Stream,
    *,
    probe: bool,
) -> None:
    # Under no limit the batch goes as one chunk (paced rows go through _send_paced); outcomes are
    # recorded in small groups as they complete while the requests start.
    if ready:
        _send_chunk(ready, rates, valid_until, result, stream, probe=probe, group=not probe)
        stream.record_until(stream.all_started)


def _send_paced(
    ready: list[Row],
    rates: dict[str, float],
    valid_until: dict[int, datetime],
    result: BatchResult,
    stream: _Stream,
    *,
    probe: bool,
) -> None:
    """Rows under a limit go in the small groups whose slots the pacer reserved (messaging.pacing)."""
    pacer = pacing.Pacer(ready, rates)
    recorded = renewed = time.monotonic()
    lease = settings.SMS_LEASE_SECONDS
    try:
        while pacer:
            if time.monotonic() - renewed >= lease / 3:
                # A paced batch can outlast its rows' lease: keep the waiting rows ours, or the
                # sweeper would hand them to another worker while this one still sends them.
                if time.monotonic() - renewed >= lease * 2 / 3:
                    _release([r.id for r in pacer.rest()], result)  # stalled this long: no longer sure they are ours
                    break
                _renew_lease([r.id for r in pacer.waiting()])
                renewed = time.monotonic()
            group = pacer.next_group()
            slots = {row.id: slot for row, slot in group}
            if not _send_chunk([row for row, _ in group], rates, valid_until, result, stream, probe=probe, slots=slots):
                _release([r.id for r in pacer.rest()], result)
                break
            if time.monotonic() - recorded >= RECORD_GROUP_SECONDS:
                # outcomes in groups, not one write per send: this thread also marks the next rows
                stream.record_arrived()
                recorded = time.monotonic()
    finally:
        pacer.close()


def _renew_lease(ids: list[int]) -> None:
    lease = timezone.now() + timedelta(seconds=settings.SMS_LEASE_SECONDS)
    Message.objects.filter(pk__in=ids, status=S.CLAIMED).update(lease_expires_at=lease)


# How long a batch waits, after its last request started, for the slowest outcomes to come in;
# it stops sooner once no outcome has come in for STRAGGLER_QUIET_SECONDS: what is still out then
# is hung (1% of requests under faults made every batch wait the whole second: issue 21).
STRAGGLER_SECONDS = 1.0
STRAGGLER_QUIET_SECONDS = 0.25
# Once no more than this share of the batch's requests is still out, it waits only for
# STRAGGLER_FEW_QUIET_SECONDS of silence: the few left are the hung ones. Waiting out a group's
# 0.25 s and then the quiet 0.25 s for them idled each worker ~0.5 s per 500-row batch under
# faults, a third of its time on a quiet machine (issue 21). Under 50 requests it never applies.
STRAGGLER_FEW_SHARE = 0.02
STRAGGLER_FEW_QUIET_SECONDS = 0.05
# Stragglers are late already: the background recorder gathers them a second at a time (under
# faults, 0.25 s groups held about one row each, and each group dispatched its campaign again).
STRAGGLER_GROUP_SECONDS = 1.0
# Outcomes are recorded in groups of up to this many, or as many as came in this many seconds.
RECORD_GROUP = 500
RECORD_GROUP_SECONDS = 0.25


class _Stream:
    """A batch's requests in flight and their outcomes, recorded as they complete.

    The sender loop's thread calls :meth:`started` and :meth:`done`; the batch's thread records
    what came in (:meth:`record_until`). Whatever is still in flight when the batch moves on is
    handed to the process's background recorder (:func:`_record_later`): its row stays ``sending``
    until then, so a lost outcome is never sent again blindly (the lease and the provider's
    callback settle it).
    """

    def __init__(self, result: BatchResult) -> None:
        self.result = result
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[SendOutcome] = queue.SimpleQueue()
        self._rows: dict[str, Row] = {}
        self._deadlines: dict[int, datetime] = {}
        self._outbound: dict[str, OutboundSMS] = {}
        self._unstarted = 0
        self._in_flight = 0
        self._sent = 0
        self._handed_over = False
        self._backend = get_backend()
        self.departures = pacing.Departures()

    def send(
        self,
        rows: list[Row],
        outbound: list[OutboundSMS],
        deadlines: dict[int, datetime],
        guard: Guard,
        groupable: set[str] | None = None,
    ) -> None:
        with self._lock:
            for row, message in zip(rows, outbound, strict=True):
                self._rows[message.ref] = row
                self._outbound[message.ref] = message
            self._deadlines.update(deadlines)
            self._unstarted += len(outbound)
            self._in_flight += len(outbound)
            self._sent += len(outbound)
        self._backend.start_messages(
            outbound, guard=guard, on_started=self.started, on_done=self.done, groupable=groupable or ()
        )

    # -- on the sender loop's thread --
    def started(self, ref: str) -> None:
        with self._lock:
            self._unstarted -= 1

    def done(self, outcome: SendOutcome) -> None:
        self.departures.answered(outcome.ref)
        with self._lock:
            if self._handed_over:
                row = self._rows.pop(outcome.ref)
                _record_later(self._backend, row, self._outbound.pop(outcome.ref), outcome, self._deadlines)
                return
            self._queue.put(outcome)

    # -- on the batch's thread --
    def all_started(self) -> bool:
        return self._unstarted <= 0

    def all_done(self) -> bool:
        return self._in_flight <= 0

    def record_until(
        self, finished: Callable[[], bool], timeout: float | None = None, quiet: float | None = None
    ) -> None:
        """Record outcomes in groups as they come in, until ``finished()``, ``timeout`` seconds, or
        (with ``quiet``) no outcome for ``quiet`` seconds, or only a few still out and no outcome
        for STRAGGLER_FEW_QUIET_SECONDS."""
        deadline = None if timeout is None else time.monotonic() + timeout
        heard = time.monotonic()
        few = int(self._sent * STRAGGLER_FEW_SHARE) if quiet is not None else 0
        while True:
            if quiet is not None and self._in_flight <= few:
                quiet = min(quiet, STRAGGLER_FEW_QUIET_SECONDS)
            until = deadline if quiet is None else min(d for d in (deadline, heard + quiet) if d is not None)
            group = self._take_group(finished, until, few=few)
            now = time.monotonic()
            if group:
                self._record(group)
                heard = time.monotonic()
            elif finished() or (until is not None and now >= until):
                return

    def record_arrived(self) -> None:
        """Record the outcomes already in, without waiting for more."""
        group: list[SendOutcome] = []
        while len(group) < RECORD_GROUP:
            try:
                group.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if group:
            self._record(group)

    def _take_group(self, finished: Callable[[], bool], deadline: float | None, few: int = 0) -> list[SendOutcome]:
        group: list[SendOutcome] = []
        closes: float | None = None
        last = 0.0  # when the latest outcome came in
        while len(group) < RECORD_GROUP:
            now = time.monotonic()
            late = deadline is not None and now >= deadline
            if few and group and len(group) >= self._in_flight - few:
                # all but a few of those out are in: close once they fall silent, not after 0.25 s
                closes = min(closes or math.inf, last + STRAGGLER_FEW_QUIET_SECONDS)
            if (closes is not None and now >= closes) or (group and late):
                break
            if not group and (finished() or late):
                break
            if group and len(group) >= self._in_flight:
                break  # everything still out is in this group: no reason to wait
            limit = min(t for t in (closes, deadline, now + 0.05) if t is not None)
            try:
                group.append(self._queue.get(timeout=max(0.0, limit - now)))
                last = time.monotonic()
            except queue.Empty:
                if group and finished():
                    break
                continue
            if closes is None:
                closes = time.monotonic() + RECORD_GROUP_SECONDS
        return group

    def _record(self, group: list[SendOutcome]) -> None:
        with self._lock:
            rows = [self._rows.pop(o.ref) for o in group]
            messages = [self._outbound.pop(o.ref) for o in group]
            self._in_flight -= len(group)
        _record(rows, group, self.result, self._deadlines)
        self._backend.after_sent(messages, group)

    def hand_over(self) -> None:
        """Outcomes still to come go to the background recorder; those already in are recorded here."""
        with self._lock:
            self._handed_over = True
        left: list[SendOutcome] = []
        while True:
            try:
                left.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if left:
            self._record(left)


_later: queue.SimpleQueue[tuple[BaseBackend, Row, OutboundSMS, SendOutcome, datetime | None]] = queue.SimpleQueue()
_later_thread: dict[int, threading.Thread] = {}
_later_lock = threading.Lock()


def _record_later(
    backend: BaseBackend, row: Row, message: OutboundSMS, outcome: SendOutcome, deadlines: dict[int, datetime]
) -> None:
    """Queue a straggler's outcome for the process's background recorder (started on first use)."""
    _later.put((backend, row, message, outcome, deadlines.get(row.id)))
    with _later_lock:
        if os.getpid() not in _later_thread:
            thread = threading.Thread(target=_record_stragglers, name="straggler-recorder", daemon=True)
            _later_thread[os.getpid()] = thread
            thread.start()


def _record_stragglers() -> None:
    while True:
        items = [_later.get()]
        time.sleep(STRAGGLER_GROUP_SECONDS)  # let more come in: one group (and one dispatch), not one per row
        while len(items) < RECORD_GROUP:
            try:
                items.append(_later.get_nowait())
            except queue.Empty:
                break
        close_old_connections()
        try:
            result = BatchResult()
            rows = [i[1] for i in items]
            deadlines = {i[1].id: i[4] for i in items if i[4] is not None}
            _record(rows, [i[3] for i in items], result, deadlines)
            items[0][0].after_sent([i[2] for i in items], [i[3] for i in items])
            campaign_ids = sorted({r.campaign_id for r in rows if r.campaign_id})
            if campaign_ids:
                hooks.campaigns().after_batch(campaign_ids)  # retries go out without waiting for the sweeper
        except Exception:
            # The rows stay ``sending``: their lease makes them ``unknown``, the provider's callback settles them.
            logger.exception("recording %d late outcomes failed", len(items))
        finally:
            close_old_connections()


def _claim(message_ids: Sequence[int], *, probe: bool = False) -> tuple[list[Row], set[int]]:
    """The rows claimed, and the campaigns of rows left ready because their campaign was paused."""
    now = timezone.now()
    left_ready: set[int] = set()
    with transaction.atomic():
        pending = Message.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            among(list(message_ids)), status=S.PENDING, due_at__lte=now
        )
        found = list(
            (pending if probe else pending.filter(hooks.campaigns().claimable())).values(
                "pk",
                "campaign_id",
                "recipient_id",
                "to",
                "kind",
                "attempts",
                "body",
                "media_urls",
                "sender",
                "provider",
                "recipient__consent_status",
                "recipient__first_name",
                "recipient__last_name",
                "recipient__attributes",
            )
        )
        if len(found) < len(message_ids) and not probe:
            left_ready = _leave_ready(pending.exclude(hooks.campaigns().claimable()))
        if not found:
            return [], left_ready
        Message.objects.filter(among(r["pk"] for r in found)).update(
            status=S.CLAIMED, lease_expires_at=now + timedelta(seconds=settings.SMS_LEASE_SECONDS)
        )
    rows = []
    for r in found:
        rows.append(
            Row(
                id=r["pk"],
                campaign_id=r["campaign_id"],
                recipient_id=r["recipient_id"],
                to=r["to"],
                kind=r["kind"],
                attempts=r["attempts"],
                body=r["body"],
                media_urls=r["media_urls"] or [],
                sender=r["sender"],
                provider=r["provider"],
                consent=r["recipient__consent_status"],
                recipient={
                    "first_name": r["recipient__first_name"],
                    "last_name": r["recipient__last_name"],
                    "attributes": r["recipient__attributes"],
                },
            )
        )
    return rows, left_ready


def _leave_ready(unclaimable: QuerySet[Message]) -> set[int]:
    """Rows whose campaign is paused are left pending and undispatched, so resume's dispatch
    queues them at once (not the sweeper's re-queue of lost tasks, minutes later). Returns their
    campaigns: a resume that committed before this claim does may have missed the rows, so the
    batch dispatches those campaigns again after it (send_batch's ``result.campaigns``)."""
    found = list(unclaimable.filter(enqueued_at__isnull=False).values_list("pk", "campaign_id"))
    if found:
        Message.objects.filter(among([pk for pk, _ in found]), status=S.PENDING).update(enqueued_at=None)
    return {campaign_id for _, campaign_id in found if campaign_id}


def _prepare(rows: list[Row], result: BatchResult) -> tuple[list[Row], hooks.Prepared]:
    now = timezone.now()
    allowed: list[Row] = []
    refused: list[Row] = []
    for r in rows:  # one pass: a list membership test here compared dataclasses field by field, O(n²)
        (allowed if hooks.consent_allows(kind=r.kind, consent=r.consent) else refused).append(r)
    campaign_rows = [r for r in allowed if r.campaign_id]
    verdict = hooks.campaigns().prepare(campaign_rows, now=now) if campaign_rows else hooks.Prepared()
    held = {*verdict.skipped, *verdict.released, *verdict.expired, *verdict.deferred}
    ready = [r for r in allowed if r.id not in held]
    for row in ready:
        row.segments = _segments(row.body)
    # Each with its own reason: the row's history says which.
    for ids, why in (([r.id for r in refused], "no consent"), (verdict.skipped, "no sender number")):
        if ids:
            result.skipped += len(
                move(ids=ids, to=S.SKIPPED, allowed_from=[S.CLAIMED], finished_at=now, error_text=why)
            )
    if verdict.expired:
        moved = move(
            ids=verdict.expired,
            to=S.EXPIRED,
            allowed_from=[S.CLAIMED],
            finished_at=now,
            error_text="validity period ended",
        )
        result.skipped += len(moved)
        expired_ids = set(verdict.expired)
        hooks.campaigns().record_expiry({r.campaign_id for r in campaign_rows if r.campaign_id and r.id in expired_ids})
    if verdict.released:
        _release(verdict.released, result)  # their campaign paused meanwhile: left ready for its resume
    if verdict.deferred:
        # Outside the send window: back to pending with a due time; the sweeper dispatches it then.
        bulk_set(
            [{"id": i, "due_at": due, "enqueued_at": None} for i, due in verdict.deferred.items()],
            ["due_at", "enqueued_at"],
        )
        move(ids=list(verdict.deferred), to=S.PENDING, allowed_from=[S.CLAIMED])
        result.deferred += len(verdict.deferred)
    return ready, verdict


@lru_cache(maxsize=4096)
def _segments(text: str) -> int:
    return analyze(text).segments or 1


def _send_chunk(
    chunk: list[Row],
    rates: dict[str, float],
    valid_until: dict[int, datetime],
    result: BatchResult,
    stream: _Stream,
    *,
    probe: bool = False,
    slots: dict[int, pacing.Slot] | None = None,
    group: bool = False,
) -> bool:
    """Start one chunk's requests. Returns False when the rest of the batch must not be sent.

    ``slots``: when each message's request may leave (``time.monotonic()``, by id), if reserved.
    ``group``: first attempts may share a request with others of identical content, where the
    provider takes several destinations (rows under no rate limit only: a shared request lands
    as a burst of messages at the number, which pacing exists to prevent). A row that failed
    once goes on its own, so a refusal or a lost answer never takes a group down twice.
    """
    now = timezone.now()
    campaign_ids = {r.campaign_id for r in chunk if r.campaign_id}
    halted = hooks.campaigns().halted(campaign_ids) if campaign_ids and not probe else set()
    # A grant revoked since the claim stops its number here, as a pause does (a paced batch runs for minutes).
    revoked = hooks.campaigns().revoked(chunk) if campaign_ids else set()
    # Validity is checked here, just before the requests (and again in the guard before each one).
    expired = {c for c in campaign_ids if c in valid_until and now >= valid_until[c]}
    # Opt-outs announced from here on are seen by the guard just before each request.
    watch = RecentOptOuts(since=time.time() - 2)
    consent = dict(
        Message.objects.filter(among([r.id for r in chunk if r.recipient_id])).values_list(
            "pk", "recipient__consent_status"
        )
    )
    go, release, skip, expire = [], [], [], []
    for row in chunk:
        if row.campaign_id in expired:
            expire.append(row.id)
        elif row.campaign_id in halted or row.id in revoked:
            release.append(row.id)
        elif row.recipient_id and not hooks.consent_allows(kind=row.kind, consent=consent.get(row.id)):
            skip.append(row.id)
        else:
            go.append(row)
    if skip:
        result.skipped += len(
            move(
                ids=skip,
                to=S.SKIPPED,
                allowed_from=[S.CLAIMED],
                finished_at=now,
                error_text="opted out",
            )
        )
    if expire:
        _expire(expire, [S.CLAIMED], result)
    if release:
        _release(release, result)
    if not go:
        return not halted
    lease = now + timedelta(seconds=settings.SMS_LEASE_SECONDS)
    sending = set_and_move(
        rows=[
            {
                "id": r.id,
                "body": r.body,
                "sender": r.sender,
                "provider": r.provider,
                "segments": r.segments,
                "media_urls": r.media_urls,
                "attempts": r.attempts + 1,
                "lease_expires_at": lease,
            }
            for r in go
        ],
        fields=["body", "sender", "provider", "segments", "media_urls", "attempts", "lease_expires_at"],
        to=S.SENDING,
        allowed_from=[S.CLAIMED],
    )
    moved = {m[0] for m in sending}
    go = [r for r in go if r.id in moved]
    outbound = [
        OutboundSMS(
            ref=str(r.id),
            to=r.to,
            sender=r.sender,
            body=r.body,
            media_urls=tuple(r.media_urls),
            provider=r.provider,
        )
        for r in go
    ]
    recheck = ConsentRecheck([r.id for r in go if r.recipient_id])
    deadlines = {r.id: valid_until[r.campaign_id] for r in go if r.campaign_id in valid_until}
    guard = _send_guard(
        rates,
        {r.id: r.segments for r in go},
        {r.id: r.kind for r in go},
        deadlines,
        watch,
        recheck,
        slots,
        stream.departures,
    )
    groupable = {str(r.id) for r in go if r.attempts == 0} if group else set()
    stream.send(go, outbound, deadlines, guard, groupable)
    return not halted


def _number_rates(rows: list[Row], pool_rates: dict[str, float]) -> dict[str, float]:
    """Messages-per-second per sender number: the campaign's pool, else the number's grants."""
    rates = dict(pool_rates)
    others = {r.sender for r in rows if r.sender not in rates}
    if others:
        for number, mps in AuthorizedSender.objects.filter(number__in=others, is_active=True).values_list(
            "number", "max_mps"
        ):
            # Several people may hold the same number: the strictest limit wins (0 = none).
            if mps > 0:
                rates[number] = min(rates.get(number) or mps, mps)
    return rates


class ConsentRecheck:
    """The chunk's consent read again from the database once its requests have waited a while.

    The Redis signal (RecentOptOuts) covers opt-outs made while a chunk is on the wire, but a
    Redis restart can lose it exactly when the rate limiter is holding the chunk back (it waits
    out a Redis outage). The database never loses an opt-out, so a chunk older than
    ``max_age`` seconds asks it again, at most once per ``max_age``.
    """

    def __init__(self, message_ids: Sequence[int], *, max_age: float = 1.0) -> None:
        self.message_ids = list(message_ids)
        self.max_age = max_age
        self.checked = time.monotonic()
        self.refused: set[int] = set()
        self._lock = asyncio.Lock()

    async def allows(self, message_id: int) -> bool:
        if self.message_ids and time.monotonic() - self.checked > self.max_age:
            async with self._lock:
                if time.monotonic() - self.checked > self.max_age:
                    loop = asyncio.get_running_loop()
                    self.refused = await loop.run_in_executor(_RECHECK_THREAD, self._refused_now)
                    self.checked = time.monotonic()
        return message_id not in self.refused

    def _refused_now(self) -> set[int]:
        # The thread's one connection lives by CONN_MAX_AGE, as a request's does (checked before and after).
        close_old_connections()
        try:
            rows = Message.objects.filter(among(self.message_ids)).values_list(
                "pk", "kind", "recipient__consent_status"
            )
            return {pk for pk, kind, consent in rows if not hooks.consent_allows(kind=kind, consent=consent)}
        finally:
            close_old_connections()


# One thread per process for the rechecks, so they reuse one database connection.
_RECHECK_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="consent-recheck")


# A send that reaches its request more than _LATE_SECONDS after its slot takes a fresh turn, at
# most _FRESH_TURNS - 1 times (then it goes late rather than never: a machine that slow is late
# for every slot). Less lateness is told to the limiter (pacing.Departures), which spaces the sends
# booked after it from when it left; the sends booked before it (within the lead) are what a
# late send could bunch with, so half the lead is the most it may be late.
# Its checks start _CHECKS_AHEAD_SECONDS before the slot.
_FRESH_TURNS = 3
_CHECKS_AHEAD_SECONDS = 0.03


def _send_guard(
    rates: dict[str, float],
    segments: dict[int, int],
    kinds: dict[int, str],
    deadlines: dict[int, datetime],
    watch: RecentOptOuts,
    recheck: ConsentRecheck,
    slots: dict[int, pacing.Slot] | None = None,
    departures: pacing.Departures | None = None,
) -> Guard:
    """Runs just before each request: waits for its reserved slot (else reserves the next one), then
    re-checks validity and for a fresh opt-out."""
    departures = departures or pacing.Departures()

    async def allowed(message: OutboundSMS) -> bool:
        deadline = deadlines.get(int(message.ref))
        if deadline is not None and timezone.now() >= deadline:
            return False  # the validity period ended while it waited for its turn: expired in _record
        if kinds.get(int(message.ref)) == Message.Kind.REPLY:
            return True  # the one confirmation of a STOP goes to people who just opted out
        if await watch.contains(message.to):
            return False
        return await recheck.allows(int(message.ref))

    async def guard(message: OutboundSMS) -> bool:
        ref = int(message.ref)
        candidate = Candidate(
            number=number_limit(message.sender, rates.get(message.sender, 0)),
            account=account_limit(message.provider),
            cost=segments.get(ref, 1),
            label=message.ref,
        )
        limiter = get_limiter()
        reserved = slots.get(ref) if slots else None
        if reserved is None:
            if not candidate.limited:
                return await allowed(message)  # under no limit: nothing to wait for
            reserved = pacing.Slot(*await limiter.next_booking(candidate))
        slot, booking = reserved
        turns = _FRESH_TURNS
        while True:
            # The checks run just before the slot, so the request leaves at the slot itself.
            await asyncio.sleep(max(0.0, slot - _CHECKS_AHEAD_SECONDS - time.monotonic()))
            if not await allowed(message):
                departures.never_left(candidate, booking)
                return False
            await asyncio.sleep(max(0.0, slot - time.monotonic()))
            turns -= 1
            if time.monotonic() - slot <= settings.SMS_PACE_LEAD_SECONDS / 2 or turns == 0:
                departures.passed(message.ref, candidate, booking, slot)
                limiter.trace_sent(message.ref)
                return True
            # The checks were slow (the database re-check, a stalled loop): sending now could
            # bunch with the sends booked after this slot, which take their turns on time. Take
            # a fresh turn instead; the late one is given back.
            departures.never_left(candidate, booking)
            slot, booking = await limiter.next_booking(candidate)

    return guard


def _expire(ids: list[int], allowed_from: list[str], result: BatchResult) -> None:
    """Rows of a campaign whose validity period ended before their request: expired, never sent."""
    moved = move(
        ids=ids,
        to=S.EXPIRED,
        allowed_from=allowed_from,
        finished_at=timezone.now(),
        error_text="validity period ended",
    )
    result.skipped += len(moved)
    hooks.campaigns().record_expiry({c for _, c, _ in moved if c})


def _release(ids: list[int], result: BatchResult) -> None:
    """Claimed rows that were never sent go back to pending (paused campaign)."""
    if ids:
        result.released += len(move(ids=ids, to=S.PENDING, allowed_from=[S.CLAIMED], enqueued_at=None))


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After is a floor."""
    base = settings.SMS_RETRY_BASE_SECONDS * (2 ** max(0, attempt - 1))
    delay = random.uniform(base / 2, base)
    return max(delay, retry_after or 0)


def _record(
    rows: list[Row], outcomes: list[SendOutcome], result: BatchResult, deadlines: dict[int, datetime] | None = None
) -> None:
    now = timezone.now()
    deadlines = deadlines or {}
    by_id = {r.id: r for r in rows}
    expired: list[int] = []
    accepted: list[dict] = []
    failures: dict[tuple[str, str, bool], list[int]] = defaultdict(list)
    retries: list[dict] = []
    unknown: dict[tuple[str, str], list[int]] = defaultdict(list)
    released: list[int] = []
    opted_out: list[int] = []
    auth_failed: dict[int, tuple[str, str]] = {}  # campaign -> (provider, reason)
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_campaign: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    tallied: set[tuple[str, bool]] = set()

    def tally(row: Row, outcome: SendOutcome, ok: bool) -> None:
        # Provider health and a campaign's failure rate count requests: a refused group of 50 is
        # one failure, not 50 in a row (which auto-paused a campaign on its first 503).
        if outcome.request:
            if (outcome.request, ok) in tallied:
                return
            tallied.add((outcome.request, ok))
        stats[row.provider][0 if ok else 1] += 1
        if row.campaign_id:
            per_campaign[row.campaign_id][row.provider][0 if ok else 1] += 1

    for outcome in outcomes:
        row = by_id[int(outcome.ref)]
        if outcome.skipped:
            if row.id in deadlines and now >= deadlines[row.id]:
                expired.append(row.id)
            else:
                released.append(row.id)
            continue
        error = outcome.error
        if error is None:  # accepted (not skipped: see above)
            accepted.append(
                {
                    "id": row.id,
                    "provider_message_id": outcome.provider_message_id[:100],
                    "sent_at": now,
                }
            )
            tally(row, outcome, True)
            continue
        tally(row, outcome, False)
        code, text = (
            (error.code or (str(error.http_status) if error.http_status else ""))[:20],
            error.message[:255],
        )
        if isinstance(error, OutcomeUnknown):
            # Maybe accepted: sending again could deliver twice. The delivery report settles it
            # (or its absence: messaging.sweeper.resend_unreported).
            unknown[(code, text)].append(row.id)
        elif isinstance(error, AuthenticationFailed | ConfigurationError) and row.campaign_id:
            # Every send would fail the same way: pause rather than burn through the list.
            released.append(row.id)
            auth_failed[row.campaign_id] = (row.provider, f"{row.provider} cannot be used: {text}")
        elif error.permanent:
            failures[(code, text, True)].append(row.id)
            if isinstance(error, RecipientOptedOut) and row.recipient_id:
                opted_out.append(row.recipient_id)
        elif row.attempts + 1 >= settings.SMS_MAX_ATTEMPTS:
            failures[(code, text, False)].append(row.id)
        else:
            due = now + timedelta(seconds=backoff_seconds(row.attempts + 1, error.retry_after))
            retries.append(
                {
                    "id": row.id,
                    "due_at": due,
                    "error_code": code,
                    "error_text": text,
                    "error_permanent": False,
                    "enqueued_at": None,
                }
            )

    if accepted:
        set_and_move(
            rows=accepted,
            fields=["provider_message_id", "sent_at"],
            to=S.QUEUED,
            allowed_from=[S.CLAIMED, S.SENDING, S.UNKNOWN],
        )
        result.accepted += len(accepted)
    for (code, text, permanent), ids in failures.items():
        moved = move(
            ids=ids,
            to=S.FAILED,
            allowed_from=[S.SENDING, S.UNKNOWN],
            error_code=code,
            error_text=text,
            error_permanent=permanent,
            finished_at=now,
        )
        result.failed += len(moved)
    for (code, text), ids in unknown.items():
        # lease_expires_at: when the answer was lost, from which the sweeper's resend window counts.
        move(ids=ids, to=S.UNKNOWN, allowed_from=[S.SENDING], error_code=code, error_text=text, lease_expires_at=now)
    if retries:
        retried = set_and_move(
            rows=retries,
            fields=["due_at", "error_code", "error_text", "error_permanent", "enqueued_at"],
            to=S.PENDING,
            allowed_from=[S.SENDING],
        )
        result.retrying += len(retried)
    if expired:
        _expire(expired, [S.SENDING], result)
    if released:
        result.released += len(move(ids=released, to=S.PENDING, allowed_from=[S.SENDING, S.CLAIMED], enqueued_at=None))
        Message.objects.filter(among(released), attempts__gt=0).update(attempts=F("attempts") - 1)
    if opted_out:
        recipients_refused.send(
            sender=Message,
            recipient_ids=opted_out,
            evidence="The provider refused a send: the recipient had opted out there (replied STOP).",
        )
    campaign_ids = sorted({r.campaign_id for r in rows if r.campaign_id})
    for provider, (ok, bad) in stats.items():
        failover.record(provider=provider, ok=ok, failed=bad, campaign_ids=campaign_ids)
    if campaign_ids:
        failed_ids = {i for ids in failures.values() for i in ids} | {r["id"] for r in retries}
        accepted_ids = {a["id"] for a in accepted}
        hooks.campaigns().after_outcomes(
            [
                CampaignOutcomes(
                    campaign_id=campaign_id,
                    accepted=sum(1 for i in accepted_ids if by_id[i].campaign_id == campaign_id),
                    failed=sum(1 for i in failed_ids if by_id[i].campaign_id == campaign_id),
                    pause_reason=auth_failed.get(campaign_id, ("", ""))[1],
                    unusable_provider=auth_failed.get(campaign_id, ("", ""))[0],
                    by_provider={p: (ok, bad) for p, (ok, bad) in per_campaign[campaign_id].items()},
                )
                for campaign_id in campaign_ids
            ]
        )


__all__ = ["BatchResult", "Row", "backoff_seconds", "send_batch"]
