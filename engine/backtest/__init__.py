"""Backtesting by replay (issue 17): the queue-position models that decide
when a resting order of ours fills against a recorded tape (queue.py)."""
