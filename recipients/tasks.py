"""Celery tasks for recipients: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from recipients import retention, services
from recipients.models import ImportJob


@shared_task(name="recipients.run_import", ignore_result=True, acks_late=True)
def run_import(job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    return services.import_job_run(job=job).status


@shared_task(name="recipients.purge_expired_data", ignore_result=True)
def purge_expired_data() -> dict[str, int]:
    """Hourly: remove what is past its retention age (recipients/retention.py)."""

    if not cache.add("lock:purge-expired-data", 1, timeout=3600):
        return {}  # one purge at a time
    try:
        return retention.purge_expired()
    finally:
        cache.delete("lock:purge-expired-data")


@shared_task(name="recipients.purge_abandoned_imports", ignore_result=True)
def purge_abandoned_imports() -> int:
    return services.import_drafts_purge()
