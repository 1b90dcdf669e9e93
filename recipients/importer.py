"""Streaming CSV import: read, validate and upsert recipients chunk by chunk.

The file is never held in memory: a csv reader runs over a text wrapper of the
binary file, and every ``SMS_IMPORT_CHUNK_ROWS`` rows are written with one call of
``recipients.upsert.recipients_upsert`` (the upsert the API and the admin use too: one
``INSERT ... ON CONFLICT (phone) DO UPDATE`` for the chunk, and the consent rules) and committed.
Callers go through ``recipients.services`` (``import_job_create``, ``import_job_run``, ``import_csv``).
"""

from __future__ import annotations

import codecs
import csv
import functools
import gc
import io
import json
import logging
import multiprocessing
import queue
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import phonenumbers
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from recipients.models import (
    ConsentEvent,
    ConsentStatus,
    ImportJob,
    Recipient,
    Suppression,
    suppression_key,
)
from recipients.upsert import (
    KEPT_OPTED_OUT,
    ConsentSource,
    PreparedRows,
    RecipientRow,
    recipients_upsert,
    recipients_upsert_prepare,
)
from smsportal.phone import InvalidNumber, parse_valid

logger = logging.getLogger(__name__)

# csv refuses fields over this size with a clear csv.Error instead of growing without bound.
MAX_FIELD_BYTES = 64 * 1024
MAX_VALUE_CHARS = 1000
_SNIFF_BYTES = 1024 * 1024
# The mapping page shows one choice per column: 100,000 columns held a web worker until it was killed.
MAX_COLUMNS = 500
# Smaller files are parsed in the reading thread: starting processes would cost more than it saves.
POOL_MIN_BYTES = 1024 * 1024
# Smaller files are written by the importing thread alone: more connections would cost more than they save.
WRITERS_MIN_BYTES = 1024 * 1024

PHONE_HEADERS = {
    "phone",
    "phone_number",
    "phonenumber",
    "mobile",
    "mobile_number",
    "mobile_phone",
    "cell",
    "cell_phone",
    "cellphone",
    "number",
    "msisdn",
    "telephone",
    "tel",
    "sms",
    "e164",
}
FIRST_NAME_HEADERS = {"first_name", "firstname", "first", "given_name", "givenname", "forename"}
LAST_NAME_HEADERS = {"last_name", "lastname", "last", "surname", "family_name", "familyname"}
FULL_NAME_HEADERS = {"name", "full_name", "fullname", "contact_name"}
CONSENT_HEADERS = {"consent", "consent_status", "opt_in", "optin", "opted_in", "subscribed"}
EVIDENCE_HEADERS = {"consent_evidence", "consent_text", "consent_url", "evidence"}
CONSENT_AT_HEADERS = {"consent_at", "consented_at", "consent_date", "consent_time", "opted_in_at"}
NO_EVIDENCE = (
    "opted_in needs evidence: a consent_evidence column (the text or URL of the consent) "
    "and a consent_at column (when, e.g. 2024-05-01), or evidence and a date given for the whole file"
)

CONSENT_VALUES = {
    **dict.fromkeys(
        ["opted_in", "opted in", "opt_in", "opt-in", "optin", "in", "yes", "y", "true", "t", "1", "subscribed"],
        ConsentStatus.OPTED_IN,
    ),
    **dict.fromkeys(
        [
            "opted_out",
            "opted out",
            "opt_out",
            "opt-out",
            "optout",
            "out",
            "no",
            "n",
            "false",
            "f",
            "0",
            "unsubscribed",
            "stop",
            "stopped",
        ],
        ConsentStatus.OPTED_OUT,
    ),
    **dict.fromkeys(["", "pending", "unknown"], None),
}


class ImportFailed(Exception):
    """The file as a whole cannot be imported; the message is shown to the user."""


def header_key(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip().lower()).strip("_")


def sniff_encoding(path: Path) -> tuple[str, str]:
    """Return (encoding, note). UTF-8 (with or without BOM) first, then Windows-1252.

    The whole file is checked with an incremental decoder, in 1 MB pieces, so a
    bad byte on line 900,000 is found before anything is written.
    """
    with open(path, "rb") as f:
        head = f.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ImportFailed('The file is UTF-16 text. Save it as "CSV UTF-8" and upload it again.')
        for encoding in ("utf-8-sig", "cp1252"):
            f.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            try:
                while piece := f.read(_SNIFF_BYTES):
                    if b"\x00" in piece:
                        raise ImportFailed("This is not a text CSV file (it contains binary data).")
                    decoder.decode(piece)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                continue
            if encoding == "cp1252":
                return encoding, "The file was not UTF-8; it was read as Windows-1252 (Excel's default)."
            return encoding, ""
    raise ImportFailed('The file\'s text encoding is not UTF-8 or Windows-1252. Save it as "CSV UTF-8".')


@dataclass
class Columns:
    phone: int
    first_name: int | None
    last_name: int | None
    full_name: int | None
    consent: int | None
    evidence: int | None = None
    consent_at: int | None = None
    attributes: list[tuple[int, str]] = field(default_factory=list)


# The roles a column can play (docs/recipients.md); every other column is an attribute.
ROLES = {
    "phone": "Phone number",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (split at the first space)",
    "consent": "Consent status (opted_in / opted_out)",
    "consent_evidence": "Consent evidence (text or URL)",
    "consent_at": "Consent date",
}


def mapping_problems(mapping: object) -> list[str]:
    """What is wrong with a column mapping's shape (an empty list: nothing)."""
    if not isinstance(mapping, dict):
        return ['Give an object such as {"phone": "Mobile", "consent": "Opt-in"}.']
    problems = []
    for role, column in mapping.items():
        if role == "ignore":
            if not isinstance(column, list) or not all(isinstance(c, str) for c in column):
                problems.append('"ignore" must be a list of column names.')
        elif role not in ROLES:
            problems.append(f"Unknown role {str(role)[:40]!r}; roles are {', '.join(ROLES)} and ignore.")
        elif not isinstance(column, str) or len(column) > 200:
            problems.append(f'"{role}" must be a column name ("" for none).')
    if "phone" in mapping and not mapping["phone"]:
        problems.append("The phone column is required.")
    return problems


def map_columns(header: list[str], *, consent_column: str = "", mapping: dict | None = None) -> Columns:
    """Which column plays which role: ``mapping`` (role -> header name, "" for none) where it
    names a role, otherwise found by header name (PHONE_HEADERS, ...)."""
    keys = [header_key(h) for h in header]
    mapping = dict(mapping or {})
    if consent_column and "consent" not in mapping:
        mapping["consent"] = consent_column

    def find(names: set[str]) -> int | None:
        return next((i for i, k in enumerate(keys) if k in names), None)

    def column(name: str, role: str) -> int:
        wanted = name.strip()
        index = next((i for i, h in enumerate(header) if h.strip() == wanted), None)
        if index is None:
            index = next((i for i, k in enumerate(keys) if k == header_key(wanted)), None)
        if index is None:
            raise ImportFailed(f"The column {wanted[:100]!r} ({ROLES[role].lower()}) is not in the header.")
        return index

    def pick(role: str, names: set[str]) -> int | None:
        if role in mapping:
            return column(mapping[role], role) if mapping[role] else None
        return find(names)

    phone = pick("phone", PHONE_HEADERS)
    if phone is None:
        shown = ", ".join(h.strip()[:40] for h in header[:10])
        raise ImportFailed(
            f"No phone column. The first row must be a header naming a column phone (or mobile, number, msisdn); "
            f"found: {shown or 'nothing'}."
        )
    consent = pick("consent", CONSENT_HEADERS)
    first, last = pick("first_name", FIRST_NAME_HEADERS), pick("last_name", LAST_NAME_HEADERS)
    wants_full = "full_name" in mapping or (first is None and last is None)
    full = pick("full_name", FULL_NAME_HEADERS) if wants_full else None
    if full is not None and (first is not None or last is not None):
        raise ImportFailed("Map either a full name column or first/last name columns, not both.")
    evidence, consent_at = pick("consent_evidence", EVIDENCE_HEADERS), pick("consent_at", CONSENT_AT_HEADERS)
    roles = [phone, first, last, full, consent, evidence, consent_at]
    used = {i for i in roles if i is not None}
    if len(used) != sum(1 for i in roles if i is not None):
        raise ImportFailed("One column is mapped to two roles; give each role its own column.")
    ignore = {header_key(name) for name in mapping.get("ignore", [])}
    ignored = {i for i, k in enumerate(keys) if k in ignore}
    attributes = [(i, k) for i, k in enumerate(keys) if i not in used and i not in ignored and k]
    return Columns(phone, first, last, full, consent, evidence, consent_at, attributes)


def read_head(path: Path, *, rows: int) -> tuple[str, list[str], list[tuple[int, list[str]]]]:
    """(encoding, header, first ``rows`` data rows with their line numbers), for a preview.

    Only the first megabyte's encoding is checked here; the import checks the whole file."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head.strip():
        raise ImportFailed("The file is empty.")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
        raise ImportFailed('This is not a CSV UTF-8 text file. Save it as "CSV UTF-8" and upload it again.')
    try:
        codecs.getincrementaldecoder("utf-8-sig")().decode(head)  # not final: the piece may end mid-character
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "cp1252"
    csv.field_size_limit(MAX_FIELD_BYTES)
    with open(path, "rb") as binary:
        reader = csv.reader(io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline=""))
        try:
            header = next(reader, None)
            while header is not None and not any(h.strip() for h in header):
                header = next(reader, None)
            out: list[tuple[int, list[str]]] = []
            for values in reader:
                if not values or (len(values) == 1 and not values[0].strip()):
                    continue
                out.append((reader.line_num, values))
                if len(out) >= rows:
                    break
        except csv.Error as exc:
            raise ImportFailed(f"Line {reader.line_num}: the CSV cannot be read ({exc}).") from None
    if header is None:
        raise ImportFailed("The file is empty.")
    check_column_count(header)
    return encoding, header, out


def check_column_count(header: list[str]) -> None:
    if len(header) > MAX_COLUMNS:
        raise ImportFailed(f"The file has {len(header):,} columns; at most {MAX_COLUMNS} are supported.")


Parsed = RecipientRow  # a valid row of the file; row_number is its line


class RowError(NamedTuple):
    """A rejected row, as stored in ``ImportRowError``."""

    row_number: int
    phone: str
    reason: str
    raw: str = ""


@dataclass
class Chunk:
    rows: dict[str, Parsed] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    duplicates: int = 0
    count: int = 0
    # Encoded by the reading thread, so the importing thread only waits for the database.
    prepared: PreparedRows | None = None
    errors_json: str = "[]"

    def encode(self) -> None:
        self.prepared = recipients_upsert_prepare(rows=list(self.rows.values()))
        self.errors_json = _errors_json(self.errors)


def _errors_json(errors: list[RowError]) -> str:
    return json.dumps([{"n": e.row_number, "p": e.phone, "r": e.reason, "w": e.raw} for e in errors])


# A chunk's row report and the job's counters, in one round trip. Its commit does not wait for
# the WAL flush (up to half of each chunk's commit on a busy server): a server crash can lose only
# the last chunks, with their counters (a later transaction never survives an earlier one), and
# the job's final status is committed durably, which flushes every chunk before it.
_CHUNK_DONE = """
WITH errors AS (
    INSERT INTO recipients_importrowerror (job_id, row_number, phone, reason, raw)
    SELECT %(job)s, e.n, e.p, e.r, e.w
    FROM json_to_recordset(%(errors)s::json) AS e(n bigint, p text, r text, w text)
)
UPDATE recipients_importjob
SET processed_rows = %(processed_rows)s, processed_bytes = %(processed_bytes)s,
    created_count = %(created_count)s, duplicate_count = %(duplicate_count)s,
    updated_count = %(updated_count)s, rejected_count = %(rejected_count)s,
    consent_changes = %(consent_changes)s
WHERE id = %(job)s
RETURNING set_config('synchronous_commit', 'off', true)
"""


@functools.lru_cache(maxsize=4096)  # small: imports must stream in bounded memory
def _check_phone(raw: str, region: str, with_region: bool) -> tuple[str, str | None, str | None]:
    """(E.164, region code, None) or ("", None, reason). Cached: files repeat numbers, and
    phonenumbers is about half the cost of an import."""
    try:
        phone, parsed = parse_valid(raw, region=region)
    except InvalidNumber as exc:
        return "", None, str(exc)
    return phone, phonenumbers.region_code_for_number(parsed) if with_region else None, None


_END = object()


def _hand_over(out: queue.Queue, stop: threading.Event, item: object) -> bool:
    """Put ``item`` unless the importing thread has stopped listening."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
        except queue.Full:
            continue
        return True
    return False


def _raw(values: list[str]) -> str:
    return ",".join(values)[:500]


@functools.lru_cache(maxsize=1024)  # a file usually holds a handful of distinct dates
def is_date(text: str) -> bool:
    try:
        return parse_datetime(text) is not None or parse_date(text) is not None
    except ValueError:  # well formed but impossible, e.g. 2024-13-45
        return False


def _cell(values: list[str], index: int | None) -> str:
    if index is None or index >= len(values):
        return ""
    return values[index].strip()


@dataclass
class PreviewRow:
    """One data row as the import would read it: what it writes, or why it is rejected."""

    line: int
    values: list[str]
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    consent: str | None = None
    attributes: dict = field(default_factory=dict)
    problem: str = ""  # rejected: nothing is written for this row
    warning: str = ""  # written, but not everything it says (an opt-out is kept)


@dataclass
class Preview:
    header: list[str]
    columns: Columns
    rows: list[PreviewRow]

    @property
    def roles(self) -> dict[int, str]:
        """Column index -> role, for the mapping form."""
        c = self.columns
        named = {
            "phone": c.phone,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "full_name": c.full_name,
            "consent": c.consent,
            "consent_evidence": c.evidence,
            "consent_at": c.consent_at,
        }
        return {i: role for role, i in named.items() if i is not None}


@dataclass(frozen=True)
class RowRules:
    """How each data row is read and checked: the one place, whichever process parses (the
    preview, the reading thread, or a parsing process of a big import). Picklable."""

    columns: Columns
    region: str
    allowed: frozenset[str]
    default_proof: str
    default_when: str

    def parse(self, row_number: int, values: list[str], chunk: Chunk) -> None:
        # The hot loop (a million times per big file): plain locals, no helper calls.
        columns = self.columns
        n = len(values)
        raw_phone = values[columns.phone].strip() if columns.phone < n else ""
        if not raw_phone:
            chunk.errors.append(_error(row_number, "", "no phone number", values))
            return
        phone, region, invalid = _check_phone(raw_phone, self.region, bool(self.allowed))
        if invalid is not None:
            chunk.errors.append(_error(row_number, raw_phone, invalid, values))
            return
        if self.allowed and region not in self.allowed:
            reason = f"numbers from {region} are not allowed (SMS_IMPORT_ALLOWED_REGIONS)"
            chunk.errors.append(_error(row_number, raw_phone, reason, values))
            return
        consent = None
        if columns.consent is not None and columns.consent < n:
            consent_text = values[columns.consent].strip().lower()
            try:
                consent = CONSENT_VALUES[consent_text]
            except KeyError:
                reason = f"unrecognised consent value {consent_text[:30]!r} (use opted_in / opted_out)"
                chunk.errors.append(_error(row_number, raw_phone, reason, values))
                return
        evidence = ""
        if consent == ConsentStatus.OPTED_IN:
            # A row's own evidence, else the evidence given for the whole file (the import form, the API).
            proof = _cell(values, columns.evidence) or self.default_proof
            when = _cell(values, columns.consent_at) or self.default_when
            if not proof or not when or len(proof) > MAX_VALUE_CHARS:
                chunk.errors.append(_error(row_number, raw_phone, NO_EVIDENCE, values))
                return
            if not is_date(when):
                reason = f"consent_at {when[:30]!r} is not a date (use e.g. 2024-05-01 or 2024-05-01T10:00Z)"
                chunk.errors.append(_error(row_number, raw_phone, reason, values))
                return
            evidence = f"consented {when}: {proof}"
        if columns.full_name is not None:
            first, _, last = _cell(values, columns.full_name).partition(" ")
            last = last.strip()
        else:
            first, last = _cell(values, columns.first_name), _cell(values, columns.last_name)
        attributes = {}
        too_long = len(first) > 100 or len(last) > 100
        for i, key in columns.attributes:
            if i < n:
                value = values[i].strip()
                if value:
                    attributes[key] = value
                    too_long = too_long or len(value) > MAX_VALUE_CHARS
        if too_long:
            chunk.errors.append(_error(row_number, raw_phone, "a value is too long", values))
            return
        seen = chunk.rows.get(phone)
        if seen is None:
            chunk.rows[phone] = Parsed(row_number, phone, first, last, attributes, consent, evidence)
            return
        # The same person twice in one chunk: merge, later values win.
        chunk.duplicates += 1
        seen.first_name = first or seen.first_name
        seen.last_name = last or seen.last_name
        seen.attributes.update(attributes)
        if consent is not None:
            seen.consent, seen.row_number, seen.evidence = consent, row_number, evidence


def _error(row_number: int, phone: str, reason: str, values: list[str]) -> RowError:
    return RowError(row_number, phone[:100], reason, _raw(values))


def parse_chunk(rules: RowRules, lines: list[tuple[int, list[str]]]) -> Chunk:
    """Parse and encode one chunk of (line number, values): what a parsing process runs."""
    chunk = Chunk(count=len(lines))
    parse = rules.parse
    for row_number, values in lines:
        parse(row_number, values, chunk)
    chunk.encode()
    chunk.rows = {}  # now in chunk.prepared: not pickled twice
    return chunk


class _Turn:
    """A chunk's place in the order of writes, when several connections write chunks in turns.

    A chunk upserts only once the chunk before it holds its rows' locks (``locked``), so a number in
    both is written in file order (the later upsert waits for the earlier commit, then applies its
    values over it); it stores its row report and counters, and commits, only once the chunk before
    it has committed (``done``): the job's counters only grow, and no chunk commits after a failed one.
    """

    __slots__ = ("done", "locked", "previous")

    def __init__(self, previous: _Turn | None):
        self.previous = previous
        self.locked = threading.Event()
        self.done: Future[None] = Future()


class _Writers:
    """Threads with a database connection each, writing the chunks given to them in turn.

    PostgreSQL bounds a big import, and a third of its time per chunk is the COMMIT (the deferred
    foreign-key checks of each membership and consent event): with two connections, chunk N commits
    while chunk N+1 upserts. Only outside a transaction: another connection could not see a caller's
    uncommitted rows (its list, the job)."""

    def __init__(self, importer: Importer, count: int):
        self.inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(count)]
        self.threads = [
            threading.Thread(
                target=self._serve, args=(importer, inbox), name=f"import-writer-{importer.job.pk}-{i}", daemon=True
            )
            for i, inbox in enumerate(self.inboxes)
        ]
        self.given = 0
        for thread in self.threads:
            thread.start()

    def __len__(self) -> int:
        return len(self.inboxes)

    def give(self, chunk: Chunk, position: int, turn: _Turn) -> None:
        self.inboxes[self.given % len(self.inboxes)].put((chunk, position, turn))
        self.given += 1

    @staticmethod
    def _serve(importer: Importer, inbox: queue.SimpleQueue) -> None:
        try:
            while (item := inbox.get()) is not None:
                importer._write_in_turn(*item)
        finally:
            connection.close()  # this thread's own

    def close(self) -> None:
        """Wait for the chunks given (those after a failed one fail at once, unwritten), then end the threads."""
        for inbox in self.inboxes:
            inbox.put(None)
        for thread in self.threads:
            thread.join()


class Importer:
    def __init__(self, job: ImportJob, *, progress: Callable[[ImportJob], None] | None = None):
        self.job = job
        self.progress = progress
        self.chunk_rows = settings.SMS_IMPORT_CHUNK_ROWS
        self.processes = settings.SMS_IMPORT_PARSE_PROCESSES
        self.write_connections = settings.SMS_IMPORT_WRITE_CONNECTIONS
        self.started: datetime = timezone.now()
        self.evidence = f"CSV import job {job.pk}, file {job.original_name or Path(job.file).name!r}"
        self.source = ConsentSource(
            channel=ConsentEvent.Channel.IMPORT,
            actor_id=job.created_by_id,
            actor_description=f"import job {job.pk}",
            evidence=self.evidence,
        )

    # --- preview -------------------------------------------------------------
    def preview(self, *, rows: int = 20) -> Preview:
        """The first ``rows`` data rows checked exactly as the import will check them; writes nothing."""
        _, header, data = read_head(Path(self.job.file), rows=rows)
        columns = map_columns(header, consent_column=self.job.consent_column, mapping=self.job.mapping)
        rules = self.rules(columns)
        out = []
        for line, values in data:
            chunk = Chunk()
            rules.parse(line, values, chunk)
            if chunk.errors:
                out.append(PreviewRow(line, values, problem=chunk.errors[0].reason))
                continue
            (parsed,) = chunk.rows.values()
            out.append(
                PreviewRow(
                    line,
                    values,
                    parsed.phone,
                    parsed.first_name,
                    parsed.last_name,
                    parsed.consent,
                    parsed.attributes,
                )
            )
        opting_in = {r.phone for r in out if r.consent == ConsentStatus.OPTED_IN}
        if opting_in:
            kept = set(
                Recipient.objects.filter(phone__in=opting_in, consent_status=ConsentStatus.OPTED_OUT).values_list(
                    "phone", flat=True
                )
            )
            # Suppressions hold only a hash of the number.
            by_key = {suppression_key(phone): phone for phone in opting_in}
            hashes = Suppression.objects.filter(phone_hash__in=list(by_key)).values_list("phone_hash", flat=True)
            kept |= {by_key[h] for h in hashes}
            for r in out:
                if r.phone in kept and r.consent == ConsentStatus.OPTED_IN:
                    r.warning = KEPT_OPTED_OUT
        return Preview(header, columns, out)

    def rules(self, columns: Columns) -> RowRules:
        job = self.job
        return RowRules(
            columns=columns,
            region=(job.region or settings.SMS_DEFAULT_REGION).upper(),
            allowed=frozenset(settings.SMS_IMPORT_ALLOWED_REGIONS),
            default_proof=job.consent_evidence.strip(),
            default_when=job.consent_at.strip(),
        )

    # --- reading -------------------------------------------------------------
    def run(self) -> ImportJob:
        path = Path(self.job.file)
        job = self.job
        if not path.exists():
            raise ImportFailed("The uploaded file is missing.")
        job.total_bytes = path.stat().st_size
        if job.total_bytes == 0:
            raise ImportFailed("The file is empty.")
        job.encoding, job.notes = sniff_encoding(path)
        self._save("total_bytes", "encoding", "notes")
        csv.field_size_limit(MAX_FIELD_BYTES)
        with open(path, "rb") as binary:
            text = io.TextIOWrapper(binary, encoding=job.encoding, newline="")
            reader = csv.reader(text)
            try:
                header = next(reader, None)
                while header is not None and not any(h.strip() for h in header):
                    header = next(reader, None)
                if header is None:
                    raise ImportFailed("The file is empty.")
                check_column_count(header)
                columns = map_columns(header, consent_column=job.consent_column, mapping=job.mapping)
            except csv.Error as exc:
                raise ImportFailed(self._unreadable(reader, exc)) from None
            # A thread reads and validates the next chunks while this one waits for the database
            # (the wait releases the GIL). Only this thread touches the database connection.
            pool = self._parsing_pool(job.total_bytes)
            chunks: queue.Queue = queue.Queue(maxsize=1)
            stop = threading.Event()
            reading = threading.Thread(
                target=self._read_ahead,
                args=(reader, self.rules(columns), binary, chunks, stop, pool),
                name=f"import-reader-{job.pk}",
                daemon=True,
            )
            reading.start()
            writers = self._writers(job.total_bytes)
            data_rows = 0
            in_flight: deque[_Turn] = deque()
            previous: _Turn | None = None
            try:
                while (item := chunks.get()) is not _END:
                    if isinstance(item, BaseException):
                        self._finish(in_flight, 0)  # the chunks before a read failure are kept
                        raise item
                    chunk, position = item
                    data_rows += chunk.count
                    previous = turn = _Turn(previous)
                    in_flight.append(turn)
                    if writers is None:
                        self._write_in_turn(chunk, position, turn)
                    else:
                        writers.give(chunk, position, turn)
                    # At most one chunk per connection ahead of the oldest one not committed.
                    self._finish(in_flight, len(writers) if writers else 0)
                self._finish(in_flight, 0)
            finally:
                stop.set()
                reading.join()
                if writers is not None:
                    writers.close()
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
        if data_rows == 0:
            raise ImportFailed("The file has a header row but no data rows.")
        job.processed_bytes = job.total_bytes
        return job

    def _finish(self, in_flight: deque[_Turn], keep: int) -> None:
        """Wait for the oldest chunks, in file order, until ``keep`` are left (and those already
        done): raise the first failure, report progress after each."""
        while in_flight and (len(in_flight) > keep or in_flight[0].done.done()):
            in_flight.popleft().done.result()
            if self.progress:
                self.progress(self.job)

    def _writers(self, size: int) -> _Writers | None:
        """Connections that write a big file's chunks in turns; None: this thread writes them all."""
        if self.write_connections < 2 or size < WRITERS_MIN_BYTES or connection.in_atomic_block:
            return None
        logger.info("import job %s: writing on %d connections", self.job.pk, self.write_connections)
        return _Writers(self, self.write_connections)

    def _parsing_pool(self, size: int) -> ProcessPoolExecutor | None:
        """Processes that parse a big file's chunks: phonenumbers is pure Python and most of an
        import's CPU, and in this process it would hold the GIL the database thread waits for.

        Forked, before the reading thread starts, so they start at once with Django already set up;
        they only parse and encode (no database, no Redis). None for small files, in a daemonic
        process (which cannot have children), or with SMS_IMPORT_PARSE_PROCESSES=0."""
        if self.processes < 1 or size < POOL_MIN_BYTES or multiprocessing.current_process().daemon:
            return None
        gc.freeze()  # the children's collections then skip the inherited objects (and leave their pages shared)
        try:
            pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"))
            pool.submit(int).result()  # forks every process now, from this thread alone
        finally:
            gc.unfreeze()
        logger.info("import job %s: parsing in %d processes", self.job.pk, self.processes)
        return pool

    def _read_ahead(
        self,
        reader,
        rules: RowRules,
        binary,
        out: queue.Queue,
        stop: threading.Event,
        pool: ProcessPoolExecutor | None,
    ) -> None:
        """Put (chunk, file position) items on ``out``, then _END or the exception that ended reading."""
        try:
            for chunk, position in self._parsed(reader, rules, binary, pool):
                if not _hand_over(out, stop, (chunk, position)):
                    return
            item: object = _END
        except BaseException as exc:  # raised again in the importing thread
            item = exc
        _hand_over(out, stop, item)

    def _parsed(self, reader, rules: RowRules, binary, pool: ProcessPoolExecutor | None) -> Iterator[tuple[Chunk, int]]:
        """(parsed chunk, file position after it), in file order (later rows win), then ImportFailed
        if the CSV turned unreadable: the chunks before it are still written."""
        pending: deque[tuple[Future[Chunk], int]] = deque()
        lines = self._lines(reader, binary)
        failure = None
        while True:
            try:
                batch, position = next(lines)
            except StopIteration:
                break
            except csv.Error as exc:
                failure = ImportFailed(self._unreadable(reader, exc))
                break
            if pool is None:
                yield parse_chunk(rules, batch), position
                continue
            pending.append((pool.submit(parse_chunk, rules, batch), position))
            if len(pending) >= self.processes:  # a bounded read-ahead: memory stays flat
                future, at = pending.popleft()
                yield future.result(), at
        while pending:
            future, at = pending.popleft()
            yield future.result(), at
        if failure is not None:
            raise failure

    @staticmethod
    def _unreadable(reader, exc: csv.Error) -> str:
        return f"Line {reader.line_num}: the CSV cannot be read ({exc}). Rows before it were imported."

    def _lines(self, reader, binary) -> Iterator[tuple[list[tuple[int, list[str]]], int]]:
        """Chunks of (line number, values), blank lines skipped, with the file position after each."""
        batch: list[tuple[int, list[str]]] = []
        for values in reader:
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # blank line
            batch.append((reader.line_num, values))
            if len(batch) >= self.chunk_rows:
                yield batch, binary.tell()
                batch = []
        if batch:
            yield batch, binary.tell()

    # --- writing -------------------------------------------------------------
    def _write_in_turn(self, chunk: Chunk, position: int, turn: _Turn) -> None:
        """Write ``chunk`` on this thread's connection in its turn; ``turn.done`` tells how it ended."""
        previous = turn.previous
        try:
            if previous is not None:
                previous.locked.wait()
                if previous.done.done():
                    previous.done.result()  # it failed: write nothing
            self._write(chunk, position, turn)
        except BaseException as exc:
            turn.locked.set()
            turn.done.set_exception(exc)
        else:
            turn.done.set_result(None)
        finally:
            turn.previous = None  # no chain of every chunk's turn through a long file

    def _write(self, chunk: Chunk, position: int, turn: _Turn) -> None:
        """Write ``chunk`` and its row report; ``position``: the file's byte offset after it."""
        job = self.job
        if chunk.prepared is None:
            chunk.encode()
        assert chunk.prepared is not None
        with transaction.atomic():
            result = recipients_upsert(
                chunk.prepared,
                source=self.source,
                recipient_list_id=job.recipient_list_id,
                fresh_since=self.started,
            )
            turn.locked.set()  # the next chunk may upsert now, on another connection
            if turn.previous is not None:
                turn.previous.done.result()  # committed, or this one fails too (rolled back)
            errors = chunk.errors_json
            if result.kept_opted_out:
                kept = [RowError(row.row_number, row.phone, KEPT_OPTED_OUT) for row in result.kept_opted_out]
                errors = _errors_json(chunk.errors + kept)
            # A number created earlier in this file (another chunk) is a duplicate, not an update.
            in_file = sum(1 for r in result.rows if not r.inserted and r.fresh)
            job.processed_rows += chunk.count
            job.created_count += result.created
            job.duplicate_count += chunk.duplicates + in_file
            job.updated_count += result.updated - in_file
            job.rejected_count += len(chunk.errors)
            job.consent_changes += result.consent_changes
            with connection.cursor() as cursor:
                cursor.execute(
                    _CHUNK_DONE,
                    {
                        "job": job.pk,
                        "errors": errors,
                        "processed_rows": job.processed_rows,
                        "processed_bytes": position,
                        "created_count": job.created_count,
                        "duplicate_count": job.duplicate_count,
                        "updated_count": job.updated_count,
                        "rejected_count": job.rejected_count,
                        "consent_changes": job.consent_changes,
                    },
                )
        job.processed_bytes = position  # committed: a failed job keeps the last committed position

    def _save(self, *fields: str) -> None:
        ImportJob.objects.filter(pk=self.job.pk).update(**{f: getattr(self.job, f) for f in fields})
