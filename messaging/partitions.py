"""The messages table is partitioned by month (``Message.month``, a range partition per UTC month).

Why: purging a month of messages is then a DETACH + DROP of one table, not a DELETE of
millions of rows (messaging/retention.py). The partition key of a campaign's message is the
month of the campaign's launch (:func:`campaign_month`), so every row of a campaign lives in
one partition and ``UNIQUE(campaign, recipient, month)`` means exactly ``UNIQUE(campaign,
recipient)``: the exactly-once key survives. Any other message goes in the month it is created.

Partitions are named ``messaging_message_pYYYY_MM``; ``messaging_message_default`` takes a row
whose month has no partition yet (a safety net, normally empty). :func:`ensure_partitions`
creates the current month and a few ahead, and moves any row that landed in DEFAULT into its
own month; beat runs it daily, and ``migrate`` and each worker start run it too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import ForeignObjectRel, QuerySet
from django.utils import timezone

from messaging.models import Message

TABLE = Message._meta.db_table
DEFAULT_PARTITION = f"{TABLE}_default"
MONTHS_AHEAD = 3
# One maintenance or purge of the partition layout at a time (pg_advisory_xact_lock key).
_LAYOUT_LOCK = 0x6D736770  # "msgp"


def month_start(moment: datetime) -> date:
    """The first day of ``moment``'s UTC month: the partition key of a row created at ``moment``."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def campaign_month(*, launched_at: datetime | None, created_at: datetime) -> date:
    """The partition month of all a campaign's messages: its launch (set once), else its creation."""
    return month_start(launched_at or created_at)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(month: date) -> str:
    return f"{TABLE}_p{month.year:04d}_{month.month:02d}"


@dataclass(frozen=True)
class Partition:
    name: str
    month: date  # lower bound, inclusive; the upper bound is next_month(month)


def partitions() -> list[Partition]:
    """The monthly partitions that exist, oldest first (DEFAULT not included)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND c.relname <> %s",
            [TABLE, DEFAULT_PARTITION],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        suffix = name.removeprefix(f"{TABLE}_p")
        year, _, month = suffix.partition("_")
        if year.isdigit() and month.isdigit():
            found.append(Partition(name=name, month=date(int(year), int(month), 1)))
    return sorted(found, key=lambda p: p.month)


@contextmanager
def layout_lock() -> Iterator[None]:
    """A transaction holding the layout lock: maintenance and partition drops never interleave."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LAYOUT_LOCK])
        yield


def ensure_partitions(*, now: datetime | None = None, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the partitions of this month and ``ahead`` more, and empty DEFAULT into months of their own.

    Idempotent; two at once queue on an advisory lock. Returns the partitions created.
    """
    current = month_start(now or timezone.now())
    wanted = [current]
    for _ in range(ahead):
        wanted.append(next_month(wanted[-1]))
    created: list[str] = []
    with layout_lock():
        existing = {p.month for p in partitions()}
        strays = _months_in_default()
        for month in sorted(set(wanted) | set(strays)):
            if month not in existing:
                _create_partition(month, move_from_default=month in strays)
                created.append(partition_name(month))
    return created


def _months_in_default() -> list[date]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT DISTINCT month FROM "{DEFAULT_PARTITION}"')
        return [row[0] for row in cursor.fetchall()]


def _create_partition(month: date, *, move_from_default: bool) -> None:
    name = partition_name(month)
    bounds = f"FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')"
    with connection.cursor() as cursor:
        if not move_from_default:
            cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{TABLE}" FOR VALUES {bounds}')
            return
        # PostgreSQL refuses a partition whose rows still sit in DEFAULT: build it detached, move the
        # rows (same ids, same transaction, so nobody sees them twice or not at all), then attach.
        cursor.execute(f'LOCK TABLE "{TABLE}" IN SHARE ROW EXCLUSIVE MODE')
        cursor.execute(f'CREATE TABLE "{name}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" WHERE month = %s RETURNING *) '
            f'INSERT INTO "{name}" SELECT * FROM moved',
            [month],
        )
        cursor.execute(f'ALTER TABLE "{TABLE}" ATTACH PARTITION "{name}" FOR VALUES {bounds}')


# A partition's statistics are refreshed once it holds more than twice the rows they describe
# (and STATISTICS_MIN_ROWS more). The send path looks rows up by arrays of ids: without statistics
# a new month's partition looks as if each id matched half of it, and every status move of a batch
# read the whole partition (163 ms per 500 rows at 100k rows, 20 ms once analyzed). Autovacuum
# does this too when it runs, but it may be off, or a minute behind a campaign making 1,000 rows a
# second. Doubling keeps it to about 20 ANALYZEs for a million rows.
STATISTICS_MIN_ROWS = 1000
STATISTICS_CHECK_SECONDS = 2.0
_statistics_checked = [0.0]  # this process's last check (time.monotonic())


def refresh_statistics(*, at_most_every: float = 0.0) -> list[str]:
    """ANALYZE the partitions that outgrew their statistics; returns their names.

    ``at_most_every``: skip the check (one catalog query) if this process made it that recently.
    ANALYZE takes no lock that writers wait for, and skips a partition another ANALYZE holds.
    """
    now = time.monotonic()
    if at_most_every and now - _statistics_checked[0] < at_most_every:
        return []
    _statistics_checked[0] = now
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE i.inhparent = %s::regclass AND s.n_live_tup > 2 * greatest(c.reltuples, 0) + %s",
            [TABLE, STATISTICS_MIN_ROWS],
        )
        names = [name for (name,) in cursor.fetchall()]
        for name in names:
            cursor.execute(f"ANALYZE (SKIP_LOCKED) {connection.ops.quote_name(name)}")
    return names


def rows_of(month: date) -> QuerySet[Message]:
    """The messages of one partition (the planner prunes to it)."""
    return Message.objects.filter(month=month)


def hold_still(partition: Partition) -> None:
    """Block writes to one partition until the transaction ends (reads go on), so a check of its rows holds."""
    with connection.cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{partition.name}" IN SHARE MODE')


def drop_partition(partition: Partition) -> None:
    """Detach and drop one month. Called inside :func:`layout_lock` by the purge, after it checked the rows.

    Rows elsewhere that point at these messages without a database constraint (``db_constraint=False``)
    get what their ``on_delete`` says, as an ORM delete would do.
    """
    ids = rows_of(partition.month).values("id")
    for relation in Message._meta.get_fields(include_hidden=True):  # hidden too: related_name="+"
        if not isinstance(relation, ForeignObjectRel) or relation.many_to_many:
            continue
        model = relation.related_model
        name = relation.field.name
        related = model._default_manager.filter(**{f"{name}__in": ids})
        action = getattr(relation.on_delete, "__name__", "")
        if action == "SET_NULL":
            related.update(**{name: None})
        elif action == "CASCADE":
            related.delete()
        elif action != "DO_NOTHING":
            raise NotImplementedError(f"{model.__name__}.{name}: on_delete {action} on a partition drop")
    with connection.cursor() as cursor:
        # A table with deferred foreign-key checks still due in this transaction cannot be dropped.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f'ALTER TABLE "{TABLE}" DETACH PARTITION "{partition.name}"')
        cursor.execute(f'DROP TABLE "{partition.name}"')
