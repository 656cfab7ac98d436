#!/usr/bin/env python3
"""Convert other recorders' market-data files into our capture format
(docs/architecture.md) so tools/replay.py and the tests can replay them.

  python tools/import_capture.py --input FILE --output OUT.jsonl[.gz|.zst]
        [--format auto|timeline|book_seq|bybit_history|hftbacktest|capture]
        [--exchange binance|bybit|okx] [--market spot|futures]
        [--symbol SYMBOL] [--url WS_URL]

Formats (``auto`` sniffs the first line):
  timeline       cryptofeed sample-data timelines ``{"t": epoch s, "dir": open|out|in|rest,
                 "url", "raw"}``: ``in`` -> ws (url = the last ``open``), ``rest`` -> rest,
                 ``open``/``out`` dropped (we record what we receive). An ``in`` line with
                 ``raw_gzip_b64`` (HTX) keeps those wire bytes instead of the decoded ``raw``.
  book_seq       ``{"t": epoch s, "src": ws|rest, "raw"[, "url"]}`` per line.
  bybit_history  Bybit's public history dumps (``*_ob500.data``, also inside the .zip):
                 one raw V5 WS message per line, no receive time; ``t`` = ``cts`` or ``ts``.
  hftbacktest    ``<timestamp> <json>`` lines (hftbacktest / collect-binancefutures); the unit
                 (s, ms, us or ns) is inferred from the magnitude. A Binance REST depth
                 snapshot line (``lastUpdateId``, no ``e``) becomes a rest record whose URL is
                 built from --exchange/--market and --symbol (default: file name up to ``_``).
  capture        already ours: validated and recompressed.
A missing ws URL is --url, else the venue's default for --exchange/--market.
Lines that cannot be converted are counted and skipped; stderr names the file,
line number and reason of the first few. Shows progress on long files.

Exit status: 0; 1 when no line could be converted; 2 for bad arguments (a
missing input, an output folder that does not exist, an output name not ending
in .jsonl, .jsonl.gz or .jsonl.zst, a format it cannot tell).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlencode

import orjson
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.feed.capture import CaptureReader, encode_record, open_capture
from engine.venues import DRIVERS, make_driver
from tools.progress import Progress

FORMATS = ("timeline", "book_seq", "bybit_history", "hftbacktest", "capture")
OUTPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
SNIFF_LINES = 20  # lines tried before giving up on telling the format
BAD_LINES_SHOWN = 5  # bad lines named on stderr; the rest are only counted
HFT_LINE = re.compile(rb"^(\d{9,20})\s+(.*)$", re.S)
Record = tuple[int, str, str, str, str | bytes]  # t ns, src, conn, url, data


def seconds_to_ns(t: float) -> int:
    return int(round(t * 1e9))


def scale_to_ns(stamp: int) -> int:
    """An integer timestamp in s, ms, us or ns (by magnitude, for dates 2001..2286) as ns."""
    for limit, factor in ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3)):
        if stamp < limit:
            return stamp * factor
    return stamp


def open_lines(path: Path) -> IO[bytes]:
    """Plain, .gz, .zst, or the first member of a .zip (Bybit ships zips)."""
    if zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        return io.BufferedReader(archive.open(archive.namelist()[0]))  # type: ignore[arg-type]
    return open_capture(path)


def sniff(path: Path) -> str:
    """The format of the first line that tells it (malformed lines are passed
    over: the converter counts them); an error naming the file and line."""
    first_error = ""
    with open_lines(path) as stream:
        for number, line in enumerate(stream, 1):
            line = line.strip()
            if not line:
                continue
            if number > SNIFF_LINES:
                break
            if HFT_LINE.match(line):
                return "hftbacktest"
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                first_error = first_error or f"line {number} is not JSON ({exc})"
                continue
            if not isinstance(obj, dict):
                first_error = first_error or f"line {number} is not a JSON object"
                continue
            if "dir" in obj:
                return "timeline"
            if "src" in obj and "raw" in obj:
                return "book_seq"
            if "src" in obj and "data" in obj:
                return "capture"
            if "topic" in obj:
                return "bybit_history"
            first_error = first_error or f"line {number} has none of the known formats' keys"
    reason = first_error or "no line to read"
    raise ValueError(f"{path}: cannot tell the format ({reason}); pass --format")


class Importer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.skipped = 0
        self.lines = 0  # lines read (progress)
        self.driver = make_driver(args.exchange, args.market) if args.exchange else None

    def default_ws_url(self) -> str:
        if self.args.url:
            return self.args.url
        return self.driver.connect_url([]) if self.driver is not None else ""

    def rest_url_for(self, symbol: str) -> str:
        if self.driver is None:
            raise ValueError("a REST snapshot without URL needs --exchange and --market")
        request = self.driver.snapshot_request(self.driver.pair(symbol), 0)  # depth unknown
        assert request is not None, "venue takes snapshots over WebSocket"
        return f"{request.url}?{urlencode(request.params)}"

    def records(self, fmt: str, path: Path) -> Iterator[Record]:
        if fmt == "capture":
            reader = CaptureReader(path)
            for rec in reader:
                self.lines += 1
                yield rec.t, rec.src, rec.conn, rec.url, rec.data  # type: ignore[misc]
            self.skipped += reader.bad_lines
            if reader.bad_lines:
                print(f"import_capture.py: {path}: skipped {reader.bad_lines} line(s) that are not "
                      f"capture records", file=sys.stderr)
            return
        with open_lines(path) as stream:
            convert = getattr(self, f"_{fmt}")
            state: dict = {}
            for number, line in enumerate(stream, 1):
                self.lines = number
                if not line.strip():
                    continue
                try:
                    record = convert(line, state)
                except Exception as exc:  # noqa: BLE001 - count and skip what we cannot read
                    self.skipped += 1
                    if self.skipped <= BAD_LINES_SHOWN:
                        print(f"import_capture.py: {path}:{number}: skipped ({type(exc).__name__}: "
                              f"{exc})", file=sys.stderr)
                    continue
                if record is not None:
                    yield record

    def _timeline(self, line: bytes, state: dict) -> Record | None:
        obj = orjson.loads(line)
        direction = obj["dir"]
        if direction == "open":
            state["url"] = obj["url"]
            state["conn"] = f"cf-{state.get('opens', 0)}"
            state["opens"] = state.get("opens", 0) + 1
            return None
        if direction == "in":
            # HTX timelines keep the binary gzip frame too: replay what arrived.
            data = base64.b64decode(obj["raw_gzip_b64"]) if "raw_gzip_b64" in obj else obj["raw"]
            return (seconds_to_ns(obj["t"]), "ws", state.get("conn", "cf-0"),
                    state.get("url") or self.default_ws_url(), data)
        if direction == "rest":
            return seconds_to_ns(obj["t"]), "rest", "cf-rest", obj["url"], obj["raw"]
        return None  # "out": what the client sent

    def _book_seq(self, line: bytes, state: dict) -> Record:
        obj = orjson.loads(line)
        src = obj["src"]
        if src == "rest":
            return seconds_to_ns(obj["t"]), "rest", "import-rest", obj["url"], obj["raw"]
        if src != "ws":
            raise ValueError(f"unknown src {src!r}")
        return seconds_to_ns(obj["t"]), "ws", "import", obj.get("url") or self.default_ws_url(), obj["raw"]

    def _bybit_history(self, line: bytes, state: dict) -> Record:
        text = line.decode().strip()
        obj = orjson.loads(text)
        stamp = int(obj.get("cts") or obj["ts"])
        return scale_to_ns(stamp), "ws", "bybit-history", self.default_ws_url(), text

    def _hftbacktest(self, line: bytes, state: dict) -> Record:
        match = HFT_LINE.match(line.strip())
        if match is None:
            raise ValueError("not a '<timestamp> <json>' line")
        t = scale_to_ns(int(match.group(1)))
        text = match.group(2).decode()
        obj = orjson.loads(text)
        if isinstance(obj, dict) and "lastUpdateId" in obj and "e" not in obj:
            symbol = self.args.symbol or Path(self.args.input).name.split("_")[0]
            return t, "rest", "import-rest", self.rest_url_for(symbol.upper()), text
        return t, "ws", "import", self.default_ws_url(), text


def open_output(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "wb")  # type: ignore[return-value]
    if path.name.endswith(".zst"):
        return zstandard.ZstdCompressor(level=3).stream_writer(open(path, "wb"))  # type: ignore[return-value]
    return open(path, "wb")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="import_capture.py", description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True, help=".jsonl, .jsonl.gz or .jsonl.zst")
    p.add_argument("--format", default="auto", choices=("auto",) + FORMATS)
    p.add_argument("--exchange", choices=sorted(DRIVERS))
    p.add_argument("--market", default="spot", choices=["spot", "futures"])
    p.add_argument("--symbol", help="venue symbol of a single-symbol file (hftbacktest snapshots)")
    p.add_argument("--url", default="", help="WebSocket URL for records that carry none")
    return p.parse_args(argv)


def check_paths(args: argparse.Namespace) -> str | None:
    """Why the input or output cannot be used, else None."""
    source, output = Path(args.input), Path(args.output)
    if not source.is_file():
        return f"--input {source}: no such file"
    if not output.name.endswith(OUTPUT_SUFFIXES):
        return f"--output {output}: the name must end in {', '.join(OUTPUT_SUFFIXES)}"
    if not output.parent.is_dir():
        return f"--output {output}: folder {output.parent} does not exist"
    if output.resolve() == source.resolve():
        return f"--output {output}: the same file as --input"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    source = Path(args.input)
    problem = check_paths(args)
    if problem is not None:
        print(f"import_capture.py: {problem}", file=sys.stderr)
        return 2
    try:
        fmt = sniff(source) if args.format == "auto" else args.format
    except (ValueError, OSError) as exc:
        print(f"import_capture.py: {exc}", file=sys.stderr)
        return 2
    importer = Importer(args)
    written = 0
    progress = Progress(f"import {source.name}", unit="lines")
    with open_output(Path(args.output)) as out:
        for t, src, conn, url, data in importer.records(fmt, source):
            out.write(encode_record(t, src, conn, url, data))
            written += 1
            if written % 10_000 == 0:
                progress.update(importer.lines)
    progress.close()
    print(f"import_capture.py: format={fmt} records={written} skipped={importer.skipped} "
          f"output={args.output}", file=sys.stderr)
    if written == 0:
        print(f"import_capture.py: {source}: no line could be converted as {fmt}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
