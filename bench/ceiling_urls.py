"""URL of the bare form-parsing view (see bench/ceiling_settings.py)."""

from django.http import HttpResponse
from django.urls import path


def parse_form(request, secret: str, ref: str):
    if request.method != "POST":
        return HttpResponse(status=405)
    request.POST.get("Status")  # parse the body, as the real webhook must
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("webhooks/plivo/<str:secret>/status/<str:ref>/", parse_form)]
