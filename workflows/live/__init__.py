"""The live run monitor: a run's changes as server-sent events."""
