"""The daemon's HTTP face: health, status, Prometheus metrics, books,
market-data (history) queries and the trader's halt/resume. Reads
components; never owns their state."""
