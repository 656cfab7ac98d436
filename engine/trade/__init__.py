"""The trader: strategy worker pool, executor, rate limits, positions, risk."""
