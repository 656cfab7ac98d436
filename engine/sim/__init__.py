"""The local venue: a matching engine behind Binance's REST and WebSocket wire
format, for tests, paper trading and replay backtests (docs/venue.md).

  pure core (no I/O, no clock):  amounts, orders, filters, book, ledger,
      triggers, pretrade, matching, market_data, wire_orders, wire_market,
      http_wire, rest_params, order_params, ratelimit, signing
  shared state behind one lock:  exchange (engine + market data + fan-out)
  I/O and threads:               store/history (SQLite), netloop (sockets),
      rest/rest_market/rest_trade (handlers), streams/periodic (WebSocket),
      ws_api/ws_api_session/ws_api_methods (WebSocket API, /ws-api/v3),
      synthetic/replay (liquidity), server.LocalVenue (wiring), testkit,
      paper (a local venue mirroring a live book: paper trading, wired by app.py)
  derivatives core (venue-neutral, pure): settlement (the engine's hook),
      positions, margin, derivatives (PerpSettlement), funding, liquidation
  dialects: usdm/ (Binance USD-M futures: REST, streams, user stream,
      WebSocket API, on its own port over the same engine and ledger)
"""
