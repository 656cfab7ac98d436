"""Hyperliquid for the fault-injecting server: ``l2Book`` frames that each
carry the whole book (BTC perpetual, the real 2025-01-26 recording), ``trades``
as idle traffic, ``subscriptionResponse`` acks and ``{"channel":"pong"}``.
Parses the capture independently of engine.venues.hyperliquid."""

from __future__ import annotations

import re

import orjson

from tests.support.venue_streams import DATA, Frame, RefBook, Stream, VenueScript, next_trade, rename

CAPTURE = DATA / "hyperliquid" / "perp_BTC_2025-01-26.capture.jsonl"


class HyperliquidScript(VenueScript):
    """Every frame replaces the book, so the venue has no gap to see: a dropped
    or skipped frame is healed by the next one and forces no resync
    (``unseen_faults``); an older frame after a newer one is refused and the
    book resubscribed."""

    venue = "hyperliquid"
    market = "futures"
    book_topic = re.compile(r'"type"\s*:\s*"l2Book"\s*,\s*"coin"\s*:\s*"([^"]+)"')
    # Faults this venue cannot (and need not) notice: every frame is the whole book.
    unseen_faults = frozenset({"drop", "gap"})

    def load(self) -> list[Stream]:
        books = []
        for line in CAPTURE.read_text().splitlines():
            data = orjson.loads(line)["data"]
            if '"channel":"l2Book"' in data:
                books.append(data)
        first = orjson.loads(books[0])["data"]
        book = RefBook()
        self.apply(book, books[0])
        return [Stream(first["coin"], f"{first['coin']}/USDC", list[Frame](books[1:]),
                       [{"time": orjson.loads(f)["data"]["time"]} for f in books[1:]], book,
                       {"time": first["time"]})]

    def clone(self, stream: Stream, base: str) -> Stream:
        return Stream(base, f"{base}/USDC",
                      [rename(f, f'"coin":"{stream.symbol}"', f'"coin":"{base}"')  # type: ignore[arg-type]
                       for f in stream.frames],
                      stream.meta, stream.book.copy(), stream.base_meta)

    def apply(self, book: RefBook, frame: Frame) -> None:
        bids, asks = orjson.loads(frame)["data"]["levels"]
        book.bids, book.asks = {}, {}
        for lv in bids:
            book.update("bid", [lv["px"], lv["sz"], lv["n"]])
        for lv in asks:
            book.update("ask", [lv["px"], lv["sz"], lv["n"]])

    def ws_snapshot(self, stream: Stream) -> str:
        meta = stream.meta[stream.pos - 1] if stream.pos else stream.base_meta
        levels = [[{"n": n, "px": px, "sz": sz} for px, sz, n in stream.book.wire(side)]
                  for side in ("bid", "ask")]
        return orjson.dumps({"channel": "l2Book", "data": {"coin": stream.symbol, "levels": levels,
                                                           "time": meta["time"]}}).decode()

    def ack(self, client_frame: str) -> list[str]:
        try:
            msg = orjson.loads(client_frame)
            if msg.get("method") not in ("subscribe", "unsubscribe"):
                return []
            return [orjson.dumps({"channel": "subscriptionResponse", "data": msg}).decode()]
        except (orjson.JSONDecodeError, AttributeError):
            return []

    def rest_post(self, path: str, body: bytes, streams: list[Stream]) -> tuple[int, str] | None:
        """``POST /info {"type":"meta"}``: the perp universe, the served coins only."""
        if path != "/info" or orjson.loads(body or b"{}") != {"type": "meta"}:
            return None
        universe = [{"name": s.symbol, "szDecimals": 5, "maxLeverage": 50} for s in streams]
        return 200, orjson.dumps({"universe": universe, "marginTables": []}).decode()

    def pong(self, client_frame: str) -> str | None:
        return '{"channel":"pong"}' if '"method":"ping"' in client_frame.replace(" ", "") else None

    def trade_frame(self, stream: Stream) -> str:
        trade_id, price, ms = next_trade(stream)
        return orjson.dumps({"channel": "trades", "data": [
            {"coin": stream.symbol, "side": "B", "px": price, "sz": "0.001", "time": ms,
             "hash": "0x" + "0" * 64, "tid": trade_id,
             "users": ["0x" + "1" * 40, "0x" + "2" * 40]}]}).decode()
