"""The portal's URLs plus ``/bench/302``: a bare view that answers a 302, no database (bench/redirect.py)."""

from django.http import HttpRequest, HttpResponseRedirect
from django.urls import include, path


def bare_redirect(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect("https://shop.example.com/spring?utm_source=sms")


urlpatterns = [path("bench/302", bare_redirect), path("", include("smsportal.urls"))]
