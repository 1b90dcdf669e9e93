"""Fan-out: a campaign of N recipients through PostgreSQL, Redis, K Celery workers and the fake provider.

Same run, same fake provider: (a) the naive loop (one blocking request per recipient, as the
seed guides do) and (b) the ceiling (bare aiohttp, and httpx on the aiohttp transport, 256 in flight).
"""

from __future__ import annotations

import asyncio
import time

import redis

from bench import common

PLIVO_ID, PLIVO_TOKEN = "MABENCHACCOUNT000001", "bench-plivo-token"
SENDER = "+14155550100"
BODY = "Hi {{ first_name }}, the spring sale starts Monday. Reply STOP to opt out."
# --same-body: one text for everyone, so Plivo sends can share a request (SMS_GROUP_SIZE destinations).
SAME_BODY = "The spring sale starts Monday. Reply STOP to opt out."


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--batch-size", type=int, default=0, help="SMS_BATCH_SIZE (default: the product's)")
    p.add_argument("--max-in-flight", type=int, default=256, help="SMS_MAX_IN_FLIGHT")
    p.add_argument("--batches-ahead", type=int, default=6, help="SMS_BATCHES_AHEAD")
    p.add_argument("--backend", default="providers.backends.plivo.SMSBackend")
    p.add_argument("--same-body", action="store_true", help="no personalisation: sends can share a request")
    p.add_argument("--group-size", type=int, default=0, help="SMS_GROUP_SIZE (default: the product's)")
    common.add_server_arguments(p)
    p.add_argument("--naive-n", type=int, default=0, help="naive-loop sample (default 200 at >0 ms, 2000 at 0 ms)")
    p.add_argument("--ceiling-n", type=int, default=0, help="requests for the ceiling (default min(N, 20000))")
    p.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (default scales with N)")
    p.add_argument(
        "--stop-after",
        type=float,
        default=0,
        help="stop measuring after this many seconds (partial run: first send, RSS)",
    )
    p.add_argument(
        "--faults",
        action="store_true",
        help="the fake injects 1%% timeouts (held 30 s), 1%% dropped connections, 5%% 5xx and 2%% 429 "
        "(Retry-After 1); workers retry after 1 s (SMS_RETRY_BASE_SECONDS), up to 10 attempts; a lost "
        "answer (timeout, drop) waits --unknown-resend-seconds for a report, then beat sends it again",
    )
    p.add_argument(
        "--beat",
        action="store_true",
        help="run beat on the first worker, as production does (always with --faults, where it sends lost "
        "answers again): a fault-free reference for a fault run should have it too",
    )
    p.add_argument("--read-timeout", type=float, default=5.0, help="SMS_HTTP_TIMEOUT with --faults")
    p.add_argument(
        "--unknown-resend-seconds",
        type=float,
        default=3.0,
        help="SMS_UNKNOWN_RESEND_SECONDS with --faults (the fake's timeouts and drops refuse the message and "
        "never report it: a short window, where production waits hours)",
    )
    p.add_argument(
        "--reference",
        default="",
        help="a fault-free result (JSON) of the same size, run just before: the fault run's rate is compared to it",
    )
    p.add_argument("--worker-log-level", default="INFO", help="celery -l (INFO is the product default)")
    p.add_argument("--profile", action="store_true", help="py-spy record worker 1 (needs py-spy)")
    p.add_argument("--name", default="")
    p.add_argument(
        "--webhook",
        action="store_true",
        help="register an event webhook endpoint (message.sent) on a receiver in this process (bench/events.py)",
    )
    p.add_argument("--no-references", action="store_true", help="skip the naive loop and the ceilings")
    p.add_argument(
        "--history-months",
        type=int,
        default=0,
        help="first fill this many earlier monthly partitions with finished messages (--history-per-month each)",
    )
    p.add_argument("--history-per-month", type=int, default=100_000)
    p.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="first give the campaign this many finished rows in its month (each updated three times, as sending"
        " does, leaving the dead versions a server without autovacuum keeps): a short run that measures the late"
        " part of a large campaign (issue 21)",
    )
    p.add_argument("--results-dir", default="")


def _history(months: int, per_month: int) -> None:
    """Earlier months of finished messages, one partition each, so the send path runs against a year of history."""
    from datetime import UTC, datetime, timedelta

    from django.db import connection

    from bench.purge import _insert
    from messaging import partitions

    month = partitions.month_start(datetime.now(UTC))
    for _ in range(months):
        month = partitions.month_start(datetime(month.year, month.month, 1, tzinfo=UTC) - timedelta(days=1))
        partitions.ensure_partitions(now=datetime(month.year, month.month, 1, tzinfo=UTC), ahead=0)
        _insert(per_month, month, f"'{month.isoformat()} 12:00+00'::timestamptz")
    with connection.cursor() as cur:
        cur.execute("ANALYZE messaging_message")


def _prefill(campaign, rows: int) -> None:
    """``rows`` finished rows of the campaign (no recipient) in its month, each updated as the send path does."""
    from django.db import connection

    from messaging.models import Message
    from messaging.partitions import campaign_month

    month = campaign_month(launched_at=None, created_at=campaign.created_at)
    table = Message._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f'INSERT INTO {table} (campaign_id, kind, "to", sender, provider, body, media_urls, segments, status, '
            "provider_message_id, error_code, error_text, attempts, created_at, due_at, enqueued_at, month) "
            "SELECT %s, 'campaign', '+1999' || g::text, '', '', '', '[]'::jsonb, 0, 'pending', '', '', '', 0, "
            "now(), now(), now(), %s FROM generate_series(1, %s) g",
            [campaign.pk, month, rows],
        )
        for status in ("claimed", "sending", "queued"):  # the claim, the request, the outcome
            cur.execute(f"UPDATE {table} SET status = %s WHERE campaign_id = %s", [status, campaign.pk])
        cur.execute(f"ANALYZE {table}")


def seed(*, n: int, opted_out: int = 0, body: str = BODY) -> tuple:
    """An admin, an unlimited sender, one list of ``n`` opted-in recipients (set-based SQL), a draft campaign."""
    from django.db import connection

    from accounts.models import AuthorizedSender, User
    from campaigns.models import Campaign
    from recipients.models import RecipientList

    admin = User.objects.create_user(username="bench", email="bench@example.com", password="bench-pw", role="admin")
    sender = AuthorizedSender.objects.create(user=admin, number=SENDER, provider="plivo", max_mps=0)
    lst = RecipientList.objects.create(name="bench", created_by=admin)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO recipients_recipient (phone, first_name, last_name, attributes, consent_status, "
            "opted_in_at, created_at, updated_at) "
            "SELECT '+1415' || (2000000 + g)::text, 'P' || g, '', '{}'::jsonb, 'opted_in', now(), now(), now() "
            "FROM generate_series(0, %s - 1) g",
            [n],
        )
        cur.execute(
            "INSERT INTO recipients_membership (recipient_list_id, recipient_id, added_at) "
            "SELECT %s, id, now() FROM recipients_recipient",
            [lst.pk],
        )
        cur.execute("ANALYZE recipients_recipient; ANALYZE recipients_membership")
    campaign = Campaign.objects.create(name="bench", body=body, created_by=admin)
    campaign.lists.set([lst])
    campaign.senders.set([sender])
    return admin, campaign


def naive_loop(send_url: str, count: int) -> dict:
    """The seed guides' way: a blocking POST per recipient, one after another."""
    import requests

    session = requests.Session()
    ok = 0
    t = time.perf_counter()
    for i in range(count):
        r = session.post(
            send_url,
            json={"src": SENDER[1:], "dst": f"1415{3000000 + i:07d}", "text": "naive loop"},
            auth=(PLIVO_ID, PLIVO_TOKEN),
            timeout=30,
        )
        ok += r.status_code == 202
    elapsed = time.perf_counter() - t
    return {"requests": count, "accepted": ok, "seconds": round(elapsed, 3), "rate": round(ok / elapsed, 1)}


async def _bare(send_url: str, count: int, concurrency: int, client: str) -> dict:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    ok = 0

    if client == "aiohttp":
        conn = aiohttp.TCPConnector(limit=concurrency)
        session = aiohttp.ClientSession(connector=conn, auth=aiohttp.BasicAuth(PLIVO_ID, PLIVO_TOKEN))

        async def one(i: int) -> None:
            nonlocal ok
            async with sem:
                body = {"src": SENDER[1:], "dst": f"1416{3000000 + i:07d}", "text": "ceiling"}
                async with session.post(send_url, json=body) as r:
                    await r.read()
                    ok += r.status == 202

        close = session.close
    else:
        import httpx
        from httpx_aiohttp import AiohttpTransport

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        hx = httpx.AsyncClient(transport=AiohttpTransport(limits=limits), auth=(PLIVO_ID, PLIVO_TOKEN), timeout=30)

        async def one(i: int) -> None:
            nonlocal ok
            async with sem:
                body = {"src": SENDER[1:], "dst": f"1417{3000000 + i:07d}", "text": "ceiling"}
                r = await hx.post(send_url, json=body)
                ok += r.status_code == 202

        close = hx.aclose
    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - t
    await close()
    return {
        "client": client,
        "concurrency": concurrency,
        "requests": count,
        "accepted": ok,
        "seconds": round(elapsed, 3),
        "rate": round(ok / elapsed, 1),
    }


def bare_ceiling(send_url: str, count: int, concurrency: int = 256) -> list[dict]:
    return [asyncio.run(_bare(send_url, count, concurrency, c)) for c in ("aiohttp", "httpx-aiohttp")]


def run(args) -> dict:
    from devtools.fake_provider import run_in_subprocess

    n, latency = args.n, args.latency_ms
    # Each kind of run has its own result file: a faults or same-body run must not replace the plain one.
    suffix = ("_same_body" if args.same_body else "") + ("_faults" if args.faults else "")
    name = args.name or f"fanout_{n}_{int(latency)}ms{suffix}"
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    if not common.module_exists(args.backend.rsplit(".", 1)[0]):
        return {"path": common.not_measured(name, f"backend {args.backend} does not exist", results_dir=results_dir)}
    machine = common.machine_info()
    redis.Redis.from_url(args.redis_url).flushdb()
    faults = (
        {"rate_timeout": 0.01, "timeout_hold_s": 30, "rate_drop": 0.01, "rate_5xx": 0.05, "rate_429": 0.02}
        if args.faults
        else {}
    )
    fake = run_in_subprocess(
        latency_ms=latency,
        callbacks=False,
        retry_after=1,
        **faults,
        plivo_auth_id=PLIVO_ID,
        plivo_auth_token=PLIVO_TOKEN,
        python=common.PY,
    )
    procs = common.Procs(name)
    try:
        env = common.base_env(
            args.db,
            args.redis_url,
            SMS_BACKEND=args.backend,
            PLIVO_API_URL=fake.url,
            PLIVO_AUTH_ID=PLIVO_ID,
            PLIVO_AUTH_TOKEN=PLIVO_TOKEN,
            SMS_MAX_IN_FLIGHT=args.max_in_flight,
            SMS_BATCHES_AHEAD=args.batches_ahead,
            **({"SMS_BATCH_SIZE": args.batch_size} if args.batch_size else {}),
            **({"SMS_GROUP_SIZE": args.group_size} if args.group_size else {}),
            SMS_HTTP_TIMEOUT=args.read_timeout if args.faults else 30,
            **(
                {
                    "SMS_RETRY_BASE_SECONDS": 1,
                    "SMS_MAX_ATTEMPTS": 10,
                    "SMS_UNKNOWN_RESEND_SECONDS": args.unknown_resend_seconds,
                }
                if args.faults
                else {}
            ),
        )
        migrate_s = common.fresh_database(args.db, env)
        common.django_setup(env)
        from django.conf import settings

        t = time.monotonic()
        if args.history_months:
            _history(args.history_months, args.history_per_month)
        admin, campaign = seed(n=n, body=SAME_BODY if args.same_body else BODY)
        if args.prefill:
            _prefill(campaign, args.prefill)
        seed_s = time.monotonic() - t
        hook = _webhook_receiver(admin) if getattr(args, "webhook", False) else None
        for i in range(args.workers):
            # with faults, beat (on the first worker) sends again the lost answers that heard no report
            procs.worker(f"w{i}", env, log_level=args.worker_log_level, beat=(args.faults or args.beat) and i == 0)
        if hook is not None:  # event webhooks have their own worker, as deployed (docker-compose, runportal)
            procs.worker("events", env, log_level=args.worker_log_level, queues="events")
            procs.wait_ready("events")
        for i in range(args.workers):
            procs.wait_ready(f"w{i}")
        sampler = common.RssSampler(
            {f"w{i}": procs.procs[f"w{i}"].pid for i in range(args.workers)},
            pg_db=args.db,
            others={"fake_provider": fake.pid},
        )
        sampler.start()
        profile = None
        if args.profile:
            profile = _start_profile(procs, "w0")
        rds = redis.Redis.from_url(args.redis_url)
        rds.delete("bench:sql_statements", "bench:sql_statement_kinds")
        pg_before = common.pg_db_counters(args.db)

        from campaigns.services import campaign_launch

        launched = time.time()
        campaign_launch(campaign=campaign, user=admin)
        timeout = args.timeout or max(120.0, n / 200)
        deadline = time.monotonic() + timeout
        accepted, last_change, last_seen = 0, time.monotonic(), -1
        progress = []
        from messaging.models import Message

        open_statuses = ["pending", "claimed", "sending", "unknown"]
        # ``unknown`` rows (a lost answer) wait for a delivery report, which this bench (callbacks off)
        # never sends: with faults, beat sends them again after the short window, so the run waits for
        # them too; without, none should exist, and any left is reported apart.
        working = open_statuses if args.faults else ["pending", "claimed", "sending"]
        statements_seen: list[tuple[float, int]] = []  # (time, statements so far): flushed after each task
        while time.monotonic() < deadline:
            accepted = fake.stats()["accepted"]
            progress.append((round(time.time() - launched, 2), accepted))
            statements_seen.append((time.time(), int(rds.get("bench:sql_statements") or 0)))
            if accepted >= n:
                break
            # with faults a message may fail for good after its last attempt: done once every row is final
            if (
                args.faults
                and accepted >= n * 0.9
                and len(progress) % 4 == 0
                and not Message.objects.filter(campaign=campaign, status__in=working).exists()
            ):
                break
            if args.stop_after and time.time() - launched >= args.stop_after:
                break
            if accepted != last_seen:
                last_seen, last_change = accepted, time.monotonic()
            elif time.monotonic() - last_change > 60:
                break  # stalled
            time.sleep(0.25)
        finished_wall = time.time()
        received = [r[0] for r in fake.message_rows(fields="received_at")]
        fake_stats = fake.stats()
        rss = sampler.stop()
        if profile is not None:
            _stop_profile(profile)
        # let the last batches record their outcomes before counting
        t_rec = time.monotonic()
        while time.monotonic() - t_rec < (5 if args.stop_after else 60):
            open_rows = Message.objects.filter(campaign=campaign, status__in=working).count()
            if open_rows == 0:
                break
            time.sleep(0.5)
        recorded_at = time.time()
        webhook_result = _webhook_wait(hook, n=n, launched=launched) if hook is not None else None
        by_status = dict(
            Message.objects.filter(campaign=campaign).values_list("status").annotate(n=common_count()).order_by()
        )
        retry_wait = _retry_wait(campaign) if args.faults else None
        procs.stop_all()  # backends exit and flush their statistics
        from django.db import connections

        connections.close_all()
        time.sleep(1.0)
        pg_delta = common.pg_counter_delta(pg_before, common.pg_db_counters(args.db))
        statements = int(rds.get("bench:sql_statements") or 0)
        kinds = {k.decode(): int(v) for k, v in rds.hgetall("bench:sql_statement_kinds").items()}

        first = min(received) if received else None
        last = max(received) if received else None
        ours = (len(received) / (last - launched)) if received and last > launched else 0.0
        mid = _sustained(received)
        mid_cpu = _middle_cpu(sampler, received)

        if getattr(args, "no_references", False):
            naive, ceilings = {"rate": 0, "skipped": True}, [{"rate": 0, "skipped": True}]
        else:
            fake.reset()
            if faults:  # the references run fault-free
                fake.configure(**dict.fromkeys(("rate_timeout", "rate_drop", "rate_5xx", "rate_429"), 0.0))
            naive_n = args.naive_n or (200 if latency > 0 else 2000)
            naive = naive_loop(fake.plivo_send_url(PLIVO_ID), naive_n)
            fake.reset()
            ceilings = bare_ceiling(fake.plivo_send_url(PLIVO_ID), args.ceiling_n or min(n, 20_000))
        best = max(c["rate"] for c in ceilings)
        all_final = not any(by_status.get(st) for st in open_statuses)
        settled = not any(by_status.get(st) for st in working)
        reference = None
        if args.reference:
            import json

            reference = json.loads(common.Path(args.reference).read_text())
        result = {
            "status": "ok"
            if len(received) >= n or (args.faults and settled)
            else ("partial" if args.stop_after else "incomplete"),
            "stopped_after_seconds": args.stop_after or None,
            "params": {
                "n": n,
                "history_months": args.history_months,
                "history_per_month": args.history_per_month if args.history_months else 0,
                "prefill": args.prefill,
                "workers": args.workers,
                "worker_concurrency": 1,
                "latency_ms": latency,
                "backend": args.backend,
                "SMS_BATCH_SIZE": settings.SMS_BATCH_SIZE,  # the workers' (the same environment)
                "SMS_MAX_IN_FLIGHT": args.max_in_flight,
                "SMS_BATCHES_AHEAD": args.batches_ahead,
                "SMS_GROUP_SIZE": args.group_size or None,
                "same_body": args.same_body,
                "beat": bool(args.faults or args.beat),
                "sender_max_mps": 0,
                "callbacks": False,
                "worker_log_level": args.worker_log_level,
                "faults": faults or None,
                "SMS_HTTP_TIMEOUT": args.read_timeout if args.faults else 30,
                "SMS_UNKNOWN_RESEND_SECONDS": args.unknown_resend_seconds if args.faults else None,
            },
            "all_final": all_final,
            "unknown_awaiting_report": by_status.get("unknown", 0),
            "fake_fault_counts": {k: v for k, v in fake_stats.items() if k.startswith("fault_")},
            "setup_seconds": {"migrate": round(migrate_s, 1), "seed": round(seed_s, 1)},
            "accepted_by_provider": len(received),
            # The references make one request per message; ours may carry several destinations each.
            "requests_to_provider": fake_stats["requests"],
            "requests_per_message": round(fake_stats["requests"] / max(1, len(received)), 4),
            "duplicates_at_provider": fake_stats["duplicates"],
            "messages_per_second": round(ours, 1),
            "messages_per_second_middle_80pct": mid,
            "seconds_launch_to_last_accept": round(last - launched, 3) if last else None,
            "seconds_to_first_send": round(first - launched, 3) if first else None,
            "seconds_launch_to_all_recorded": round(recorded_at - launched, 3),
            "db_status_counts": by_status,
            "peak_rss_mb_per_worker": rss,
            "cpu_seconds_per_1000_messages": {
                k: (round(v * 1000 / max(1, len(received)), 2) if v is not None else None)
                for k, v in sampler.cpu_seconds().items()
            },
            # The same, inside the middle 80% of accepts only (the window of the sustained rate):
            # without the ramp-up and the tail of a faults run's last retries.
            "cpu_seconds_per_1000_messages_middle_80pct": mid_cpu,
            "db": {
                "sql_statements": statements,
                "sql_statements_per_message": round(statements / max(1, len(received)), 3),
                "transactions": pg_delta["xact_commit"] + pg_delta["xact_rollback"],
                "transactions_per_message": round(
                    (pg_delta["xact_commit"] + pg_delta["xact_rollback"]) / max(1, len(received)), 3
                ),
                "pg_stat_database_delta": pg_delta,
                "sql_statements_per_message_middle_80pct": _middle_statements(statements_seen, received),
                **({"sql_statements_by_caller": dict(sorted(kinds.items(), key=lambda kv: -kv[1]))} if kinds else {}),
                "how": "sql_statements: every cursor.execute in the worker processes (Django execute_wrapper, "
                "bench/apps.py), summed in Redis after each task; transactions: pg_stat_database "
                "xact_commit+xact_rollback delta for the bench database (includes the launch call and "
                "autovacuum/analyze). pg_stat_statements is not preloaded on this server.",
            },
            "naive_loop": naive,
            "ceiling": ceilings,
            "ratio_to_naive": round(ours / naive["rate"], 1) if naive["rate"] else None,
            "ratio_to_ceiling": round(ours / best, 3) if best else None,
            "fault_free_reference": (
                {
                    "file": args.reference,
                    "messages_per_second": reference.get("messages_per_second"),
                    "messages_per_second_middle_80pct": reference.get("messages_per_second_middle_80pct"),
                    # beat runs in a fault run: a reference without it differed in more than the faults
                    "beat": reference.get("params", {}).get("beat", False),
                    "sustained_ratio": round(mid / reference["messages_per_second_middle_80pct"], 3)
                    if mid and reference.get("messages_per_second_middle_80pct")
                    else None,
                }
                if reference
                else None
            ),
            "progress": progress[:: max(1, len(progress) // 60)],
            "accepts_per_second": _per_second(received, launched),
            "retry_wait_seconds": retry_wait,
            "finished_wall": finished_wall,
            "machine": machine,
        }
        if profile is not None:
            result["profile"] = str(profile[1])
        if webhook_result is not None:
            result["webhook_events"] = webhook_result
        path = common.write_result(name, result, results_dir=results_dir)
        print(
            f"{name}: {ours:.0f} msg/s, first send {result['seconds_to_first_send']} s, "
            f"naive {naive['rate']}/s (x{result['ratio_to_naive']}), ceiling {best}/s ({result['ratio_to_ceiling']}), "
            f"rss {rss}, stmts/msg {result['db']['sql_statements_per_message']}, "
            f"cpu s/1000 msg {result['cpu_seconds_per_1000_messages']}"
        )
        return {"path": path, "result": result}
    finally:
        procs.stop_all()
        fake.stop()


def _webhook_receiver(admin):
    """A loopback receiver (HTTP/1.1 keep-alive, 200 to everything) and an endpoint for message.sent."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from events.services import endpoint_create

    seen: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append(time.time())
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint_create(actor=admin, url=f"http://127.0.0.1:{server.server_address[1]}/hooks", event_types=["message.sent"])
    return server, seen


def _webhook_wait(hook, *, n: int, launched: float, timeout: float = 300) -> dict:
    """Wait until the receiver has every message.sent event; how long after the launch that took."""
    server, seen = hook
    deadline = time.monotonic() + timeout
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.25)
    server.shutdown()
    from events.models import OutboxEvent

    return {
        "events_received": len(seen),
        "events_in_outbox": OutboxEvent.objects.count(),
        "seconds_launch_to_last_event": round(max(seen) - launched, 3) if seen else None,
        "seconds_launch_to_first_event": round(min(seen) - launched, 3) if seen else None,
    }


def common_count():
    from django.db.models import Count

    return Count("id")


def _retry_wait(campaign) -> dict:
    """How long a retried message waited after its last backoff ended: its ``sent_at`` (accepted)
    minus its ``due_at`` (when its last retry fell due), over the rows accepted after a retry."""
    from messaging.models import Message

    waits = sorted(
        (sent - due).total_seconds()
        for sent, due in Message.objects.filter(campaign=campaign, status="queued", attempts__gt=1)
        .exclude(sent_at__isnull=True)
        .values_list("sent_at", "due_at")
    )
    if not waits:
        return {"retried": 0}

    def at(q: float) -> float:
        return round(waits[min(len(waits) - 1, int(q * len(waits)))], 2)

    return {"retried": len(waits), "p50": at(0.5), "p90": at(0.9), "max": round(waits[-1], 2)}


def _per_second(received: list[float], launched: float) -> list[int]:
    """Accepts in each second after the launch, from the fake's receive times: where a run slows."""
    if not received:
        return []
    counts = [0] * (int(max(received) - launched) + 1)
    for t in received:
        counts[max(0, int(t - launched))] += 1
    return counts


def _sustained(received: list[float]) -> float | None:
    """Rate between the 10th and the 90th percentile of accepts: the steady state, without ramp-up or tail."""
    if len(received) < 100:
        return None
    s = sorted(received)
    a, b = s[len(s) // 10], s[len(s) * 9 // 10]
    return round((len(s) * 0.8) / (b - a), 1) if b > a else None


def _middle_statements(seen: list[tuple[float, int]], received: list[float]) -> float | None:
    """Statements per accept between the 10th and 90th percentile accept (counts arrive per task: rough)."""
    if len(received) < 100:
        return None
    s = sorted(received)
    inside = [(t, n) for t, n in seen if s[len(s) // 10] <= t <= s[len(s) * 9 // 10]]
    if len(inside) < 2:
        return None
    (t0, a), (t1, b) = inside[0], inside[-1]
    accepts = sum(1 for t in s if t0 <= t <= t1)
    return round((b - a) / max(1, accepts), 3)


def _middle_cpu(sampler, received: list[float]) -> dict[str, float] | None:
    """CPU-seconds per 1,000 accepts between the 10th and the 90th percentile accept (as ``_sustained``)."""
    if len(received) < 100:
        return None
    s = sorted(received)
    used = sampler.cpu_between(s[len(s) // 10], s[len(s) * 9 // 10])
    if not used:
        return None
    # accepts inside the window the samples actually cover
    inside = sum(1 for t in s if used["start"] <= t <= used["end"])
    return {k: round(v * 1000 / max(1, inside), 3) for k, v in used.items() if k not in ("start", "end", "seconds")}


def _start_profile(procs, name: str):
    import shutil
    import subprocess

    spy = shutil.which("py-spy") or str(common.Path(common.PY).parent / "py-spy")
    out = procs.dir / f"profile-{name}.txt"
    # the prefork child does the work; profile the whole tree
    # --gil: only the thread holding the GIL is sampled (a thread waiting for it is not busy)
    cmd = [
        spy,
        "record",
        "--subprocesses",
        "--gil",
        "--format",
        "raw",
        "-o",
        str(out),
        "--pid",
        str(procs.procs[name].pid),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT), out


def _stop_profile(profile) -> None:
    import signal

    proc, _ = profile
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
