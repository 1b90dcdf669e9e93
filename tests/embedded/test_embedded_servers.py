"""The embedded PostgreSQL and Redis: shared by processes, stopped by the last one, robust to crashes.

Each test runs real servers in its own folder, from child processes that import
the real settings with no DATABASE_URL or REDIS_URL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smsportal import embedded

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.portal

# A process that uses the embedded servers through settings, prints their pids, and
# holds them until its stdin closes.
HOLDER = """
import sys, django
django.setup()
from django.conf import settings
from django.db import connection
from smsportal import embedded
connection.ensure_connection()
print(embedded.running_pids(settings.VAR_DIR), settings.DATABASE_URL, settings.REDIS_URL, flush=True)
sys.stdin.read()
"""


def _env(var_dir: Path, **extra: str) -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL", "SMSPORTAL_", "SMS_", "CELERY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(DJANGO_SETTINGS_MODULE="smsportal.settings", SMSPORTAL_VAR_DIR=str(var_dir), **extra)
    return env


def _holder(var_dir: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=ROOT,
        env=_env(var_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return proc, line


def _manage(var_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(var_dir),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()


@pytest.fixture
def var_dir(tmp_path):
    yield tmp_path / "var"
    embedded.stop(tmp_path / "var")  # whatever a failed test left running


def test_processes_share_one_pair_of_servers_and_the_last_one_out_stops_them(var_dir):
    first, seen_first = _holder(var_dir)
    second, seen_second = _holder(var_dir)
    assert seen_first == seen_second  # same pids, same URLs: found, not started twice
    pids = embedded.running_pids(var_dir)
    assert set(pids) == {"postgres", "redis"}
    assert "unix://" in seen_first and "%2F" in seen_first  # Unix sockets only

    _release(first)
    assert embedded.running_pids(var_dir) == pids  # still in use by the second
    _release(second)
    assert embedded.running_pids(var_dir) == {}
    assert not (var_dir / "postgres/postmaster.pid").exists()


def test_after_a_sigkill_the_next_process_reuses_the_servers_and_stops_them(var_dir):
    crashed, _ = _holder(var_dir)
    pids = embedded.running_pids(var_dir)
    crashed.send_signal(signal.SIGKILL)
    crashed.wait()
    assert embedded.running_pids(var_dir) == pids  # orphaned, not corrupted

    result = _manage(var_dir, "check")
    assert result.returncode == 0, result.stderr
    assert embedded.running_pids(var_dir) == {}  # the last user stopped the orphans


def test_stale_pid_files_and_sockets_from_a_crash_do_not_block_a_start(var_dir):
    first, _ = _holder(var_dir)
    pids = embedded.running_pids(var_dir)
    # The servers die too (a power cut): their pid files and sockets stay behind.
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(0.5)
    assert (var_dir / "postgres/postmaster.pid").exists()
    (var_dir / "run/redis.pid").write_text(str(os.getpid()))  # a pid reused by an unrelated process
    assert embedded.running_pids(var_dir) == {}

    second, _ = _holder(var_dir)
    assert set(embedded.running_pids(var_dir)) == {"postgres", "redis"}
    _release(second)


def test_concurrent_first_starts_make_one_server(var_dir):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER],
            cwd=ROOT,
            env=_env(var_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    lines = {p.stdout.readline() for p in procs}
    assert len(lines) == 1, [p.stderr.read() for p in procs]
    for p in procs:
        _release(p)
    assert embedded.running_pids(var_dir) == {}


def test_production_never_falls_back_to_the_embedded_servers(var_dir):
    env = _env(var_dir, PRODUCTION="true", SECRET_KEY="x" * 60, ALLOWED_HOSTS="sms.example.org")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DATABASE_URL is required" in result.stderr
    assert not (var_dir / "postgres").exists()


def test_backup_then_restore_brings_the_data_back(var_dir, tmp_path):
    holder, _ = _holder(var_dir)
    try:
        assert _manage(var_dir, "migrate", "-v0").returncode == 0
        add = "from recipients.models import RecipientList as L; L.objects.create(name={!r})"
        assert _manage(var_dir, "shell", "-c", add.format("Before backup")).returncode == 0
        # A message row too: the messages table is partitioned, which pg_restore --clean could not drop.
        message = "from messaging.models import Message as M; M.objects.create(to='+14155550100', kind='single')"
        assert _manage(var_dir, "shell", "-c", message).returncode == 0
        backup = tmp_path / "smsportal.dump"
        result = _manage(var_dir, "backup", str(backup))
        assert result.returncode == 0, result.stderr
        assert backup.stat().st_size > 0

        assert _manage(var_dir, "shell", "-c", add.format("After backup")).returncode == 0
        refused = _manage(var_dir, "restore", str(backup), stdin="no\n")
        assert refused.returncode != 0 and "cancelled" in refused.stderr
        result = _manage(var_dir, "restore", str(backup), "--noinput")
        assert result.returncode == 0, result.stderr

        names = _manage(
            var_dir,
            "shell",
            "-c",
            "from recipients.models import RecipientList as L; print(sorted(L.objects.values_list('name', flat=True)))",
        )
        assert "'Before backup'" in names.stdout and "After backup" not in names.stdout
        count = "from messaging.models import Message as M; print('messages', M.objects.count())"
        assert "messages 1" in _manage(var_dir, "shell", "-c", count).stdout

        not_a_backup = tmp_path / "notes.txt"
        not_a_backup.write_text("hello")
        result = _manage(var_dir, "restore", str(not_a_backup), "--noinput")
        assert result.returncode != 0 and "not a backup" in result.stderr
    finally:
        _release(holder)
