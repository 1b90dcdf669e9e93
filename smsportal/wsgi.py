from __future__ import annotations

import os
from typing import TYPE_CHECKING

from django.core.wsgi import get_wsgi_application

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsportal.settings")
application: WSGIApplication = get_wsgi_application()

from providers.webhooks.wsgi import WebhookRouter  # noqa: E402  (needs the app registry loaded above)

# /webhooks/… goes to a second WSGI app: the webhook URLs only, without the portal's user-facing middleware
application = WebhookRouter(application)
