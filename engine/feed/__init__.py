"""The market-data feed: connection threads, the pool, book sync and resync,
capture recording. All I/O for market data lives here."""
