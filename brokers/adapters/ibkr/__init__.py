"""Interactive Brokers through ib_async: bars, orders, and the ibkr worker's sync."""
