"""Independent reference books for the tests: rebuilt straight from the raw
recorded messages with plain dicts of the venue's price/size strings, following
each venue's documented procedure. Shares no code with engine/ on purpose, so a
bug in the drivers or the sync code cannot hide in both. Each function asserts
the capture has no gap (that is what the captures' SOURCES.md claim).
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import zstandard

DATA = Path(__file__).resolve().parent.parent / "data"


class RefBook:
    """Per side: Decimal price -> (price string, size string) as the venue sent them."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}
        self.applied = 0
        self.last = 0

    def replace(self, bids: list, asks: list) -> None:
        self.bids, self.asks = {}, {}
        self.update(bids, asks)

    def update(self, bids: list, asks: list) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for lv in levels:
                price = Decimal(lv[0])  # "30244" and "30244.0" are one level
                if Decimal(lv[1]) == 0:
                    side.pop(price, None)
                else:
                    side[price] = (lv[0], lv[1])

    def top_strings(self, depth: int) -> tuple[list, list]:
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:depth]]
        asks = [self.asks[p] for p in sorted(self.asks)[:depth]]
        return bids, asks

    def top(self, depth: int) -> tuple[list[list[float]], list[list[float]]]:
        bids, asks = self.top_strings(depth)
        return ([[float(p), float(s)] for p, s in bids], [[float(p), float(s)] for p, s in asks])


def read_records(path: Path) -> list[dict]:
    """Our capture format, read with the standard library (not engine.feed.capture)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:4] == b"\x28\xb5\x2f\xfd":
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def binance_books(records: list[dict], futures: bool) -> dict[str, RefBook]:
    """Binance 'How to manage a local order book correctly', per symbol.
    Spot: drop u <= L; first U <= L+1 <= u; then U == prev u + 1.
    Futures: drop u < L; first U <= L <= u; then pu == prev u."""
    pending: dict[str, list[dict]] = {}
    books: dict[str, RefBook] = {}
    for rec in records:
        if rec["src"] == "rest":
            symbol = parse_qs(urlsplit(rec["url"]).query)["symbol"][0]
            snap = json.loads(rec["data"])
            book = books[symbol] = RefBook()
            book.replace(snap["bids"], snap["asks"])
            book.last = snap["lastUpdateId"]
            book.applied = -1  # nothing applied since the snapshot yet
            events, pending[symbol] = pending.get(symbol, []), []
            for ev in events:
                _binance_event(book, ev, futures)
            continue
        msg = json.loads(rec["data"])
        ev = msg.get("data", msg)
        if ev.get("e") != "depthUpdate":
            continue
        symbol = ev["s"]
        if symbol in books:
            _binance_event(books[symbol], ev, futures)
        else:
            pending.setdefault(symbol, []).append(ev)
    return books


def _binance_event(book: RefBook, ev: dict, futures: bool) -> None:
    first = book.applied < 0
    if futures:
        if first:
            if ev["u"] < book.last:
                return
            assert ev["U"] <= book.last <= ev["u"], "first event does not bracket the snapshot"
        else:
            assert ev["pu"] == book.last, f"gap: pu {ev['pu']} != {book.last}"
    else:
        if ev["u"] <= book.last:
            return
        if first:
            assert ev["U"] <= book.last + 1 <= ev["u"], "first event does not bracket L+1"
        else:
            assert ev["U"] == book.last + 1, f"gap: U {ev['U']} != {book.last} + 1"
    book.update(ev["b"], ev["a"])
    book.last = ev["u"]
    book.applied = max(book.applied, 0) + 1


def bybit_books(records: list[dict]) -> dict[str, RefBook]:
    """Bybit v5: a snapshot replaces the book; each delta's u is the previous u + 1."""
    books: dict[str, RefBook] = {}
    for rec in records:
        msg = json.loads(rec["data"])
        if not str(msg.get("topic", "")).startswith("orderbook."):
            continue
        data = msg["data"]
        book = books.setdefault(data["s"], RefBook())
        if msg["type"] == "snapshot":
            book.replace(data["b"], data["a"])
            book.applied = 0
        else:
            assert data["u"] == book.last + 1, f"gap: u {data['u']} after {book.last}"
            book.update(data["b"], data["a"])
            book.applied += 1
        book.last = data["u"]
    return books


def okx_crc(bids: list, asks: list) -> int:
    """OKX recipe: CRC32 of bid:ask interleaved 'price:size' strings, top 25, signed."""
    fields = []
    for i in range(25):
        if i < len(bids):
            fields += [bids[i][0], bids[i][1]]
        if i < len(asks):
            fields += [asks[i][0], asks[i][1]]
    value = zlib.crc32(":".join(fields).encode("utf-8"))
    return value - 2**32 if value > 2**31 - 1 else value


def okx_books(records: list[dict]) -> tuple[dict[str, RefBook], int]:
    """OKX books channel per instId; returns the books and how many non-zero
    checksums were verified (each must match)."""
    books: dict[str, RefBook] = {}
    verified = 0
    for rec in records:
        msg = json.loads(rec["data"]) if rec["data"] not in ("pong",) else {}
        if msg.get("arg", {}).get("channel") != "books" or "event" in msg:
            continue
        inst = msg["arg"]["instId"]
        for data in msg["data"]:
            book = books.setdefault(inst, RefBook())
            if msg["action"] == "snapshot":
                book.replace(data["bids"], data["asks"])
                book.applied = 0
            else:
                if "prevSeqId" in data and book.applied:
                    assert data["prevSeqId"] == book.last, "gap in seqId chain"
                book.update(data["bids"], data["asks"])
                book.applied += 1
            book.last = data.get("seqId", 0)
            if data.get("checksum"):
                bids, asks = book.top_strings(25)
                assert okx_crc(bids, asks) == data["checksum"], "checksum mismatch"
                verified += 1
    return books, verified


def htx_books(records: list[dict]) -> dict[str, RefBook]:
    """HTX, per symbol, from gzip frames (base64 in the capture) or decoded text.
    A full book (``depth.step*``, an ``mbp.refresh``, a ``req`` refresh ``rep``, or
    a swap ``event:"snapshot"``) replaces the book; spot ``mbp`` increments must
    have ``prevSeqNum`` == the last ``seqNum`` (older ones are dropped); swap
    ``update``s must have ``version`` == last + 1."""
    books: dict[str, RefBook] = {}
    seeded: set[str] = set()
    for rec in records:
        if rec["src"] != "ws":
            continue
        data = base64.b64decode(rec["data"]) if rec.get("enc") == "b64" else rec["data"].encode()
        msg = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        topic = msg.get("ch") or (msg.get("rep") if msg.get("status") == "ok" else None)
        if not topic or ".mbp." not in topic and ".depth." not in topic:
            continue
        symbol = topic.split(".")[1]
        tick = msg.get("tick") or msg.get("data")
        bids, asks = _htx_strings(tick.get("bids")), _htx_strings(tick.get("asks"))
        book = books.setdefault(symbol, RefBook())
        full = "rep" in msg or ".refresh." in topic or ".step" in topic or tick.get("event") == "snapshot"
        if not full and symbol not in seeded:
            continue  # an increment before any full book: nothing to apply it to yet
        if full:
            seeded.add(symbol)
            book.replace(bids, asks)
            book.applied = 0
            book.last = tick.get("seqNum", tick.get("version"))
        elif "seqNum" in tick:
            if tick["seqNum"] <= book.last and tick["prevSeqNum"] != book.last:
                continue  # buffered from before the refresh
            assert tick["prevSeqNum"] == book.last, f"gap: prevSeqNum {tick['prevSeqNum']} != {book.last}"
            book.update(bids, asks)
            book.applied += 1
            book.last = tick["seqNum"]
        else:
            assert tick["version"] == book.last + 1, f"gap: version {tick['version']} after {book.last}"
            book.update(bids, asks)
            book.applied += 1
            book.last = tick["version"]
    return books


def _htx_strings(levels: list | None) -> list[tuple[str, str]]:
    """HTX levels are JSON numbers; the reference book keys on their shortest text."""
    return [(repr(float(p)), repr(float(s))) for p, s in levels or ()]


def kucoin_books(records: list[dict], futures: bool) -> dict[str, RefBook]:
    """KuCoin classic level2, per symbol, after its REST snapshot (``sequence`` S).
    Spot: skip messages with sequenceEnd <= S; the first applied has
    sequenceStart <= S+1 and only its changes numbered > S count; then
    sequenceStart == previous sequenceEnd + 1; a change with price 0 only
    moves the sequence. Futures: one change "price,side,size" per message,
    skip sequence <= S, then sequence == previous + 1."""
    pending: dict[str, list[dict]] = {}
    books: dict[str, RefBook] = {}
    for rec in records:
        if rec["src"] == "rest":
            symbol = parse_qs(urlsplit(rec["url"]).query)["symbol"][0]
            data = json.loads(rec["data"])["data"]
            book = books[symbol] = RefBook()
            book.replace([[str(p), str(s)] for p, s in data["bids"]],
                         [[str(p), str(s)] for p, s in data["asks"]])
            book.last = int(data["sequence"])
            book.applied = 0
            for msg in pending.pop(symbol, []):
                _kucoin_message(book, msg, futures)
            continue
        msg = json.loads(rec["data"])
        topic = msg.get("topic", "") if msg.get("type") == "message" else ""
        wanted = "/contractMarket/level2:" if futures else "/market/level2:"
        if not topic.startswith(wanted):
            continue
        symbol = topic.split(":", 1)[1] if futures else msg["data"]["symbol"]
        if symbol in books:
            _kucoin_message(books[symbol], msg, futures)
        else:
            pending.setdefault(symbol, []).append(msg)
    return books


def _kucoin_message(book: RefBook, msg: dict, futures: bool) -> None:
    data = msg["data"]
    if futures:
        seq = int(data["sequence"])
        if seq <= book.last:
            return
        assert seq == book.last + 1, f"gap: sequence {seq} after {book.last}"
        price, side, size = data["change"].split(",")
        book.update([[price, size]] if side == "buy" else [], [[price, size]] if side == "sell" else [])
        book.last = seq
        book.applied += 1
        return
    start, end = int(data["sequenceStart"]), int(data["sequenceEnd"])
    if end <= book.last:
        return
    assert start <= book.last + 1, f"gap: sequenceStart {start} after {book.last}"
    keep = [[], []]
    for i, side in enumerate(("bids", "asks")):
        for price, size, seq in data["changes"][side]:
            if int(seq) > book.last and Decimal(price) != 0:
                keep[i].append([price, size])
    book.update(keep[0], keep[1])
    book.last = end
    book.applied += 1


def gate_books(records: list[dict], futures: bool) -> dict[str, RefBook]:
    """Gate ``*.order_book_update`` after a REST ``with_id`` snapshot (id B), per
    symbol (docs "How to maintain local order book"): dump u < B+1; the first
    consumed has U <= B+1 <= u; afterwards U == previous u + 1. Futures levels
    are {"p": price, "s": size}; a ``full: true`` push replaces the book."""
    channel = "futures.order_book_update" if futures else "spot.order_book_update"
    key = "contract" if futures else "currency_pair"
    pending: dict[str, list[dict]] = {}
    books: dict[str, RefBook] = {}
    for rec in records:
        if rec["src"] == "rest":
            query = parse_qs(urlsplit(rec["url"]).query)
            if key not in query:
                continue
            symbol = query[key][0]
            snap = json.loads(rec["data"])
            book = books[symbol] = RefBook()
            book.replace(_gate_strings(snap["bids"]), _gate_strings(snap["asks"]))
            book.last = snap["id"]
            book.applied = 0
            for result in pending.pop(symbol, []):
                _gate_result(book, result)
            continue
        msg = json.loads(rec["data"])
        if msg.get("channel") != channel or msg.get("event") != "update":
            continue
        result = msg["result"]
        if result["s"] in books:
            _gate_result(books[result["s"]], result)
        else:
            pending.setdefault(result["s"], []).append(result)
    return books


def _gate_result(book: RefBook, result: dict) -> None:
    if result.get("full"):
        book.replace(_gate_strings(result.get("b", [])), _gate_strings(result.get("a", [])))
        book.last = result["u"]
        return
    if result["u"] < book.last + 1:
        return
    assert result["U"] <= book.last + 1, f"gap: U {result['U']} after {book.last}"
    book.update(_gate_strings(result.get("b", [])), _gate_strings(result.get("a", [])))
    book.last = result["u"]
    book.applied += 1


def _gate_strings(levels: list) -> list[list[str]]:
    """Spot ["price","amount"] or futures {"p": "price", "s": contracts} as strings."""
    return [[lv["p"], str(lv["s"])] if isinstance(lv, dict) else [lv[0], lv[1]] for lv in levels]


def mexc_books(records: list[dict], futures: bool) -> dict[str, RefBook]:
    """MEXC per symbol, as its guides say (spot "How to Properly Maintain a Local Copy
    of the Order Book", futures "Incremental Order Book Maintenance Mechanism"): REST
    snapshot version L; drop pushes whose last version (spot toVersion, futures end or
    version) <= L; the first applied has first version (fromVersion, begin) <= L + 1;
    then first == previous last + 1. Spot pushes are protobuf, read here with a
    minimal wire-format walker and the published field numbers."""
    pending: dict[str, list[dict]] = {}
    books: dict[str, RefBook] = {}
    for rec in records:
        if rec["src"] == "rest":
            body = json.loads(rec["data"])
            if futures:
                symbol, snap, last = urlsplit(rec["url"]).path.rsplit("/", 1)[1], body["data"], body["data"]["version"]
            else:
                symbol, snap, last = parse_qs(urlsplit(rec["url"]).query)["symbol"][0], body, body["lastUpdateId"]
            book = books[symbol] = RefBook()
            book.replace(_mexc_strings(snap["bids"]), _mexc_strings(snap["asks"]))
            book.last, book.applied = last, -1
            for push in pending.pop(symbol, []):
                _mexc_push(book, push)
            continue
        push = _mexc_futures_push(rec["data"]) if futures else _mexc_spot_push(rec)
        if push is None:
            continue
        if push["symbol"] in books:
            _mexc_push(books[push["symbol"]], push)
        else:
            pending.setdefault(push["symbol"], []).append(push)
    return books


def _mexc_push(book: RefBook, push: dict) -> None:
    if push["last"] <= book.last:
        return
    if book.applied < 0:
        assert push["first"] <= book.last + 1, "first push does not reach the snapshot"
    else:
        assert push["first"] == book.last + 1, f"gap: first {push['first']} after {book.last}"
    book.update(push["bids"], push["asks"])
    book.last = push["last"]
    book.applied = max(book.applied, 0) + 1


def _mexc_strings(levels: list) -> list[list[str]]:
    """Spot ["price","qty"] strings; futures [price, contracts, orders] numbers (as repr)."""
    return [[lv[0] if isinstance(lv[0], str) else repr(lv[0]),
             lv[1] if isinstance(lv[1], str) else repr(lv[1])] for lv in levels]


def _mexc_futures_push(data: str) -> dict | None:
    msg = json.loads(data)
    if msg.get("channel") != "push.depth":
        return None
    d = msg["data"]
    first = d["begin"] if "begin" in d else d["version"]
    return {"symbol": msg["symbol"], "first": first, "last": d.get("end", d["version"]),
            "bids": _mexc_strings(d["bids"]), "asks": _mexc_strings(d["asks"])}


def _mexc_spot_push(rec: dict) -> dict | None:
    """PushDataV3ApiWrapper: 3 symbol, 313 publicAggreDepths {1 asks, 2 bids (each
    {1 price, 2 quantity}), 4 fromVersion, 5 toVersion}; other bodies are not books."""
    data = base64.b64decode(rec["data"]) if rec.get("enc") == "b64" else rec["data"].encode()
    if data[:1] == b"{":
        return None  # JSON control frame (ack, pong)
    top = dict(_pb_fields(data))
    if 313 not in top:
        return None
    push: dict = {"symbol": top[3].decode(), "bids": [], "asks": []}
    for num, value in _pb_fields(top[313]):
        if num in (1, 2):
            level = dict(_pb_fields(value))
            push["asks" if num == 1 else "bids"].append([level[1].decode(), level[2].decode()])
        elif num in (4, 5):
            push["first" if num == 4 else "last"] = int(value)
    return push


def _pb_fields(buf: bytes) -> list:
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _pb_varint(buf, pos)
        if key & 7 == 0:
            value, pos = _pb_varint(buf, pos)
        elif key & 7 == 2:
            size, pos = _pb_varint(buf, pos)
            value = buf[pos:pos + size]
            assert len(value) == size, "truncated protobuf field"
            pos += size
        else:
            raise AssertionError(f"unexpected wire type {key & 7}")
        out.append((key >> 3, value))
    return out


def _pb_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def bitget_books(records: list[dict]) -> tuple[dict[str, RefBook], int]:
    """Bitget v2 ``books`` per instId: a snapshot replaces the book; the first update
    has ``pseq <= snapshot seq < seq`` (observed: equal), then each update's ``pseq``
    is the previous ``seq`` (pseq 0 would be a restart); every non-zero
    ``checksum`` (OKX's recipe over the top 25, wire strings) must match. Returns
    the books and how many checksums were verified."""
    books: dict[str, RefBook] = {}
    verified = 0
    for rec in records:
        if rec["data"] == "pong":
            continue
        msg = json.loads(rec["data"])
        if msg.get("arg", {}).get("channel") != "books" or "event" in msg:
            continue
        for data in msg["data"]:
            book = books.setdefault(msg["arg"]["instId"], RefBook())
            if msg["action"] == "snapshot":
                book.replace(data["bids"], data["asks"])
                book.applied = 0
            else:
                if data["seq"] <= book.last:
                    continue  # older than the snapshot
                if book.applied == 0:  # the first update's [pseq, seq] holds the snapshot's seq
                    assert 0 < data["pseq"] <= book.last, "first update does not bridge the snapshot"
                else:
                    assert data["pseq"] != 0 and data["pseq"] == book.last, "gap in seq/pseq chain"
                book.update(data["bids"], data["asks"])
                book.applied += 1
            book.last = data["seq"]
            if data.get("checksum"):
                bids, asks = book.top_strings(25)
                assert okx_crc(bids, asks) == data["checksum"], "checksum mismatch"
                verified += 1
    return books, verified


def coinbase_books(records: list[dict]) -> dict[str, RefBook]:
    """Coinbase Advanced Trade ``l2_data`` per product_id: a ``snapshot`` event
    replaces the book, an ``update`` sets absolute sizes (bid / offer). Every
    message of a socket carries ``sequence_num`` = previous + 1, whatever its
    channel (asserted per ``conn``: the captures have no gap)."""
    books: dict[str, RefBook] = {}
    last: dict[str, int] = {}
    for rec in records:
        msg = json.loads(rec["data"])
        if "sequence_num" in msg:
            conn = rec.get("conn", "")
            if conn in last:
                assert msg["sequence_num"] == last[conn] + 1, f"gap: {msg['sequence_num']} after {last[conn]}"
            last[conn] = msg["sequence_num"]
        if msg.get("channel") != "l2_data":
            continue
        for event in msg["events"]:
            bids = [[u["price_level"], u["new_quantity"]] for u in event["updates"] if u["side"] == "bid"]
            asks = [[u["price_level"], u["new_quantity"]] for u in event["updates"] if u["side"] == "offer"]
            book = books.setdefault(event["product_id"], RefBook())
            if event["type"] == "snapshot":
                book.replace(bids, asks)
                book.applied = 0
            else:
                book.update(bids, asks)
                book.applied += 1
            book.last = msg["sequence_num"]
    return books


def hyperliquid_books(records: list[dict]) -> dict[str, RefBook]:
    """Hyperliquid ``l2Book``: every frame is the whole book (``levels`` = [bids,
    asks] of {px, sz, n}); per coin the last frame wins, and ``time`` never goes
    back (asserted)."""
    books: dict[str, RefBook] = {}
    for rec in records:
        if rec["data"] == "Websocket connection established.":
            continue
        msg = json.loads(rec["data"])
        if msg.get("channel") != "l2Book":
            continue
        data = msg["data"]
        book = books.setdefault(data["coin"], RefBook())
        assert data["time"] >= book.last, f"time went back: {data['time']} < {book.last}"
        bids, asks = ([[lv["px"], lv["sz"]] for lv in side] for side in data["levels"])
        book.replace(bids, asks)
        book.applied += 1
        book.last = data["time"]
    return books


def coinex_books(records: list[dict], limit: int = 50) -> tuple[dict[str, RefBook], int]:
    """CoinEx v2 ``depth.update``: ``is_full`` replaces the book, otherwise levels
    change (``"0"`` deletes); after every push the CRC32 of
    ``bid1_price:bid1_amount:...:ask1_price:ask1_amount:...`` over the top ``limit``
    levels (wire strings) must equal ``checksum`` (taken modulo 2**32: the docs say
    signed, their example is unsigned). Returns the books and the checks done."""
    books: dict[str, RefBook] = {}
    verified = 0
    for rec in records:
        if rec["src"] != "ws":
            continue
        data = base64.b64decode(rec["data"]) if rec.get("enc") == "b64" else rec["data"].encode()
        msg = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        if msg.get("method") != "depth.update":
            continue
        push = msg["data"]
        book = books.setdefault(push["market"], RefBook())
        depth = push["depth"]
        if push["is_full"]:
            book.replace(depth["bids"], depth["asks"])
            book.applied = 0
        else:
            book.update(depth["bids"], depth["asks"])
            book.applied += 1
        if depth.get("checksum") is not None:
            bids, asks = book.top_strings(limit)
            text = ":".join(f"{p}:{s}" for p, s in bids + asks)
            assert zlib.crc32(text.encode()) == int(depth["checksum"]) % 2**32, "checksum mismatch"
            verified += 1
    return books, verified
