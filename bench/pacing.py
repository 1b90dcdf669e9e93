"""Pacing: a campaign over a pool of numbers, each limited, under a provider account limit.

Issue 21's run: 20 numbers at 1 msg/s each, PLIVO_ACCOUNT_MPS=15, 3,000 recipients. Measured from
the fake provider's own receive timestamps: the achieved rate over the run (first to last send)
against the account limit, and the busiest sliding 1-second window at each number and at the
account. A window over the limit is a pacing failure, whatever caused it.
"""

from __future__ import annotations

import bisect
import itertools
import json
import time

import redis

from bench import common, fanout

PLIVO_ID, PLIVO_TOKEN = fanout.PLIVO_ID, fanout.PLIVO_TOKEN
# A short body: one segment per message, so messages per second = segments per second.
# The limiter records each grant here (settings.SMS_PACE_TRACE_KEY), for the limiter's side of the figures.
TRACE_KEY = "bench:pacing:grants"
BODY = "Hi {{ first_name }}, doors open at 9. Reply STOP to opt out."


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, default=3000, help="recipients")
    p.add_argument("--numbers", type=int, default=20, help="sender numbers in the campaign's pool")
    p.add_argument("--number-mps", type=int, default=1, help="each number's max_mps")
    p.add_argument("--account-mps", type=float, default=15.0, help="PLIVO_ACCOUNT_MPS")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (default scales with N)")
    common.add_server_arguments(p)
    p.add_argument("--name", default="")
    p.add_argument("--results-dir", default="")


def busiest_window(times: list[float], *, width: float = 1.0) -> tuple[int, float | None]:
    """The most sends in any window ``[t, t + width)``, and where it starts.

    The busiest window can always be slid to start at a send, so only those starts are checked.
    """
    s = sorted(times)
    best, at = 0, None
    for i, t in enumerate(s):
        count = bisect.bisect_left(s, t + width, lo=i) - i
        if count > best:
            best, at = count, t
    return best, at


def windows_over(times: list[float], limit: float, *, width: float = 1.0) -> int:
    """How many sends start a ``width``-second window holding more than ``limit`` sends."""
    s = sorted(times)
    return sum(1 for i, t in enumerate(s) if bisect.bisect_left(s, t + width, lo=i) - i > limit)


def min_gap(times: list[float]) -> float | None:
    s = sorted(times)
    return min((b - a for a, b in itertools.pairwise(s)), default=None)


def analyse(rows: list[tuple[str, float]], *, number_mps: float, account_mps: float) -> dict:
    """Per-number and account figures from (src, received_at) rows."""
    times = sorted(t for _, t in rows)
    by_number: dict[str, list[float]] = {}
    for src, t in rows:
        by_number.setdefault(src, []).append(t)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span > 0 else None  # n sends evenly spaced span n - 1 intervals
    account_worst, account_at = busiest_window(times)
    numbers = {}
    for src, ts in sorted(by_number.items()):
        worst, _ = busiest_window(ts)
        gap = min_gap(ts)
        numbers[src] = {
            "sends": len(ts),
            "busiest_1s_window": worst,
            "windows_over_limit": windows_over(ts, number_mps),
            "min_gap_s": round(gap, 4) if gap is not None else None,
        }
    return {
        "sends": len(times),
        "seconds_first_to_last": round(span, 3),
        "achieved_rate": round(rate, 3) if rate else None,
        "achieved_ratio_to_account_limit": round(rate / account_mps, 4) if rate else None,
        "account": {
            "busiest_1s_window": account_worst,
            "busiest_window_starts_s": round(account_at - times[0], 3) if account_at is not None else None,
            "windows_over_limit": windows_over(times, account_mps),
            "min_gap_s": round(min_gap(times) or 0, 4),
        },
        "numbers_busiest_1s_window": max((v["busiest_1s_window"] for v in numbers.values()), default=0),
        "numbers_windows_over_limit": sum(v["windows_over_limit"] for v in numbers.values()),
        "numbers_min_gap_s": min(
            (v["min_gap_s"] for v in numbers.values() if v["min_gap_s"] is not None), default=None
        ),
        "per_number": numbers,
    }


def per_second(times: list[float], start: float) -> list[int]:
    """Sends in each whole second from ``start`` (the provider's or the limiter's histogram)."""
    counts: list[int] = []
    for t in times:
        i = int(t - start)
        if i >= 0:
            counts.extend([0] * (i + 1 - len(counts)))
            counts[i] += 1
    return counts


def grants(trace: list[bytes | str]) -> dict[str, float]:
    """ref -> when the limiter granted its send (the last grant: a late send takes a fresh turn)."""
    out: dict[str, float] = {}
    for entry in trace:
        when, label, *_ = (entry.decode() if isinstance(entry, bytes) else entry).split(" ")
        out[label.split("@")[0]] = float(when) / 1000  # ref@pid of the worker
    return out


def lateness(since: dict[str, float], until: dict[str, float]) -> dict:
    """Percentiles of ``until[ref] - since[ref]`` (seconds) over the refs in both."""
    late = sorted(until[r] - since[r] for r in until if r in since)
    pick = lambda q: round(late[min(len(late) - 1, int(q * len(late)))], 4) if late else None  # noqa: E731
    return {"p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99), "max": pick(1.0)}


def limiter_figures(granted: dict[str, float], arrived: dict[str, float], *, account_mps: float) -> dict:
    """Where the time went: the account's unused slots at the limiter, and grant-to-arrival lateness."""
    times = sorted(granted.values())
    if len(times) < 2:
        return {}
    interval = 1 / account_mps
    # A gap longer than one interval between two grants is account capacity nobody took.
    unused = sum(max(0.0, b - a - interval) for a, b in itertools.pairwise(times))
    span = times[-1] - times[0]
    return {
        "grants": len(times),
        "grant_rate": round((len(times) - 1) / span, 3) if span > 0 else None,
        "account_unused_seconds": round(unused, 2),
        "account_unused_share": round(unused / span, 4) if span > 0 else None,
        "grant_to_arrival_s": lateness(granted, arrived),
        "per_second_at_limiter": per_second(times, times[0]),
    }


def seed(*, n: int, numbers: int, number_mps: int) -> tuple:
    """fanout's admin, list and campaign, with a pool of ``numbers`` senders at ``number_mps`` each."""
    from accounts.models import AuthorizedSender
    from campaigns.models import Campaign

    admin, campaign = fanout.seed(n=n)
    pool = [
        AuthorizedSender.objects.create(user=admin, number=f"+1415556{i:04d}", provider="plivo", max_mps=number_mps)
        for i in range(numbers)
    ]
    Campaign.objects.filter(pk=campaign.pk).update(body=BODY)
    campaign.refresh_from_db()
    campaign.senders.set(pool)
    return admin, campaign


def run(args) -> dict:
    from devtools.fake_provider import run_in_subprocess

    n = args.n
    name = args.name or f"pacing_{n}"
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    machine = common.machine_info()
    redis.Redis.from_url(args.redis_url).flushdb()
    fake = run_in_subprocess(
        latency_ms=args.latency_ms,
        callbacks=False,
        plivo_auth_id=PLIVO_ID,
        plivo_auth_token=PLIVO_TOKEN,
        python=common.PY,
    )
    procs = common.Procs(name)
    try:
        env = common.base_env(
            args.db,
            args.redis_url,
            SMS_BACKEND="providers.backends.plivo.SMSBackend",
            PLIVO_API_URL=fake.url,
            PLIVO_AUTH_ID=PLIVO_ID,
            PLIVO_AUTH_TOKEN=PLIVO_TOKEN,
            PLIVO_ACCOUNT_MPS=args.account_mps,
            SMS_PACE_TRACE_KEY=TRACE_KEY,
        )
        migrate_s = common.fresh_database(args.db, env)
        common.django_setup(env)
        admin, campaign = seed(n=n, numbers=args.numbers, number_mps=args.number_mps)
        for i in range(args.workers):
            procs.worker(f"w{i}", env)
        for i in range(args.workers):
            procs.wait_ready(f"w{i}")

        from campaigns.services import campaign_launch
        from messaging.models import Message

        launched = time.time()
        campaign_launch(campaign=campaign, user=admin)
        expected = n / min(args.account_mps, args.numbers * args.number_mps)
        deadline = time.monotonic() + (args.timeout or expected * 1.5 + 60)
        accepted, last_seen, last_change = 0, -1, time.monotonic()
        while time.monotonic() < deadline:
            accepted = fake.stats()["accepted"]
            if accepted >= n:
                break
            if accepted != last_seen:
                last_seen, last_change = accepted, time.monotonic()
            elif time.monotonic() - last_change > 30:
                break  # stalled
            time.sleep(0.5)
        sent = fake.message_rows(fields="src,received_at,url,arrived_at")
        rows = [(src, t) for src, t, _, _ in sent]
        arrived = {url.rstrip("/").rsplit("/", 1)[-1]: t for _, t, url, _ in sent}
        # the fake stamps received_at after its added latency (an asyncio sleep, as late as its
        # process is scheduled); arrived_at is when the request came in, before that sleep
        at_door = analyse([(src, t) for src, _, _, t in sent], number_mps=args.number_mps, account_mps=args.account_mps)
        trace = redis.Redis.from_url(args.redis_url).lrange(TRACE_KEY, 0, -1)
        granted = grants(trace)
        # when each send passed its guard, just before its request (the worker's side of the lateness)
        passed = grants(redis.Redis.from_url(args.redis_url).lrange(f"{TRACE_KEY}:sent", 0, -1))
        fake_stats = fake.stats()
        t_rec = time.monotonic()
        open_statuses = ["pending", "claimed", "sending", "unknown"]
        while time.monotonic() - t_rec < 30:
            if not Message.objects.filter(campaign=campaign, status__in=open_statuses).exists():
                break
            time.sleep(0.5)
        by_status = dict(
            Message.objects.filter(campaign=campaign).values_list("status").annotate(n=fanout.common_count()).order_by()
        )
        raw = common.LOGS / f"{name}-raw.json"  # for a closer look; not a result
        raw.write_text(json.dumps({"sent": sent, "granted": granted, "passed": passed}))
        figures = analyse(rows, number_mps=args.number_mps, account_mps=args.account_mps)
        at_limiter = limiter_figures(granted, arrived, account_mps=args.account_mps)
        # a send late for its slot takes a fresh one: the first is left unused
        at_limiter["fresh_turns"] = len(trace) - len(granted)
        at_limiter["grant_to_guard_passed_s"] = lateness(granted, passed)
        at_limiter["guard_passed_to_arrival_s"] = lateness(passed, arrived)
        at_limiter["guard_passed_to_request_in_s"] = lateness(
            passed, {url.rstrip("/").rsplit("/", 1)[-1]: t for _, _, url, t in sent}
        )
        first = min((t for _, t in rows), default=0.0)
        ratio = figures["achieved_ratio_to_account_limit"]
        result = {
            "status": "ok" if len(rows) >= n else "incomplete",
            "params": {
                "n": n,
                "numbers": args.numbers,
                "number_max_mps": args.number_mps,
                "PLIVO_ACCOUNT_MPS": args.account_mps,
                "workers": args.workers,
                "latency_ms": args.latency_ms,
                "segments_per_message": 1,
                "callbacks": False,
            },
            "setup_seconds": {"migrate": round(migrate_s, 1)},
            "accepted_by_provider": len(rows),
            "duplicates_at_provider": fake_stats["duplicates"],
            "db_status_counts": by_status,
            "seconds_to_first_send": round(min(t for _, t in rows) - launched, 3) if rows else None,
            **figures,
            "limiter": at_limiter,
            "before_the_fakes_latency": {
                "account_windows_over_limit": at_door["account"]["windows_over_limit"],
                "account_busiest_1s_window": at_door["account"]["busiest_1s_window"],
                "numbers_windows_over_limit": at_door["numbers_windows_over_limit"],
                "achieved_ratio_to_account_limit": at_door["achieved_ratio_to_account_limit"],
            },
            "per_second_at_provider": per_second(sorted(t for _, t in rows), first),
            "no_window_over_limit": figures["account"]["windows_over_limit"] == 0
            and figures["numbers_windows_over_limit"] == 0,
            "rate_within_97_100pct": ratio is not None and 0.97 <= ratio <= 1.0,
            "how": "timestamps are the fake provider's receive times; achieved rate = (sends - 1) / (last - first); "
            "a window is [t, t + 1 s) starting at a send",
            "machine": machine,
        }
        path = common.write_result(name, result, results_dir=results_dir)
        print(
            f"{name}: {len(rows)} sent, {figures['achieved_rate']}/s ({ratio} of {args.account_mps}/s); "
            f"busiest second: account {figures['account']['busiest_1s_window']}, "
            f"a number {figures['numbers_busiest_1s_window']}; windows over: account "
            f"{figures['account']['windows_over_limit']}, numbers {figures['numbers_windows_over_limit']} "
            f"(before the fake's latency: account {at_door['account']['windows_over_limit']}, "
            f"numbers {at_door['numbers_windows_over_limit']})"
        )
        return {"path": path, "result": result}
    finally:
        procs.stop_all()
        fake.stop()
