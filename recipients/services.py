"""Writes for recipients and consent. Every consent change leaves a ConsentEvent.

Recipients are written through the one upsert in ``recipients/upsert.py`` (imports, the API's
bulk upsert, create and update, the admin); the wrappers here add what a single write needs
(lists, "already exists", the audit event).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import phonenumbers
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuthorizedSender
from accounts.permissions import check_role
from accounts.services import audit_record
from messaging.keywords import Keyword, classify
from messaging.models import Message
from messaging.optouts import announce_opt_out, withdraw_opt_out
from messaging.services import message_enqueue
from recipients import tasks
from recipients.importer import MAX_VALUE_CHARS, Importer, ImportFailed, Preview, is_date, mapping_problems, read_head
from recipients.inbound import route_inbound
from recipients.models import (
    ConsentEvent,
    ConsentStatus,
    ImportJob,
    InboundMessage,
    Membership,
    Recipient,
    RecipientList,
    Suppression,
    suppression_key,
)
from recipients.selectors import recipient_lists_visible_to
from recipients.signals import consent_changed, import_finished
from recipients.uploads import copy_capped
from recipients.upsert import ConsentSource, RecipientRow, UpsertResult, recipients_upsert, suppression_evidence
from smsportal.phone import InvalidNumber, normalize

if TYPE_CHECKING:
    from django.core.files import File

    from accounts.models import User
    from providers.models import ProviderEvent
    from providers.status import InboundSMS

logger = logging.getLogger(__name__)


class RecipientConflict(Exception):
    """The recipient's state does not allow this (the API answers 409)."""

    code = "conflict"


class ConsentRevoked(RecipientConflict):
    """An opt-out that only the person (or an admin override with a reason) may undo (API: 409 ``consent_revoked``)."""

    code = "consent_revoked"


class ConfirmationRefused(ValidationError, RecipientConflict):  # type: ignore[misc]  # both name a `code`: a str here
    """A double opt-in request to someone who is not pending (the API answers 409 with ``code``).

    ``opted_out``: they said STOP, so we never ask them again; ``already_opted_in``: nothing to confirm.
    A ValidationError too, so forms show it as a message.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code)
        self.code = code


CONSENT_REVOKED = (
    "This person opted out. Only they can opt back in, by texting START (or YES) from their own number; "
    "an admin may override with a written reason."
)
OVERRIDE_MARK = "admin override"  # the actor_description of an override's ConsentEvent


def _consent_change(
    *,
    recipient: Recipient,
    status: str,
    channel: str,
    actor: User | None,
    actor_description: str,
    evidence: str,
    allow: Callable[[Recipient], None],
    action: str = "",
) -> bool:
    """The one writer of a single recipient's consent: lock, check (``allow`` raises), update, record."""
    with transaction.atomic():
        locked = Recipient.objects.select_for_update().get(pk=recipient.pk)
        if locked.consent_status == status:
            return False
        allow(locked)
        now = timezone.now()
        fields = {"consent_status": status, "updated_at": now}
        if status == ConsentStatus.OPTED_IN:
            fields["opted_in_at"] = now
        elif status == ConsentStatus.OPTED_OUT:
            fields["opted_out_at"] = now
        Recipient.objects.filter(pk=locked.pk).update(**fields)
        ConsentEvent.objects.create(
            recipient=locked,
            from_status=locked.consent_status,
            to_status=status,
            channel=channel,
            actor=actor,
            actor_description=actor_description,
            evidence=evidence,
        )
        consent_changed.send(
            sender=Recipient,
            recipient_id=locked.pk,
            phone=locked.phone,
            from_status=locked.consent_status,
            to_status=status,
            channel=channel,
        )
        for key, value in fields.items():
            setattr(recipient, key, value)
        audit_record(
            actor=actor,
            # A person is named by the audit log's own rule; the channel only when nobody acted.
            actor_description=actor_description or ("" if actor is not None else channel),
            action=action or f"consent.{status}",
            target=locked,
            detail=f"{locked.consent_status} -> {status} via {channel}" + (f": {evidence[:200]}" if action else ""),
        )
        phone = locked.phone
        if status == ConsentStatus.OPTED_OUT:
            transaction.on_commit(lambda: announce_opt_out(phone))
        elif locked.consent_status == ConsentStatus.OPTED_OUT:
            transaction.on_commit(lambda: withdraw_opt_out(phone))
    return True


def recipient_set_consent(
    *,
    recipient: Recipient,
    status: str,
    channel: str,
    actor: User | None = None,
    actor_description: str = "",
    evidence: str = "",
    from_number: str = "",
) -> bool:
    """Change consent under a row lock and record it. Returns False if nothing changed.

    The rules (docs/recipients.md, "Who may change consent"):

    - anyone may record an opt-out (staff, API, import, provider, the person's STOP);
    - an opt-in needs evidence (``ValidationError`` on ``evidence`` otherwise);
    - ``opted_out -> opted_in`` only by the person's own message: ``channel="sms"`` and
      ``from_number`` (E.164) equal to the recipient's number; anything else raises
      ``ConsentRevoked`` and changes nothing (``recipient_consent_override`` is the admin's way).
    """

    def allow(locked: Recipient) -> None:
        if status != ConsentStatus.OPTED_IN:
            return
        if locked.consent_status == ConsentStatus.OPTED_OUT and not (
            channel == ConsentEvent.Channel.SMS and from_number and from_number == locked.phone
        ):
            raise ConsentRevoked(CONSENT_REVOKED)
        if not evidence.strip():
            raise ValidationError({"evidence": "An opt-in needs evidence: where, when and how the person consented."})

    return _consent_change(
        recipient=recipient,
        status=status,
        channel=channel,
        actor=actor,
        actor_description=actor_description,
        evidence=evidence,
        allow=allow,
    )


def recipient_opt_out(
    *, recipient: Recipient, channel: str, evidence: str, actor: User | None = None, actor_description: str = ""
) -> bool:
    return recipient_set_consent(
        recipient=recipient,
        status=ConsentStatus.OPTED_OUT,
        channel=channel,
        actor=actor,
        actor_description=actor_description,
        evidence=evidence,
    )


def recipient_consent_override(*, recipient: Recipient, actor: User, reason: str) -> bool:
    """Opt an opted-out person back in against their recorded STOP: admins only, with a written reason.

    ``PermissionDenied`` for anyone below the admin role, ``ValidationError`` for an empty reason,
    ``RecipientConflict`` if the person is not opted out (an override only undoes an opt-out).
    Recorded as a ConsentEvent (channel admin, ``actor_description`` "admin override", the reason as
    evidence) and in the audit log as ``consent.override``; the recipient's page shows it.
    """
    check_role(actor, "admin")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "An override needs a written reason."})

    def allow(locked: Recipient) -> None:
        if locked.consent_status != ConsentStatus.OPTED_OUT:
            raise RecipientConflict("Only an opted-out person's consent can be overridden.")

    changed = _consent_change(
        recipient=recipient,
        status=ConsentStatus.OPTED_IN,
        channel=ConsentEvent.Channel.ADMIN,
        actor=actor,
        actor_description=OVERRIDE_MARK,
        evidence=reason[:2000],
        allow=allow,
        action="consent.override",
    )
    if not changed:
        raise RecipientConflict("Only an opted-out person's consent can be overridden.")
    return changed


# --- Recipients ------------------------------------------------------------


def _e164(phone: str) -> str:
    try:
        return normalize(phone)
    except InvalidNumber as exc:
        raise ValidationError({"phone": f"{phone!r} is {exc}."}) from None


def recipient_set_lists(*, recipient: Recipient, lists: Iterable[RecipientList], actor=None) -> None:
    """Make ``lists`` exactly the lists the recipient is in, among those ``actor`` sees (all when None).

    Memberships of lists the actor cannot see are kept: another sender's list is theirs to change.
    """
    wanted = sorted({lst.pk for lst in lists})
    leaving = Membership.objects.filter(recipient=recipient).exclude(recipient_list_id__in=wanted)
    if actor is not None:
        leaving = leaving.filter(recipient_list__in=recipient_lists_visible_to(user=actor))
    leaving.delete()
    if wanted:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO recipients_membership (recipient_list_id, recipient_id, added_at) "
                "SELECT unnest(%s::bigint[]), %s, %s ON CONFLICT (recipient_list_id, recipient_id) DO NOTHING",
                [wanted, recipient.pk, timezone.now()],
            )


def recipient_create(
    *,
    phone: str,
    first_name: str = "",
    last_name: str = "",
    attributes: dict | None = None,
    lists: Iterable[RecipientList] = (),
    actor=None,
    channel: str = ConsentEvent.Channel.API,
) -> Recipient:
    """A new recipient, ``pending``: being added is not consent (``opted_out`` if the number is on the
    suppression list). ValidationError for an invalid number or one that is a recipient already
    (also when another request adds it at the same moment)."""
    row = RecipientRow(0, _e164(phone), first_name, last_name, dict(attributes or {}))
    source = ConsentSource(
        channel=channel, actor_id=getattr(actor, "pk", None), evidence=f"recipient added ({channel})"
    )
    with transaction.atomic():
        (upserted,) = recipients_upsert([row], source=source, replace=True).rows
        if not upserted.inserted:
            raise ValidationError({"phone": "A recipient with this number already exists."})  # rolls the merge back
        recipient = Recipient.objects.get(pk=upserted.id)
        recipient_set_lists(recipient=recipient, lists=lists)
        audit_record(actor=actor, action="recipient.create", target=recipient)
    return recipient


def recipient_update(
    *,
    recipient: Recipient,
    actor=None,
    phone: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    attributes: dict | None = None,
    lists: Iterable[RecipientList] | None = None,
) -> Recipient:
    """Set the fields given (None: keep). Consent is not edited here (``recipient_set_consent``).

    The number cannot change: consent belongs to a number, so a new number is a new recipient
    (moving an opted-in record to another number would opt that number in silently, and moving
    an opted-out one would forget the opt-out).
    """
    with transaction.atomic():
        current = Recipient.objects.select_for_update().get(pk=recipient.pk)
        if phone is not None and _e164(phone) != current.phone:
            raise ValidationError(
                {
                    "phone": "A recipient's number cannot be changed (consent belongs to the number); add a new recipient."
                }
            )
        given = {"first_name": first_name, "last_name": last_name, "attributes": attributes}
        row = RecipientRow(
            0,
            current.phone,
            current.first_name if first_name is None else first_name,
            current.last_name if last_name is None else last_name,
            dict(current.attributes or {}) if attributes is None else dict(attributes),
        )
        recipients_upsert([row], replace=True)
        if lists is not None:
            recipient_set_lists(recipient=current, lists=lists, actor=actor)
        changed = [name for name, value in given.items() if value is not None] + (
            ["lists"] if lists is not None else []
        )
        audit_record(actor=actor, action="recipient.update", target=current, detail=", ".join(changed))
    recipient.refresh_from_db()
    return recipient


def recipient_delete(*, recipient: Recipient, actor=None) -> None:
    """Delete someone. An opted-out person's number goes on the suppression list first, so the
    opt-out outlives the record: whoever adds the number again gets it opted out. Checked on the
    locked row, so a STOP arriving meanwhile is not lost."""
    with transaction.atomic():
        current = Recipient.objects.select_for_update().get(pk=recipient.pk)
        detail = ""
        if current.consent_status == ConsentStatus.OPTED_OUT:
            last = (
                ConsentEvent.objects.filter(recipient=current, to_status=ConsentStatus.OPTED_OUT)
                .order_by("-created_at", "-id")
                .first()
            )
            evidence = f"{last.get_channel_display()}: {last.evidence}" if last else "opted out"
            Suppression.objects.update_or_create(
                phone_hash=suppression_key(current.phone),
                defaults={"reason": "opted out, then deleted", "evidence": evidence[:2000]},
            )
            detail = "opted out: number added to the suppression list"
        # The consent history goes with the record: the audit entry says how much of it there was.
        history = ConsentEvent.objects.filter(recipient=current).count()
        detail = "; ".join(filter(None, [detail, f"{history} consent event(s) deleted with it"]))
        audit_record(actor=actor, action="recipient.delete", target=current, detail=detail)
        current.delete()


def recipient_get_or_create(
    *, phone: str, channel: str, first_name: str = "", last_name: str = "", actor: User | None = None
) -> tuple[Recipient, bool]:
    """The recipient for an E.164 number, created ``pending`` if new (being added is not consent),
    or ``opted_out`` if the number is on the suppression list (with a ConsentEvent saying why)."""
    with transaction.atomic():
        recipient, created = Recipient.objects.get_or_create(
            phone=phone, defaults={"first_name": first_name.strip()[:100], "last_name": last_name.strip()[:100]}
        )
        if created:
            suppression = Suppression.objects.select_for_update().of(phone).first()
            if suppression is not None:
                now = timezone.now()
                Recipient.objects.filter(pk=recipient.pk).update(
                    consent_status=ConsentStatus.OPTED_OUT, opted_out_at=now
                )
                recipient.consent_status, recipient.opted_out_at = ConsentStatus.OPTED_OUT, now
                ConsentEvent.objects.create(
                    recipient=recipient,
                    from_status=ConsentStatus.PENDING,
                    to_status=ConsentStatus.OPTED_OUT,
                    channel=channel,
                    actor=actor,
                    actor_description="suppression list",
                    evidence=suppression_evidence(suppression),
                )
                suppression.delete()
    return recipient, created


def recipients_bulk_upsert(
    *,
    rows: Sequence[RecipientRow],
    recipient_list: RecipientList | None,
    actor=None,
    channel: str = ConsentEvent.Channel.API,
    evidence: str = "Stated in a bulk upsert through the API (rows numbered from 1)",
) -> UpsertResult:
    """Create or update recipients by number (distinct, E.164) with the import's rules: names and
    attributes merged, stated consent recorded, an opt-out never undone (``kept_opted_out``)."""
    source = ConsentSource(
        channel=channel,
        actor_id=getattr(actor, "pk", None),
        actor_description="" if actor is not None else channel,
        evidence=evidence,
    )
    with transaction.atomic():
        result = recipients_upsert(
            rows, source=source, recipient_list_id=recipient_list.pk if recipient_list is not None else None
        )
        if rows:
            audit_record(
                actor=actor,
                action="recipient.bulk_upsert",
                target=recipient_list,
                detail=f"{result.created} created, {result.updated} updated, {result.consent_changes} consent changes, "
                f"{len(result.kept_opted_out)} kept opted out (via {channel})",
            )
    return result


# --- Lists -----------------------------------------------------------------


def recipient_list_create(*, name: str, user=None, description: str = "", is_archived: bool = False) -> RecipientList:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A list needs a name."})
    if RecipientList.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"A list named {name!r} already exists."})
    return RecipientList.objects.create(name=name, description=description, created_by=user, is_archived=is_archived)


def recipient_list_rename(*, recipient_list: RecipientList, name: str) -> RecipientList:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A list needs a name."})
    if RecipientList.objects.filter(name__iexact=name).exclude(pk=recipient_list.pk).exists():
        raise ValidationError({"name": f"A list named {name!r} already exists."})
    recipient_list.name = name
    recipient_list.save(update_fields=["name"])
    return recipient_list


def recipient_list_update(
    *,
    recipient_list: RecipientList,
    name: str | None = None,
    description: str | None = None,
    is_archived: bool | None = None,
) -> RecipientList:
    """Change the fields given (None: keep)."""
    if name is not None:
        recipient_list_rename(recipient_list=recipient_list, name=name)
    if description is not None:
        recipient_list.description = description
        recipient_list.save(update_fields=["description"])
    if is_archived is not None:
        recipient_list_archive(recipient_list=recipient_list, archived=is_archived)
    return recipient_list


def recipient_list_delete(*, recipient_list: RecipientList, actor=None) -> None:
    """Delete a list and its memberships; the recipients stay."""
    with transaction.atomic():
        audit_record(actor=actor, action="list.delete", target=recipient_list)
        recipient_list.delete()


def recipient_list_archive(*, recipient_list: RecipientList, archived: bool = True, actor=None) -> RecipientList:
    """Archived lists keep their members but cannot be targeted by new campaigns. This is what removing a
    list means, on the web page and in the API (DELETE): nothing is deleted."""
    if recipient_list.is_archived == archived:
        return recipient_list
    with transaction.atomic():
        recipient_list.is_archived = archived
        recipient_list.save(update_fields=["is_archived"])
        audit_record(actor=actor, action="list.archive" if archived else "list.unarchive", target=recipient_list)
    return recipient_list


def recipient_list_add_members(*, recipient_list: RecipientList, recipient_ids: Iterable[int]) -> int:
    """Add recipients to a list; already-present members are left alone. Returns how many were added."""
    ids = list(dict.fromkeys(recipient_ids))
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO recipients_membership (recipient_list_id, recipient_id, added_at) "
            "SELECT %s, r.id, %s FROM recipients_recipient r WHERE r.id = ANY(%s) "
            "ON CONFLICT (recipient_list_id, recipient_id) DO NOTHING",
            [recipient_list.pk, timezone.now(), ids],
        )
        added: int = cursor.rowcount
        return added


def recipient_list_remove_members(*, recipient_list: RecipientList, recipient_ids: Iterable[int]) -> int:
    deleted, _ = Membership.objects.filter(recipient_list=recipient_list, recipient_id__in=list(recipient_ids)).delete()
    return deleted


def recipient_add_by_phone(
    *, recipient_list: RecipientList, phone: str, first_name: str = "", last_name: str = "", actor: User | None = None
) -> tuple[Recipient, bool]:
    """Add one number to a list, creating the recipient as pending if new (staff may not opt people in here)."""
    try:
        e164 = normalize(phone)
    except InvalidNumber as exc:
        raise ValidationError({"phone": str(exc)}) from None
    recipient, created = recipient_get_or_create(
        phone=e164, channel=ConsentEvent.Channel.WEB, first_name=first_name, last_name=last_name, actor=actor
    )
    recipient_list_add_members(recipient_list=recipient_list, recipient_ids=[recipient.pk])
    return recipient, created


# --- Import ----------------------------------------------------------------


def _import_options(
    *, region: str, mapping: object, consent_evidence: str, consent_at: str
) -> tuple[str, dict, str, str]:
    """Validate what an import is told besides its file; ValidationError names the field."""
    region = (region or "").strip().upper()
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError({"region": f"Unknown region {region!r}; use a two-letter code such as US."})
    mapping = {} if mapping is None else mapping
    problems = mapping_problems(mapping)
    if problems:
        raise ValidationError({"mapping": problems})
    consent_evidence, consent_at = (consent_evidence or "").strip(), (consent_at or "").strip()
    if len(consent_evidence) > MAX_VALUE_CHARS:
        raise ValidationError({"consent_evidence": f"At most {MAX_VALUE_CHARS} characters."})
    if consent_at and (len(consent_at) > 40 or not is_date(consent_at)):
        raise ValidationError({"consent_at": "Give a date, e.g. 2024-05-01 or 2024-05-01T10:00Z."})
    if bool(consent_evidence) != bool(consent_at):
        raise ValidationError(
            {"consent_evidence": "Give both the consent evidence and its date (consent_at), or neither."}
        )
    assert isinstance(mapping, dict)  # mapping_problems said so
    return region, mapping, consent_evidence, consent_at


def import_job_create(
    *,
    uploaded_file: File,
    recipient_list: RecipientList | None,
    user: User | None = None,
    region: str = "",
    consent_column: str = "",
    mapping: object = None,
    consent_evidence: str = "",
    consent_at: str = "",
    draft: bool = False,
    run: bool = True,
) -> ImportJob:
    """Save an upload under MEDIA_ROOT/imports/ and queue its import (a Celery task, after commit).

    ``uploaded_file`` is any Django ``File``/``UploadedFile`` (or a ``File`` over a request
    stream); it is copied in pieces, never read whole, and refused with ``UploadTooLarge`` as
    soon as it passes ``SMS_IMPORT_MAX_UPLOAD_MB``. ``mapping``: role -> column name
    (``importer.ROLES``); ``consent_evidence`` + ``consent_at``: the evidence of opted_in rows
    that carry none. ``draft=True`` (the web page): wait for ``import_job_configure`` and
    ``import_job_start``. Usable from a web view or a DRF view alike.
    """
    region, mapping, consent_evidence, consent_at = _import_options(
        region=region, mapping=mapping, consent_evidence=consent_evidence, consent_at=consent_at
    )
    folder = import_upload_folder()
    folder.mkdir(parents=True, exist_ok=True)
    original = Path(getattr(uploaded_file, "name", "") or "upload.csv").name[:255]
    path = folder / f"{uuid.uuid4().hex}.csv"
    try:
        with open(path, "wb") as out:
            copy_capped(uploaded_file.chunks(), out)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    job = ImportJob.objects.create(
        recipient_list=recipient_list,
        created_by=user,
        file=str(path),
        original_name=original,
        region=region,
        consent_column=consent_column.strip(),
        mapping=mapping,
        consent_evidence=consent_evidence,
        consent_at=consent_at,
        status=ImportJob.Status.DRAFT if draft else ImportJob.Status.PENDING,
    )
    if run and not draft:
        transaction.on_commit(lambda: tasks.run_import.delay(job.pk))
    return job


def _draft(job: ImportJob) -> None:
    if job.status != ImportJob.Status.DRAFT:
        raise RecipientConflict("This import has already started.")


def import_job_configure(
    *, job: ImportJob, mapping: object, region: str = "", consent_evidence: str = "", consent_at: str = ""
) -> ImportJob:
    """Set a draft's column mapping and file-wide consent evidence (ValidationError if malformed)."""
    _draft(job)
    region, mapping, consent_evidence, consent_at = _import_options(
        region=region, mapping=mapping, consent_evidence=consent_evidence, consent_at=consent_at
    )
    job.region, job.mapping, job.consent_evidence, job.consent_at = region, mapping, consent_evidence, consent_at
    job.save(update_fields=["region", "mapping", "consent_evidence", "consent_at"])
    return job


def import_job_preview(*, job: ImportJob, rows: int = 20) -> Preview:
    """The first rows checked as the import will check them; nothing is written. ImportFailed for the file."""
    return Importer(job).preview(rows=rows)


def import_job_header(*, job: ImportJob) -> list[str]:
    """The file's header row (ImportFailed if the file cannot be read as CSV)."""
    return read_head(Path(job.file), rows=0)[1]


def import_job_start(*, job: ImportJob) -> ImportJob:
    """A draft goes to the queue (a Celery task after commit); starting twice starts it once."""
    with transaction.atomic():
        started = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.DRAFT).update(
            status=ImportJob.Status.PENDING
        )
        if started:
            transaction.on_commit(lambda: tasks.run_import.delay(job.pk))
    job.refresh_from_db()
    return job


def import_job_cancel(*, job: ImportJob) -> None:
    """Drop a draft and its uploaded file (nothing was written from it)."""
    _draft(job)
    import_upload_discard(job=job)
    job.delete()


def import_drafts_purge(*, older_than: timedelta | None = None) -> int:
    """Delete drafts nobody mapped and started within ``SMS_IMPORT_DRAFT_HOURS`` (their uploads hold
    personal data and nothing was imported from them). Returns how many. Run hourly by beat."""
    age = older_than if older_than is not None else timedelta(hours=settings.SMS_IMPORT_DRAFT_HOURS)
    stale = ImportJob.objects.filter(status=ImportJob.Status.DRAFT, created_at__lt=timezone.now() - age)
    purged = 0
    for job in stale.iterator():
        import_upload_discard(job=job)
        purged += ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.DRAFT).delete()[0] > 0
    return purged


def import_upload_folder() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


def import_upload_discard(*, job: ImportJob) -> None:
    """Delete a finished job's uploaded copy (personal data); its counters and row report stay.

    Only our own uploads under MEDIA_ROOT/imports/ are deleted, never a file the command line
    imported from where it lies."""
    path = Path(job.file)
    if job.file and path.resolve().parent == import_upload_folder().resolve():
        path.unlink(missing_ok=True)


def import_job_run(*, job: ImportJob, progress: Callable[[ImportJob], None] | None = None) -> ImportJob:
    """Run an import to the end. Idempotent for a finished job; a failure is stored on the job."""
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.PENDING).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        job.refresh_from_db()
        return job
    job.refresh_from_db()
    try:
        Importer(job, progress=progress).run()
    except ImportFailed as exc:
        job.status, job.error = ImportJob.Status.FAILED, str(exc)
    except Exception:
        logger.exception("import job %s crashed", job.pk)
        job.status, job.error = ImportJob.Status.FAILED, "The import stopped on an internal error."
    else:
        job.status = ImportJob.Status.COMPLETED
    job.finished_at = timezone.now()
    import_upload_discard(job=job)
    with transaction.atomic():
        ImportJob.objects.filter(pk=job.pk).update(
            status=job.status, error=job.error, finished_at=job.finished_at, processed_bytes=job.processed_bytes
        )
        job.refresh_from_db()
        import_finished.send(sender=ImportJob, job=job)  # the import.finished webhook
    return job


def import_csv(
    *,
    path: str | Path,
    recipient_list: RecipientList | None,
    user: User | None = None,
    region: str = "",
    consent_column: str = "",
    progress: Callable[[ImportJob], None] | None = None,
) -> ImportJob:
    """Import a file already on disk, synchronously (the management command)."""
    path = Path(path)
    job = ImportJob.objects.create(
        recipient_list=recipient_list,
        created_by=user,
        file=str(path.resolve()),
        original_name=path.name,
        region=(region or "").upper(),
        consent_column=consent_column,
    )
    return import_job_run(job=job, progress=progress)


# --- Double opt-in ---------------------------------------------------------


def confirmation_check(*, recipient: Recipient) -> None:
    """Raise ConfirmationRefused unless ``recipient`` (re-read) may be sent a double opt-in request."""
    recipient.refresh_from_db()
    if recipient.consent_status == ConsentStatus.OPTED_OUT:
        raise ConfirmationRefused(
            "This number opted out, so it is never sent a confirmation request; only the person can opt back in,"
            " by texting START.",
            code="opted_out",
        )
    if recipient.consent_status != ConsentStatus.PENDING:
        raise ConfirmationRefused(
            f"Only pending recipients can be asked to confirm (this one is {recipient.consent_status}).",
            code="already_opted_in",
        )


def recipient_request_confirmation(
    *, recipient: Recipient, sender_number: str, provider: str, user: User | None = None
) -> Message:
    """Text a pending recipient asking them to reply YES. Their YES opts them in (see inbound_handle)."""
    confirmation_check(recipient=recipient)
    now = timezone.now()
    with transaction.atomic():
        message = message_enqueue(
            kind=Message.Kind.CONFIRMATION,
            recipient_id=recipient.pk,
            to=recipient.phone,
            sender=sender_number,
            provider=provider,
            body=settings.SMS_CONFIRMATION_TEXT,
            created_by=user,
        )
        Recipient.objects.filter(pk=recipient.pk).update(confirmation_sent_at=now)
        recipient.confirmation_sent_at = now
    return message


# --- Inbound keywords ------------------------------------------------------

_KIND_OF_KEYWORD = {
    Keyword.OPT_OUT: InboundMessage.Kind.OPT_OUT,
    # "please stop texting me": FCC 24-18, revocation by any reasonable means (docs/recipients.md).
    Keyword.OPT_OUT_REQUEST: InboundMessage.Kind.OPT_OUT,
    Keyword.OPT_IN: InboundMessage.Kind.OPT_IN,
    Keyword.HELP: InboundMessage.Kind.HELP,
    Keyword.NONE: InboundMessage.Kind.MESSAGE,
}


def inbound_keyword_kind(text: str) -> str:
    """The InboundMessage kind for a text (messaging.keywords decides what is a keyword)."""
    return _KIND_OF_KEYWORD[classify(text)]


def inbound_handle(*, inbound: InboundSMS, event: ProviderEvent | None = None) -> InboundMessage | None:
    """Store an inbound SMS and act on keywords. Routers (the relay) may take it first."""
    if route_inbound(inbound):
        return None
    kind = inbound_keyword_kind(inbound.text)
    try:
        phone = normalize(inbound.sender)
    except InvalidNumber:
        # A short code or an alphanumeric sender ID: kept in the inbox, but it has no consent to change
        # and cannot be answered (a reply to it would be refused, or reach someone else).
        phone = (inbound.sender or "")[:16]
        if kind != InboundMessage.Kind.MESSAGE:
            logger.info("inbound %s keyword from non-number sender %r: stored, no consent change", kind, phone)
        kind = InboundMessage.Kind.MESSAGE
    quiet = timezone.now() - timedelta(seconds=settings.SMS_KEYWORD_REPLY_QUIET_SECONDS)
    with transaction.atomic():
        recipient = Recipient.objects.filter(phone=phone).first()
        if recipient is None and kind in {InboundMessage.Kind.OPT_OUT, InboundMessage.Kind.OPT_IN}:
            recipient, _ = recipient_get_or_create(phone=phone, channel=ConsentEvent.Channel.SMS)
        message = InboundMessage.objects.create(
            provider=inbound.provider,
            provider_message_id=(inbound.provider_message_id or "")[:100],
            sender=phone,
            to=(inbound.to or "")[:16],
            text=inbound.text or "",
            media_urls=list(inbound.media_urls or ()),
            kind=kind,
            recipient=recipient,
        )
        evidence = f"inbound message {message.pk} to {message.to}: {message.text[:200]!r}"
        if kind == InboundMessage.Kind.OPT_OUT and classify(inbound.text) == Keyword.OPT_OUT_REQUEST:
            evidence = f"opt-out request phrase, not a keyword: {evidence}"
            logger.info("inbound %s from %s is an opt-out request phrase; treated as STOP", message.pk, phone)
        reply = ""
        # Opt-outs and opt-ins always have a recipient by now (created above when new).
        if kind == InboundMessage.Kind.OPT_OUT and recipient is not None:
            recently = (
                recipient.consent_status == ConsentStatus.OPTED_OUT
                and recipient.opted_out_at is not None
                and recipient.opted_out_at >= quiet
            )
            recipient_opt_out(recipient=recipient, channel=ConsentEvent.Channel.SMS, evidence=evidence)
            reply = "" if recently else settings.SMS_STOP_REPLY
        elif kind == InboundMessage.Kind.OPT_IN and recipient is not None:
            recently = (
                recipient.consent_status == ConsentStatus.OPTED_IN
                and recipient.opted_in_at is not None
                and recipient.opted_in_at >= quiet
            )
            # "subscribed again" only to someone who had unsubscribed; a first YES gets the welcome.
            returning = recipient.consent_status == ConsentStatus.OPTED_OUT
            # The person's own START/YES from this number: the only thing that undoes their STOP.
            recipient_set_consent(
                recipient=recipient,
                status=ConsentStatus.OPTED_IN,
                channel=ConsentEvent.Channel.SMS,
                evidence=evidence,
                from_number=phone,
            )
            reply = "" if recently else (settings.SMS_START_REPLY if returning else settings.SMS_OPT_IN_REPLY)
        elif kind == InboundMessage.Kind.HELP and cache.add(f"recipients:help:{phone}", 1, timeout=60):
            # Once a minute per number at most, so two auto-responders cannot ping-pong.
            reply = settings.SMS_HELP_REPLY
        if reply:
            _send_reply(to=phone, our_number=message.to, provider=inbound.provider, body=reply, recipient=recipient)
    return message


def _send_reply(*, to: str, our_number: str, provider: str, body: str, recipient: Recipient | None) -> None:
    granted = (
        AuthorizedSender.objects.filter(number=our_number, is_active=True).values_list("provider", flat=True).first()
    )
    message_enqueue(
        kind=Message.Kind.REPLY,
        recipient_id=recipient.pk if recipient else None,
        to=to,
        sender=our_number,
        provider=granted or provider,
        body=body,
    )


def recipients_bulk_opt_out(
    *, recipient_ids: Iterable[int], channel: str, evidence: str, actor: User | None = None
) -> int:
    """Opt several recipients out, one ConsentEvent each. Returns how many changed."""
    changed = 0
    for recipient in Recipient.objects.filter(pk__in=list(recipient_ids)).exclude(
        consent_status=ConsentStatus.OPTED_OUT
    ):
        changed += recipient_opt_out(recipient=recipient, channel=channel, evidence=evidence, actor=actor)
    return changed
