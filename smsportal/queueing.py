"""Queue a task from a web request without hanging on a slow or hung broker.

A publish gets the broker's socket timeouts and one retry (``RETRY_POLICY``, where
Celery's default allows three); if it still fails, or the broker failed moments
ago, the task is not queued, a warning says who will queue it instead, and the caller
goes on. Use it only for work that a periodic sweeper also finds in the database.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Task
from django.conf import settings
from kombu.exceptions import OperationalError

from smsportal import redis_clients

logger = logging.getLogger(__name__)
RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def enqueue(task: Task, *args: Any, fallback: str) -> bool:
    """``task.delay(*args)`` that degrades. ``fallback`` says what picks the work up instead."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply_async(args)
        return True
    broker = settings.CELERY_BROKER_URL
    if not redis_clients.available(broker):
        logger.warning("broker down: %s not queued; %s", task.name, fallback)
        return False
    try:
        task.apply_async(args, retry_policy=RETRY_POLICY)
    except (OperationalError, redis.RedisError, OSError) as exc:
        redis_clients.report_failure(exc, broker)
        logger.warning("could not queue %s (%s); %s", task.name, type(exc).__name__, fallback)
        return False
    return True
