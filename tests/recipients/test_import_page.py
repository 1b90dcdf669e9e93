"""The web import: its own page, upload -> column mapping + preview (nothing written) -> run with report."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from recipients.models import ConsentEvent, ImportJob, Recipient, RecipientList, Suppression, suppression_key

pytestmark = pytest.mark.django_db

CSV = (
    "Mobile No,Given,Agreed,Where,When,City,Notes\n"
    "4155550101,Ann,yes,signup form,2024-05-01,Oakland,vip\n"
    "4155550102,Ben,yes,,,Oakland,\n"
    "not a number,Cy,,,,Oakland,\n"
    "4155550104,Di,yes,kiosk,2024-05-02,Berkeley,\n"
)


@pytest.fixture
def customers():
    return RecipientList.objects.create(name="customers")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT / "imports"


def upload(client, customers, content: str | bytes = CSV, name: str = "people.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        reverse("recipients:list_import", args=[customers.pk]), {"file": SimpleUploadedFile(name, data, "text/csv")}
    )


def test_the_list_page_links_to_an_import_page_of_its_own(client, bob, carol, customers):
    client.force_login(bob)
    page = client.get(reverse("recipients:list_detail", args=[customers.pk])).content.decode()
    url = reverse("recipients:list_import", args=[customers.pk])
    assert f'href="{url}">Import a CSV</a>' in page
    response = client.get(url)
    assert response.status_code == 200 and 'enctype="multipart/form-data"' in response.content.decode()
    client.force_login(carol)  # viewers read lists but import nothing
    assert client.get(url).status_code == 403


def test_upload_then_map_then_preview_writes_nothing_until_run(
    client, bob, customers, media, django_capture_on_commit_callbacks
):
    Recipient.objects.create(phone="+14155550104", consent_status="opted_out")
    client.force_login(bob)
    response = upload(client, customers)
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("recipients:import_mapping", args=[job.pk])
    assert job.status == "draft"

    page = client.get(response["Location"])
    body = page.content.decode()
    # Nothing recognisable as a phone header: the page asks for the phone column, every column is listed.
    assert "No phone column" in body and all(f">{h}</label>" in body for h in ["Mobile No", "Given", "Agreed"])

    mapping = {
        "col_0": "phone",
        "col_1": "first_name",
        "col_2": "consent",
        "col_3": "consent_evidence",
        "col_4": "consent_at",
        "col_5": "attribute",
        "col_6": "ignore",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(response["Location"], {**mapping, "region": "US", "preview": ""})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.mapping["phone"] == "Mobile No" and job.mapping["ignore"] == ["Notes"]
    body = client.get(response["Location"]).content.decode()
    assert "+14155550101" in body and "city=Oakland" in body and "notes" not in body
    assert "Rejected: opted_in needs evidence" in body  # row 3: no evidence of its own, none for the file
    assert "or evidence and a date given for the whole file" in body  # the fields on this very page
    assert "Rejected: " in body and "not a phone number" in body  # row 4
    assert "kept opted out" in body  # Di opted out already: the preview says the import won't undo it
    assert not Recipient.objects.filter(phone="+14155550101").exists()
    assert ImportJob.objects.get().status == "draft"  # nothing queued, nothing written

    # File-wide evidence covers Ben's row; then run: progress page, per-row report, consent evidence recorded.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("recipients:import_mapping", args=[job.pk]),
            {**mapping, "consent_evidence": "paper form at the store", "consent_at": "2024-04-01", "run": ""},
        )
    assert response["Location"] == reverse("recipients:import_detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status == "completed", job.error
    assert (job.created_count, job.rejected_count) == (2, 1)
    ann, ben = Recipient.objects.get(phone="+14155550101"), Recipient.objects.get(phone="+14155550102")
    assert ann.attributes == {"city": "Oakland"} and ann.first_name == "Ann"
    assert ann.consent_status == ben.consent_status == "opted_in"
    assert ConsentEvent.objects.get(recipient=ann).evidence.endswith("consented 2024-05-01: signup form")
    assert ConsentEvent.objects.get(recipient=ben).evidence.endswith("consented 2024-04-01: paper form at the store")
    assert Recipient.objects.get(phone="+14155550104").consent_status == "opted_out"
    report = client.get(response["Location"]).content.decode()
    assert "not a phone number" in report and "kept opted out" in report
    assert list(media.iterdir()) == []
    # A started import is not mapped again.
    assert client.get(reverse("recipients:import_mapping", args=[job.pk]))["Location"] == response["Location"]


def test_a_bad_mapping_is_a_form_error(client, bob, customers, media):
    client.force_login(bob)
    url = upload(client, customers, "phone,cell\n4155550101,4155550102\n")["Location"]
    response = client.post(url, {"col_0": "phone", "col_1": "phone", "run": ""})
    assert response.status_code == 400 and "Only one column can be the phone number" in response.content.decode()
    response = client.post(url, {"col_0": "attribute", "col_1": "ignore", "run": ""})
    assert "Choose the column that holds the phone numbers" in response.content.decode()
    response = client.post(url, {"col_0": "phone", "col_1": "ignore", "consent_at": "someday", "run": ""})
    assert response.status_code == 400 and "Give a date" in response.content.decode()
    assert ImportJob.objects.get().status == "draft"


def test_an_unreadable_file_is_refused_at_upload_and_not_kept(client, bob, customers, media):
    client.force_login(bob)
    response = upload(client, customers, b"\x00\x01 just bytes\n", name="photo.csv")
    assert response.status_code == 400 and "CSV" in response.content.decode()
    assert not ImportJob.objects.exists() and list(media.iterdir()) == []


def test_cancelling_a_draft_deletes_it_and_its_file(client, bob, customers, media):
    client.force_login(bob)
    url = upload(client, customers, "phone\n4155550101\n")["Location"]
    response = client.post(url, {"cancel": ""})
    assert response["Location"] == reverse("recipients:list_detail", args=[customers.pk])
    assert not ImportJob.objects.exists() and list(media.iterdir()) == []


def test_drafts_left_at_the_column_step_are_purged_with_their_files(client, bob, customers, media):
    from datetime import timedelta

    from django.utils import timezone

    from recipients.services import import_drafts_purge

    client.force_login(bob)
    upload(client, customers, "phone\n4155550101\n")
    upload(client, customers, "phone\n4155550102\n")
    old, new = ImportJob.objects.order_by("pk")
    ImportJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    done = ImportJob.objects.create(recipient_list=customers, file="/nonexistent", status="completed")
    ImportJob.objects.filter(pk=done.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert import_drafts_purge() == 1
    assert set(ImportJob.objects.values_list("pk", flat=True)) == {new.pk, done.pk}
    assert [p.name for p in media.iterdir()] == [new.file.rsplit("/", 1)[1]]


def test_a_rejected_preview_row_reads_on_a_phone(client, bob, customers, media):
    """The reason sits in one wide cell right after the number (no empty cells beside a tall reason),
    and the table stacks into labelled lines on a small screen."""
    client.force_login(bob)
    location = upload(client, customers, "Phone,Name\nnot a number,Cy\n4155550101,Ann\n")["Location"]
    client.post(location, {"col_0": "phone", "col_1": "first_name", "region": "US", "preview": ""})
    body = client.get(location).content.decode()
    table = body[body.index('data-testid="import-preview"') :]
    assert 'class="stack"' in body[body.index("<table", body.index("Preview of the first rows")) :][:80]
    rejected = table[table.index("not a number") :]
    reason = '<td data-label="Result" colspan="4" class="error" data-testid="rejected">Rejected: '
    assert rejected.split("</td>", 1)[1].lstrip().startswith(reason)
    assert "<td></td>" not in table


def test_the_preview_flags_a_number_on_the_suppression_list(client, bob, customers, media):
    # Suppressions hold only a hash of the number: the preview must find them by hash (it queried a
    # phone column that no longer exists once wt-data and the import page met).
    Suppression.objects.create(phone_hash=suppression_key("+14155550101"), reason="erased")
    client.force_login(bob)
    response = upload(client, customers)
    mapping = {
        "col_0": "phone",
        "col_1": "first_name",
        "col_2": "consent",
        "col_3": "consent_evidence",
        "col_4": "consent_at",
        "col_5": "attribute",
        "col_6": "ignore",
    }
    response = client.post(response["Location"], {**mapping, "region": "US", "preview": ""})
    assert response.status_code == 302
    body = client.get(response["Location"]).content.decode()
    assert body.count("kept opted out") == 1  # Ann's row only
