"""What /health reports: each part the portal depends on, answered within ``DEADLINE_SECONDS``.

Each check runs in its own thread, so a hung database, Redis or broker cannot hold the
answer: a check without a result by the deadline is reported as not answering. Checks:

database  ``SELECT 1``.
redis     PING on REDIS_URL (cache, throttles, opt-out signal, rate limiter).
broker    a connection to CELERY_BROKER_URL (the task queue).
beat      the time beat last handed a task to the broker (smsportal.beat), older than
          BEAT_HEARTBEAT_MAX_AGE is down. "not seen" (no beat has ever run against this
          Redis, e.g. a development server without beat) does not make the portal unhealthy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections

from smsportal import beat, redis_clients
from smsportal.celery import app

DEADLINE_SECONDS = 1.5


def _database() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connections.close_all()  # this thread's own connection
    return "ok"


def _redis() -> str:
    redis_clients.client().ping()
    return "ok"


def _broker() -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=DEADLINE_SECONDS)
    return "ok"


def _beat() -> str:
    age = beat.heartbeat_age()
    if age is None:
        return "not seen"
    if age > settings.BEAT_HEARTBEAT_MAX_AGE:
        return f"error: last task published {age:.0f} s ago"
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {"database": _database, "redis": _redis, "broker": _broker, "beat": _beat}


def health_status() -> dict:
    results: dict[str, str] = {}

    def run(name: str, check: Callable[[], str]) -> None:
        try:
            results[name] = check()
        except Exception as exc:  # any failure means unhealthy; the type says which kind
            results[name] = f"error: {type(exc).__name__}"

    threads = [
        threading.Thread(target=run, args=item, daemon=True, name=f"health-{item[0]}") for item in CHECKS.items()
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    done = dict(results)  # a late thread must not change the answer while it is built
    checks = {name: done.get(name, f"error: no answer within {DEADLINE_SECONDS} s") for name in CHECKS}
    return {"ok": not any(v.startswith("error") for v in checks.values()), "checks": checks}
