"""A Celery beat scheduler that leaves a heartbeat for the container health check.

docker-compose.yml runs ``celery beat -S smsportal.beat.HeartbeatScheduler``;
``python -m smsportal.healthcheck beat`` reads the heartbeat file (see that module).
The same time also goes to Redis, so that the web's /health can say whether beat runs.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery.beat import PersistentScheduler

from smsportal import redis_clients
from smsportal.healthcheck import heartbeat_file

logger = logging.getLogger(__name__)
HEARTBEAT_KEY = "smsportal:beat:last-published"


def publish_heartbeat(now: float | None = None) -> None:
    if not redis_clients.available():
        return
    try:
        redis_clients.client().set(HEARTBEAT_KEY, str(time.time() if now is None else now))
    except Exception as exc:
        redis_clients.report_failure(exc)


def heartbeat_age() -> float | None:
    """Seconds since beat last published a task; None if no beat ever did. Raises if Redis fails."""
    value = redis_clients.client().get(HEARTBEAT_KEY)
    return None if value is None else max(0.0, time.time() - float(value))


class HeartbeatScheduler(PersistentScheduler):
    """PersistentScheduler that touches the heartbeat file after each task it hands to the broker.

    Only a successful publish counts: a failed one raises in ``apply_async`` (beat logs it
    and goes on), so the heartbeat ages while beat runs but cannot reach the broker.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.heartbeat = heartbeat_file(os.environ)
        # A restarted container keeps its /tmp: start from no heartbeat, not the old one.
        self.heartbeat.unlink(missing_ok=True)
        super().__init__(*args, **kwargs)

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        try:
            self.heartbeat.touch()
        except OSError:
            logger.warning("beat: cannot write the heartbeat file %s", self.heartbeat, exc_info=True)
        publish_heartbeat()
        return result
