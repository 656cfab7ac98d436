"""A fault-injecting HTTP + WebSocket proxy in front of the local venue, for
the trader's tests: REST requests pass through unless a queued fault matches
(answer 429/5xx without forwarding, forward and then answer 5xx, forward and
then never answer, hold the request and forward it late), and WebSocket
upgrades are piped raw until ``drop_streams`` cuts them (and refuses new ones
for a while). One thread per client connection; real sockets throughout.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RESPOND = "respond"  # answer without forwarding: the venue never saw it
FORWARD_THEN_RESPOND = "forward_then_respond"  # venue processed it; client sees `status`
FORWARD_THEN_HANG = "forward_then_hang"  # venue processed it; client times out
HOLD_THEN_FORWARD = "hold_then_forward"  # reaches the venue `delay_s` late


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
                    self._pipe(client, raw_head)
                    return
                body = reader.read(int(headers.get("content-length", "0") or 0))
                fault = self._take_fault(method, path)
                with self._lock:
                    self.log.append((method, path, fault.action if fault else ""))
                if fault is not None and fault.action == RESPOND:
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

    def _pipe(self, client: socket.socket, raw_head: bytes) -> None:
        with self._lock:
            refused = time.monotonic() < self._refuse_streams_until
        if refused:
            client.sendall(_response(503, b"streams refused by the fault proxy", {}))
            return
        upstream = socket.create_connection(self.upstream)
        with self._lock:
            self._streams |= {client, upstream}
        upstream.sendall(raw_head)
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
