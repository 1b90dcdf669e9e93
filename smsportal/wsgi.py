import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsportal.settings")
application = get_wsgi_application()

from providers.webhooks.wsgi import WebhookRouter  # noqa: E402  (needs the app registry loaded above)

application = WebhookRouter(application)  # webhooks skip the portal's user-facing middleware
