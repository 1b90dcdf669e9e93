"""CSV import: streaming, validation, merging, consent evidence and the per-row report."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from django.core.management import CommandError, call_command

from recipients.models import ConsentEvent, ImportJob, ImportRowError, Membership, Recipient, RecipientList
from recipients.services import import_csv


@pytest.fixture
def customers(db):
    return RecipientList.objects.create(name="customers")


def write(tmp_path, content: str | bytes, name: str = "people.csv"):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def run(tmp_path, customers, content, **kwargs) -> ImportJob:
    return import_csv(path=write(tmp_path, content), recipient_list=customers, **kwargs)


def test_it_imports_normalizes_and_keeps_extra_columns(tmp_path, customers):
    job = run(
        tmp_path,
        customers,
        "Phone,First Name,Surname,City\n(415) 555-2671,Ann,Lee,Oakland\n+44 7911 123456,Bo,,London\n",
    )
    assert job.status == ImportJob.Status.COMPLETED, job.error
    ann = Recipient.objects.get(phone="+14155552671")
    assert (ann.first_name, ann.last_name, ann.attributes) == ("Ann", "Lee", {"city": "Oakland"})
    assert ann.consent_status == "pending"
    # A foreign number that phonenumbers calls valid is stored.
    assert Recipient.objects.filter(phone="+447911123456").exists()
    assert Membership.objects.filter(recipient_list=customers).count() == 2
    assert (job.processed_rows, job.created_count, job.rejected_count) == (2, 2, 0)
    assert not ConsentEvent.objects.exists()  # nobody was opted in silently


def test_it_reports_every_rejected_row_with_its_reason(tmp_path, customers):
    job = run(
        tmp_path,
        customers,
        "phone,name\n415 555 2671,Ann\nnot a number,Bob\n+1 415 555 0000 99,Cy\n,Dee\n123,Eve\n",
    )
    assert job.status == ImportJob.Status.COMPLETED
    assert (job.processed_rows, job.created_count, job.rejected_count) == (5, 1, 4)
    errors = {e.row_number: e.reason for e in ImportRowError.objects.filter(job=job)}
    assert set(errors) == {3, 4, 5, 6}
    assert "not a phone number" in errors[3]
    assert errors[5] == "no phone number"
    assert "valid" in errors[6]
    assert ImportRowError.objects.get(job=job, row_number=3).raw == "not a number,Bob"


def test_it_merges_duplicates_in_the_file_and_with_existing_recipients(tmp_path, customers):
    existing = Recipient.objects.create(
        phone="+14155552671", first_name="Old", consent_status="opted_in", attributes={"tier": "gold"}
    )
    job = run(
        tmp_path,
        customers,
        "phone,first_name,city\n4155552671,Ann,Oakland\n+1 (415) 555-2672,Bo,\n415.555.2672,,Berkeley\n",
    )
    assert job.status == ImportJob.Status.COMPLETED
    assert Recipient.objects.count() == 2
    existing.refresh_from_db()
    # Existing consent is kept (the file states none); attributes merge.
    assert existing.consent_status == "opted_in"
    assert existing.first_name == "Ann"
    assert existing.attributes == {"tier": "gold", "city": "Oakland"}
    bo = Recipient.objects.get(phone="+14155552672")
    assert (bo.first_name, bo.attributes) == ("Bo", {"city": "Berkeley"})
    assert (job.created_count, job.updated_count, job.duplicate_count) == (1, 1, 1)


def test_duplicates_across_chunks_are_merged(tmp_path, customers, settings):
    settings.SMS_IMPORT_CHUNK_ROWS = 2
    job = run(tmp_path, customers, "phone\n4155552671\n4155552672\n4155552673\n4155552671\n")
    assert (job.created_count, job.duplicate_count, job.updated_count) == (3, 1, 0)
    assert Recipient.objects.count() == 3


def test_stated_consent_is_recorded_with_the_import_as_evidence(tmp_path, customers, alice):
    Recipient.objects.create(phone="+14155552673", consent_status="pending")
    Recipient.objects.create(phone="+14155552674", consent_status="opted_out")
    Recipient.objects.create(phone="+14155552675", consent_status="opted_in")
    job = import_csv(
        path=write(
            tmp_path,
            "phone,consent,consent_evidence,consent_at\n4155552671,yes,signup form,2024-05-01\n4155552672,,,\n"
            "4155552673,opted_in,https://example.com/form/3,2024-05-02T10:00Z\n4155552674,TRUE,paper,2024-05-01\n"
            "4155552675,no,,\n4155552676,maybe,,\n4155552677,yes,,\n4155552678,yes,a form,last spring\n",
            name="spring.csv",
        ),
        recipient_list=customers,
        user=alice,
    )
    status = dict(Recipient.objects.values_list("phone", "consent_status"))
    assert status == {
        "+14155552671": "opted_in",
        "+14155552672": "pending",
        "+14155552673": "opted_in",
        "+14155552674": "opted_out",  # an import never undoes an opt-out
        "+14155552675": "opted_out",
    }
    event = ConsentEvent.objects.get(recipient__phone="+14155552671")
    assert (event.from_status, event.to_status, event.channel, event.actor) == ("pending", "opted_in", "import", alice)
    assert f"job {job.pk}" in event.evidence and "spring.csv" in event.evidence and "row 2" in event.evidence
    assert event.evidence.endswith("row 2: consented 2024-05-01: signup form")
    assert ConsentEvent.objects.get(recipient__phone="+14155552673").evidence.endswith(
        "row 4: consented 2024-05-02T10:00Z: https://example.com/form/3"
    )
    assert ConsentEvent.objects.get(recipient__phone="+14155552675").to_status == "opted_out"
    assert not ConsentEvent.objects.filter(recipient__phone__in=["+14155552672", "+14155552674"]).exists()
    reasons = dict(ImportRowError.objects.filter(job=job).values_list("row_number", "reason"))
    assert reasons[5].startswith("kept opted out")
    assert "unrecognised consent value 'maybe'" in reasons[7]
    assert reasons[8].startswith("opted_in needs evidence")  # no opt-in without its evidence
    assert "'last spring' is not a date" in reasons[9]
    assert not Recipient.objects.filter(phone__in=["+14155552677", "+14155552678"]).exists()
    assert job.rejected_count == 3 and job.consent_changes == 3


def test_a_named_consent_column_must_exist(tmp_path, customers):
    job = run(tmp_path, customers, "phone,ok\n4155552671,yes\n", consent_column="agreed")
    assert job.status == ImportJob.Status.FAILED
    assert "'agreed'" in job.error
    job = run(
        tmp_path,
        customers,
        "phone,Agreed,consent_evidence,consent_at\n4155552671,yes,form,2024-01-01\n",
        consent_column="agreed",
    )
    assert Recipient.objects.get().consent_status == "opted_in"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"\n\n", "The file is empty."),
        (b"phone,name\n", "header row but no data rows"),
        (b"name,city\nAnn,Oakland\n", "No phone column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text CSV"),
        ("phone\n4155552671\n".encode("utf-16"), "UTF-16"),
        (b'phone,notes\n4155552671,"' + b"x" * 70_000 + b'"\n', "Line 2: the CSV cannot be read"),
    ],
    ids=["empty", "blank-lines", "header-only", "no-phone-column", "binary", "utf16", "huge-field"],
)
def test_bad_files_fail_with_a_clear_error(tmp_path, customers, content, message):
    job = run(tmp_path, customers, content)
    assert job.status == ImportJob.Status.FAILED
    assert message in job.error
    assert job.finished_at is not None


def test_it_reads_a_bom_and_falls_back_to_windows_1252(tmp_path, customers):
    job = run(tmp_path, customers, "\ufeffPhone,First name\n4155552671,Zoë\n".encode())
    assert job.status == ImportJob.Status.COMPLETED and job.encoding == "utf-8-sig" and not job.notes
    assert Recipient.objects.get(phone="+14155552671").first_name == "Zoë"
    job = run(tmp_path, customers, "phone,first name\n4155552672,José\n".encode("cp1252"))
    assert job.status == ImportJob.Status.COMPLETED and job.encoding == "cp1252"
    assert "Windows-1252" in job.notes
    assert Recipient.objects.get(phone="+14155552672").first_name == "José"


def test_long_values_are_rejected_per_row(tmp_path, customers):
    job = run(tmp_path, customers, "phone,notes\n4155552671," + "x" * 2000 + "\n4155552672,short\n")
    assert job.status == ImportJob.Status.COMPLETED
    assert job.created_count == 1
    assert ImportRowError.objects.get(job=job).reason == "a value is too long"


def test_allowed_regions_setting_rejects_foreign_numbers(tmp_path, customers, settings):
    settings.SMS_IMPORT_ALLOWED_REGIONS = ["US"]
    job = run(tmp_path, customers, "phone\n4155552671\n+33 6 12 34 56 78\n")
    assert job.created_count == 1
    assert "FR" in ImportRowError.objects.get(job=job).reason


def test_region_option_parses_national_numbers(tmp_path, customers):
    job = run(tmp_path, customers, "phone\n07911 123456\n", region="gb")
    assert job.status == ImportJob.Status.COMPLETED
    assert Recipient.objects.get().phone == "+447911123456"


def test_the_command_imports_and_reports(tmp_path, customers, capsys):
    path = write(tmp_path, "phone,first_name\n4155552671,Ann\nbad,Bob\n")
    call_command("import_recipients", str(path), "--list", "newlist", "--region", "US")
    out = capsys.readouterr()
    assert "1 new" in out.out and "1 rejected" in out.out and "row 3" in out.out
    assert "100%" in out.err or "rows/s" in out.err
    assert RecipientList.objects.get(name="newlist").members.count() == 1
    with pytest.raises(CommandError, match="no data rows"):
        call_command("import_recipients", str(write(tmp_path, "phone\n")), "--list", "newlist")
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_recipients", str(tmp_path / "missing.csv"), "--list", "newlist")


def _big_file(path, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("phone,first_name,last_name,city,consent,consent_evidence,consent_at\n")
        for i in range(rows):
            bad = i % 1000 == 999
            phone = "12345" if bad else f"+1415{2000000 + i:07d}"
            consent = "yes,web form,2024-05-01" if i % 3 == 0 else ",,"
            f.write(f"{phone},First{i},Last{i},City{i % 50},{consent}\n")


def test_a_large_file_streams_in_bounded_memory(tmp_path, customers):
    rows = 100_000
    path = tmp_path / "big.csv"
    _big_file(path, rows)
    tracemalloc.start()
    started = time.monotonic()
    job = import_csv(path=path, recipient_list=customers)
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert job.status == ImportJob.Status.COMPLETED, job.error
    assert job.processed_rows == rows
    assert job.rejected_count == rows // 1000
    assert Recipient.objects.count() == rows - rows // 1000
    assert Membership.objects.filter(recipient_list=customers).count() == rows - rows // 1000
    assert (
        ConsentEvent.objects.filter(channel="import").count()
        == Recipient.objects.filter(consent_status="opted_in").count()
    )
    # The file is ~5 MB; holding its rows as Python lists would need well over 30 MB.
    assert peak < 10 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    print(f"{rows / elapsed:,.0f} rows/s (with tracemalloc on), peak {peak / 1e6:.1f} MB")
