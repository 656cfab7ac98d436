"""A fault-injecting venue on 127.0.0.1 (port 0): a WebSocket server that
replays recorded book streams in the venue's own format and a REST server for
snapshots, both consistent with a reference book the server keeps itself.
Owns the wire-level faults and the reference books, which are parsed here
independently of the engine's drivers; FeedRig (at the end) wires the real
engine to a server for tests.

  capture files ─► VenueScript.load() ─► Stream per symbol (frames + RefBook)
  client ── subscribe frames ─► handler thread: one step per tick per owned symbol
                                  │ fault plan: drop, gap, duplicate, reorder,
                                  │ malformed, oversized, extra, stall, disconnect
  client ── GET snapshot ─────► REST: body at the stream's position (or 429/418),
                                answered after a few more frames went out

A fault waits at its frame until ``fault_gate`` says the books it hits are
synced (a connection-wide fault holds every stream on that socket), so each
fault's effect - which books resync, how often - is known exactly.

Venue knowledge lives in VenueScript subclasses, one small class per venue at
the end of this module (registry SCRIPTS); the server core is generic and
sends str or bytes frames alike.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config import FeedConfig
from engine.feed.pool import FeedPool
from engine.model import book_key
from engine.venues import make_driver
from engine.venues.base import Subscription

Frame = str | bytes
RESYNC_FAULTS = frozenset({"drop", "gap", "reorder", "stall", "disconnect"})
WS_FAULTS = RESYNC_FAULTS | {"duplicate", "malformed", "oversized", "extra"}
REST_FAULTS = frozenset({"rest_429", "rest_418", "rest_500"})
CONNECTION_FAULTS = frozenset({"stall", "disconnect", "extra"})  # hit every book on the socket
# A request that reached the venue this soon after its 429 was already on the
# wire when the client learnt of the 429: answered 429 again, never banned.
INFLIGHT_GRACE_S = 0.05


@dataclass
class Fault:
    """One injected fault. WS faults fire when ``symbol``'s stream reaches frame
    ``at``; REST faults answer the next ``count`` snapshot requests for
    ``symbol`` made once the stream is at or past ``at``."""

    kind: str
    symbol: str
    at: int = 0
    count: int = 1  # gap: frames skipped; rest_*: requests refused
    size: int = 0  # oversized: frame bytes
    payload: Frame = ""  # extra: a frame sent before the stream's frame
    retry_after: str = "0.3"  # rest_*: Retry-After header value

    def __post_init__(self) -> None:
        assert self.kind in WS_FAULTS | REST_FAULTS, f"unknown fault {self.kind!r}"


class RefBook:
    """The venue's true book: price -> the level exactly as the venue wrote it."""

    def __init__(self) -> None:
        self.bids: dict[float, list] = {}
        self.asks: dict[float, list] = {}

    def update(self, side: str, level: list) -> None:
        book = self.bids if side == "bid" else self.asks
        price = float(level[0])
        if float(level[1]) == 0.0:
            book.pop(price, None)
        else:
            book[price] = list(level)

    def wire(self, side: str) -> list[list]:
        """Levels best first, as wire lists."""
        book = self.bids if side == "bid" else self.asks
        return [book[p] for p in sorted(book, reverse=side == "bid")]

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return ([(float(lv[0]), float(lv[1])) for lv in self.wire("bid")[:depth]],
                [(float(lv[0]), float(lv[1])) for lv in self.wire("ask")[:depth]])

    def copy(self) -> RefBook:
        other = RefBook()
        other.bids = {p: list(lv) for p, lv in self.bids.items()}
        other.asks = {p: list(lv) for p, lv in self.asks.items()}
        return other


@dataclass
class Stream:
    """One symbol's recorded book stream; ``book`` is the state after ``pos`` frames."""

    symbol: str
    pair: str
    frames: list[Frame]
    meta: list[dict]  # per frame: whatever the script needs to render snapshots
    book: RefBook
    base_meta: dict = field(default_factory=dict)  # of the initial state
    pos: int = 0
    sent: int = 0  # frames of ``pos`` already written to the client's socket
    owner: object | None = None  # the _Client currently streaming it

    def final(self, script: VenueScript) -> RefBook:
        book = self.book.copy()
        for i in range(self.pos, len(self.frames)):
            script.apply(book, self.frames[i])
        return book


class VenueScript:
    """The venue-format half of the fault server: one subclass per venue."""

    venue = ""
    market = ""
    book_topic: re.Pattern[str]  # group 1: symbol of a book subscription in a client frame

    def load(self) -> list[Stream]:
        raise NotImplementedError

    def clone(self, stream: Stream, base: str) -> Stream:
        """The same recorded stream under another symbol (more books than captured)."""
        raise NotImplementedError

    def apply(self, book: RefBook, frame: Frame) -> None:
        raise NotImplementedError

    def rest_body(self, stream: Stream) -> str | None:
        """A REST snapshot of the stream's current state; None if the venue has none."""
        return None

    def ws_snapshot(self, stream: Stream) -> str | None:
        """The book snapshot the venue sends on subscribe; None for REST-seeded venues."""
        return None

    def ack(self, client_frame: str) -> list[str]:
        return []

    def pong(self, client_frame: str) -> str | None:
        return None

    def idle_frame(self) -> str:
        """A data frame the venue sends anyway (keeps held streams from looking stalled)."""
        raise NotImplementedError

    def symbols_in(self, text: str) -> list[str]:
        return list(dict.fromkeys(m.group(1) for m in self.book_topic.finditer(text)))


_LOADED: dict[tuple[type, str], list[Stream]] = {}


def build_streams(script: VenueScript, count: int, max_frames: int = 0) -> dict[str, Stream]:
    """``count`` fresh streams: the recorded symbols, then clones named XAA, XAB, ...;
    each cut to its first ``max_frames`` frames if given (shorter tests)."""
    key = (type(script), script.market)
    if key not in _LOADED:  # parsing captures is the slow part; the frames never change
        _LOADED[key] = script.load()
    cut = slice(0, max_frames or None)
    real = [Stream(s.symbol, s.pair, s.frames[cut], s.meta[cut], s.book.copy(), s.base_meta)
            for s in _LOADED[key]]
    out = {s.symbol: s for s in real[:count]}
    names = ("X" + a + b for a, b in itertools.product("ABCDEFGHIJKLMNOPQRSTUVWXYZ", repeat=2))
    for i in range(count - len(out)):
        clone = script.clone(real[i % len(real)], next(names))
        out[clone.symbol] = clone
    return out


class _Client:
    """One accepted WebSocket connection."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.symbols: dict[str, None] = {}  # ordered set


_STALL, _DISCONNECT = object(), object()


class FaultServer:
    """WS + REST venue on 127.0.0.1 streaming ``streams`` with ``faults`` injected.

    ``fault_gate(symbols)`` must return True before a WS fault fires (tests pass
    "these books are synced", so every injected fault has a known effect).
    ``rest_limit`` = (weight, window_s): the venue's REST budget; over it the
    server answers 429 with Retry-After, and 418 to anyone who ignores a 429.
    ``ws_ping_s``: send WS pings this often and drop clients that do not pong.
    """

    def __init__(self, script: VenueScript, streams: dict[str, Stream],
                 faults: list[Fault] | tuple[()] = (), interval_s: float = 0.001,
                 release_frames: int = 3, fault_gate: Callable[[list[str]], bool] | None = None,
                 rest_limit: tuple[int, float] | None = None, rest_weight: int = 1,
                 idle_after_s: float = 0.05, ws_ping_s: float | None = None) -> None:
        self.script = script
        self.streams = streams
        self.interval_s = interval_s
        self.release_frames = release_frames  # frames sent between a REST body and its answer
        self.fault_gate = fault_gate
        self.idle_after_s = idle_after_s
        self._ws_faults = {(f.symbol, f.at): f for f in faults if f.kind in WS_FAULTS}
        self._rest_faults = [f for f in faults if f.kind in REST_FAULTS]
        self._rest_limit = rest_limit
        self._rest_weight = rest_weight
        self._rest_spent: list[tuple[float, int]] = []
        self._rest_paused_from = self._rest_paused_until = 0.0
        self._cond = threading.Condition()
        self._stopping = False
        # What happened, for assertions.
        self.injected: dict[str, int] = {s: 0 for s in streams}  # expected resyncs
        self.fired: list[Fault] = []
        self.rest_served: dict[str, int] = {s: 0 for s in streams}
        self.ws_snapshots: dict[str, int] = {s: 0 for s in streams}
        self.rest_log: list[tuple[float, str, int]] = []  # (monotonic, symbol, status)
        self.connections = 0
        self.close_codes: list[int | None] = []  # as each client socket ended
        self.client_frames: list[str] = []
        self._ws = serve(self._handle, "127.0.0.1", 0, compression=None, ping_interval=ws_ping_s,
                         ping_timeout=ws_ping_s and 4 * ws_ping_s, max_size=None)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self))
        self._http.daemon_threads = True
        self._threads = [threading.Thread(target=self._ws.serve_forever, daemon=True),
                         threading.Thread(target=self._http.serve_forever, args=(0.02,),
                                          daemon=True)]

    # ------------------------------------------------------------ lifecycle

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}/ws"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> FaultServer:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._threads[0].is_alive():  # shutdown() waits for serve_forever to notice
            self._ws.shutdown()
            self._http.shutdown()
        self._ws.socket.close()
        self._http.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def finished(self) -> bool:
        """Every stream sent to its end and every fault fired."""
        with self._cond:
            return (all(s.pos >= len(s.frames) for s in self.streams.values())
                    and not self._ws_faults)

    def reference(self, symbol: str) -> RefBook:
        with self._cond:
            return self.streams[symbol].final(self.script)

    # ------------------------------------------------------------ WebSocket

    def _handle(self, ws: ServerConnection) -> None:
        client = _Client(ws)
        with self._cond:
            self.connections += 1
        out: list = []
        path = ws.request.path if ws.request is not None else ""
        with self._cond:
            for sym in self.script.symbols_in(path):
                out += self._subscribe(client, sym)
        last_sent = time.monotonic()
        try:
            while not self._stopping:
                while True:
                    try:
                        msg = ws.recv(timeout=0)
                    except TimeoutError:
                        break
                    out += self._on_client_frame(client, msg)
                with self._cond:
                    owned = [self.streams[s] for s in client.symbols
                             if self.streams[s].owner is client]
                    if not self._connection_fault_held(owned):
                        for stream in owned:
                            out += self._step(client, stream)
                    stepped = [(stream, stream.pos) for stream in owned]
                for item in out:
                    if item is _STALL:
                        return self._stall(ws)
                    if item is _DISCONNECT:
                        ws.socket.shutdown(socket.SHUT_RDWR)
                        return None
                    ws.send(item)
                with self._cond:
                    for stream, pos in stepped:
                        stream.sent = max(stream.sent, pos)
                    self._cond.notify_all()
                now = time.monotonic()
                if out:
                    last_sent = now
                elif now - last_sent > self.idle_after_s:
                    ws.send(self.script.idle_frame())
                    last_sent = now
                out = []
                time.sleep(self.interval_s)
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self.close_codes.append(ws.close_code)
                for sym in client.symbols:
                    if self.streams[sym].owner is client:
                        self.streams[sym].owner = None
        return None

    def _stall(self, ws: ServerConnection) -> None:
        """Send nothing until the client gives up on this socket (or 10 s)."""
        deadline = time.monotonic() + 10.0
        try:
            while time.monotonic() < deadline and not self._stopping:
                try:
                    ws.recv(timeout=0.05)
                except TimeoutError:
                    pass
        except ConnectionClosed:
            pass

    def _on_client_frame(self, client: _Client, msg: Frame) -> list:
        text = msg if isinstance(msg, str) else msg.decode("utf-8", "replace")
        out: list = []
        with self._cond:
            self.client_frames.append(text)
            pong = self.script.pong(text)
            if pong is not None:
                return [pong]
            out += self.script.ack(text)
            symbols = [s for s in self.script.symbols_in(text) if s in self.streams]
            if "unsubscribe" in text.lower():
                for sym in symbols:
                    client.symbols.pop(sym, None)
                    if self.streams[sym].owner is client:
                        self.streams[sym].owner = None
            elif "subscribe" in text.lower():
                for sym in symbols:
                    out += self._subscribe(client, sym)
        return out

    def _subscribe(self, client: _Client, sym: str) -> list:
        stream = self.streams.get(sym)
        if stream is None:
            return []
        client.symbols[sym] = None
        stream.owner = client
        snap = self.script.ws_snapshot(stream)
        if snap is None:
            return []
        self.ws_snapshots[sym] += 1
        return [snap]

    def _connection_fault_held(self, owned: list[Stream]) -> bool:
        """A fault hitting the whole connection is due but the gate is shut: hold
        every stream on it, so none runs to its end before the fault fires."""
        for stream in owned:
            fault = self._ws_faults.get((stream.symbol, stream.pos))
            if fault is not None and fault.kind in CONNECTION_FAULTS:
                return self.fault_gate is not None and not self.fault_gate(
                    [s.symbol for s in owned])
        return False

    def _advance(self, stream: Stream) -> Frame:
        frame = stream.frames[stream.pos]
        self.script.apply(stream.book, frame)
        stream.pos += 1
        self._cond.notify_all()
        return frame

    def _step(self, client: _Client, stream: Stream) -> list:
        """The next frames of ``stream`` on ``client``, with its fault applied. Holds lock."""
        if stream.pos >= len(stream.frames):
            return []
        fault = self._ws_faults.get((stream.symbol, stream.pos))
        if fault is None:
            return [self._advance(stream)]
        affected = [stream.symbol] if fault.kind not in CONNECTION_FAULTS else [
            s for s in client.symbols if self.streams[s].owner is client]
        if self.fault_gate is not None and not self.fault_gate(affected):
            return []  # hold this stream until the client has settled
        del self._ws_faults[(stream.symbol, stream.pos)]
        self.fired.append(fault)
        if fault.kind in RESYNC_FAULTS:
            for sym in affected:
                self.injected[sym] += 1
        kind = fault.kind
        if kind == "stall":
            return [_STALL]
        if kind == "disconnect":
            return [_DISCONNECT]
        frame = self._advance(stream)
        if kind == "drop":
            return []
        if kind == "gap":
            for _ in range(fault.count - 1):
                if stream.pos < len(stream.frames):
                    self._advance(stream)
            return []
        if kind == "duplicate":
            return [frame, frame]
        if kind == "reorder":
            if stream.pos >= len(stream.frames):
                self.injected[stream.symbol] -= 1
                return [frame]
            return [self._advance(stream), frame]
        if kind == "malformed":
            return [frame[: len(frame) // 2], frame]
        if kind == "oversized":
            junk = '{"pad":"' + "x" * max(0, fault.size - 10) + '"}'
            return [junk, frame]
        if kind == "extra":
            return [fault.payload, frame]
        raise AssertionError(kind)

    # ----------------------------------------------------------------- REST

    def on_rest(self, url: str) -> tuple[int, dict[str, str], str]:
        """Status, headers and body for a snapshot request (any REST thread)."""
        now = time.monotonic()
        with self._cond:
            sym = next((v for _, v in parse_qsl(urlsplit(url).query) if v in self.streams), None)
            if sym is None:
                sym = next((s for s in self.streams if s in urlsplit(url).path), None)
            status, headers, body = self._rest_gate(sym or "", now)
            if status == 200 and sym is None:
                status, body = 400, '{"code":-1121,"msg":"Invalid symbol."}'
            self.rest_log.append((now, sym or "", status))
            if status != 200:
                return status, headers, body
            assert sym is not None
            stream = self.streams[sym]
            rendered = self.script.rest_body(stream)
            if rendered is None:
                return 404, {}, '{"msg":"no REST book"}'
            self.rest_served[sym] += 1
            # Answer only after a few more frames went out, so the client must
            # buffer deltas during the fetch and replay them onto this body.
            target = min(len(stream.frames), stream.pos + self.release_frames)
            while stream.sent < target and not self._stopping:
                before = stream.sent
                self._cond.wait(0.05)
                if stream.sent == before:  # not streaming (held, unowned): answer now
                    break
            return 200, {}, rendered

    def _rest_gate(self, sym: str, now: float) -> tuple[int, dict[str, str], str]:
        """Rate limits and injected 429/418. Caller holds the lock."""
        if self._rest_limit is not None:
            weight, window = self._rest_limit
            if now < self._rest_paused_until:
                # Requests already in flight when the 429 went out get a 429 too;
                # asking again after that, inside Retry-After, is what earns a ban.
                if now - self._rest_paused_from > INFLIGHT_GRACE_S:
                    return 418, {"Retry-After": "1"}, '{"code":-1003,"msg":"IP banned."}'
                return 429, {"Retry-After": f"{self._rest_paused_until - now:.3f}"}, "{}"
            self._rest_spent = [(t, w) for t, w in self._rest_spent if t > now - window]
            used = sum(w for _, w in self._rest_spent)
            if used + self._rest_weight > weight:
                wait = self._rest_spent[0][0] + window - now
                self._rest_paused_from, self._rest_paused_until = now, now + wait
                return 429, {"Retry-After": f"{wait:.3f}"}, '{"code":-1003,"msg":"Too many."}'
            self._rest_spent.append((now, self._rest_weight))
        stream = self.streams.get(sym)
        for fault in self._rest_faults:
            if fault.symbol == sym and fault.count > 0 and stream is not None \
                    and stream.pos >= fault.at:
                fault.count -= 1
                self.fired.append(fault)
                if fault.kind == "rest_500":
                    return 500, {}, '{"code":-1001,"msg":"Internal error."}'
                status = 429 if fault.kind == "rest_429" else 418
                return status, {"Retry-After": fault.retry_after}, '{"code":-1003,"msg":"Slow down."}'
        return 200, {}, ""


def _rest_handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a venue's REST API

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            status, headers, body = server.on_rest(self.path)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


# ------------------------------------------------------------------ venues
# One VenueScript per venue: how its recorded frames change a book and how it
# renders snapshots. Reference parsing is deliberately separate from the
# engine's drivers so a driver bug cannot hide in both.

DATA = Path(__file__).resolve().parents[1] / "data"


def _records(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rename(frame: str, old: str, new: str) -> str:
    return frame.replace(old, new).replace(old.lower(), new.lower())


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
        rows = _records(DATA / "binance" / name)
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
                      [_rename(f, stream.symbol, sym) for f in stream.frames],  # type: ignore[arg-type]
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

    def idle_frame(self) -> str:
        return '{"result":null,"id":0}'


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
                      [_rename(f, stream.symbol, sym) for f in stream.frames],  # type: ignore[arg-type]
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
        return self.idle_frame() if '"op":"ping"' in client_frame.replace(" ", "") else None

    def idle_frame(self) -> str:
        return '{"success":true,"ret_msg":"pong","conn_id":"fault","req_id":"","op":"ping"}'


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
        msgs = [orjson.loads(r["raw"]) for r in _records(self.path)]
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
                      [_rename(f, stream.symbol, sym) for f in stream.frames],  # type: ignore[arg-type]
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

    def idle_frame(self) -> str:
        return "pong"


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
    "bybit": BybitScript,
    "okx": OkxScript,
}


# -------------------------------------------------------------- test rig
# The real engine pieces (BookStore in shared memory, FeedPool, the venue's
# driver) wired to a FaultServer. Only this section uses engine code.


class FeedRig:
    """``with FeedRig("binance-spot", pairs=3, faults=[...]) as rig:`` starts a
    server, a BookStore, a FeedPool subscribed to every stream, and stops all.
    ``faults`` may be a function of the streams (to aim at symbols and lengths)."""

    DEPTH = 50  # mirrored levels compared with the reference book

    def __init__(self, script: str, pairs: int = 3,
                 faults: list[Fault] | Callable[[dict[str, Stream]], list[Fault]] | tuple[()] = (),
                 config: FeedConfig | None = None, pairs_per_connection: int = 0,
                 pool_kw: dict | None = None, driver_limits: dict | None = None,
                 subscribe: bool = True, max_frames: int = 0, **server_kw: object) -> None:
        self.script = SCRIPTS[script]()
        self.streams = build_streams(self.script, pairs, max_frames)
        plan = faults(self.streams) if callable(faults) else list(faults)
        self.server = FaultServer(self.script, self.streams, plan,
                                  fault_gate=self.synced, **server_kw)  # type: ignore[arg-type]
        self.store = BookStore.create(f"rig{uuid.uuid4().hex[:12]}", max(64, pairs * 2),
                                      self.DEPTH, lock_stripes=8)
        self.reader = BookReader(self.store)
        self.config = config or FeedConfig(stall_timeout_s=0.5, reconnect_min_s=0.01,
                                           reconnect_max_s=0.05)
        self.pool = FeedPool(self.config, BookWriter(self.store), **(pool_kw or {}))
        self.driver = make_driver(self.script.venue, self.script.market, self.server.rest_url,
                                  self.server.ws_url)
        if driver_limits:
            self.driver.limits = dataclasses.replace(self.driver.limits, **driver_limits)
        self.router = self.pool.add_feed(self.driver, pairs_per_connection)
        self._subscribe = subscribe

    def __enter__(self) -> FeedRig:
        self.server.start()
        if self._subscribe:
            self.subscribe(list(self.streams))
        self.pool.start()
        return self

    def subscribe(self, symbols: list[str]) -> None:
        self.pool.subscribe(self.script.venue, self.script.market,
                            [Subscription(self.streams[s].pair) for s in symbols])

    def unsubscribe(self, symbols: list[str]) -> None:
        self.pool.unsubscribe(self.script.venue, self.script.market,
                              [self.streams[s].pair for s in symbols])

    def __exit__(self, *exc: object) -> None:
        self.pool.stop(3.0)
        self.server.stop()
        self.reader.close()
        self.store.close()

    def key(self, symbol: str) -> str:
        return book_key(self.script.venue, self.script.market, self.streams[symbol].pair)

    def stats(self, symbol: str) -> dict:
        return self.router.stats(self.streams[symbol].pair)

    def synced(self, symbols: list[str]) -> bool:
        pairs = [self.streams[s].pair for s in symbols]
        return all(p in self.router.books and self.router.stats(p)["state"] == "synced"
                   for p in pairs)

    def mismatches(self, symbols: list[str] | None = None) -> list[str]:
        """Books that differ from the venue's (top DEPTH levels), or are not synced."""
        bad = []
        for sym in symbols or self.streams:
            ref = self.server.reference(sym).top(self.DEPTH)
            try:
                view = self.reader.read(self.key(sym))
            except KeyError:
                bad.append(f"{sym}: no book")
                continue
            got = ([tuple(r) for r in view.bids.tolist()], [tuple(r) for r in view.asks.tolist()])
            if not view.synced or got != (list(ref[0]), list(ref[1])):
                bad.append(f"{sym}: state={view.state.name} bids={len(got[0])} asks={len(got[1])}")
        return bad

    def settled(self) -> bool:
        """Everything sent, every fault fired, every book synced and equal to the venue's."""
        return self.server.finished() and not self.mismatches()

    def snapshots_served(self, symbol: str) -> int:
        return self.server.rest_served[symbol] + self.server.ws_snapshots[symbol]
