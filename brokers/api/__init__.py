"""Brokers' REST API: uploaded bars (uploads), orders, the portfolio and the trading controls (trading)."""
