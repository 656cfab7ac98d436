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
    "model_trade": {"model"},  # trading values + the TradingDriver contract (venues and trade share it)
    "clock": set(),
    "config_checks": set(),  # the bounds and cross-key checks engine/config.py applies
    "config_convert": {"config_checks"},  # YAML mapping <-> frozen dataclasses, schema-blind
    "config_storage": set(),  # the storage: section's dataclasses
    "config": {"config_checks", "config_convert", "config_storage"},
    "lifecycle": set(),
    "logconfig": set(),
    "entry": set(),  # console scripts: finds run.py and tools/, imports no engine package
    "book": {"model"},
    "venues": {"model", "model_trade", "config", "clock"},  # a driver may be handed a Clock; it never reads the wall
    "feed": {"model", "config", "clock", "lifecycle", "book", "venues"},
    "store": {"model", "config", "config_storage", "clock", "lifecycle"},
    "strategies": {"model"},
    "backtest": {"model"},  # queue-position models for replaying recorded tapes (issue 17)
    # trade is venue-neutral: drivers come from app.py (venues.TRADING_DRIVERS), never imported
    "trade": {"model", "model_trade", "config", "clock", "lifecycle", "book", "store", "strategies"},
    # sim.paper mirrors a live book (book) and asks the live venue's rules through its driver
    "sim": {"model", "model_trade", "config", "clock", "lifecycle", "book"},
    "api": {"model", "config", "lifecycle", "book"},
    # the API's views over the trader and the task DB (what api reads, wired by app)
    "api_views": {"api", "store"},
    # the local venues a daemon runs inside itself (venue role, --demo, paper)
    "app_venues": {"model", "model_trade", "config", "lifecycle", "book", "sim", "venues"},
    "app": {"model", "model_trade", "config", "config_convert", "clock", "lifecycle", "logconfig",
            "book", "venues", "feed", "store", "strategies", "trade", "sim", "api", "api_views",
            "app_venues"},
}
