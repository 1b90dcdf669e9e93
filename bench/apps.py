"""Counts every SQL statement a process runs and adds the count to a Redis key after each task.

The count comes from Django's ``execute_wrapper`` (one per ``cursor.execute``), so it is the
number of statements the application sends, including BEGIN/COMMIT only when Django issues
them as statements (it does not: transactions are counted by PostgreSQL's xact counters).
"""

from __future__ import annotations

import os
import sys
from collections import Counter

from django.apps import AppConfig

COUNTER_KEY = "bench:sql_statements"
# With BENCH_COUNT_QUERY_KINDS, also by caller: a hash of "module.function verb" -> statements
# (the nearest frame in the project outside the shared helpers, and the SQL's first word).
KINDS_KEY = "bench:sql_statement_kinds"
_count = {"n": 0}
_kinds: Counter[str] = Counter()
_HELPERS = ("/messaging/transitions.py", "/messaging/bulk.py", "/messaging/lookups.py", "/providers/db.py")
_PROJECT = tuple(f"/{app}/" for app in ("messaging", "campaigns", "recipients", "accounts", "providers", "events"))


def _wrapper(execute, sql, params, many, context):
    _count["n"] += 1
    return execute(sql, params, many, context)


def _caller() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if "site-packages" not in name and any(p in name for p in _PROJECT) and not name.endswith(_HELPERS):
            return f"{name.rsplit('/', 2)[-2]}.{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


def _kinds_wrapper(execute, sql, params, many, context):
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    _kinds[f"{_caller()} {verb}"] += 1
    return execute(sql, params, many, context)


def flush() -> None:
    n, _count["n"] = _count["n"], 0
    kinds = dict(_kinds)
    _kinds.clear()
    if n or kinds:
        import redis
        from django.conf import settings

        try:
            client = redis.Redis.from_url(settings.REDIS_URL)
            if n:
                client.incrby(COUNTER_KEY, n)
            for kind, k in kinds.items():
                client.hincrby(KINDS_KEY, kind, k)
        except redis.RedisError:
            _count["n"] += n  # Redis restarting (the soak): add it next time


class BenchConfig(AppConfig):
    name = "bench"
    label = "bench"

    def ready(self) -> None:
        if not os.environ.get("BENCH_COUNT_QUERIES"):
            return
        from celery.signals import task_postrun, worker_ready
        from django.db.backends.signals import connection_created

        kinds = bool(os.environ.get("BENCH_COUNT_QUERY_KINDS"))

        def install(sender, connection, **kwargs):
            if _wrapper not in connection.execute_wrappers:
                connection.execute_wrappers.append(_wrapper)
            if kinds and _kinds_wrapper not in connection.execute_wrappers:
                connection.execute_wrappers.append(_kinds_wrapper)

        connection_created.connect(install, weak=False)
        task_postrun.connect(lambda **kw: flush(), weak=False)
        worker_ready.connect(_mark_ready, weak=False)


def _mark_ready(sender=None, **kwargs) -> None:
    """The harness waits for this key instead of parsing logs (workers may log at WARNING)."""
    import redis
    from django.conf import settings

    name = getattr(sender, "hostname", "") or ""
    redis.Redis.from_url(settings.REDIS_URL).set(f"bench:ready:{name.split('@')[0]}", 1, ex=3600)
