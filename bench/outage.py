"""Provider outage with a mixed pool (failover and drift back), then pause/resume timing.

Phase 1: a campaign whose pool is one Plivo number and one Flowroute number (one fake per provider,
as in production), callbacks on to a gunicorn serving the real webhooks, beat running. From
``--outage-at`` of the recipients accepted, the Plivo fake answers 503 to everything for
``--outage-seconds``, then heals. Reports the time from the outage to the failover event and to the
first Flowroute send of a row that had failed at Plivo, whether the campaign auto-paused (it must
not), the time from healing to the first Plivo send and to the "recovered" event, every message
final, and each recipient exactly once across both providers.

Phase 2: beat is stopped (so the sweeper cannot re-queue anything), a second campaign on the Plivo
number is launched, paused ``--pause-after`` seconds after its first send, resumed ``--pause-seconds`` later; the
gap between the resume and the next send received by the fake is the figure (issue 17: < 2 s).
"""

from __future__ import annotations

import signal
import time
from types import SimpleNamespace

from bench import common
from bench.fanout import PLIVO_ID, PLIVO_TOKEN
from bench.webhooks import _gunicorn

PAUSE_BODY = "pause bench: hello {first_name}"


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, default=3_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sender-mps", type=float, default=15.0, help="each number's max_mps")
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--outage-at", type=float, default=0.15, help="share of recipients accepted when Plivo fails")
    p.add_argument("--outage-seconds", type=float, default=20.0)
    p.add_argument("--pause-n", type=int, default=600, help="recipients of the pause/resume campaign (0: skip)")
    p.add_argument("--pause-after", type=float, default=3.0)
    p.add_argument("--pause-seconds", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--redispatch-seconds", type=int, default=10, help="SMS_REDISPATCH_SECONDS (at least 5)")
    p.add_argument("--batch-size", type=int, default=200, help="SMS_BATCH_SIZE")
    p.add_argument("--failover-min-sends", type=int, default=20, help="SMS_FAILOVER_MIN_SENDS (the default's)")
    p.add_argument("--auto-pause-min-sends", type=int, default=50, help="SMS_AUTO_PAUSE_MIN_SENDS (the default's)")
    p.add_argument("--redis-port", type=int, default=0, help="the private redis-server's port (default: a free one)")
    common.add_server_arguments(p, redis=False)
    p.add_argument("--name", default="")
    p.add_argument("--results-dir", default="")


def _fake(**kw):
    from devtools.fake_provider import run_in_subprocess

    return run_in_subprocess(
        callbacks=True, callback_delay_s=0.3, callback_retries=5, callback_retry_delay_s=1.0, python=common.PY, **kw
    )


def _after(times: list[float], t: float | None) -> float | None:
    later = [x for x in times if t is not None and x >= t]
    return min(later) if later else None


def _ts(when) -> float | None:
    return when.timestamp() if when else None


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def run(args) -> dict:
    from devtools.fake_provider import flowroute as fake_flowroute
    from devtools.fake_provider import plivo as fake_plivo

    n = args.n
    name = args.name or "outage"
    results_dir = common.Path(args.results_dir) if args.results_dir else None
    machine = common.machine_info()
    procs = common.Procs(name)
    rds = common.PrivateRedis(args.redis_port, procs.dir)
    rds.start()
    port = common.free_port()
    plivo = _fake(latency_ms=args.latency_ms, plivo_auth_id=PLIVO_ID, plivo_auth_token=PLIVO_TOKEN, seed=7)
    flowroute = _fake(latency_ms=args.latency_ms, seed=8)
    timeline: list[tuple[float, str]] = []
    t0 = time.time()

    def mark(what: str) -> None:
        timeline.append((round(time.time() - t0, 2), what))
        print(f"[{time.time() - t0:6.1f}s] {what}", flush=True)

    pause: dict = {}
    try:
        provider_env = {
            **fake_plivo.product_settings(SimpleNamespace(**plivo.config()), plivo.url),
            **fake_flowroute.product_settings(SimpleNamespace(**flowroute.config()), flowroute.url),
        }
        env = common.base_env(
            args.db,
            rds.url,
            SMS_BACKEND="providers.backends.live.SMSBackend",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SMS_HTTP_TIMEOUT=2,
            SMS_RETRY_BASE_SECONDS=0.5,
            SMS_MAX_ATTEMPTS=10,
            SMS_REDISPATCH_SECONDS=args.redispatch_seconds,
            SMS_BATCH_SIZE=args.batch_size,
            SMS_FAILOVER_MIN_SENDS=args.failover_min_sends,
            SMS_AUTO_PAUSE_MIN_SENDS=args.auto_pause_min_sends,
            CELERY_VISIBILITY_TIMEOUT=60,
            **provider_env,
        )
        common.fresh_database(args.db, env)
        common.django_setup(env)
        from django.db import connection
        from django.db.models import Count, Max, Min

        from accounts.models import AuthorizedSender
        from bench.fanout import seed
        from campaigns.models import Campaign, CampaignEvent
        from campaigns.services import campaign_launch, campaign_pause, campaign_resume
        from messaging.models import FINAL_STATUSES, Message
        from recipients.models import RecipientList

        admin, campaign = seed(n=n)
        plivo_number = campaign.senders.get()
        plivo_number.max_mps = args.sender_mps
        plivo_number.save(update_fields=["max_mps"])
        flowroute_number = AuthorizedSender.objects.create(
            user=admin, number="+14155550199", provider="flowroute", max_mps=args.sender_mps
        )
        campaign.senders.add(flowroute_number)
        _gunicorn(procs, "web", dict(env, BENCH_COUNT_QUERIES=""), port, 2)
        beat_cmd = [common.PY, "-m", "celery", "-A", "smsportal", "beat", "-l", "WARNING"]
        procs.start("beat", [*beat_cmd, "-s", str(procs.dir / "beat-schedule")], env)
        for i in range(args.workers):
            procs.worker(f"w{i}", env)
        for i in range(args.workers):
            procs.wait_ready(f"w{i}")
        mark("workers, beat, web and two fake providers (Plivo, Flowroute) up")

        launched = time.time()
        campaign_launch(campaign=campaign, user=admin)
        mark("launched (pool: one Plivo number, one Flowroute number)")
        outage_start = healed = None
        progress: list[tuple[float, int, int, int]] = []  # (s, plivo accepted, plivo 503s, flowroute accepted)
        last_sample = 0.0
        deadline = time.monotonic() + args.timeout
        all_final = completed = None
        while time.monotonic() < deadline:
            ps, fs = plivo.stats(), flowroute.stats()
            accepted = ps["accepted"] + fs["accepted"]
            if outage_start is None and accepted >= args.outage_at * n:
                plivo.configure(rate_5xx=1.0, codes_5xx=[503])
                outage_start = time.time()
                mark(f"Plivo answers 503 to everything ({accepted} accepted)")
            if outage_start and healed is None and time.time() - outage_start >= args.outage_seconds:
                plivo.configure(rate_5xx=0.0)
                healed = time.time()
                mark(f"Plivo healed ({accepted} accepted)")
            if time.time() - last_sample >= 1.0:
                last_sample = time.time()
                progress.append((round(last_sample - t0, 1), ps["accepted"], ps["fault_5xx"], fs["accepted"]))
            if healed and all_final is None:
                open_rows = Message.objects.filter(campaign=campaign).exclude(status__in=FINAL_STATUSES).count()
                if open_rows == 0:
                    all_final = time.time()
                    mark("every message final")
            if all_final and Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.COMPLETED).exists():
                completed = time.time()
                mark("campaign completed")
                break
            time.sleep(0.5)
        settled = all_final or time.time()
        campaign.refresh_from_db()
        by_status = dict(
            Message.objects.filter(campaign=campaign).values_list("status").annotate(c=Count("id")).order_by()
        )
        non_final = sum(v for k, v in by_status.items() if k not in FINAL_STATUSES)
        events = [
            (kind, detail, at.timestamp())
            for kind, detail, at in CampaignEvent.objects.filter(campaign=campaign)
            .order_by("id")
            .values_list("kind", "detail", "created_at")
        ]
        # rows that failed at Plivo and were then sent through Flowroute, and every retried row
        rescued = Message.objects.filter(campaign=campaign, provider="flowroute", attempts__gt=1).aggregate(
            first=Min("sent_at"), count=Count("id")
        )
        retried = Message.objects.filter(campaign=campaign, attempts__gt=1)
        retried_span = retried.aggregate(first=Min("sent_at"), last=Max("sent_at"))
        retried_by_provider = dict(retried.values_list("provider").annotate(c=Count("id")).order_by())
        plivo.drain(5)
        flowroute.drain(5)
        plivo_rows = plivo.message_rows(fields="dst,text,received_at")
        flowroute_rows = flowroute.message_rows(fields="dst,text,received_at")
        plivo_final, flowroute_final = plivo.stats(), flowroute.stats()

        if args.pause_n:
            procs.kill("beat", signal.SIGTERM)
            mark("beat stopped: no sweeper from here on")
            lst = RecipientList.objects.create(name="pause bench", created_by=admin)
            with connection.cursor() as cur:
                cur.execute(
                    "INSERT INTO recipients_membership (recipient_list_id, recipient_id, added_at) "
                    "SELECT %s, id, now() FROM recipients_recipient ORDER BY id LIMIT %s",
                    [lst.pk, args.pause_n],
                )
            second = Campaign.objects.create(name="pause bench", body=PAUSE_BODY, created_by=admin)
            second.lists.set([lst])
            second.senders.set([plivo_number])

            def sent_second() -> list[list]:
                return [r for r in plivo.message_rows(fields="dst,text,received_at") if r[1].startswith("pause bench")]

            before = time.time()
            campaign_launch(campaign=second, user=admin)
            mark("pause/resume campaign launched (Plivo number only)")
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline and not sent_second():
                time.sleep(0.1)
            time.sleep(args.pause_after)
            campaign_pause(campaign=second, user=admin)
            paused = time.time()
            mark("paused")
            time.sleep(args.pause_seconds)
            campaign_resume(campaign=Campaign.objects.get(pk=second.pk), user=admin)
            resumed = time.time()
            mark("resumed")
            deadline = time.monotonic() + args.timeout

            while time.monotonic() < deadline and len(sent_second()) < args.pause_n:
                time.sleep(0.5)
            rows = sent_second()
            mark(f"pause/resume campaign: {len(rows)} accepted")
            times = sorted(r[2] for r in rows)
            pause = {
                "recipients": args.pause_n,
                "accepted": len(rows),
                "unique_recipients": len({r[0] for r in rows}),
                "sent_before_pause": sum(1 for t in times if t < paused),
                "sent_during_pause": sum(1 for t in times if paused <= t < resumed),
                "last_send_after_pause_s": _gap(max((t for t in times if t < resumed), default=None), paused),
                "seconds_launch_to_first_send": _gap(_after(times, before), before),
                "seconds_pause": round(resumed - paused, 2),
                "seconds_resume_to_next_send": _gap(_after(times, resumed), resumed),
                "sweeper": "beat stopped before launch",
            }
    finally:
        procs.stop_all()
        plivo.stop()
        flowroute.stop()
        rds.stop()

    plivo_times = sorted(r[2] for r in plivo_rows)
    flowroute_times = sorted(r[2] for r in flowroute_rows)
    failover_at = next((at for kind, detail, at in events if kind == "failover" and "failing" in detail), None)
    recovered_at = next((at for kind, detail, at in events if kind == "failover" and "recovered" in detail), None)
    destinations = [r[0] for r in plivo_rows + flowroute_rows]
    first_rescued = rescued["first"].timestamp() if rescued["first"] else None
    checks = {
        "every_message_final": non_final == 0,
        "each_recipient_exactly_once": len(destinations) == n and len(set(destinations)) == n,
        "zero_duplicates_at_providers": plivo_final["duplicates"] == 0 and flowroute_final["duplicates"] == 0,
        "no_auto_pause": not any(kind == "auto_pause" for kind, _, _ in events),
        "failed_over": failover_at is not None,
    }
    if pause:
        checks["pause_resume_each_recipient_once"] = pause["accepted"] == pause["unique_recipients"] == args.pause_n
    result = {
        "status": "pass" if all(checks.values()) else "fail",
        "checks": checks,
        "params": {
            "n": n,
            "workers": args.workers,
            "pool": "one Plivo number + one Flowroute number, one fake provider process each",
            "sender_max_mps": args.sender_mps,
            "latency_ms": args.latency_ms,
            "outage_at_share": args.outage_at,
            "outage_seconds": args.outage_seconds,
            "outage": "Plivo answers 503 to every send",
            "SMS_REDISPATCH_SECONDS": args.redispatch_seconds,
            "SMS_BATCH_SIZE": args.batch_size,
            "SMS_MAX_ATTEMPTS": 10,
            "SMS_FAILOVER_MIN_SENDS": args.failover_min_sends,
            "SMS_AUTO_PAUSE_MIN_SENDS": args.auto_pause_min_sends,
            "pause_n": args.pause_n,
            "pause_after_s": args.pause_after,
            "pause_seconds": args.pause_seconds,
        },
        "timeline": timeline,
        "progress": progress,
        "events": [(kind, detail, round(at - t0, 2)) for kind, detail, at in events],
        "seconds_outage_to_failover_event": _gap(failover_at, outage_start),
        "seconds_outage_to_first_rescued_flowroute_send": _gap(first_rescued, outage_start),
        "rows_failed_at_plivo_then_sent_by_flowroute": rescued["count"],
        "retried_rows": {
            "count": sum(retried_by_provider.values()),
            "by_provider": retried_by_provider,
            "seconds_outage_to_first_sent": _gap(_ts(retried_span["first"]), outage_start),
            "seconds_outage_to_last_sent": _gap(_ts(retried_span["last"]), outage_start),
        },
        "seconds_heal_to_first_plivo_send": _gap(_after(plivo_times, healed), healed),
        "seconds_heal_to_recovered_event": _gap(recovered_at, healed),
        "auto_paused": not checks["no_auto_pause"],
        "seconds_launch_to_all_final": round(settled - launched, 1),
        "seconds_all_final_to_completed": _gap(completed, all_final),
        "campaign_status": campaign.status,
        "messages_by_status": by_status,
        "non_final": non_final,
        "providers": {
            "plivo": {k: plivo_final[k] for k in ("requests", "accepted", "duplicates", "fault_5xx")},
            "flowroute": {k: flowroute_final[k] for k in ("requests", "accepted", "duplicates", "fault_5xx")},
        },
        "sends_per_provider_after_heal": {
            "plivo": sum(1 for t in plivo_times if healed and t >= healed),
            "flowroute": sum(1 for t in flowroute_times if healed and t >= healed),
        },
        "pause_resume": pause,
        "machine": machine,
    }
    path = common.write_result(name, result, results_dir=results_dir)
    print(f"outage {result['status']}: {checks}")
    return {"path": path, "result": result, "ok": result["status"] == "pass"}
