"""Management commands of the trading layer."""
