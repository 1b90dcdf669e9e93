"""Uploaded CSVs: deleted when their import ends, capped before the body is read; export headers escaped."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from recipients.models import ImportJob, Recipient, RecipientList
from recipients.services import import_csv, import_job_create, import_job_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers():
    return RecipientList.objects.create(name="customers")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"phone\n4155550111\nnope\n", "completed"), (b"name\nAnn\n", "failed")],
    ids=["success", "failure"],
)
def test_the_uploaded_file_is_deleted_when_its_import_ends_and_the_report_stays(media, customers, bob, content, status):
    job = import_job_create(
        uploaded_file=SimpleUploadedFile("p.csv", content), recipient_list=customers, user=bob, run=False
    )
    assert (media / "imports").exists() and list((media / "imports").iterdir())
    job = import_job_run(job=job)
    assert job.status == status
    assert list((media / "imports").iterdir()) == []  # personal data not kept
    if status == "completed":
        assert job.rejected_count == 1 and job.row_errors.get().raw == "nope"
    else:
        assert "No phone column" in job.error


def test_an_abandoned_draft_upload_is_discarded_with_its_file_by_beat(media, customers, bob):
    """A person uploads on the web page and leaves the mapping step: the file must not stay forever."""
    from datetime import timedelta

    from django.utils import timezone

    from recipients.tasks import purge_abandoned_imports
    from smsportal.celery import app

    def upload():
        return import_job_create(
            uploaded_file=SimpleUploadedFile("p.csv", b"phone\n4155550111\n"),
            recipient_list=customers,
            user=bob,
            draft=True,
        )

    old, fresh = upload(), upload()
    ImportJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))

    assert purge_abandoned_imports() == 1

    assert list(ImportJob.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert [p.name for p in (media / "imports").iterdir()] == [fresh.file.rsplit("/", 1)[1]]
    assert any(e["task"] == "recipients.purge_abandoned_imports" for e in app.conf.beat_schedule.values())


def test_a_file_imported_from_the_command_line_is_left_where_it_is(media, customers, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("phone\n4155550111\n")
    assert import_csv(path=path, recipient_list=customers).status == "completed"
    assert path.exists()


def test_a_file_with_too_many_columns_is_refused_at_upload_and_at_run(client, bob, customers, media):
    """100,000 columns made the mapping page build 100,000 choices until gunicorn killed the worker."""
    wide = b"phone," + b",".join(b"c%d" % i for i in range(500)) + b"\n4155550111\n"
    client.force_login(bob)
    response = client.post(
        reverse("recipients:list_import", args=[customers.pk]),
        {"file": SimpleUploadedFile("p.csv", wide, "text/csv"), "region": "US"},
    )
    assert response.status_code == 400 and b"at most 500 are supported" in response.content
    assert not ImportJob.objects.exists() and list((media / "imports").iterdir()) == []

    job = import_job_run(
        job=import_job_create(uploaded_file=SimpleUploadedFile("p.csv", wide), recipient_list=customers, run=False)
    )
    assert job.status == "failed" and "at most 500" in job.error
    assert not Recipient.objects.exists()


def test_an_upload_over_the_cap_is_refused_before_its_body_is_read(client, bob, customers, media, settings):
    settings.SMS_IMPORT_MAX_UPLOAD_MB = 1
    client.force_login(bob)
    upload = SimpleUploadedFile("p.csv", b"phone\n4155550111\n", "text/csv")
    url = reverse("recipients:list_import", args=[customers.pk])
    # The declared length is what the server reads; it is refused on that alone.
    response = client.post(url, {"file": upload}, CONTENT_LENGTH=str(2 * 1024 * 1024), HTTP_REFERER=url)
    assert response.status_code == 413
    body = response.content.decode()
    assert "larger than 1 MB" in body and f'href="{url}"' in body
    assert not ImportJob.objects.exists() and not (media / "imports").exists()
    api = client.post("/api/v1/lists/1/imports", b"x", content_type="text/csv", CONTENT_LENGTH=str(2 * 1024 * 1024))
    assert api.status_code == 413 and "larger than 1 MB" in api.json()["message"]


def test_the_export_header_escapes_attribute_names_like_cells(client, carol, customers):
    person = Recipient.objects.create(phone="+14155550111", attributes={"=cmd|' /C calc'!A0": "x", "@sum": "y"})
    customers.members.add(person)
    client.force_login(carol)
    response = client.get(reverse("recipients:list_export", args=[customers.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][6:] == ["'=cmd|' /C calc'!A0", "'@sum"]
