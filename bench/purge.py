"""Purge: N messages past the retention cutoff go as one dropped month partition, against the old
batched row DELETE of N identical rows of another expired month, in the same run and database.

Seeded with INSERT … SELECT generate_series: N finished messages in each of two months over a year
old (the reference month and the dropped month), and N/10 recent ones that must stay. The reference
runs the purge's own batched DELETE (messaging/retention.py, batches of RETENTION_PURGE_BATCH)
over its month; then ``purge_messages`` runs as beat runs it and drops the other month whole.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from bench import common


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, default=1_000_000, help="expired messages in each of the two old months")
    common.add_server_arguments(p, redis=False)
    p.add_argument("--name", default="")
    p.add_argument("--results-dir", default="")


def _insert(n: int, month: date, created: str) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            'INSERT INTO messaging_message (kind, "to", sender, provider, body, media_urls, segments, status, '
            "provider_message_id, error_code, error_text, attempts, created_at, due_at, sent_at, finished_at, month) "
            "SELECT 'single', '+1415' || lpad((i %% 10000000)::text, 7, '0'), '+14155550100', 'plivo', "
            "'Your code is ' || i, '[]'::jsonb, 1, 'delivered', md5(i::text), '', '', 1, "
            f"{created}, {created}, {created}, {created}, %s "
            "FROM generate_series(1, %s) AS i",
            [month, n],
        )


def seed(n: int, *, reference: date, dropped: date) -> None:
    from django.db import connection

    from messaging import partitions

    for month in (reference, dropped):
        partitions.ensure_partitions(now=datetime(month.year, month.month, 1, tzinfo=UTC), ahead=0)
    for month in (reference, dropped):  # spread over the month's first 28 days
        _insert(n, month, f"('{month.isoformat()} 00:00+00'::timestamptz + (i %% 2400000) * interval '1 second')")
    _insert(max(n // 10, 1), partitions.month_start(datetime.now(UTC)), "now() - interval '1 day'")
    with connection.cursor() as cur:
        cur.execute("ANALYZE messaging_message")


def run(args) -> dict:
    n = args.n
    name = args.name or f"purge_{n}"
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    machine = common.machine_info()
    env = common.base_env(args.db, common.redis_url())
    env.pop("BENCH_COUNT_QUERIES", None)
    common.fresh_database(args.db, env)
    common.django_setup(env)
    from django.conf import settings

    from messaging import partitions
    from messaging.models import Message
    from messaging.retention import _expired, _in_batches, purge_messages

    now = datetime.now(UTC)
    this_month = partitions.month_start(now)
    dropped = partitions.month_start(now - timedelta(days=430))
    reference = partitions.month_start(now - timedelta(days=470))
    cutoff = now - timedelta(days=settings.RETENTION_MESSAGE_DAYS)
    assert partitions.next_month(dropped) <= partitions.month_start(cutoff), "both months must be past the cutoff"
    t = time.monotonic()
    seed(n, reference=reference, dropped=dropped)
    seed_s = time.monotonic() - t
    batch = settings.RETENTION_PURGE_BATCH

    # Reference: the batched row DELETE the purge used before partitioning, on the same kind of rows.
    t = time.monotonic()
    row_deleted = _in_batches(
        lambda: Message.objects.filter(_expired(cutoff), month=reference),
        lambda ids: Message.objects.filter(pk__in=ids).delete()[0],
        batch=batch,
        max_batches=n // batch + 2,
    )
    row_delete_s = time.monotonic() - t

    t = time.monotonic()
    purged = purge_messages(body_cutoff=cutoff, row_cutoff=cutoff, batch=batch)
    purge_s = time.monotonic() - t
    left_recent = Message.objects.filter(month=this_month).count()
    ok = row_deleted == n and purged.messages_deleted == n and left_recent == max(n // 10, 1)
    result = {
        "status": "ok" if ok else "errors",
        "params": {"n": n, "batch": batch, "retention_days": settings.RETENTION_MESSAGE_DAYS},
        "seed_seconds": round(seed_s, 1),
        "partition_purge": {
            "seconds": round(purge_s, 3),
            "messages_deleted": purged.messages_deleted,
            "partitions_dropped": purged.partitions_dropped,
        },
        "row_delete_reference": {"seconds": round(row_delete_s, 3), "messages_deleted": row_deleted},
        "speedup": round(row_delete_s / purge_s, 1) if purge_s else None,
        "recent_messages_kept": left_recent,
        "machine": machine,
    }
    path = common.write_result(name, result, results_dir=results_dir)
    print(
        f"{name}: partition purge {purge_s:.2f} s ({purged.partitions_dropped} partitions, "
        f"{purged.messages_deleted} rows) vs row DELETE {row_delete_s:.2f} s ({row_deleted} rows): "
        f"x{result['speedup']}; {result['status']}"
    )
    return {"path": path, "result": result, "ok": ok}
