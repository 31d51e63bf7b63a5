"""Market data and orders: bar sources, brokers behind one interface, the trading gate.

Imports only `workflows` (import-linter contract `layers` in pyproject.toml)."""
