"""Settings for the test suite: real PostgreSQL and Redis unless the environment says otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Under pytest-xdist each worker has its own test database (pytest-django adds _gw<n>) and its own
# Redis db, one below the given one per worker: every test flushes its db.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _xdist_worker.startswith("gw") and not os.environ.get("SMSPORTAL_XDIST_REDIS_SET"):
    _base, _, _db = os.environ["REDIS_URL"].rpartition("/")
    os.environ["REDIS_URL"] = f"{_base}/{int(_db or 0) - int(_xdist_worker[2:])}"
    os.environ["SMSPORTAL_XDIST_REDIS_SET"] = "1"
os.environ.setdefault("SMS_BACKEND", "providers.backends.locmem.SMSBackend")
os.environ.setdefault("SMS_SANDBOX_DELAY_SECONDS", "0")
os.environ.setdefault("SMS_RETRY_BASE_SECONDS", "0.2")
os.environ.setdefault("SMSPORTAL_TESTING", "1")

from smsportal.settings import *  # noqa: E402, F403

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

# live_server answers each request in a new thread: persistent connections would pile up.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
