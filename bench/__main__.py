"""``python -m bench <command>``: run one benchmark, the soak, the report, or all of them."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench import common


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    from bench import dashboard, events, fanout, imports, outage, pacing, purge, redirect, report, soak, webhooks

    modules = {
        "fanout": fanout,
        "imports": imports,
        "webhooks": webhooks,
        "events": events,
        "dashboard": dashboard,
        "redirect": redirect,
        "purge": purge,
        "pacing": pacing,
        "soak": soak,
        "outage": outage,
        "report": report,
    }
    for name, module in modules.items():
        module.add_arguments(sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0].replace("%", "%%")))
    p_all = sub.add_parser("all", help="every benchmark at its headline size, then the report")
    p_all.add_argument("--quick", action="store_true", help="10k fan-out only, smaller dashboard")
    args = parser.parse_args(argv)
    if args.command == "all":
        return run_all(quick=args.quick)
    out = modules[args.command].run(args)
    return 0 if not isinstance(out, dict) or out.get("ok", True) else 1


ALL = [
    ["fanout", "--n", "10000", "--latency-ms", "50"],
    ["fanout", "--n", "10000", "--latency-ms", "0"],
    [
        "fanout",
        "--n",
        "10000",
        "--latency-ms",
        "50",
        "--worker-log-level",
        "WARNING",
        "--name",
        "fanout_10000_50ms_quiet",
    ],
    [
        "fanout",
        "--n",
        "10000",
        "--latency-ms",
        "50",
        "--backend",
        "bench.experiments.AiohttpPlivoBackend",
        "--name",
        "fanout_10000_50ms_exp_aiohttp",
    ],
    ["fanout", "--n", "100000", "--latency-ms", "50"],
    ["fanout", "--n", "1000000", "--latency-ms", "50", "--stop-after", "120", "--name", "fanout_1000000_50ms"],
    ["imports", "--n", "100000"],
    ["webhooks"],
    ["events", "--n", "10000", "--latency-ms", "50"],
    ["dashboard", "--messages", "1000000"],
    ["redirect"],
    ["purge", "--n", "1000000"],
    ["pacing"],
    ["soak"],
    ["outage"],
]


def run_all(*, quick: bool) -> int:
    """Each benchmark runs in its own process (Django is set up once per process)."""
    started = time.monotonic()
    failed = []
    for cmd in ALL:
        if quick and cmd[0] == "fanout" and cmd[2] in ("100000", "1000000"):
            continue
        if quick and cmd[0] == "dashboard":
            cmd = ["dashboard", "--messages", "100000"]
        print("==>", "python -m bench", " ".join(cmd), flush=True)
        rc = subprocess.run([common.PY, "-m", "bench", *cmd], cwd=common.ROOT).returncode
        if rc:
            failed.append(" ".join(cmd))
    subprocess.run([common.PY, "-m", "bench", "report"], cwd=common.ROOT, check=False)
    print(f"python -m bench all took {time.monotonic() - started:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
