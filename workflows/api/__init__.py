"""The engine's REST API: workflows, versions, graphs, runs, approvals, templates, step types."""
