"""KuCoin's token handshake end to end, the part the connection layer owns: the
real FeedPool must POST ``/api/v1/bullet-public`` before every connect (the
driver's ``connect_request``), open the socket ``connect_grant`` names (token
and connectId in its query) and ping at the grant's interval.

engine/feed/connection.py does it in ``_connect_target`` (docs/venues/kucoin.md,
"Connecting: what the connection layer must do").
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config import FeedConfig
from engine.feed.pool import FeedPool
from engine.model import Market, book_key
from engine.venues.base import Subscription
from engine.venues.kucoin import KucoinDriver
from tests.support.eventually import eventually
from tests.support.fault_server import FaultServer
from tests.support.scripts_kucoin import KucoinScript
from tests.support.venue_streams import build_streams

PING_INTERVAL_MS = 1000  # the grant's ping rule: pings every 0.8 s (the driver's default is 14.4 s)


class TokenVenue:
    """KuCoin's REST host: bullet-public hands out the fault server's socket with a
    token; book snapshots come from the fault server."""

    def __init__(self, server: FaultServer) -> None:
        self.server = server
        self.token_requests = 0
        venue = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server naming
                venue.token_requests += 1
                body = json.dumps({"code": "200000", "data": {
                    "token": f"tok-{venue.token_requests}",
                    "instanceServers": [{"endpoint": venue.server.ws_url, "encrypt": False,
                                         "protocol": "websocket", "pingInterval": PING_INTERVAL_MS,
                                         "pingTimeout": 10000}]}})
                self._send(200 if self.path == "/api/v1/bullet-public" else 404, body)

            def do_GET(self) -> None:
                status, _, body = venue.server.on_rest(self.path)
                self._send(status, body)

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"


def test_kucoin_pool_fetches_token_then_opens_granted_socket_and_syncs():
    script = KucoinScript("spot")
    streams = build_streams(script, 2, max_frames=40)
    server = FaultServer(script, streams, interval_s=0.002)
    venue = TokenVenue(server)
    store = BookStore.create(f"kcon{uuid.uuid4().hex[:10]}", 16, 20)
    reader = BookReader(store)
    pool = FeedPool(FeedConfig(stall_timeout_s=5.0, reconnect_min_s=0.05, reconnect_max_s=0.2), BookWriter(store))
    driver = KucoinDriver(Market.SPOT, rest_url=venue.url)  # no ws_url: the token flow
    assert driver.use_token
    # Never the public internet: a connection layer that skipped the token would
    # dial this closed local port and never sync.
    driver.ws_base = "ws://127.0.0.1:9/no-token-no-socket"
    router = pool.add_feed(driver)
    server.start()
    venue.thread.start()
    try:
        pool.subscribe("kucoin", "spot", [Subscription(s.pair) for s in streams.values()])
        pool.start()

        def synced() -> bool:
            for sym, stream in streams.items():
                view = reader.read(book_key("kucoin", "spot", stream.pair))
                ref = server.reference(sym).top(20)
                got = ([tuple(r) for r in view.bids.tolist()], [tuple(r) for r in view.asks.tolist()])
                assert view.synced and got == (list(ref[0]), list(ref[1])), sym
            return server.finished()

        eventually(synced, 8.0, 0.02, ignoring=(AssertionError, KeyError))
        assert venue.token_requests >= 1
        assert all(router.stats(s.pair)["gaps"] == 0 for s in streams.values())
        # The grant's ping rule is in force: pings every 0.8 s, not 14.4 s.
        eventually(lambda: sum('"type":"ping"' in f for f in server.client_frames) >= 2, 3.0)
    finally:
        pool.stop(3.0)
        server.stop()
        venue.http.shutdown()
        venue.http.server_close()
        reader.close()
        store.close()
