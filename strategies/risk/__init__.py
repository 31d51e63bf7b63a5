"""Risk in code (DESIGN §7 rule 3): the R-coefficient, profit margin, sanity checks, sizing; their steps."""
