"""Webhooks: signed Plivo status callbacks per second ingested by gunicorn, p50/p99; and a bare-Django ceiling.

The load generator (wrk, or aiohttp without it; fixed concurrency, loopback) sends requests pre-signed
before the clock starts, so signing costs nothing during the measurement; both cycle through them for
as long as a run lasts (warm-up, then the measured seconds). It shares the 2 cores with gunicorn.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import urllib.request

import redis

from bench import common

TOKEN = "bench-plivo-token"
SECRET = "bench-plivo-webhook-secret"  # PLIVO_WEBHOOK_SECRET: in every Plivo callback URL


def add_arguments(p) -> None:
    p.add_argument("--seconds", type=float, default=10.0, help="measure for this long (after the warm-up)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before the measurement (not counted)")
    p.add_argument(
        "--requests",
        type=int,
        default=50_000,
        help="distinct pre-signed requests; the load generator sends them in turn, over again when they run out",
    )
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--aiohttp", action="store_true", help="use the Python load generator even if wrk is installed")
    p.add_argument("--gunicorn-workers", type=int, default=2)
    common.add_server_arguments(p)
    p.add_argument("--name", default="webhooks")
    p.add_argument("--results-dir", default="")


def _signed_requests(base: str, count: int) -> list[tuple[str, bytes, dict]]:
    from urllib.parse import urlencode

    from devtools.fake_provider import plivo_signature_headers

    out = []
    for i in range(count):
        url = f"{base}/webhooks/plivo/{SECRET}/status/{100000 + i}/"
        params = {
            "MessageUUID": f"00000000-0000-4000-8000-{i:012d}",
            "To": "14152000000",
            "From": "14155550100",
            "Type": "sms",
            "Status": "delivered" if i % 2 else "sent",
            "Units": "1",
            "TotalRate": "0.00550",
            "TotalAmount": "0.00550",
            "ErrorCode": "000",
            "ParentMessageUUID": f"00000000-0000-4000-8000-{i:012d}",
            "PartInfo": "1 of 1",
            "MessageTime": "2026-01-02 03:04:05",
            "DeliveryReportTime": "2026-01-02 03:04:06",
        }
        headers = plivo_signature_headers("POST", url, params, TOKEN)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        out.append((url, urlencode(params).encode(), headers))
    return out


class _Cpu:
    """CPU-seconds of a gunicorn (master and workers) and of the PostgreSQL backends of the bench
    database while a run lasts, per request sent (warm-up included: it is inside the run).

    Less at the mercy of a shared machine than a rate: the same work costs about the same CPU
    whether or not others are busy, while its rate drops with every core they take.
    """

    def __init__(self, pid: int, db: str):
        self.sampler = common.RssSampler({"web": pid}, pg_db=db)

    def __enter__(self):
        self.sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sampler.stop()
        self.seconds = self.sampler.cpu_seconds()

    def per_request(self, run: dict) -> dict:
        sent = run["sent_total"]
        web, pg = self.seconds["workers"], self.seconds["postgresql"] or 0.0
        return {
            "gunicorn": round(1000 * web / sent, 3) if sent else None,
            "postgresql": round(1000 * pg / sent, 3) if sent else None,
            "total": round(1000 * (web + pg) / sent, 3) if sent else None,
        }


def _ok(code: str) -> bool:
    return code.isdigit() and 200 <= int(code) < 300


async def _load(reqs, concurrency: int, seconds: float, warmup: float) -> dict:
    """Closed-loop load: ``concurrency`` clients, each sending its next request when the last one is
    answered, through ``reqs`` in turn (from the start again when they run out, as the wrk script does)
    for ``warmup`` + ``seconds``. Requests started during the warm-up are in the totals, not the figures.
    Each client sends at least one measured request, so a run always measures something, however slow.
    """
    import aiohttp

    sent = 0
    last_done = 0.0
    codes_total: dict[str, int] = {}
    codes: dict[str, int] = {}
    latencies: list[float] = []

    async def user(session):
        nonlocal sent, last_done
        measured = False
        while (t := time.perf_counter()) < stop_at or not measured:
            url, body, headers = reqs[sent % len(reqs)]
            sent += 1
            try:
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                code = str(r.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                code = type(exc).__name__
            done = time.perf_counter()
            codes_total[code] = codes_total.get(code, 0) + 1
            if t >= warm_until:
                measured = True
                latencies.append(done - t)
                codes[code] = codes.get(code, 0) + 1
                last_done = max(last_done, done)

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        warm_until = time.perf_counter() + warmup
        stop_at = warm_until + seconds
        await asyncio.gather(*(user(session) for _ in range(concurrency)))
    # The measured window runs from the end of the warm-up to the last measured answer.
    elapsed = last_done - warm_until if latencies else 0.0
    ms = [x * 1000 for x in latencies]
    ok = sum(n for c, n in codes.items() if _ok(c))
    return {
        "generator": "aiohttp",
        "concurrency": concurrency,
        "warmup_seconds": warmup,
        "requests": len(ms),
        "ok": ok,
        "errors": len(ms) - ok,
        "status_codes": codes,
        "seconds": round(elapsed, 3),
        "rate": round(ok / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": round(common.percentile(ms, 50), 2) if ms else None,
        "p99_ms": round(common.percentile(ms, 99), 2) if ms else None,
        "max_ms": round(max(ms), 2) if ms else None,
        "sent_total": sent,
        "accepted_total": sum(n for c, n in codes_total.items() if _ok(c)),
        "status_codes_total": codes_total,
    }


WRK_LUA = """
local reqs = {}
local i = 0
function init(args)
  local f = io.open(args[1], "r")
  for line in f:lines() do
    local path, body, v3, v2, nonce = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)")
    reqs[#reqs + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Plivo-Signature-V3"] = v3, ["X-Plivo-Signature-V3-Nonce"] = nonce,
      ["X-Plivo-Signature-V2"] = v2, ["X-Plivo-Signature-V2-Nonce"] = nonce,
    }, body)
  end
  f:close()
  i = math.random(#reqs)
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
"""


def _wrk(base: str, reqs, concurrency: int, seconds: float, warmup: float, workdir) -> dict:
    """wrk (C, up to 2 threads) with pre-signed requests; far cheaper than a Python load generator.

    wrk counts completed responses only: requests in flight when it stops reach the server uncounted.
    """
    import math
    import re
    import subprocess
    from urllib.parse import urlsplit

    data = workdir / "requests.tsv"
    with open(data, "w") as f:
        for url, body, h in reqs:
            path = urlsplit(url).path
            f.write(f"{path}\t{body.decode()}\t{h['X-Plivo-Signature-V3']}\t{h['X-Plivo-Signature-V2']}\t")
            f.write(f"{h['X-Plivo-Signature-V3-Nonce']}\n")
    script = workdir / "signed.lua"
    script.write_text(WRK_LUA)

    def wrk(connections: int, secs: int) -> str:
        threads = min(2, connections)
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{secs}s", "--latency", "-s", str(script), base]
        return subprocess.run([*cmd, "--", str(data)], capture_output=True, text=True, check=True).stdout

    def counts(out: str) -> tuple[int, int]:
        """(completed, of which errors: non-2xx/3xx answers and socket errors)"""
        total = re.search(r"(\d+) requests in", out)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sock = re.search(r"Socket errors: (.*)", out)
        errors = int(bad.group(1)) if bad else 0
        errors += sum(int(x) for x in re.findall(r"\d+", sock.group(1))) if sock else 0
        return (int(total.group(1)) if total else 0), errors

    warm_total = warm_errors = 0
    if warmup > 0:
        warm_total, warm_errors = counts(wrk(min(4, concurrency), max(1, math.ceil(warmup))))
    secs = max(1, math.ceil(seconds))  # wrk takes whole seconds
    out = wrk(concurrency, secs)

    def ms(label: str) -> float | None:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        value, unit = float(m.group(1)), m.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    total, errors = counts(out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    non_2xx = int(bad.group(1)) if bad else 0
    return {
        "generator": f"wrk -t{min(2, concurrency)}",
        "concurrency": concurrency,
        "warmup_seconds": max(1, math.ceil(warmup)) if warmup > 0 else 0,
        "requests": total,
        "ok": total - non_2xx,
        "errors": errors,
        "non_2xx": non_2xx,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "seconds": secs,
        "rate": round(float(rate.group(1)) * (total - non_2xx) / total, 1) if total and rate else None,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "sent_total": warm_total + total,
        "accepted_total": warm_total - warm_errors + total - errors,
    }


def _gunicorn(procs, name: str, env: dict, port: int, workers: int, wsgi: str = "smsportal.wsgi"):
    cmd = [str(common.Path(common.PY).parent / "gunicorn"), wsgi, "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    cmd += ["--log-level", "warning"]
    procs.start(name, cmd, env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/__nothing__", timeout=1)
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn {name} did not start: {procs.log_tail(name)}")


def _loop():
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def _worker_class() -> dict:
    """gunicorn's worker class and threads, as gunicorn.conf.py sets them (the children inherit this environment)."""
    import runpy

    threads = int(runpy.run_path(str(common.ROOT / "gunicorn.conf.py")).get("threads", 1))
    return {"worker_class": "gthread" if threads > 1 else "sync", "threads": threads}


def _status(runs: list[dict], lost: int) -> str:
    """ok: every run measured something and every answer was a 2xx, and every accepted callback was stored."""
    if lost or any(r["errors"] for r in runs):
        return "errors"
    if any(not r["requests"] or r["rate"] is None for r in runs):
        return "no_measurement"
    return "ok"


def _cpu_ratio(ours: dict, ceiling: dict) -> float | None:
    mine, bare = ours["cpu_ms_per_request"]["total"], ceiling["cpu_ms_per_request"]["total"]
    return round(bare / mine, 3) if mine and bare else None


def run(args) -> dict:
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    if not common.module_exists("providers.webhooks.plivo"):
        return {"path": common.not_measured(args.name, "no Plivo webhook view", results_dir=results_dir)}
    machine = common.machine_info()
    redis.Redis.from_url(args.redis_url).flushdb()
    port, ceiling_port = common.free_port(), common.free_port()
    base = f"http://127.0.0.1:{port}"
    env = common.base_env(
        args.db,
        args.redis_url,
        DJANGO_SETTINGS_MODULE="smsportal.settings",
        PRODUCTION="1",
        SECURE_SSL_REDIRECT="0",
        SECRET_KEY="bench-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PUBLIC_BASE_URL=base,
        PLIVO_AUTH_ID="MABENCHACCOUNT000001",
        PLIVO_AUTH_TOKEN=TOKEN,
        PLIVO_WEBHOOK_SECRET=SECRET,
        LOG_LEVEL="WARNING",
    )
    env.pop("BENCH_COUNT_QUERIES", None)
    common.fresh_database(args.db, env)
    procs = common.Procs(args.name)
    use_wrk = shutil.which("wrk") is not None and not args.aiohttp
    try:
        # Both servers first, then ours and the ceiling back to back (the light run after them): on a
        # shared machine the load moves, and the further apart the two runs, the less they compare.
        ceiling_env = dict(env, DJANGO_SETTINGS_MODULE="bench.ceiling_settings")
        _gunicorn(procs, "web", env, port, args.gunicorn_workers)
        _gunicorn(procs, "ceiling", ceiling_env, ceiling_port, args.gunicorn_workers)
        reqs = _signed_requests(base, max(1, args.requests))
        cbase = f"http://127.0.0.1:{ceiling_port}"
        creqs = [(u.replace(base, cbase), b, h) for u, b, h in reqs]
        loop = _loop()

        def measure(name: str, url: str, rs, concurrency: int, seconds: float) -> dict:
            with _Cpu(procs.procs[name].pid, args.db) as cpu:
                if use_wrk:
                    run = _wrk(url, rs, concurrency, seconds, args.warmup, procs.dir)
                else:
                    run = loop.run_until_complete(_load(rs, concurrency, seconds, args.warmup))
            run["cpu_ms_per_request"] = cpu.per_request(run)
            return run

        ours = measure("web", base, reqs, args.concurrency, args.seconds)
        ceiling = measure("ceiling", cbase, creqs, args.concurrency, args.seconds)
        # latency without queueing, one connection per gunicorn worker
        light = measure("web", base, reqs, args.gunicorn_workers, args.seconds / 2)
        loop.close()
        procs.kill("web", 15)
        import psycopg

        with psycopg.connect(common.pg_url(args.db)) as conn:
            stored = conn.execute("SELECT count(*) FROM providers_providerevent").fetchone()[0]
    finally:
        procs.stop_all()
    sent = ours["sent_total"] + light["sent_total"]
    accepted = ours["accepted_total"] + light["accepted_total"]
    result = {
        "status": _status([ours, light, ceiling], lost=max(0, accepted - stored)),
        "params": {
            "gunicorn_workers": args.gunicorn_workers,
            **_worker_class(),
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "distinct_requests": len(reqs),
            "settings": "smsportal.settings with PRODUCTION=1 (SSL redirect off for loopback), DEBUG off",
            "load_generator": ("wrk -t2" if use_wrk else "aiohttp + uvloop (one process)")
            + " on the same machine, pre-signed V2+V3 requests sent in turn",
        },
        "ours": ours,
        "ours_light_load": light,
        # every request to the portal, warm-ups included; wrk leaves the ones in flight at its end uncounted
        "requests_sent_total": sent,
        "requests_accepted_total": accepted,
        "accounting": "approximate (wrk)" if use_wrk else "exact",
        "events_stored": stored,
        "ceiling_bare_django": ceiling,
        "ratio_to_ceiling": round(ours["rate"] / ceiling["rate"], 3) if ours["rate"] and ceiling["rate"] else None,
        # the ceiling's CPU per request over ours (gunicorn + PostgreSQL), at saturation: the rate ratio
        # a machine with nothing else on it would show, if both were CPU-bound
        "cpu_ratio_to_ceiling": _cpu_ratio(ours, ceiling),
        "machine": machine,
    }
    path = common.write_result(args.name, result, results_dir=results_dir)
    print(
        f"webhooks {result['status']}: {ours['rate']}/s p50 {ours['p50_ms']} ms p99 {ours['p99_ms']} ms; "
        f"ceiling {ceiling['rate']}/s ({result['ratio_to_ceiling']}); {accepted} of {sent} accepted, stored {stored}; "
        f"light load p50 {light['p50_ms']} p99 {light['p99_ms']} ms; CPU ms/request ours "
        f"{ours['cpu_ms_per_request']}, ceiling {ceiling['cpu_ms_per_request']['total']} "
        f"({result['cpu_ratio_to_ceiling']})"
    )
    return {"path": path, "result": result, "ok": result["status"] == "ok"}
