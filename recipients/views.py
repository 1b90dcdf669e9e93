"""Web pages for lists, imports, recipients and the inbox. Viewers read; senders and admins change."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import AuthorizedSender
from accounts.permissions import AuthenticatedHttpRequest, role_required
from recipients import exports, selectors, services
from recipients.forms import (
    AddMemberForm,
    ConfirmationForm,
    ImportForm,
    ImportMappingForm,
    InboxReplyForm,
    ListForm,
    RenameForm,
)
from recipients.importer import ImportFailed
from recipients.models import ConsentEvent, ConsentStatus, ImportJob, InboundMessage, RecipientList
from recipients.sending import message_send_single
from recipients.uploads import UploadTooLarge


def _csv_response(rows: Iterable[list[str]], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(exports.csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _visible_list(request: HttpRequest, pk: int) -> RecipientList:
    """The list, if ``request.user`` may see it (recipients.selectors decides); else 404."""
    return get_object_or_404(selectors.recipient_lists_visible_to(user=request.user), pk=pk)


def _managed_list(request: HttpRequest, pk: int) -> RecipientList:
    """The list, if ``request.user`` may rename and archive it; a list they only see is a 403."""
    recipient_list = _visible_list(request, pk)
    if not selectors.recipient_lists_manageable_by(user=request.user).filter(pk=pk).exists():
        raise PermissionDenied("Only its creator or an admin may rename or archive a shared list.")
    return recipient_list


def _form_errors(request: HttpRequest, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


@require_GET
@role_required("viewer")
def list_index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "recipients/list_index.html",
        {"lists": selectors.recipient_lists_with_counts(user=request.user), "form": ListForm()},
    )


@require_POST
@role_required("sender")
def list_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ListForm(request.POST)
    if form.is_valid():
        try:
            recipient_list = services.recipient_list_create(
                name=form.cleaned_data["name"], description=form.cleaned_data["description"], user=request.user
            )
        except ValidationError as exc:
            form.add_error("name", exc.message_dict.get("name", exc.messages))
        else:
            return redirect("recipients:list_detail", pk=recipient_list.pk)
    lists = selectors.recipient_lists_with_counts(user=request.user)
    return render(request, "recipients/list_index.html", {"lists": lists, "form": form}, status=400)


@require_GET
@role_required("viewer")
def list_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    recipient_list = _visible_list(request, pk)
    search, consent = request.GET.get("q", "").strip(), request.GET.get("consent", "")
    members = selectors.recipient_list_members(recipient_list=recipient_list, search=search, consent=consent)
    page = Paginator(members, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "recipients/list_detail.html",
        {
            "list": recipient_list,
            "counts": selectors.recipient_list_consent_counts(recipient_list=recipient_list),
            "page": page,
            "q": search,
            "consent": consent,
            "consent_choices": ConsentStatus.choices,
            "imports": recipient_list.imports.all()[:10],
            "manageable": selectors.recipient_lists_manageable_by(user=request.user).filter(pk=pk).exists(),
            "rename_form": RenameForm(initial={"name": recipient_list.name}),
            "add_form": AddMemberForm(),
        },
    )


@require_POST
@role_required("sender")
def list_rename(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    recipient_list = _managed_list(request, pk)
    form = RenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a name.")
    else:
        try:
            services.recipient_list_rename(recipient_list=recipient_list, name=form.cleaned_data["name"])
        except ValidationError as exc:
            _form_errors(request, exc)
    return redirect("recipients:list_detail", pk=pk)


@require_POST
@role_required("sender")
def list_archive(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    recipient_list = _managed_list(request, pk)
    services.recipient_list_archive(
        recipient_list=recipient_list, archived=request.POST.get("archived") != "0", actor=request.user
    )
    return redirect("recipients:list_detail", pk=pk)


@require_POST
@role_required("sender")
def list_add_member(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    recipient_list = _visible_list(request, pk)
    form = AddMemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a phone number.")
    else:
        try:
            services.recipient_add_by_phone(recipient_list=recipient_list, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(request, exc)
    return redirect("recipients:list_detail", pk=pk)


@require_POST
@role_required("sender")
def list_remove_member(request: AuthenticatedHttpRequest, pk: int, recipient_pk: int) -> HttpResponse:
    recipient_list = _visible_list(request, pk)
    services.recipient_list_remove_members(recipient_list=recipient_list, recipient_ids=[recipient_pk])
    return redirect("recipients:list_detail", pk=pk)


@require_GET
@role_required("viewer")
def list_export(request: AuthenticatedHttpRequest, pk: int) -> StreamingHttpResponse:
    recipient_list = _visible_list(request, pk)
    return _csv_response(exports.list_members_rows(recipient_list=recipient_list), f"list-{pk}.csv")


@require_GET
@role_required("viewer")
def consent_export(request: AuthenticatedHttpRequest) -> StreamingHttpResponse:
    recipient_list = None
    if request.GET.get("list", "").isdigit():
        recipient_list = _visible_list(request, int(request.GET["list"]))
    suffix = f"-list-{recipient_list.pk}" if recipient_list else ""
    return _csv_response(exports.consent_history_rows(recipient_list=recipient_list), f"consent-history{suffix}.csv")


@require_http_methods(["GET", "POST"])
@role_required("sender")
def list_import(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Import, step 1: upload. The file is kept as a draft until its columns are mapped (step 2)."""
    recipient_list = get_object_or_404(selectors.recipient_lists_importable_by(user=request.user), pk=pk)
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                job = services.import_job_create(
                    uploaded_file=form.cleaned_data["file"],
                    recipient_list=recipient_list,
                    user=request.user,
                    region=form.cleaned_data["region"],
                    draft=True,
                )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except UploadTooLarge as exc:
            form.add_error("file", str(exc))
        else:
            try:
                services.import_job_header(job=job)
            except ImportFailed as exc:
                services.import_job_cancel(job=job)
                form.add_error("file", str(exc))
            else:
                return redirect("recipients:import_mapping", pk=job.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "recipients/import_start.html", {"list": recipient_list, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@role_required("sender")
def import_mapping(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Import, step 2: which column is what, a preview of the first rows checked, then run (step 3)."""
    job = get_object_or_404(selectors.import_jobs_visible_to(user=request.user), pk=pk)
    if job.status != ImportJob.Status.DRAFT:
        return redirect("recipients:import_detail", pk=job.pk)
    back = redirect("recipients:list_detail", pk=job.recipient_list_id) if job.recipient_list_id else redirect("/")
    try:
        header = services.import_job_header(job=job)
    except ImportFailed as exc:  # checked at upload; only a file changed on disk gets here
        services.import_job_cancel(job=job)
        messages.error(request, str(exc))
        return back
    if request.method == "POST" and "cancel" in request.POST:
        services.import_job_cancel(job=job)
        messages.success(request, "Import cancelled; the uploaded file was deleted.")
        return back
    form = ImportMappingForm(request.POST if request.method == "POST" else None, header=header)
    if request.method == "POST" and form.is_valid():
        try:
            services.import_job_configure(
                job=job,
                mapping=form.mapping(),
                region=form.cleaned_data["region"],
                consent_evidence=form.cleaned_data["consent_evidence"],
                consent_at=form.cleaned_data["consent_at"],
            )
            if "run" in request.POST:
                services.import_job_preview(job=job, rows=1)  # the mapping must fit the file
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except ImportFailed as exc:
            form.add_error(None, str(exc))
        else:
            if "run" in request.POST:
                services.import_job_start(job=job)
                return redirect("recipients:import_detail", pk=job.pk)
            return redirect("recipients:import_mapping", pk=job.pk)
    preview, problem = None, ""
    try:
        preview = services.import_job_preview(job=job)
    except ImportFailed as exc:
        problem = str(exc)
    if request.method == "GET":
        roles = preview.roles if preview else {}
        form = ImportMappingForm(
            header=header,
            initial={
                **ImportMappingForm.initial_for(header, job.mapping, roles),
                "region": job.region,
                "consent_evidence": job.consent_evidence,
                "consent_at": job.consent_at,
            },
        )
    context = {"job": job, "form": form, "preview": preview, "problem": problem}
    return render(request, "recipients/import_mapping.html", context, status=400 if form.errors else 200)


@require_GET
@role_required("viewer")
def import_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(
        selectors.import_jobs_visible_to(user=request.user).select_related("recipient_list", "created_by"), pk=pk
    )
    template = "recipients/_import_progress.html" if request.htmx else "recipients/import_detail.html"
    errors = selectors.import_job_errors(job=job)[:100] if job.is_finished else []
    return render(request, template, {"job": job, "errors": errors})


@require_GET
@role_required("viewer")
def import_errors_csv(request: AuthenticatedHttpRequest, pk: int) -> StreamingHttpResponse:
    job = get_object_or_404(selectors.import_jobs_visible_to(user=request.user), pk=pk)
    return _csv_response(exports.import_errors_rows(job=job), f"import-{pk}-rejected-rows.csv")


@require_GET
@role_required("viewer")
def recipient_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    recipient = get_object_or_404(selectors.recipients_visible_to(user=request.user), pk=pk)
    senders = AuthorizedSender.objects.filter(user=request.user, is_active=True)
    return render(
        request,
        "recipients/recipient_detail.html",
        {
            "recipient": recipient,
            "history": selectors.recipient_consent_history(recipient=recipient),
            "overrides": recipient.consent_events.filter(actor_description=services.OVERRIDE_MARK).select_related(
                "actor"
            ),
            "lists": selectors.recipient_lists_visible_to(user=request.user).filter(memberships__recipient=recipient),
            "inbound": selectors.inbound_visible_to(user=request.user).filter(recipient=recipient)[:20],
            "confirm_form": ConfirmationForm(senders=senders),
        },
    )


@require_POST
@role_required("sender")
def recipient_opt_out(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    recipient = get_object_or_404(selectors.recipients_visible_to(user=request.user), pk=pk)
    reason = request.POST.get("reason", "").strip()[:500]
    services.recipient_opt_out(
        recipient=recipient,
        channel=ConsentEvent.Channel.WEB,
        evidence=reason or "opted out by staff in the web UI",
        actor=request.user,
    )
    messages.success(request, "Opted out.")
    return redirect("recipients:recipient_detail", pk=pk)


@require_POST
@role_required("admin")
def recipient_consent_override(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Undo an opt-out against the person's STOP: admins only, with a written reason (audited)."""
    recipient = get_object_or_404(selectors.recipients_visible_to(user=request.user), pk=pk)
    try:
        services.recipient_consent_override(
            recipient=recipient, actor=request.user, reason=request.POST.get("reason", "")[:2000]
        )
    except ValidationError as exc:
        _form_errors(request, exc)
    except services.RecipientConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Opt-out overridden; the reason is on the consent history.")
    return redirect("recipients:recipient_detail", pk=pk)


@require_POST
@role_required("sender")
def recipient_confirm(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Send the double opt-in request from one of the user's own sender numbers."""
    recipient = get_object_or_404(selectors.recipients_visible_to(user=request.user), pk=pk)
    senders = AuthorizedSender.objects.filter(user=request.user, is_active=True)
    form = ConfirmationForm(request.POST, senders=senders)
    if not form.is_valid():
        messages.error(request, "Pick one of your sender numbers.")
        return redirect("recipients:recipient_detail", pk=pk)
    sender = senders.get(pk=form.cleaned_data["sender"])
    try:
        services.recipient_request_confirmation(
            recipient=recipient, sender_number=sender.number, provider=sender.provider, user=request.user
        )
    except ValidationError as exc:
        _form_errors(request, exc)
    else:
        messages.success(request, "Confirmation request sent.")
    return redirect("recipients:recipient_detail", pk=pk)


def _paging_id(value: str) -> int:
    """A keyset position from the query string; anything that is not a plausible id means the first page."""
    return int(value) if value.isdigit() and len(value) < 18 else 0


def _inbox_messages(request: HttpRequest) -> QuerySet[InboundMessage]:
    """The inbound messages this person may see: the inbox page and replies both start here."""
    return selectors.inbound_visible_to(user=request.user)


@require_GET
@role_required("viewer")
def inbox(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Messages people sent to our numbers, newest first: search, filter by kind, MMS media linked."""
    query = request.GET.get("q", "").strip()[:100]
    kind = request.GET.get("kind", "")
    if kind not in InboundMessage.Kind.values:
        kind = ""
    before = _paging_id(request.GET.get("before", ""))
    rows, next_before = selectors.inbox_page(user=request.user, query=query, kind=kind, before=before)
    filters = QueryDict(mutable=True)
    for key, value in (("q", query), ("kind", kind)):
        if value:
            filters[key] = value
    newest_url = f"?{filters.urlencode()}" if filters else request.path
    next_url = None
    if next_before:
        filters["before"] = str(next_before)
        next_url = f"?{filters.urlencode()}"
    return render(
        request,
        "recipients/inbox.html",
        {
            "rows": rows,
            "q": query,
            "kind": kind,
            "kinds": InboundMessage.Kind.choices,
            "next_url": next_url,
            "newest_url": newest_url if before else None,
            "can_reply": request.user.can_send,
        },
    )


@require_http_methods(["GET", "POST"])
@role_required("sender")
def inbox_reply(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Answer one inbound message: a one-off message to them, from the number they wrote to."""
    inbound = get_object_or_404(_inbox_messages(request).select_related("recipient"), pk=pk)
    form = InboxReplyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                message_send_single(
                    user=request.user, to=inbound.sender, body=form.cleaned_data["body"], sender_number=inbound.to
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, f"Reply not sent: {message}")
            else:
                messages.success(request, f"Reply to {inbound.sender} queued, from {inbound.to}.")
                return redirect("recipients:inbox")
    return render(request, "recipients/inbox_reply.html", {"inbound": inbound, "form": form}, status=status)
