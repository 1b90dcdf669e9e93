"""manage.py import_recipients FILE --list NAME [--region US] [--consent-column consent]"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recipients.models import ImportJob, ImportRowError, RecipientList
from recipients.services import import_csv


class Command(BaseCommand):
    help = "Import recipients from a CSV file (streamed; any size) into a list."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--list", dest="list_name", required=True, help="List name; created if missing")
        parser.add_argument("--region", default="", help="Region for numbers without +country, e.g. US")
        parser.add_argument("--consent-column", default="", help="Header of the consent column (default: consent)")
        parser.add_argument("--show-errors", type=int, default=20, help="Rejected rows to print (0 = none)")

    def handle(
        self,
        *args: Any,
        file: str,
        list_name: str,
        region: str,
        consent_column: str,
        show_errors: int,
        **options: Any,
    ) -> None:
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        recipient_list, _ = RecipientList.objects.get_or_create(name=list_name.strip())
        started, cpu_started, children_started = time.monotonic(), time.process_time(), _children_cpu()
        tty = sys.stderr.isatty()

        def progress(job: ImportJob) -> None:
            rate = job.processed_rows / max(time.monotonic() - started, 1e-6)
            line = (
                f"{job.percent:3d}%  {job.processed_rows:,} rows  {job.created_count:,} new  "
                f"{job.rejected_count:,} rejected  {rate:,.0f} rows/s"
            )
            self.stderr.write(("\r" + line) if tty else line, ending="" if tty else "\n")

        job = import_csv(
            path=path, recipient_list=recipient_list, region=region, consent_column=consent_column, progress=progress
        )
        if tty:
            self.stderr.write("")
        if job.notes:
            self.stdout.write(f"Note: {job.notes}")
        for error in ImportRowError.objects.filter(job=job)[:show_errors]:
            self.stdout.write(f"  row {error.row_number}: {error.reason} ({error.phone})")
        summary = (
            f"Import {job.pk} {job.status}: {job.processed_rows:,} rows, {job.created_count:,} new, "
            f"{job.updated_count:,} updated, {job.duplicate_count:,} duplicates merged, "
            f"{job.rejected_count:,} rejected, {job.consent_changes:,} consent changes "
            f"in {time.monotonic() - started:.1f}s ({time.process_time() - cpu_started:.2f} CPU-s, "
            f"{_children_cpu() - children_started:.2f} in parsing processes)"
        )
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(f"{job.error}\n{summary}")
        self.stdout.write(self.style.SUCCESS(summary))


def _children_cpu() -> float:
    """CPU-seconds of this process's ended children (the import's parsing processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
