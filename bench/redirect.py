"""Redirect: server time of the tracked short link ``GET /l/<code>`` (click counted, 302), p50/p95.

Timed in-process around the production WSGI application (``smsportal.wsgi.application``: the
webhook router, Django's handler, the whole middleware list, response close and its
``request_finished``), so the figure is server time without HTTP parsing or a client. The
references run in the same process, interleaved request by request with the redirect so that a
change in the machine's load hits all of them alike:

- ``reference_302_full_stack``: a bare view answering a 302, no database, behind the portal's full
  middleware list (what every page pays before its view runs);
- ``reference_click_sql``: ``campaigns.shortlinks.record_click`` alone (the click's SQL, no HTTP);
- ``reference_click_sql_synchronous``: the same statement with a synchronous commit (as before issue
  19's part 2: the commit waited for the WAL flush), to show what the asynchronous commit saves;
- ``reference_select_1``: one ``SELECT 1`` round trip to PostgreSQL.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable

import redis

from bench import common

TARGET = "https://shop.example.com/spring?utm_source=sms"
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"


def add_arguments(p) -> None:
    p.add_argument("--links", type=int, default=1_000_000, help="short links in the table")
    p.add_argument("--requests", type=int, default=2000, help="measured requests per path (after 50 warm-ups)")
    p.add_argument("--codes", type=int, default=500, help="distinct links visited (first clicks, then repeats)")
    p.add_argument("--webhook", action="store_true", help="with an event endpoint subscribed to link.clicked")
    common.add_server_arguments(p)
    p.add_argument("--name", default="")
    p.add_argument("--results-dir", default="")


def seed(*, links: int, codes: int) -> tuple[int, list[str]]:
    """A tracked campaign with ``links`` short links (set-based SQL); ``codes`` of them picked at random."""
    from django.db import connection

    from accounts.models import User
    from campaigns.models import Campaign

    admin = User.objects.create_user(username="bench", email="bench@example.com", password="bench-pw", role="admin")
    campaign = Campaign.objects.create(
        name="bench", body=f"Sale: {TARGET}", created_by=admin, track_links=True, status=Campaign.Status.SENDING
    )
    with connection.cursor() as cur:
        # Codes from [A-Za-z0-9], 10 long, unique by construction (hex of the row number).
        cur.execute(
            "INSERT INTO campaigns_shortlink (code, campaign_id, recipient_id, target_url, created_at, expires_at, "
            "clicks, user_agent_category) "
            "SELECT 'B' || lpad(to_hex(g), 9, '0'), %s, NULL, %s || '&r=' || g, now(), now() + interval '400 days', "
            "0, '' FROM generate_series(1, %s) g",
            [campaign.pk, TARGET, links],
        )
        cur.execute("ANALYZE campaigns_shortlink")
    rng = random.Random(7)
    picked = ["B" + format(rng.randint(1, links), "x").rjust(9, "0") for _ in range(codes)]
    return campaign.pk, picked


def environ(path: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": UA,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def timed_request(app: Callable, path: str) -> tuple[float, str, dict]:
    """One request through ``app`` as a WSGI server runs it; returns (ms, status, headers)."""
    seen: dict = {}

    def start_response(status: str, headers: list, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    env = environ(path)
    t = time.perf_counter()
    body = app(env, start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close:
            close()
    ms = (time.perf_counter() - t) * 1000
    return ms, seen["status"].split()[0], seen["headers"]


def summary(ms: list[float], codes: dict[str, int]) -> dict:
    return {
        "requests": len(ms),
        "status_codes": codes,
        "p50_ms": round(common.percentile(ms, 50), 3),
        "p95_ms": round(common.percentile(ms, 95), 3),
        "p99_ms": round(common.percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }


def run(args) -> dict:
    name = args.name or f"redirect_{args.links}" + ("_webhook" if args.webhook else "")
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    machine = common.machine_info()
    redis.Redis.from_url(args.redis_url).flushdb()
    env = common.base_env(
        args.db,
        args.redis_url,
        DJANGO_SETTINGS_MODULE="bench.redirect_settings",
        PRODUCTION="1",
        SECURE_SSL_REDIRECT="0",
        SECRET_KEY="bench-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_BASE_URL="http://127.0.0.1:8000",
    )
    env.pop("BENCH_COUNT_QUERIES", None)
    common.fresh_database(args.db, env)
    common.django_setup(env)
    t = time.monotonic()
    _campaign_id, codes = seed(links=args.links, codes=args.codes)
    seed_s = time.monotonic() - t

    from django.db import connection

    from campaigns.models import ShortLink
    from campaigns.shortlinks import record_click
    from smsportal.wsgi import application

    if args.webhook:
        from accounts.models import User
        from events.services import endpoint_create

        # Events are only queued here (no worker runs): what the click pays is writing its event.
        endpoint_create(actor=User.objects.get(), url="https://127.0.0.1:9/hooks", event_types=["link.clicked"])

    def redirect(i: int) -> tuple[float, str]:
        ms, status, headers = timed_request(application, f"/l/{codes[i % len(codes)]}")
        if status == "302" and not headers.get("Location", "").startswith(TARGET):
            status = "302-wrong-target"
        return ms, status

    def reference_302(i: int) -> tuple[float, str]:
        ms, status, _ = timed_request(application, "/bench/302")
        return ms, status

    def click_sql(i: int) -> tuple[float, str]:
        t = time.perf_counter()
        visit = record_click(code=codes[(i * 7) % len(codes)], user_agent=UA)
        ms = (time.perf_counter() - t) * 1000
        return ms, "ok" if visit and visit.target_url else "missing"

    from django.utils import timezone

    from campaigns.shortlinks import _click_sql

    synchronous_sql = _click_sql().replace("SET LOCAL synchronous_commit TO OFF;", "")

    def click_sql_synchronous(i: int) -> tuple[float, str]:
        t = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(synchronous_sql, {"now": timezone.now(), "ua": "mobile", "code": codes[(i * 3) % len(codes)]})
            row = cur.fetchone()
        return (time.perf_counter() - t) * 1000, "ok" if row else "missing"

    def select_1(i: int) -> tuple[float, str]:
        t = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        return (time.perf_counter() - t) * 1000, "ok"

    paths = {
        "redirect": redirect,
        "reference_302_full_stack": reference_302,
        "reference_click_sql": click_sql,
        "reference_click_sql_synchronous": click_sql_synchronous,
        "reference_select_1": select_1,
    }
    ms: dict[str, list[float]] = {k: [] for k in paths}
    statuses: dict[str, dict[str, int]] = {k: {} for k in paths}
    warmup = 50
    for i in range(args.requests + warmup):
        for key, fn in paths.items():  # interleaved: load changes hit every path alike
            took, status = fn(i)
            if i >= warmup:
                ms[key].append(took)
                statuses[key][status] = statuses[key].get(status, 0) + 1
    results = {k: summary(ms[k], statuses[k]) for k in paths}
    visits = args.requests + warmup
    from events.models import OutboxEvent

    counted = sum(ShortLink.objects.filter(code__in=set(codes)).values_list("clicks", flat=True))
    events = OutboxEvent.objects.filter(event_type="link.clicked").count()
    ok = (
        statuses["redirect"] == {"302": args.requests}
        and statuses["reference_302_full_stack"] == {"302": args.requests}
        and counted == 3 * visits  # every redirect and every direct click statement counted once
        and events == (2 * visits if args.webhook else 0)  # the synchronous reference sends no signal
    )
    red, ref = results["redirect"], results["reference_302_full_stack"]
    result = {
        "status": "ok" if ok else "errors",
        "params": {
            "links": args.links,
            "requests_per_path": args.requests,
            "distinct_codes": len(set(codes)),
            "webhook_endpoint": args.webhook,
            "timing": "in-process around smsportal.wsgi.application (server time, no HTTP parsing)",
            "settings": "PRODUCTION=1, DEBUG off, bench.redirect_settings (the product's plus /bench/302)",
        },
        "seed_seconds": round(seed_s, 1),
        "clicks_counted": counted,
        "clicks_expected": 3 * visits,
        "link_clicked_events": events,
        **results,
        "ratio_p50_to_reference_302": round(red["p50_ms"] / ref["p50_ms"], 3),
        "ratio_p50_to_click_sql": round(red["p50_ms"] / results["reference_click_sql"]["p50_ms"], 3),
        # One round trip to PostgreSQL is the floor of anything that records a click.
        "ratio_p50_to_select_1": round(red["p50_ms"] / results["reference_select_1"]["p50_ms"], 3),
        "target_met": ok and red["p50_ms"] < 5,
        "machine": machine,
    }
    path = common.write_result(name, result, results_dir=results_dir)
    print(
        f"{name}: redirect p50 {red['p50_ms']} ms p95 {red['p95_ms']} ms; bare 302 through the full stack "
        f"p50 {ref['p50_ms']} ms; click SQL p50 {results['reference_click_sql']['p50_ms']} ms; "
        f"synchronous commit p50 {results['reference_click_sql_synchronous']['p50_ms']} ms; "
        f"SELECT 1 p50 {results['reference_select_1']['p50_ms']} ms; {counted}/{3 * visits} clicks counted"
    )
    return {"path": path, "result": result}
