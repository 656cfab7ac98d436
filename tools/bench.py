#!/usr/bin/env python3
"""Benchmarks: python tools/bench.py book|feed|match|store|trader|api|peers [options].

Prints one JSON object per line: {"bench", "metric", "value", "unit"}.
Figures, not tests: compare ratios within one run on a noisy machine."""

from __future__ import annotations

import importlib
import os
import sys

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# bench name -> modules under tools/ whose run(args) yields metric dicts.
BENCHES = {
    "book": ["bench_book"],
    "feed": ["bench_feed", "bench_venues", "bench_feed_socket"],
    "match": ["bench_match", "bench_match_usdm", "bench_match_okx", "bench_match_bybit"],
    "store": ["bench_store"],
    "trader": ["bench_trader", "bench_trader_strategy", "bench_trader_usdm", "bench_trader_okx",
               "bench_trader_bybit"],
    "api": ["bench_api"],
    # ours vs cryptofeed and the order-book C extension (bench-only installs)
    "peers": ["bench_peers"],
}


USAGE = f"usage: bench.py {{{'|'.join(BENCHES)}}} [options]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        for bench, modules in BENCHES.items():
            print(f"  {bench:8} {', '.join(modules)}")
        return 0
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] not in BENCHES:
        print(f"bench.py: unknown benchmark {argv[0]!r} (have: {', '.join(BENCHES)})\n{USAGE}",
              file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    missing = []
    for n, module_name in enumerate(BENCHES[name], 1):
        # Progress, quietly on stderr (stdout carries the figures): which part runs now.
        print(f"bench.py: [{n}/{len(BENCHES[name])}] {module_name}", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            missing.append(module_name)
            continue
        for row in module.run(rest):
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
            sys.stdout.flush()
    if missing:
        print(f"not built yet: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
