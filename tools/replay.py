#!/usr/bin/env python3
"""Replay a capture file through the live driver and book code, offline.

  python tools/replay.py book --exchange EXCHANGE --market spot|futures --input FILE
                              [--pair BASE/QUOTE] [--depth N] [--verbose]

Reads JSON-lines captures (plain, .gz or .zst; convert other recorders' files
with tools/import_capture.py first) and prints one JSON object per book on
stdout, at its state at the end of the file:

  {"exchange", "market", "pair", "synced": bool, "seq": int,
   "bids": [[price, size], ...], "asks": [[price, size], ...],   # top N, best first
   "messages": int, "deltas_applied": int, "resyncs": int, "gaps": int, "errors": int}

``messages`` counts the book's snapshots (WS and REST) and deltas; ``errors``
counts that book's rejected data plus everything not tied to a book (malformed
lines, frames the driver could not parse, unusable REST records), so a
malformed line shows in every book's figure. Malformed lines never crash the
replay. On stderr it always ends with one summary line of what it read
(``replay.py: records=.. ws=.. rest=.. bad_lines=.. books=.. resyncs=.. errors=..``)
and shows progress on long files.

Exit status: 0; 1 when the input held no frame usable for the asked venue,
market and pair (empty file, junk, another venue's capture, a pair the capture
lacks), with the reason on stderr and nothing on stdout; 2 for bad arguments
or an unreadable file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger

from engine.feed.replay import replay_book
from engine.venues import DRIVERS
from tools.progress import Progress


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="replay.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    book = sub.add_parser("book", help="replay order books and print their final state")
    book.add_argument("--exchange", required=True, choices=sorted(DRIVERS))
    book.add_argument("--market", required=True, choices=["spot", "futures"])
    book.add_argument("--input", required=True, help="capture file (.jsonl, .gz or .zst)")
    book.add_argument("--pair", help="only this book, as BASE/QUOTE (e.g. BTC/USDT)")
    book.add_argument("--depth", type=int, default=20, help="levels per side to print (default 20)")
    book.add_argument("--verbose", action="store_true", help="log resyncs and errors on stderr")
    args = p.parse_args(argv)
    if args.depth < 1:
        p.error("--depth must be at least 1")
    if not Path(args.input).is_file():
        p.error(f"--input {args.input!r}: no such file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logger.remove()
    logger.add(sys.stderr, level="INFO" if args.verbose else "ERROR")
    progress = Progress(f"replay {Path(args.input).name}")
    try:
        result = replay_book(args.exchange, args.market, args.input, args.pair, args.depth,
                             progress=progress.update)
    except OSError as exc:
        print(f"replay.py: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    progress.close()
    print(f"replay.py: {result.summary()}", file=sys.stderr)
    problem = result.problem(args.exchange, args.market, args.pair)
    if problem is not None:
        print(f"replay.py: {args.input}: {problem}", file=sys.stderr)
        return 1
    out = sys.stdout.buffer
    for report in result.reports:
        out.write(orjson.dumps(report) + b"\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
