"""bench/ takes its PostgreSQL and Redis servers from DATABASE_URL and REDIS_URL, never its own guesses."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import common

ROOT = Path(__file__).resolve().parents[2]
SERVER = "postgres://app:p%40ss@db.internal:6543/smsportal?sslmode=require"


def test_its_databases_are_on_the_database_url_server():
    assert common.db_url("bench_smsportal", SERVER) == (
        "postgres://app:p%40ss@db.internal:6543/bench_smsportal?sslmode=require"
    )
    assert common.pg_url("bench_x", SERVER) == "postgresql://app:p%40ss@db.internal:6543/bench_x?sslmode=require"
    assert common.default_db(server=SERVER) == "bench_smsportal"
    assert common.default_db("_smoke", SERVER) == "bench_smsportal_smoke"
    assert common.default_db(server="postgresql://h/") == "bench_postgres"


def test_create_and_drop_run_from_the_database_url_database_unless_it_is_a_bench_one():
    assert common.admin_url(SERVER).endswith("@db.internal:6543/smsportal?sslmode=require")
    assert common.admin_url("postgresql://h:5432/bench_smsportal").endswith("h:5432/postgres")


def test_it_refuses_a_database_that_is_not_postgresql():
    with pytest.raises(SystemExit):
        common.db_url("bench_x", "sqlite:///var/smsportal.sqlite3")


@pytest.mark.parametrize(
    ("server", "db", "expected"),
    [
        ("redis://:secret@cache.internal:6380/15", 8, "redis://:secret@cache.internal:6380/8"),
        ("redis://127.0.0.1:6379/8", 8, "redis://127.0.0.1:6379/7"),  # never REDIS_URL's own db
        ("redis://127.0.0.1:6379", 0, "redis://127.0.0.1:6379/1"),  # no db is db 0
        ("rediss://u:pw@cache:6390/2?ssl_cert_reqs=none", 9, "rediss://u:pw@cache:6390/9?ssl_cert_reqs=none"),
        ("redis://cache?db=3", 9, "redis://cache/9"),
    ],
)
def test_its_redis_is_another_db_on_the_redis_url_server(server, db, expected):
    assert common.redis_url(db, server) == expected


def test_the_command_line_defaults_follow_the_environment():
    code = (
        "import argparse\n"
        "from bench import dashboard, fanout, imports, soak, webhooks\n"
        "for m in (dashboard, fanout, imports, soak, webhooks):\n"
        "    p = argparse.ArgumentParser(); m.add_arguments(p); a = p.parse_args([])\n"
        "    print(m.__name__, a.db, getattr(a, 'redis_url', '-'))\n"
    )
    env = dict(os.environ, DATABASE_URL="postgresql://u@pg.example:5433/portal", REDIS_URL="redis://:pw@rd:6381/4")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "bench.dashboard bench_portal redis://:pw@rd:6381/9",
        "bench.fanout bench_portal redis://:pw@rd:6381/9",
        "bench.imports bench_portal redis://:pw@rd:6381/9",
        "bench.soak bench_portal -",
        "bench.webhooks bench_portal redis://:pw@rd:6381/9",
    ]


def test_bench_help_lists_every_command(capsys):
    """A ``%`` in a benchmark's first docstring line once broke ``python -m bench --help``."""
    from bench.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "imports" in capsys.readouterr().out
