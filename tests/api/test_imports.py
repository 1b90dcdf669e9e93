"""CSV import over REST: multipart or a raw text/csv body, 202 + Location, polling, the row report,
Idempotency-Key, the same rules as the web import (consent evidence, kept opt-outs, the cap)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from recipients.models import ConsentEvent, ImportJob, Recipient, RecipientList

pytestmark = pytest.mark.django_db

CSV = "Mobile,Name,Agreed,City\n4155550101,Ann Lee,yes,Oakland\nnope,Bob,,Oakland\n4155550103,Cy,yes,Berkeley\n"


@pytest.fixture
def customers():
    return RecipientList.objects.create(name="customers")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT / "imports"


def url(recipient_list) -> str:
    return f"/api/v1/lists/{recipient_list.pk}/imports"


def test_a_streamed_csv_body_is_imported_by_the_same_rules(
    bob, token_client, customers, media, django_capture_on_commit_callbacks
):
    Recipient.objects.create(phone="+14155550103", consent_status="opted_out")
    client = token_client(bob)
    query = {
        "name": "crm.csv",
        "mapping": json.dumps({"phone": "Mobile", "consent": "Agreed", "ignore": ["City"]}),
        "consent_evidence": "https://example.com/signup",
        "consent_at": "2024-05-01",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url(customers) + "?" + "&".join(f"{k}={v}" for k, v in query.items()).replace("#", "%23"),
            CSV.encode(),
            content_type="text/csv",
        )
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"] == job["url"] and job["url"].endswith(f"/api/v1/imports/{job['id']}")
    assert job["file_name"] == "crm.csv" and job["list"] == customers.pk and job["status"] == "pending"

    done = client.get(response["Location"]).json()
    assert done["status"] == "completed" and done["finished"] and done["percent"] == 100
    assert (done["created_count"], done["rejected_count"], done["processed_rows"]) == (1, 1, 3)
    reasons = {r["row"]: r["reason"] for r in done["rejected_rows"]}
    assert "not a phone number" in reasons[3] and reasons[4].startswith("kept opted out")
    ann = Recipient.objects.get(phone="+14155550101")
    assert (ann.first_name, ann.last_name, ann.consent_status, ann.attributes) == ("Ann", "Lee", "opted_in", {})
    event = ConsentEvent.objects.get(recipient=ann)
    assert event.channel == "import" and event.actor == bob
    assert event.evidence.endswith("consented 2024-05-01: https://example.com/signup")
    assert Recipient.objects.get(phone="+14155550103").consent_status == "opted_out"
    assert list(media.iterdir()) == []  # the upload is gone, the report stays

    rejected = client.get(done["rejected_rows_url"])
    assert rejected.status_code == 200 and rejected["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(rejected.streaming_content).decode())))
    assert rows[0] == ["row", "phone", "reason", "raw"] and [r[0] for r in rows[1:]] == ["3", "4"]


def test_a_multipart_upload_needs_evidence_for_opt_ins_like_the_web_import(
    bob, client_for, customers, media, django_capture_on_commit_callbacks
):
    client = client_for(bob)
    upload = SimpleUploadedFile("people.csv", CSV.encode(), "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(customers), {"file": upload, "mapping": '{"phone": "Mobile", "consent": "Agreed"}'})
    assert response.status_code == 202
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert job.created_by == bob and job.original_name == "people.csv"
    assert job.status == "completed" and job.rejected_count == 3  # no evidence: opted_in rows refused
    assert "opted_in needs evidence" in job.row_errors.first().reason
    assert not Recipient.objects.filter(phone="+14155550101").exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"mapping": '{"telephone": "Mobile"}'}, "mapping"),
        ({"mapping": "[1, 2]"}, "mapping"),
        ({"mapping": "{not json"}, "mapping"),
        ({"region": "ZZ"}, "region"),
        ({"consent_evidence": "form"}, "consent_evidence"),
        ({"consent_at": "tomorrow-ish", "consent_evidence": "form"}, "consent_at"),
    ],
)
def test_bad_options_are_a_400_naming_the_field_and_keep_nothing(bob, client_for, customers, media, data, field):
    upload = SimpleUploadedFile("people.csv", CSV.encode(), "text/csv")
    response = client_for(bob).post(url(customers), {"file": upload, **data})
    assert response.status_code == 400 and field in response.json()["errors"], response.json()
    assert not ImportJob.objects.exists() and not (media.exists() and list(media.iterdir()))


def test_no_file_or_an_empty_body_is_a_400(bob, client_for, customers, media):
    client = client_for(bob)
    assert client.post(url(customers), {}).status_code == 400
    response = client.post(url(customers), b"", content_type="text/csv")
    assert response.status_code == 400 and "file" in response.json()["errors"]


def test_a_streamed_body_over_the_cap_is_a_413_while_streaming(bob, client_for, customers, media, settings):
    settings.SMS_IMPORT_MAX_UPLOAD_MB = 0.001  # about 1 KB
    body = b"phone\n" + b"4155550101\n" * 200
    response = client_for(bob).post(url(customers), body, content_type="text/csv")
    assert response.status_code == 413 and "larger than" in response.json()["message"]
    assert not ImportJob.objects.exists()


def test_idempotency_key_replays_the_job_and_a_different_file_is_a_422(
    bob, client_for, customers, media, django_capture_on_commit_callbacks
):
    client = client_for(bob)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url(customers), CSV.encode(), content_type="text/csv", HTTP_IDEMPOTENCY_KEY="imp-1")
        again = client.post(url(customers), CSV.encode(), content_type="text/csv", HTTP_IDEMPOTENCY_KEY="imp-1")
    assert first.status_code == again.status_code == 202
    assert again["Idempotent-Replayed"] == "true" and again["Location"] == first["Location"]
    assert again.json()["id"] == first.json()["id"] and ImportJob.objects.count() == 1
    other = client.post(url(customers), b"phone\n4155550199\n", content_type="text/csv", HTTP_IDEMPOTENCY_KEY="imp-1")
    assert other.status_code == 422 and ImportJob.objects.count() == 1


def test_viewers_may_read_imports_but_not_start_one(bob, carol, client_for, customers, media):
    job = ImportJob.objects.create(recipient_list=customers, created_by=bob, file="x", status="completed")
    viewer = client_for(carol)
    upload = SimpleUploadedFile("people.csv", CSV.encode(), "text/csv")
    assert viewer.post(url(customers), {"file": upload}).status_code == 403
    assert viewer.get(f"/api/v1/imports/{job.pk}").json()["status"] == "completed"
    assert [j["id"] for j in viewer.get("/api/v1/imports").json()["results"]] == [job.pk]
    assert client_for(bob).post("/api/v1/lists/999999/imports", {"file": upload}).status_code == 404
    assert client_for().get(f"/api/v1/imports/{job.pk}").status_code in {401, 403}
