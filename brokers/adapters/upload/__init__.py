"""A user's own bars, uploaded as CSV (brokers/marketdata/uploads.py), as a market-data source."""
