"""Event webhooks under a fan-out: the same 10k campaign without and with a message.sent endpoint.

Runs ``bench.fanout`` twice in this process (baseline first, then with ``--webhook``: an endpoint
on a loopback receiver that answers 200), and reports the fan-out rate of each, the slowdown, and
how long after the launch the last of the N events reached the receiver. Target: every event
delivered, in bounded time, and the fan-out no more than 10% slower.
"""

from __future__ import annotations

import argparse

from bench import common, fanout


def add_arguments(p) -> None:
    fanout.add_arguments(p)


def run(args) -> dict:
    base_args = argparse.Namespace(**{**vars(args), "webhook": False, "no_references": True})
    hook_args = argparse.Namespace(**{**vars(args), "webhook": True, "no_references": True})
    n, latency = args.n, int(args.latency_ms)
    base = fanout.run(argparse.Namespace(**{**vars(base_args), "name": f"events_baseline_{n}_{latency}ms"}))
    hooked = fanout.run(argparse.Namespace(**{**vars(hook_args), "name": f"events_webhook_{n}_{latency}ms"}))
    b, h = base["result"], hooked["result"]
    slowdown = 1 - h["messages_per_second"] / b["messages_per_second"] if b["messages_per_second"] else None
    result = {
        "status": "ok" if h["webhook_events"]["events_received"] >= n else "incomplete",
        "params": {"n": n, "workers": args.workers, "latency_ms": args.latency_ms},
        "baseline_messages_per_second": b["messages_per_second"],
        "with_webhook_messages_per_second": h["messages_per_second"],
        "fanout_slowdown": round(slowdown, 3) if slowdown is not None else None,
        "baseline_sql_statements_per_message": b["db"]["sql_statements_per_message"],
        "with_webhook_sql_statements_per_message": h["db"]["sql_statements_per_message"],
        "webhook_events": h["webhook_events"],
        "machine": common.machine_info(),
    }
    path = common.write_result(f"events_{n}_{latency}ms", result)
    print(
        f"events: fan-out {b['messages_per_second']:.0f} -> {h['messages_per_second']:.0f} msg/s "
        f"(slowdown {result['fanout_slowdown']}); {h['webhook_events']['events_received']}/{n} events, "
        f"last {h['webhook_events']['seconds_launch_to_last_event']} s after launch"
    )
    return {"path": path, "result": result}
