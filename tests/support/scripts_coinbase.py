"""Coinbase Advanced Trade for the fault-injecting server: ``l2_data`` update
streams per product from the recorded-style capture (real 2021 book traffic in
the documented envelope, tests/data/coinbase/SOURCES.md), a ``snapshot`` event
on every ``level2`` subscribe, ``subscriptions`` acks, ``market_trades`` as idle
traffic. Parses the capture independently of engine.venues.coinbase.

``sequence_num`` numbers every message of a *socket*. A frame is built with 0
there; ``stamp`` (the server must call it for each frame it produces for a
client, dropped ones included, with that client's state) writes the socket's
real number. Until the server does, every frame says 0.
"""

from __future__ import annotations

import re

import orjson
import zstandard

from tests.support.venue_streams import DATA, Frame, RefBook, Stream, VenueScript, next_trade, rename

CAPTURE = DATA / "coinbase" / "spot_at_style_2021-04-17.capture.jsonl.zst"
SEQ_FIELD = re.compile(r'"sequence_num":\d+')
SNAPSHOT_BYTES = 80_000  # largest whole-book snapshot frame served (see load)


def _frame(channel: str, timestamp: str, events: list) -> str:
    return orjson.dumps({"channel": channel, "timestamp": timestamp, "sequence_num": 0,
                         "events": events}).decode()


class CoinbaseScript(VenueScript):
    """Books seeded by the WS snapshot of a ``level2`` subscribe (resync =
    resubscribe). A lost message may have been any book's, so a drop, gap or
    reordering resyncs every book of the socket (``connection_faults``)."""

    venue = "coinbase"
    market = "spot"
    book_topic = re.compile(r"^$")  # unused: symbols_in reads the JSON
    # Faults whose effect is every book on the socket: the venue numbers
    # messages per connection, not per book.
    connection_faults = frozenset({"drop", "gap", "reorder"})

    def load(self) -> list[Stream]:
        lines = zstandard.ZstdDecompressor().stream_reader(CAPTURE.read_bytes()).read().splitlines()
        snaps: dict[str, RefBook] = {}
        first_ts: dict[str, str] = {}
        frames: dict[str, list[tuple[str, str]]] = {}
        for line in lines:
            msg = orjson.loads(orjson.loads(line)["data"])
            if msg["channel"] != "l2_data":
                continue
            for event in msg["events"]:
                product = event["product_id"]
                if event["type"] == "snapshot":
                    book = snaps[product] = RefBook()
                    for u in event["updates"]:
                        book.update("bid" if u["side"] == "bid" else "ask",
                                    [u["price_level"], u["new_quantity"]])
                    first_ts[product] = msg["timestamp"]
                elif product in snaps:
                    frames.setdefault(product, []).append(
                        (_frame("l2_data", msg["timestamp"], [event]), msg["timestamp"]))
        streams = [Stream(p, p.replace("-", "/"), [f for f, _ in frames.get(p, [])],
                          [{"ts": ts} for _, ts in frames.get(p, [])], book, {"ts": first_ts[p]})
                   for p, book in snaps.items()]
        # The suite caps frames at 100 KB (its oversized-frame fault is 200 KB);
        # a snapshot is the product's whole book, so serve the products it fits.
        fits = [s for s in streams if len(self.ws_snapshot(s)) <= SNAPSHOT_BYTES]
        return sorted(fits, key=lambda s: -len(s.frames))

    def clone(self, stream: Stream, base: str) -> Stream:
        quote = stream.symbol.partition("-")[2]
        product = f"{base}-{quote}"
        return Stream(product, f"{base}/{quote}",
                      [rename(f, f'"{stream.symbol}"', f'"{product}"')  # type: ignore[arg-type]
                       for f in stream.frames],
                      stream.meta, stream.book.copy(), stream.base_meta)

    def apply(self, book: RefBook, frame: Frame) -> None:
        for event in orjson.loads(frame)["events"]:
            for u in event["updates"]:
                book.update("bid" if u["side"] == "bid" else "ask", [u["price_level"], u["new_quantity"]])

    def ws_snapshot(self, stream: Stream) -> str:
        meta = stream.meta[stream.pos - 1] if stream.pos else stream.base_meta
        updates = [{"side": "bid", "event_time": meta["ts"], "price_level": p, "new_quantity": s}
                   for p, s in stream.book.wire("bid")]
        updates += [{"side": "offer", "event_time": meta["ts"], "price_level": p, "new_quantity": s}
                    for p, s in stream.book.wire("ask")]
        return _frame("l2_data", meta["ts"],
                      [{"type": "snapshot", "product_id": stream.symbol, "updates": updates}])

    def symbols_in(self, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(msg, dict) or msg.get("channel") != "level2":
            return []
        return [p for p in msg.get("product_ids", []) if isinstance(p, str)]

    def ack(self, client_frame: str) -> list[str]:
        try:
            msg = orjson.loads(client_frame)
            channel, products = msg["channel"], msg.get("product_ids", [])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return []
        return [_frame("subscriptions", "2021-04-17T16:43:37.000000Z",
                       [{"subscriptions": {channel: products}}])]

    def trade_frame(self, stream: Stream) -> str:
        trade_id, price, ms = next_trade(stream)
        stamp = f"2021-04-17T16:44:{(ms // 1000) % 60:02d}.{ms % 1000:03d}Z"
        return _frame("market_trades", stamp, [{"type": "update", "trades": [
            {"trade_id": str(trade_id), "product_id": stream.symbol, "price": price, "size": "1",
             "side": "SELL", "time": stamp}]}])

    def stamp(self, state: dict, frame: Frame) -> Frame:
        """The frame as the socket whose ``state`` this is sends it: with the
        socket's next ``sequence_num`` (0 on a new socket)."""
        seq = state.get("sequence_num", 0)
        state["sequence_num"] = seq + 1
        text = frame if isinstance(frame, str) else frame.decode()
        return SEQ_FIELD.sub(f'"sequence_num":{seq}', text, count=1)
