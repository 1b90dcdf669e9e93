"""Shared harness: database reset, a private Redis, child processes, RSS sampling, result files."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
LOGS = ROOT / "var" / "bench"
PY = sys.executable

# Servers come from the same variables the product reads (scripts/test's defaults when unset); the
# harness only ever picks its own database on that PostgreSQL server and its own db on that Redis.
# Read once at import: django_setup() later points DATABASE_URL/REDIS_URL at the bench's own ones.
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SERVER_DATABASE_URL = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
SERVER_REDIS_URL = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
# python -m bench (BENCH_REDIS_DB moves it, so two people can run benches at once); smoke tests use 8, 7, 6, 5
BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "9"))
_PG_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}


def _pg_check(server: str) -> None:
    scheme = urlsplit(server).scheme.split("+")[0]
    if scheme not in _PG_SCHEMES:
        raise SystemExit(f"bench needs PostgreSQL: DATABASE_URL is a {scheme!r} URL")


def db_name_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def db_url(name: str, server: str | None = None) -> str:
    """``server`` (default: DATABASE_URL) with its database replaced by ``name``: same host, port,
    credentials and options. This is what the benchmark's children get as DATABASE_URL."""
    server = server or SERVER_DATABASE_URL
    _pg_check(server)
    return urlunsplit(urlsplit(server)._replace(path="/" + quote(name)))


def pg_url(name: str, server: str | None = None) -> str:
    """The same as :func:`db_url`, spelled for psycopg/libpq (which knows only postgresql://)."""
    return urlunsplit(urlsplit(db_url(name, server))._replace(scheme="postgresql"))


def default_db(suffix: str = "", server: str | None = None) -> str:
    """The bench's own database on DATABASE_URL's server: ``bench_<DATABASE_URL's database><suffix>``."""
    base = db_name_of(server or SERVER_DATABASE_URL) or "postgres"
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in f"bench_{base}{suffix}".lower())
    return name[:63]


def admin_url(server: str | None = None) -> str:
    """Where CREATE/DROP DATABASE run: DATABASE_URL's own database (``postgres`` if it is a bench one)."""
    name = db_name_of(server or SERVER_DATABASE_URL) or "postgres"
    return pg_url("postgres" if name.startswith("bench_") else name, server)


def redis_db_of(url: str | None = None) -> int:
    """The database number of a redis:// or rediss:// URL (default: REDIS_URL's)."""
    parts = urlsplit(url or SERVER_REDIS_URL)
    query = dict(parse_qsl(parts.query))
    if "db" in query:
        return int(query["db"])
    path = parts.path.strip("/")
    return int(path) if path.isdigit() else 0


def redis_url(db: int = BENCH_REDIS_DB, server: str | None = None) -> str:
    """``server`` (default: REDIS_URL) with database ``db``: same scheme, host, port, user, password.

    Never REDIS_URL's own database, which the harness would flush: ``db`` moves one down (up from 0)
    when it is the same number.
    """
    server = server or SERVER_REDIS_URL
    if db == redis_db_of(server):
        db = db - 1 if db > 0 else db + 1
    parts = urlsplit(server)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "db"]
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def add_server_arguments(p, *, redis: bool = True) -> None:
    """``--db`` and ``--redis-url``, defaulting to the bench's own ones on DATABASE_URL's and REDIS_URL's servers."""
    p.add_argument(
        "--db",
        default=default_db(),
        help="the bench's database (dropped and re-created) on DATABASE_URL's server "
        "(default: bench_<DATABASE_URL's database name>)",
    )
    if redis:
        p.add_argument(
            "--redis-url",
            default=redis_url(),
            help=f"Redis for the broker and cache, flushed at start (default: REDIS_URL's server, db {BENCH_REDIS_DB})",
        )


def reset_database(name: str, template: str | None = None) -> None:
    """Drop and create ``name`` (only databases whose name starts with ``bench_``)."""
    if not name.startswith("bench_"):
        raise SystemExit(f"refusing to reset {name!r}: bench databases are named bench_*")
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def _migrations_hash() -> str:
    import hashlib

    h = hashlib.sha1(usedforsecurity=False)
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def fresh_database(name: str, env: dict[str, str]) -> float:
    """An empty, migrated ``name``: cloned from a template made by the first migrate (same migrations)."""
    t = time.monotonic()
    template = f"bench_tpl_{_migrations_hash()}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        have = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone()
    if have:
        reset_database(name, template=template)
        return time.monotonic() - t
    reset_database(name)
    migrate(env)
    with suppress(psycopg.Error), psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
    return time.monotonic() - t


def base_env(db: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for the harness and its children: production-ish settings, DEBUG off."""
    env = dict(os.environ)
    for key in ("SMSPORTAL_TESTING", "TEST_DATABASE_NAME", "CELERY_TASK_ALWAYS_EAGER"):
        env.pop(key, None)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=db_url(db),
        REDIS_URL=redis_url,
        DEBUG="0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
        BENCH_COUNT_QUERIES="1",
        SMSPORTAL_VAR_DIR=str(LOGS / "var"),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


MIGRATION_NOTES: list[str] = []


def migrate(env: dict[str, str]) -> float:
    t = time.monotonic()
    run = subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode and "0003_audit_append_only" in run.stderr:
        # accounts.0003 passes SQL containing '%' to schema_editor.execute() with params=() and fails on
        # PostgreSQL; it only adds an audit-log trigger, which no benchmark touches. Reported to the lead.
        subprocess.run([PY, "manage.py", "migrate", "--fake", "accounts", "0003", "-v", "0"], cwd=ROOT, env=env)
        MIGRATION_NOTES.append("accounts.0003_audit_append_only faked (it fails on PostgreSQL)")
        run = subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"migrate failed:\n{run.stderr[-3000:]}")
    return time.monotonic() - t


def django_setup(env: dict[str, str]) -> None:
    """Configure Django in this process with the same environment the children get."""
    os.environ.update(env)
    for key in ("SMSPORTAL_TESTING", "TEST_DATABASE_NAME"):
        os.environ.pop(key, None)
    import django

    django.setup()
    import smsportal.celery  # noqa: F401  (makes the app current so .delay() uses our broker)


class Procs:
    """Child processes in their own sessions, stopped by process group id (only ours)."""

    def __init__(self, tag: str):
        self.dir = LOGS / tag
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def worker(
        self,
        name: str,
        env: dict[str, str],
        *,
        beat: bool = False,
        concurrency: int = 1,
        log_level: str = "INFO",
        queues: str = "",
    ) -> subprocess.Popen:
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).delete(f"bench:ready:{name}")
        self.redis_url = env["REDIS_URL"]
        cmd = [PY, "-m", "celery", "-A", "smsportal", "worker", "-l", log_level, "-c", str(concurrency)]
        cmd += ["-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        if beat:
            cmd += ["-B", "-s", str(self.dir / "beat-schedule")]
        if queues:
            cmd += ["-Q", queues]
        return self.start(name, cmd, env)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        import redis

        path = self.dir / f"{name}.log"
        rds = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rds.get(f"bench:ready:{name}"):
                return
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready after {timeout}s")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

    def log_tail(self, name: str, n: int = 3000) -> str:
        return (self.dir / f"{name}.log").read_text(errors="replace")[-n:]


class RssSampler(threading.Thread):
    """Samples the RSS of each named process tree (parent + children) and keeps the peak.

    Also CPU-seconds (user + system) used while it runs: by the named trees, and with ``pg_db``
    by the PostgreSQL backends serving that database (process title ``postgres: user db …``);
    ``others`` are trees whose CPU is kept apart (the fake provider: it shares the cores).
    ``timeline`` holds the running totals at each sample, so a window of the run can be read
    (:meth:`cpu_between`).
    """

    def __init__(
        self, pids: dict[str, int], interval: float = 0.25, pg_db: str = "", others: dict[str, int] | None = None
    ):
        super().__init__(daemon=True)
        self.pids, self.interval = dict(pids), interval
        self.others = dict(others or {})
        self._other_first: dict[tuple[str, int], float] = {}
        self._other_last: dict[tuple[str, int], float] = {}
        self.timeline: list[tuple[float, dict[str, float]]] = []
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self._halt = threading.Event()
        self.pg_db = pg_db
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._pg_first: dict[int, float] = {}
        self._pg_last: dict[int, float] = {}
        self._sample(first=True)

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    def _sample_cpu(self, first: bool = False) -> None:
        for pid in list(self.pids.values()):
            with suppress(psutil.Error):
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    with suppress(psutil.Error):
                        cpu = self._cpu(p)
                        self._cpu_first.setdefault(p.pid, cpu if first else 0.0)
                        self._cpu_last[p.pid] = cpu
        if not self.pg_db:
            return
        for p in psutil.process_iter(["name"]):
            with suppress(psutil.Error):
                if p.info["name"] != "postgres" and not (p.info["name"] or "").startswith("postgres"):
                    continue
                title = " ".join(p.cmdline())
                if f" {self.pg_db} " not in f"{title} ":
                    continue
                cpu = self._cpu(p)
                self._pg_first.setdefault(p.pid, cpu if first else 0.0)
                self._pg_last[p.pid] = cpu

    def _sample_others(self, first: bool = False) -> None:
        for name, pid in self.others.items():
            with suppress(psutil.Error):
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    with suppress(psutil.Error):
                        cpu = self._cpu(p)
                        self._other_first.setdefault((name, p.pid), cpu if first else 0.0)
                        self._other_last[(name, p.pid)] = cpu

    def _totals(self) -> dict[str, float]:
        workers = sum(self._cpu_last[p] - self._cpu_first.get(p, 0.0) for p in self._cpu_last)
        totals = {"workers": workers}
        if self.pg_db:
            totals["postgresql"] = sum(self._pg_last[p] - self._pg_first.get(p, 0.0) for p in self._pg_last)
        for name in self.others:
            totals[name] = sum(v - self._other_first.get(k, 0.0) for k, v in self._other_last.items() if k[0] == name)
        return totals

    def _sample(self, first: bool = False) -> None:
        self._sample_cpu(first=first)
        self._sample_others(first=first)
        self.timeline.append((time.time(), self._totals()))

    def cpu_seconds(self) -> dict[str, float]:
        totals = self._totals()
        return {
            "workers": round(totals["workers"], 1),
            "postgresql": round(totals["postgresql"], 1) if self.pg_db else None,
            **{name: round(totals[name], 1) for name in self.others},
        }

    def cpu_between(self, start: float, end: float) -> dict[str, float] | None:
        """CPU-seconds used between two ``time.time()`` instants (the samples nearest inside them)."""
        inside = [(t, totals) for t, totals in self.timeline if start <= t <= end]
        if len(inside) < 2:
            return None
        (t0, a), (t1, b) = inside[0], inside[-1]
        return {k: round(b[k] - a.get(k, 0.0), 3) for k in b} | {"start": t0, "end": t1, "seconds": round(t1 - t0, 2)}

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.peak.setdefault(name, 0)

    def run(self) -> None:
        while not self._halt.is_set():
            for name, pid in list(self.pids.items()):
                with suppress(psutil.Error):
                    proc = psutil.Process(pid)
                    total = proc.memory_info().rss
                    for child in proc.children(recursive=True):
                        with suppress(psutil.Error):
                            total += child.memory_info().rss
                    self.peak[name] = max(self.peak[name], total)
            self._sample()
            self._halt.wait(self.interval)

    def stop(self) -> dict[str, float]:
        self._halt.set()
        self.join(5)
        self._sample()
        return {k: round(v / 2**20, 1) for k, v in self.peak.items()}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own (no persistence) that the soak can restart without hurting anyone."""

    def __init__(self, port: int, logdir: Path):
        self.port, self.logdir, self.proc = port or free_port(), logdir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.logdir / f"redis-{self.port}.log", "ab")  # noqa: SIM115
        cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


def pg_db_counters(db: str) -> dict[str, int]:
    with psycopg.connect(pg_url(db), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched "
            "FROM pg_stat_database WHERE datname = %s",
            [db],
        ).fetchone()
    keys = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")
    return dict(zip(keys, row, strict=True))


def pg_counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before}


def machine_info() -> dict:
    info = {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with suppress(Exception), psycopg.connect(admin_url(), autocommit=True) as conn:
        info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
    with suppress(Exception):
        info["redis"] = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    with suppress(Exception):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    with suppress(Exception), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def write_result(name: str, data: dict, *, results_dir: Path | None = None) -> Path:
    out = (results_dir or RESULTS) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"name": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **data}
    payload.setdefault("machine", machine_info())
    payload["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return out


def module_exists(dotted: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:
        return False


def not_measured(name: str, reason: str, *, results_dir: Path | None = None, **extra) -> Path:
    """Record honestly that a benchmark could not run (a missing feature), never a made-up number."""
    print(f"{name}: NOT MEASURED: {reason}")
    return write_result(name, {"status": "not_measured", "reason": reason, **extra}, results_dir=results_dir)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)
