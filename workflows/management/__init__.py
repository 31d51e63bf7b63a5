"""Management commands of the engine layer."""
