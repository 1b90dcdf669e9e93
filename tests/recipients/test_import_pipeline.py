"""The import's two threads: one reads, checks and encodes the next chunk while the other writes
this one (a big file's chunks are checked in parsing processes). A failure on either side ends the
import as failed, with a message, and stops the other."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from django.db import connection, transaction

from recipients import importer
from recipients.models import ConsentEvent, ImportJob, ImportRowError, Recipient, RecipientList, Suppression
from recipients.services import import_csv, recipient_create, recipient_delete, recipient_opt_out
from recipients.upsert import (
    KEPT_OPTED_OUT,
    ConsentSource,
    RecipientRow,
    recipients_upsert,
    recipients_upsert_prepare,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers():
    return RecipientList.objects.create(name="customers")


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("import-reader")]


def _csv(tmp_path, lines: list[str]):
    path = tmp_path / "people.csv"
    path.write_text("phone,first_name\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture
def refuse_number():
    """A real PostgreSQL error on inserting one number (a trigger), as a full disk or a constraint would give."""

    def refuse(phone: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE FUNCTION refuse_number() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_number BEFORE INSERT ON recipients_recipient FOR EACH ROW "
                f"WHEN (NEW.phone = '{phone}') EXECUTE FUNCTION refuse_number()"
            )

    return refuse  # created inside the test's transaction: rolled back with it


def test_a_database_failure_in_a_later_chunk_fails_the_job_and_stops_the_reader(
    tmp_path, customers, settings, refuse_number
):
    settings.SMS_IMPORT_CHUNK_ROWS = 3
    refuse_number("+14155550104")  # in the second chunk
    lines = [f"415555010{i},P{i}" for i in range(1, 10)] + ["not a number,Q"]
    job = import_csv(path=_csv(tmp_path, lines), recipient_list=customers)

    assert job.status == ImportJob.Status.FAILED
    assert job.error == "The import stopped on an internal error."
    assert job.finished_at is not None
    # The first chunk stays written and counted; nothing of the failed one or after it.
    assert sorted(Recipient.objects.values_list("phone", flat=True)) == [
        "+14155550101",
        "+14155550102",
        "+14155550103",
    ]
    assert (job.processed_rows, job.created_count, job.rejected_count) == (3, 3, 0)
    assert not ImportRowError.objects.filter(job=job).exists()
    assert not _readers()  # the reading thread was told to stop and has ended


@pytest.fixture
def parsing_processes(settings, monkeypatch):
    """Parse in ``n`` processes whatever the file's size (0: in the reading thread); yields the pools used."""
    pools: list = []
    real = importer.Importer._parsing_pool

    def use(n: int) -> None:
        settings.SMS_IMPORT_PARSE_PROCESSES = n
        monkeypatch.setattr(importer, "POOL_MIN_BYTES", 0)

    def recorded(self, size: int):
        pool = real(self, size)
        pools.append(pool)
        return pool

    monkeypatch.setattr(importer.Importer, "_parsing_pool", recorded)
    use.pools = pools  # type: ignore[attr-defined]
    return use


@pytest.mark.parametrize("processes", [0, 2])
def test_a_bad_line_after_some_chunks_keeps_them_and_names_the_line(
    tmp_path, customers, settings, parsing_processes, processes
):
    parsing_processes(processes)
    settings.SMS_IMPORT_CHUNK_ROWS = 2
    lines = ["4155550101,A", "4155550102,B", "4155550103,C", '4155550104,"' + "x" * 70_000 + '"', "4155550105,E"]
    job = import_csv(path=_csv(tmp_path, lines), recipient_list=customers)

    assert job.status == ImportJob.Status.FAILED
    assert job.error.startswith("Line 5: the CSV cannot be read") and "Rows before it were imported" in job.error
    assert set(Recipient.objects.values_list("phone", flat=True)) == {"+14155550101", "+14155550102"}
    assert job.processed_rows == 2
    assert not _readers()
    assert [pool is not None for pool in parsing_processes.pools] == [processes > 0]


@pytest.mark.parametrize("processes", [0, 2])
def test_a_parsing_failure_fails_the_job_keeps_the_chunks_before_and_leaves_no_process(
    tmp_path, customers, settings, parsing_processes, processes, monkeypatch
):
    parsing_processes(processes)
    settings.SMS_IMPORT_CHUNK_ROWS = 3
    real = importer.RowRules.parse

    def parse(self, row_number, values, chunk):  # a bug met on one row (forked processes inherit it)
        if values[0] == "4155550105":
            raise RuntimeError("a bug")
        real(self, row_number, values, chunk)

    monkeypatch.setattr(importer.RowRules, "parse", parse)
    job = import_csv(path=_csv(tmp_path, [f"415555010{i},P{i}" for i in range(1, 10)]), recipient_list=customers)

    assert job.status == ImportJob.Status.FAILED and job.error == "The import stopped on an internal error."
    assert sorted(Recipient.objects.values_list("phone", flat=True)) == [f"+1415555010{i}" for i in (1, 2, 3)]
    assert not _readers()
    assert not multiprocessing.active_children()  # the parsing processes were shut down


def test_parsing_processes_give_the_reading_thread_s_result(tmp_path, customers, settings, parsing_processes, bob):
    """Same rows, same rejections, same counters, later rows still win across chunks (written in order)."""
    settings.SMS_IMPORT_CHUNK_ROWS = 3
    path = tmp_path / "people.csv"
    rows = ["phone,first_name,consent,consent_evidence,consent_at"]
    for i in range(40):
        phone = "12345" if i % 7 == 3 else f"(415) 555-{100 + i % 25:04d}"  # repeats across chunks
        consent = ["yes,web form,2024-05-01", "no,,", ",,", "maybe,,"][i % 4]
        rows.append(f"{phone},Name{i},{consent}")
    rows.insert(10, "")  # a blank line
    out = recipient_create(phone="+14155550999", actor=bob)
    recipient_opt_out(recipient=out, channel="web", evidence="asked", actor=bob)
    rows.append(f"{out.phone},Out,yes,web form,2024-05-01")  # opted out: kept so
    path.write_text("\n".join(rows) + "\n")

    def outcome(processes: int) -> tuple:
        parsing_processes(processes)
        with transaction.atomic():
            job = import_csv(path=path, recipient_list=customers)
            people = sorted(Recipient.objects.values_list("phone", "first_name", "consent_status"))
            events = sorted(ConsentEvent.objects.values_list("recipient__phone", "to_status", "evidence"))
            errors = list(ImportRowError.objects.filter(job=job).values_list("row_number", "phone", "reason", "raw"))
            counters = (job.status, job.processed_rows, job.created_count, job.updated_count)
            counters += (job.duplicate_count, job.rejected_count, job.consent_changes, job.processed_bytes)
            transaction.set_rollback(True)
        evidence = f"job {job.pk}, "  # the job's number is in each event's evidence
        return counters, people, [(p, s, e.replace(evidence, "job N, ")) for p, s, e in events], errors

    in_thread, in_processes = outcome(0), outcome(2)
    assert [pool is not None for pool in parsing_processes.pools] == [False, True]
    assert in_processes == in_thread
    counters, people, _, errors = in_processes
    assert counters[0] == ImportJob.Status.COMPLETED and counters[1] == 41
    assert ("+14155550104", "Name29", "opted_out") in people  # row 4 opted in, row 29 (a later chunk) out
    assert any(reason == KEPT_OPTED_OUT for _, _, reason, _ in errors)
    assert any(reason.startswith("unrecognised consent value") for _, _, reason, _ in errors)


def test_each_chunk_commits_its_rows_report_and_counters_together(tmp_path, customers, settings, bob):
    settings.SMS_IMPORT_CHUNK_ROWS = 2
    out = recipient_create(phone="+14155550103", actor=bob)
    recipient_opt_out(recipient=out, channel="web", evidence="asked", actor=bob)
    gone = recipient_create(phone="+14155550106", actor=bob)
    recipient_opt_out(recipient=gone, channel="web", evidence="asked too", actor=bob)
    recipient_delete(recipient=gone, actor=bob)  # its opt-out stays on the suppression list
    path = tmp_path / "people.csv"
    path.write_text(
        "phone,consent,consent_evidence,consent_at\n"
        "4155550101,yes,form,2024-05-01\n"
        "nonsense,yes,form,2024-05-01\n"
        "4155550103,yes,form,2024-05-01\n"  # opted out: kept so, and reported
        "4155550104,maybe,,\n"
        "4155550101,no,,\n"  # the same person again, in a later chunk
        "4155550106,yes,form,2024-05-01\n"  # suppressed: comes back opted out, and reported
    )
    seen = []

    def progress(job: ImportJob) -> None:
        stored = ImportJob.objects.get(pk=job.pk)
        reasons = list(ImportRowError.objects.filter(job=job).order_by("row_number").values_list("reason", flat=True))
        seen.append((stored.processed_rows, stored.rejected_count, len(reasons), stored.processed_bytes > 0))

    job = import_csv(path=path, recipient_list=customers, progress=progress)

    assert job.status == ImportJob.Status.COMPLETED, job.error
    # Rows 2-3, 4-5, 6-7: each chunk's report and counters are stored by the time it is done.
    assert seen == [(2, 1, 1, True), (4, 2, 3, True), (6, 2, 4, True)]
    assert (job.created_count, job.updated_count, job.duplicate_count) == (2, 1, 1)
    reasons = dict(ImportRowError.objects.filter(job=job).values_list("row_number", "reason"))
    assert set(reasons) == {3, 4, 5, 7}
    assert reasons[4] == reasons[7] == KEPT_OPTED_OUT
    status = dict(Recipient.objects.values_list("phone", "consent_status"))
    assert status == {"+14155550101": "opted_out", "+14155550103": "opted_out", "+14155550106": "opted_out"}
    assert ConsentEvent.objects.filter(recipient__phone="+14155550101").count() == 2
    assert job.consent_changes == 3
    assert job.processed_bytes == job.total_bytes


@pytest.mark.django_db(transaction=True)
def test_only_the_chunks_skip_the_flush_wait_and_the_final_status_is_durable(tmp_path, settings):
    settings.SMS_IMPORT_CHUNK_ROWS = 2
    customers = RecipientList.objects.create(name="customers")
    settings_seen = []

    def progress(job: ImportJob) -> None:  # between chunks, outside their transactions
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            settings_seen.append(cursor.fetchone()[0])

    path = _csv(tmp_path, ["4155550101,A", "4155550102,B", "4155550103,C"])
    job = import_csv(path=path, recipient_list=customers, progress=progress)

    assert job.status == ImportJob.Status.COMPLETED
    assert settings_seen == ["on", "on"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert Recipient.objects.count() == 3


def test_an_upsert_that_meets_a_suppressed_number_writes_each_row_once(bob):
    gone = recipient_create(phone="+14155550106", actor=bob)
    recipient_opt_out(recipient=gone, channel="web", evidence="asked", actor=bob)
    recipient_delete(recipient=gone, actor=bob)
    customers = RecipientList.objects.create(name="customers")
    rows = [
        RecipientRow(2, "+14155550105", "Ann", consent="opted_in", evidence="form"),
        RecipientRow(3, "+14155550106", "Bo", consent="opted_in", evidence="form"),
    ]
    source = ConsentSource(channel="import", evidence="test")
    # Encoded ahead, as the import's reading thread does: the statement stops at the suppressed
    # number and runs again with the suppression in hand.
    result = recipients_upsert(recipients_upsert_prepare(rows=rows), source=source, recipient_list_id=customers.pk)

    assert result.created == 2 and [r.phone for r in result.kept_opted_out] == ["+14155550106"]
    status = dict(Recipient.objects.values_list("phone", "consent_status"))
    assert status == {"+14155550105": "opted_in", "+14155550106": "opted_out"}
    assert customers.memberships.count() == 2
    assert ConsentEvent.objects.filter(recipient__phone="+14155550105").count() == 1
    event = ConsentEvent.objects.get(recipient__phone="+14155550106")
    assert event.to_status == "opted_out" and "suppression list" in event.evidence
    assert not Suppression.objects.exists()


@pytest.fixture
def write_connections(settings, monkeypatch):
    """Write chunks on ``n`` connections in turns whatever the file's size; ``used`` records each import's choice."""
    used: list[bool] = []
    real = importer.Importer._writers

    def use(n: int) -> None:
        settings.SMS_IMPORT_WRITE_CONNECTIONS = n
        monkeypatch.setattr(importer, "WRITERS_MIN_BYTES", 0)

    def recorded(self, size: int):
        writers = real(self, size)
        used.append(writers is not None)
        return writers

    monkeypatch.setattr(importer.Importer, "_writers", recorded)
    use.used = used  # type: ignore[attr-defined]
    return use


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("import-writer")]


@pytest.mark.django_db(transaction=True)  # the writers' own connections must see the list and the job
def test_chunks_written_in_turns_by_two_connections_give_one_connection_s_result(
    tmp_path, settings, write_connections, bob
):
    """A number in consecutive chunks: the later chunk's upsert waits for the earlier commit and
    its values win; the row report, counters, consent trail and suppression rule are the same."""
    settings.SMS_IMPORT_CHUNK_ROWS = 2
    customers = RecipientList.objects.create(name="customers")
    path = tmp_path / "people.csv"
    rows = ["phone,first_name,consent,consent_evidence,consent_at"]
    for i in range(30):
        phone = "12345" if i % 7 == 3 else f"(415) 555-{100 + i % 3:04d}"  # in nearly every chunk
        consent = ["yes,web form,2024-05-01", "no,,", ",,", "maybe,,"][i % 4]
        rows.append(f"{phone},Name{i},{consent}")
    rows += ["+14155550999,Out,yes,web form,2024-05-01", "+14155550998,Gone,yes,web form,2024-05-01"]
    path.write_text("\n".join(rows) + "\n")

    def outcome(connections: int) -> tuple:
        out = recipient_create(phone="+14155550999", actor=bob)
        recipient_opt_out(recipient=out, channel="web", evidence="asked", actor=bob)  # kept opted out
        gone = recipient_create(phone="+14155550998", actor=bob)
        recipient_opt_out(recipient=gone, channel="web", evidence="asked", actor=bob)
        recipient_delete(recipient=gone, actor=bob)  # suppressed: comes back opted out
        write_connections(connections)
        job = import_csv(path=path, recipient_list=customers)
        people = sorted(Recipient.objects.values_list("phone", "first_name", "consent_status"))
        events = sorted(ConsentEvent.objects.values_list("recipient__phone", "to_status", "evidence"))
        errors = list(ImportRowError.objects.filter(job=job).values_list("row_number", "phone", "reason", "raw"))
        counters = (job.status, job.processed_rows, job.created_count, job.updated_count)
        counters += (job.duplicate_count, job.rejected_count, job.consent_changes, job.processed_bytes)
        members = customers.memberships.count()
        Recipient.objects.all().delete()
        evidence = f"job {job.pk}, "
        return counters, people, [(p, s, e.replace(evidence, "job N, ")) for p, s, e in events], errors, members

    one, two = outcome(1), outcome(2)
    assert write_connections.used == [False, True]
    assert two == one
    counters, people, _, errors, members = two
    assert counters[0] == ImportJob.Status.COMPLETED and counters[1] == 32 and members == 5
    assert ("+14155550100", "Name21", "opted_out") in people  # its last valid row wins (later ones are rejected)
    assert ("+14155550998", "Gone", "opted_out") in people and ("+14155550999", "Out", "opted_out") in people
    assert {row for row, _, reason, _ in errors if reason == KEPT_OPTED_OUT} >= {32, 33}
    assert not _writer_threads()


@pytest.mark.django_db(transaction=True)
def test_a_failed_chunk_stops_the_chunks_after_it_on_the_other_connection(tmp_path, settings, write_connections):
    settings.SMS_IMPORT_CHUNK_ROWS = 3
    write_connections(2)
    customers = RecipientList.objects.create(name="customers")
    with connection.cursor() as cursor:  # committed (the writers' connections must meet it), dropped below
        cursor.execute(
            "CREATE FUNCTION refuse_number() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_number BEFORE INSERT ON recipients_recipient FOR EACH ROW "
            "WHEN (NEW.phone = '+14155550104') EXECUTE FUNCTION refuse_number()"
        )
    try:
        lines = [f"41555501{i:02d},P{i}" for i in range(1, 16)]  # chunks of 3: the second fails
        job = import_csv(path=_csv(tmp_path, lines), recipient_list=customers)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_number ON recipients_recipient")
            cursor.execute("DROP FUNCTION refuse_number()")

    assert write_connections.used == [True]
    assert job.status == ImportJob.Status.FAILED and job.error == "The import stopped on an internal error."
    # The first chunk stays written and counted; nothing of the failed one or of any after it.
    assert sorted(Recipient.objects.values_list("phone", flat=True)) == [f"+141555501{i:02d}" for i in (1, 2, 3)]
    stored = ImportJob.objects.get(pk=job.pk)
    assert (stored.processed_rows, stored.created_count, stored.rejected_count) == (3, 3, 0)
    assert not _writer_threads() and not _readers()
