"""The embedded default in one command: migrate, seed a demo, then gunicorn, a Celery worker and beat.

It runs on whatever database and Redis settings name: the embedded servers in
``var/`` unless DATABASE_URL / REDIS_URL are set (smsportal/embedded.py). The
children are the same programs production runs. SIGTERM or Ctrl-C stops them all,
then the embedded servers; a SIGKILL takes the children with it (they are asked to
die with their parent), and the next run finds the servers and carries on.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when runportal dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Stop(Exception):
    pass


class Command(BaseCommand):
    help = "Set up and run the portal on this machine: gunicorn, a Celery worker and beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000", help="host:port to serve on")
        parser.add_argument("--no-demo", action="store_true", help="Do not seed or launch the demo")
        parser.add_argument("--password", help="Demo admin password (default: random, printed)")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
        parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes (default 2)")

    def handle(self, *args: Any, addrport: str, no_demo: bool, password: str | None, **options: Any) -> None:
        host, port = _parse_addrport(addrport)
        lock_fd = _single_instance(Path(settings.VAR_DIR))
        try:
            _check_port_free(host, port)
            call_command("migrate", interactive=False, verbosity=0)
            if not no_demo:
                call_command("seed_demo", password=password, launch=True)
            self._serve(host, port, options["web_workers"], options["worker_concurrency"])
        finally:
            os.close(lock_fd)

    def _serve(self, host: str, port: int, web_workers: int, concurrency: int) -> None:
        var_dir = Path(settings.VAR_DIR)
        env = dict(os.environ, DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL)
        # Beat's heartbeat file in this portal's own folder: two portals on one machine must not share /tmp's.
        env.setdefault("BEAT_HEARTBEAT_FILE", str(var_dir / "run" / "celerybeat-heartbeat"))
        python = sys.executable
        commands = {
            # No control socket: gunicorn's default is one path per user ($HOME/.gunicorn/gunicorn.ctl) that every
            # other gunicorn on the machine takes over, and removes when it stops.
            "web": [python, "-m", "gunicorn", "smsportal.wsgi", "-c", str(settings.BASE_DIR / "gunicorn.conf.py"),
                    "-b", f"{host}:{port}", "-w", str(web_workers), "--no-control-socket"],
            "worker": [python, "-m", "celery", "-A", "smsportal", "worker", "-l", "INFO", "-c", str(concurrency)],
            # Event webhooks have their own queue and process, so a slow receiver never holds a sender.
            "events": [python, "-m", "celery", "-A", "smsportal", "worker", "-l", "INFO", "-c", "1", "-Q", "events",
                       "-n", "events@%h"],
            # The heartbeat scheduler, as in docker-compose: without it /health said beat "not seen".
            "beat": [python, "-m", "celery", "-A", "smsportal", "beat", "-l", "INFO",
                     "-S", "smsportal.beat.HeartbeatScheduler", "-s", str(var_dir / "celerybeat-schedule")],
        }  # fmt: skip
        children: dict[str, subprocess.Popen] = {}

        def stop_requested(signum: int, frame: FrameType | None) -> NoReturn:
            raise _Stop

        previous = {sig: signal.signal(sig, stop_requested) for sig in (signal.SIGTERM, signal.SIGINT)}
        exit_code = 0
        try:
            for name, command in commands.items():
                children[name] = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, preexec_fn=_die_with_parent)
            self._wait_until_serving(host, port, children["web"])
            self.stdout.write(self.style.SUCCESS(f"Open http://{host}:{port}/ (admin at /admin/). Ctrl-C stops."))
            while True:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"The {name} process exited (code {child.returncode}); stopping the portal.")
                        exit_code = 1
                        raise _Stop
                time.sleep(0.5)
        except _Stop:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            _stop_children(children)
            self.stdout.write("Stopped the web server, worker and beat.")
        if exit_code:
            raise CommandError("A child process failed; see its output above.")

    def _wait_until_serving(self, host: str, port: int, web: subprocess.Popen) -> None:
        deadline = time.monotonic() + 60
        url = f"http://{host}:{port}/health"
        while time.monotonic() < deadline:
            if web.poll() is not None:
                raise _Stop
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:
                time.sleep(0.2)


def _parse_addrport(addrport: str) -> tuple[str, int]:
    host, sep, port = addrport.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", addrport
    try:
        number = int(port)
    except ValueError:
        raise CommandError(f"{addrport!r} is not host:port (for example 127.0.0.1:8000)") from None
    if not 0 < number < 65536:
        raise CommandError(f"Port {number} is out of range")
    return host.strip("[]") or "127.0.0.1", number


def _single_instance(var_dir: Path) -> int:
    """Hold ``var/runportal.lock`` for the life of this process; a second runportal here is refused."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "runportal.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise CommandError(
            f"Another runportal (pid {other}) is already running for {var_dir}. "
            f"Use that one, or stop it first (Ctrl-C in its terminal, or kill -TERM {other})."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"Cannot serve on {host}:{port}: {exc.strerror}. Another program is using that port: stop it, "
                f"or pass another address, for example `manage.py runportal {host}:{port + 1}`."
            ) from None


def _stop_children(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
