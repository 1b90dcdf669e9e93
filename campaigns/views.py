"""Web views for campaigns (the web UI issue fills these out)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from campaigns.selectors import health_status


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Database and broker reachability, for monitoring. No authentication; reveals nothing else."""
    report = health_status()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    from campaigns.models import Campaign

    campaigns = Campaign.objects.select_related("created_by")[:20]
    return render(request, "campaigns/dashboard.html", {"campaigns": campaigns})
