"""AI analysis: the model client, prompts, decisions, the offline analyst and AutoGen teams.

Model output is an untrusted proposal (DESIGN §7): everything a model says is validated
against `schemas`, and any failure becomes HOLD with the error recorded, never a trade.
"""
