"""KuCoin classic sockets for the fault server: level-2 increments replayed from
the recordings, REST ``level2`` snapshots rendered at the stream's position,
acks and pongs in the venue's shapes. Parses captures on its own (no engine
code), so a driver bug cannot hide in both."""

from __future__ import annotations

import io
import re

import orjson
import zstandard

from tests.support.venue_streams import DATA, Frame, RefBook, Stream, VenueScript, next_trade, records, rename

SPOT_TOPIC, FUTURES_TOPIC = "/market/level2:", "/contractMarket/level2:"


def _capture(name: str) -> list[dict]:
    path = DATA / "kucoin" / name
    if path.suffix == ".zst":
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(path.read_bytes())).read()
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    return records(path)


class KucoinScript(VenueScript):
    """Spot: ``sequenceStart``/``sequenceEnd`` + REST ``sequence`` (2021 session, 9
    books). Futures: one ``"price,side,size"`` change per ``sequence`` (the
    recorded-style BSVUSDTM capture; tests/data/kucoin/SOURCES.md)."""

    venue = "kucoin"
    book_topic = re.compile(r"level2:([A-Za-z0-9,-]+)")  # unused: symbols_in parses the JSON

    def __init__(self, market: str = "spot") -> None:
        self.market = market
        self.futures = market == "futures"
        self.topic = FUTURES_TOPIC if self.futures else SPOT_TOPIC

    # ---------------------------------------------------------------- streams

    def load(self) -> list[Stream]:
        name = ("futures_BSVUSDTM.recorded-style.capture.jsonl" if self.futures
                else "spot_classic_2021-04-25.capture.jsonl.zst")
        snaps: dict[str, dict] = {}
        frames: dict[str, list[tuple[str, int, int]]] = {}
        for rec in _capture(name):
            if rec["src"] == "rest":
                sym = rec["url"].rsplit("symbol=", 1)[1]
                snaps.setdefault(sym, orjson.loads(rec["data"])["data"])
                continue
            msg = orjson.loads(rec["data"])
            if msg.get("type") != "message" or not msg.get("topic", "").startswith(self.topic):
                continue
            data = msg["data"]
            if self.futures:
                sym, start = msg["topic"].split(":", 1)[1], int(data["sequence"])
                end = start
            else:
                sym, start, end = data["symbol"], int(data["sequenceStart"]), int(data["sequenceEnd"])
            frames.setdefault(sym, []).append((rec["data"], start, end))
        streams = []
        for sym, snap in snaps.items():
            last = int(snap["sequence"])
            keep = [(f, s, e) for f, s, e in frames.get(sym, []) if e > last]
            book = RefBook()
            for lv in snap["bids"]:
                book.update("bid", lv)
            for lv in snap["asks"]:
                book.update("ask", lv)
            streams.append(Stream(sym, self._pair(sym), [f for f, _, _ in keep],
                                  [{"start": s, "end": e} for _, s, e in keep], book,
                                  {"sequence": last}))
        return sorted(streams, key=lambda s: -len(s.frames))

    def _pair(self, sym: str) -> str:
        if self.futures:  # BSVUSDTM -> BSV/USDT (only USDT-margined contracts recorded)
            return f"{sym[:-len('USDTM')]}/USDT"
        base, quote = sym.split("-")
        return f"{base}/{quote}"

    def clone(self, stream: Stream, base: str) -> Stream:
        sym = base + ("USDTM" if self.futures else stream.symbol[stream.symbol.index("-"):])
        return Stream(sym, self._pair(sym),
                      [rename(f, stream.symbol, sym) for f in stream.frames],  # type: ignore[arg-type]
                      stream.meta, stream.book.copy(), stream.base_meta)

    def apply(self, book: RefBook, frame: Frame) -> None:
        data = orjson.loads(frame)["data"]
        if self.futures:
            price, side, size = data["change"].split(",")
            book.update("bid" if side == "buy" else "ask", [price, size])
            return
        for side, key in (("bid", "bids"), ("ask", "asks")):
            for price, size, _ in data["changes"][key]:
                if float(price) != 0.0:  # price 0: a sequence-only change
                    book.update(side, [price, size])

    def rest_body(self, stream: Stream) -> str:
        """The book after ``pos`` frames, numbered like the last of them."""
        last = stream.meta[stream.pos - 1]["end"] if stream.pos else stream.base_meta["sequence"]
        if self.futures:
            data: dict = {"sequence": last, "symbol": stream.symbol, "bids": stream.book.wire("bid"),
                          "asks": stream.book.wire("ask"), "ts": 1619378326628000000}
        else:
            data = {"time": 1619378326628, "sequence": str(last), "bids": stream.book.wire("bid"),
                    "asks": stream.book.wire("ask")}
        return orjson.dumps({"code": "200000", "data": data}).decode()

    # ---------------------------------------------------------- control frames

    def symbols_in(self, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
            topic = msg.get("topic", "") if isinstance(msg, dict) else ""
        except orjson.JSONDecodeError:
            return []
        if not topic.startswith(self.topic):
            return []
        return list(dict.fromkeys(topic.split(":", 1)[1].split(",")))

    def ack(self, client_frame: str) -> list[str]:
        try:
            msg = orjson.loads(client_frame)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
            return []
        return [orjson.dumps({"id": msg.get("id"), "type": "ack"}).decode()]

    def pong(self, client_frame: str) -> str | None:
        try:
            msg = orjson.loads(client_frame)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(msg, dict) or msg.get("type") != "ping":
            return None
        return orjson.dumps({"id": msg.get("id"), "type": "pong"}).decode()

    def trade_frame(self, stream: Stream) -> str:
        trade_id, price, ms = next_trade(stream)
        if self.futures:
            return orjson.dumps({
                "topic": f"/contractMarket/execution:{stream.symbol}", "type": "message",
                "subject": "match", "sn": trade_id,
                "data": {"symbol": stream.symbol, "sequence": trade_id, "side": "buy", "size": 1,
                         "price": str(price), "takerOrderId": "idle", "makerOrderId": "idle",
                         "tradeId": f"idle-{trade_id}", "ts": ms * 1_000_000}}).decode()
        return orjson.dumps({
            "data": {"symbol": stream.symbol, "sequence": str(trade_id), "side": "buy", "size": "1",
                     "price": str(price), "takerOrderId": "idle", "time": str(ms * 1_000_000),
                     "type": "match", "makerOrderId": "idle", "tradeId": f"idle-{trade_id}"},
            "subject": "trade.l3match", "topic": f"/market/match:{stream.symbol}",
            "type": "message"}).decode()
