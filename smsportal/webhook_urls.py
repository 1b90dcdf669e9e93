"""Root URLconf of the webhook WSGI app (``providers.webhooks.wsgi``): the provider webhooks and nothing else.

``smsportal.urls`` includes this module, so both applications serve the webhooks at the same paths.
"""

from django.urls import include, path

urlpatterns = [
    path("webhooks/", include("providers.webhooks.urls")),
]
