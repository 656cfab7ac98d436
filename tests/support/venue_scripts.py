"""One VenueScript per venue: how its recorded frames change a book and how it
renders snapshots, acks and pongs; SCRIPTS names them for FeedRig. Reference
parsing is deliberately separate from the engine's drivers so a driver bug
cannot hide in both."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import orjson

from tests.support.scripts_bitget import BitgetScript
from tests.support.scripts_coinbase import CoinbaseScript
from tests.support.scripts_coinex import CoinexScript
from tests.support.scripts_gate import GateScript
from tests.support.scripts_htx import HtxScript
from tests.support.scripts_hyperliquid import HyperliquidScript
from tests.support.scripts_kucoin import KucoinScript
from tests.support.scripts_mexc import MexcScript
from tests.support.venue_streams import (
    DATA,
    Frame,
    RefBook,
    Stream,
    VenueScript,
    next_trade,
    records,
    rename,
)


class BinanceScript(VenueScript):
    """Diff depth over a combined stream + REST ``/depth`` snapshots (spot rule
    ``U == last u + 1``; USD-M ``pu == last u``). Symbols: NKNUSDT (spot);
    SUSHI/AKRO/KEEP/CTK-USDT (USD-M), all from cryptofeed's 2021 captures."""

    venue = "binance"
    book_topic = re.compile(r"([A-Za-z0-9]+)@depth")
    QUOTE = "USDT"

    def __init__(self, market: str = "spot") -> None:
        self.market = market
        self.futures = market == "futures"

    def load(self) -> list[Stream]:
        name = "cf_usdm_2021-07-22.timeline.jsonl" if self.futures else "book_seq.cf_spot.NKNUSDT.jsonl"
        rows = records(DATA / "binance" / name)
        snaps: dict[str, dict] = {}
        frames: dict[str, list[tuple[str, dict]]] = {}
        for row in rows:
            src = row.get("src") or row.get("dir")
            if src == "rest":
                sym = dict(parse_qsl(urlsplit(row["url"]).query))["symbol"]
                snaps.setdefault(sym, orjson.loads(row["raw"]))
            elif src in ("ws", "in"):
                data = orjson.loads(row["raw"]).get("data", {})
                if data.get("e") == "depthUpdate":
                    frames.setdefault(data["s"], []).append((row["raw"], data))
        streams = []
        for sym, snap in snaps.items():
            last = snap["lastUpdateId"]
            keep = [(raw, d) for raw, d in frames.get(sym, [])
                    if (d["u"] >= last if self.futures else d["u"] > last)]
            book = RefBook()
            for lv in snap["bids"]:
                book.update("bid", lv)
            for lv in snap["asks"]:
                book.update("ask", lv)
            streams.append(Stream(sym, f"{sym[:-len(self.QUOTE)]}/{self.QUOTE}",
                                  [raw for raw, _ in keep],
                                  [{"U": d["U"], "u": d["u"]} for _, d in keep], book,
                                  {"L": last}))
        return sorted(streams, key=lambda s: -len(s.frames))

    def clone(self, stream: Stream, base: str) -> Stream:
        sym = base + self.QUOTE
        return Stream(sym, f"{base}/{self.QUOTE}",
                      [rename(f, stream.symbol, sym) for f in stream.frames],  # type: ignore[arg-type]
                      stream.meta, stream.book.copy(), stream.base_meta)

    def symbols_in(self, text: str) -> list[str]:
        return [s.upper() for s in super().symbols_in(text)]

    def apply(self, book: RefBook, frame: Frame) -> None:
        data = orjson.loads(frame)["data"]
        for lv in data["b"]:
            book.update("bid", lv)
        for lv in data["a"]:
            book.update("ask", lv)

    def rest_body(self, stream: Stream) -> str:
        pos, meta = stream.pos, stream.meta
        if self.futures:  # first event after it must satisfy U <= L <= u
            last = meta[pos]["U"] if pos < len(meta) else meta[-1]["u"]
        else:  # first event after it must satisfy U <= L + 1 <= u
            last = meta[pos - 1]["u"] if pos else stream.base_meta["L"]
        return orjson.dumps({"lastUpdateId": last, "bids": stream.book.wire("bid"),
                             "asks": stream.book.wire("ask")}).decode()

    def ack(self, client_frame: str) -> list[str]:
        try:
            return [orjson.dumps({"result": None, "id": orjson.loads(client_frame)["id"]}).decode()]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return []

    def trade_frame(self, stream: Stream) -> str:
        trade_id, price, ms = next_trade(stream)
        return orjson.dumps({"stream": f"{stream.symbol.lower()}@aggTrade", "data": {
            "e": "aggTrade", "E": ms, "s": stream.symbol, "a": trade_id, "p": price, "q": "1",
            "f": trade_id, "l": trade_id, "T": ms, "m": False}}).decode()


class BybitScript(VenueScript):
    """V5 ``orderbook.N`` snapshot + deltas (``u`` + 1 per message); resync =
    resubscribe, the venue answers with a snapshot. XRPUSDT ob500, 2024-12-01."""

    venue = "bybit"
    market = "futures"
    book_topic = re.compile(r"orderbook\.\d+\.([A-Z0-9]+)")

    def load(self) -> list[Stream]:
        rows = [orjson.loads(line) for line in (
            DATA / "bybit" / "bybit_history_ob500_XRPUSDT_2024-12-01.v5.jsonl").read_text().splitlines()]
        snap = rows[0]["data"]
        book = RefBook()
        for lv in snap["b"]:
            book.update("bid", lv)
        for lv in snap["a"]:
            book.update("ask", lv)
        deltas = [r for r in rows[1:] if r["type"] == "delta"]
        return [Stream(snap["s"], "XRP/USDT", [orjson.dumps(r).decode() for r in deltas],
                       [{"u": r["data"]["u"], "seq": r["data"]["seq"], "ts": r["ts"]} for r in deltas],
                       book, {"u": snap["u"], "seq": snap["seq"], "ts": rows[0]["ts"]})]

    def clone(self, stream: Stream, base: str) -> Stream:
        sym = base + "USDT"
        return Stream(sym, f"{base}/USDT",
                      [rename(f, stream.symbol, sym) for f in stream.frames],  # type: ignore[arg-type]
                      stream.meta, stream.book.copy(), stream.base_meta)

    def apply(self, book: RefBook, frame: Frame) -> None:
        data = orjson.loads(frame)["data"]
        for lv in data["b"]:
            book.update("bid", lv)
        for lv in data["a"]:
            book.update("ask", lv)

    def ws_snapshot(self, stream: Stream) -> str:
        meta = stream.meta[stream.pos - 1] if stream.pos else stream.base_meta
        return orjson.dumps({
            "topic": f"orderbook.500.{stream.symbol}", "type": "snapshot", "ts": meta["ts"],
            "data": {"s": stream.symbol, "b": stream.book.wire("bid"),
                     "a": stream.book.wire("ask"), "u": meta["u"], "seq": meta["seq"]},
            "cts": meta["ts"]}).decode()

    def ack(self, client_frame: str) -> list[str]:
        try:
            msg = orjson.loads(client_frame)
        except orjson.JSONDecodeError:
            return []
        return [orjson.dumps({"success": True, "ret_msg": "", "conn_id": "fault",
                              "req_id": msg.get("req_id", ""), "op": msg.get("op")}).decode()]

    def pong(self, client_frame: str) -> str | None:
        if '"op":"ping"' not in client_frame.replace(" ", ""):
            return None
        return '{"success":true,"ret_msg":"pong","conn_id":"fault","req_id":"","op":"ping"}'

    def trade_frame(self, stream: Stream) -> str:
        trade_id, price, ms = next_trade(stream)
        return orjson.dumps({"topic": f"publicTrade.{stream.symbol}", "type": "snapshot", "ts": ms,
                             "data": [{"T": ms, "s": stream.symbol, "S": "Buy", "v": "1",
                                       "p": price, "L": "ZeroPlusTick", "i": f"t{trade_id}",
                                       "BT": False}]}).decode()


class OkxScript(VenueScript):
    """V5 ``books``: WS snapshot then updates chained by ``prevSeqId == last
    seqId``; REST ``/api/v5/market/books`` as the fallback seed. The 2022
    capture predates seqId, so the frames are numbered here the way the venue
    numbers them today; their (real) CRC32 checksums are kept."""

    venue = "okx"
    book_topic = re.compile(r'"channel"\s*:\s*"books"\s*,\s*"instId"\s*:\s*"([A-Z0-9-]+)"')
    FIRST_SEQ = 1000

    def __init__(self) -> None:
        path = DATA / "okx" / "book_seq.cf_books.BTC-USDT.jsonl"
        self.path = path if path.exists() else DATA / "okx" / "book_seq.cf_books.BTC-USD-220527.jsonl"
        self.market = "spot" if path.exists() else "futures"

    def load(self) -> list[Stream]:
        msgs = [orjson.loads(r["raw"]) for r in records(self.path)]
        snap = msgs[0]
        inst = snap["arg"]["instId"]
        book = RefBook()
        for lv in snap["data"][0]["bids"]:
            book.update("bid", lv)
        for lv in snap["data"][0]["asks"]:
            book.update("ask", lv)
        frames, meta = [], []
        for i, msg in enumerate(m for m in msgs[1:] if m.get("action") == "update"):
            data = msg["data"][0]
            data["prevSeqId"], data["seqId"] = self.FIRST_SEQ + i, self.FIRST_SEQ + i + 1
            frames.append(orjson.dumps(msg).decode())
            meta.append({"seq": data["seqId"], "ts": data["ts"]})
        parts = inst.split("-")
        pair = f"{parts[0]}/{parts[1]}" + (f"-{parts[2]}" if len(parts) == 3 else "")
        return [Stream(inst, pair, list[Frame](frames), meta, book,
                       {"seq": self.FIRST_SEQ, "ts": snap["data"][0]["ts"]})]

    def clone(self, stream: Stream, base: str) -> Stream:
        sym = base + stream.symbol[stream.symbol.index("-"):]
        return Stream(sym, base + stream.pair[stream.pair.index("/"):],
                      [rename(f, stream.symbol, sym) for f in stream.frames],  # type: ignore[arg-type]
                      stream.meta, stream.book.copy(), stream.base_meta)

    def apply(self, book: RefBook, frame: Frame) -> None:
        data = orjson.loads(frame)["data"][0]
        for lv in data["bids"]:
            book.update("bid", lv)
        for lv in data["asks"]:
            book.update("ask", lv)

    def _state(self, stream: Stream) -> dict:
        meta = stream.meta[stream.pos - 1] if stream.pos else stream.base_meta
        return {"asks": stream.book.wire("ask"), "bids": stream.book.wire("bid"),
                "ts": meta["ts"], "seqId": meta["seq"]}

    def ws_snapshot(self, stream: Stream) -> str:
        data = self._state(stream)
        data["checksum"] = okx_checksum(data["bids"], data["asks"])
        data["prevSeqId"] = -1
        return orjson.dumps({"arg": {"channel": "books", "instId": stream.symbol},
                             "action": "snapshot", "data": [data]}).decode()

    def rest_body(self, stream: Stream) -> str:
        return orjson.dumps({"code": "0", "msg": "", "data": [self._state(stream)]}).decode()

    def ack(self, client_frame: str) -> list[str]:
        return [orjson.dumps({"event": "subscribe" if "unsubscribe" not in client_frame
                              else "unsubscribe", "arg": {"channel": "books", "instId": s},
                              "connId": "fault"}).decode() for s in self.symbols_in(client_frame)]

    def pong(self, client_frame: str) -> str | None:
        return "pong" if client_frame == "ping" else None

    def trade_frame(self, stream: Stream) -> str:
        trade_id, price, ms = next_trade(stream)
        return orjson.dumps({"arg": {"channel": "trades", "instId": stream.symbol}, "data": [
            {"instId": stream.symbol, "tradeId": str(trade_id), "px": price, "sz": "1",
             "side": "buy", "ts": str(ms)}]}).decode()


def okx_checksum(bids: list[list], asks: list[list]) -> int:
    """OKX's recipe: signed CRC32 of bid:size:ask:size... over the top 25, wire strings."""
    parts = []
    for i in range(25):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


SCRIPTS: dict[str, Callable[[], VenueScript]] = {
    "binance-spot": lambda: BinanceScript("spot"),
    "binance-futures": lambda: BinanceScript("futures"),
    "bitget-spot": lambda: BitgetScript("spot"),
    "bitget-futures": lambda: BitgetScript("futures"),
    "bybit": BybitScript,
    "coinbase": CoinbaseScript,
    "coinex-spot": lambda: CoinexScript("spot"),
    "coinex-futures": lambda: CoinexScript("futures"),
    "gate-spot": lambda: GateScript("spot"),
    "gate-futures": lambda: GateScript("futures"),
    "htx-spot": lambda: HtxScript("spot"),
    "htx-futures": lambda: HtxScript("futures"),
    "hyperliquid": HyperliquidScript,
    "kucoin-spot": lambda: KucoinScript("spot"),
    "kucoin-futures": lambda: KucoinScript("futures"),
    "mexc-spot": lambda: MexcScript("spot"),
    "mexc-futures": lambda: MexcScript("futures"),
    "okx": OkxScript,
}

