"""Provider webhooks, included at ``/webhooks/``. Every view authenticates its caller."""

from django.urls import path

from providers.webhooks import flowroute, plivo

app_name = "webhooks"
urlpatterns = [
    path("plivo/status/<str:ref>/", plivo.StatusWebhookView.as_view(), name="plivo-status"),
    path("plivo/inbound/", plivo.InboundWebhookView.as_view(), name="plivo-inbound"),
    path("flowroute/<str:secret>/status/<str:ref>/", flowroute.StatusWebhookView.as_view(), name="flowroute-status"),
    path("flowroute/<str:secret>/inbound/", flowroute.InboundWebhookView.as_view(), name="flowroute-inbound"),
]
