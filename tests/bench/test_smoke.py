"""Every benchmark runs end to end at a tiny size (CI proves they work; no timing is asserted).

Each runs ``python -m bench ...`` in a child process against its own database (bench_smsportal_smoke),
Redis db 8, and a results directory under tmp_path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DB = "bench_smsportal_smoke"
REDIS = "redis://127.0.0.1:6379/8"

pytestmark = pytest.mark.worker


def bench(tmp_path: Path, *argv: str, timeout: float = 240) -> dict:
    cmd = [sys.executable, "-m", "bench", *argv, "--results-dir", str(tmp_path)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    files = sorted(tmp_path.glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert files, run.stdout
    return json.loads(files[-1].read_text())


def test_fanout_sends_every_message_once_and_measures_references(tmp_path):
    r = bench(
        tmp_path,
        "fanout",
        "--n",
        "300",
        "--workers",
        "1",
        "--latency-ms",
        "0",
        "--naive-n",
        "20",
        "--ceiling-n",
        "100",
        "--db",
        DB,
        "--redis-url",
        REDIS,
    )
    assert r["status"] == "ok"
    assert r["accepted_by_provider"] == 300 and r["duplicates_at_provider"] == 0
    assert r["db_status_counts"] == {"queued": 300}
    assert r["db"]["sql_statements"] > 0 and r["naive_loop"]["accepted"] == 20
    assert [c["accepted"] for c in r["ceiling"]] == [100, 100]
    assert r["machine"]["cores"] >= 1 and r["peak_rss_mb_per_worker"]["w0"] > 0


def test_import_rejects_the_invalid_rows_and_reports_a_rate(tmp_path):
    r = bench(tmp_path, "imports", "--n", "400", "--db", DB, "--redis-url", REDIS)
    assert r["rows"] == 400 and 0 < r["rejected"] < 60
    assert r["created"] + r["rejected"] <= 400 and r["rows_per_second"] > 0
    assert r["ceiling_phonenumbers_one_core"]["rows"] == 400


def test_webhooks_are_all_accepted_and_stored(tmp_path):
    r = bench(
        tmp_path,
        "webhooks",
        "--seconds",
        "1",
        "--requests",
        "300",
        "--concurrency",
        "4",
        "--db",
        DB,
        "--redis-url",
        REDIS,
    )
    assert r["status"] == "ok", r["ours"]
    assert r["events_stored"] > 0 and r["ceiling_bare_django"]["rate"] > 0


def test_dashboard_pages_answer_200(tmp_path):
    r = bench(tmp_path, "dashboard", "--messages", "500", "--requests", "3", "--db", DB, "--redis-url", REDIS)
    assert r["status"] == "ok", {k: r[k] for k in ("campaign_detail_page", "api_stats")}
    assert sum(r["messages_by_status"].values()) == 500


def test_soak_holds_its_three_promises(tmp_path):
    r = bench(
        tmp_path,
        "soak",
        "--n",
        "300",
        "--opt-outs",
        "5",
        "--sender-mps",
        "60",
        "--redis-port",
        "6391",
        "--lease-seconds",
        "10",
        "--unknown-hours",
        "0.002",
        "--db",
        DB,
        timeout=300,
    )
    assert r["checks"] == {
        "every_message_final": True,
        "zero_duplicates_at_provider": True,
        "zero_sends_after_opt_out": True,
    }
    events = " | ".join(t[1] for t in r["timeline"])
    assert "5 recipients opted out" in events and "SIGKILL worker w1" in events
    assert "redis-server restarted" in events and "worker w1 restarted" in events


def test_report_renders_a_table_from_results(tmp_path):
    (tmp_path / "webhooks.json").write_text(json.dumps({"status": "not_measured", "reason": "no view"}))
    out = subprocess.run(
        [sys.executable, "-m", "bench", "report", "--results-dir", str(tmp_path), "--stdout"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "| webhooks | not measured: no view |" in out
    assert "| fan-out | not measured: no result |" in out
