"""Bitget for the fault suite (BitgetScript) and the recorded-style v2 captures
its streams come from. Written against the venue docs with the standard library
(json, zlib), never engine code, so a driver bug cannot hide in both.

No recording of the v2 ``books`` channel exists, so the v2 captures are made
from the real 2022 v1 recordings (tests/data/bitget/cf_LEGACY_v1_*.timeline.jsonl):
every ``books`` snapshot and update keeps its levels and its real CRC32
``checksum`` (the recipe did not change), ``instType`` ``sp``/``mc`` becomes
``SPOT``/``USDT-FUTURES``, the socket becomes ``wss://ws.bitget.com/v2/ws/public``,
and each message gets the ``seq``/``pseq`` the v2 channel adds: a snapshot has
``pseq`` 0, each update's ``pseq`` is the previous ``seq``, and ``seq`` grows by
irregular steps as on the wire (2026 probe: 427583461144 -> 427583480559 ->
427583480664). DASHUSDT starts above 2^53, as coin-M sequences do. v1 trade,
ticker and candle frames have other shapes than v2's and are left out.

The v1 messages are fat (70-175 levels per update, 200 ms batches) where the
2026 v2 stream sends a few levels per update and no checksum. For a capture shaped
like today's stream (the per-venue benchmark's), ``derive_current`` re-renders a
real recording of another venue with the same sequence model: Binance's 2021
diff streams, whose ``pu``/``U-1`` is exactly v2's ``pseq`` and ``u`` its ``seq``
(tests/data/binance, REST snapshot -> WS ``snapshot``, diffs from the one that
bridges it -> ``update``, aggTrade -> ``trade``; symbols and levels as recorded).

  python -m tests.support.scripts_bitget    rewrites tests/data/bitget/*_v2style.capture.jsonl.zst
                                            and *_current_derived.capture.jsonl
"""

from __future__ import annotations

import gzip
import json
import re
import time
import zlib
from pathlib import Path

import zstandard

from tests.support.venue_streams import DATA, Frame, RefBook, Stream, VenueScript, next_trade

BITGET = DATA / "bitget"
V2_URL = "wss://ws.bitget.com/v2/ws/public"
SOURCES = {"spot": BITGET / "cf_LEGACY_v1_spot_2022-04-07.timeline.jsonl",
           "futures": BITGET / "cf_LEGACY_v1_mix_2022-04-07.timeline.jsonl"}
CAPTURES = {"spot": BITGET / "spot_2022-04-07_v2style.capture.jsonl.zst",
            "futures": BITGET / "futures_2022-04-07_v2style.capture.jsonl.zst"}
INST_TYPES = {"sp": "SPOT", "mc": "USDT-FUTURES"}
FIRST_SEQ = {"DASHUSDT": 1483653649371725838}  # > 2^53, like coin-M books
DEFAULT_FIRST_SEQ = 427583461144


def crc(bids: list, asks: list) -> int:
    """The venue's recipe: signed CRC32 of bid1:size:ask1:size:... over the top 25,
    using the price and size strings as sent."""
    parts = []
    for i in range(25):
        if i < len(bids):
            parts += [bids[i][0], bids[i][1]]
        if i < len(asks):
            parts += [asks[i][0], asks[i][1]]
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def _steps(symbol: str):
    """Irregular, reproducible seq increments (1..9973) for one book."""
    x = zlib.crc32(symbol.encode())
    while True:
        x = (x * 1103515245 + 12345) % (1 << 31)
        yield 1 + x % 9973


def derive(market: str) -> list[dict]:
    """The v2-style capture lines made from the v1 timeline of ``market``."""
    out: list[dict] = []
    seqs: dict[str, int] = {}
    steps: dict[str, object] = {}
    for line in SOURCES[market].read_text().splitlines():
        row = json.loads(line)
        if row["dir"] != "in":
            continue
        t_ns = int(round(row["t"] * 1e9))
        raw = row["raw"]
        if raw == "pong":
            out.append(_line(t_ns, raw))
            continue
        msg = json.loads(raw)
        arg = msg.get("arg", {})
        if arg.get("channel") != "books":
            continue  # v1 trade/ticker/candle shapes differ from v2: left out
        arg = dict(arg, instType=INST_TYPES[arg["instType"]])
        sym = arg["instId"]
        if "event" in msg:
            out.append(_line(t_ns, json.dumps(dict(msg, arg=arg), separators=(",", ":"))))
            continue
        data = []
        for d in msg["data"]:
            if msg["action"] == "snapshot":
                seq, pseq = FIRST_SEQ.get(sym, DEFAULT_FIRST_SEQ), 0
                steps[sym] = _steps(sym)
            else:
                pseq = seqs[sym]
                seq = pseq + next(steps[sym])  # type: ignore[call-overload]
            seqs[sym] = seq
            data.append({"asks": d["asks"], "bids": d["bids"], "checksum": d["checksum"],
                         "ts": d["ts"], "seq": seq, "pseq": pseq})
        frame = {"action": msg["action"], "arg": arg, "data": data, "ts": t_ns // 1_000_000}
        out.append(_line(t_ns, json.dumps(frame, separators=(",", ":"))))
    return out


CURRENT_SOURCES = {"spot": DATA / "binance" / "spot_2021-10-12.capture.jsonl",
                   "futures": DATA / "binance" / "usdm_2021-07-22.capture.jsonl.gz"}
CURRENT = {"spot": BITGET / "spot_current_derived.capture.jsonl",
           "futures": BITGET / "futures_current_derived.capture.jsonl"}


def derive_current(market: str) -> list[dict]:
    """Capture lines shaped like the 2026 v2 stream, from a Binance recording."""
    spot = market == "spot"
    raw = CURRENT_SOURCES[market].read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    inst_type = "SPOT" if spot else "USDT-FUTURES"
    books: dict[str, int] = {}  # symbol -> snapshot id, until its first update bridges it
    pending: dict[str, list[tuple[dict, dict]]] = {}
    out: list[dict] = []

    def update(rec: dict, ev: dict) -> None:
        sym, seq, pseq = ev["s"], ev["u"], (ev["U"] - 1 if spot else ev["pu"])
        last = books[sym]
        if seq <= last:
            return  # older than the snapshot
        books[sym] = seq
        frame = {"action": "update", "arg": {"instType": inst_type, "channel": "books", "instId": sym},
                 "data": [{"asks": ev["a"], "bids": ev["b"], "ts": str(ev["E"]), "seq": seq, "pseq": pseq}],
                 "ts": ev["E"]}
        out.append(_line(rec["t"], json.dumps(frame, separators=(",", ":"))))

    for rec in rows:
        if rec["src"] == "rest":
            sym = rec["url"].split("symbol=")[1].split("&")[0]
            snap = json.loads(rec["data"])
            books[sym] = snap["lastUpdateId"]
            ack = {"event": "subscribe", "arg": {"instType": inst_type, "channel": "books", "instId": sym}}
            frame = {"action": "snapshot", "arg": ack["arg"], "data": [
                {"asks": snap["asks"], "bids": snap["bids"], "ts": str(rec["t"] // 1_000_000),
                 "seq": snap["lastUpdateId"], "pseq": 0}], "ts": rec["t"] // 1_000_000}
            out.append(_line(rec["t"], json.dumps(ack, separators=(",", ":"))))
            out.append(_line(rec["t"], json.dumps(frame, separators=(",", ":"))))
            for args in pending.pop(sym, []):
                update(*args)
            continue
        ev = json.loads(rec["data"])
        ev = ev.get("data", ev)
        if ev.get("e") == "depthUpdate":
            if ev["s"] in books:
                update(rec, ev)
            else:  # buffered by the recorder before its snapshot: replayed after it
                pending.setdefault(ev["s"], []).append((rec, ev))
        elif ev.get("e") == "aggTrade" and ev["s"] in books:
            frame = {"action": "update", "arg": {"instType": inst_type, "channel": "trade", "instId": ev["s"]},
                     "data": [{"ts": str(ev["T"]), "price": ev["p"], "size": ev["q"],
                               "side": "sell" if ev["m"] else "buy", "tradeId": str(ev["a"])}],
                     "ts": ev["E"]}
            out.append(_line(rec["t"], json.dumps(frame, separators=(",", ":"))))
    return out


def _line(t_ns: int, data: str) -> dict:
    return {"t": t_ns, "src": "ws", "conn": "v2style-0", "url": V2_URL, "data": data}


def write_capture(lines: list[dict], path: Path) -> None:
    text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
    path.write_bytes(zstandard.ZstdCompressor(level=19).compress(text) if path.suffix == ".zst" else text)


def read_lines(path: Path) -> list[str]:
    """A capture's lines, plain or .zst."""
    raw = path.read_bytes()
    if path.suffix == ".zst":
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    return raw.decode().splitlines()


# ------------------------------------------------------------ fault server script


class BitgetScript(VenueScript):
    """v2 ``books``: a WS snapshot on subscribe, then updates chained by ``pseq ==
    last seq``, each with the recording's real CRC32 checksum; resync =
    unsubscribe + subscribe. Streams: the v2-style captures above."""

    venue = "bitget"
    book_topic = re.compile(r'"channel"\s*:\s*"books"\s*,\s*"instId"\s*:\s*"([A-Z0-9]+)"')

    def __init__(self, market: str = "futures") -> None:
        self.market = market
        self.inst_type = "SPOT" if market == "spot" else "USDT-FUTURES"

    def load(self) -> list[Stream]:
        streams: dict[str, Stream] = {}
        for line in read_lines(CAPTURES[self.market]):
            data = json.loads(line)["data"]
            msg = json.loads(data) if data.startswith('{"action"') else {}
            if msg.get("arg", {}).get("channel") != "books":
                continue
            sym, d = msg["arg"]["instId"], msg["data"][0]
            meta = {"seq": d["seq"], "ts": d["ts"]}
            if msg["action"] == "snapshot":
                book = RefBook()
                _levels(book, d)
                streams[sym] = Stream(sym, f"{sym[:-4]}/{sym[-4:]}", [], [], book, meta)
            else:
                streams[sym].frames.append(json.dumps(msg, separators=(",", ":")))
                streams[sym].meta.append(meta)
        return sorted(streams.values(), key=lambda s: -len(s.frames))

    def clone(self, stream: Stream, base: str) -> Stream:
        sym = base + "USDT"
        old, new = f'"instId":"{stream.symbol}"', f'"instId":"{sym}"'
        return Stream(sym, f"{base}/USDT", [str(f).replace(old, new) for f in stream.frames],
                      stream.meta, stream.book.copy(), stream.base_meta)

    def apply(self, book: RefBook, frame: Frame) -> None:
        _levels(book, json.loads(frame)["data"][0])

    def ws_snapshot(self, stream: Stream) -> str:
        meta = stream.meta[stream.pos - 1] if stream.pos else stream.base_meta
        bids, asks = stream.book.wire("bid"), stream.book.wire("ask")
        return json.dumps({"action": "snapshot", "arg": self._arg("books", stream.symbol), "data": [
            {"asks": asks, "bids": bids, "checksum": crc(bids, asks), "ts": meta["ts"],
             "seq": meta["seq"], "pseq": 0}], "ts": int(time.time() * 1000)}, separators=(",", ":"))

    def _arg(self, channel: str, symbol: str) -> dict:
        return {"instType": self.inst_type, "channel": channel, "instId": symbol}

    def ack(self, client_frame: str) -> list[str]:
        try:
            msg = json.loads(client_frame)
        except ValueError:
            return []
        if not isinstance(msg, dict) or msg.get("op") not in ("subscribe", "unsubscribe"):
            return []
        return [json.dumps({"event": msg["op"], "arg": arg}, separators=(",", ":"))
                for arg in msg.get("args", [])]

    def pong(self, client_frame: str) -> str | None:
        return "pong" if client_frame == "ping" else None

    def trade_frame(self, stream: Stream) -> str:
        trade_id, price, ms = next_trade(stream)
        return json.dumps({"action": "update", "arg": self._arg("trade", stream.symbol), "data": [
            {"ts": str(ms), "price": price, "size": "1", "side": "buy", "tradeId": str(trade_id)}],
            "ts": ms}, separators=(",", ":"))


def _levels(book: RefBook, data: dict) -> None:
    for lv in data["bids"]:
        book.update("bid", lv)
    for lv in data["asks"]:
        book.update("ask", lv)


if __name__ == "__main__":
    for market_name, path in CAPTURES.items():
        write_capture(derive(market_name), path)
        print(f"wrote {path}")
    for market_name, path in CURRENT.items():
        write_capture(derive_current(market_name), path)
        print(f"wrote {path}")
