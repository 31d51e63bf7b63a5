"""Placing a strategy's order: the human approval of a sized trade, and the bracket order step."""
