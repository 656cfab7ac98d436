"""HTX for the fault suite (HtxScript) and the recorded-style captures its
streams come from. Written against the venue docs with the standard library
(gzip, json), never engine code, so a driver bug cannot hide in both.

No recording of the incremental channels exists, so the derived captures are
built from real recorded full books (``depth.step0``, 150 levels, 2021 spot and
2022 USDT-M): the first book of a symbol becomes the refresh (spot ``rep``) or
the ``event:"snapshot"`` push (swaps), and each later book the difference to the
one before (changed levels at their new size, vanished ones at 0), exactly what
the venue documents for ``mbp.150`` ("based on the gap between two snapshots")
and ``high_freq``. Spot ids are the books' own ``version`` (increasing); swap
versions count up by one from the first push's ``mrid``.

  python -m tests.support.scripts_htx    rewrites tests/data/htx/*_derived.capture.jsonl.zst
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
import zlib
from pathlib import Path

import zstandard

from tests.support.venue_streams import DATA, Frame, RefBook, Stream, VenueScript, next_trade

HTX = DATA / "htx"
SPOT_SOURCE, SPOT_DERIVED = HTX / "spot_2021-04-17.capture.jsonl.zst", HTX / "spot_mbp150_derived.capture.jsonl.zst"
SWAP_SOURCE, SWAP_DERIVED = (HTX / "linear_swap_2022-02-19.capture.jsonl.zst",
                             HTX / "linear_high_freq150_derived.capture.jsonl.zst")
FEED_URL = "wss://api.huobi.pro/feed"
SPOT_QUOTES = ("usdt", "husd", "btc", "eth", "ht")  # the quotes in the 2021 spot recording


def gz(obj: dict) -> bytes:
    """A server frame as HTX sends it: one gzip member (mtime 0: reproducible)."""
    return gzip.compress(json.dumps(obj, separators=(",", ":")).encode(), mtime=0)


def ungz(frame: Frame) -> dict:
    return json.loads(gzip.decompress(frame) if isinstance(frame, bytes) else frame)


def read_capture(path: Path) -> list[dict]:
    raw = zstandard.ZstdDecompressor().stream_reader(path.read_bytes()).read()
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def record_bytes(rec: dict) -> bytes | str:
    return base64.b64decode(rec["data"]) if rec.get("enc") == "b64" else rec["data"]


def _capture_line(rec: dict, frame: bytes) -> dict:
    return {"t": rec["t"], "src": "ws", "conn": rec["conn"], "url": rec["url"],
            "data": base64.b64encode(frame).decode(), "enc": "b64"}


def _diff(old: dict[float, float], new: dict[float, float], descending: bool) -> list[list[float]]:
    changed = [[p, s] for p, s in new.items() if old.get(p) != s]
    changed += [[p, 0] for p in old if p not in new]
    return sorted(changed, key=lambda lv: -lv[0] if descending else lv[0])


def _side(levels: list) -> dict[float, float]:
    return {float(p): s for p, s in levels}


def derive(source: Path, spot: bool) -> list[dict]:
    """Capture lines of the incremental channel made from ``source``'s full books."""
    out, books, ids = [], {}, {}
    for rec in read_capture(source):
        msg = ungz(record_bytes(rec))
        ch = msg.get("ch", "")
        if not ch.endswith(".depth.step0"):
            if str(msg.get("subbed", "")).endswith(".depth.step0"):  # the book topic's ack
                msg["subbed"] = _topic(msg["subbed"].split(".")[1], spot)
                out.append(_capture_line(rec, gz(msg)))
            else:
                out.append(_capture_line(rec, record_bytes(rec)))  # trades, pings: as recorded
            continue
        sym, tick = ch.split(".")[1], msg["tick"]
        bids, asks = _side(tick.get("bids", [])), _side(tick.get("asks", []))
        topic = _topic(sym, spot)
        where = dict(rec, conn="derived-feed", url=FEED_URL) if spot else rec
        if sym not in books:
            ids[sym] = tick["version"] if spot else tick["mrid"]
            if spot:
                frame = {"id": f"req:{topic}", "rep": topic, "status": "ok", "ts": msg["ts"],
                         "data": {"seqNum": ids[sym], "bids": tick["bids"], "asks": tick["asks"]}}
            else:
                frame = {"ch": topic, "ts": msg["ts"], "tick": {
                    "asks": tick["asks"], "bids": tick["bids"], "ch": topic, "event": "snapshot",
                    "id": tick["mrid"], "mrid": tick["mrid"], "ts": tick["ts"], "version": ids[sym]}}
        else:
            old_bids, old_asks = books[sym]
            prev = ids[sym]
            ids[sym] = tick["version"] if spot else prev + 1
            diff = {"bids": _diff(old_bids, bids, True), "asks": _diff(old_asks, asks, False)}
            if spot:
                frame = {"ch": topic, "ts": msg["ts"],
                         "tick": {"seqNum": ids[sym], "prevSeqNum": prev, **diff}}
            else:
                frame = {"ch": topic, "ts": msg["ts"], "tick": {
                    "asks": diff["asks"], "bids": diff["bids"], "ch": topic, "event": "update",
                    "id": tick["mrid"], "mrid": tick["mrid"], "ts": tick["ts"], "version": ids[sym]}}
        books[sym] = (bids, asks)
        out.append(_capture_line(where, gz(frame)))
    return out


def _topic(sym: str, spot: bool) -> str:
    return f"market.{sym}.mbp.150" if spot else f"market.{sym}.depth.size_150.high_freq"


def write_capture(lines: list[dict], path: Path) -> None:
    text = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
    path.write_bytes(zstandard.ZstdCompressor(level=19).compress(text))


# ------------------------------------------------------------ fault server script


class HtxScript(VenueScript):
    """Spot ``mbp.150`` (book asked for with ``req``, answered with ``rep``) or
    USDT-M ``size_150.high_freq`` (snapshot on subscribe); every frame gzip.
    Streams: the derived captures above."""

    venue = "htx"

    def __init__(self, market: str = "spot") -> None:
        self.market = market
        self.spot = market == "spot"
        # The server pushes a book on subscribe for swaps; spot books come on ``req``.
        self.snapshot_on_subscribe = not self.spot
        self.book_topic = re.compile(r"market\.([a-z0-9]+)\.mbp\.\d+" if self.spot else
                                     r"market\.([A-Z0-9-]+)\.depth\.size_\d+\.high_freq")

    def load(self) -> list[Stream]:
        streams: dict[str, Stream] = {}
        for line in read_capture(SPOT_DERIVED if self.spot else SWAP_DERIVED):
            frame = base64.b64decode(line["data"])
            msg = ungz(frame)
            topic = msg.get("rep") or msg.get("ch", "")
            if not self.book_topic.fullmatch(topic):
                continue
            sym = topic.split(".")[1]
            body = msg.get("data") or msg["tick"]
            seq = body.get("seqNum", body.get("version"))
            if sym not in streams:
                book = RefBook()
                self._apply_levels(book, body)
                streams[sym] = Stream(sym, self._pair(sym), [], [], book, {"seq": seq, "ts": msg["ts"]})
            else:
                streams[sym].frames.append(frame)
                streams[sym].meta.append({"seq": seq, "ts": msg["ts"]})
        return sorted(streams.values(), key=lambda s: -len(s.frames))

    def _pair(self, sym: str) -> str:
        if not self.spot:
            return sym.replace("-", "/")
        quote = next(q for q in SPOT_QUOTES if sym.endswith(q))
        return f"{sym[:-len(quote)].upper()}/{quote.upper()}"

    def clone(self, stream: Stream, base: str) -> Stream:
        if self.spot:
            quote = stream.pair.split("/")[1]
            sym, pair = (base + quote).lower(), f"{base}/{quote}"
        else:
            sym = base + stream.symbol[stream.symbol.index("-"):]
            pair = sym.replace("-", "/")
        old = f"market.{stream.symbol}."
        frames: list[Frame] = [gzip.compress(gzip.decompress(bytes(f)).replace(
            old.encode(), f"market.{sym}.".encode()), mtime=0) for f in stream.frames]
        return Stream(sym, pair, frames, stream.meta, stream.book.copy(), stream.base_meta)

    @staticmethod
    def _apply_levels(book: RefBook, body: dict) -> None:
        for lv in body.get("bids") or ():
            book.update("bid", lv)
        for lv in body.get("asks") or ():
            book.update("ask", lv)

    def apply(self, book: RefBook, frame: Frame) -> None:
        self._apply_levels(book, ungz(frame)["tick"])

    def ws_snapshot(self, stream: Stream) -> Frame:
        meta = stream.meta[stream.pos - 1] if stream.pos else stream.base_meta
        bids, asks = stream.book.wire("bid"), stream.book.wire("ask")
        if self.spot:
            topic = f"market.{stream.symbol}.mbp.150"
            return gz({"id": f"req:{topic}", "rep": topic, "status": "ok", "ts": meta["ts"],
                       "data": {"seqNum": meta["seq"], "bids": bids, "asks": asks}})
        topic = f"market.{stream.symbol}.depth.size_150.high_freq"
        return gz({"ch": topic, "ts": meta["ts"], "tick": {
            "asks": asks, "bids": bids, "ch": topic, "event": "snapshot", "id": meta["seq"],
            "mrid": meta["seq"], "ts": meta["ts"], "version": meta["seq"]}})

    def client_action(self, client_frame: str) -> str | None:
        """sub -> subscribe, unsub -> unsubscribe, req -> the book on this socket."""
        try:
            msg = json.loads(client_frame)
        except ValueError:
            return None
        if not isinstance(msg, dict):
            return None
        return next((action for op, action in (("unsub", "unsubscribe"), ("sub", "subscribe"),
                                               ("req", "snapshot")) if op in msg), None)

    def ack(self, client_frame: str) -> list:  # gzip frames, like everything HTX sends
        try:
            msg = json.loads(client_frame)
        except ValueError:
            return [gz({"status": "error", "ts": 0, "id": "", "err-code": "bad-request",
                        "err-msg": "not json, is not json string"})]
        for op, key in (("sub", "subbed"), ("unsub", "unsubbed")):
            if isinstance(msg, dict) and op in msg:
                return [gz({"id": msg.get("id"), "status": "ok", key: msg[op],
                            "ts": int(time.time() * 1000)})]
        return []

    def corrupt(self, frame: Frame) -> bytes:
        """The same gzip member with one byte of its deflate body flipped: the CRC
        (or the deflate decoder) must refuse it."""
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
        row = {"id": trade_id, "ts": ms, "amount": 1, "price": float(price), "direction": "buy"}
        if self.spot:
            row["tradeId"] = trade_id
        return gz({"ch": f"market.{stream.symbol}.trade.detail", "ts": ms,
                   "tick": {"id": trade_id, "ts": ms, "data": [row]}})


if __name__ == "__main__":
    write_capture(derive(SPOT_SOURCE, spot=True), SPOT_DERIVED)
    write_capture(derive(SWAP_SOURCE, spot=False), SWAP_DERIVED)
