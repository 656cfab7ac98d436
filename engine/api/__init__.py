"""The daemon's HTTP face: health, status, Prometheus metrics and (later)
books, tasks, orders and market-data queries. Reads components; never owns
their state."""
