"""Web views for campaigns: dashboard, composer, detail with live progress, and actions.

Views are thin: reads come from campaigns/ui_selectors.py, writes go through
campaigns/services.py and campaigns/drafts.py. Every action is POST-only and
checks the role server-side, whatever buttons the page shows.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.forms import ModelMultipleChoiceField
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.permissions import AuthenticatedHttpRequest, has_role, role_required
from accounts.services import user_dismiss_first_run
from campaigns import services
from campaigns.audience import audience_count, audience_sample
from campaigns.charts import stacked_bars
from campaigns.drafts import campaign_create_draft, campaign_update_draft
from campaigns.estimates import estimate
from campaigns.exports import campaign_message_rows
from campaigns.forms import CampaignForm, MessageFilterForm
from campaigns.models import Campaign
from campaigns.selectors import campaigns_visible_to, health_status
from campaigns.shortlinks import preview_with_short_links, record_click
from campaigns.ui_selectors import (
    campaign_click_timeline,
    campaign_failure_reasons,
    campaign_list_for_dashboard,
    campaign_message_page,
    campaign_progress,
    campaign_timeline,
    first_run_panel,
    messages_per_day,
)
from messaging.compose import MAX_TEMPLATE_CHARS
from messaging.compose import preview as compose_preview
from messaging.models import MessageStatus
from messaging.outcomes import CHARTED, OUTCOME_BY_KEY
from recipients.exports import csv_lines
from smsportal.forms import form_field

TZ_SESSION_KEY = "ui_timezone"
# Chart bars stack the charted outcomes bottom up, named as everywhere else.
CHART_KEYS = [(key, f"c-{key}") for key in CHARTED]
CHART_NAMES = {key: OUTCOME_BY_KEY[key].label for key in CHARTED}
# The click chart stacks first clicks of a link under the repeat visits: together, every click.
CLICK_CHART_KEYS = [("first", "c-first-click"), ("repeat", "c-repeat-click")]
CLICK_CHART_NAMES = {"first": "First clicks", "repeat": "Repeat clicks"}
ACTIVE = {Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED}
RETRYABLE = {Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.COMPLETED}


# --- roles ----------------------------------------------------------------
# Admins manage every campaign; senders manage their own; viewers only read.
def can_compose(user: User | AnonymousUser) -> bool:
    return has_role(user, "sender")


def can_manage(user: User | AnonymousUser, campaign: Campaign) -> bool:
    return has_role(user, "admin") or (can_compose(user) and campaign.created_by_id == user.pk)


def _visible_campaign(request: HttpRequest, pk: int) -> Campaign:
    """The campaign, if ``request.user`` may see it (campaigns.selectors decides, as for the API); else 404."""
    return get_object_or_404(campaigns_visible_to(user=request.user), pk=pk)


def _actions(user: User | AnonymousUser, campaign: Campaign, failed: int) -> dict[str, bool]:
    manage = can_manage(user, campaign)
    return {
        "edit": manage and campaign.status == Campaign.Status.DRAFT,
        "launch": manage and campaign.status == Campaign.Status.DRAFT,
        # An auto-paused campaign can be paused by a person too: then only a person resumes it.
        "pause": manage
        and (
            campaign.status == Campaign.Status.SENDING
            or (campaign.status == Campaign.Status.PAUSED and campaign.auto_paused)
        ),
        "resume": manage and campaign.status == Campaign.Status.PAUSED,
        "cancel": manage and campaign.status in ACTIVE | {Campaign.Status.DRAFT},
        "retry": manage and failed > 0 and campaign.status in RETRYABLE,
    }


# --- health and dashboard ---------------------------------------------------
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Database, Redis, broker and beat, for monitoring, within 2 s. No authentication; reveals nothing else."""
    report = health_status()
    return JsonResponse(report, status=200 if report["ok"] else 503)


def _with_progress(campaigns: list[Campaign]) -> list[tuple[Campaign, object]]:
    return [(c, campaign_progress(campaign=c)) for c in campaigns]


@role_required("viewer")
@require_GET
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    running, recent = campaign_list_for_dashboard(user=request.user)
    per_day = messages_per_day(user=request.user, days=14)
    chart = stacked_bars(
        per_day,
        keys=CHART_KEYS,
        label=lambda row: row["day"].strftime("%b %-d"),
        names=CHART_NAMES,
    )
    return render(
        request,
        "campaigns/dashboard.html",
        {
            "running": _with_progress(running),
            "recent": _with_progress(recent),
            "chart": chart,
            "per_day_totals": [{"key": k, "label": CHART_NAMES[k], "n": sum(r[k] for r in per_day)} for k in CHARTED],
            "per_day_total": sum(r[k] for r in per_day for k in CHARTED),
            "can_compose": can_compose(request.user),
            "first_run": first_run_panel(user=request.user),
            "is_admin": has_role(request.user, "admin"),
        },
    )


@role_required("viewer")
@require_POST
def first_run_dismiss(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Close the first-run panel for this person; it stays closed."""
    user_dismiss_first_run(user=request.user)
    return redirect("dashboard")


@role_required("viewer")
@require_GET
def dashboard_running(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The polled partial: running campaigns and their progress bars."""
    running, _ = campaign_list_for_dashboard(user=request.user, limit=0)
    return render(request, "campaigns/_running.html", {"running": _with_progress(running)})


@role_required("viewer")
@require_GET
def campaign_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    qs = campaigns_visible_to(user=request.user).order_by("-created_at", "-id")
    status = request.GET.get("status", "")
    if status in Campaign.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/list.html",
        {
            "page": page,
            "status": status,
            "statuses": Campaign.Status.choices,
            "can_compose": can_compose(request.user),
        },
    )


# --- composer -----------------------------------------------------------------
def _tz(request: HttpRequest) -> str | None:
    return request.POST.get("timezone") or request.session.get(TZ_SESSION_KEY)


def _preview_context(
    *,
    body: str,
    list_ids: list[int],
    add_stop_footer: bool,
    smart_encoding: bool,
    sender_ids: list[int] | None = None,
    is_mms: bool = False,
    track_links: bool = False,
) -> dict:
    sample = audience_sample(list_ids=list_ids)
    # A real opted-in member when there is one; else invented data, and the page says so.
    context = (
        sample.template_context()
        if sample
        else {"first_name": "Alex", "last_name": "Sample", "name": "Alex Sample", "phone": "+14155550123"}
    )
    if track_links:  # count segments as sent: each URL as long as its short link
        body = preview_with_short_links(body)
    info = compose_preview(body, sample_context=context, add_stop_footer=add_stop_footer, smart_encoding=smart_encoding)
    audience = audience_count(list_ids=list_ids)
    return {
        "info": info,
        "sample": sample,
        "audience": audience,
        "estimated_segments": audience * info["segments"],
        "has_lists": bool(list_ids),
        "estimate": estimate(
            body=body,
            list_ids=list_ids,
            sender_ids=sender_ids or [],
            add_stop_footer=add_stop_footer,
            smart_encoding=smart_encoding,
            is_mms=is_mms,
            segments=info["segments"],
        )
        if list_ids
        else None,
    }


def _int_list(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


def _save_draft(request: AuthenticatedHttpRequest, form: CampaignForm, campaign: Campaign | None) -> Campaign | None:
    """Save the form as a draft; service errors become form errors. Returns None on failure."""
    fields = form.draft_fields()
    request.session[TZ_SESSION_KEY] = form.cleaned_data["timezone"]
    try:
        if campaign is None:
            return campaign_create_draft(
                user=request.user, senders=form.cleaned_data["senders"], lists=form.cleaned_data["lists"], **fields
            )
        return campaign_update_draft(
            campaign=campaign,
            user=request.user,
            senders=form.cleaned_data["senders"],
            lists=form.cleaned_data["lists"],
            **fields,
        )
    except services.TransitionError as exc:
        form.add_error(None, str(exc))
    except ValidationError as exc:
        form.add_error(None, exc)
    return None


def _composer(request: AuthenticatedHttpRequest, campaign: Campaign | None) -> HttpResponse:
    if request.method == "POST":
        form = CampaignForm(request.POST, user=request.user, tz=_tz(request))
        if form.is_valid():
            saved = _save_draft(request, form, campaign)
            if saved is not None:
                return redirect("campaign_confirm", pk=saved.pk)
        list_ids = _int_list(request.POST.getlist("lists"))
        body = request.POST.get("body", "")
        footer, smart = "add_stop_footer" in request.POST, "smart_encoding" in request.POST
        sender_ids = _int_list(request.POST.getlist("senders"))
        is_mms = bool(request.POST.get("media_urls", "").strip())
        track = "track_links" in request.POST
        status = 400
    else:
        form = CampaignForm(user=request.user, tz=_tz(request), campaign=campaign)
        list_ids = [lst.pk for lst in form.initial.get("lists", [])]
        body = form.initial.get("body", "")
        footer = form.initial.get("add_stop_footer", form.fields["add_stop_footer"].initial)
        smart = form.initial.get("smart_encoding", form.fields["smart_encoding"].initial)
        sender_ids = [s.pk for s in form.initial.get("senders", [])]
        is_mms = bool(form.initial.get("media_urls"))
        track = bool(form.initial.get("track_links"))
        status = 200
    senders = form_field(form, "senders", ModelMultipleChoiceField).queryset  # set in CampaignForm.__init__
    context = {
        "form": form,
        "campaign": campaign,
        "no_senders": senders is None or not senders.exists(),
        **_preview_context(
            body=body,
            list_ids=list_ids,
            add_stop_footer=footer,
            smart_encoding=smart,
            sender_ids=sender_ids,
            is_mms=is_mms,
            track_links=track,
        ),
    }
    return render(request, "campaigns/compose.html", context, status=status)


@role_required("viewer")
@require_http_methods(["GET", "POST"])
def campaign_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not can_compose(request.user):
        raise PermissionDenied("Your role may not create campaigns.")  # viewers
    return _composer(request, None)


@role_required("viewer")
@require_http_methods(["GET", "POST"])
def campaign_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    campaign = _visible_campaign(request, pk)
    if not can_manage(request.user, campaign):
        raise PermissionDenied("You may not edit this campaign.")
    if campaign.status != Campaign.Status.DRAFT:
        messages.error(request, "Only a draft can be edited.")
        return redirect("campaign_detail", pk=pk)
    return _composer(request, campaign)


@role_required("viewer")
@require_POST
def campaign_preview(request: AuthenticatedHttpRequest) -> HttpResponse:
    """htmx partial: counter, encoding, personalization preview and audience for the form as typed."""
    if not can_compose(request.user):
        raise PermissionDenied
    context = _preview_context(
        body=request.POST.get("body", "")[:MAX_TEMPLATE_CHARS],
        list_ids=_int_list(request.POST.getlist("lists")),
        add_stop_footer="add_stop_footer" in request.POST,
        smart_encoding="smart_encoding" in request.POST,
        sender_ids=_int_list(request.POST.getlist("senders")),
        is_mms=bool(request.POST.get("media_urls", "").strip()),
        track_links="track_links" in request.POST,
    )
    return render(request, "campaigns/_preview.html", context)


@role_required("viewer")
@require_http_methods(["GET", "POST"])
def campaign_confirm(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The confirmation step: what will be sent to how many people; POST launches."""
    campaign = _visible_campaign(request, pk)
    if not can_manage(request.user, campaign):
        raise PermissionDenied("You may not launch this campaign.")
    if campaign.status != Campaign.Status.DRAFT:
        return redirect("campaign_detail", pk=pk)
    errors: list[str] = []
    if request.method == "POST":
        try:
            services.campaign_launch(campaign=campaign, user=request.user)
        except ValidationError as exc:
            errors = [m for msgs in exc.message_dict.values() for m in msgs]
        except services.TransitionError as exc:
            messages.error(request, str(exc))
            return redirect("campaign_detail", pk=pk)
        else:
            campaign.refresh_from_db()
            if campaign.status == Campaign.Status.SCHEDULED:
                messages.success(request, "Campaign scheduled.")
            else:
                messages.success(request, "Campaign launched.")
            return redirect("campaign_detail", pk=pk)
    else:
        try:
            services.campaign_validate_for_launch(campaign=campaign, user=request.user)
        except ValidationError as exc:
            errors = [m for msgs in exc.message_dict.values() for m in msgs]
    list_ids = list(campaign.lists.values_list("pk", flat=True))
    context = {
        "campaign": campaign,
        "errors": errors,
        "senders": list(campaign.senders.all()),
        "lists": list(campaign.lists.all()),
        **_preview_context(
            body=campaign.body,
            list_ids=list_ids,
            add_stop_footer=campaign.add_stop_footer,
            smart_encoding=campaign.smart_encoding,
            sender_ids=[s.pk for s in campaign.senders.all()],
            is_mms=bool(campaign.media_urls),
            track_links=campaign.track_links,
        ),
    }
    return render(
        request, "campaigns/confirm.html", context, status=400 if errors and request.method == "POST" else 200
    )


# --- detail -------------------------------------------------------------------
def _status_context(request: HttpRequest, campaign: Campaign) -> dict:
    progress = campaign_progress(campaign=campaign)
    return {
        "campaign": campaign,
        "progress": progress,
        "actions": _actions(request.user, campaign, progress.failed),
        "cost": progress.cost,
        "clicks": progress.clicks,
        "polling": campaign.status in ACTIVE,
    }


def _time_chart(series: list[dict], *, keys: list[tuple[str, str]], names: dict[str, str]) -> dict:
    """Bars over time: labelled with the time of day, and the date too when the series spans days."""
    step_fmt = "%H:%M" if len(series) < 2 or (series[-1]["t"] - series[0]["t"]).days < 1 else "%b %-d %H:%M"
    return stacked_bars(series, keys=keys, label=lambda row: row["t"].astimezone().strftime(step_fmt), names=names)


def _activity_context(request: HttpRequest, campaign: Campaign) -> dict:
    """Chart, failure reasons, events and the message log page the query asks for."""
    filters = MessageFilterForm(request.GET or None)
    status = number = ""
    after = 0
    if filters.is_valid():
        status = filters.cleaned_data["status"] or ""
        number = filters.cleaned_data["q"] or ""
        after = filters.cleaned_data["after"] or 0
    rows, next_after = campaign_message_page(campaign=campaign, status=status, number=number, after=after)
    chart = _time_chart(campaign_timeline(campaign=campaign), keys=CHART_KEYS, names=CHART_NAMES)
    click_chart = None
    if campaign.track_links:
        click_chart = _time_chart(
            campaign_click_timeline(campaign=campaign), keys=CLICK_CHART_KEYS, names=CLICK_CHART_NAMES
        )
    next_url = None
    if next_after:
        query = request.GET.copy()
        query["after"] = str(next_after)
        next_url = f"{reverse('campaign_detail', args=[campaign.pk])}?{query.urlencode()}#log"
    return {
        "campaign": campaign,
        "polling": campaign.status in ACTIVE,
        "chart": chart,
        "click_chart": click_chart,
        "reasons": campaign_failure_reasons(campaign=campaign),
        "events": list(campaign.events.all()[:20]),
        "filters": filters,
        "rows": rows,
        "next_url": next_url,
        "first_page_url": reverse("campaign_detail", args=[campaign.pk]) if after else None,
        "activity_query": request.GET.urlencode(),
    }


@role_required("viewer")
@require_GET
def campaign_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    campaign = _visible_campaign(request, pk)
    return render(
        request,
        "campaigns/detail.html",
        {
            **_status_context(request, campaign),
            **_activity_context(request, campaign),
            "senders": list(campaign.senders.all()),
            "lists": list(campaign.lists.all()),
            "status_choices": MessageStatus.choices,
        },
    )


@role_required("viewer")
@require_GET
def campaign_activity(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The polled partial: chart, failure reasons and events, plus the message log out of band."""
    campaign = _visible_campaign(request, pk)
    return render(request, "campaigns/_activity.html", _activity_context(request, campaign))


@role_required("viewer")
@require_GET
def campaign_status(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The polled partial: status, progress bar, breakdown and the buttons that fit the status."""
    campaign = _visible_campaign(request, pk)
    return render(request, "campaigns/_status.html", _status_context(request, campaign))


def _action(request: HttpRequest, pk: int, run: Callable[[Campaign], object], done: str) -> HttpResponse:
    campaign = _visible_campaign(request, pk)
    if not can_manage(request.user, campaign):
        raise PermissionDenied("Only an admin or the campaign's creator may do this.")
    try:
        result = run(campaign)
    except services.TransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done.format(result=result))
    return redirect("campaign_detail", pk=pk)


@role_required("viewer")
@require_POST
def campaign_pause(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, lambda c: services.campaign_pause(campaign=c, user=request.user), "Campaign paused.")


@role_required("viewer")
@require_POST
def campaign_resume(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, lambda c: services.campaign_resume(campaign=c, user=request.user), "Campaign resumed.")


@role_required("viewer")
@require_POST
def campaign_cancel(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _action(
        request, pk, lambda c: services.campaign_cancel(campaign=c, user=request.user), "Campaign cancelled."
    )


@role_required("viewer")
@require_POST
def campaign_retry_failed(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda c: services.campaign_retry_failed(campaign=c, user=request.user),
        "{result} failed messages will be sent again.",
    )


@role_required("viewer")
@require_GET
def campaign_export(request: AuthenticatedHttpRequest, pk: int) -> StreamingHttpResponse:
    """Every message of the campaign with its status and cost, then the campaign's total and estimate."""
    campaign = _visible_campaign(request, pk)
    response = StreamingHttpResponse(
        csv_lines(campaign_message_rows(campaign=campaign)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-messages.csv"'
    return response


@require_GET
def short_link(request: HttpRequest, code: str) -> HttpResponse:
    """A tracked link: count the visit and go to the stored URL (302). Public: recipients have no login.

    Only the stored target can be reached (no open redirect); an unknown or malformed code is a 404
    and an expired one a friendly page. The IP address is never read.
    """
    visit = record_click(code=code, user_agent=request.headers.get("User-Agent", "")[:500])
    if visit is None:
        raise Http404("No such link.")
    if visit.target_url is None:
        return render(request, "campaigns/link_expired.html", status=410)
    response = HttpResponseRedirect(visit.target_url)
    response["Cache-Control"] = "no-store"  # every visit must reach us to be counted
    response["Referrer-Policy"] = "no-referrer"
    return response
