"""Orders: the trading gate and order writes, reads, the orders sync, the Orders and Portfolio pages, API."""
