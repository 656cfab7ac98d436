"""What the feed pool must do for Hyperliquid, which closes the whole socket
on a subscription to a coin it does not know: load the driver's instrument
list (``instruments_request``, a POST with a JSON body) before subscribing,
and never carry a pair ``refused`` names. Real pool, real sockets: the
fault-injecting venue for the stream, a local ``/info`` for the list."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config import FeedConfig
from engine.feed.pool import FeedPool
from engine.venues import make_driver
from engine.venues.base import Subscription
from tests.support.eventually import eventually
from tests.support.fault_server import FaultServer
from tests.support.scripts_hyperliquid import HyperliquidScript
from tests.support.venue_streams import build_streams

META = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 50}], "marginTables": []}


@contextlib.contextmanager
def info_server() -> Iterator[tuple[str, list[dict]]]:
    """``POST /info`` answering ``{"type":"meta"}`` with META; yields (base URL, bodies seen)."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            data = json.dumps(META if body == {"type": "meta"} else {"error": "bad"}).encode()
            self.send_response(200 if body == {"type": "meta"} else 400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_hyperliquid_pool_loads_instruments_and_never_subscribes_an_unknown_coin():
    script = HyperliquidScript()
    streams = build_streams(script, 1, max_frames=20)
    store = BookStore.create(f"hl{uuid.uuid4().hex[:10]}", 16, 20)
    with info_server() as (rest_url, seen), FaultServer(script, streams) as venue:
        driver = make_driver("hyperliquid", "futures", rest_url, venue.ws_url)
        pool = FeedPool(FeedConfig(stall_timeout_s=2.0, reconnect_min_s=0.01, reconnect_max_s=0.05),
                        BookWriter(store))
        router = pool.add_feed(driver)
        try:
            pool.start()
            with contextlib.suppress(Exception):  # refusing loudly is fine too
                pool.subscribe("hyperliquid", "futures", [Subscription("BTC/USDC"),
                                                          Subscription("NOSUCHCOIN/USDC")])
            eventually(lambda: router.stats("BTC/USDC")["state"] == "synced", 10.0)
            time.sleep(0.2)
            assert seen and seen[0] == {"type": "meta"}
            assert not [f for f in venue.client_frames if "NOSUCHCOIN" in f], venue.client_frames
        finally:
            pool.stop(3.0)
            store.close()
