"""Import: rows/s and peak RSS of ``manage.py import_recipients`` on a generated CSV with 5% invalid rows.

Same run: bare phonenumbers parse + is_valid_number + format(E164) on one core over the same numbers
(the ceiling), just before and just after the import (a shared machine's load moves within a minute).
"""

from __future__ import annotations

import csv
import os
import random
import re
import threading
import time

import redis

from bench import common


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--invalid", type=float, default=0.05)
    common.add_server_arguments(p)
    p.add_argument("--name", default="")
    p.add_argument("--results-dir", default="")


def generate(path, n: int, invalid: float, seed: int = 9) -> list[str]:
    """A CSV in the shapes people export: E.164, national with punctuation, and 5% junk."""
    rng = random.Random(seed)
    phones = []
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        # An opt-in needs its evidence (docs/recipients.md): the text of the consent and when.
        w.writerow(["phone", "first_name", "last_name", "city", "consent", "consent_evidence", "consent_at"])
        for i in range(n):
            local = 2000000 + i
            if rng.random() < invalid:
                phone = rng.choice(["12345", "not a number", f"+1415{local % 100000:05d}", "+999" + str(local), ""])
            else:
                shape = i % 3
                if shape == 0:
                    phone = f"+1415{local:07d}"
                elif shape == 1:
                    phone = f"(415) {str(local)[:3]}-{str(local)[3:]}"
                else:
                    phone = f"1-415-{str(local)[:3]}-{str(local)[3:]}"
            phones.append(phone)
            city = rng.choice(["Oakland", "Fresno", "Napa"])
            w.writerow([phone, f"First{i}", f"Last{i}", city, "yes", "web form: text me offers", "2026-05-01"])
    return phones


class BackendCpu(threading.Thread):
    """CPU-seconds of the PostgreSQL backends serving ``db`` (the import's connection), from /proc.

    The machine is shared: wall-clock rates move with other people's load, CPU-seconds much less."""

    def __init__(self, db: str):
        super().__init__(daemon=True)
        self.db, self.seen, self.done = db, {}, threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(common.admin_url(), autocommit=True) as conn:
            while not self.done.wait(0.1):
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.db]
                ).fetchall()
                for (pid,) in pids:
                    try:
                        fields = common.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:  # gone, or another host
                        continue
                    self.seen[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float | None:
        self.done.set()
        self.join()
        return round(sum(self.seen.values()), 2) if self.seen else None

    def busiest(self) -> float | None:
        """The busiest backend's CPU-seconds (an import writes on several connections in turns)."""
        return round(max(self.seen.values()), 2) if self.seen else None


def phonenumbers_ceiling(phones: list[str]) -> dict:
    import phonenumbers

    ok = 0
    cpu = time.process_time()
    t = time.perf_counter()
    for raw in phones:
        try:
            num = phonenumbers.parse(raw, "US")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num):
            phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
            ok += 1
    elapsed = time.perf_counter() - t
    cpu = time.process_time() - cpu
    return {
        "rows": len(phones),
        "valid": ok,
        "seconds": round(elapsed, 3),
        "rate": round(len(phones) / elapsed, 1),
        "cpu_seconds": round(cpu, 3),
    }


def run(args) -> dict:
    name = args.name or f"imports_{args.n}"
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    if not (common.ROOT / "recipients/management/commands/import_recipients.py").exists():
        return {"path": common.not_measured(name, "no import_recipients command", results_dir=results_dir)}
    machine = common.machine_info()
    redis.Redis.from_url(args.redis_url).flushdb()
    env = common.base_env(args.db, args.redis_url)
    env.pop("BENCH_COUNT_QUERIES", None)
    common.fresh_database(args.db, env)
    procs = common.Procs(name)
    csv_path = procs.dir / "recipients.csv"
    phones = generate(csv_path, args.n, args.invalid)
    cmd = [common.PY, "manage.py", "import_recipients", str(csv_path), "--list", "bench", "--region", "US"]
    cmd += ["--consent-column", "consent", "--show-errors", "0"]
    before = phonenumbers_ceiling(phones)
    t = time.monotonic()
    proc = procs.start("import", cmd, env)
    sampler = common.RssSampler({"import": proc.pid}, interval=0.1)
    sampler.start()
    backend = BackendCpu(args.db)
    backend.start()
    rc = proc.wait()
    wall = time.monotonic() - t
    rss = sampler.stop()["import"]
    postgres_cpu = backend.stop()
    postgres_busiest = backend.busiest()
    backends = sorted((round(v, 2) for v in backend.seen.values() if v >= 0.01), reverse=True)
    out = procs.log_tail("import", 5000)
    if rc:
        raise RuntimeError(f"import failed ({rc}):\n{out}")
    m = re.search(r"Import \d+ (\w+): ([\d,]+) rows, ([\d,]+) new.*?([\d,]+) rejected.* in ([\d.]+)s", out)
    status, rows, created, rejected, service_s = m.groups()
    cpu_match = re.search(r"\(([\d.]+) CPU-s(?:, ([\d.]+) in parsing processes)?\)", out)
    import_cpu = float(cpu_match.group(1)) if cpu_match else None
    parsing_cpu = float(cpu_match.group(2)) if cpu_match and cpu_match.group(2) else 0.0
    rows, created, rejected = (int(x.replace(",", "")) for x in (rows, created, rejected))
    service_s = float(service_s)
    after = phonenumbers_ceiling(phones)
    # Both runs together: rows over their summed time, so neither moment's load decides alone.
    ceiling = {
        "rows": before["rows"],
        "valid": before["valid"],
        "seconds": round(before["seconds"] + after["seconds"], 3),
        "rate": round(2 * before["rows"] / (before["seconds"] + after["seconds"]), 1),
        "cpu_seconds": round((before["cpu_seconds"] + after["cpu_seconds"]) / 2, 3),
        "before": before,
        "after": after,
    }
    # On this machine's cores, the rate is bound by the busiest single process (a PostgreSQL
    # backend, or the importing process) or by all the import's CPU shared over the cores.
    cores = os.cpu_count() or 1
    bound = None
    if import_cpu and postgres_cpu and postgres_busiest:
        bound = max(import_cpu, postgres_busiest, (import_cpu + parsing_cpu + postgres_cpu) / cores)
    # The command prints its time to 0.1 s: a tiny import can read "0.0s", which is no rate at all.
    rate = rows / service_s if service_s > 0 else None
    result = {
        "status": "ok" if status == "completed" else status,
        "params": {"n": args.n, "invalid_share": args.invalid, "command": " ".join(cmd[1:])},
        "rows": rows,
        "created": created,
        "rejected": rejected,
        "rows_per_second": round(rate, 1) if rate else None,
        "rows_per_second_including_startup": round(rows / wall, 1),
        "seconds_import": service_s,
        "seconds_command_wall": round(wall, 2),
        "peak_rss_mb": rss,
        "ceiling_phonenumbers_one_core": ceiling,
        "ratio_to_ceiling": round(rate / ceiling["rate"], 3) if rate else None,
        # Load-independent view: CPU-seconds of the import process (both its threads), of its parsing
        # processes and of its PostgreSQL backend, which run in parallel; on an idle machine the rate
        # is bound by the busiest one, or by all of them shared over the cores (cpu_bound_seconds).
        "cpu_seconds_import_process": import_cpu,
        "cpu_seconds_parsing_processes": parsing_cpu,
        "cpu_seconds_postgres_backend": postgres_cpu,  # all its backends (SMS_IMPORT_WRITE_CONNECTIONS)
        "cpu_seconds_postgres_backends": backends,
        "cpu_bound_seconds": round(bound, 3) if bound else None,
        "cpu_ratio_to_ceiling": round(ceiling["cpu_seconds"] / bound, 3) if bound else None,
        "machine": machine,
    }
    path = common.write_result(name, result, results_dir=results_dir)
    print(
        f"{name}: {result['rows_per_second']} rows/s (ceiling {ceiling['rate']}/s), rss {rss} MB, rejected {rejected}"
    )
    return {"path": path, "result": result}
