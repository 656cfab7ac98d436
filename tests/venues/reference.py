"""Independent reference books for the tests: rebuilt straight from the raw
recorded messages with plain dicts of the venue's price/size strings, following
each venue's documented procedure. Shares no code with engine/ on purpose, so a
bug in the drivers or the sync code cannot hide in both. Each function asserts
the capture has no gap (that is what the captures' SOURCES.md claim).
"""

from __future__ import annotations

import gzip
import json
import zlib
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import zstandard

DATA = Path(__file__).resolve().parent.parent / "data"


class RefBook:
    """Per side: Decimal price -> (price string, size string) as the venue sent them."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}
        self.applied = 0
        self.last = 0

    def replace(self, bids: list, asks: list) -> None:
        self.bids, self.asks = {}, {}
        self.update(bids, asks)

    def update(self, bids: list, asks: list) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for lv in levels:
                price = Decimal(lv[0])  # "30244" and "30244.0" are one level
                if Decimal(lv[1]) == 0:
                    side.pop(price, None)
                else:
                    side[price] = (lv[0], lv[1])

    def top_strings(self, depth: int) -> tuple[list, list]:
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:depth]]
        asks = [self.asks[p] for p in sorted(self.asks)[:depth]]
        return bids, asks

    def top(self, depth: int) -> tuple[list[list[float]], list[list[float]]]:
        bids, asks = self.top_strings(depth)
        return ([[float(p), float(s)] for p, s in bids], [[float(p), float(s)] for p, s in asks])


def read_records(path: Path) -> list[dict]:
    """Our capture format, read with the standard library (not engine.feed.capture)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:4] == b"\x28\xb5\x2f\xfd":
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def binance_books(records: list[dict], futures: bool) -> dict[str, RefBook]:
    """Binance 'How to manage a local order book correctly', per symbol.
    Spot: drop u <= L; first U <= L+1 <= u; then U == prev u + 1.
    Futures: drop u < L; first U <= L <= u; then pu == prev u."""
    pending: dict[str, list[dict]] = {}
    books: dict[str, RefBook] = {}
    for rec in records:
        if rec["src"] == "rest":
            symbol = parse_qs(urlsplit(rec["url"]).query)["symbol"][0]
            snap = json.loads(rec["data"])
            book = books[symbol] = RefBook()
            book.replace(snap["bids"], snap["asks"])
            book.last = snap["lastUpdateId"]
            book.applied = -1  # nothing applied since the snapshot yet
            events, pending[symbol] = pending.get(symbol, []), []
            for ev in events:
                _binance_event(book, ev, futures)
            continue
        msg = json.loads(rec["data"])
        ev = msg.get("data", msg)
        if ev.get("e") != "depthUpdate":
            continue
        symbol = ev["s"]
        if symbol in books:
            _binance_event(books[symbol], ev, futures)
        else:
            pending.setdefault(symbol, []).append(ev)
    return books


def _binance_event(book: RefBook, ev: dict, futures: bool) -> None:
    first = book.applied < 0
    if futures:
        if first:
            if ev["u"] < book.last:
                return
            assert ev["U"] <= book.last <= ev["u"], "first event does not bracket the snapshot"
        else:
            assert ev["pu"] == book.last, f"gap: pu {ev['pu']} != {book.last}"
    else:
        if ev["u"] <= book.last:
            return
        if first:
            assert ev["U"] <= book.last + 1 <= ev["u"], "first event does not bracket L+1"
        else:
            assert ev["U"] == book.last + 1, f"gap: U {ev['U']} != {book.last} + 1"
    book.update(ev["b"], ev["a"])
    book.last = ev["u"]
    book.applied = max(book.applied, 0) + 1


def bybit_books(records: list[dict]) -> dict[str, RefBook]:
    """Bybit v5: a snapshot replaces the book; each delta's u is the previous u + 1."""
    books: dict[str, RefBook] = {}
    for rec in records:
        msg = json.loads(rec["data"])
        if not str(msg.get("topic", "")).startswith("orderbook."):
            continue
        data = msg["data"]
        book = books.setdefault(data["s"], RefBook())
        if msg["type"] == "snapshot":
            book.replace(data["b"], data["a"])
            book.applied = 0
        else:
            assert data["u"] == book.last + 1, f"gap: u {data['u']} after {book.last}"
            book.update(data["b"], data["a"])
            book.applied += 1
        book.last = data["u"]
    return books


def okx_crc(bids: list, asks: list) -> int:
    """OKX recipe: CRC32 of bid:ask interleaved 'price:size' strings, top 25, signed."""
    fields = []
    for i in range(25):
        if i < len(bids):
            fields += [bids[i][0], bids[i][1]]
        if i < len(asks):
            fields += [asks[i][0], asks[i][1]]
    value = zlib.crc32(":".join(fields).encode("utf-8"))
    return value - 2**32 if value > 2**31 - 1 else value


def okx_books(records: list[dict]) -> tuple[dict[str, RefBook], int]:
    """OKX books channel per instId; returns the books and how many non-zero
    checksums were verified (each must match)."""
    books: dict[str, RefBook] = {}
    verified = 0
    for rec in records:
        msg = json.loads(rec["data"]) if rec["data"] not in ("pong",) else {}
        if msg.get("arg", {}).get("channel") != "books" or "event" in msg:
            continue
        inst = msg["arg"]["instId"]
        for data in msg["data"]:
            book = books.setdefault(inst, RefBook())
            if msg["action"] == "snapshot":
                book.replace(data["bids"], data["asks"])
                book.applied = 0
            else:
                if "prevSeqId" in data and book.applied:
                    assert data["prevSeqId"] == book.last, "gap in seqId chain"
                book.update(data["bids"], data["asks"])
                book.applied += 1
            book.last = data.get("seqId", 0)
            if data.get("checksum"):
                bids, asks = book.top_strings(25)
                assert okx_crc(bids, asks) == data["checksum"], "checksum mismatch"
                verified += 1
    return books, verified
