"""Decisions: every AI decision with its evidence and outcome (page and reads)."""
