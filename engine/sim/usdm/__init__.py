"""The local venue's Binance USD-M futures dialect: /fapi REST, market
streams (/public, /market, legacy /ws and /stream), the user data stream
(/private, /ws/<listenKey>) and the WebSocket API (/ws-fapi/v1), on its own
port over the venue's one matching engine and ledger (docs/venue.md).

  service.UsdmDialect ─► perp specs + Derivatives core on the shared engine
      ├► RestApi(rest_market + rest_trade + rest_account routes)
      ├► streams.UsdmHub (market + user streams, ws_api)  ─► its own NetLoop
      └► tick: mark price, funding, margin calls, liquidation (core modules)
"""
