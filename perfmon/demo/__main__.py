"""Command line: ``python -m perfmon.demo [--url URL --api-key KEY] [--episodes N] ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import perfmon
from perfmon.demo import DEFAULT_EPISODES, DEFAULT_SEED, DEFAULT_SPEED, run_demo

FLUSH_TIMEOUT_S = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m perfmon.demo",
        description="Generate demo episodes with a simulated script generator and send "
        "them to a perfmon server through the SDK's exporter.",
    )
    parser.add_argument("--url", help=f"perfmon server URL (default: ${perfmon.ENV_URL})")
    parser.add_argument("--api-key", help=f"API key (default: ${perfmon.ENV_API_KEY})")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES,
                        help="number of episodes (default: %(default)s; at least 4)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="random seed; the same seed gives the same calls (default: "
                        "%(default)s)")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                        help="simulated seconds per real second (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.episodes < 4:
        parser.error("--episodes must be at least 4")
    if args.speed <= 0:
        parser.error("--speed must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exporting = perfmon.configure(url=args.url, api_key=args.api_key)
    began = time.monotonic()
    results = asyncio.run(run_demo(episodes=args.episodes, seed=args.seed, speed=args.speed))
    for result in results:
        totals = result.totals()
        print(f"{totals['id']:<14} {totals['status']:<9} {totals['operations']:>4} ops "
              f"{totals['api_calls']:>4} calls {totals['total_tokens']:>7,} tokens  "
              f"{totals['note']}")
    delivered = True
    if exporting:
        delivered = perfmon.flush(FLUSH_TIMEOUT_S)
        exporter = perfmon.stats()
        shown = ("sent", "retried", "spooled", "dropped", "quarantined")
        print("exporter: " + ", ".join(f"{exporter[name]} {name}" for name in shown))
    else:
        exporter = None
        print("not exporting: pass --url and --api-key (or set PERFMON_URL/PERFMON_API_KEY)")
    print(f"{len(results)} sessions in {time.monotonic() - began:.1f}s")
    print(json.dumps({"sessions": [r.totals() for r in results], "exporter": exporter,
                      "delivered": delivered}))
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
