"""A big import run by a real Celery worker (the web and API path). Its prefork child is a daemonic
process, which may not have children: the import parses in its reading thread there (the same
``RowRules.parse``) and completes with every row accounted for."""

from __future__ import annotations

import pytest

from recipients import tasks
from recipients.models import ConsentEvent, ImportJob, ImportRowError, Membership, Recipient, RecipientList
from tests.conftest import wait_for
from tests.recipients.test_import import _big_file

pytestmark = pytest.mark.worker


def test_a_big_import_in_a_celery_worker_completes_without_parsing_processes(settings, celery_workers, tmp_path):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    rows = 30_000
    path = tmp_path / "big.csv"
    _big_file(path, rows)  # ~1.5 MB: over the size that starts parsing processes elsewhere
    assert path.stat().st_size > 1024 * 1024
    customers = RecipientList.objects.create(name="customers")
    job = ImportJob.objects.create(
        recipient_list=customers, file=str(path), original_name="big.csv", status=ImportJob.Status.PENDING
    )
    celery_workers.env.update(SMS_IMPORT_PARSE_PROCESSES="2", SMS_IMPORT_CHUNK_ROWS="1000")
    celery_workers.start(concurrency=1)
    tasks.run_import.delay(job.pk)

    def finished() -> bool:
        job.refresh_from_db()
        return job.status in (ImportJob.Status.COMPLETED, ImportJob.Status.FAILED)

    wait_for(finished, timeout=180, message="the import to finish")
    assert job.status == ImportJob.Status.COMPLETED, (job.error, celery_workers.logs())
    assert (job.processed_rows, job.rejected_count) == (rows, rows // 1000)
    assert job.created_count == Recipient.objects.count() == rows - rows // 1000
    assert Membership.objects.filter(recipient_list=customers).count() == rows - rows // 1000
    assert ImportRowError.objects.filter(job=job).count() == rows // 1000
    opted_in = Recipient.objects.filter(consent_status="opted_in").count()
    assert ConsentEvent.objects.filter(channel="import").count() == opted_in > 0
    log = (celery_workers.tmp / "w0.log").read_text()
    assert "parsing in" not in log  # daemonic: no processes
    assert f"import job {job.pk}: writing on 2 connections" in log  # threads, though, work there
