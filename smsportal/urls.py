from django.contrib import admin
from django.urls import include, path

from api.views.docs import DocsView, SchemaView

urlpatterns = [
    path("admin/", admin.site.urls),
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
