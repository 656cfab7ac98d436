"""CoinEx for the fault suite (CoinexScript) and the recorded-style captures its
streams come from. Written against the venue docs with the standard library
(gzip, json, zlib), never engine code, so a driver bug cannot hide in both.

No CoinEx recording of a book sequence exists (the only 2026 frames are single
ones, and CoinEx ceased trading futures on 2026-09-22 and spot on 2026-09-29).
The derived captures re-express real recorded full books — HTX's 2021 spot and
2022 coin-M and USDT-M books (tests/data/htx/) — in CoinEx's v2 wire format: the first book
of a market is the ``is_full`` push, then at most every 200 ms (by receive time)
the change of the top 50 levels per side to the latest book (a level leaving them
at "0"; no push when nothing changed), every push with the documented
CRC32 of the book after it, written as the signed 32-bit integer the docs name.
Recorded trades become ``deals.update``. Prices and sizes are plain decimals.

  python -m tests.support.scripts_coinex   rewrites tests/data/coinex/*_derived.capture.jsonl.zst
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from decimal import Decimal
from pathlib import Path

from tests.support.scripts_htx import (
    HTX,
    SPOT_SOURCE,
    SWAP_SOURCE,
    gz,
    read_capture,
    record_bytes,
    ungz,
    write_capture,
)
from tests.support.venue_streams import DATA, Frame, RefBook, Stream, VenueScript, next_trade

COINEX = DATA / "coinex"
COINM_SOURCE = HTX / "coinm_swap_2022-02-19.capture.jsonl.zst"
SPOT_DERIVED = COINEX / "spot_derived.capture.jsonl.zst"
FUTURES_DERIVED = COINEX / "futures_derived.capture.jsonl.zst"  # from coin-M books: CoinEx's inverse BTCUSD kind
LINEAR_DERIVED = COINEX / "futures_linear_derived.capture.jsonl.zst"  # from USDT-M books
LIMIT = 50
PUSH_EVERY_NS = 200_000_000  # "pushed every 200 ms" (docs): later books in the window are skipped
URLS = {"spot": "wss://socket.coinex.com/v2/spot", "futures": "wss://socket.coinex.com/v2/futures"}
QUOTES = ("USDT", "BTC", "ETH", "USD")  # the recorded markets' quotes


def crc(bids: list[list[str]], asks: list[list[str]]) -> int:
    """The docs' recipe as a signed 32-bit int: bid1_price:bid1_amount:...:ask1_price:..."""
    value = zlib.crc32(":".join(f"{p}:{s}" for p, s in bids + asks).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def plain(number: float | int) -> str:
    """A JSON number as a plain decimal string (CoinEx writes "0.00000091", not "9.1e-07")."""
    text = format(Decimal(repr(number)), "f")
    return text[:-2] if text.endswith(".0") else text


def _top(levels: list, descending: bool) -> dict[float, list[str]]:
    chosen = sorted(levels, key=lambda lv: -lv[0] if descending else lv[0])[:LIMIT]
    return {float(p): [plain(p), plain(s)] for p, s in chosen}


def _change(old: dict[float, list[str]], new: dict[float, list[str]], descending: bool) -> list[list[str]]:
    out = [lv for p, lv in new.items() if old.get(p) != lv]
    out += [[old[p][0], "0"] for p in old if p not in new]
    return sorted(out, key=lambda lv: -float(lv[0]) if descending else float(lv[0]))


def _ordered(side: dict[float, list[str]], descending: bool) -> list[list[str]]:
    return [side[p] for p in sorted(side, reverse=descending)]


# Left out: "ANTUSD" and "SHIBUSD" read as AN/TUSD and SHI/BUSD by quote suffix (each
# would need an explicit symbol entry); HTX's yfihusd is quoted in HUSD, not a CoinEx quote.
AMBIGUOUS = frozenset({"ANTUSD", "SHIBUSD", "YFIHUSD"})


def _market(symbol: str) -> str | None:
    market = symbol.replace("-", "").upper()
    return market if market.endswith(QUOTES) and market not in AMBIGUOUS else None


def derive(source: Path, market_type: str) -> list[dict]:
    """Capture lines of CoinEx pushes made from ``source``'s recorded full books."""
    out: list[dict] = []
    books: dict[str, tuple[dict, dict]] = {}
    pushed_ns: dict[str, int] = {}
    url = URLS[market_type]

    def line(rec: dict, msg: dict) -> None:
        out.append({"t": rec["t"], "src": "ws", "conn": "derived", "url": url,
                    "data": base64.b64encode(gz(msg)).decode(), "enc": "b64"})

    for rec in read_capture(source):
        msg = ungz(record_bytes(rec))
        ch = msg.get("ch", "")
        market = _market(ch.split(".")[1]) if ch else None
        if market is None:
            continue
        if ch.endswith(".trade.detail"):
            deals = [{"deal_id": t.get("tradeId", t["id"]), "created_at": t["ts"], "side": t["direction"],
                      "price": plain(t["price"]), "amount": plain(t["amount"])} for t in msg["tick"]["data"]]
            line(rec, {"method": "deals.update", "data": {"market": market, "deal_list": deals}, "id": None})
            continue
        if not ch.endswith(".depth.step0"):
            continue
        full = market not in books
        if not full and rec["t"] - pushed_ns[market] < PUSH_EVERY_NS:
            continue  # the venue pushes a market's changes every 200 ms at most
        pushed_ns[market] = rec["t"]
        tick = msg["tick"]
        bids, asks = _top(tick.get("bids", []), True), _top(tick.get("asks", []), False)
        if full:
            push_bids, push_asks = _ordered(bids, True), _ordered(asks, False)
        else:
            push_bids, push_asks = _change(books[market][0], bids, True), _change(books[market][1], asks, False)
        books[market] = (bids, asks)
        if not (full or push_bids or push_asks):
            continue  # "no push if the depth did not change" (docs)
        ordered_bids = _ordered(bids, True)
        depth = {"asks": push_asks, "bids": push_bids, "last": ordered_bids[0][0] if ordered_bids else "0",
                 "updated_at": tick["ts"], "checksum": crc(ordered_bids, _ordered(asks, False))}
        line(rec, {"method": "depth.update", "data": {"market": market, "is_full": full, "depth": depth},
                   "id": None})
    return out


# ------------------------------------------------------------ fault server script


def _markets(client_frame: str) -> tuple[str, list[str]]:
    """(method, markets) of a client frame; ("", []) if it is not one of ours."""
    try:
        msg = json.loads(client_frame)
        method = str(msg.get("method", ""))
        entries = msg.get("params", {}).get("market_list", [])
    except (ValueError, AttributeError):
        return "", []
    return method, [e[0] if isinstance(e, list) else str(e) for e in entries]


class CoinexScript(VenueScript):
    """``depth.subscribe`` (incremental, limit 50): a full push on subscribe, then
    changes with the book's CRC32; every frame gzip. Streams: the derived captures."""

    venue = "coinex"

    def __init__(self, market: str = "spot") -> None:
        self.market = market

    def load(self) -> list[Stream]:
        streams: dict[str, Stream] = {}
        for line in read_capture(SPOT_DERIVED if self.market == "spot" else FUTURES_DERIVED):
            frame = base64.b64decode(line["data"])
            msg = ungz(frame)
            if msg.get("method") != "depth.update":
                continue
            data = msg["data"]
            meta = {"ts": data["depth"]["updated_at"], "last": data["depth"]["last"]}
            if data["is_full"]:
                book = RefBook()
                self._apply(book, data["depth"])
                streams[data["market"]] = Stream(data["market"], self._pair(data["market"]), [], [], book, meta)
            else:
                streams[data["market"]].frames.append(frame)
                streams[data["market"]].meta.append(meta)
        return sorted(streams.values(), key=lambda s: -len(s.frames))

    @staticmethod
    def _pair(market: str) -> str:
        quote = next(q for q in QUOTES if market.endswith(q))
        return f"{market[:-len(quote)]}/{quote}"

    def clone(self, stream: Stream, base: str) -> Stream:
        quote = stream.pair.split("/")[1]
        market = base + quote
        old, new = f'"market":"{stream.symbol}"'.encode(), f'"market":"{market}"'.encode()
        frames: list[Frame] = [gzip.compress(gzip.decompress(bytes(f)).replace(old, new), mtime=0)
                               for f in stream.frames]
        return Stream(market, f"{base}/{quote}", frames, stream.meta, stream.book.copy(), stream.base_meta)

    @staticmethod
    def _apply(book: RefBook, depth: dict) -> None:
        for lv in depth["bids"]:
            book.update("bid", lv)
        for lv in depth["asks"]:
            book.update("ask", lv)

    def apply(self, book: RefBook, frame: Frame) -> None:
        self._apply(book, ungz(frame)["data"]["depth"])

    def ws_snapshot(self, stream: Stream) -> Frame:
        meta = stream.meta[stream.pos - 1] if stream.pos else stream.base_meta
        bids, asks = stream.book.wire("bid")[:LIMIT], stream.book.wire("ask")[:LIMIT]
        return gz({"method": "depth.update", "data": {"market": stream.symbol, "is_full": True, "depth": {
            "asks": asks, "bids": bids, "last": meta["last"], "updated_at": meta["ts"],
            "checksum": crc(bids, asks)}}, "id": None})

    def client_action(self, client_frame: str) -> str | None:
        """Only the book methods start or stop a stream (``deals.*`` do not)."""
        method, _ = _markets(client_frame)
        return {"depth.subscribe": "subscribe", "depth.unsubscribe": "unsubscribe"}.get(method)

    def symbols_in(self, text: str) -> list[str]:
        method, markets = _markets(text)
        return markets if method.startswith("depth.") else []

    def ack(self, client_frame: str) -> list:  # gzip frames, like everything CoinEx sends
        try:
            request_id = json.loads(client_frame).get("id")
        except (ValueError, AttributeError):
            return [gz({"id": None, "code": 30001, "message": "invalid argument"})]
        return [gz({"id": request_id, "code": 0, "message": "OK"})]

    def pong(self, client_frame: str) -> Frame | None:
        method, _ = _markets(client_frame)
        if method != "server.ping":
            return None
        return gz({"id": json.loads(client_frame).get("id"), "code": 0, "data": {"result": "pong"},
                   "message": "OK"})

    def corrupt(self, frame: Frame) -> bytes:
        """One byte of the deflate body flipped: the gzip CRC (or inflate) refuses it."""
        data = bytearray(frame if isinstance(frame, bytes) else gz(json.loads(frame)))
        for i in range(len(data) // 2, len(data) - 8):
            data[i] ^= 0x5A
            try:
                zlib.decompress(bytes(data), 31)
            except zlib.error:
                return bytes(data)
            data[i] ^= 0x5A
        raise AssertionError("no corruption of this member goes undetected?")

    def trade_frame(self, stream: Stream) -> Frame:
        trade_id, price, ms = next_trade(stream)
        return gz({"method": "deals.update", "data": {"market": stream.symbol, "deal_list": [
            {"deal_id": trade_id, "created_at": ms, "side": "buy", "price": str(price), "amount": "1"}]},
            "id": None})


if __name__ == "__main__":
    write_capture(derive(SPOT_SOURCE, "spot"), SPOT_DERIVED)
    write_capture(derive(COINM_SOURCE, "futures"), FUTURES_DERIVED)
    write_capture(derive(SWAP_SOURCE, "futures"), LINEAR_DERIVED)
