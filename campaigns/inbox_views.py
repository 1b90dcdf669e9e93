"""The inbox: messages people sent to our numbers, newest first. Every signed-in role may read it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.permissions import role_required
from campaigns.ui_selectors import inbox_page


@role_required("viewer")
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    before = request.GET.get("before", "")
    rows, next_before = inbox_page(query=query, before=int(before) if before.isdigit() and len(before) < 18 else 0)
    next_url = None
    if next_before:
        params = request.GET.copy()
        params["before"] = str(next_before)
        next_url = f"?{params.urlencode()}"
    return render(
        request,
        "inbox/inbox.html",
        {"rows": rows, "q": query, "next_url": next_url, "paged": bool(before)},
    )
