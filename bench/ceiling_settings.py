"""The webhook ceiling: a bare Django project whose one view parses a form POST and answers 200.

No database, no middleware, no logging filters: what Django + gunicorn cost on their own.
"""

SECRET_KEY = "bench-ceiling-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.ceiling_urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict = {}
USE_TZ = True
