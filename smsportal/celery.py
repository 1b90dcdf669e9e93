"""The Celery app. Beat runs the sweepers that repair what crashes leave behind."""

import os

from celery import Celery

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
