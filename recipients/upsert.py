"""The one recipient upsert. CSV imports (a chunk at a time), the API (bulk, create, update)
and the Django admin all write recipients through ``recipients_upsert``; the callers parse and
validate their input (numbers in E.164, lengths) and turn the outcome into their own report.

Set-based, whatever the number of rows: one statement upserts the recipients
(``json_to_recordset`` → ``INSERT … ON CONFLICT (phone) DO UPDATE``), adds them to a list and
records the stated consent of the new ones; then one conditional ``UPDATE`` per kind of consent
move and one ``INSERT`` of their ConsentEvents. Rows are written in phone order, so two
upserts that share numbers lock them in the same order and cannot deadlock.

Fields, for a number that exists already:

- merge (the default; imports and bulk upserts): a non-empty name replaces the stored one, an
  empty one keeps it; attributes are merged into the stored ones (``stored || new``);
- ``replace=True`` (editing one recipient): names and attributes are set as given.

Consent (docs/recipients.md), when a row states one (``opted_in`` / ``opted_out``):

- a new number starts with the stated status, and a ConsentEvent ``pending -> stated``;
- an existing number moves to the stated status, with a ConsentEvent, unless it is there already;
- **an upsert never undoes an opt-out**: a row that says ``opted_in`` for someone who opted out
  leaves them opted out (its other fields are still written) and comes back in
  ``UpsertResult.kept_opted_out``; only the person can opt back in, by texting START;
- a row without consent keeps the stored status (new numbers are ``pending``);
- a row stating ``opted_in`` must carry its evidence (``RecipientRow.evidence``: where, when, the
  text or URL of the consent); callers refuse such rows without it, and the upsert raises if one slips by;
- a new number on the suppression list (``Suppression``: it opted out, then its recipient was
  deleted) is created ``opted_out`` whatever the row says, with an event citing the suppression.

Every ConsentEvent carries the ``ConsentSource`` (channel, actor, evidence + ", row N"), and
opt-outs are announced to the send path (``messaging.optouts``) once the transaction commits.
The rows whose status moved go out once per call in ``recipients.signals.consents_changed``
(the events app turns them into ``recipient.opted_in`` / ``.opted_out`` webhooks, set-based).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from messaging.optouts import announce_opt_outs
from recipients.models import ConsentStatus, Recipient, Suppression, suppression_key
from recipients.signals import consents_changed

KEPT_OPTED_OUT = (
    "kept opted out: an opt-out is undone only by the person texting START, not by an import or the API; "
    "other fields were updated"
)


@dataclass(slots=True)
class RecipientRow:
    """One recipient to write. ``phone`` is E.164; ``row_number`` is the caller's, for evidence and reports."""

    row_number: int
    phone: str
    first_name: str = ""
    last_name: str = ""
    attributes: dict = field(default_factory=dict)
    consent: str | None = None  # opted_in / opted_out as stated by the source, or None: keep
    evidence: str = ""  # this row's consent evidence (required for opted_in: source, when, text or URL)

    def __reduce__(self) -> tuple:
        # The import's parsing processes send rows back pickled: by position, as a tuple, is several
        # times cheaper both ways than the generated __getstate__ of a slots dataclass.
        fields = (self.row_number, self.phone, self.first_name, self.last_name, self.attributes, self.consent)
        return (RecipientRow, (*fields, self.evidence))


@dataclass(frozen=True, slots=True)
class ConsentSource:
    """Who or what states the rows' consent, as recorded on each ConsentEvent."""

    channel: str
    actor_id: int | None = None
    actor_description: str = ""
    evidence: str = ""  # each event's evidence is this + ", row <row_number>"


class ConsentChange(NamedTuple):
    """One recipient's status moved by an upsert (``from_status`` is ``pending`` for a new number)."""

    recipient_id: int
    phone: str
    from_status: str
    to_status: str


class Upserted(NamedTuple):
    id: int
    phone: str
    consent_status: str  # before this upsert's consent moves (for a new number: its first status)
    inserted: bool
    fresh: bool  # created at or after ``fresh_since`` (e.g. earlier in the same import)


@dataclass
class UpsertResult:
    rows: list[Upserted] = field(default_factory=list)  # one per input row, in no particular order
    consent_changes: int = 0  # ConsentEvents written
    changes: list[ConsentChange] = field(default_factory=list)  # one per ConsentEvent written
    kept_opted_out: list[RecipientRow] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(1 for r in self.rows if r.inserted)

    @property
    def updated(self) -> int:
        return len(self.rows) - self.created


_UPSERT = """
WITH suppressed AS MATERIALIZED (
    -- With %(keys)s (the rows' suppression hashes): a number on the suppression list stops the
    -- whole statement (nothing written, no row returned), and the caller runs it again with the
    -- suppressions it has locked (x), keys NULL. Saves a round trip per call in the usual case.
    SELECT 1 FROM recipients_suppression
    WHERE phone_hash IN (SELECT jsonb_array_elements_text(%(keys)s::jsonb))
    LIMIT 1
), rows AS (
    SELECT * FROM json_to_recordset(%(rows)s::json)
        AS t(p text, f text, l text, a jsonb, c text, n bigint, e text, x text)
    WHERE NOT EXISTS (SELECT 1 FROM suppressed)
), src AS MATERIALIZED (
    -- The evidence every event of this call shares is added here rather than repeated in the
    -- json: "<source evidence>, row N[: <the row's own evidence>]", or x (a suppression's) in full.
    SELECT p, f, l, a, COALESCE(c, %(pending)s) AS s, c, n,
           COALESCE(x, %(evidence)s || ', row ' || n || CASE WHEN e <> '' THEN ': ' || e ELSE '' END) AS e
    FROM rows
), up AS (
INSERT INTO recipients_recipient
    (phone, first_name, last_name, attributes, consent_status, opted_in_at, opted_out_at, created_at, updated_at)
SELECT p, f, l, a, s,
       CASE WHEN s = 'opted_in' THEN %(now)s END, CASE WHEN s = 'opted_out' THEN %(now)s END,
       %(now)s, %(now)s
FROM src
ORDER BY p COLLATE "C"  -- the lock order only needs to be one order; "C" sorts by bytes, cheaply
ON CONFLICT (phone) DO UPDATE SET
    first_name = CASE WHEN %(replace)s THEN EXCLUDED.first_name
                      ELSE COALESCE(NULLIF(EXCLUDED.first_name, ''), recipients_recipient.first_name) END,
    last_name = CASE WHEN %(replace)s THEN EXCLUDED.last_name
                     ELSE COALESCE(NULLIF(EXCLUDED.last_name, ''), recipients_recipient.last_name) END,
    attributes = CASE WHEN %(replace)s THEN EXCLUDED.attributes
                      ELSE recipients_recipient.attributes || EXCLUDED.attributes END,
    updated_at = EXCLUDED.updated_at
RETURNING id, phone, consent_status, (xmax = 0) AS inserted, created_at >= %(fresh_since)s AS fresh
), new_members AS (
    -- A recipient created by this statement is in no list yet: a plain insert, without the
    -- speculative insertion and index probe of ON CONFLICT (most rows of a first import).
    INSERT INTO recipients_membership (recipient_list_id, recipient_id, added_at)
    SELECT %(list)s::bigint, id, %(now)s FROM up WHERE up.inserted AND %(list)s::bigint IS NOT NULL
), members AS (
    INSERT INTO recipients_membership (recipient_list_id, recipient_id, added_at)
    SELECT %(list)s::bigint, id, %(now)s FROM up WHERE NOT up.inserted AND %(list)s::bigint IS NOT NULL
    ON CONFLICT (recipient_list_id, recipient_id) DO NOTHING
), events AS (
    INSERT INTO recipients_consentevent (recipient_id, from_status, to_status, channel, actor_id,
        actor_description, evidence, created_at)
    SELECT up.id, %(pending)s, src.c, %(channel)s, %(actor)s, %(actor_description)s, src.e, %(now)s
    FROM up JOIN src ON src.p = up.phone
    WHERE up.inserted AND src.c IS NOT NULL
)
SELECT id, phone, consent_status, inserted, fresh FROM up
"""


@dataclass(frozen=True, slots=True)
class PreparedRows:
    """Rows encoded for ``recipients_upsert`` without the database, so a caller (the CSV import)
    can encode the next batch in another thread while this one is written. ``rows`` must not
    change after."""

    rows: Sequence[RecipientRow]
    keys_json: str  # the rows' suppression hashes
    payload: str  # json_to_recordset input for rows none of which is suppressed


def recipients_upsert_prepare(*, rows: Sequence[RecipientRow]) -> PreparedRows:
    """Encode ``rows`` for ``recipients_upsert`` (which checks them). No database."""
    # Suppressions hold only a hash of the number.
    keys = [suppression_key(r.phone) for r in rows]
    # One json parameter, expanded server-side: psycopg quotes a list of Python strings into a
    # text[] literal in Python, which cost more than the statement itself.
    payload = json.dumps(
        [
            {
                "p": r.phone,
                "f": r.first_name,
                "l": r.last_name,
                "a": r.attributes,
                "c": r.consent,
                "n": r.row_number,
                "e": r.evidence,
            }
            for r in rows
        ]
    )
    return PreparedRows(rows=rows, keys_json=json.dumps(keys), payload=payload)


def recipients_upsert(
    rows: Sequence[RecipientRow] | PreparedRows,
    *,
    source: ConsentSource | None = None,
    recipient_list_id: int | None = None,
    replace: bool = False,
    now: datetime | None = None,
    fresh_since: datetime | None = None,
) -> UpsertResult:
    """Create or update ``rows`` by phone number, add them to the list, apply their stated consent.

    ``rows`` must have distinct numbers (callers merge or reject repeats: their rule); they may
    come already checked and encoded by ``recipients_upsert_prepare``. ``source`` is required
    when a row states consent. One transaction; the caller's, if it has one.
    """
    prepared = rows if isinstance(rows, PreparedRows) else None
    rows = rows.rows if isinstance(rows, PreparedRows) else rows
    if not rows:
        return UpsertResult()
    if len({r.phone for r in rows}) != len(rows):
        raise ValueError("recipients_upsert: the same number twice in one call")
    if source is None:
        if any(r.consent is not None for r in rows):
            raise ValueError("recipients_upsert: rows state consent, so say who states it (source)")
        source = ConsentSource(channel="")
    if any(r.consent == ConsentStatus.OPTED_IN and not r.evidence.strip() for r in rows):
        raise ValueError("recipients_upsert: an opted_in row needs its evidence (callers reject such rows)")
    prepared = prepared or recipients_upsert_prepare(rows=rows)
    now = now or timezone.now()
    pending = ConsentStatus.PENDING
    # No savepoint inside a caller's transaction: a failure here fails the caller's (none goes on
    # after one), and a savepoint costs two round trips per call.
    with transaction.atomic(savepoint=False):
        params = {
            "rows": prepared.payload,
            "keys": prepared.keys_json,
            "list": recipient_list_id,
            "replace": replace,
            "now": now,
            "fresh_since": fresh_since or now,
            "pending": pending,
            "channel": source.channel,
            "actor": source.actor_id,
            "actor_description": source.actor_description,
            "evidence": source.evidence,
        }
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, params)
            written = cursor.fetchall()
        suppressed: dict[str, Suppression] = {}
        if not written:  # every row returns one unless a number is on the suppression list
            # Numbers whose recipient was deleted after an opt-out come back opted out (if new here).
            # The hashes go as one json parameter too (2,000 placeholders cost more than the lookup).
            keys = {suppression_key(r.phone): r.phone for r in rows}  # hash -> phone: rare, not kept
            hashes = RawSQL("SELECT jsonb_array_elements_text(%s::jsonb)", [prepared.keys_json])
            suppressed = {
                keys[s.phone_hash]: s for s in Suppression.objects.select_for_update().filter(phone_hash__in=hashes)
            }
            payload = json.dumps(
                [
                    {
                        "p": r.phone,
                        "f": r.first_name,
                        "l": r.last_name,
                        "a": r.attributes,
                        "c": ConsentStatus.OPTED_OUT if r.phone in suppressed else r.consent,
                        "n": r.row_number,
                        "e": r.evidence,
                        "x": suppression_evidence(suppressed[r.phone]) if r.phone in suppressed else None,
                    }
                    for r in rows
                ]
            )
            with connection.cursor() as cursor:
                cursor.execute(_UPSERT, {**params, "rows": payload, "keys": None})
                written = cursor.fetchall()
        result = UpsertResult(rows=[Upserted._make(r) for r in written])
        restored = [u.phone for u in result.rows if u.inserted and u.phone in suppressed]
        if restored:
            # The new recipient carries the opt-out again (with its event); the suppression is spent.
            Suppression.objects.filter(phone_hash__in=[suppression_key(p) for p in restored]).delete()
        _apply_consent(rows, result, source, now, restored=set(restored))
        if result.changes:
            consents_changed.send(sender=Recipient, changes=result.changes, channel=source.channel)
    return result


def _evidence(source: ConsentSource, row: RecipientRow) -> str:
    text = f"{source.evidence}, row {row.row_number}"
    return f"{text}: {row.evidence}" if row.evidence else text


def suppression_evidence(suppression: Suppression) -> str:
    return (
        f"number on the suppression list since {suppression.created_at:%Y-%m-%d %H:%M} UTC "
        f"({suppression.reason or 'opted out, then deleted'}): {suppression.evidence}"
    )[:2000]


def _apply_consent(
    rows: Sequence[RecipientRow], result: UpsertResult, source: ConsentSource, now: datetime, restored: set[str]
) -> None:
    """Stated consent of existing recipients (new ones got theirs in the upsert). Never undoes an opt-out."""
    by_phone = {r.phone: r for r in rows}
    moves: dict[tuple[str, str], list[int]] = {}
    for rid, phone, current, inserted, _ in result.rows:
        row = by_phone[phone]
        if phone in restored:
            result.consent_changes += 1  # created opted out from the suppression list, its event written
            result.changes.append(ConsentChange(rid, phone, ConsentStatus.PENDING, ConsentStatus.OPTED_OUT))
            if row.consent == ConsentStatus.OPTED_IN:
                result.kept_opted_out.append(row)
            continue
        if row.consent is None:
            continue
        if inserted:
            result.consent_changes += 1  # its event was written by the upsert
            result.changes.append(ConsentChange(rid, phone, ConsentStatus.PENDING, row.consent))
        elif current == row.consent:
            continue
        elif row.consent == ConsentStatus.OPTED_IN and current == ConsentStatus.OPTED_OUT:
            result.kept_opted_out.append(row)
        else:
            moves.setdefault((current, row.consent), []).append(rid)
    if not moves:
        return
    events: list[dict] = []
    opted_out: list[str] = []
    for (current, target), ids in moves.items():
        stamp = "opted_in_at" if target == ConsentStatus.OPTED_IN else "opted_out_at"
        with connection.cursor() as cursor:
            # Conditional on the status we saw: belt and braces, the upsert holds these rows' locks.
            cursor.execute(
                f"UPDATE recipients_recipient SET consent_status = %s, {stamp} = %s, updated_at = %s "
                "WHERE id = ANY(%s) AND consent_status = %s RETURNING id, phone",
                [target, now, now, ids, current],
            )
            changed = cursor.fetchall()
        events.extend(
            {"r": rid, "f": current, "t": target, "e": _evidence(source, by_phone[phone])} for rid, phone in changed
        )
        result.changes.extend(ConsentChange(rid, phone, current, target) for rid, phone in changed)
        if target == ConsentStatus.OPTED_OUT:
            opted_out.extend(phone for _, phone in changed)
    if events:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO recipients_consentevent (recipient_id, from_status, to_status, channel, actor_id, "
                "actor_description, evidence, created_at) "
                "SELECT r, f, t, %s, %s, %s, e, %s FROM json_to_recordset(%s::json) AS x(r bigint, f text, t text, e text)",
                [source.channel, source.actor_id, source.actor_description, now, json.dumps(events)],
            )
        result.consent_changes += len(events)
    if opted_out:
        transaction.on_commit(lambda: announce_opt_outs(opted_out))
