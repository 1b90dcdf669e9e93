"""Celery tasks for recipients: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from recipients import services
from recipients.models import ImportJob


@shared_task(name="recipients.run_import", ignore_result=True, acks_late=True)
def run_import(job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    return services.import_job_run(job=job).status


@shared_task(name="recipients.purge_abandoned_imports", ignore_result=True)
def purge_abandoned_imports() -> int:
    return services.import_drafts_purge()
