"""Gate v4 for the fault server: ``*.order_book_update`` diffs replayed from the
2021 spot and 2023 USDT-futures recordings, REST ``with_id`` books rendered at
the stream's position, acks and pongs in the venue's shapes. Parses captures on
its own (no engine code), so a driver bug cannot hide in both."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qsl, urlsplit

import orjson

from tests.support.venue_streams import DATA, Frame, RefBook, Stream, VenueScript, next_trade, records, rename


class GateScript(VenueScript):
    """Spot levels ``["price","amount"]``; futures ``{"p":"price","s":contracts}``
    (REST ``current`` in ms for spot, in seconds for futures, as recorded)."""

    venue = "gate"
    book_topic = re.compile(r"order_book_update")  # unused: symbols_in parses the JSON

    def __init__(self, market: str = "spot") -> None:
        self.market = market
        self.futures = market == "futures"
        self.prefix = "futures." if self.futures else "spot."

    def _level(self, lv: list | dict) -> list:
        return [lv["p"], lv["s"]] if isinstance(lv, dict) else list(lv)

    def load(self) -> list[Stream]:
        name = "usdt_futures_2023-05-24.capture.jsonl" if self.futures else "spot_2021-04-22.capture.jsonl"
        key = "contract" if self.futures else "currency_pair"
        snaps: dict[str, dict] = {}
        frames: dict[str, list[tuple[str, dict]]] = {}
        for rec in records(DATA / "gate" / name):
            if rec["src"] == "rest":
                sym = dict(parse_qsl(urlsplit(rec["url"]).query))[key]
                snaps.setdefault(sym, orjson.loads(rec["data"]))
                continue
            msg = orjson.loads(rec["data"])
            if msg.get("channel") == self.prefix + "order_book_update" and msg.get("event") == "update":
                frames.setdefault(msg["result"]["s"], []).append((rec["data"], msg["result"]))
        streams = []
        for sym, snap in snaps.items():
            base_id = snap["id"]
            keep = [(raw, r) for raw, r in frames.get(sym, []) if r["u"] > base_id]
            book = RefBook()
            for lv in snap["bids"]:
                book.update("bid", self._level(lv))
            for lv in snap["asks"]:
                book.update("ask", self._level(lv))
            base, quote = sym.split("_")
            streams.append(Stream(sym, f"{base}/{quote}", [raw for raw, _ in keep],
                                  [{"U": r["U"], "u": r["u"]} for _, r in keep], book, {"id": base_id}))
        return sorted(streams, key=lambda s: -len(s.frames))

    def clone(self, stream: Stream, base: str) -> Stream:
        sym = base + stream.symbol[stream.symbol.index("_"):]
        return Stream(sym, base + stream.pair[stream.pair.index("/"):],
                      [rename(f, stream.symbol, sym) for f in stream.frames],  # type: ignore[arg-type]
                      stream.meta, stream.book.copy(), stream.base_meta)

    def apply(self, book: RefBook, frame: Frame) -> None:
        result = orjson.loads(frame)["result"]
        for lv in result.get("b", []):
            book.update("bid", self._level(lv))
        for lv in result.get("a", []):
            book.update("ask", self._level(lv))

    def rest_body(self, stream: Stream) -> str:
        """The book after ``pos`` frames; its id is the last of them's ``u``."""
        book_id = stream.meta[stream.pos - 1]["u"] if stream.pos else stream.base_meta["id"]
        if self.futures:
            side = {s: [{"p": p, "s": sz} for p, sz in stream.book.wire(s)] for s in ("bid", "ask")}
            return orjson.dumps({"current": 1684930166.384, "update": 1684930166.35, "id": book_id,
                                 "asks": side["ask"], "bids": side["bid"]}).decode()
        return orjson.dumps({"id": book_id, "current": 1619093533123, "update": 1619093533121,
                             "asks": stream.book.wire("ask"), "bids": stream.book.wire("bid")}).decode()

    def _request(self, text: str) -> dict:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {}
        return msg if isinstance(msg, dict) else {}

    def symbols_in(self, text: str) -> list[str]:
        msg = self._request(text)
        if msg.get("channel") != self.prefix + "order_book_update" or not msg.get("payload"):
            return []
        return [msg["payload"][0]]

    def ack(self, client_frame: str) -> list[str]:
        msg = self._request(client_frame)
        if msg.get("event") not in ("subscribe", "unsubscribe"):
            return []
        now = time.time()
        return [orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": msg.get("channel"),
                              "event": msg["event"], "result": {"status": "success"}}).decode()]

    def pong(self, client_frame: str) -> str | None:
        if self._request(client_frame).get("channel") != self.prefix + "ping":
            return None
        return orjson.dumps({"time": int(time.time()), "channel": self.prefix + "pong", "event": "",
                             "error": None, "result": None}).decode()

    def trade_frame(self, stream: Stream) -> str:
        trade_id, price, ms = next_trade(stream)
        if self.futures:
            return orjson.dumps({"channel": "futures.trades", "event": "update", "time": ms // 1000,
                                 "time_ms": ms, "result": [{"size": 1, "id": trade_id,
                                                            "create_time": ms // 1000, "create_time_ms": ms,
                                                            "price": price, "contract": stream.symbol}]}).decode()
        return orjson.dumps({"time": ms // 1000, "time_ms": ms, "channel": "spot.trades", "event": "update",
                             "result": {"id": trade_id, "create_time": ms // 1000,
                                        "create_time_ms": f"{ms}.0", "side": "buy",
                                        "currency_pair": stream.symbol, "amount": "1",
                                        "price": price}}).decode()
