"""A plain client keeps a local order book with Binance's documented recipe
(web-socket-streams.md, "How to manage a local order book correctly") while
random orders and the synthetic bots churn the venue's book; afterwards the
local book must equal the venue's own book level for level."""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable
from decimal import Decimal

import orjson
import pytest
import websocket

from engine.sim.server import LocalVenue
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually


class LocalBook:
    """Binance's recipe, steps 1-9, and nothing from the venue's code."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_u: int | None = None

    def load_snapshot(self, snapshot: dict) -> None:
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.snapshot_id = snapshot["lastUpdateId"]

    def apply(self, event: dict) -> None:
        if event["u"] <= self.snapshot_id:  # step 4: drop
            return
        if self.last_u is None:  # step 5: the first processed event straddles the snapshot
            assert event["U"] <= self.snapshot_id + 1 <= event["u"], (event["U"], event["u"])
        else:  # step 6: no gaps
            assert event["U"] == self.last_u + 1, (event["U"], self.last_u)
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, qty in levels:  # steps 7-9: absolute quantities, 0 removes
                if Decimal(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.last_u = event["u"]

    def sorted_levels(self) -> tuple[list, list]:
        bids = sorted(self.bids.items(), key=lambda x: Decimal(x[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda x: Decimal(x[0]))
        return [list(x) for x in bids], [list(x) for x in asks]


def random_flow(clients: list[BinanceClient], stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        client = rng.choice(clients)
        action = rng.random()
        if action < 0.15:
            opened = client.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()
            if opened:
                client.signed("DELETE", "/api/v3/order", symbol="BTCUSDT",
                              orderId=rng.choice(opened)["orderId"])
            continue
        side = rng.choice(["BUY", "SELL"])
        price = Decimal(30000) + Decimal(rng.randint(-60, 60)) * Decimal("2.5")
        qty = Decimal(rng.randint(1, 40)) / 1000
        if action < 0.25:
            client.order(symbol="BTCUSDT", side=side, type="MARKET", quantity=str(qty))
        else:
            client.limit(side, str(qty), str(price))


@pytest.mark.parametrize("stream", ["btcusdt@depth@100ms", "btcusdt@depth"])
def test_local_book_synced_by_the_recipe_matches_the_venue(
        start_venue: Callable[..., LocalVenue], stream: str) -> None:
    venue = start_venue(market="synthetic", tick_ms=20, levels=15)
    clients = [BinanceClient(venue.rest_url, f"{name}-key", f"{name}-secret")
               for name in ("alice", "bob")]
    stop = threading.Event()
    flow = threading.Thread(target=random_flow, args=(clients, stop, 7), daemon=True)
    flow.start()
    events: queue.Queue[dict] = queue.Queue()
    ws = websocket.create_connection(f"{venue.ws_url}/ws/{stream}", timeout=10)  # step 1
    reader = threading.Thread(target=lambda: _read_into(ws, events), daemon=True)
    reader.start()
    book = LocalBook()
    eventually(lambda: not events.empty(), timeout=5)  # step 2: events are buffering
    book.load_snapshot(clients[0].public("GET", "/api/v3/depth", symbol="BTCUSDT",
                                         limit=5000).json())  # step 3
    applied = 0
    deadline_events = 4 if stream.endswith("100ms") else 2
    while applied < deadline_events or book.last_u is None:
        book.apply(events.get(timeout=5))
        applied += 1
    stop.set()
    flow.join(10)
    venue.market.stop(5)  # the book is now still
    final = clients[0].public("GET", "/api/v3/depth", symbol="BTCUSDT", limit=5000).json()
    while book.last_u is None or book.last_u < final["lastUpdateId"]:
        book.apply(events.get(timeout=5))
    assert book.last_u == final["lastUpdateId"]
    bids, asks = book.sorted_levels()
    assert (bids, asks) == (final["bids"], final["asks"])
    # A non-trivial book: the synthetic maker quotes 15 levels a side, takers
    # eat some (a loaded host refills late), so a few must remain on each.
    assert len(bids) >= 3 and len(asks) >= 3
    update_id, venue_bids, venue_asks = venue.exchange.depth("BTCUSDT", 10_000)
    assert update_id == final["lastUpdateId"]
    assert len(venue_bids) == len(bids) and len(venue_asks) == len(asks)
    ws.close()


def _read_into(ws: websocket.WebSocket, events: queue.Queue) -> None:
    try:
        while True:
            data = ws.recv()
            if not data:  # closed
                return
            events.put(orjson.loads(data))
    except (websocket.WebSocketException, OSError):
        return
