"""gunicorn settings, read automatically from the working directory (Dockerfile, compose, README).

WEB_CONCURRENCY sets the worker count (default 2 per core + 1) and GUNICORN_THREADS the threads
of each (default 8); webhooks and pages are short, database-bound requests, so more processes
and threads than cores keep the CPU busy.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Threads per worker (gthread): a webhook waits milliseconds for its durable COMMIT; threads let a worker
# parse the next callbacks meanwhile, and concurrent callbacks share one COMMIT (providers/events.py).
# Each thread holds its own PostgreSQL connection: WEB_CONCURRENCY x GUNICORN_THREADS per host.
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The access log masks webhook URL secrets and phone numbers in query strings (see the module).
logger_class = "smsportal.accesslog.MaskedAccessLogger"
