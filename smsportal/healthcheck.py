"""Container health checks for docker-compose.yml: ``python -m smsportal.healthcheck web|beat``.

Exit status 0 is healthy, 1 unhealthy; one line on stdout says why (``docker inspect``
shows it). The worker's check needs no code here: ``celery inspect ping`` asks the
worker itself.

web
    GET /health from gunicorn inside the container. The Host header is the first
    ALLOWED_HOSTS entry, because production refuses (400) any other Host, 127.0.0.1
    included. The request is plain HTTP, which the SSL redirect lets through because
    /health is in SECURE_REDIRECT_EXEMPT. /health answers 200 only when the database,
    Redis and the broker answer and beat is not late, within 2 s (smsportal/health.py).

beat
    beat runs through smsportal.beat.HeartbeatScheduler, which touches a heartbeat file
    each time it has handed a task to the broker. The schedule has entries every few
    seconds, so a heartbeat older than BEAT_HEARTBEAT_MAX_AGE means beat is stuck or
    cannot publish. The schedule file's mtime would not do: beat rewrites it only every
    3 minutes, and does so whether or not its tasks reached the broker.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

DEFAULT_HEARTBEAT_FILE = "/tmp/celerybeat-heartbeat"  # noqa: S108 - inside the beat container only
DEFAULT_HEARTBEAT_MAX_AGE = 60.0  # seconds; the shortest beat_schedule interval is 5 s


def health_host(environ: Mapping[str, str]) -> str:
    """A Host header that ALLOWED_HOSTS accepts: its first entry, made concrete."""
    hosts = [h.strip() for h in environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    host = hosts[0] if hosts else "localhost"
    if host == "*":
        return "localhost"
    return host.removeprefix(".")  # ".example.org" also matches example.org itself


def health_url(environ: Mapping[str, str]) -> str:
    """gunicorn's own address (gunicorn.conf.py binds GUNICORN_BIND, default 0.0.0.0:8000)."""
    _, _, port = environ.get("GUNICORN_BIND", "0.0.0.0:8000").rpartition(":")
    return f"http://127.0.0.1:{port if port.isdigit() else '8000'}/health"


def check_web(environ: Mapping[str, str], *, host: str | None = None, timeout: float = 3.0) -> tuple[bool, str]:
    url = health_url(environ)
    host = host or health_host(environ)
    request = urllib.request.Request(url, headers={"Host": host})  # noqa: S310 - a fixed http:// URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return True, f"{url} (Host: {host}): {response.status}"
    except urllib.error.HTTPError as exc:  # 400 bad Host, 503 a part down, 3xx redirect
        return False, f"{url} (Host: {host}): {exc.code} {exc.read()[:200]!r}"
    except OSError as exc:
        return False, f"{url} (Host: {host}): {exc}"


def heartbeat_file(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("BEAT_HEARTBEAT_FILE", DEFAULT_HEARTBEAT_FILE))


def check_beat(environ: Mapping[str, str], *, now: float | None = None) -> tuple[bool, str]:
    path = heartbeat_file(environ)
    max_age = float(environ.get("BEAT_HEARTBEAT_MAX_AGE", DEFAULT_HEARTBEAT_MAX_AGE))
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False, f"{path}: no heartbeat yet (beat has published nothing)"
    if age > max_age:
        return False, f"{path}: last task published {age:.0f} s ago (limit {max_age:.0f} s)"
    return True, f"{path}: last task published {age:.0f} s ago"


CHECKS: dict[str, Callable[[Mapping[str, str]], tuple[bool, str]]] = {"web": check_web, "beat": check_beat}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in CHECKS:
        print(f"usage: python -m smsportal.healthcheck {'|'.join(CHECKS)}")
        return 1  # Docker reserves 2; a wrong check is an unhealthy one
    ok, detail = CHECKS[args[0]](os.environ)
    print(("ok: " if ok else "unhealthy: ") + detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
