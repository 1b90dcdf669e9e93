"""Every benchmark runs end to end at a tiny size and writes a well-formed result file.

No speed, rate, latency or ratio is asserted: on a small shared machine a tiny run measures noise.
Checked instead: the command exits 0 and writes one strict-JSON result with the documented keys and
types, the correctness figures hold (everything sent was accepted and stored, no message sent twice,
the soak's three promises), and the report can render the result.

Servers come from DATABASE_URL and REDIS_URL (``scripts/test`` sets defaults): each benchmark gets its
own database on that PostgreSQL server (``bench_<its database>_smoke_<benchmark>``) and its own db
on that Redis server (never REDIS_URL's own db); the soak starts its own redis-server on a free port.

Fan-out, import, webhooks and dashboard start together (``started``) and overlap their process
start-ups; each test waits for its own. The soak runs alone: its opt-out check allows 1.5 s, and
CPU taken by the others must not eat into that.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import common, report

ROOT = Path(__file__).resolve().parents[2]
NUM = (int, float)
FANOUT = {"n": 200, "naive": 20, "ceiling": 50}
IMPORT_N = 400
DASHBOARD = {"messages": 500, "requests": 3}
REDIRECT = {"links": 1000, "requests": 20, "codes": 5}
PACING = {"n": 12, "numbers": 4, "account_mps": 4}

pytestmark = pytest.mark.worker


def db(name: str) -> str:
    return common.default_db(f"_smoke_{name}")


# one Redis db each (they flush it at start), none of them REDIS_URL's own
REDIS = dict(
    zip(
        ("fanout", "imports", "webhooks", "dashboard", "pacing", "redirect"),
        (common.redis_url(n) for n in (8, 7, 6, 5, 4, 3, 2) if n != common.redis_db_of()),
        strict=False,
    )
)

ARGS = {
    "fanout": [
        *("--n", str(FANOUT["n"]), "--workers", "1", "--latency-ms", "0"),
        *("--naive-n", str(FANOUT["naive"]), "--ceiling-n", str(FANOUT["ceiling"])),
    ],
    "imports": ["--n", str(IMPORT_N)],
    # --aiohttp: exact accounting, every request sent is counted (wrk leaves its last ones uncounted)
    "webhooks": ["--seconds", "0.5", "--warmup", "0.2", "--requests", "50", "--concurrency", "4", "--aiohttp"],
    "dashboard": ["--messages", str(DASHBOARD["messages"]), "--requests", str(DASHBOARD["requests"])],
    "redirect": [
        *("--links", str(REDIRECT["links"]), "--requests", str(REDIRECT["requests"])),
        *("--codes", str(REDIRECT["codes"]), "--webhook"),
    ],
    "pacing": [
        *("--n", str(PACING["n"]), "--numbers", str(PACING["numbers"])),
        *("--account-mps", str(PACING["account_mps"]), "--workers", "1", "--latency-ms", "0"),
    ],
}


def _strict(constant: str):
    raise ValueError(f"{constant} in a result file (not JSON)")


class Bench:
    """``python -m bench <argv> --results-dir <dir>`` in a child process, output to a file."""

    def __init__(self, directory: Path, *argv: str):
        self.dir = directory
        self.results = directory / "results"
        self.log = directory / "output.log"
        cmd = [sys.executable, "-m", "bench", *argv, "--results-dir", str(self.results)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def result(self, timeout: float = 240) -> dict:
        """Its one result, checked for the keys every result has."""
        try:
            rc = self.proc.wait(timeout)
        finally:
            self.stop()
        output = self.log.read_text(errors="replace")[-6000:]
        assert rc == 0, output
        files = list(self.results.glob("*.json"))
        assert len(files) == 1, (files, output)
        r = json.loads(files[0].read_text(), parse_constant=_strict)
        assert r["name"] == files[0].stem
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["finished_at"])
        m = r["machine"]
        has(m, cores=int, memory_gb=NUM, python=str, load_avg_at_start=list, load_avg_at_end=list)
        assert m["cores"] >= 1 and len(m["load_avg_at_start"]) == len(m["load_avg_at_end"]) == 3
        return r

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: the harness stops its children on the way out
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def started(request, tmp_path_factory):
    """The selected ones of fan-out, import, webhooks and dashboard, all started at once."""
    selected = {item.name for item in request.session.items}
    runs = {
        name: Bench(tmp_path_factory.mktemp(name), name, *argv, "--db", db(name), "--redis-url", REDIS[name])
        for name, argv in ARGS.items()
        if any(test.startswith(f"test_{name}_") for test in selected)
    }
    yield runs
    for run in runs.values():
        run.stop()


def has(d: dict, **types) -> None:
    """``d`` has each key, of the given type (or tuple of types)."""
    for key, typ in types.items():
        assert key in d, f"{key!r} missing from {sorted(d)}"
        assert isinstance(d[key], typ), f"{key!r} is {d[key]!r}, not {typ}"


def report_row(r: dict, starts: str) -> str:
    """The report's row for this result: the result has everything the report reads."""
    rows = [line for line in report.table({r["name"]: r}).splitlines() if line.startswith(starts)]
    assert len(rows) == 1, report.table({r["name"]: r})
    assert "not measured" not in rows[0], rows[0]
    return rows[0]


def test_fanout_sends_every_message_once_and_runs_its_references(started):
    n, naive_n, ceiling_n = FANOUT["n"], FANOUT["naive"], FANOUT["ceiling"]
    r = started["fanout"].result()
    assert r["name"] == f"fanout_{n}_0ms" and r["status"] == "ok"
    assert r["params"]["n"] == n and r["params"]["workers"] == 1
    assert r["accepted_by_provider"] == n and r["duplicates_at_provider"] == 0
    assert r["db_status_counts"] == {"queued": n}  # callbacks are off: every row ends accepted, once
    has(r, messages_per_second=NUM, seconds_to_first_send=NUM, seconds_launch_to_all_recorded=NUM, progress=list)
    has(r["db"], sql_statements=int, transactions=int, sql_statements_per_message=NUM, transactions_per_message=NUM)
    assert r["db"]["sql_statements"] > 0  # the workers' statement counter is wired up
    assert set(r["peak_rss_mb_per_worker"]) == {"w0"} and isinstance(r["peak_rss_mb_per_worker"]["w0"], NUM)
    assert r["naive_loop"]["requests"] == r["naive_loop"]["accepted"] == naive_n
    assert [(c["client"], c["requests"], c["accepted"]) for c in r["ceiling"]] == [
        ("aiohttp", ceiling_n, ceiling_n),
        ("httpx-aiohttp", ceiling_n, ceiling_n),
    ]
    has(r, ratio_to_naive=NUM, ratio_to_ceiling=NUM, requests_to_provider=int, requests_per_message=NUM)
    report_row(r, f"| fan-out {n} recipients")


def test_imports_rejects_exactly_the_invalid_rows(started):
    n = IMPORT_N
    r = started["imports"].result()
    assert r["name"] == f"imports_{n}" and r["status"] == "ok"
    ceiling = r["ceiling_phonenumbers_one_core"]
    assert r["rows"] == ceiling["rows"] == n
    # the generated numbers are all different: every valid one is new, every invalid one rejected
    assert r["rejected"] == n - ceiling["valid"] > 0
    assert r["created"] == ceiling["valid"]
    has(r, seconds_import=NUM, seconds_command_wall=NUM, peak_rss_mb=NUM, rows_per_second=(*NUM, type(None)))
    has(ceiling, rate=NUM, seconds=NUM, cpu_seconds=NUM)
    # CPU-seconds (the figures a shared machine does not move much); a tiny import may end before
    # its PostgreSQL backend is sampled.
    has(r, cpu_seconds_import_process=NUM, cpu_seconds_postgres_backend=(*NUM, type(None)))
    has(r, cpu_seconds_parsing_processes=NUM)  # 0 for a file too small to be parsed in processes
    # phonenumbers is timed just before and just after the import; the ceiling is both together
    assert ceiling["before"]["rows"] == ceiling["after"]["rows"] == n
    if r["rows_per_second"] is not None:
        report_row(r, "| import")


def test_webhooks_are_all_accepted_and_stored(started):
    r = started["webhooks"].result()
    assert r["status"] == "ok", r
    assert r["params"]["distinct_requests"] == 50 and r["accounting"] == "exact"
    ours, light, ceiling = r["ours"], r["ours_light_load"], r["ceiling_bare_django"]
    for run, concurrency in ((ours, 4), (light, 2), (ceiling, 4)):
        # every client sends at least one measured request, so each run measured something
        assert run["concurrency"] == concurrency and run["requests"] >= concurrency, run
        assert run["ok"] == run["requests"] and run["errors"] == 0 and run["status_codes"] == {"200": run["ok"]}
        assert run["accepted_total"] == run["sent_total"] >= run["requests"]
        has(run, rate=NUM, seconds=NUM, p50_ms=NUM, p99_ms=NUM, max_ms=NUM)
        cpu = run["cpu_ms_per_request"]
        has(cpu, gunicorn=NUM, postgresql=NUM, total=NUM)
        assert cpu["total"] == pytest.approx(cpu["gunicorn"] + cpu["postgresql"], abs=0.01)
    # every signed callback sent to the portal, warm-ups included, was answered 200 and stored once
    assert r["requests_sent_total"] == ours["sent_total"] + light["sent_total"]
    assert r["events_stored"] == r["requests_accepted_total"] == r["requests_sent_total"]
    has(r, ratio_to_ceiling=NUM, cpu_ratio_to_ceiling=NUM)
    report_row(r, "| webhooks")


def test_dashboard_pages_answer_200(started):
    n, requests = DASHBOARD["messages"], DASHBOARD["requests"]
    r = started["dashboard"].result()
    pages = ("campaign_detail_page", "campaign_status_fragment", "api_stats")
    assert r["name"] == f"dashboard_{n}" and r["status"] == "ok", {k: r[k] for k in pages}
    for page in pages:
        assert r[page]["requests"] == requests and r[page]["status_codes"] == {"200": requests}
        has(r[page], p50_ms=NUM, p95_ms=NUM, p99_ms=NUM, max_ms=NUM)
    assert sum(r["messages_by_status"].values()) == n
    assert r["short_link_redirect"]["status_codes"] == {"302": requests}  # every visit counted and redirected
    report_row(r, "| dashboard")
    report_row(r, "| tracked short link redirect")


def test_redirect_counts_every_click_and_times_it_against_its_references(started):
    requests = REDIRECT["requests"]
    r = started["redirect"].result()
    assert r["name"] == f"redirect_{REDIRECT['links']}_webhook" and r["status"] == "ok"
    assert r["params"]["links"] == REDIRECT["links"] and r["params"]["distinct_codes"] == REDIRECT["codes"]
    assert r["redirect"]["status_codes"] == {"302": requests}  # to the stored URL, every time
    assert r["reference_302_full_stack"]["status_codes"] == {"302": requests}
    assert r["clicks_counted"] == r["clicks_expected"]  # each visit counted exactly once
    assert r["link_clicked_events"] == 2 * (REDIRECT["requests"] + 50)  # one per click through record_click
    references = ("reference_302_full_stack", "reference_click_sql", "reference_click_sql_synchronous")
    for key in ("redirect", *references, "reference_select_1"):
        has(r[key], p50_ms=NUM, p95_ms=NUM, p99_ms=NUM, max_ms=NUM)
    has(r, ratio_p50_to_reference_302=NUM, ratio_p50_to_click_sql=NUM, ratio_p50_to_select_1=NUM, target_met=bool)
    report_row(r, "| short link redirect")


def test_pacing_sends_every_message_once_and_measures_its_windows(started):
    # Keys and exactly-once only: whether a 1-second window at the provider goes over the limit
    # depends on how late the machine delivers a request after its turn, so it is reported by
    # the real run (bench/README.md), not asserted here.
    n = PACING["n"]
    r = started["pacing"].result()
    assert r["name"] == f"pacing_{n}" and r["status"] == "ok"
    assert r["accepted_by_provider"] == r["sends"] == n and r["duplicates_at_provider"] == 0
    assert r["db_status_counts"] == {"queued": n}
    assert len(r["per_number"]) == PACING["numbers"]
    assert sum(v["sends"] for v in r["per_number"].values()) == n
    has(r, achieved_rate=NUM, achieved_ratio_to_account_limit=NUM, seconds_first_to_last=NUM)
    has(r, no_window_over_limit=bool, rate_within_97_100pct=bool, numbers_windows_over_limit=int)
    has(r["account"], busiest_1s_window=int, windows_over_limit=int, min_gap_s=NUM)
    report_row(r, "| pacing")


def test_soak_holds_its_three_promises(tmp_path):
    n, opt_outs = 150, 5
    r = Bench(
        tmp_path,
        "soak",
        *("--n", str(n), "--opt-outs", str(opt_outs), "--sender-mps", "60", "--batch-size", "50"),
        *("--redis-port", "0"),  # a free port for its private redis-server
        # the killed worker's rows come back after the shortest lease; lost tasks are queued again after 5 s
        *("--lease-seconds", "10", "--unknown-resend-seconds", "10", "--redispatch-seconds", "5"),
        *("--db", db("soak")),
    ).result(timeout=300)
    assert r["checks"] == {
        "every_message_final": True,
        "zero_duplicates_at_provider": True,
        "zero_sends_after_opt_out": True,
    }
    assert r["status"] == "pass" and r["non_final"] == 0 and r["provider"]["duplicates"] == 0
    assert sum(r["messages_by_status"].values()) == n and r["opted_out"] == opt_outs
    events = " | ".join(t[1] for t in r["timeline"])
    assert f"{opt_outs} recipients opted out" in events and "SIGKILL worker w1" in events
    assert "redis-server restarted" in events and "worker w1 restarted" in events
    has(r, seconds_launch_to_all_final=NUM, progress=list, sends_after_opt_out=list)
    report_row(r, "| fault soak")


def test_purge_drops_the_expired_month_and_deletes_the_reference_rows(tmp_path):
    n = 300
    r = Bench(tmp_path, "purge", "--n", str(n), "--db", db("purge")).result()
    assert r["name"] == f"purge_{n}" and r["status"] == "ok"
    assert r["partition_purge"]["messages_deleted"] == n and r["row_delete_reference"]["messages_deleted"] == n
    assert r["partition_purge"]["partitions_dropped"] >= 1 and r["recent_messages_kept"] == n // 10
    has(r["partition_purge"], seconds=NUM)
    has(r["row_delete_reference"], seconds=NUM)
    report_row(r, "| purge of")


def test_dashboard_over_monthly_partitions_answers_200(tmp_path):
    redis_db = 2 if common.redis_db_of() != 2 else 1  # not the other benches' dbs, nor REDIS_URL's own
    r = Bench(
        tmp_path,
        *("dashboard", "--messages", "240", "--months", "3", "--requests", "2"),
        *("--db", db("dashboard_months"), "--redis-url", common.redis_url(redis_db)),
    ).result()
    assert r["name"] == "dashboard_240_3_months" and r["status"] == "ok"
    assert r["params"]["monthly_partitions"] == 3 and sum(r["messages_by_status"].values()) == 80
    report_row(r, "| dashboard, 240 messages across 3 monthly partitions")


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


def test_outage_fails_over_without_auto_pausing_and_resume_sends_again(tmp_path):
    n, pause_n = 80, 40  # 2 s of sending at 20/s: some are left for after the resume even on a busy machine
    r = Bench(
        tmp_path,
        "outage",
        *("--n", str(n), "--workers", "1", "--sender-mps", "20", "--batch-size", "20", "--redispatch-seconds", "5"),
        # Plivo fails from the 20th send for 2 s; both decisions need only a few sends at this size
        *("--outage-at", "0.25", "--outage-seconds", "2", "--failover-min-sends", "5", "--auto-pause-min-sends", "5"),
        *("--pause-n", str(pause_n), "--pause-after", "0.3", "--pause-seconds", "1"),
        *("--redis-port", "0", "--db", db("outage")),
    ).result(timeout=300)
    assert r["checks"] == {
        "every_message_final": True,
        "each_recipient_exactly_once": True,
        "zero_duplicates_at_providers": True,
        "no_auto_pause": True,
        "failed_over": True,
        "pause_resume_each_recipient_once": True,
    }
    assert r["status"] == "pass" and r["auto_paused"] is False and r["non_final"] == 0
    assert sum(r["messages_by_status"].values()) == n
    assert r["providers"]["plivo"]["fault_5xx"] > 0  # the outage happened
    assert "auto_pause" not in [e[0] for e in r["events"]]
    has(r, seconds_outage_to_failover_event=NUM, seconds_launch_to_all_final=NUM, progress=list, events=list)
    for key in ("seconds_outage_to_first_rescued_flowroute_send", "seconds_heal_to_first_plivo_send"):
        has(r, **{key: (*NUM, type(None))})
    pr = r["pause_resume"]
    assert pr["accepted"] == pr["unique_recipients"] == pause_n
    has(pr, seconds_resume_to_next_send=NUM, seconds_pause=NUM, sent_during_pause=int)
    report_row(r, "| provider outage, mixed pool")
    report_row(r, "| pause then resume")
