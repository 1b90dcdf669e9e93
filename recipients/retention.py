"""Retention: the one place that decides what is removed once old, and what is kept forever.

Removed: message bodies after ``RETENTION_MESSAGE_BODY_DAYS``, whole outbound messages after
``RETENTION_MESSAGE_DAYS``, inbound texts after ``RETENTION_INBOUND_DAYS``, uploaded import files
``RETENTION_IMPORT_FILES_HOURS`` after their import finished (and the rejected rows' raw text).
Kept: campaign counters and costs, consent events (forever: they are the evidence of consent),
suppressions, recipients and their lists. The beat task ``recipients.purge_expired_data`` runs
:func:`purge_expired`; ``manage.py purge_expired_data`` runs it by hand.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.retention import purge_messages
from recipients.models import ImportJob, ImportRowError, InboundMessage

logger = logging.getLogger(__name__)


@dataclass
class Cutoffs:
    message_bodies: datetime
    messages: datetime
    inbound: datetime
    import_files: datetime

    @classmethod
    def from_settings(cls, now: datetime | None = None) -> Cutoffs:
        now = now or timezone.now()
        return cls(
            message_bodies=now - timedelta(days=settings.RETENTION_MESSAGE_BODY_DAYS),
            messages=now - timedelta(days=settings.RETENTION_MESSAGE_DAYS),
            inbound=now - timedelta(days=settings.RETENTION_INBOUND_DAYS),
            import_files=now - timedelta(hours=settings.RETENTION_IMPORT_FILES_HOURS),
        )


def purge_expired(*, cutoffs: Cutoffs | None = None, batch: int | None = None) -> dict[str, int]:
    """Remove what is past its age; returns counts per kind. Safe to run at any time, any number of times."""
    cutoffs = cutoffs or Cutoffs.from_settings()
    batch = batch or settings.RETENTION_PURGE_BATCH
    counts = asdict(purge_messages(body_cutoff=cutoffs.message_bodies, row_cutoff=cutoffs.messages, batch=batch))
    counts["inbound_deleted"] = _delete_inbound(cutoffs.inbound, batch)
    counts["import_files_deleted"] = _delete_import_files(cutoffs.import_files)
    logger.info("retention purge: %s", counts)
    return counts


def _delete_inbound(cutoff: datetime, batch: int) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                InboundMessage.objects.filter(received_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if ids:
                deleted += InboundMessage.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch:
            return deleted


def _delete_import_files(cutoff: datetime) -> int:
    """Uploaded CSVs of finished imports, and the raw text of their rejected rows (the counts stay)."""
    done = ImportJob.objects.filter(
        status__in=[ImportJob.Status.COMPLETED, ImportJob.Status.FAILED], finished_at__lt=cutoff
    ).exclude(file="")
    deleted = 0
    for job in done.only("pk", "file").iterator():
        path = Path(job.file)
        if path.is_file():
            path.unlink(missing_ok=True)
            deleted += 1
        ImportJob.objects.filter(pk=job.pk).update(file="")
    ImportRowError.objects.filter(job__finished_at__lt=cutoff).exclude(raw="").update(raw="")
    return deleted
