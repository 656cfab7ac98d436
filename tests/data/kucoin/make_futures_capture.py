#!/usr/bin/env python3
"""Builds futures_BSVUSDTM.recorded-style.capture.jsonl: a KuCoin classic-futures
session in our capture format, because no real recording of
``/contractMarket/level2`` with a REST snapshot exists here (SOURCES.md).

The order flow is real: the BCHSV-USDT spot level-2 changes, REST snapshot and
trades of the 2021 cryptofeed session (spot_classic_2021-04-25.capture.jsonl.zst),
in the order and at the receive times they were recorded. Only the shape is
futures, as the docs and the 2026 probe frames show it:

- one change per message, ``"change": "price,side,size"``, ``sequence`` = ``sn``,
  ``timestamp`` in ms (docs example; obs2026 ``book_delta`` line 3);
- sequences renumbered 1747821025000, +1 per change (2026 magnitude), so the
  sequence-only spot changes (price "0") are left out without making a gap;
- sizes as integer lots of 0.01 BSV (``max(1, round(size * 100))``, 0 stays 0);
- REST ``/api/v1/level2/snapshot`` body with numeric prices and sizes and ``ts`` in ns
  (official SDK example); trades as ``/contractMarket/execution`` ``match`` frames.

Deterministic: run it again and the file is byte-identical.
  python tests/data/kucoin/make_futures_capture.py
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import zstandard

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "spot_classic_2021-04-25.capture.jsonl.zst"
OUTPUT = HERE / "futures_BSVUSDTM.recorded-style.capture.jsonl"
SPOT, CONTRACT = "BCHSV-USDT", "BSVUSDTM"
FIRST_SEQ = 1747821025000
WS_URL = "wss://ws-api-futures.kucoin.com/?token=TOKEN&connectId=recorded-style"
REST_URL = f"https://api-futures.kucoin.com/api/v1/level2/snapshot?symbol={CONTRACT}"


def lots(size: str) -> int:
    value = float(size)
    return 0 if value == 0 else max(1, round(value * 100))


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def main() -> None:
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(SOURCE.read_bytes())).read()
    records = [json.loads(line) for line in raw.splitlines() if line.strip()]
    out: list[dict] = []
    seq = FIRST_SEQ - 1
    renumbered: list[tuple[int, int]] = []  # (spot sequence, futures sequence) per change
    rest = None
    for rec in records:
        if rec["src"] == "rest":
            if rec["url"].endswith(f"symbol={SPOT}"):
                rest = rec
            continue
        msg = json.loads(rec["data"])
        if msg.get("type") == "welcome":
            out.append({**rec, "conn": "recorded-style", "url": WS_URL})
            continue
        data = msg.get("data", {})
        if msg.get("subject") == "trade.l2update" and data.get("symbol") == SPOT:
            changes = [(p, s, int(q), "buy") for p, s, q in data["changes"]["bids"]]
            changes += [(p, s, int(q), "sell") for p, s, q in data["changes"]["asks"]]
            for price, size, spot_seq, side in sorted(changes, key=lambda c: c[2]):
                if float(price) == 0:
                    continue
                seq += 1
                renumbered.append((spot_seq, seq))
                frame = {"topic": f"/contractMarket/level2:{CONTRACT}", "type": "message",
                         "subject": "level2", "sn": seq,
                         "data": {"sequence": seq, "change": f"{price},{side},{lots(size)}",
                                  "timestamp": rec["t"] // 1_000_000}}
                out.append({"t": rec["t"], "src": "ws", "conn": "recorded-style", "url": WS_URL,
                            "data": dumps(frame)})
        elif msg.get("subject") == "trade.l3match" and data.get("symbol") == SPOT:
            frame = {"topic": f"/contractMarket/execution:{CONTRACT}", "type": "message",
                     "subject": "match", "sn": int(data["sequence"]),
                     "data": {"symbol": CONTRACT, "sequence": int(data["sequence"]),
                              "side": data["side"], "size": lots(data["size"]), "price": data["price"],
                              "takerOrderId": data["takerOrderId"], "makerOrderId": data["makerOrderId"],
                              "tradeId": data["tradeId"], "ts": int(data["time"])}}
            out.append({"t": rec["t"], "src": "ws", "conn": "recorded-style", "url": WS_URL,
                        "data": dumps(frame)})
    assert rest is not None, "the source has no REST snapshot of " + SPOT
    book = json.loads(rest["data"])["data"]
    spot_last = int(book["sequence"])
    futures_last = max((f for s, f in renumbered if s <= spot_last), default=FIRST_SEQ - 1)
    body = {"code": "200000", "data": {
        "sequence": futures_last, "symbol": CONTRACT,
        "bids": [[float(p), lots(s)] for p, s in book["bids"]],
        "asks": [[float(p), lots(s)] for p, s in book["asks"]],
        "ts": int(book["time"]) * 1_000_000}}
    out.append({"t": rest["t"], "src": "rest", "conn": "recorded-style-rest", "url": REST_URL,
                "data": dumps(body)})
    out.sort(key=lambda r: r["t"])  # stable: frames keep their recorded order
    OUTPUT.write_text("".join(dumps(r) + "\n" for r in out))
    print(f"{OUTPUT.name}: {len(out)} records, {len(renumbered)} book changes")


if __name__ == "__main__":
    main()
