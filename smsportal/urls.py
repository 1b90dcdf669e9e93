from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import views as account_views

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before allauth's own: switched off, with a clear page, when no email is configured.
    path("accounts/password/reset/", account_views.password_reset, name="password_reset"),
    path("accounts/", include("allauth.urls")),
    path("", include("smsportal.webhook_urls")),  # /webhooks/…, also served by the lean webhook app
    path("api/v1/", include("api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("recipients.urls")),
    path("", include("relay.urls")),
    path("", include("accounts.urls")),
    path("", include("campaigns.urls")),
]
