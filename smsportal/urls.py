from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from accounts import views as account_views
from api.views.docs import DocsView, SchemaView


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers (and the admin, which has no icon link) ask for /favicon.ico: point them at the static one."""
    return HttpResponsePermanentRedirect(static("favicon.ico"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    # Before allauth's own: switched off, with a clear page, when no email is configured.
    path("accounts/password/reset/", account_views.password_reset, name="password_reset"),
    path("accounts/", include("allauth.urls")),
    path("", include("smsportal.webhook_urls")),  # /webhooks/…, also served by the lean webhook app
    path("api/v1/", include("api.urls")),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("recipients.urls")),
    path("", include("relay.urls")),
    path("", include("accounts.urls")),
    path("", include("campaigns.urls")),
]
