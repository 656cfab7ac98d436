"""A fault-injecting HTTP + WebSocket proxy in front of the local venue, for
the trader's tests: REST requests pass through unless a queued fault matches
(answer 429/5xx without forwarding, forward and then answer 5xx, forward and
then never answer, hold the request and forward it late), and WebSocket
upgrades are piped raw until ``drop_streams`` cuts them (and refuses new ones
for a while). WebSocket API sockets (``/ws-api/...``) are piped frame by frame
so the same faults apply to their requests, matched as ("WS", method): an
answer without forwarding, the venue's answer replaced, the socket stalled
after forwarding (``FORWARD_THEN_HANG``: nothing more from the venue for
``delay_s``, answers and pushes alike, while the socket looks alive), or the
socket cut after forwarding (``FORWARD_THEN_DROP``) or before it (``DROP``). One thread per client
connection (two per WebSocket API socket); real sockets throughout.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RESPOND = "respond"  # answer (after `delay_s`) without forwarding: the venue never saw it
FORWARD_THEN_RESPOND = "forward_then_respond"  # venue processed it; client sees `status`
FORWARD_THEN_HANG = "forward_then_hang"  # venue processed it; client times out
HOLD_THEN_FORWARD = "hold_then_forward"  # reaches the venue `delay_s` late
FORWARD_THEN_DROP = "forward_then_drop"  # WS API: venue processed it; the socket dies unanswered
DROP = "drop"  # WS API: the socket dies before the request is forwarded: never arrived


@dataclass
class Fault:
    match: Callable[[str, str], bool]  # (method, path) -> applies?
    action: str
    status: int = 503
    body: bytes = b'{"code":-1000,"msg":"An unknown error occurred while processing the request."}'
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    times: int = 1


def on(method: str, path: str) -> Callable[[str, str], bool]:
    return lambda m, p: m == method and p == path


# The same call over either transport: (REST method, path) | ("WS", WS API method).
NEW_ORDER_CALLS = frozenset({("POST", "/api/v3/order"), ("WS", "order.place")})
LOOKUP_CALLS = frozenset({("GET", "/api/v3/order"), ("WS", "order.status")})
CANCEL_CALLS = frozenset({("DELETE", "/api/v3/order"), ("WS", "order.cancel")})


def on_any(calls: frozenset[tuple[str, str]]) -> Callable[[str, str], bool]:
    return lambda m, p: (m, p) in calls


class FaultProxy:
    def __init__(self, upstream_url: str) -> None:
        host, port = upstream_url.split("//", 1)[1].split(":")
        self.upstream = (host, int(port))
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._streams: set[socket.socket] = set()
        self._refuse_streams_until = 0.0
        self._streams_held = threading.Event()  # set: venue->client stream bytes wait
        self._running = True
        self.log: list[tuple[str, str, str]] = []  # (method, path, fault action or "")
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    # ------------------------------------------------------------ control

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def drop_streams(self, refuse_for_s: float = 0.0) -> None:
        """Cut every WebSocket now; refuse new upgrades for ``refuse_for_s``."""
        with self._lock:
            self._refuse_streams_until = time.monotonic() + refuse_for_s
            streams, self._streams = self._streams, set()
        for sock in streams:
            _close(sock)

    def hold_streams(self, held: bool) -> None:
        """Stop (or resume) passing the venue's WebSocket bytes to clients,
        without closing anything: events are late, the sockets look alive."""
        if held:
            self._streams_held.set()
        else:
            self._streams_held.clear()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.log if m == method and p == path)

    def count_any(self, calls: frozenset[tuple[str, str]]) -> int:
        """Calls of one kind over REST and the WebSocket API together."""
        with self._lock:
            return sum(1 for m, p, _ in self.log if (m, p) in calls)

    def stop(self) -> None:
        self._running = False
        _close(self._server)
        self.drop_streams()

    # ---------------------------------------------------------------- I/O

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.match(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while self._running:
                head = _read_head(reader)
                if head is None:
                    return
                request_line, headers, raw_head = head
                method, target, _ = request_line.split(" ", 2)
                path = target.split("?", 1)[0]
                if headers.get("upgrade", "").lower() == "websocket":
                    self._pipe(client, raw_head, path)
                    return
                body = reader.read(int(headers.get("content-length", "0") or 0))
                fault = self._take_fault(method, path)
                with self._lock:
                    self.log.append((method, path, fault.action if fault else ""))
                if fault is not None and fault.action == RESPOND:
                    time.sleep(fault.delay_s)  # a late answer (0: at once)
                    client.sendall(_response(fault.status, fault.body, fault.headers))
                    continue
                if fault is not None and fault.action == HOLD_THEN_FORWARD:
                    time.sleep(fault.delay_s)
                status, reply_headers, reply_body = self._forward(method, target, headers, body)
                if fault is not None and fault.action == FORWARD_THEN_RESPOND:
                    client.sendall(_response(fault.status, fault.body, fault.headers))
                elif fault is not None and fault.action == FORWARD_THEN_HANG:
                    time.sleep(fault.delay_s)
                    return  # close without an answer
                else:
                    client.sendall(_response(status, reply_body, reply_headers))
        except OSError:
            return
        finally:
            _close(client)

    def _forward(self, method: str, target: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            sent = {k: v for k, v in headers.items() if k not in ("connection", "host")}
            conn.request(method, target, body=body or None, headers=sent)
            response = conn.getresponse()
            data = response.read()
            keep = {k: v for k, v in response.getheaders()
                    if k.lower() not in ("content-length", "connection", "transfer-encoding")}
            return response.status, keep, data
        finally:
            conn.close()

    def _pipe(self, client: socket.socket, raw_head: bytes, path: str = "") -> None:
        with self._lock:
            refused = time.monotonic() < self._refuse_streams_until
        if refused:
            client.sendall(_response(503, b"streams refused by the fault proxy", {}))
            return
        upstream = socket.create_connection(self.upstream)
        with self._lock:
            self._streams |= {client, upstream}
        upstream.sendall(raw_head)
        if path.startswith("/ws-api/"):
            try:
                _pipe_frames(self, client, upstream)
            finally:
                with self._lock:
                    self._streams -= {client, upstream}
                _close(upstream)
                _close(client)
            return
        try:
            while True:
                watched = [client] if self._streams_held.is_set() else [client, upstream]
                ready, _, _ = select.select(watched, [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._streams -= {client, upstream}
            _close(upstream)


def _pipe_frames(proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
    pipe = _WsApiPipe(proxy, client, upstream)
    forward = threading.Thread(target=_quietly, args=(pipe.client_to_venue, client, upstream),
                               daemon=True)
    forward.start()
    _quietly(pipe.venue_to_client, client, upstream)
    forward.join(1.0)


def _quietly(run: Callable[[], None], *socks: socket.socket) -> None:
    """Run one direction; when it ends (EOF, fault, error) both sockets close."""
    try:
        run()
    except (OSError, ValueError, ConnectionError):
        pass
    finally:
        for sock in socks:
            _close(sock)


class _WsApiPipe:
    """Frames of one WebSocket API socket, with the proxy's faults applied."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self.replace: dict[str, Fault] = {}  # request id -> fault applied to its answer
        self.stalled_until = 0.0  # FORWARD_THEN_HANG: venue frames wait until then
        self.send_lock = threading.Lock()  # client-bound frames come from both threads

    def to_client(self, data: bytes) -> None:
        with self.send_lock:
            self.client.sendall(data)

    def client_to_venue(self) -> None:
        reader = self.client.makefile("rb")
        while True:
            frame = _read_frame(reader)
            if frame is None:
                return
            opcode, payload, raw = frame
            fault, request_id = None, None
            if opcode == 1:
                try:
                    request = json.loads(payload)
                    method, request_id = str(request.get("method")), request.get("id")
                except ValueError:
                    method = ""
                fault = self.proxy._take_fault("WS", method)
                with self.proxy._lock:
                    self.proxy.log.append(("WS", method, fault.action if fault else ""))
            if fault is not None and fault.action == DROP:
                raise ConnectionError("fault: dropped before forwarding")
            if fault is not None and fault.action == RESPOND:
                time.sleep(fault.delay_s)  # a late answer (0: at once)
                self.to_client(_ws_answer(request_id, fault))
                continue
            if fault is not None and fault.action == HOLD_THEN_FORWARD:
                time.sleep(fault.delay_s)
            if fault is not None and request_id is not None and fault.action != FORWARD_THEN_HANG:
                self.replace[str(request_id)] = fault
            self.upstream.sendall(raw)
            if fault is not None and fault.action == FORWARD_THEN_HANG:
                self.stalled_until = time.monotonic() + fault.delay_s

    def venue_to_client(self) -> None:
        reader = self.upstream.makefile("rb")
        head = _read_head(reader)  # the 101 Switching Protocols answer, passed as is
        if head is None:
            return
        self.to_client(head[2])
        while True:
            frame = _read_frame(reader)
            if frame is None:
                return
            while self.proxy._streams_held.is_set() or time.monotonic() < self.stalled_until:
                time.sleep(0.01)
            opcode, payload, raw = frame
            fault = None
            if opcode == 1 and self.replace:
                try:
                    answer_id = json.loads(payload).get("id")
                except ValueError:
                    answer_id = None
                fault = self.replace.pop(str(answer_id), None) if answer_id is not None else None
            if fault is None:
                self.to_client(raw)
            elif fault.action == FORWARD_THEN_RESPOND:
                self.to_client(_ws_answer(answer_id, fault))
            elif fault.action == FORWARD_THEN_DROP:
                raise ConnectionError("fault: dropped after forwarding")


def _read_frame(reader) -> tuple[int, bytes, bytes] | None:
    """(opcode, unmasked payload, raw bytes) of one frame; None at EOF."""
    head = reader.read(2)
    if len(head) < 2:
        return None
    masked, length = head[1] & 0x80, head[1] & 0x7F
    extended = reader.read(2 if length == 126 else 8 if length == 127 else 0)
    if extended:
        length = int.from_bytes(extended, "big")
    key = reader.read(4) if masked else b""
    payload = reader.read(length)
    if len(payload) < length:
        return None
    data = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if masked else payload
    return head[0] & 0x0F, data, head + extended + key + payload


def _ws_answer(request_id: object, fault: Fault) -> bytes:
    """A server text frame answering ``request_id`` the way the fault says."""
    try:
        error = json.loads(fault.body)
    except ValueError:
        error = {"code": -1000, "msg": fault.body.decode("latin-1")}
    if "Retry-After" in fault.headers:
        now_ms = int(time.time() * 1000)
        error["data"] = {"serverTime": now_ms,
                         "retryAfter": now_ms + int(float(fault.headers["Retry-After"]) * 1000)}
    answer = {"id": request_id, "status": fault.status}
    if fault.status == 200 and "code" not in error:
        answer["result"] = error
    else:
        answer["error"] = error
    payload = json.dumps(answer).encode()
    size = len(payload)
    head = bytes([0x81, size]) if size < 126 else bytes([0x81, 126]) + size.to_bytes(2, "big")
    return head + payload


def _read_head(reader) -> tuple[str, dict[str, str], bytes] | None:
    lines = []
    while True:
        line = reader.readline(65536)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            break
    request_line = lines[0].decode("latin-1").strip()
    headers = {}
    for raw in lines[1:-1]:
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return request_line, headers, b"".join(lines)


def _response(status: int, body: bytes, headers: dict[str, str]) -> bytes:
    reason = http.client.responses.get(status, "Status")
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}",
            "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-type"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
