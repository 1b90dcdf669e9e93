"""The Celery app. Beat runs the sweepers that repair what crashes leave behind."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsportal.settings")

app = Celery("smsportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["providers", "messaging", "campaigns", "recipients", "accounts", "relay", "events"])

app.conf.beat_schedule = {
    "sweep-messages": {"task": "messaging.sweep", "schedule": 5.0},
    "sweep-campaigns": {"task": "campaigns.sweep", "schedule": 5.0},
    "apply-status-events": {"task": "providers.apply_status_events", "schedule": 5.0},
    "probe-auto-paused": {"task": "campaigns.probe_auto_paused", "schedule": 5.0},
    "squash-counters": {"task": "campaigns.squash_counters", "schedule": 60.0},
    "expire-relay-conversations": {"task": "relay.expire_conversations", "schedule": 60.0},
    "deliver-event-webhooks": {"task": "events.sweep", "schedule": 5.0},
    "purge-event-webhooks": {"task": "events.purge", "schedule": 3600.0},
    "maintain-message-partitions": {"task": "messaging.maintain_partitions", "schedule": 86400.0},
    "purge-expired-data": {"task": "recipients.purge_expired_data", "schedule": 3600.0},
    "purge-abandoned-imports": {"task": "recipients.purge_abandoned_imports", "schedule": 3600.0},
}


# A worker's reads are lookups of a batch's rows by id (the consent read before the requests, its
# re-check each second). Once a month's partition holds a few hundred thousand rows (or the lists a
# million recipients), PostgreSQL plans them parallel: each then starts two worker processes to read
# 500 rows: 31-35 ms a read instead of 1.5-4 ms, and CPU the sends need (issue 21, bench/README.md).
# What else workers run in bulk are writes (imports, purges), which PostgreSQL does not parallelize.
SERIAL_PLANS = "-c max_parallel_workers_per_gather=0"


def serial_plans(settings_dict: dict[str, Any]) -> None:
    """New connections made with ``settings_dict`` plan without parallel workers (set on connect: no round trip)."""
    options = settings_dict.setdefault("OPTIONS", {})
    current = options.get("options", "")
    if SERIAL_PLANS not in current:
        options["options"] = f"{current} {SERIAL_PLANS}".strip()


@worker_init.connect
def _serial_plans_in_workers(**kwargs: Any) -> None:
    # before the pool forks: every process's connections get it; the web's reports keep parallel plans
    from django.db import connections

    serial_plans(connections["default"].settings_dict)
