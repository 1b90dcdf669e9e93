"""Fault soak: a campaign against a misbehaving fake provider while a worker is SIGKILLed and Redis restarts.

The fake injects 5% 5xx, 2% 429 with Retry-After, 1% timeouts (held past SMS_HTTP_TIMEOUT), 1%
dropped connections, and 0.5% each of accepted messages whose answer is held or dropped; callbacks
go to a gunicorn serving the real webhook. Midway some recipients opt out through the consent
service, one worker is SIGKILLed (and restarted), and the harness's own redis-server (never the
shared one) is restarted. Asserts and reports: every message final, zero
duplicates at the provider, zero sends to an opted-out number after its opt-out.
"""

from __future__ import annotations

import random
import time

from bench import common
from bench.fanout import PLIVO_ID, PLIVO_TOKEN
from bench.webhooks import _gunicorn


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--opt-outs", type=int, default=50)
    p.add_argument("--sender-mps", type=float, default=200.0, help="keeps the campaign running long enough")
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument(
        "--redis-port",
        type=int,
        default=0,
        help="port of the private redis-server the harness starts and restarts (default: a free one); "
        "the soak never touches REDIS_URL's server",
    )
    p.add_argument("--no-restart-killed", action="store_true", help="leave the killed worker dead")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--lease-seconds", type=int, default=20, help="SMS_LEASE_SECONDS")
    p.add_argument(
        "--unknown-resend-seconds",
        type=float,
        default=15.0,
        help="SMS_UNKNOWN_RESEND_SECONDS: a lost answer that heard no report this long is sent again "
        "(the fake reports an accepted message within a few seconds, retries included; production waits hours)",
    )
    p.add_argument("--redispatch-seconds", type=int, default=10, help="SMS_REDISPATCH_SECONDS (at least 5)")
    p.add_argument("--batch-size", type=int, default=200, help="SMS_BATCH_SIZE")
    common.add_server_arguments(p, redis=False)
    p.add_argument("--name", default="")
    p.add_argument("--results-dir", default="")


OPT_OUT_WINDOW_S = 1.5  # one chunk (1 s of sending) plus a request's round trip
# Timeouts and drops refuse the message (never accepted, no report: sent again after the window);
# the accept_ faults accept it and lose the answer (the report settles it: it must not go out twice).
FAULTS = {
    "rate_5xx": 0.05,
    "rate_429": 0.02,
    "retry_after": 1,
    "rate_timeout": 0.01,
    "rate_drop": 0.01,
    "rate_accept_timeout": 0.005,
    "rate_accept_drop": 0.005,
}


def run(args) -> dict:
    from devtools.fake_provider import run_in_subprocess

    n = args.n
    name = args.name or "soak"
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    machine = common.machine_info()
    procs = common.Procs(name)
    rds = common.PrivateRedis(args.redis_port, procs.dir)
    rds.start()
    port = common.free_port()
    public = f"http://127.0.0.1:{port}"
    fake = run_in_subprocess(
        latency_ms=args.latency_ms,
        callbacks=True,
        callback_delay_s=0.3,
        callback_retries=5,
        callback_retry_delay_s=1.0,
        timeout_hold_s=6.0,
        plivo_auth_id=PLIVO_ID,
        plivo_auth_token=PLIVO_TOKEN,
        seed=7,
        python=common.PY,
        **FAULTS,
    )
    timeline: list[tuple[float, str]] = []
    t0 = time.time()

    def mark(what: str) -> None:
        timeline.append((round(time.time() - t0, 2), what))
        print(f"[{time.time() - t0:6.1f}s] {what}", flush=True)

    try:
        env = common.base_env(
            args.db,
            rds.url,
            SMS_BACKEND="providers.backends.plivo.SMSBackend",
            PLIVO_API_URL=fake.url,
            PLIVO_AUTH_ID=PLIVO_ID,
            PLIVO_AUTH_TOKEN=PLIVO_TOKEN,
            PUBLIC_BASE_URL=public,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SMS_HTTP_TIMEOUT=2,
            SMS_RETRY_BASE_SECONDS=0.5,
            SMS_MAX_ATTEMPTS=8,
            SMS_LEASE_SECONDS=args.lease_seconds,
            SMS_UNKNOWN_RESEND_SECONDS=args.unknown_resend_seconds,
            SMS_REDISPATCH_SECONDS=args.redispatch_seconds,
            SMS_BATCH_SIZE=args.batch_size,
            CELERY_VISIBILITY_TIMEOUT=60,
        )
        common.fresh_database(args.db, env)
        common.django_setup(env)
        from django.db.models import Count

        from bench.fanout import seed
        from campaigns.services import campaign_launch
        from messaging.models import FINAL_STATUSES, Message
        from recipients.models import Recipient
        from recipients.services import recipient_opt_out

        admin, campaign = seed(n=n)
        campaign.senders.update(max_mps=args.sender_mps)
        _gunicorn(procs, "web", dict(env, BENCH_COUNT_QUERIES=""), port, 2)
        procs.start(
            "beat",
            [
                common.PY,
                "-m",
                "celery",
                "-A",
                "smsportal",
                "beat",
                "-l",
                "WARNING",
                "-s",
                str(procs.dir / "beat-schedule"),
            ],
            env,
        )
        for i in range(args.workers):
            procs.worker(f"w{i}", env)
        for i in range(args.workers):
            procs.wait_ready(f"w{i}")
        mark("workers, beat, web and fake provider up")
        launched = time.time()
        campaign_launch(campaign=campaign, user=admin)
        mark("launched")

        # Opt-outs come from numbers not yet sent (late in the send order) and a few anywhere.
        rng = random.Random(3)
        opted_out: dict[str, float] = {}
        stages = {"optout": 0.2, "kill": 0.35, "redis": 0.55}
        done_stage: set[str] = set()
        restart_at = None
        progress: list[tuple[float, int, dict[str, int]]] = []  # (s since start, accepted, open rows by status)
        last_sample = 0.0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            accepted = fake.stats()["accepted"]
            share = accepted / n
            if "optout" not in done_stage and share >= stages["optout"]:
                late = list(Recipient.objects.order_by("-id").values_list("pk", flat=True)[: n // 3])
                chosen = rng.sample(late, args.opt_outs)
                for r in Recipient.objects.filter(pk__in=chosen):
                    recipient_opt_out(recipient=r, channel="web", evidence="soak: opted out midway", actor=admin)
                    opted_out[r.phone] = time.time()
                done_stage.add("optout")
                mark(f"{len(opted_out)} recipients opted out at {accepted} accepted")
            if "kill" not in done_stage and share >= stages["kill"]:
                procs.kill("w1")
                done_stage.add("kill")
                mark(f"SIGKILL worker w1 at {accepted} accepted")
                restart_at = None if args.no_restart_killed else time.monotonic() + 3
            if restart_at and time.monotonic() >= restart_at:
                procs.worker("w1", env)
                restart_at = None
                mark("worker w1 restarted")
            if "redis" not in done_stage and share >= stages["redis"]:
                rds.restart(down_seconds=2.0)
                done_stage.add("redis")
                mark(f"redis-server restarted at {accepted} accepted (2 s down, data lost)")
            if time.time() - last_sample >= 1.0:
                last_sample = time.time()
                open_by_status = dict(
                    Message.objects.filter(campaign=campaign)
                    .exclude(status__in=FINAL_STATUSES)
                    .values_list("status")
                    .annotate(c=Count("id"))
                    .order_by()
                )
                progress.append((round(last_sample - t0, 1), accepted, open_by_status))
            if len(done_stage) == 3 and restart_at is None:
                open_rows = Message.objects.filter(campaign=campaign).exclude(status__in=FINAL_STATUSES).count()
                if open_rows == 0:
                    mark("every message final")
                    break
            time.sleep(0.5)
        settled = time.time()
        by_status = dict(
            Message.objects.filter(campaign=campaign).values_list("status").annotate(c=Count("id")).order_by()
        )
        non_final = sum(v for k, v in by_status.items() if k not in FINAL_STATUSES)
        # rows whose answer was lost and that heard no report: sent again by beat's sweeper
        sent_again = Message.objects.filter(campaign=campaign, error_code="no_report").count()
        fake.drain(5)
        stats = fake.stats()
        dups = fake.duplicates()
        rows = fake.message_rows(fields="dst,received_at")
        after_opt_out, before_opt_out = [], 0
        for dst, received_at in rows:
            when = opted_out.get(dst)
            if when is None:
                continue
            if received_at > when:
                after_opt_out.append({"dst": dst[:-4] + "****", "late_by_s": round(received_at - when, 3)})
            else:
                before_opt_out += 1
        campaign.refresh_from_db()
    finally:
        procs.stop_all()
        fake.stop()
        rds.stop()
    # The engine re-checks consent once per chunk (about one second of the sender's rate) before the
    # chunk's requests start, so an opt-out can lose the race with a chunk already under way.
    late = [s for s in after_opt_out if s["late_by_s"] > OPT_OUT_WINDOW_S]
    checks = {
        "every_message_final": non_final == 0,
        "zero_duplicates_at_provider": stats["duplicates"] == 0,
        "zero_sends_after_opt_out": not late,
    }
    result = {
        "status": "pass" if all(checks.values()) else "fail",
        "checks": checks,
        "params": {
            "n": n,
            "workers": args.workers,
            "sender_max_mps": args.sender_mps,
            "latency_ms": args.latency_ms,
            "faults": FAULTS,
            "timeout_hold_s": 6.0,
            "SMS_HTTP_TIMEOUT": 2,
            "SMS_LEASE_SECONDS": args.lease_seconds,
            "SMS_UNKNOWN_RESEND_SECONDS": args.unknown_resend_seconds,
            "SMS_REDISPATCH_SECONDS": args.redispatch_seconds,
            "SMS_BATCH_SIZE": args.batch_size,
            "opt_outs": args.opt_outs,
            "restart_killed_worker": not args.no_restart_killed,
            "redis": f"private redis-server on port {rds.port}, restarted without persistence",
        },
        "timeline": timeline,
        "progress": progress,
        "seconds_launch_to_all_final": round(settled - launched, 1),
        "campaign_status": campaign.status,
        "messages_by_status": by_status,
        "non_final": non_final,
        "sent_again_after_no_report": sent_again,
        "provider": {
            "requests": stats["requests"],
            "accepted": stats["accepted"],
            "unique_destinations": stats["unique_pairs"],
            "duplicates": stats["duplicates"],
            "duplicate_examples": dups[:5],
            "faults": {k: v for k, v in stats.items() if k.startswith("fault_")},
            "callbacks_sent": stats["callbacks_sent"],
            "callbacks_failed": stats["callbacks_failed"],
        },
        "opted_out": len(opted_out),
        "opted_out_sent_before_opt_out": before_opt_out,
        "opt_out_window_s": OPT_OUT_WINDOW_S,
        "sends_after_opt_out": late,
        "sends_after_opt_out_strict": after_opt_out,
        "machine": machine,
    }
    path = common.write_result(name, result, results_dir=results_dir)
    print(f"soak {result['status']}: {checks}; statuses {by_status}")
    return {"path": path, "result": result, "ok": result["status"] == "pass"}
