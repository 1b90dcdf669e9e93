"""Webhooks: signed Plivo status callbacks per second ingested by gunicorn, p50/p99; and a bare-Django ceiling.

The load generator (aiohttp, fixed concurrency, loopback) pre-signs every request before the clock
starts, so signing costs nothing during the measurement. It shares the 2 cores with gunicorn.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
import urllib.request

import redis

from bench import common

TOKEN = "bench-plivo-token"


def add_arguments(p) -> None:
    p.add_argument("--seconds", type=float, default=10.0, help="measure for this long (after a 1 s warm-up)")
    p.add_argument("--requests", type=int, default=200_000, help="upper bound on requests")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--aiohttp", action="store_true", help="use the Python load generator even if wrk is installed")
    p.add_argument("--gunicorn-workers", type=int, default=2)
    p.add_argument("--db", default="bench_smsportal")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    p.add_argument("--name", default="webhooks")
    p.add_argument("--results-dir", default="")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _signed_requests(base: str, count: int) -> list[tuple[str, bytes, dict]]:
    from urllib.parse import urlencode

    from devtools.fake_provider import plivo_signature_headers

    out = []
    for i in range(count):
        url = f"{base}/webhooks/plivo/status/{100000 + i}/"
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


async def _load(reqs, concurrency: int, seconds: float) -> dict:
    import aiohttp

    latencies: list[float] = []
    codes: dict[int, int] = {}
    idx = 0
    stop_at = 0.0
    warm_until = 0.0

    async def user(session):
        nonlocal idx
        while idx < len(reqs) and time.perf_counter() < stop_at:
            url, body, headers = reqs[idx]
            idx += 1
            t = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
            if t >= warm_until:
                latencies.append(time.perf_counter() - t)
                codes[r.status] = codes.get(r.status, 0) + 1

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter()
        warm_until = start + 1.0
        stop_at = warm_until + seconds
        await asyncio.gather(*(user(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - warm_until
    ms = [x * 1000 for x in latencies]
    ok = sum(n for c, n in codes.items() if c == 200)
    return {
        "requests": len(ms),
        "ok": ok,
        "status_codes": {str(k): v for k, v in codes.items()},
        "seconds": round(elapsed, 2),
        "rate": round(ok / elapsed, 1),
        "p50_ms": round(common.percentile(ms, 50), 2),
        "p99_ms": round(common.percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else None,
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


def _wrk(base: str, reqs, concurrency: int, seconds: float, workdir) -> dict:
    """wrk (C, 2 threads) with pre-signed requests; far cheaper than a Python load generator."""
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
    subprocess.run(["wrk", "-t1", "-c4", "-d1s", "-s", str(script), base, "--", str(data)], capture_output=True)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency", "-s", str(script), base, "--", str(data)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad_n = int(bad.group(1)) if bad else 0
    return {
        "generator": "wrk -t2",
        "requests": total,
        "non_2xx": bad_n,
        "socket_errors": errors.group(1) if errors else "",
        "seconds": seconds,
        "rate": round(rate * (total - bad_n) / total, 1) if total else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
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


def run(args) -> dict:
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    if not common.module_exists("providers.webhooks.plivo"):
        return {"path": common.not_measured(args.name, "no Plivo webhook view", results_dir=results_dir)}
    machine = common.machine_info()
    redis.Redis.from_url(args.redis_url).flushdb()
    port, ceiling_port = _free_port(), _free_port()
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
        LOG_LEVEL="WARNING",
    )
    env.pop("BENCH_COUNT_QUERIES", None)
    common.fresh_database(args.db, env)
    procs = common.Procs(args.name)
    try:
        _gunicorn(procs, "web", env, port, args.gunicorn_workers)
        reqs = _signed_requests(base, min(args.requests, 50_000))
        use_wrk = shutil.which("wrk") is not None and not args.aiohttp
        loop = _loop()
        light = None
        if use_wrk:
            ours = _wrk(base, reqs, args.concurrency, args.seconds, procs.dir)
            # latency without queueing: one connection per gunicorn worker
            light = _wrk(base, reqs, args.gunicorn_workers, max(1.0, args.seconds / 2), procs.dir)
        else:
            ours = loop.run_until_complete(_load(reqs, args.concurrency, args.seconds))
        procs.kill("web", 15)
        import psycopg

        with psycopg.connect(common.db_url(args.db)) as conn:
            stored = conn.execute("SELECT count(*) FROM providers_providerevent").fetchone()[0]

        ceiling_env = dict(env, DJANGO_SETTINGS_MODULE="bench.ceiling_settings")
        _gunicorn(procs, "ceiling", ceiling_env, ceiling_port, args.gunicorn_workers)
        cbase = f"http://127.0.0.1:{ceiling_port}"
        if use_wrk:
            ceiling = _wrk(cbase, reqs, args.concurrency, args.seconds, procs.dir)
        else:
            creqs = [(u.replace(base, cbase), b, h) for u, b, h in reqs]
            ceiling = loop.run_until_complete(_load(creqs, args.concurrency, args.seconds))
        loop.close()
    finally:
        procs.stop_all()
    result = {
        "status": "ok" if ours.get("non_2xx", ours["requests"] - ours.get("ok", 0)) == 0 else "errors",
        "params": {
            "gunicorn_workers": args.gunicorn_workers,
            "worker_class": "sync",
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "settings": "smsportal.settings with PRODUCTION=1 (SSL redirect off for loopback), DEBUG off",
            "load_generator": ("wrk -t2" if use_wrk else "aiohttp + uvloop (one process)")
            + " on the same machine, pre-signed V2+V3 requests",
        },
        "ours": ours,
        "ours_light_load": light,
        "events_stored": stored,
        "ceiling_bare_django": ceiling,
        "ratio_to_ceiling": round(ours["rate"] / ceiling["rate"], 3) if ceiling["rate"] else None,
        "machine": machine,
    }
    path = common.write_result(args.name, result, results_dir=results_dir)
    print(
        f"webhooks: {ours['rate']}/s p50 {ours['p50_ms']} ms p99 {ours['p99_ms']} ms; "
        f"ceiling {ceiling['rate']}/s ({result['ratio_to_ceiling']}); stored {stored}; "
        f"light load p50 {light and light['p50_ms']} p99 {light and light['p99_ms']} ms"
    )
    return {"path": path, "result": result}
