"""The engine layer: workflows, immutable versions, runs, the step registry, graph validation, the engine.

It knows nothing of trading (import-linter contract `layers` in pyproject.toml)."""
