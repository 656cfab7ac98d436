"""The local venue's OKX v5 dialect: REST /api/v5/*, the public WebSocket
/ws/v5/public and the private one /ws/v5/private (login, channels, order
operations), SPOT and SWAP, on its own port over the venue's one matching
engine and ledger (docs/venue.md, facts in docs/venues/okx.md).

  service.OkxDialect ─► instruments (spot specs + perpetual specs, shared with USD-M)
      ├► rest.OkxRest (auth, limits, envelope) ─► rest_market / rest_trade / rest_account
      ├► public.PublicHub (books, books5, trades, tickers, mark-price, funding-rate)
      ├► private.PrivateHub (login; orders, positions, account; order ops) ─► trading
      └► NetLoop (its own port), exchange listener ─► outbox ─► hubs
"""
