"""Retrying a transaction that PostgreSQL aborted to break a deadlock or a serialization conflict.

Shared by every path that writes the same rows concurrently (the status drain,
and any caller that wants it): the work is retried, never abandoned.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg.errors
from django.db import OperationalError, connection

logger = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` (Django's wrapper or psycopg's own) is a deadlock or a serialization failure."""
    return isinstance(exc, RETRYABLE) or isinstance(exc.__cause__, RETRYABLE)


def retry_on_deadlock(work: Callable[[], T], *, attempts: int = 8, what: str = "transaction") -> T:
    """Run ``work`` (which opens its own transaction) again when PostgreSQL aborts it with a deadlock.

    Outside any transaction only: inside one, the aborted transaction is the
    caller's, so the error is raised for the caller's own retry.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except OperationalError as exc:
            if not is_retryable(exc) or connection.in_atomic_block or attempt == attempts:
                raise
            delay = random.uniform(0, 0.02 * 2**attempt)  # jitter: the two sides must not collide again
            logger.warning("%s: %s; retry %d in %.0f ms", what, type(exc.__cause__).__name__, attempt, delay * 1000)
            time.sleep(delay)
    raise AssertionError("unreachable")
