"""Product settings plus the bench app, which counts SQL statements per process (see bench/apps.py)."""

from smsportal.settings import *  # noqa: F403
from smsportal.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.BenchConfig"]
