"""The local venue's Bybit v5 dialect: /v5 REST, the public streams
(/v5/public/spot, /v5/public/linear), the private stream (/v5/private) and
the trade WebSocket (/v5/trade), on its own port over the venue's one
matching engine and ledger (docs/venue.md, docs/venues/bybit.md).

  service.BybitDialect ─► spot specs (the spot books) + linear specs (the
      perpetual books and Derivatives core of the USD-M dialect)
      ├► rest.BybitRest (signing, envelope, limits) ─► rest_market, rest_trade, rest_account
      ├► records (orders and executions per account, orderLinkId uniqueness)
      └► streams.BybitHub (public books/trades/tickers, private topics, trade WS) ─► NetLoop
"""
