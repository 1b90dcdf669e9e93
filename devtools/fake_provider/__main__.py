"""``python -m devtools.fake_provider [--port 8025] [--latency-ms 50] ...``

Every FakeConfig key is a flag (``rate_5xx`` -> ``--rate-5xx``); dict/list keys take
JSON. ``--config-json '{...}'`` sets several keys at once (flags win over it).
Prints ``FAKE_PROVIDER_URL=http://host:port`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import sys
from typing import Any

from .client import URL_LINE_PREFIX
from .registry import FakeConfig
from .server import FakeProviderServer
from .threaded import new_event_loop

_OPTIONAL_RATES = ("duplicate_callbacks", "out_of_order", "early_callback")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m devtools.fake_provider",
        description="Fake Plivo + Flowroute SMS/MMS provider (aiohttp).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8025, help="0 picks a free port")
    p.add_argument("--config-json", default=None, help="JSON object of config keys")
    p.add_argument("--log-level", default="WARNING")
    defaults = FakeConfig()
    rate_fields = FakeConfig.rate_fields()
    for f in dataclasses.fields(FakeConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        if f.name in _OPTIONAL_RATES:
            kw.update(type=float, nargs="?", const=1.0, help=f"rate 0..1, bare flag = 1 ({default})")
        elif f.name in rate_fields:
            kw.update(type=float, help=f"rate 0..1 (default {default})")
        elif isinstance(default, bool):
            kw.update(action=argparse.BooleanOptionalAction, help=f"(default {default})")
        elif isinstance(default, dict | list):
            kw.update(type=json.loads, help=f"JSON (default {json.dumps(default)})")
        elif isinstance(default, float):
            kw.update(type=float, help=f"(default {default})")
        elif isinstance(default, int):
            kw.update(type=int, help=f"(default {default})")
        elif f.name == "seed":
            kw.update(type=int, help="RNG seed (default: random)")
        else:
            kw.update(type=str, help=f"(default {default})")
        p.add_argument(flag, **kw)
    return p


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if args.config_json:
        loaded = json.loads(args.config_json)
        if not isinstance(loaded, dict):
            raise SystemExit("--config-json must be a JSON object")
        cfg.update(loaded)
    names = set(FakeConfig.field_names())
    cfg.update({k: v for k, v in vars(args).items() if k in names})
    return cfg


async def _serve(args: argparse.Namespace, cfg: dict[str, Any]) -> None:
    server = FakeProviderServer(**cfg)
    url = await server.start(args.host, args.port)
    print(f"{URL_LINE_PREFIX}{url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    try:
        cfg = config_from_args(args)
        FakeConfig().update(**cfg)  # validate before starting
    except ValueError as e:
        print(f"invalid config: {e}", file=sys.stderr)
        return 2
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(args, cfg))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
