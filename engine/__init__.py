"""engine: crypto market-data and grid-trading daemon.

Data flow (see docs/architecture.md):

  exchange WS ──► feed.connection (one thread each) ──► venues.<x>.parse ──► events
     events ──► feed.sync (per-book rule, resync) ──► book.writer ──► shared memory
     events ──► store (recorder: queue → batches → chdb | ClickHouse)
  shared memory ──► trade (strategy worker processes) ──► executor ──► venue REST
  sim: the local venue (matching engine behind Binance's wire format)
  api: HTTP health/status/metrics/books;  app: role wiring, imports everything

Layering: a package may import only the packages listed for it in LAYERS
(tests/test_layering.py enforces it). Leaves first.
"""

__version__ = "0.1.0"

LAYERS: dict[str, set[str]] = {
    "model": set(),
    "clock": set(),
    "config": set(),
    "lifecycle": set(),
    "logconfig": set(),
    "entry": set(),  # console scripts: finds run.py and tools/, imports no engine package
    "book": {"model"},
    "venues": {"model", "config", "clock"},  # a driver may be handed a Clock; it never reads the wall
    "feed": {"model", "config", "clock", "lifecycle", "book", "venues"},
    "store": {"model", "config", "clock", "lifecycle"},
    "strategies": {"model"},
    # trade uses sim's matching core for paper mode (orders matched against a live book)
    "trade": {"model", "config", "clock", "lifecycle", "book", "venues", "store", "strategies", "sim"},
    "sim": {"model", "config", "clock", "lifecycle"},
    "api": {"model", "config", "lifecycle", "book", "app"},
    "app": {"model", "config", "clock", "lifecycle", "logconfig", "book", "venues", "feed",
            "store", "strategies", "trade", "sim", "api"},
}
