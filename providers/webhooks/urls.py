"""Provider webhooks, included at ``/webhooks/``. Every view authenticates its caller.

Each provider in :mod:`providers.registry` serves its webhook module's
``urlpatterns`` under ``/webhooks/<name>/``; the URL names carry the provider's
name (``plivo-status``, ``flowroute-inbound``).
"""

from django.urls import include, path

from providers import registry

app_name = "webhooks"
urlpatterns = [path(f"{p.name}/", include(p.webhooks)) for p in registry.entries()]
