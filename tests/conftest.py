"""Test-session wiring: private servers and helpers live in tests/support."""

pytest_plugins = ["tests.support.fixtures"]
