"""The trading layer: strategies, indicators, charts, AI analysis, risk, schedules, analytics, decisions."""
