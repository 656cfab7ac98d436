#!/usr/bin/env python3
"""Build the recorded-style Advanced Trade capture from the real (legacy)
Coinbase Exchange feed recording. No Advanced Trade recording exists in the
sources reachable here (SOURCES.md), so the real 2021 order-book traffic is
re-expressed in the Advanced Trade envelope the docs show: every price, size,
time, side and product below is the recording's; the envelope, channel names,
``sequence_num`` and heartbeats are the documented Advanced Trade shapes.

  legacy Exchange feed (one socket)        Advanced Trade (one socket)
  subscriptions                        ->  channel "subscriptions"
  snapshot {bids, asks}                ->  channel "l2_data", event "snapshot", side bid / offer
  l2update {changes: [[buy|sell,p,s]]} ->  channel "l2_data", event "update", side bid / offer
  last_match (on subscribe)            ->  channel "market_trades", event "snapshot"
  match (side = maker side)            ->  channel "market_trades", event "update" (side = maker, upper)
  ticker                               ->  channel "ticker", event "update"
  (none)                               ->  channel "heartbeats" once a second of receive time

``sequence_num`` counts every message of the socket from 0, as the docs
describe; the ``timestamp`` is the legacy message's ``time`` where it has one,
else the receive time. ``client_id`` is left out and ``heartbeat_counter`` is an
integer, as the AsyncAPI spec (checked against production) says.

  python tests/data/coinbase/build_capture.py   (rewrites spot_at_style_2021-04-17.capture.jsonl.zst)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import zstandard

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "cf_LEGACY_exchange_feed_2021-04-17.timeline.jsonl"
OUTPUT = HERE / "spot_at_style_2021-04-17.capture.jsonl.zst"
URL = "wss://advanced-trade-ws.coinbase.com"
CONN = "cb-0"
LEGACY_CHANNELS = {"level2": "level2", "matches": "market_trades", "ticker": "ticker"}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_time(t: float, uptime: float) -> str:
    """The heartbeat's ``current_time`` in the docs' (Go) format."""
    stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{stamp}000 +0000 UTC m=+{uptime:.9f}"


class Builder:
    def __init__(self) -> None:
        self.seq = 0
        self.lines: list[bytes] = []
        self.subscribed: dict[str, list[str]] = {}
        self.heartbeats = 0
        self.next_beat = 0.0

    def emit(self, t: float, channel: str, timestamp: str, events: list) -> None:
        msg = {"channel": channel, "timestamp": timestamp, "sequence_num": self.seq, "events": events}
        self.seq += 1
        record = {"t": int(round(t * 1e9)), "src": "ws", "conn": CONN, "url": URL,
                  "data": json.dumps(msg, separators=(",", ":"))}
        self.lines.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def beat_until(self, t: float) -> None:
        while self.next_beat and t >= self.next_beat:
            self.heartbeats += 1
            self.emit(self.next_beat, "heartbeats", iso(self.next_beat),
                      [{"current_time": go_time(self.next_beat, 3600.0 + self.heartbeats),
                        "heartbeat_counter": self.heartbeats}])
            self.next_beat += 1.0

    def outgoing(self, raw: str) -> None:
        msg = json.loads(raw)
        for name in msg["channels"]:
            ids = self.subscribed.setdefault(LEGACY_CHANNELS[name], [])
            ids += [p for p in msg["product_ids"] if p not in ids]

    def incoming(self, t: float, raw: str) -> None:
        if not self.next_beat:
            self.next_beat = t + 1.0
        self.beat_until(t)
        msg = json.loads(raw)
        kind = msg["type"]
        when = msg.get("time") or iso(t)
        product = msg.get("product_id")
        if kind == "subscriptions":
            self.emit(t, "subscriptions", iso(t), [{"subscriptions": dict(self.subscribed)}])
        elif kind == "snapshot":
            updates = [{"side": "bid", "event_time": "1970-01-01T00:00:00Z", "price_level": p,
                        "new_quantity": s} for p, s in msg["bids"]]
            updates += [{"side": "offer", "event_time": "1970-01-01T00:00:00Z", "price_level": p,
                         "new_quantity": s} for p, s in msg["asks"]]
            self.emit(t, "l2_data", when,
                      [{"type": "snapshot", "product_id": product, "updates": updates}])
        elif kind == "l2update":
            updates = [{"side": "bid" if side == "buy" else "offer", "event_time": when,
                        "price_level": p, "new_quantity": s} for side, p, s in msg["changes"]]
            self.emit(t, "l2_data", when,
                      [{"type": "update", "product_id": product, "updates": updates}])
        elif kind in ("match", "last_match"):
            trade = {"trade_id": str(msg["trade_id"]), "product_id": product, "price": msg["price"],
                     "size": msg["size"], "side": msg["side"].upper(), "time": msg["time"]}
            self.emit(t, "market_trades", when,
                      [{"type": "update" if kind == "match" else "snapshot", "trades": [trade]}])
        elif kind == "ticker":
            ticker = {"type": "ticker", "product_id": product, "price": msg["price"],
                      "volume_24_h": msg["volume_24h"], "low_24_h": msg["low_24h"],
                      "high_24_h": msg["high_24h"], "best_bid": msg["best_bid"],
                      "best_ask": msg["best_ask"]}
            self.emit(t, "ticker", when, [{"type": "update", "tickers": [ticker]}])
        else:
            raise ValueError(f"unmapped legacy message type {kind!r}")


def main() -> None:
    builder = Builder()
    for line in SOURCE.read_text().splitlines():
        row = json.loads(line)
        if row["dir"] == "out":
            builder.outgoing(row["raw"])
        elif row["dir"] == "in":
            builder.incoming(row["t"], row["raw"])
    OUTPUT.write_bytes(zstandard.ZstdCompressor(level=19).compress(b"".join(builder.lines)))
    print(f"{OUTPUT.name}: {len(builder.lines)} messages, {builder.heartbeats} heartbeats")


if __name__ == "__main__":
    main()
