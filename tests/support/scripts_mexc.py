"""MEXC for the fault suite (MexcScript: spot protobuf, futures JSON) and the
recorded-style captures its streams come from. Written against the venue docs
with the standard library: the protobuf wire format is read and written here by
hand from the published field numbers (mexcdevelop/websocket-proto), never with
engine code, so a driver or schema bug cannot hide in both.

No recording of MEXC's incremental books exists, so the captures are made from
real recorded books of another venue with the same sync model: Binance's 2021
spot diff stream (REST ``lastUpdateId`` + events spanning ``U..u``) becomes MEXC
spot (``lastUpdateId`` + ``fromVersion..toVersion``, the same bridging rule), and
Binance's 2021 USD-M stream (chained by ``pu``) becomes MEXC futures pushes
spanning ``begin = pu + 1 .. end = version = u`` (the merged shape of the 2026
probe). Levels, times and trades are the recording's; symbols are renamed to
MEXC's spelling; futures levels get MEXC's third field (order count: 1, or 0 on
a deletion) and deals have no ``O``/``M`` flags (the recording has none).

  python -m tests.support.scripts_mexc    rewrites tests/data/mexc/*_derived.capture.jsonl
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from pathlib import Path

from tests.support.venue_streams import DATA, Frame, RefBook, Stream, VenueScript, next_trade

MEXC = DATA / "mexc"
SOURCES = {"spot": DATA / "binance" / "spot_2021-10-12.capture.jsonl",
           "futures": DATA / "binance" / "usdm_2021-07-22.capture.jsonl.gz"}
CAPTURES = {"spot": MEXC / "spot_derived.capture.jsonl", "futures": MEXC / "futures_derived.capture.jsonl"}
SPOT_WS, FUTURES_WS = "wss://wbs-api.mexc.com/ws", "wss://contract.mexc.com/edge"
REST = "https://api.mexc.com"
DEPTH, DEALS = "spot@public.aggre.depth.v3.api.pb@100ms", "spot@public.aggre.deals.v3.api.pb@100ms"
QUOTES = ("USDT", "BTC", "ETH", "EUR")  # the quotes of the recordings used here

# Field numbers, PushDataV3ApiWrapper.proto and its bodies.
W_CHANNEL, W_SYMBOL, W_SEND_TIME, W_AGGRE_DEPTHS, W_AGGRE_DEALS = 1, 3, 6, 313, 314


# ------------------------------------------------------ protobuf wire format, by hand


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(num: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Top-level (field number, value) pairs; raises ValueError on a corrupt buffer."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            out.append((num, value))
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated length-delimited field")
            out.append((num, data[pos:pos + size]))
            pos += size
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def depth_push(symbol: str, send_ms: int, first: int, last: int, bids: list, asks: list) -> bytes:
    """A ``publicAggreDepths`` push in MEXC's wire order: channel, symbol, sendTime, body."""
    body = b"".join(_field(1, _field(1, p) + _field(2, q)) for p, q in asks)
    body += b"".join(_field(2, _field(1, p) + _field(2, q)) for p, q in bids)
    body += _field(3, DEPTH) + _field(4, str(first)) + _field(5, str(last))
    return (_field(W_CHANNEL, f"{DEPTH}@{symbol}") + _field(W_SYMBOL, symbol)
            + _field(W_SEND_TIME, send_ms) + _field(W_AGGRE_DEPTHS, body))


def deals_push(symbol: str, send_ms: int, deals: list[tuple[str, str, int, int, str]]) -> bytes:
    """``publicAggreDeals``: (price, quantity, tradeType 1 buy / 2 sell, time ms, tradeId)."""
    body = b"".join(_field(1, _field(1, p) + _field(2, q) + _field(3, side) + _field(4, t) + _field(5, i))
                    for p, q, side, t, i in deals)
    body += _field(2, DEALS)
    return (_field(W_CHANNEL, f"{DEALS}@{symbol}") + _field(W_SYMBOL, symbol)
            + _field(W_SEND_TIME, send_ms) + _field(W_AGGRE_DEALS, body))


def read_depth_push(data: bytes) -> dict:
    """symbol, send_ms, first, last, bids, asks of a depth push (ValueError otherwise)."""
    top = dict(fields(data))
    body = top.get(W_AGGRE_DEPTHS)
    if not isinstance(body, bytes):
        raise ValueError("not a depth push")
    out: dict = {"symbol": top[W_SYMBOL].decode(), "send_ms": top.get(W_SEND_TIME, 0),  # type: ignore[union-attr]
                 "bids": [], "asks": []}
    for num, value in fields(body):
        if num in (1, 2):
            level = dict(fields(value))  # type: ignore[arg-type]
            out["asks" if num == 1 else "bids"].append([level[1].decode(), level[2].decode()])  # type: ignore[union-attr]
        elif num in (4, 5):
            out["first" if num == 4 else "last"] = int(value)  # type: ignore[arg-type]
    return out


# ------------------------------------------------------------- derived captures


def _records(path: Path) -> list[dict]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def _futures_symbol(symbol: str) -> str:
    quote = next(q for q in QUOTES if symbol.endswith(q))
    return f"{symbol[:-len(quote)]}_{quote}"


def _row(price: str, size: str) -> list:
    qty = float(size)
    return [float(price), int(qty) if qty.is_integer() else qty, 1 if qty else 0]


def derive(market: str) -> list[dict]:
    """The MEXC capture lines made from the Binance recording of ``market``."""
    spot = market == "spot"
    out: list[dict] = []
    acked: set[str] = set()
    for rec in _records(SOURCES[market]):
        if rec["src"] == "rest":
            sym = rec["url"].split("symbol=")[1].split("&")[0]
            snap = json.loads(rec["data"])
            if spot:
                url = f"{REST}/api/v3/depth?symbol={sym}&limit=5000"
                body = {"lastUpdateId": snap["lastUpdateId"], "bids": snap["bids"], "asks": snap["asks"]}
            else:
                sym = _futures_symbol(sym)
                url = f"{REST}/api/v1/contract/depth/{sym}?limit=1000"
                body = {"success": True, "code": 0, "data": {
                    "asks": [_row(p, q) for p, q in snap["asks"]], "bids": [_row(p, q) for p, q in snap["bids"]],
                    "version": snap["lastUpdateId"], "timestamp": snap["E"]}}
            out.append({"t": rec["t"], "src": "rest", "conn": "derived-rest", "url": url,
                        "data": json.dumps(body, separators=(",", ":"))})
            continue
        ev = json.loads(rec["data"])
        ev = ev.get("data", ev)
        kind = ev.get("e")
        if kind not in ("depthUpdate", "aggTrade"):
            continue  # bookTicker, kline: not part of these feeds
        sym = ev["s"] if spot else _futures_symbol(ev["s"])
        if sym not in acked:  # the venue's answer to our subscribe comes first
            acked.add(sym)
            out += _acks(rec["t"], sym, spot)
        if spot:
            if kind == "depthUpdate":
                frame = depth_push(sym, ev["E"], ev["U"], ev["u"], ev["b"], ev["a"])
            else:
                frame = deals_push(sym, ev["E"], [(ev["p"], ev["q"], 2 if ev["m"] else 1, ev["T"], str(ev["a"]))])
            out.append({"t": rec["t"], "src": "ws", "conn": "derived-0", "url": SPOT_WS,
                        "data": base64.b64encode(frame).decode(), "enc": "b64"})
            continue
        if kind == "depthUpdate":
            msg = {"symbol": sym, "data": {"cts": ev["T"], "asks": [_row(p, q) for p, q in ev["a"]],
                                           "bids": [_row(p, q) for p, q in ev["b"]], "end": ev["u"],
                                           "begin": ev["pu"] + 1, "version": ev["u"]},
                   "channel": "push.depth", "ts": ev["E"]}
        else:
            msg = {"symbol": sym, "data": {"p": float(ev["p"]), "v": float(ev["q"]), "T": 2 if ev["m"] else 1,
                                           "t": ev["T"]}, "channel": "push.deal", "ts": ev["E"]}
        out.append({"t": rec["t"], "src": "ws", "conn": "derived-0", "url": FUTURES_WS,
                    "data": json.dumps(msg, separators=(",", ":"))})
    return out


def _acks(t: int, sym: str, spot: bool) -> list[dict]:
    if spot:
        texts = [json.dumps({"id": 0, "code": 0, "msg": f"{DEPTH}@{sym},{DEALS}@{sym}"}, separators=(",", ":"))]
    else:
        texts = [json.dumps({"channel": f"rs.sub.{ch}", "data": "success", "ts": t // 1_000_000},
                            separators=(",", ":")) for ch in ("depth", "deal")]
    return [{"t": t, "src": "ws", "conn": "derived-0", "url": SPOT_WS if spot else FUTURES_WS, "data": text}
            for text in texts]


def write_capture(lines: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))


# ------------------------------------------------------------ fault server script


class MexcScript(VenueScript):
    """REST-seeded diff books: spot protobuf ``publicAggreDepths`` (``fromVersion ==
    last toVersion + 1``), futures JSON ``push.depth`` (``begin == last end + 1``);
    REST ``/api/v3/depth`` and ``/api/v1/contract/depth/{symbol}``. Streams: the
    derived captures above."""

    venue = "mexc"

    def __init__(self, market: str = "spot") -> None:
        self.market = market
        self.spot = market == "spot"
        self.book_topic = re.compile(
            r"spot@public\.aggre\.depth\.v3\.api\.pb@\d+ms@([A-Z0-9]+)" if self.spot else
            r'"method"\s*:\s*"(?:un)?sub\.depth"\s*,\s*"param"\s*:\s*\{\s*"symbol"\s*:\s*"([A-Z0-9_]+)"')

    def load(self) -> list[Stream]:
        snaps: dict[str, dict] = {}
        frames: dict[str, list[tuple[Frame, dict]]] = {}
        for rec in _records(CAPTURES[self.market]):
            if rec["src"] == "rest":
                body = json.loads(rec["data"])
                snap = body if self.spot else dict(body["data"], lastUpdateId=body["data"]["version"])
                sym = rec["url"].split("symbol=")[1].split("&")[0] if self.spot else \
                    rec["url"].split("?")[0].rsplit("/", 1)[1]
                snaps.setdefault(sym, snap)
            elif rec.get("enc") == "b64":
                frame = base64.b64decode(rec["data"])
                try:
                    push = read_depth_push(frame)
                except ValueError:
                    continue  # deals
                frames.setdefault(push["symbol"], []).append((frame, push))
            elif '"push.depth"' in rec["data"]:
                msg = json.loads(rec["data"])
                d = msg["data"]
                frames.setdefault(msg["symbol"], []).append(
                    (rec["data"], {"first": d["begin"], "last": d["end"], "ts": msg["ts"]}))
        streams = []
        for sym, snap in snaps.items():
            last = snap["lastUpdateId"]
            keep = [(f, m) for f, m in frames.get(sym, []) if m["last"] > last]
            book = RefBook()
            for lv in snap["bids"]:
                book.update("bid", lv)
            for lv in snap["asks"]:
                book.update("ask", lv)
            streams.append(Stream(sym, self._pair(sym), [f for f, _ in keep],
                                  [{"first": m["first"], "last": m["last"]} for _, m in keep], book,
                                  {"L": last}))
        return sorted(streams, key=lambda s: -len(s.frames))

    def _pair(self, sym: str) -> str:
        if not self.spot:
            return sym.replace("_", "/")
        quote = next(q for q in QUOTES if sym.endswith(q))
        return f"{sym[:-len(quote)]}/{quote}"

    def clone(self, stream: Stream, base: str) -> Stream:
        quote = stream.pair.split("/")[1]
        sym = f"{base}{quote}" if self.spot else f"{base}_{quote}"
        if self.spot:
            frames: list[Frame] = []
            for f in stream.frames:
                p = read_depth_push(bytes(f))
                frames.append(depth_push(sym, p["send_ms"], p["first"], p["last"], p["bids"], p["asks"]))
        else:
            old, new = f'"symbol":"{stream.symbol}"', f'"symbol":"{sym}"'
            frames = [str(f).replace(old, new) for f in stream.frames]
        return Stream(sym, f"{base}/{quote}", frames, stream.meta, stream.book.copy(), stream.base_meta)

    def apply(self, book: RefBook, frame: Frame) -> None:
        if self.spot:
            push = read_depth_push(bytes(frame))
            bids, asks = push["bids"], push["asks"]
        else:
            d = json.loads(frame)["data"]
            bids, asks = d["bids"], d["asks"]
        for lv in bids:
            book.update("bid", lv)
        for lv in asks:
            book.update("ask", lv)

    def rest_body(self, stream: Stream) -> str:
        """The book at the stream's position; its version is the last frame sent."""
        last = stream.meta[stream.pos - 1]["last"] if stream.pos else stream.base_meta["L"]
        bids, asks = stream.book.wire("bid"), stream.book.wire("ask")
        if self.spot:
            return json.dumps({"lastUpdateId": last, "bids": bids, "asks": asks})
        return json.dumps({"success": True, "code": 0, "data": {
            "asks": asks, "bids": bids, "version": last, "timestamp": int(time.time() * 1000)}})

    def client_action(self, client_frame: str) -> str | None:
        """Spot ``"method":"SUBSCRIPTION"|"UNSUBSCRIPTION"``; futures ``sub.*``/``unsub.*``."""
        try:
            method = json.loads(client_frame).get("method", "")
        except (ValueError, AttributeError):
            return None
        if self.spot:
            return {"SUBSCRIPTION": "subscribe", "UNSUBSCRIPTION": "unsubscribe"}.get(method)
        return "unsubscribe" if method.startswith("unsub.") else "subscribe" if method.startswith("sub.") else None

    def ack(self, client_frame: str) -> list[str]:
        try:
            msg = json.loads(client_frame)
        except ValueError:
            return []
        if not isinstance(msg, dict):
            return []
        if self.spot:
            params = msg.get("params")
            return [json.dumps({"id": 0, "code": 0, "msg": ",".join(params)})] if params else []
        method = str(msg.get("method", ""))
        if method.startswith(("sub.", "unsub.")):
            return [json.dumps({"channel": f"rs.{method}", "data": "success", "ts": int(time.time() * 1000)})]
        return []

    def pong(self, client_frame: str) -> str | None:
        if self.spot:
            return '{"id":0,"code":0,"msg":"PONG"}' if '"PING"' in client_frame else None
        if '"ping"' not in client_frame:
            return None
        ms = int(time.time() * 1000)
        return json.dumps({"channel": "pong", "data": ms, "ts": ms})

    def trade_frame(self, stream: Stream) -> Frame:
        trade_id, price, ms = next_trade(stream)
        if self.spot:
            return deals_push(stream.symbol, ms, [(str(price), "1", 1, ms, str(trade_id))])
        return json.dumps({"symbol": stream.symbol, "data": {"p": float(price), "v": 1, "T": 1, "t": ms},
                           "channel": "push.deal", "ts": ms})

    def corrupt(self, frame: Frame) -> bytes:
        """The push with its body's length prefix overstated: whatever decodes it
        must find the buffer truncated (a flipped byte inside a price string could
        still decode, so that is not the corruption used)."""
        data = bytes(frame) if not isinstance(frame, str) else frame.encode()
        head = b"".join(_field(num, value) for num, value in fields(data)
                        if num not in (W_AGGRE_DEPTHS, W_AGGRE_DEALS))
        num, body = next((n, v) for n, v in fields(data) if n in (W_AGGRE_DEPTHS, W_AGGRE_DEALS))
        assert isinstance(body, bytes)
        return head + _varint(num << 3 | 2) + _varint(len(body) + 64) + body


if __name__ == "__main__":
    for market_name, path in CAPTURES.items():
        write_capture(derive(market_name), path)
        print(f"wrote {path}")
