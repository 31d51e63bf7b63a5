"""Analytics: how a workflow, strategy or prompt version has done over a date range."""
