"""A fault-injecting venue on 127.0.0.1 (port 0): a WebSocket server that
replays recorded book streams in the venue's own format and a REST server for
snapshots, both consistent with a reference book the server keeps itself.
Owns the wire-level faults; the streams and reference books come from
venue_streams.py, the venue formats from venue_scripts.py, and feed_rig.py
wires the real engine to a server for tests.

  capture files ─► VenueScript.load() ─► Stream per symbol (frames + RefBook)
  client ── subscribe frames ─► handler thread: one step per tick per owned symbol
                                  │ fault plan: drop, gap, duplicate, reorder, malformed,
                                  │ corrupt, oversized, extra, stall, mute, disconnect;
                                  │ closes sockets older than max_lifetime_s
  client ── GET snapshot ─────► REST: body at the stream's position (or 429/418),
                                answered after a few more frames went out

A fault waits at its frame until ``fault_gate`` says the books it hits are
synced (a connection-wide fault holds every stream on that socket), so each
fault's effect - which books resync, how often - is known exactly.

The server core is generic (it sends str or bytes frames alike); venue
knowledge lives in the VenueScript it is given.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.support.venue_streams import Frame, RefBook, Stream, VenueScript

if TYPE_CHECKING:  # re-exported lazily below: feed_rig imports this module
    from tests.support.feed_rig import FeedRig as FeedRig

# stall: the socket goes silent; mute: it keeps answering pings but sends no data.
RESYNC_FAULTS = frozenset({"drop", "gap", "reorder", "stall", "mute", "disconnect"})
# corrupt: a gzip/protobuf frame damaged inside (VenueScript.corrupt), then the real one.
WS_FAULTS = RESYNC_FAULTS | {"duplicate", "malformed", "oversized", "extra", "corrupt"}
REST_FAULTS = frozenset({"rest_429", "rest_418", "rest_500"})
# These hit every book on the socket.
CONNECTION_FAULTS = frozenset({"stall", "mute", "disconnect", "extra"})
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


class _Client:
    """One accepted WebSocket connection."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.symbols: dict[str, None] = {}  # ordered set
        self.mirrored: list[Frame] = []  # frames of streams another client now owns
        self.state: dict = {}  # the script's per-socket state (VenueScript.stamp)


_STALL, _MUTE, _DISCONNECT = object(), object(), object()


class FaultServer:
    """WS + REST venue on 127.0.0.1 streaming ``streams`` with ``faults`` injected.

    ``fault_gate(symbols)`` must return True before a WS fault fires (tests pass
    "these books are synced", so every injected fault has a known effect).
    ``rest_limit`` = (weight, window_s): the venue's REST budget; over it the
    server answers 429 with Retry-After, and 418 to anyone who ignores a 429.
    ``ws_ping_s``: send WS pings this often and drop clients that do not pong.
    ``max_lifetime_s``: close every socket this old, as Binance does at 24 h.
    ``accept_limit``: close sockets beyond this many (counted since start) right
    after the handshake; 0 = no limit (tests may change it while running).
    ``trade_every``: send a trade after every this many book frames of a stream.
    A symbol subscribed on a second socket is streamed to both, byte for byte.
    """

    def __init__(self, script: VenueScript, streams: dict[str, Stream],
                 faults: list[Fault] | tuple[()] = (), interval_s: float = 0.001,
                 release_frames: int = 3, fault_gate: Callable[[list[str]], bool] | None = None,
                 rest_limit: tuple[int, float] | None = None, rest_weight: int = 1,
                 idle_after_s: float = 0.05, ws_ping_s: float | None = None,
                 max_lifetime_s: float = 0.0, accept_limit: int = 0,
                 trade_every: int = 0) -> None:
        self.script = script
        self.streams = streams
        self.interval_s = interval_s
        self.release_frames = release_frames  # frames sent between a REST body and its answer
        self.fault_gate = fault_gate
        self.idle_after_s = idle_after_s
        self.max_lifetime_s = max_lifetime_s
        self.accept_limit = accept_limit
        self.trade_every = trade_every
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
        # monotonic time just before each round of book/trade frames went out on
        # any socket: a client's stall verdict can be checked against real silence
        self.data_sent: list[float] = []
        self.connections = 0
        self.lifetime_cuts = 0  # sockets closed for reaching max_lifetime_s
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
            refused = 0 < self.accept_limit < self.connections
        if refused:
            ws.close(1013, "try again later")
            return
        out: list = []
        path = ws.request.path if ws.request is not None else ""
        with self._cond:
            for sym in self.script.symbols_in(path):
                out += self._subscribe(client, sym)
        opened = last_sent = time.monotonic()
        try:
            while not self._stopping:
                if self.max_lifetime_s and time.monotonic() - opened >= self.max_lifetime_s:
                    with self._cond:
                        self.lifetime_cuts += 1
                    ws.close(1001, "connection lifetime reached")
                    return None
                while True:
                    try:
                        msg = ws.recv(timeout=0)
                    except TimeoutError:
                        break
                    out += self._on_client_frame(client, msg)
                with self._cond:
                    owned = [self.streams[s] for s in client.symbols
                             if self.streams[s].owner is client]
                    data = {id(f) for f in client.mirrored}  # book/trade frames, not acks
                    if not self._connection_fault_held(owned):
                        for stream in owned:
                            frames = self._step(client, stream)
                            for mirror in stream.mirrors:
                                mirror.mirrored += [f for f in frames if isinstance(f, str | bytes)]
                            data.update(id(f) for f in frames if isinstance(f, str | bytes))
                            out += frames
                    stepped = [(stream, stream.pos) for stream in owned]
                    out, client.mirrored = client.mirrored + out, []
                for item in out:
                    if item is _STALL or item is _MUTE:
                        return self._stall(ws, answer_pings=item is _MUTE)
                    if item is _DISCONNECT:
                        ws.socket.shutdown(socket.SHUT_RDWR)
                        return None
                    if data and id(item) in data:  # stamped before it can reach the client
                        self.data_sent.append(time.monotonic())
                        data = set()
                    ws.send(item)
                with self._cond:
                    for stream, pos in stepped:
                        stream.sent = max(stream.sent, pos)
                    self._cond.notify_all()
                now = time.monotonic()
                if out:
                    last_sent = now
                elif now - last_sent > self.idle_after_s and owned:
                    with self._cond:  # data the venue sends anyway: a trade
                        idle = self._stamp(client, self.script.trade_frame(owned[0]))
                        self.data_sent.append(time.monotonic())
                    ws.send(idle)
                    last_sent = now
                out = []
                time.sleep(self.interval_s)
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self.close_codes.append(ws.close_code)
                for sym in client.symbols:
                    self._release(client, self.streams[sym])
        return None

    def silence_before(self, verdict: float) -> float:
        """Seconds no data frame had gone out on any socket before ``verdict``
        (a monotonic time): a client's stall verdict is right only when this is
        at least its stall timeout."""
        with self._cond:
            sent = [t for t in self.data_sent if t < verdict]
        return verdict - max(sent) if sent else math.inf

    def _stall(self, ws: ServerConnection, answer_pings: bool = False) -> None:
        """Send no data until the client gives up on this socket (or 10 s); WS
        pings are answered regardless, app pings only if ``answer_pings``."""
        deadline = time.monotonic() + 10.0
        try:
            while time.monotonic() < deadline and not self._stopping:
                try:
                    msg = ws.recv(timeout=0.05)
                except TimeoutError:
                    continue
                if answer_pings:
                    text = msg if isinstance(msg, str) else msg.decode("utf-8", "replace")
                    with self._cond:
                        self.client_frames.append(text)
                        pong = self.script.pong(text)
                    if pong is not None:
                        ws.send(pong)
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
            out += [self._stamp(client, f) for f in self.script.ack(text)]
            symbols = [s for s in self.script.symbols_in(text) if s in self.streams]
            # A script may name a frame's action itself (HTX ``sub``/``unsub``/``req``);
            # "snapshot": the client asks for the book on this socket.
            action = getattr(self.script, "client_action", _action_by_name)(text)
            if action == "unsubscribe":
                for sym in symbols:
                    client.symbols.pop(sym, None)
                    self._release(client, self.streams[sym])
            elif action == "subscribe":
                for sym in symbols:
                    out += self._subscribe(client, sym)
            elif action == "snapshot":
                for sym in symbols:
                    if self.streams[sym].owner is client:
                        out += self._snapshot(self.streams[sym])
        return out

    def _subscribe(self, client: _Client, sym: str) -> list:
        stream = self.streams.get(sym)
        if stream is None:
            return []
        client.symbols[sym] = None
        if stream.owner is not None and stream.owner is not client:
            stream.mirrors.append(stream.owner)  # still connected: it keeps the stream too
        stream.owner = client
        if not getattr(self.script, "snapshot_on_subscribe", True):
            return []  # the book comes when asked for (HTX spot ``req``)
        return self._snapshot(stream)

    def _snapshot(self, stream: Stream) -> list:
        snap = self.script.ws_snapshot(stream)
        if snap is None:
            return []
        self.ws_snapshots[stream.symbol] += 1
        return [self._stamp(stream.owner, snap)]

    def _stamp(self, client: object, frame: Frame) -> Frame:
        """``frame`` as ``client``'s socket sends it: a venue that numbers a socket's
        messages (Coinbase ``sequence_num``) renders the number here, when the frame
        is produced, so a dropped frame still uses its number up."""
        stamp = getattr(self.script, "stamp", None)
        if stamp is None or not isinstance(client, _Client):
            return frame
        return stamp(client.state, frame)

    def _release(self, client: _Client, stream: Stream) -> None:
        """``client`` no longer takes ``stream`` (it unsubscribed or closed)."""
        if stream.owner is client:
            stream.owner = stream.mirrors.pop() if stream.mirrors else None
        elif client in stream.mirrors:
            stream.mirrors.remove(client)

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
        frame = self._stamp(stream.owner, stream.frames[stream.pos])
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
            frame = self._advance(stream)
            if self.trade_every and stream.pos % self.trade_every == 0:
                return [frame, self._stamp(client, self.script.trade_frame(stream))]
            return [frame]
        # A script's connection_faults (Coinbase: drop, gap, reorder) hit every book
        # on the socket; its unseen_faults (Hyperliquid: drop, gap) force no resync.
        whole = fault.kind in CONNECTION_FAULTS or fault.kind in getattr(
            self.script, "connection_faults", ())
        affected = [stream.symbol] if not whole else [
            s for s in client.symbols if self.streams[s].owner is client]
        if self.fault_gate is not None and not self.fault_gate(affected):
            return []  # hold this stream until the client has settled
        del self._ws_faults[(stream.symbol, stream.pos)]
        self.fired.append(fault)
        if fault.kind in RESYNC_FAULTS and fault.kind not in getattr(self.script, "unseen_faults", ()):
            for sym in affected:
                self.injected[sym] += 1
        kind = fault.kind
        if kind == "stall":
            return [_STALL]
        if kind == "mute":
            return [_MUTE]
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
        if kind == "corrupt":  # a compressed frame whose check fails (the script corrupts it)
            return [self.script.corrupt(frame), frame]
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


def _action_by_name(client_frame: str) -> str | None:
    """What a client frame asks for, by the word most venues use."""
    text = client_frame.lower()
    return "unsubscribe" if "unsubscribe" in text else "subscribe" if "subscribe" in text else None


def _rest_handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a venue's REST API

        def do_GET(self) -> None:  # http.server naming
            status, headers, body = server.on_rest(self.path)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # venues with POST info calls (Hyperliquid)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = server.script.rest_post(self.path, body, list(server.streams.values()))
            status, text = answer if answer is not None else (501, '{"error":"no POST here"}')
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def __getattr__(name: str) -> object:
    """``FeedRig`` moved to tests.support.feed_rig; tests/feed/test_limiter.py
    still imports it from here. Delete this once it imports from feed_rig."""
    if name == "FeedRig":
        from tests.support.feed_rig import FeedRig

        return FeedRig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
