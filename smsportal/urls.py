from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("webhooks/", include("providers.webhooks.urls")),
    path("", include("relay.urls")),
    path("", include("accounts.urls")),
    path("", include("campaigns.urls")),
]
