"""Counts every SQL statement a process runs and adds the count to a Redis key after each task.

The count comes from Django's ``execute_wrapper`` (one per ``cursor.execute``), so it is the
number of statements the application sends, including BEGIN/COMMIT only when Django issues
them as statements (it does not: transactions are counted by PostgreSQL's xact counters).
"""

from __future__ import annotations

import os

from django.apps import AppConfig

COUNTER_KEY = "bench:sql_statements"
_count = {"n": 0}


def _wrapper(execute, sql, params, many, context):
    _count["n"] += 1
    return execute(sql, params, many, context)


def flush() -> None:
    n, _count["n"] = _count["n"], 0
    if n:
        import redis
        from django.conf import settings

        try:
            redis.Redis.from_url(settings.REDIS_URL).incrby(COUNTER_KEY, n)
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

        def install(sender, connection, **kwargs):
            if _wrapper not in connection.execute_wrappers:
                connection.execute_wrappers.append(_wrapper)

        connection_created.connect(install, weak=False)
        task_postrun.connect(lambda **kw: flush(), weak=False)
        worker_ready.connect(_mark_ready, weak=False)


def _mark_ready(sender=None, **kwargs) -> None:
    """The harness waits for this key instead of parsing logs (workers may log at WARNING)."""
    import redis
    from django.conf import settings

    name = getattr(sender, "hostname", "") or ""
    redis.Redis.from_url(settings.REDIS_URL).set(f"bench:ready:{name.split('@')[0]}", 1, ex=3600)
