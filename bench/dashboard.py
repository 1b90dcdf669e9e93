"""Dashboard: p95 latency of the campaign detail page, its live status fragment and the API stats endpoint
with 1,000,000 messages in the database (rows made with INSERT … SELECT generate_series; counters consistent).

``--months 12``: the messages are spread over 12 monthly partitions, one campaign a month (the
measured one is this month's); with ``--messages 10000000`` that is 10M messages in 12 partitions.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC

import redis

from bench import common
from bench.webhooks import _gunicorn

# share of messages per status, and the counter bucket each lands in
MIX = [
    ("delivered", 0.88),
    ("sent", 0.03),
    ("queued", 0.02),
    ("undelivered", 0.02),
    ("failed", 0.02),
    ("skipped", 0.01),
    ("pending", 0.02),
]


def add_arguments(p) -> None:
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=1, help="spread the messages over this many monthly partitions")
    p.add_argument("--requests", type=int, default=200, help="sequential requests per URL")
    common.add_server_arguments(p)
    p.add_argument("--name", default="")
    p.add_argument("--results-dir", default="")


def _insert_messages(cur, campaign_id: int, cases: list[str], *, month, created: str) -> None:
    cur.execute(
        'INSERT INTO messaging_message (campaign_id, recipient_id, kind, "to", sender, provider, body, media_urls, '
        "segments, status, provider_message_id, error_code, error_text, attempts, created_at, due_at, sent_at, "
        "finished_at, month) "
        "SELECT %s, r.id, 'campaign', r.phone, '+14155550100', 'plivo', 'Hi ' || r.first_name, '[]'::jsonb, 1, "
        f"s.status, md5(r.id::text), '', '', 1, {created}, {created}, "
        f"{created} + interval '10 minutes', {created} + interval '20 minutes', %s "
        f"FROM recipients_recipient r, LATERAL (SELECT CASE {' '.join(cases)} ELSE 'delivered' END AS status "
        "FROM (SELECT (r.id * 7919 %% 10000) / 10000.0 AS x) q) s",
        [campaign_id, month],
    )


def _older_months(campaign, months: int, cases: list[str]) -> None:
    """One finished campaign a month for the ``months - 1`` months before this one, each in its own partition."""
    from datetime import datetime, timedelta

    from django.db import connection

    from campaigns.models import Campaign
    from messaging import partitions

    month = partitions.month_start(datetime.now(UTC))
    for i in range(1, months):
        month = partitions.month_start(datetime(month.year, month.month, 1, tzinfo=UTC) - timedelta(days=1))
        launched = datetime(month.year, month.month, 2, tzinfo=UTC)
        partitions.ensure_partitions(now=launched, ahead=0)
        old = Campaign.objects.create(
            name=f"Month -{i}", body=campaign.body, created_by_id=campaign.created_by_id, status="completed"
        )
        Campaign.objects.filter(pk=old.pk).update(created_at=launched, launched_at=launched)
        with connection.cursor() as cur:
            _insert_messages(cur, old.pk, cases, month=month, created=f"'{launched.isoformat()}'::timestamptz")
            print(f"seeded month {month}", flush=True)


def seed(n: int, months: int = 1):
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection

    from accounts.services import api_token_create
    from bench.fanout import seed as fanout_seed
    from campaigns.counters import BUCKET
    from campaigns.models import Campaign
    from messaging.partitions import campaign_month

    per_month = n // months  # the same recipients get one message a month
    admin, campaign = fanout_seed(n=per_month)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", recipient_total=per_month, materialized=True)
    campaign.refresh_from_db()
    cases, edge = [], 0.0
    for status, share in MIX:
        edge += share
        cases.append(f"WHEN x < {edge:.4f} THEN '{status}'")
    _older_months(campaign, months, cases)
    month = campaign_month(launched_at=campaign.launched_at, created_at=campaign.created_at)
    with connection.cursor() as cur:
        _insert_messages(cur, campaign.pk, cases, month=month, created="now() - interval '1 hour'")
        cur.execute(
            "SELECT status, count(*) FROM messaging_message WHERE campaign_id = %s GROUP BY status", [campaign.pk]
        )
        by_status = dict(cur.fetchall())
        buckets: dict[str, int] = {}
        for status, count in by_status.items():
            buckets[BUCKET[status]] = buckets.get(BUCKET[status], 0) + count
        for bucket, count in buckets.items():
            cur.execute(
                "INSERT INTO campaigns_campaigncounter (campaign_id, bucket, count) VALUES (%s, %s, %s)",
                [campaign.pk, bucket, count],
            )
        cur.execute("VACUUM ANALYZE messaging_message") if False else cur.execute("ANALYZE messaging_message")
    session = SessionStore()
    session[SESSION_KEY] = str(admin.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
    session.create()
    _, token = api_token_create(actor=admin, user=admin, name="bench")
    from campaigns.shortlinks import links_for

    (short,) = links_for([(campaign.pk, None, "https://example.org/landing")]).values()
    return campaign, session.session_key, token, by_status, short.rsplit("/", 1)[1]


def collectstatic(env: dict[str, str]) -> bool:
    """PRODUCTION serves hashed, compressed static files from the manifest, as a real deployment does.

    Collecting them takes seconds (mostly compression), so it is skipped when the collected copy was
    made from exactly the same source files (path, size, mtime) by the same storage. True if it ran.
    """
    import hashlib
    import os

    from django.conf import settings
    from django.contrib.staticfiles.finders import get_finders

    files = sorted((path, os.stat(storage.path(path))) for finder in get_finders() for path, storage in finder.list([]))
    h = hashlib.sha1(usedforsecurity=False)
    h.update(settings.STORAGES["staticfiles"]["BACKEND"].encode())
    for path, st in files:
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    root = common.Path(settings.STATIC_ROOT)
    stamp = root / ".bench-collected"
    if (root / "staticfiles.json").exists() and stamp.exists() and stamp.read_text() == h.hexdigest():
        return False
    stamp.unlink(missing_ok=True)
    common.subprocess.run(
        [common.PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=common.ROOT, env=env, check=True
    )
    stamp.write_text(h.hexdigest())
    return True


def measure(url: str, headers: dict, count: int) -> dict:
    ms, codes = [], {}
    for i in range(count + 5):
        req = urllib.request.Request(url, headers=headers)
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
                code = r.status
        except urllib.error.HTTPError as e:
            code = e.code
        if i >= 5:  # warm-up
            ms.append((time.perf_counter() - t) * 1000)
            codes[code] = codes.get(code, 0) + 1
    return {
        "requests": len(ms),
        "status_codes": {str(k): v for k, v in codes.items()},
        "p50_ms": round(common.percentile(ms, 50), 1),
        "p95_ms": round(common.percentile(ms, 95), 1),
        "p99_ms": round(common.percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
    }


def measure_redirect(port: int, path: str, count: int) -> dict:
    """The tracked-link redirect: each visit is counted (one UPDATE with a counter INSERT) and answered 302.

    Measured by a sequential client on loopback over one kept-alive connection (http.client does not
    follow the redirect): server time plus a loopback round trip, so an upper bound of the server time.
    """
    import http.client

    ms, codes = [], {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(count + 5):
        t = time.perf_counter()
        conn.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
        response = conn.getresponse()
        response.read()
        if i >= 5:
            ms.append((time.perf_counter() - t) * 1000)
            codes[response.status] = codes.get(response.status, 0) + 1
    conn.close()
    return {
        "requests": len(ms),
        "status_codes": {str(k): v for k, v in codes.items()},
        "p50_ms": round(common.percentile(ms, 50), 2),
        "p95_ms": round(common.percentile(ms, 95), 2),
        "p99_ms": round(common.percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


def run(args) -> dict:
    n = args.messages
    name = args.name or (f"dashboard_{n}" if args.months == 1 else f"dashboard_{n}_{args.months}_months")
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    machine = common.machine_info()
    redis.Redis.from_url(args.redis_url).flushdb()
    port = common.free_port()
    env = common.base_env(
        args.db,
        args.redis_url,
        DJANGO_SETTINGS_MODULE="smsportal.settings",
        PRODUCTION="1",
        SECURE_SSL_REDIRECT="0",
        SECRET_KEY="bench-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    env.pop("BENCH_COUNT_QUERIES", None)
    common.fresh_database(args.db, env)
    common.django_setup(env)
    collected = collectstatic(env)
    t = time.monotonic()
    campaign, session_key, token, by_status, link_code = seed(n, args.months)
    seed_s = time.monotonic() - t
    procs = common.Procs(name)
    base = f"http://127.0.0.1:{port}"
    pages = {
        "campaign_detail_page": (f"{base}/campaigns/{campaign.pk}", {"Cookie": f"sessionid={session_key}"}),
        "campaign_status_fragment": (
            f"{base}/campaigns/{campaign.pk}/status",
            {"Cookie": f"sessionid={session_key}", "HX-Request": "true"},
        ),
        "api_stats": (f"{base}/api/v1/campaigns/{campaign.pk}/stats", {"Authorization": f"Bearer {token}"}),
    }
    try:
        _gunicorn(procs, "web", env, port, 2)
        results = {key: measure(url, headers, args.requests) for key, (url, headers) in pages.items()}
        results["short_link_redirect"] = measure_redirect(port, f"/l/{link_code}", args.requests)
    finally:
        procs.stop_all()
    ok = all(r["status_codes"].keys() == {"302" if k == "short_link_redirect" else "200"} for k, r in results.items())
    result = {
        "status": "ok" if ok else "errors",
        "params": {
            "messages": n,
            "monthly_partitions": args.months,
            "messages_in_measured_campaign": n // args.months,
            "requests_per_url": args.requests,
            "client": "sequential urllib, keep-alive off",
            "server": "gunicorn -w 2 (sync), PRODUCTION=1, DEBUG off",
            "collectstatic": "ran" if collected else "skipped (sources unchanged since the last run)",
        },
        "messages_by_status": by_status,
        "seed_seconds": round(seed_s, 1),
        **results,
        "machine": machine,
    }
    path = common.write_result(name, result, results_dir=results_dir)
    print(f"{name}: " + ", ".join(f"{k} p95 {v['p95_ms']} ms {v['status_codes']}" for k, v in results.items()))
    return {"path": path, "result": result}
